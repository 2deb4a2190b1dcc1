//! Deferred tasks decided again while the agent serves: a task whose decision had to
//! wait for Docker or /proc is planned afresh in the background, and what is decided is
//! carried out only when nothing can have undone it meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use berth_state::{Phase, PhaseRecord};
use uuid::Uuid;

use super::act::act_on_task;
use super::gather::Gathered;
use super::plan::{Action, Decision, Recover};
use crate::containerizer::Containerizer;

/// First wait before deciding deferred tasks again; doubled up to [`RETRY_MAX`].
const RETRY_START: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Whether a decision may be carried out while the agent serves. One that starts
/// something (a resumed launch) waits for the next start, when no kill can come between
/// the decision and the start: a kill that stopped the container just before would be
/// undone, and the task would run again. Carrying a container's output on starts nothing.
pub(super) fn safe_while_serving(action: &Action) -> bool {
    match action {
        Action::Adopt { .. } => true,
        Action::Resume { .. } => false,
        Action::FinishKill { .. }
        | Action::End { .. }
        | Action::Clean { .. }
        | Action::RemoveAt { .. }
        | Action::Done { .. } => true,
        Action::Defer
        | Action::Hold
        | Action::LeaveAlone
        | Action::RemoveOrphan { .. }
        | Action::ReportOrphan => false,
    }
}

/// The newest phase of a history that is not a recovery decision: what a plan was made
/// from. A different one now means the task moved on meanwhile.
fn newest_fact(history: &[PhaseRecord]) -> Option<u64> {
    history
        .iter()
        .rev()
        .find(|r| !matches!(r.phase, Phase::Decision { .. }))
        .map(|r| r.seq)
}

/// Decides the deferred tasks again while the agent serves, with backoff, until Docker
/// can say what became of each: the views are gathered and planned afresh, and only the
/// decisions about those tasks that are no longer deferred, that start nothing
/// (`safe_while_serving`) and that were made from the task's current history are
/// carried out. A task that ended or left the store meanwhile is dropped.
///
/// `serving` says the tasks were deferred while the agent served (their executor died
/// under it), which the plan weighs as it did then (`Views::serving`).
pub async fn retry_deferred(
    c: Arc<Containerizer>,
    recover: Recover,
    kill_orphans: bool,
    mut deferred: BTreeSet<Uuid>,
    serving: bool,
) {
    let flags = c.settings.gathering();
    let mut wait = RETRY_START;
    while !deferred.is_empty() {
        tracing::info!(
            tasks = deferred.len(),
            "deciding deferred tasks again in {wait:?}"
        );
        tokio::time::sleep(wait).await;
        wait = crate::backoff::doubled(wait, RETRY_MAX);
        deferred.retain(|id| {
            c.entry(*id)
                .is_some_and(|e| !e.view.borrow().state.is_terminal())
        });
        let gathering =
            match super::gather::gather(c.store(), &flags, c.docker(), recover, kill_orphans).await
            {
                Ok(mut g) => {
                    g.views.serving = serving;
                    g
                }
                Err(e) => {
                    tracing::warn!("cannot read the store to decide deferred tasks: {e}");
                    continue;
                }
            };
        let decided: Vec<Decision> = super::plan::plan(&gathering.views)
            .decisions
            .into_iter()
            .filter(|d| {
                safe_while_serving(&d.action)
                    && d.subject
                        .container_id()
                        .is_some_and(|id| deferred.contains(&id))
            })
            .collect();
        for decision in decided {
            if carry_out_while_serving(&c, &decision, &gathering.records).await {
                if let Some(id) = decision.subject.container_id() {
                    deferred.remove(&id);
                }
            }
        }
    }
}

/// Carries out a decision made while the agent serves, only if it was made from the
/// task's current history: checked and recorded under the task's lock, so that a kill or
/// a report cannot slip between the check and the decision's record. False when the task
/// moved on (or the decision could not be recorded), so that it is decided again later.
pub(super) async fn carry_out_while_serving(
    c: &Arc<Containerizer>,
    decision: &Decision,
    records: &HashMap<Uuid, Gathered>,
) -> bool {
    let Some(id) = decision.subject.container_id() else {
        return false;
    };
    let Some(entry) = c.entry(id) else {
        return false;
    };
    let planned_from = records.get(&id).and_then(|g| newest_fact(&g.history));
    {
        let _deciding = entry.deciding.lock().await;
        let now = c.store().history(id).map(|h| newest_fact(&h));
        if entry.view.borrow().state.is_terminal() || now.ok() != Some(planned_from) {
            tracing::info!(%id, "the task moved on while it was decided; deciding once more later");
            return false;
        }
        if let Some(phase) = decision.history_entry() {
            if let Err(e) = c.record_decision(id, phase).await {
                tracing::error!(%id, "cannot record the decision, so not acting on it: {e}");
                return false;
            }
        }
        if decision.action.ends_task() {
            *entry.ending.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(decision.action.name().to_owned());
        }
    }
    tracing::info!(
        %id,
        action = decision.action.name(),
        why = %decision.why,
        "task decided while serving"
    );
    act_on_task(c, id, decision, records.get(&id), false).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::plan::{ResumeFrom, Watch};

    #[test]
    fn only_decisions_that_start_nothing_are_carried_out_while_serving() {
        let adopt = |watch| Action::Adopt {
            watch,
            kill_at_ms: None,
        };
        let cases = [
            (adopt(Watch::Executor), true),
            (
                adopt(Watch::Container {
                    reattach_output: false,
                }),
                true,
            ),
            (
                adopt(Watch::Container {
                    reattach_output: true,
                }),
                true,
            ),
            (
                Action::Resume {
                    from: ResumeFrom::ExecutorStarting,
                    remove_first: vec![],
                    kill_at_ms: None,
                },
                false,
            ),
            (Action::Done { remove: vec![] }, true),
            (Action::Defer, false),
            (Action::Hold, false),
            (Action::ReportOrphan, false),
        ];
        for (action, want) in cases {
            assert_eq!(safe_while_serving(&action), want, "{action:?}");
        }
    }

    #[test]
    fn the_newest_fact_skips_decisions() {
        let record = |seq, phase| PhaseRecord {
            seq,
            at_ms: 0,
            container_id: Uuid::nil(),
            phase,
        };
        let decision = || Phase::Decision {
            action: "defer".into(),
            why: "docker".into(),
        };
        assert_eq!(newest_fact(&[]), None);
        assert_eq!(newest_fact(&[record(1, decision())]), None);
        assert_eq!(
            newest_fact(&[
                record(1, Phase::Fetching),
                record(2, Phase::Removed),
                record(3, decision()),
            ]),
            Some(2)
        );
    }
}

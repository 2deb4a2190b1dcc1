//! The last step of recovery: carrying out a plan, one decision at a time. A decision
//! about a task is recorded in its history before anything is done for it, so that a
//! crash in the middle leaves the decision visible and the next start decides again from
//! what is there.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::gather::Gathered;
use super::plan::{Action, Decision, Plan, Recover, ResumeFrom, Subject, Watch};
use crate::containerizer::launch::LaunchStep;
use crate::containerizer::Containerizer;
use crate::docker::DockerError;
use crate::task::LaunchKind;

/// A plan as a table, one decision per line, for the log and `berth recover --dry-run`.
/// Pure.
pub fn render(plan: &Plan) -> String {
    let rows: Vec<[String; 3]> = plan
        .decisions
        .iter()
        .map(|d| {
            let subject = match &d.subject {
                Subject::Task {
                    container_id,
                    task_id,
                } => format!("{container_id} ({task_id})"),
                Subject::Container { name } => name.clone(),
            };
            [subject, d.action.name().to_owned(), d.why.clone()]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(6);
    let (w0, w1) = (width(0), width(1));
    let mut out = format!("{:w0$}  {:w1$}  WHY\n", "CONTAINER", "ACTION");
    for [subject, action, why] in &rows {
        out.push_str(&format!("{subject:w0$}  {action:w1$}  {why}\n"));
    }
    if rows.is_empty() {
        out.push_str("(nothing to recover)\n");
    }
    out
}

/// Rebuilds the entries of every recorded container that can be planned, then carries
/// out each decision. Failures are logged per decision: one container's trouble does not
/// stop the recovery of the others. Returns the tasks whose decision was deferred (Docker
/// could not say what became of their container), for [`retry_deferred`].
pub async fn act(
    c: &Arc<Containerizer>,
    plan: Plan,
    records: HashMap<Uuid, Gathered>,
) -> BTreeSet<Uuid> {
    for (id, g) in &records {
        if let Some(launch) = &g.launch {
            c.restore(*id, launch, &g.history, &g.statuses);
        }
    }
    let deferred = plan
        .decisions
        .iter()
        .filter(|d| d.action == Action::Defer)
        .filter_map(|d| d.subject.container_id())
        .collect();
    carry_out(c, plan.decisions, records).await;
    deferred
}

/// Carries out decisions side by side: their history entries share the store's flushes
/// (group commit) instead of paying one flush each, and a slow stop does not hold up the
/// others.
async fn carry_out(
    c: &Arc<Containerizer>,
    decisions: Vec<Decision>,
    records: HashMap<Uuid, Gathered>,
) {
    let records = Arc::new(records);
    let mut acting = tokio::task::JoinSet::new();
    for decision in decisions {
        tracing::info!(
            subject = ?decision.subject,
            action = decision.action.name(),
            why = %decision.why,
            "recovery"
        );
        let c = c.clone();
        let records = records.clone();
        acting.spawn(async move {
            match &decision.subject {
                Subject::Task { container_id, .. } => {
                    let gathered = records.get(container_id);
                    act_on_task(&c, *container_id, &decision, gathered, true).await;
                }
                Subject::Container { name } => {
                    act_on_container(&c, name, &decision.action).await;
                }
            }
        });
    }
    while let Some(done) = acting.join_next().await {
        if let Err(e) = done {
            tracing::error!("a recovery action failed: {e}");
        }
    }
}

/// First wait before deciding deferred tasks again; doubled up to [`RETRY_MAX`].
const RETRY_START: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Whether a decision may be carried out while the agent serves. Those that start
/// something (a resumed launch, `docker start -a` to reattach output) wait for the next
/// start, when no kill can come between the decision and the start: a kill that stopped
/// the container just before would be undone, and the task would run again.
fn safe_while_serving(action: &Action) -> bool {
    match action {
        Action::Adopt { watch, .. } => !matches!(
            watch,
            Watch::Container {
                reattach_output: true
            }
        ),
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
fn newest_fact(history: &[berth_state::PhaseRecord]) -> Option<u64> {
    history
        .iter()
        .rev()
        .find(|r| !matches!(r.phase, berth_state::Phase::Decision { .. }))
        .map(|r| r.seq)
}

/// Decides the deferred tasks again while the agent serves, with backoff, until Docker
/// can say what became of each: the views are gathered and planned afresh, and only the
/// decisions about those tasks that are no longer deferred, that start nothing
/// ([`safe_while_serving`]) and that were made from the task's current history are
/// carried out. A task that ended or left the store meanwhile is dropped.
pub async fn retry_deferred(
    c: Arc<Containerizer>,
    recover: Recover,
    kill_orphans: bool,
    mut deferred: BTreeSet<Uuid>,
) {
    let mut wait = RETRY_START;
    while !deferred.is_empty() {
        tracing::info!(
            tasks = deferred.len(),
            "deciding deferred tasks again in {wait:?}"
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
        deferred.retain(|id| {
            c.entry(*id)
                .is_some_and(|e| !e.view.borrow().state.is_terminal())
        });
        let gathering =
            match super::gather::gather(c.store(), &c.settings, c.docker(), recover, kill_orphans)
                .await
            {
                Ok(g) => g,
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
        let records = Arc::new(gathering.records);
        for decision in decided {
            let Some(id) = decision.subject.container_id() else {
                continue;
            };
            let Some(entry) = c.entry(id) else { continue };
            let planned_from = records.get(&id).and_then(|g| newest_fact(&g.history));
            {
                // Checked and recorded under the task's lock, so that a kill or a report
                // cannot slip between the check and the decision's record.
                let _deciding = entry.deciding.lock().await;
                let now = c.store().history(id).map(|h| newest_fact(&h));
                if entry.view.borrow().state.is_terminal() || now.ok() != Some(planned_from) {
                    tracing::info!(%id, "the task moved on while it was decided again; deciding once more later");
                    continue;
                }
                if let Some(phase) = decision.history_entry() {
                    if let Err(e) = c.record_decision(id, phase).await {
                        tracing::error!(%id, "cannot record the recovery decision, so not acting on it: {e}");
                        continue;
                    }
                }
            }
            deferred.remove(&id);
            tracing::info!(
                %id,
                action = decision.action.name(),
                why = %decision.why,
                "deferred task decided"
            );
            act_on_task(&c, id, &decision, records.get(&id), false).await;
        }
    }
}

async fn act_on_task(
    c: &Arc<Containerizer>,
    id: Uuid,
    decision: &Decision,
    gathered: Option<&Gathered>,
    record: bool,
) {
    if let Some(phase) = decision.history_entry().filter(|_| record) {
        if let Err(e) = c.record_decision(id, phase).await {
            tracing::error!(%id, "cannot record the recovery decision, so not acting on it: {e}");
            return;
        }
    }
    let launch = gathered.and_then(|g| g.launch.clone());
    let name = launch.as_ref().and_then(|l| match &l.kind {
        LaunchKind::DockerTask { run, .. } | LaunchKind::DockerExecutor { run, .. } => {
            Some(run.name.clone())
        }
        LaunchKind::Process { .. } => None,
    });
    let max_completion =
        |kill_at_ms: &Option<u64>| kill_at_ms.zip(launch.as_ref().and_then(|l| l.max_completion));
    let why = decision.why.clone();
    match &decision.action {
        Action::Adopt { watch, kill_at_ms } => match (watch, name) {
            (Watch::Container { reattach_output }, Some(name)) => {
                if let Err(e) =
                    c.adopt_container(id, name, *reattach_output, max_completion(kill_at_ms))
                {
                    tracing::error!(%id, "cannot watch the re-adopted container: {e}");
                }
            }
            _ => c.adopt(id, max_completion(kill_at_ms)),
        },
        Action::Resume {
            from,
            remove_first,
            kill_at_ms,
        } => {
            let Some(launch) = launch.clone() else { return };
            let step = match from {
                ResumeFrom::Fetching => LaunchStep::Fetch,
                ResumeFrom::Pulling => LaunchStep::Pull,
                ResumeFrom::ExecutorStarting => LaunchStep::Executor,
            };
            c.resume(id, launch, step, remove_first, max_completion(kill_at_ms))
                .await;
        }
        Action::FinishKill {
            outcome,
            grace_left_ms,
            stop,
            signal,
            await_executor,
        } => {
            c.finish_kill(
                id,
                outcome.state,
                &outcome.reason,
                why,
                Duration::from_millis(*grace_left_ms),
                stop,
                signal.as_ref(),
                *await_executor,
            )
            .await;
        }
        Action::End {
            outcome,
            exit_code,
            stop,
        } => {
            c.end(id, outcome.state, &outcome.reason, why, *exit_code, stop)
                .await;
        }
        Action::Clean {
            outcome,
            grace_left_ms,
            stop,
            signal,
            remove,
        } => {
            c.clean(
                id,
                outcome.as_ref().map(|o| (o.state, o.reason.as_str())),
                why,
                grace_left_ms.map(Duration::from_millis),
                stop,
                signal.as_ref(),
                remove,
            )
            .await;
        }
        Action::RemoveAt {
            at_ms,
            stop,
            remove,
            answer_executor: _,
        } => c.remove_at(id, *at_ms, stop, remove.clone()).await,
        Action::Done { remove } => c.remove_now(id, remove).await,
        Action::Defer | Action::Hold => {
            tracing::warn!(%id, "left as it is: {why}");
        }
        Action::LeaveAlone | Action::RemoveOrphan { .. } | Action::ReportOrphan => {
            tracing::warn!(%id, action = decision.action.name(), "not an action for a recorded task");
        }
    }
}

async fn act_on_container(c: &Containerizer, name: &str, action: &Action) {
    match action {
        Action::RemoveOrphan { stop } => {
            let docker = c.docker();
            if *stop {
                match docker.stop(name, Duration::ZERO).await {
                    Ok(()) | Err(DockerError::NoSuchContainer(_)) => {}
                    Err(e) => tracing::warn!(container = name, "cannot stop the orphan: {e}"),
                }
            }
            if let Err(e) = docker.rm(name).await {
                tracing::warn!(container = name, "cannot remove the orphan: {e}");
            }
        }
        Action::ReportOrphan | Action::LeaveAlone => {}
        other => {
            tracing::warn!(
                container = name,
                action = other.name(),
                "not an action for a container without a record"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_state::{Phase, PhaseRecord};

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
                false,
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

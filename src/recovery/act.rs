//! The last step of recovery: carrying out a plan, one decision at a time. A decision
//! about a task is recorded in its history before anything is done for it, so that a
//! crash in the middle leaves the decision visible and the next start decides again from
//! what is there.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::gather::Gathered;
use super::plan::{Action, Decision, Plan, ResumeFrom, Subject, Watch};
use crate::containerizer::launch::LaunchStep;
use crate::containerizer::Containerizer;
use crate::docker::DockerError;
use crate::task::LaunchKind;

/// A plan as a table, one decision per line, for the log and `berth recover --dry-run`.
/// Pure.
pub fn render(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
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
            vec![subject, d.action.name().to_owned(), d.why.to_string()]
        })
        .collect();
    let mut out = berth_state::table::render(&["CONTAINER", "ACTION", "WHY"], &rows);
    if rows.is_empty() {
        out.push_str("(nothing to recover)\n");
    }
    out
}

/// A plan as JSON for `berth recover --dry-run --json`: one object per decision, with
/// the recorded container and task, or the Docker container's name for one without a
/// record, the action's name and why. Pure.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    plan.decisions
        .iter()
        .map(|d| {
            let mut decision = match &d.subject {
                Subject::Task {
                    container_id,
                    task_id,
                } => serde_json::json!({"container_id": container_id, "task_id": task_id}),
                Subject::Container { name } => serde_json::json!({"docker_name": name}),
            };
            decision["action"] = d.action.name().into();
            decision["why"] = d.why.to_string().into();
            decision
        })
        .collect()
}

/// Rebuilds the entries of every recorded container that can be planned, then carries
/// out each decision. Failures are logged per decision: one container's trouble does not
/// stop the recovery of the others. Returns the tasks whose decision was deferred (Docker
/// could not say what became of their container), for
/// [`super::retry::retry_deferred`].
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
                    // Counted here: no history takes these.
                    c.metrics().recovery_decided(decision.action.name());
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

pub(super) async fn act_on_task(
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
    let why = decision.why.to_string();
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
            sweep,
        } => {
            if let Some(executor) = sweep {
                c.kill_session_of(id, executor);
            }
            c.end(id, outcome.state, &outcome.reason, why, *exit_code, stop)
                .await;
        }
        Action::Clean {
            outcome,
            grace_left_ms,
            stop,
            signal,
            sweep,
            remove,
        } => {
            if let Some(executor) = sweep {
                c.kill_session_of(id, executor);
            }
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
    use crate::docker::name::NameError;
    use crate::recovery::plan::Ground;

    #[test]
    fn a_plan_prints_as_an_aligned_table_or_json() {
        let id = Uuid::nil();
        let plan = Plan {
            decisions: vec![
                Decision {
                    subject: Subject::Task {
                        container_id: id,
                        task_id: "a-task-id-longer-than-most".into(),
                    },
                    action: Action::Defer,
                    why: Ground::ExecutorUnchecked {
                        executor: "its executor (pid 7) could not be checked: EACCES".into(),
                    }
                    .into(),
                },
                Decision {
                    subject: Subject::Container { name: "web".into() },
                    action: Action::LeaveAlone,
                    why: Ground::NotBerths {
                        name: "web".into(),
                        error: NameError::NoPrefix("/web".into()),
                    }
                    .into(),
                },
            ],
        };
        assert_eq!(
            render(&plan),
            "\
CONTAINER                                                          ACTION       WHY
00000000-0000-0000-0000-000000000000 (a-task-id-longer-than-most)  defer        its executor (pid 7) could not be checked: EACCES; berth decides nothing about a task whose executor it cannot check, and asks again
web                                                                leave alone  container web: name \"/web\" does not start with \"mesos-\", so it is not berth's; berth never touches it
"
        );
        assert_eq!(
            render(&Plan { decisions: vec![] }),
            "CONTAINER  ACTION  WHY\n(nothing to recover)\n"
        );
        assert_eq!(
            plan_json(&plan),
            serde_json::json!([
                {"container_id": id, "task_id": "a-task-id-longer-than-most", "action": "defer", "why": "its executor (pid 7) could not be checked: EACCES; berth decides nothing about a task whose executor it cannot check, and asks again"},
                {"docker_name": "web", "action": "leave alone", "why": "container web: name \"/web\" does not start with \"mesos-\", so it is not berth's; berth never touches it"},
            ])
        );
    }
}

//! A task's end recorded (`Terminated`) and its removal scheduled: from a report, a
//! kill, a recovery decision, or a launch step that failed or was killed. Apart because
//! every path to an end goes through here, so that one rule decides what a kill recorded
//! meanwhile makes of it, and a record that fails is tried again until the store holds it.

use berth_state::{now_ms, Phase, StoreError};
use uuid::Uuid;

use super::kill::KillRequest;
use super::launch::BACKOFF;
use super::{Containerizer, Entry};
use crate::model::reason::REASON_TASK_KILLED_DURING_LAUNCH;
use crate::model::TaskState;

impl Containerizer {
    pub(super) async fn killed_during_launch(&self, id: Uuid, k: KillRequest, doing: &str) {
        let message = format!("{} while {doing}; the task was never started", k.message);
        self.terminate(id, k.state, launch_reason(&k.reason), message, None)
            .await;
    }

    /// Records the end of a task and schedules its removal. A record that fails is tried
    /// again with backoff until it succeeds; until then the task shows what was recorded
    /// before, never an end the store does not hold.
    pub(crate) async fn terminate(
        &self,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        exit_code: Option<i32>,
    ) {
        self.end_task(id, state, reason, message, exit_code, EndCause::Decided)
            .await;
    }

    /// Ends a task whose launch step failed (FAILED, `reason`), unless a kill was recorded
    /// meanwhile: a kill answered KILLING decides the end then.
    pub(crate) async fn fail_launch_step(&self, id: Uuid, reason: &str, message: String) {
        self.end_task(
            id,
            TaskState::Failed,
            reason,
            message,
            None,
            EndCause::LaunchStepFailed,
        )
        .await;
    }

    async fn end_task(
        &self,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        exit_code: Option<i32>,
        cause: EndCause,
    ) {
        let Some(entry) = self.entry(id) else { return };
        let mut wait = BACKOFF.0;
        loop {
            let recorded = {
                let _deciding = entry.deciding.lock().await;
                self.terminate_decided(&entry, id, state, reason, message.clone(), exit_code, cause)
                    .await
            };
            match recorded {
                Ok(()) => return,
                Err(e @ StoreError::NotDurable(_)) => {
                    // Trying again cannot help: the store takes no write after a failed one
                    // (the agent stops, and the next start decides from what it holds).
                    tracing::error!(%id, "cannot record the end of the task: {e}");
                    return;
                }
                Err(e @ (StoreError::Transition { .. } | StoreError::UnknownContainer(_))) => {
                    // The history does not take this end, so the task will not come to it:
                    // a kill no longer waits for it (nor answers that the task is ending).
                    tracing::error!(%id, "cannot record the end of the task: {e}");
                    let _deciding = entry.deciding.lock().await;
                    *entry.ending.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    return;
                }
                Err(e) => {
                    tracing::error!(%id, "cannot record the end of the task ({e}); it shows its recorded state until this succeeds; trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = crate::backoff::doubled(wait, BACKOFF.1);
                }
            }
        }
    }

    /// [`Self::terminate`] with the entry's `deciding` lock already held, tried once.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn terminate_decided(
        &self,
        entry: &Entry,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        exit_code: Option<i32>,
        cause: EndCause,
    ) -> Result<(), StoreError> {
        if entry.view.borrow().state.is_terminal() {
            return Ok(());
        }
        let (state, reason, message) = match cause {
            EndCause::LaunchStepFailed => {
                let kill = entry.kill.borrow();
                end_under_kill(kill.as_ref(), state, reason, message)
            }
            EndCause::Decided => (state, reason.to_owned(), message),
        };
        let reason = reason.as_str();
        let delay = u64::try_from(self.settings.remove_delay.as_millis()).unwrap_or(u64::MAX);
        let remove_at_ms = now_ms().saturating_add(delay);
        self.record(
            id,
            Phase::Terminated {
                state,
                reason: reason.to_owned(),
                message: message.clone(),
                exit_code,
                remove_at_ms,
            },
        )
        .await?;
        self.metrics.task_ended(state, reason);
        entry.view.send_modify(|v| {
            if v.advance(state, Some(reason.to_owned()), Some(message))
                .is_ok()
            {
                v.exit_code = exit_code;
                v.pid = None;
            }
        });
        let mut names: Vec<String> = entry.view.borrow().docker_name.iter().cloned().collect();
        if entry
            .executor_box
            .load(std::sync::atomic::Ordering::Acquire)
        {
            names.push(
                crate::docker::ContainerName::executor(&self.agent_id().to_string(), id)
                    .to_string(),
            );
        }
        self.schedule_removal(id, names, remove_at_ms);
        Ok(())
    }
}

/// The reason a kill ends a task with when it came during the launch: nothing started.
fn launch_reason(reason: &str) -> &str {
    if reason == super::kill::REASON_TASK_KILLED {
        REASON_TASK_KILLED_DURING_LAUNCH
    } else {
        reason
    }
}

/// What an end comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum EndCause {
    /// A launch step failed: a kill recorded meanwhile decides the end.
    LaunchStepFailed,
    /// Anything else, which took a recorded kill into account already (an executor's
    /// report, a recovery decision, a kill's own end).
    Decided,
}

/// The end recorded for a task whose launch step failed, given the end it came to (`state`, `reason`,
/// `message`) and the kill recorded for it, if any: a kill answered KILLING decides the
/// end, as a kill during the launch, and the message says how the launch failed. Pure.
fn end_under_kill(
    kill: Option<&KillRequest>,
    state: TaskState,
    reason: &str,
    message: String,
) -> (TaskState, String, String) {
    let Some(k) = kill else {
        return (state, reason.to_owned(), message);
    };
    let the_kills = state == k.state && (reason == k.reason || reason == launch_reason(&k.reason));
    if the_kills {
        return (state, reason.to_owned(), message);
    }
    (
        k.state,
        launch_reason(&k.reason).to_owned(),
        format!(
            "{} while launching; the launch failed meanwhile: {message}",
            k.message
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::containerizer::kill::{REASON_MAX_COMPLETION_TIME_REACHED, REASON_TASK_KILLED};
    use crate::containerizer::launch::{REASON_CONTAINER_LAUNCH_FAILED, REASON_FETCHER_FAILED};

    #[test]
    fn a_recorded_kill_decides_the_end_a_failed_launch_step_comes_to() {
        let kill = |state, reason: &str, message: &str| KillRequest {
            grace: Duration::ZERO,
            state,
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        let on_request = kill(TaskState::Killed, REASON_TASK_KILLED, "killed on request");
        let deadline = kill(
            TaskState::Failed,
            REASON_MAX_COMPLETION_TIME_REACHED,
            "the task ran longer than its max_completion_time (1secs)",
        );
        let pull_failed = "failed to pull image x: denied";
        let cases = [
            // No kill: the end stands.
            (
                None,
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed),
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed.to_owned()),
            ),
            // The kill's own end, as a report or a killed launch step gives it: stands.
            (
                Some(&on_request),
                (TaskState::Killed, REASON_TASK_KILLED, "killed on request"),
                (TaskState::Killed, REASON_TASK_KILLED, "killed on request".to_owned()),
            ),
            (
                Some(&on_request),
                (TaskState::Killed, REASON_TASK_KILLED_DURING_LAUNCH, "killed while pulling"),
                (
                    TaskState::Killed,
                    REASON_TASK_KILLED_DURING_LAUNCH,
                    "killed while pulling".to_owned(),
                ),
            ),
            // A launch step that failed after the kill was answered KILLING.
            (
                Some(&on_request),
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed),
                (
                    TaskState::Killed,
                    REASON_TASK_KILLED_DURING_LAUNCH,
                    format!("killed on request while launching; the launch failed meanwhile: {pull_failed}"),
                ),
            ),
            (
                Some(&on_request),
                (TaskState::Failed, REASON_FETCHER_FAILED, "404"),
                (
                    TaskState::Killed,
                    REASON_TASK_KILLED_DURING_LAUNCH,
                    "killed on request while launching; the launch failed meanwhile: 404"
                        .to_owned(),
                ),
            ),
            // A max_completion_time kill keeps its own state and reason.
            (
                Some(&deadline),
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed),
                (
                    TaskState::Failed,
                    REASON_MAX_COMPLETION_TIME_REACHED,
                    format!("the task ran longer than its max_completion_time (1secs) while launching; the launch failed meanwhile: {pull_failed}"),
                ),
            ),
        ];
        for (kill, (state, reason, message), (want_state, want_reason, want_message)) in cases {
            let (got_state, got_reason, got_message) =
                end_under_kill(kill, state, reason, message.to_owned());
            assert_eq!(
                (got_state, got_reason.as_str(), got_message.as_str()),
                (want_state, want_reason, want_message.as_str()),
                "{kill:?}: {state:?} {reason} {message}"
            );
        }
    }
}

//! After a restart: the in-memory entries rebuilt from the store, and the actions a
//! recovery plan asks of the containerizer (adopt, resume, finish a kill, end, remove).
//! What to do is decided in `crate::recovery`; this only does it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_state::{Identity, Phase, PhaseRecord, StatusRecord};
use uuid::Uuid;

use super::kill::KillRequest;
use super::launch::LaunchStep;
use super::{Containerizer, RequestError, TaskView};
use crate::executor::outcome::REASON_CONTAINER_LAUNCH_FAILED;
use crate::model::TaskState;
use crate::task::{self, Launch, LaunchContext};

/// A container's entry as its records leave it. Pure.
pub fn view_from_history(
    id: Uuid,
    run: Option<&crate::docker::RunSpec>,
    sandbox: PathBuf,
    history: &[PhaseRecord],
) -> TaskView {
    let mut view = TaskView {
        container_id: id,
        task_id: String::new(),
        state: TaskState::Staging,
        reason: None,
        message: None,
        exit_code: None,
        docker_name: run.map(|r| r.name.clone()),
        image: run.map(|r| r.image.clone()),
        sandbox,
        pid: None,
        accepted_at_ms: history.first().map_or(0, |r| r.at_ms),
    };
    for record in history {
        if let Phase::Accepted { task_id, .. } = &record.phase {
            view.task_id.clone_from(task_id);
        }
        let Some(state) = crate::model::phase::announced(&record.phase) else {
            continue;
        };
        match &record.phase {
            Phase::Running { pid, .. } => {
                if view.advance(state, None, None).is_ok() {
                    view.pid = *pid;
                }
            }
            Phase::RunningProcess { identity } => {
                if view.advance(state, None, None).is_ok() {
                    view.pid = Some(identity.pid);
                }
            }
            Phase::Killing { reason, .. } => {
                // Refused after an end: the view keeps the end.
                let _ = view.advance(state, None, Some(reason.clone()));
            }
            Phase::Terminated {
                reason,
                message,
                exit_code,
                ..
            } => {
                if view
                    .advance(state, Some(reason.clone()), Some(message.clone()))
                    .is_ok()
                {
                    view.exit_code = *exit_code;
                    view.pid = None;
                }
            }
            Phase::Accepted { .. }
            | Phase::ExecutorStarting { .. }
            | Phase::ExecutorContainerStarting { .. } => {
                // Refused once the view moved past it: it keeps the later state.
                let _ = view.advance(state, None, None);
            }
            // They announce no state: `announced` said so above.
            Phase::Fetching | Phase::Pulling { .. } | Phase::Removed | Phase::Decision { .. } => {}
        }
    }
    view
}

/// The newest report number the agent acknowledged: an executor that resends a report
/// it saw acknowledged is answered without applying it twice; one not acknowledged is
/// applied (again), since the crash may have come before it took effect. Pure.
pub fn last_acknowledged(statuses: &[StatusRecord]) -> u64 {
    statuses
        .iter()
        .filter(|s| s.acknowledged)
        .map(|s| s.report_seq)
        .max()
        .unwrap_or(0)
}

/// The newest executor identity recorded. Pure.
pub fn recorded_executor(history: &[PhaseRecord]) -> Option<Identity> {
    history.iter().rev().find_map(|r| match &r.phase {
        Phase::ExecutorStarting { identity }
        | Phase::ExecutorContainerStarting { identity, .. } => Some(identity.clone()),
        _ => None,
    })
}

/// Whether the newest executor recorded runs in a container of its own
/// (`--docker_mesos_image`), which is then the task's to remove with it. Pure.
pub fn executor_in_container(history: &[PhaseRecord]) -> bool {
    history.iter().rev().find_map(|r| match &r.phase {
        Phase::ExecutorStarting { .. } => Some(false),
        Phase::ExecutorContainerStarting { .. } => Some(true),
        _ => None,
    }) == Some(true)
}

/// What recovery's gathering reads of the agent's flags: where the records and sandboxes
/// are, which container is the agent's own, how long Docker is waited for, and what a
/// recorded task is planned again with. The agent's come from [`Settings::gathering`](super::Settings::gathering);
/// `berth recover --dry-run` builds its own from its flags.
#[derive(Debug, Clone)]
pub struct GatherFlags {
    /// `--work_dir`.
    pub work_dir: PathBuf,
    /// The Docker container the agent runs in, when it found it at start; otherwise the
    /// one `<work_dir>/agent-container` names, if any, is taken.
    pub own_container: Option<String>,
    /// `--recovery_timeout`: how long Docker's listing is retried, and what an
    /// executor-mode container is told.
    pub recovery_timeout: Duration,
    /// `--sandbox_directory`.
    pub sandbox_directory: PathBuf,
    /// `--containerizers`.
    pub containerizers: Vec<crate::task::ContainerizerKind>,
    /// `--docker_stop_timeout`: the grace of a task without a kill policy.
    pub stop_timeout: Duration,
    /// The bound on Docker's own log of task containers.
    pub docker_log: Option<crate::docker::argv::LogLimit>,
    /// `--switch_user`.
    pub switch_user: bool,
}

impl GatherFlags {
    /// The sandbox of a container.
    pub fn sandbox(&self, id: Uuid) -> PathBuf {
        super::sandbox(&self.work_dir, id)
    }
}

/// Plans a recorded task's launch again from its stored TaskInfo (the same id, so the
/// same container name and sandbox). Pure.
pub fn replan(
    flags: &GatherFlags,
    agent_id: Uuid,
    id: Uuid,
    history: &[PhaseRecord],
) -> Result<Launch, RequestError> {
    let json = history
        .iter()
        .find_map(|r| match &r.phase {
            Phase::Accepted { task_json, .. } => Some(task_json.clone()),
            _ => None,
        })
        .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
    let parsed = task::parse(json.as_bytes())?;
    let agent_id = agent_id.to_string();
    let sandbox = flags.sandbox(id);
    Ok(task::plan(
        &parsed.task,
        &LaunchContext {
            agent_id: &agent_id,
            container_id: id,
            sandbox: &sandbox,
            sandbox_directory: &flags.sandbox_directory,
            containerizers: &flags.containerizers,
            default_grace: flags.stop_timeout,
            docker_log: flags.docker_log,
            switch_user: flags.switch_user,
            recovery_timeout: flags.recovery_timeout,
        },
    )?)
}

impl Containerizer {
    /// Rebuilds the entry of a recorded container, so that the API lists it, waits and
    /// kills work on it, and its executor's reports are answered.
    pub fn restore(
        &self,
        id: Uuid,
        launch: &Launch,
        history: &[PhaseRecord],
        statuses: &[StatusRecord],
    ) {
        let view = view_from_history(
            id,
            launch.kind.docker_run(),
            self.settings.sandbox(id),
            history,
        );
        let ended = view.state.is_terminal();
        let entry = self.insert_entry(view, launch.grace);
        // A recorded kill holds from the start: a report that comes before the plan's
        // decision must not record RUNNING for a task being killed, but stop it.
        let killing = history.iter().find_map(|r| match &r.phase {
            Phase::Killing {
                grace_ms, reason, ..
            } => Some(KillRequest {
                grace: Duration::from_millis(*grace_ms),
                state: TaskState::Killed,
                reason: super::kill::REASON_TASK_KILLED.to_owned(),
                message: reason.clone(),
            }),
            _ => None,
        });
        if !ended {
            entry.kill.send_replace(killing);
        }
        *entry.last_report.lock().unwrap_or_else(|p| p.into_inner()) = last_acknowledged(statuses);
        *entry.executor.lock().unwrap_or_else(|p| p.into_inner()) = recorded_executor(history);
        if executor_in_container(history) {
            entry
                .executor_box
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Records a recovery decision in the container's history.
    pub async fn record_decision(&self, id: Uuid, phase: Phase) -> Result<(), RequestError> {
        let action = match &phase {
            Phase::Decision { action, .. } => Some(action.clone()),
            _ => None,
        };
        self.record(id, phase).await?;
        if let Some(action) = action {
            self.metrics.recovery_decided(&action);
        }
        Ok(())
    }

    /// Re-adopts a task whose berth executor lives: it resends what was not answered.
    pub fn adopt(self: &Arc<Self>, id: Uuid, max_completion: Option<(u64, Duration)>) {
        self.arm_max_completion(id, max_completion);
        self.watch_recorded_executor(id);
    }

    /// Re-adopts an executor-mode container. With `reattach`, the agent carries its output
    /// on from where the sandbox's files stand (the process that did died), starting
    /// nothing; otherwise that process still does, and the agent only watches it.
    pub fn adopt_container(
        self: &Arc<Self>,
        id: Uuid,
        name: String,
        reattach: bool,
        max_completion: Option<(u64, Duration)>,
    ) -> Result<(), RequestError> {
        self.arm_max_completion(id, max_completion);
        let child = if reattach {
            Some(self.carry_on(id, name.clone()))
        } else {
            None
        };
        self.clone().monitor_executor_container(id, name, child);
        Ok(())
    }

    /// Launches a recorded task again from `from`, after removing `remove_first`. A
    /// container that cannot be removed stops the launch (FAILED, saying why): the task
    /// must never have two.
    pub async fn resume(
        self: &Arc<Self>,
        id: Uuid,
        launch: Launch,
        from: LaunchStep,
        remove_first: &[String],
        max_completion: Option<(u64, Duration)>,
    ) {
        if let Err(why) = self.remove_all(remove_first).await {
            self.terminate(
                id,
                TaskState::Failed,
                REASON_CONTAINER_LAUNCH_FAILED,
                format!("the launch was not resumed: {why}, and the task must never have two containers"),
                None,
            )
            .await;
            return;
        }
        self.arm_max_completion(id, max_completion);
        self.spawn_pipeline(id, launch, from);
    }

    /// Carries out a kill recorded before the restart: the remaining grace, `docker stop`
    /// of `stop`, SIGTERM to `signal` through a pidfd after its identity is checked
    /// again. With `await_executor`, the executor's last report ends the task; otherwise
    /// the agent records the end once everything is stopped.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_kill(
        self: &Arc<Self>,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        grace: Duration,
        stop: &[String],
        signal: Option<&Identity>,
        await_executor: bool,
    ) {
        let Some(entry) = self.entry(id) else { return };
        entry.kill.send_replace(Some(KillRequest {
            grace,
            state,
            reason: reason.to_owned(),
            message: message.clone(),
        }));
        if let Some(identity) = signal {
            super::kill::signal_executor(id, identity);
        }
        if await_executor {
            // Its report ends the task; if it dies first, the decision about dead
            // executors does.
            self.watch_recorded_executor(id);
        }
        let stopped = self.stop_all(id, stop, grace).await;
        if !await_executor {
            self.terminate(id, state, reason, with_stop_failure(message, stopped), None)
                .await;
        }
    }

    /// Records the task's end after stopping `stop`.
    pub async fn end(
        self: &Arc<Self>,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        exit_code: Option<i32>,
        stop: &[String],
    ) {
        let grace = self.entry(id).map(|e| e.grace).unwrap_or_default();
        let stopped = self.stop_all(id, stop, grace).await;
        let message = with_stop_failure(message, stopped);
        self.terminate(id, state, reason, message, exit_code).await;
    }

    /// Stops `stop` now and removes `remove` at the stored due time.
    pub async fn remove_at(&self, id: Uuid, at_ms: u64, stop: &[String], remove: Vec<String>) {
        self.stop_all(id, stop, Duration::ZERO).await;
        self.schedule_removal(id, remove, at_ms);
    }

    /// `--recover=cleanup`: stops and signals everything of the task, records its end
    /// (unless it had ended), removes its containers now and records `Removed`.
    #[allow(clippy::too_many_arguments)]
    pub async fn clean(
        self: &Arc<Self>,
        id: Uuid,
        outcome: Option<(TaskState, &str)>,
        message: String,
        grace: Option<Duration>,
        stop: &[String],
        signal: Option<&Identity>,
        remove: &[String],
    ) {
        let grace = grace.unwrap_or_else(|| self.entry(id).map(|e| e.grace).unwrap_or_default());
        if let Some(identity) = signal {
            super::kill::signal_executor(id, identity);
        }
        let stopped = self.stop_all(id, stop, grace).await;
        if let Some((state, reason)) = outcome {
            self.terminate(id, state, reason, with_stop_failure(message, stopped), None)
                .await;
        }
        self.remove_now(id, remove).await;
    }

    /// Removes the containers now and records `Removed` (once). What cannot be removed
    /// is left to the next start, whose plan removes it again.
    pub async fn remove_now(&self, id: Uuid, remove: &[String]) {
        if let Err(why) = self.remove_all(remove).await {
            tracing::warn!(%id, "{why}; the next start removes it");
            return;
        }
        let removed = self
            .store
            .container(id)
            .ok()
            .flatten()
            .is_some_and(|s| matches!(s.last.phase, Phase::Removed));
        if !removed {
            if let Err(e) = self.record(id, Phase::Removed).await {
                tracing::warn!(%id, "cannot record the removal: {e}");
            }
        }
    }

    /// `docker rm -f` of each, each tried [`ATTEMPTS`] times.
    async fn remove_all(&self, names: &[String]) -> Result<(), String> {
        for name in names {
            let mut wait = RETRY;
            let mut tries = 1;
            while let Err(e) = self.docker.rm(name).await {
                if tries == ATTEMPTS {
                    return Err(format!("container {name} could not be removed ({e})"));
                }
                tokio::time::sleep(wait).await;
                wait = crate::backoff::doubled(wait, RETRY_MAX);
                tries += 1;
            }
        }
        Ok(())
    }

    /// Stops each (retried, escalated; see `stop_container`); the failures, by name.
    async fn stop_all(&self, id: Uuid, names: &[String], grace: Duration) -> Vec<String> {
        let mut failed = Vec::new();
        for name in names {
            if let Err(why) = self
                .stop_container(id, name, grace, None, Some(ATTEMPTS))
                .await
            {
                tracing::warn!(%id, "cannot stop {name}: {why}");
                failed.push(why);
            }
        }
        failed
    }
}

/// How often a recovery action tries a Docker call before it says it could not.
const ATTEMPTS: u32 = 3;
/// First wait between those tries; doubled each time, up to [`RETRY_MAX`].
const RETRY: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(4);

/// An end's message, with the stops that failed: an end is recorded either once its
/// containers are stopped or saying why they could not be. Pure.
fn with_stop_failure(message: String, failed: Vec<String>) -> String {
    if failed.is_empty() {
        return message;
    }
    format!(
        "{message}; but {}: its removal at the due time tries again",
        failed.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, phase: Phase) -> PhaseRecord {
        PhaseRecord {
            seq,
            at_ms: seq,
            container_id: Uuid::nil(),
            phase,
        }
    }

    fn ended_as(state: TaskState) -> TaskView {
        let history = [
            record(
                1,
                Phase::Accepted {
                    task_id: "t".into(),
                    task_json: "{}".into(),
                    kill_at_ms: None,
                },
            ),
            record(
                2,
                Phase::Terminated {
                    state,
                    reason: "REASON_COMMAND_EXITED".into(),
                    message: "command exited with status 0".into(),
                    exit_code: Some(0),
                    remove_at_ms: 0,
                },
            ),
        ];
        view_from_history(Uuid::nil(), None, "/sandbox".into(), &history)
    }

    #[test]
    fn a_recorded_end_is_shown_as_recorded() {
        // `REASON_COMMAND_EXITED`, as earlier berths wrote it, is a reason Mesos does not
        // have and sets none for.
        let view = ended_as(TaskState::Finished);
        assert_eq!(view.state, TaskState::Finished);
        assert_eq!(view.reason, None);
        assert_eq!(view.exit_code, Some(0));
    }
}

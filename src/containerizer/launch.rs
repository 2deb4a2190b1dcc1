//! Admission of a task: the TaskInfo parsed and checked, its user looked up, its task id
//! reserved, the sandbox made and `Accepted` recorded, the entry inserted, then the
//! pipeline (`pipeline.rs`) started in the background. Kept apart from the steps that
//! follow because nothing here may leave a trace when it refuses: a refused task has no
//! record, no sandbox and no entry.
//!
//! The launch's names used elsewhere (`Launched`, `LaunchStep`, its reasons) stay here:
//! the CLI, recovery and the benches name them by this path.

use std::sync::Arc;
use std::time::Duration;

use berth_state::{now_ms, Phase};
use tokio::sync::watch;
use uuid::Uuid;

use super::kill::KillRequest;
use super::{Containerizer, Entry, RequestError, TaskView};
use crate::model::TaskState;
use crate::run_as::{LookupError, RunAs};
use crate::task::{self, Launch, LaunchContext, Parsed, TaskError};

/// Mesos's reason for every launch failure, a fetch's included (Mesos's fetcher is part of
/// its containerizer's launch).
pub(crate) use crate::model::reason::REASON_CONTAINER_LAUNCH_FAILED;
pub(crate) const REASON_FETCHER_FAILED: &str = REASON_CONTAINER_LAUNCH_FAILED;
pub(crate) use crate::model::reason::REASON_EXECUTOR_REGISTRATION_TIMEOUT;

/// `executor_box.rs` opens its executor's log through this path.
pub(super) use super::executor_start::open_in;

/// The answer to a launch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Launched {
    /// The new container's id.
    pub container_id: Uuid,
    /// Fields of the TaskInfo that berth ignored.
    pub warnings: Vec<String>,
}

/// Where a launch pipeline starts: a new launch fetches; a resumed one redoes the phase
/// it was interrupted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchStep {
    /// Fetch, pull, start the executor.
    Fetch,
    /// Pull, start the executor.
    Pull,
    /// Start the executor.
    Executor,
}

impl Containerizer {
    /// Validates a parsed TaskInfo, records it, and starts its pipeline. Nothing is
    /// recorded or created for a task that is refused.
    pub async fn launch(self: &Arc<Self>, parsed: Parsed) -> Result<Launched, RequestError> {
        let launched = self.admit(parsed).await;
        launched.map_err(|e| self.launch_refused(e))
    }

    /// Counts a launch refused, by the API before it reached [`Containerizer::launch`]
    /// (the agent recovering, a body that is no TaskInfo) or by the launch itself.
    pub fn launch_refused(&self, e: RequestError) -> RequestError {
        self.metrics.launch_refused(e.kind());
        e
    }

    async fn admit(self: &Arc<Self>, parsed: Parsed) -> Result<Launched, RequestError> {
        if self.recovering() {
            return Err(RequestError::Recovering);
        }
        let task_id = parsed.task.task_id.value.trim().to_owned();
        let id = Uuid::new_v4();
        let sandbox = self.settings.sandbox(id);
        let agent_id = self.agent_id().to_string();
        let launch = task::admit(
            &parsed.task,
            &LaunchContext {
                agent_id: &agent_id,
                container_id: id,
                sandbox: &sandbox,
                sandbox_directory: &self.settings.sandbox_directory,
                containerizers: &self.settings.containerizers,
                default_grace: self.settings.stop_timeout,
                docker_log: self.settings.docker_log,
                switch_user: self.settings.switch_user,
                recovery_timeout: self.settings.recovery_timeout,
            },
        )?;
        // Looked up before anything is recorded: a task that names no user of this host
        // is refused, not failed later; one the user database cannot answer for is
        // refused for now (503), since the database may come back.
        match run_as(launch.user.clone()).await {
            Ok(_) => {}
            Err((user, LookupError::NoSuchUser)) => {
                return Err(TaskError::UnknownUser {
                    user,
                    why: LookupError::NoSuchUser.to_string(),
                }
                .into())
            }
            Err((user, e)) => {
                return Err(RequestError::UserDatabase {
                    user,
                    why: e.to_string(),
                })
            }
        }
        // Taken before the first await and held until the entry exists.
        self.reserve_task_id(&task_id, id)?;
        let accepted = self
            .accept(id, &task_id, parsed.json, &launch, &sandbox)
            .await;
        let kill_at_ms = match accepted {
            Ok(kill_at_ms) => kill_at_ms,
            Err(e) => {
                self.release_task_id(&task_id);
                return Err(e);
            }
        };
        let run = launch.kind.docker_run();
        let view = TaskView {
            container_id: id,
            task_id: task_id.clone(),
            state: TaskState::Staging,
            reason: None,
            message: None,
            exit_code: None,
            docker_name: run.map(|r| r.name.clone()),
            image: run.map(|r| r.image.clone()),
            sandbox,
            pid: None,
            accepted_at_ms: now_ms(),
        };
        self.insert_entry(view, launch.grace);
        self.release_task_id(&task_id);
        let launch_warnings = launch.warnings.clone();
        self.arm_max_completion(id, kill_at_ms.zip(launch.max_completion));
        self.spawn_pipeline(id, launch, LaunchStep::Fetch);
        let mut warnings = parsed.warnings;
        warnings.extend(launch_warnings);
        Ok(Launched {
            container_id: id,
            warnings,
        })
    }

    /// Makes the sandbox and records `Accepted`; returns the `max_completion_time` due
    /// time. Nothing is left behind when it fails.
    async fn accept(
        &self,
        id: Uuid,
        task_id: &str,
        json: String,
        launch: &Launch,
        sandbox: &std::path::Path,
    ) -> Result<Option<u64>, RequestError> {
        super::sandbox_owner::make(sandbox)
            .map_err(|e| RequestError::Sandbox(sandbox.to_owned(), e))?;
        let kill_at_ms = launch
            .max_completion
            .map(|d| now_ms().saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
        let accepted = self
            .record(
                id,
                Phase::Accepted {
                    task_id: task_id.to_owned(),
                    task_json: json,
                    kill_at_ms,
                },
            )
            .await;
        if let Err(e) = accepted {
            let _ = std::fs::remove_dir_all(sandbox);
            return Err(e.into());
        }
        self.metrics.launch_accepted();
        Ok(kill_at_ms)
    }

    /// Makes the in-memory entry that the API, reports and kills work on.
    pub(crate) fn insert_entry(&self, view: TaskView, grace: Duration) -> Arc<Entry> {
        let id = view.container_id;
        let entry = Arc::new(Entry {
            view: watch::Sender::new(view),
            kill: watch::Sender::new(None),
            executor: std::sync::Mutex::new(None),
            executor_box: std::sync::atomic::AtomicBool::new(false),
            last_report: std::sync::Mutex::new(0),
            grace,
            deciding: tokio::sync::Mutex::new(()),
            kill_driving: std::sync::atomic::AtomicBool::new(false),
            kill_nudge: tokio::sync::Notify::new(),
            kill_again: std::sync::atomic::AtomicBool::new(false),
            watched: std::sync::atomic::AtomicBool::new(false),
            deadline_armed: std::sync::atomic::AtomicBool::new(false),
            ending: std::sync::Mutex::new(None),
        });
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, entry.clone());
        entry
    }

    /// Kills the task at its stored `max_completion_time` due time (at once if past);
    /// `limit` is the task's `max_completion_time`, for the message.
    pub(crate) fn arm_max_completion(self: &Arc<Self>, id: Uuid, due: Option<(u64, Duration)>) {
        let Some((at_ms, limit)) = due else { return };
        let armed = self.entry(id).is_none_or(|e| {
            e.deadline_armed
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        });
        if armed {
            return;
        }
        let me = self.clone();
        self.spawn_owned(async move {
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms()))).await;
            let request = KillRequest {
                grace: launch_grace(&me, id),
                state: TaskState::Failed,
                reason: super::kill::REASON_MAX_COMPLETION_TIME_REACHED.to_owned(),
                message: format!(
                    "the task ran longer than its max_completion_time ({})",
                    crate::duration::format(limit)
                ),
            };
            if let Err(e) = me.kill_with(id, request).await {
                tracing::warn!(%id, "max_completion_time kill: {e}");
            }
        });
    }

    /// Runs the launch pipeline from `from` in the background; a failure ends the task.
    pub(crate) fn spawn_pipeline(self: &Arc<Self>, id: Uuid, launch: Launch, from: LaunchStep) {
        let me = self.clone();
        self.spawn_owned(async move {
            if let Err(e) = me.clone().pipeline(id, launch, from).await {
                tracing::error!(%id, "launch failed: {e}");
                me.fail_launch_step(id, REASON_CONTAINER_LAUNCH_FAILED, e.to_string())
                    .await;
            }
        });
    }
}

/// The ids of `user`, looked up off the reactor and within a bound (NSS may ask a server
/// that does not answer).
pub(super) async fn run_as(user: Option<String>) -> Result<Option<RunAs>, (String, LookupError)> {
    let Some(user) = user else { return Ok(None) };
    RunAs::lookup_bounded(user.clone())
        .await
        .map(Some)
        .map_err(|e| (user, e))
}

/// Backoff of work that must be done in the end (an end's record, a removal) and of a
/// launch's Docker calls (pull, create) waiting for Docker: doubling from the first to
/// the last value.
pub(super) const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

fn launch_grace(c: &Containerizer, id: Uuid) -> Duration {
    c.entry(id).map(|e| e.grace).unwrap_or_default()
}

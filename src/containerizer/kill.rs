//! Killing: recorded first, then carried out on whatever the task is doing.

use std::sync::Arc;
use std::time::Duration;

use berth_state::{now_ms, Phase};
use uuid::Uuid;

use super::{Containerizer, RequestError, TaskView};
use crate::api::wire::TaskState;

/// Mesos's reason for a task killed on request.
pub const REASON_TASK_KILLED: &str = "REASON_TASK_KILLED";
/// Mesos's reason for a task that ran past `max_completion_time`.
pub const REASON_MAX_COMPLETION_TIME_REACHED: &str = "REASON_MAX_COMPLETION_TIME_REACHED";

/// A kill under way.
#[derive(Debug, Clone, PartialEq)]
pub struct KillRequest {
    /// Grace between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// The terminal state it ends in.
    pub state: TaskState,
    /// Machine-readable reason.
    pub reason: String,
    /// For a person.
    pub message: String,
}

impl Containerizer {
    /// Kills a container: the kill is recorded before anything is signalled. Refused
    /// while the agent recovers: recovery may be about to start a container again (a
    /// reattach with `docker start -a`, a resumed launch), and a kill that stopped it just
    /// before would be undone.
    pub async fn kill(
        self: &Arc<Self>,
        id: Uuid,
        grace: Option<Duration>,
    ) -> Result<TaskView, RequestError> {
        if self.recovering() {
            return Err(RequestError::Recovering);
        }
        let entry = self
            .entry(id)
            .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        let grace = grace.unwrap_or(entry.grace);
        self.kill_with(
            id,
            KillRequest {
                grace,
                state: TaskState::Killed,
                reason: REASON_TASK_KILLED.to_owned(),
                message: "killed on request".into(),
            },
        )
        .await
    }

    pub(crate) async fn kill_with(
        self: &Arc<Self>,
        id: Uuid,
        request: KillRequest,
    ) -> Result<TaskView, RequestError> {
        let entry = self
            .entry(id)
            .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        let deciding = entry.deciding.lock().await;
        {
            let view = entry.view.borrow();
            if view.state.is_terminal() || view.state == TaskState::Killing {
                return Ok(view.clone());
            }
        }
        self.record(
            id,
            Phase::Killing {
                grace_ms: u64::try_from(request.grace.as_millis()).unwrap_or(u64::MAX),
                requested_at_ms: now_ms(),
                reason: request.message.clone(),
            },
        )
        .await?;
        entry.view.send_modify(|v| {
            v.advance(
                TaskState::Killing,
                Some(request.reason.clone()),
                Some(request.message.clone()),
            );
        });
        entry.kill.send_replace(Some(request.clone()));
        drop(deciding);
        self.carry_out_kill(id, &request);
        let view = entry.view.borrow().clone();
        Ok(view)
    }

    /// Signals what runs. Called again when an executor reports RUNNING during a kill.
    pub(crate) fn carry_out_kill(self: &Arc<Self>, id: Uuid, request: &KillRequest) {
        let Some(entry) = self.entry(id) else { return };
        let docker_name = entry.view.borrow().docker_name.clone();
        let executor = entry
            .executor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match docker_name {
            Some(name) => {
                let docker = self.docker.clone();
                let grace = request.grace;
                tokio::spawn(async move {
                    // A container not created yet is stopped when the executor reports it.
                    if let Err(e) = docker.stop(&name, grace).await {
                        tracing::debug!(container = %name, "stop: {e}");
                    }
                });
            }
            None => {
                if let Some(identity) = executor {
                    signal_executor(id, &identity);
                }
            }
        }
    }
}

/// SIGTERM to a recorded executor, through a pidfd opened before its identity is checked,
/// so that a process that is not berth's is never signalled.
pub(crate) fn signal_executor(id: Uuid, identity: &berth_state::Identity) {
    let recorded = crate::identity::ProcessIdentity {
        boot_id: identity.boot_id.clone(),
        pid: identity.pid,
        start_ticks: identity.start_ticks,
    };
    if let Err(e) = crate::identity::signal(&recorded, rustix::process::Signal::TERM) {
        tracing::warn!(%id, "cannot signal the executor: {e}");
    }
}

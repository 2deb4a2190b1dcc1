//! A container as the API shows it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::TaskState;

/// A container's state as `berth ps`, `wait` and the API report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The container (launch) id.
    pub container_id: Uuid,
    /// The task's id.
    pub task_id: String,
    /// Its state.
    pub state: TaskState,
    /// Mesos's reason of the last change, such as `REASON_EXECUTOR_TERMINATED`; none
    /// where Mesos sets none (an exit, a kill on request).
    pub reason: Option<String>,
    /// What happened, for a person.
    pub message: Option<String>,
    /// Exit code, once exited.
    pub exit_code: Option<i32>,
    /// The Docker container's name; `None` for a plain process.
    pub docker_name: Option<String>,
    /// The Docker image it runs; `None` for a plain process (and from an agent that did
    /// not say).
    #[serde(default)]
    pub image: Option<String>,
    /// The sandbox on the host.
    pub sandbox: PathBuf,
    /// The task's pid while it runs.
    pub pid: Option<u32>,
    /// When it was accepted (ms since the epoch).
    pub accepted_at_ms: u64,
}

impl TaskView {
    /// Moves to `next` if the transition is allowed; returns whether it moved.
    pub fn advance(
        &mut self,
        next: TaskState,
        reason: Option<String>,
        message: Option<String>,
    ) -> bool {
        if !self.state.can_become(next) || (self.state == next && next.is_terminal()) {
            return false;
        }
        self.state = next;
        // As the API says it: no reason where Mesos sets none, and earlier berths' words
        // as today's.
        if let Some(reason) = reason {
            self.reason = crate::model::reason::read(&reason);
        }
        if message.is_some() {
            self.message = message;
        }
        true
    }
}

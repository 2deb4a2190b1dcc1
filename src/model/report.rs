//! The status reports an executor sends the agent, and their acknowledgement.

use serde::{Deserialize, Serialize};

use super::TaskState;

/// A status report from an executor, retried until acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Increases with each report of one executor; a repeat is acknowledged again and
    /// not applied twice.
    pub seq: u64,
    /// `Running` once the container runs; a terminal state when it has exited.
    pub state: TaskState,
    /// The container's (or process's) pid, with `Running`.
    #[serde(default)]
    pub pid: Option<u32>,
    /// A plain process's start time (clock ticks after boot, `/proc/<pid>/stat`), with
    /// `Running`: with the pid, the process's identity, recorded so that it can be proven
    /// the task's later.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// The exit code, with a terminal state.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Mesos's reason, such as `REASON_CONTAINER_LAUNCH_FAILED`; none for an exit.
    #[serde(default)]
    pub reason: Option<String>,
    /// What happened, for a person.
    #[serde(default)]
    pub message: Option<String>,
}

impl StatusReport {
    /// RUNNING, with the pid (and a plain process's start time) when known.
    pub fn running(seq: u64, pid: Option<u32>, start_ticks: Option<u64>) -> StatusReport {
        StatusReport {
            seq,
            state: TaskState::Running,
            pid,
            start_ticks,
            exit_code: None,
            reason: None,
            message: None,
        }
    }
}

/// The acknowledgement of a [`StatusReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The acknowledged report's `seq`.
    pub seq: u64,
}

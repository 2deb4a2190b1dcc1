//! What the store holds. Schema version 2.
//!
//! bincode is not self-describing, so these types are a contract with every store ever
//! written: fields are never reordered, removed or added within a schema version, and
//! enum variants are only ever appended. Anything else needs a new schema version, and
//! the layouts of the older one kept to read it (`schema1.rs`, docs/state-format.md).
//!
//! Schema 2 stores a task's state as a [`TaskState`] where schema 1 stored its name.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::Stored;
use crate::TaskState;

/// The agent's own record, written on first start and updated at every start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMeta {
    /// Made on first start; kept for the life of the work dir. Names every container.
    pub agent_id: Uuid,
    /// The boot id seen at the last start.
    pub boot_id: String,
    /// The schema the store was created with.
    pub created_schema: u16,
    /// When the store was created (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When the agent last started (ms since the Unix epoch).
    pub started_at_ms: u64,
}

/// A process as the kernel names it: a pid means nothing without the other two.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
}

/// One launch phase, recorded before the action it announces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// The task was accepted; nothing has been done for it yet.
    Accepted {
        /// The task's id.
        task_id: String,
        /// The TaskInfo JSON as received.
        task_json: String,
        /// When `max_completion_time` runs out (ms since the epoch).
        kill_at_ms: Option<u64>,
    },
    /// About to fetch the task's URIs into the sandbox.
    Fetching,
    /// About to make the image present.
    Pulling {
        /// The image.
        image: String,
    },
    /// An executor (or the executor container's CLI) was spawned and is blocked until
    /// this record is durable.
    ExecutorStarting {
        /// Who it is.
        identity: Identity,
    },
    /// The task runs.
    Running {
        /// The Docker container's name, empty for a plain process.
        container: String,
        /// The task's pid, when known.
        pid: Option<u32>,
    },
    /// A kill was requested; its deadline is stored, not held in memory.
    Killing {
        /// Grace between SIGTERM and SIGKILL (ms).
        grace_ms: u64,
        /// When the kill was asked for (ms since the epoch).
        requested_at_ms: u64,
        /// Why (a person's words).
        reason: String,
    },
    /// The task ended.
    Terminated {
        /// The final state.
        state: TaskState,
        /// Machine-readable reason.
        reason: String,
        /// What happened, for a person.
        message: String,
        /// The exit code, when there was one.
        exit_code: Option<i32>,
        /// When its container is to be removed (ms since the epoch).
        remove_at_ms: u64,
    },
    /// The container and its executor are gone.
    Removed,
    /// A decision taken about this container after a restart, and why.
    Decision {
        /// What was decided.
        action: String,
        /// Why.
        why: String,
    },
    /// A plain-process task runs (as `Running`), with its process's full identity: while
    /// that process lives, it proves that its executor's session is the task's, even
    /// after the executor died. Appended to schema 1.
    RunningProcess {
        /// The task's process.
        identity: Identity,
    },
    /// `--docker_mesos_image`: the executor runs in a container of its own, started and
    /// blocked until this record is durable (as `ExecutorStarting`), with that container's
    /// identity as Docker gave it, so that a restarted or replaced executor container is
    /// never taken for this one. Appended to schema 1.
    ExecutorContainerStarting {
        /// The executor process (the container's init, seen in the host's pid namespace).
        identity: Identity,
        /// The executor container's full Docker id.
        container: String,
        /// Its `State.StartedAt`, in nanoseconds since the epoch.
        started_at_ns: u64,
    },
}

impl Phase {
    /// The variant's name, for tables and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Accepted { .. } => "Accepted",
            Phase::Fetching => "Fetching",
            Phase::Pulling { .. } => "Pulling",
            Phase::ExecutorStarting { .. } => "ExecutorStarting",
            Phase::Running { .. } => "Running",
            Phase::Killing { .. } => "Killing",
            Phase::Terminated { .. } => "Terminated",
            Phase::Removed => "Removed",
            Phase::Decision { .. } => "Decision",
            Phase::RunningProcess { .. } => "RunningProcess",
            Phase::ExecutorContainerStarting { .. } => "ExecutorContainerStarting",
        }
    }

    /// Whether this phase may be recorded after `previous`, the container's newest phase
    /// that is not a `Decision` (`None`: the container has no record yet). The one place that refuses impossible histories:
    ///
    /// - `Accepted` starts a container, and only a new one; every other phase needs one;
    /// - after `Terminated` only `Removed` or a `Decision` (a finished task never runs or
    ///   is killed again);
    /// - after `Removed` nothing.
    ///
    /// A launch step under way when a kill arrives may still record its phase after
    /// `Killing`: the kill is carried out when that step reports.
    pub fn may_follow(&self, previous: Option<&Phase>) -> bool {
        match (previous, self) {
            (None, Phase::Accepted { .. }) => true,
            (None, _) | (Some(_), Phase::Accepted { .. }) => false,
            (Some(Phase::Removed), _) => false,
            (Some(Phase::Terminated { .. }), next) => {
                matches!(next, Phase::Removed | Phase::Decision { .. })
            }
            (Some(_), _) => true,
        }
    }
}

/// One entry of a container's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// Store-wide sequence number: later records have larger ones, across restarts.
    pub seq: u64,
    /// Wall-clock time of recording (ms since the epoch).
    pub at_ms: u64,
    /// The container.
    pub container_id: Uuid,
    /// What was recorded.
    pub phase: Phase,
}

/// A status update of a task, with its acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// Store-wide sequence number.
    pub seq: u64,
    /// When it was recorded (ms since the epoch).
    pub at_ms: u64,
    /// The container.
    pub container_id: Uuid,
    /// The executor's own number for the report (repeats are the same report).
    pub report_seq: u64,
    /// The state it reports.
    pub state: TaskState,
    /// Machine-readable reason.
    pub reason: Option<String>,
    /// For a person.
    pub message: Option<String>,
    /// Exit code, if any.
    pub exit_code: Option<i32>,
    /// Whether the agent has acknowledged it to the executor.
    pub acknowledged: bool,
}

/// The newest state of a container, kept beside its history so that listing is one scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The container.
    pub container_id: Uuid,
    /// Its task.
    pub task_id: String,
    /// The newest phase.
    pub last: PhaseRecord,
    /// When the first phase was recorded (ms since the epoch).
    pub accepted_at_ms: u64,
}

/// A value set aside because it did not decode, kept byte for byte with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The key it was stored under in the `records` tree.
    pub key: Vec<u8>,
    /// Why it was set aside.
    pub reason: String,
    /// When it was set aside (ms since the epoch).
    pub at_ms: u64,
    /// Its bytes as found (the first [`crate::codec::MAX_PAYLOAD`] minus 64 KiB of them
    /// if it was larger, which `reason` then says).
    pub bytes: Vec<u8>,
}

impl Stored for AgentMeta {}
impl Stored for Quarantined {}
// `PhaseRecord`, `Summary` and `StatusRecord` read schema 1 through `crate::schema1`.

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Phase> {
        vec![
            Phase::Accepted {
                task_id: "t".into(),
                task_json: "{}".into(),
                kill_at_ms: None,
            },
            Phase::Fetching,
            Phase::Pulling { image: "i".into() },
            Phase::ExecutorStarting {
                identity: Identity {
                    boot_id: "b".into(),
                    pid: 1,
                    start_ticks: 2,
                },
            },
            Phase::Running {
                container: "c".into(),
                pid: None,
            },
            Phase::Killing {
                grace_ms: 1,
                requested_at_ms: 2,
                reason: "r".into(),
            },
            Phase::Terminated {
                state: TaskState::Killed,
                reason: "r".into(),
                message: "m".into(),
                exit_code: None,
                remove_at_ms: 3,
            },
            Phase::Removed,
            Phase::Decision {
                action: "a".into(),
                why: "w".into(),
            },
            Phase::RunningProcess {
                identity: Identity {
                    boot_id: "b".into(),
                    pid: 3,
                    start_ticks: 4,
                },
            },
        ]
    }

    #[test]
    fn transitions_table() {
        // Rows: previous (None, then every phase); columns: every phase, in `all()` order.
        // A: Accepted F: Fetching P: Pulling E: ExecutorStarting R: Running
        // K: Killing T: Terminated X: Removed D: Decision P: RunningProcess
        let table = [
            ("none", "1000000000"),
            ("Accepted", "0111111111"),
            ("Fetching", "0111111111"),
            ("Pulling", "0111111111"),
            ("ExecutorStarting", "0111111111"),
            ("Running", "0111111111"),
            ("Killing", "0111111111"),
            ("Terminated", "0000000110"),
            ("Removed", "0000000000"),
            ("Decision", "0111111111"),
            ("RunningProcess", "0111111111"),
        ];
        let phases = all();
        for (row, (name, allowed)) in table.iter().enumerate() {
            let previous = if row == 0 {
                None
            } else {
                Some(&phases[row - 1])
            };
            assert_eq!(previous.map_or("none", Phase::name), *name);
            for (next, want) in phases.iter().zip(allowed.chars()) {
                assert_eq!(
                    next.may_follow(previous),
                    want == '1',
                    "{} after {name}",
                    next.name()
                );
            }
        }
    }
}

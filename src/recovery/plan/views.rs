//! What the agent gathered after a restart, as the decision takes it in: the store's
//! records of each container (read out of its history), what Docker listed and inspected,
//! and what /proc said about each recorded process, with the flags that steer the decision.
//!
//! Kept apart from the decision so that gathering (`gather.rs`) and the table tests build
//! the same plain values, and nothing here needs Docker or /proc to exist.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use berth_state::{Identity, Phase, PhaseRecord, Summary};
use uuid::Uuid;

use crate::docker::ContainerInfo;
use crate::identity::Liveness;
use crate::task::LaunchKind;

/// Everything the decision looks at, gathered by the agent before it decides.
#[derive(Debug, Clone)]
pub struct Views {
    /// This agent's id: only containers named with it are berth's to act on.
    pub agent_id: Uuid,
    /// The time at start-up (ms since the epoch), against which due times are compared.
    pub now_ms: u64,
    /// `--recover`.
    pub recover: Recover,
    /// `--docker_kill_orphans`.
    pub kill_orphans: bool,
    /// The store ends before its watermark (`Store::lost_at_open`): records made durable
    /// were lost, so a container without a record may be a task whose record is gone.
    pub lost_records: bool,
    /// Containers some of whose stored values were set aside as corrupt (the container ids
    /// in the keys of the store's quarantine). Their histories are not whole.
    pub quarantined: BTreeSet<Uuid>,
    /// Recorded containers whose stored TaskInfo no longer plans, with why: berth cannot
    /// tell how their task runs.
    pub unplannable: BTreeMap<Uuid, String>,
    /// One entry per container the store has a summary of.
    pub records: Vec<Recorded>,
    /// What Docker showed.
    pub docker: DockerView,
    /// What /proc showed for each identity a record names. An identity missing here counts
    /// as not checked.
    pub processes: HashMap<Identity, ProcessSeen>,
    /// Recorded containers whose executor read its launch (it made the sandbox's output
    /// files), so that a plain process may have started even with no RUNNING recorded.
    pub released: BTreeSet<Uuid>,
    /// The agent is up and saw the task's executor exit: what was left of the executor's
    /// session has been killed, and a launch whose executor died is not started again
    /// (an executor that dies on its own would die again).
    pub serving: bool,
    /// The Docker container id of the agent's own container (`--docker_mesos_image`):
    /// never touched, whatever it is named.
    pub own_container: Option<String>,
}

/// `--recover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recover {
    /// Reconnect to what still runs, and finish what was under way.
    Reconnect,
    /// Kill every live executor and container of this agent, record its tasks KILLED, then
    /// exit.
    Cleanup,
}

impl FromStr for Recover {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "reconnect" => Ok(Recover::Reconnect),
            "cleanup" => Ok(Recover::Cleanup),
            other => Err(format!(
                "unknown --recover mode {other:?}: use `reconnect` or `cleanup`"
            )),
        }
    }
}

impl fmt::Display for Recover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Recover::Reconnect => "reconnect",
            Recover::Cleanup => "cleanup",
        })
    }
}

/// What the store says about one container.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The container (launch) id.
    pub container_id: Uuid,
    /// Its task.
    pub task_id: String,
    /// How the task runs, which says what its executor is.
    pub workload: Workload,
    /// Where its history ends; `None` when the history holds no phase to decide on.
    pub stage: Option<Stage>,
    /// When `max_completion_time` runs out (ms since the epoch).
    pub kill_at_ms: Option<u64>,
    /// The executor recorded by the newest `ExecutorStarting` of the current attempt.
    pub executor: Option<Identity>,
    /// The container that executor runs in (`ExecutorContainerStarting`): its Docker id
    /// and `State.StartedAt` in nanoseconds.
    pub executor_container: Option<(String, u64)>,
    /// The task's pid, as the executor reported it with RUNNING.
    pub task_pid: Option<u32>,
    /// A plain process's full identity, as the executor reported it with RUNNING
    /// (`RunningProcess`); `None` for a container, or a record from before it was kept.
    pub task_process: Option<Identity>,
}

/// How a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A command in a Docker container, run by a berth executor that carries its output.
    DockerTask,
    /// The Docker container is the task's executor; the recorded identity is the
    /// `berth executor` that started it and carries its output to the sandbox.
    DockerExecutor,
    /// A plain process run by a berth executor (the `mesos` containerizer).
    Process,
}

impl From<&LaunchKind> for Workload {
    fn from(kind: &LaunchKind) -> Workload {
        match kind {
            LaunchKind::DockerTask { .. } => Workload::DockerTask,
            LaunchKind::DockerExecutor { .. } => Workload::DockerExecutor,
            LaunchKind::Process { .. } => Workload::Process,
        }
    }
}

/// Where a container's history ends, as recovery reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Accepted; nothing done yet.
    Accepted,
    /// Fetching was under way.
    Fetching,
    /// Pulling was under way (in executor mode the container may already be created).
    Pulling,
    /// The executor was spawned and recorded; it may or may not have been released.
    ExecutorStarting,
    /// The task was reported running.
    Running,
    /// A kill was recorded and the task has not ended. A launch phase recorded after the
    /// kill (a step that was under way when it came) does not undo it.
    Killing(KillAsked),
    /// The task ended; its containers go at this due time.
    Terminated {
        /// When to remove its containers (ms since the epoch).
        remove_at_ms: u64,
    },
    /// Its containers and executor are gone.
    Removed,
}

/// A kill as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillAsked {
    /// Grace between SIGTERM and SIGKILL (ms).
    pub grace_ms: u64,
    /// When it was asked for (ms since the epoch).
    pub requested_at_ms: u64,
    /// Why, in a person's words.
    pub reason: String,
}

impl Recorded {
    /// Reads what recovery needs out of a container's summary and history (oldest first,
    /// as `Store::history` returns it). `workload` comes from the task's JSON.
    pub fn from_history(summary: &Summary, history: &[PhaseRecord], workload: Workload) -> Self {
        let phases: Vec<&Phase> = if history.is_empty() {
            vec![&summary.last.phase]
        } else {
            history.iter().map(|r| &r.phase).collect()
        };
        let mut stage = None;
        let mut kill = None;
        let mut kill_at_ms = None;
        let mut executor = None;
        let mut executor_container = None;
        let mut task_pid = None;
        let mut task_process = None;
        for phase in phases {
            match phase {
                Phase::Accepted { kill_at_ms: at, .. } => {
                    kill_at_ms = *at;
                    stage = Some(Stage::Accepted);
                }
                // An identity recorded before a launch went back to an earlier phase
                // belongs to an attempt already judged dead.
                Phase::Fetching => {
                    stage = Some(Stage::Fetching);
                    executor = None;
                    executor_container = None;
                }
                Phase::Pulling { .. } => {
                    stage = Some(Stage::Pulling);
                    executor = None;
                    executor_container = None;
                }
                Phase::ExecutorStarting { identity } => {
                    stage = Some(Stage::ExecutorStarting);
                    executor = Some(identity.clone());
                    executor_container = None;
                }
                Phase::ExecutorContainerStarting {
                    identity,
                    container,
                    started_at_ns,
                } => {
                    stage = Some(Stage::ExecutorStarting);
                    executor = Some(identity.clone());
                    executor_container = Some((container.clone(), *started_at_ns));
                }
                Phase::Running { pid, .. } => {
                    stage = Some(Stage::Running);
                    task_pid = *pid;
                }
                Phase::RunningProcess { identity } => {
                    stage = Some(Stage::Running);
                    task_pid = Some(identity.pid);
                    task_process = Some(identity.clone());
                }
                Phase::Killing {
                    grace_ms,
                    requested_at_ms,
                    reason,
                } => {
                    // The first kill is the one carried out; a later one changes nothing.
                    kill.get_or_insert_with(|| KillAsked {
                        grace_ms: *grace_ms,
                        requested_at_ms: *requested_at_ms,
                        reason: reason.clone(),
                    });
                }
                Phase::Terminated { remove_at_ms, .. } => {
                    stage = Some(Stage::Terminated {
                        remove_at_ms: *remove_at_ms,
                    });
                }
                Phase::Removed => stage = Some(Stage::Removed),
                Phase::Decision { .. } => {}
            }
        }
        let stage = match (stage, kill) {
            (Some(Stage::Terminated { remove_at_ms }), _) => {
                Some(Stage::Terminated { remove_at_ms })
            }
            (Some(Stage::Removed), _) => Some(Stage::Removed),
            (Some(_), Some(kill)) => Some(Stage::Killing(kill)),
            (stage, _) => stage,
        };
        Recorded {
            container_id: summary.container_id,
            task_id: summary.task_id.clone(),
            workload,
            stage,
            kill_at_ms,
            executor,
            executor_container,
            task_pid,
            task_process,
        }
    }
}

/// What Docker showed: one `docker ps -a` of the `mesos-` names, then a batched inspect.
#[derive(Debug, Clone, PartialEq)]
pub enum DockerView {
    /// Every container whose name starts with `mesos-`.
    Listed(Vec<Listed>),
    /// Docker did not answer within `--recovery_timeout`; nothing is known about any
    /// container.
    Unreachable(String),
}

/// One container `docker ps -a` listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Its name as `docker ps` printed it, so that a failed inspect still names it.
    pub name: String,
    /// What inspecting it gave.
    pub inspect: Inspect,
}

/// The inspect of one listed container.
#[derive(Debug, Clone, PartialEq)]
pub enum Inspect {
    /// Docker described it.
    Found(ContainerInfo),
    /// Docker failed to describe it (the error, for the person reading the reason).
    Failed(String),
}

/// What /proc says about a recorded identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSeen {
    /// The same process (same boot, pid and start time) is there.
    Alive,
    /// No process has that pid.
    Gone,
    /// Another process has that pid now.
    Reused,
    /// The identity was recorded under another boot id: the host rebooted since.
    OtherBoot,
    /// /proc could not be read for it; nothing can be said.
    Unreadable(String),
}

impl From<Liveness> for ProcessSeen {
    fn from(l: Liveness) -> ProcessSeen {
        match l {
            Liveness::Alive => ProcessSeen::Alive,
            Liveness::Gone => ProcessSeen::Gone,
            Liveness::Reused => ProcessSeen::Reused,
            Liveness::Rebooted => ProcessSeen::OtherBoot,
        }
    }
}

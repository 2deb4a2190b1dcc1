//! The recovery decision: the views the agent gathered after a restart in, one action per
//! container out, each with the reason a person reads in `berth state show`.
//!
//! Pure on purpose: nothing here calls Docker, reads /proc or looks at a clock (the time is
//! one of the views). That makes every row of the decision table (docs/recovery.md) a unit
//! test, and lets `berth recover --dry-run` print a plan without acting.
//!
//! The rules, in the order [`plan`] applies them:
//! - the agent's own container (`--docker_mesos_image`) is left alone, whatever its name;
//! - a container is berth's only if its name parses with this agent's id; anything else
//!   is left alone, whatever the flags say;
//! - a history berth cannot read whole is held, never acted on;
//! - a process is signalled only if its identity was checked and is still the recorded
//!   one; a reused pid or a pid from another boot is never signalled;
//! - a task's container never keeps running without a live executor to watch it;
//! - a kill recorded before the restart is finished, never undone by a resumed launch;
//! - a launch interrupted before anything ran resumes from its last durable phase, after
//!   removing containers that never started, so that one task never has two containers;
//! - a container without a record is killed only when the store is known to be whole and
//!   its labels agree with its name; otherwise it is reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use berth_state::{Identity, Phase, PhaseRecord, Summary};
use uuid::Uuid;

use crate::docker::argv::labels;
use crate::docker::{ContainerInfo, ContainerName, ContainerState};
use crate::executor::outcome::{terminal_report, Exit, REASON_EXECUTOR_TERMINATED};
use crate::identity::Liveness;
use crate::model::TaskState;
use crate::task::LaunchKind;

pub use crate::containerizer::kill::REASON_TASK_KILLED;
pub use crate::model::reason::{
    REASON_AGENT_RESTARTED, REASON_MAX_COMPLETION_TIME_REACHED, REASON_TASK_KILLED_DURING_LAUNCH,
};

const DEADLINE_PASSED: &str =
    "; its max_completion_time ran out while berth was down, so it is killed at once";

// ---------------------------------------------------------------------------------------
// The views.

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

// ---------------------------------------------------------------------------------------
// The plan.

/// What to do after a restart: one decision per record, and one per listed container
/// that has no record.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Records first, in the order given, then containers without a record (this agent's
    /// or not) in listing order.
    pub decisions: Vec<Decision>,
}

/// What to do with one container, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What it is about.
    pub subject: Subject,
    /// What to do.
    pub action: Action,
    /// Why, for the person whose task it is: stored in the container's history.
    pub why: String,
}

impl Decision {
    /// The history entry that records this decision, for a task whose history still takes
    /// one (a `Removed` history takes nothing more).
    pub fn history_entry(&self) -> Option<Phase> {
        match (&self.subject, &self.action) {
            (Subject::Task { .. }, Action::Done { .. }) | (Subject::Container { .. }, _) => None,
            (Subject::Task { .. }, action) => Some(Phase::Decision {
                action: action.name().to_owned(),
                why: self.why.clone(),
            }),
        }
    }
}

/// What a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A container berth has a record of, with whatever Docker containers it has.
    Task {
        /// The container (launch) id.
        container_id: Uuid,
        /// Its task.
        task_id: String,
    },
    /// A listed Docker container without a record.
    Container {
        /// Its name.
        name: String,
    },
}

impl Subject {
    /// The recorded container a decision is about; `None` for a container without a
    /// record.
    pub fn container_id(&self) -> Option<Uuid> {
        match self {
            Subject::Task { container_id, .. } => Some(*container_id),
            Subject::Container { .. } => None,
        }
    }
}

/// What the agent is to do. Container names are the ones to act on; each Docker call is
/// idempotent (stopping a stopped container, removing a missing one), so a plan can be
/// carried out again after another crash.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The task goes on: rebuild its live entry and watch it.
    Adopt {
        /// What carries its reports.
        watch: Watch,
        /// Its `max_completion_time` due time, to be armed again (at once if past).
        kill_at_ms: Option<u64>,
    },
    /// Launch again from `from`: that phase is recorded again and its action redone.
    Resume {
        /// The phase to redo.
        from: ResumeFrom,
        /// Containers to remove first (`docker rm -f`): ones that never started, and a
        /// dead executor's container, so that the task never has two.
        remove_first: Vec<String>,
        /// Its `max_completion_time` due time, to be armed again.
        kill_at_ms: Option<u64>,
    },
    /// Carry out the kill recorded before the restart.
    FinishKill {
        /// How the task ends.
        outcome: Outcome,
        /// What is left of the recorded grace (ms).
        grace_left_ms: u64,
        /// Containers to stop with that grace.
        stop: Vec<String>,
        /// The executor to SIGTERM (through a pidfd, after checking its identity again).
        signal: Option<Identity>,
        /// Whether a live executor reports the end (then its report is answered and the
        /// outcome above recorded); otherwise the agent records the outcome once stopped.
        await_executor: bool,
    },
    /// Record the task's end now, after stopping `stop`. Its containers are removed at
    /// the due time `--docker_remove_delay` gives, like every ended task's.
    End {
        /// How the task ends.
        outcome: Outcome,
        /// The exit code, when Docker kept one that means something.
        exit_code: Option<i32>,
        /// Containers to stop first.
        stop: Vec<String>,
        /// A dead executor whose session is to be killed first: proven the task's by its
        /// recorded task process, still alive in it (a session's id is not given to
        /// another process while a member lives).
        sweep: Option<Identity>,
    },
    /// `--recover=cleanup`: kill and remove everything of the task now.
    Clean {
        /// How the task ends; `None` when it had already ended.
        outcome: Option<Outcome>,
        /// What is left of a recorded kill's grace (ms); `None`: the task's own grace.
        grace_left_ms: Option<u64>,
        /// Containers to stop.
        stop: Vec<String>,
        /// The executor to SIGTERM (through a pidfd, after checking its identity again).
        signal: Option<Identity>,
        /// A dead executor whose session is to be killed, as with [`Action::End`].
        sweep: Option<Identity>,
        /// Containers to remove once stopped.
        remove: Vec<String>,
    },
    /// The task ended: remove its containers at the due time and record `Removed`.
    RemoveAt {
        /// The due time (ms since the epoch); already past means now.
        at_ms: u64,
        /// Containers to stop now: an ended task never runs again.
        stop: Vec<String>,
        /// Containers to remove at the due time.
        remove: Vec<String>,
        /// Whether a live executor is still waiting for its last report to be answered.
        answer_executor: bool,
    },
    /// Nothing is left to do but remove leftovers.
    Done {
        /// Containers to remove now.
        remove: Vec<String>,
    },
    /// Docker or /proc could not say enough: decide again once they answer.
    Defer,
    /// The record cannot be trusted or contradicts what is there: touch nothing, report.
    Hold,
    /// Not berth's, or not this agent's: never touched.
    LeaveAlone,
    /// This agent's container without a record: stop it if it runs, and remove it.
    RemoveOrphan {
        /// Whether it runs and must be stopped first.
        stop: bool,
    },
    /// This agent's container without a record, left as it is and reported.
    ReportOrphan,
}

impl Action {
    /// Whether carrying it out ends the task (records a terminal state).
    pub fn ends_task(&self) -> bool {
        matches!(
            self,
            Action::End { .. }
                | Action::Clean {
                    outcome: Some(_),
                    ..
                }
        )
    }

    /// A short name, for tables and the stored decision.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Adopt { .. } => "re-adopt",
            Action::Resume { .. } => "resume launch",
            Action::FinishKill { .. } => "finish kill",
            Action::End { outcome, .. } if outcome.state == TaskState::Lost => "mark lost",
            Action::End { .. } => "record end",
            Action::Clean { .. } => "clean up",
            Action::RemoveAt { .. } => "remove at due time",
            Action::Done { .. } => "done",
            Action::Defer => "defer",
            Action::Hold => "hold",
            Action::LeaveAlone => "leave alone",
            Action::RemoveOrphan { .. } => "remove orphan",
            Action::ReportOrphan => "report orphan",
        }
    }
}

/// What carries an adopted task's reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// A berth executor: it retries its reports until the agent answers them.
    Executor,
    /// Executor mode: the agent watches the container itself through Docker.
    Container {
        /// Whether the process that carried its output is gone (or was never recorded),
        /// so that the agent carries it on itself.
        reattach_output: bool,
    },
}

/// The launch phase a resumed launch starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// Fetch the URIs again (fetching overwrites).
    Fetching,
    /// Make the image present again (a present image is not pulled again).
    Pulling,
    /// Spawn a new executor (in executor mode: create and start the container).
    ExecutorStarting,
}

/// How a task ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The terminal state.
    pub state: TaskState,
    /// Mesos's reason.
    pub reason: String,
}

impl Outcome {
    fn new(state: TaskState, reason: &str) -> Outcome {
        Outcome {
            state,
            reason: reason.to_owned(),
        }
    }

    fn lost(reason: &str) -> Outcome {
        Outcome::new(TaskState::Lost, reason)
    }
}

// ---------------------------------------------------------------------------------------
// The decision.

/// Decides, for every record and every listed container, what to do and why. Pure.
pub fn plan(views: &Views) -> Plan {
    let agent = views.agent_id.to_string();
    let listed: &[Listed] = match &views.docker {
        DockerView::Listed(listed) => listed,
        DockerView::Unreachable(_) => &[],
    };
    let names: Vec<Result<ContainerName, _>> = listed
        .iter()
        .map(|l| ContainerName::parse(&l.name))
        .collect();
    // Whatever its name, so that a record whose task it seems to be never claims it.
    let own = |l: &Listed| match (&l.inspect, &views.own_container) {
        (Inspect::Found(info), Some(own)) => info.id == *own,
        _ => false,
    };
    // This agent's containers by container id: (task container, `.executor` container).
    let mut ours: BTreeMap<Uuid, (Option<&Listed>, Option<&Listed>)> = BTreeMap::new();
    for (l, name) in listed.iter().zip(&names) {
        let Ok(n) = name else { continue };
        if n.agent_id != agent || own(l) {
            continue;
        }
        let slot = ours.entry(n.container_id).or_default();
        if n.executor {
            slot.1 = Some(l);
        } else {
            slot.0 = Some(l);
        }
    }
    let mut decisions = Vec::new();
    for record in &views.records {
        let (task, executor) = ours.remove(&record.container_id).unwrap_or_default();
        let (action, why) = Case::new(views, record, task, executor).decide();
        decisions.push(Decision {
            subject: Subject::Task {
                container_id: record.container_id,
                task_id: record.task_id.clone(),
            },
            action,
            why,
        });
    }
    // The rest in listing order, so that the plan reads like `docker ps`.
    for (l, name) in listed.iter().zip(names) {
        let bare = bare(&l.name);
        let (action, why) = match name {
            _ if own(l) => (
                Action::LeaveAlone,
                format!("container {bare} is the agent's own container (--docker_mesos_image); berth never touches it"),
            ),
            Err(e) => (
                Action::LeaveAlone,
                format!("container {bare}: {e}, so it is not berth's; berth never touches it"),
            ),
            Ok(n) if n.agent_id != agent => (
                Action::LeaveAlone,
                format!(
                    "container {bare} is named for agent {}, not this one ({agent}); berth never touches another agent's containers",
                    n.agent_id
                ),
            ),
            Ok(n) if ours.contains_key(&n.container_id) => orphan(views, l, n.container_id),
            // Claimed by a record and decided with it.
            Ok(_) => continue,
        };
        decisions.push(Decision {
            subject: Subject::Container {
                name: bare.to_owned(),
            },
            action,
            why,
        });
    }
    Plan { decisions }
}

/// Whether the executor's container is the one recorded (same Docker id, same start)
/// and runs. One Docker could not inspect counts as the same: its process was seen alive.
fn same_executor_box((id, started_at_ns): &(String, u64), listed: Option<&Listed>) -> bool {
    let Some(listed) = listed else { return false };
    match &listed.inspect {
        Inspect::Failed(_) => true,
        Inspect::Found(info) => {
            info.id == *id
                && info.state.is_live()
                && info.started_at.and_then(crate::docker::inspect::epoch_ns)
                    == Some(*started_at_ns)
        }
    }
}

fn bare(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// A state as Mesos prints it: `TASK_LOST`, `TASK_KILLED`.
fn word(state: TaskState) -> String {
    state.name().to_owned()
}

/// A container as the decision sees it.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Absent,
    Created,
    Live(&'static str),
    Exited(Option<i32>),
    Dead,
    Unknown(String),
}

impl Seen {
    fn of(listed: Option<&Listed>) -> Seen {
        let Some(l) = listed else {
            return Seen::Absent;
        };
        let info = match &l.inspect {
            Inspect::Found(info) => info,
            Inspect::Failed(e) => return Seen::Unknown(format!("docker inspect failed: {e}")),
        };
        match &info.state {
            ContainerState::Created => Seen::Created,
            ContainerState::Running => Seen::Live("running"),
            ContainerState::Paused => Seen::Live("paused"),
            ContainerState::Restarting => Seen::Live("restarting"),
            ContainerState::Exited => Seen::Exited(info.exit_code),
            // Being removed is as good as dead: it will not run again.
            ContainerState::Dead | ContainerState::Removing => Seen::Dead,
            ContainerState::Unknown(s) => {
                Seen::Unknown(format!("Docker reports a state berth does not know, {s:?}"))
            }
        }
    }

    fn present(&self) -> bool {
        !matches!(self, Seen::Absent)
    }

    /// Whether it may have running processes, so that stopping it matters.
    fn may_run(&self) -> bool {
        matches!(self, Seen::Live(_) | Seen::Unknown(_))
    }

    fn describe(&self, name: &str) -> String {
        format!("container {name} {}", self.state_words())
    }

    fn state_words(&self) -> String {
        match self {
            Seen::Absent => "does not exist".into(),
            Seen::Created => "was created but never started".into(),
            Seen::Live(state) => format!("is {state}"),
            Seen::Exited(Some(code)) => format!("exited with status {code}"),
            Seen::Exited(None) => "exited, with no usable exit code".into(),
            Seen::Dead => "is dead or being removed".into(),
            Seen::Unknown(why) => format!("is in a state Docker could not tell ({why})"),
        }
    }
}

/// The recorded executor as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Exec<'a> {
    NotRecorded,
    Alive(&'a Identity),
    Gone(&'a Identity),
    Reused(&'a Identity),
    OtherBoot(&'a Identity),
    Unchecked(&'a Identity, &'a str),
    /// Its process runs, but its own container (`--docker_mesos_image`) is not the one
    /// recorded, or does not run: it is not this task's executor.
    Replaced(&'a Identity),
}

impl Exec<'_> {
    fn alive(&self) -> Option<&Identity> {
        match self {
            Exec::Alive(id) => Some(id),
            _ => None,
        }
    }

    fn unchecked(&self) -> bool {
        matches!(self, Exec::Unchecked(..))
    }

    fn rebooted(&self) -> bool {
        matches!(self, Exec::OtherBoot(_))
    }

    fn describe(&self, workload: Workload) -> String {
        let who = match workload {
            Workload::DockerExecutor => "the `berth executor` carrying its output",
            Workload::DockerTask | Workload::Process => "its executor",
        };
        match self {
            Exec::NotRecorded => "no executor was recorded".into(),
            Exec::Alive(id) => format!("{who} (pid {}) is still running", id.pid),
            Exec::Gone(id) => format!("{who} (pid {}) has exited", id.pid),
            Exec::Replaced(id) => format!(
                "{who} (pid {}) is not in the executor container recorded for it (that container is gone, stopped, or started again since), so it is not taken for the task's",
                id.pid
            ),
            Exec::Reused(id) => format!(
                "{who} (pid {}) has exited and its pid now belongs to another process, which berth leaves alone",
                id.pid
            ),
            Exec::OtherBoot(id) => format!(
                "the host rebooted since {who} (pid {}) started, so it is gone",
                id.pid
            ),
            Exec::Unchecked(id, why) => {
                format!("{who} (pid {}) could not be checked: {why}", id.pid)
            }
        }
    }
}

/// One record with what Docker and /proc showed for it.
struct Case<'a> {
    views: &'a Views,
    record: &'a Recorded,
    task_name: String,
    task: Seen,
    box_name: String,
    executor_box: Seen,
    exec: Exec<'a>,
}

impl<'a> Case<'a> {
    fn new(
        views: &'a Views,
        record: &'a Recorded,
        task: Option<&Listed>,
        executor_box: Option<&Listed>,
    ) -> Case<'a> {
        let name = |executor| {
            ContainerName {
                agent_id: views.agent_id.to_string(),
                container_id: record.container_id,
                executor,
            }
            .to_string()
        };
        let task = match (&views.docker, record.workload) {
            (DockerView::Unreachable(e), Workload::DockerTask | Workload::DockerExecutor) => {
                Seen::Unknown(format!("Docker did not answer: {e}"))
            }
            _ => Seen::of(task),
        };
        let exec = match &record.executor {
            None => Exec::NotRecorded,
            Some(id) => match views.processes.get(id) {
                Some(ProcessSeen::Alive) => Exec::Alive(id),
                Some(ProcessSeen::Gone) => Exec::Gone(id),
                Some(ProcessSeen::Reused) => Exec::Reused(id),
                Some(ProcessSeen::OtherBoot) => Exec::OtherBoot(id),
                Some(ProcessSeen::Unreadable(why)) => Exec::Unchecked(id, why),
                None => Exec::Unchecked(id, "it was not looked up in /proc"),
            },
        };
        let exec = match (exec, &record.executor_container, &views.docker) {
            (Exec::Alive(id), Some(recorded), DockerView::Listed(_))
                if !same_executor_box(recorded, executor_box) =>
            {
                Exec::Replaced(id)
            }
            (exec, _, _) => exec,
        };
        Case {
            views,
            record,
            task_name: name(false),
            task,
            box_name: name(true),
            executor_box: Seen::of(executor_box),
            exec,
        }
    }

    fn workload(&self) -> Workload {
        self.record.workload
    }

    fn deadline_passed(&self) -> bool {
        self.record
            .kill_at_ms
            .is_some_and(|at| at <= self.views.now_ms)
    }

    /// Containers that may run, to stop; the executor's own container is kept while the
    /// executor in it is alive and still needed.
    fn stop(&self, keep_executor: bool) -> Vec<String> {
        let mut names = Vec::new();
        if self.task.may_run() {
            names.push(self.task_name.clone());
        }
        if self.executor_box.may_run() && !keep_executor {
            names.push(self.box_name.clone());
        }
        names
    }

    /// Every container of the task that Docker showed (or may have).
    fn all(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.task.present() {
            names.push(self.task_name.clone());
        }
        if self.executor_box.present() {
            names.push(self.box_name.clone());
        }
        names
    }

    /// Containers that never ran the task, or whose executor is dead: in the way of a
    /// resumed launch.
    fn in_the_way(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.task == Seen::Created {
            names.push(self.task_name.clone());
        }
        if self.executor_box.present() {
            names.push(self.box_name.clone());
        }
        names
    }

    fn container_words(&self) -> String {
        self.task.describe(&self.task_name)
    }

    fn executor_words(&self) -> String {
        self.exec.describe(self.workload())
    }

    fn decide(&self) -> (Action, String) {
        let Some(stage) = &self.record.stage else {
            return (
                Action::Hold,
                "its history holds no phase berth can decide on; nothing was touched: inspect it with `berth state history`".into(),
            );
        };
        if self.views.quarantined.contains(&self.record.container_id) {
            return (
                Action::Hold,
                "part of its history was set aside as corrupt, and berth does not act on a partial history; nothing was touched: see `berth state verify`".into(),
            );
        }
        if let Some(why) = self.views.unplannable.get(&self.record.container_id) {
            return (
                Action::Hold,
                format!(
                    "its stored TaskInfo no longer plans ({why}), and berth does not act on a task it cannot tell how it runs; nothing was touched: see `berth state show`; an agent that plans it (the version and flags it was taken under) decides on it at its next start"
                ),
            );
        }
        // Its `.executor` container is its executor's (`--docker_mesos_image`); a task
        // container is not.
        if self.workload() == Workload::Process && self.task.present() {
            return (
                Action::Hold,
                format!(
                    "it is a plain-process task, yet a Docker container carries its name ({}); the record and Docker disagree, so nothing was touched",
                    self.task_name
                ),
            );
        }
        // A removed history takes nothing more, in either mode: only leftovers go.
        if self.views.recover == Recover::Cleanup && *stage != Stage::Removed {
            return self.cleanup(stage);
        }
        match stage {
            Stage::Removed => self.removed(),
            Stage::Terminated { remove_at_ms } => self.terminated(*remove_at_ms),
            Stage::Killing(kill) => self.killing(kill),
            Stage::Accepted | Stage::Fetching | Stage::Pulling => self.before_executor(stage),
            Stage::ExecutorStarting | Stage::Running => match self.workload() {
                Workload::DockerExecutor => self.executor_mode(stage),
                Workload::DockerTask | Workload::Process => self.with_executor(stage),
            },
        }
    }

    fn removed(&self) -> (Action, String) {
        let leftovers = self.all();
        let why = if leftovers.is_empty() {
            "its task ended and its containers were removed; nothing is left to do".into()
        } else {
            format!(
                "its task ended and was recorded removed, yet {}; removed now",
                self.container_words()
            )
        };
        (Action::Done { remove: leftovers }, why)
    }

    fn cleanup(&self, stage: &Stage) -> (Action, String) {
        let signal = self.exec.alive().cloned();
        let terminated = matches!(stage, Stage::Terminated { .. });
        if !terminated && self.workload() == Workload::Process && self.exec.unchecked() {
            return (
                Action::Defer,
                format!(
                    "--recover=cleanup must kill it, but {}; berth never signals a process it has not checked, so it asks again",
                    self.executor_words()
                ),
            );
        }
        let (outcome, grace_left_ms) = match stage {
            Stage::Terminated { .. } => (None, None),
            Stage::Killing(kill) => (Some(self.kill_outcome(kill)), Some(self.grace_left(kill))),
            _ => (
                Some(Outcome::new(TaskState::Killed, REASON_TASK_KILLED)),
                None,
            ),
        };
        let mut why = match &outcome {
            Some(o) => format!(
                "`berth agent --recover=cleanup` kills it and records it {}",
                word(o.state)
            ),
            None => {
                "its task had ended; `berth agent --recover=cleanup` removes its containers now"
                    .into()
            }
        };
        why.push_str(&format!(
            "; {}; {}",
            self.container_words(),
            self.executor_words()
        ));
        if signal.is_some() {
            why.push_str(", and is sent SIGTERM");
        }
        let sweep = self.leftover_session();
        if sweep.is_some() {
            why.push_str("; the task's process still runs as recorded, in the dead executor's session, and what is left of it is killed");
        }
        (
            Action::Clean {
                outcome,
                grace_left_ms,
                stop: self.stop(false),
                signal,
                sweep,
                remove: self.all(),
            },
            why,
        )
    }

    fn terminated(&self, remove_at_ms: u64) -> (Action, String) {
        let answer = self.exec.alive().is_some();
        let stop = self.stop(answer);
        let mut why = String::from("its task had ended");
        if !stop.is_empty() {
            why.push_str(&format!(
                ", yet {}: it is stopped now, since an ended task never runs again",
                self.container_words()
            ));
        }
        let when = if remove_at_ms <= self.views.now_ms {
            "now, its due time having passed".to_owned()
        } else {
            format!(
                "at its due time, {}",
                berth_state::inspect::time(remove_at_ms)
            )
        };
        why.push_str(&format!("; its containers are removed {when}"));
        if answer {
            why.push_str(&format!(
                "; {}, waiting for its last report to be answered",
                self.executor_words()
            ));
        }
        (
            Action::RemoveAt {
                at_ms: remove_at_ms,
                stop,
                remove: self.all(),
                answer_executor: answer,
            },
            why,
        )
    }

    fn kill_outcome(&self, kill: &KillAsked) -> Outcome {
        let by_deadline = self
            .record
            .kill_at_ms
            .is_some_and(|at| kill.requested_at_ms >= at);
        if by_deadline {
            return Outcome::new(TaskState::Failed, REASON_MAX_COMPLETION_TIME_REACHED);
        }
        let never_started =
            self.exec == Exec::NotRecorded && matches!(self.task, Seen::Absent | Seen::Created);
        if never_started {
            Outcome::new(TaskState::Killed, REASON_TASK_KILLED_DURING_LAUNCH)
        } else {
            Outcome::new(TaskState::Killed, REASON_TASK_KILLED)
        }
    }

    fn grace_left(&self, kill: &KillAsked) -> u64 {
        kill.requested_at_ms
            .saturating_add(kill.grace_ms)
            .saturating_sub(self.views.now_ms)
    }

    fn killing(&self, kill: &KillAsked) -> (Action, String) {
        let outcome = self.kill_outcome(kill);
        let asked = format!("a kill was asked for before the restart ({})", kill.reason);
        let finish = format!("{asked}; it is finished, not undone");
        let grace_left_ms = self.grace_left(kill);
        let state = word(outcome.state);
        if self.workload() == Workload::Process {
            return match self.exec {
                Exec::Unchecked(..) => (
                    Action::Defer,
                    format!(
                        "{asked}, but {}; berth never signals a process it has not checked, so it asks again before finishing the kill",
                        self.executor_words()
                    ),
                ),
                Exec::Alive(id) => (
                    Action::FinishKill {
                        outcome,
                        grace_left_ms,
                        stop: Vec::new(),
                        signal: Some(id.clone()),
                        await_executor: true,
                    },
                    format!(
                        "{finish}: {} and is sent SIGTERM; it stops the task and reports, and the task ends {state}",
                        self.executor_words()
                    ),
                ),
                _ => match self.leftover_session() {
                    Some(executor) => (
                        Action::End {
                            outcome,
                            exit_code: None,
                            stop: Vec::new(),
                            sweep: Some(executor),
                        },
                        format!(
                            "{finish}: {}, but the task's process still runs as recorded, in the executor's session, and what is left of it is killed; the task ends {state}",
                            self.executor_words()
                        ),
                    ),
                    None => (
                        Action::FinishKill {
                            outcome,
                            grace_left_ms,
                            stop: Vec::new(),
                            signal: None,
                            await_executor: false,
                        },
                        format!(
                            "{finish}: {}, so there is nothing to signal; the task ends {state}",
                            self.executor_words()
                        ),
                    ),
                },
            };
        }
        let await_executor = self.workload() == Workload::DockerTask && self.exec.alive().is_some();
        let stop = self.stop(await_executor);
        let mut why = format!("{finish}: {}", self.container_words());
        if !stop.is_empty() {
            why.push_str(&format!(
                ", and is stopped with what is left of its grace ({} ms)",
                grace_left_ms
            ));
        }
        if await_executor {
            why.push_str(&format!(
                "; {}, and its report ends the task {state}",
                self.executor_words()
            ));
        } else {
            why.push_str(&format!("; the task ends {state}"));
        }
        (
            Action::FinishKill {
                outcome,
                grace_left_ms,
                stop,
                signal: None,
                await_executor,
            },
            why,
        )
    }

    fn resume_point(stage: &Stage) -> ResumeFrom {
        match stage {
            Stage::Accepted | Stage::Fetching => ResumeFrom::Fetching,
            Stage::Pulling => ResumeFrom::Pulling,
            _ => ResumeFrom::ExecutorStarting,
        }
    }

    /// Resume, unless `max_completion_time` ran out while berth was down.
    fn resume(&self, from: ResumeFrom, because: String) -> (Action, String) {
        if self.deadline_passed() {
            return (
                Action::End {
                    outcome: Outcome::new(TaskState::Failed, REASON_MAX_COMPLETION_TIME_REACHED),
                    exit_code: None,
                    stop: Vec::new(),
                    sweep: None,
                },
                format!(
                    "{because}, but its max_completion_time ran out while berth was down, so it is not started: FAILED"
                ),
            );
        }
        let remove_first = self.in_the_way();
        let mut why = format!("{because}: the launch resumes from {from:?}");
        if !remove_first.is_empty() {
            why.push_str(&format!(
                ", after removing {}, so that the task never has two containers",
                remove_first.join(" and ")
            ));
        }
        (
            Action::Resume {
                from,
                remove_first,
                kill_at_ms: self.record.kill_at_ms,
            },
            why,
        )
    }

    fn lost(&self, reason: &str, because: String) -> (Action, String) {
        let stop = self.stop(false);
        let mut why = because;
        if !stop.is_empty() {
            why.push_str("; it is stopped now rather than left running unwatched");
        }
        why.push_str("; the task is LOST");
        (
            Action::End {
                outcome: Outcome::lost(reason),
                exit_code: None,
                stop,
                sweep: None,
            },
            why,
        )
    }

    /// The container ended while nobody watched it: its exit code says how the task
    /// ended, as the executor would have said.
    fn exited(&self, code: Option<i32>, because: String) -> (Action, String) {
        let Some(code) = code else {
            return self.lost(REASON_EXECUTOR_TERMINATED, because);
        };
        let report = terminal_report(0, &Exit::Container { code });
        let message = report.message.unwrap_or_default();
        let state = word(report.state);
        (
            Action::End {
                outcome: Outcome {
                    state: report.state,
                    reason: report.reason.unwrap_or_default(),
                },
                exit_code: Some(code),
                stop: self.stop(false),
                sweep: None,
            },
            format!(
                "{because}; Docker kept its exit status ({message}), so the task ends {state}; output written while nobody watched is in `docker logs {}` until the container is removed",
                self.task_name
            ),
        )
    }

    /// Accepted, Fetching or Pulling: no executor yet, and in task mode no container.
    fn before_executor(&self, stage: &Stage) -> (Action, String) {
        let words = self.container_words();
        let phase = match stage {
            Stage::Accepted => "accepted",
            Stage::Fetching => "fetching",
            _ => "pulling",
        };
        match &self.task {
            Seen::Unknown(_) => {
                return (
                    Action::Defer,
                    format!(
                        "its launch was {phase} and {words}; berth asks Docker again before it resumes anything"
                    ),
                )
            }
            Seen::Absent | Seen::Created => {
                return self.resume(
                    Self::resume_point(stage),
                    format!("its launch was {phase} when berth stopped and {words}, so nothing ran"),
                )
            }
            Seen::Live(_) | Seen::Exited(_) | Seen::Dead => {}
        }
        if self.workload() != Workload::DockerExecutor {
            // A berth executor runs `docker run` only after ExecutorStarting is durable, so
            // this container is ahead of its record.
            if self.views.lost_records {
                return (
                    Action::Hold,
                    format!(
                        "its record says the launch was {phase}, yet {words}; the store lost its newest records at open, so the record may be behind: nothing was touched"
                    ),
                );
            }
            return self.lost(
                REASON_AGENT_RESTARTED,
                format!(
                    "its record says the launch was {phase}, yet {words}; berth has no record of starting it and cannot tell whether the task already ran, so it does not run it again"
                ),
            );
        }
        // Executor mode records its output process before it starts the container; a
        // berth that started it first (older stores) leaves a started container here,
        // and it is this task's executor.
        match &self.task {
            Seen::Live(_) => {
                let mut why = format!(
                    "{words}: it is this task's executor, started just before berth stopped and could record it; it is re-adopted and its output carried on from where the sandbox's files stand"
                );
                if self.deadline_passed() {
                    why.push_str(DEADLINE_PASSED);
                }
                (
                    Action::Adopt {
                        watch: Watch::Container {
                            reattach_output: true,
                        },
                        kill_at_ms: self.record.kill_at_ms,
                    },
                    why,
                )
            }
            Seen::Exited(code) => self.exited(
                *code,
                format!(
                    "{words}: this task's executor ran and ended while berth was down, before its start was recorded"
                ),
            ),
            _ => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{words}: this task's executor container cannot run again"),
            ),
        }
    }

    /// ExecutorStarting or Running, with a berth executor (a Docker task or a process).
    fn with_executor(&self, stage: &Stage) -> (Action, String) {
        let running = *stage == Stage::Running;
        let words = self.container_words();
        let exec = self.executor_words();
        if self.exec.alive().is_some() {
            let kill_at_ms = self.record.kill_at_ms;
            let mut why = format!("{exec}: it is re-adopted, its reports are answered and its output goes on to the sandbox");
            if self.deadline_passed() {
                why.push_str(DEADLINE_PASSED);
            }
            return (
                Action::Adopt {
                    watch: Watch::Executor,
                    kill_at_ms,
                },
                why,
            );
        }
        if self.exec.unchecked() {
            return (
                Action::Defer,
                format!("{exec}; berth decides nothing about a task whose executor it cannot check, and asks again"),
            );
        }
        // Its process lives, outside the container recorded for it: never a second
        // executor beside it, whatever the stage.
        if matches!(self.exec, Exec::Replaced(_))
            && !matches!(self.task, Seen::Exited(_) | Seen::Unknown(_))
        {
            return self.lost(REASON_EXECUTOR_TERMINATED, format!("{exec}; {words}"));
        }
        if running && self.workload() == Workload::Process {
            let pid = match self.record.task_pid {
                Some(pid) => format!(" (pid {pid})"),
                None => String::new(),
            };
            if let Some(executor) = self.leftover_session() {
                let (action, why) = self.lost(
                    REASON_EXECUTOR_TERMINATED,
                    format!(
                        "{exec}, but the task's process{pid} still runs as recorded, in the executor's session: that proves the session is the task's, and what is left of it is killed"
                    ),
                );
                let action = match action {
                    Action::End {
                        outcome,
                        exit_code,
                        stop,
                        ..
                    } => Action::End {
                        outcome,
                        exit_code,
                        stop,
                        sweep: Some(executor),
                    },
                    other => other,
                };
                return (action, why);
            }
            let because = if self.exec.rebooted() {
                format!("{exec}, and the task's process with it")
            } else if self.views.serving {
                format!(
                    "{exec} while the agent ran; what was left of its session, the task's process{pid} among it, was killed"
                )
            } else {
                format!(
                    "{exec}; if the task's process{pid} outlived it, berth cannot prove a bare pid is the task's, so it signals nothing"
                )
            };
            return self.lost(REASON_EXECUTOR_TERMINATED, because);
        }
        if running && self.exec.rebooted() {
            return self.lost(REASON_EXECUTOR_TERMINATED, format!("{exec}; {words}"));
        }
        match &self.task {
            Seen::Unknown(_) => (
                Action::Defer,
                format!("{exec} and {words}; berth asks Docker again before it decides"),
            ),
            Seen::Absent | Seen::Created if !running && self.views.serving => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{exec} while the agent ran, before it started the task, and {words}; an executor that died on its own would die again, so the task is not started again"),
            ),
            Seen::Absent
                if !running
                    && self.workload() == Workload::Process
                    && self.views.released.contains(&self.record.container_id) =>
            {
                self.lost(
                    REASON_EXECUTOR_TERMINATED,
                    format!("{exec} after it was handed its launch (the task's output files exist), so the task's process may have started; a plain process is never started twice"),
                )
            }
            Seen::Absent | Seen::Created if !running => self.resume(
                ResumeFrom::ExecutorStarting,
                format!("{exec} and {words}, so the task never started"),
            ),
            Seen::Live(_) => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{exec}, and {words} with nobody to carry its output or report its end"),
            ),
            Seen::Exited(_) if self.exec.rebooted() => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{exec}; {words}, which says only that the reboot ended it"),
            ),
            Seen::Exited(code) => self.exited(*code, format!("{exec}; {words}")),
            Seen::Absent | Seen::Created | Seen::Dead => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{exec}, and {words}, so how the task ended is unknown"),
            ),
        }
    }

    /// The dead executor of a plain-process task whose recorded task process is still
    /// alive: the task is a member of the executor's session, so the session's id, the
    /// executor's pid, cannot have been given to another process since. `None` when that
    /// cannot be shown.
    fn leftover_session(&self) -> Option<Identity> {
        let task = self.record.task_process.as_ref()?;
        let task_alive = matches!(self.views.processes.get(task), Some(ProcessSeen::Alive));
        match self.exec {
            Exec::Gone(executor) if task_alive => Some(executor.clone()),
            _ => None,
        }
    }

    /// ExecutorStarting or Running in executor mode: the container is the executor.
    fn executor_mode(&self, stage: &Stage) -> (Action, String) {
        let starting = *stage == Stage::ExecutorStarting;
        let words = self.container_words();
        let exec = self.executor_words();
        let adopt = |reattach_output: bool, why: String| {
            let mut why = why;
            if self.deadline_passed() {
                why.push_str(DEADLINE_PASSED);
            }
            (
                Action::Adopt {
                    watch: Watch::Container { reattach_output },
                    kill_at_ms: self.record.kill_at_ms,
                },
                why,
            )
        };
        match &self.task {
            Seen::Unknown(_) => (
                Action::Defer,
                format!("{words}; berth asks Docker again before it decides"),
            ),
            Seen::Absent => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{words}: this task's executor container was removed by someone else"),
            ),
            Seen::Dead => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{words}: this task's executor container cannot run again"),
            ),
            _ if self.exec.unchecked() => (
                Action::Defer,
                format!("{words}; {exec}, so berth cannot tell whether the host rebooted; it asks again"),
            ),
            Seen::Created if !starting => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{words}, though it was reported running: Docker and the record disagree"),
            ),
            Seen::Created => match self.exec {
                Exec::Alive(_) => adopt(
                    false,
                    format!("{words} and {exec}, about to start it; the container is re-adopted and watched"),
                ),
                _ => self.resume(
                    ResumeFrom::ExecutorStarting,
                    format!("{words} and {exec}, so nothing ran"),
                ),
            },
            Seen::Live(_) if self.exec.rebooted() => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{exec}; {words} only because Docker restarted it after the reboot, and berth does not adopt a run it did not start"),
            ),
            Seen::Live(_) => match self.exec {
                Exec::Alive(_) => adopt(
                    false,
                    format!("{words}: it is this task's executor and is re-adopted; {exec}, so its output goes on"),
                ),
                _ => adopt(
                    true,
                    format!("{words}: it is this task's executor and is re-adopted; {exec}, so the agent carries its output on from where the sandbox's files stand"),
                ),
            },
            Seen::Exited(_) if self.exec.rebooted() => self.lost(
                REASON_EXECUTOR_TERMINATED,
                format!("{exec}; {words}, which says only that the reboot ended it"),
            ),
            Seen::Exited(code) => self.exited(
                *code,
                format!("{words}: this task's executor ended while berth was down"),
            ),
        }
    }
}

fn orphan(views: &Views, l: &Listed, id: Uuid) -> (Action, String) {
    let name = bare(&l.name);
    let info = match &l.inspect {
        Inspect::Found(info) => info,
        Inspect::Failed(e) => {
            return (
                Action::Defer,
                format!(
                    "container {name} is named for this agent but berth has no record of it, and docker inspect failed ({e}); berth asks again before it decides"
                ),
            )
        }
    };
    let seen = Seen::of(Some(l));
    let about = format!(
        "container {name} is named for this agent but berth has no record of it; it {}",
        seen.state_words()
    );
    let agent = views.agent_id.to_string();
    let container = id.to_string();
    let label = |key: &str| info.labels.get(key).map(String::as_str);
    if label(labels::AGENT_ID) != Some(agent.as_str())
        || label(labels::CONTAINER_ID) != Some(container.as_str())
    {
        return (
            Action::ReportOrphan,
            format!(
                "{about}; its {} and {} labels do not say the same, so it may not be berth's: left as it is",
                labels::AGENT_ID,
                labels::CONTAINER_ID
            ),
        );
    }
    let kept = if views.quarantined.contains(&id) {
        Some("part of its history was set aside as corrupt, so it may be a task whose record is unreadable")
    } else if views.lost_records {
        Some("the store lost its newest records at open, so it may be a task whose record was lost")
    } else if !views.kill_orphans {
        Some("--docker_kill_orphans=false")
    } else {
        None
    };
    match kept {
        Some(because) => (
            Action::ReportOrphan,
            format!("{about}; {because}: left as it is"),
        ),
        None => {
            let stop = seen.may_run();
            let verb = if stop {
                "stopped and removed"
            } else {
                "removed"
            };
            (
                Action::RemoveOrphan { stop },
                format!(
                    "{about}; its labels agree and the store is whole, so it is a leftover: {verb}"
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests;

//! Why a decision was made, as a value: the [`Ground`] a rule decided on, with the facts it
//! saw, and the [`Then`] a shared ending adds (the launch resumed, the task LOST, the exit
//! code Docker kept).
//!
//! Typed so that the tests and the callers match on what was decided rather than on its
//! wording; `Display` is the one place the words live, and renders them exactly as
//! `berth state show`, `berth recover --dry-run` and the logs have always shown them.
//! What the rules already put into words from the views (a container's state, the
//! executor's pid and liveness) is carried as those words.

use std::fmt;

use berth_state::inspect::time;

use super::actions::ResumeFrom;
use crate::docker::argv::labels;
use crate::docker::name::NameError;
use crate::model::TaskState;

/// Why a decision was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// What the rule saw and decided on.
    pub ground: Ground,
    /// What an ending the rules share adds; `None` when the ground says it all.
    pub then: Option<Then>,
}

impl From<Ground> for Why {
    fn from(ground: Ground) -> Why {
        Why { ground, then: None }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ground)?;
        match &self.then {
            Some(then) => write!(f, "{then}"),
            None => Ok(()),
        }
    }
}

/// What a rule saw and decided on: one variant per rule outcome. `container` is a
/// container and its state in words (`container mesos-… is running`), `executor` the
/// recorded executor and what /proc said of it (`its executor (pid 42) has exited`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ground {
    // The rules every record meets first.
    /// Its history holds no phase to decide on.
    NoPhase,
    /// Part of its history was set aside as corrupt.
    Quarantined,
    /// Its stored TaskInfo no longer plans.
    Unplannable {
        /// Why not, as planning said it.
        why: String,
    },
    /// A plain-process task, yet a Docker container carries its name.
    ProcessHasContainer {
        /// The container's name.
        name: String,
    },

    // A task that ended or was being killed (`ending.rs`).
    /// Removed, with nothing left.
    RemovedNothingLeft,
    /// Recorded removed, yet containers are left: removed now.
    RemovedLeftovers {
        /// What is left.
        container: String,
    },
    /// `--recover=cleanup` must kill a process it could not check: asked again.
    CleanupUnchecked {
        /// The executor that could not be checked.
        executor: String,
    },
    /// `--recover=cleanup` kills the task, or removes an ended task's containers.
    Cleanup {
        /// The state it is recorded in; `None` when it had already ended.
        kills: Option<TaskState>,
        /// The task's container.
        container: String,
        /// Its executor.
        executor: String,
        /// Whether the executor is sent SIGTERM.
        signalled: bool,
        /// Whether a dead executor's session, the task's process in it, is killed.
        swept: bool,
    },
    /// The task had ended: its containers are removed at their due time.
    Ended {
        /// A container that still runs, stopped now.
        stopping: Option<String>,
        /// When its containers are removed.
        remove: Due,
        /// A live executor waiting for its last report to be answered.
        answering: Option<String>,
    },
    /// A kill asked for before the restart, of a process that could not be checked: asked
    /// again.
    KillUnchecked {
        /// The kill's reason.
        asked: String,
        /// The executor that could not be checked.
        executor: String,
    },
    /// A kill finished by sending the live executor SIGTERM.
    KillSignalled {
        /// The kill's reason.
        asked: String,
        /// The executor.
        executor: String,
        /// How the task ends.
        state: TaskState,
    },
    /// A kill finished by killing the dead executor's session, the task's process in it.
    KillSwept {
        /// The kill's reason.
        asked: String,
        /// The dead executor.
        executor: String,
        /// How the task ends.
        state: TaskState,
    },
    /// A kill finished with no process left to signal.
    KillNothingToSignal {
        /// The kill's reason.
        asked: String,
        /// The executor, gone or never checked as the recorded one.
        executor: String,
        /// How the task ends.
        state: TaskState,
    },
    /// A kill of a Docker task finished by stopping its containers.
    KillContainers {
        /// The kill's reason.
        asked: String,
        /// The task's container.
        container: String,
        /// What is left of the grace (ms) the containers are stopped with; `None` when
        /// none is stopped.
        stopping_ms: Option<u64>,
        /// A live executor whose report ends the task.
        awaiting: Option<String>,
        /// How the task ends.
        state: TaskState,
    },

    // A launch under way or a task running (`launch.rs`).
    /// A launch before its executor, whose container Docker could not tell: asked again.
    LaunchUnknown {
        /// The launch's phase: accepted, fetching or pulling.
        phase: &'static str,
        /// The task's container.
        container: String,
    },
    /// A launch before its executor, with nothing run: resumed.
    LaunchNothingRan {
        /// The launch's phase.
        phase: &'static str,
        /// The task's container, absent or never started.
        container: String,
    },
    /// A container ahead of a record that may be behind (the store lost records): held.
    LaunchAheadOfLostRecords {
        /// The launch's phase.
        phase: &'static str,
        /// The container that ran.
        container: String,
    },
    /// A container ahead of its record, which cannot tell whether the task already ran.
    LaunchAhead {
        /// The launch's phase.
        phase: &'static str,
        /// The container that ran.
        container: String,
    },
    /// Executor mode: the container runs, started before its start could be recorded:
    /// re-adopted.
    ExecutorStartedUnrecorded {
        /// The running container.
        container: String,
    },
    /// Executor mode: the container ran and ended before its start was recorded.
    ExecutorEndedUnrecorded {
        /// The ended container.
        container: String,
    },
    /// Executor mode: the container is dead and cannot run again.
    ExecutorContainerDead {
        /// The dead container.
        container: String,
    },
    /// A live executor: re-adopted.
    ExecutorAlive {
        /// The executor.
        executor: String,
    },
    /// An executor that could not be checked: asked again.
    ExecutorUnchecked {
        /// The executor.
        executor: String,
    },
    /// A live process outside the executor container recorded for it: not the task's
    /// executor.
    ExecutorReplaced {
        /// The executor.
        executor: String,
        /// The task's container.
        container: String,
    },
    /// A plain process whose dead executor's session still holds the recorded task
    /// process: that session is killed.
    SessionSwept {
        /// The dead executor.
        executor: String,
        /// The task's recorded pid.
        pid: Option<u32>,
    },
    /// A plain process whose host rebooted.
    ProcessRebooted {
        /// The executor, of another boot.
        executor: String,
    },
    /// A plain process whose executor died while the agent ran, its session killed.
    SessionKilled {
        /// The dead executor.
        executor: String,
        /// The task's recorded pid.
        pid: Option<u32>,
    },
    /// A plain process whose executor is gone, with no proof that a pid is the task's.
    ProcessUnproven {
        /// The dead executor.
        executor: String,
        /// The task's recorded pid.
        pid: Option<u32>,
    },
    /// A running task whose host rebooted.
    ExecutorRebooted {
        /// The executor, of another boot.
        executor: String,
        /// The task's container.
        container: String,
    },
    /// A dead executor whose task container Docker could not tell: asked again.
    AskDocker {
        /// The dead executor.
        executor: String,
        /// The task's container.
        container: String,
    },
    /// An executor that died while the agent ran, before it started the task.
    DiedWhileServing {
        /// The dead executor.
        executor: String,
        /// The task's container.
        container: String,
    },
    /// A plain process's executor that died after it was handed its launch.
    ProcessReleased {
        /// The dead executor.
        executor: String,
    },
    /// A dead executor that never started the task: the launch resumes.
    TaskNeverStarted {
        /// The dead executor.
        executor: String,
        /// The task's container, absent or never started.
        container: String,
    },
    /// A dead executor whose task container runs unwatched.
    ContainerUnwatched {
        /// The dead executor.
        executor: String,
        /// The running container.
        container: String,
    },
    /// A container that exited only because the host rebooted.
    RebootEnded {
        /// The executor, of another boot.
        executor: String,
        /// The exited container.
        container: String,
    },
    /// A dead executor whose task container exited.
    ContainerExited {
        /// The dead executor.
        executor: String,
        /// The exited container.
        container: String,
    },
    /// A dead executor whose task container says nothing of how the task ended.
    EndUnknown {
        /// The dead executor.
        executor: String,
        /// The task's container.
        container: String,
    },
    /// Executor mode: Docker could not tell the container: asked again.
    ExecutorContainerUnknown {
        /// The container.
        container: String,
    },
    /// Executor mode: the container was removed by someone else.
    ExecutorContainerRemoved {
        /// The container.
        container: String,
    },
    /// Executor mode: whether the host rebooted cannot be told: asked again.
    RebootUnchecked {
        /// The container.
        container: String,
        /// The executor carrying its output, which could not be checked.
        executor: String,
    },
    /// Executor mode: the container was never started, though reported running.
    ExecutorContainerNotStarted {
        /// The container.
        container: String,
    },
    /// Executor mode: the container is created and its live carrier is about to start it:
    /// re-adopted.
    ExecutorContainerStarting {
        /// The container.
        container: String,
        /// The executor carrying its output.
        executor: String,
    },
    /// Executor mode: the container was created and nothing ran: the launch resumes.
    ExecutorContainerNothingRan {
        /// The container.
        container: String,
        /// The executor carrying its output.
        executor: String,
    },
    /// Executor mode: the container runs only because Docker restarted it after a reboot.
    RestartedAfterReboot {
        /// The executor carrying its output, of another boot.
        executor: String,
        /// The container.
        container: String,
    },
    /// Executor mode: the container runs with its live carrier: re-adopted.
    ExecutorContainerRuns {
        /// The container.
        container: String,
        /// The executor carrying its output.
        executor: String,
    },
    /// Executor mode: the container runs without its carrier: re-adopted, and the agent
    /// carries its output on.
    ExecutorContainerRunsAlone {
        /// The container.
        container: String,
        /// The executor that carried its output.
        executor: String,
    },
    /// Executor mode: the container ended while berth was down.
    ExecutorContainerExited {
        /// The container.
        container: String,
    },

    // Listed containers without a record (`plan.rs`, `orphan.rs`).
    /// The agent's own container (`--docker_mesos_image`).
    OwnContainer {
        /// Its name.
        name: String,
    },
    /// A name that is not berth's.
    NotBerths {
        /// The name.
        name: String,
        /// Why it does not parse as berth's.
        error: NameError,
    },
    /// Named for another agent.
    OtherAgent {
        /// The container's name.
        name: String,
        /// The agent it is named for.
        agent: String,
        /// This agent's id.
        this: String,
    },
    /// Named for this agent without a record, and docker inspect failed: asked again.
    OrphanUninspected {
        /// The container's name.
        name: String,
        /// How inspect failed.
        error: String,
    },
    /// Named for this agent without a record, with labels that disagree: reported.
    OrphanLabelsDisagree {
        /// The container's name.
        name: String,
        /// Its state in words.
        state: String,
    },
    /// Named for this agent without a readable record (part of a history set aside as
    /// corrupt): reported.
    OrphanQuarantined {
        /// The container's name.
        name: String,
        /// Its state in words.
        state: String,
    },
    /// Named for this agent without a record, and the store lost records: reported.
    OrphanMaybeLost {
        /// The container's name.
        name: String,
        /// Its state in words.
        state: String,
    },
    /// Named for this agent without a record, with `--docker_kill_orphans=false`:
    /// reported.
    OrphanKeptByFlag {
        /// The container's name.
        name: String,
        /// Its state in words.
        state: String,
    },
    /// A leftover of this agent: removed.
    OrphanLeftover {
        /// The container's name.
        name: String,
        /// Its state in words.
        state: String,
        /// Whether it runs and is stopped first.
        stop: bool,
    },
}

impl Ground {
    /// This ground, with what a shared ending adds.
    pub(super) fn then(self, then: Then) -> Why {
        Why {
            ground: self,
            then: Some(then),
        }
    }
}

/// When an ended task's containers are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Now: the due time passed.
    Now,
    /// At this due time (ms since the epoch).
    At(u64),
}

/// What an ending the rules share adds to a ground.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// The launch resumes.
    Resumes {
        /// From this phase.
        from: ResumeFrom,
        /// After removing these containers.
        removing: Vec<String>,
    },
    /// The launch would resume, but `max_completion_time` ran out: FAILED.
    TooLateToStart,
    /// The task is LOST.
    Lost {
        /// Whether its containers are stopped first.
        stopped: bool,
    },
    /// Docker kept the container's exit status, which says how the task ended.
    ExitKept {
        /// The status in words, as the executor would have reported it.
        status: String,
        /// How the task ends.
        state: TaskState,
        /// The container whose log holds what nobody watched.
        name: String,
    },
    /// Re-adopted, but `max_completion_time` ran out: killed at once.
    KilledAtOnce,
}

impl fmt::Display for Ground {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ground::NoPhase => f.write_str(
                "its history holds no phase berth can decide on; nothing was touched: inspect it with `berth state history`",
            ),
            Ground::Quarantined => f.write_str(
                "part of its history was set aside as corrupt, and berth does not act on a partial history; nothing was touched: see `berth state verify`",
            ),
            Ground::Unplannable { why } => write!(
                f,
                "its stored TaskInfo no longer plans ({why}), and berth does not act on a task it cannot tell how it runs; nothing was touched: see `berth state show`; an agent that plans it (the version and flags it was taken under) decides on it at its next start"
            ),
            Ground::ProcessHasContainer { name } => write!(
                f,
                "it is a plain-process task, yet a Docker container carries its name ({name}); the record and Docker disagree, so nothing was touched"
            ),
            Ground::RemovedNothingLeft => f.write_str(
                "its task ended and its containers were removed; nothing is left to do",
            ),
            Ground::RemovedLeftovers { container } => write!(
                f,
                "its task ended and was recorded removed, yet {container}; removed now"
            ),
            Ground::CleanupUnchecked { executor } => write!(
                f,
                "--recover=cleanup must kill it, but {executor}; berth never signals a process it has not checked, so it asks again"
            ),
            Ground::Cleanup {
                kills,
                container,
                executor,
                signalled,
                swept,
            } => {
                match kills {
                    Some(state) => write!(
                        f,
                        "`berth agent --recover=cleanup` kills it and records it {}",
                        state.name()
                    )?,
                    None => f.write_str(
                        "its task had ended; `berth agent --recover=cleanup` removes its containers now",
                    )?,
                }
                write!(f, "; {container}; {executor}")?;
                if *signalled {
                    f.write_str(", and is sent SIGTERM")?;
                }
                if *swept {
                    f.write_str("; the task's process still runs as recorded, in the dead executor's session, and what is left of it is killed")?;
                }
                Ok(())
            }
            Ground::Ended {
                stopping,
                remove,
                answering,
            } => {
                f.write_str("its task had ended")?;
                if let Some(container) = stopping {
                    write!(
                        f,
                        ", yet {container}: it is stopped now, since an ended task never runs again"
                    )?;
                }
                match remove {
                    Due::Now => f.write_str("; its containers are removed now, its due time having passed")?,
                    Due::At(ms) => write!(f, "; its containers are removed at its due time, {}", time(*ms))?,
                }
                if let Some(executor) = answering {
                    write!(f, "; {executor}, waiting for its last report to be answered")?;
                }
                Ok(())
            }
            Ground::KillUnchecked { asked, executor } => write!(
                f,
                "a kill was asked for before the restart ({asked}), but {executor}; berth never signals a process it has not checked, so it asks again before finishing the kill"
            ),
            Ground::KillSignalled {
                asked,
                executor,
                state,
            } => write!(
                f,
                "a kill was asked for before the restart ({asked}); it is finished, not undone: {executor} and is sent SIGTERM; it stops the task and reports, and the task ends {}",
                state.name()
            ),
            Ground::KillSwept {
                asked,
                executor,
                state,
            } => write!(
                f,
                "a kill was asked for before the restart ({asked}); it is finished, not undone: {executor}, but the task's process still runs as recorded, in the executor's session, and what is left of it is killed; the task ends {}",
                state.name()
            ),
            Ground::KillNothingToSignal {
                asked,
                executor,
                state,
            } => write!(
                f,
                "a kill was asked for before the restart ({asked}); it is finished, not undone: {executor}, so there is nothing to signal; the task ends {}",
                state.name()
            ),
            Ground::KillContainers {
                asked,
                container,
                stopping_ms,
                awaiting,
                state,
            } => {
                write!(
                    f,
                    "a kill was asked for before the restart ({asked}); it is finished, not undone: {container}"
                )?;
                if let Some(ms) = stopping_ms {
                    write!(f, ", and is stopped with what is left of its grace ({ms} ms)")?;
                }
                match awaiting {
                    Some(executor) => write!(
                        f,
                        "; {executor}, and its report ends the task {}",
                        state.name()
                    ),
                    None => write!(f, "; the task ends {}", state.name()),
                }
            }
            Ground::LaunchUnknown { phase, container } => write!(
                f,
                "its launch was {phase} and {container}; berth asks Docker again before it resumes anything"
            ),
            Ground::LaunchNothingRan { phase, container } => write!(
                f,
                "its launch was {phase} when berth stopped and {container}, so nothing ran"
            ),
            Ground::LaunchAheadOfLostRecords { phase, container } => write!(
                f,
                "its record says the launch was {phase}, yet {container}; the store lost its newest records at open, so the record may be behind: nothing was touched"
            ),
            Ground::LaunchAhead { phase, container } => write!(
                f,
                "its record says the launch was {phase}, yet {container}; berth has no record of starting it and cannot tell whether the task already ran, so it does not run it again"
            ),
            Ground::ExecutorStartedUnrecorded { container } => write!(
                f,
                "{container}: it is this task's executor, started just before berth stopped and could record it; it is re-adopted and its output carried on from where the sandbox's files stand"
            ),
            Ground::ExecutorEndedUnrecorded { container } => write!(
                f,
                "{container}: this task's executor ran and ended while berth was down, before its start was recorded"
            ),
            Ground::ExecutorContainerDead { container } => write!(
                f,
                "{container}: this task's executor container cannot run again"
            ),
            Ground::ExecutorAlive { executor } => write!(
                f,
                "{executor}: it is re-adopted, its reports are answered and its output goes on to the sandbox"
            ),
            Ground::ExecutorUnchecked { executor } => write!(
                f,
                "{executor}; berth decides nothing about a task whose executor it cannot check, and asks again"
            ),
            Ground::ExecutorReplaced {
                executor,
                container,
            }
            | Ground::ExecutorRebooted {
                executor,
                container,
            }
            | Ground::ContainerExited {
                executor,
                container,
            } => write!(f, "{executor}; {container}"),
            Ground::SessionSwept { executor, pid } => write!(
                f,
                "{executor}, but the task's process{} still runs as recorded, in the executor's session: that proves the session is the task's, and what is left of it is killed",
                Pid(*pid)
            ),
            Ground::ProcessRebooted { executor } => {
                write!(f, "{executor}, and the task's process with it")
            }
            Ground::SessionKilled { executor, pid } => write!(
                f,
                "{executor} while the agent ran; what was left of its session, the task's process{} among it, was killed",
                Pid(*pid)
            ),
            Ground::ProcessUnproven { executor, pid } => write!(
                f,
                "{executor}; if the task's process{} outlived it, berth cannot prove a bare pid is the task's, so it signals nothing",
                Pid(*pid)
            ),
            Ground::AskDocker {
                executor,
                container,
            } => write!(
                f,
                "{executor} and {container}; berth asks Docker again before it decides"
            ),
            Ground::DiedWhileServing {
                executor,
                container,
            } => write!(
                f,
                "{executor} while the agent ran, before it started the task, and {container}; an executor that died on its own would die again, so the task is not started again"
            ),
            Ground::ProcessReleased { executor } => write!(
                f,
                "{executor} after it was handed its launch (the task's output files exist), so the task's process may have started; a plain process is never started twice"
            ),
            Ground::TaskNeverStarted {
                executor,
                container,
            } => write!(f, "{executor} and {container}, so the task never started"),
            Ground::ContainerUnwatched {
                executor,
                container,
            } => write!(
                f,
                "{executor}, and {container} with nobody to carry its output or report its end"
            ),
            Ground::RebootEnded {
                executor,
                container,
            } => write!(
                f,
                "{executor}; {container}, which says only that the reboot ended it"
            ),
            Ground::EndUnknown {
                executor,
                container,
            } => write!(
                f,
                "{executor}, and {container}, so how the task ended is unknown"
            ),
            Ground::ExecutorContainerUnknown { container } => write!(
                f,
                "{container}; berth asks Docker again before it decides"
            ),
            Ground::ExecutorContainerRemoved { container } => write!(
                f,
                "{container}: this task's executor container was removed by someone else"
            ),
            Ground::RebootUnchecked {
                container,
                executor,
            } => write!(
                f,
                "{container}; {executor}, so berth cannot tell whether the host rebooted; it asks again"
            ),
            Ground::ExecutorContainerNotStarted { container } => write!(
                f,
                "{container}, though it was reported running: Docker and the record disagree"
            ),
            Ground::ExecutorContainerStarting {
                container,
                executor,
            } => write!(
                f,
                "{container} and {executor}, about to start it; the container is re-adopted and watched"
            ),
            Ground::ExecutorContainerNothingRan {
                container,
                executor,
            } => write!(f, "{container} and {executor}, so nothing ran"),
            Ground::RestartedAfterReboot {
                executor,
                container,
            } => write!(
                f,
                "{executor}; {container} only because Docker restarted it after the reboot, and berth does not adopt a run it did not start"
            ),
            Ground::ExecutorContainerRuns {
                container,
                executor,
            } => write!(
                f,
                "{container}: it is this task's executor and is re-adopted; {executor}, so its output goes on"
            ),
            Ground::ExecutorContainerRunsAlone {
                container,
                executor,
            } => write!(
                f,
                "{container}: it is this task's executor and is re-adopted; {executor}, so the agent carries its output on from where the sandbox's files stand"
            ),
            Ground::ExecutorContainerExited { container } => write!(
                f,
                "{container}: this task's executor ended while berth was down"
            ),
            Ground::OwnContainer { name } => write!(
                f,
                "container {name} is the agent's own container (--docker_mesos_image); berth never touches it"
            ),
            Ground::NotBerths { name, error } => write!(
                f,
                "container {name}: {error}, so it is not berth's; berth never touches it"
            ),
            Ground::OtherAgent { name, agent, this } => write!(
                f,
                "container {name} is named for agent {agent}, not this one ({this}); berth never touches another agent's containers"
            ),
            Ground::OrphanUninspected { name, error } => write!(
                f,
                "container {name} is named for this agent but berth has no record of it, and docker inspect failed ({error}); berth asks again before it decides"
            ),
            Ground::OrphanLabelsDisagree { name, state } => write!(
                f,
                "{}; its {} and {} labels do not say the same, so it may not be berth's: left as it is",
                Orphan { name, state },
                labels::AGENT_ID,
                labels::CONTAINER_ID
            ),
            Ground::OrphanQuarantined { name, state } => write!(
                f,
                "{}; part of its history was set aside as corrupt, so it may be a task whose record is unreadable: left as it is",
                Orphan { name, state }
            ),
            Ground::OrphanMaybeLost { name, state } => write!(
                f,
                "{}; the store lost its newest records at open, so it may be a task whose record was lost: left as it is",
                Orphan { name, state }
            ),
            Ground::OrphanKeptByFlag { name, state } => write!(
                f,
                "{}; --docker_kill_orphans=false: left as it is",
                Orphan { name, state }
            ),
            Ground::OrphanLeftover { name, state, stop } => write!(
                f,
                "{}; its labels agree and the store is whole, so it is a leftover: {}",
                Orphan { name, state },
                if *stop {
                    "stopped and removed"
                } else {
                    "removed"
                }
            ),
        }
    }
}

impl fmt::Display for Then {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Then::Resumes { from, removing } => {
                write!(f, ": the launch resumes from {from:?}")?;
                if !removing.is_empty() {
                    write!(
                        f,
                        ", after removing {}, so that the task never has two containers",
                        removing.join(" and ")
                    )?;
                }
                Ok(())
            }
            Then::TooLateToStart => f.write_str(
                ", but its max_completion_time ran out while berth was down, so it is not started: FAILED",
            ),
            Then::Lost { stopped } => {
                if *stopped {
                    f.write_str("; it is stopped now rather than left running unwatched")?;
                }
                f.write_str("; the task is LOST")
            }
            Then::ExitKept {
                status,
                state,
                name,
            } => write!(
                f,
                "; Docker kept its exit status ({status}), so the task ends {}; output written while nobody watched is in `docker logs {name}` until the container is removed",
                state.name()
            ),
            Then::KilledAtOnce => f.write_str(
                "; its max_completion_time ran out while berth was down, so it is killed at once",
            ),
        }
    }
}

/// A recorded task pid as the reasons name it: ` (pid 55)`, or nothing.
struct Pid(Option<u32>);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(pid) => write!(f, " (pid {pid})"),
            None => Ok(()),
        }
    }
}

/// How every reason about a container without a record begins.
struct Orphan<'a> {
    name: &'a str,
    state: &'a str,
}

impl fmt::Display for Orphan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "container {} is named for this agent but berth has no record of it; it {}",
            self.name, self.state
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "container mesos-a.b is running";
    const E: &str = "its executor (pid 42) has exited";

    fn c() -> String {
        C.to_owned()
    }

    fn e() -> String {
        E.to_owned()
    }

    /// Each reason once, in the exact words `berth state show` and the dry run print.
    #[test]
    fn every_reason_renders_to_its_words() {
        let name = || "mesos-a.b".to_owned();
        let state = || "is running".to_owned();
        let asked = || "killed on request".to_owned();
        let phase = "fetching";
        let table: Vec<(Why, String)> = vec![
            (
                Ground::NoPhase.into(),
                "its history holds no phase berth can decide on; nothing was touched: inspect it with `berth state history`".into(),
            ),
            (
                Ground::Quarantined.into(),
                "part of its history was set aside as corrupt, and berth does not act on a partial history; nothing was touched: see `berth state verify`".into(),
            ),
            (
                Ground::Unplannable { why: "limits.gpus".into() }.into(),
                "its stored TaskInfo no longer plans (limits.gpus), and berth does not act on a task it cannot tell how it runs; nothing was touched: see `berth state show`; an agent that plans it (the version and flags it was taken under) decides on it at its next start".into(),
            ),
            (
                Ground::ProcessHasContainer { name: name() }.into(),
                "it is a plain-process task, yet a Docker container carries its name (mesos-a.b); the record and Docker disagree, so nothing was touched".into(),
            ),
            (
                Ground::RemovedNothingLeft.into(),
                "its task ended and its containers were removed; nothing is left to do".into(),
            ),
            (
                Ground::RemovedLeftovers { container: c() }.into(),
                format!("its task ended and was recorded removed, yet {C}; removed now"),
            ),
            (
                Ground::CleanupUnchecked { executor: e() }.into(),
                format!("--recover=cleanup must kill it, but {E}; berth never signals a process it has not checked, so it asks again"),
            ),
            (
                Ground::Cleanup {
                    kills: Some(TaskState::Killed),
                    container: c(),
                    executor: e(),
                    signalled: true,
                    swept: true,
                }
                .into(),
                format!("`berth agent --recover=cleanup` kills it and records it TASK_KILLED; {C}; {E}, and is sent SIGTERM; the task's process still runs as recorded, in the dead executor's session, and what is left of it is killed"),
            ),
            (
                Ground::Cleanup {
                    kills: None,
                    container: c(),
                    executor: e(),
                    signalled: false,
                    swept: false,
                }
                .into(),
                format!("its task had ended; `berth agent --recover=cleanup` removes its containers now; {C}; {E}"),
            ),
            (
                Ground::Ended {
                    stopping: Some(c()),
                    remove: Due::Now,
                    answering: Some(e()),
                }
                .into(),
                format!("its task had ended, yet {C}: it is stopped now, since an ended task never runs again; its containers are removed now, its due time having passed; {E}, waiting for its last report to be answered"),
            ),
            (
                Ground::Ended {
                    stopping: None,
                    remove: Due::At(1_500_000),
                    answering: None,
                }
                .into(),
                "its task had ended; its containers are removed at its due time, 1970-01-01T00:25:00Z".into(),
            ),
            (
                Ground::KillUnchecked { asked: asked(), executor: e() }.into(),
                format!("a kill was asked for before the restart (killed on request), but {E}; berth never signals a process it has not checked, so it asks again before finishing the kill"),
            ),
            (
                Ground::KillSignalled { asked: asked(), executor: e(), state: TaskState::Killed }.into(),
                format!("a kill was asked for before the restart (killed on request); it is finished, not undone: {E} and is sent SIGTERM; it stops the task and reports, and the task ends TASK_KILLED"),
            ),
            (
                Ground::KillSwept { asked: asked(), executor: e(), state: TaskState::Killed }.into(),
                format!("a kill was asked for before the restart (killed on request); it is finished, not undone: {E}, but the task's process still runs as recorded, in the executor's session, and what is left of it is killed; the task ends TASK_KILLED"),
            ),
            (
                Ground::KillNothingToSignal { asked: asked(), executor: e(), state: TaskState::Failed }.into(),
                format!("a kill was asked for before the restart (killed on request); it is finished, not undone: {E}, so there is nothing to signal; the task ends TASK_FAILED"),
            ),
            (
                Ground::KillContainers {
                    asked: asked(),
                    container: c(),
                    stopping_ms: Some(100),
                    awaiting: Some(e()),
                    state: TaskState::Killed,
                }
                .into(),
                format!("a kill was asked for before the restart (killed on request); it is finished, not undone: {C}, and is stopped with what is left of its grace (100 ms); {E}, and its report ends the task TASK_KILLED"),
            ),
            (
                Ground::KillContainers {
                    asked: asked(),
                    container: c(),
                    stopping_ms: None,
                    awaiting: None,
                    state: TaskState::Killed,
                }
                .into(),
                format!("a kill was asked for before the restart (killed on request); it is finished, not undone: {C}; the task ends TASK_KILLED"),
            ),
            (
                Ground::LaunchUnknown { phase, container: c() }.into(),
                format!("its launch was fetching and {C}; berth asks Docker again before it resumes anything"),
            ),
            (
                Ground::LaunchNothingRan { phase, container: c() }.into(),
                format!("its launch was fetching when berth stopped and {C}, so nothing ran"),
            ),
            (
                Ground::LaunchAheadOfLostRecords { phase, container: c() }.into(),
                format!("its record says the launch was fetching, yet {C}; the store lost its newest records at open, so the record may be behind: nothing was touched"),
            ),
            (
                Ground::LaunchAhead { phase, container: c() }.into(),
                format!("its record says the launch was fetching, yet {C}; berth has no record of starting it and cannot tell whether the task already ran, so it does not run it again"),
            ),
            (
                Ground::ExecutorStartedUnrecorded { container: c() }.into(),
                format!("{C}: it is this task's executor, started just before berth stopped and could record it; it is re-adopted and its output carried on from where the sandbox's files stand"),
            ),
            (
                Ground::ExecutorEndedUnrecorded { container: c() }.into(),
                format!("{C}: this task's executor ran and ended while berth was down, before its start was recorded"),
            ),
            (
                Ground::ExecutorContainerDead { container: c() }.into(),
                format!("{C}: this task's executor container cannot run again"),
            ),
            (
                Ground::ExecutorAlive { executor: e() }.into(),
                format!("{E}: it is re-adopted, its reports are answered and its output goes on to the sandbox"),
            ),
            (
                Ground::ExecutorUnchecked { executor: e() }.into(),
                format!("{E}; berth decides nothing about a task whose executor it cannot check, and asks again"),
            ),
            (
                Ground::ExecutorReplaced { executor: e(), container: c() }.into(),
                format!("{E}; {C}"),
            ),
            (
                Ground::SessionSwept { executor: e(), pid: Some(55) }.into(),
                format!("{E}, but the task's process (pid 55) still runs as recorded, in the executor's session: that proves the session is the task's, and what is left of it is killed"),
            ),
            (
                Ground::ProcessRebooted { executor: e() }.into(),
                format!("{E}, and the task's process with it"),
            ),
            (
                Ground::SessionKilled { executor: e(), pid: None }.into(),
                format!("{E} while the agent ran; what was left of its session, the task's process among it, was killed"),
            ),
            (
                Ground::ProcessUnproven { executor: e(), pid: Some(55) }.into(),
                format!("{E}; if the task's process (pid 55) outlived it, berth cannot prove a bare pid is the task's, so it signals nothing"),
            ),
            (
                Ground::ExecutorRebooted { executor: e(), container: c() }.into(),
                format!("{E}; {C}"),
            ),
            (
                Ground::AskDocker { executor: e(), container: c() }.into(),
                format!("{E} and {C}; berth asks Docker again before it decides"),
            ),
            (
                Ground::DiedWhileServing { executor: e(), container: c() }.into(),
                format!("{E} while the agent ran, before it started the task, and {C}; an executor that died on its own would die again, so the task is not started again"),
            ),
            (
                Ground::ProcessReleased { executor: e() }.into(),
                format!("{E} after it was handed its launch (the task's output files exist), so the task's process may have started; a plain process is never started twice"),
            ),
            (
                Ground::TaskNeverStarted { executor: e(), container: c() }.into(),
                format!("{E} and {C}, so the task never started"),
            ),
            (
                Ground::ContainerUnwatched { executor: e(), container: c() }.into(),
                format!("{E}, and {C} with nobody to carry its output or report its end"),
            ),
            (
                Ground::RebootEnded { executor: e(), container: c() }.into(),
                format!("{E}; {C}, which says only that the reboot ended it"),
            ),
            (
                Ground::ContainerExited { executor: e(), container: c() }.into(),
                format!("{E}; {C}"),
            ),
            (
                Ground::EndUnknown { executor: e(), container: c() }.into(),
                format!("{E}, and {C}, so how the task ended is unknown"),
            ),
            (
                Ground::ExecutorContainerUnknown { container: c() }.into(),
                format!("{C}; berth asks Docker again before it decides"),
            ),
            (
                Ground::ExecutorContainerRemoved { container: c() }.into(),
                format!("{C}: this task's executor container was removed by someone else"),
            ),
            (
                Ground::RebootUnchecked { container: c(), executor: e() }.into(),
                format!("{C}; {E}, so berth cannot tell whether the host rebooted; it asks again"),
            ),
            (
                Ground::ExecutorContainerNotStarted { container: c() }.into(),
                format!("{C}, though it was reported running: Docker and the record disagree"),
            ),
            (
                Ground::ExecutorContainerStarting { container: c(), executor: e() }.into(),
                format!("{C} and {E}, about to start it; the container is re-adopted and watched"),
            ),
            (
                Ground::ExecutorContainerNothingRan { container: c(), executor: e() }.into(),
                format!("{C} and {E}, so nothing ran"),
            ),
            (
                Ground::RestartedAfterReboot { executor: e(), container: c() }.into(),
                format!("{E}; {C} only because Docker restarted it after the reboot, and berth does not adopt a run it did not start"),
            ),
            (
                Ground::ExecutorContainerRuns { container: c(), executor: e() }.into(),
                format!("{C}: it is this task's executor and is re-adopted; {E}, so its output goes on"),
            ),
            (
                Ground::ExecutorContainerRunsAlone { container: c(), executor: e() }.into(),
                format!("{C}: it is this task's executor and is re-adopted; {E}, so the agent carries its output on from where the sandbox's files stand"),
            ),
            (
                Ground::ExecutorContainerExited { container: c() }.into(),
                format!("{C}: this task's executor ended while berth was down"),
            ),
            (
                Ground::OwnContainer { name: name() }.into(),
                "container mesos-a.b is the agent's own container (--docker_mesos_image); berth never touches it".into(),
            ),
            (
                Ground::NotBerths { name: "web".into(), error: NameError::NoPrefix("/web".into()) }.into(),
                "container web: name \"/web\" does not start with \"mesos-\", so it is not berth's; berth never touches it".into(),
            ),
            (
                Ground::OtherAgent { name: name(), agent: "a".into(), this: "b".into() }.into(),
                "container mesos-a.b is named for agent a, not this one (b); berth never touches another agent's containers".into(),
            ),
            (
                Ground::OrphanUninspected { name: name(), error: "no such container".into() }.into(),
                "container mesos-a.b is named for this agent but berth has no record of it, and docker inspect failed (no such container); berth asks again before it decides".into(),
            ),
            (
                Ground::OrphanLabelsDisagree { name: name(), state: state() }.into(),
                "container mesos-a.b is named for this agent but berth has no record of it; it is running; its berth.agent_id and berth.container_id labels do not say the same, so it may not be berth's: left as it is".into(),
            ),
            (
                Ground::OrphanQuarantined { name: name(), state: state() }.into(),
                "container mesos-a.b is named for this agent but berth has no record of it; it is running; part of its history was set aside as corrupt, so it may be a task whose record is unreadable: left as it is".into(),
            ),
            (
                Ground::OrphanMaybeLost { name: name(), state: state() }.into(),
                "container mesos-a.b is named for this agent but berth has no record of it; it is running; the store lost its newest records at open, so it may be a task whose record was lost: left as it is".into(),
            ),
            (
                Ground::OrphanKeptByFlag { name: name(), state: state() }.into(),
                "container mesos-a.b is named for this agent but berth has no record of it; it is running; --docker_kill_orphans=false: left as it is".into(),
            ),
            (
                Ground::OrphanLeftover { name: name(), state: state(), stop: true }.into(),
                "container mesos-a.b is named for this agent but berth has no record of it; it is running; its labels agree and the store is whole, so it is a leftover: stopped and removed".into(),
            ),
            (
                Ground::OrphanLeftover { name: name(), state: "exited with status 0".into(), stop: false }.into(),
                "container mesos-a.b is named for this agent but berth has no record of it; it exited with status 0; its labels agree and the store is whole, so it is a leftover: removed".into(),
            ),
        ];
        for (why, words) in table {
            assert_eq!(why.to_string(), words, "{why:?}");
        }
    }

    /// Each shared ending once, after the ground it completes.
    #[test]
    fn every_shared_ending_renders_after_its_ground() {
        let ground = || Ground::LaunchNothingRan {
            phase: "pulling",
            container: "container mesos-a.b does not exist".into(),
        };
        let because = "its launch was pulling when berth stopped and container mesos-a.b does not exist, so nothing ran";
        let table = [
            (
                Then::Resumes { from: ResumeFrom::Pulling, removing: vec![] },
                ": the launch resumes from Pulling",
            ),
            (
                Then::Resumes {
                    from: ResumeFrom::ExecutorStarting,
                    removing: vec!["mesos-a.b".into(), "mesos-a.b.executor".into()],
                },
                ": the launch resumes from ExecutorStarting, after removing mesos-a.b and mesos-a.b.executor, so that the task never has two containers",
            ),
            (
                Then::TooLateToStart,
                ", but its max_completion_time ran out while berth was down, so it is not started: FAILED",
            ),
            (Then::Lost { stopped: false }, "; the task is LOST"),
            (
                Then::Lost { stopped: true },
                "; it is stopped now rather than left running unwatched; the task is LOST",
            ),
            (
                Then::ExitKept {
                    status: "command exited with status 0".into(),
                    state: TaskState::Finished,
                    name: "mesos-a.b".into(),
                },
                "; Docker kept its exit status (command exited with status 0), so the task ends TASK_FINISHED; output written while nobody watched is in `docker logs mesos-a.b` until the container is removed",
            ),
            (
                Then::KilledAtOnce,
                "; its max_completion_time ran out while berth was down, so it is killed at once",
            ),
        ];
        for (then, words) in table {
            let why = ground().then(then);
            assert_eq!(why.to_string(), format!("{because}{words}"), "{why:?}");
        }
    }
}

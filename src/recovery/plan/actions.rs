//! What the decision gives out: a [`Plan`] of one [`Decision`] per record and per listed
//! container without one, each naming its [`Subject`], the [`Action`] to carry out and
//! [`Why`], which renders to the reason a person reads.
//!
//! Apart from the rules so that `act.rs`, `retry.rs` and the dry run read the output
//! without the reasoning that made it; an action says only what to do, never why.

use berth_state::{Identity, Phase};
use uuid::Uuid;

use super::why::Why;
use crate::model::TaskState;

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
    /// Why, for the person whose task it is: stored in the container's history in the
    /// words it renders to.
    pub why: Why,
}

impl Decision {
    /// The history entry that records this decision, for a task whose history still takes
    /// one (a `Removed` history takes nothing more).
    pub fn history_entry(&self) -> Option<Phase> {
        match (&self.subject, &self.action) {
            (Subject::Task { .. }, Action::Done { .. }) | (Subject::Container { .. }, _) => None,
            (Subject::Task { .. }, action) => Some(Phase::Decision {
                action: action.name().to_owned(),
                why: self.why.to_string(),
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
    pub(super) fn new(state: TaskState, reason: &str) -> Outcome {
        Outcome {
            state,
            reason: reason.to_owned(),
        }
    }

    pub(super) fn lost(reason: &str) -> Outcome {
        Outcome::new(TaskState::Lost, reason)
    }
}

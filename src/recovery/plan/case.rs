//! One record with what Docker and /proc showed for it, and the first rules every record
//! meets: a history berth cannot read whole is held, then each stage goes to its rules
//! (`ending.rs` for a task that ended or was being killed, `launch.rs` for one launching or
//! running). The endings those rules share (resume, LOST, the exit code Docker kept) are
//! here, so that every stage ends a task the same way and says so in the same words.

use berth_state::Identity;

use super::actions::{Action, Outcome, ResumeFrom};
use super::seen::{Exec, Seen};
use super::views::{
    DockerView, Inspect, Listed, ProcessSeen, Recorded, Recover, Stage, Views, Workload,
};
use super::why::{Ground, Then, Why};
use super::REASON_MAX_COMPLETION_TIME_REACHED;
use crate::docker::ContainerName;
use crate::executor::outcome::{terminal_report, Exit, REASON_EXECUTOR_TERMINATED};
use crate::model::TaskState;

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

/// One record with what Docker and /proc showed for it.
pub(super) struct Case<'a> {
    pub(super) views: &'a Views,
    pub(super) record: &'a Recorded,
    pub(super) task_name: String,
    pub(super) task: Seen,
    pub(super) box_name: String,
    pub(super) executor_box: Seen,
    pub(super) exec: Exec<'a>,
}

impl<'a> Case<'a> {
    pub(super) fn new(
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

    pub(super) fn workload(&self) -> Workload {
        self.record.workload
    }

    pub(super) fn deadline_passed(&self) -> bool {
        self.record
            .kill_at_ms
            .is_some_and(|at| at <= self.views.now_ms)
    }

    /// Containers that may run, to stop; the executor's own container is kept while the
    /// executor in it is alive and still needed.
    pub(super) fn stop(&self, keep_executor: bool) -> Vec<String> {
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
    pub(super) fn all(&self) -> Vec<String> {
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
    pub(super) fn in_the_way(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.task == Seen::Created {
            names.push(self.task_name.clone());
        }
        if self.executor_box.present() {
            names.push(self.box_name.clone());
        }
        names
    }

    pub(super) fn container_words(&self) -> String {
        self.task.describe(&self.task_name)
    }

    pub(super) fn executor_words(&self) -> String {
        self.exec.describe(self.workload())
    }

    pub(super) fn decide(&self) -> (Action, Why) {
        let Some(stage) = &self.record.stage else {
            return (Action::Hold, Ground::NoPhase.into());
        };
        if self.views.quarantined.contains(&self.record.container_id) {
            return (Action::Hold, Ground::Quarantined.into());
        }
        if let Some(why) = self.views.unplannable.get(&self.record.container_id) {
            return (
                Action::Hold,
                Ground::Unplannable { why: why.clone() }.into(),
            );
        }
        // Its `.executor` container is its executor's (`--docker_mesos_image`); a task
        // container is not.
        if self.workload() == Workload::Process && self.task.present() {
            return (
                Action::Hold,
                Ground::ProcessHasContainer {
                    name: self.task_name.clone(),
                }
                .into(),
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

    pub(super) fn resume_point(stage: &Stage) -> ResumeFrom {
        match stage {
            Stage::Accepted | Stage::Fetching => ResumeFrom::Fetching,
            Stage::Pulling => ResumeFrom::Pulling,
            _ => ResumeFrom::ExecutorStarting,
        }
    }

    /// Resume, unless `max_completion_time` ran out while berth was down.
    pub(super) fn resume(&self, from: ResumeFrom, because: Ground) -> (Action, Why) {
        if self.deadline_passed() {
            return (
                Action::End {
                    outcome: Outcome::new(TaskState::Failed, REASON_MAX_COMPLETION_TIME_REACHED),
                    exit_code: None,
                    stop: Vec::new(),
                    sweep: None,
                },
                because.then(Then::TooLateToStart),
            );
        }
        let remove_first = self.in_the_way();
        let why = because.then(Then::Resumes {
            from,
            removing: remove_first.clone(),
        });
        (
            Action::Resume {
                from,
                remove_first,
                kill_at_ms: self.record.kill_at_ms,
            },
            why,
        )
    }

    pub(super) fn lost(&self, reason: &str, because: Ground) -> (Action, Why) {
        let stop = self.stop(false);
        let why = because.then(Then::Lost {
            stopped: !stop.is_empty(),
        });
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
    pub(super) fn exited(&self, code: Option<i32>, because: Ground) -> (Action, Why) {
        let Some(code) = code else {
            return self.lost(REASON_EXECUTOR_TERMINATED, because);
        };
        let report = terminal_report(0, &Exit::Container { code });
        let why = because.then(Then::ExitKept {
            status: report.message.unwrap_or_default(),
            state: report.state,
            name: self.task_name.clone(),
        });
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
            why,
        )
    }

    /// Re-adopted; killed at once if `max_completion_time` ran out while berth was down.
    pub(super) fn adopted(&self, because: Ground) -> Why {
        Why {
            ground: because,
            then: self.deadline_passed().then_some(Then::KilledAtOnce),
        }
    }

    /// The dead executor of a plain-process task whose recorded task process is still
    /// alive: the task is a member of the executor's session, so the session's id, the
    /// executor's pid, cannot have been given to another process since. `None` when that
    /// cannot be shown.
    pub(super) fn leftover_session(&self) -> Option<Identity> {
        let task = self.record.task_process.as_ref()?;
        let task_alive = matches!(self.views.processes.get(task), Some(ProcessSeen::Alive));
        match self.exec {
            Exec::Gone(executor) if task_alive => Some(executor.clone()),
            _ => None,
        }
    }
}

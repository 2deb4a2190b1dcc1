//! The rules for a launch under way or a task running when berth stopped: before the
//! executor (resume from the last durable phase, unless something ran), with a berth
//! executor (re-adopt it while it lives, otherwise end the task), and executor mode, where
//! the Docker container is the executor and is re-adopted while it runs.

use super::actions::{Action, ResumeFrom, Watch};
use super::case::Case;
use super::seen::{Exec, Seen};
use super::views::{Stage, Workload};
use super::REASON_AGENT_RESTARTED;
use crate::executor::outcome::REASON_EXECUTOR_TERMINATED;

const DEADLINE_PASSED: &str =
    "; its max_completion_time ran out while berth was down, so it is killed at once";

impl Case<'_> {
    /// Accepted, Fetching or Pulling: no executor yet, and in task mode no container.
    pub(super) fn before_executor(&self, stage: &Stage) -> (Action, String) {
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
    pub(super) fn with_executor(&self, stage: &Stage) -> (Action, String) {
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

    /// ExecutorStarting or Running in executor mode: the container is the executor.
    pub(super) fn executor_mode(&self, stage: &Stage) -> (Action, String) {
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

//! The rules for a launch under way or a task running when berth stopped: before the
//! executor (resume from the last durable phase, unless something ran), with a berth
//! executor (re-adopt it while it lives, otherwise end the task), and executor mode, where
//! the Docker container is the executor and is re-adopted while it runs.

use super::actions::{Action, ResumeFrom, Watch};
use super::case::Case;
use super::seen::{Exec, Seen};
use super::views::{Stage, Workload};
use super::why::{Ground, Why};
use super::REASON_AGENT_RESTARTED;
use crate::executor::outcome::REASON_EXECUTOR_TERMINATED;

impl Case<'_> {
    /// Accepted, Fetching or Pulling: no executor yet, and in task mode no container.
    pub(super) fn before_executor(&self, stage: &Stage) -> (Action, Why) {
        let container = self.container_words();
        let phase = match stage {
            Stage::Accepted => "accepted",
            Stage::Fetching => "fetching",
            _ => "pulling",
        };
        match &self.task {
            Seen::Unknown(_) => {
                return (
                    Action::Defer,
                    Ground::LaunchUnknown { phase, container }.into(),
                )
            }
            Seen::Absent | Seen::Created => {
                return self.resume(
                    Self::resume_point(stage),
                    Ground::LaunchNothingRan { phase, container },
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
                    Ground::LaunchAheadOfLostRecords { phase, container }.into(),
                );
            }
            return self.lost(
                REASON_AGENT_RESTARTED,
                Ground::LaunchAhead { phase, container },
            );
        }
        // Executor mode records its output process before it starts the container; a
        // berth that started it first (older stores) leaves a started container here,
        // and it is this task's executor.
        match &self.task {
            Seen::Live(_) => (
                Action::Adopt {
                    watch: Watch::Container {
                        reattach_output: true,
                    },
                    kill_at_ms: self.record.kill_at_ms,
                },
                self.adopted(Ground::ExecutorStartedUnrecorded { container }),
            ),
            Seen::Exited(code) => self.exited(*code, Ground::ExecutorEndedUnrecorded { container }),
            _ => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::ExecutorContainerDead { container },
            ),
        }
    }

    /// ExecutorStarting or Running, with a berth executor (a Docker task or a process).
    pub(super) fn with_executor(&self, stage: &Stage) -> (Action, Why) {
        let running = *stage == Stage::Running;
        let container = self.container_words();
        let executor = self.executor_words();
        if self.exec.alive().is_some() {
            return (
                Action::Adopt {
                    watch: Watch::Executor,
                    kill_at_ms: self.record.kill_at_ms,
                },
                self.adopted(Ground::ExecutorAlive { executor }),
            );
        }
        if self.exec.unchecked() {
            return (Action::Defer, Ground::ExecutorUnchecked { executor }.into());
        }
        // Its process lives, outside the container recorded for it: never a second
        // executor beside it, whatever the stage.
        if matches!(self.exec, Exec::Replaced(_))
            && !matches!(self.task, Seen::Exited(_) | Seen::Unknown(_))
        {
            return self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::ExecutorReplaced {
                    executor,
                    container,
                },
            );
        }
        if running && self.workload() == Workload::Process {
            let pid = self.record.task_pid;
            if let Some(session) = self.leftover_session() {
                let (action, why) = self.lost(
                    REASON_EXECUTOR_TERMINATED,
                    Ground::SessionSwept { executor, pid },
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
                        sweep: Some(session),
                    },
                    other => other,
                };
                return (action, why);
            }
            let because = if self.exec.rebooted() {
                Ground::ProcessRebooted { executor }
            } else if self.views.serving {
                Ground::SessionKilled { executor, pid }
            } else {
                Ground::ProcessUnproven { executor, pid }
            };
            return self.lost(REASON_EXECUTOR_TERMINATED, because);
        }
        if running && self.exec.rebooted() {
            return self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::ExecutorRebooted {
                    executor,
                    container,
                },
            );
        }
        match &self.task {
            Seen::Unknown(_) => (
                Action::Defer,
                Ground::AskDocker {
                    executor,
                    container,
                }
                .into(),
            ),
            Seen::Absent | Seen::Created if !running && self.views.serving => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::DiedWhileServing {
                    executor,
                    container,
                },
            ),
            Seen::Absent
                if !running
                    && self.workload() == Workload::Process
                    && self.views.released.contains(&self.record.container_id) =>
            {
                self.lost(
                    REASON_EXECUTOR_TERMINATED,
                    Ground::ProcessReleased { executor },
                )
            }
            Seen::Absent | Seen::Created if !running => self.resume(
                ResumeFrom::ExecutorStarting,
                Ground::TaskNeverStarted {
                    executor,
                    container,
                },
            ),
            Seen::Live(_) => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::ContainerUnwatched {
                    executor,
                    container,
                },
            ),
            Seen::Exited(_) if self.exec.rebooted() => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::RebootEnded {
                    executor,
                    container,
                },
            ),
            Seen::Exited(code) => self.exited(
                *code,
                Ground::ContainerExited {
                    executor,
                    container,
                },
            ),
            Seen::Absent | Seen::Created | Seen::Dead => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::EndUnknown {
                    executor,
                    container,
                },
            ),
        }
    }

    /// ExecutorStarting or Running in executor mode: the container is the executor.
    pub(super) fn executor_mode(&self, stage: &Stage) -> (Action, Why) {
        let starting = *stage == Stage::ExecutorStarting;
        let container = self.container_words();
        let executor = self.executor_words();
        let adopt = |reattach_output: bool, because: Ground| {
            (
                Action::Adopt {
                    watch: Watch::Container { reattach_output },
                    kill_at_ms: self.record.kill_at_ms,
                },
                self.adopted(because),
            )
        };
        match &self.task {
            Seen::Unknown(_) => (
                Action::Defer,
                Ground::ExecutorContainerUnknown { container }.into(),
            ),
            Seen::Absent => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::ExecutorContainerRemoved { container },
            ),
            Seen::Dead => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::ExecutorContainerDead { container },
            ),
            _ if self.exec.unchecked() => (
                Action::Defer,
                Ground::RebootUnchecked {
                    container,
                    executor,
                }
                .into(),
            ),
            Seen::Created if !starting => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::ExecutorContainerNotStarted { container },
            ),
            Seen::Created => match self.exec {
                Exec::Alive(_) => adopt(
                    false,
                    Ground::ExecutorContainerStarting {
                        container,
                        executor,
                    },
                ),
                _ => self.resume(
                    ResumeFrom::ExecutorStarting,
                    Ground::ExecutorContainerNothingRan {
                        container,
                        executor,
                    },
                ),
            },
            Seen::Live(_) if self.exec.rebooted() => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::RestartedAfterReboot {
                    executor,
                    container,
                },
            ),
            Seen::Live(_) => match self.exec {
                Exec::Alive(_) => adopt(
                    false,
                    Ground::ExecutorContainerRuns {
                        container,
                        executor,
                    },
                ),
                _ => adopt(
                    true,
                    Ground::ExecutorContainerRunsAlone {
                        container,
                        executor,
                    },
                ),
            },
            Seen::Exited(_) if self.exec.rebooted() => self.lost(
                REASON_EXECUTOR_TERMINATED,
                Ground::RebootEnded {
                    executor,
                    container,
                },
            ),
            Seen::Exited(code) => self.exited(*code, Ground::ExecutorContainerExited { container }),
        }
    }
}

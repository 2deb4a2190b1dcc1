//! The rules for a task whose end was recorded or asked for: removed, ended (its
//! containers go at their due time), a kill recorded before the restart (finished, never
//! undone), and `--recover=cleanup`, which ends every task of the agent.

use super::actions::{Action, Outcome};
use super::case::Case;
use super::seen::{Exec, Seen};
use super::views::{KillAsked, Stage, Workload};
use super::why::{Due, Ground, Why};
use super::{
    REASON_MAX_COMPLETION_TIME_REACHED, REASON_TASK_KILLED, REASON_TASK_KILLED_DURING_LAUNCH,
};
use crate::model::TaskState;

impl Case<'_> {
    pub(super) fn removed(&self) -> (Action, Why) {
        let leftovers = self.all();
        let why = if leftovers.is_empty() {
            Ground::RemovedNothingLeft
        } else {
            Ground::RemovedLeftovers {
                container: self.container_words(),
            }
        };
        (Action::Done { remove: leftovers }, why.into())
    }

    pub(super) fn cleanup(&self, stage: &Stage) -> (Action, Why) {
        let signal = self.exec.alive().cloned();
        let terminated = matches!(stage, Stage::Terminated { .. });
        if !terminated && self.workload() == Workload::Process && self.exec.unchecked() {
            return (
                Action::Defer,
                Ground::CleanupUnchecked {
                    executor: self.executor_words(),
                }
                .into(),
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
        let sweep = self.leftover_session();
        let why = Ground::Cleanup {
            kills: outcome.as_ref().map(|o| o.state),
            container: self.container_words(),
            executor: self.executor_words(),
            signalled: signal.is_some(),
            swept: sweep.is_some(),
        };
        (
            Action::Clean {
                outcome,
                grace_left_ms,
                stop: self.stop(false),
                signal,
                sweep,
                remove: self.all(),
            },
            why.into(),
        )
    }

    pub(super) fn terminated(&self, remove_at_ms: u64) -> (Action, Why) {
        let answer = self.exec.alive().is_some();
        let stop = self.stop(answer);
        let why = Ground::Ended {
            stopping: (!stop.is_empty()).then(|| self.container_words()),
            remove: if remove_at_ms <= self.views.now_ms {
                Due::Now
            } else {
                Due::At(remove_at_ms)
            },
            answering: answer.then(|| self.executor_words()),
        };
        (
            Action::RemoveAt {
                at_ms: remove_at_ms,
                stop,
                remove: self.all(),
                answer_executor: answer,
            },
            why.into(),
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

    pub(super) fn killing(&self, kill: &KillAsked) -> (Action, Why) {
        let outcome = self.kill_outcome(kill);
        let asked = kill.reason.clone();
        let grace_left_ms = self.grace_left(kill);
        let state = outcome.state;
        if self.workload() == Workload::Process {
            let executor = self.executor_words();
            return match self.exec {
                Exec::Unchecked(..) => (
                    Action::Defer,
                    Ground::KillUnchecked { asked, executor }.into(),
                ),
                Exec::Alive(id) => (
                    Action::FinishKill {
                        outcome,
                        grace_left_ms,
                        stop: Vec::new(),
                        signal: Some(id.clone()),
                        await_executor: true,
                    },
                    Ground::KillSignalled {
                        asked,
                        executor,
                        state,
                    }
                    .into(),
                ),
                _ => match self.leftover_session() {
                    Some(session) => (
                        Action::End {
                            outcome,
                            exit_code: None,
                            stop: Vec::new(),
                            sweep: Some(session),
                        },
                        Ground::KillSwept {
                            asked,
                            executor,
                            state,
                        }
                        .into(),
                    ),
                    None => (
                        Action::FinishKill {
                            outcome,
                            grace_left_ms,
                            stop: Vec::new(),
                            signal: None,
                            await_executor: false,
                        },
                        Ground::KillNothingToSignal {
                            asked,
                            executor,
                            state,
                        }
                        .into(),
                    ),
                },
            };
        }
        let await_executor = self.workload() == Workload::DockerTask && self.exec.alive().is_some();
        let stop = self.stop(await_executor);
        let why = Ground::KillContainers {
            asked,
            container: self.container_words(),
            stopping_ms: (!stop.is_empty()).then_some(grace_left_ms),
            awaiting: await_executor.then(|| self.executor_words()),
            state,
        };
        (
            Action::FinishKill {
                outcome,
                grace_left_ms,
                stop,
                signal: None,
                await_executor,
            },
            why.into(),
        )
    }
}

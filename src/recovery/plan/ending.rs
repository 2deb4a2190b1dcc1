//! The rules for a task whose end was recorded or asked for: removed, ended (its
//! containers go at their due time), a kill recorded before the restart (finished, never
//! undone), and `--recover=cleanup`, which ends every task of the agent.

use super::actions::{Action, Outcome};
use super::case::Case;
use super::seen::{Exec, Seen};
use super::views::{KillAsked, Stage, Workload};
use super::{
    word, REASON_MAX_COMPLETION_TIME_REACHED, REASON_TASK_KILLED, REASON_TASK_KILLED_DURING_LAUNCH,
};
use crate::model::TaskState;

impl Case<'_> {
    pub(super) fn removed(&self) -> (Action, String) {
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

    pub(super) fn cleanup(&self, stage: &Stage) -> (Action, String) {
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

    pub(super) fn terminated(&self, remove_at_ms: u64) -> (Action, String) {
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

    pub(super) fn killing(&self, kill: &KillAsked) -> (Action, String) {
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
}

//! A container as the API shows it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::TaskState;

/// A container's state as `berth ps`, `wait` and the API report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The container (launch) id.
    pub container_id: Uuid,
    /// The task's id.
    pub task_id: String,
    /// Its state.
    pub state: TaskState,
    /// Mesos's reason of the last change, such as `REASON_EXECUTOR_TERMINATED`; none
    /// where Mesos sets none (an exit, a kill on request).
    pub reason: Option<String>,
    /// What happened, for a person.
    pub message: Option<String>,
    /// Exit code, once exited.
    pub exit_code: Option<i32>,
    /// The Docker container's name; `None` for a plain process.
    pub docker_name: Option<String>,
    /// The Docker image it runs; `None` for a plain process (and from an agent that did
    /// not say).
    #[serde(default)]
    pub image: Option<String>,
    /// The sandbox on the host.
    pub sandbox: PathBuf,
    /// The task's pid while it runs.
    pub pid: Option<u32>,
    /// When it was accepted (ms since the epoch).
    pub accepted_at_ms: u64,
}

/// Why [`TaskView::advance`] left a view as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// [`TaskState::can_become`] does not take the task from `from` to `to`.
    Illegal {
        /// The view's state.
        from: TaskState,
        /// The state refused.
        to: TaskState,
    },
    /// The task already ended in this state: an end is taken once, so its reason,
    /// message and exit code stay the first's.
    Ended(TaskState),
}

impl TaskView {
    /// Moves to `next` if the transition is allowed; else says why not, and the view is
    /// left as it was.
    pub fn advance(
        &mut self,
        next: TaskState,
        reason: Option<String>,
        message: Option<String>,
    ) -> Result<(), Refused> {
        if !self.state.can_become(next) {
            return Err(Refused::Illegal {
                from: self.state,
                to: next,
            });
        }
        if self.state == next && next.is_terminal() {
            return Err(Refused::Ended(next));
        }
        self.state = next;
        // As the API says it: no reason where Mesos sets none, and earlier berths' words
        // as today's.
        if let Some(reason) = reason {
            self.reason = crate::model::reason::read(&reason);
        }
        if message.is_some() {
            self.message = message;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: TaskState) -> TaskView {
        TaskView {
            container_id: Uuid::nil(),
            task_id: "t".into(),
            state,
            reason: None,
            message: Some("before".into()),
            exit_code: None,
            docker_name: None,
            image: None,
            sandbox: PathBuf::new(),
            pid: None,
            accepted_at_ms: 0,
        }
    }

    #[test]
    fn a_refused_move_says_why_and_leaves_the_view_as_it_was() {
        let mut running = view(TaskState::Running);
        assert_eq!(
            running.advance(TaskState::Staging, None, Some("back".into())),
            Err(Refused::Illegal {
                from: TaskState::Running,
                to: TaskState::Staging
            })
        );
        assert_eq!(running, view(TaskState::Running));

        let mut killed = view(TaskState::Killed);
        assert_eq!(
            killed.advance(TaskState::Killed, None, Some("again".into())),
            Err(Refused::Ended(TaskState::Killed))
        );
        assert_eq!(killed, view(TaskState::Killed));

        let mut killing = view(TaskState::Killing);
        assert_eq!(
            killing.advance(TaskState::Killing, None, Some("again".into())),
            Ok(()),
            "a second kill is taken: it is not an end"
        );
        assert_eq!(killing.message.as_deref(), Some("again"));
    }
}

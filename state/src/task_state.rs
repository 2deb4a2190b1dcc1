//! A task's states, as Mesos names them, and the one guard on their transitions.
//!
//! Here, with the records, because the store writes them (`Phase::Terminated`,
//! `StatusRecord`): bincode writes a variant as its index, so variants are only ever
//! appended. berth's task model re-exports the type for every other layer.

use serde::{Deserialize, Serialize};

/// A task's state, as Mesos names them.
///
/// Written as Mesos's JSON writes them (`TASK_RUNNING`); the bare names earlier berths
/// wrote (`RUNNING`) are read as the same states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    /// Accepted; fetching and pulling.
    #[serde(rename = "TASK_STAGING", alias = "STAGING")]
    Staging,
    /// The executor or container is starting.
    #[serde(rename = "TASK_STARTING", alias = "STARTING")]
    Starting,
    /// Running.
    #[serde(rename = "TASK_RUNNING", alias = "RUNNING")]
    Running,
    /// A kill was requested and is under way.
    #[serde(rename = "TASK_KILLING", alias = "KILLING")]
    Killing,
    /// Exited with status 0.
    #[serde(rename = "TASK_FINISHED", alias = "FINISHED")]
    Finished,
    /// Exited otherwise, could not start, or ran out of its `max_completion_time`.
    #[serde(rename = "TASK_FAILED", alias = "FAILED")]
    Failed,
    /// Killed on request.
    #[serde(rename = "TASK_KILLED", alias = "KILLED")]
    Killed,
    /// Ended, but how is not known: berth lost track of it; the reason says how.
    #[serde(rename = "TASK_LOST", alias = "LOST")]
    Lost,
}

impl TaskState {
    /// Every state, in the order of a task's life.
    pub const ALL: [TaskState; 8] = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Lost,
    ];

    /// The state named as the API and the store write it (`TASK_RUNNING`), or as earlier
    /// berths wrote it (`RUNNING`).
    pub fn from_name(name: &str) -> Option<TaskState> {
        let bare = name.strip_prefix("TASK_").unwrap_or(name);
        TaskState::ALL
            .into_iter()
            .find(|s| s.name().strip_prefix("TASK_") == Some(bare))
    }

    /// Mesos's name of the state, as the API, the CLI and the store write it.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Lost => "TASK_LOST",
        }
    }

    /// Whether nothing more will happen to the task.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Killed | TaskState::Lost
        )
    }

    /// Whether a status report may move a task from `self` to `next`. A kill, once
    /// requested, can only end in a terminal state other than FINISHED, and a terminal
    /// state is final.
    ///
    /// Every state has its own arm, without a wildcard: a new state must be decided here.
    pub fn can_become(self, next: TaskState) -> bool {
        use TaskState::*;
        match self {
            Staging => true,
            Starting => next != Staging,
            Running => !matches!(next, Staging | Starting),
            Killing => matches!(next, Killing | Failed | Killed | Lost),
            Finished | Failed | Killed | Lost => next == self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    /// One row per state: where it may go, of every state.
    #[test]
    fn each_state_goes_only_where_its_row_says() {
        let rows: [(TaskState, &[TaskState]); 8] = [
            (Staging, &TaskState::ALL),
            (
                Starting,
                &[Starting, Running, Killing, Finished, Failed, Killed, Lost],
            ),
            (Running, &[Running, Killing, Finished, Failed, Killed, Lost]),
            (Killing, &[Killing, Failed, Killed, Lost]),
            (Finished, &[Finished]),
            (Failed, &[Failed]),
            (Killed, &[Killed]),
            (Lost, &[Lost]),
        ];
        for (from, allowed) in rows {
            for to in TaskState::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&to),
                    "{from:?} -> {to:?}"
                );
            }
        }
        assert_eq!(
            rows.map(|(s, _)| s),
            TaskState::ALL,
            "a row for every state"
        );
    }

    /// bincode stores a variant as its index: these are a contract with every store.
    #[test]
    fn each_state_keeps_its_stored_index() {
        let pinned = [
            (Staging, 0u32),
            (Starting, 1),
            (Running, 2),
            (Killing, 3),
            (Finished, 4),
            (Failed, 5),
            (Killed, 6),
            (Lost, 7),
        ];
        for (state, index) in pinned {
            let bytes = crate::codec::encode(&state).expect("encode");
            assert_eq!(
                bytes[crate::codec::HEADER_LEN..],
                index.to_le_bytes(),
                "{state:?}"
            );
        }
        assert_eq!(
            pinned.map(|(s, _)| s),
            TaskState::ALL,
            "a pin for every state"
        );
    }

    #[test]
    fn states_print_as_mesos_does_and_earlier_names_still_read() {
        let json = serde_json::to_string(&[Staging, Killed]).expect("serialize");
        assert_eq!(json, r#"["TASK_STAGING","TASK_KILLED"]"#);
        for state in TaskState::ALL {
            let bare = state.name().strip_prefix("TASK_").expect("TASK_");
            for name in [state.name(), bare] {
                assert_eq!(TaskState::from_name(name), Some(state), "{name}");
                let read: TaskState = serde_json::from_value(serde_json::json!(name)).expect(name);
                assert_eq!(read, state, "{name}");
            }
            assert_eq!(serde_json::json!(state), serde_json::json!(state.name()));
        }
        for unknown in ["TASK_", "", "TASK_TASK_RUNNING", "running", "TASK_GONE"] {
            assert_eq!(TaskState::from_name(unknown), None, "{unknown}");
        }
    }
}

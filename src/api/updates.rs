//! A task's status updates, as Mesos's `TaskStatus` says them, made from its records: one
//! update for each change of state the store holds, in the order it was recorded. The
//! event stream (`GET /v1/events`) and `berth events` show them. Pure.
//!
//! The store's sequence number of the record that made an update is its `position`: it
//! grows across the whole store and across restarts, so a reader that resumes after the
//! last position it read misses nothing and reads nothing twice. Each update's `uuid` is
//! made from its container and position, so reading it again gives the same one.
//!
//! Who says so (`source`): a task's RUNNING, and an end its executor reported (a killed
//! task's too: the executor reports how its process ended, and the kill names the state),
//! come from the executor (`SOURCE_EXECUTOR`); staging, starting, a kill under way and
//! every end the agent decided itself (a launch step that failed in the agent, a recovery
//! decision) from the agent (`SOURCE_AGENT`). berth has no master, so never
//! `SOURCE_MASTER`. Mesos sends no STAGING update and its executors send KILLING; berth
//! lists STAGING so that a task appears in the stream when it is accepted, and KILLING is
//! the agent's because the agent records the kill before it signals.

use base64::Engine as _;
use berth_state::{Phase, PhaseRecord, StatusRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::TaskState;

/// Who made an update, as Mesos's `TaskStatus.Source` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The agent decided the state itself.
    #[serde(rename = "SOURCE_AGENT")]
    Agent,
    /// The task's executor reported it.
    #[serde(rename = "SOURCE_EXECUTOR")]
    Executor,
}

/// One status update of one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The store-wide sequence number of the record that made it.
    pub position: u64,
    /// The container.
    pub container_id: Uuid,
    /// The task.
    pub task_id: String,
    /// The state it moved to.
    pub state: TaskState,
    /// Who said so.
    pub source: Source,
    /// Mesos's reason, where Mesos has one for it.
    pub reason: Option<String>,
    /// For a person.
    pub message: Option<String>,
    /// When it was recorded (ms since the epoch).
    pub at_ms: u64,
    /// The exit code, with an end that has one.
    pub exit_code: Option<i32>,
}

/// The updates one container's records make, oldest first: `history` its phases,
/// `statuses` its executor's reports as recorded.
pub fn of_history(history: &[PhaseRecord], statuses: &[StatusRecord]) -> Vec<Update> {
    let Some(task_id) = history.iter().find_map(|r| match &r.phase {
        Phase::Accepted { task_id, .. } => Some(task_id.clone()),
        _ => None,
    }) else {
        return Vec::new();
    };
    let mut updates: Vec<Update> = Vec::new();
    let mut state: Option<TaskState> = None;
    for record in history {
        let update = |next, source, reason: Option<String>, message: Option<String>| Update {
            position: record.seq,
            container_id: record.container_id,
            task_id: task_id.clone(),
            state: next,
            source,
            reason,
            message,
            at_ms: record.at_ms,
            exit_code: None,
        };
        let Some(announced) = crate::model::phase::announced(&record.phase) else {
            continue;
        };
        let made = match &record.phase {
            Phase::Accepted { .. } => update(
                announced,
                Source::Agent,
                None,
                Some("accepted; fetching and pulling".into()),
            ),
            Phase::ExecutorStarting { .. } | Phase::ExecutorContainerStarting { .. } => update(
                announced,
                Source::Agent,
                None,
                Some("its executor is starting".into()),
            ),
            Phase::Killing { reason, .. } => {
                update(announced, Source::Agent, None, Some(reason.clone()))
            }
            Phase::Terminated {
                reason,
                message,
                exit_code,
                ..
            } => {
                let reason = crate::model::reason::read(reason);
                // The executor reported an end first (a killed task's is its own exit,
                // which the kill's state replaces): the end comes from it.
                let reported = statuses
                    .iter()
                    .any(|s| s.seq < record.seq && s.state.is_terminal());
                let source = if reported {
                    Source::Executor
                } else {
                    Source::Agent
                };
                Update {
                    exit_code: *exit_code,
                    ..update(announced, source, reason, Some(message.clone()))
                }
            }
            Phase::Running { .. } | Phase::RunningProcess { .. } => {
                update(announced, Source::Executor, None, None)
            }
            // They announce no state: `announced` said so above.
            Phase::Fetching | Phase::Pulling { .. } | Phase::Removed | Phase::Decision { .. } => {
                continue;
            }
        };
        // Only changes: a launch resumed after a restart starts its executor again.
        let moves = match state {
            None => true,
            Some(now) => now != made.state && now.can_become(made.state),
        };
        if moves {
            state = Some(made.state);
            updates.push(made);
        }
    }
    updates
}

impl Update {
    /// The update's id, the same each time it is read.
    pub fn uuid(&self) -> Uuid {
        Uuid::new_v5(&self.container_id, &self.position.to_be_bytes())
    }

    /// The update as the event stream writes it: Mesos's `TASK_UPDATED` event, whose
    /// `status` is a `TaskStatus` as Mesos's JSON writes one (`uuid` as base64 bytes,
    /// `timestamp` in seconds), with berth's `position` to resume from and the exit code.
    pub fn event(&self, agent_id: Uuid) -> serde_json::Value {
        let mut status = serde_json::json!({
            "task_id": { "value": self.task_id },
            "state": self.state,
            "source": self.source,
            "timestamp": self.at_ms as f64 / 1000.0,
            "uuid": base64::engine::general_purpose::STANDARD.encode(self.uuid().as_bytes()),
            "agent_id": { "value": agent_id.to_string() },
            "container_status": { "container_id": { "value": self.container_id.to_string() } },
        });
        if let Some(reason) = &self.reason {
            status["reason"] = serde_json::json!(reason);
        }
        if let Some(message) = &self.message {
            status["message"] = serde_json::json!(message);
        }
        let mut updated = serde_json::json!({
            "container_id": self.container_id.to_string(),
            "state": self.state,
            "status": status,
        });
        if let Some(code) = self.exit_code {
            updated["exit_code"] = serde_json::json!(code);
        }
        serde_json::json!({
            "type": "TASK_UPDATED",
            "position": self.position,
            "task_updated": updated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Uuid = Uuid::from_u128(7);

    fn at(seq: u64, phase: Phase) -> PhaseRecord {
        PhaseRecord {
            seq,
            at_ms: seq * 1000,
            container_id: C,
            phase,
        }
    }

    fn accepted() -> Phase {
        Phase::Accepted {
            task_id: "web".into(),
            task_json: "{}".into(),
            kill_at_ms: None,
        }
    }

    fn starting() -> Phase {
        Phase::ExecutorStarting {
            identity: berth_state::Identity {
                boot_id: "b".into(),
                pid: 1,
                start_ticks: 1,
            },
        }
    }

    fn ended(state: TaskState, reason: &str) -> Phase {
        Phase::Terminated {
            state,
            reason: reason.into(),
            message: "m".into(),
            exit_code: Some(3),
            remove_at_ms: 0,
        }
    }

    fn reported(seq: u64, state: TaskState) -> StatusRecord {
        StatusRecord {
            seq,
            at_ms: 0,
            container_id: C,
            report_seq: 1,
            state,
            reason: None,
            message: None,
            exit_code: None,
            acknowledged: true,
        }
    }

    fn said(updates: &[Update]) -> Vec<(u64, TaskState, Source, Option<&str>)> {
        updates
            .iter()
            .map(|u| (u.position, u.state, u.source, u.reason.as_deref()))
            .collect()
    }

    #[test]
    fn each_change_of_state_is_one_update_from_whoever_made_it() {
        use Source::*;
        use TaskState::*;
        let running = Phase::Running {
            container: "c".into(),
            pid: Some(9),
        };
        let killing = Phase::Killing {
            grace_ms: 0,
            requested_at_ms: 0,
            reason: "killed on request".into(),
        };
        let cases: Vec<(&str, Vec<PhaseRecord>, Vec<StatusRecord>, Vec<_>)> = vec![
            (
                "an end the executor reported",
                vec![
                    at(1, accepted()),
                    at(2, Phase::Fetching),
                    at(3, starting()),
                    at(5, running.clone()),
                    at(7, ended(TaskState::Failed, "")),
                    at(8, Phase::Removed),
                ],
                vec![
                    reported(4, TaskState::Running),
                    reported(6, TaskState::Failed),
                ],
                vec![
                    (1, Staging, Agent, None),
                    (3, Starting, Agent, None),
                    (5, Running, Executor, None),
                    (7, Failed, Executor, None),
                ],
            ),
            (
                "an end the agent decided, in an earlier berth's words",
                vec![
                    at(1, accepted()),
                    at(2, starting()),
                    at(
                        3,
                        Phase::Decision {
                            action: "resume launch".into(),
                            why: "w".into(),
                        },
                    ),
                    at(4, starting()),
                    at(5, killing.clone()),
                    at(6, ended(TaskState::Lost, "REASON_SLAVE_RESTARTED")),
                ],
                vec![],
                vec![
                    (1, Staging, Agent, None),
                    (2, Starting, Agent, None),
                    (5, Killing, Agent, None),
                    (6, Lost, Agent, Some("REASON_AGENT_RESTARTED")),
                ],
            ),
            (
                "a kill the executor carried out",
                vec![
                    at(1, accepted()),
                    at(2, starting()),
                    at(4, running),
                    at(5, killing),
                    at(7, ended(TaskState::Killed, "REASON_TASK_KILLED")),
                ],
                vec![
                    reported(3, TaskState::Running),
                    reported(6, TaskState::Failed),
                ],
                vec![
                    (1, Staging, Agent, None),
                    (2, Starting, Agent, None),
                    (4, Running, Executor, None),
                    (5, Killing, Agent, None),
                    (7, Killed, Executor, None),
                ],
            ),
            (
                "no Accepted record: nothing",
                vec![at(2, starting())],
                vec![],
                vec![],
            ),
        ];
        for (what, history, statuses, want) in cases {
            assert_eq!(said(&of_history(&history, &statuses)), want, "{what}");
        }
    }

    #[test]
    fn an_event_is_a_mesos_task_status_with_a_position() {
        let history = [at(1, accepted()), at(2, ended(TaskState::Failed, ""))];
        let updates = of_history(&history, &[]);
        let event = updates[1].event(Uuid::from_u128(1));
        assert_eq!(event["type"], "TASK_UPDATED");
        assert_eq!(event["position"], 2);
        let updated = &event["task_updated"];
        assert_eq!(updated["exit_code"], 3);
        let status = &updated["status"];
        assert_eq!(status["task_id"]["value"], "web");
        assert_eq!(status["state"], "TASK_FAILED");
        assert_eq!(status["source"], "SOURCE_AGENT");
        assert_eq!(status["timestamp"], 2.0);
        assert_eq!(status["message"], "m");
        assert!(status.get("reason").is_none(), "{status}");
        let uuid = base64::engine::general_purpose::STANDARD
            .decode(status["uuid"].as_str().expect("uuid"))
            .expect("base64");
        assert_eq!(uuid, updates[1].uuid().as_bytes());
        // The same update read again is the same one; another is another.
        assert_eq!(of_history(&history, &[])[1].uuid(), updates[1].uuid());
        assert_ne!(updates[0].uuid(), updates[1].uuid());
    }
}

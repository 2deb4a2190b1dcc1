//! The JSON bodies of berth's HTTP API, shared by the server and the CLI's client.

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
    pub fn can_become(self, next: TaskState) -> bool {
        use TaskState::*;
        match (self, next) {
            (a, b) if a.is_terminal() => a == b,
            (Killing, Running | Starting | Staging | Finished) => false,
            (Running, Staging | Starting) => false,
            (Starting, Staging) => false,
            _ => true,
        }
    }
}

/// A status report from an executor, retried until acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Increases with each report of one executor; a repeat is acknowledged again and
    /// not applied twice.
    pub seq: u64,
    /// `Running` once the container runs; a terminal state when it has exited.
    pub state: TaskState,
    /// The container's (or process's) pid, with `Running`.
    #[serde(default)]
    pub pid: Option<u32>,
    /// A plain process's start time (clock ticks after boot, `/proc/<pid>/stat`), with
    /// `Running`: with the pid, the process's identity, recorded so that it can be proven
    /// the task's later.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// The exit code, with a terminal state.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Mesos's reason, such as `REASON_CONTAINER_LAUNCH_FAILED`; none for an exit.
    #[serde(default)]
    pub reason: Option<String>,
    /// What happened, for a person.
    #[serde(default)]
    pub message: Option<String>,
}

impl StatusReport {
    /// RUNNING, with the pid (and a plain process's start time) when known.
    pub fn running(seq: u64, pid: Option<u32>, start_ticks: Option<u64>) -> StatusReport {
        StatusReport {
            seq,
            state: TaskState::Running,
            pid,
            start_ticks,
            exit_code: None,
            reason: None,
            message: None,
        }
    }
}

/// The acknowledgement of a [`StatusReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The acknowledged report's `seq`.
    pub seq: u64,
}

/// The body of a kill request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KillBody {
    /// Grace between SIGTERM and SIGKILL, such as `10secs`; the task's kill policy (or
    /// `--docker_stop_timeout`) when absent.
    #[serde(default)]
    pub grace: Option<String>,
}

/// An error body: every non-2xx answer has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong and what to do.
    pub error: String,
    /// With a 409: the container that already holds the task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    #[test]
    fn transitions() {
        let all = [
            Staging, Starting, Running, Killing, Finished, Failed, Killed, Lost,
        ];
        for from in all {
            for to in all {
                let allowed = from.can_become(to);
                let expected = match from {
                    Finished | Failed | Killed | Lost => from == to,
                    Killing => matches!(to, Killing | Failed | Killed | Lost),
                    Running => !matches!(to, Staging | Starting),
                    Starting => to != Staging,
                    Staging => true,
                };
                assert_eq!(allowed, expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn health_from_an_agent_that_does_not_say_about_docker_reads_unknown() {
        let id = "00000000-0000-0000-0000-000000000000";
        let cases = [
            (
                format!(r#"{{"status":"ok","agent_id":"{id}"}}"#),
                DockerHealth::default(),
            ),
            (
                format!(r#"{{"status":"ok","agent_id":"{id}","docker":{{"status":"paused"}}}}"#),
                DockerHealth::default(),
            ),
            (
                format!(
                    r#"{{"status":"ok","agent_id":"{id}","docker":{{"status":"unavailable","since_ms":7,"error":"refused"}}}}"#
                ),
                DockerHealth {
                    status: DockerStatus::Unavailable,
                    since_ms: Some(7),
                    error: Some("refused".into()),
                },
            ),
        ];
        for (json, want) in cases {
            let health: Health = serde_json::from_str(&json).expect(&json);
            assert_eq!(health.docker, want, "{json}");
        }
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

/// `POST /v1/state`: a `berth state` view rendered by the agent from the store it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRequest {
    /// Which view.
    #[serde(flatten)]
    pub view: crate::state_command::View,
    /// JSON instead of a table.
    #[serde(default)]
    pub json: bool,
}

/// The answer to a [`StateRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateAnswer {
    /// False when `verify` found something wrong.
    pub ok: bool,
    /// The view, exactly as the offline command prints it.
    pub output: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Whether the agent takes launches and kills yet.
    pub status: HealthStatus,
    /// The agent's id, in its containers' names.
    pub agent_id: uuid::Uuid,
    /// Whether the Docker engine answers the agent. Agents before it did not say: unknown.
    #[serde(default)]
    pub docker: DockerHealth,
}

/// Whether the Docker engine answers the agent, as its own calls and a probe found it
/// within the last few seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DockerHealth {
    /// Available, unavailable, or not known yet.
    pub status: DockerStatus,
    /// Since when it has been so (ms since the epoch); not with `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// With `unavailable`: what the latest call that failed to reach it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether the Docker engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerStatus {
    /// It answers.
    Available,
    /// It cannot be reached or does not answer: launches and kills are accepted and wait
    /// for it.
    Unavailable,
    /// Not asked yet (or an agent that does not say).
    #[default]
    #[serde(other)]
    Unknown,
}

/// Whether the agent is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Started and recovered: every request is served.
    Ok,
    /// Still starting or recovering what it ran before a restart: launches and kills are
    /// refused with 503 and `Retry-After`.
    Recovering,
}

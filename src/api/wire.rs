//! The JSON bodies of berth's HTTP API, shared by the server and the CLI's client.

use serde::{Deserialize, Serialize};

pub use crate::model::{Ack, StatusReport, TaskState};

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
}

/// `POST /v1/state`: a `berth state` view rendered by the agent from the store it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRequest {
    /// Which view.
    #[serde(flatten)]
    pub view: crate::state_view::View,
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

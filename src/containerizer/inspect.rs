//! `berth inspect`: one task as everything that knows it sees it, in one document: the
//! agent's view, Docker's `docker inspect` of its container, and its records in the store.

use serde::Serialize;
use uuid::Uuid;

use super::{Containerizer, RequestError, TaskView};

/// A task seen by the agent, by Docker and by the store.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The agent's view, as `berth ps --json` shows it.
    pub task: TaskView,
    /// `docker inspect` of its container, as Docker prints it; `null` for a plain
    /// process, a container not made yet or already removed, and when Docker did not
    /// answer (then `docker_error` says why).
    pub docker: Option<serde_json::Value>,
    /// Why Docker could not be asked, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_error: Option<String>,
    /// Its phases as recorded, oldest first (`berth state history`).
    pub history: Vec<berth_state::PhaseRecord>,
    /// The status updates recorded for it.
    pub statuses: Vec<berth_state::StatusRecord>,
}

impl Containerizer {
    /// Everything known of container `id`.
    pub async fn inspect(&self, id: Uuid) -> Result<Inspection, RequestError> {
        let task = self
            .get(id)
            .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        let (docker, docker_error) = match &task.docker_name {
            Some(name) => match self.docker().inspect_document(name).await {
                Ok(found) => (found, None),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, None),
        };
        Ok(Inspection {
            history: self.store().history(id)?,
            statuses: self.store().statuses(id)?,
            task,
            docker,
            docker_error,
        })
    }
}

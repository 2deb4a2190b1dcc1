//! The containerizer: accepts tasks, runs each one's launch pipeline, applies executors'
//! status reports, kills, and removes containers when they are due.
//!
//! Every phase is recorded durably before the action it announces (`launch.rs`); the
//! in-memory view (`view.rs`) is only a cache of what the store says, kept so that `wait`
//! can be answered without polling.

mod kill;
pub mod launch;
pub mod restore;
pub mod retention;
mod spawn;
pub mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_state::{Phase, Store, StoreError};
use tokio::sync::watch;
use uuid::Uuid;

use crate::api::wire::TaskState;
use crate::docker::Docker;
use crate::task::{Containerizer as Kind, TaskError};
pub use view::TaskView;

/// The agent's settings the pipeline needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--work_dir`.
    pub work_dir: PathBuf,
    /// `--containerizers`.
    pub containerizers: Vec<Kind>,
    /// `--sandbox_directory`.
    pub sandbox_directory: PathBuf,
    /// `--docker_stop_timeout`: grace when a task has no kill policy.
    pub stop_timeout: Duration,
    /// `--docker_remove_delay`.
    pub remove_delay: Duration,
    /// `--gc_delay`: how long a removed container's sandbox and records are kept.
    pub gc_delay: Duration,
    /// `--recovery_timeout`: how long executors keep retrying reports.
    pub recovery_timeout: Duration,
    /// The API socket executors report to.
    pub api_socket: PathBuf,
    /// The `berth` binary executors are started from.
    pub executor_program: PathBuf,
    /// The `HOME` of pulls whose sandbox has no credentials (`--docker_config`).
    pub pull_fallback_home: Option<PathBuf>,
}

impl Settings {
    /// The sandbox of a container.
    pub fn sandbox(&self, id: Uuid) -> PathBuf {
        self.work_dir.join("sandboxes").join(id.to_string())
    }
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The task is invalid; nothing was recorded or started.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The JSON is not a task.
    #[error(transparent)]
    Json(#[from] crate::task::info::JsonError),
    /// Another live task has this id.
    #[error(
        "task id {0:?} is already in use by container {1}; kill it first or choose another id"
    )]
    Duplicate(String, Uuid),
    /// No such container.
    #[error("no container {0} on this agent")]
    Unknown(String),
    /// The store failed; the request was not carried out.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sandbox could not be made.
    #[error("cannot create the sandbox {0}: {1}")]
    Sandbox(PathBuf, std::io::Error),
    /// The agent is still recovering what it ran before a restart.
    #[error("the agent is still starting or recovering what it ran before a restart; retry shortly (`berth health` says when it is ready)")]
    Recovering,
}

/// One container's live state.
pub(crate) struct Entry {
    pub(crate) view: watch::Sender<TaskView>,
    pub(crate) kill: watch::Sender<Option<kill::KillRequest>>,
    pub(crate) executor: Mutex<Option<berth_state::Identity>>,
    pub(crate) last_report: Mutex<u64>,
    pub(crate) grace: Duration,
    /// Held from reading the task's state to recording the phase decided from it, so
    /// that a kill and an executor's report cannot both decide on the state before the
    /// other (which recorded RUNNING or FINISHED after KILLING).
    pub(crate) deciding: tokio::sync::Mutex<()>,
}

/// The containerizer. Shared by the API handlers behind an `Arc`.
pub struct Containerizer {
    pub(crate) store: Arc<Store>,
    pub(crate) docker: Docker,
    pub(crate) settings: Settings,
    pub(crate) entries: Mutex<HashMap<Uuid, Arc<Entry>>>,
    recovering: std::sync::atomic::AtomicBool,
}

impl Containerizer {
    /// A containerizer over an open store.
    pub fn new(store: Arc<Store>, docker: Docker, settings: Settings) -> Arc<Containerizer> {
        Arc::new(Containerizer {
            store,
            docker,
            settings,
            entries: Mutex::new(HashMap::new()),
            recovering: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// This agent's id.
    pub fn agent_id(&self) -> Uuid {
        self.store.meta().agent_id
    }

    /// Whether recovery after a restart is still under way.
    pub fn recovering(&self) -> bool {
        self.recovering.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Recovery is done: launches are accepted.
    pub fn set_recovered(&self) {
        self.recovering
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// The Docker CLI handle.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The store it records into (read-only uses: `berth state` through the API).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn entry(&self, id: Uuid) -> Option<Arc<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Finds a container by full id or unique prefix.
    pub fn resolve(&self, arg: &str) -> Result<Uuid, RequestError> {
        let ids: Vec<Uuid> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        berth_state::inspect::resolve(arg, &ids).map_err(|_| {
            // While recovering, a container may be recorded and not yet restored.
            if self.recovering() {
                RequestError::Recovering
            } else {
                RequestError::Unknown(arg.to_owned())
            }
        })
    }

    /// The current view of one container.
    pub fn get(&self, id: Uuid) -> Option<TaskView> {
        self.entry(id).map(|e| e.view.borrow().clone())
    }

    /// Every container's view, oldest first.
    pub fn list(&self) -> Vec<TaskView> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut views: Vec<TaskView> = entries.values().map(|e| e.view.borrow().clone()).collect();
        views.sort_by_key(|v| v.accepted_at_ms);
        views
    }

    /// Waits until the container is terminal and returns its final view.
    pub async fn wait(&self, id: Uuid) -> Option<TaskView> {
        let entry = self.entry(id)?;
        let mut rx = entry.view.subscribe();
        loop {
            let view = rx.borrow_and_update().clone();
            if view.state.is_terminal() {
                return Some(view);
            }
            if rx.changed().await.is_err() {
                return Some(view);
            }
        }
    }

    /// Counts of tasks per state, for metrics.
    pub fn counts(&self) -> HashMap<TaskState, usize> {
        let mut counts = HashMap::new();
        for view in self.list() {
            *counts.entry(view.state).or_insert(0) += 1;
        }
        counts
    }

    pub(crate) async fn record(&self, id: Uuid, phase: Phase) -> Result<(), StoreError> {
        record_phase(&self.store, id, phase).await
    }
}

/// Records a phase durably, between its two crash points.
pub(crate) async fn record_phase(store: &Store, id: Uuid, phase: Phase) -> Result<(), StoreError> {
    let name = phase.name();
    crate::crash_point::hit(&format!("record-{name}-before"));
    store.record_phase(id, phase).await?;
    crate::crash_point::hit(&format!("record-{name}-after"));
    Ok(())
}

//! The containerizer: accepts tasks, runs each one's launch pipeline, applies executors'
//! status reports, kills, and removes containers when they are due.
//!
//! Every phase is recorded durably before the action it announces (`launch.rs`,
//! `pipeline.rs`, `executor_start.rs`, `ending.rs`); the in-memory view (`view.rs`) is
//! only a cache of what the store says, kept so that `wait` can be answered without
//! polling.

mod ending;
mod executor_box;
mod executor_start;
pub mod exits;
pub mod inspect;
pub(crate) mod kill;
pub mod launch;
mod monitor;
mod pipeline;
pub mod placement;
mod removal;
mod report;
pub mod restore;
pub mod retention;
mod sandbox_owner;
mod spawn;
mod tasks;
pub mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_state::{Phase, Store, StoreError};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::docker::Docker;
use crate::metrics::Metrics;
use crate::model::TaskState;
use crate::task::{ContainerizerKind, TaskError};
pub use exits::ExecutorExit;
pub use view::TaskView;

/// The agent's settings the pipeline needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--work_dir`.
    pub work_dir: PathBuf,
    /// `--containerizers`.
    pub containerizers: Vec<ContainerizerKind>,
    /// `--switch_user`: run tasks as their `command.user`.
    pub switch_user: bool,
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
    /// `--docker_mesos_image`: the agent runs in a container of this image, and each
    /// command task's executor runs in a container of its own, from it.
    pub docker_mesos_image: Option<String>,
    /// The Docker container the agent runs in, found at start in `--docker_mesos_image`
    /// mode; recovery never touches it. `None` otherwise (recovery then takes the id
    /// `<work_dir>/agent-container` holds, if any).
    pub own_container: Option<String>,
    /// The host's path of the Docker socket the agent's container has mounted, which its
    /// executor containers are given (`--docker_mesos_image`).
    pub docker_socket_on_host: Option<PathBuf>,
    /// How executors rotate the sandbox's `stdout` and `stderr` (`--logrotate_*`).
    pub rotation: Option<crate::executor::rotate::Rotation>,
    /// The bound on Docker's own log of task containers (`--docker_log_max_size`,
    /// `--docker_log_max_files`); none leaves the daemon's default.
    pub docker_log: Option<crate::docker::argv::LogLimit>,
    /// Fetches the tasks' URIs (`--fetcher_stall_timeout`, the agent's proxies and CAs).
    pub fetcher: crate::fetch::Fetcher,
    /// `--executor_registration_timeout`: how long a launch may take from the task's
    /// acceptance until its executor is handed the task (fetch, pull and create included).
    pub executor_registration_timeout: Duration,
}

impl Settings {
    /// The sandbox of a container.
    pub fn sandbox(&self, id: Uuid) -> PathBuf {
        sandbox(&self.work_dir, id)
    }

    /// What recovery's gathering reads of them.
    pub fn gathering(&self) -> restore::GatherFlags {
        restore::GatherFlags {
            work_dir: self.work_dir.clone(),
            own_container: self.own_container.clone(),
            recovery_timeout: self.recovery_timeout,
            sandbox_directory: self.sandbox_directory.clone(),
            containerizers: self.containerizers.clone(),
            stop_timeout: self.stop_timeout,
            docker_log: self.docker_log,
            switch_user: self.switch_user,
        }
    }
}

/// The sandbox of a container in a work directory.
fn sandbox(work_dir: &Path, id: Uuid) -> PathBuf {
    work_dir.join("sandboxes").join(id.to_string())
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
    /// Another task this agent still knows (running or ended, until its records are
    /// collected) has this id.
    #[error(
        "task id {0:?} is taken by container {1}, which this agent knows until its records are collected (--gc_delay); choose another id"
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
    /// A log file of the agent's in the sandbox could not be opened.
    #[error("cannot open {0} for the executor's log: {1}")]
    SandboxFile(PathBuf, std::io::Error),
    /// The executor could not be started, or handed its launch.
    #[error("cannot start the executor in the sandbox {0}: {1}")]
    ExecutorStart(PathBuf, std::io::Error),
    /// The agent stopped the request's work before it finished (it is shutting down).
    #[error("the agent stopped before the request was carried out ({0}); check with `berth ps` before retrying")]
    Abandoned(String),
    /// The executor's own container (`--docker_mesos_image`) could not be started or
    /// told apart; the task was not started.
    #[error("cannot start the executor's container {0}: {1}")]
    ExecutorContainer(String, String),
    /// `command.user` could not be looked up: the host's user database failed or did not
    /// answer. Nothing was recorded; the same launch may be sent again.
    #[error("cannot look up command.user {user:?}: {why}; nothing was recorded: send the launch again once the host's user database answers")]
    UserDatabase {
        /// The user.
        user: String,
        /// What the lookup said.
        why: String,
    },
    /// The agent is still recovering what it ran before a restart.
    #[error("{}", crate::model::RECOVERING)]
    Recovering,
    /// The task's end was decided (its executor died) and is being carried out; a kill
    /// would change nothing, and answering KILLING would promise an end it will not have.
    #[error("the task is already ending ({0}): its executor died and the agent is recording how it ended; nothing was done for this request; `berth wait` shows the end")]
    Ending(String),
}

impl RequestError {
    /// The kind of refusal, as the metrics' `reason` label (one of
    /// `metrics::REFUSALS`): a few values, never the message.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Task(_) | RequestError::Json(_) => "invalid",
            RequestError::Duplicate(..) => "duplicate",
            RequestError::Recovering => "recovering",
            RequestError::Store(_) => "store",
            RequestError::Sandbox(..) | RequestError::SandboxFile(..) => "sandbox",
            RequestError::Unknown(_)
            | RequestError::UserDatabase { .. }
            | RequestError::Abandoned(_)
            | RequestError::ExecutorContainer(..)
            | RequestError::ExecutorStart(..)
            | RequestError::Ending(_) => "other",
        }
    }
}

/// One container's live state.
pub(crate) struct Entry {
    pub(crate) view: watch::Sender<TaskView>,
    pub(crate) kill: watch::Sender<Option<kill::KillRequest>>,
    pub(crate) executor: Mutex<Option<berth_state::Identity>>,
    /// Whether the executor runs in a container of its own (`--docker_mesos_image`),
    /// removed with the task's.
    pub(crate) executor_box: std::sync::atomic::AtomicBool,
    pub(crate) last_report: Mutex<u64>,
    pub(crate) grace: Duration,
    /// Held from reading the task's state to recording the phase decided from it, so
    /// that a kill and an executor's report cannot both decide on the state before the
    /// other (which recorded RUNNING or FINISHED after KILLING).
    pub(crate) deciding: tokio::sync::Mutex<()>,
    /// Whether a task's container is being stopped by a kill's driver.
    pub(crate) kill_driving: std::sync::atomic::AtomicBool,
    /// Wakes that driver to try again at once (a second kill).
    pub(crate) kill_nudge: tokio::sync::Notify,
    /// Set by each call for a stop, cleared by the driver before it tries: a call that
    /// came while the driver was finishing is not lost.
    pub(crate) kill_again: std::sync::atomic::AtomicBool,
    /// Whether the executor's exit is watched: one watcher per executor.
    pub(crate) watched: std::sync::atomic::AtomicBool,
    /// Whether the `max_completion_time` kill is armed: once per entry.
    pub(crate) deadline_armed: std::sync::atomic::AtomicBool,
    /// The end decided for the task while the agent serves (its executor died), set under
    /// `deciding` once the decision is recorded: a kill from then on waits for that end
    /// instead of recording KILLING over it.
    pub(crate) ending: std::sync::Mutex<Option<String>>,
}

/// The containerizer. Shared by the API handlers behind an `Arc`.
pub struct Containerizer {
    pub(crate) store: Arc<Store>,
    pub(crate) docker: Docker,
    pub(crate) settings: Settings,
    pub(crate) entries: Mutex<HashMap<Uuid, Arc<Entry>>>,
    /// Task ids of launches being recorded, not yet in `entries`: taken before the
    /// launch's first await, so that two launches of one id cannot both pass the check.
    reserved: Mutex<HashMap<String, Uuid>>,
    /// Executors that exited before their task's end was reported.
    exits: mpsc::UnboundedSender<ExecutorExit>,
    exits_rx: Mutex<Option<mpsc::UnboundedReceiver<ExecutorExit>>>,
    /// Set when a record could not be made durable: the store takes no write after that
    /// until it is opened again, so the agent stops rather than serve what it cannot
    /// record.
    pub(crate) store_failed: watch::Sender<Option<String>>,
    recovering: std::sync::atomic::AtomicBool,
    /// Counts the phases recorded, for the event stream's followers to wake on.
    recorded: watch::Sender<u64>,
    /// Set when the API stops: followed streams end, so that its graceful stop does not
    /// wait for them for ever.
    stopping: watch::Sender<bool>,
    /// Counted where each record is made (`crate::metrics`); shared with the store's
    /// flusher, which reports its batches.
    pub(crate) metrics: Arc<Metrics>,
    /// Every task the containerizer runs in the background, so that
    /// [`Containerizer::stop`] can end them and wait.
    background: tasks::Tasks,
}

impl Containerizer {
    /// A containerizer over an open store.
    pub fn new(store: Arc<Store>, docker: Docker, settings: Settings) -> Arc<Containerizer> {
        let (exits, exits_rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::new());
        let flushes = metrics.clone();
        if !store.observe_flushes(Box::new(move |flush| flushes.store_flushed(flush))) {
            tracing::warn!(
                "the store's flushes are observed already; berth_store_flush_* stay at zero"
            );
        }
        Arc::new(Containerizer {
            metrics,
            exits,
            exits_rx: Mutex::new(Some(exits_rx)),
            store_failed: watch::Sender::new(None),
            recorded: watch::Sender::new(0),
            stopping: watch::Sender::new(false),
            store,
            docker,
            settings,
            entries: Mutex::new(HashMap::new()),
            reserved: Mutex::new(HashMap::new()),
            recovering: std::sync::atomic::AtomicBool::new(true),
            background: tasks::Tasks::default(),
        })
    }

    /// Runs `work` in the background, owned by the containerizer: [`Containerizer::stop`]
    /// ends it at its next await, and its handle then gives `None`.
    pub(crate) fn spawn_owned<F, T>(&self, work: F) -> tokio::task::JoinHandle<Option<T>>
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.background.spawn(work)
    }

    /// Ends every background task at its next await and waits for them all, up to
    /// `limit`; whether they all ended. The records stay as they are: what a task was
    /// doing is taken up again by the next start's recovery, as after a crash.
    pub async fn stop(&self, limit: Duration) -> bool {
        self.background.stop(limit).await
    }

    /// The executors that exit before their task's end was reported, for the one that
    /// decides their tasks' fate; `None` once taken.
    pub fn take_exits(&self) -> Option<mpsc::UnboundedReceiver<ExecutorExit>> {
        self.exits_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
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

    /// Changes whenever a phase was recorded (a status update may have been made).
    pub fn recorded(&self) -> watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Ends the followed event streams: the API is stopping.
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes true once the API stops.
    pub fn streams_stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
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

    /// Takes `task_id` for container `id`, unless a known task or a launch under way
    /// holds it. Kept until [`Self::release_task_id`], which follows the entry's insertion
    /// (or the launch's failure).
    pub(crate) fn reserve_task_id(&self, task_id: &str, id: Uuid) -> Result<(), RequestError> {
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let known = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, e)| e.view.borrow().task_id == task_id)
            .map(|(id, _)| *id);
        if let Some(existing) = known.or_else(|| reserved.get(task_id).copied()) {
            return Err(RequestError::Duplicate(task_id.to_owned(), existing));
        }
        reserved.insert(task_id.to_owned(), id);
        Ok(())
    }

    pub(crate) fn release_task_id(&self, task_id: &str) {
        self.reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(task_id);
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

    /// The agent's metrics, for recording what happens outside the containerizer
    /// (recovery).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics' exposition (`/metrics`), with the tasks the agent knows now.
    pub fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let states: Vec<TaskState> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|e| e.view.borrow().state)
            .collect();
        let available = matches!(
            self.docker.reachability(),
            crate::docker::Reachability::Answering { .. }
        );
        self.metrics.render(states, available)
    }

    pub(crate) async fn record(&self, id: Uuid, phase: Phase) -> Result<(), StoreError> {
        let recorded = record_phase(&self.store, id, phase).await;
        let recorded = self.check_store(recorded);
        if recorded.is_ok() {
            self.recorded.send_modify(|n| *n = n.wrapping_add(1));
        }
        recorded
    }

    /// Passes a store result on, noting a write that could not be made durable.
    pub(crate) fn check_store<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::NotDurable(why)) = &result {
            note_store_failure(&self.store_failed, why);
        }
        result
    }

    /// Why a record could not be made durable, if one could not.
    pub fn store_failed_now(&self) -> Option<String> {
        self.store_failed.borrow().clone()
    }

    /// Resolves once a record could not be made durable, with why.
    pub async fn store_failure(&self) -> String {
        let mut failed = self.store_failed.subscribe();
        loop {
            if let Some(why) = failed.borrow_and_update().clone() {
                return why;
            }
            if failed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Notes the first write the store could not make durable, which stops the agent.
pub(crate) fn note_store_failure(failed: &watch::Sender<Option<String>>, why: &str) {
    failed.send_if_modified(|failed| {
        let first = failed.is_none();
        failed.get_or_insert_with(|| why.to_owned());
        first
    });
}

/// Records a phase durably, between its two crash points.
pub(crate) async fn record_phase(store: &Store, id: Uuid, phase: Phase) -> Result<(), StoreError> {
    let name = phase.name();
    crate::crash_point::hit(&format!("record-{name}-before"));
    store.record_phase(id, phase).await?;
    crate::crash_point::hit(&format!("record-{name}-after"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_labelled_by_kind_never_by_its_message() {
        let cases = [
            (RequestError::Recovering, "recovering"),
            (
                RequestError::Duplicate("t".into(), uuid::Uuid::nil()),
                "duplicate",
            ),
            (
                RequestError::Store(berth_state::StoreError::NotDurable("disk full".into())),
                "store",
            ),
            (
                RequestError::Sandbox("/x".into(), std::io::Error::other("denied")),
                "sandbox",
            ),
            (
                RequestError::SandboxFile(
                    "/x/executor.log".into(),
                    std::io::Error::other("a link"),
                ),
                "sandbox",
            ),
            (
                RequestError::ExecutorStart("/x".into(), std::io::Error::other("exited at once")),
                "other",
            ),
            (RequestError::Unknown("c".into()), "other"),
            (RequestError::Abandoned("stopping".into()), "other"),
        ];
        for (error, want) in &cases {
            assert_eq!(error.kind(), *want, "{error}");
            assert!(crate::metrics::REFUSALS.contains(want), "{error}");
        }
        let invalid = crate::task::parse(b"{").expect_err("not a task");
        assert_eq!(RequestError::from(invalid).kind(), "invalid");
    }
}

//! The agent process: start-up checks, then serving until shut down.
//!
//! The agent checks that the Docker CLI and engine answer and are recent enough (and,
//! with `--docker_mesos_image`, that the container it runs in is set up for it), opens
//! its store, and serves the API on its unix socket until shut down. Restart recovery
//! builds on this.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_state::{OnCorrupt, Store, StoreConfig, StoreError};

use crate::containerizer::{Containerizer, Settings};
use crate::docker::{Docker, DockerError};
use crate::identity::{self, IdentityError};
use crate::recovery::plan::Recover;

/// What the agent needs to start.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Docker CLI handle.
    pub docker: Docker,
    /// `--strict`: refuse to start on a record that does not decode (true), or
    /// quarantine it and go on (false).
    pub strict: bool,
    /// `--docker_config`, already read and in `config.json` form.
    pub docker_config: Option<String>,
    /// `--recover`.
    pub recover: Recover,
    /// `--docker_kill_orphans`.
    pub kill_orphans: bool,
    /// What the containerizer runs with (`--work_dir`, `--api_socket` and the others).
    pub settings: Settings,
    /// `--metrics_address`: where `/metrics` is also served over TCP; nothing is bound
    /// without it.
    pub metrics_address: Option<std::net::SocketAddr>,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The Docker CLI or engine is missing, unreachable or too old.
    #[error("docker is not usable: {0}")]
    Docker(#[from] DockerError),
    /// The engine did not answer within `--recovery_timeout`.
    #[error("docker is not usable after waiting --recovery_timeout ({waited}): {source}")]
    DockerUnreachable {
        /// How long the agent waited.
        waited: String,
        /// The last failure.
        source: DockerError,
    },
    /// The checkpoint store cannot be opened.
    #[error("cannot open the checkpoint store: {0}")]
    Store(#[from] StoreError),
    /// This boot's id cannot be read.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The API socket cannot be bound.
    #[error(transparent)]
    Socket(#[from] crate::api::server::SocketError),
    /// The API socket cannot be served.
    #[error("cannot serve the API on {path}: {source}")]
    Api {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--docker_config` cannot be put where pulls find it.
    #[error(transparent)]
    DockerConfig(#[from] crate::credentials::CredentialsError),
    /// A record could not be made durable; the store takes no write until it is opened
    /// again.
    #[error("a record could not be made durable ({0}); berth stopped rather than serve what it cannot record: free space or repair the disk under the work directory, then start the agent again (it recovers from what the store holds; executors keep retrying their reports meanwhile)")]
    StoreFailed(String),
    /// `--recover=cleanup` could not finish with some tasks (deferred or held by the plan,
    /// or a container that could not be stopped or removed).
    #[error("--recover=cleanup could not finish with these containers (last recorded phase in brackets): {0}; `berth state show ID` says why for each; run it again once Docker answers")]
    CleanupIncomplete(String),
    /// `--docker_mesos_image`: the agent's container is not set up as the mode needs
    /// (every problem found, each with what to change).
    #[error(transparent)]
    SetUp(#[from] crate::own_container::checks::Refused),
    /// `--docker_mesos_image`: the agent's own container id cannot be kept in the work dir.
    #[error(transparent)]
    OwnContainerRecord(#[from] crate::own_container::record::RecordError),
    /// `--metrics_address` cannot be bound.
    #[error("cannot serve metrics on --metrics_address {address}: {source}; choose a free port, or leave the flag out")]
    MetricsAddress {
        /// The address.
        address: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The work directory cannot be created.
    #[error("cannot create work directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Waits, with backoff up to `--recovery_timeout`, for a Docker CLI and engine that answer
/// and are recent enough.
async fn usable_docker(config: &AgentConfig) -> Result<crate::docker::Versions, AgentError> {
    let give_up = tokio::time::Instant::now() + config.settings.recovery_timeout;
    let mut wait = Duration::from_millis(250);
    loop {
        match config.docker.check_version().await {
            Ok(v) => return Ok(v),
            // Waiting cannot fix an old engine or a CLI that is not there.
            Err(e @ (DockerError::TooOld { .. } | DockerError::Spawn { .. })) => {
                return Err(e.into())
            }
            Err(source) if tokio::time::Instant::now() + wait > give_up => {
                return Err(AgentError::DockerUnreachable {
                    waited: crate::duration::format(config.settings.recovery_timeout),
                    source,
                })
            }
            Err(e) => {
                tracing::warn!("docker is not usable yet ({e}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = crate::backoff::doubled(wait, Duration::from_secs(5));
            }
        }
    }
}

/// Waits for a usable Docker (with backoff, up to `--recovery_timeout`), then gathers the
/// views, plans, and acts.
async fn recover(
    containerizer: &Arc<Containerizer>,
    config: &AgentConfig,
) -> Result<(), AgentError> {
    // The version check and the gathering are independent: run them side by side, and
    // act only once the version is known to be good. A Docker that will never do (too
    // old, no CLI) ends the wait for the gathering too.
    let gather = async {
        crate::recovery::gather::gather(
            containerizer.store(),
            &config.settings.gathering(),
            &config.docker,
            config.recover,
            config.kill_orphans,
        )
        .await
        .map_err(AgentError::from)
    };
    let (versions, gathering) = tokio::try_join!(usable_docker(config), gather)?;
    tracing::info!(client = %versions.client, server = %versions.server, "docker is usable");
    let plan = crate::recovery::plan::plan(&gathering.views);
    if !plan.decisions.is_empty() {
        tracing::info!("recovery plan:\n{}", crate::recovery::act::render(&plan));
    }
    let deferred = crate::recovery::act::act(containerizer, plan, gathering.records).await;
    if config.recover == Recover::Cleanup {
        return cleaned_up(containerizer.store());
    }
    if deferred.is_empty() {
        return Ok(());
    }
    containerizer.spawn_owned(crate::recovery::retry::retry_deferred(
        containerizer.clone(),
        config.recover,
        config.kill_orphans,
        deferred,
        false,
    ));
    Ok(())
}

/// `--recover=cleanup` is done only when every record's history ends removed: a task
/// deferred or held, or whose container could not be stopped or removed, is named.
fn cleaned_up(store: &Store) -> Result<(), AgentError> {
    let left: Vec<String> = store
        .containers()?
        .into_iter()
        .filter(|s| !matches!(s.last.phase, berth_state::Phase::Removed))
        .map(|s| format!("{} ({})", s.container_id, s.last.phase.name()))
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    Err(AgentError::CleanupIncomplete(left.join(", ")))
}

/// How long the requests under way when a record failed are given to be answered.
const ANSWER_BEFORE_STOPPING: std::time::Duration = std::time::Duration::from_secs(2);

/// Stops serving after a record could not be made durable. The server has stopped taking
/// connections (a store failure is part of its shutdown) and is given a moment to answer
/// the requests under way, so that the one whose record failed gets its 503 rather than a
/// connection cut by the exit; the store takes no write any more, so nothing is done
/// meanwhile. The store is left open on purpose (the process exits next): closing it
/// would write (sled flushes on drop), which a full disk can hold up for good, while what
/// it acknowledged is durable already, as after a SIGKILL.
async fn store_failed<T>(
    server: tokio::task::JoinHandle<T>,
    containerizer: &Arc<Containerizer>,
    why: String,
) -> AgentError {
    let abort = server.abort_handle();
    if tokio::time::timeout(ANSWER_BEFORE_STOPPING, server)
        .await
        .is_err()
    {
        abort.abort();
    }
    std::mem::forget(containerizer.clone());
    AgentError::StoreFailed(why)
}

/// A task that lasts as long as the agent's run, however the run ends.
struct Background(tokio::task::JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    mut config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // Recovery time counts from here: the store's opening (its replay) is part of it.
    let recovering = tokio::time::Instant::now();
    // Before anything is written: an agent whose container cannot work touches nothing.
    let own_container = match &config.settings.docker_mesos_image {
        Some(image) => Some(
            crate::own_container::check(
                &config.settings.work_dir,
                &config.settings.api_socket,
                &config.docker,
                image,
            )
            .await?,
        ),
        None => None,
    };
    std::fs::create_dir_all(&config.settings.work_dir).map_err(|source| AgentError::WorkDir {
        path: config.settings.work_dir.clone(),
        source,
    })?;
    let store_config = StoreConfig {
        on_corrupt: if config.strict {
            OnCorrupt::Refuse
        } else {
            OnCorrupt::Quarantine
        },
        ..StoreConfig::default()
    };
    let store = Store::open(
        &crate::state_command::store_dir(&config.settings.work_dir),
        &identity::boot_id()?,
        &store_config,
    )?;
    // After the store's lock is held: an agent refused the work dir writes nothing there.
    if let Some(own) = own_container {
        // Kept for `berth recover --dry-run` on the host, which cannot find it by itself.
        crate::own_container::record::write(&config.settings.work_dir, &own.id)?;
        tracing::info!(container = %own.id, "the agent runs in this Docker container; berth never touches it");
        config.settings.own_container = Some(own.id);
        config.settings.docker_socket_on_host = Some(own.docker_socket_on_host);
    }
    tracing::info!("{}", crate::containerizer::placement::describe());
    for bad in store.corrupt_at_open() {
        tracing::warn!(key = %bad.key, reason = %bad.reason, "quarantined a record that does not decode");
    }
    for note in store.notes_at_open() {
        tracing::warn!("store: {note}");
    }
    if let Some(lost) = store.lost_at_open() {
        tracing::error!(
            newest_seq = lost.newest,
            durable_seq = lost.durable,
            "acknowledged records are missing from the store; `berth state verify` says more"
        );
    }
    if let Some(json) = &config.docker_config {
        let home = config.settings.work_dir.join("docker-config");
        config.settings.pull_fallback_home =
            Some(crate::credentials::write_fallback_home(&home, json)?);
    }
    let agent_id = store.meta().agent_id;
    // From the start, so that health says whether Docker answers even while the agent
    // waits for it, and an idle agent notices when it goes away.
    let _probing = Background(tokio::spawn(
        config.docker.clone().keep_reachability_fresh(),
    ));
    let containerizer = Containerizer::new(
        Arc::new(store),
        config.docker.clone(),
        config.settings.clone(),
    );
    // Bound before recovery acts, so that an agent refused its socket touches nothing.
    // The API answers during recovery: health says so, and launches are refused until
    // the agent knows what it already runs.
    let socket = config.settings.api_socket.clone();
    let listener = crate::api::server::bind(&socket).await?;
    let _metrics = match config.metrics_address {
        Some(address) => Some(serve_metrics(address, &containerizer).await?),
        None => None,
    };
    tracing::info!(
        work_dir = %config.settings.work_dir.display(),
        api_socket = %config.settings.api_socket.display(),
        %agent_id,
        "berth agent started; recovering"
    );
    let failed = containerizer.clone();
    let mut server = tokio::spawn(crate::api::server::serve(
        listener,
        containerizer.clone(),
        async move {
            tokio::select! {
                () = shutdown => {}
                _ = failed.store_failure() => {}
            }
            failed.stop_streams();
        },
    ));
    let served = |r: Result<std::io::Result<()>, tokio::task::JoinError>| {
        r.map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| AgentError::Api {
                path: socket.clone(),
                source,
            })
    };
    tokio::select! {
        why = containerizer.store_failure() => return Err(store_failed(server, &containerizer, why).await),
        recovered = recover(&containerizer, &config) => {
            let next = after_recovery(recovered, containerizer.store_failed_now(), config.recover);
            match next {
                AfterRecovery::StoreFailed(why) => return Err(store_failed(server, &containerizer, why).await),
                AfterRecovery::Failed(e) => {
                    server.abort();
                    return Err(e);
                }
                AfterRecovery::CleanedUp => {
                    server.abort();
                    stop_background(&containerizer).await;
                    tracing::info!("--recover=cleanup: every task of this agent is cleaned up; exiting");
                    return Ok(());
                }
                AfterRecovery::Serve => {}
            }
        }
        stopped = &mut server => {
            served(stopped)?;
            if let Some(why) = containerizer.store_failed_now() {
                std::mem::forget(containerizer.clone());
                return Err(AgentError::StoreFailed(why));
            }
            stop_background(&containerizer).await;
            tracing::info!("berth agent stopped during recovery");
            return Ok(());
        }
    }
    containerizer.metrics().recovered(recovering.elapsed());
    containerizer.set_recovered();
    if let Some(exits) = containerizer.take_exits() {
        containerizer.spawn_owned(crate::recovery::serving::decide_exits(
            containerizer.clone(),
            exits,
        ));
    }
    containerizer.spawn_garbage_collection(config.settings.gc_delay);
    tracing::info!("recovery done; serving");
    tokio::select! {
        why = containerizer.store_failure() => return Err(store_failed(server, &containerizer, why).await),
        stopped = &mut server => served(stopped)?,
    }
    // The server may have ended for the store failure before it was seen here.
    if let Some(why) = containerizer.store_failed_now() {
        std::mem::forget(containerizer.clone());
        return Err(AgentError::StoreFailed(why));
    }
    stop_background(&containerizer).await;
    tracing::info!("berth agent stopped");
    Ok(())
}

/// How long a clean stop waits for the containerizer's background work to end.
const STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Ends the containerizer's background work (each task at its next await, as a crash
/// would; the next start's recovery takes up what was under way) and waits for it, so
/// that the store is let go of last and whole.
async fn stop_background(containerizer: &Containerizer) {
    if !containerizer.stop(STOP_LIMIT).await {
        tracing::warn!(
            "the agent's background work did not end within {}; the process's exit ends it",
            crate::duration::format(STOP_LIMIT)
        );
    }
}

/// Binds `--metrics_address` and serves `/metrics` there for as long as the returned
/// guard lives.
async fn serve_metrics(
    address: std::net::SocketAddr,
    containerizer: &Arc<Containerizer>,
) -> Result<Background, AgentError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| AgentError::MetricsAddress { address, source })?;
    let bound = listener.local_addr().unwrap_or(address);
    tracing::info!(address = %bound, "serving /metrics over TCP (--metrics_address)");
    let c = containerizer.clone();
    Ok(Background(tokio::spawn(async move {
        if let Err(e) = crate::api::server::serve_metrics(listener, c).await {
            tracing::error!(address = %bound, "serving /metrics stopped: {e}");
        }
    })))
}

/// What the agent does once recovery has returned.
#[derive(Debug)]
enum AfterRecovery {
    /// A record could not be made durable: the agent stops as for any store failure
    /// (the store is left to the process's exit, never dropped: its flush on drop may
    /// hang on a full disk), whatever recovery returned.
    StoreFailed(String),
    /// Recovery failed otherwise.
    Failed(AgentError),
    /// `--recover=cleanup` is done: the agent exits.
    CleanedUp,
    /// The agent serves.
    Serve,
}

/// Decides [`AfterRecovery`] from what recovery returned, the store failure if one was
/// noted, and `--recover`. Pure.
fn after_recovery(
    recovered: Result<(), AgentError>,
    store_failed: Option<String>,
    recover: Recover,
) -> AfterRecovery {
    match (store_failed, recovered) {
        // Recovery may have ended (`--recover=cleanup` incomplete) because of it.
        (Some(why), _) => AfterRecovery::StoreFailed(why),
        (None, Err(e)) => AfterRecovery::Failed(e),
        (None, Ok(())) if recover == Recover::Cleanup => AfterRecovery::CleanedUp,
        (None, Ok(())) => AfterRecovery::Serve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_during_recovery_stops_the_agent_whatever_recovery_returned() {
        let incomplete = || Err(AgentError::CleanupIncomplete("c1 [Killing]".into()));
        let full = || Some("No space left on device".to_owned());
        let cases = [
            (incomplete(), full(), Recover::Cleanup, "StoreFailed"),
            (Ok(()), full(), Recover::Cleanup, "StoreFailed"),
            (Ok(()), full(), Recover::Reconnect, "StoreFailed"),
            (incomplete(), None, Recover::Cleanup, "Failed"),
            (incomplete(), None, Recover::Reconnect, "Failed"),
            (Ok(()), None, Recover::Cleanup, "CleanedUp"),
            (Ok(()), None, Recover::Reconnect, "Serve"),
        ];
        for (recovered, failed, recover, want) in cases {
            let said = format!("{recovered:?} {failed:?} {recover:?}");
            let next = after_recovery(recovered, failed, recover);
            let got = format!("{next:?}");
            assert!(got.starts_with(want), "{said}: {got}");
        }
    }
}

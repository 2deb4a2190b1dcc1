//! The agent process: start-up checks, then serving until shut down.
//!
//! The agent checks that the Docker CLI and engine answer and are recent enough, opens
//! its store, and serves the API on its unix socket until shut down. Restart recovery
//! builds on this.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use berth_state::{OnCorrupt, Store, StoreConfig, StoreError};

use crate::containerizer::{Containerizer, Settings};
use crate::docker::{Docker, DockerError};
use crate::identity::{self, IdentityError};

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
    /// What the containerizer runs with (`--work_dir`, `--api_socket` and the others).
    pub settings: Settings,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The Docker CLI or engine is missing, unreachable or too old.
    #[error("docker is not usable: {0}")]
    Docker(#[from] DockerError),
    /// The checkpoint store cannot be opened.
    #[error("cannot open the checkpoint store: {0}")]
    Store(#[from] StoreError),
    /// This boot's id cannot be read.
    #[error(transparent)]
    Identity(#[from] IdentityError),
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
    /// The work directory cannot be created.
    #[error("cannot create work directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    mut config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let versions = config.docker.check_version().await?;
    tracing::info!(
        client = %versions.client,
        server = %versions.server,
        "docker is usable"
    );
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
    let containerizer = Containerizer::new(
        Arc::new(store),
        config.docker.clone(),
        config.settings.clone(),
    );
    containerizer.spawn_garbage_collection(config.settings.gc_delay);
    tracing::info!(
        work_dir = %config.settings.work_dir.display(),
        api_socket = %config.settings.api_socket.display(),
        %agent_id,
        "berth agent started"
    );
    crate::api::server::serve(&config.settings.api_socket, containerizer, shutdown)
        .await
        .map_err(|source| AgentError::Api {
            path: config.settings.api_socket.clone(),
            source,
        })?;
    tracing::info!("berth agent stopped");
    Ok(())
}

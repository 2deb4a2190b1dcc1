//! The agent process: start-up checks, then serving until shut down.
//!
//! For now the agent checks that the Docker CLI and engine answer and are recent enough,
//! and then waits; launching tasks, the API socket and recovery build on this.

use std::future::Future;
use std::path::PathBuf;

use berth_state::{OnCorrupt, Store, StoreConfig, StoreError};

use crate::docker::{Docker, DockerError};
use crate::identity::{self, IdentityError};

/// What the agent needs to start.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where the agent keeps its state and sandboxes (`--work_dir`).
    pub work_dir: PathBuf,
    /// The Docker CLI handle.
    pub docker: Docker,
    /// `--strict`: refuse to start on a record that does not decode (true), or
    /// quarantine it and go on (false).
    pub strict: bool,
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
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let versions = config.docker.check_version().await?;
    tracing::info!(
        client = %versions.client,
        server = %versions.server,
        "docker is usable"
    );
    std::fs::create_dir_all(&config.work_dir).map_err(|source| AgentError::WorkDir {
        path: config.work_dir.clone(),
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
        &crate::state_command::store_dir(&config.work_dir),
        &identity::boot_id()?,
        &store_config,
    )?;
    for bad in store.corrupt_at_open() {
        tracing::warn!(key = %bad.key, reason = %bad.reason, "quarantined a record that does not decode");
    }
    tracing::info!(
        work_dir = %config.work_dir.display(),
        agent_id = %store.meta().agent_id,
        "berth agent started"
    );
    shutdown.await;
    tracing::info!("berth agent stopping");
    drop(store);
    Ok(())
}

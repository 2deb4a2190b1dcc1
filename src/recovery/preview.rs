//! `berth recover --dry-run`: the plan the agent would make if it started now, printed and
//! not acted on. The store is read from a private copy, so the preview changes nothing,
//! not even sled's own files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_state::offline::Inspection;
use berth_state::StoreError;

use super::plan::{self, Recover};
use crate::containerizer::restore::GatherFlags;
use crate::docker::Docker;
use crate::task::ContainerizerKind;

/// The agent's flags a plan depends on, as `berth recover` takes them.
#[derive(Debug, Clone)]
pub struct PreviewFlags {
    /// `--work_dir`: the store and the sandboxes.
    pub work_dir: PathBuf,
    /// `--containerizers`, as the agent passes them on; a stored task is planned again
    /// without asking them (they only refuse new tasks).
    pub containerizers: Vec<ContainerizerKind>,
    /// `--sandbox_directory`.
    pub sandbox_directory: PathBuf,
    /// `--recovery_timeout`: how long Docker's listing is retried.
    pub recovery_timeout: Duration,
}

impl PreviewFlags {
    /// What gathering reads, as the agent would have it. The grace, Docker's log bound
    /// and `--switch_user`, which `berth recover` does not take, shape only the details
    /// of a launch planned again: a plan reads of it only its kind and whether it plans,
    /// which they do not change.
    fn gathering(&self) -> GatherFlags {
        GatherFlags {
            work_dir: self.work_dir.clone(),
            // Found by a running agent only; gathering then takes the one the work
            // directory names.
            own_container: None,
            recovery_timeout: self.recovery_timeout,
            sandbox_directory: self.sandbox_directory.clone(),
            containerizers: self.containerizers.clone(),
            stop_timeout: Duration::ZERO,
            docker_log: None,
            switch_user: true,
        }
    }
}

/// Why there is no preview.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The agent holds the store.
    #[error("the agent is running and holds the store at {0}; it recovered when it started (its log and `berth state show ID` have the decisions). Stop it to preview what a restart would do")]
    AgentRunning(String),
    /// No store in the work directory.
    #[error("no berth store at {0}: check --work_dir")]
    NoStore(String),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Gathers the views as the agent would at start, and plans.
pub async fn preview(
    flags: &PreviewFlags,
    docker: &Docker,
    recover: Recover,
    kill_orphans: bool,
) -> Result<plan::Plan, PreviewError> {
    let dir = crate::state_command::store_dir(&flags.work_dir);
    if !dir.join("db").is_file() {
        return Err(PreviewError::NoStore(dir.display().to_string()));
    }
    let inspection = match Inspection::open(Path::new(&dir)) {
        Err(StoreError::Locked { path, .. }) => {
            return Err(PreviewError::AgentRunning(path.display().to_string()))
        }
        other => other?,
    };
    let gathering = super::gather::gather(
        inspection.store(),
        &flags.gathering(),
        docker,
        recover,
        kill_orphans,
    )
    .await?;
    Ok(plan::plan(&gathering.views))
}

//! `berth recover --dry-run`: the plan the agent would make if it started now, printed and
//! not acted on. The store is read from a private copy, so the preview changes nothing,
//! not even sled's own files.

use std::path::Path;

use berth_state::offline::Inspection;
use berth_state::StoreError;

use super::plan::{self, Recover};
use crate::containerizer::Settings;
use crate::docker::Docker;

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
    settings: &Settings,
    docker: &Docker,
    recover: Recover,
    kill_orphans: bool,
) -> Result<plan::Plan, PreviewError> {
    let dir = crate::state_command::store_dir(&settings.work_dir);
    if !dir.join("db").is_file() {
        return Err(PreviewError::NoStore(dir.display().to_string()));
    }
    let inspection = match Inspection::open(Path::new(&dir)) {
        Err(StoreError::Locked { path, .. }) => {
            return Err(PreviewError::AgentRunning(path.display().to_string()))
        }
        other => other?,
    };
    let gathering =
        super::gather::gather(inspection.store(), settings, docker, recover, kill_orphans).await?;
    Ok(plan::plan(&gathering.views))
}

//! `berth state ls | show | history | verify | export`.
//!
//! sled lets one process hold a store, so while the agent runs the views are rendered by
//! the agent (`POST /v1/state`) from the store it holds; this never opens a store behind
//! the agent's back. Offline it opens a private copy of the store
//! (`berth_state::offline`), so nothing, not even sled's own recovery, writes to the
//! original: corrupt values are reported, not moved. Both ways print the same views.

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_state::offline::Inspection;
use berth_state::StoreError;

pub use crate::state_view::View;
use crate::state_view::{render, ViewError};

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum StateCommandError {
    /// The store is held by the running agent.
    #[error("the agent is running{} and holds the store at {}; its API answers these views", .holder.map(|p| format!(" (pid {p})")).unwrap_or_default(), .path.display())]
    AgentRunning {
        /// The store's directory.
        path: PathBuf,
        /// The pid holding it, when the kernel says.
        holder: Option<u32>,
    },
    /// There is no store at all.
    #[error("no berth store at {0}: check --work_dir")]
    NoStore(PathBuf),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The view could not be rendered.
    #[error(transparent)]
    View(#[from] ViewError),
}

/// The store's directory inside a work directory.
pub fn store_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("state")
}

/// Opens the store offline, renders the view to `out`; returns whether everything was
/// sound (only `verify` can say no).
pub fn run(
    work_dir: &Path,
    view: &View,
    json_out: bool,
    out: &mut impl Write,
) -> Result<bool, StateCommandError> {
    let dir = store_dir(work_dir);
    if !dir.join("db").is_file() {
        return Err(StateCommandError::NoStore(dir));
    }
    let inspection = match Inspection::open(&dir) {
        Err(StoreError::Locked { path, holder }) => {
            return Err(StateCommandError::AgentRunning { path, holder })
        }
        other => other?,
    };
    let store = inspection.store();
    let skipped = store.corrupt_at_open().len();
    if skipped > 0 && !matches!(view, View::Verify | View::Export) {
        eprintln!(
            "berth: warning: {skipped} record(s) do not decode and are left out; `berth state verify` lists them"
        );
    }
    if store.lost_at_open().is_some() && !matches!(view, View::Verify | View::Export) {
        eprintln!("berth: warning: acknowledged records are missing from the store; `berth state verify` says which");
    }
    Ok(render(store, view, json_out, out)?)
}

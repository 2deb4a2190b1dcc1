//! `berth state ls | show | history | verify | export`: the store, opened offline.
//!
//! sled lets one process hold a store, so while the agent runs this says so and stops;
//! it never opens a store behind the agent's back. Opening offline changes nothing berth
//! wrote: corrupt values are reported, not moved.

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_state::inspect::{self, CorruptJson};
use berth_state::{OnCorrupt, Store, StoreConfig, StoreError};
use serde_json::json;

/// Which view to print.
#[derive(Debug, Clone)]
pub enum View {
    /// Every container's newest phase.
    Ls,
    /// One container: summary, history, status updates.
    Show(String),
    /// One container's phase history.
    History(String),
    /// Check every record; exit non-zero when something is wrong.
    Verify,
    /// Everything, as JSON.
    Export,
}

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum StateCommandError {
    /// The store is held by the running agent.
    #[error("the agent is running{} and holds the store at {}; stop it to inspect offline (online inspection through the agent's API comes with the agent)", .holder.map(|p| format!(" (pid {p})")).unwrap_or_default(), .path.display())]
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
    /// The id names no single container.
    #[error(transparent)]
    Id(#[from] inspect::IdError),
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// The store's directory inside a work directory.
pub fn store_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("state")
}

/// Runs the view and writes it to `out`; returns whether everything was sound (only
/// `verify` can say no).
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
    let config = StoreConfig {
        on_corrupt: OnCorrupt::Report,
        ..StoreConfig::default()
    };
    let boot_id = crate::identity::boot_id().unwrap_or_default();
    let store = match Store::open(&dir, &boot_id, &config) {
        Err(StoreError::Locked { path, holder }) => {
            return Err(StateCommandError::AgentRunning { path, holder })
        }
        other => other?,
    };
    let skipped = store.corrupt_at_open().len();
    if skipped > 0 && !matches!(view, View::Verify | View::Export) {
        eprintln!(
            "berth: warning: {skipped} record(s) do not decode and are left out; `berth state verify` lists them"
        );
    }
    let containers = store.containers()?;
    let ids: Vec<_> = containers.iter().map(|s| s.container_id).collect();
    match view {
        View::Ls => {
            if json_out {
                writeln!(out, "{}", to_json(&containers))?;
            } else {
                out.write_all(inspect::ls(&containers).as_bytes())?;
            }
        }
        View::Show(arg) | View::History(arg) => {
            let id = inspect::resolve(arg, &ids)?;
            let history = store.history(id)?;
            let statuses = store.statuses(id)?;
            let summary = containers
                .iter()
                .find(|s| s.container_id == id)
                .ok_or(StoreError::UnknownContainer(id))?;
            match (view, json_out) {
                (View::History(_), true) => writeln!(out, "{}", to_json(&history))?,
                (View::History(_), false) => {
                    out.write_all(inspect::history(&history).as_bytes())?
                }
                (_, true) => writeln!(
                    out,
                    "{}",
                    to_json(&json!({"summary": summary, "history": history, "statuses": statuses}))
                )?,
                (_, false) => {
                    out.write_all(inspect::show(summary, &history, &statuses).as_bytes())?
                }
            }
        }
        View::Verify => {
            let bad = store.verify()?;
            let quarantined = store.quarantined()?;
            if json_out {
                let bad: Vec<CorruptJson> = bad.iter().map(Into::into).collect();
                let q: Vec<CorruptJson> = quarantined.iter().map(Into::into).collect();
                let ok = bad.is_empty() && q.is_empty();
                let repairs: Vec<String> = store
                    .repairs_at_open()
                    .iter()
                    .map(|r| r.describe())
                    .collect();
                writeln!(
                    out,
                    "{}",
                    to_json(
                        &json!({"ok": ok, "containers": containers.len(), "corrupt": bad, "quarantined": q, "pending_repairs": repairs})
                    )
                )?;
                return Ok(ok);
            }
            let (text, ok) = inspect::verify(
                &bad,
                &quarantined,
                store.repairs_at_open(),
                containers.len(),
            );
            out.write_all(text.as_bytes())?;
            return Ok(ok);
        }
        View::Export => {
            let mut all = Vec::new();
            for s in &containers {
                all.push(json!({
                    "summary": s,
                    "history": store.history(s.container_id)?,
                    "statuses": store.statuses(s.container_id)?,
                }));
            }
            let bad = store.verify()?;
            let quarantined = store.quarantined()?;
            let bad: Vec<CorruptJson> = bad.iter().map(Into::into).collect();
            let q: Vec<CorruptJson> = quarantined.iter().map(Into::into).collect();
            writeln!(
                out,
                "{}",
                to_json(
                    &json!({"agent": store.agent(), "containers": all, "corrupt": bad, "quarantined": q})
                )
            )?;
        }
    }
    Ok(true)
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

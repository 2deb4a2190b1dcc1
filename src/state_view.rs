//! The views of the store that `berth state` prints, rendered in one place: by the CLI
//! from a private copy of the store when the agent is not running, and by the agent
//! (`POST /v1/state`) from the store it holds when it is.

use std::io::Write;

use berth_state::inspect::{self, CorruptJson, Findings};
use berth_state::{Store, StoreError};
use serde_json::json;

/// Which view to print.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "view", content = "id", rename_all = "lowercase")]
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

/// Why a view could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The id names no single container.
    #[error(transparent)]
    Id(#[from] inspect::IdError),
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Renders the view of an open store to `out`; returns whether everything was sound (only
/// `verify` can say no).
pub fn render(
    store: &Store,
    view: &View,
    json_out: bool,
    out: &mut impl Write,
) -> Result<bool, ViewError> {
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
            let findings = Findings {
                bad: &bad,
                quarantined: &quarantined,
                lost: store.lost_at_open(),
                repairs: store.repairs_at_open(),
                notes: store.notes_at_open(),
                containers: containers.len(),
            };
            let (text, ok) = inspect::verify(&findings);
            if json_out {
                let bad: Vec<CorruptJson> = bad.iter().map(Into::into).collect();
                let q: Vec<CorruptJson> = quarantined.iter().map(Into::into).collect();
                let repairs: Vec<String> = store
                    .repairs_at_open()
                    .iter()
                    .map(|r| r.describe())
                    .collect();
                let lost = store
                    .lost_at_open()
                    .map(|l| json!({"newest_seq": l.newest, "durable_seq": l.durable}));
                writeln!(
                    out,
                    "{}",
                    to_json(&json!({
                        "ok": ok,
                        "containers": containers.len(),
                        "corrupt": bad,
                        "quarantined": q,
                        "lost": lost,
                        "pending_repairs": repairs,
                        "notes": store.notes_at_open(),
                    }))
                )?;
            } else {
                out.write_all(text.as_bytes())?;
            }
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
                to_json(&json!({
                    "agent": store.agent(),
                    "containers": all,
                    "corrupt": bad,
                    "quarantined": q,
                    "lost": store.lost_at_open().map(|l| json!({"newest_seq": l.newest, "durable_seq": l.durable})),
                }))
            )?;
        }
    }
    Ok(true)
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

//! `GET /v1/events`: every task's status updates, in the order they were recorded, as
//! newline-delimited JSON (Mesos's `TASK_UPDATED` events, [`super::updates`]).
//!
//! `?after=N` starts after position N, so that a client that reconnects with the last
//! position it read misses nothing and reads nothing twice; `?follow=true` keeps the
//! stream open, sending each update once it is recorded and a `HEARTBEAT` event when
//! nothing happened for [`HEARTBEAT`], by which a client notices an agent that went away.
//!
//! Only what is recorded is sent, and nothing before all that came earlier: records
//! become readable as each is made durable, not in order, so the stream goes no further
//! than the store's settled sequence number ([`berth_state::Store::settled_seq`]). The
//! updates of a task removed by garbage collection are gone with its records.

use std::sync::Arc;
use std::time::Duration;

use berth_state::{Store, StoreError};
use serde::Deserialize;
use tokio::sync::watch;

use super::updates::{self, Update};

/// How long a followed stream stays silent before it says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How soon a follower looks again when recorded updates wait for earlier records.
const HELD_BACK: Duration = Duration::from_millis(50);
/// The least time between two reads of the store by one follower: a burst of records (a
/// launch storm, recovery's decisions) costs a follower one read per interval, not one
/// per record.
const PACE: Duration = Duration::from_millis(100);

/// The query of `GET /v1/events`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct EventsQuery {
    /// Only updates after this position.
    #[serde(default)]
    pub after: u64,
    /// Keep the stream open.
    #[serde(default)]
    pub follow: bool,
}

/// The updates after `after` that may be sent now, oldest first, and whether later ones
/// are recorded but wait for earlier records to become readable.
pub fn settled_since(store: &Store, after: u64) -> Result<(Vec<Update>, bool), StoreError> {
    // Read first: a record settled after this reading is not in the scan below either.
    let settled = store.settled_seq();
    let mut found = Vec::new();
    for summary in store.containers()? {
        if summary.last.seq <= after {
            continue;
        }
        let id = summary.container_id;
        let made = updates::of_history(&store.history(id)?, &store.statuses(id)?);
        found.extend(made.into_iter().filter(|u| u.position > after));
    }
    found.sort_by_key(|u| u.position);
    let held_back = found.iter().any(|u| u.position > settled);
    found.retain(|u| u.position <= settled);
    Ok((found, held_back))
}

/// One line of the stream.
pub fn line(event: &serde_json::Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The heartbeat event.
pub fn heartbeat() -> serde_json::Value {
    serde_json::json!({ "type": "HEARTBEAT" })
}

/// An error line, the stream's last: what went wrong, for the client to show.
pub fn error(message: &str) -> serde_json::Value {
    serde_json::json!({ "type": "ERROR", "message": message })
}

/// [`settled_since`] off the runtime's threads: the store's reads are blocking I/O.
pub async fn read_since(store: Arc<Store>, after: u64) -> Result<(Vec<Update>, bool), String> {
    tokio::task::spawn_blocking(move || settled_since(&store, after))
        .await
        .map_err(|e| format!("cannot read the store: {e}"))?
        .map_err(|e| format!("cannot read the store: {e}"))
}

/// What a follower does next.
pub enum Next {
    /// Send these lines; the stream goes on after this position.
    Send(Vec<u8>, u64),
    /// Send these lines (an error) and end the stream.
    Last(Vec<u8>),
    /// End the stream: the API stops.
    End,
}

/// What a followed stream watches besides the store.
pub struct Follow {
    /// Changes whenever the agent records a phase.
    pub recorded: watch::Receiver<u64>,
    /// Becomes true when the API stops.
    pub stopping: watch::Receiver<bool>,
}

/// Waits for the next lines of a followed stream after `after`: the updates settled
/// since, as soon as there are some, or a heartbeat after [`HEARTBEAT`] of silence; the
/// end once the API stops.
pub async fn next(
    store: &Arc<Store>,
    agent_id: uuid::Uuid,
    after: u64,
    follow: &mut Follow,
) -> Next {
    let quiet_until = tokio::time::Instant::now() + HEARTBEAT;
    loop {
        if *follow.stopping.borrow() {
            return Next::End;
        }
        follow.recorded.borrow_and_update();
        let read_at = tokio::time::Instant::now();
        let (found, held_back) = match read_since(store.clone(), after).await {
            Ok(read) => read,
            Err(why) => return Next::Last(line(&error(&why))),
        };
        if let Some(last) = found.last().map(|u| u.position) {
            let lines = found
                .iter()
                .flat_map(|u| line(&u.event(agent_id)))
                .collect();
            return Next::Send(lines, last);
        }
        let wake = if held_back {
            (tokio::time::Instant::now() + HELD_BACK).min(quiet_until)
        } else {
            quiet_until
        };
        tokio::select! {
            changed = follow.recorded.changed() => {
                if changed.is_err() {
                    return Next::End;
                }
                tokio::time::sleep_until(read_at + PACE).await;
            }
            _ = follow.stopping.changed() => return Next::End,
            () = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= quiet_until {
                    return Next::Send(line(&heartbeat()), after);
                }
            }
        }
    }
}

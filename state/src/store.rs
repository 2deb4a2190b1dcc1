//! The checkpoint store on sled: the [`Store`] type, what it holds, and where each part
//! of it lives.
//!
//! Keys are laid out in [`crate::keys`]; every value is encoded by [`crate::codec`]. A
//! second tree, `quarantine`, holds [`Quarantined`](crate::Quarantined) values: the raw
//! bytes of values that failed to decode, with their key and the reason.
//!
//! Every write goes through berth's write-ahead log ([`crate::wal`]) before sled sees it;
//! opening replays the log into sled and checkpoints. Reads see what is durable: a write
//! reaches sled once its batch of the log is durable, before its call returns.
//!
//! Opening (`open`), the pass that checks every value (`scan`), writes (`writes`) and
//! reads (`reads`) are submodules, so that the store's fields stay private to it. Its
//! settings and errors have modules of their own (`config`, `error`), so that the flusher
//! can name them without importing the store; they are re-exported here as before.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use crate::flush::{FlushObserver, GroupFlush};
use crate::keys;
use crate::record::{AgentMeta, PhaseRecord, Summary};
use crate::repair::Repair;

pub use crate::config::{Durability, OnCorrupt, StoreConfig};
pub use crate::error::{Corrupt, Lost, StoreError};

mod open;
mod reads;
mod scan;
mod writes;

/// In `OnCorrupt::Report` mode, what the reads show beyond the stored values: corrupt
/// values are left out and the repairs an agent would make are shown as made.
#[derive(Debug, Default)]
struct Overlay {
    skip: HashSet<Vec<u8>>,
    summaries: BTreeMap<Uuid, Summary>,
    history: BTreeMap<Uuid, Vec<PhaseRecord>>,
}

/// The checkpoint store. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    records: sled::Tree,
    quarantine: sled::Tree,
    // Its pending lock serialises read-modify-write of summaries and keeps seq order equal
    // to log order.
    flusher: GroupFlush,
    /// The seq the next write takes. berth's own, not sled's `generate_id`: sled makes its
    /// counter durable only when its own log is flushed, which the write-ahead log replaced,
    /// so after a SIGKILL sled handed out seqs again that records already held (and their
    /// keys were overwritten). Taken under the pending lock, so seq order is log order.
    next_seq: AtomicU64,
    meta: AgentMeta,
    meta_ok: bool,
    corrupt: Vec<Corrupt>,
    repairs: Vec<Repair>,
    notes: Vec<String>,
    lost: Option<Lost>,
    overlay: Option<Overlay>,
    // Last field, so dropped after every sled handle: waits for sled to let go of its lock.
    _release: LockRelease,
}

/// Waits, when the store is dropped, until sled's background threads have released the
/// file lock, so that the store can be opened again at once (sled issues #1234, #1289).
struct LockRelease {
    db_file: PathBuf,
}

impl Drop for LockRelease {
    fn drop(&mut self) {
        let deadline = Instant::now() + crate::lock::OWN_LOCK_WAIT;
        while crate::lock::holder(&self.db_file) == Some(std::process::id())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A key as a person reads it: `p/<uuid>/<seq>`.
pub fn describe_key(key: &[u8]) -> String {
    keys::describe(key)
}

impl Store {
    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The agent's record as of this start. Opened with [`OnCorrupt::Report`] on a store
    /// whose agent record is missing or does not decode, a stand-in with a nil agent id:
    /// [`Store::agent`] tells the difference.
    pub fn meta(&self) -> &AgentMeta {
        &self.meta
    }

    /// The agent's record, if the store has one that decodes.
    pub fn agent(&self) -> Option<&AgentMeta> {
        self.meta_ok.then_some(&self.meta)
    }

    /// Values found undecodable when the store was opened (quarantined unless the store
    /// was opened with [`OnCorrupt::Report`]).
    pub fn corrupt_at_open(&self) -> &[Corrupt] {
        &self.corrupt
    }

    /// What opening put right after a crash between two writes (with
    /// [`OnCorrupt::Report`]: what the agent will put right; reads already show it).
    pub fn repairs_at_open(&self) -> &[Repair] {
        &self.repairs
    }

    /// What opening found and did, for a person: a torn last batch of the write-ahead log
    /// ignored, broken sled snapshots or a damaged log generation set aside, and (unless
    /// opened with [`OnCorrupt::Refuse`], which refuses instead) where records were lost.
    pub fn notes_at_open(&self) -> &[String] {
        &self.notes
    }

    /// Acknowledged records found missing at open (only when not opened with
    /// [`OnCorrupt::Refuse`], which refuses instead). Recovery must then not take a
    /// container without a record for an orphan: its record may be among the lost.
    pub fn lost_at_open(&self) -> Option<Lost> {
        self.lost
    }

    /// How many flushes the group flusher has run.
    pub fn flush_count(&self) -> u64 {
        self.flusher.flush_count()
    }

    /// Tells `observer` of every batch the flusher makes durable (how long it took) and of
    /// the store's failure, from then on: the agent's metrics, without this crate knowing
    /// them. One observer per store; false (and `observer` dropped) if one was set already.
    pub fn observe_flushes(&self, observer: FlushObserver) -> bool {
        self.flusher.observe(observer)
    }
}

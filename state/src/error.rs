//! Why the store cannot do what was asked ([`StoreError`]), and what opening reports
//! without failing: a value that does not decode ([`Corrupt`]) and records made durable
//! and then lost ([`Lost`]).
//!
//! Apart from the store so that every module of the crate (the flusher, offline
//! inspection, the printed views) can name a failure without importing the store.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::codec::{CodecError, SCHEMA_VERSION};

/// A value that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// Its key, printed readably.
    pub key: String,
    /// Its key as stored.
    pub raw_key: Vec<u8>,
    /// Why it is bad.
    pub reason: String,
    /// Its raw bytes.
    pub bytes: Vec<u8>,
}

/// Records made durable and then lost: those written after `newest` up to `durable`
/// (some of them, or all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    /// The newest seq the store holds from before the loss.
    pub newest: u64,
    /// The newest seq known to have been made durable after it.
    pub durable: u64,
}

/// Why the store cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (normally the running agent) holds the store.
    #[error("the store at {} is held by {} (is the agent running?): stop it, or ask the running agent", .path.display(), holder_text(.holder))]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The pid holding sled's lock, when `/proc/locks` tells.
        holder: Option<u32>,
    },
    /// The directory exists but is not a berth store.
    #[error("{} is not a berth store ({why}): point --work_dir at a berth work directory, or at an empty one", .path.display())]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What gave it away.
        why: String,
    },
    /// A berth store sled cannot read: a damaged byte in its files.
    #[error("the store at {} is damaged: sled cannot read it ({why}); berth does not start on a store it cannot read. Keep a copy of the directory for a post-mortem; see docs/state-format.md, \"A damaged store\", for what to do next", .path.display())]
    Damaged {
        /// The directory.
        path: PathBuf,
        /// What sled said.
        why: String,
    },
    /// Written by a newer berth.
    #[error("the store at {} has schema version {found}, newer than this berth's {SCHEMA_VERSION}: run a berth at least as new as the one that wrote it", .path.display())]
    NewerSchema {
        /// The directory.
        path: PathBuf,
        /// The version found.
        found: u16,
    },
    /// The agent's own record does not decode, so the agent id is unknown.
    #[error("the agent record of the store at {} does not decode ({reason}); without it the agent id, which names every container, is unknown, so berth will not guess one: restore the store from a backup, or inspect it with `berth state export`", .path.display())]
    CorruptAgentRecord {
        /// The directory.
        path: PathBuf,
        /// Why it does not decode.
        reason: String,
    },
    /// Acknowledged records are missing: sled dropped the end of its log, or an entry of
    /// berth's write-ahead log is damaged.
    #[error("the store at {} has lost acknowledged records: {why}; keep a copy of the directory for a post-mortem, then start with --strict=false to go on with what is left", .path.display())]
    LostRecords {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        lost: Lost,
        /// Where and how, for a person.
        why: String,
    },
    /// Values that do not decode, with `OnCorrupt::Refuse`.
    #[error("the store has {} record(s) that do not decode, first {}: {}; run `berth state verify`, or start with --strict=false to quarantine them", .0.len(), .0[0].key, .0[0].reason)]
    Corrupt(Vec<Corrupt>),
    /// sled failed (I/O, its own corruption).
    #[error("{}", sled_text(.0))]
    Sled(#[from] sled::Error),
    /// A file operation of the store failed.
    #[error("{what} failed: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The record could not be made durable; the action it announces must not happen.
    #[error("the record could not be made durable, so the action it announces must not be taken: {0}; free space or repair the disk under the work directory, then restart the agent")]
    NotDurable(String),
    /// A value could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A record refers to a container the store does not know.
    #[error("no container {0} in the store")]
    UnknownContainer(Uuid),
    /// An acknowledgement names a status update the store does not have.
    #[error("container {container} has no status update with seq {seq}")]
    UnknownStatus {
        /// The container.
        container: Uuid,
        /// The seq asked for.
        seq: u64,
    },
    /// The phase cannot follow the container's newest one
    /// ([`Phase::may_follow`](crate::Phase::may_follow)).
    #[error("container {container} cannot go from {from} to {to}: refused, nothing recorded")]
    Transition {
        /// The container.
        container: Uuid,
        /// Its newest phase (`none` for a container without records).
        from: &'static str,
        /// The phase refused.
        to: &'static str,
    },
}

impl StoreError {
    /// The same error naming `dir` as the store's directory (for an error met on a copy).
    pub fn at(self, dir: &Path) -> StoreError {
        let path = dir.to_owned();
        match self {
            StoreError::Locked { holder, .. } => StoreError::Locked { path, holder },
            StoreError::NotAStore { why, .. } => StoreError::NotAStore { path, why },
            StoreError::Damaged { why, .. } => StoreError::Damaged { path, why },
            StoreError::NewerSchema { found, .. } => StoreError::NewerSchema { path, found },
            StoreError::CorruptAgentRecord { reason, .. } => {
                StoreError::CorruptAgentRecord { path, reason }
            }
            StoreError::LostRecords { lost, why, .. } => {
                StoreError::LostRecords { path, lost, why }
            }
            other => other,
        }
    }
}

/// How a sled error reads: its own corruption says the store is damaged, not that an
/// I/O failed.
fn sled_text(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => format!(
            "the store is damaged: sled cannot read it ({e}); keep a copy of the directory for a post-mortem; see docs/state-format.md, \"A damaged store\""
        ),
        _ => format!("store I/O failed: {e}"),
    }
}

/// Who holds the store, as [`StoreError::Locked`] names them: this process is told
/// apart, since it means a `Store` of its own not yet dropped.
fn holder_text(holder: &Option<u32>) -> String {
    match *holder {
        Some(pid) if pid == std::process::id() => "this process".into(),
        Some(pid) => format!("process {pid}"),
        None => "another process".into(),
    }
}

//! Checkpoints: when the flusher takes one ([`Checkpoints`], `Flusher::due`), what it does
//! (every durable entry applied, a new generation of the log, sled made durable, the older
//! generations removed), and making sled's own files durable ([`Files`], [`flush_once`]),
//! which opening a store does too.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::flusher::Flusher;
use super::shared::Shared;

/// sled's files that a checkpoint syncs beyond sled's own flush.
pub(crate) struct Files {
    /// sled's log, `<dir>/db`.
    pub(crate) log: File,
    /// `<dir>/blobs`.
    pub(crate) blobs: PathBuf,
    /// Blob files already synced.
    pub(crate) synced: HashSet<OsString>,
}

impl Files {
    /// The files of the store in `dir`; `log` is its open `db` file.
    pub(crate) fn new(dir: &Path, log: File) -> Files {
        Files {
            log,
            blobs: dir.join("blobs"),
            synced: HashSet::new(),
        }
    }

    fn sync(&mut self) -> Result<(), String> {
        self.log
            .sync_data()
            .map_err(|e| format!("fdatasync of sled's log: {e}"))?;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("reading {}: {e}", self.blobs.display())),
        };
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", self.blobs.display()))?;
            let name = entry.file_name();
            if !self.synced.contains(&name) {
                let path = entry.path();
                match File::open(&path).and_then(|f| f.sync_all()) {
                    Ok(()) => new = true,
                    // sled deleted it meanwhile: a newer value superseded it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(format!("fsync of blob {}: {e}", path.display())),
                }
            }
            present.insert(name);
        }
        if new {
            File::open(&self.blobs)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("fsync of {}: {e}", self.blobs.display()))?;
        }
        self.synced = present;
        Ok(())
    }
}

/// Makes everything sled holds durable in sled's own files: sled's `flush` (its log
/// written, `sync_file_range`), then `fdatasync` of its log and `fsync` of new blobs.
pub(crate) fn flush_once(db: &sled::Db, files: &mut Files) -> Result<(), String> {
    db.flush().map_err(|e| format!("sled flush: {e}"))?;
    files.sync()
}

/// When the flusher checkpoints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checkpoints {
    /// At most this long after the first entry of a generation.
    pub(crate) every: Duration,
    /// Or once a generation holds this many bytes of batches.
    pub(crate) bytes: u64,
}
impl Flusher {
    /// When the next checkpoint is due, given when the newest generation got its first
    /// entry (`None`: it has none, and nothing is due).
    pub(super) fn due(&self, first: Option<Instant>, stopping: bool) -> Option<Instant> {
        let first = first?;
        let full = self
            .wal
            .as_ref()
            .is_some_and(|w| w.written() >= self.checkpoints.bytes);
        if stopping || full {
            return Some(first);
        }
        Some(first + self.checkpoints.every)
    }

    /// Every durable entry applied to sled, a new generation, sled made durable, the older
    /// generations removed: in this order, so that the generations present always start
    /// at a point sled's files hold.
    pub(super) fn checkpoint(&mut self, shared: &Shared, durable: u64) -> Result<(), String> {
        let Some(wal) = self.wal.as_mut() else {
            return Ok(());
        };
        shared
            .apply_leftovers(durable)
            .map_err(|e| format!("applying a logged write to sled: {e}"))?;
        if shared.failed() {
            // A writer's apply failed: sled lacks a logged write, and only the log has it.
            return Err("a logged write did not reach sled; no generation may be removed".into());
        }
        wal.rotate(self.newest)
            .map_err(|e| format!("starting a new generation of berth's write-ahead log: {e}"))?;
        flush_once(&self.db, &mut self.files)?;
        wal.retire()
            .map(drop)
            .map_err(|e| format!("removing an old generation of berth's write-ahead log: {e}"))
    }
}

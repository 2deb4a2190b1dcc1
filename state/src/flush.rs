//! Group commit: one flusher thread makes writes durable in batches.
//!
//! A writer applies its change in memory, takes a ticket, and waits until a flush that
//! started after its ticket has completed. While one flush runs, new writes gather and the
//! next flush covers all of them, so N concurrent writers pay far fewer than N flushes.
//!
//! A flush is sled's `flush` (its log written and `sync_file_range`d), then, for
//! [`Durability::PowerLoss`], an `fdatasync` of sled's log file, which also reaches the
//! drive's cache and the file's size.
//!
//! After every successful flush the flusher writes the *watermark*: the seq of the newest
//! write the flush covered, in a small file beside sled's (see [`Watermark`]).
//!
//! A failed flush poisons the flusher: every later wait fails too. After a failed
//! `fsync`, Linux may have dropped the dirty pages and a later `fsync` can succeed without
//! them ("fsyncgate"), so no later success may vouch for a write made before the failure.
//! The agent has to restart, and a restart reads what really is on disk.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use tokio::sync::watch;

use crate::store::Durability;

/// What the flusher has achieved so far.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every ticket up to this is durable.
    durable: u64,
    /// Set by the first failed flush; every ticket above `durable` fails with it.
    failed: Option<Arc<str>>,
}

struct Shared {
    issued: AtomicU64,
    wanted: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
    progress: watch::Sender<Progress>,
}

/// `<dir>/berth.watermark`: the newest seq known durable, written (not synced) after every
/// flush. sled treats a damaged log message as the end of its log and drops everything
/// after it without a word; at open, a store whose newest seq is below the watermark has
/// lost acknowledged records, and says so.
pub(crate) struct Watermark {
    file: File,
}

/// The watermark file's name inside the store's directory.
pub(crate) const WATERMARK_FILE: &str = "berth.watermark";

impl Watermark {
    /// Reads the watermark of the store in `dir`: `Ok(None)` without one, `Err` with the
    /// reason if it does not decode.
    pub(crate) fn read(dir: &Path) -> Result<Option<u64>, String> {
        match std::fs::read(dir.join(WATERMARK_FILE)) {
            Ok(bytes) => crate::codec::decode::<u64>(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Opens (or creates) the watermark file of the store in `dir`.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Watermark> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(WATERMARK_FILE))?;
        Ok(Watermark { file })
    }

    /// Overwrites it in place (same length every time, so it needs no new disk blocks).
    pub(crate) fn write(&self, seq: u64) -> Result<(), String> {
        use std::os::unix::fs::FileExt;
        let bytes = crate::codec::encode(&seq).map_err(|e| e.to_string())?;
        self.file
            .write_all_at(&bytes, 0)
            .map_err(|e| format!("writing the watermark: {e}"))
    }
}

/// The flusher; dropping it stops the thread after a last flush.
pub(crate) struct GroupFlush {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    flushes: Arc<AtomicU64>,
}

/// sled's files that a power-loss flush syncs beyond sled's own flush.
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
            .map_err(|e| format!("fdatasync of the store's log: {e}"))?;
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

/// Makes everything written to `db` so far durable, once.
pub(crate) fn flush_once(db: &sled::Db, files: Option<&mut Files>) -> Result<(), String> {
    db.flush().map_err(|e| format!("sled flush: {e}"))?;
    match files {
        Some(files) => files.sync(),
        None => Ok(()),
    }
}

impl GroupFlush {
    /// Starts a flusher for `db`; `files` are synced after every flush when the
    /// durability asks for it.
    pub(crate) fn start(
        db: sled::Db,
        files: Files,
        durability: Durability,
        watermark: Option<Watermark>,
        applied: Arc<AtomicU64>,
    ) -> std::io::Result<GroupFlush> {
        let mut files = match durability {
            Durability::PowerLoss => Some(files),
            Durability::ProcessCrash => None,
        };
        let (progress, _) = watch::channel(Progress::default());
        let shared = Arc::new(Shared {
            issued: AtomicU64::new(0),
            wanted: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            progress,
        });
        let flushes = Arc::new(AtomicU64::new(0));
        let thread = {
            let shared = shared.clone();
            let flushes = flushes.clone();
            std::thread::Builder::new()
                .name("berth-state-flush".into())
                .spawn(move || {
                    let sinks = Sinks {
                        files: files.as_mut(),
                        watermark: watermark.as_ref(),
                        applied: &applied,
                    };
                    run(&db, sinks, &shared, &flushes)
                })?
        };
        Ok(GroupFlush {
            shared,
            thread: Some(thread),
            flushes,
        })
    }

    /// The error of the flush that failed, if one did: nothing more can be made durable.
    pub(crate) fn poisoned(&self) -> Option<Arc<str>> {
        self.shared.progress.borrow().failed.clone()
    }

    /// Waits until everything applied before this call is durable.
    pub(crate) async fn durable(&self) -> Result<(), Arc<str>> {
        let ticket = self.shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut rx = self.shared.progress.subscribe();
        self.request();
        loop {
            {
                let p = rx.borrow_and_update();
                if p.durable >= ticket {
                    return Ok(());
                }
                if let Some(error) = &p.failed {
                    return Err(error.clone());
                }
            }
            if rx.changed().await.is_err() {
                return Err(Arc::from("the store's flusher stopped"));
            }
        }
    }

    /// How many flushes have run (for benchmarks and tests of batching).
    pub(crate) fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    fn request(&self) {
        let mut wanted = self.shared.wanted.lock().unwrap_or_else(|p| p.into_inner());
        *wanted = true;
        self.shared.wake.notify_one();
    }
}

impl Drop for GroupFlush {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a flush goes beyond sled.
struct Sinks<'a> {
    files: Option<&'a mut Files>,
    watermark: Option<&'a Watermark>,
    applied: &'a AtomicU64,
}

fn run(db: &sled::Db, mut sinks: Sinks<'_>, shared: &Shared, flushes: &AtomicU64) {
    loop {
        {
            let mut wanted = shared.wanted.lock().unwrap_or_else(|p| p.into_inner());
            while !*wanted {
                wanted = shared.wake.wait(wanted).unwrap_or_else(|p| p.into_inner());
            }
            *wanted = false;
        }
        if shared.progress.borrow().failed.is_some() {
            // Poisoned: wake any waiter that arrived since; they see the failure.
            shared.progress.send_modify(|_| {});
        } else {
            // Every ticket issued by now belongs to a write already applied in memory.
            let target = shared.issued.load(Ordering::SeqCst);
            // Every seq up to this one is applied (seqs are taken and applied in order).
            let covered = sinks.applied.load(Ordering::SeqCst);
            let result = flush_once(db, sinks.files.as_deref_mut())
                .and_then(|()| sinks.watermark.map_or(Ok(()), |w| w.write(covered)));
            flushes.fetch_add(1, Ordering::Relaxed);
            shared.progress.send_modify(|p| match result {
                Ok(()) => p.durable = p.durable.max(target),
                Err(e) => p.failed = Some(Arc::from(e)),
            });
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

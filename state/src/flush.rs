//! Group commit: one flusher thread makes writes durable in batches, through berth's
//! write-ahead log, and checkpoints sled.
//!
//! A writer prepares its change under the pending lock (reading what earlier writes left,
//! including those still pending), stages it as a log entry, takes a ticket, and waits
//! until its ticket is durable. The flusher takes every staged entry at once, appends them
//! to the log as one batch with one write, and `fdatasync`s it ([`Durability::PowerLoss`]).
//! While one batch is written, new entries gather and the next batch carries all of them,
//! so N concurrent writers pay far fewer than N syncs.
//!
//! Only then does each writer apply its own entry to sled, in memory, before its call
//! returns (so that its caller reads what it wrote), while the flusher already writes the
//! next batch: applying costs about as much as the sync, and doing it in the flusher would
//! leave the disk idle meanwhile. Per key, values reach sled in log order: an entry applies
//! a key only if no later durable entry has applied it already. A writer that stopped
//! waiting leaves its entry to the flusher, which applies every such leftover before a
//! checkpoint.
//!
//! sled only ever holds writes the log holds durably: whatever sled writes to its files on
//! its own (its background flusher, a full buffer) is covered by the log, so replaying the
//! log over sled's files after a crash gives exactly the logged writes, in order. Had
//! writes gone to sled first, sled could have written one the log never got, and a replay
//! would mix newer values from sled with older ones from the log (a purged container
//! partly back, say).
//!
//! A few hundred milliseconds after the newest generation of the log got its first entry,
//! or once it passes a size, the flusher checkpoints: every durable entry applied, a new
//! generation, then sled's `flush` and an `fdatasync` of sled's files, then the older
//! generations removed ([`crate::wal`]).
//!
//! After every successful batch the flusher writes the *watermark*: the seq of the newest
//! write it covered, in a small file beside sled's (see [`Watermark`]).
//!
//! A failed write, sync, apply or checkpoint poisons the flusher: every later wait fails
//! too. After a failed `fsync`, Linux may have dropped the dirty pages and a later `fsync`
//! can succeed without them ("fsyncgate"), so no later success may vouch for a write made
//! before the failure, nor may a later checkpoint remove a generation of the log. The
//! agent has to restart, and a restart reads what really is on disk.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::codec::CodecError;
use crate::config::Durability;
use crate::wal::{self, Entry, Op, Wal};

/// Wakes one writer: `Ok` once its ticket is durable, or the flusher's failure.
type Waiter = oneshot::Sender<Result<(), Arc<str>>>;

/// What the flusher tells an observer ([`crate::Store::observe_flushes`]), so that the
/// agent can export it without this crate knowing how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// A batch was logged and made durable; how long its write, sync and watermark took
    /// (what every writer of the batch waited for, beyond queueing).
    Logged(Duration),
    /// The store failed (a write, sync, apply or checkpoint): it takes no write any more.
    /// Told once.
    Failed,
}

/// Called on the flusher thread (and, for a failed apply, on a writer's): kept short.
pub type FlushObserver = Box<dyn Fn(Flush) + Send + Sync>;

/// What the flusher has achieved so far, and who waits for what.
#[derive(Default)]
struct Progress {
    /// Every ticket up to this is durable (its writer then applies it to sled).
    durable: u64,
    /// Set by the first failure; every ticket above `durable` fails with it.
    failed: Option<Arc<str>>,
    /// Writers waiting, by ticket. Each is woken alone, when its ticket is durable (or
    /// the flusher failed): a batch wakes its own writers, not every writer waiting.
    waiting: BTreeMap<u64, Vec<Waiter>>,
}

impl Progress {
    /// Every ticket up to `ticket` is durable: wakes their writers.
    fn durable(&mut self, ticket: u64) {
        self.durable = self.durable.max(ticket);
        let later = self.waiting.split_off(&ticket.saturating_add(1));
        for waiter in std::mem::replace(&mut self.waiting, later)
            .into_values()
            .flatten()
        {
            // A writer that stopped waiting dropped its receiver: nothing to wake.
            let _ = waiter.send(Ok(()));
        }
    }

    /// The first failure: wakes every writer waiting, with the error.
    fn fail(&mut self, error: Arc<str>) {
        let error = self.failed.get_or_insert(error).clone();
        for waiter in std::mem::take(&mut self.waiting).into_values().flatten() {
            let _ = waiter.send(Err(error.clone()));
        }
    }
}

/// What a writer waits for: its entry's place in the log, and the stripes of its keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    number: u64,
    stripes: Stripes,
}

/// An entry waiting for the flusher: its seq, and its bytes as they go into a batch.
struct Staged {
    seq: u64,
    bytes: Vec<u8>,
}

/// A value staged for a key (`None`: removed), with the ticket of the entry that staged it.
type StagedValue = (u64, Option<Vec<u8>>);

/// Writes staged and not yet applied to sled: the queue the flusher takes, and the staged
/// values of each key, for writers that read before they write and for applying.
#[derive(Default)]
pub(crate) struct Pending {
    queue: Vec<Staged>,
    /// Key to the values staged for it and not yet in sled, oldest first.
    overlay: BTreeMap<Vec<u8>, VecDeque<StagedValue>>,
    /// Ticket to the keys of its entry and their stripes, until the entry is applied.
    unapplied: BTreeMap<u64, (Stripes, Vec<Vec<u8>>)>,
    /// Ticket to the store-wide sequence number of its entry, until sled holds the entry
    /// (or later values of all its keys): what [`Pending::first_unsettled`] reads.
    unsettled: BTreeMap<u64, u64>,
    issued: u64,
}

impl Pending {
    /// The value of `key` once every staged write is applied.
    pub(crate) fn get(
        &self,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, sled::Error> {
        match self.overlay.get(key).and_then(VecDeque::back) {
            Some((_, value)) => Ok(value.clone()),
            None => Ok(tree.get(key)?.map(|v| v.to_vec())),
        }
    }

    /// Every key under `prefix` and its value once every staged write is applied.
    pub(crate) fn scan_prefix(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, sled::Error> {
        let mut out = BTreeMap::new();
        for entry in tree.scan_prefix(prefix) {
            let (key, value) = entry?;
            out.insert(key.to_vec(), value.to_vec());
        }
        let staged = self
            .overlay
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, values)| Some((key, &values.back()?.1)));
        for (key, value) in staged {
            match value {
                Some(v) => out.insert(key.clone(), v.clone()),
                None => out.remove(key),
            };
        }
        Ok(out)
    }

    /// Stages `entry` for the flusher; returns its ticket for [`GroupFlush::durable`].
    /// Fails, staging nothing, if the entry is too large for the log.
    pub(crate) fn stage(&mut self, entry: Entry) -> Result<Ticket, CodecError> {
        let bytes = wal::encode(&entry)?;
        self.issued += 1;
        let mut keys = Vec::with_capacity(entry.ops.len());
        let mut stripes = Stripes::default();
        for op in entry.ops {
            let (key, value) = match op {
                Op::Put { key, value } => (key, Some(value)),
                Op::Remove { key } => (key, None),
            };
            self.overlay
                .entry(key.clone())
                .or_default()
                .push_back((self.issued, value));
            stripes.add(&key);
            keys.push(key);
        }
        self.unapplied.insert(self.issued, (stripes, keys));
        self.unsettled.insert(self.issued, entry.seq);
        self.queue.push(Staged {
            seq: entry.seq,
            bytes,
        });
        Ok(Ticket {
            number: self.issued,
            stripes,
        })
    }

    /// The entries for the next batch (up to [`wal::BATCH_BYTES`], at least one) and the
    /// ticket of the last of them.
    fn take(&mut self) -> (Vec<Staged>, u64) {
        let mut size = 0;
        let count = self
            .queue
            .iter()
            .take_while(|s| {
                size += s.bytes.len();
                size <= wal::BATCH_BYTES
            })
            .count()
            .max(1)
            .min(self.queue.len());
        let batch: Vec<Staged> = self.queue.drain(..count).collect();
        let left = u64::try_from(self.queue.len()).unwrap_or(u64::MAX);
        (batch, self.issued - left)
    }

    /// What applying the entry staged with `ticket` (durable, and so every earlier one)
    /// writes to sled: for each of its keys, the newest value staged up to `ticket`.
    /// Nothing for a key a later entry applied already, nor for an entry applied already
    /// (the flusher takes those of writers that stopped waiting).
    fn claim(&mut self, ticket: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let Some((_, keys)) = self.unapplied.remove(&ticket) else {
            return Vec::new();
        };
        keys.into_iter()
            .filter_map(|key| {
                let values = self.overlay.get(&key)?;
                let newest = values.iter().take_while(|&&(t, _)| t <= ticket).last()?;
                let value = newest.1.clone();
                Some((key, value))
            })
            .collect()
    }

    /// The sequence number of the oldest entry sled does not hold yet, if any: every
    /// entry before it can be read, and none from it on may be taken as all there is
    /// (entries are applied by their writers, not in order).
    pub(crate) fn first_unsettled(&self) -> Option<u64> {
        self.unsettled.values().next().copied()
    }

    /// Forgets the values staged up to `ticket` for `keys`: sled holds them now.
    fn settle<'a>(&mut self, ticket: u64, keys: impl IntoIterator<Item = &'a [u8]>) {
        self.unsettled.remove(&ticket);
        for key in keys {
            let Some(values) = self.overlay.get_mut(key) else {
                continue;
            };
            while values.front().is_some_and(|&(t, _)| t <= ticket) {
                values.pop_front();
            }
            if values.is_empty() {
                self.overlay.remove(key);
            }
        }
    }
}

/// Which of the [`STRIPES`] locks an entry's keys need.
#[derive(Debug, Clone, Copy, Default)]
struct Stripes(u64);

/// Locks that keep the values of a key reaching sled in log order: entries whose keys
/// fall in different stripes write sled in parallel.
/// Each entry takes two or so: with 16, two writers applying at once met on one a quarter
/// of the time, and one of them slept in the kernel.
const STRIPES: usize = 64;
// One bit per stripe in a `u64`.
const _: () = assert!(STRIPES == u64::BITS as usize);

impl Stripes {
    /// All of them.
    const ALL: Stripes = Stripes(u64::MAX);

    fn add(&mut self, key: &[u8]) {
        self.0 |= 1 << (crc32fast::hash(key) as usize % STRIPES);
    }

    /// Locks them, in ascending order so that two entries never wait for each other.
    fn lock(self, locks: &[Mutex<()>; STRIPES]) -> Vec<MutexGuard<'_, ()>> {
        (0..STRIPES)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| locks[i].lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }
}

/// Writes claimed values to sled.
fn write(tree: &sled::Tree, writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), sled::Error> {
    for (key, value) in writes {
        match value {
            Some(v) => tree.insert(key.as_slice(), v.as_slice()).map(drop)?,
            None => tree.remove(key.as_slice()).map(drop)?,
        }
    }
    Ok(())
}

struct Shared {
    /// The tree every logged write goes to.
    records: sled::Tree,
    pending: Mutex<Pending>,
    /// Held, for the stripes of its keys, while a claimed entry is written to sled, so
    /// that per key the values reach sled in log order; the pending lock is not held
    /// meanwhile, so that writers stage and the flusher takes its next batch while sled is
    /// written.
    applying: [Mutex<()>; STRIPES],
    /// Set by writers (and the flusher itself) when there is something to log; the
    /// flusher clears it when it starts a batch. Only the first request after that takes
    /// the lock below to wake it: one lock and one wake per batch, not per record.
    requested: AtomicBool,
    /// Held by the flusher from its check of `requested` until it sleeps, so that a wake
    /// is never lost between the two.
    sleep: Mutex<()>,
    wake: Condvar,
    stop: AtomicBool,
    progress: Mutex<Progress>,
    /// Whether `progress` holds a failure: every write checks it first, without the lock.
    failed: AtomicBool,
    /// Told of every batch and of the failure; set once, after the store opened.
    observer: OnceLock<FlushObserver>,
}

impl Shared {
    fn new(records: sled::Tree) -> Shared {
        Shared {
            records,
            pending: Mutex::new(Pending::default()),
            applying: std::array::from_fn(|_| Mutex::new(())),
            requested: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
            failed: AtomicBool::new(false),
            observer: OnceLock::new(),
        }
    }

    fn tell(&self, flush: Flush) {
        if let Some(observer) = self.observer.get() {
            observer(flush);
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self) {
        if self.requested.swap(true, Ordering::SeqCst) {
            // Not taken yet: the batch that takes it takes this writer's entry too.
            return;
        }
        let _sleep = self.sleep.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_one();
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn fail(&self, error: Arc<str>) {
        let mut progress = self.progress();
        // Stored before the flag is raised, so that whoever sees the flag finds the error.
        let error = progress.failed.get_or_insert(error).clone();
        let first = !self.failed.swap(true, Ordering::SeqCst);
        // Told under the lock, before any writer is woken with the error or finds it, so
        // that whoever sees the error can see it counted. An observer that panics must
        // not leave the writers waiting: they are woken first, then the panic goes on.
        let told = if first {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.tell(Flush::Failed)))
        } else {
            Ok(())
        };
        progress.fail(error);
        drop(progress);
        if let Err(panic) = told {
            std::panic::resume_unwind(panic);
        }
    }

    /// Applies the entry staged with `ticket`, which must be durable. A failure poisons
    /// the store before the stripes are let go, so that a checkpoint (which waits for
    /// every stripe) sees it and removes no generation holding the entry sled lacks.
    fn apply(&self, ticket: Ticket) -> Result<(), Arc<str>> {
        let _applying = ticket.stripes.lock(&self.applying);
        self.apply_locked(ticket.number).map_err(|e| {
            // sled now lacks a durable write: nothing more may be vouched for.
            let error: Arc<str> = Arc::from(format!("applying a logged write to sled: {e}"));
            self.fail(error.clone());
            error
        })
    }

    /// Applies every durable entry whose writer has not (it stopped waiting, or has not
    /// got to it yet), so that sled holds everything the log holds up to `durable`.
    fn apply_leftovers(&self, durable: u64) -> Result<(), sled::Error> {
        // Every stripe: a writer that claimed its entry (so it is not listed below) holds
        // its stripes until sled has the entry, and is waited for here.
        let _applying = Stripes::ALL.lock(&self.applying);
        let leftovers: Vec<u64> = self
            .pending()
            .unapplied
            .range(..=durable)
            .map(|(&t, _)| t)
            .collect();
        for ticket in leftovers {
            self.apply_locked(ticket)?;
        }
        Ok(())
    }

    /// Claims, writes and settles an entry; the caller holds its stripes.
    fn apply_locked(&self, ticket: u64) -> Result<(), sled::Error> {
        // Claiming finds nothing if the entry was applied meanwhile, or if later entries
        // applied every key of it: either way sled holds what it stands for.
        let writes = self.pending().claim(ticket);
        if writes.is_empty() {
            self.pending().unsettled.remove(&ticket);
            return Ok(());
        }
        // Until settled, the values stay staged: a writer reading meanwhile sees them.
        write(&self.records, &writes)?;
        self.pending()
            .settle(ticket, writes.iter().map(|(key, _)| key.as_slice()));
        Ok(())
    }

    /// Waits for a request, or until `until` (a checkpoint is due then).
    fn wait(&self, until: Option<Instant>) {
        let mut sleep = self.sleep.lock().unwrap_or_else(|p| p.into_inner());
        while !self.requested.swap(false, Ordering::SeqCst) {
            sleep = match until {
                None => self.wake.wait(sleep).unwrap_or_else(|p| p.into_inner()),
                Some(t) => {
                    let now = Instant::now();
                    if now >= t {
                        return;
                    }
                    self.wake
                        .wait_timeout(sleep, t - now)
                        .map(|(w, _)| w)
                        .unwrap_or_else(|p| p.into_inner().0)
                }
            };
        }
    }
}

/// `<dir>/berth.watermark`: the newest seq known durable, written (not synced) after every
/// batch. sled treats a damaged log message as the end of its log and drops everything
/// after it without a word, and a damaged last batch of berth's log looks like a torn one;
/// at open, a store whose newest seq is below the watermark has lost acknowledged records,
/// and says so.
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

/// Everything the flusher thread owns.
pub(crate) struct Flusher {
    pub(crate) db: sled::Db,
    /// `None` for a store opened for inspection, which writes nothing.
    pub(crate) wal: Option<Wal>,
    pub(crate) files: Files,
    pub(crate) durability: Durability,
    pub(crate) watermark: Option<Watermark>,
    /// The newest seq logged: the base of the next generation (once applied).
    pub(crate) newest: u64,
    pub(crate) checkpoints: Checkpoints,
}

impl Flusher {
    /// Logs a batch and makes it durable as the durability asks.
    fn commit(&mut self, batch: &[Staged]) -> Result<(), String> {
        let wal = self
            .wal
            .as_mut()
            .ok_or("the store was opened for inspection only")?;
        wal.append(&wal::frame(batch.iter().map(|s| s.bytes.as_slice())))
            .map_err(|e| format!("writing berth's write-ahead log: {e}"))?;
        if self.durability == Durability::PowerLoss {
            wal.sync()
                .map_err(|e| format!("fdatasync of berth's write-ahead log: {e}"))?;
        }
        for staged in batch {
            self.newest = self.newest.max(staged.seq);
        }
        self.watermark
            .as_ref()
            .map_or(Ok(()), |w| w.write(self.newest))
    }

    /// When the next checkpoint is due, given when the newest generation got its first
    /// entry (`None`: it has none, and nothing is due).
    fn due(&self, first: Option<Instant>, stopping: bool) -> Option<Instant> {
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
    fn checkpoint(&mut self, shared: &Shared, durable: u64) -> Result<(), String> {
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

/// The flusher; dropping it stops the thread after a last batch and checkpoint.
pub(crate) struct GroupFlush {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    flushes: Arc<AtomicU64>,
}

impl GroupFlush {
    /// Starts the flusher thread; writers apply their entries to `records`.
    pub(crate) fn start(flusher: Flusher, records: sled::Tree) -> std::io::Result<GroupFlush> {
        let shared = Arc::new(Shared::new(records));
        let flushes = Arc::new(AtomicU64::new(0));
        let thread = {
            let shared = shared.clone();
            let flushes = flushes.clone();
            std::thread::Builder::new()
                .name("berth-state-flush".into())
                .spawn(move || {
                    let _failing = FailOnPanic(&shared);
                    run(flusher, &shared, &flushes)
                })?
        };
        Ok(GroupFlush {
            shared,
            thread: Some(thread),
            flushes,
        })
    }

    /// The pending writes, locked: a writer reads through them, then stages its own. Held
    /// only for in-memory work, never across a wait.
    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.shared.pending()
    }

    /// The error of the failure, if one happened: nothing more can be made durable.
    pub(crate) fn poisoned(&self) -> Option<Arc<str>> {
        if !self.shared.failed() {
            return None;
        }
        self.shared.progress().failed.clone()
    }

    /// Waits until the entry staged with `ticket` is durable, then applies it to sled.
    pub(crate) async fn durable(&self, ticket: Ticket) -> Result<(), Arc<str>> {
        let waiting = {
            let mut progress = self.shared.progress();
            if progress.durable >= ticket.number {
                None
            } else if let Some(error) = &progress.failed {
                return Err(error.clone());
            } else {
                let (tx, rx) = oneshot::channel();
                progress.waiting.entry(ticket.number).or_default().push(tx);
                Some(rx)
            }
        };
        if let Some(rx) = waiting {
            self.shared.request();
            rx.await
                .map_err(|_| Arc::<str>::from("the store's flusher stopped"))??;
        }
        self.shared.apply(ticket)
    }

    /// How many batches have been logged (for benchmarks and tests of batching).
    pub(crate) fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Sets the observer of batches and of the failure; false if one was set already
    /// (it stays).
    pub(crate) fn observe(&self, observer: FlushObserver) -> bool {
        self.shared.observer.set(observer).is_ok()
    }
}

impl Drop for GroupFlush {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Poisons the store if the flusher thread panics (inside sled, say), so that writers
/// waiting for it get an error instead of waiting forever.
struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(Arc::from(
                "the store's flusher thread panicked; restart the agent",
            ));
        }
    }
}

fn run(mut flusher: Flusher, shared: &Shared, flushes: &AtomicU64) {
    // When the newest generation got its first entry.
    let mut first: Option<Instant> = None;
    loop {
        let poisoned = shared.failed();
        // Poisoned, no checkpoint may come: only a request (or the stop) wakes the thread.
        shared.wait(flusher.due(first, false).filter(|_| !poisoned));
        let stopping = shared.stop.load(Ordering::SeqCst);
        if shared.failed() {
            // Poisoned: writers see the failure before they wait.
            if stopping {
                return;
            }
            continue;
        }
        let (batch, ticket) = shared.pending().take();
        if !batch.is_empty() {
            let started = Instant::now();
            let result = flusher.commit(&batch);
            flushes.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(()) => {
                    first.get_or_insert_with(Instant::now);
                    shared.tell(Flush::Logged(started.elapsed()));
                    shared.progress().durable(ticket);
                }
                Err(e) => shared.fail(Arc::from(e)),
            }
            if !shared.pending().queue.is_empty() {
                // More came while this batch was written (or it was cut at its size): go
                // on without waiting for a request.
                shared.request();
            }
        }
        // Waiters were woken above: a checkpoint delays only the next batch.
        let due = flusher.due(first, stopping);
        if !shared.failed() && due.is_some_and(|t| t <= Instant::now()) {
            let durable = shared.progress().durable;
            match flusher.checkpoint(shared, durable) {
                Ok(()) => first = None,
                Err(e) => shared.fail(Arc::from(e)),
            }
        }
        if stopping && shared.pending().queue.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn tree() -> sled::Tree {
        sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled")
            .open_tree("records")
            .expect("tree")
    }

    /// What `Shared::apply` does, without its locks.
    fn apply(pending: &mut Pending, tree: &sled::Tree, ticket: Ticket) {
        let writes = pending.claim(ticket.number);
        write(tree, &writes).expect("write");
        pending.settle(ticket.number, writes.iter().map(|(key, _)| key.as_slice()));
    }

    fn value(tree: &sled::Tree, key: &str) -> Option<String> {
        tree.get(key)
            .expect("get")
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Writers apply their entries as each becomes durable, not in order: the oldest one
    /// sled lacks bounds what a reader resuming from a sequence number may take as all.
    #[test]
    fn the_oldest_entry_sled_lacks_bounds_what_is_settled() {
        let tree = tree();
        let mut pending = Pending::default();
        assert_eq!(pending.first_unsettled(), None);
        let first = pending
            .stage(Entry {
                seq: 11,
                ops: vec![put("a", "1")],
            })
            .expect("stage");
        let second = pending
            .stage(Entry {
                seq: 12,
                ops: vec![put("b", "2")],
            })
            .expect("stage");
        assert_eq!(pending.first_unsettled(), Some(11));
        apply(&mut pending, &tree, second);
        assert_eq!(pending.first_unsettled(), Some(11), "11 is not in sled yet");
        apply(&mut pending, &tree, first);
        assert_eq!(pending.first_unsettled(), None);
    }

    #[test]
    fn writers_read_through_staged_writes_until_sled_has_them() {
        let tree = tree();
        tree.insert("a1", "old").expect("insert");
        tree.insert("a2", "kept").expect("insert");
        tree.insert("b1", "other prefix").expect("insert");
        let mut pending = Pending::default();
        let remove_a2 = Op::Remove {
            key: b"a2".to_vec(),
        };
        let ops = vec![put("a1", "new"), put("a3", "added"), remove_a2];
        let first = pending.stage(Entry { seq: 1, ops }).expect("stage");
        assert_eq!(
            pending.get(&tree, b"a1").expect("get"),
            Some(b"new".to_vec())
        );
        assert_eq!(pending.get(&tree, b"a2").expect("get"), None);
        assert_eq!(
            pending.get(&tree, b"b1").expect("get"),
            Some(b"other prefix".to_vec())
        );
        let scan = pending.scan_prefix(&tree, b"a").expect("scan");
        let keys: Vec<&[u8]> = scan.keys().map(Vec::as_slice).collect();
        assert_eq!(keys, [&b"a1"[..], b"a3"]);
        assert_eq!(
            value(&tree, "a1").as_deref(),
            Some("old"),
            "not applied yet"
        );
        apply(&mut pending, &tree, first);
        assert_eq!(value(&tree, "a1").as_deref(), Some("new"));
        assert_eq!(value(&tree, "a2"), None);
        assert!(pending.overlay.is_empty() && pending.unapplied.is_empty());
    }

    #[test]
    fn values_reach_sled_in_log_order_whoever_applies_first() {
        let tree = tree();
        let mut pending = Pending::default();
        let one = pending
            .stage(Entry {
                seq: 1,
                ops: vec![put("k", "one"), put("x", "only one")],
            })
            .expect("stage");
        let two = pending
            .stage(Entry {
                seq: 2,
                ops: vec![put("k", "two")],
            })
            .expect("stage");
        let three = pending
            .stage(Entry {
                seq: 3,
                ops: vec![put("k", "three")],
            })
            .expect("stage");
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (3, three.number));
        // Both durable; the second writer applies first: it takes the newest value up to
        // its own ticket, and the first writer then changes nothing.
        apply(&mut pending, &tree, two);
        assert_eq!(value(&tree, "k").as_deref(), Some("two"));
        apply(&mut pending, &tree, one);
        assert_eq!(value(&tree, "k").as_deref(), Some("two"), "never older");
        assert_eq!(value(&tree, "x").as_deref(), Some("only one"));
        // The third writer stopped waiting: the flusher applies it before a checkpoint.
        assert_eq!(
            pending.get(&tree, b"k").expect("get"),
            Some(b"three".to_vec())
        );
        let leftovers: Vec<u64> = pending.unapplied.keys().copied().collect();
        assert_eq!(leftovers, [three.number]);
        apply(&mut pending, &tree, three);
        assert_eq!(value(&tree, "k").as_deref(), Some("three"));
        assert!(pending.overlay.is_empty() && pending.unapplied.is_empty());
    }

    #[test]
    fn leftovers_stop_at_what_is_durable() {
        let shared = shared();
        let one = shared
            .pending()
            .stage(Entry {
                seq: 1,
                ops: vec![put("k", "one")],
            })
            .expect("stage");
        shared
            .pending()
            .stage(Entry {
                seq: 2,
                ops: vec![put("k", "two")],
            })
            .expect("stage");
        shared.apply_leftovers(one.number).expect("leftovers");
        assert_eq!(value(&shared.records, "k").as_deref(), Some("one"));
        assert_eq!(
            shared.pending().get(&shared.records, b"k").expect("get"),
            Some(b"two".to_vec())
        );
    }

    fn shared() -> Shared {
        Shared::new(tree())
    }

    #[test]
    fn leftovers_wait_for_writers_still_applying() {
        // A checkpoint may remove a generation only once sled holds every durable entry,
        // including those a writer claimed and is still writing.
        for round in 0..200 {
            let shared = Arc::new(shared());
            let tickets: Vec<Ticket> = (0..64u64)
                .map(|i| {
                    shared
                        .pending()
                        .stage(Entry {
                            seq: i,
                            ops: vec![put(&format!("k{i}"), "v")],
                        })
                        .expect("stage")
                })
                .collect();
            let last = tickets[tickets.len() - 1].number;
            let writers: Vec<_> = tickets
                .chunks(16)
                .map(|chunk| {
                    let (shared, chunk) = (shared.clone(), chunk.to_vec());
                    std::thread::spawn(move || {
                        for ticket in chunk {
                            shared.apply(ticket).expect("apply");
                        }
                    })
                })
                .collect();
            shared.apply_leftovers(last).expect("leftovers");
            for i in 0..64 {
                assert!(
                    value(&shared.records, &format!("k{i}")).is_some(),
                    "round {round}: k{i} not in sled after the leftovers"
                );
            }
            for w in writers {
                w.join().expect("writer");
            }
        }
    }

    #[test]
    fn a_batch_is_cut_at_its_size_but_holds_at_least_one_entry() {
        let mut pending = Pending::default();
        let big = vec![0u8; wal::BATCH_BYTES / 2 + 1];
        for seq in 1..=3 {
            pending
                .stage(Entry {
                    seq,
                    ops: vec![Op::Put {
                        key: seq.to_be_bytes().to_vec(),
                        value: big.clone(),
                    }],
                })
                .expect("stage");
        }
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (1, 1));
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (1, 2));
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (1, 3));
        let (batch, ticket) = pending.take();
        assert_eq!((batch.len(), ticket), (0, 3));
    }

    #[test]
    fn an_entry_too_large_for_the_log_is_refused_and_not_staged() {
        let mut pending = Pending::default();
        let huge = Entry {
            seq: 1,
            ops: vec![Op::Put {
                key: b"k".to_vec(),
                value: vec![0; wal::ENTRY_LIMIT as usize + 1],
            }],
        };
        assert!(matches!(
            pending.stage(huge),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(pending.queue.is_empty() && pending.overlay.is_empty());
        assert_eq!(pending.issued, 0);
    }
}

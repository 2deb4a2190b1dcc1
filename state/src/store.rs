//! The checkpoint store on sled: opening, the write-ahead API, reads, quarantine, retention.
//!
//! Keys are laid out in [`crate::keys`]; every value is encoded by [`crate::codec`]. A
//! second tree, `quarantine`, holds [`Quarantined`] values: the raw bytes of values that
//! failed to decode, with their key and the reason.
//!
//! Every write goes through berth's write-ahead log ([`crate::wal`]) before sled sees it;
//! opening replays the log into sled and checkpoints. Reads see what is durable: a write
//! reaches sled once its batch of the log is durable, before its call returns.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::codec::{self, CodecError, MAX_PAYLOAD, SCHEMA_VERSION};
use crate::flush::{
    flush_once, Checkpoints, Files, FlushObserver, Flusher, GroupFlush, Pending, Ticket, Watermark,
};
use crate::keys::{self, Key, META, PHASE, STATUS, SUMMARY, TICK};
use crate::record::{AgentMeta, Phase, PhaseRecord, Quarantined, StatusRecord, Summary};
use crate::repair::{self, Repair, Seen};
use crate::wal::{self, Entry, Op, Recovery, Wal};

/// Removes per entry of the write-ahead log when purging: about 150 KiB of keys.
const PURGE_OPS_PER_ENTRY: usize = 4096;

/// How the store is configured. Every setting is explicit on purpose (see
/// docs/state-format.md, "sled settings").
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled's page cache. Its default is 1 GiB; a node agent needs tens of MiB.
    pub cache_capacity: u64,
    /// sled's background flush interval. No record's durability waits for it (berth's
    /// write-ahead log holds every write first), but each round also reclaims sled log
    /// segments freed by retention; without it sled's file would only grow.
    pub flush_every_ms: Option<u64>,
    /// A checkpoint (sled's files made durable, older generations of the write-ahead log
    /// removed) at most this long after the log's newest generation got its first entry.
    /// Bounds the log, and so the replay at the next open, and under
    /// [`Durability::ProcessCrash`] what a power loss can take.
    pub checkpoint_every_ms: u64,
    /// Or once the log's newest generation holds this many bytes of entries.
    pub checkpoint_bytes: u64,
    /// What "durable" means when a write returns.
    pub durability: Durability,
    /// What to do with a value that does not decode.
    pub on_corrupt: OnCorrupt,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_capacity: 32 * 1024 * 1024,
            flush_every_ms: Some(500),
            checkpoint_every_ms: 500,
            checkpoint_bytes: 4 * 1024 * 1024,
            durability: Durability::PowerLoss,
            on_corrupt: OnCorrupt::Quarantine,
        }
    }
}

/// What a write has survived when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Appended to berth's write-ahead log, then `fdatasync` of the log: survives a crash
    /// of the process and a power loss or kernel crash (on a drive that honours cache
    /// flushes).
    PowerLoss,
    /// Appended to the write-ahead log, no sync: survives a crash of the process; a power
    /// loss may take what was written since the last checkpoint (`checkpoint_every_ms`).
    ProcessCrash,
}

/// What opening does with a value that fails its checksum or decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Refuse to open, naming the value (`--strict=true`).
    Refuse,
    /// Move it to the quarantine tree with its raw bytes and go on (`--strict=false`).
    Quarantine,
    /// Change nothing berth wrote; only report (offline inspection).
    Report,
}

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
    /// The phase cannot follow the container's newest one ([`Phase::may_follow`]).
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

fn holder_text(holder: &Option<u32>) -> String {
    match *holder {
        Some(pid) if pid == std::process::id() => "this process".into(),
        Some(pid) => format!("process {pid}"),
        None => "another process".into(),
    }
}

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

/// What one pass over the `records` tree found.
#[derive(Default)]
struct Scan {
    corrupt: Vec<Corrupt>,
    newer: Option<u16>,
    seen: BTreeMap<Uuid, Seen>,
    values: usize,
    /// The newest seq any value holds.
    newest: u64,
}

impl Store {
    /// Opens (or creates) the store in `dir`, making an agent id on first start and
    /// recording `boot_id` as the boot seen at this start. Puts right what a crash
    /// between two writes left behind (see [`crate::repair`]).
    pub fn open(dir: &Path, boot_id: &str, config: &StoreConfig) -> Result<Store, StoreError> {
        let created = check_dir(dir)?;
        let (db, mut notes) = open_db(dir, config)?;
        check_trees(dir, &db)?;
        let records = db.open_tree("records")?;
        let quarantine = db.open_tree("quarantine")?;
        let report = config.on_corrupt == OnCorrupt::Report;

        // berth's write-ahead log first: everything acknowledged since the last checkpoint
        // is there, and sled may hold only part of it.
        let recovery = Recovery::read(dir).map_err(|source| StoreError::Io {
            what: format!("reading the write-ahead log in {}", dir.display()),
            source,
        })?;
        if let (Some(found), false) = (recovery.newer, report) {
            return Err(StoreError::NewerSchema {
                path: dir.to_owned(),
                found,
            });
        }
        let mut losses = log_losses(&records, &recovery)?;
        notes.extend(recovery.notes.iter().cloned());
        for entry in &recovery.entries {
            for op in &entry.ops {
                op.apply(&records)?;
            }
        }

        let mut scan = scan(&records)?;
        if let (Some(found), false) = (scan.newer, report) {
            return Err(StoreError::NewerSchema {
                path: dir.to_owned(),
                found,
            });
        }
        let (meta, meta_ok) = match records.get(META)? {
            Some(bytes) => match codec::decode::<AgentMeta>(&bytes) {
                Ok(meta) => (Some(meta), true),
                Err(CodecError::NewerSchema(found)) if !report => {
                    return Err(StoreError::NewerSchema {
                        path: dir.to_owned(),
                        found,
                    })
                }
                Err(e) if !report => {
                    return Err(StoreError::CorruptAgentRecord {
                        path: dir.to_owned(),
                        reason: e.to_string(),
                    })
                }
                Err(e) => {
                    scan.corrupt
                        .insert(0, corrupt_value(META, &bytes, e.to_string()));
                    (None, false)
                }
            },
            None if !created && scan.values > 0 => {
                return Err(StoreError::NotAStore {
                    path: dir.to_owned(),
                    why: "it has records but no agent record".into(),
                })
            }
            None => (None, !report),
        };

        let corrupt = scan.corrupt;
        if !corrupt.is_empty() && config.on_corrupt == OnCorrupt::Refuse {
            return Err(StoreError::Corrupt(corrupt));
        }
        if !corrupt.is_empty() && config.on_corrupt == OnCorrupt::Quarantine {
            move_to_quarantine(&records, &quarantine, &corrupt)?;
        }
        let repairs = repair::plan(&scan.seen);
        match Watermark::read(dir) {
            Ok(Some(durable)) if durable > scan.newest => losses.push((
                Lost {
                    newest: scan.newest,
                    durable,
                },
                format!("its newest record is seq {} but seq {durable} had been made durable (sled drops the end of its log at a damaged byte; a damaged last batch of the write-ahead log reads as a torn one)", scan.newest),
            )),
            Ok(_) => {}
            Err(e) => notes.push(format!(
                "the watermark does not read ({e}); lost records cannot be detected this once"
            )),
        }
        let lost = losses.iter().map(|(l, _)| *l).reduce(|a, b| Lost {
            newest: a.newest.min(b.newest),
            durable: a.durable.max(b.durable),
        });
        let why: Vec<String> = losses.into_iter().map(|(_, why)| why).collect();
        if let (Some(lost), OnCorrupt::Refuse) = (lost, config.on_corrupt) {
            return Err(StoreError::LostRecords {
                path: dir.to_owned(),
                lost,
                why: why.join("; "),
            });
        }
        notes.extend(why.into_iter().map(|w| format!("lost records: {w}")));

        let now = now_ms();
        let meta = match meta {
            Some(mut m) => {
                if !report {
                    m.boot_id = boot_id.to_owned();
                    m.started_at_ms = now;
                }
                m
            }
            None => AgentMeta {
                agent_id: if report { Uuid::nil() } else { Uuid::new_v4() },
                boot_id: boot_id.to_owned(),
                created_schema: SCHEMA_VERSION,
                created_at_ms: now,
                started_at_ms: now,
            },
        };
        let log_file = File::options()
            .read(true)
            .write(true)
            .open(dir.join("db"))
            .map_err(|source| StoreError::Io {
                what: format!("opening {} to sync it", dir.join("db").display()),
                source,
            })?;
        let mut files = Files::new(dir, log_file);
        // After the repairs: a history record put back may hold the newest seq.
        let newest = if report {
            scan.newest
        } else {
            for r in &repairs {
                match r {
                    Repair::Summary(s) => records
                        .insert(keys::container(SUMMARY, s.container_id), codec::encode(s)?)?,
                    Repair::History(p) => records.insert(
                        keys::record(PHASE, p.container_id, p.seq),
                        codec::encode(p)?,
                    )?,
                };
            }
            let held = newest_by_key(&records)?;
            match lost {
                // The seqs of lost records are kept taken, in `tick` with the checkpoint
                // below, so that no later start hands them out again.
                Some(lost) if lost.durable > held => {
                    records.insert(TICK, codec::encode(&lost.durable)?)?;
                    lost.durable
                }
                _ => held,
            }
        };
        // Past every seq a record holds and every seq made durable, so that no seq is
        // handed out twice, not even one whose record was lost.
        let next_seq = newest.max(lost.map_or(0, |l| l.durable)).saturating_add(1);
        let (overlay, wal) = if report {
            (Some(overlay(&corrupt, &repairs)), None)
        } else {
            records.insert(META, codec::encode(&meta)?)?;
            // A checkpoint, so that the log starts afresh from what opening settled: the
            // replay, quarantine, repairs and agent record are not logged.
            let wal_error = |source| StoreError::Io {
                what: format!("checkpointing the write-ahead log in {}", dir.display()),
                source,
            };
            let mut wal = Wal::start(dir, &recovery, newest).map_err(wal_error)?;
            flush_once(&db, &mut files).map_err(StoreError::NotDurable)?;
            notes.extend(wal.retire().map_err(wal_error)?);
            if created {
                sync_dir(dir)?;
            }
            (None, Some(wal))
        };
        // Offline inspection neither creates nor moves the watermark.
        let watermark = if report {
            None
        } else {
            let w = Watermark::open(dir).map_err(|source| StoreError::Io {
                what: format!("opening the watermark in {}", dir.display()),
                source,
            })?;
            w.write(newest).map_err(StoreError::NotDurable)?;
            Some(w)
        };
        let flusher = GroupFlush::start(
            Flusher {
                db: db.clone(),
                wal,
                files,
                durability: config.durability,
                watermark,
                newest,
                checkpoints: Checkpoints {
                    every: Duration::from_millis(config.checkpoint_every_ms),
                    bytes: config.checkpoint_bytes,
                },
            },
            records.clone(),
        )
        .map_err(|source| StoreError::Io {
            what: "starting the store's flusher thread".into(),
            source,
        })?;
        Ok(Store {
            path: dir.to_owned(),
            db,
            records,
            quarantine,
            flusher,
            next_seq: AtomicU64::new(next_seq),
            meta,
            meta_ok,
            corrupt,
            repairs,
            notes,
            lost,
            overlay,
            _release: LockRelease {
                db_file: dir.join("db"),
            },
        })
    }

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

    /// Records `phase` for `container` and returns once it is durable.
    ///
    /// An `Accepted` phase starts a container; any other phase needs one, and must be
    /// allowed after the container's newest ([`Phase::may_follow`]). When this returns an
    /// error, the action the phase announces must not be taken.
    pub async fn record_phase(
        &self,
        container: Uuid,
        phase: Phase,
    ) -> Result<PhaseRecord, StoreError> {
        let (record, ticket) = self.stage_phase(container, phase)?;
        self.durable(ticket).await?;
        Ok(record)
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.overlay.is_some() {
            return Err(StoreError::NotDurable(
                "the store was opened for inspection only".into(),
            ));
        }
        match self.flusher.poisoned() {
            Some(e) => Err(StoreError::NotDurable(format!(
                "an earlier flush failed: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// Checks and stages a phase; returns its record and the ticket to wait for.
    fn stage_phase(
        &self,
        container: Uuid,
        phase: Phase,
    ) -> Result<(PhaseRecord, Ticket), StoreError> {
        self.writable()?;
        let mut pending = self.flusher.pending();
        let summary_key = keys::container(SUMMARY, container);
        let previous: Option<Summary> = match pending.get(&self.records, &summary_key)? {
            Some(bytes) => Some(codec::decode(&bytes)?),
            None => None,
        };
        let newest = match &previous {
            Some(s) if matches!(s.last.phase, Phase::Decision { .. }) => {
                self.newest_not_decision(&pending, container)?
            }
            Some(s) => Some(s.last.phase.clone()),
            None => None,
        };
        if !phase.may_follow(newest.as_ref()) {
            return Err(match newest {
                None if !matches!(phase, Phase::Accepted { .. }) => {
                    StoreError::UnknownContainer(container)
                }
                _ => StoreError::Transition {
                    container,
                    from: newest.as_ref().map_or("none", Phase::name),
                    to: phase.name(),
                },
            });
        }
        let record = PhaseRecord {
            seq: self.next_seq(),
            at_ms: now_ms(),
            container_id: container,
            phase,
        };
        let summary = match (previous, &record.phase) {
            (Some(prev), _) => Summary {
                last: record.clone(),
                ..prev
            },
            (None, Phase::Accepted { task_id, .. }) => Summary {
                container_id: container,
                task_id: task_id.clone(),
                last: record.clone(),
                accepted_at_ms: record.at_ms,
            },
            (None, _) => return Err(StoreError::UnknownContainer(container)),
        };
        // Two plain inserts for sled, history first; see `repair` for why not a batch.
        let ticket = pending.stage(Entry {
            seq: record.seq,
            ops: vec![
                Op::Put {
                    key: keys::record(PHASE, container, record.seq),
                    value: codec::encode(&record)?,
                },
                Op::Put {
                    key: summary_key,
                    value: codec::encode(&summary)?,
                },
            ],
        })?;
        Ok((record, ticket))
    }

    fn newest_not_decision(
        &self,
        pending: &Pending,
        container: Uuid,
    ) -> Result<Option<Phase>, StoreError> {
        let history = pending.scan_prefix(&self.records, &keys::container(PHASE, container))?;
        for bytes in history.values().rev() {
            let record: PhaseRecord = codec::decode(bytes)?;
            if !matches!(record.phase, Phase::Decision { .. }) {
                return Ok(Some(record.phase));
            }
        }
        Ok(None)
    }

    /// Records a status update and returns once it is durable. `seq` and `at_ms` are
    /// set by the store.
    pub async fn record_status(
        &self,
        mut status: StatusRecord,
    ) -> Result<StatusRecord, StoreError> {
        self.writable()?;
        let ticket = {
            let mut pending = self.flusher.pending();
            let summary_key = keys::container(SUMMARY, status.container_id);
            if pending.get(&self.records, &summary_key)?.is_none() {
                return Err(StoreError::UnknownContainer(status.container_id));
            }
            status.seq = self.next_seq();
            status.at_ms = now_ms();
            pending.stage(Entry {
                seq: status.seq,
                ops: vec![Op::Put {
                    key: keys::record(STATUS, status.container_id, status.seq),
                    value: codec::encode(&status)?,
                }],
            })?
        };
        self.durable(ticket).await?;
        Ok(status)
    }

    /// Marks a recorded status update as acknowledged, durably.
    pub async fn acknowledge(&self, container: Uuid, seq: u64) -> Result<(), StoreError> {
        self.writable()?;
        let ticket = {
            let mut pending = self.flusher.pending();
            let key = keys::record(STATUS, container, seq);
            let Some(bytes) = pending.get(&self.records, &key)? else {
                return Err(StoreError::UnknownStatus { container, seq });
            };
            let mut status: StatusRecord = codec::decode(&bytes)?;
            status.acknowledged = true;
            let (tick, tick_op) = self.tick()?;
            pending.stage(Entry {
                seq: tick,
                ops: vec![
                    Op::Put {
                        key,
                        value: codec::encode(&status)?,
                    },
                    tick_op,
                ],
            })?
        };
        self.durable(ticket).await
    }

    /// Gives a write that has no seq of its own one, under `tick`, so that the watermark
    /// covers it: the seq and the change to log with the write. Called under the pending
    /// lock.
    fn tick(&self) -> Result<(u64, Op), StoreError> {
        let tick = self.next_seq();
        let op = Op::Put {
            key: TICK.to_vec(),
            value: codec::encode(&tick)?,
        };
        Ok((tick, op))
    }

    /// The next seq. Called under the pending lock.
    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.flusher
            .durable(ticket)
            .await
            .map_err(|e| StoreError::NotDurable(e.to_string()))
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

    /// Every container's newest state, in container id order.
    pub fn containers(&self) -> Result<Vec<Summary>, StoreError> {
        let stored: Vec<Summary> = self.decode_prefix(&[SUMMARY])?;
        let Some(overlay) = &self.overlay else {
            return Ok(stored);
        };
        let mut all: BTreeMap<Uuid, Summary> =
            stored.into_iter().map(|s| (s.container_id, s)).collect();
        all.extend(overlay.summaries.clone());
        Ok(all.into_values().collect())
    }

    /// One container's newest state.
    pub fn container(&self, id: Uuid) -> Result<Option<Summary>, StoreError> {
        if let Some(s) = self.overlay.as_ref().and_then(|o| o.summaries.get(&id)) {
            return Ok(Some(s.clone()));
        }
        let key = keys::container(SUMMARY, id);
        if self.skipped(&key) {
            return Ok(None);
        }
        match self.records.get(&key)? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The newest sequence number up to which every record can be read: records are made
    /// readable by their writers as each becomes durable, not in order, so a reader that
    /// resumes from a sequence number (an event stream) reads only up to this one and
    /// misses none that become readable later.
    pub fn settled_seq(&self) -> u64 {
        let pending = self.flusher.pending();
        match pending.first_unsettled() {
            Some(seq) => seq.saturating_sub(1),
            // Read under the pending lock, under which every sequence number is taken.
            None => self.next_seq.load(Ordering::Relaxed).saturating_sub(1),
        }
    }

    /// One container's phase history, oldest first.
    pub fn history(&self, id: Uuid) -> Result<Vec<PhaseRecord>, StoreError> {
        let mut history: Vec<PhaseRecord> = self.decode_prefix(&keys::container(PHASE, id))?;
        if let Some(extra) = self.overlay.as_ref().and_then(|o| o.history.get(&id)) {
            history.extend(extra.iter().cloned());
            history.sort_by_key(|r| r.seq);
        }
        Ok(history)
    }

    /// One container's status updates, oldest first.
    pub fn statuses(&self, id: Uuid) -> Result<Vec<StatusRecord>, StoreError> {
        self.decode_prefix(&keys::container(STATUS, id))
    }

    /// The quarantined values, with why each was set aside.
    pub fn quarantined(&self) -> Result<Vec<Corrupt>, StoreError> {
        let mut out = Vec::new();
        for entry in self.quarantine.iter() {
            let (key, bytes) = entry?;
            out.push(match codec::decode::<Quarantined>(&bytes) {
                Ok(q) => Corrupt {
                    key: keys::describe(&q.key),
                    raw_key: q.key,
                    reason: q.reason,
                    bytes: q.bytes,
                },
                Err(e) => Corrupt {
                    key: format!("quarantine/{}", keys::hex(&key)),
                    raw_key: key.to_vec(),
                    reason: format!("the quarantine entry itself does not decode: {e}"),
                    bytes: bytes.to_vec(),
                },
            });
        }
        Ok(out)
    }

    /// Re-reads every value and returns those that do not decode (none are moved).
    pub fn verify(&self) -> Result<Vec<Corrupt>, StoreError> {
        let mut corrupt = scan(&self.records)?.corrupt;
        if let Some(bytes) = self.records.get(META)? {
            if let Err(e) = codec::decode::<AgentMeta>(&bytes) {
                corrupt.insert(0, corrupt_value(META, &bytes, e.to_string()));
            }
        }
        Ok(corrupt)
    }

    /// Drops every record of the containers in `ids` that are `Removed`; returns how many
    /// were dropped. The caller chooses which containers, once, and deletes their other
    /// traces (sandboxes) first: the store purges those and no others, so that a container
    /// becoming due in the meantime cannot lose its records while its sandbox stays. Each
    /// container's records go in one entry of the write-ahead log, so a crash never leaves
    /// part of one.
    pub async fn purge(&self, ids: &[Uuid]) -> Result<usize, StoreError> {
        self.writable()?;
        let ids: BTreeSet<Uuid> = ids.iter().copied().collect();
        let mut purged = 0;
        let tickets = {
            let mut pending = self.flusher.pending();
            let mut entries = Vec::new();
            let mut ops = Vec::new();
            for id in ids {
                // Read under the pending lock: a phase staged meanwhile is seen.
                let Some(bytes) = pending.get(&self.records, &keys::container(SUMMARY, id))? else {
                    continue;
                };
                let summary: Summary = codec::decode(&bytes)?;
                if summary.last.phase != Phase::Removed {
                    continue;
                }
                for prefix in [PHASE, STATUS] {
                    let prefix = keys::container(prefix, id);
                    for key in pending.scan_prefix(&self.records, &prefix)?.into_keys() {
                        ops.push(Op::Remove { key });
                    }
                }
                ops.push(Op::Remove {
                    key: keys::container(SUMMARY, id),
                });
                purged += 1;
                // Well below the log's entry limit, whatever the number of containers. Each
                // entry carries a tick: a crash between two batches then leaves a `tick` that
                // covers every removal that reached the log.
                if ops.len() >= PURGE_OPS_PER_ENTRY {
                    let (tick, tick_op) = self.tick()?;
                    ops.push(tick_op);
                    entries.push(Entry {
                        seq: tick,
                        ops: std::mem::take(&mut ops),
                    });
                }
            }
            if purged == 0 {
                return Ok(0);
            }
            if !ops.is_empty() {
                let (tick, tick_op) = self.tick()?;
                ops.push(tick_op);
                entries.push(Entry { seq: tick, ops });
            }
            entries
                .into_iter()
                .map(|entry| pending.stage(entry))
                .collect::<Result<Vec<Ticket>, CodecError>>()?
        };
        // Each entry applied, so that reads show every purged container gone.
        for ticket in tickets {
            self.durable(ticket).await?;
        }
        Ok(purged)
    }

    /// Bytes the store's files take on disk: sled's and the write-ahead log's.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        let log = wal::size_on_disk(&self.path).map_err(|source| StoreError::Io {
            what: format!("measuring the write-ahead log in {}", self.path.display()),
            source,
        })?;
        Ok(self.db.size_on_disk()? + log)
    }

    fn skipped(&self, key: &[u8]) -> bool {
        self.overlay.as_ref().is_some_and(|o| o.skip.contains(key))
    }

    fn decode_prefix<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for entry in self.records.scan_prefix(prefix) {
            let (key, bytes) = entry?;
            if self.skipped(&key) {
                continue;
            }
            out.push(codec::decode(&bytes)?);
        }
        Ok(out)
    }
}

fn overlay(corrupt: &[Corrupt], repairs: &[Repair]) -> Overlay {
    let mut o = Overlay {
        skip: corrupt.iter().map(|c| c.raw_key.clone()).collect(),
        ..Overlay::default()
    };
    for r in repairs {
        match r {
            Repair::Summary(s) => {
                o.summaries.insert(s.container_id, s.clone());
            }
            Repair::History(p) => o.history.entry(p.container_id).or_default().push(p.clone()),
        }
    }
    o
}

/// Opens sled, waiting out a lock this process still holds from a dropped `Db` or one
/// whose holder died (see [`crate::lock`]), and setting aside the broken snapshots a
/// crash leaves (see [`crate::snapshots`]) while it holds the lock itself; returns what
/// it set aside.
fn open_db(dir: &Path, config: &StoreConfig) -> Result<(sled::Db, Vec<String>), StoreError> {
    let sled_config = sled::Config::new()
        .path(dir)
        .cache_capacity(config.cache_capacity)
        .flush_every_ms(config.flush_every_ms)
        .mode(sled::Mode::HighThroughput);
    let started = Instant::now();
    let mut notes = set_aside_unheld(dir, started)?;
    let mut retried_corruption = false;
    loop {
        match sled_config.open() {
            Ok(db) => return Ok((db, notes)),
            Err(e) if is_lock_error(&e) => wait_for_lock(dir, started)?,
            Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_))) => {
                let before = notes.len();
                if !retried_corruption {
                    // Sled's own threads may hold the lock a moment longer: the wait for it
                    // starts now, not when the open began.
                    notes.extend(set_aside_unheld(dir, Instant::now())?);
                }
                if notes.len() > before {
                    retried_corruption = true;
                    continue;
                }
                return Err(match e {
                    sled::Error::Corruption { .. } => StoreError::Damaged {
                        path: dir.to_owned(),
                        why: e.to_string(),
                    },
                    _ => StoreError::NotAStore {
                        path: dir.to_owned(),
                        why: format!("sled cannot read it: {e}"),
                    },
                });
            }
            Err(e) => return Err(StoreError::Sled(e)),
        }
    }
}

/// Sets the broken snapshots aside while holding the store's lock through a file of its
/// own, so that a store another process holds is never touched: whether anyone holds it
/// is what the lock itself says, not `/proc/locks`, which may not show the holder (see
/// [`crate::lock`]). The lock is released before sled takes it.
fn set_aside_unheld(dir: &Path, started: Instant) -> Result<Vec<String>, StoreError> {
    let set_aside = || {
        crate::snapshots::set_aside_broken(dir).map_err(|source| StoreError::Io {
            what: format!("checking sled's snapshots in {}", dir.display()),
            source,
        })
    };
    let file = dir.join("db");
    loop {
        match crate::lock::try_hold(&file) {
            Ok(Some(held)) => {
                let done = set_aside();
                drop(held);
                return done;
            }
            Ok(None) => wait_for_lock(dir, started)?,
            // No store yet: nobody holds a lock on it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return set_aside(),
            Err(source) => {
                return Err(StoreError::Io {
                    what: format!("taking the lock of {}", file.display()),
                    source,
                })
            }
        }
    }
}

/// The store's lock is held: waits a moment when [`crate::lock::wait_for`] says it is
/// worth waiting for (and the wait that began at `started` is not over), else says who
/// holds it, when `/proc/locks` tells.
fn wait_for_lock(dir: &Path, started: Instant) -> Result<(), StoreError> {
    let holder = crate::lock::holder(&dir.join("db"));
    let alive = holder.is_some_and(crate::lock::alive);
    let wait = crate::lock::wait_for(holder, std::process::id(), alive);
    if wait.is_some_and(|w| started.elapsed() < w) {
        std::thread::sleep(Duration::from_millis(10));
        return Ok(());
    }
    Err(StoreError::Locked {
        path: dir.to_owned(),
        holder,
    })
}

/// sled 0.34.7 reports a held lock as an `Other` I/O error saying "could not acquire
/// lock" (config.rs); the kind is checked too in case a later release passes it through.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock"))
}

/// Whether the directory is new (true), a sled directory (false), or something else.
fn check_dir(dir: &Path) -> Result<bool, StoreError> {
    let not_a_store = |why: String| StoreError::NotAStore {
        path: dir.to_owned(),
        why,
    };
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(not_a_store("it is not a directory".into()))
        }
        Err(source) => Err(StoreError::Io {
            what: format!("reading {}", dir.display()),
            source,
        }),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(true);
            }
            if dir.join("conf").is_file() && dir.join("db").is_file() {
                Ok(false)
            } else if creation_cut_short(dir) {
                // sled writes `conf` (and makes `blobs`) before `db`: a SIGKILL in between
                // leaves what holds nothing, not even berth's log. Made again.
                let removed = [
                    ("conf", std::fs::remove_file(dir.join("conf"))),
                    ("blobs", std::fs::remove_dir(dir.join("blobs"))),
                ];
                for (name, removed) in removed {
                    match removed {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(StoreError::Io {
                                what: format!(
                                    "removing {} of a store whose creation was cut short",
                                    dir.join(name).display()
                                ),
                                source: e,
                            })
                        }
                        _ => {}
                    }
                }
                Ok(true)
            } else {
                Err(not_a_store("it holds files but no sled database".into()))
            }
        }
    }
}

/// Whether `dir` holds only what sled makes before its `db` file on a first start (`conf`,
/// and `blobs` empty): a creation a crash cut short, which holds no record.
fn creation_cut_short(dir: &Path) -> bool {
    if dir.join("db").exists() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.into_iter().all(|entry| {
        let Ok(entry) = entry else { return false };
        let path = entry.path();
        match entry.file_name().to_str() {
            Some("conf") => path.is_file(),
            Some("blobs") => std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()),
            _ => false,
        }
    })
}

/// A sled database of someone else's: trees berth does not make, or data in the default
/// tree, which berth never writes.
fn check_trees(dir: &Path, db: &sled::Db) -> Result<(), StoreError> {
    let foreign: Vec<String> = db
        .tree_names()
        .iter()
        .filter(|n| !matches!(&n[..], b"__sled__default" | b"records" | b"quarantine"))
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    if !foreign.is_empty() {
        return Err(StoreError::NotAStore {
            path: dir.to_owned(),
            why: format!("it is a sled database with trees berth does not make: {foreign:?}"),
        });
    }
    if !db.is_empty() {
        return Err(StoreError::NotAStore {
            path: dir.to_owned(),
            why: "it is a sled database with data in its default tree".into(),
        });
    }
    Ok(())
}

/// Makes a new store's directory entries durable: its files, and itself in its parent.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    for d in std::iter::once(dir).chain(parent) {
        File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(|source| StoreError::Io {
                what: format!("syncing directory {}", d.display()),
                source,
            })?;
    }
    Ok(())
}

fn corrupt_value(key: &[u8], bytes: &[u8], reason: String) -> Corrupt {
    Corrupt {
        key: keys::describe(key),
        raw_key: key.to_vec(),
        reason,
        bytes: bytes.to_vec(),
    }
}

/// Moves corrupt values into the quarantine tree, atomically across both trees.
fn move_to_quarantine(
    records: &sled::Tree,
    quarantine: &sled::Tree,
    corrupt: &[Corrupt],
) -> Result<(), StoreError> {
    use sled::transaction::{TransactionError, Transactional};
    let limit = MAX_PAYLOAD as usize - 64 * 1024;
    let mut moves = Vec::with_capacity(corrupt.len());
    // Keys after the newest entry's, so that nothing set aside before is overwritten.
    let mut next_key = match quarantine.last()? {
        Some((key, _)) => <[u8; 8]>::try_from(key.as_ref())
            .map_or(u64::MAX / 2, |k| u64::from_be_bytes(k).saturating_add(1)),
        None => 0,
    };
    for c in corrupt {
        let (bytes, reason) = if c.bytes.len() > limit {
            (
                c.bytes[..limit].to_vec(),
                format!(
                    "{} (value of {} bytes, first {limit} kept)",
                    c.reason,
                    c.bytes.len()
                ),
            )
        } else {
            (c.bytes.clone(), c.reason.clone())
        };
        let entry = Quarantined {
            key: c.raw_key.clone(),
            reason,
            at_ms: now_ms(),
            bytes,
        };
        let qkey = next_key.to_be_bytes().to_vec();
        next_key = next_key.saturating_add(1);
        moves.push((c.raw_key.clone(), qkey, codec::encode(&entry)?));
    }
    (records, quarantine)
        .transaction(|(r, q)| {
            for (key, qkey, value) in &moves {
                q.insert(qkey.as_slice(), value.as_slice())?;
                r.remove(key.as_slice())?;
            }
            Ok(())
        })
        .map_err(|e: TransactionError<()>| match e {
            TransactionError::Storage(e) => StoreError::Sled(e),
            TransactionError::Abort(()) => {
                StoreError::NotDurable("moving corrupt values to quarantine was aborted".into())
            }
        })
}

/// Why the value under `key` is bad, or `None` if it decodes as its key says it should
/// and belongs under that key.
fn check_value(
    key: Key,
    bytes: &[u8],
    seen: &mut BTreeMap<Uuid, Seen>,
    newest: &mut u64,
) -> Result<(), CodecError> {
    let misplaced =
        |what: &str| CodecError::Payload(format!("the value is {what}, not this key's"));
    match key {
        Key::Meta => Ok(()),
        Key::Tick => {
            *newest = (*newest).max(codec::decode::<u64>(bytes)?);
            Ok(())
        }
        Key::Summary(id) => {
            let s: Summary = codec::decode(bytes)?;
            if s.container_id != id || s.last.container_id != id {
                return Err(misplaced(&format!("the summary of {}", s.container_id)));
            }
            *newest = (*newest).max(s.last.seq);
            seen.entry(id).or_default().summary = Some(s);
            Ok(())
        }
        Key::Phase(id, seq) => {
            let r: PhaseRecord = codec::decode(bytes)?;
            if r.container_id != id || r.seq != seq {
                return Err(misplaced(&format!("record {}/{}", r.container_id, r.seq)));
            }
            *newest = (*newest).max(seq);
            seen.entry(id).or_default().add(r);
            Ok(())
        }
        Key::Status(id, seq) => {
            let s: StatusRecord = codec::decode(bytes)?;
            if s.container_id != id || s.seq != seq {
                return Err(misplaced(&format!("status {}/{}", s.container_id, s.seq)));
            }
            *newest = (*newest).max(seq);
            Ok(())
        }
        Key::Unknown => Err(CodecError::Payload("a key berth does not write".into())),
    }
}

fn scan(records: &sled::Tree) -> Result<Scan, StoreError> {
    let mut out = Scan::default();
    for entry in records.iter() {
        let (key, bytes) = entry?;
        out.values += 1;
        match check_value(keys::parse(&key), &bytes, &mut out.seen, &mut out.newest) {
            Ok(()) => {}
            Err(e) => {
                if let CodecError::NewerSchema(v) = e {
                    out.newer = Some(out.newer.map_or(v, |n| n.max(v)));
                }
                out.corrupt.push(corrupt_value(&key, &bytes, e.to_string()));
            }
        }
    }
    Ok(out)
}

/// The newest seq the records' keys (and `tick`) name, without decoding any value. Each
/// write's entry in the write-ahead log carries that same seq, so this is what a
/// generation's base is measured against.
fn newest_by_key(records: &sled::Tree) -> Result<u64, StoreError> {
    let mut newest = 0;
    for key in records.iter().keys() {
        if let Key::Phase(_, seq) | Key::Status(_, seq) = keys::parse(&key?) {
            newest = newest.max(seq);
        }
    }
    if let Some(tick) = records
        .get(TICK)?
        .and_then(|b| codec::decode::<u64>(&b).ok())
    {
        newest = newest.max(tick);
    }
    Ok(newest)
}

/// Acknowledged records the write-ahead log shows lost, before it is replayed: sled's files
/// ending before the oldest generation's base (sled dropped the end of its log at a damaged
/// byte; the log cannot give back what was checkpointed), and damaged entries.
fn log_losses(
    records: &sled::Tree,
    recovery: &Recovery,
) -> Result<Vec<(Lost, String)>, StoreError> {
    let mut losses = Vec::new();
    if let Some((generation, base)) = recovery.base {
        let held = newest_by_key(records)?;
        if held < base {
            losses.push((
                Lost {
                    newest: held,
                    durable: base,
                },
                format!(
                    "sled's files end at seq {held}, but the checkpoint that started {} had made seq {base} durable (sled drops the end of its log at a damaged byte)",
                    wal::file_name(generation)
                ),
            ));
        }
    }
    for d in &recovery.damage {
        let lost = Lost {
            newest: d.before,
            durable: d.after.unwrap_or(d.before),
        };
        losses.push((
            lost,
            format!("berth's write-ahead log is damaged: {}", d.what),
        ));
    }
    Ok(losses)
}

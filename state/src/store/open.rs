//! Opening the store: each step a function of its own, taken by [`Store::open`] in one
//! fixed order.
//!
//! Once sled's trees are open, the steps that read and decide make one value, an
//! [`Opening`]: what the log recovered and shows lost, the values that do not decode, the
//! repairs, the lost records, the agent record for this start. Every refusal still to come
//! is made while it is built. Then one step, [`apply`], writes what they decided. Offline
//! inspection (`berth state`, with [`OnCorrupt::Report`] on a private copy) must write
//! nothing berth wrote: it skips that one step and shows the same decisions through an
//! overlay instead, so that what it leaves out is a single branch rather than one in every
//! write (raft-rs's split between a `Ready` and the application acting on it). Only the
//! replay writes while deciding, in either mode (into the copy when reporting), since the
//! values can be checked only after it.
//!
//! The order is the store's crash safety: the write-ahead log is measured against sled
//! before it is replayed, values are checked only once the replay put back every
//! acknowledged write, quarantine moves, repairs and the agent record are written only
//! once nothing more can refuse the store, and the checkpoint that makes them durable comes
//! before the watermark and the flusher that later writes depend on. The steps follow here
//! in the order `open` takes them.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::scan::{corrupt_value, move_to_quarantine, newest_by_key, scan, Scan};
use super::{now_ms, LockRelease, Overlay, Store};
use crate::codec::{self, CodecError, SCHEMA_VERSION};
use crate::config::{OnCorrupt, StoreConfig};
use crate::error::{Corrupt, Lost, StoreError};
use crate::flush::{flush_once, Checkpoints, Files, Flusher, GroupFlush, Watermark};
use crate::keys::{self, META, PHASE, SUMMARY, TICK};
use crate::record::AgentMeta;
use crate::repair::{self, Repair};
use crate::wal::{self, Recovery, Wal};

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

        let opening = decide(dir, &records, created, boot_id, config, report, &mut notes)?;
        let (start, overlay) = if report {
            let start = as_found(dir, &opening)?;
            (start, Some(overlay(&opening.corrupt, &opening.repairs)))
        } else {
            let start = apply(dir, &db, &records, &quarantine, &opening, &mut notes)?;
            (start, None)
        };
        // Past every seq a record holds and every seq made durable, so that no seq is
        // handed out twice, not even one whose record was lost.
        let next_seq = start
            .newest
            .max(opening.lost.map_or(0, |l| l.durable))
            .saturating_add(1);
        let flusher = start_flusher(&db, &records, start, config)?;
        let Opening {
            corrupt,
            repairs,
            lost,
            meta,
            meta_ok,
            ..
        } = opening;
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

/// What the steps that read the store decided. Every refusal is made while it is built,
/// so that [`apply`] writes only into a store that opens.
struct Opening {
    /// The directory was new: its entries are synced once the store is written.
    created: bool,
    /// The log as read: the checkpoint starts its new generation from it.
    recovery: Recovery,
    /// The values that do not decode, the agent record among them when only reporting:
    /// quarantined by [`apply`], or only reported.
    corrupt: Vec<Corrupt>,
    repairs: Vec<Repair>,
    lost: Option<Lost>,
    meta: AgentMeta,
    meta_ok: bool,
    /// The newest seq a value held when checked: what reporting starts from, since it
    /// neither repairs nor keeps lost seqs taken.
    newest: u64,
}

/// The steps that read the store and decide what opening does with it, each refusing the
/// store as soon as it finds cause. When only reporting (`report`), they refuse only a
/// store that is not berth's: what would stop an agent (a newer schema, a bad agent
/// record, corrupt values, lost records) is shown instead.
fn decide(
    dir: &Path,
    records: &sled::Tree,
    created: bool,
    boot_id: &str,
    config: &StoreConfig,
    report: bool,
    notes: &mut Vec<String>,
) -> Result<Opening, StoreError> {
    let (recovery, losses) = replay_log(dir, records, report, notes)?;
    let mut scan = scan_records(dir, records, report)?;
    let (meta, meta_ok) = read_agent(dir, records, created, report, &mut scan)?;
    let corrupt = refuse_corrupt(scan.corrupt, config)?;
    let repairs = repair::plan(&scan.seen);
    let lost = lost_records(dir, losses, scan.newest, config, notes)?;
    let meta = agent_for_this_start(meta, boot_id, report);
    Ok(Opening {
        created,
        recovery,
        corrupt,
        repairs,
        lost,
        meta,
        meta_ok,
        newest: scan.newest,
    })
}

/// Reads berth's write-ahead log and replays it into `records`: everything acknowledged
/// since the last checkpoint is there, and sled may hold only part of it. Before the
/// replay, measures what the log shows lost ([`log_losses`]), since the replay would hide
/// how far sled's own files reached. Adds the log's notes (a torn last batch ignored, a
/// damaged generation set aside) to `notes`.
///
/// The one write among the steps that decide, taken when only reporting too (into the
/// private copy): the values can be checked only once the replay put them back, so it
/// cannot wait for [`apply`].
fn replay_log(
    dir: &Path,
    records: &sled::Tree,
    report: bool,
    notes: &mut Vec<String>,
) -> Result<(Recovery, Vec<(Lost, String)>), StoreError> {
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
    let losses = log_losses(records, &recovery)?;
    notes.extend(recovery.notes.iter().cloned());
    for entry in &recovery.entries {
        for op in &entry.ops {
            op.apply(records)?;
        }
    }
    Ok((recovery, losses))
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

/// Checks every value once the replay put back every acknowledged write ([`scan`]);
/// refuses a store a newer berth wrote, unless only reporting, since this berth would
/// misread its values.
fn scan_records(dir: &Path, records: &sled::Tree, report: bool) -> Result<Scan, StoreError> {
    let scan = scan(records)?;
    if let (Some(found), false) = (scan.newer, report) {
        return Err(StoreError::NewerSchema {
            path: dir.to_owned(),
            found,
        });
    }
    Ok(scan)
}

/// The agent's record as stored, and whether the store has a usable one. Its agent id
/// names every container, so an agent refuses a store whose agent record does not decode
/// rather than make up a new id; only reporting counts the record among the corrupt
/// values. A store with records but no agent record is not berth's.
fn read_agent(
    dir: &Path,
    records: &sled::Tree,
    created: bool,
    report: bool,
    scan: &mut Scan,
) -> Result<(Option<AgentMeta>, bool), StoreError> {
    Ok(match records.get(META)? {
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
    })
}

/// Refuses a store with values that do not decode when [`OnCorrupt::Refuse`] says so; else
/// returns them, for [`Store::corrupt_at_open`] and for [`apply`] to quarantine (unless
/// only reporting).
fn refuse_corrupt(corrupt: Vec<Corrupt>, config: &StoreConfig) -> Result<Vec<Corrupt>, StoreError> {
    // Every mode by name: what `apply` does with the values left (quarantine them) is
    // right for `Quarantine` only, and `Report` never applies; a new mode decides here.
    match config.on_corrupt {
        OnCorrupt::Refuse if !corrupt.is_empty() => Err(StoreError::Corrupt(corrupt)),
        OnCorrupt::Refuse | OnCorrupt::Quarantine | OnCorrupt::Report => Ok(corrupt),
    }
}

/// What acknowledged records are lost, all told: `losses` from the log, and what the
/// watermark (the newest seq ever made durable) shows beyond `newest`, the newest seq the
/// store holds. With [`OnCorrupt::Refuse`] a loss refuses the open; else it goes to
/// `notes` and the store opens with what is left.
fn lost_records(
    dir: &Path,
    mut losses: Vec<(Lost, String)>,
    newest: u64,
    config: &StoreConfig,
    notes: &mut Vec<String>,
) -> Result<Option<Lost>, StoreError> {
    match Watermark::read(dir) {
        Ok(Some(durable)) if durable > newest => losses.push((
            Lost {
                newest,
                durable,
            },
            format!("its newest record is seq {newest} but seq {durable} had been made durable (sled drops the end of its log at a damaged byte; a damaged last batch of the write-ahead log reads as a torn one)"),
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
    Ok(lost)
}

/// The agent's record for this start: the stored one with this boot and start time, or
/// on a new store a new agent id. Reporting changes nothing berth wrote, so it keeps the
/// stored record as it is, and stands in a nil agent id for a missing one.
fn agent_for_this_start(meta: Option<AgentMeta>, boot_id: &str, report: bool) -> AgentMeta {
    let now = now_ms();
    match meta {
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
    }
}

/// What the flusher starts from ([`start_flusher`]).
struct Start {
    files: Files,
    wal: Option<Wal>,
    watermark: Option<Watermark>,
    /// The newest seq taken.
    newest: u64,
}

/// The one step that writes what [`decide`] decided, in an order a crash at any point
/// leaves safe: what opening writes into sled, then the checkpoint that makes it durable,
/// then the watermark. Not taken when only reporting ([`as_found`]).
fn apply(
    dir: &Path,
    db: &sled::Db,
    records: &sled::Tree,
    quarantine: &sled::Tree,
    opening: &Opening,
    notes: &mut Vec<String>,
) -> Result<Start, StoreError> {
    // Only with OnCorrupt::Quarantine: `refuse_corrupt` refused a store with any under
    // OnCorrupt::Refuse, and OnCorrupt::Report does not apply.
    if !opening.corrupt.is_empty() {
        move_to_quarantine(records, quarantine, &opening.corrupt)?;
    }
    let mut files = sled_files(dir)?;
    apply_repairs(records, &opening.repairs)?;
    // After the repairs: a history record put back may hold the newest seq.
    let newest = keep_lost_seqs_taken(records, opening.lost)?;
    record_agent(records, &opening.meta)?;
    let wal = checkpoint(dir, db, &opening.recovery, newest, &mut files, notes)?;
    if opening.created {
        sync_dir(dir)?;
    }
    let watermark = start_watermark(dir, newest)?;
    Ok(Start {
        files,
        wal: Some(wal),
        watermark: Some(watermark),
        newest,
    })
}

/// sled's files, for checkpoints to sync beyond sled's own flush ([`flush_once`]): sled
/// does not hand out its file, so the store opens `<dir>/db` itself.
fn sled_files(dir: &Path) -> Result<Files, StoreError> {
    let log_file = File::options()
        .read(true)
        .write(true)
        .open(dir.join("db"))
        .map_err(|source| StoreError::Io {
            what: format!("opening {} to sync it", dir.join("db").display()),
            source,
        })?;
    Ok(Files::new(dir, log_file))
}

/// Puts right what a crash between two writes left ([`crate::repair`]). Plain inserts,
/// not logged: the checkpoint that follows makes them durable.
fn apply_repairs(records: &sled::Tree, repairs: &[Repair]) -> Result<(), StoreError> {
    for r in repairs {
        match r {
            Repair::Summary(s) => {
                records.insert(keys::container(SUMMARY, s.container_id), codec::encode(s)?)?
            }
            Repair::History(p) => records.insert(
                keys::record(PHASE, p.container_id, p.seq),
                codec::encode(p)?,
            )?,
        };
    }
    Ok(())
}

/// The newest seq taken: the newest a record holds, or a lost record's if newer. The seqs
/// of lost records are kept taken, in `tick` with the checkpoint that follows, so that no
/// later start hands them out again.
fn keep_lost_seqs_taken(records: &sled::Tree, lost: Option<Lost>) -> Result<u64, StoreError> {
    let held = newest_by_key(records)?;
    Ok(match lost {
        Some(lost) if lost.durable > held => {
            records.insert(TICK, codec::encode(&lost.durable)?)?;
            lost.durable
        }
        _ => held,
    })
}

/// Writes the agent's record for this start. Not logged: the checkpoint that follows
/// makes it durable.
fn record_agent(records: &sled::Tree, meta: &AgentMeta) -> Result<(), StoreError> {
    records.insert(META, codec::encode(meta)?)?;
    Ok(())
}

/// A checkpoint, so that the log starts afresh from what opening settled: the replay,
/// quarantine, repairs and agent record are not logged. A new generation of the log from
/// `newest`, then sled's files made durable, then the older generations removed (what
/// removing them found goes to `notes`); in that order, so that a crash at any point
/// leaves a log that still covers what sled's files may lack.
fn checkpoint(
    dir: &Path,
    db: &sled::Db,
    recovery: &Recovery,
    newest: u64,
    files: &mut Files,
    notes: &mut Vec<String>,
) -> Result<Wal, StoreError> {
    let wal_error = |source| StoreError::Io {
        what: format!("checkpointing the write-ahead log in {}", dir.display()),
        source,
    };
    let mut wal = Wal::start(dir, recovery, newest).map_err(wal_error)?;
    flush_once(db, files).map_err(StoreError::NotDurable)?;
    notes.extend(wal.retire().map_err(wal_error)?);
    Ok(wal)
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

/// Opens the watermark and moves it to `newest`, made durable before any write: from now
/// on, the flusher moves it after every batch.
fn start_watermark(dir: &Path, newest: u64) -> Result<Watermark, StoreError> {
    let w = Watermark::open(dir).map_err(|source| StoreError::Io {
        what: format!("opening the watermark in {}", dir.display()),
        source,
    })?;
    w.write(newest).map_err(StoreError::NotDurable)?;
    Ok(w)
}

/// What the flusher starts from when only reporting, in place of [`apply`]: the store as
/// found, without a log (nothing is checkpointed) and without the watermark, which offline
/// inspection neither creates nor moves.
fn as_found(dir: &Path, opening: &Opening) -> Result<Start, StoreError> {
    Ok(Start {
        files: sled_files(dir)?,
        wal: None,
        watermark: None,
        newest: opening.newest,
    })
}

/// What the reads show of a store opened only to report ([`Overlay`]): the corrupt values
/// left out, the repairs shown as made.
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

/// Starts the flusher thread that makes every later write durable ([`crate::flush`]); it
/// owns the log, sled's files and the watermark from here on.
fn start_flusher(
    db: &sled::Db,
    records: &sled::Tree,
    start: Start,
    config: &StoreConfig,
) -> Result<GroupFlush, StoreError> {
    GroupFlush::start(
        Flusher {
            db: db.clone(),
            wal: start.wal,
            files: start.files,
            durability: config.durability,
            watermark: start.watermark,
            newest: start.newest,
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
    })
}

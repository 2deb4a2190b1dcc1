//! The checkpoint store on sled: opening, the write-ahead API, reads, quarantine, retention.
//!
//! Key layout (one tree, `records`):
//!
//! ```text
//! b"meta"                         AgentMeta
//! b"c" ++ container uuid (16)     Summary: the container's newest phase
//! b"p" ++ uuid (16) ++ seq (8 BE) PhaseRecord: its history, in order
//! b"u" ++ uuid (16) ++ seq (8 BE) StatusRecord: its status updates, in order
//! ```
//!
//! A second tree, `quarantine`, holds the raw bytes of values that failed to decode,
//! under their original keys.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::codec::{self, CodecError, SCHEMA_VERSION};
use crate::flush::GroupFlush;
use crate::record::{AgentMeta, Phase, PhaseRecord, StatusRecord, Summary};

const META: &[u8] = b"meta";
const SUMMARY: u8 = b'c';
const PHASE: u8 = b'p';
const STATUS: u8 = b'u';

/// How the store is configured. Every setting is explicit on purpose (see
/// docs/state-format.md).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled's page cache. Its default is 1 GiB; a node agent needs tens of MiB.
    pub cache_capacity: u64,
    /// sled's background flush interval. Durability never depends on it: every record that
    /// must exist before an action is flushed explicitly.
    pub flush_every_ms: Option<u64>,
    /// What to do with a value that does not decode.
    pub on_corrupt: OnCorrupt,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_capacity: 32 * 1024 * 1024,
            flush_every_ms: Some(1000),
            on_corrupt: OnCorrupt::Quarantine,
        }
    }
}

/// What opening does with a value that fails its checksum or decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Refuse to open, naming the value (`--strict=true`).
    Refuse,
    /// Move it to the quarantine tree with its raw bytes and go on (`--strict=false`).
    Quarantine,
    /// Change nothing; only report (offline `verify`).
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

/// Why the store cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (normally the running agent) holds the store.
    #[error("the store at {0} is held by another process (is the agent running?): stop it, or ask the running agent")]
    Locked(PathBuf),
    /// The directory exists but is not a berth store.
    #[error("{path} is not a berth store ({why}): point --work_dir at a berth work directory, or at an empty one")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What gave it away.
        why: String,
    },
    /// Written by a newer berth.
    #[error("the store at {path} has schema version {found}, newer than this berth's {SCHEMA_VERSION}: run a berth at least as new as the one that wrote it")]
    NewerSchema {
        /// The directory.
        path: PathBuf,
        /// The version found.
        found: u16,
    },
    /// Values that do not decode, with `OnCorrupt::Refuse`.
    #[error("the store has {} record(s) that do not decode, first {}: {}; run `berth state verify`, or start with --strict=false to quarantine them", .0.len(), .0[0].key, .0[0].reason)]
    Corrupt(Vec<Corrupt>),
    /// sled failed (I/O, a full disk, its own corruption).
    #[error("store I/O failed: {0}")]
    Sled(#[from] sled::Error),
    /// The record could not be made durable; the action it announces must not happen.
    #[error("the record could not be made durable, so the action it announces was not taken: {0}; free space or repair the disk under the work directory")]
    NotDurable(String),
    /// A value could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A record refers to a container the store does not know.
    #[error("no container {0} in the store")]
    UnknownContainer(Uuid),
}

/// The checkpoint store. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    records: sled::Tree,
    quarantine: sled::Tree,
    flusher: GroupFlush,
    // Serialises read-modify-write of summaries and keeps seq order equal to apply order;
    // held only for in-memory work, never across a flush.
    apply: Mutex<()>,
    meta: AgentMeta,
    corrupt: Vec<Corrupt>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn container_key(prefix: u8, id: Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(prefix);
    key.extend_from_slice(id.as_bytes());
    key
}

fn seq_key(prefix: u8, id: Uuid, seq: u64) -> Vec<u8> {
    let mut key = container_key(prefix, id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// A key as a person reads it: `p/<uuid>/<seq>`.
pub fn describe_key(key: &[u8]) -> String {
    if key == META {
        return "meta".into();
    }
    let uuid = key.get(1..17).and_then(|b| Uuid::from_slice(b).ok());
    let seq = key
        .get(17..25)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes);
    match (key.first(), uuid, seq, key.len()) {
        (Some(&p), Some(u), None, 17) => format!("{}/{u}", p as char),
        (Some(&p), Some(u), Some(s), 25) => format!("{}/{u}/{s}", p as char),
        _ => format!(
            "raw:{}",
            key.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, making an agent id on first start and
    /// recording `boot_id` as the boot seen at this start.
    pub fn open(dir: &Path, boot_id: &str, config: &StoreConfig) -> Result<Store, StoreError> {
        let created = check_dir(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(config.cache_capacity)
            .flush_every_ms(config.flush_every_ms)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| map_open_error(dir, e))?;
        let records = db.open_tree("records")?;
        let quarantine = db.open_tree("quarantine")?;
        let mut meta = match records.get(META)? {
            Some(bytes) => match codec::decode::<AgentMeta>(&bytes) {
                Ok(meta) => Some(meta),
                Err(CodecError::NewerSchema(found)) => {
                    return Err(StoreError::NewerSchema {
                        path: dir.to_owned(),
                        found,
                    })
                }
                Err(e) => {
                    return Err(StoreError::NotAStore {
                        path: dir.to_owned(),
                        why: format!("its agent record does not decode: {e}"),
                    })
                }
            },
            None if !created && !records.is_empty() => {
                return Err(StoreError::NotAStore {
                    path: dir.to_owned(),
                    why: "it has records but no agent record".into(),
                })
            }
            None => None,
        };
        let corrupt = scan(&records)?;
        if !corrupt.is_empty() {
            match config.on_corrupt {
                OnCorrupt::Refuse => return Err(StoreError::Corrupt(corrupt)),
                OnCorrupt::Report => {}
                OnCorrupt::Quarantine => {
                    for c in &corrupt {
                        quarantine.insert(c.raw_key.as_slice(), c.bytes.as_slice())?;
                        records.remove(c.raw_key.as_slice())?;
                    }
                }
            }
        }
        let now = now_ms();
        let meta = match meta.take() {
            Some(mut m) => {
                m.boot_id = boot_id.to_owned();
                m.started_at_ms = now;
                m
            }
            None => AgentMeta {
                agent_id: Uuid::new_v4(),
                boot_id: boot_id.to_owned(),
                created_schema: SCHEMA_VERSION,
                created_at_ms: now,
                started_at_ms: now,
            },
        };
        if config.on_corrupt != OnCorrupt::Report {
            records.insert(META, codec::encode(&meta)?)?;
            db.flush()?;
        }
        let flusher = GroupFlush::start(db.clone()).map_err(|e| StoreError::Sled(e.into()))?;
        Ok(Store {
            path: dir.to_owned(),
            db,
            records,
            quarantine,
            flusher,
            apply: Mutex::new(()),
            meta,
            corrupt,
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The agent's record as of this start.
    pub fn meta(&self) -> &AgentMeta {
        &self.meta
    }

    /// Values found undecodable when the store was opened.
    pub fn corrupt_at_open(&self) -> &[Corrupt] {
        &self.corrupt
    }

    /// Records `phase` for `container` and returns once it is durable.
    ///
    /// An `Accepted` phase starts a container; any other phase needs one. When this returns
    /// an error, the action the phase announces must not be taken.
    pub async fn record_phase(
        &self,
        container: Uuid,
        phase: Phase,
    ) -> Result<PhaseRecord, StoreError> {
        let record = self.apply_phase(container, phase)?;
        self.durable().await?;
        Ok(record)
    }

    fn apply_phase(&self, container: Uuid, phase: Phase) -> Result<PhaseRecord, StoreError> {
        let _guard = self.apply.lock().unwrap_or_else(|p| p.into_inner());
        let summary_key = container_key(SUMMARY, container);
        let previous: Option<Summary> = match self.records.get(&summary_key)? {
            Some(bytes) => Some(codec::decode(&bytes)?),
            None => None,
        };
        let record = PhaseRecord {
            seq: self.db.generate_id()?,
            at_ms: now_ms(),
            container_id: container,
            phase,
        };
        let summary = match (previous, &record.phase) {
            (_, Phase::Accepted { task_id, .. }) => Summary {
                container_id: container,
                task_id: task_id.clone(),
                last: record.clone(),
                accepted_at_ms: record.at_ms,
            },
            (Some(prev), _) => Summary {
                last: record.clone(),
                ..prev
            },
            (None, _) => return Err(StoreError::UnknownContainer(container)),
        };
        let mut batch = sled::Batch::default();
        batch.insert(
            seq_key(PHASE, container, record.seq),
            codec::encode(&record)?,
        );
        batch.insert(summary_key, codec::encode(&summary)?);
        self.records.apply_batch(batch)?;
        Ok(record)
    }

    /// Records a status update and returns once it is durable.
    pub async fn record_status(
        &self,
        mut status: StatusRecord,
    ) -> Result<StatusRecord, StoreError> {
        {
            let _guard = self.apply.lock().unwrap_or_else(|p| p.into_inner());
            if self
                .records
                .get(container_key(SUMMARY, status.container_id))?
                .is_none()
            {
                return Err(StoreError::UnknownContainer(status.container_id));
            }
            status.seq = self.db.generate_id()?;
            status.at_ms = now_ms();
            self.records.insert(
                seq_key(STATUS, status.container_id, status.seq),
                codec::encode(&status)?,
            )?;
        }
        self.durable().await?;
        Ok(status)
    }

    /// Marks a recorded status update as acknowledged, durably.
    pub async fn acknowledge(&self, container: Uuid, seq: u64) -> Result<(), StoreError> {
        {
            let _guard = self.apply.lock().unwrap_or_else(|p| p.into_inner());
            let key = seq_key(STATUS, container, seq);
            let Some(bytes) = self.records.get(&key)? else {
                return Err(StoreError::UnknownContainer(container));
            };
            let mut status: StatusRecord = codec::decode(&bytes)?;
            status.acknowledged = true;
            self.records.insert(key, codec::encode(&status)?)?;
        }
        self.durable().await
    }

    async fn durable(&self) -> Result<(), StoreError> {
        self.flusher
            .durable()
            .await
            .map_err(|e| StoreError::NotDurable(e.to_string()))
    }

    /// How many flushes the group flusher has run.
    pub fn flush_count(&self) -> u64 {
        self.flusher.flush_count()
    }

    /// Every container's newest state, in container id order.
    pub fn containers(&self) -> Result<Vec<Summary>, StoreError> {
        self.decode_prefix(&[SUMMARY])
    }

    /// One container's newest state.
    pub fn container(&self, id: Uuid) -> Result<Option<Summary>, StoreError> {
        match self.records.get(container_key(SUMMARY, id))? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// One container's phase history, oldest first.
    pub fn history(&self, id: Uuid) -> Result<Vec<PhaseRecord>, StoreError> {
        self.decode_prefix(&container_key(PHASE, id))
    }

    /// One container's status updates, oldest first.
    pub fn statuses(&self, id: Uuid) -> Result<Vec<StatusRecord>, StoreError> {
        self.decode_prefix(&container_key(STATUS, id))
    }

    /// The quarantined values, with why each was set aside.
    pub fn quarantined(&self) -> Result<Vec<Corrupt>, StoreError> {
        let mut out = Vec::new();
        for entry in self.quarantine.iter() {
            let (key, bytes) = entry?;
            out.push(Corrupt {
                key: describe_key(&key),
                raw_key: key.to_vec(),
                reason: why_corrupt(&key, &bytes).unwrap_or_else(|| "decodes now".into()),
                bytes: bytes.to_vec(),
            });
        }
        Ok(out)
    }

    /// Re-reads every value and returns those that do not decode (none are moved).
    pub fn verify(&self) -> Result<Vec<Corrupt>, StoreError> {
        scan(&self.records)
    }

    /// Drops every record of containers removed more than `delay` ago, durably, and
    /// returns how many containers were dropped.
    pub async fn purge_removed(&self, delay: Duration) -> Result<usize, StoreError> {
        let cutoff = now_ms().saturating_sub(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        let mut purged = 0;
        {
            let _guard = self.apply.lock().unwrap_or_else(|p| p.into_inner());
            for summary in self.containers()? {
                if summary.last.phase != Phase::Removed || summary.last.at_ms > cutoff {
                    continue;
                }
                let id = summary.container_id;
                let mut batch = sled::Batch::default();
                for prefix in [PHASE, STATUS] {
                    for key in self.records.scan_prefix(container_key(prefix, id)).keys() {
                        batch.remove(key?);
                    }
                }
                batch.remove(container_key(SUMMARY, id));
                self.records.apply_batch(batch)?;
                purged += 1;
            }
        }
        if purged > 0 {
            self.durable().await?;
        }
        Ok(purged)
    }

    /// Bytes the store's files take on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    fn decode_prefix<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for entry in self.records.scan_prefix(prefix) {
            let (_, bytes) = entry?;
            out.push(codec::decode(&bytes)?);
        }
        Ok(out)
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
        Err(e) => Err(StoreError::Sled(e.into())),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(true);
            }
            if dir.join("conf").is_file() && dir.join("db").is_file() {
                Ok(false)
            } else {
                Err(not_a_store("it holds files but no sled database".into()))
            }
        }
    }
}

fn map_open_error(dir: &Path, e: sled::Error) -> StoreError {
    match &e {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().to_lowercase().contains("lock") =>
        {
            StoreError::Locked(dir.to_owned())
        }
        sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => StoreError::NotAStore {
            path: dir.to_owned(),
            why: e.to_string(),
        },
        _ => StoreError::Sled(e),
    }
}

/// Why the value under `key` is bad, or `None` if it decodes as its key says it should.
fn why_corrupt(key: &[u8], bytes: &[u8]) -> Option<String> {
    let result = match key.first() {
        _ if key == META => codec::decode::<AgentMeta>(bytes).map(drop),
        Some(&SUMMARY) if key.len() == 17 => codec::decode::<Summary>(bytes).map(drop),
        Some(&PHASE) if key.len() == 25 => codec::decode::<PhaseRecord>(bytes).map(drop),
        Some(&STATUS) if key.len() == 25 => codec::decode::<StatusRecord>(bytes).map(drop),
        _ => return Some("unknown key".into()),
    };
    result.err().map(|e| e.to_string())
}

fn scan(records: &sled::Tree) -> Result<Vec<Corrupt>, StoreError> {
    let mut bad = Vec::new();
    for entry in records.iter() {
        let (key, bytes) = entry?;
        if let Some(reason) = why_corrupt(&key, &bytes) {
            bad.push(Corrupt {
                key: describe_key(&key),
                raw_key: key.to_vec(),
                reason,
                bytes: bytes.to_vec(),
            });
        }
    }
    Ok(bad)
}

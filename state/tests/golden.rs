//! The golden stores: written once by each schema version and committed under
//! tests/fixtures/state-vN (and state-vN-wal). Every later berth must open each of them
//! and read these same records: a schema-1 store, whose states were stored as names, reads
//! exactly as the schema-2 one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_state::codec::{self, SCHEMA_VERSION};
use berth_state::keys;
use berth_state::{Identity, OnCorrupt, Phase, StatusRecord, Store, StoreConfig, TaskState};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CONTAINER: &str = "0b8f2a56-7c3e-4f1a-8d2b-6e9c1a4f3d20";
const REMOVED: &str = "7d1e4c3b-2a19-4e8f-9b6d-5c4a3f2e1d0c";
const AGENT: &str = "3c9d0a71-5e2b-4f86-a1d4-9b7e6c5f4a32";
/// The bytes of the value the fixture holds in quarantine (its key: `quarantined_key`).
const QUARANTINED_BYTES: &[u8] = b"BRTH\x01\x00torn";

/// The golden store schema `schema` wrote.
fn fixture(schema: u16) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/state-v{schema}"))
}

/// The store schema `schema` wrote, as a SIGKILL left it: its records in the write-ahead
/// log only.
fn wal_fixture(schema: u16) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/state-v{schema}-wal"))
}

/// A copy of a fixture to open: sled writes on open, and the fixture must stay as its
/// schema wrote it.
fn copy_of(fixture: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture).expect("fixture exists") {
        let entry = entry.expect("entry");
        let to = copy.path().join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir(&to).expect("mkdir");
            for inner in std::fs::read_dir(entry.path()).expect("read") {
                let inner = inner.expect("entry");
                std::fs::copy(inner.path(), to.join(inner.file_name())).expect("copy");
            }
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
    copy
}

fn strict() -> StoreConfig {
    StoreConfig {
        on_corrupt: OnCorrupt::Refuse,
        ..StoreConfig::default()
    }
}

fn every_phase() -> Vec<Phase> {
    vec![
        Phase::Accepted {
            task_id: "golden-task".into(),
            task_json: r#"{"task_id":{"value":"golden-task"}}"#.into(),
            kill_at_ms: Some(1_800_000_000_000),
        },
        Phase::Fetching,
        Phase::Pulling {
            image: "berth-test/shell:latest".into(),
        },
        Phase::ExecutorStarting {
            identity: Identity {
                boot_id: "5a0e2c1d-golden-boot".into(),
                pid: 4242,
                start_ticks: 123_456,
            },
        },
        Phase::Running {
            container: format!("mesos-agent.{CONTAINER}"),
            pid: Some(4343),
        },
        Phase::Killing {
            grace_ms: 3000,
            requested_at_ms: 1_790_000_000_000,
            reason: "killed by the operator".into(),
        },
        Phase::Terminated {
            state: TaskState::Killed,
            reason: "REASON_TASK_KILLED".into(),
            message: "killed by the operator".into(),
            exit_code: Some(143),
            remove_at_ms: 1_790_021_600_000,
        },
        Phase::Decision {
            action: "remove".into(),
            why: "due".into(),
        },
        Phase::Removed,
    ]
}

/// Records every phase of the golden container and its first status update,
/// acknowledged; returns its id.
async fn record_golden_container(store: &Store) -> Uuid {
    let id = Uuid::parse_str(CONTAINER).expect("uuid");
    for phase in every_phase() {
        store.record_phase(id, phase).await.expect("record");
    }
    let status = store
        .record_status(golden_status(id))
        .await
        .expect("status");
    store.acknowledge(id, status.seq).await.expect("ack");
    id
}

fn golden_status(id: Uuid) -> StatusRecord {
    StatusRecord {
        seq: 0,
        at_ms: 0,
        container_id: id,
        report_seq: 1,
        state: TaskState::Running,
        reason: Some("REASON_EXECUTOR_REPORTED".into()),
        message: Some("the task runs".into()),
        exit_code: None,
        acknowledged: false,
    }
}

/// Writes the golden store of this build's schema, `state-vN`: every record type, one
/// value in quarantine. Only once per schema, when it is new; never an existing one again.
#[tokio::test]
#[ignore = "writes the golden fixture; run by hand only"]
async fn write_golden_store() {
    let dir = fixture(SCHEMA_VERSION);
    let _ = std::fs::remove_dir_all(&dir);
    // First, with sled directly: the agent record with a fixed agent id, and a torn value
    // for opening to quarantine.
    {
        let db = sled::open(&dir).expect("raw open");
        let records = db.open_tree("records").expect("tree");
        let meta = berth_state::AgentMeta {
            agent_id: Uuid::parse_str(AGENT).expect("uuid"),
            boot_id: "5a0e2c1d-golden-boot".into(),
            created_schema: SCHEMA_VERSION,
            created_at_ms: 1_790_000_000_000,
            started_at_ms: 1_790_000_000_000,
        };
        records
            .insert(b"meta", codec::encode(&meta).expect("encode"))
            .expect("insert");
        records
            .insert(quarantined_key(), QUARANTINED_BYTES)
            .expect("insert");
        db.flush().expect("flush");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let store = loop {
        match Store::open(&dir, "5a0e2c1d-golden-boot", &StoreConfig::default()) {
            Ok(store) => break store,
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(
        store.corrupt_at_open().len(),
        1,
        "the torn value is quarantined"
    );
    let id = record_golden_container(&store).await;
    let mut second = golden_status(id);
    second.state = TaskState::Killed;
    second.exit_code = Some(143);
    store.record_status(second).await.expect("status");
    let removed = Uuid::parse_str(REMOVED).expect("uuid");
    store
        .record_phase(removed, every_phase().remove(0))
        .await
        .expect("record");
}

/// Checks the golden container's history (every phase, in order) and its first status
/// update (RUNNING, acknowledged); returns its status updates.
fn golden_container(store: &Store) -> Vec<StatusRecord> {
    let id = Uuid::parse_str(CONTAINER).expect("uuid");
    let history: Vec<Phase> = store
        .history(id)
        .expect("history")
        .into_iter()
        .map(|r| r.phase)
        .collect();
    assert_eq!(history, every_phase());
    let statuses = store.statuses(id).expect("statuses");
    assert_eq!(
        statuses.first().map(|s| (s.state, s.acknowledged)),
        Some((TaskState::Running, true))
    );
    statuses
}

fn quarantined_key() -> Vec<u8> {
    let id = Uuid::parse_str(CONTAINER).expect("uuid");
    [&b"p"[..], id.as_bytes(), &999_999u64.to_be_bytes()].concat()
}

/// The schema each value of `dir`'s `records` tree is written in, by key.
fn schemas_on_disk(dir: &Path) -> BTreeMap<Vec<u8>, u16> {
    let db = sled::open(dir).expect("raw open");
    let records = db.open_tree("records").expect("tree");
    records
        .iter()
        .map(|entry| {
            let (key, bytes) = entry.expect("entry");
            let version = u16::from_le_bytes([bytes[4], bytes[5]]);
            (key.to_vec(), version)
        })
        .collect()
}

/// The schema of every header in `dir`'s write-ahead log files: each generation's, each
/// entry's and each value's inside an entry.
fn schemas_in_log(dir: &Path) -> BTreeSet<u16> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("read") {
        let path = entry.expect("entry").path();
        if !path.to_string_lossy().contains("berth.wal.") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read the log");
        for (at, window) in bytes.windows(6).enumerate() {
            if window.starts_with(codec::MAGIC) {
                found.insert(u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_v1_golden_store_opens_and_reads() {
    reads_golden_store(1);
}

#[tokio::test]
async fn the_v2_golden_store_opens_and_reads() {
    reads_golden_store(2);
}

#[test]
fn the_golden_stores_hold_their_own_schema() {
    for schema in [1, 2] {
        for dir in [fixture(schema), wal_fixture(schema)] {
            let copy = copy_of(&dir);
            let stored = schemas_on_disk(copy.path());
            assert!(!stored.is_empty(), "{}", dir.display());
            for (key, version) in stored {
                assert_eq!(
                    version,
                    schema,
                    "{}: {}",
                    dir.display(),
                    keys::describe(&key)
                );
            }
        }
        let logged = schemas_in_log(&wal_fixture(schema));
        assert_eq!(logged, BTreeSet::from([schema]), "the log of v{schema}");
    }
}

/// Opening a schema-1 store converts nothing it does not write: its old values read
/// through their own layout, and what the store writes next is in this build's schema,
/// beside them.
#[tokio::test]
async fn old_values_read_beside_new_ones() {
    let copy = copy_of(&fixture(1));
    let id = Uuid::parse_str(REMOVED).expect("uuid");
    let (accepted, fetching) = {
        let store = Store::open(copy.path(), "now", &strict()).expect("the v1 store opens");
        store
            .record_phase(id, Phase::Fetching)
            .await
            .expect("record");
        let history = store.history(id).expect("history");
        assert_eq!(
            history.iter().map(|r| r.phase.name()).collect::<Vec<_>>(),
            ["Accepted", "Fetching"]
        );
        golden_container(&store);
        (history[0].seq, history[1].seq)
    };
    let stored = schemas_on_disk(copy.path());
    let golden = Uuid::parse_str(CONTAINER).expect("uuid");
    let version = |key: Vec<u8>| stored.get(&key).copied();
    assert_eq!(version(keys::record(keys::PHASE, id, accepted)), Some(1));
    assert_eq!(version(keys::container(keys::SUMMARY, golden)), Some(1));
    assert_eq!(
        version(keys::record(keys::PHASE, id, fetching)),
        Some(SCHEMA_VERSION)
    );
    assert_eq!(
        version(keys::container(keys::SUMMARY, id)),
        Some(SCHEMA_VERSION)
    );
    let store = Store::open(copy.path(), "again", &strict()).expect("the mixed store opens");
    golden_container(&store);
    assert_eq!(store.history(id).expect("history").len(), 2);
    assert!(store.verify().expect("verify").is_empty());
}

fn reads_golden_store(schema: u16) {
    let copy = copy_of(&fixture(schema));
    let store = Store::open(copy.path(), "now", &strict()).expect("the golden store opens");
    assert_eq!(store.meta().created_schema, schema);
    assert_eq!(store.meta().boot_id, "now");
    assert_eq!(store.meta().agent_id.to_string(), AGENT);
    assert!(store.repairs_at_open().is_empty());
    let statuses = golden_container(&store);
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].message.as_deref(), Some("the task runs"));
    assert_eq!(
        (
            statuses[1].state,
            statuses[1].acknowledged,
            statuses[1].exit_code
        ),
        (TaskState::Killed, false, Some(143))
    );
    let containers = store.containers().expect("containers");
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].task_id, "golden-task");
    assert_eq!(containers[0].last.phase, Phase::Removed);
    assert_eq!(containers[1].last.phase.name(), "Accepted");
    assert!(store.verify().expect("verify").is_empty());
    let quarantined = store.quarantined().expect("quarantine");
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].raw_key, quarantined_key());
    assert_eq!(quarantined[0].key, format!("p/{CONTAINER}/999999"));
    assert_eq!(quarantined[0].bytes, QUARANTINED_BYTES);
    assert!(
        quarantined[0].reason.contains("truncated"),
        "{}",
        quarantined[0].reason
    );
}

/// Writes the write-ahead log fixture of this build's schema, `state-vN-wal`: records made
/// durable in the log and nowhere else (sled's flusher off, no checkpoint), the files
/// copied as a SIGKILL would leave them. Only once per schema, when it is new.
#[tokio::test]
#[ignore = "writes the golden fixture; run by hand only"]
async fn write_golden_wal_store() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig {
        flush_every_ms: None,
        checkpoint_every_ms: 3_600_000,
        checkpoint_bytes: u64::MAX,
        ..StoreConfig::default()
    };
    let store = Store::open(work.path(), "5a0e2c1d-golden-boot", &config).expect("open");
    record_golden_container(&store).await;
    let dir = wal_fixture(SCHEMA_VERSION);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for entry in std::fs::read_dir(work.path()).expect("read") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
        }
    }
    // Never dropped: dropping would checkpoint, and the copy is what a SIGKILL leaves.
    std::mem::forget(store);
}

#[tokio::test]
async fn the_v1_write_ahead_log_replays() {
    replays_golden_log(1);
}

#[tokio::test]
async fn the_v2_write_ahead_log_replays() {
    replays_golden_log(2);
}

fn replays_golden_log(schema: u16) {
    let copy = copy_of(&wal_fixture(schema));
    let replayed = berth_state::wal::Recovery::read(copy.path())
        .expect("the log reads")
        .entries
        .len();
    assert!(
        replayed >= every_phase().len(),
        "the fixture's records are not in its log: {replayed} entries"
    );
    let store = Store::open(copy.path(), "now", &strict()).expect("the golden store opens");
    let statuses = golden_container(&store);
    assert_eq!(statuses.len(), 1);
    assert_eq!(store.lost_at_open(), None);
    assert!(store.verify().expect("verify").is_empty());
}

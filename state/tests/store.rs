//! The store against real files: write-ahead records, reopening, bad input, retention.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_state::codec::{self, SCHEMA_VERSION};
use berth_state::{Identity, OnCorrupt, Phase, StatusRecord, Store, StoreConfig, StoreError};
use uuid::Uuid;

fn open(dir: &Path) -> Store {
    Store::open(dir, "boot-1", &StoreConfig::default()).expect("open store")
}

fn accepted(task: &str) -> Phase {
    Phase::Accepted {
        task_id: task.into(),
        task_json: format!(r#"{{"task_id":{{"value":"{task}"}}}}"#),
        kill_at_ms: None,
    }
}

async fn launch(store: &Store, task: &str) -> Uuid {
    let id = Uuid::new_v4();
    store
        .record_phase(id, accepted(task))
        .await
        .expect("accepted");
    store
        .record_phase(id, Phase::Fetching)
        .await
        .expect("fetching");
    store
        .record_phase(
            id,
            Phase::Pulling {
                image: "busybox".into(),
            },
        )
        .await
        .expect("pulling");
    store
        .record_phase(
            id,
            Phase::ExecutorStarting {
                identity: Identity {
                    boot_id: "boot-1".into(),
                    pid: 4242,
                    start_ticks: 99,
                },
            },
        )
        .await
        .expect("executor");
    id
}

#[tokio::test]
async fn the_agent_id_lives_as_long_as_the_work_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state");
    let first = open(&path).meta().clone();
    let second = Store::open(&path, "boot-2", &StoreConfig::default()).expect("reopen");
    assert_eq!(second.meta().agent_id, first.agent_id);
    assert_eq!(second.meta().boot_id, "boot-2");
    assert_eq!(second.meta().created_schema, SCHEMA_VERSION);
    drop(second);
    let other = tempfile::tempdir().expect("tempdir");
    assert_ne!(open(other.path()).meta().agent_id, first.agent_id);
}

#[tokio::test]
async fn history_summary_and_status_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let store = open(dir.path());
        let id = launch(&store, "t1").await;
        let status = store
            .record_status(StatusRecord {
                seq: 0,
                at_ms: 0,
                container_id: id,
                report_seq: 1,
                state: "RUNNING".into(),
                reason: None,
                message: None,
                exit_code: None,
                acknowledged: false,
            })
            .await
            .expect("status");
        store.acknowledge(id, status.seq).await.expect("ack");
        id
    };
    let store = open(dir.path());
    let history = store.history(id).expect("history");
    let names: Vec<&str> = history.iter().map(|r| r.phase.name()).collect();
    assert_eq!(
        names,
        ["Accepted", "Fetching", "Pulling", "ExecutorStarting"]
    );
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    let summary = store.container(id).expect("read").expect("present");
    assert_eq!(summary.task_id, "t1");
    assert_eq!(summary.last, history[3]);
    let statuses = store.statuses(id).expect("statuses");
    assert_eq!(statuses.len(), 1);
    assert!(statuses[0].acknowledged);
    assert_eq!(store.containers().expect("list").len(), 1);
}

#[tokio::test]
async fn a_phase_for_an_unknown_container_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let err = store
        .record_phase(Uuid::new_v4(), Phase::Fetching)
        .await
        .expect_err("no Accepted first");
    assert!(matches!(err, StoreError::UnknownContainer(_)), "{err}");
}

#[tokio::test]
async fn concurrent_writers_share_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(dir.path()));
    let before = store.flush_count();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_phase(Uuid::new_v4(), accepted(&format!("t{i}")))
                .await
                .expect("record")
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let flushes = store.flush_count() - before;
    assert!(flushes < 64, "64 writers cost {flushes} flushes");
    assert_eq!(store.containers().expect("list").len(), 64);
}

/// Writes raw bytes under a key with sled directly, as a damaged disk would.
fn damage(dir: &Path, key: &[u8], bytes: &[u8]) {
    let db = sled::open(dir).expect("raw open");
    db.open_tree("records")
        .expect("tree")
        .insert(key, bytes)
        .expect("insert");
    db.flush().expect("flush");
}

#[tokio::test]
async fn a_corrupt_value_is_quarantined_refused_or_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let store = open(dir.path());
        launch(&store, "t1").await
    };
    let store = open(dir.path());
    let history = store.history(id).expect("history");
    drop(store);
    // Flip a byte of the second phase record's payload.
    let mut key = vec![b'p'];
    key.extend_from_slice(id.as_bytes());
    key.extend_from_slice(&history[1].seq.to_be_bytes());
    let mut bytes = codec::encode(&history[1]).expect("encode");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    damage(dir.path(), &key, &bytes);

    let strict = StoreConfig {
        on_corrupt: OnCorrupt::Refuse,
        ..StoreConfig::default()
    };
    let err = Store::open(dir.path(), "boot-1", &strict)
        .map(drop)
        .expect_err("strict refuses");
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::Corrupt(ref c) if c.len() == 1),
        "{text}"
    );
    assert!(
        text.contains("checksum") && text.contains(&id.to_string()),
        "{text}"
    );

    let report = StoreConfig {
        on_corrupt: OnCorrupt::Report,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), "boot-1", &report).expect("report mode opens");
    assert_eq!(store.verify().expect("verify").len(), 1);
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.corrupt_at_open().len(), 1);
    let quarantined = store.quarantined().expect("quarantine");
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].bytes, bytes, "the raw bytes are kept");
    assert!(store.verify().expect("verify").is_empty());
    // Everything else is still there.
    let names: Vec<&str> = store
        .history(id)
        .expect("history")
        .iter()
        .map(|r| r.phase.name())
        .collect();
    assert_eq!(names, ["Accepted", "Pulling", "ExecutorStarting"]);
}

#[tokio::test]
async fn a_newer_schema_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = open(dir.path()).meta().clone();
    let mut bytes = codec::encode(&meta).expect("encode");
    bytes[4..6].copy_from_slice(&(SCHEMA_VERSION + 1).to_le_bytes());
    damage(dir.path(), b"meta", &bytes);
    let err = Store::open(dir.path(), "b", &StoreConfig::default())
        .map(drop)
        .expect_err("newer");
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{text}"
    );
    assert!(
        text.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{text}"
    );
}

#[tokio::test]
async fn a_directory_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    let err = Store::open(dir.path(), "b", &StoreConfig::default())
        .map(drop)
        .expect_err("not a store");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).expect("read"),
        "hello",
        "nothing was touched"
    );
    let file = dir.path().join("notes.txt");
    let err = Store::open(&file, "b", &StoreConfig::default())
        .map(drop)
        .expect_err("a file");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");

    // A sled database with foreign records and no agent record.
    let foreign = tempfile::tempdir().expect("tempdir");
    damage(foreign.path(), b"something", b"else");
    let err = Store::open(foreign.path(), "b", &StoreConfig::default())
        .map(drop)
        .expect_err("foreign");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
}

#[tokio::test]
async fn a_held_store_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _held = open(dir.path());
    let err = Store::open(dir.path(), "b", &StoreConfig::default())
        .map(drop)
        .expect_err("locked");
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    assert!(err.to_string().contains("agent running"), "{err}");
}

#[tokio::test]
async fn removed_containers_are_dropped_after_the_delay_and_size_stays_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let keep = launch(&store, "running").await;
    let cycles: usize = std::env::var("BERTH_RETENTION_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut peak = 0;
    for i in 0..cycles {
        let id = launch(&store, &format!("t{i}")).await;
        store
            .record_phase(
                id,
                Phase::Terminated {
                    state: "FINISHED".into(),
                    reason: "REASON_COMMAND_EXITED".into(),
                    message: "exited with status 0".into(),
                    exit_code: Some(0),
                    remove_at_ms: 0,
                },
            )
            .await
            .expect("terminated");
        store
            .record_phase(id, Phase::Removed)
            .await
            .expect("removed");
        if i % 100 == 99 {
            assert_eq!(
                store.purge_removed(Duration::ZERO).await.expect("purge"),
                100
            );
            peak = peak.max(store.size_on_disk().expect("size"));
        }
    }
    // A delay keeps recent ones.
    let recent = launch(&store, "recent").await;
    store
        .record_phase(recent, Phase::Removed)
        .await
        .expect("removed");
    assert_eq!(
        store
            .purge_removed(Duration::from_secs(3600))
            .await
            .expect("purge"),
        0
    );
    let ids: Vec<Uuid> = store
        .containers()
        .expect("list")
        .iter()
        .map(|s| s.container_id)
        .collect();
    assert!(
        ids.contains(&keep) && ids.contains(&recent) && ids.len() == 2,
        "{ids:?}"
    );
    println!("retention: {cycles} launch-to-removed cycles, peak size on disk {peak} bytes");
    assert!(peak < 64 * 1024 * 1024, "size on disk grew to {peak} bytes");
}

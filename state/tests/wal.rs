//! berth's write-ahead log against real crashes: what a SIGKILL leaves is replayed, a torn
//! last batch is ignored, damage is reported, checkpoints remove old generations.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_state::wal::{self, Recovery, FRAME_HEAD, HEADER_LEN};
use berth_state::{
    Durability, OnCorrupt, Phase, StatusRecord, Store, StoreConfig, StoreError, TaskState,
};
use uuid::Uuid;

const CHILD_DIR: &str = "BERTH_WAL_CHILD_DIR";
const CHILD_DURABILITY: &str = "BERTH_WAL_CHILD_DURABILITY";
/// Containers the child records (two phases each).
const CONTAINERS: usize = 40;

fn accepted(task: &str) -> Phase {
    Phase::Accepted {
        task_id: task.into(),
        task_json: format!(r#"{{"task_id":{{"value":"{task}"}}}}"#),
        kill_at_ms: None,
    }
}

fn finished() -> Phase {
    Phase::Terminated {
        state: TaskState::Finished,
        reason: "REASON_COMMAND_EXITED".into(),
        message: "exited".into(),
        exit_code: Some(0),
        remove_at_ms: 0,
    }
}

fn with(on_corrupt: OnCorrupt) -> StoreConfig {
    StoreConfig {
        on_corrupt,
        ..StoreConfig::default()
    }
}

/// Writes records, prints each once its call returned, then waits to be killed. sled's
/// own flusher is off and no checkpoint comes, so after the kill the records are in the
/// write-ahead log and nowhere else on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by the tests below"]
async fn wal_writer_child() {
    let dir = std::env::var(CHILD_DIR).expect("started by a test");
    let durability = match std::env::var(CHILD_DURABILITY).as_deref() {
        Ok("process-crash") => Durability::ProcessCrash,
        _ => Durability::PowerLoss,
    };
    let config = StoreConfig {
        flush_every_ms: None,
        checkpoint_every_ms: 3_600_000,
        checkpoint_bytes: u64::MAX,
        durability,
        ..StoreConfig::default()
    };
    let store = Store::open(Path::new(&dir), "child", &config).expect("open");
    // libtest's "test wal_writer_child ... " has no newline of its own.
    println!();
    let mut first = None;
    for i in 0..CONTAINERS {
        let id = Uuid::new_v4();
        first.get_or_insert(id);
        for phase in [accepted(&format!("t{i}")), Phase::Fetching] {
            let record = store.record_phase(id, phase).await.expect("record");
            println!("phase {id} {}", record.seq);
        }
    }
    let id = first.expect("a container");
    let status = store
        .record_status(StatusRecord {
            seq: 0,
            at_ms: 0,
            container_id: id,
            report_seq: 1,
            state: TaskState::Running,
            reason: None,
            message: None,
            exit_code: None,
            acknowledged: false,
        })
        .await
        .expect("status");
    store.acknowledge(id, status.seq).await.expect("ack");
    println!("acked {id} {}", status.seq);
    let gone = Uuid::new_v4();
    for phase in [accepted("gone"), finished(), Phase::Removed] {
        store.record_phase(gone, phase).await.expect("record");
    }
    assert_eq!(store.purge(&[gone]).await.expect("purge"), 1);
    println!("purged {gone}");
    println!("done");
    std::thread::sleep(Duration::from_secs(3600));
}

/// What the child acknowledged before it was killed.
#[derive(Debug, Default)]
struct Acked {
    phases: Vec<(Uuid, u64)>,
    acked: Option<(Uuid, u64)>,
    purged: Option<Uuid>,
}

/// Runs the child on `dir` and SIGKILLs it once it has written everything.
fn killed_store(dir: &Path, durability: &str) -> Acked {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "wal_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_DURABILITY, durability)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("piped");
    let mut acked = Acked::default();
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read");
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["phase", id, seq] => acked
                .phases
                .push((id.parse().expect("id"), seq.parse().expect("seq"))),
            ["acked", id, seq] => {
                acked.acked = Some((id.parse().expect("id"), seq.parse().expect("seq")))
            }
            ["purged", id] => acked.purged = Some(id.parse().expect("id")),
            ["done"] => {
                done = true;
                break;
            }
            _ => {}
        }
    }
    // SIGKILL: no destructor runs, no last checkpoint.
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(done, "the child stopped early: {acked:?}");
    assert_eq!(acked.phases.len(), 2 * CONTAINERS);
    acked
}

/// Every acknowledged record is in `store`, and the purged container is gone.
fn check(store: &Store, acked: &Acked) {
    for (id, seq) in &acked.phases {
        assert!(
            store
                .history(*id)
                .expect("history")
                .iter()
                .any(|r| r.seq == *seq),
            "acknowledged record {id}/{seq} is missing"
        );
    }
    let (id, seq) = acked.acked.expect("acked");
    let statuses = store.statuses(id).expect("statuses");
    assert!(
        statuses.iter().any(|s| s.seq == seq && s.acknowledged),
        "{statuses:?}"
    );
    let purged = acked.purged.expect("purged");
    assert!(store.container(purged).expect("read").is_none());
    assert!(store.history(purged).expect("history").is_empty());
}

fn generations(dir: &Path) -> Vec<u64> {
    wal::generations(dir)
        .expect("list")
        .into_iter()
        .map(|(g, _)| g)
        .collect()
}

fn newest_generation(dir: &Path) -> PathBuf {
    wal::generations(dir)
        .expect("list")
        .pop()
        .expect("a generation")
        .1
}

/// Offsets of the batches of one generation's bytes, and where they end (zeros follow,
/// written ahead).
fn batch_offsets(bytes: &[u8]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::new();
    let mut at = HEADER_LEN;
    while at + FRAME_HEAD <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        if len == 0 {
            break;
        }
        offsets.push(at);
        at += FRAME_HEAD + len as usize;
    }
    (offsets, at)
}

fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

#[test]
fn what_a_sigkill_leaves_in_the_log_is_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("state");
    let acked = killed_store(&store_dir, "power-loss");
    let logged = Recovery::read(&store_dir).expect("read the log");
    assert!(
        logged.entries.len() >= 2 * CONTAINERS + 5,
        "{} entries",
        logged.entries.len()
    );
    // sled's own files never got the records: the log is what brings them back.
    let raw = dir.path().join("raw");
    copy_store(&store_dir, &raw);
    for entry in wal::generations(&raw).expect("list") {
        std::fs::remove_file(entry.1).expect("remove");
    }
    {
        let db = sled::open(&raw).expect("raw open");
        let records = db.open_tree("records").expect("tree");
        assert_eq!(
            records.scan_prefix(b"p").count(),
            0,
            "sled wrote records on its own"
        );
    }
    let store = Store::open(&store_dir, "b", &with(OnCorrupt::Refuse)).expect("open");
    check(&store, &acked);
    assert!(
        store.notes_at_open().is_empty(),
        "{:?}",
        store.notes_at_open()
    );
    assert!(store.repairs_at_open().is_empty());
    // Opening checkpointed: one generation left, empty.
    assert_eq!(generations(&store_dir).len(), 1);
    assert!(Recovery::read(&store_dir).expect("read").entries.is_empty());
    drop(store);
    let store = Store::open(&store_dir, "b", &with(OnCorrupt::Refuse)).expect("reopen");
    check(&store, &acked);
}

#[test]
fn process_crash_durability_survives_a_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = killed_store(dir.path(), "process-crash");
    let store = Store::open(dir.path(), "b", &with(OnCorrupt::Refuse)).expect("open");
    check(&store, &acked);
}

#[test]
fn a_torn_last_batch_is_ignored_and_a_damaged_one_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    let acked = killed_store(&src, "power-loss");
    let bytes = std::fs::read(newest_generation(&src)).expect("read");
    let (offsets, end) = batch_offsets(&bytes);
    let last = offsets[offsets.len() - 1];

    // What a kill during the next write leaves: part of a batch after the last one.
    let torn = dir.path().join("torn");
    copy_store(&src, &torn);
    let mut partial = bytes.clone();
    let half = (end - last) / 2;
    partial[end..end + half].copy_from_slice(&bytes[last..last + half]);
    std::fs::write(newest_generation(&torn), partial).expect("write");
    let store = Store::open(&torn, "b", &with(OnCorrupt::Refuse)).expect("a torn tail opens");
    check(&store, &acked);
    let notes = store.notes_at_open().join("\n");
    assert!(
        notes.contains("cut short") && notes.contains("never acknowledged"),
        "{notes}"
    );
    assert_eq!(store.lost_at_open(), None);

    // The last acknowledged batch damaged reads like a torn one; the watermark knows
    // better.
    let cut = dir.path().join("cut");
    copy_store(&src, &cut);
    std::fs::write(newest_generation(&cut), &bytes[..end - 3]).expect("write");
    let err = Store::open(&cut, "b", &with(OnCorrupt::Refuse))
        .map(drop)
        .expect_err("the watermark catches it");
    assert!(matches!(err, StoreError::LostRecords { .. }), "{err}");
}

#[test]
fn a_damaged_batch_in_the_middle_is_reported_never_skipped_in_silence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("state");
    let acked = killed_store(&store_dir, "power-loss");
    let log = newest_generation(&store_dir);
    let mut bytes = std::fs::read(&log).expect("read");
    let (offsets, _) = batch_offsets(&bytes);
    // One writer, so one entry per batch: the 12th is the 6th container's Fetching; flip a
    // byte of it.
    let (lost_id, lost_seq) = acked.phases[11];
    bytes[offsets[11] + FRAME_HEAD + 30] ^= 0x5a;
    std::fs::write(&log, &bytes).expect("write");

    let err = Store::open(&store_dir, "b", &with(OnCorrupt::Refuse))
        .map(drop)
        .expect_err("strict refuses");
    let text = err.to_string();
    assert!(
        matches!(&err, StoreError::LostRecords { lost, .. } if lost.newest == acked.phases[10].1 && lost.durable == acked.phases[12].1),
        "{text}"
    );
    assert!(
        text.contains("write-ahead log is damaged") && text.contains("--strict=false"),
        "{text}"
    );

    // Offline inspection sees it too and changes nothing.
    {
        let inspection = berth_state::offline::Inspection::open(&store_dir).expect("inspect");
        assert!(inspection.store().lost_at_open().is_some());
    }
    assert!(log.exists());

    // Not strict: the agent goes on with every other entry, says what is lost, and sets
    // the damaged generation aside for a post-mortem.
    let store = Store::open(&store_dir, "b", &with(OnCorrupt::Quarantine)).expect("open");
    assert!(store.lost_at_open().is_some());
    let notes = store.notes_at_open().join("\n");
    assert!(notes.contains("good batches follow"), "{notes}");
    assert!(notes.contains("kept for a post-mortem"), "{notes}");
    let invalid = store_dir.join(format!(
        "invalid.{}",
        log.file_name().expect("name").to_string_lossy()
    ));
    assert!(invalid.exists());
    let history = store.history(lost_id).expect("history");
    assert!(history.iter().all(|r| r.seq != lost_seq), "{history:?}");
    assert_eq!(history.len(), 1, "its Accepted is still there");
    for (id, seq) in acked.phases.iter().filter(|(_, s)| *s != lost_seq) {
        assert!(
            store.history(*id).expect("h").iter().any(|r| r.seq == *seq),
            "{id}/{seq} was replayed"
        );
    }
    drop(store);
    assert_eq!(
        Store::open(&store_dir, "b", &with(OnCorrupt::Refuse))
            .expect("reported once")
            .lost_at_open(),
        None
    );
}

#[tokio::test]
async fn sled_losing_checkpointed_records_is_caught_by_the_logs_base() {
    // Without the watermark, the base in the oldest generation's header still tells.
    let dir = tempfile::tempdir().expect("tempdir");
    let id = Uuid::new_v4();
    let seq = {
        let store = Store::open(dir.path(), "b", &StoreConfig::default()).expect("open");
        store.record_phase(id, accepted("t")).await.expect("record");
        store
            .record_phase(id, Phase::Fetching)
            .await
            .expect("record")
            .seq
    };
    std::fs::remove_file(dir.path().join("berth.watermark")).expect("remove");
    {
        let db = sled::open(dir.path()).expect("raw open");
        let records = db.open_tree("records").expect("tree");
        let key = [&b"p"[..], id.as_bytes(), &seq.to_be_bytes()].concat();
        records.remove(key).expect("remove");
        let summary = [&b"c"[..], id.as_bytes()].concat();
        records.remove(summary).expect("remove");
        db.flush().expect("flush");
    }
    let err = wait_for_lock(|| Store::open(dir.path(), "b", &with(OnCorrupt::Refuse)))
        .map(drop)
        .expect_err("refused");
    assert!(
        matches!(&err, StoreError::LostRecords { lost, .. } if lost.durable == seq),
        "{err}"
    );
    assert!(err.to_string().contains("checkpoint that started"), "{err}");
}

/// sled releases its lock from background threads a moment after a raw `Db` is dropped.
fn wait_for_lock<T>(open: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open() {
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_remove_old_generations_by_time_and_by_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let by_time = StoreConfig {
        checkpoint_every_ms: 50,
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path(), "b", &by_time).expect("open"));
    let first = generations(dir.path());
    assert_eq!(first.len(), 1);
    let mut most = 0;
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_millis(600) {
        store
            .record_phase(Uuid::new_v4(), accepted(&format!("t{i}")))
            .await
            .expect("record");
        most = most.max(generations(dir.path()).len());
        i += 1;
    }
    let during = generations(dir.path());
    assert!(
        during[0] >= first[0] + 5,
        "a checkpoint every 50 ms: {first:?} then {during:?}"
    );
    // Between a new generation and the removal of the old one, both are there.
    assert!(most <= 2, "{most} generations at once");
    // Idle: the last entries are checkpointed too, and the log is left empty.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(Recovery::read(dir.path()).expect("read").entries.is_empty());
    assert_eq!(generations(dir.path()).len(), 1);
    drop(store);

    let by_size = StoreConfig {
        checkpoint_every_ms: 3_600_000,
        checkpoint_bytes: 16 * 1024,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), "b", &by_size).expect("reopen");
    let before = generations(dir.path());
    for i in 0..200 {
        store
            .record_phase(Uuid::new_v4(), accepted(&format!("s{i}")))
            .await
            .expect("record");
    }
    let after = generations(dir.path());
    assert_eq!(after.len(), 1);
    // Each record logs about 400 bytes: 200 of them pass 16 KiB four times or more.
    assert!(after[0] >= before[0] + 4, "{before:?} then {after:?}");
    // Space written ahead is at most as much again as what the generation holds.
    assert!(wal::size_on_disk(dir.path()).expect("size") <= 2 * (16 * 1024 + 4096));
    drop(store);
    // A clean stop checkpoints: nothing left to replay.
    assert!(Recovery::read(dir.path()).expect("read").entries.is_empty());
    assert_eq!(
        Store::open(dir.path(), "b", &StoreConfig::default())
            .expect("reopen")
            .containers()
            .expect("list")
            .len(),
        i + 200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_larger_than_one_entry_is_seen_whole_as_soon_as_it_returns() {
    // Over 4,096 removes: the purge is logged as more than one entry, and every one of
    // them must reach sled before the call returns, not at the next checkpoint.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig {
        checkpoint_every_ms: 3_600_000,
        checkpoint_bytes: u64::MAX,
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path(), "b", &config).expect("open"));
    let mut lanes = Vec::new();
    for lane in 0..16 {
        let store = store.clone();
        lanes.push(tokio::spawn(async move {
            for i in 0..70 {
                let id = Uuid::new_v4();
                let phases = [
                    accepted(&format!("t{lane}-{i}")),
                    finished(),
                    Phase::Removed,
                ];
                for phase in phases {
                    store.record_phase(id, phase).await.expect("record");
                }
            }
        }));
    }
    for lane in lanes {
        lane.await.expect("lane");
    }
    let all: Vec<Uuid> = store
        .containers()
        .expect("list")
        .iter()
        .map(|s| s.container_id)
        .collect();
    assert_eq!(all.len(), 16 * 70);
    assert_eq!(store.purge(&all).await.expect("purge"), 16 * 70);
    assert!(store.containers().expect("list").is_empty());
}

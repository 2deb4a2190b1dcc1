//! The store against real files: write-ahead records, reopening, bad input, repairs after
//! a torn write, retention.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_state::codec::{self, SCHEMA_VERSION};
use berth_state::TaskState;
use berth_state::{
    Identity, OnCorrupt, Phase, PhaseRecord, Repair, StatusRecord, Store, StoreConfig, StoreError,
    Summary,
};
use uuid::Uuid;

fn open(dir: &Path) -> Store {
    Store::open(dir, "boot-1", &StoreConfig::default()).expect("open store")
}

fn with(on_corrupt: OnCorrupt) -> StoreConfig {
    StoreConfig {
        on_corrupt,
        ..StoreConfig::default()
    }
}

fn accepted(task: &str) -> Phase {
    Phase::Accepted {
        task_id: task.into(),
        task_json: format!(r#"{{"task_id":{{"value":"{task}"}}}}"#),
        kill_at_ms: None,
    }
}

fn terminated() -> Phase {
    Phase::Terminated {
        state: TaskState::Finished,
        reason: "REASON_COMMAND_EXITED".into(),
        message: "exited with status 0".into(),
        exit_code: Some(0),
        remove_at_ms: 0,
    }
}

async fn launch(store: &Store, task: &str) -> Uuid {
    let id = Uuid::new_v4();
    let phases = [
        accepted(task),
        Phase::Fetching,
        Phase::Pulling {
            image: "busybox".into(),
        },
        Phase::ExecutorStarting {
            identity: Identity {
                boot_id: "boot-1".into(),
                pid: 4242,
                start_ticks: 99,
            },
        },
    ];
    for phase in phases {
        store.record_phase(id, phase).await.expect("record");
    }
    id
}

/// Every removed container: what a collector with no delay chooses.
fn removed(store: &Store) -> Vec<Uuid> {
    store
        .containers()
        .expect("list")
        .into_iter()
        .filter(|s| s.last.phase == Phase::Removed)
        .map(|s| s.container_id)
        .collect()
}

fn names(history: &[PhaseRecord]) -> Vec<&'static str> {
    history.iter().map(|r| r.phase.name()).collect()
}

/// sled releases its lock from background threads a moment after a raw `Db` is dropped
/// (sled #1234): open raw, polling on that one error until a deadline.
fn raw_open(dir: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e) if e.to_string().contains("could not acquire lock") => {
                assert!(Instant::now() < deadline, "raw open: {e}");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("raw open: {e}"),
        }
    }
}

/// Writes (or with `None` removes) a raw value with sled directly, as a damaged disk or a
/// torn write would leave it.
fn raw_put(dir: &Path, key: &[u8], bytes: Option<&[u8]>) {
    let db = raw_open(dir);
    let tree = db.open_tree("records").expect("tree");
    match bytes {
        Some(b) => tree.insert(key, b).map(drop).expect("insert"),
        None => tree.remove(key).map(drop).expect("remove"),
    }
    db.flush().expect("flush");
}

fn phase_key(id: Uuid, seq: u64) -> Vec<u8> {
    [&[b'p'][..], id.as_bytes(), &seq.to_be_bytes()].concat()
}

fn summary_key(id: Uuid) -> Vec<u8> {
    [&[b'c'][..], id.as_bytes()].concat()
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
    assert_eq!(second.agent(), Some(second.meta()));
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
                state: TaskState::Running,
                reason: None,
                message: None,
                exit_code: None,
                acknowledged: false,
            })
            .await
            .expect("status");
        store.acknowledge(id, status.seq).await.expect("ack");
        let err = store
            .acknowledge(id, status.seq + 1000)
            .await
            .expect_err("no such status");
        assert!(
            matches!(err, StoreError::UnknownStatus { container, .. } if container == id),
            "{err}"
        );
        id
    };
    let store = open(dir.path());
    assert!(store.repairs_at_open().is_empty());
    let history = store.history(id).expect("history");
    assert_eq!(
        names(&history),
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
async fn reopening_at_once_never_meets_our_own_lock() {
    // sled lets go of its lock from background threads after a drop; the store waits for
    // that on drop, so a restart inside one process (tests, `berth state` after a
    // shutdown) opens at once.
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..50 {
        let store = open(dir.path());
        store
            .record_phase(Uuid::new_v4(), accepted(&format!("t{i}")))
            .await
            .expect("record");
    }
    assert_eq!(open(dir.path()).containers().expect("list").len(), 50);
}

#[tokio::test]
async fn phases_that_cannot_follow_are_refused_and_not_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let err = store
        .record_phase(Uuid::new_v4(), Phase::Fetching)
        .await
        .expect_err("no Accepted first");
    assert!(matches!(err, StoreError::UnknownContainer(_)), "{err}");

    let id = Uuid::new_v4();
    store
        .record_phase(id, accepted("t"))
        .await
        .expect("accepted");
    let err = store
        .record_phase(id, accepted("t"))
        .await
        .expect_err("accepted twice");
    assert!(
        matches!(
            err,
            StoreError::Transition {
                from: "Accepted",
                to: "Accepted",
                ..
            }
        ),
        "{err}"
    );
    store
        .record_phase(id, terminated())
        .await
        .expect("terminated");
    let decision = Phase::Decision {
        action: "remove".into(),
        why: "due".into(),
    };
    store.record_phase(id, decision).await.expect("decision");
    // A Decision in between does not hide that the task terminated.
    let running = Phase::Running {
        container: "c".into(),
        pid: Some(1),
    };
    let err = store
        .record_phase(id, running.clone())
        .await
        .expect_err("running after terminated");
    assert_eq!(
        err.to_string(),
        format!("container {id} cannot go from Terminated to Running: refused, nothing recorded")
    );
    store
        .record_phase(id, Phase::Removed)
        .await
        .expect("removed");
    let err = store
        .record_phase(id, running)
        .await
        .expect_err("after removed");
    assert!(
        matches!(
            err,
            StoreError::Transition {
                from: "Removed",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        names(&store.history(id).expect("history")),
        ["Accepted", "Terminated", "Decision", "Removed"]
    );
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

#[tokio::test]
async fn a_crash_between_the_two_writes_of_a_phase_is_put_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (behind, ahead, orphan, history) = {
        let store = open(dir.path());
        let behind = launch(&store, "behind").await;
        let ahead = launch(&store, "ahead").await;
        let orphan = launch(&store, "orphan").await;
        let history = [
            store.history(behind).expect("h"),
            store.history(ahead).expect("h"),
            store.history(orphan).expect("h"),
        ];
        (behind, ahead, orphan, history)
    };
    // `behind`: the summary still says Pulling (the crash came before its write).
    let pulling = Summary {
        container_id: behind,
        task_id: "behind".into(),
        last: history[0][2].clone(),
        accepted_at_ms: history[0][0].at_ms,
    };
    raw_put(
        dir.path(),
        &summary_key(behind),
        Some(&codec::encode(&pulling).expect("encode")),
    );
    // `ahead`: the history lost its newest record.
    raw_put(dir.path(), &phase_key(ahead, history[1][3].seq), None);
    // `orphan`: no summary at all.
    raw_put(dir.path(), &summary_key(orphan), None);

    // Offline inspection changes nothing but shows the store as the agent will see it.
    {
        let store = Store::open(dir.path(), "b", &with(OnCorrupt::Report)).expect("report");
        assert_eq!(store.repairs_at_open().len(), 3);
        assert_eq!(store.containers().expect("list").len(), 3);
        assert_eq!(names(&store.history(ahead).expect("h")).len(), 4);
    }
    let store = Store::open(dir.path(), "b", &with(OnCorrupt::Refuse)).expect("open");
    let mut repaired: Vec<(Uuid, &str)> = store
        .repairs_at_open()
        .iter()
        .map(|r| {
            (
                r.container(),
                match r {
                    Repair::Summary(_) => "summary",
                    Repair::History(_) => "history",
                },
            )
        })
        .collect();
    repaired.sort();
    let mut expected = vec![(behind, "summary"), (ahead, "history"), (orphan, "summary")];
    expected.sort();
    assert_eq!(repaired, expected);
    for (id, h) in [
        (behind, &history[0]),
        (ahead, &history[1]),
        (orphan, &history[2]),
    ] {
        assert_eq!(&store.history(id).expect("history"), h);
        let summary = store.container(id).expect("read").expect("listed");
        assert_eq!(&summary.last, &h[3]);
        assert_eq!(summary.accepted_at_ms, h[0].at_ms);
    }
    assert_eq!(
        store
            .container(orphan)
            .expect("read")
            .expect("listed")
            .task_id,
        "orphan"
    );
    drop(store);
    assert!(
        open(dir.path()).repairs_at_open().is_empty(),
        "repairs are durable"
    );
}

#[tokio::test]
async fn a_corrupt_value_is_quarantined_refused_or_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, history) = {
        let store = open(dir.path());
        let id = launch(&store, "t1").await;
        (id, store.history(id).expect("history"))
    };
    // Flip a byte of the second phase record's payload.
    let mut bytes = codec::encode(&history[1]).expect("encode");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    raw_put(dir.path(), &phase_key(id, history[1].seq), Some(&bytes));

    let err = Store::open(dir.path(), "boot-1", &with(OnCorrupt::Refuse))
        .map(drop)
        .expect_err("strict refuses");
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::Corrupt(ref c) if c.len() == 1),
        "{text}"
    );
    assert!(
        text.contains("checksum") && text.contains(&format!("p/{id}/{}", history[1].seq)),
        "{text}"
    );

    {
        let store =
            Store::open(dir.path(), "boot-1", &with(OnCorrupt::Report)).expect("report opens");
        assert_eq!(store.verify().expect("verify").len(), 1);
        // Reads leave the bad value out instead of failing.
        assert_eq!(
            names(&store.history(id).expect("history")),
            ["Accepted", "Pulling", "ExecutorStarting"]
        );
    }

    let store = open(dir.path());
    assert_eq!(store.corrupt_at_open().len(), 1);
    let quarantined = store.quarantined().expect("quarantine");
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].bytes, bytes, "the raw bytes are kept");
    assert_eq!(quarantined[0].raw_key, phase_key(id, history[1].seq));
    assert!(
        quarantined[0].reason.contains("checksum mismatch"),
        "the reason is kept: {}",
        quarantined[0].reason
    );
    assert!(store.verify().expect("verify").is_empty());
    // Everything else is still there.
    assert_eq!(
        names(&store.history(id).expect("history")),
        ["Accepted", "Pulling", "ExecutorStarting"]
    );
    drop(store);
    // A second quarantine at the same key keeps both.
    raw_put(dir.path(), &phase_key(id, history[1].seq), Some(b"garbage"));
    let store = open(dir.path());
    assert_eq!(store.quarantined().expect("quarantine").len(), 2);
}

#[tokio::test]
async fn a_quarantined_summary_is_rebuilt_from_the_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, summary) = {
        let store = open(dir.path());
        let id = launch(&store, "t1").await;
        (id, store.container(id).expect("read").expect("present"))
    };
    raw_put(dir.path(), &summary_key(id), Some(b"BRTH\x01\x00 torn"));
    let store = open(dir.path());
    assert_eq!(store.corrupt_at_open().len(), 1);
    assert_eq!(store.container(id).expect("read"), Some(summary));
}

#[tokio::test]
async fn a_value_under_the_wrong_key_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = {
        let store = open(dir.path());
        (launch(&store, "a").await, launch(&store, "b").await)
    };
    let store = open(dir.path());
    let b_first = store.history(b).expect("h")[0].clone();
    drop(store);
    // A valid record of `b` copied under a key of `a`: its checksum is fine.
    raw_put(
        dir.path(),
        &phase_key(a, b_first.seq),
        Some(&codec::encode(&b_first).expect("encode")),
    );
    let store = Store::open(dir.path(), "x", &with(OnCorrupt::Report)).expect("report");
    let bad = store.verify().expect("verify");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].reason.contains("not this key's"),
        "{}",
        bad[0].reason
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = open(dir.path()).meta().clone();
    let mut bytes = codec::encode(&meta).expect("encode");
    bytes[4..6].copy_from_slice(&(SCHEMA_VERSION + 1).to_le_bytes());
    raw_put(dir.path(), b"meta", Some(&bytes));
    let err = Store::open(dir.path(), "b", &StoreConfig::default())
        .map(drop)
        .expect_err("newer");
    assert!(
        matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the store at {} has schema version {}, newer than this berth's {}: run a berth at least as new as the one that wrote it",
            dir.path().display(),
            SCHEMA_VERSION + 1,
            SCHEMA_VERSION
        )
    );
}

#[tokio::test]
async fn a_corrupt_agent_record_is_refused_even_when_quarantining() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let store = open(dir.path());
        launch(&store, "t").await
    };
    raw_put(
        dir.path(),
        b"meta",
        Some(b"BRTH\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00x"),
    );
    for mode in [OnCorrupt::Refuse, OnCorrupt::Quarantine] {
        let err = Store::open(dir.path(), "b", &with(mode))
            .map(drop)
            .expect_err("no agent id");
        assert!(
            matches!(err, StoreError::CorruptAgentRecord { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("agent id"), "{err}");
    }
    let store = Store::open(dir.path(), "b", &with(OnCorrupt::Report)).expect("report");
    assert_eq!(store.agent(), None);
    assert_eq!(store.verify().expect("verify")[0].key, "meta");
    assert_eq!(store.history(id).expect("history").len(), 4);
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

    // Someone else's sled databases: data in the default tree, or trees of their own.
    let foreign = tempfile::tempdir().expect("tempdir");
    {
        let db = raw_open(foreign.path());
        db.insert(b"something", b"else").expect("insert");
        db.flush().expect("flush");
    }
    let other = tempfile::tempdir().expect("tempdir");
    {
        let db = raw_open(other.path());
        db.open_tree("users").expect("tree");
        db.flush().expect("flush");
    }
    let records_only = tempfile::tempdir().expect("tempdir");
    raw_put(records_only.path(), b"something", Some(b"else"));
    for d in [&foreign, &other, &records_only] {
        let err = Store::open(d.path(), "b", &StoreConfig::default())
            .map(drop)
            .expect_err("foreign");
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    }
}

/// Another process holding the store's lock: flock(1) running `cat`, which shares the
/// lock and ends when its input does, so that dropping the holder releases the lock and
/// leaves no process behind.
struct Holder(Child);

impl Holder {
    fn lock(db: &Path) -> Holder {
        Holder(
            Command::new("flock")
                .arg("--exclusive")
                .arg(db)
                .arg("cat")
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("run flock(1)"),
        )
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_store_held_by_another_process_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    // flock(1) takes the same kind of lock sled takes, from another process.
    let holder = Holder::lock(&dir.path().join("db"));
    let pid = holder.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match Store::open(dir.path(), "b", &StoreConfig::default()) {
            Err(e) => break e,
            // flock(1) has not taken the lock yet.
            Ok(store) => drop(store),
        }
        assert!(Instant::now() < deadline, "flock(1) never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The shell-less `flock` execs nothing before locking: the holder is flock itself.
    assert!(
        matches!(err, StoreError::Locked { holder: Some(p), .. } if p == pid),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("process {pid}")), "{err}");
    assert!(err.to_string().contains("is the agent running?"), "{err}");
    let unfinished = dir.path().join(UNFINISHED);
    std::fs::write(&unfinished, b"half a snapshot").expect("plant");
    let started = Instant::now();
    let _ = Store::open(dir.path(), "b", &StoreConfig::default()).map(drop);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "another process's lock is reported at once, not waited for"
    );
    assert!(unfinished.exists(), "a held store's snapshots were touched");
}

/// The name of an unfinished sled snapshot, as a crash leaves one: set aside only while
/// nobody holds the store.
const UNFINISHED: &str = "snap.7fffffffffffffff.generating";

/// Set by [`a_store_held_out_of_sight_is_refused_and_its_snapshots_are_untouched`] for
/// the copy of itself it runs in another pid namespace: the store to open, and the file
/// to write the answer to.
const OPEN_IN: &str = "BERTH_STATE_TEST_OPEN_IN";
const ANSWER_TO: &str = "BERTH_STATE_TEST_ANSWER_TO";

#[test]
fn a_store_held_out_of_sight_is_refused_and_its_snapshots_are_untouched() {
    // A process whose `/proc` belongs to another pid namespace does not see the live
    // holder in `/proc/locks` (as on btrfs, where the devices differ): the lock itself
    // must say that the store is held.
    if let (Some(dir), Some(answer)) = (std::env::var_os(OPEN_IN), std::env::var_os(ANSWER_TO)) {
        let dir = Path::new(&dir);
        let seen = berth_state::lock::holder(&dir.join("db"));
        let opened = Store::open(dir, "b", &StoreConfig::default()).map(drop);
        std::fs::write(answer, format!("holder seen: {seen:?}; {opened:?}")).expect("answer");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    let unfinished = dir.path().join(UNFINISHED);
    std::fs::write(&unfinished, b"half a snapshot").expect("plant");
    let db = dir.path().join("db");
    let holder = Holder::lock(&db);
    let pid = holder.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while berth_state::lock::holder(&db) != Some(pid) {
        assert!(Instant::now() < deadline, "flock(1) never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = dir.path().join("answer");
    let copy = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(std::env::current_exe().expect("this test"))
        .args([
            "--exact",
            "a_store_held_out_of_sight_is_refused_and_its_snapshots_are_untouched",
            "--test-threads",
            "1",
        ])
        .env(OPEN_IN, dir.path())
        .env(ANSWER_TO, &answer)
        .output()
        .expect("run unshare(1)");
    assert!(
        copy.status.success(),
        "{}{}",
        String::from_utf8_lossy(&copy.stdout),
        String::from_utf8_lossy(&copy.stderr)
    );
    let said = std::fs::read_to_string(&answer).expect("the copy's answer");
    assert!(said.starts_with("holder seen: None;"), "{said}");
    assert!(said.contains("Err(Locked"), "{said}");
    assert!(
        unfinished.exists(),
        "a store another process holds had its snapshots set aside: {said}"
    );
    // Nobody holds it now: it opens, and its snapshots are set aside.
    drop(holder);
    drop(open(dir.path()));
    assert!(!unfinished.exists());
}

#[tokio::test]
async fn a_lock_kept_by_a_child_of_a_dead_holder_is_waited_out() {
    // An agent killed the instant after it forked (an executor, a `docker` call) leaves
    // its lock to the child until the child's exec closes it: the next start waits.
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    // flock(1) takes the lock and runs the shell with it; the shell leaves it to `sleep`
    // in the background and exits, then flock(1) does: `/proc/locks` names a dead pid.
    let flock = Command::new("flock")
        .arg("--exclusive")
        .arg(dir.path().join("db"))
        .args(["sh", "-c", "sleep 1 &"])
        .status()
        .expect("run flock(1)");
    assert!(flock.success(), "{flock}");
    let held = berth_state::lock::holder(&dir.path().join("db")).expect("the lock lives on");
    assert!(!berth_state::lock::alive(held), "{held}");
    let store = Store::open(dir.path(), "b", &StoreConfig::default())
        .expect("the dead holder's lock is waited out");
    drop(store);
}

#[tokio::test]
async fn a_purge_drops_exactly_the_removed_containers_it_names_and_lasts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (named, unnamed, alive) = {
        let store = open(dir.path());
        let named = launch(&store, "named").await;
        let unnamed = launch(&store, "unnamed").await;
        let alive = launch(&store, "alive").await;
        for id in [named, unnamed] {
            store
                .record_status(StatusRecord {
                    seq: 0,
                    at_ms: 0,
                    container_id: id,
                    report_seq: 1,
                    state: TaskState::Finished,
                    reason: None,
                    message: None,
                    exit_code: Some(0),
                    acknowledged: false,
                })
                .await
                .expect("status");
            for phase in [terminated(), Phase::Removed] {
                store.record_phase(id, phase).await.expect("record");
            }
        }
        // Both removed containers are due by any clock; only the named one may go. A
        // named container that is not removed, and one the store never had, stay as they
        // are.
        let never = Uuid::new_v4();
        assert_eq!(
            store
                .purge(&[named, alive, never, named])
                .await
                .expect("purge"),
            1
        );
        (named, unnamed, alive)
    };
    // Reopened: the purge was durable, and nothing else went with it.
    let store = open(dir.path());
    assert_eq!(store.container(named).expect("read"), None);
    assert!(store.history(named).expect("history").is_empty());
    assert!(store.statuses(named).expect("statuses").is_empty());
    assert_eq!(
        names(&store.history(unnamed).expect("history")).last(),
        Some(&"Removed")
    );
    assert_eq!(store.statuses(unnamed).expect("statuses").len(), 1);
    assert!(store.container(alive).expect("read").is_some());
}

#[tokio::test]
async fn removed_containers_are_dropped_after_the_delay_and_size_stays_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open(dir.path()));
    let keep = launch(&store, "running").await;
    let cycles: usize = std::env::var("BERTH_RETENTION_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // 16 launches at a time, as a busy agent would run them; a purge after every 800.
    let mut sizes = Vec::new();
    // The write-ahead log's part of each size.
    let mut logs = Vec::new();
    let mut done = 0;
    while done < cycles {
        let round = (cycles - done).min(800);
        let mut tasks = Vec::new();
        for lane in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in (lane..round).step_by(16) {
                    let id = launch(&store, &format!("t{i}")).await;
                    store
                        .record_phase(id, terminated())
                        .await
                        .expect("terminated");
                    store
                        .record_phase(id, Phase::Removed)
                        .await
                        .expect("removed");
                }
            }));
        }
        for t in tasks {
            t.await.expect("lane");
        }
        done += round;
        assert_eq!(store.purge(&removed(&store)).await.expect("purge"), round);
        sizes.push((done, store.size_on_disk().expect("size")));
        logs.push(berth_state::wal::size_on_disk(dir.path()).expect("log size"));
    }
    // Only the containers named go: a removed one not named stays, and so does a named
    // one that is not removed.
    let recent = launch(&store, "recent").await;
    store
        .record_phase(recent, Phase::Removed)
        .await
        .expect("removed");
    assert_eq!(store.purge(&[keep]).await.expect("purge"), 0);
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
    let peak = sizes.iter().map(|&(_, s)| s).max().unwrap_or(0);
    println!("retention: {cycles} launch-to-removed cycles; size on disk after each purge: {sizes:?}; peak {peak} bytes; of which the write-ahead log: {logs:?}");
    // Bounded: the last quarter of the run does not need more room than its first quarter
    // needed, give or take sled's 512 KiB segments.
    if sizes.len() >= 8 {
        let early = sizes[sizes.len() / 4].1;
        let late = sizes[sizes.len() - 1].1;
        assert!(
            late <= early * 3 / 2 + 2 * 512 * 1024,
            "size keeps growing with churn: {sizes:?}"
        );
    }
    assert!(peak < 32 * 1024 * 1024, "size on disk grew to {peak} bytes");
    // Checkpoints keep the log to about 4 MiB of batches, and as much again written ahead.
    let log_peak = logs.iter().copied().max().unwrap_or(0);
    assert!(
        log_peak <= 10 * 1024 * 1024,
        "the log grew to {log_peak} bytes"
    );
}

#[tokio::test]
async fn a_task_too_big_for_sleds_log_goes_to_a_blob_and_survives() {
    // sled writes a message over a quarter of a segment (128 KiB) to a file of its own in
    // blobs/; the power-loss flush syncs those too.
    let dir = tempfile::tempdir().expect("tempdir");
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(300 * 1024));
    let id = Uuid::new_v4();
    {
        let store = open(dir.path());
        store
            .record_phase(
                id,
                Phase::Accepted {
                    task_id: "big".into(),
                    task_json: big.clone(),
                    kill_at_ms: None,
                },
            )
            .await
            .expect("a big record is recorded");
        let blobs = std::fs::read_dir(dir.path().join("blobs"))
            .expect("blobs dir")
            .count();
        assert!(blobs > 0, "sled wrote no blob for a 300 KiB value");
    }
    let store = Store::open(dir.path(), "b", &with(OnCorrupt::Refuse)).expect("reopen");
    match &store.history(id).expect("history")[0].phase {
        Phase::Accepted { task_json, .. } => assert_eq!(task_json, &big),
        other => panic!("{other:?}"),
    }
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

#[tokio::test]
async fn a_damaged_byte_in_sleds_log_never_loses_records_silently() {
    // sled treats a damaged log message as the end of its log and drops the rest without
    // a word; the watermark turns that into an error naming the loss.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    let mut ids = Vec::new();
    {
        let store = open(&src);
        for i in 0..40 {
            let id = Uuid::new_v4();
            store
                .record_phase(id, accepted(&format!("t{i}")))
                .await
                .expect("record");
            store
                .record_phase(id, Phase::Fetching)
                .await
                .expect("record");
            ids.push(id);
        }
    }
    let log = std::fs::read(src.join("db")).expect("read log");
    let (mut intact, mut lost, mut refused) = (0, 0, 0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..150 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = (x % log.len() as u64) as usize;
        let copy = dir.path().join(format!("copy-{n}"));
        copy_store(&src, &copy);
        let mut damaged = log.clone();
        damaged[at] ^= 0x5a;
        std::fs::write(copy.join("db"), &damaged).expect("write");
        match Store::open(&copy, "b", &with(OnCorrupt::Refuse)) {
            Ok(store) => {
                for id in &ids {
                    assert_eq!(
                        store.history(*id).map(|h| h.len()).ok(),
                        Some(2),
                        "byte {at} damaged: the store opened without complaint but {id} lost records"
                    );
                }
                intact += 1;
            }
            Err(StoreError::LostRecords { lost: l, .. }) => {
                assert!(l.newest < l.durable);
                lost += 1;
            }
            Err(_) => refused += 1,
        }
    }
    println!("150 damaged bytes: {intact} harmless, {lost} detected as lost records, {refused} refused otherwise");
    assert!(
        lost > 0,
        "no damage was ever detected as a loss: the test does not test"
    );
}

#[tokio::test]
async fn lost_records_are_refused_by_strict_and_reported_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let store = open(dir.path());
        launch(&store, "t").await
    };
    // As if sled had dropped the tail of its log: the newest record is gone.
    let history = open(dir.path()).history(id).expect("history");
    raw_put(dir.path(), &phase_key(id, history[3].seq), None);
    let summary = Summary {
        container_id: id,
        task_id: "t".into(),
        last: history[2].clone(),
        accepted_at_ms: history[0].at_ms,
    };
    raw_put(
        dir.path(),
        &summary_key(id),
        Some(&codec::encode(&summary).expect("encode")),
    );
    let err = Store::open(dir.path(), "b", &with(OnCorrupt::Refuse))
        .map(drop)
        .expect_err("strict refuses");
    assert!(
        matches!(err, StoreError::LostRecords { lost, .. } if lost.newest == history[2].seq && lost.durable == history[3].seq),
        "{err}"
    );
    assert!(err.to_string().contains("--strict=false"), "{err}");
    let report = Store::open(dir.path(), "b", &with(OnCorrupt::Report)).expect("report");
    assert!(report.lost_at_open().is_some());
    drop(report);
    let store = open(dir.path());
    assert!(store.lost_at_open().is_some(), "reported once");
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.lost_at_open(), None, "and accepted after");
    // The lost record's seq stays taken, even after a start that found no loss.
    let next = store.record_phase(id, terminated()).await.expect("record");
    assert!(
        next.seq > history[3].seq,
        "seq {} handed out again after it was lost",
        next.seq
    );
}

#[tokio::test]
async fn acknowledgements_and_purges_move_the_watermark_without_false_alarms() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        let id = launch(&store, "t").await;
        let status = store
            .record_status(StatusRecord {
                seq: 0,
                at_ms: 0,
                container_id: id,
                report_seq: 1,
                state: TaskState::Finished,
                reason: None,
                message: None,
                exit_code: Some(0),
                acknowledged: false,
            })
            .await
            .expect("status");
        store.acknowledge(id, status.seq).await.expect("ack");
        store
            .record_phase(id, terminated())
            .await
            .expect("terminated");
        store
            .record_phase(id, Phase::Removed)
            .await
            .expect("removed");
        assert_eq!(store.purge(&[id]).await.expect("purge"), 1);
    }
    let store = Store::open(dir.path(), "b", &with(OnCorrupt::Refuse)).expect("no false alarm");
    assert!(store.containers().expect("list").is_empty());
}

#[tokio::test]
async fn broken_sled_snapshots_left_by_a_crash_are_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let store = open(dir.path());
        launch(&store, "t").await
    };
    // What a kill during sled's snapshot write leaves: an unfinished `.generating` file
    // that sorts after every real snapshot, which sled 0.34.7 would read and refuse.
    std::fs::write(
        dir.path().join("snap.FFFFFFFFFFFFFFFF.generating"),
        b"half a snapshot",
    )
    .expect("write");
    // And a real snapshot torn.
    let snapshot = std::fs::read_dir(dir.path())
        .expect("read")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("snap.")
                    && !n.to_string_lossy().ends_with(".generating")
            })
        });
    if let Some(path) = &snapshot {
        let bytes = std::fs::read(path).expect("read");
        std::fs::write(path, &bytes[..bytes.len() / 2]).expect("tear");
    }
    let store = Store::open(dir.path(), "b", &with(OnCorrupt::Refuse)).expect("opens");
    let notes = store.notes_at_open().join("\n");
    assert!(notes.contains("left unfinished by a crash"), "{notes}");
    assert_eq!(
        notes.contains("fails its checksum"),
        snapshot.is_some(),
        "{notes}"
    );
    assert_eq!(names(&store.history(id).expect("history")).len(), 4);
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().expect("type").is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read file"),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn offline_inspection_works_on_a_copy_and_leaves_the_evidence_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        for i in 0..10 {
            launch(&store, &format!("t{i}")).await;
        }
    }
    // A damaged byte: opened in place, sled would zero the rest of its log.
    let mut log = std::fs::read(dir.path().join("db")).expect("read");
    let at = log.len() / 3;
    log[at] ^= 0x5a;
    std::fs::write(dir.path().join("db"), &log).expect("write");
    let before = files_of(dir.path());
    {
        let inspection = berth_state::offline::Inspection::open(dir.path()).expect("inspect");
        assert!(inspection.store().lost_at_open().is_some());
        assert!(inspection.store().path() != dir.path());
    }
    assert_eq!(files_of(dir.path()), before, "the original is untouched");
    let err = Store::open(dir.path(), "b", &with(OnCorrupt::Refuse))
        .map(drop)
        .expect_err("the agent refuses");
    assert!(matches!(err, StoreError::LostRecords { .. }), "{err}");

    // Held by another process: not even copied.
    let holder = Holder::lock(&dir.path().join("db"));
    let pid = holder.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match berth_state::offline::Inspection::open(dir.path()) {
            Err(StoreError::Locked { holder, path }) => {
                assert_eq!((holder, path.as_path()), (Some(pid), dir.path()));
                break;
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "flock(1) never took the lock: {:?}",
                    other.err()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn sleds_own_corruption_reads_as_a_damaged_store_not_as_a_failed_io() {
    // What an operator reads after a damaged byte (found by a long `berth chaos`
    // campaign, which saw "is not a berth store" and "store I/O failed" for it).
    let damaged = StoreError::Sled(sled::Error::Corruption { at: None, bt: () }).to_string();
    assert!(damaged.starts_with("the store is damaged"), "{damaged}");
    assert!(damaged.contains("A damaged store"), "{damaged}");
    let io = StoreError::Sled(sled::Error::Io(std::io::Error::other("EIO"))).to_string();
    assert!(io.starts_with("store I/O failed"), "{io}");
    let at_open = StoreError::Damaged {
        path: "/w/state".into(),
        why: "Read corrupted data at file offset None".into(),
    }
    .to_string();
    assert!(
        at_open.starts_with("the store at /w/state is damaged"),
        "{at_open}"
    );
    assert!(!at_open.contains("not a berth store"), "{at_open}");
}

/// sled writes `conf` (and makes `blobs`) before `db` on a first start: a SIGKILL in
/// between leaves a directory that holds no record, which the next start makes again
/// (the crash torture found an agent that could never start again after such a kill).
/// Anything more than that is still not taken for a store.
#[tokio::test]
async fn a_first_start_cut_short_before_the_database_is_made_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conf"), "segment_size: 5").expect("write");
    std::fs::create_dir(dir.path().join("blobs")).expect("mkdir");
    let store = Store::open(dir.path(), "b", &StoreConfig::default()).expect("made again");
    assert!(!store.meta().agent_id.is_nil());
    drop(store);

    let more = tempfile::tempdir().expect("tempdir");
    std::fs::write(more.path().join("conf"), "segment_size: 5").expect("write");
    std::fs::write(more.path().join("notes.txt"), "hello").expect("write");
    let err = Store::open(more.path(), "b", &StoreConfig::default())
        .map(drop)
        .expect_err("not only what a cut-short creation leaves");
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(more.path().join("conf").exists(), "nothing was touched");
}

//! Crash torture: a child writes phase records and status updates as fast as it can and
//! prints each one's sequence number once the call has returned (the record is durable).
//! The parent SIGKILLs it at random moments; after every kill the store must open with
//! `--strict` (no value may fail to decode), and every record the child acknowledged must
//! be there, intact: the same seq, the same container, the same phase.
//!
//! `BERTH_TORTURE_KILLS` sets the number of kills (default 200); `BERTH_TORTURE_SEED`
//! replays a campaign (the seed is printed at the start).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_chaos::jitter::Jitter;
use berth_chaos::kill_loop::run_round;
use berth_state::{Identity, OnCorrupt, Phase, StatusRecord, Store, StoreConfig, TaskState};
use uuid::Uuid;

const CHILD_DIR: &str = "BERTH_TORTURE_CHILD_DIR";
/// Phases each container of the child goes through, in order.
const PHASES: usize = 5;
/// Kills against one store before the next round starts a fresh one.
const ROUNDS_PER_STORE: usize = 25;

/// The `index`th phase of container `id`: derived from both, so the parent knows exactly
/// what each acknowledged record must hold.
fn expected(id: Uuid, index: usize) -> Phase {
    let n = id.as_u128();
    match index {
        0 => Phase::Accepted {
            task_id: format!("task-{id}"),
            task_json: format!(
                r#"{{"task_id":{{"value":"task-{id}"}},"pad":"{}"}}"#,
                "x".repeat(n as usize % 300)
            ),
            kill_at_ms: Some(n as u64 >> 20),
        },
        1 => Phase::Fetching,
        2 => Phase::Pulling {
            image: format!("registry.local/img-{}:latest", n % 1000),
        },
        3 => Phase::ExecutorStarting {
            identity: Identity {
                boot_id: "torture-boot".into(),
                pid: (n % 4_000_000) as u32,
                start_ticks: (n >> 64) as u64,
            },
        },
        _ => Phase::Running {
            container: format!("mesos-torture.{id}"),
            pid: Some((n % 65_536) as u32),
        },
    }
}

/// The writer. Run only as the parent's child (it is `#[ignore]`d for ordinary runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the torture test's child; started by crash_torture"]
async fn torture_writer_child() {
    let dir = std::env::var(CHILD_DIR).expect("started by crash_torture");
    let started = std::time::Instant::now();
    let store = Store::open(Path::new(&dir), "torture", &StoreConfig::default()).expect("open");
    println!("\nopen {}", started.elapsed().as_millis());
    let store = std::sync::Arc::new(store);
    // Several writers at once, so that group commit is under test too.
    let mut writers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            loop {
                let id = Uuid::new_v4();
                for index in 0..PHASES {
                    let record = store
                        .record_phase(id, expected(id, index))
                        .await
                        .expect("record");
                    println!("phase {id} {} {index}", record.seq);
                }
                let status = store
                    .record_status(StatusRecord {
                        seq: 0,
                        at_ms: 0,
                        container_id: id,
                        report_seq: 1,
                        state: TaskState::Running,
                        reason: None,
                        message: Some(format!("status of {id}")),
                        exit_code: None,
                        acknowledged: false,
                    })
                    .await
                    .expect("status");
                println!("status {id} {}", status.seq);
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
}

/// What the child acknowledged.
#[derive(Default)]
struct Acked {
    phases: BTreeMap<Uuid, BTreeMap<u64, usize>>,
    statuses: BTreeMap<Uuid, BTreeSet<u64>>,
    /// The newest seq acknowledged so far, and as of the start of the current round.
    newest: Option<u64>,
    newest_before_round: Option<u64>,
}

impl Acked {
    fn start_round(&mut self) {
        self.newest_before_round = self.newest;
    }

    /// Takes one line of the child; returns the container it acknowledged something of.
    fn take(&mut self, line: &str) -> Option<Uuid> {
        let fields: Vec<&str> = line.split(' ').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or_default();
        let id: Uuid = field(1).parse().ok()?;
        let seq: u64 = field(2).parse().ok()?;
        // A seq handed out again after a restart would overwrite a record of the same
        // container: each run must go on past every seq acknowledged before it.
        if let Some(before) = self.newest_before_round {
            assert!(
                seq > before,
                "seq {seq} acknowledged after a restart, but seq {before} was acknowledged before it"
            );
        }
        self.newest = self.newest.max(Some(seq));
        match field(0) {
            "phase" => {
                let index: usize = field(3).parse().ok()?;
                self.phases.entry(id).or_default().insert(seq, index);
            }
            "status" => {
                self.statuses.entry(id).or_default().insert(seq);
            }
            _ => return None,
        }
        Some(id)
    }

    /// Checks every acknowledged record of `ids` against the store.
    fn check<'a>(&self, store: &Store, ids: impl Iterator<Item = &'a Uuid>, context: &str) {
        for id in ids {
            let history: BTreeMap<u64, Phase> = store
                .history(*id)
                .expect("history")
                .into_iter()
                .map(|r| {
                    assert_eq!(r.container_id, *id, "{context}");
                    (r.seq, r.phase)
                })
                .collect();
            for (seq, index) in self.phases.get(id).into_iter().flatten() {
                match history.get(seq) {
                    Some(phase) => assert_eq!(
                        phase,
                        &expected(*id, *index),
                        "{context}: acknowledged record {id}/{seq} changed"
                    ),
                    None => panic!("{context}: acknowledged record {id}/{seq} is missing"),
                }
            }
            if let Some(seqs) = self.statuses.get(id) {
                let stored: BTreeSet<u64> = store
                    .statuses(*id)
                    .expect("statuses")
                    .into_iter()
                    .filter(|s| s.message.as_deref() == Some(&format!("status of {id}")))
                    .map(|s| s.seq)
                    .collect();
                assert!(
                    seqs.is_subset(&stored),
                    "{context}: acknowledged status updates of {id} missing: {:?}",
                    seqs.difference(&stored).collect::<Vec<_>>()
                );
            }
            if history.is_empty() {
                continue;
            }
            // The summary agrees with the history (opening repairs a torn pair).
            let summary = store.container(*id).expect("summary").unwrap_or_else(|| {
                panic!("{context}: container {id} has a history but is not listed")
            });
            assert_eq!(
                Some(&summary.last.seq),
                history.keys().next_back(),
                "{context}: summary of {id} is not its newest phase"
            );
        }
    }
}

/// Copies a store that failed to open to /tmp, where a person can look at it.
fn keep_for_post_mortem(dir: &Path, seed: u64, round: usize) -> String {
    let to = std::env::temp_dir().join(format!("berth-torture-{seed}-round-{round}"));
    let _ = std::fs::create_dir_all(&to);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
        }
    }
    to.display().to_string()
}

#[test]
fn crash_torture() {
    let kills: usize = std::env::var("BERTH_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed = std::env::var("BERTH_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(Jitter::seed_from_clock);
    println!("crash torture: {kills} kills, seed {seed} (BERTH_TORTURE_SEED={seed} replays it)");
    let mut jitter = Jitter::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store_dir = dir.path().join("state-0");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked = Acked::default();
    let mut containers = 0;
    let (mut records, mut before_open, mut repaired) = (0usize, 0usize, 0usize);
    let (mut set_aside, mut torn_tails, mut replayed) = (0usize, 0usize, 0usize);
    let mut open_ms = Vec::new();
    let strict = StoreConfig {
        on_corrupt: OnCorrupt::Refuse,
        ..StoreConfig::default()
    };
    for round_no in 0..kills {
        // A fresh store every 25 kills keeps opening (which checks every value) short.
        if round_no > 0 && round_no % ROUNDS_PER_STORE == 0 {
            containers += acked.phases.len();
            acked = Acked::default();
            store_dir = dir.path().join(format!("state-{round_no}"));
        }
        // Opening takes the (debug-built) child about 100 ms: it checks every value and
        // repairs what the previous kill tore. One round in four kills it then; the others
        // mostly while it writes.
        let delay = if jitter.next_u64() % 4 == 0 {
            jitter.between(Duration::from_millis(1), Duration::from_millis(120))
        } else {
            jitter.between(Duration::from_millis(120), Duration::from_millis(300))
        };
        let round = run_round(
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "torture_writer_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, &store_dir)
                .env("RUST_BACKTRACE", "0"),
            delay,
        )
        .expect("run child");
        let context = format!("round {round_no} (seed {seed}, kill after {delay:?})");
        assert!(
            round.killed,
            "{context}: the writer exited by itself ({:?}): {:?}",
            round.status,
            round.lines.iter().rev().take(5).collect::<Vec<_>>()
        );
        assert!(round.complete, "{context}: the writer's pipe stayed open");
        match round.lines.iter().find_map(|l| l.strip_prefix("open ")) {
            Some(ms) => open_ms.push(ms.parse::<u64>().unwrap_or(u64::MAX)),
            None => before_open += 1,
        }
        acked.start_round();
        let touched: BTreeSet<Uuid> = round.lines.iter().filter_map(|l| acked.take(l)).collect();
        records += round
            .lines
            .iter()
            .filter(|l| l.starts_with("phase ") || l.starts_with("status "))
            .count();

        // What the log holds past the last checkpoint: what opening replays.
        replayed += berth_state::wal::Recovery::read(&store_dir)
            .map(|r| r.entries.len())
            .unwrap_or(0);
        let store = match Store::open(&store_dir, "check", &strict) {
            Ok(store) => store,
            Err(e) => {
                let kept = keep_for_post_mortem(&store_dir, seed, round_no);
                panic!("{context}: the store does not open after a SIGKILL: {e} (store kept in {kept})")
            }
        };
        for note in store.notes_at_open() {
            if note.contains("snapshot") {
                set_aside += 1;
            } else if note.contains("cut short") {
                torn_tails += 1;
            } else {
                panic!("{context}: unexpected note at open: {note}");
            }
        }
        repaired += store.repairs_at_open().len();
        assert!(store.verify().expect("verify").is_empty(), "{context}");
        if round_no % 25 == 24
            || round_no % ROUNDS_PER_STORE == ROUNDS_PER_STORE - 1
            || round_no + 1 == kills
        {
            acked.check(&store, acked.phases.keys(), &context);
        } else {
            acked.check(&store, touched.iter(), &context);
        }
    }
    open_ms.sort_unstable();
    println!(
        "crash torture: the child's Store::open took {} ms at the median, {} ms at most",
        open_ms.get(open_ms.len() / 2).copied().unwrap_or_default(),
        open_ms.last().copied().unwrap_or_default()
    );
    println!(
        "crash torture: {kills} SIGKILLs ({before_open} before the store was open), \
         {records} acknowledged records of {} containers, none lost or changed; \
         {replayed} entries replayed from the write-ahead log; \
         the store opened every time; {repaired} torn phase pair(s) repaired, \
         {torn_tails} torn last batch(es) of the write-ahead log ignored and \
         {set_aside} broken sled snapshot(s) set aside at open",
        containers + acked.phases.len()
    );
    assert!(records > 0, "the writer never acknowledged a record");
}

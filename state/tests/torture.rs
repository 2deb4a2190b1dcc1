//! Crash torture: a child writes phase records as fast as it can and prints each one's
//! sequence number once `record_phase` has returned (the record is durable). The parent
//! SIGKILLs it at random moments; after every kill the store must open, every record must
//! decode, and every record the child acknowledged must be there, intact.
//!
//! `BERTH_TORTURE_KILLS` sets the number of kills (default 200); `BERTH_TORTURE_SEED`
//! replays a campaign.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_chaos::jitter::Jitter;
use berth_chaos::kill_loop::run_round;
use berth_state::{OnCorrupt, Phase, Store, StoreConfig};
use uuid::Uuid;

const CHILD_DIR: &str = "BERTH_TORTURE_CHILD_DIR";

/// The writer. Run only as the parent's child (it is `#[ignore]`d for ordinary runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the torture test's child; started by crash_torture"]
async fn torture_writer_child() {
    let dir = std::env::var(CHILD_DIR).expect("started by crash_torture");
    let store = Store::open(Path::new(&dir), "torture", &StoreConfig::default()).expect("open");
    let store = std::sync::Arc::new(store);
    // A few writers at once, so that group commit is under test too.
    let mut writers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            loop {
                let id = Uuid::new_v4();
                let phases = [
                    Phase::Accepted {
                        task_id: format!("task-{id}"),
                        task_json: "{}".repeat(50),
                        kill_at_ms: Some(1),
                    },
                    Phase::Fetching,
                    Phase::Pulling {
                        image: "busybox".into(),
                    },
                ];
                for phase in phases {
                    let record = store.record_phase(id, phase).await.expect("record");
                    println!("ack {id} {}", record.seq);
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
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
    println!("crash torture: {kills} kills, seed {seed}");
    let mut jitter = Jitter::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("state");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked: BTreeMap<Uuid, Vec<u64>> = BTreeMap::new();
    let mut total_acked = 0usize;
    let mut killed_rounds = 0usize;
    let strict = StoreConfig {
        on_corrupt: OnCorrupt::Refuse,
        ..StoreConfig::default()
    };
    for round_no in 0..kills {
        let delay = jitter.between(Duration::from_millis(5), Duration::from_millis(150));
        let round = run_round(
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "torture_writer_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, &store_dir),
            delay,
        )
        .expect("run child");
        if round.killed {
            killed_rounds += 1;
        } else {
            panic!(
                "round {round_no}: the writer exited by itself ({:?}): {:?}",
                round.status, round.lines
            );
        }
        for line in &round.lines {
            let Some(rest) = line.strip_prefix("ack ") else {
                continue;
            };
            let mut parts = rest.split(' ');
            let id: Uuid = parts.next().and_then(|s| s.parse().ok()).expect("uuid");
            let seq: u64 = parts.next().and_then(|s| s.parse().ok()).expect("seq");
            acked.entry(id).or_default().push(seq);
            total_acked += 1;
        }
        // The store must open, every value must decode, every acknowledged record must be
        // there.
        let store = Store::open(&store_dir, "check", &strict).unwrap_or_else(|e| {
            panic!("round {round_no} (seed {seed}, delay {delay:?}): the store does not open: {e}")
        });
        assert!(store.verify().expect("verify").is_empty());
        if round_no % 20 == 19 || round_no == kills - 1 {
            for (id, seqs) in &acked {
                let history = store.history(*id).expect("history");
                for seq in seqs {
                    assert!(
                        history
                            .iter()
                            .any(|r| r.seq == *seq && r.container_id == *id),
                        "round {round_no} (seed {seed}): acknowledged record {id}/{seq} is missing"
                    );
                }
            }
        } else {
            // Cheaper check every round: the newest acknowledgements of this round.
            for line in round.lines.iter().rev().take(8) {
                let Some(rest) = line.strip_prefix("ack ") else {
                    continue;
                };
                let mut parts = rest.split(' ');
                let id: Uuid = parts.next().and_then(|s| s.parse().ok()).expect("uuid");
                let seq: u64 = parts.next().and_then(|s| s.parse().ok()).expect("seq");
                let history = store.history(id).expect("history");
                assert!(
                    history.iter().any(|r| r.seq == seq),
                    "round {round_no} (seed {seed}, delay {delay:?}): acknowledged record {id}/{seq} is missing"
                );
            }
        }
    }
    println!(
        "crash torture: {killed_rounds} kills, {total_acked} acknowledged records, {} containers, none lost",
        acked.len()
    );
    assert!(total_acked > 0, "the writer never acknowledged a record");
}

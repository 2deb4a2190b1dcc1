//! `cargo bench --bench store`: durable phase records per second and latency, beside the
//! disk's own limits measured on the same directory in the same run.
//!
//! - raw append + fsync: one 128-byte append and `fdatasync` per record, one at a time:
//!   the disk's limit for one-at-a-time durability.
//! - Mesos's way: temp file + fsync + rename + fsync of the directory per checkpoint.
//! - berth with 1, 8 and 64 concurrent writers, each record returned only once durable.
//!
//! `BERTH_BENCH_DIR` chooses the directory (default: a temporary one under the current
//! directory, so that it is on the disk the work dir would be on).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_state::{Phase, Store, StoreConfig};
use uuid::Uuid;

/// Each measurement runs about this long.
const RUN_FOR: Duration = Duration::from_secs(3);

struct Row {
    name: String,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    }
}

fn raw_fsync(dir: &Path) -> Row {
    let path = dir.join("raw.log");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open raw log");
    let record = [0x5au8; 128];
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < RUN_FOR {
        let t = Instant::now();
        file.write_all(&record).expect("append");
        file.sync_data().expect("fdatasync");
        latencies.push(t.elapsed());
    }
    Row {
        name: "raw append + fdatasync (1 at a time)".into(),
        ops: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

fn mesos_way(dir: &Path) -> Row {
    let target = dir.join("task.updates");
    let temp = dir.join("task.updates.tmp");
    let dir_handle = File::open(dir).expect("open dir");
    let record = [0x5au8; 128];
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < RUN_FOR {
        let t = Instant::now();
        let mut f = File::create(&temp).expect("create temp");
        f.write_all(&record).expect("write");
        f.sync_all().expect("fsync file");
        std::fs::rename(&temp, &target).expect("rename");
        dir_handle.sync_all().expect("fsync dir");
        latencies.push(t.elapsed());
    }
    Row {
        name: "Mesos: temp + fsync + rename + fsync dir".into(),
        ops: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

async fn berth(store: Arc<Store>, writers: usize) -> Row {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while start.elapsed() < RUN_FOR {
                let t = Instant::now();
                store
                    .record_phase(
                        Uuid::now_v7(),
                        Phase::Accepted {
                            task_id: "bench".into(),
                            task_json: "{}".into(),
                            kill_at_ms: None,
                        },
                    )
                    .await
                    .expect("record");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("writer"));
    }
    Row {
        name: format!("berth record_phase, {writers} writer(s)"),
        ops: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let base = std::env::var_os("BERTH_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("cwd"));
    let dir = tempfile::tempdir_in(&base).expect("bench dir");
    println!(
        "store benchmark in {} ({} s per row)\n",
        dir.path().display(),
        RUN_FOR.as_secs()
    );

    let raw = raw_fsync(dir.path());
    let mesos = mesos_way(dir.path());
    let store = Arc::new(
        Store::open(&dir.path().join("state"), "bench", &StoreConfig::default())
            .expect("open store"),
    );
    let mut per_flush = Vec::new();
    let mut rows = Vec::new();
    for writers in [1, 8, 64] {
        let before = store.flush_count();
        let row = berth(store.clone(), writers).await;
        per_flush.push((
            writers,
            row.ops as f64 / (store.flush_count() - before).max(1) as f64,
        ));
        rows.push(row);
    }
    let (one, eight, sixty_four) = (&rows[0], &rows[1], &rows[2]);

    println!(
        "{:<44} {:>12} {:>10} {:>10}",
        "what", "records/s", "p50 ms", "p99 ms"
    );
    for row in [&raw, &mesos, one, eight, sixty_four] {
        println!(
            "{:<44} {:>12.0} {:>10} {:>10}",
            row.name,
            row.rate(),
            ms(row.percentile(0.5)),
            ms(row.percentile(0.99))
        );
    }
    for (writers, ratio) in per_flush {
        println!("berth, {writers} writer(s): {ratio:.1} records per flush");
    }
    println!("\n{:<52} {:>8} {:>8}", "ratio", "got", "goal");
    let ratios = [
        (
            "1 writer / raw append + fdatasync",
            one.rate() / raw.rate(),
            0.5,
        ),
        (
            "64 writers / 1 writer",
            sixty_four.rate() / one.rate(),
            10.0,
        ),
        ("1 writer / Mesos way", one.rate() / mesos.rate(), 2.0),
        (
            "64 writers / Mesos way",
            sixty_four.rate() / mesos.rate(),
            2.0,
        ),
    ];
    for (what, got, goal) in ratios {
        let mark = if got >= goal { "" } else { "  (below goal)" };
        println!("{what:<52} {got:>7.2}x {goal:>7.1}x{mark}");
    }
    println!(
        "\nnote: sled's flush makes a record survive a crash of the process; on Linux it \
         does not fsync, so it does not promise survival of a power loss (docs/state-format.md)"
    );
}

//! `cargo bench --bench store`: durable phase records per second and latency, beside the
//! disk's own limits measured on the same directory in the same run.
//!
//! - raw append + fdatasync: one 128-byte append and `fdatasync` per record, one at a
//!   time: the disk's limit for one-at-a-time durability (the baseline of the goals).
//! - raw overwrite + fdatasync: the same into space written with zeros beforehand, as
//!   berth's write-ahead log does: no journal commit for a new size, so the disk's limit
//!   for what berth does is this one.
//! - Mesos's way: temp file + fsync + rename + fsync of the directory per checkpoint.
//! - berth with 1, 8 and 64 concurrent writers, each record returned only once durable,
//!   with the default durability (append to berth's write-ahead log + `fdatasync`,
//!   survives a power loss) and, for comparison, the append alone (survives a crash of
//!   the process only). Checkpoints (sled's files made durable, every 500 ms while
//!   records come) run inside the rows, as they do in a running agent.
//!
//! Each berth writer takes containers through a whole launch (Accepted, Fetching,
//! Pulling, ExecutorStarting, Running, Terminated, Removed), one durable record per phase.
//!
//! Rows run in interleaved rounds (default 3 rounds of 2 s per row) so that the disk
//! traffic of anything else on the machine hits every row alike; each row reports its
//! median rate and the range. `BERTH_BENCH_DIR` chooses the directory (default: cargo's
//! temporary directory under the target directory, on the disk the build is on);
//! `BERTH_BENCH_ROUNDS` and `BERTH_BENCH_MS` the rounds and the milliseconds per row.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_state::{Durability, Identity, Phase, Store, StoreConfig, TaskState};
use uuid::Uuid;

struct Row {
    name: String,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    per_flush: Option<f64>,
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

fn raw_fsync(dir: &Path, run_for: Duration) -> Row {
    let path = dir.join("raw.log");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open raw log");
    let record = [0x5au8; 128];
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < run_for {
        let t = Instant::now();
        file.write_all(&record).expect("append");
        file.sync_data().expect("fdatasync");
        latencies.push(t.elapsed());
    }
    Row {
        name: "raw append + fdatasync, 1 at a time".into(),
        ops: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
        per_flush: None,
    }
}

fn raw_overwrite(dir: &Path, run_for: Duration) -> Row {
    use std::os::unix::fs::FileExt;
    const SPACE: u64 = 16 * 1024 * 1024;
    let file = File::create(dir.join("raw.overwrite")).expect("create raw file");
    file.write_all_at(&vec![0u8; SPACE as usize], 0)
        .expect("write ahead");
    file.sync_all().expect("fsync");
    let record = [0x5au8; 128];
    let mut latencies = Vec::new();
    let mut at = 0;
    let start = Instant::now();
    while start.elapsed() < run_for {
        let t = Instant::now();
        file.write_all_at(&record, at).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.push(t.elapsed());
        at = (at + record.len() as u64) % SPACE;
    }
    Row {
        name: "raw overwrite + fdatasync, 1 at a time".into(),
        ops: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
        per_flush: None,
    }
}

fn mesos_way(dir: &Path, run_for: Duration) -> Row {
    let target = dir.join("task.updates");
    let temp = dir.join("task.updates.tmp");
    let dir_handle = File::open(dir).expect("open dir");
    let record = [0x5au8; 128];
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < run_for {
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
        per_flush: None,
    }
}

fn launch_phases(id: Uuid) -> [Phase; 7] {
    [
        Phase::Accepted {
            task_id: format!("bench-{id}"),
            task_json:
                r#"{"name":"bench","task_id":{"value":"bench"},"command":{"value":"sleep 1"}}"#
                    .into(),
            kill_at_ms: None,
        },
        Phase::Fetching,
        Phase::Pulling {
            image: "busybox:latest".into(),
        },
        Phase::ExecutorStarting {
            identity: Identity {
                boot_id: "bench".into(),
                pid: 4242,
                start_ticks: 123_456,
            },
        },
        Phase::Running {
            container: format!("mesos-bench.{id}"),
            pid: Some(4343),
        },
        Phase::Terminated {
            state: TaskState::Finished,
            reason: "REASON_COMMAND_EXITED".into(),
            message: "exited with status 0".into(),
            exit_code: Some(0),
            remove_at_ms: 0,
        },
        Phase::Removed,
    ]
}

async fn berth(store: Arc<Store>, writers: usize, label: &str, run_for: Duration) -> Row {
    let before = store.flush_count();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            'run: loop {
                let id = Uuid::new_v4();
                for phase in launch_phases(id) {
                    if start.elapsed() >= run_for {
                        break 'run;
                    }
                    let t = Instant::now();
                    store.record_phase(id, phase).await.expect("record");
                    latencies.push(t.elapsed());
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("writer"));
    }
    let flushes = (store.flush_count() - before).max(1);
    Row {
        name: format!("berth {label}, {writers} writer(s)"),
        ops: latencies.len(),
        elapsed: start.elapsed(),
        per_flush: Some(latencies.len() as f64 / flushes as f64),
        latencies,
    }
}

/// Lets the writeback of the previous row finish, and the checkpoint its records made due
/// run, so that no row pays for another's.
fn settle() {
    let checkpoint = StoreConfig::default().checkpoint_every_ms;
    std::thread::sleep(Duration::from_millis(checkpoint + 100));
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(300));
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Rows measured again and again, interleaved, so that a burst of someone else's disk
/// traffic hits every row alike; each row reports its median rate.
#[derive(Default)]
struct Series {
    runs: Vec<Row>,
}

impl Series {
    fn name(&self) -> &str {
        self.runs.first().map_or("", |r| r.name.as_str())
    }

    fn rate(&self) -> f64 {
        let mut rates: Vec<f64> = self.runs.iter().map(Row::rate).collect();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied().unwrap_or_default()
    }

    fn range(&self) -> String {
        let rates = self.runs.iter().map(Row::rate);
        let min = rates.clone().fold(f64::INFINITY, f64::min);
        let max = rates.fold(0.0, f64::max);
        format!("{min:.0}-{max:.0}")
    }

    fn pooled(&self) -> Row {
        Row {
            name: self.name().to_owned(),
            ops: self.runs.iter().map(|r| r.ops).sum(),
            elapsed: self.runs.iter().map(|r| r.elapsed).sum(),
            latencies: self
                .runs
                .iter()
                .flat_map(|r| r.latencies.iter().copied())
                .collect(),
            per_flush: None,
        }
    }

    fn per_flush(&self) -> Option<f64> {
        let p: Vec<f64> = self.runs.iter().filter_map(|r| r.per_flush).collect();
        (!p.is_empty()).then(|| p.iter().sum::<f64>() / p.len() as f64)
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let base = std::env::var_os("BERTH_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_TARGET_TMPDIR").into());
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let run_for = Duration::from_millis(env("BERTH_BENCH_MS", 2000));
    let rounds = env("BERTH_BENCH_ROUNDS", 3);
    std::fs::create_dir_all(&base).expect("bench base dir");
    let dir = tempfile::tempdir_in(&base).expect("bench dir");
    println!(
        "store benchmark in {}: {rounds} interleaved rounds of {} ms per row\n",
        dir.path().display(),
        run_for.as_millis()
    );

    let durabilities = [
        ("(WAL + fdatasync)", Durability::PowerLoss),
        ("(WAL, no sync)", Durability::ProcessCrash),
    ];
    let mut stores = Vec::new();
    for (label, durability) in durabilities {
        let config = StoreConfig {
            durability,
            ..StoreConfig::default()
        };
        let path = dir.path().join(format!("state-{durability:?}"));
        let store = Arc::new(Store::open(&path, "bench", &config).expect("open store"));
        stores.push((label, store));
    }
    let (mut raw, mut overwrite, mut mesos) =
        (Series::default(), Series::default(), Series::default());
    let mut berth_rows: Vec<Series> = (0..6).map(|_| Series::default()).collect();
    for _ in 0..rounds {
        settle();
        raw.runs.push(raw_fsync(dir.path(), run_for));
        settle();
        overwrite.runs.push(raw_overwrite(dir.path(), run_for));
        settle();
        mesos.runs.push(mesos_way(dir.path(), run_for));
        for (i, (label, store)) in stores.iter().enumerate() {
            for (j, writers) in [1, 8, 64].into_iter().enumerate() {
                settle();
                let row = berth(store.clone(), writers, label, run_for).await;
                berth_rows[i * 3 + j].runs.push(row);
                // Keep the store the size a running agent's is: purge removed containers.
                let removed: Vec<Uuid> = store
                    .containers()
                    .expect("list containers")
                    .into_iter()
                    .filter(|s| s.last.phase == Phase::Removed)
                    .map(|s| s.container_id)
                    .collect();
                store
                    .purge(&removed)
                    .await
                    .expect("purge removed containers");
            }
        }
    }

    println!(
        "{:<42} {:>10} {:>13} {:>8} {:>8} {:>9}",
        "what", "records/s", "(range)", "p50 ms", "p99 ms", "per flush"
    );
    for series in [&raw, &overwrite, &mesos].into_iter().chain(&berth_rows) {
        let pooled = series.pooled();
        println!(
            "{:<42} {:>10.0} {:>13} {:>8} {:>8} {:>9}",
            series.name(),
            series.rate(),
            series.range(),
            ms(pooled.percentile(0.5)),
            ms(pooled.percentile(0.99)),
            series
                .per_flush()
                .map_or(String::new(), |p| format!("{p:.1}"))
        );
    }
    for (i, (label, _)) in durabilities.iter().enumerate() {
        let (one, sixty_four) = (&berth_rows[i * 3], &berth_rows[i * 3 + 2]);
        println!("\nratios of medians, berth {label:<20} got    goal");
        let ratios = [
            (
                "1 writer / raw append + fdatasync",
                one.rate() / raw.rate(),
                0.5,
            ),
            (
                "1 writer / raw overwrite + fdatasync",
                one.rate() / overwrite.rate(),
                0.0,
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
        // The goals are the default durability's; the other is shown for comparison.
        let goals_apply = i == 0;
        for (what, got, goal) in ratios {
            // A goal of 0 marks a ratio shown for information only.
            let goal = if goals_apply { goal } else { 0.0 };
            let goal_text = if goal > 0.0 {
                format!("{goal:>5.1}x")
            } else {
                format!("{:>6}", "-")
            };
            let mark = if got >= goal { "" } else { "  (below goal)" };
            println!("  {what:<44} {got:>6.2}x {goal_text}{mark}");
        }
    }
    println!(
        "\nnote: \"WAL, no sync\" (Durability::ProcessCrash) writes the write-ahead log \
         without fdatasync: it survives a crash of the process but not a power loss; berth's \
         default syncs every batch. berth's log overwrites space it wrote ahead, hence the \
         raw overwrite row (docs/state-format.md)"
    );
}

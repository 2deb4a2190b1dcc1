//! `cargo bench --bench recovery`: how long a real `berth agent` takes to recover after a
//! SIGKILL with N running tasks, beside the least the engine needs to answer the same
//! question, in the same run, on the same containers.
//!
//! One agent launches N tasks (`sleep 3600` in the shell image, 16 launches at a time,
//! each waited for until RUNNING), for N = 50, then 200 (the same agent grows its set),
//! then 1000 when `BERTH_BENCH_RECOVERY_1000=1`. For each N, three rounds
//! (`BERTH_BENCH_ROUNDS`) of:
//!
//! - berth: SIGKILL the agent, start it again and time from the spawn of the new process
//!   to `/v1/health` answering `ok` with all N tasks RUNNING in `GET /v1/containers`. The
//!   new agent runs a pass-through docker wrapper that logs one line per process, so the
//!   docker processes it spawned until then are counted, not guessed.
//! - the bare minimum: one `docker ps -a --filter name=^/?mesos- -q` and one
//!   `docker inspect` of all the ids (2 processes).
//! - the Mesos way: one `docker inspect` per listed container, one after the other (the
//!   `docker ps` Mesos also runs first is not counted).
//!
//! Each column reports the median of its rounds. The agent's JSON log gives where
//! berth's time goes: process start and store open, the Docker version check, the gather
//! (store, `docker ps`, `docker inspect`, /proc) and plan, acting on the plan, and the
//! rest (the API answering, this benchmark's poll). The work directory is under
//! `BERTH_BENCH_DIR` (default: cargo's temporary directory under the target directory, on
//! the disk the build is on). `BERTH_BENCH_RECOVERY_LOGS=<dir>` keeps the agents' logs
//! and the docker wrapper's call lists there. `BERTH_BENCH_RECOVERY_TRACE=1` makes the
//! wrapper also note when each docker process started and ended (it then forks `date`
//! twice and waits for docker instead of exec'ing it, so berth's times grow a little)
//! and splits the gather into the store read, `docker ps`, `docker inspect` and the rest.
//!
//! At the end (also on a panic) the agent and its executors are SIGKILLed and every
//! container of the agent is removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth::api::client::Client;
use berth::api::wire::TaskState;
use berth::containerizer::launch::Launched;
use berth::containerizer::TaskView;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const IMAGE: &str = "berth-test/shell:latest";
/// Launches in flight at once while setting up.
const CONCURRENCY: usize = 16;
/// Restarts (and bare and Mesos rounds) per N, unless `BERTH_BENCH_ROUNDS` says.
const ROUNDS: usize = 3;
/// How often the restarted agent is asked whether it is done.
const POLL: Duration = Duration::from_millis(2);
/// Per request.
const T: Duration = Duration::from_secs(30);
/// For a launch to be RUNNING, and for a restarted agent to have recovered.
const LIMIT: Duration = Duration::from_secs(300);
const GOAL_BARE: f64 = 1.5;
const GOAL_MESOS: f64 = 10.0;
/// The N at which the Mesos goal applies.
const GOAL_MESOS_AT: usize = 200;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds since midnight UTC of an RFC 3339 timestamp such as
/// `2026-11-24T20:16:08.615585Z` (tracing's JSON format).
fn time_of_day(stamp: &str) -> Option<f64> {
    let (_, time) = stamp.split_once('T')?;
    let mut parts = time.trim_end_matches('Z').split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn now_time_of_day() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        % 86_400.0
}

/// Where the milliseconds of one restart went, from the agent's log.
#[derive(Debug, Clone, Copy, Default)]
struct Phases {
    /// Spawn to "berth agent started; recovering": exec, runtime, store open, API socket bound.
    start: f64,
    /// To "docker is usable": the `docker version` check and, side by side with it, the
    /// gather (store, `docker ps`, `docker inspect`, /proc).
    version: f64,
    /// To "recovery plan": the plan.
    gather: f64,
    /// To "recovery done; serving": acting on the plan.
    act: f64,
    /// To this benchmark seeing health `ok` and all tasks RUNNING.
    rest: f64,
    /// With `BERTH_BENCH_RECOVERY_TRACE=1`: the gather split by the docker calls.
    trace: Option<Trace>,
}

/// The gather split by when its docker processes ran (milliseconds).
#[derive(Debug, Clone, Copy, Default)]
struct Trace {
    /// The `docker version` process.
    version: f64,
    /// "docker is usable" to the start of `docker ps`: the store read and /proc.
    store: f64,
    /// The `docker ps` process.
    ps: f64,
    /// The `docker inspect` process(es), first start to last end.
    inspect: f64,
    /// The end of the last inspect to "recovery plan": parsing, planning, rendering.
    plan: f64,
}

/// Splits the gather with the timestamped wrapper's lines (`START END ARGS`, seconds
/// since the epoch), relative to the spawn.
fn trace(calls: &str, log: &Path, spawned_at: f64) -> Option<Trace> {
    let rel = |t: f64| (t % 86_400.0 - spawned_at).rem_euclid(86_400.0) * 1000.0;
    let mut spans: Vec<(f64, f64, &str)> = Vec::new();
    for line in calls.lines() {
        let mut parts = line.splitn(3, ' ');
        let start: f64 = parts.next()?.parse().ok()?;
        let end: f64 = parts.next()?.parse().ok()?;
        spans.push((rel(start), rel(end), parts.next()?));
    }
    let find = |what: &'static str| spans.iter().filter(move |s| s.2.contains(what));
    let version = find(" version ").next()?;
    let ps = find(" ps ").next()?;
    let inspect_start = find(" inspect ").map(|s| s.0).reduce(f64::min)?;
    let inspect_end = find(" inspect ").map(|s| s.1).reduce(f64::max)?;
    let text = std::fs::read_to_string(log).ok()?;
    let stamp = |message: &str| milestone(&text, spawned_at, message);
    Some(Trace {
        version: version.1 - version.0,
        store: ps.0 - stamp("docker is usable")?,
        ps: ps.1 - ps.0,
        inspect: inspect_end - inspect_start,
        plan: stamp("recovery plan")? - inspect_end,
    })
}

/// Milliseconds from the spawn to the first line of a JSON agent log whose message starts
/// with `message`.
fn milestone(log: &str, spawned_at: f64, message: &str) -> Option<f64> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .and_then(|v| v["timestamp"].as_str().and_then(time_of_day))
        .map(|t| (t - spawned_at).rem_euclid(86_400.0) * 1000.0)
}

/// Reads the milestones of a JSON agent log, relative to the spawn.
fn phases(log: &Path, spawned_at: f64, total_ms: f64) -> Phases {
    let text = std::fs::read_to_string(log).expect("read the agent's log");
    let at = |message: &str| milestone(&text, spawned_at, message).unwrap_or(f64::NAN);
    let started = at("berth agent started");
    let usable = at("docker is usable");
    let planned = at("recovery plan");
    let done = at("recovery done");
    Phases {
        start: started,
        version: usable - started,
        gather: planned - usable,
        act: done - planned,
        rest: total_ms - done,
        trace: None,
    }
}

/// The agent under test and everything it made; dropping it kills the agent and its
/// executors and removes its containers, also when the benchmark panics.
struct Bench {
    work: tempfile::TempDir,
    client: Client,
    agent: Option<Child>,
    agent_id: String,
    /// Agent starts so far (names the log files).
    starts: usize,
    keep_logs: Option<PathBuf>,
    /// Carried by every agent and what it starts: what the drop sweeps.
    mark: berth_chaos::sweep::RunMark,
    /// `BERTH_BENCH_RECOVERY_TRACE=1`.
    trace: bool,
}

impl Bench {
    fn log(&self, n: usize) -> PathBuf {
        self.work.path().join(format!("agent-{n}.log"))
    }

    /// Spawns an agent in the work directory, with `docker` as its CLI if given.
    fn spawn(&mut self, docker: Option<&Path>) -> (Instant, f64) {
        let log = std::fs::File::create(self.log(self.starts)).expect("create the agent's log");
        self.starts += 1;
        let mut command = Command::new(BERTH);
        let (key, value) = self.mark.env();
        command
            .env(key, value)
            .arg("agent")
            .arg("--work_dir")
            .arg(self.work.path())
            .args(["--log_format", "json"])
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(docker) = docker {
            command.arg("--docker").arg(docker);
        }
        let wall = now_time_of_day();
        let started = Instant::now();
        self.agent = Some(command.spawn().expect("start berth agent"));
        (started, wall)
    }

    /// SIGKILLs the agent, as a crash would, leaving its executors and containers.
    fn crash(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
    }

    async fn health(&self) -> Option<serde_json::Value> {
        self.client.get("/v1/health", T).await.ok()
    }

    async fn containers(&self) -> Vec<TaskView> {
        self.client
            .get("/v1/containers", T)
            .await
            .expect("GET /v1/containers")
    }

    /// Polls until health says `ok` and `n` tasks are RUNNING.
    async fn wait_recovered(&self, n: usize, since: Instant) -> Duration {
        loop {
            if let Some(health) = self.health().await {
                if health["status"] == "ok" {
                    let views = self.containers().await;
                    let running = views
                        .iter()
                        .filter(|v| v.state == TaskState::Running)
                        .count();
                    if running == n {
                        return since.elapsed();
                    }
                    assert!(
                        since.elapsed() < LIMIT,
                        "only {running} of {n} tasks RUNNING after recovery: {:?}",
                        views
                            .iter()
                            .filter(|v| v.state != TaskState::Running)
                            .take(5)
                            .collect::<Vec<_>>()
                    );
                }
            }
            assert!(since.elapsed() < LIMIT, "the agent did not recover");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Launches tasks `from..to`, [`CONCURRENCY`] at a time, each until RUNNING, then
    /// checks that the agent lists `to` RUNNING tasks.
    async fn launch(&self, from: usize, to: usize) {
        let next = Arc::new(AtomicUsize::new(from));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let client = self.client.clone();
            let next = next.clone();
            workers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= to {
                        return;
                    }
                    launch_one(&client, i).await;
                }
            });
        }
        while let Some(worker) = workers.join_next().await {
            worker.expect("a launch worker panicked");
        }
        let running = self
            .containers()
            .await
            .iter()
            .filter(|v| v.state == TaskState::Running)
            .count();
        assert_eq!(running, to, "tasks RUNNING after launching");
    }

    /// One crash and restart: milliseconds to recovered, docker processes spawned until
    /// then, and where the time went.
    async fn restart(&mut self, n: usize, round: usize) -> (f64, usize, Phases) {
        self.crash();
        let calls = self.work.path().join(format!("docker-calls-{n}-{round}"));
        let wrapper = self
            .work
            .path()
            .join(format!("counting-docker-{n}-{round}"));
        let body = if self.trace {
            format!(
                "#!/bin/sh\ns=$(date +%s.%N)\ndocker \"$@\"\nrc=$?\n\
                 echo \"$s $(date +%s.%N) $*\" >> '{}'\nexit $rc\n",
                calls.display()
            )
        } else {
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec docker \"$@\"\n",
                calls.display()
            )
        };
        std::fs::write(&wrapper, body).expect("write the docker wrapper");
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod the docker wrapper");
        let log = self.log(self.starts);
        let (started, wall) = self.spawn(Some(&wrapper));
        let took = ms(self.wait_recovered(n, started).await);
        let listed_calls = std::fs::read_to_string(&calls).unwrap_or_default();
        let spawned = listed_calls.lines().count();
        let health = self.health().await.expect("health after recovery");
        assert_eq!(
            health["agent_id"], self.agent_id,
            "the agent id changed on restart"
        );
        if let Some(dir) = &self.keep_logs {
            let _ = std::fs::copy(&log, dir.join(format!("agent-{n}-{round}.log")));
            let _ = std::fs::copy(&calls, dir.join(format!("docker-calls-{n}-{round}")));
        }
        let mut phases = phases(&log, wall, took);
        if self.trace {
            phases.trace = trace(&listed_calls, &log, wall);
        }
        (took, spawned, phases)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.crash();
        // Executors outlive the agent by design.
        self.mark.kill_all();
        if self.agent_id.is_empty() {
            return;
        }
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=berth.agent_id={}", self.agent_id))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let removed = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .stdout(Stdio::null())
                .status();
            eprintln!(
                "removed {} containers of agent {}: {removed:?}",
                ids.len(),
                self.agent_id
            );
        }
    }
}

async fn launch_one(client: &Client, i: usize) {
    let task = serde_json::json!({
        "task_id": {"value": format!("recovery-bench-{i}")},
        "command": {"value": "sleep 3600"},
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
    });
    let launched: Launched = client
        .post_raw("/v1/tasks", task.to_string().into_bytes(), T)
        .await
        .expect("launch");
    let start = Instant::now();
    loop {
        let view: TaskView = client
            .get(&format!("/v1/containers/{}", launched.container_id), T)
            .await
            .expect("GET the launched container");
        if view.state == TaskState::Running {
            return;
        }
        assert!(!view.state.is_terminal(), "task {i} ended: {view:?}");
        assert!(start.elapsed() < LIMIT, "task {i} never ran: {view:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `docker inspect ARGS`, with containers that vanished since they were listed (other
/// agents' containers, such as those of tests running at the same time) left out the way
/// berth leaves them out: Docker exits 1 with one "No such" line per missing one.
fn inspect(ids: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("inspect")
        .args(ids)
        .output()
        .expect("run docker inspect");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            || stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .all(|l| l.contains("No such")),
        "docker inspect: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bare minimum: one `docker ps` and one `docker inspect` of everything it listed.
/// Returns the time and the ids.
fn bare() -> (f64, Vec<String>) {
    let start = Instant::now();
    let listed = docker(&["ps", "-a", "--filter", "name=^/?mesos-", "-q"]);
    let ids: Vec<&str> = listed.split_whitespace().collect();
    let inspected = inspect(&ids);
    let took = ms(start.elapsed());
    assert!(inspected.starts_with('['), "docker inspect printed JSON");
    (took, ids.into_iter().map(str::to_owned).collect())
}

/// The Mesos way: one `docker inspect` per container, one after the other.
fn mesos(ids: &[String]) -> f64 {
    let start = Instant::now();
    for id in ids {
        inspect(&[id]);
    }
    ms(start.elapsed())
}

struct Row {
    n: usize,
    listed: usize,
    berth: f64,
    spawned: Vec<usize>,
    bare: f64,
    mesos: f64,
    phases: Phases,
}

#[tokio::main]
async fn main() {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .expect("run docker");
    assert!(
        info.status.success(),
        "the Docker engine is not reachable: run scripts/docker-engine images"
    );
    assert!(
        Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .status()
            .expect("run docker")
            .success(),
        "{IMAGE} is missing: run scripts/docker-engine images"
    );
    let rounds = std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(ROUNDS);
    let with_1000 = std::env::var("BERTH_BENCH_RECOVERY_1000").is_ok_and(|v| v == "1");
    let sizes: &[usize] = if with_1000 {
        &[50, 200, 1000]
    } else {
        &[50, 200]
    };
    let base: PathBuf = std::env::var_os("BERTH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_TARGET_TMPDIR").into());
    std::fs::create_dir_all(&base).expect("create the benchmark directory");
    let keep_logs = std::env::var_os("BERTH_BENCH_RECOVERY_LOGS").map(PathBuf::from);
    if let Some(dir) = &keep_logs {
        std::fs::create_dir_all(dir).expect("create the log directory");
    }
    let work = tempfile::tempdir_in(&base).expect("tempdir");
    let client = Client::new(work.path().join("berth.sock"));
    let mut bench = Bench {
        work,
        client,
        agent: None,
        agent_id: String::new(),
        starts: 0,
        keep_logs,
        mark: berth_chaos::sweep::RunMark::new(),
        trace: std::env::var("BERTH_BENCH_RECOVERY_TRACE").is_ok_and(|v| v == "1"),
    };
    let traced = bench.trace;
    let (started, _) = bench.spawn(None);
    bench.wait_recovered(0, started).await;
    bench.agent_id = bench.health().await.expect("health")["agent_id"]
        .as_str()
        .expect("an agent id")
        .to_owned();

    let mut rows = Vec::new();
    let mut launched = 0;
    for &n in sizes {
        let t = Instant::now();
        bench.launch(launched, n).await;
        launched = n;
        eprintln!(
            "{n} tasks RUNNING ({:.1} s to launch {})",
            t.elapsed().as_secs_f64(),
            n - rows.last().map_or(0, |r: &Row| r.n)
        );
        let (mut ours, mut spawned, mut phase_rounds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut bares, mut mesoses, mut listed) = (Vec::new(), Vec::new(), 0);
        // Interleaved rounds, so that drift in the engine hits every column alike.
        for round in 0..rounds {
            let (took, calls, phases) = bench.restart(n, round).await;
            eprintln!("N={n} round {round}: berth {took:.1} ms, {calls} docker processes");
            ours.push(took);
            spawned.push(calls);
            phase_rounds.push(phases);
            // Let the restarted agent settle (executors resending what was not
            // answered) before the engine is timed alone.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (took, ids) = bare();
            assert!(ids.len() >= n, "docker ps listed {} of {n}", ids.len());
            listed = ids.len();
            bares.push(took);
            mesoses.push(mesos(&ids));
        }
        let column = |f: fn(&Phases) -> f64| median(phase_rounds.iter().map(f).collect());
        rows.push(Row {
            n,
            listed,
            berth: median(ours),
            spawned,
            bare: median(bares),
            mesos: median(mesoses),
            phases: Phases {
                start: column(|p| p.start),
                version: column(|p| p.version),
                gather: column(|p| p.gather),
                act: column(|p| p.act),
                rest: column(|p| p.rest),
                trace: phase_rounds
                    .iter()
                    .map(|p| p.trace)
                    .collect::<Option<Vec<Trace>>>()
                    .map(|t| {
                        let column = |f: fn(&Trace) -> f64| median(t.iter().map(f).collect());
                        Trace {
                            version: column(|t| t.version),
                            store: column(|t| t.store),
                            ps: column(|t| t.ps),
                            inspect: column(|t| t.inspect),
                            plan: column(|t| t.plan),
                        }
                    }),
            },
        });
    }
    drop(bench);

    println!(
        "\nrecovery after SIGKILL with N RUNNING tasks, median of {rounds} rounds, same run\n"
    );
    println!(
        "{:>5} {:>7} {:>10} {:>13} {:>9} {:>10} {:>11} {:>12}",
        "N",
        "listed",
        "berth ms",
        "docker procs",
        "bare ms",
        "Mesos ms",
        "berth/bare",
        "Mesos/berth"
    );
    for r in &rows {
        let procs = r
            .spawned
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        println!(
            "{:>5} {:>7} {:>10.1} {:>13} {:>9.1} {:>10.1} {:>10.2}x {:>11.1}x",
            r.n,
            r.listed,
            r.berth,
            procs,
            r.bare,
            r.mesos,
            r.berth / r.bare,
            r.mesos / r.berth
        );
    }
    if !with_1000 {
        println!(
            "{:>5} skipped (set BERTH_BENCH_RECOVERY_1000=1 to run it)",
            1000
        );
    }
    println!(
        "\nlisted: containers `docker ps -a --filter name=^/?mesos-` lists (other agents' too); \
         all three columns read the same set.\n\
         berth ms: spawn of the new agent to health `ok` with all N RUNNING in /v1/containers.\n\
         docker procs: processes the new agent spawned until then, per round (its wrapper's log).\n\
         bare ms: one `docker ps -a` + one `docker inspect` of every id (2 processes).\n\
         Mesos ms: one `docker inspect` per listed container, sequentially (the `ps` not counted)."
    );
    println!("\ngoals");
    for r in &rows {
        let ratio = r.berth / r.bare;
        println!(
            "  N={:<5} berth/bare  {ratio:>6.2}x  (goal <= {GOAL_BARE}x): {}",
            r.n,
            if ratio <= GOAL_BARE { "met" } else { "NOT met" }
        );
    }
    for r in rows.iter().filter(|r| r.n == GOAL_MESOS_AT) {
        let ratio = r.mesos / r.berth;
        println!(
            "  N={:<5} Mesos/berth {ratio:>6.1}x  (goal >= {GOAL_MESOS}x): {}",
            r.n,
            if ratio >= GOAL_MESOS {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    println!("\nwhere berth's time goes (ms from spawn, median per phase, from the agent's log)");
    println!(
        "{:>5} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "N", "start+store", "version+gather", "plan", "act", "API+poll"
    );
    for r in &rows {
        let p = r.phases;
        println!(
            "{:>5} {:>14.1} {:>14.1} {:>14.1} {:>10.1} {:>10.1}",
            r.n, p.start, p.version, p.gather, p.act, p.rest
        );
    }
    if traced {
        println!(
            "\nthe gather split by its docker processes (ms, median; BERTH_BENCH_RECOVERY_TRACE=1, \
             so every docker call above also paid for two `date` forks)"
        );
        println!(
            "{:>5} {:>14} {:>16} {:>10} {:>10} {:>18}",
            "N", "docker version", "store read+/proc", "docker ps", "inspect", "parse+plan+render"
        );
        for r in &rows {
            match r.phases.trace {
                Some(t) => println!(
                    "{:>5} {:>14.1} {:>16.1} {:>10.1} {:>10.1} {:>18.1}",
                    r.n, t.version, t.store, t.ps, t.inspect, t.plan
                ),
                None => println!("{:>5} (the wrapper's log could not be read)", r.n),
            }
        }
    }
}

//! `cargo bench --bench scale`: speed and scale of a real `berth agent`, each figure
//! beside its baseline measured in the same run on the same engine, in one table with
//! the goal each must meet.
//!
//! - Launch to RUNNING, sequentially (`LAUNCHES` each, interleaved so that drift in the
//!   engine hits every column alike): a bare `docker run -d` polled with
//!   `docker inspect` every 5 ms; a launch through the API (`POST /v1/tasks`) and
//!   through the CLI (`berth launch`), each polled through the API every 5 ms.
//! - 50 concurrent launches until all RUNNING, beside 50 concurrent bare runs, with no
//!   poll on either side: the bare runs until each `docker run -d` returned (it returns
//!   once the container runs), berth's until its event stream said TASK_RUNNING for each.
//!   A third column runs the bare batch with the flags berth's executor gives
//!   `docker run` (labels, a bind-mounted sandbox, log rotation, a shell), which cost the
//!   engine more than a bare run's. `BERTH_BENCH_ROUNDS` rounds, the order turning each.
//! - Memory kept per running task: the proportional set size (PSS) of each task's
//!   executor, beside that of the containerd shim Docker keeps for the same container
//!   (the parent of the container's first process).
//! - Recovery: one agent grows to N running tasks (`sleep 3600`, 16 launches at a time),
//!   for N = 50, 200, then 1000 when `BERTH_BENCH_1000=1`. For each N, three rounds
//!   (`BERTH_BENCH_ROUNDS`) of: SIGKILL the agent, start it again and time from the spawn
//!   of the new process to `/v1/health` answering `ok` with all N tasks RUNNING in
//!   `GET /v1/containers` (the new agent runs a pass-through docker wrapper that logs
//!   one line per process, so the docker processes it spawned are counted, not guessed);
//!   beside the bare minimum, one `docker ps -a --filter name=^/?mesos- -q` and one
//!   `docker inspect` of all the ids, and the Mesos way, one `docker inspect` per listed
//!   container, one after the other. The agent's resident set is read once it recovered.
//!
//! Each column reports the median of its rounds. The agent's JSON log gives where
//! berth's recovery time goes: process start and store open, the Docker version check
//! and the gather (store, `docker ps`, the engine's API, /proc) side by side, the plan,
//! acting on it, and the rest (the API answering, this benchmark's poll). The work
//! directory is under `BERTH_BENCH_DIR` (default: cargo's temporary directory under the
//! target directory, on the disk the build is on). `BERTH_BENCH_LOGS=<dir>` keeps the
//! agents' logs and the docker wrapper's call lists there.
//!
//! At the end (also on a panic) the agent and its executors are SIGKILLed and every
//! container of the agent, and every bare container of this run, is removed.

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
/// Sequential launches of each kind.
const LAUNCHES: usize = 30;
/// Launches at once in the concurrency row.
const AT_ONCE: usize = 50;
/// Launches in flight at once while growing to N.
const CONCURRENCY: usize = 16;
/// Restarts (and bare and Mesos rounds) per N, unless `BERTH_BENCH_ROUNDS` says.
const ROUNDS: usize = 3;
/// Tasks killed, and containers removed by one `docker rm`, at once: many host-network
/// containers ending together have deadlocked Docker 20.10's network controller here
/// (every exit then waits on it for ever).
const REMOVE_AT_ONCE: usize = 8;
/// How often a launch is asked whether it runs.
const LAUNCH_POLL: Duration = Duration::from_millis(5);
/// How often the restarted agent is asked whether it is done.
const POLL: Duration = Duration::from_millis(2);
/// Per request.
const T: Duration = Duration::from_secs(30);
/// For a launch to be RUNNING, and for a restarted agent to have recovered.
const LIMIT: Duration = Duration::from_secs(300);

/// The goals, as ratios to the baseline (at most), but for throughput (at least) and the
/// absolute ones.
const GOAL_LAUNCH_CLI: f64 = 1.15;
const GOAL_LAUNCH_API: f64 = 1.05;
const GOAL_THROUGHPUT: f64 = 0.9;
const GOAL_TASK_MB: f64 = 1.5;
const GOAL_RECOVERY: f64 = 1.2;
const GOAL_RSS_MIB: f64 = 64.0;
/// The N the recovery and RSS goals are stated for.
const GOAL_AT: [usize; 2] = [200, 1000];

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

/// Where a recovery's time went, in ms from the spawn of the agent.
#[derive(Debug, Clone, Copy, Default)]
struct Phases {
    start: f64,
    gather: f64,
    plan: f64,
    act: f64,
    rest: f64,
}

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

fn phases(log: &Path, spawned_at: f64, total_ms: f64) -> Phases {
    let text = std::fs::read_to_string(log).expect("read the agent's log");
    let at = |message: &str| milestone(&text, spawned_at, message).unwrap_or(f64::NAN);
    let started = at("berth agent started");
    let usable = at("docker is usable");
    let planned = at("recovery plan");
    let done = at("recovery done");
    Phases {
        start: started,
        gather: usable - started,
        plan: planned - usable,
        act: done - planned,
        rest: total_ms - done,
    }
}

/// The proportional set size of a process, in MB (10^6 bytes); `None` once it is gone.
fn pss_mb(pid: i32) -> Option<f64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let kb: f64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024.0 / 1e6)
}

/// The resident set of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("agent status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

/// The parent of a process.
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces and parentheses: the fields after its last `)`.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

struct Bench {
    work: tempfile::TempDir,
    client: Client,
    agent: Option<Child>,
    agent_id: String,
    starts: usize,
    keep_logs: Option<PathBuf>,
    mark: berth_chaos::sweep::RunMark,
    /// The prefix of this run's bare containers.
    bare_prefix: String,
}

impl Bench {
    /// A new agent in a work directory under `base`, recovered and serving.
    async fn start(base: &Path, keep_logs: Option<PathBuf>) -> Bench {
        let work = tempfile::tempdir_in(base).expect("tempdir");
        let client = Client::new(work.path().join("berth.sock"));
        let mut bench = Bench {
            work,
            client,
            agent: None,
            agent_id: String::new(),
            starts: 0,
            keep_logs,
            mark: berth_chaos::sweep::RunMark::new(),
            bare_prefix: format!("berth-bench-{}", std::process::id()),
        };
        let (started, _) = bench.spawn(None);
        bench.wait_recovered(0, started).await;
        bench.agent_id = bench.health().await.expect("health")["agent_id"]
            .as_str()
            .expect("an agent id")
            .to_owned();
        bench
    }

    fn log(&self, n: usize) -> PathBuf {
        self.work.path().join(format!("agent-{n}.log"))
    }

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

    /// Grows the agent's running tasks from `from` to `to`.
    async fn grow(&self, from: usize, to: usize) {
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
                    launch_api(&client, &format!("scale-{i}"), LIMIT).await;
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

    /// The PSS of each running task's executor and of its container's shim, in MB.
    async fn memory(&self) -> (Vec<f64>, Vec<f64>) {
        let executors: Vec<f64> = self
            .mark
            .processes()
            .iter()
            .filter(|p| p.argv.get(1).is_some_and(|a| a == "executor"))
            .filter_map(|p| pss_mb(p.pid))
            .collect();
        let shims = self
            .containers()
            .await
            .iter()
            .filter_map(|v| v.docker_name.clone())
            .filter_map(|name| {
                docker(&["inspect", "--format", "{{.State.Pid}}", &name])
                    .parse::<i32>()
                    .ok()
            })
            .filter_map(parent)
            .filter_map(pss_mb)
            .collect();
        (executors, shims)
    }

    async fn restart(&mut self, n: usize, round: usize) -> (f64, usize, Phases, f64) {
        self.crash();
        let calls = self.work.path().join(format!("docker-calls-{n}-{round}"));
        let wrapper = self
            .work
            .path()
            .join(format!("counting-docker-{n}-{round}"));
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec docker \"$@\"\n",
                calls.display()
            ),
        )
        .expect("write the docker wrapper");
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod the docker wrapper");
        let log = self.log(self.starts);
        let (started, wall) = self.spawn(Some(&wrapper));
        let took = ms(self.wait_recovered(n, started).await);
        let rss = rss_mib(self.agent.as_ref().expect("the agent").id());
        let spawned = std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count();
        let health = self.health().await.expect("health after recovery");
        assert_eq!(
            health["agent_id"], self.agent_id,
            "the agent id changed on restart"
        );
        if let Some(dir) = &self.keep_logs {
            let _ = std::fs::copy(&log, dir.join(format!("agent-{n}-{round}.log")));
            let _ = std::fs::copy(&calls, dir.join(format!("docker-calls-{n}-{round}")));
        }
        (took, spawned, phases(&log, wall, took), rss)
    }

    /// Removes this run's bare containers; never panics, as it runs in `drop` too.
    fn remove_bare(&self) {
        remove_filtered(&format!("name=^/{}", self.bare_prefix));
    }
}

/// Removes every container `docker ps -a --filter FILTER` lists, a few at a time (a
/// thousand kills at once have stalled an engine for minutes); never panics, as it runs
/// in `drop` too. How many were listed.
fn remove_filtered(filter: &str) -> usize {
    let ids = Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    for chunk in ids.chunks(REMOVE_AT_ONCE) {
        let removed = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(chunk)
            .stdout(Stdio::null())
            .status();
        if !removed.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("could not remove containers ({filter}): {removed:?}");
        }
    }
    ids.len()
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.crash();
        self.mark.kill_all();
        self.remove_bare();
        if self.agent_id.is_empty() {
            return;
        }
        let removed = remove_filtered(&format!("label=berth.agent_id={}", self.agent_id));
        eprintln!("removed {removed} containers of agent {}", self.agent_id);
    }
}

/// Polls the agent every [`LAUNCH_POLL`] until the container runs.
async fn until_running(client: &Client, container: &str, what: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let view: TaskView = client
            .get(&format!("/v1/containers/{container}"), T)
            .await
            .expect("GET the launched container");
        if view.state == TaskState::Running {
            return;
        }
        assert!(!view.state.is_terminal(), "{what} ended: {view:?}");
        assert!(start.elapsed() < limit, "{what} never ran: {view:?}");
        tokio::time::sleep(LAUNCH_POLL).await;
    }
}

/// A launch through the API, until RUNNING.
async fn launch_api(client: &Client, task_id: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let task = serde_json::json!({
        "task_id": {"value": task_id},
        "command": {"value": "sleep 3600"},
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
    });
    let launched: Launched = client
        .post_raw("/v1/tasks", task.to_string().into_bytes(), T)
        .await
        .expect("launch");
    until_running(client, &launched.container_id.to_string(), task_id, limit).await;
    start.elapsed()
}

/// A launch through `berth launch`, until RUNNING.
async fn launch_cli(client: &Client, work: &Path, task_id: &str) -> Duration {
    let start = Instant::now();
    let out = tokio::process::Command::new(BERTH)
        .arg("launch")
        .arg("--work_dir")
        .arg(work)
        .args([
            "--task_id",
            task_id,
            "--image",
            IMAGE,
            "--command",
            "sleep 3600",
        ])
        .output()
        .await
        .expect("berth launch");
    assert!(
        out.status.success(),
        "berth launch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let container = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    until_running(client, &container, task_id, T).await;
    start.elapsed()
}

/// A bare `docker run -d` of a task like berth's, returning once the container runs.
async fn bare_run(name: &str) {
    bare_run_with(&[
        "run",
        "-d",
        "--net=host",
        "--name",
        name,
        IMAGE,
        "sleep",
        "3600",
    ])
    .await;
}

/// `docker ARGS` (a `docker run -d`), which must succeed.
async fn bare_run_with<S: AsRef<std::ffi::OsStr>>(args: &[S]) {
    let status = tokio::process::Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .await
        .expect("docker run");
    assert!(
        status.success(),
        "docker {:?}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
    );
}

/// A bare `docker run -d`, polled with `docker inspect` until running; and how long the
/// `docker run -d` alone took (it returns once the container was started).
async fn bare_once(name: &str) -> (Duration, Duration) {
    let start = Instant::now();
    bare_run(name).await;
    let ran = start.elapsed();
    loop {
        let out = tokio::process::Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", name])
            .output()
            .await
            .expect("inspect");
        if String::from_utf8_lossy(&out.stdout).trim() == "true" {
            return (start.elapsed(), ran);
        }
        assert!(start.elapsed() < T, "{name} never ran");
        tokio::time::sleep(LAUNCH_POLL).await;
    }
}

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

fn bare_recovery() -> (f64, Vec<String>) {
    let start = Instant::now();
    let listed = docker(&["ps", "-a", "--filter", "name=^/?mesos-", "-q"]);
    let ids: Vec<&str> = listed.split_whitespace().collect();
    let inspected = inspect(&ids);
    let took = ms(start.elapsed());
    assert!(inspected.starts_with('['), "docker inspect printed JSON");
    (took, ids.into_iter().map(str::to_owned).collect())
}

fn mesos(ids: &[String]) -> f64 {
    let start = Instant::now();
    for id in ids {
        inspect(&[id]);
    }
    ms(start.elapsed())
}

/// The launch rows: sequential p50s and the concurrent batch.
struct Launches {
    bare: Vec<f64>,
    /// `docker run -d` alone, in the same bare launches.
    run_alone: Vec<f64>,
    api: Vec<f64>,
    cli: Vec<f64>,
    at_once: AtOnce,
}

async fn launches(bench: &Bench, rounds: usize) -> Launches {
    let prefix = bench.bare_prefix.clone();
    // Warm the engine and berth's path once.
    bare_once(&format!("{prefix}-warm")).await;
    launch_api(&bench.client, "launch-warm", T).await;
    let (mut bare, mut run_alone, mut api, mut cli) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..LAUNCHES {
        let (running, ran) = bare_once(&format!("{prefix}-{i}")).await;
        bare.push(ms(running));
        run_alone.push(ms(ran));
        api.push(ms(
            launch_api(&bench.client, &format!("launch-api-{i}"), T).await
        ));
        cli.push(ms(launch_cli(
            &bench.client,
            bench.work.path(),
            &format!("launch-cli-{i}"),
        )
        .await));
    }
    bench.remove_bare();
    kill_all_tasks(bench).await;

    let mut at_once = AtOnce::default();
    // The order turns each round, so that what the engine still does after one batch
    // (removals, unmounts) does not always fall on the same column.
    for round in 0..rounds {
        // Removed after the containers that mount them.
        let sandboxes = tempfile::tempdir_in(bench.work.path()).expect("tempdir");
        for k in 0..3 {
            match (round + k) % 3 {
                0 => at_once
                    .bare
                    .push(bare_batch(&format!("{prefix}-c{round}"), None).await),
                1 => at_once
                    .flagged
                    .push(bare_batch(&format!("{prefix}-f{round}"), Some(sandboxes.path())).await),
                _ => at_once.berth.push(berth_batch(bench, round).await),
            }
            bench.remove_bare();
        }
        eprintln!(
            "{AT_ONCE} at once, round {round}: bare {:.2} s, with berth's flags {:.2} s, berth {:.2} s",
            at_once.bare[round], at_once.flagged[round], at_once.berth[round]
        );
    }
    Launches {
        bare,
        run_alone,
        api,
        cli,
        at_once,
    }
}

/// The concurrent batches, one figure (s) per round of each.
#[derive(Default)]
struct AtOnce {
    bare: Vec<f64>,
    /// Bare runs with the flags berth's executor gives `docker run`.
    flagged: Vec<f64>,
    berth: Vec<f64>,
}

/// [`AT_ONCE`] bare `docker run -d` at once, until each returned (it returns once the
/// container runs; no poll, whose cost would be measured too). With `sandboxes`, each
/// run gets the flags berth's executor gives it, a sandbox there bind-mounted.
async fn bare_batch(prefix: &str, sandboxes: Option<&Path>) -> f64 {
    let t = Instant::now();
    let runs: Vec<_> = (0..AT_ONCE)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            let flags = sandboxes.map(|dir| berths_flags(&name, &dir.join(&name)));
            tokio::spawn(async move {
                match flags {
                    Some(flags) => bare_run_with(&flags).await,
                    None => bare_run(&name).await,
                }
            })
        })
        .collect();
    // Every run is awaited before one that failed panics, so that no `docker run` is
    // still under way when the cleanup lists the containers to remove.
    let mut ended = Vec::new();
    for run in runs {
        ended.push(run.await);
    }
    let took = t.elapsed().as_secs_f64();
    for run in ended {
        run.expect("bare");
    }
    took
}

/// The `docker run` arguments berth's executor uses for a task's container (see
/// `argv::run`): labels, the Mesos variables, the sandbox mounted, the log's rotation,
/// the command through a shell.
fn berths_flags(name: &str, sandbox: &Path) -> Vec<String> {
    std::fs::create_dir_all(sandbox).expect("create a sandbox");
    [
        "run".to_owned(),
        "-d".into(),
        format!("--name={name}"),
        "--label=berth.agent_id=berth-bench".into(),
        format!("--label=berth.container_id={name}"),
        format!("--label=berth.task_id={name}"),
        "--label=berth.role=task".into(),
        "-e".into(),
        "MESOS_SANDBOX=/mnt/mesos/sandbox".into(),
        "-e".into(),
        format!("MESOS_CONTAINER_NAME={name}"),
        "-v".into(),
        format!("{}:/mnt/mesos/sandbox", sandbox.display()),
        "--net=host".into(),
        "--log-driver=json-file".into(),
        "--log-opt=max-size=10485760".into(),
        "--log-opt=max-file=2".into(),
        "--entrypoint=/bin/sh".into(),
        IMAGE.into(),
        "-c".into(),
        "sleep 3600".into(),
    ]
    .into()
}

/// [`AT_ONCE`] launches through the API at once, until berth's event stream said
/// TASK_RUNNING for each (no poll); the tasks are killed before this returns.
async fn berth_batch(bench: &Bench, round: usize) -> f64 {
    let prefix = format!("launch-at-once-{round}-");
    let client = bench.client.clone();
    let watched_prefix = prefix.clone();
    let watching = tokio::spawn(async move {
        let mut running = std::collections::BTreeSet::new();
        let watched = client
            .get_lines("/v1/events?follow=true", |line| {
                let event: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
                assert_ne!(event["type"], "ERROR", "the event stream failed: {event}");
                let status = &event["task_updated"]["status"];
                let task = status["task_id"]["value"].as_str().unwrap_or_default();
                if task.starts_with(&watched_prefix) {
                    let state = status["state"].as_str().unwrap_or_default();
                    assert!(
                        matches!(state, "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING"),
                        "{task} ended: {event}"
                    );
                    if state == "TASK_RUNNING" {
                        running.insert(task.to_owned());
                    }
                }
                running.len() < AT_ONCE
            })
            .await;
        watched.expect("follow the events");
        // A stream that ended (the agent gone) must not pass for all of them running.
        assert_eq!(running.len(), AT_ONCE, "the event stream ended early");
        Instant::now()
    });
    let t = Instant::now();
    let posts: Vec<_> = (0..AT_ONCE)
        .map(|i| {
            let client = bench.client.clone();
            let task_id = format!("{prefix}{i}");
            tokio::spawn(async move {
                let task = serde_json::json!({
                    "task_id": {"value": task_id},
                    "command": {"value": "sleep 3600"},
                    "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
                });
                let _: Launched = client
                    .post_raw("/v1/tasks", task.to_string().into_bytes(), T)
                    .await
                    .expect("launch");
            })
        })
        .collect();
    for post in posts {
        post.await.expect("berth");
    }
    let all_running = tokio::time::timeout(LIMIT, watching)
        .await
        .expect("berth's launches never all ran")
        .expect("the event watcher");
    kill_all_tasks(bench).await;
    all_running.duration_since(t).as_secs_f64()
}

/// Kills every task of the agent and waits for their ends, so that the recovery rows
/// count only the tasks they launch.
async fn kill_all_tasks(bench: &Bench) {
    let live: Vec<TaskView> = bench
        .containers()
        .await
        .into_iter()
        .filter(|v| !v.state.is_terminal())
        .collect();
    for batch in live.chunks(REMOVE_AT_ONCE) {
        for view in batch {
            let _: serde_json::Value = bench
                .client
                .post_raw(
                    &format!("/v1/containers/{}/kill", view.container_id),
                    br#"{"grace": "0secs"}"#.to_vec(),
                    T,
                )
                .await
                .expect("kill");
        }
        let start = Instant::now();
        loop {
            let views = bench.containers().await;
            let ended = batch.iter().all(|b| {
                views
                    .iter()
                    .any(|v| v.container_id == b.container_id && v.state.is_terminal())
            });
            if ended {
                break;
            }
            assert!(start.elapsed() < LIMIT, "tasks did not end after kills");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Row {
    n: usize,
    listed: usize,
    berth: f64,
    spawned: Vec<usize>,
    bare: f64,
    mesos: f64,
    rss: f64,
    executor_mb: f64,
    shim_mb: f64,
    phases: Phases,
}

/// One line of the goals table.
fn goal_line(what: &str, berth: String, baseline: String, ratio: String, goal: String, met: bool) {
    println!(
        "{what:<52} {berth:>10} {baseline:>10} {ratio:>7} {goal:>10}  {}",
        if met { "met" } else { "NOT MET" }
    );
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
    let with_1000 = std::env::var("BERTH_BENCH_1000").is_ok_and(|v| v == "1");
    let sizes: &[usize] = if with_1000 {
        &[50, 200, 1000]
    } else {
        &[50, 200]
    };
    let base: PathBuf = std::env::var_os("BERTH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_TARGET_TMPDIR").into());
    std::fs::create_dir_all(&base).expect("create the benchmark directory");
    let keep_logs = std::env::var_os("BERTH_BENCH_LOGS").map(PathBuf::from);
    if let Some(dir) = &keep_logs {
        std::fs::create_dir_all(dir).expect("create the log directory");
    }
    // The launch rows on an agent of their own, removed with its containers before the
    // recovery rows, which then count only their own.
    let launched_rows = {
        let bench = Bench::start(&base, keep_logs.clone()).await;
        launches(&bench, rounds).await
    };
    eprintln!("launch rows done");
    let mut bench = Bench::start(&base, keep_logs).await;
    let mut rows = Vec::new();
    let mut launched = 0;
    for &n in sizes {
        let t = Instant::now();
        bench.grow(launched, n).await;
        launched = n;
        eprintln!(
            "{n} tasks RUNNING ({:.1} s to launch {})",
            t.elapsed().as_secs_f64(),
            n - rows.last().map_or(0, |r: &Row| r.n)
        );
        let (executors, shims) = bench.memory().await;
        assert_eq!(executors.len(), n, "executors found for {n} tasks");
        let (mut ours, mut spawned, mut phase_rounds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut bares, mut mesoses, mut listed, mut rss) = (Vec::new(), Vec::new(), 0, Vec::new());
        // Interleaved rounds, so that drift in the engine hits every column alike.
        for round in 0..rounds {
            let (took, calls, phases, resident) = bench.restart(n, round).await;
            eprintln!("N={n} round {round}: berth {took:.1} ms, {calls} docker processes");
            ours.push(took);
            spawned.push(calls);
            phase_rounds.push(phases);
            rss.push(resident);
            // Let the restarted agent settle (executors resending what was not
            // answered) before the engine is timed alone.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (took, ids) = bare_recovery();
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
            rss: median(rss),
            executor_mb: median(executors),
            shim_mb: median(shims),
            phases: Phases {
                start: column(|p| p.start),
                gather: column(|p| p.gather),
                plan: column(|p| p.plan),
                act: column(|p| p.act),
                rest: column(|p| p.rest),
            },
        });
    }
    // Printed before the containers are removed: the figures are in whatever comes of
    // that.
    print_tables(&launched_rows, &rows, rounds, with_1000);
    drop(bench);
}

fn print_tables(l: &Launches, rows: &[Row], rounds: usize, with_1000: bool) {
    let p50 = |v: &[f64]| median(v.to_vec());
    println!("\nberth's goals, each beside its baseline measured in the same run\n");
    println!(
        "{:<52} {:>10} {:>10} {:>7} {:>10}",
        "measure", "berth", "baseline", "ratio", "goal"
    );
    let (bare, api, cli) = (p50(&l.bare), p50(&l.api), p50(&l.cli));
    goal_line(
        &format!("launch to RUNNING, p50 of {LAUNCHES}, through the CLI (ms)"),
        format!("{cli:.1}"),
        format!("{bare:.1}"),
        format!("{:.2}x", cli / bare),
        format!("<= {GOAL_LAUNCH_CLI}x"),
        cli / bare <= GOAL_LAUNCH_CLI,
    );
    goal_line(
        &format!("launch to RUNNING, p50 of {LAUNCHES}, through the API (ms)"),
        format!("{api:.1}"),
        format!("{bare:.1}"),
        format!("{:.2}x", api / bare),
        format!("<= {GOAL_LAUNCH_API}x"),
        api / bare <= GOAL_LAUNCH_API,
    );
    let alone = p50(&l.run_alone);
    println!(
        "{:<52} {api:>10.1} {alone:>10.1} {:>6.2}x {:>10}  (the floor: no look after it)",
        "  the same, beside `docker run -d` alone (ms)",
        api / alone,
        "-"
    );
    let (bare_at_once, flagged, berth_at_once) = (
        p50(&l.at_once.bare),
        p50(&l.at_once.flagged),
        p50(&l.at_once.berth),
    );
    let throughput = bare_at_once / berth_at_once;
    goal_line(
        &format!("{AT_ONCE} concurrent launches until all RUNNING (s)"),
        format!("{berth_at_once:.2}"),
        format!("{bare_at_once:.2}"),
        format!("{throughput:.2}x"),
        format!(">= {GOAL_THROUGHPUT}x"),
        throughput >= GOAL_THROUGHPUT,
    );
    println!(
        "{:<52} {berth_at_once:>10.2} {flagged:>10.2} {:>6.2}x {:>10}  (bare runs with berth's flags)",
        "  the same, beside bare runs as berth's executor runs",
        flagged / berth_at_once,
        "-"
    );
    if let Some(r) = rows.last() {
        goal_line(
            &format!("memory per running task, PSS at N={} (MB)", r.n),
            format!("{:.2}", r.executor_mb),
            format!("{:.2}", r.shim_mb),
            format!("{:.2}x", r.executor_mb / r.shim_mb),
            format!("<= {GOAL_TASK_MB} MB"),
            r.executor_mb <= GOAL_TASK_MB,
        );
    }
    for r in rows {
        let ratio = r.berth / r.bare;
        let goal = GOAL_AT.contains(&r.n);
        goal_line(
            &format!("recovery after SIGKILL, N={} (ms)", r.n),
            format!("{:.1}", r.berth),
            format!("{:.1}", r.bare),
            format!("{ratio:.2}x"),
            if goal {
                format!("<= {GOAL_RECOVERY}x")
            } else {
                "-".into()
            },
            !goal || ratio <= GOAL_RECOVERY,
        );
    }
    if !with_1000 {
        println!(
            "{:<52} skipped: set BERTH_BENCH_1000=1",
            "recovery after SIGKILL, N=1000"
        );
    }
    for r in rows {
        let goal = r.n == GOAL_AT[1];
        goal_line(
            &format!("agent RSS with N={} running tasks (MiB)", r.n),
            format!("{:.1}", r.rss),
            "-".into(),
            "-".into(),
            if goal {
                format!("<= {GOAL_RSS_MIB}")
            } else {
                "-".into()
            },
            !goal || r.rss <= GOAL_RSS_MIB,
        );
    }
    println!(
        "\nlaunch baseline: a bare `docker run -d` polled with `docker inspect` every 5 ms; berth is \
         polled through its API as often. Concurrent: no poll; bare until each `docker run -d` \
         returned, berth until its event stream said TASK_RUNNING for each; median of {rounds} \
         rounds, the order turning each round.\n\
         memory baseline: the containerd shim Docker keeps per container; berth keeps one \
         executor per task (median of all).\n\
         recovery baseline: one `docker ps -a` + one `docker inspect` of every id (2 processes); \
         berth: spawn of the new agent to health `ok` with all N RUNNING, median of {rounds} rounds."
    );

    println!("\nrecovery in detail\n");
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
    for r in rows {
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
    println!(
        "\nlisted: containers `docker ps -a --filter name=^/?mesos-` lists (other agents' too); \
         all three columns read the same set.\n\
         docker procs: processes the new agent spawned until recovered, per round (its wrapper's log).\n\
         Mesos ms: one `docker inspect` per listed container, sequentially (the `ps` not counted)."
    );
    println!("\nwhere berth's recovery time goes (ms, median per phase, from the agent's log)");
    println!(
        "{:>5} {:>12} {:>22} {:>8} {:>8} {:>10}",
        "N", "start+store", "version check | gather", "plan", "act", "API+poll"
    );
    for r in rows {
        let p = r.phases;
        println!(
            "{:>5} {:>12.1} {:>22.1} {:>8.1} {:>8.1} {:>10.1}",
            r.n, p.start, p.gather, p.plan, p.act, p.rest
        );
    }
}

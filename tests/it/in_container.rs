//! The agent itself in a Docker container (`--docker_mesos_image`), started with the
//! `docker run` line of docs/operations.md ("The agent in a container") against the host's
//! engine, and driven from the host by the `berth` CLI under test through
//! `<work_dir>/berth.sock`, as an operator does.
//!
//! The agent image is made from the binary under test by `scripts/docker-engine
//! agent-image BERTH --repository berth-agent-test`, once per test process; that
//! repository is the tests' own, and the script removes its older images that no
//! container uses.
//!
//! Apache Mesos never tested this mode (design note docker-mesos-image.md, §4); where
//! Mesos gets it wrong (§3, §5) a test says what berth does instead.
//!
//! Cleanup: every agent container a test makes is removed by its id, every container
//! labelled with its agent id (an id unique to the fresh work directory) is removed, and
//! the work directory goes; containers a test makes by hand carry a random uuid in their
//! name and are removed by it. Nothing else is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{
    docker_cli, docker_ok, eventually, remove_until_quiet, require_engine, BERTH, PLAIN_PROCESSES,
    SHELL_IMAGE,
};

/// The repository the tests' agent images are tagged in (and pruned from).
const AGENT_REPOSITORY: &str = "berth-agent-test";

/// Prints the next integer every 0.2 s, from 0.
const COUNTER: &str = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done";

/// How long anything here may take before the test fails and says what it waited for.
const LIMIT: Duration = Duration::from_secs(60);

/// The agent image built from the binary under test; its reference.
fn agent_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        require_engine();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/docker-engine");
        let out = Command::new(script)
            .args(["agent-image", BERTH, "--repository", AGENT_REPOSITORY])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            out.status.success(),
            "`scripts/docker-engine agent-image {BERTH} --repository {AGENT_REPOSITORY}` failed: {}",
            text(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let reference = stdout.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            reference.starts_with(&format!("{AGENT_REPOSITORY}:")),
            "the script's last line is not the image reference: {}",
            text(&out)
        );
        reference
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// How an agent's container is started: the documented line, or that line with one thing
/// wrong (the start-up refusals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// `docker run -d --name NAME --pid=host --net=host -v SOCK:SOCK -v WD:WD IMAGE agent
    /// --work_dir WD --docker_mesos_image IMAGE`.
    Documented,
    /// `-v WD:/var/lib/berth ... --work_dir /var/lib/berth`: the work dir at another path
    /// inside than on the host.
    WorkDirElsewhere,
    /// No `-v /var/run/docker.sock:/var/run/docker.sock`.
    NoSocket,
    /// `--docker_mesos_image` names an image the engine does not have.
    AbsentImage,
    /// No `--pid=host`.
    NoHostPid,
}

/// The `docker run` arguments for an agent container named `name` on the work dir `wd`;
/// `env` is passed into the container (`-e`).
fn run_args(
    setup: Setup,
    name: &str,
    wd: &str,
    image: &str,
    extra: &[String],
    env: &[String],
) -> Vec<String> {
    let inside = match setup {
        Setup::WorkDirElsewhere => "/var/lib/berth",
        _ => wd,
    };
    // On the tests' own registry port, so that even an attempt to pull it stays on
    // 127.0.0.1; it is never there.
    let absent = format!(
        "127.0.0.1:9/{AGENT_REPOSITORY}:absent-{}",
        uuid::Uuid::new_v4().simple()
    );
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.into()];
    if setup != Setup::NoHostPid {
        args.push("--pid=host".into());
    }
    args.push("--net=host".into());
    if setup != Setup::NoSocket {
        args.extend([
            "-v".into(),
            "/var/run/docker.sock:/var/run/docker.sock".into(),
        ]);
    }
    for e in env {
        args.extend(["-e".into(), e.clone()]);
    }
    args.extend([
        "-v".into(),
        format!("{wd}:{inside}"),
        image.into(),
        "agent".into(),
        "--work_dir".into(),
        inside.into(),
        "--docker_mesos_image".into(),
        if setup == Setup::AbsentImage {
            absent
        } else {
            image.into()
        },
    ]);
    args.extend(extra.iter().cloned());
    args
}

/// `docker inspect` of one container, or `None` once Docker says there is no such
/// container.
fn inspect(name: &str) -> Option<serde_json::Value> {
    let out = docker_cli(&["inspect", "--type", "container", name]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No such"),
            "docker inspect {name} failed: {err}"
        );
        return None;
    }
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    all.get(0).cloned()
}

fn running(name: &str) -> bool {
    inspect(name).is_some_and(|i| i["State"]["Running"] == true)
}

fn gone(name: &str) -> bool {
    inspect(name).is_none()
}

/// A container's identity: its id and when it started (a restarted container keeps its
/// id but not its start time).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    id: String,
    started_at: String,
}

fn identity(name: &str, what: &str) -> Identity {
    let info = inspect(name).unwrap_or_else(|| panic!("{what} {name} does not exist"));
    Identity {
        id: info["Id"].as_str().unwrap_or_default().to_owned(),
        started_at: info["State"]["StartedAt"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// One agent container on a fresh work dir (the same path inside and out), started with
/// the documented line and driven from the host. Dropping it removes the agent containers
/// it made, every container labelled with its agent id, and the work dir.
struct AgentContainer {
    work: tempfile::TempDir,
    image: String,
    /// Flags after the documented line (`--docker_remove_delay 1secs`).
    extra: Vec<String>,
    /// Environment of the next agent container (`FAILPOINTS=...`).
    env: Vec<String>,
    /// Every agent container made, by name (as made: unique) and by id (also after a
    /// rename).
    made: Vec<String>,
    /// The current agent container's id.
    id: String,
    /// Its agent id, once it said it.
    agent_id: String,
}

impl AgentContainer {
    /// Starts an agent container with the documented line (and `extra` after it) and waits
    /// until `berth health` from the host says ok.
    async fn start(extra: &[&str]) -> AgentContainer {
        AgentContainer::start_with_env(extra, Vec::new()).await
    }

    /// As [`AgentContainer::start`], with `env` in the agent's container.
    async fn start_with_env(extra: &[&str], env: Vec<String>) -> AgentContainer {
        let mut agent = AgentContainer {
            work: tempfile::tempdir().expect("tempdir"),
            image: agent_image().to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            env,
            made: Vec::new(),
            id: String::new(),
            agent_id: String::new(),
        };
        agent.run_container();
        agent.wait_ready().await;
        agent
    }

    fn wd(&self) -> &str {
        utf8(self.work.path())
    }

    /// `docker run` of a new agent container on this work dir.
    fn run_container(&mut self) {
        let name = format!("berth-agent-test-{}", uuid::Uuid::new_v4());
        let args = run_args(
            Setup::Documented,
            &name,
            self.wd(),
            &self.image,
            &self.extra,
            &self.env,
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // By name first: a `docker run` that fails after its create leaves a container.
        self.made.push(name.clone());
        let out = docker_cli(&args);
        assert!(
            out.status.success(),
            "docker {} failed: {}",
            args.join(" "),
            text(&out)
        );
        self.id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        self.made.push(self.id.clone());
    }

    /// Waits until `berth health` from the host says ok; keeps (or checks) the agent id.
    async fn wait_ready(&mut self) {
        let health: serde_json::Value =
            eventually(LIMIT, "the agent in its container to say ok", async || {
                assert!(
                    running(&self.id),
                    "the agent's container exited: {}",
                    self.logs()
                );
                let out = self.berth(&["health", "--json"]);
                let health: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                (health["status"] == "ok").then_some(health)
            })
            .await;
        let agent_id = health["agent_id"].as_str().expect("an agent id").to_owned();
        if self.agent_id.is_empty() {
            self.agent_id = agent_id;
        } else {
            assert_eq!(
                agent_id, self.agent_id,
                "the agent id changed on the same work dir"
            );
        }
    }

    /// The current agent container's log.
    fn logs(&self) -> String {
        text(&docker_cli(&["logs", &self.id]))
    }

    /// `docker kill` of the agent's container (SIGKILL, as a crash would); returns once
    /// Docker says it no longer runs.
    async fn kill(&self) {
        docker_ok(&["kill", &self.id]);
        eventually(LIMIT, "the agent's container to stop", async || {
            (!running(&self.id)).then_some(())
        })
        .await;
    }

    /// `docker restart` of the agent's container; waits until the agent says ok again.
    async fn restart(&mut self) {
        docker_ok(&["restart", &self.id]);
        self.wait_ready().await;
    }

    /// `docker stop` of the agent's container.
    fn stop(&self) {
        docker_ok(&["stop", &self.id]);
    }

    /// `docker start` of the stopped agent container; waits until it says ok.
    async fn start_again(&mut self) {
        docker_ok(&["start", &self.id]);
        self.wait_ready().await;
    }

    /// Removes the (dead) agent container and starts a new one, named anew, on the same
    /// work dir; waits until it says ok.
    async fn replace(&mut self) {
        docker_ok(&["rm", "-f", &self.id]);
        self.run_container();
        self.wait_ready().await;
    }

    /// The host's `berth` CLI on this work dir.
    fn berth(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .args(args)
            .arg("--work_dir")
            .arg(self.work.path())
            .output()
            .expect("run berth")
    }

    fn launch(&self, args: &[&str]) -> String {
        let mut full = vec!["launch"];
        full.extend_from_slice(args);
        let out = self.berth(&full);
        assert!(out.status.success(), "launch failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `berth wait --json`: the task's final view, once `berth ps` shows it ended (within
    /// [`LIMIT`]: a task that never ends fails the test rather than hang it).
    async fn wait(&self, id: &str) -> serde_json::Value {
        eventually(LIMIT, "the task to end", async || {
            let state = self.ps_state(id);
            (![
                "TASK_STAGING",
                "TASK_STARTING",
                "TASK_RUNNING",
                "TASK_KILLING",
            ]
            .contains(&state.as_str()))
            .then_some(())
        })
        .await;
        let out = self.berth(&["wait", id, "--json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("berth wait {id}: {e}: {}", text(&out)))
    }

    /// The task's state as `berth ps --json` shows it.
    fn ps_state(&self, id: &str) -> String {
        let out = self.berth(&["ps", "--json"]);
        let views: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("ps: {e}: {}", text(&out)));
        views
            .as_array()
            .and_then(|v| v.iter().find(|t| t["container_id"] == id))
            .and_then(|t| t["state"].as_str())
            .unwrap_or_else(|| panic!("{id} is not in berth ps: {}", text(&out)))
            .to_owned()
    }

    fn sandbox(&self, id: &str) -> PathBuf {
        self.work.path().join("sandboxes").join(id)
    }

    fn stdout_lines(&self, id: &str) -> Vec<String> {
        std::fs::read_to_string(self.sandbox(id).join("stdout"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The task's container: `mesos-<agent id>.<container id>`.
    fn task_name(&self, id: &str) -> String {
        format!("mesos-{}.{id}", self.agent_id)
    }

    /// Its executor's container: `mesos-<agent id>.<container id>.executor`.
    fn executor_name(&self, id: &str) -> String {
        format!("mesos-{}.{id}.executor", self.agent_id)
    }

    /// Launches the counter and waits until it runs and has printed a few lines.
    async fn running_counter(&self) -> String {
        let id = self.launch(&["--image", SHELL_IMAGE, "--command", COUNTER]);
        eventually(LIMIT, "the counter to run", async || {
            (self.ps_state(&id) == "TASK_RUNNING" && self.stdout_lines(&id).len() > 3).then_some(())
        })
        .await;
        id
    }

    /// The containers labelled with this agent's id.
    fn labelled(&self) -> Vec<String> {
        if self.agent_id.is_empty() {
            return Vec::new();
        }
        docker_ok(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=berth.agent_id={}", self.agent_id),
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for AgentContainer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Each container's log once, by its id.
            for id in self
                .made
                .iter()
                .filter(|m| !m.starts_with("berth-agent-test-"))
            {
                eprintln!(
                    "--- agent container {id}:\n{}",
                    text(&docker_cli(&["logs", "--tail", "200", id]))
                );
            }
        }
        if !self.made.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(self.made.iter().map(String::as_str));
            let _ = docker_cli(&args);
        }
        // Executor containers outlive the agent by design, and one may be creating its
        // task's container as it goes.
        remove_until_quiet(|| self.labelled(), Duration::from_secs(30));
    }
}

/// Removes the containers a test made by hand, by their unique names, also on failure
/// (then printing their logs first).
struct Made(Vec<String>);

impl Drop for Made {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in &self.0 {
                eprintln!(
                    "--- container {name}:\n{}",
                    text(&docker_cli(&["logs", "--tail", "200", name]))
                );
            }
        }
        if !self.0.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(self.0.iter().map(String::as_str));
            let _ = docker_cli(&args);
        }
    }
}

/// Asserts that stdout is 0, 1, 2, ... with no number missing and none twice.
fn assert_counts_from_zero(lines: &[String], what: &str) {
    assert!(lines.len() > 3, "{what}: too little output: {lines:?}");
    for (n, line) in lines.iter().enumerate() {
        let from = n.saturating_sub(3);
        let to = (n + 3).min(lines.len());
        assert_eq!(
            line,
            &n.to_string(),
            "{what}: line {n} of {} is not {n} (a gap or a repeat in the output); around it: {:?}",
            lines.len(),
            &lines[from..to]
        );
    }
}

/// After the agent came back (a new container or a restarted one): the task and its
/// executor were untouched, the task is RUNNING, and a kill ends it KILLED with its output
/// whole and both containers removed at the due time.
async fn the_task_was_untouched(
    agent: &AgentContainer,
    id: &str,
    task_before: &Identity,
    executor_before: &Identity,
) {
    let task = agent.task_name(id);
    let executor = agent.executor_name(id);
    assert_eq!(
        &identity(&task, "the task's container"),
        task_before,
        "the task's container was replaced or restarted"
    );
    assert_eq!(
        &identity(&executor, "the executor's container"),
        executor_before,
        "the executor's container was replaced or restarted"
    );
    assert!(running(&task), "the task's container no longer runs");
    assert!(
        running(&executor),
        "the executor's container no longer runs"
    );
    assert_eq!(
        agent.ps_state(id),
        "TASK_RUNNING",
        "berth ps after the agent came back"
    );
    let lines = agent.stdout_lines(id).len();
    eventually(
        LIMIT,
        "the output to grow after the agent came back",
        async || (agent.stdout_lines(id).len() > lines + 2).then_some(()),
    )
    .await;

    let killed = agent.berth(&["kill", id]);
    assert!(killed.status.success(), "berth kill: {}", text(&killed));
    let done = agent.wait(id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_counts_from_zero(&agent.stdout_lines(id), "the sandbox's stdout");
    eventually(
        LIMIT,
        "the task's and the executor's containers to be removed (--docker_remove_delay 1secs)",
        async || (gone(&task) && gone(&executor)).then_some(()),
    )
    .await;
}

/// The documented line starts an agent whose task runs and prints through the executor's
/// own container: `mesos-<agent id>.<container id>.executor`, from the agent's image, with
/// berth's labels, the entrypoint set to `berth` (an image whose ENTRYPOINT is the agent
/// would otherwise take the executor's command as its arguments: Mesos's
/// docker-containers#80), the host's pid namespace, and the sandbox at its host path.
#[tokio::test]
async fn a_task_runs_and_logs_through_an_executor_container_of_its_own() {
    let agent = AgentContainer::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo one; echo two; echo three; echo warning >&2",
    ]);
    let done = agent.wait(&id).await;
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");

    let logs = agent.berth(&["logs", &id]);
    assert!(logs.status.success(), "{}", text(&logs));
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "one\ntwo\nthree\n");
    let logs = agent.berth(&["logs", &id, "--stderr"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "warning\n");
    let sandbox = agent.sandbox(&id);
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).expect("the sandbox's stdout"),
        "one\ntwo\nthree\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stderr")).expect("the sandbox's stderr"),
        "warning\n"
    );

    let task = inspect(&agent.task_name(&id)).expect("the task's container");
    let task_labels = &task["Config"]["Labels"];
    assert_eq!(
        task_labels["berth.role"], "task",
        "the task container's labels: {task_labels}"
    );
    let name = agent.executor_name(&id);
    let executor = inspect(&name).unwrap_or_else(|| {
        panic!("no executor container {name}: in --docker_mesos_image mode each command task's executor runs in a container of its own")
    });
    assert_eq!(executor["Name"], format!("/{name}"));
    assert_eq!(
        executor["Config"]["Image"],
        agent.image.as_str(),
        "{executor}"
    );
    let labels = &executor["Config"]["Labels"];
    assert_eq!(
        labels["berth.agent_id"],
        agent.agent_id.as_str(),
        "{labels}"
    );
    assert_eq!(labels["berth.container_id"], id.as_str(), "{labels}");
    assert_eq!(labels["berth.role"], "executor", "{labels}");
    assert_eq!(
        executor["Config"]["Entrypoint"],
        serde_json::json!(["berth"]),
        "the executor container's entrypoint is set explicitly"
    );
    assert_eq!(executor["HostConfig"]["PidMode"], "host");
    let sandbox = utf8(&sandbox);
    let mounts = executor["Mounts"].as_array().expect("mounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["Type"] == "bind" && m["Source"] == sandbox && m["Destination"] == sandbox),
        "the sandbox {sandbox} is not bind-mounted at its host path: {mounts:?}"
    );
}

/// The agent's container SIGKILLed (`docker kill`), then a new agent container on the same
/// work dir: the task's container and its executor's are the same ones (id and start time),
/// the executor kept writing the task's output while no agent ran (so it has no gap), and
/// the new agent re-adopts the task. (Mesos forks the executor inside the agent's
/// container unless `--docker_mesos_image` is set, and even then learns its exit only by
/// polling a pid; berth checks the executor container's identity from Docker.)
#[tokio::test]
async fn a_new_agent_container_after_docker_kill_keeps_the_task_and_its_executor() {
    let mut agent = AgentContainer::start(&["--docker_remove_delay", "1secs"]).await;
    let id = agent.running_counter().await;
    let task_before = identity(&agent.task_name(&id), "the task's container");
    let executor_before = identity(
        &agent.executor_name(&id),
        "the executor's container (each command task's executor runs in a container of its own)",
    );

    agent.kill().await;
    let lines = agent.stdout_lines(&id).len();
    eventually(
        LIMIT,
        "the sandbox's stdout to grow while no agent runs (the executor writes it)",
        async || {
            assert!(!running(&agent.id), "the killed agent container runs again");
            (agent.stdout_lines(&id).len() > lines + 3).then_some(())
        },
    )
    .await;

    let old = agent.id.clone();
    agent.replace().await;
    assert_ne!(agent.id, old, "a new agent container");
    the_task_was_untouched(&agent, &id, &task_before, &executor_before).await;
}

/// `docker restart` of the agent's container: the same checks as a new container.
#[tokio::test]
async fn docker_restart_of_the_agent_keeps_the_task_and_its_executor() {
    let mut agent = AgentContainer::start(&["--docker_remove_delay", "1secs"]).await;
    let id = agent.running_counter().await;
    let task_before = identity(&agent.task_name(&id), "the task's container");
    let executor_before = identity(
        &agent.executor_name(&id),
        "the executor's container (each command task's executor runs in a container of its own)",
    );
    let agent_before = identity(&agent.id, "the agent's container");

    agent.restart().await;
    assert_ne!(
        identity(&agent.id, "the agent's container").started_at,
        agent_before.started_at,
        "docker restart started the agent's container again"
    );
    the_task_was_untouched(&agent, &id, &task_before, &executor_before).await;
}

/// An executor container killed under a running agent: the task ends LOST, its container
/// is stopped, and both containers are removed at the due time. (Mesos removes the
/// `.executor` container by an in-memory timer that a restart forgets; berth's due time
/// is durable.)
#[tokio::test]
async fn an_executor_container_killed_ends_the_task_lost_and_its_containers_go() {
    let agent = AgentContainer::start(&["--docker_remove_delay", "1secs"]).await;
    let id = agent.running_counter().await;
    let task = agent.task_name(&id);
    let executor = agent.executor_name(&id);
    assert!(
        running(&executor),
        "no running executor container {executor}: each command task's executor runs in a container of its own"
    );

    docker_ok(&["kill", &executor]);
    let done = agent.wait(&id).await;
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    eventually(
        LIMIT,
        "the task's container to stop and both containers to be removed (--docker_remove_delay 1secs)",
        async || (gone(&task) && gone(&executor)).then_some(()),
    )
    .await;
}

/// Orphaned executor containers at start: this agent's (named and labelled for it, with no
/// record) is removed; another agent's and foreign `.executor` names are left running.
/// Mesos 1.4+ splits `mesos-<id>.executor` on `.` and fails the UUID check on "executor",
/// so it never recognises, never stops and never removes its own orphaned executor
/// containers; berth's names round-trip, `.executor` included.
#[tokio::test]
async fn orphaned_executor_containers_of_this_agent_are_removed_and_no_others() {
    let mut agent = AgentContainer::start(&[]).await;
    agent.stop();

    let uuid = || uuid::Uuid::new_v4().to_string();
    let orphan_id = uuid();
    // As berth names and labels an executor container it made.
    let ours = format!("mesos-{}.{orphan_id}.executor", agent.agent_id);
    let other_agent = uuid();
    let theirs = format!("mesos-{other_agent}.{}.executor", uuid());
    // Names that are not berth's: Mesos 1.4+'s own executor containers, and any other.
    let mesos = format!("mesos-{}.executor", uuid());
    let foreign = format!("x-{}.executor", uuid());
    let _made = Made(vec![theirs.clone(), mesos.clone(), foreign.clone()]);
    let sleeper = |name: &str, labels: &[String]| {
        let mut args = vec!["run", "-d", "--net=none", "--name", name];
        for label in labels {
            args.extend(["--label", label.as_str()]);
        }
        args.extend([SHELL_IMAGE, "sleep", "1000"]);
        docker_ok(&args);
    };
    sleeper(
        &ours,
        &[
            format!("berth.agent_id={}", agent.agent_id),
            format!("berth.container_id={orphan_id}"),
            "berth.role=executor".to_owned(),
        ],
    );
    sleeper(
        &theirs,
        &[
            format!("berth.agent_id={other_agent}"),
            "berth.role=executor".to_owned(),
        ],
    );
    sleeper(&mesos, &[]);
    sleeper(&foreign, &[]);
    let untouched: Vec<(String, Identity)> = [&theirs, &mesos, &foreign]
        .into_iter()
        .map(|n| (n.clone(), identity(n, "a container of the test's")))
        .collect();

    agent.start_again().await;
    eventually(
        LIMIT,
        "this agent's orphaned executor container to be removed (Mesos 1.4+ never parses `.executor` names, so it never removes these; berth does)",
        async || gone(&ours).then_some(()),
    )
    .await;
    for (name, before) in &untouched {
        assert!(running(name), "{name} was stopped: it is not this agent's");
        assert_eq!(
            &identity(name, "a container of the test's"),
            before,
            "{name} was restarted or replaced: it is not this agent's"
        );
    }
}

/// The agent's own container, renamed so that its name parses as one of this agent's
/// (`mesos-<agent id>.<uuid>`) and restarted, is left alone: it stays up, the agent's log
/// never calls it an orphan, and `berth recover --dry-run` from the host says it is left
/// alone. (Before 1.2 Mesos parsed its own `mesos-slave` container as an agent's and killed
/// it as an orphan.)
#[tokio::test]
async fn the_agents_own_container_is_never_taken_for_an_orphan() {
    let mut agent = AgentContainer::start(&[]).await;
    let disguise = format!("mesos-{}.{}", agent.agent_id, uuid::Uuid::new_v4());
    docker_ok(&["rename", &agent.id, &disguise]);

    agent.restart().await;
    // Health says ok once recovery's decisions are carried out.
    assert!(running(&agent.id), "the agent's container was stopped");
    assert_eq!(
        inspect(&agent.id).expect("the agent's container")["Name"],
        format!("/{disguise}")
    );
    let health = agent.berth(&["health"]);
    assert!(health.status.success(), "{}", text(&health));
    let never_an_orphan = |agent: &AgentContainer| {
        let logs = agent.logs();
        assert!(
            !logs.lines().any(|l| l.contains(&disguise)
                && (l.contains("remove orphan") || l.contains("report orphan"))),
            "the agent's recovery took its own container for an orphan:\n{logs}"
        );
    };
    never_an_orphan(&agent);

    agent.stop();
    let out = agent.berth(&["recover", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    let row = plan
        .lines()
        .find(|l| l.starts_with(&disguise))
        .unwrap_or_else(|| {
            panic!("the plan does not mention the agent's own container {disguise}:\n{plan}")
        });
    assert!(
        row.contains("leave alone"),
        "the plan would act on the agent's own container:\n{plan}"
    );

    agent.start_again().await;
    assert!(running(&agent.id), "the agent's container was stopped");
    never_an_orphan(&agent);
}

/// Starts an agent container with `setup`, waits until it exits, and checks that it
/// refused: a non-zero exit, `phrases` in its log, and nothing made in the work dir.
async fn refuses(setup: Setup, phrases: &[&str]) {
    require_engine();
    let work = tempfile::tempdir().expect("tempdir");
    let wd = utf8(work.path());
    let image = agent_image();
    let name = format!("berth-agent-test-{}", uuid::Uuid::new_v4());
    let _made = Made(vec![name.clone()]);
    let args = run_args(setup, &name, wd, image, &[], &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_ok(&args);
    let info = eventually(LIMIT, "the agent to refuse and exit", async || {
        inspect(&name).filter(|i| i["State"]["Running"] == false)
    })
    .await;
    let logs = text(&docker_cli(&["logs", &name]));
    assert_ne!(
        info["State"]["ExitCode"], 0,
        "the agent exited 0 with {setup:?}:\n{logs}"
    );
    for phrase in phrases {
        assert!(
            logs.contains(phrase),
            "the refusal with {setup:?} does not say {phrase:?}:\n{logs}"
        );
    }
    assert!(
        !work.path().join("state").exists(),
        "the refused agent made a store in the work dir"
    );
    let left: Vec<_> = std::fs::read_dir(work.path())
        .expect("read the work dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(
        left.is_empty(),
        "the refused agent made {left:?} in the work dir"
    );
}

/// Mesos checks none of its set-up; a work dir at another path breaks every sandbox mount
/// (the host daemon resolves bind paths on the host). berth refuses at start.
#[tokio::test]
async fn refuses_a_work_dir_at_another_path_inside() {
    refuses(Setup::WorkDirElsewhere, &["--work_dir", "same path"]).await;
}

#[tokio::test]
async fn refuses_without_the_docker_socket() {
    refuses(Setup::NoSocket, &["Docker socket"]).await;
}

#[tokio::test]
async fn refuses_an_absent_docker_mesos_image() {
    refuses(Setup::AbsentImage, &["is not present"]).await;
}

/// Without `--pid=host` Mesos starts, and every task is LOST after the first restart of
/// the agent (it checks executors by pid); berth refuses at start and says so.
#[tokio::test]
async fn refuses_without_the_host_pid_namespace() {
    refuses(Setup::NoHostPid, &["--pid=host"]).await;
}

/// From the host, on the agent container's work dir: `berth state ls` through the running
/// agent and offline once it is gone; `berth recover --dry-run` refuses while the agent
/// holds the store (and changes nothing), and once the agent's container is killed it
/// plans to re-adopt the task and leaves the agent's own container alone.
#[tokio::test]
async fn state_and_recover_dry_run_work_from_the_host() {
    let mut agent = AgentContainer::start(&["--docker_remove_delay", "1secs"]).await;
    let id = agent.running_counter().await;

    let ls = agent.berth(&["state", "ls"]);
    assert!(ls.status.success(), "{}", text(&ls));
    assert!(
        text(&ls).contains(&id),
        "state ls through the agent: {}",
        text(&ls)
    );

    let dry_run = ["recover", "--dry-run"];
    let refused = agent.berth(&dry_run);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("agent is running"),
        "{}",
        text(&refused)
    );
    assert!(running(&agent.id), "the agent's container");
    assert_eq!(agent.ps_state(&id), "TASK_RUNNING");

    agent.kill().await;
    let ls = agent.berth(&["state", "ls"]);
    assert!(ls.status.success(), "{}", text(&ls));
    assert!(text(&ls).contains(&id), "state ls offline: {}", text(&ls));
    let out = agent.berth(&dry_run);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    let row = plan
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}:\n{plan}"));
    assert!(
        row.contains("re-adopt"),
        "the executor's container still runs, so a start would re-adopt the task:\n{plan}"
    );
    let agent_name = inspect(&agent.id).expect("the agent's container")["Name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    for line in plan.lines().filter(|l| l.contains(&agent_name)) {
        assert!(
            line.contains("leave alone"),
            "the plan would act on the agent's own container:\n{plan}"
        );
    }
    assert!(
        !plan.contains("remove orphan") && !plan.contains("report orphan"),
        "nothing here is an orphan:\n{plan}"
    );
    assert!(running(&agent.task_name(&id)), "a dry run stopped the task");

    agent.replace().await;
    assert_eq!(
        agent.ps_state(&id),
        "TASK_RUNNING",
        "re-adopted by the new agent"
    );
}

/// The agent's container dies (an abort at a crash point, as a SIGKILL there) just before
/// and just after it records the executor container's identity: the executor was started
/// but never released, so it started nothing, and the next agent container on the work
/// dir removes that executor container and runs the task once, in a new one.
#[tokio::test]
async fn a_crash_around_the_executor_containers_record_runs_the_task_once() {
    for point in [
        "record-ExecutorContainerStarting-before",
        "record-ExecutorContainerStarting-after",
    ] {
        let mut agent = AgentContainer::start_with_env(
            &["--docker_remove_delay", "1secs"],
            vec![format!("FAILPOINTS={point}=return")],
        )
        .await;
        let id = agent.launch(&[
            "--image",
            SHELL_IMAGE,
            "--command",
            "echo start >> /mnt/mesos/sandbox/starts; echo done",
        ]);
        eventually(
            LIMIT,
            "the agent's container to die at the crash point",
            async || (!running(&agent.id)).then_some(()),
        )
        .await;
        let first = identity(
            &agent.executor_name(&id),
            "the executor's container, started before the crash",
        );
        agent.env.clear();
        agent.replace().await;
        let end = agent.wait(&id).await;
        assert_eq!(end["state"], "TASK_FINISHED", "{point}: {end}");
        let starts = std::fs::read_to_string(agent.sandbox(&id).join("starts")).unwrap_or_default();
        assert_eq!(
            starts.lines().count(),
            1,
            "{point}: the task started {} times (its sandbox's starts file: {starts:?})",
            starts.lines().count()
        );
        assert_eq!(agent.stdout_lines(&id), ["done"], "{point}");
        eventually(
            LIMIT,
            "the executor container that never ran the task to be removed",
            async || gone(&first.id).then_some(()),
        )
        .await;
    }
}

/// A plain-process task (no image: `--containerizers` takes `mesos`) runs in its
/// executor's container, from the agent's image, with the host's network, so it too
/// outlives the agent's container: after `docker kill` and a new agent container it runs
/// on, untouched and watched again: a kill ends it KILLED with its output whole, and its
/// executor container killed ends another LOST.
#[tokio::test]
async fn a_plain_process_outlives_the_agents_container_in_its_executors() {
    let mut agent =
        AgentContainer::start(&["--docker_remove_delay", "1secs", PLAIN_PROCESSES]).await;
    let plain = |n: u32| {
        let task = agent.work.path().join(format!("plain-{n}.json"));
        let json = serde_json::json!({
            "task_id": {"value": format!("plain-{n}-{}", uuid::Uuid::new_v4())},
            "command": {"value": COUNTER},
        });
        std::fs::write(&task, json.to_string()).expect("write the TaskInfo");
        agent.launch(&["--file", utf8(&task)])
    };
    let (killed, lost) = (plain(1), plain(2));
    for id in [&killed, &lost] {
        eventually(LIMIT, "the plain processes to run", async || {
            (agent.ps_state(id) == "TASK_RUNNING" && agent.stdout_lines(id).len() > 3).then_some(())
        })
        .await;
        let info = inspect(&agent.executor_name(id)).expect("the executor's container");
        assert_eq!(info["HostConfig"]["NetworkMode"], "host", "{info}");
        assert!(
            gone(&agent.task_name(id)),
            "a plain process has no task container"
        );
    }
    let before = identity(&agent.executor_name(&killed), "the executor's container");

    agent.kill().await;
    let lines = agent.stdout_lines(&killed).len();
    eventually(
        LIMIT,
        "the output to grow while no agent runs",
        async || (agent.stdout_lines(&killed).len() > lines + 3).then_some(()),
    )
    .await;
    agent.replace().await;
    assert_eq!(
        identity(&agent.executor_name(&killed), "the executor's container"),
        before,
        "the executor's container was replaced or restarted"
    );
    assert_eq!(agent.ps_state(&killed), "TASK_RUNNING");

    docker_ok(&["kill", &agent.executor_name(&lost)]);
    let end = agent.wait(&lost).await;
    assert_eq!(
        end["state"], "TASK_LOST",
        "an executor container killed under the new agent: {end}"
    );

    let out = agent.berth(&["kill", &killed]);
    assert!(out.status.success(), "berth kill: {}", text(&out));
    let done = agent.wait(&killed).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_counts_from_zero(&agent.stdout_lines(&killed), "the sandbox's stdout");
    eventually(
        LIMIT,
        "the executors' containers to be removed (--docker_remove_delay 1secs)",
        async || {
            (gone(&agent.executor_name(&killed)) && gone(&agent.executor_name(&lost))).then_some(())
        },
    )
    .await;
}

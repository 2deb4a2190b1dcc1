//! Shared set-up for the integration tests: the engine check, fixtures' names, stand-in
//! CLIs, and cleanup of the containers a test created.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth::docker::{Docker, DockerConfig};

/// Plain shell image, `CMD ["/bin/sh"]`.
pub const SHELL_IMAGE: &str = "berth-test/shell:latest";
/// Image whose default CMD prints `default-cmd`.
pub const CMD_IMAGE: &str = "berth-test/cmd:latest";
/// Mesos's inky: `ENTRYPOINT ["echo"]`, `CMD ["inky"]`.
pub const INKY_IMAGE: &str = "berth-test/inky:latest";
/// Traps SIGTERM and prints `berth-test: got SIGTERM`.
pub const SIGTERM_IMAGE: &str = "berth-test/sigterm:latest";
/// The local registry without authentication.
pub const OPEN_REGISTRY: &str = "127.0.0.1:5056";
/// The local registry with htpasswd authentication.
pub const AUTH_REGISTRY: &str = "127.0.0.1:5055";
/// Its credentials.
pub const AUTH_USER: &str = "berth";
/// Its credentials.
pub const AUTH_PASSWORD: &str = "berth-secret";

/// Runs the real docker CLI for a test's own set-up and checks.
pub fn docker_cli(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `docker {}`: {e}", args.join(" ")))
}

/// Like [`docker_cli`], but the call must succeed; returns its stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker_cli(args);
    assert!(
        out.status.success(),
        "`docker {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails the test, with what to do, unless the engine and the test images are there.
pub fn require_engine() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let info = docker_cli(&["info", "--format", "{{.ServerVersion}}"]);
        if !info.status.success() {
            return Err(format!(
                "the Docker engine is not reachable ({}): run the tests with scripts/test, \
                 which installs and starts it",
                String::from_utf8_lossy(&info.stderr).trim()
            ));
        }
        for image in [SHELL_IMAGE, CMD_IMAGE, INKY_IMAGE, SIGTERM_IMAGE] {
            if !docker_cli(&["image", "inspect", image]).status.success() {
                return Err(format!(
                    "test image {image} is missing: run scripts/test (or scripts/docker-engine images)"
                ));
            }
        }
        Ok(())
    });
    if let Err(why) = checked {
        panic!("{why}");
    }
}

/// A handle on the real CLI with default settings.
pub fn docker() -> Docker {
    require_engine();
    Docker::new(DockerConfig::default())
}

/// A handle on another CLI (a stand-in or a wrapper).
pub fn docker_at(program: &Path) -> Docker {
    Docker::new(DockerConfig {
        program: program.to_owned(),
        ..DockerConfig::default()
    })
}

/// Writes an executable shell script into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A fresh agent id, so that tests running at once never see each other's containers.
pub fn agent_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Removes the named containers when dropped, also when the test fails.
pub struct Containers(pub Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(self.0.iter().map(String::as_str));
        let _ = docker_cli(&args);
    }
}

/// Polls `check` until it returns `Some`, or panics after `limit` with `what`.
pub async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a process with this pid exists (a zombie counts as gone).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A real `berth agent` in its own work directory, killed (and its containers removed)
/// when dropped.
pub struct TestAgent {
    child: std::process::Child,
    /// Carried by the agent and everything it starts: what the drop sweeps.
    mark: berth_chaos::sweep::RunMark,
    /// Its work directory.
    pub work: tempfile::TempDir,
    /// Its agent id.
    pub agent_id: String,
}

/// The agent flag that lets it run plain processes (tasks without a container), which it
/// refuses by default.
pub const PLAIN_PROCESSES: &str = "--containerizers=docker,mesos";

/// The berth binary under test.
pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn spawn_agent(
    work: &Path,
    mark: &berth_chaos::sweep::RunMark,
    extra: &[&str],
    log: &str,
) -> std::process::Child {
    spawn_agent_with(work, mark, extra, log, &[])
}

fn spawn_agent_with(
    work: &Path,
    mark: &berth_chaos::sweep::RunMark,
    extra: &[&str],
    log: &str,
    env: &[(&str, &str)],
) -> std::process::Child {
    spawn_agent_under(&[], work, mark, extra, log, env)
}

/// Spawns the agent as the last argument of `wrapper` (which must exec it, so that the
/// child is the agent), or by itself when `wrapper` is empty.
fn spawn_agent_under(
    wrapper: &[&str],
    work: &Path,
    mark: &berth_chaos::sweep::RunMark,
    extra: &[&str],
    log: &str,
    env: &[(&str, &str)],
) -> std::process::Child {
    let (key, value) = mark.env();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(BERTH);
            command
        }
        None => Command::new(BERTH),
    };
    // A developer's own BERTH_/MESOS_ settings never steer a test's agent, nor do their
    // proxies send its fetches of the tests' loopback servers off the machine.
    for name in berth::flag_env::inherited_variables_to_clear() {
        command.env_remove(name);
    }
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command
        .env(key, value)
        .envs(env.iter().copied())
        .arg("agent")
        .arg("--work_dir")
        .arg(work)
        .args(if extra.contains(&"--docker_remove_delay") {
            &[][..]
        } else {
            &["--docker_remove_delay", "1hrs"][..]
        })
        .args(extra)
        .stderr(std::fs::File::create(work.join(log)).expect("log"))
        .spawn()
        .expect("start agent")
}

/// The variables the agent's fetcher takes its proxies from.
const PROXY_VARIABLES: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Waits until the agent in `work` has recovered and answers; returns its id.
async fn wait_healthy(work: &Path) -> String {
    let client = berth::api::client::Client::new(work.join("berth.sock"));
    let health: serde_json::Value =
        eventually(Duration::from_secs(60), "the agent's API", async || {
            let health: serde_json::Value = client
                .get("/v1/health", Duration::from_secs(5))
                .await
                .ok()?;
            (health["status"] == "ok").then_some(health)
        })
        .await;
    health["agent_id"].as_str().expect("agent id").to_owned()
}

impl TestAgent {
    /// Starts an agent with extra flags and waits until its API answers.
    pub async fn start(extra: &[&str]) -> TestAgent {
        TestAgent::start_in(tempfile::tempdir().expect("tempdir"), extra).await
    }

    /// Starts an agent in the given work directory.
    pub async fn start_in(work: tempfile::TempDir, extra: &[&str]) -> TestAgent {
        require_engine();
        let mark = berth_chaos::sweep::RunMark::new();
        let child = spawn_agent(work.path(), &mark, extra, "agent.log");
        let agent_id = wait_healthy(work.path()).await;
        TestAgent {
            child,
            mark,
            work,
            agent_id,
        }
    }

    /// Starts an agent as the last argument of `wrapper`, which must exec it (such as
    /// `unshare -m ... sh -c '...; exec "$0" "$@"'`).
    pub async fn start_under(wrapper: &[&str], extra: &[&str]) -> TestAgent {
        require_engine();
        let work = tempfile::tempdir().expect("tempdir");
        let mark = berth_chaos::sweep::RunMark::new();
        let child = spawn_agent_under(wrapper, work.path(), &mark, extra, "agent.log", &[]);
        let agent_id = wait_healthy(work.path()).await;
        TestAgent {
            child,
            mark,
            work,
            agent_id,
        }
    }

    /// Starts an agent with extra environment (such as `FAILPOINTS`, or flags).
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> TestAgent {
        require_engine();
        let work = tempfile::tempdir().expect("tempdir");
        let mark = berth_chaos::sweep::RunMark::new();
        let child = spawn_agent_with(work.path(), &mark, extra, "agent.log", env);
        let agent_id = wait_healthy(work.path()).await;
        TestAgent {
            child,
            mark,
            work,
            agent_id,
        }
    }

    /// The agent process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the agent process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILLs the agent, as a crash would, leaving its executors and containers.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the agent again in the same work directory (after [`Self::crash`]) and
    /// waits until it has recovered. Its log goes to `agent-<n>.log`.
    pub async fn restart(&mut self, extra: &[&str]) {
        self.restart_recovering(extra).await;
        let agent_id = wait_healthy(self.work.path()).await;
        assert_eq!(agent_id, self.agent_id, "the agent id changed on restart");
    }

    /// Starts the agent again and returns as soon as its API answers, recovered or not.
    pub async fn restart_recovering(&mut self, extra: &[&str]) {
        self.crash();
        let n = std::fs::read_dir(self.work.path())
            .map(|d| d.count())
            .unwrap_or(0);
        self.child = spawn_agent(
            self.work.path(),
            &self.mark,
            extra,
            &format!("agent-{n}.log"),
        );
        let client = berth::api::client::Client::new(self.work.path().join("berth.sock"));
        eventually(Duration::from_secs(60), "the agent's API", async || {
            client
                .get::<serde_json::Value>("/v1/health", Duration::from_secs(5))
                .await
                .ok()
        })
        .await;
    }

    /// Kills the agent (SIGKILL, as a crash would) and its containers; keeps its work
    /// directory for inspection.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.work, tempfile::tempdir().expect("tempdir"))
    }

    /// Runs a CLI command against this agent.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .args(args)
            .arg("--work_dir")
            .arg(self.work.path())
            .output()
            .expect("run berth")
    }

    /// Launches with CLI flags; returns the container id.
    pub fn launch(&self, args: &[&str]) -> String {
        let mut full = vec!["launch"];
        full.extend_from_slice(args);
        let out = self.berth(&full);
        assert!(
            out.status.success(),
            "launch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Launches a TaskInfo JSON; returns the CLI's output.
    pub fn launch_json(&self, json: &str) -> Output {
        let path = self
            .work
            .path()
            .join(format!("task-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, json).expect("write task");
        self.berth(&["launch", "--file", path.to_str().expect("utf-8 path")])
    }

    /// `berth wait --json`: the final view.
    pub fn wait(&self, id: &str) -> serde_json::Value {
        let out = self.berth(&["wait", id, "--json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("wait {id}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// The sandbox of a container.
    pub fn sandbox(&self, id: &str) -> PathBuf {
        self.work.path().join("sandboxes").join(id)
    }

    /// The agent's containers, as Docker lists them.
    pub fn containers(&self) -> Vec<String> {
        docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=berth.agent_id={}", self.agent_id),
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Executors outlive the agent by design; one still starting its container would
        // create it after the listing below.
        self.mark.kill_all();
        // A `docker run` killed just after it sent its create leaves the daemon to finish
        // it after a first listing.
        remove_until_quiet(|| self.containers(), Duration::from_secs(10));
    }
}

/// Removes the containers `list` names (names or ids), listing again until two listings
/// half a second apart find nothing, within `within`: a container whose create was
/// already sent when its maker died appears after a first listing.
pub fn remove_until_quiet(list: impl Fn() -> Vec<String>, within: Duration) {
    let deadline = Instant::now() + within;
    let mut quiet = 0;
    while quiet < 2 && Instant::now() < deadline {
        let found = list();
        if found.is_empty() {
            quiet += 1;
        } else {
            quiet = 0;
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(found.iter().map(String::as_str));
            let _ = docker_cli(&args);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Standard base64 with padding (the `auth` field of a Docker config).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes `<home>/.docker/config.json` with the authenticated registry's credentials.
pub fn write_docker_config(home: &Path) {
    let auth = base64(format!("{AUTH_USER}:{AUTH_PASSWORD}").as_bytes());
    let dir = home.join(".docker");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{AUTH_REGISTRY}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("write config");
}

/// Pushes the shell image to the authenticated registry under a name of its own, so that a
/// test's pulls cannot race another test's, and removes the local copy: the next pull of
/// the returned reference must really reach the registry.
pub fn push_private(name: &str) -> String {
    let image = format!(
        "{AUTH_REGISTRY}/berth-test/{name}-{}:latest",
        uuid::Uuid::new_v4().simple()
    );
    let config = tempfile::tempdir().expect("tempdir");
    write_docker_config(config.path());
    let config_dir = config.path().join(".docker");
    let config_dir = config_dir.to_str().expect("utf-8 path");
    docker_ok(&["tag", SHELL_IMAGE, &image]);
    docker_ok(&["--config", config_dir, "push", &image]);
    docker_ok(&["rmi", &image]);
    image
}

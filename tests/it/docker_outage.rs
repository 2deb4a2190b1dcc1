//! The Docker daemon restarted under running tasks. The suite's shared engine is never
//! touched: each test starts a `dockerd` of its own (its own socket, data and exec roots,
//! pid file) in a network namespace of its own, so that it cannot change the host's
//! interfaces, and points the agent at it with `--docker_socket`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::recovery::{state_of, text};
use crate::support::{eventually, TestAgent, SHELL_IMAGE};

/// A `dockerd` of the test's own, removed with everything it made when dropped.
struct PrivateDocker {
    dir: tempfile::TempDir,
    netns: String,
    live_restore: bool,
    daemon: Option<Child>,
}

impl PrivateDocker {
    async fn start(live_restore: bool) -> PrivateDocker {
        crate::support::require_engine();
        // Short paths: containerd's sockets live under the exec root.
        let dir = tempfile::Builder::new()
            .prefix("bd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let netns = format!("berth-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let made = Command::new("ip")
            .args(["netns", "add", &netns])
            .output()
            .expect("run ip");
        assert!(made.status.success(), "ip netns add: {}", text(&made));
        let mut docker = PrivateDocker {
            dir,
            netns,
            live_restore,
            daemon: None,
        };
        docker.start_daemon().await;
        // The image, from the shared engine.
        let loaded = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {SHELL_IMAGE} | docker -H unix://{} load",
                docker.socket().display()
            ))
            .output()
            .expect("run docker save | load");
        assert!(loaded.status.success(), "load the image: {}", text(&loaded));
        docker
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .expect("run docker")
    }

    async fn start_daemon(&mut self) {
        let root = self.dir.path();
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg("dockerd")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["--bridge=none", "--iptables=false"]);
        if self.live_restore {
            command.arg("--live-restore");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("dockerd.log"))
            .expect("log");
        self.daemon = Some(
            command
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start dockerd"),
        );
        eventually(Duration::from_secs(60), "the private dockerd", async || {
            self.cli(&["info"]).status.success().then_some(())
        })
        .await;
    }

    /// Stops the daemon (SIGTERM, as an upgrade does) and waits until it is gone.
    fn stop_daemon(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            if let Ok(pid) = i32::try_from(daemon.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = daemon.wait();
        }
    }

    fn container_running(&self, name: &str) -> bool {
        self.cli(&["inspect", "-f", "{{.State.Running}}", name])
            .stdout
            .starts_with(b"true")
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let all = self.cli(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&all.stdout).split_whitespace() {
                let _ = self.cli(&["rm", "-f", "-v", id]);
            }
        }
        self.stop_daemon();
        // What the daemon mounted under its roots (overlays, its shm, the netns file).
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&root))
            .collect();
        ours.sort_unstable_by(|a, b| b.cmp(a));
        for mount in ours {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// The counter's lines, as integers.
fn counted(sandbox: &Path) -> Vec<u64> {
    std::fs::read_to_string(sandbox.join("stdout"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

const COUNTER: &str = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done";

async fn counter_on(docker: &PrivateDocker) -> (TestAgent, String) {
    let socket = docker.socket();
    let agent = TestAgent::start(&["--docker_socket", socket.to_str().expect("utf-8")]).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", COUNTER]);
    eventually(Duration::from_secs(30), "the counter to run", async || {
        (state_of(&agent, &id)["state"] == "RUNNING" && counted(&agent.sandbox(&id)).len() > 5)
            .then_some(())
    })
    .await;
    (agent, id)
}

#[tokio::test]
async fn a_live_restore_restart_leaves_the_task_running_with_its_output_whole() {
    let mut docker = PrivateDocker::start(true).await;
    let (agent, id) = counter_on(&docker).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    docker.stop_daemon();
    let before = counted(&agent.sandbox(&id)).len();
    docker.start_daemon().await;
    assert!(docker.container_running(&name), "live-restore kept it");
    // The output goes on past the restart, every line once, in order.
    let lines = eventually(Duration::from_secs(60), "the output to go on", async || {
        let lines = counted(&agent.sandbox(&id));
        (lines.len() > before + 20).then_some(lines)
    })
    .await;
    let expected: Vec<u64> = (0..lines.len() as u64).collect();
    assert_eq!(lines, expected, "a line lost or repeated");
    let view = state_of(&agent, &id);
    assert_eq!(
        view["state"], "RUNNING",
        "reported over while it runs: {view}"
    );
    // Kills still work, through the daemon that came back.
    assert!(agent.berth(&["kill", &id]).status.success());
    let done = eventually(Duration::from_secs(60), "the kill to end it", async || {
        let view = state_of(&agent, &id);
        (view["state"] == "KILLED").then_some(view)
    })
    .await;
    assert_eq!(done["reason"], "REASON_TASK_KILLED", "{done}");
    drop(agent);
}

#[tokio::test]
async fn a_restart_without_live_restore_reports_the_exit_docker_kept() {
    let mut docker = PrivateDocker::start(false).await;
    let (agent, id) = counter_on(&docker).await;
    docker.stop_daemon();
    docker.start_daemon().await;
    let done = crate::serving::ends(&agent, &id).await;
    assert_eq!(done["state"], "FAILED", "{done}");
    assert_eq!(done["reason"], "REASON_COMMAND_EXITED", "{done}");
    assert!(done["exit_code"].as_i64().is_some(), "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Docker daemon"),
        "{done}"
    );
    drop(agent);
}

#[tokio::test]
async fn a_launch_while_docker_is_away_runs_once_it_is_back() {
    let mut docker = PrivateDocker::start(true).await;
    let socket = docker.socket();
    let agent = TestAgent::start(&["--docker_socket", socket.to_str().expect("utf-8")]).await;
    docker.stop_daemon();
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", "echo ran"]);
    let waiting = state_of(&agent, &id);
    assert_eq!(waiting["state"], "STAGING", "{waiting}");
    docker.start_daemon().await;
    let done = eventually(Duration::from_secs(90), "the task to end", async || {
        let view = state_of(&agent, &id);
        let state = view["state"].as_str().unwrap_or_default().to_owned();
        (state != "STAGING" && state != "STARTING" && state != "RUNNING").then_some(view)
    })
    .await;
    assert_eq!(done["state"], "FINISHED", "{done}");
    let out = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).unwrap_or_default();
    assert_eq!(out, "ran\n");
    drop(agent);
}

#[tokio::test]
async fn a_docker_run_that_cannot_reach_the_daemon_is_run_again_once() {
    // A daemon away at the very moment of `docker run` cannot be timed for real: the CLI
    // stands in for one that is away for half a second from each of its first two runs,
    // saying what the real one says.
    let dir = tempfile::tempdir().expect("tempdir");
    let away = "echo 'docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 125";
    let cli = crate::support::script(
        dir.path(),
        "docker-away-at-run",
        &format!(
            "now=$(date +%s%N)\n\
             if [ -e {until} ] && [ \"$now\" -lt \"$(cat {until})\" ]; then {away}; fi\n\
             if [ \"$3\" = run ]; then echo x >> {count}; if [ $(wc -l < {count}) -le 2 ]; then echo $((now + 500000000)) > {until}; {away}; fi; fi\n\
             exec docker \"$@\"",
            count = dir.path().join("runs").display(),
            until = dir.path().join("away-until").display(),
        ),
    );
    let agent = TestAgent::start(&["--docker", cli.to_str().expect("utf-8")]).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", "echo once"]);
    let done = agent.wait(&id);
    assert_eq!(done["state"], "FINISHED", "{done}");
    let out = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).unwrap_or_default();
    assert_eq!(out, "once\n");
    assert_eq!(agent.containers().len(), 1);
}

//! The Docker daemon restarted under running tasks, on a `dockerd` of the test's own
//! ([`PrivateDocker`]).

use std::path::Path;
use std::time::Duration;

use crate::private_docker::PrivateDocker;
use crate::recovery::state_of;
use crate::support::{eventually, TestAgent, SHELL_IMAGE};

/// The counter's lines in the sandbox's `file`, as integers: `N` in `stdout`,
/// `time="N" level=info msg=tick` in `stderr` (as a Go program's logger writes them, and
/// as the Docker CLI's own words about a daemon that went away begin). Any other line
/// fails the test: the files hold the container's output and nothing else.
pub(crate) fn counted_in(sandbox: &Path, file: &str) -> Vec<u64> {
    std::fs::read_to_string(sandbox.join(file))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let number = match file {
                "stderr" => l
                    .strip_prefix("time=\"")
                    .and_then(|rest| rest.strip_suffix("\" level=info msg=tick")),
                _ => Some(l),
            };
            number
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{file} holds a line the task did not write: {l:?}"))
        })
        .collect()
}

/// The counter's lines in `stdout`.
pub(crate) fn counted(sandbox: &Path) -> Vec<u64> {
    counted_in(sandbox, "stdout")
}

/// Counts on both streams, so that a restart in the middle shows in each.
pub(crate) const COUNTER: &str = "i=0; while true; do echo $i; echo \"time=\\\"$i\\\" level=info msg=tick\" >&2; i=$((i+1)); sleep 0.1; done";

/// An agent on `docker` running a task that prints a counter, once it has printed a few.
pub(crate) async fn counter_on(docker: &PrivateDocker) -> (TestAgent, String) {
    let socket = docker.socket();
    let agent = TestAgent::start(&["--docker_socket", socket.to_str().expect("utf-8")]).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", COUNTER]);
    eventually(Duration::from_secs(30), "the counter to run", async || {
        (state_of(&agent, &id)["state"] == "TASK_RUNNING" && counted(&agent.sandbox(&id)).len() > 5)
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
    assert_eq!(lines, expected, "a line lost or repeated in stdout");
    // Its stderr too, though its lines begin as the Docker CLI's own words about a daemon
    // that went away do.
    let errors = counted_in(&agent.sandbox(&id), "stderr");
    assert!(errors.len() > before, "stderr went on: {errors:?}");
    let expected: Vec<u64> = (0..errors.len() as u64).collect();
    assert_eq!(errors, expected, "a line lost or repeated in stderr");
    let view = state_of(&agent, &id);
    assert_eq!(
        view["state"], "TASK_RUNNING",
        "reported over while it runs: {view}"
    );
    // Kills still work, through the daemon that came back.
    assert!(agent.berth(&["kill", &id]).status.success());
    let done = eventually(Duration::from_secs(60), "the kill to end it", async || {
        let view = state_of(&agent, &id);
        (view["state"] == "TASK_KILLED").then_some(view)
    })
    .await;
    assert_eq!(done["reason"], serde_json::Value::Null, "{done}");
    drop(agent);
}

#[tokio::test]
async fn a_restart_without_live_restore_reports_the_exit_docker_kept() {
    let mut docker = PrivateDocker::start(false).await;
    let (agent, id) = counter_on(&docker).await;
    docker.stop_daemon();
    docker.start_daemon().await;
    let done = crate::serving::ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], serde_json::Value::Null, "{done}");
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
    assert_eq!(waiting["state"], "TASK_STAGING", "{waiting}");
    docker.start_daemon().await;
    let done = eventually(Duration::from_secs(90), "the task to end", async || {
        let view = state_of(&agent, &id);
        let state = view["state"].as_str().unwrap_or_default().to_owned();
        (state != "TASK_STAGING" && state != "TASK_STARTING" && state != "TASK_RUNNING")
            .then_some(view)
    })
    .await;
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
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
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let out = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).unwrap_or_default();
    assert_eq!(out, "once\n");
    assert_eq!(agent.containers().len(), 1);
}

#[tokio::test]
async fn what_a_container_says_between_the_daemon_coming_back_and_its_end_reaches_the_sandbox() {
    // The daemon is back, the container says its last words into Docker's log and exits,
    // and only then does the executor, waiting between two looks, find it exited: Docker's
    // log is the only place those words are.
    let mut docker = PrivateDocker::start(true).await;
    let socket = docker.socket();
    let agent = TestAgent::start(&["--docker_socket", socket.to_str().expect("utf-8")]).await;
    let script =
        "echo up; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo late; echo late >&2; exit 4";
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", script]);
    let name = format!("mesos-{}.{id}", agent.agent_id);
    eventually(Duration::from_secs(30), "the task to run", async || {
        (state_of(&agent, &id)["state"] == "TASK_RUNNING").then_some(())
    })
    .await;
    let pid = String::from_utf8_lossy(
        &docker
            .cli(&["inspect", "-f", "{{.State.Pid}}", &name])
            .stdout,
    )
    .trim()
    .to_owned();
    docker.stop_daemon();
    // The executor's waits between two looks have grown to their longest.
    let sandbox = agent.sandbox(&id);
    eventually(
        Duration::from_secs(60),
        "the executor to wait 5 s between looks",
        async || {
            std::fs::read_to_string(sandbox.join("executor.log"))
                .unwrap_or_default()
                .contains("asking again in 5s")
                .then_some(())
        },
    )
    .await;
    docker.start_daemon().await;
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").expect("tell the container to end");
    let done = crate::serving::ends(&agent, &id).await;
    assert_eq!(done["exit_code"], 4, "{done}");
    let out = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
    assert_eq!(out, "up\nlate\n");
    let err = std::fs::read_to_string(sandbox.join("stderr")).unwrap_or_default();
    assert_eq!(err.lines().filter(|l| *l == "late").count(), 1, "{err}");
    drop(agent);
}

/// A counter task as TaskInfo JSON, its log rotated by Docker every `size` (two files
/// kept), in executor mode or not.
pub(crate) fn rotated_counter(executor: bool, size: &str) -> String {
    let command = serde_json::json!({"value": COUNTER, "shell": true});
    let container = serde_json::json!({
        "type": "DOCKER",
        "docker": {
            "image": SHELL_IMAGE,
            "network": "HOST",
            "parameters": [
                {"key": "log-opt", "value": format!("max-size={size}")},
                {"key": "log-opt", "value": "max-file=2"},
            ],
        },
    });
    let id = format!("rotated-{}", uuid::Uuid::new_v4());
    let task = if executor {
        serde_json::json!({"task_id": {"value": id}, "executor": {
            "executor_id": {"value": id}, "command": command, "container": container}})
    } else {
        serde_json::json!({"task_id": {"value": id}, "command": command, "container": container})
    };
    task.to_string()
}

#[tokio::test]
async fn a_log_docker_rotates_is_carried_whole() {
    // Docker's follower sends the last message again each time it rotates the log.
    let agent = TestAgent::start(&[]).await;
    let out = agent.launch_json(&rotated_counter(false, "1k"));
    assert!(out.status.success(), "{}", crate::recovery::text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // Well past a few rotations of a kilobyte.
    let lines = eventually(
        Duration::from_secs(60),
        "the log to rotate a few times",
        async || {
            let lines = counted_in(&agent.sandbox(&id), "stdout");
            (lines.len() > 150).then_some(lines)
        },
    )
    .await;
    let expected: Vec<u64> = (0..lines.len() as u64).collect();
    assert_eq!(lines, expected, "a line lost or repeated in stdout");
    let errors = counted_in(&agent.sandbox(&id), "stderr");
    let expected: Vec<u64> = (0..errors.len() as u64).collect();
    assert_eq!(errors, expected, "a line lost or repeated in stderr");
}

//! Executor mode (`--executor`: the task's image is its own executor) while the Docker
//! daemon restarts or is away, on a `dockerd` of the test's own ([`PrivateDocker`]). The
//! agent watches such a container itself, so it is the agent that must not report a
//! running task over, nor lose or repeat its output, and that must wait for Docker to
//! launch.

use std::path::Path;
use std::time::Duration;

use crate::docker_outage::{counted_in, COUNTER};
use crate::private_docker::PrivateDocker;
use crate::recovery::{state_of, text};
use crate::serving::{ends, executor_mode};
use crate::support::{eventually, TestAgent};

fn agent_flags(docker: &PrivateDocker) -> Vec<String> {
    vec![
        "--docker_socket".to_owned(),
        docker.socket().to_str().expect("utf-8").to_owned(),
    ]
}

async fn agent_on(docker: &PrivateDocker) -> TestAgent {
    let flags = agent_flags(docker);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestAgent::start(&flags).await
}

/// An executor-mode counter on both streams, running with a few lines out.
async fn counter_on(docker: &PrivateDocker) -> (TestAgent, String) {
    let agent = agent_on(docker).await;
    let id = executor_mode(&agent, COUNTER);
    eventually(Duration::from_secs(30), "the counter to run", async || {
        (state_of(&agent, &id)["state"] == "TASK_RUNNING"
            && counted_in(&agent.sandbox(&id), "stdout").len() > 5
            && counted_in(&agent.sandbox(&id), "stderr").len() > 5)
            .then_some(())
    })
    .await;
    (agent, id)
}

/// The counter's lines in `file`, checked to be every number once, in order; the lines
/// that are not the counter's (the Docker CLI's own words in `stderr`) are left out.
fn whole(sandbox: &Path, file: &str) -> Vec<u64> {
    let lines = counted_in(sandbox, file);
    let expected: Vec<u64> = (0..lines.len() as u64).collect();
    assert_eq!(lines, expected, "a line lost or repeated in {file}");
    lines
}

/// Waits until both streams hold more than `before` lines, then checks they are whole.
async fn output_goes_on(agent: &TestAgent, id: &str, before: usize) {
    let sandbox = agent.sandbox(id);
    eventually(Duration::from_secs(90), "the output to go on", async || {
        (counted_in(&sandbox, "stdout").len() > before + 20
            && counted_in(&sandbox, "stderr").len() > before + 20)
            .then_some(())
    })
    .await;
    whole(&sandbox, "stdout");
    whole(&sandbox, "stderr");
}

/// `berth kill`, then KILLED on request.
async fn kill(agent: &TestAgent, id: &str) {
    let out = agent.berth(&["kill", id]);
    assert!(out.status.success(), "{}", text(&out));
    let done = ends(agent, id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], serde_json::Value::Null, "{done}");
}

#[tokio::test]
async fn a_live_restore_restart_leaves_an_executor_mode_task_running_with_its_output_whole() {
    let mut docker = PrivateDocker::start(true).await;
    let (agent, id) = counter_on(&docker).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    docker.stop_daemon();
    let before = counted_in(&agent.sandbox(&id), "stdout").len();
    docker.start_daemon().await;
    assert!(docker.container_running(&name), "live-restore kept it");
    output_goes_on(&agent, &id, before).await;
    let view = state_of(&agent, &id);
    assert_eq!(
        view["state"], "TASK_RUNNING",
        "reported over while it runs: {view}"
    );
    kill(&agent, &id).await;
    assert!(!docker.container_running(&name));
    // After the kill, the output stands as it was: whole, and not started again.
    whole(&agent.sandbox(&id), "stdout");
    whole(&agent.sandbox(&id), "stderr");
    drop(agent);
}

#[tokio::test]
async fn a_restart_without_live_restore_reports_the_exit_docker_kept_for_an_executor_mode_task() {
    let mut docker = PrivateDocker::start(false).await;
    let (agent, id) = counter_on(&docker).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    docker.stop_daemon();
    docker.start_daemon().await;
    let done = ends(&agent, &id).await;
    let kept = docker.cli(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    let kept: i64 = String::from_utf8_lossy(&kept.stdout)
        .trim()
        .parse()
        .expect("an exit code");
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], serde_json::Value::Null, "{done}");
    assert_eq!(done["exit_code"], kept, "{done}");
    let message = done["message"].as_str().unwrap_or_default();
    assert!(message.contains("Docker daemon"), "{done}");
    assert!(message.contains(&format!("status {kept}")), "{done}");
    whole(&agent.sandbox(&id), "stdout");
    whole(&agent.sandbox(&id), "stderr");
    drop(agent);
}

#[tokio::test]
async fn an_executor_mode_launch_while_docker_is_away_runs_once_it_is_back() {
    let mut docker = PrivateDocker::start(true).await;
    let agent = agent_on(&docker).await;
    docker.stop_daemon();
    let id = executor_mode(&agent, "echo ran");
    let waiting = state_of(&agent, &id);
    assert_eq!(waiting["state"], "TASK_STAGING", "{waiting}");
    docker.start_daemon().await;
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let out = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).unwrap_or_default();
    assert_eq!(out, "ran\n");
    let listed = docker.cli(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.container_id={id}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(text(&listed).lines().count(), 1, "{}", text(&listed));
    drop(agent);
}

/// An agent whose Docker CLI says the daemon is away for its first `away` creates (all
/// of them when `None`), as the real one does; returns the agent and the stand-in's
/// directory, where `creates` counts the creates asked for.
async fn agent_with_create_away(away: Option<u32>) -> (TestAgent, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = away.map_or("-1".to_owned(), |n| n.to_string());
    // The agent calls `docker -H unix://SOCKET create ...`.
    let cli = crate::support::script(
        dir.path(),
        "docker-away-at-create",
        &format!(
            "if [ \"$3\" = create ]; then echo x >> {count}; n=$(wc -l < {count}); \
             if [ {limit} -lt 0 ] || [ $n -le {limit} ]; then \
             echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1; fi; fi\n\
             exec docker \"$@\"",
            count = dir.path().join("creates").display(),
        ),
    );
    let agent = TestAgent::start(&["--docker", cli.to_str().expect("utf-8")]).await;
    (agent, dir)
}

fn creates(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("creates"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test]
async fn a_create_that_cannot_reach_docker_is_tried_again_and_runs_once() {
    let (agent, dir) = agent_with_create_away(Some(2)).await;
    let id = executor_mode(&agent, "echo once");
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let out = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).unwrap_or_default();
    assert_eq!(out, "once\n");
    assert_eq!(creates(dir.path()), 3);
    assert_eq!(agent.containers().len(), 1);
}

#[tokio::test]
async fn a_kill_ends_an_executor_mode_launch_waiting_for_docker() {
    let (agent, dir) = agent_with_create_away(None).await;
    let id = executor_mode(&agent, "echo never");
    eventually(
        Duration::from_secs(30),
        "a create to be tried",
        async || (creates(dir.path()) > 0).then_some(()),
    )
    .await;
    let out = agent.berth(&["kill", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], "REASON_TASK_KILLED_DURING_LAUNCH", "{done}");
    assert!(agent.containers().is_empty(), "{:?}", agent.containers());
}
#[tokio::test]
async fn an_agent_restarted_while_docker_was_away_follows_the_output_on_whole() {
    let mut docker = PrivateDocker::start(true).await;
    let (mut agent, id) = counter_on(&docker).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    // The process carrying the output waits for the daemon; the agent dies before Docker
    // is back, and the one that starts next re-adopts the carrier that waited.
    docker.stop_daemon();
    let before = counted_in(&agent.sandbox(&id), "stdout").len();
    agent.crash();
    docker.start_daemon().await;
    let flags = agent_flags(&docker);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    agent.restart(&flags).await;
    assert!(docker.container_running(&name));
    output_goes_on(&agent, &id, before).await;
    let view = state_of(&agent, &id);
    assert_eq!(view["state"], "TASK_RUNNING", "{view}");
    kill(&agent, &id).await;
    drop(agent);
}

#[tokio::test]
async fn a_docker_start_that_cannot_reach_docker_is_tried_again_once_it_answers() {
    // A daemon that goes away between the create and the start cannot be timed for real:
    // the CLI stands in for one that is away for two seconds from the first start,
    // saying what the real one says.
    let dir = tempfile::tempdir().expect("tempdir");
    let away = "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1";
    // The agent and the carrier call `docker -H unix://SOCKET VERB ...`.
    let cli = crate::support::script(
        dir.path(),
        "docker-away-at-start",
        &format!(
            "now=$(date +%s%N)\n\
             if [ -e {until} ] && [ \"$now\" -lt \"$(cat {until})\" ]; then {away}; fi\n\
             if [ \"$3\" = start ]; then echo x >> {count}; if [ $(wc -l < {count}) -le 1 ]; then echo $((now + 2000000000)) > {until}; {away}; fi; fi\n\
             exec docker \"$@\"",
            count = dir.path().join("starts").display(),
            until = dir.path().join("away-until").display(),
        ),
    );
    let agent = TestAgent::start(&["--docker", cli.to_str().expect("utf-8")]).await;
    let id = executor_mode(&agent, "echo once");
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let out = std::fs::read_to_string(agent.sandbox(&id).join("stdout")).unwrap_or_default();
    assert_eq!(out, "once\n");
    let starts = std::fs::read_to_string(dir.path().join("starts")).unwrap_or_default();
    assert_eq!(starts.lines().count(), 2);
    assert_eq!(agent.containers().len(), 1);
}

#[tokio::test]
async fn a_carrier_killed_while_the_agent_serves_is_taken_over_with_the_output_whole() {
    let docker = PrivateDocker::start(true).await;
    let (agent, id) = counter_on(&docker).await;
    let carrier = crate::recovery::executor_pid(&agent, &id);
    let before = counted_in(&agent.sandbox(&id), "stdout").len();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(carrier),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL the carrier");
    // The agent carries the output on from where the files stand, starting nothing.
    output_goes_on(&agent, &id, before).await;
    let view = state_of(&agent, &id);
    assert_eq!(view["state"], "TASK_RUNNING", "{view}");
    kill(&agent, &id).await;
    drop(agent);
}

#[tokio::test]
async fn a_carrier_killed_with_the_agent_is_taken_over_at_the_next_start_whole() {
    // Taken over from where the dead carrier saved its place, though Docker rotated the
    // log's first files away meanwhile.
    let docker = PrivateDocker::start(true).await;
    let mut agent = agent_on(&docker).await;
    let out = agent.launch_json(&crate::docker_outage::rotated_counter(true, "8k"));
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let name = format!("mesos-{}.{id}", agent.agent_id);
    // Until Docker rotated the log's first lines away.
    eventually(Duration::from_secs(60), "the log to rotate", async || {
        let out = docker.cli(&["logs", &name]);
        let first: Option<u64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.parse().ok());
        first.is_some_and(|n| n > 0).then_some(())
    })
    .await;
    let carrier = crate::recovery::executor_pid(&agent, &id);
    agent.crash();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(carrier),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL the carrier");
    let before = counted_in(&agent.sandbox(&id), "stdout").len();
    let flags = agent_flags(&docker);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    agent.restart(&flags).await;
    output_goes_on(&agent, &id, before).await;
    let view = state_of(&agent, &id);
    assert_eq!(view["state"], "TASK_RUNNING", "{view}");
    drop(agent);
}

//! What the agent says and does while its Docker daemon is away: `berth health`, the
//! metrics, and kills requested during the outage, on a `dockerd` of the test's own
//! ([`PrivateDocker`]).

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::docker_outage::{counted, counter_on};
use crate::private_docker::PrivateDocker;
use crate::recovery::{state_of, text};
use crate::support::{eventually, TestAgent};

/// `berth health --json` and its exit code.
fn health(agent: &TestAgent) -> (serde_json::Value, Option<i32>) {
    let out = agent.berth(&["health", "--json"]);
    let health = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("health JSON: {e}: {}", text(&out)));
    (health, out.status.code())
}

/// The agent's Prometheus text.
async fn metrics(agent: &TestAgent) -> String {
    berth::api::client::Client::new(agent.work.path().join("berth.sock"))
        .get_text("/metrics", Duration::from_secs(5))
        .await
        .expect("metrics")
}

#[tokio::test]
async fn health_says_docker_is_unavailable_while_the_daemon_is_away() {
    let mut docker = PrivateDocker::start(false).await;
    let socket = docker.socket();
    let agent = TestAgent::start(&["--docker_socket", socket.to_str().expect("utf-8")]).await;
    let (up, code) = health(&agent);
    assert_eq!(up["docker"]["status"], "available", "{up}");
    assert_eq!(code, Some(0), "{up}");
    assert!(
        metrics(&agent)
            .await
            .contains("\nberth_docker_available 1\n"),
        "{}",
        metrics(&agent).await
    );

    // Nothing runs and nobody asks the agent for anything: it notices by itself.
    docker.stop_daemon();
    let (away, code) = eventually(
        Duration::from_secs(60),
        "health to say Docker is unavailable",
        async || {
            let (health, code) = health(&agent);
            (health["docker"]["status"] == "unavailable").then_some((health, code))
        },
    )
    .await;
    assert_eq!(away["status"], "ok", "the agent still serves: {away}");
    assert!(
        away["docker"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Cannot connect to the Docker daemon"),
        "{away}"
    );
    assert!(away["docker"]["since_ms"].as_u64().is_some(), "{away}");
    assert_eq!(code, Some(3), "ready, but Docker is unavailable: {away}");
    let line = text(&agent.berth(&["health"]));
    assert!(line.contains("docker=unavailable"), "{line}");
    let text = metrics(&agent).await;
    assert!(text.contains("\nberth_docker_available 0\n"), "{text}");

    docker.start_daemon().await;
    let (back, _) = eventually(
        Duration::from_secs(60),
        "health to say Docker answers again",
        async || {
            let (health, code) = health(&agent);
            (health["docker"]["status"] == "available" && code == Some(0)).then_some((health, code))
        },
    )
    .await;
    assert!(back["docker"].get("error").is_none(), "{back}");
    let text = metrics(&agent).await;
    assert!(text.contains("\nberth_docker_available 1\n"), "{text}");
    drop(agent);
}

/// Takes every connection to `socket` and closes it once the request is in, unanswered,
/// as an engine going down does: the CLI says `error during connect: ... EOF`.
fn hang_up_on(socket: &Path) -> tokio::task::JoinHandle<()> {
    // The stopped daemon may have left its socket file behind.
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket).expect("bind the socket");
    tokio::spawn(async move {
        loop {
            if let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.read(&mut [0; 4096]).await;
            }
        }
    })
}

// Multi-threaded: the listener answers while the test waits on the CLI.
#[tokio::test(flavor = "multi_thread")]
async fn health_says_docker_is_unavailable_while_its_socket_hangs_up() {
    let mut docker = PrivateDocker::start(false).await;
    let socket = docker.socket();
    let agent = TestAgent::start(&["--docker_socket", socket.to_str().expect("utf-8")]).await;
    assert_eq!(health(&agent).0["docker"]["status"], "available");
    docker.stop_daemon();
    let hanging_up = hang_up_on(&socket);
    let (away, code) = eventually(
        Duration::from_secs(60),
        "health to say Docker is unavailable as the socket hangs up",
        async || {
            let (health, code) = health(&agent);
            let error = health["docker"]["error"].as_str().unwrap_or_default();
            (health["docker"]["status"] == "unavailable" && error.contains("error during connect"))
                .then_some((health, code))
        },
    )
    .await;
    assert_eq!(code, Some(3), "{away}");
    hanging_up.abort();
    drop(agent);
}

/// The task's stored history, as JSON text.
fn history(agent: &TestAgent, id: &str) -> String {
    text(&agent.berth(&["state", "history", id, "--json"]))
}

/// Waits until the task's view says that its kill waits for Docker.
async fn kill_waits_for_docker(agent: &TestAgent, id: &str) -> serde_json::Value {
    eventually(
        Duration::from_secs(90),
        "the task to say its kill waits for Docker",
        async || {
            let view = state_of(agent, id);
            let message = view["message"].as_str().unwrap_or_default();
            (view["state"] == "TASK_KILLING" && message.contains("Docker is unavailable"))
                .then_some(view)
        },
    )
    .await
}

/// Waits until the kill's history says that Docker answered again: the retry that
/// followed came from Docker's answer, not from the end of the backoff.
async fn kill_woken_by_docker(agent: &TestAgent, id: &str) {
    eventually(
        Duration::from_secs(60),
        "the kill's history to say Docker answered again",
        async || {
            history(agent, id)
                .contains("Docker answers again")
                .then_some(())
        },
    )
    .await;
}

/// A counter launched, the daemon stopped, a kill requested while it is away, the daemon
/// started again once the kill's backoff has grown to 16 s: the kill goes on because
/// Docker answers, not at the end of that backoff, and completes.
async fn a_kill_while_docker_is_away_completes_once_it_is_back(live_restore: bool) {
    let mut docker = PrivateDocker::start(live_restore).await;
    let (agent, id) = counter_on(&docker).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    docker.stop_daemon();
    // With live-restore the container outlives the daemon, and its shell (pid 1) ignores
    // SIGTERM: a grace that outlasts the outage keeps the task KILLING once Docker is
    // back, while `docker stop` waits the rest of it out.
    let grace = if live_restore { "40secs" } else { "0secs" };
    let out = agent.berth(&["kill", &id, "--grace", grace]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("TASK_KILLING"), "{}", text(&out));
    kill_waits_for_docker(&agent, &id).await;
    // Docker comes back while the kill waits out a 16 s backoff: until that is over, only
    // Docker's answer can wake it, which its history then says.
    eventually(
        Duration::from_secs(60),
        "the kill's backoff to reach 16 s",
        async || history(&agent, &id).contains("or in 16secs").then_some(()),
    )
    .await;
    docker.start_daemon().await;
    if live_restore {
        // Docker answers while `docker stop` waits out the rest of the grace: the task says
        // its kill's own message again before it ends, as health says Docker is available.
        let view = eventually(
            Duration::from_secs(60),
            "the task to say its kill's own message again",
            async || {
                let view = state_of(&agent, &id);
                (view["message"] == "killed on request").then_some(view)
            },
        )
        .await;
        assert_eq!(
            view["state"], "TASK_KILLING",
            "Docker answered first: {view}"
        );
    }
    let done = crate::serving::ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], serde_json::Value::Null, "{done}");
    kill_woken_by_docker(&agent, &id).await;
    // What Docker kept: the container ended by a signal, the SIGKILL at the end of the
    // grace, or without live-restore the daemon's own stop as it went down.
    let kept = docker.cli(&[
        "inspect",
        "-f",
        "{{.State.Running}} {{.State.ExitCode}}",
        &name,
    ]);
    let kept = text(&kept);
    assert!(
        ["false 137", "false 143"].contains(&kept.trim()),
        "{kept} ({done})"
    );
    assert_eq!(
        done["exit_code"].as_i64().map(|c| c.to_string()),
        kept.trim().split_once(' ').map(|(_, code)| code.to_owned()),
        "the task's exit code is the one Docker kept: {done}"
    );
    let lines = counted(&agent.sandbox(&id));
    let expected: Vec<u64> = (0..lines.len() as u64).collect();
    assert_eq!(lines, expected, "a line lost or repeated");
    drop(agent);
}

#[tokio::test]
async fn a_kill_while_docker_is_away_completes_once_it_is_back_with_live_restore() {
    a_kill_while_docker_is_away_completes_once_it_is_back(true).await;
}

#[tokio::test]
async fn a_kill_while_docker_is_away_completes_once_it_is_back_without_live_restore() {
    a_kill_while_docker_is_away_completes_once_it_is_back(false).await;
}

/// The daemon frozen (its socket takes connections, nothing answers), a kill requested:
/// its calls time out, and the task says that its kill waits for Docker, as health does;
/// once the daemon goes on, the kill completes.
#[tokio::test]
async fn a_kill_while_docker_hangs_says_docker_is_unavailable() {
    let docker = PrivateDocker::start(true).await;
    let (agent, id) = counter_on(&docker).await;
    docker.pause_daemon();
    let out = agent.berth(&["kill", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let view = kill_waits_for_docker(&agent, &id).await;
    let (health, code) = health(&agent);
    assert_eq!(
        health["docker"]["status"], "unavailable",
        "{health} ({view})"
    );
    assert_eq!(code, Some(3), "{health}");
    docker.resume_daemon();
    let done = crate::serving::ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], serde_json::Value::Null, "{done}");
    kill_woken_by_docker(&agent, &id).await;
    drop(agent);
}

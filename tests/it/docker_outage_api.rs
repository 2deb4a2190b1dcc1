//! What the agent says and does while its Docker daemon is away: `berth health`, the
//! metrics, and kills requested during the outage, on a `dockerd` of the test's own
//! ([`PrivateDocker`]).

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::docker_outage::{counted, counter_on};
use crate::private_docker::PrivateDocker;
use crate::recovery::text;
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

/// A counter launched, the daemon stopped, a kill requested while it is away, the daemon
/// started again: the kill completes.
async fn a_kill_while_docker_is_away_completes_once_it_is_back(live_restore: bool) {
    let mut docker = PrivateDocker::start(live_restore).await;
    let (agent, id) = counter_on(&docker).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    docker.stop_daemon();
    let out = agent.berth(&["kill", &id]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("KILLING"), "{}", text(&out));
    // While the kill waits, the task says why.
    eventually(
        Duration::from_secs(60),
        "ps to say the kill waits for Docker",
        async || {
            let ps = text(&agent.berth(&["ps"]));
            ps.lines()
                .any(|l| {
                    l.contains(&id) && l.contains("KILLING") && l.contains("Docker is unavailable")
                })
                .then_some(())
        },
    )
    .await;
    docker.start_daemon().await;
    let done = crate::serving::ends(&agent, &id).await;
    assert_eq!(done["state"], "KILLED", "{done}");
    assert_eq!(done["reason"], "REASON_TASK_KILLED", "{done}");
    assert!(done["exit_code"].as_i64().is_some(), "{done}");
    assert!(!docker.container_running(&name), "the kill stopped it");
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

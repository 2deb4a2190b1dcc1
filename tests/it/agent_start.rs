//! The `berth agent` binary as an operator starts it: it refuses a Docker it cannot use,
//! and otherwise starts, says so, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{eventually, require_engine, script};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

#[tokio::test]
async fn an_unreachable_engine_is_waited_for_then_the_agent_stops_with_the_reason() {
    require_engine();
    let work = tempfile::tempdir().expect("tempdir");
    let socket = work.path().join("berth.sock");
    let agent = std::process::Command::new(BERTH)
        .args([
            "agent",
            "--docker_socket",
            "/nonexistent/docker.sock",
            "--recovery_timeout",
            "4secs",
            "--work_dir",
        ])
        .arg(work.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    let client = berth::api::client::Client::new(socket);
    let health: serde_json::Value = eventually(
        Duration::from_secs(30),
        "the API while recovering",
        async || client.get("/v1/health", Duration::from_secs(5)).await.ok(),
    )
    .await;
    assert_eq!(health["status"], "recovering", "{health}");
    let out = agent.wait_with_output().expect("agent exits");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("docker is not usable after waiting --recovery_timeout (4secs)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unix:///nonexistent/docker.sock"),
        "{stderr}"
    );
}

#[test]
fn an_old_engine_is_refused_by_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No engine this old can be installed here; a stand-in CLI reports it.
    let cli = script(dir.path(), "old-docker", "echo '1.6.2|1.6.2'");
    let out = Command::new(BERTH)
        .arg("agent")
        .arg("--docker")
        .arg(&cli)
        .arg("--work_dir")
        .arg(dir.path().join("work"))
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1.6.2") && stderr.contains("1.8.0"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_agent_starts_and_stops_on_sigterm() {
    require_engine();
    let work = tempfile::tempdir().expect("tempdir");
    let work_dir = work.path().join("nested/work");
    let mut child = Command::new(BERTH)
        .args(["agent", "--log_format", "json", "--work_dir"])
        .arg(&work_dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth");
    let stderr = child.stderr.take().expect("piped");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    eventually(
        Duration::from_secs(30),
        "the agent to log that it started",
        async || {
            while let Ok(line) = rx.try_recv() {
                seen.push(line);
            }
            seen.iter()
                .find(|l| l.contains("berth agent started"))
                .cloned()
        },
    )
    .await;
    assert!(work_dir.is_dir(), "the work dir was created");
    let json: serde_json::Value =
        serde_json::from_str(&seen[0]).expect("--log_format json logs JSON lines");
    assert!(json.get("fields").is_some(), "{json}");

    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("signal the agent");
    let status = eventually(Duration::from_secs(30), "the agent to exit", async || {
        child.try_wait().expect("try_wait")
    })
    .await;
    assert!(status.success(), "{status:?}");
}

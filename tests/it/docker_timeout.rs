//! A hanging CLI: a stand-in that never answers is the only way to make the fault on
//! demand. What is under test is berth's deadline and kill, not Docker.

use std::time::{Duration, Instant};

use berth::docker::{Docker, DockerConfig, DockerError};

use crate::support::{eventually, process_alive, script};

#[tokio::test]
async fn a_hanging_call_is_killed_with_its_children_at_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let cli = script(
        dir.path(),
        "hanging-docker",
        &format!(
            "echo $$ > {p}.cli; sleep 1000 & echo $! > {p}.child; wait",
            p = pids.display()
        ),
    );
    let docker = Docker::new(DockerConfig {
        program: cli,
        call_timeout: Duration::from_millis(500),
        ..DockerConfig::default()
    });
    let started = Instant::now();
    let err = docker.inspect("mesos-x").await.expect_err("must time out");
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(matches!(err, DockerError::Timeout { .. }), "{text}");
    assert!(
        text.contains("inspect") && text.contains("mesos-x"),
        "{text}"
    );
    // The call returned because of the deadline, not because the stand-in ended.
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");

    let read_pid = |suffix: &str| -> i32 {
        let path = format!("{}.{suffix}", pids.display());
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .parse()
            .expect("a pid")
    };
    let (cli_pid, child_pid) = (read_pid("cli"), read_pid("child"));
    eventually(
        Duration::from_secs(10),
        "the stand-in and its child to die",
        async || (!process_alive(cli_pid) && !process_alive(child_pid)).then_some(()),
    )
    .await;
}

#[tokio::test]
async fn a_child_left_holding_the_pipes_does_not_hang_the_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("orphan");
    // Exits at once with valid output but leaves a child holding stdout open.
    let cli = script(
        dir.path(),
        "leaky-docker",
        &format!("sleep 1000 & echo $! > {}; echo '[]'", pid_file.display()),
    );
    let docker = Docker::new(DockerConfig {
        program: cli,
        call_timeout: Duration::from_millis(500),
        ..DockerConfig::default()
    });
    let err = docker
        .inspect("mesos-y")
        .await
        .expect_err("pipes never close");
    assert!(matches!(err, DockerError::Timeout { .. }), "{err}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    eventually(
        Duration::from_secs(10),
        "the leaked child to die",
        async || (!process_alive(pid)).then_some(()),
    )
    .await;
}

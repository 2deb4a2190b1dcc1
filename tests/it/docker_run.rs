//! Run, inspect, stop and remove against the real engine, and the command semantics of the
//! argv builders checked by what the containers actually print.

use std::collections::BTreeMap;
use std::time::Duration;

use berth::docker::argv::{labels, Bind, Command};
use berth::docker::{ContainerName, ContainerState, DockerError, RunSpec};
use uuid::Uuid;

use crate::support::{
    agent_id, docker, docker_ok, eventually, process_alive, Containers, CMD_IMAGE, INKY_IMAGE,
    SHELL_IMAGE, SIGTERM_IMAGE,
};

fn spec(agent: &str, image: &str, command: Command) -> RunSpec {
    let container = Uuid::new_v4();
    RunSpec {
        name: ContainerName::task(agent, container).to_string(),
        image: image.into(),
        labels: vec![
            (labels::AGENT_ID.into(), agent.into()),
            (labels::CONTAINER_ID.into(), container.to_string()),
            (labels::TASK_ID.into(), "task-1".into()),
        ],
        command,
        ..RunSpec::default()
    }
}

#[tokio::test]
async fn run_inspect_stop_remove_round_trip() {
    let docker = docker();
    let agent = agent_id();
    // A ':' in the sandbox path, as in Mesos's LaunchSandboxWithColon.
    let root = tempfile::tempdir().expect("tempdir");
    let sandbox = root.path().join("run:1");
    std::fs::create_dir(&sandbox).expect("sandbox");
    let mut s = spec(
        &agent,
        SHELL_IMAGE,
        Command::Shell("echo \"hello $GREETING\" > /mnt/mesos/sandbox/out; exec sleep 300".into()),
    );
    s.binds = vec![Bind {
        host: sandbox.clone(),
        container: "/mnt/mesos/sandbox".into(),
        read_only: false,
    }];
    s.env = vec![("GREETING".into(), "from berth".into())];
    let name = s.name.clone();
    let _cleanup = Containers(vec![name.clone()]);

    let id = docker.run_detached(&s).await.expect("run");
    let info = eventually(
        Duration::from_secs(30),
        "the container to run",
        async || {
            docker
                .inspect(&name)
                .await
                .expect("inspect")
                .filter(|c| c.state == ContainerState::Running)
        },
    )
    .await;
    assert_eq!(info.id, id);
    assert_eq!(info.name, name);
    let pid = info.pid.expect("a running container has a pid");
    assert!(process_alive(pid as i32), "pid {pid} not alive");
    assert!(info.started_at.is_some());
    assert_eq!(info.exit_code, None);
    let want: BTreeMap<String, String> = s.labels.iter().cloned().collect();
    for (k, v) in &want {
        assert_eq!(info.labels.get(k), Some(v), "label {k}");
    }
    let out = eventually(Duration::from_secs(10), "the sandbox file", async || {
        std::fs::read_to_string(sandbox.join("out"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
    .await;
    assert_eq!(out, "hello from berth\n");

    docker
        .stop(&name, Duration::from_secs(1))
        .await
        .expect("stop");
    let stopped = docker
        .inspect(&name)
        .await
        .expect("inspect")
        .expect("exists");
    assert_eq!(stopped.state, ContainerState::Exited);
    assert_eq!(stopped.pid, None);
    // sleep ignores nothing: SIGTERM ends it (143) or SIGKILL after the grace (137).
    assert!(
        matches!(stopped.exit_code, Some(137) | Some(143)),
        "{stopped:?}"
    );
    assert!(!process_alive(pid as i32));

    docker.rm(&name).await.expect("rm");
    assert_eq!(docker.inspect(&name).await.expect("inspect"), None);
    docker.rm(&name).await.expect("removing twice is fine");
    let err = docker
        .stop(&name, Duration::ZERO)
        .await
        .expect_err("nothing to stop");
    assert!(matches!(err, DockerError::NoSuchContainer(_)), "{err}");
}

#[tokio::test]
async fn stop_gives_the_task_its_grace_period() {
    let docker = docker();
    let s = spec(&agent_id(), SIGTERM_IMAGE, Command::default());
    let name = s.name.clone();
    let _cleanup = Containers(vec![name.clone()]);
    docker.run_detached(&s).await.expect("run");
    eventually(Duration::from_secs(30), "the trap to be set", async || {
        docker_ok(&["logs", &name])
            .contains("berth-test: started")
            .then_some(())
    })
    .await;
    docker
        .stop(&name, Duration::from_secs(10))
        .await
        .expect("stop");
    let logs = docker_ok(&["logs", &name]);
    assert!(logs.contains("berth-test: got SIGTERM"), "{logs}");
    let info = docker
        .inspect(&name)
        .await
        .expect("inspect")
        .expect("exists");
    assert_eq!(
        info.exit_code,
        Some(0),
        "exited by its own trap, not SIGKILL"
    );
}

/// Runs to completion and returns what the container printed.
async fn output_of(s: RunSpec) -> String {
    let docker = docker();
    let name = s.name.clone();
    let _cleanup = Containers(vec![name.clone()]);
    docker.run_detached(&s).await.expect("run");
    let info = eventually(
        Duration::from_secs(30),
        "the container to exit",
        async || {
            docker
                .inspect(&name)
                .await
                .expect("inspect")
                .filter(|c| c.state == ContainerState::Exited)
        },
    )
    .await;
    assert_eq!(info.exit_code, Some(0), "{info:?}");
    docker_ok(&["logs", &name])
}

#[tokio::test]
async fn command_semantics_match_mesos() {
    let agent = agent_id();
    let exec = |value: Option<&str>, arguments: &[&str]| Command::Exec {
        value: value.map(str::to_owned),
        arguments: arguments.iter().map(|a| a.to_string()).collect(),
    };
    let cases = [
        // Default_CMD: no value runs the image's CMD.
        (INKY_IMAGE, exec(None, &[]), "inky\n"),
        (CMD_IMAGE, exec(None, &[]), "default-cmd\n"),
        // Default_CMD_Override: shell=false value replaces CMD, goes to the ENTRYPOINT.
        (INKY_IMAGE, exec(Some("hello"), &[]), "hello\n"),
        // Default_CMD_Args: value and arguments both go to the ENTRYPOINT.
        (INKY_IMAGE, exec(Some("a"), &["b", "c d"]), "a b c d\n"),
        // shell=true bypasses the ENTRYPOINT: /bin/sh -c runs the value.
        (
            INKY_IMAGE,
            Command::Shell("echo from-shell; echo $0".into()),
            "from-shell\n/bin/sh\n",
        ),
        // No ENTRYPOINT: the value is the program.
        (SHELL_IMAGE, exec(Some("echo"), &["plain"]), "plain\n"),
    ];
    for (image, command, want) in cases {
        let got = output_of(spec(&agent, image, command.clone())).await;
        assert_eq!(got, want, "{image} {command:?}");
    }
}

#[tokio::test]
async fn a_run_that_fails_carries_command_exit_code_and_stderr() {
    let docker = docker();
    // A missing image on the local registry: the pull fails without leaving this machine.
    let s = spec(
        &agent_id(),
        "127.0.0.1:5056/berth-test/missing:latest",
        Command::default(),
    );
    let name = s.name.clone();
    let _cleanup = Containers(vec![name.clone()]);
    let err = docker.run_detached(&s).await.expect_err("no such image");
    match &err {
        DockerError::Failed {
            command,
            code,
            stderr,
        } => {
            assert!(
                command.contains("run") && command.contains(&name),
                "{command}"
            );
            assert_eq!(*code, Some(125), "{err}");
            assert!(stderr.contains("berth-test/missing"), "{stderr}");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(docker.inspect(&name).await.expect("inspect"), None);
}

//! The Docker containerizer end to end: a real agent, the CLI, the real engine. Named
//! after the Mesos tests they mirror (mesos-reference.md section 6).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::{docker_ok, eventually, script, TestAgent, PLAIN_PROCESSES, SHELL_IMAGE};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Mesos: ROOT_DOCKER_Launch and ROOT_DOCKER_Logs.
#[tokio::test]
async fn launch_runs_the_task_in_a_named_labelled_container_with_its_sandbox() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo \"$MESOS_CONTAINER_NAME\" > $MESOS_SANDBOX/name; echo out; echo err >&2",
        "--task_id",
        "launch-1",
    ]);
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["task_id"], "launch-1");
    let name = format!("mesos-{}.{id}", agent.agent_id);
    assert_eq!(done["docker_name"], name.as_str());
    assert_eq!(read(agent.sandbox(&id).join("name")).trim(), name);
    assert_eq!(read(agent.sandbox(&id).join("stdout")), "out\n");
    assert_eq!(read(agent.sandbox(&id).join("stderr")), "err\n");
    let labels = docker_ok(&["inspect", "-f", "{{json .Config.Labels}}", &name]);
    let labels: serde_json::Value = serde_json::from_str(&labels).expect("labels");
    assert_eq!(labels["berth.task_id"], "launch-1");
    assert_eq!(labels["berth.container_id"], id.as_str());
    assert_eq!(labels["berth.agent_id"], agent.agent_id.as_str());
    let logs = agent.berth(&["logs", &id]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "out\n");
    let logs = agent.berth(&["logs", &id, "--stderr"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "err\n");
}

/// Mesos: ROOT_DOCKER_Default_CMD, ROOT_DOCKER_Default_CMD_Override and ROOT_DOCKER_Default_CMD_Args.
#[tokio::test]
async fn default_cmd_override_and_args_follow_mesos() {
    let agent = TestAgent::start(&[]).await;
    let cases: [(&[&str], &str); 4] = [
        // Default_CMD: no value, shell=false: the image's CMD.
        (&["--image", "berth-test/inky", "--shell=false"], "inky\n"),
        // Default_CMD_Override: the value replaces CMD and goes to the ENTRYPOINT.
        (
            &[
                "--image",
                "berth-test/inky",
                "--shell=false",
                "--command",
                "hello",
            ],
            "hello\n",
        ),
        // Default_CMD_Args: value and arguments both go to the ENTRYPOINT.
        (
            &[
                "--image",
                "berth-test/inky",
                "--shell=false",
                "--command",
                "a",
                "--arg",
                "b",
            ],
            "a b\n",
        ),
        (
            &["--image", "berth-test/cmd", "--shell=false"],
            "default-cmd\n",
        ),
    ];
    for (args, want) in cases {
        let id = agent.launch(args);
        let done = agent.wait(&id);
        assert_eq!(done["state"], "TASK_FINISHED", "{args:?}: {done}");
        assert_eq!(read(agent.sandbox(&id).join("stdout")), want, "{args:?}");
    }
}

/// Mesos: ROOT_DOCKER_Kill.
#[tokio::test]
async fn kill_gives_the_grace_period_and_ends_killed() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        "berth-test/sigterm",
        "--shell=false",
        "--grace",
        "10secs",
    ]);
    eventually(
        Duration::from_secs(30),
        "the task to run and trap SIGTERM",
        async || {
            std::fs::read_to_string(agent.sandbox(&id).join("stdout"))
                .ok()
                .filter(|out| out.contains("berth-test: started"))
        },
    )
    .await;
    let killed = agent.berth(&["kill", &id]);
    assert!(killed.status.success(), "{}", text(&killed));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], serde_json::Value::Null);
    assert!(read(agent.sandbox(&id).join("stdout")).contains("berth-test: got SIGTERM"));
    // The task trapped SIGTERM and exited 0, and was still killed: wait says so.
    assert_eq!(
        agent.berth(&["wait", &id]).status.code(),
        Some(i32::from(berth::cli::WAIT_KILLED))
    );
}

/// Mesos: ROOT_DOCKER_MaxCompletionTime.
#[tokio::test]
async fn max_completion_time_kills_the_task() {
    let agent = TestAgent::start(&[]).await;
    let out = agent.launch_json(&format!(
        r#"{{"task_id": {{"value": "slow"}}, "command": {{"value": "sleep 300"}},
            "container": {{"type": "DOCKER", "docker": {{"image": "{SHELL_IMAGE}"}}}},
            "max_completion_time": {{"nanoseconds": 1500000000}}}}"#
    ));
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], "REASON_MAX_COMPLETION_TIME_REACHED");
}

/// Mesos: ROOT_DOCKER_Launch_Executor.
#[tokio::test]
async fn executor_mode_runs_the_image_as_the_executor() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--executor",
        "--command",
        "echo executor-ran",
    ]);
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert_eq!(read(agent.sandbox(&id).join("stdout")), "executor-ran\n");
    // The task's command is the container's own process, not one a berth executor runs.
    let name = done["docker_name"]
        .as_str()
        .expect("a container")
        .to_owned();
    let args = crate::support::docker_ok(&["inspect", "-f", "{{json .Args}}", &name]);
    assert!(args.contains("echo executor-ran"), "{args}");
}

#[tokio::test]
async fn the_mesos_containerizer_runs_a_plain_process_in_its_sandbox() {
    let agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let out = agent.launch_json(r#"{"task_id": {"value": "plain"}, "command": {"value": "echo plain; pwd; echo $MESOS_SANDBOX"}}"#);
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert!(done["docker_name"].is_null());
    let sandbox = agent.sandbox(&id);
    let sandbox = sandbox.to_str().expect("utf-8");
    assert_eq!(
        read(agent.sandbox(&id).join("stdout")),
        format!("plain\n{sandbox}\n{sandbox}\n")
    );

    // Plain processes are off unless asked for.
    let docker_only = TestAgent::start(&[]).await;
    let out =
        docker_only.launch_json(r#"{"task_id": {"value": "plain"}, "command": {"value": "true"}}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("mesos containerizer"), "{}", text(&out));
    assert!(
        text(&out).contains("--containerizers=docker,mesos"),
        "{}",
        text(&out)
    );
}

/// Mesos: ROOT_DOCKER_DockerPullFailure.
#[tokio::test]
async fn a_pull_that_fails_fails_the_task_with_the_reason() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        "127.0.0.1:5056/berth-test/never-pushed:latest",
        "--command",
        "true",
    ]);
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], "REASON_CONTAINER_LAUNCH_FAILED");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("never-pushed"),
        "{done}"
    );
    assert!(agent.containers().is_empty());
}

/// Mesos: ROOT_DOCKER_FetchFailure.
#[tokio::test]
async fn a_fetch_that_fails_fails_the_task_and_keeps_the_sandbox() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "true",
        "--uri",
        "/nonexistent/berth-file",
    ]);
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["reason"], "REASON_CONTAINER_LAUNCH_FAILED");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/nonexistent/berth-file"),
        "{done}"
    );
    assert!(
        agent.sandbox(&id).is_dir(),
        "the sandbox is kept for inspection"
    );
    assert!(agent.containers().is_empty());
}

/// Mesos: ROOT_DOCKER_DestroyWhilePulling.
#[tokio::test]
async fn a_kill_while_pulling_ends_the_pull_and_nothing_starts() {
    // A pull that never finishes cannot be had from a real registry on demand: the
    // stand-in CLI hangs on `pull` and passes everything else to the real docker.
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("pulling");
    let cli = script(
        dir.path(),
        "slow-pull-docker",
        &format!(
            "for a in \"$@\"; do if [ \"$a\" = pull ]; then touch {}; exec sleep 300; fi; done\nexec docker \"$@\"",
            marker.display()
        ),
    );
    let agent = TestAgent::start(&["--docker", cli.to_str().expect("utf-8")]).await;
    let id = agent.launch(&[
        "--image",
        "127.0.0.1:5056/berth-test/public:latest",
        "--force_pull",
        "--command",
        "echo ran",
    ]);
    eventually(Duration::from_secs(30), "the pull to start", async || {
        marker.exists().then_some(())
    })
    .await;
    let out = agent.berth(&["kill", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], "REASON_TASK_KILLED_DURING_LAUNCH");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("pulling"),
        "{done}"
    );
    assert!(
        agent.containers().is_empty(),
        "a container was started after the kill"
    );
    assert!(!agent.sandbox(&id).join("stdout").exists());
}

/// Mesos: ROOT_DOCKER_WaitUnknownContainer and ROOT_DOCKER_DestroyUnknownContainer.
#[tokio::test]
async fn unknown_containers_are_reported_not_waited_for() {
    let agent = TestAgent::start(&[]).await;
    for cmd in [["wait", "0123abcd"], ["kill", "0123abcd"]] {
        let out = agent.berth(&cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        assert!(
            text(&out).contains("no container 0123abcd"),
            "{cmd:?}: {}",
            text(&out)
        );
    }
}

/// Mesos: ROOT_DOCKER_CommandTaskLimits.
#[tokio::test]
async fn command_task_limits_become_docker_limits() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "true",
        "--cpus",
        "0.5",
        "--mem",
        "64",
    ]);
    agent.wait(&id);
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let limits = docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.CpuShares}} {{.HostConfig.Memory}}",
        &name,
    ]);
    assert_eq!(limits.trim(), "512 67108864");
}

#[tokio::test]
async fn bad_input_is_refused_and_leaves_nothing_behind() {
    let agent = TestAgent::start(&[]).await;
    let cases = [
        ("{", "not valid TaskInfo JSON"),
        (
            r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"type": "DOCKER", "docker": {"image": ""}}}"#,
            "invalid image reference",
        ),
        (
            r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"type": "DOCKER", "docker": {"image": "i", "parameters": [{"key": "label", "value": "berth.agent_id=x"}]}}}"#,
            "reserved",
        ),
        (
            r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"type": "DOCKER", "docker": {"image": "i", "network": "HOST", "port_mappings": [{"host_port": 1, "container_port": 2}]}}}"#,
            "port mappings need network BRIDGE or USER",
        ),
    ];
    for (json, want) in cases {
        let out = agent.launch_json(json);
        assert_eq!(out.status.code(), Some(1), "{json}");
        assert!(text(&out).contains(want), "{json}: {}", text(&out));
    }
    let sandboxes = agent.work.path().join("sandboxes");
    let left = std::fs::read_dir(&sandboxes)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "a refused task left a sandbox");
    assert!(agent.containers().is_empty());

    // Unknown fields, and fields that do nothing here, are reported back, not dropped
    // silently.
    let out = agent.launch_json(&format!(
        r#"{{"task_id": {{"value": "warn"}}, "health_check": {{}}, "healthy": true, "command": {{"value": "true"}},
            "container": {{"type": "DOCKER", "docker": {{"image": "{SHELL_IMAGE}"}}}}}}"#
    ));
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("unknown field healthy"), "{}", text(&out));
    assert!(said.contains("health_check is ignored"), "{}", text(&out));

    // A duplicate live task id is refused.
    let first = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "sleep 300",
        "--task_id",
        "dup",
    ]);
    let out = agent.berth(&[
        "launch",
        "--image",
        SHELL_IMAGE,
        "--command",
        "true",
        "--task_id",
        "dup",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("is taken by") && text(&out).contains(&first),
        "{}",
        text(&out)
    );
    // The agent keeps serving.
    assert!(agent.berth(&["ps"]).status.success());
}

#[tokio::test]
async fn the_socket_is_the_owners_alone() {
    let agent = TestAgent::start(&[]).await;
    let socket = agent.work.path().join("berth.sock");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Let the unprivileged user reach the directory, so only the socket's mode stands.
    std::fs::set_permissions(agent.work.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let out = std::process::Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            crate::support::BERTH,
            "ps",
            "--api_socket",
        ])
        .arg(&socket)
        .output()
        .expect("runuser");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Permission denied") || text(&out).contains("permission denied"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn fifty_concurrent_launches_all_finish_and_are_recorded() {
    let agent = TestAgent::start(&[]).await;
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let agent = &agent;
                s.spawn(move || {
                    agent.launch(&[
                        "--image",
                        SHELL_IMAGE,
                        "--command",
                        &format!("echo task-{i}"),
                    ])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("launch thread"))
            .collect()
    });
    for (i, id) in ids.iter().enumerate() {
        let done = agent.wait(id);
        assert_eq!(done["state"], "TASK_FINISHED", "{done}");
        assert_eq!(
            read(agent.sandbox(id).join("stdout")),
            format!("task-{i}\n")
        );
    }
    let ps = agent.berth(&["ps", "--json"]);
    let views: serde_json::Value = serde_json::from_slice(&ps.stdout).expect("json");
    assert_eq!(views.as_array().map(Vec::len), Some(50));
    assert_eq!(agent.containers().len(), 50);
}

/// Mesos: ROOT_DOCKER_LaunchSandboxWithColon. Docker's `-v` splits on ':'; the sandbox is
/// mounted with `--mount`, so a work directory with ':' in its path works.
#[tokio::test]
async fn launch_sandbox_with_colon() {
    let work = tempfile::Builder::new()
        .prefix("berth:colon:")
        .tempdir()
        .expect("tempdir");
    let agent = TestAgent::start_in(work, &[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo inside > $MESOS_SANDBOX/written; echo out",
    ]);
    assert!(agent.sandbox(&id).to_string_lossy().contains(':'));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert_eq!(read(agent.sandbox(&id).join("written")), "inside\n");
    assert_eq!(read(agent.sandbox(&id).join("stdout")), "out\n");
}

/// Mesos: ROOT_DOCKER_DestroyWhileFetching. The fetch is held open by a local server that
/// accepts and never answers; the kill ends it and nothing is pulled or started.
#[tokio::test]
async fn destroy_while_fetching() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            let _ = accepted_tx.send(());
        }
    });
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo ran",
        "--uri",
        &format!("http://127.0.0.1:{port}/never-answered.tar.gz"),
    ]);
    accepted_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the fetch to connect");
    let view = agent.berth(&["ps", "--json"]);
    assert!(text(&view).contains("TASK_STAGING"), "{}", text(&view));
    let out = agent.berth(&["kill", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], "REASON_TASK_KILLED_DURING_LAUNCH");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("fetching"),
        "{done}"
    );
    assert!(agent.containers().is_empty());
    assert!(!agent.sandbox(&id).join("stdout").exists());
}

/// Mesos: ROOT_DOCKER_NoTransitionFromKillingToRunning. Once a kill is under way the task
/// is KILLING until it is KILLED: a container that answers SIGTERM by exiting 0 is not
/// FINISHED, and nothing reports it RUNNING again.
#[tokio::test]
async fn no_transition_from_killing_to_running_or_finished() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "trap 'echo got TERM; sleep 2; exit 0' TERM; echo started; while true; do sleep 0.1; done",
        "--grace",
        "20secs",
    ]);
    eventually(Duration::from_secs(30), "the task to run", async || {
        std::fs::read_to_string(agent.sandbox(&id).join("stdout"))
            .ok()
            .filter(|out| out.contains("started"))
    })
    .await;
    let out = agent.berth(&["kill", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let mut seen = Vec::new();
    loop {
        let out = agent.berth(&["ps", "--json"]);
        let views: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ps JSON");
        let state = views
            .as_array()
            .and_then(|v| v.iter().find(|t| t["container_id"] == id.as_str()))
            .map(|t| t["state"].as_str().unwrap_or_default().to_owned())
            .expect("the task is listed");
        let terminal = state != "TASK_KILLING";
        seen.push(state);
        if terminal {
            break;
        }
    }
    assert!(
        seen.len() > 1,
        "the trap's two seconds were not observed: {seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("TASK_KILLED"),
        "{seen:?}"
    );
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["exit_code"], 0, "{done}");
    assert!(read(agent.sandbox(&id).join("stdout")).contains("got TERM"));
    let history = agent.berth(&["state", "history", &id, "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).expect("history");
    let after_kill: Vec<String> = history
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["phase"].to_string())
        .skip_while(|p| !p.contains("Killing"))
        .collect();
    assert_eq!(after_kill.len(), 2, "{after_kill:?}");
    assert!(after_kill[1].contains("Terminated"), "{after_kill:?}");
}

#[tokio::test]
async fn removed_containers_leave_sandbox_records_and_listings_after_gc_delay() {
    let agent = TestAgent::start(&["--docker_remove_delay", "0secs", "--gc_delay", "0secs"]).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", "echo bye"]);
    assert_eq!(agent.wait(&id)["state"], "TASK_FINISHED");
    eventually(
        Duration::from_secs(30),
        "the sandbox, records and listing to go",
        async || {
            let listed = text(&agent.berth(&["ps"])).contains(&id);
            let recorded = text(&agent.berth(&["state", "ls"])).contains(&id);
            (!agent.sandbox(&id).exists() && !listed && !recorded).then_some(())
        },
    )
    .await;
    assert!(agent.containers().is_empty());
    let verify = agent.berth(&["state", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

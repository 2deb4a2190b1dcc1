//! TaskInfo as Mesos tooling writes it, through a real agent, executor and Docker: what
//! berth refuses before anything is recorded, whom a task runs as, and what a task's
//! container is given.

use std::os::unix::fs::MetadataExt;
use std::process::Output;

use crate::recovery::text;
use crate::support::{docker_ok, TestAgent, PLAIN_PROCESSES, SHELL_IMAGE};

fn launched(out: &Output) -> String {
    assert!(out.status.success(), "launch failed: {}", text(out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stdout_of(agent: &TestAgent, id: &str) -> String {
    std::fs::read_to_string(agent.sandbox(id).join("stdout")).unwrap_or_default()
}

/// Nothing of a refused launch is left: no sandbox, no container, no record.
fn nothing_left(agent: &TestAgent) {
    let sandboxes = std::fs::read_dir(agent.work.path().join("sandboxes"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(sandboxes, 0, "a refused task left a sandbox");
    assert!(agent.containers().is_empty(), "{:?}", agent.containers());
    let listed = agent.berth(&["ps", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "[]",
        "{}",
        text(&listed)
    );
}

#[tokio::test]
async fn what_berth_does_not_do_is_refused_before_anything_is_recorded() {
    let agent = TestAgent::start(&[]).await;
    let docker = |extra: &str| {
        format!(
            r#"{{"task_id": {{"value": "t"}}, "command": {{"value": "true"{extra}}},
                "container": {{"type": "DOCKER", "docker": {{"image": "{SHELL_IMAGE}", "network": "BRIDGE",
                    "port_mappings": [{{"host_port": "8080", "container_port": 80}}]}}}},
                "resources": [{{"name": "ports", "type": "RANGES", "ranges": {{"range": [{{"begin": "31000", "end": "31009"}}]}}}}]}}"#
        )
    };
    let cases = [
        // A plain process, while plain processes are off (the default).
        (
            r#"{"task_id": {"value": "t"}, "command": {"value": "true"}}"#.to_owned(),
            "start the agent with --containerizers=docker,mesos",
        ),
        // The Mesos containerizer, with the image it would have provisioned.
        (
            r#"{"task_id": {"value": "t"}, "command": {"value": "true"},
                "container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}}}}"#
                .to_owned(),
            r#"write the container as {"type": "DOCKER", "docker": {"image": "alpine"}}"#,
        ),
        (
            docker(r#", "environment": {"variables": [{"name": "TOKEN", "type": "SECRET", "secret": {"type": "REFERENCE"}}]}"#),
            "\"TOKEN\" is a SECRET: berth has no secret store",
        ),
        (
            docker(""),
            "host_port 8080 is not in the task's ports resource (31000-31009)",
        ),
    ];
    for (json, says) in cases {
        let out = agent.launch_json(&json);
        assert_eq!(out.status.code(), Some(1), "{json}: {}", text(&out));
        assert!(text(&out).contains(says), "{json}: {}", text(&out));
    }
    nothing_left(&agent);

    let plain = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let out = plain.launch_json(
        r#"{"task_id": {"value": "t"}, "command": {"value": "true", "user": "berth-no-such-user"}}"#,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            r#"command.user "berth-no-such-user" cannot be run as: there is no such user on this host"#
        ),
        "{}",
        text(&out)
    );
    nothing_left(&plain);
}

#[tokio::test]
async fn a_task_runs_as_its_command_user_in_a_sandbox_it_owns() {
    let nobody = berth::run_as::RunAs::lookup("nobody").expect("the host has nobody");
    let agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let id = launched(&agent.launch_json(
        r#"{"task_id": {"value": "as-nobody"}, "command": {"value": "id -u; id -g; echo made > made-here", "user": "nobody"}}"#,
    ));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert_eq!(
        stdout_of(&agent, &id),
        format!("{}\n{}\n", nobody.uid, nobody.gid)
    );
    let sandbox = agent.sandbox(&id);
    let owner = |path: &std::path::Path| std::fs::metadata(path).expect("stat").uid();
    assert_eq!(owner(&sandbox), nobody.uid);
    assert_eq!(owner(&sandbox.join("made-here")), nobody.uid);

    // A Docker task's container runs as its image's user, as in Mesos; its sandbox is
    // the user's.
    let id = launched(&agent.launch_json(&format!(
        r#"{{"task_id": {{"value": "docker-as-nobody"}}, "command": {{"value": "id -u", "user": "nobody"}},
            "container": {{"type": "DOCKER", "docker": {{"image": "{SHELL_IMAGE}"}}}}}}"#
    )));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert_eq!(stdout_of(&agent, &id), "0\n");
    assert_eq!(owner(&agent.sandbox(&id)), nobody.uid);

    // --switch_user=false: the agent's user, and a word about it.
    let unswitched = TestAgent::start(&[PLAIN_PROCESSES, "--switch_user=false"]).await;
    let out = unswitched.launch_json(
        r#"{"task_id": {"value": "as-agent"}, "command": {"value": "id -u", "user": "nobody"}}"#,
    );
    assert!(
        text(&out).contains(r#"command.user "nobody" is ignored"#),
        "{}",
        text(&out)
    );
    let id = launched(&out);
    let done = unswitched.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert_eq!(stdout_of(&unswitched, &id), "0\n");
}

#[tokio::test]
async fn a_containers_hostname_limits_and_volumes_are_the_tasks() {
    let agent = TestAgent::start(&[]).await;
    let shared = tempfile::tempdir().expect("tempdir");
    std::fs::write(shared.path().join("greeting"), "hello\n").expect("write");
    // int64 as strings, as the proto3 JSON mapping writes them.
    let id = launched(&agent.launch_json(&format!(
        r#"{{"task_id": {{"value": "shaped"}},
            "command": {{"value": "hostname; cat $MESOS_SANDBOX/data/greeting"}},
            "container": {{"type": "DOCKER", "hostname": "berth-web",
                "docker": {{"image": "{SHELL_IMAGE}", "network": "NONE"}},
                "volumes": [{{"container_path": "data", "host_path": "{}", "mode": "RO"}}]}},
            "resources": [{{"name": "cpus", "type": "SCALAR", "scalar": {{"value": 0.5}}}},
                          {{"name": "mem", "type": "SCALAR", "scalar": {{"value": "64"}}}}],
            "limits": {{"cpus": {{"value": "2"}}, "mem": {{"value": 128}}}},
            "kill_policy": {{"grace_period": {{"nanoseconds": "2000000000"}}}}}}"#,
        shared.path().display()
    )));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    assert_eq!(stdout_of(&agent, &id), "berth-web\nhello\n");
    let name = done["docker_name"].as_str().expect("a container");
    let shaped = docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.CpuShares}} {{.HostConfig.CpuQuota}} {{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.Config.Hostname}}",
        name,
    ]);
    assert_eq!(shaped.trim(), "512 200000 134217728 67108864 berth-web");
}

#[tokio::test]
async fn an_executor_container_is_told_what_mesos_tells_a_custom_executor() {
    let agent = TestAgent::start(&[]).await;
    let id = launched(&agent.launch_json(&format!(
        r#"{{"task_id": {{"value": "exec-env"}}, "executor": {{
            "executor_id": {{"value": "exec-1"}}, "framework_id": {{"value": "fw-1"}},
            "shutdown_grace_period": {{"nanoseconds": "4000000000"}},
            "command": {{"value": "env | grep ^MESOS_ | sort"}},
            "container": {{"type": "DOCKER", "docker": {{"image": "{SHELL_IMAGE}"}}}}}}}}"#
    )));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let seen = stdout_of(&agent, &id);
    let sandbox = agent.sandbox(&id);
    let agent_id = &agent.agent_id;
    for variable in [
        "MESOS_AGENT_ID=".to_owned() + agent_id,
        "MESOS_CHECKPOINT=1".to_owned(),
        format!(
            "MESOS_CONTAINER_NAME={}",
            done["docker_name"].as_str().unwrap_or("?")
        ),
        format!("MESOS_DIRECTORY={}", sandbox.display()),
        "MESOS_EXECUTOR_ID=exec-1".to_owned(),
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=4secs".to_owned(),
        "MESOS_FRAMEWORK_ID=fw-1".to_owned(),
        "MESOS_RECOVERY_TIMEOUT=15mins".to_owned(),
        "MESOS_SANDBOX=/mnt/mesos/sandbox".to_owned(),
        "MESOS_SLAVE_ID=".to_owned() + agent_id,
    ] {
        assert!(
            seen.lines().any(|line| line == variable),
            "{variable} not in\n{seen}"
        );
    }
}

/// A user database that does not answer (a FIFO in place of /etc/passwd, in the agent's
/// own mount namespace, as a hung LDAP server would) holds a launch that names a user
/// only up to the lookup's bound; it is then refused for now (503, `Retry-After`), with
/// why, and nothing is recorded: no task is failed for a database that may come back.
#[tokio::test]
async fn a_user_database_that_does_not_answer_refuses_the_launch_for_now() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwd = dir.path().join("passwd");
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let script = format!(
        "mount --bind {} /etc/passwd && exec \"$0\" \"$@\"",
        passwd.display()
    );
    let agent = TestAgent::start_under(
        &[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        &[PLAIN_PROCESSES],
    )
    .await;
    let client = berth::api::client::Client::new(agent.work.path().join("berth.sock"));
    let started = std::time::Instant::now();
    let answer = client
        .post_raw::<serde_json::Value>(
            "/v1/tasks",
            br#"{"task_id": {"value": "t"}, "command": {"value": "true", "user": "nobody"}}"#
                .to_vec(),
            std::time::Duration::from_secs(30),
        )
        .await;
    match answer {
        Err(berth::api::client::ClientError::Status {
            status,
            message,
            retry_later,
        }) => {
            assert_eq!(status.as_u16(), 503, "{message}");
            assert!(retry_later, "{message}");
            assert!(
                message.contains(r#"cannot look up command.user "nobody""#)
                    && message.contains("did not answer within"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    nothing_left(&agent);
}

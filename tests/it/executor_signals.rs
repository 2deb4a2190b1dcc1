//! SIGTERM to a running executor, as the agent's kill sends it (plain process) or as
//! anything else might (Docker). A plain task's process group must end and the end be
//! reported; a container must go on being followed, never left running unwatched.

use std::path::Path;
use std::time::Duration;

use crate::support::{eventually, process_alive, TestAgent, SHELL_IMAGE};

#[cfg(feature = "failpoints")]
fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(feature = "failpoints")]
fn launched(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The agent's view of one container, from `berth ps --json`.
fn view(agent: &TestAgent, id: &str) -> Option<serde_json::Value> {
    let out = agent.berth(&["ps", "--json"]);
    let views: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    views
        .as_array()?
        .iter()
        .find(|v| v["container_id"] == id)
        .cloned()
}

#[cfg(feature = "failpoints")]
fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The executor of a sandbox: the process running `berth executor` there (the agent
/// starts each executor in its container's sandbox, which no other executor shares).
fn executor_in(sandbox: &Path) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let executor = cmdline.split(|b| *b == 0).nth(1) == Some(&b"executor"[..]);
            (cwd == sandbox && executor && process_alive(pid)).then_some(pid)
        })
}

#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_kill_right_after_running_ends_the_tasks_process_group_and_is_reported() {
    // Holds each executor just after it started its task and sent RUNNING: where, before
    // the fix, it had no SIGTERM handler yet.
    let agent = TestAgent::start_with_env(
        &[crate::support::PLAIN_PROCESSES],
        &[("FAILPOINTS", "executor-task-started=sleep(3000)")],
    )
    .await;
    let id = launched(&agent.launch_json(
        r#"{"task_id": {"value": "held"}, "command": {"value": "sleep 600 & echo $! > child.pid; wait"},
            "kill_policy": {"grace_period": {"nanoseconds": 5000000000}}}"#,
    ));
    let sandbox = agent.sandbox(&id);
    let (task, child) = eventually(
        Duration::from_secs(30),
        "the task to run with its child",
        async || {
            let view = view(&agent, &id)?;
            let task = i32::try_from(view["pid"].as_u64()?).ok()?;
            (view["state"] == "TASK_RUNNING")
                .then_some((task, read_pid(&sandbox.join("child.pid"))?))
        },
    )
    .await;
    let executor = executor_in(&sandbox).expect("the executor runs");
    assert!(process_alive(task) && process_alive(child));

    let killed = agent.berth(&["kill", &id]);
    assert!(killed.status.success(), "{}", text(&killed));

    eventually(
        Duration::from_secs(30),
        "the task's whole process group to end",
        async || (!process_alive(task) && !process_alive(child)).then_some(()),
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the task to be KILLED",
        async || view(&agent, &id).filter(|v| v["state"] == "TASK_KILLED"),
    )
    .await;
    // The executor's own report of the end, as the store recorded it.
    let shown = agent.berth(&["state", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout)
        .unwrap_or_else(|e| panic!("state show: {e}: {}", text(&shown)));
    let reported = shown["statuses"].as_array().expect("statuses");
    assert!(
        reported.iter().any(|s| s["message"]
            .as_str()
            .is_some_and(|m| m.contains("signal 15"))),
        "{shown}"
    );
    eventually(
        Duration::from_secs(30),
        "the executor to exit",
        async || (!process_alive(executor)).then_some(()),
    )
    .await;
}

#[tokio::test]
async fn a_docker_executor_keeps_following_its_container_through_sigterm() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "while [ ! -e /mnt/mesos/sandbox/go ]; do sleep 0.1; done; exit 3",
    ]);
    let sandbox = agent.sandbox(&id);
    eventually(
        Duration::from_secs(60),
        "the container to run",
        async || view(&agent, &id).filter(|v| v["state"] == "TASK_RUNNING"),
    )
    .await;
    let executor = executor_in(&sandbox).expect("the executor runs");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(executor),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM the executor");
    eventually(
        Duration::from_secs(30),
        "the executor to take the SIGTERM and go on",
        async || {
            std::fs::read_to_string(sandbox.join("executor.log"))
                .ok()
                .filter(|log| log.contains("still following it to its end"))
        },
    )
    .await;
    std::fs::write(sandbox.join("go"), "").expect("let the task end");

    // Only the executor knows the container's exit code: it survived to report it.
    let done = eventually(
        Duration::from_secs(60),
        "the exit to be reported",
        async || view(&agent, &id).filter(|v| v["state"] == "TASK_FAILED"),
    )
    .await;
    assert_eq!(done["exit_code"], 3, "{done}");
}

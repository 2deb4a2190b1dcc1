//! The agent aborted at the crash points around its first record of a launch (feature
//! `failpoints`), then started again. `berth chaos run --sweep` (tests/it/chaos.rs) aborts
//! it at every point and judges what follows; what it does not check is kept here: a
//! launch cut off before its `Accepted` record is unknown after the restart, and one cut
//! off after it is known (the checker lets a cut-off launch end either way). Each task
//! then ends in a terminal state with a reason, no container of the agent is without a
//! record, no task has two containers, and every record decodes.

use std::time::Duration;

use crate::support::{docker_ok, eventually, TestAgent, OPEN_REGISTRY, SHELL_IMAGE};

fn views(agent: &TestAgent) -> Vec<serde_json::Value> {
    // A dead agent is not waited for: the test restarts it.
    let out = agent.berth(&["ps", "--json", "--wait_for_agent", "0secs"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn terminal(state: &serde_json::Value) -> bool {
    matches!(
        state.as_str(),
        Some("TASK_FINISHED" | "TASK_FAILED" | "TASK_KILLED" | "TASK_LOST")
    )
}

/// Drives a normal task (pulled) and an executor-mode task through launch, RUNNING, kill
/// and removal, until the agent dies at `point`.
async fn crash_at(point: &str) {
    let failpoints = format!("{point}=return");
    let mut agent = TestAgent::start_with_env(
        &["--docker_remove_delay", "0secs"],
        &[("FAILPOINTS", failpoints.as_str())],
    )
    .await;
    let public = format!("{OPEN_REGISTRY}/berth-test/public:latest");
    let _ = agent.berth(&[
        "launch",
        "--image",
        &public,
        "--force_pull",
        "--command",
        "sleep 600",
        "--grace",
        "0secs",
    ]);
    let _ = agent.berth(&[
        "launch",
        "--image",
        SHELL_IMAGE,
        "--executor",
        "--shell=false",
        "--command",
        "sleep",
        "--arg",
        "600",
    ]);
    eventually(
        Duration::from_secs(60),
        &format!("the agent to die at {point}"),
        async || {
            if agent.exited() {
                return Some(());
            }
            for view in views(&agent) {
                let id = view["container_id"].as_str().unwrap_or_default();
                if view["state"] == "TASK_RUNNING" {
                    let _ =
                        agent.berth(&["kill", id, "--grace", "0secs", "--wait_for_agent", "0secs"]);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            None
        },
    )
    .await;

    agent.restart(&["--docker_remove_delay", "0secs"]).await;
    let tasks = views(&agent);
    // Before the first record nothing was accepted: the launch failed, as its caller saw.
    assert_eq!(
        tasks.is_empty(),
        point == "record-Accepted-before",
        "{point}: {tasks:?}"
    );
    for task in &tasks {
        let id = task["container_id"].as_str().expect("id").to_owned();
        let done = eventually(
            Duration::from_secs(60),
            &format!("{point}: {id} to settle"),
            async || {
                let view = views(&agent)
                    .into_iter()
                    .find(|v| v["container_id"] == id.as_str())?;
                if view["state"] == "TASK_RUNNING" {
                    let _ = agent.berth(&["kill", &id, "--grace", "0secs"]);
                }
                terminal(&view["state"]).then_some(view)
            },
        )
        .await;
        assert!(
            done["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{point}: {id} ended without saying how: {done}"
        );
        let containers = docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=berth.container_id={id}"),
            "--format",
            "{{.Names}}",
        ]);
        assert!(
            containers.lines().count() <= 1,
            "{point}: {id} has two containers: {containers}"
        );
    }
    let known: Vec<String> = views(&agent)
        .iter()
        .filter_map(|v| v["container_id"].as_str().map(str::to_owned))
        .collect();
    for name in agent.containers() {
        assert!(
            known.iter().any(|id| name.contains(id.as_str())),
            "{point}: container {name} has no record"
        );
    }
    let verify = agent.berth(&["state", "verify"]);
    assert!(
        verify.status.success(),
        "{point}: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

macro_rules! crash_points {
    ($($test:ident => $point:literal,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                crash_at($point).await;
            }
        )*
    };
}

crash_points! {
    before_accepted => "record-Accepted-before",
    after_accepted => "record-Accepted-after",
}

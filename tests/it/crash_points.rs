//! The agent aborted at every named crash point of the launch and kill paths (feature
//! `failpoints`), then started again: every task accepted before the crash ends in exactly
//! one running container or in a terminal state with a reason, no container of the agent
//! is without a record, no task has two containers, and every record decodes.

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
        Some("FINISHED" | "FAILED" | "KILLED" | "LOST")
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
                if view["state"] == "RUNNING" {
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
                if view["state"] == "RUNNING" {
                    let _ = agent.berth(&["kill", &id, "--grace", "0secs"]);
                }
                terminal(&view["state"]).then_some(view)
            },
        )
        .await;
        assert!(
            done["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{point}: {id} ended without a reason: {done}"
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
    before_fetching => "record-Fetching-before",
    after_fetching => "record-Fetching-after",
    before_pulling => "record-Pulling-before",
    after_pulling => "record-Pulling-after",
    before_pull => "docker-pull-before",
    after_pull => "docker-pull-after",
    before_executor_starting => "record-ExecutorStarting-before",
    after_executor_starting => "record-ExecutorStarting-after",
    before_create => "docker-create-before",
    after_create => "docker-create-after",
    before_start => "docker-start-before",
    after_start => "docker-start-after",
    before_running => "record-Running-before",
    after_running => "record-Running-after",
    before_killing => "record-Killing-before",
    after_killing => "record-Killing-after",
    before_stop => "docker-stop-before",
    after_stop => "docker-stop-after",
    before_terminated => "record-Terminated-before",
    after_terminated => "record-Terminated-after",
    before_rm => "docker-rm-before",
    after_rm => "docker-rm-after",
    before_removed => "record-Removed-before",
    after_removed => "record-Removed-after",
}

//! The promise while the agent serves: executors that die under a running agent, kills
//! that fail or hang, clients that hang up, one task id launched at once from many
//! clients. Each fault is made for real against the real engine.

use std::time::Duration;

use crate::recovery::{
    container_running, executor_pid, kill_executor, running_counter, state_of, text,
};
use crate::support::{docker_cli, eventually, process_alive, TestAgent};

/// The task's stored history, as `berth state history --json` prints it.
fn history(agent: &TestAgent, id: &str) -> String {
    text(&agent.berth(&["state", "history", id, "--json"]))
}

fn container_exists(name: &str) -> bool {
    docker_cli(&["inspect", name]).status.success()
}

#[tokio::test]
async fn an_executor_killed_while_the_agent_serves_ends_its_task_lost() {
    let agent = TestAgent::start(&["--docker_remove_delay", "0secs"]).await;
    let id = running_counter(&agent).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let executor = executor_pid(&agent, &id);
    kill_executor(executor);
    let done = eventually(Duration::from_secs(20), "the task to end", async || {
        let view = state_of(&agent, &id);
        (view["state"] != "RUNNING").then_some(view)
    })
    .await;
    assert_eq!(done["state"], "LOST", "{done}");
    assert_eq!(done["reason"], "REASON_EXECUTOR_TERMINATED", "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("executor"),
        "{done}"
    );
    eventually(Duration::from_secs(30), "the container to go", async || {
        (!container_exists(&name)).then_some(())
    })
    .await;
    assert!(!process_alive(executor));
    let history = history(&agent, &id);
    assert!(history.contains("mark lost"), "{history}");
    assert!(!container_running(&name));
}

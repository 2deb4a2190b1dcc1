//! Restart recovery against the real engine: the agent SIGKILLed and started again, with
//! executors alive, dead, or replaced by an unrelated process at the same pid.

use std::time::Duration;

use crate::engine_stand_in::{EngineStandIn, Fault};
use crate::support::{
    docker_cli, docker_ok, eventually, process_alive, TestAgent, PLAIN_PROCESSES, SHELL_IMAGE,
};

pub(crate) const COUNTER: &str = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done";

pub(crate) fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn state_of(agent: &TestAgent, id: &str) -> serde_json::Value {
    let out = agent.berth(&["ps", "--json"]);
    let views: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ps JSON");
    views
        .as_array()
        .and_then(|v| v.iter().find(|t| t["container_id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {}", text(&out)))
}

pub(crate) fn executor_pid(agent: &TestAgent, id: &str) -> i32 {
    let out = agent.berth(&["state", "history", id, "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history");
    history
        .as_array()
        .expect("a list")
        .iter()
        .rev()
        .find_map(|r| r["phase"]["ExecutorStarting"]["identity"]["pid"].as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .expect("an executor identity")
}

pub(crate) fn stdout_lines(agent: &TestAgent, id: &str) -> Vec<String> {
    std::fs::read_to_string(agent.sandbox(id).join("stdout"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn running_counter(agent: &TestAgent) -> String {
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", COUNTER]);
    eventually(Duration::from_secs(30), "the task to run", async || {
        (state_of(agent, &id)["state"] == "TASK_RUNNING" && stdout_lines(agent, &id).len() > 3)
            .then_some(())
    })
    .await;
    id
}

pub(crate) fn container_running(name: &str) -> bool {
    docker_cli(&["inspect", "-f", "{{.State.Running}}", name])
        .stdout
        .starts_with(b"true")
}

#[tokio::test]
async fn a_running_task_survives_ten_sigkills_of_the_agent() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let container = docker_ok(&["inspect", "-f", "{{.Id}}", &name]);
    let executor = executor_pid(&agent, &id);
    for round in 0..10 {
        let before = stdout_lines(&agent, &id).len();
        agent.restart(&[]).await;
        assert_eq!(
            state_of(&agent, &id)["state"],
            "TASK_RUNNING",
            "round {round}"
        );
        eventually(Duration::from_secs(30), "the output to grow", async || {
            (stdout_lines(&agent, &id).len() > before + 2).then_some(())
        })
        .await;
    }
    assert_eq!(docker_ok(&["inspect", "-f", "{{.Id}}", &name]), container);
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.RestartCount}}", &name]).trim(),
        "0"
    );
    assert_eq!(executor_pid(&agent, &id), executor);
    assert!(process_alive(executor), "the executor {executor} is gone");

    let killed = agent.berth(&["kill", &id]);
    assert!(killed.status.success(), "{}", text(&killed));
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    // One line per number, none missing, none twice: the output never stopped or repeated.
    let lines = stdout_lines(&agent, &id);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line, &n.to_string(), "line {n} of {}", lines.len());
    }
    let history = text(&agent.berth(&["state", "history", &id]));
    let readopted = history
        .lines()
        .filter(|l| l.contains("Decision") && l.contains("re-adopt:"))
        .count();
    assert_eq!(
        readopted, 10,
        "one re-adopt decision per restart: {history}"
    );
}

#[tokio::test]
async fn a_dead_executor_ends_the_task_lost_and_stops_its_container() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let executor = executor_pid(&agent, &id);
    crash_with_executor(&mut agent, executor).await;
    agent.restart(&[]).await;
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap_or_default()
            .contains("executor"),
        "{done}"
    );
    eventually(
        Duration::from_secs(30),
        "the container to stop",
        async || (!container_running(&name)).then_some(()),
    )
    .await;
}

/// SIGKILLs the agent, then its task's executor (with its session), and waits until the
/// executor is gone.
async fn crash_with_executor(agent: &mut TestAgent, executor: i32) {
    agent.crash();
    kill_executor(executor);
    eventually(Duration::from_secs(10), "the executor to die", async || {
        (!process_alive(executor)).then_some(())
    })
    .await;
}

/// SIGKILLs an executor and every process of its session (the `docker run` it started):
/// while one lives, the kernel keeps the executor's pid in use as the session's id.
pub(crate) fn kill_executor(pid: i32) {
    let _ = std::process::Command::new("pkill")
        .args(["-9", "-s", &pid.to_string()])
        .status();
}

/// Puts a new `sleep` at exactly `pid` through `kernel.ns_last_pid` (root only); returns
/// whether it did. The shell writes the counter with a builtin and forks `sleep` next, so
/// nothing of its own takes the pid first; another process that does is waited out.
fn process_at(pid: i32) -> bool {
    let script = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid; sleep 600 </dev/null >/dev/null 2>&1 & echo $!",
        pid - 1
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("run sh");
        let got: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if got == pid {
            return true;
        }
        let _ = std::process::Command::new("kill")
            .args(["-9", &got.to_string()])
            .status();
    }
    false
}

/// The executor's pid given to an unrelated process (kernel.ns_last_pid) while the agent
/// was down: recovery sees another start time, signals nothing, stops the container and
/// ends the task LOST; the unrelated process lives on.
#[tokio::test]
async fn a_reused_executor_pid_is_not_adopted_and_the_stranger_lives() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let executor = executor_pid(&agent, &id);
    agent.crash();
    kill_executor(executor);
    assert!(
        process_at(executor),
        "could not put a process at pid {executor}"
    );
    agent.restart(&[]).await;
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    assert!(
        done["message"].as_str().unwrap_or_default().contains("pid"),
        "{done}"
    );
    eventually(
        Duration::from_secs(30),
        "the container to stop",
        async || (!container_running(&name)).then_some(()),
    )
    .await;
    assert!(
        process_alive(executor),
        "the unrelated process at {executor} was signalled"
    );
    let _ = std::process::Command::new("kill")
        .args(["-9", &executor.to_string()])
        .status();
}

#[tokio::test]
async fn orphans_of_this_agent_go_and_other_agents_containers_stay() {
    let mut agent = TestAgent::start(&[]).await;
    let run = |name: &str, agent_id: &str, container_id: &str| {
        docker_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--label",
            &format!("berth.agent_id={agent_id}"),
            "--label",
            &format!("berth.container_id={container_id}"),
            SHELL_IMAGE,
            "sleep",
            "600",
        ]);
    };
    let orphan_id = uuid::Uuid::new_v4().to_string();
    let orphan = format!("mesos-{}.{orphan_id}", agent.agent_id);
    run(&orphan, &agent.agent_id, &orphan_id);
    let other_agent = uuid::Uuid::new_v4().to_string();
    let other_id = uuid::Uuid::new_v4().to_string();
    let other = format!("mesos-{other_agent}.{other_id}");
    run(&other, &other_agent, &other_id);

    agent.restart(&["--docker_kill_orphans=false"]).await;
    assert!(
        container_running(&orphan),
        "--docker_kill_orphans=false removed it"
    );
    agent.restart(&[]).await;
    let gone = docker_cli(&["inspect", &orphan]);
    assert!(!gone.status.success(), "the orphan {orphan} is still there");
    assert!(
        container_running(&other),
        "another agent's container was touched"
    );
    docker_ok(&["rm", "-f", &other]);
}

#[tokio::test]
async fn recover_cleanup_kills_every_task_and_exits() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let executor = executor_pid(&agent, &id);
    agent.crash();
    let out = std::process::Command::new(crate::support::BERTH)
        .args(["agent", "--recover", "cleanup", "--work_dir"])
        .arg(agent.work.path())
        .output()
        .expect("run berth agent --recover cleanup");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !docker_cli(&["inspect", &name]).status.success(),
        "{name} is still there"
    );
    eventually(Duration::from_secs(10), "the executor to end", async || {
        (!process_alive(executor)).then_some(())
    })
    .await;
    let history = text(&agent.berth(&["state", "show", &id]));
    assert!(history.contains("TASK_KILLED"), "{history}");
    assert!(history.contains("Removed"), "{history}");
}

#[tokio::test]
async fn recover_dry_run_prints_the_plan_and_touches_nothing() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let executor = executor_pid(&agent, &id);
    crash_with_executor(&mut agent, executor).await;
    let history_before = text(&agent.berth(&["state", "history", &id]));
    let out = agent.berth(&["recover", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    let row = plan
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}: {plan}"));
    assert!(row.contains("mark lost"), "{plan}");
    assert!(container_running(&name), "a dry run stopped the container");
    assert_eq!(
        text(&agent.berth(&["state", "history", &id])),
        history_before
    );
    let refused = agent.berth(&["recover"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("--dry-run"), "{}", text(&refused));
}

#[tokio::test]
async fn docker_down_at_restart_is_waited_for_and_the_task_is_readopted() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let executor = executor_pid(&agent, &id);
    // A Docker that is down for its first four calls, then answers.
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = dir.path().join("calls");
    let cli = crate::support::script(
        dir.path(),
        "docker-comes-back",
        &format!(
            "echo call >> {calls}\nif [ $(wc -l < {calls}) -le 4 ]; then echo 'Cannot connect to the Docker daemon' >&2; exit 1; fi\nexec docker \"$@\"",
            calls = calls.display()
        ),
    );
    agent
        .restart(&["--docker", cli.to_str().expect("utf-8")])
        .await;
    let failed = std::fs::read_to_string(&calls)
        .expect("calls")
        .lines()
        .count();
    assert!(
        failed > 4,
        "the agent did not wait for Docker: {failed} calls"
    );
    assert_eq!(state_of(&agent, &id)["state"], "TASK_RUNNING");
    assert_eq!(executor_pid(&agent, &id), executor);
    let history = text(&agent.berth(&["state", "history", &id]));
    assert!(history.contains("re-adopt"), "{history}");
}

#[tokio::test]
async fn a_deferred_task_is_decided_again_while_the_agent_serves() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let executor = executor_pid(&agent, &id);
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let container = docker_ok(&["inspect", "-f", "{{.Id}}", &name]);
    // Docker fails to describe this one container until healed (a daemon-side failure
    // for one container cannot be made for real). With its executor dead too, nothing but
    // Docker can say what became of the task: the decision is deferred.
    let engine = EngineStandIn::start(container.trim(), Fault::Fails("json: cannot unmarshal"));
    crash_with_executor(&mut agent, executor).await;
    let socket = engine.socket();
    agent
        .restart(&["--docker_socket", socket.to_str().expect("utf-8")])
        .await;
    let history = text(&agent.berth(&["state", "history", &id]));
    assert!(
        history.lines().last().is_some_and(|l| l.contains("defer")),
        "not deferred: {history}"
    );
    assert!(
        container_running(&name),
        "a deferred task's container was touched"
    );
    engine.heal();
    // No restart: the agent decides again by itself.
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    eventually(
        Duration::from_secs(30),
        "the container to stop",
        async || (!container_running(&name)).then_some(()),
    )
    .await;
    let history = text(&agent.berth(&["state", "history", &id]));
    let decisions: Vec<&str> = history.lines().filter(|l| l.contains("Decision")).collect();
    assert!(
        decisions.len() >= 2 && decisions[decisions.len() - 2].contains("defer"),
        "{history}"
    );
}

#[tokio::test]
async fn kills_wait_until_recovery_is_done() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    // Docker down while the marker exists: the agent answers, recovering.
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("down");
    std::fs::write(&marker, "").expect("marker");
    let cli = crate::support::script(
        dir.path(),
        "docker-down",
        &format!(
            "if [ -e {} ]; then echo 'Cannot connect to the Docker daemon' >&2; exit 1; fi\nexec docker \"$@\"",
            marker.display()
        ),
    );
    agent
        .restart_recovering(&["--docker", cli.to_str().expect("utf-8")])
        .await;
    let refused = agent.berth(&["kill", &id, "--wait_for_agent", "0secs"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("recovering"), "{}", text(&refused));
    std::fs::remove_file(&marker).expect("marker");
    // The CLI itself waits (up to --wait_for_agent) for recovery to end.
    let killed = agent.berth(&["kill", &id]);
    assert!(killed.status.success(), "{}", text(&killed));
    assert_eq!(agent.wait(&id)["state"], "TASK_KILLED");
    let history = text(&agent.berth(&["state", "history", &id]));
    assert!(history.contains("re-adopt"), "{history}");
}

/// SIGKILLs an executor alone (its task lives on in its session) and waits until it is
/// gone.
async fn kill_executor_alone(executor: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &executor.to_string()])
        .status();
    eventually(Duration::from_secs(10), "the executor to die", async || {
        (!process_alive(executor)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_plain_task_whose_executor_died_while_the_agent_was_down_loses_its_group() {
    let mut agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let (id, task) = crate::serving::plain_sleeper(&agent).await;
    let executor = executor_pid(&agent, &id);
    agent.crash();
    kill_executor_alone(executor).await;
    assert!(process_alive(task), "the task died with its executor");
    agent.restart(&[PLAIN_PROCESSES]).await;
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    eventually(
        Duration::from_secs(10),
        "the task's group to end",
        async || crate::serving::group_members(task).is_empty().then_some(()),
    )
    .await;
    let history = text(&agent.berth(&["state", "history", &id]));
    assert!(history.contains("RunningProcess"), "{history}");
    assert!(history.contains("still runs as recorded"), "{history}");
}

/// A plain task that writes on after its executor was SIGKILLed while the agent was down:
/// its main process must not die of a broken pipe (taking with it the proof that the
/// session is still the task's), so the next start ends it LOST and sweeps what it
/// started in the background too.
#[tokio::test]
async fn a_plain_task_that_writes_outlives_its_dead_executor_until_the_sweep() {
    let mut agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let (id, task) = crate::serving::plain_running(
        &agent,
        "plain-writer",
        "sleep 600 & while true; do echo tick; echo beat >> beats; sleep 0.1; done",
    )
    .await;
    let beats = agent.sandbox(&id).join("beats");
    let count = || {
        std::fs::read_to_string(&beats)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let executor = executor_pid(&agent, &id);
    agent.crash();
    kill_executor_alone(executor).await;
    let before = count();
    eventually(
        Duration::from_secs(10),
        "the task to write on after its executor died",
        async || (count() >= before + 3 && process_alive(task)).then_some(()),
    )
    .await;
    agent.restart(&[PLAIN_PROCESSES]).await;
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    eventually(
        Duration::from_secs(10),
        "the task's group, its background sleep with it, to end",
        async || crate::serving::group_members(task).is_empty().then_some(()),
    )
    .await;
}

/// What a plain task leaves in the background ends with it, even while the agent is down
/// and cannot sweep its executor's session: a leftover would otherwise run on (and block
/// on a full pipe it holds) for as long as the executor waits for the agent.
#[tokio::test]
async fn a_plain_task_s_leftovers_end_with_it_while_the_agent_is_down() {
    let mut agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let out = agent.launch_json(
        r#"{"task_id": {"value": "plain-leaver"}, "command": {"value": "(while true; do echo bg; sleep 0.1; done) & echo $! > bg.pid; sleep 2"}}"#,
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let pid_file = agent.sandbox(&id).join("bg.pid");
    let leftover = eventually(
        Duration::from_secs(30),
        "the task to start its leftover",
        async || {
            std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
        },
    )
    .await;
    agent.crash();
    assert!(process_alive(leftover), "the leftover died with the agent");
    eventually(
        Duration::from_secs(15),
        "the leftover to end with its task",
        async || (!process_alive(leftover)).then_some(()),
    )
    .await;
    agent.restart(&[PLAIN_PROCESSES]).await;
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
}

/// A plain task recorded while plain processes were allowed (the default before
/// `--containerizers` became `docker`) stays the agent's after a restart without them:
/// re-adopted, killed on request, its end recorded. Only new plain tasks are refused.
#[tokio::test]
async fn a_plain_task_recorded_before_plain_processes_were_turned_off_is_readopted() {
    let mut agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let (id, task) = crate::serving::plain_sleeper(&agent).await;
    agent.restart(&[]).await;
    let history = text(&agent.berth(&["state", "history", &id]));
    assert!(history.contains("re-adopt"), "{history}");
    assert_eq!(state_of(&agent, &id)["state"], "TASK_RUNNING");
    let killed = agent.berth(&["kill", &id]);
    assert!(killed.status.success(), "{}", text(&killed));
    assert_eq!(agent.wait(&id)["state"], "TASK_KILLED");
    eventually(
        Duration::from_secs(10),
        "the task's group to end",
        async || crate::serving::group_members(task).is_empty().then_some(()),
    )
    .await;
    let refused =
        agent.launch_json(r#"{"task_id": {"value": "new-plain"}, "command": {"value": "true"}}"#);
    assert!(
        text(&refused).contains("start the agent with --containerizers=docker,mesos"),
        "{}",
        text(&refused)
    );
}

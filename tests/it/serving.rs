//! The promise while the agent serves: executors that die under a running agent, kills
//! that fail or hang, clients that hang up, one task id launched at once from many
//! clients. Each fault is made for real against the real engine.

use std::time::Duration;

use crate::recovery::{
    container_running, executor_pid, kill_executor, running_counter, state_of, text,
};
use crate::support::{
    docker_cli, eventually, process_alive, TestAgent, PLAIN_PROCESSES, SHELL_IMAGE,
};

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
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_LOST", "{done}");
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

/// Launches a plain process that starts a child of its own and sleeps; returns the
/// container id and the task's pid once it runs.
pub(crate) async fn plain_sleeper(agent: &TestAgent) -> (String, i32) {
    plain_running(agent, "plain-sleeper", "sleep 600 & echo up; sleep 600").await
}

/// Launches plain task `task_id` running `command` and waits until it runs; its container
/// id and its process's pid.
pub(crate) async fn plain_running(
    agent: &TestAgent,
    task_id: &str,
    command: &str,
) -> (String, i32) {
    let task = serde_json::json!({"task_id": {"value": task_id}, "command": {"value": command}});
    let out = agent.launch_json(&task.to_string());
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let pid = eventually(Duration::from_secs(30), "the task to run", async || {
        let view = state_of(agent, &id);
        (view["state"] == "TASK_RUNNING")
            .then(|| view["pid"].as_i64())
            .flatten()
            .and_then(|p| i32::try_from(p).ok())
    })
    .await;
    (id, pid)
}

/// The pids of the process group led by `leader`.
pub(crate) fn group_members(leader: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(2)?.parse::<i32>().ok()
                })
                == Some(leader)
        })
        .filter(|pid| process_alive(*pid))
        .collect()
}

#[tokio::test]
async fn a_plain_process_whose_executor_is_killed_ends_lost_with_its_group() {
    let agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let (id, task) = plain_sleeper(&agent).await;
    assert!(group_members(task).len() >= 2, "the task and its child");
    // The executor alone: its task's process group is left in its session.
    let executor = executor_pid(&agent, &id);
    let _ = std::process::Command::new("kill")
        .args(["-9", &executor.to_string()])
        .status();
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    assert_eq!(done["reason"], "REASON_EXECUTOR_TERMINATED", "{done}");
    eventually(
        Duration::from_secs(10),
        "the task's group to end",
        async || group_members(task).is_empty().then_some(()),
    )
    .await;
}

/// Launches `script` with `sh -c` as an executor-mode task; returns its container id.
pub(crate) fn executor_mode(agent: &TestAgent, script: &str) -> String {
    agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--executor",
        "--shell=false",
        "--command",
        "sh",
        "--arg=-c",
        "--arg",
        script,
    ])
}

#[tokio::test]
async fn an_executor_container_that_dies_before_running_is_seen_at_once() {
    let agent = TestAgent::start(&[]).await;
    let id = executor_mode(&agent, "exit 3");
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["exit_code"], 3, "{done}");
}

#[tokio::test]
async fn an_executor_container_killed_while_running_ends_its_task() {
    let agent = TestAgent::start(&[]).await;
    let id = executor_mode(&agent, "echo up; sleep 600");
    let name = format!("mesos-{}.{id}", agent.agent_id);
    eventually(Duration::from_secs(30), "the task to run", async || {
        (state_of(&agent, &id)["state"] == "TASK_RUNNING").then_some(())
    })
    .await;
    crate::support::docker_ok(&["kill", &name]);
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_FAILED", "{done}");
    assert_eq!(done["exit_code"], 137, "{done}");
}

/// The task's final view, within a deadline: a kill that never ends fails the test rather
/// than hanging it.
pub(crate) async fn ends(agent: &TestAgent, id: &str) -> serde_json::Value {
    eventually(Duration::from_secs(90), "the task to end", async || {
        let view = state_of(agent, id);
        let state = view["state"].as_str().unwrap_or_default().to_owned();
        matches!(
            state.as_str(),
            "TASK_FINISHED" | "TASK_FAILED" | "TASK_KILLED" | "TASK_LOST"
        )
        .then_some(view)
    })
    .await
}

/// `berth kill`, then the task KILLED with its container stopped; returns its history.
async fn killed(agent: &TestAgent, id: &str) -> String {
    let out = agent.berth(&["kill", id]);
    assert!(out.status.success(), "{}", text(&out));
    let done = ends(agent, id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert!(!container_running(&format!(
        "mesos-{}.{id}",
        agent.agent_id
    )));
    history(agent, id)
}

/// An agent whose Docker CLI is the real one, except that the `verbs` (`stop`, `kill`, as
/// a shell pattern) run `body` (a shell snippet) first; returns the agent and the
/// directory of the stand-in.
async fn agent_with_stop(verbs: &str, body: &str) -> (TestAgent, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The agent calls `docker -H unix://SOCKET stop -t N NAME`.
    let cli = crate::support::script(
        dir.path(),
        "docker-stop-stand-in",
        &format!(
            "case \"$3\" in {verbs}) echo \"$3\" >> {count}; {body};; esac\nexec docker \"$@\"",
            count = dir.path().join("stops").display()
        ),
    );
    let agent = TestAgent::start(&["--docker", cli.to_str().expect("utf-8")]).await;
    (agent, dir)
}

async fn sleeper(agent: &TestAgent, grace: &str) -> String {
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo up; sleep 600",
        "--grace",
        grace,
    ]);
    eventually(Duration::from_secs(30), "the task to run", async || {
        (state_of(agent, &id)["state"] == "TASK_RUNNING").then_some(())
    })
    .await;
    id
}

#[tokio::test]
async fn a_kill_whose_docker_stop_fails_twice_still_ends_killed() {
    let (agent, dir) = agent_with_stop(
        "stop",
        &format!(
            "if [ $(wc -l < {}) -le 2 ]; then echo 'stand-in: stop failed' >&2; exit 1; fi",
            "$(dirname $0)/stops"
        ),
    )
    .await;
    // Both failures and the stop that works come within the grace.
    let id = sleeper(&agent, "5secs").await;
    let history = killed(&agent, &id).await;
    assert_eq!(
        history.matches("retry kill").count(),
        2,
        "each failed stop is in the history: {history}"
    );
    assert!(history.contains("stand-in: stop failed"), "{history}");
    drop(dir);
}

#[tokio::test]
async fn a_kill_whose_docker_stop_hangs_escalates_and_ends_killed() {
    let (agent, _dir) = agent_with_stop("stop", "exec sleep 3600").await;
    let id = sleeper(&agent, "1secs").await;
    let history = killed(&agent, &id).await;
    assert!(history.contains("docker kill"), "{history}");
}

#[tokio::test]
async fn a_kill_after_a_dead_executors_end_was_decided_promises_no_kill() {
    // The decided end's stop (and its escalation) waits for the test's word, so the kill
    // comes while the end is being carried out.
    let (agent, dir) = agent_with_stop(
        "stop|kill",
        // Released, it ends the container at once rather than after the long grace.
        "while [ ! -e \"$(dirname $0)/release\" ]; do sleep 0.1; done; eval n=\\${$#}; exec docker \"$1\" \"$2\" kill \"$n\"",
    )
    .await;
    // A long grace: the hung stop is not escalated before the test releases it.
    let id = sleeper(&agent, "60secs").await;
    kill_executor(executor_pid(&agent, &id));
    eventually(
        Duration::from_secs(30),
        "the end to be decided",
        async || history(&agent, &id).contains("mark lost").then_some(()),
    )
    .await;
    let refused = agent.berth(&["kill", &id]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("already ending (mark lost)"),
        "{}",
        text(&refused)
    );
    std::fs::write(dir.path().join("release"), "").expect("release the stop");
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_LOST", "{done}");
    let history = history(&agent, &id);
    assert!(
        !history.contains("Killing"),
        "no kill was recorded: {history}"
    );
    // Once it ended, a kill answers with the end, as for any ended task.
    let out = agent.berth(&["kill", &id, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(view["state"], "TASK_LOST", "{view}");
}

#[tokio::test]
async fn a_second_kill_drives_a_stuck_one_again() {
    let (agent, dir) = agent_with_stop(
        "stop|kill",
        &format!(
            "if [ -e {} ]; then echo 'stand-in: stop failed' >&2; exit 1; fi",
            "$(dirname $0)/stuck"
        ),
    )
    .await;
    // Both `docker stop` and `docker kill` fail while the marker exists.
    let stuck = dir.path().join("stuck");
    std::fs::write(&stuck, "").expect("marker");
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo up; sleep 600",
        "--grace",
        "1secs",
    ]);
    eventually(Duration::from_secs(30), "the task to run", async || {
        (state_of(&agent, &id)["state"] == "TASK_RUNNING").then_some(())
    })
    .await;
    assert!(agent.berth(&["kill", &id]).status.success());
    eventually(Duration::from_secs(30), "two failed stops", async || {
        (history(&agent, &id).matches("retry kill").count() >= 2).then_some(())
    })
    .await;
    assert_eq!(state_of(&agent, &id)["state"], "TASK_KILLING");
    std::fs::remove_file(&stuck).expect("marker");
    let again = agent.berth(&["kill", &id]);
    assert!(again.status.success(), "{}", text(&again));
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
}

#[tokio::test]
async fn twenty_concurrent_launches_of_one_task_id_accept_one() {
    let agent = TestAgent::start(&[]).await;
    let work = agent.work.path().to_owned();
    let launches: Vec<_> = (0..20)
        .map(|_| {
            std::process::Command::new(crate::support::BERTH)
                .args([
                    "launch",
                    "--image",
                    SHELL_IMAGE,
                    "--command",
                    "sleep 600",
                    "--task_id",
                    "the-one",
                    "--work_dir",
                ])
                .arg(&work)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("berth launch")
        })
        .collect();
    let outs: Vec<_> = launches
        .into_iter()
        .map(|c| c.wait_with_output().expect("launch output"))
        .collect();
    let accepted: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(accepted.len(), 1, "accepted: {accepted:?}");
    let winner = String::from_utf8_lossy(&accepted[0].stdout)
        .trim()
        .to_owned();
    for refused in outs.iter().filter(|o| !o.status.success()) {
        assert!(
            text(refused).contains(&winner),
            "a refusal names the task's container: {}",
            text(refused)
        );
    }
    eventually(Duration::from_secs(30), "one container", async || {
        (agent.containers().len() == 1).then_some(())
    })
    .await;
    let listed = text(&agent.berth(&["ps", "--json"]));
    assert_eq!(listed.matches("the-one").count(), 1, "{listed}");
}

/// Sends a launch and hangs up at once, without reading the answer.
async fn launch_and_hang_up(socket: &std::path::Path, task_id: &str, wait: Duration) {
    use tokio::io::AsyncWriteExt;
    let body = format!(
        r#"{{"task_id": {{"value": "{task_id}"}}, "container": {{"type": "DOCKER", "docker": {{"image": "{SHELL_IMAGE}"}}}}, "command": {{"value": "sleep 600"}}}}"#
    );
    let request = format!(
        "POST /v1/tasks HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    tokio::time::sleep(wait).await;
    drop(stream);
}

/// Container ids as `berth ps --json` and `berth state ls --json` give them.
fn listed(agent: &TestAgent, args: &[&str]) -> std::collections::BTreeSet<String> {
    let out = agent.berth(args);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)));
    all.as_array()
        .expect("a list")
        .iter()
        .filter_map(|v| v["container_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn launches_whose_clients_hang_up_are_visible_or_never_were() {
    let mut agent = TestAgent::start(&["--docker_remove_delay", "0secs"]).await;
    let socket = agent.work.path().join("berth.sock");
    for i in 0..30u64 {
        // Hang-ups spread over the launch's first milliseconds, where its record is made.
        launch_and_hang_up(
            &socket,
            &format!("gone-{i}"),
            Duration::from_micros(i * 300),
        )
        .await;
    }
    // A hung-up launch goes on inside the agent, and on a loaded machine one may be
    // recorded well after the others: the set is taken once what is recorded is what is
    // listed, every listed task runs, and nothing changed for two seconds.
    let mut last: Option<(std::collections::BTreeSet<String>, std::time::Instant)> = None;
    let visible = eventually(
        Duration::from_secs(180),
        "what is recorded to be what is listed, every listed task running, for 2 s",
        async || {
            let recorded = listed(&agent, &["state", "ls", "--json"]);
            let shown = listed(&agent, &["ps", "--json"]);
            let settled = recorded == shown
                && shown
                    .iter()
                    .all(|id| state_of(&agent, id)["state"] == "TASK_RUNNING");
            if !settled {
                last = None;
                return None;
            }
            match &last {
                Some((before, since)) if *before == shown => {
                    (since.elapsed() >= Duration::from_secs(2)).then_some(shown)
                }
                _ => {
                    last = Some((shown, std::time::Instant::now()));
                    None
                }
            }
        },
    )
    .await;
    assert!(!visible.is_empty(), "no launch got through at all");
    agent.restart(&["--docker_remove_delay", "0secs"]).await;
    let after = listed(&agent, &["ps", "--json"]);
    assert!(
        after.is_subset(&visible),
        "tasks appeared after the restart that were not visible before: {:?}",
        after.difference(&visible)
    );
    let names = agent.containers();
    let mut ids: Vec<&str> = names.iter().filter_map(|n| n.rsplit('.').next()).collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "a task with two containers: {names:?}");
}

#[tokio::test]
async fn recover_cleanup_that_cannot_remove_a_container_fails_and_names_it() {
    let mut agent = TestAgent::start(&[]).await;
    let id = running_counter(&agent).await;
    let name = format!("mesos-{}.{id}", agent.agent_id);
    // Docker refuses to remove this one container.
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = crate::support::script(
        dir.path(),
        "docker-rm-refused",
        &format!(
            "if [ \"$3\" = rm ] && [ \"$6\" = {name} ]; then echo 'Error response from daemon: removal refused' >&2; exit 1; fi\nexec docker \"$@\""
        ),
    );
    agent.crash();
    let out = std::process::Command::new(crate::support::BERTH)
        .args(["agent", "--recover", "cleanup", "--docker"])
        .arg(&cli)
        .arg("--work_dir")
        .arg(agent.work.path())
        .output()
        .expect("run berth agent --recover cleanup");
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("could not finish") && said.contains(&id),
        "{said}"
    );
    assert!(container_exists(&name), "the stand-in removed {name}");
}

/// A tmpfs of its own, unmounted when dropped (after whatever was made in it).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount a tmpfs: {}", text(&out));
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// The ended tasks `berth ps` shows, with their states.
fn ended(agent: &TestAgent) -> Vec<(String, serde_json::Value)> {
    let out = agent.berth(&["ps", "--json", "--wait_for_agent", "0secs"]);
    let views: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    views
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            v["state"] != "TASK_RUNNING"
                && v["state"] != "TASK_STAGING"
                && v["state"] != "TASK_STARTING"
                && v["state"] != "TASK_KILLING"
        })
        .filter_map(|v| Some((v["container_id"].as_str()?.to_owned(), v["state"].clone())))
        .collect()
}

/// `berth launch --file -`: nothing written to the (full) disk by the test.
fn launch_from_stdin(agent: &TestAgent, json: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(crate::support::BERTH)
        .args([
            "launch",
            "--file",
            "-",
            "--wait_for_agent",
            "0secs",
            "--work_dir",
        ])
        .arg(agent.work.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("berth launch");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.as_bytes())
        .expect("send the task");
    child.wait_with_output().expect("launch output")
}

#[tokio::test]
async fn a_full_disk_stops_the_agent_and_nothing_unrecorded_is_shown() {
    let disk = Tmpfs::mount("64m");
    let work = tempfile::tempdir_in(disk.0.path()).expect("work dir");
    let mut agent = TestAgent::start_in(work, &[PLAIN_PROCESSES]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "while [ ! -e /mnt/mesos/sandbox/go ]; do sleep 0.1; done",
    ]);
    let name = format!("mesos-{}.{id}", agent.agent_id);
    eventually(Duration::from_secs(30), "the task to run", async || {
        (state_of(&agent, &id)["state"] == "TASK_RUNNING").then_some(())
    })
    .await;
    // Fill the disk, then launch plain tasks until the store cannot record one.
    let fill = disk.0.path().join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", fill.display()))
        .output();
    let mut refused = None;
    for i in 0..500 {
        let out = launch_from_stdin(
            &agent,
            &format!(r#"{{"task_id": {{"value": "filler-{i}"}}, "command": {{"value": "true"}}}}"#),
        );
        if !out.status.success() {
            refused = Some(text(&out));
            break;
        }
    }
    // Refused: the record failed, or the agent stopped before it could answer.
    let refused = refused.expect("the full disk never failed a record");
    // Whatever it showed ended is what its store holds after a restart.
    let shown_ended = ended(&agent);
    // It stops rather than serve what it cannot record, and says why.
    eventually(
        Duration::from_secs(30),
        &format!("the agent to stop after a launch was refused with: {refused}"),
        async || agent.exited().then_some(()),
    )
    .await;
    let log = std::fs::read_to_string(agent.work.path().join("agent.log")).unwrap_or_default();
    assert!(log.contains("could not be made durable"), "{log}");
    std::fs::write(agent.sandbox(&id).join("go"), "").expect("go");
    eventually(
        Duration::from_secs(30),
        "the container to exit",
        async || (!container_running(&name)).then_some(()),
    )
    .await;
    std::fs::remove_file(&fill).expect("free the disk");
    agent.restart(&[PLAIN_PROCESSES]).await;
    let done = agent.wait(&id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    for (ended_id, state) in &shown_ended {
        let after = agent.wait(ended_id);
        assert_eq!(
            &after["state"], state,
            "shown {state} before it was recorded: {after}"
        );
    }
    let shown = history(&agent, &id);
    assert_eq!(shown.matches("Terminated").count(), 1, "{shown}");
    drop(agent);
}

#[tokio::test]
async fn a_launch_the_full_disk_cannot_record_is_refused_with_why_and_leaves_nothing() {
    // The agent stops on a record it cannot make durable; the launch whose record failed
    // is refused first (503, the store failure), and nothing of it is recorded. The agent
    // is idle when the disk fills, and the task is larger than the space its write-ahead
    // log wrote ahead: its acceptance is the first write, and it fails.
    let disk = Tmpfs::mount("32m");
    let work = tempfile::tempdir_in(disk.0.path()).expect("work dir");
    let mut agent = TestAgent::start_in(work, &[PLAIN_PROCESSES]).await;
    let fill = disk.0.path().join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", fill.display()))
        .output();
    let padding = "x".repeat(64 * 1024);
    let out = launch_from_stdin(
        &agent,
        &format!(r#"{{"task_id": {{"value": "big"}}, "command": {{"value": "true {padding}"}}}}"#),
    );
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("could not be made durable") && said.contains("No space left"),
        "the launch was not answered with the store failure: {said}"
    );
    eventually(Duration::from_secs(30), "the agent to stop", async || {
        agent.exited().then_some(())
    })
    .await;
    std::fs::remove_file(&fill).expect("free the disk");
    agent.restart(&[PLAIN_PROCESSES]).await;
    let listed = agent.berth(&["ps", "--json", "--wait_for_agent", "0secs"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "[]",
        "nothing was recorded for the refused launch: {}",
        text(&listed)
    );
    drop(agent);
}

/// A pull that fails while a kill is being recorded: the kill was answered KILLING, so
/// the task ends KILLED, and its message says how the launch failed. The kill holds the
/// task's lock for a while after its record (a `sleep` failpoint), and the stand-in's
/// pull fails only once the kill is recorded: the launch's failure comes to record its
/// end while the kill is still deciding.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_pull_that_fails_while_a_kill_is_recorded_ends_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cli = crate::support::script(
        dir.path(),
        "docker-pull-stand-in",
        &format!(
            "if [ \"$3\" = pull ]; then touch {pulling}; while [ ! -e {release} ]; do sleep 0.1; done; echo 'stand-in: pull failed' >&2; exit 1; fi\nexec docker \"$@\"",
            pulling = dir.path().join("pulling").display(),
            release = dir.path().join("release").display(),
        ),
    );
    let agent = TestAgent::start_with_env(
        &["--docker", cli.to_str().expect("utf-8")],
        &[("FAILPOINTS", "record-Killing-after=sleep(4000)")],
    )
    .await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--force_pull",
        "--command",
        "sleep 600",
    ]);
    eventually(Duration::from_secs(30), "the pull to start", async || {
        dir.path().join("pulling").exists().then_some(())
    })
    .await;
    let kill = std::process::Command::new(crate::support::BERTH)
        .args(["kill", &id, "--json", "--work_dir"])
        .arg(agent.work.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("berth kill");
    eventually(
        Duration::from_secs(30),
        "the kill to be recorded",
        async || history(&agent, &id).contains("Killing").then_some(()),
    )
    .await;
    std::fs::write(dir.path().join("release"), "").expect("release the pull");
    let answer = kill.wait_with_output().expect("kill output");
    assert!(answer.status.success(), "{}", text(&answer));
    let view: serde_json::Value = serde_json::from_slice(&answer.stdout).expect("JSON");
    assert_eq!(view["state"], "TASK_KILLING", "{view}");
    let done = ends(&agent, &id).await;
    assert_eq!(done["state"], "TASK_KILLED", "{done}");
    assert_eq!(done["reason"], "REASON_TASK_KILLED_DURING_LAUNCH", "{done}");
    let message = done["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("killed on request") && message.contains("stand-in: pull failed"),
        "{done}"
    );
}

//! The `berth agent` binary as an operator starts it: it refuses a Docker it cannot use
//! and an API socket path it must not take, and otherwise starts, says so, serves an
//! owner-only socket, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{eventually, require_engine, script, TestAgent, PLAIN_PROCESSES, SHELL_IMAGE};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

#[tokio::test]
async fn an_unreachable_engine_is_waited_for_then_the_agent_stops_with_the_reason() {
    require_engine();
    let work = tempfile::tempdir().expect("tempdir");
    let socket = work.path().join("berth.sock");
    let agent = std::process::Command::new(BERTH)
        .args([
            "agent",
            "--docker_socket",
            "/nonexistent/docker.sock",
            "--recovery_timeout",
            "4secs",
            "--work_dir",
        ])
        .arg(work.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    let client = berth::api::client::Client::new(socket);
    let health: serde_json::Value = eventually(
        Duration::from_secs(30),
        "the API while recovering",
        async || client.get("/v1/health", Duration::from_secs(5)).await.ok(),
    )
    .await;
    assert_eq!(health["status"], "recovering", "{health}");
    let out = agent.wait_with_output().expect("agent exits");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("docker is not usable after waiting --recovery_timeout (4secs)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unix:///nonexistent/docker.sock"),
        "{stderr}"
    );
}

#[test]
fn an_old_engine_is_refused_by_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No engine this old can be installed here; a stand-in CLI reports it.
    let cli = script(dir.path(), "old-docker", "echo '1.6.2|1.6.2'");
    let out = Command::new(BERTH)
        .arg("agent")
        .arg("--docker")
        .arg(&cli)
        .arg("--work_dir")
        .arg(dir.path().join("work"))
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1.6.2") && stderr.contains("1.8.0"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_agent_starts_and_stops_on_sigterm() {
    require_engine();
    let work = tempfile::tempdir().expect("tempdir");
    let work_dir = work.path().join("nested/work");
    let mut child = Command::new(BERTH)
        .args(["agent", "--log_format", "json", "--work_dir"])
        .arg(&work_dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth");
    let stderr = child.stderr.take().expect("piped");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    eventually(
        Duration::from_secs(30),
        "the agent to log that it started",
        async || {
            while let Ok(line) = rx.try_recv() {
                seen.push(line);
            }
            seen.iter()
                .find(|l| l.contains("berth agent started"))
                .cloned()
        },
    )
    .await;
    assert!(work_dir.is_dir(), "the work dir was created");
    let json: serde_json::Value =
        serde_json::from_str(&seen[0]).expect("--log_format json logs JSON lines");
    assert!(json.get("fields").is_some(), "{json}");

    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("signal the agent");
    let status = eventually(Duration::from_secs(30), "the agent to exit", async || {
        child.try_wait().expect("try_wait")
    })
    .await;
    assert!(status.success(), "{status:?}");
}

/// A process killed when dropped, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs an agent in `dir/work` that is expected to refuse to start; returns its exit code
/// and stderr.
async fn refused_agent(dir: &Path, api_socket: &Path) -> (Option<i32>, String) {
    let work = dir.join("work");
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
    refused(
        dir,
        &[
            "--work_dir",
            &path(&work),
            "--api_socket",
            &path(api_socket),
        ],
    )
    .await
}

#[tokio::test]
async fn a_file_at_the_api_socket_path_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "not a socket").expect("write");
    let (code, stderr) = refused_agent(dir.path(), &file).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--api_socket {} exists and is not a socket; remove it or choose another path",
            file.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("the file is still there"),
        "not a socket"
    );
}

#[tokio::test]
async fn another_agents_live_socket_is_not_taken() {
    let first = TestAgent::start(&[]).await;
    let socket = first.work.path().join("berth.sock");
    let other = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = refused_agent(other.path(), &socket).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("another agent is serving {}", socket.display())),
        "{stderr}"
    );
    let health = first.berth(&["health"]);
    assert_eq!(
        String::from_utf8_lossy(&health.stdout).trim(),
        format!("ok {}", first.agent_id),
        "the first agent still serves its socket"
    );
}

#[tokio::test]
async fn the_api_socket_is_owner_only_and_nothing_is_left_beside_it() {
    let agent = TestAgent::start(&[]).await;
    let socket = agent.work.path().join("berth.sock");
    let meta = std::fs::symlink_metadata(&socket).expect("the socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let private: Vec<_> = std::fs::read_dir(agent.work.path())
        .expect("read work dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".berth-"))
        .collect();
    assert!(private.is_empty(), "{private:?}");
}

/// Runs `berth agent ARGS` that is expected to refuse to start; returns its exit code and
/// stderr.
async fn refused(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let log = dir.join(format!("refused-{}.log", uuid::Uuid::new_v4()));
    let mut agent = Killed(
        Command::new(BERTH)
            .arg("agent")
            .args(args)
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("run berth"),
    );
    let status = eventually(
        Duration::from_secs(60),
        "the agent to refuse to start",
        async || agent.0.try_wait().expect("try_wait"),
    )
    .await;
    (
        status.code(),
        std::fs::read_to_string(&log).expect("read log"),
    )
}

/// Run on the host, `--docker_mesos_image` is refused before anything is written, with
/// every problem found: Mesos started and lost every task after its first restart.
#[tokio::test]
async fn docker_mesos_image_outside_a_container_is_refused_and_nothing_is_written() {
    require_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let work_arg = work.to_str().expect("utf-8 path");
    let absent = format!("berth-test/absent-{}:latest", uuid::Uuid::new_v4());
    for (image, missing) in [(SHELL_IMAGE, false), (absent.as_str(), true)] {
        let (code, stderr) = refused(
            dir.path(),
            &["--docker_mesos_image", image, "--work_dir", work_arg],
        )
        .await;
        assert_eq!(code, Some(1), "{image}: {stderr}");
        assert!(stderr.contains("not in a Docker container"), "{stderr}");
        assert!(
            stderr.contains("docs/operations.md \"The agent in a container\""),
            "{stderr}"
        );
        assert_eq!(
            stderr.contains(&format!("--docker_mesos_image {image} is not present")),
            missing,
            "{image}: {stderr}"
        );
        assert!(!work.exists(), "{image}: the work dir was made");
    }
}

/// An agent's extra flags, its environment, whether the default delay is expected, and
/// what the case shows.
type EnvCase = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    bool,
    &'static str,
);

/// The delay between a task's end and its container's removal, as recorded.
fn recorded_remove_delay_ms(agent: &TestAgent, id: &str) -> u64 {
    let out = agent.berth(&["state", "history", id, "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "state history: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let ended = history
        .as_array()
        .and_then(|records| {
            records
                .iter()
                .find_map(|r| Some((r["at_ms"].as_u64()?, r["phase"].get("Terminated")?.clone())))
        })
        .unwrap_or_else(|| panic!("no Terminated record: {history}"));
    ended.1["remove_at_ms"].as_u64().expect("remove_at_ms") - ended.0
}

/// Flags come from `BERTH_<FLAG>` and Mesos's from `MESOS_<FLAG>`, as a Mesos agent's
/// environment file sets them; the command line wins, then BERTH_, then MESOS_; a bare
/// `--strict` means true. Seen in the removal delay each agent records for a task's end.
#[tokio::test]
async fn flags_come_from_the_environment_and_the_command_line_wins() {
    let cases: [EnvCase; 4] = [
        (
            &[],
            &[("MESOS_DOCKER_REMOVE_DELAY", "1hrs")],
            false,
            "MESOS_ read",
        ),
        (
            &["--strict"],
            &[
                ("MESOS_DOCKER_REMOVE_DELAY", "1secs"),
                ("BERTH_DOCKER_REMOVE_DELAY", "1hrs"),
            ],
            false,
            "BERTH_ over MESOS_, bare --strict",
        ),
        (
            &["--docker_remove_delay", "1hrs"],
            &[("BERTH_DOCKER_REMOVE_DELAY", "1secs")],
            false,
            "the command line over BERTH_",
        ),
        (
            &[],
            &[("MESOS_API_SOCKET", "/nonexistent/x.sock")],
            true,
            "MESOS_ of a flag Mesos does not have is not read",
        ),
    ];
    for (extra, env, default, what) in cases {
        let agent = TestAgent::start_with_env(extra, env).await;
        let id = agent.launch(&["--image", SHELL_IMAGE, "--command", "true"]);
        let end = agent.wait(&id);
        assert_eq!(end["state"], "TASK_FINISHED", "{what}: {end}");
        let delay = recorded_remove_delay_ms(&agent, &id);
        if default {
            // The default (6 hours): the variable did nothing, and the agent started.
            assert!(delay > 3_000_000, "{what}: {delay} ms");
        } else {
            assert!(
                (3_500_000..=3_700_000).contains(&delay),
                "{what}: the removal delay recorded is {delay} ms, not an hour"
            );
        }
    }
}

/// The agent's flag variables are its own: a plain-process task (which runs in its
/// executor's environment) sees none of them, so credentials given as
/// `BERTH_DOCKER_CONFIG` never reach a task.
#[tokio::test]
async fn a_task_never_sees_the_agents_flag_variables() {
    let agent =
        TestAgent::start_with_env(&[PLAIN_PROCESSES], &[("BERTH_GC_DELAY", "2weeks")]).await;
    let out =
        agent.launch_json(r#"{"task_id": {"value": "env-seen"}, "command": {"value": "env"}}"#);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let end = agent.wait(&id);
    assert_eq!(end["state"], "TASK_FINISHED", "{end}");
    let seen =
        std::fs::read_to_string(agent.work.path().join("sandboxes").join(&id).join("stdout"))
            .expect("the task's stdout");
    assert!(seen.contains("MESOS_SANDBOX="), "{seen}");
    assert!(
        !seen.contains("BERTH_GC_DELAY"),
        "the task saw the agent's flag variable: {seen}"
    );
}

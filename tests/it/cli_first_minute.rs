//! A new user's first minute: `berth agent &`, then at once `berth launch --image IMAGE`
//! as one would type `docker run IMAGE`, without waiting for anything.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::support::{docker_cli, eventually, require_engine, BERTH, CMD_IMAGE};

/// A `berth agent` spawned as a user would start it: nothing waits for it to be ready.
/// Killed, with its executors and containers, when dropped, also when the test fails.
struct FreshAgent {
    child: Child,
    work: tempfile::TempDir,
    mark: berth_chaos::sweep::RunMark,
}

impl FreshAgent {
    fn spawn(extra: &[&str]) -> FreshAgent {
        require_engine();
        let work = tempfile::tempdir().expect("tempdir");
        let mark = berth_chaos::sweep::RunMark::new();
        let (key, value) = mark.env();
        let child = Command::new(BERTH)
            .env(key, value)
            .args(["agent", "--log_format", "json", "--work_dir"])
            .arg(work.path())
            .args(extra)
            .stderr(std::fs::File::create(work.path().join("agent.log")).expect("log"))
            .spawn()
            .expect("start agent");
        FreshAgent { child, work, mark }
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .args(args)
            .arg("--work_dir")
            .arg(self.work.path())
            .output()
            .expect("run berth")
    }

    /// The agent id from the agent's log: it is logged before the API serves, so any
    /// container the agent made is named for an id found here.
    fn logged_agent_id(work: &Path) -> Option<String> {
        let log = std::fs::read_to_string(work.join("agent.log")).ok()?;
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find_map(|line| line["fields"]["agent_id"].as_str().map(str::to_owned))
    }
}

impl Drop for FreshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.mark.kill_all();
        let Some(agent_id) = FreshAgent::logged_agent_id(self.work.path()) else {
            return;
        };
        let listed = docker_cli(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=berth.agent_id={agent_id}"),
        ]);
        let ids = String::from_utf8_lossy(&listed.stdout).into_owned();
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(ids.split_whitespace());
        if args.len() > 3 {
            let _ = docker_cli(&args);
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn launch_at_once_after_starting_the_agent_runs_the_images_default_command() {
    let agent = FreshAgent::spawn(&[]);
    let launched = agent.berth(&["launch", "--image", CMD_IMAGE]);
    assert!(launched.status.success(), "launch: {}", text(&launched));
    let id = String::from_utf8_lossy(&launched.stdout).trim().to_owned();

    let waited = agent.berth(&["wait", &id, "--json"]);
    let done: serde_json::Value = serde_json::from_slice(&waited.stdout)
        .unwrap_or_else(|e| panic!("wait: {e}: {}", text(&waited)));
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    let stdout = agent.work.path().join("sandboxes").join(&id).join("stdout");
    assert_eq!(
        std::fs::read_to_string(&stdout).expect("the task's stdout"),
        "default-cmd\n"
    );

    let health = agent.berth(&["health"]);
    assert!(health.status.success(), "health: {}", text(&health));
    let agent_id = FreshAgent::logged_agent_id(agent.work.path()).expect("agent id logged");
    assert_eq!(
        String::from_utf8_lossy(&health.stdout).trim(),
        format!("ok {agent_id}")
    );
}

#[test]
fn with_no_agent_the_cli_waits_its_bound_then_says_what_to_do() {
    let work = tempfile::tempdir().expect("tempdir");
    let berth = |args: &[&str]| {
        Command::new(BERTH)
            .args(args)
            .arg("--work_dir")
            .arg(work.path())
            .output()
            .expect("run berth")
    };
    let stale = || {
        // A socket whose listener is gone refuses connections, as a stopped agent's does.
        drop(std::os::unix::net::UnixListener::bind(work.path().join("berth.sock")).expect("bind"));
    };
    let cases: [(&str, &dyn Fn(), &str); 2] = [
        ("no socket", &|| {}, "`berth agent --work_dir DIR`"),
        (
            "a stale socket",
            &stale,
            "start the agent with `berth agent`",
        ),
    ];
    for (what, set_up, advice) in cases {
        set_up();
        let out = berth(&["ps", "--wait_for_agent", "1secs"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: {}", text(&out));
        assert_eq!(
            stderr.matches("waiting for the agent at").count(),
            1,
            "{what}: said once: {stderr}"
        );
        assert!(stderr.contains("after waiting 1secs"), "{what}: {stderr}");
        assert!(stderr.contains(advice), "{what}: {stderr}");

        let health = berth(&["health"]);
        let stderr = String::from_utf8_lossy(&health.stderr);
        assert!(!health.status.success(), "{what}: {}", text(&health));
        assert!(!stderr.contains("waiting"), "health never waits: {stderr}");
        assert!(
            stderr.contains("cannot reach the agent") && stderr.contains("`berth agent`"),
            "{what}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_recovering_agent_is_waited_for_within_the_bound() {
    // An engine that never answers keeps the agent recovering.
    let agent = FreshAgent::spawn(&[
        "--docker_socket",
        "/nonexistent/docker.sock",
        "--recovery_timeout",
        "10mins",
    ]);
    let client = berth::api::client::Client::new(agent.work.path().join("berth.sock"));
    eventually(
        Duration::from_secs(30),
        "the API while recovering",
        async || {
            client
                .get::<serde_json::Value>("/v1/health", Duration::from_secs(5))
                .await
                .ok()
        },
    )
    .await;

    let health = agent.berth(&["health"]);
    assert_eq!(health.status.code(), Some(1), "{}", text(&health));
    assert!(
        String::from_utf8_lossy(&health.stdout).starts_with("recovering "),
        "{}",
        text(&health)
    );

    let out = agent.berth(&["launch", "--image", CMD_IMAGE, "--wait_for_agent", "2secs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(
        stderr.matches("waiting for the agent at").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("is still starting or recovering after 2secs")
            && stderr.contains("`berth health`"),
        "{stderr}"
    );
}

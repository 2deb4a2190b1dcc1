//! `berth events` and `GET /v1/events`: every status update in the order recorded, in
//! Mesos's words, resumable from a position, followed live, across a restart.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::recovery::text;
use crate::support::{eventually, TestAgent, BERTH, SHELL_IMAGE};

fn events(agent: &TestAgent, after: u64) -> Vec<serde_json::Value> {
    let out = agent.berth(&["events", "--json", "--after", &after.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// (state, source) of each update of container `id`, in order.
fn of(events: &[serde_json::Value], id: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["task_updated"]["container_id"] == id)
        .map(|e| {
            let status = &e["task_updated"]["status"];
            (
                status["state"].as_str().unwrap_or_default().to_owned(),
                status["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn position(event: &serde_json::Value) -> u64 {
    event["position"].as_u64().expect("a position")
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn every_update_is_listed_in_order_resumable_and_followed_across_a_restart() {
    let mut agent = TestAgent::start(&[]).await;
    let ok = agent.launch(&["--image", SHELL_IMAGE, "--command", "true"]);
    let failed = agent.launch(&["--image", SHELL_IMAGE, "--command", "exit 3"]);
    agent.wait(&ok);
    agent.wait(&failed);

    let all = events(&agent, 0);
    let running_then = |end: &str| {
        pairs(&[
            ("TASK_STAGING", "SOURCE_AGENT"),
            ("TASK_STARTING", "SOURCE_AGENT"),
            ("TASK_RUNNING", "SOURCE_EXECUTOR"),
            (end, "SOURCE_EXECUTOR"),
        ])
    };
    assert_eq!(of(&all, &ok), running_then("TASK_FINISHED"), "{all:#?}");
    assert_eq!(of(&all, &failed), running_then("TASK_FAILED"), "{all:#?}");
    let positions: Vec<u64> = all.iter().map(position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let end = all
        .iter()
        .find(|e| {
            e["task_updated"]["container_id"] == failed.as_str()
                && e["task_updated"]["status"]["state"] == "TASK_FAILED"
        })
        .expect("the failure");
    assert_eq!(end["task_updated"]["exit_code"], 3, "{end}");
    let status = &end["task_updated"]["status"];
    assert_eq!(status["agent_id"]["value"], agent.agent_id.as_str());
    assert!(
        status["timestamp"].as_f64().is_some_and(|t| t > 1.7e9),
        "{status}"
    );
    assert!(
        status.get("reason").is_none(),
        "an exit has no reason in Mesos: {status}"
    );
    let uuids: std::collections::BTreeSet<&str> = all
        .iter()
        .map(|e| {
            e["task_updated"]["status"]["uuid"]
                .as_str()
                .expect("a uuid")
        })
        .collect();
    assert_eq!(uuids.len(), all.len(), "one uuid per update");

    // Resumed from a position: exactly what came after it, the same updates again.
    let third = position(&all[2]);
    assert_eq!(events(&agent, third), all[3..].to_vec());
    let last = position(all.last().expect("updates"));
    assert!(events(&agent, last).is_empty());

    // Followed: a new task's updates arrive as they are recorded, after `last` only.
    let mut follower = Command::new(BERTH)
        .args([
            "events",
            "-f",
            "--json",
            "--after",
            &last.to_string(),
            "--work_dir",
        ])
        .arg(agent.work.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("berth events -f");
    let lines = BufReader::new(follower.stdout.take().expect("stdout"));
    let later = agent.launch(&["--image", SHELL_IMAGE, "--command", "true"]);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in lines.lines() {
            let Ok(line) = line else { break };
            let event: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            let done = event["task_updated"]["status"]["state"] == "TASK_FINISHED";
            seen.push(event);
            if done {
                break;
            }
        }
        seen
    });
    eventually(
        Duration::from_secs(30),
        "the followed task's end",
        async || reader.is_finished().then_some(()),
    )
    .await;
    let _ = follower.kill();
    let _ = follower.wait();
    let followed = reader.join().expect("reader");
    assert!(followed.iter().all(|e| position(e) > last), "{followed:#?}");
    assert_eq!(
        of(&followed, &later),
        running_then("TASK_FINISHED"),
        "{followed:#?}"
    );
    // The follower that hung up is no trouble to the agent.
    assert!(agent.berth(&["health"]).status.success());

    // Across a restart: positions go on, and nothing is listed twice.
    let before = events(&agent, 0);
    agent.crash();
    agent.restart(&[]).await;
    let after_restart = events(&agent, 0);
    assert_eq!(after_restart[..before.len()], before[..]);
    let again = agent.launch(&["--image", SHELL_IMAGE, "--command", "true"]);
    agent.wait(&again);
    let newest = events(&agent, position(before.last().expect("updates")));
    assert_eq!(
        of(&newest, &again),
        running_then("TASK_FINISHED"),
        "{newest:#?}"
    );
}

#[tokio::test]
async fn the_text_form_says_each_update_on_one_line() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", "exit 3"]);
    agent.wait(&id);
    let out = agent.berth(&["events"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    let last = said.lines().last().expect("a line");
    assert!(
        last.contains(&id) && last.contains("TASK_FAILED SOURCE_EXECUTOR exit=3"),
        "{said}"
    );
}

#[tokio::test]
async fn a_position_from_elsewhere_is_refused_and_followers_do_not_hold_a_stop() {
    let mut agent = TestAgent::start(&[]).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", "true"]);
    agent.wait(&id);
    let foreign = agent.berth(&["events", "--after", "999999999"]);
    assert!(!foreign.status.success(), "{}", text(&foreign));
    assert!(text(&foreign).contains("read from 0"), "{}", text(&foreign));

    // A follower attached: SIGTERM still stops the agent, and the stream ends with it.
    let mut follower = Command::new(BERTH)
        .args(["events", "-f", "--json", "--work_dir"])
        .arg(agent.work.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("berth events -f");
    let lines = BufReader::new(follower.stdout.take().expect("stdout"));
    let (first, got_first) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut read = 0;
        for _ in lines.lines().map_while(Result::ok) {
            read += 1;
            let _ = first.send(());
        }
        read
    });
    // Its first line (the task's updates come first) says it is attached.
    eventually(
        Duration::from_secs(10),
        "the follower to read",
        async || got_first.try_recv().ok(),
    )
    .await;
    let _ = Command::new("kill")
        .args(["-TERM", &agent.pid().to_string()])
        .status();
    eventually(Duration::from_secs(20), "the agent to stop", async || {
        agent.exited().then_some(())
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the followed stream to end",
        async || reader.is_finished().then_some(()),
    )
    .await;
    assert!(
        reader.join().expect("reader") >= 4,
        "the task's four updates"
    );
    let _ = follower.wait();
}

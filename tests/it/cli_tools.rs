//! The operator's CLI against a real agent and engine, as one would use it during an
//! incident: `berth ps` (columns, `-q`, `--json`), `berth logs` (`--tail`, `--stream`,
//! `--since`, rotated files, with the agent stopped), `berth wait`'s exit codes, `berth
//! inspect`, completions and the man page, `--version` and the agent's first log line.

use std::process::{Command, Output};

use crate::support::{TestAgent, BERTH, PLAIN_PROCESSES, SHELL_IMAGE};

fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the berth binary with no agent to talk to.
fn berth(args: &[&str]) -> Output {
    Command::new(BERTH).args(args).output().expect("run berth")
}

#[tokio::test]
async fn ps_aligns_its_columns_for_long_task_ids_and_lists_ids_or_json() {
    let agent = TestAgent::start(&[]).await;
    let long_task = format!(
        "a-task-id-far-longer-than-twenty-characters-{}",
        "x".repeat(30)
    );
    let long = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "exit 3",
        "--task_id",
        &long_task,
    ]);
    let short = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "true",
        "--task_id",
        "t",
    ]);
    agent.wait(&long);
    agent.wait(&short);

    let table = stdout(&agent.berth(&["ps"]));
    let lines: Vec<&str> = table.lines().collect();
    let header = lines[0];
    let columns = [
        "CONTAINER",
        "TASK",
        "IMAGE",
        "STATE",
        "AGE",
        "EXIT",
        "REASON",
        "MESSAGE",
    ];
    // Where each header word starts.
    let at: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header[..i].ends_with(' ')))
        .map(|(i, _)| i)
        .collect();
    let names: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(names, columns, "{header:?}");
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{header:?}");
    let row = |id: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id} in\n{table}"))
    };
    // Each cell starts where its header does, however long the task id.
    let cell = |line: &str, column: usize| -> String {
        line[at[column]..]
            .split("  ")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    for (id, task, state, exit) in [
        (&long, long_task.as_str(), "TASK_FAILED", "3"),
        (&short, "t", "TASK_FINISHED", "0"),
    ] {
        let line = row(id);
        assert_eq!(cell(line, 1), task, "{table}");
        assert_eq!(cell(line, 2), SHELL_IMAGE, "{table}");
        assert_eq!(cell(line, 3), state, "{table}");
        assert!(cell(line, 4).ends_with(['s', 'm']), "an age: {table}");
        assert_eq!(cell(line, 5), exit, "{table}");
    }

    let quiet = stdout(&agent.berth(&["ps", "-q"]));
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort_unstable();
    let mut want = vec![long.as_str(), short.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&agent.berth(&["ps", "--json"]))).expect("ps --json");
    let views = json.as_array().expect("an array");
    assert_eq!(views.len(), 2, "{json}");
    assert!(views.iter().all(|v| v["image"] == SHELL_IMAGE), "{json}");
}

#[tokio::test]
async fn logs_tail_pick_a_stream_read_rotated_files_and_work_with_the_agent_stopped() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "for i in 1 2 3 4 5; do echo out$i; done; echo err1 >&2; echo err2 >&2",
    ]);
    assert_eq!(agent.wait(&id)["state"], "TASK_FINISHED");

    let both = agent.berth(&["logs", &id]);
    assert_eq!(stdout(&both), "out1\nout2\nout3\nout4\nout5\n");
    assert_eq!(String::from_utf8_lossy(&both.stderr), "err1\nerr2\n");
    let tail = agent.berth(&["logs", &id, "--tail", "2", "--stream", "stdout"]);
    assert_eq!(stdout(&tail), "out4\nout5\n");
    assert!(tail.stderr.is_empty(), "{}", text(&tail));
    assert_eq!(
        stdout(&agent.berth(&["logs", &id, "--stream", "stderr", "--tail", "1"])),
        "err2\n"
    );
    assert_eq!(
        stdout(&agent.berth(&["logs", &id, "--stderr"])),
        "err1\nerr2\n"
    );

    // Files rotated away by size come first, oldest first, and --tail reaches into them.
    let sandbox = agent.sandbox(&id);
    std::fs::write(sandbox.join("stdout.2"), "old1\n").expect("write");
    std::fs::write(sandbox.join("stdout.1"), "old2\nold3\n").expect("write");
    let all = "old1\nold2\nold3\nout1\nout2\nout3\nout4\nout5\n";
    assert_eq!(
        stdout(&agent.berth(&["logs", &id, "--stream", "stdout"])),
        all
    );
    assert_eq!(
        stdout(&agent.berth(&["logs", &id, "--stream", "stdout", "--tail", "6"])),
        "old3\nout1\nout2\nout3\nout4\nout5\n"
    );

    // With the agent stopped, the sandbox is found from the id's prefix alone.
    let work = agent.stop();
    let offline = |args: &[&str]| {
        Command::new(BERTH)
            .args(args)
            .arg("--work_dir")
            .arg(work.path())
            .output()
            .expect("run berth")
    };
    let prefix = &id[..8];
    assert_eq!(
        stdout(&offline(&["logs", prefix, "--stream", "stdout"])),
        all
    );
    assert_eq!(
        stdout(&offline(&["logs", prefix, "--stderr", "--tail", "1"])),
        "err2\n"
    );
    let since = offline(&["logs", prefix, "--since", "1h"]);
    assert!(!since.status.success(), "{}", text(&since));
    assert!(
        String::from_utf8_lossy(&since.stderr).contains("--since reads Docker's log"),
        "{}",
        text(&since)
    );
    // What a restart would do with it, as JSON too.
    let plan: serde_json::Value =
        serde_json::from_str(&stdout(&offline(&["recover", "--dry-run", "--json"])))
            .expect("recover --dry-run --json");
    let decision = plan
        .as_array()
        .and_then(|d| d.iter().find(|d| d["container_id"] == id.as_str()))
        .unwrap_or_else(|| panic!("no decision for {id} in {plan}"));
    assert!(
        decision["action"].is_string() && decision["why"].is_string(),
        "{decision}"
    );

    let unknown = offline(&["logs", "ffffffff"]);
    assert!(!unknown.status.success(), "{}", text(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no sandbox's name starts with"),
        "{}",
        text(&unknown)
    );
}

#[tokio::test]
async fn logs_follow_until_the_task_ends_and_since_reads_docker_s_log() {
    let agent = TestAgent::start(&[]).await;
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "echo first; sleep 2; echo second",
    ]);
    // Started while the task runs; ends by itself once it has ended.
    let followed = agent.berth(&["logs", &id, "-f", "--stream", "stdout"]);
    assert_eq!(stdout(&followed), "first\nsecond\n");
    assert_eq!(agent.wait(&id)["state"], "TASK_FINISHED");

    assert_eq!(
        stdout(&agent.berth(&["logs", &id, "--since", "1h"])),
        "first\nsecond\n"
    );
    assert_eq!(
        stdout(&agent.berth(&["logs", &id, "--since", "1h", "--tail", "1"])),
        "second\n"
    );
    assert_eq!(
        stdout(&agent.berth(&["logs", &id, "--since", "2100-01-01T00:00:00Z"])),
        ""
    );
    let bad = agent.berth(&["logs", &id, "--since", "yesterday"]);
    assert!(!bad.status.success(), "{}", text(&bad));
}

#[tokio::test]
async fn wait_exits_with_the_task_s_exit_code_and_prints_its_end() {
    let agent = TestAgent::start(&[PLAIN_PROCESSES]).await;
    let cases = [
        ("exit 3", 3, "FAILED exit=3"),
        ("true", 0, "FINISHED exit=0"),
    ];
    for (command, code, says) in cases {
        let id = agent.launch(&["--image", SHELL_IMAGE, "--command", command]);
        let waited = agent.berth(&["wait", &id]);
        assert_eq!(
            waited.status.code(),
            Some(code),
            "{command}: {}",
            text(&waited)
        );
        let line = String::from_utf8_lossy(&waited.stdout);
        assert!(
            line.starts_with(&id) && line.contains(says),
            "{command}: {line}"
        );
    }
    // A plain process that dies of a signal exits as a container that does: 128 + it.
    let out = agent.launch_json(
        r#"{"task_id": {"value": "plain-signalled"}, "command": {"value": "kill -TERM $$"}}"#,
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = stdout(&out).trim().to_owned();
    let waited = agent.berth(&["wait", &id]);
    assert_eq!(waited.status.code(), Some(143), "{}", text(&waited));
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains("FAILED exit=143"),
        "{}",
        text(&waited)
    );
    // A task killed while it sleeps (its shell dies of SIGKILL after the grace).
    let id = agent.launch(&[
        "--image",
        SHELL_IMAGE,
        "--command",
        "sleep 600",
        "--grace",
        "0secs",
    ]);
    let killed = agent.berth(&["kill", &id, "--json"]);
    let view: serde_json::Value = serde_json::from_str(&stdout(&killed)).expect("kill --json");
    assert_eq!(view["container_id"], id.as_str());
    let waited = agent.berth(&["wait", &id, "--json"]);
    let end: serde_json::Value = serde_json::from_slice(&waited.stdout).expect("wait --json");
    assert_eq!(end["state"], "TASK_KILLED", "{end}");
    let code = end["exit_code"]
        .as_i64()
        .filter(|&c| c != 0)
        .map_or(i32::from(berth::cli::WAIT_KILLED), |c| c as i32);
    assert_eq!(waited.status.code(), Some(code), "{}", text(&waited));
}

#[tokio::test]
async fn inspect_shows_the_task_its_container_and_its_history_in_one_document() {
    let agent = TestAgent::start(&[]).await;
    let launched = agent.berth(&[
        "launch",
        "--image",
        SHELL_IMAGE,
        "--command",
        "true",
        "--json",
    ]);
    let launched: serde_json::Value =
        serde_json::from_str(&stdout(&launched)).expect("launch --json");
    let id = launched["container_id"].as_str().expect("an id").to_owned();
    assert!(launched["warnings"].is_array(), "{launched}");
    agent.wait(&id);

    let out = agent.berth(&["inspect", &id[..8]]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("inspect");
    assert_eq!(doc["task"]["container_id"], id.as_str(), "{doc}");
    assert_eq!(doc["task"]["state"], "TASK_FINISHED", "{doc}");
    let name = format!("mesos-{}.{id}", agent.agent_id);
    assert_eq!(doc["docker"]["Name"], format!("/{name}"), "{doc}");
    assert_eq!(doc["docker"]["Config"]["Image"], SHELL_IMAGE, "{doc}");
    let phases: Vec<String> = doc["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|r| match &r["phase"] {
            serde_json::Value::String(unit) => Some(unit.clone()),
            other => other.as_object()?.keys().next().cloned(),
        })
        .collect();
    assert_eq!(
        phases.first().map(String::as_str),
        Some("Accepted"),
        "{doc}"
    );
    assert!(phases.iter().any(|p| p == "Terminated"), "{phases:?}");
    assert!(doc["statuses"].is_array(), "{doc}");

    let unknown = agent.berth(&["inspect", "ffffffff"]);
    assert!(!unknown.status.success(), "{}", text(&unknown));
}

#[tokio::test]
async fn the_agent_logs_its_version_and_flags_and_version_names_the_commit() {
    let agent = TestAgent::start(&[]).await;
    let log = std::fs::read_to_string(agent.work.path().join("agent.log")).expect("agent.log");
    let first = log
        .lines()
        .find(|l| l.contains("berth agent starting"))
        .unwrap_or_else(|| panic!("no start line in\n{log}"));
    assert!(first.contains(berth::VERSION), "{first}");
    let work_dir = format!("--work_dir={}", agent.work.path().display());
    for flag in [
        work_dir.as_str(),
        "--docker_remove_delay=1hrs",
        "--strict=true",
        "--containerizers=docker",
        "--switch_user=true",
    ] {
        assert!(first.contains(flag), "{flag} in {first}");
    }

    let version = stdout(&berth(&["--version"]));
    assert_eq!(version.trim(), format!("berth {}", berth::VERSION));
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(commit) = commit {
        assert!(
            version.contains(&format!("({commit}")),
            "{version} names {commit}"
        );
    }
}

#[test]
fn completions_parse_and_the_man_page_has_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("berth.bash");
    std::fs::write(&script, stdout(&berth(&["completions", "bash"]))).expect("write");
    let parsed = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash -n");
    assert!(parsed.status.success(), "{}", text(&parsed));
    for shell in ["zsh", "fish"] {
        assert!(
            stdout(&berth(&["completions", shell])).contains("berth"),
            "{shell}"
        );
    }

    let commands = [
        "agent",
        "launch",
        "kill",
        "wait",
        "ps",
        "logs",
        "inspect",
        "state",
        "health",
        "recover",
        "chaos",
        "completions",
        "man",
    ];
    let page = stdout(&berth(&["man"]));
    for command in commands {
        assert!(
            page.contains(&format!("berth\\-{command}(1)")),
            "{command} in\n{page}"
        );
    }
    // Hidden commands are for the agent, not people.
    assert!(!page.contains("berth\\-executor"), "{page}");
    let pages = dir.path().join("man");
    stdout(&berth(&["man", "--dir", pages.to_str().expect("utf-8")]));
    for command in commands {
        assert!(
            pages.join(format!("berth-{command}.1")).is_file(),
            "{command}"
        );
    }
    // Each flag names the variable it may come from, as `--help` does.
    let agent_page = std::fs::read_to_string(pages.join("berth-agent.1")).expect("agent page");
    assert!(
        agent_page.contains("BERTH_WORK_DIR") && agent_page.contains("BERTH_DOCKER_SOCKET"),
        "{agent_page}"
    );
    // Rendered as a reader would, where man is installed.
    let rendered = Command::new("man")
        .arg("-l")
        .arg(pages.join("berth-logs.1"))
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C")
        .env("MANWIDTH", "100")
        .output();
    if let Ok(rendered) = rendered {
        let shown = stdout(&rendered);
        assert!(
            shown.contains("--tail") && shown.contains("--since"),
            "{shown}"
        );
    }
}

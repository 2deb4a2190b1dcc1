//! The sandbox's `stdout` and `stderr` rotated by size (`--logrotate_*`), as an operator
//! reads them: `stdout.3`, `stdout.2`, `stdout.1`, then `stdout`, hold the task's last
//! lines, each once, none missing, whole, in at most four files; across an agent SIGKILL,
//! and across the SIGKILL of the process carrying an executor-mode container's output
//! (the next carrier goes on from the positions saved beside the files).

use std::path::Path;
use std::time::Duration;

use crate::recovery::{executor_pid, state_of, text};
use crate::serving::executor_mode;
use crate::support::{docker_cli, docker_ok, eventually, TestAgent, SHELL_IMAGE};

/// A kilobyte a file and three rotated files kept; Docker's own copy bounded by flags too.
const FLAGS: &[&str] = &[
    crate::support::PLAIN_PROCESSES,
    "--logrotate_max_stdout_size",
    "1KB",
    "--logrotate_stdout_files",
    "3",
    "--logrotate_max_stderr_size",
    "1KB",
    "--logrotate_stderr_files",
    "3",
    "--docker_log_max_size",
    "1MB",
    "--docker_log_max_files",
    "3",
];

/// How much a task writes: `line N` and `err N` from 0 up to `pause` at once, then, once
/// `go` is in the sandbox, up to `last`; it exits once `end` is there. The fault comes at
/// the pause, and the task still runs when the agent comes back.
#[derive(Clone, Copy)]
struct Output {
    pause: u64,
    last: u64,
}

/// Several files' worth before the fault: the oldest are removed before and after it.
const LONG: Output = Output {
    pause: 599,
    last: 699,
};

/// Two rotations before the fault and one after it, with nothing removed (about 3.9 KB
/// of stdout, 3.5 KB of stderr): every line is kept, so a line written twice after the
/// fault could not hide among removed files.
const SHORT: Output = Output {
    pause: 249,
    last: 449,
};

impl Output {
    fn script(self) -> String {
        let Output { pause, last } = self;
        let print = "echo \"line $i\"; echo \"err $i\" >&2; i=$((i+1))";
        let wait =
            |file: &str| format!("while [ ! -e \"$MESOS_SANDBOX/{file}\" ]; do sleep 0.05; done");
        format!(
            "i=0; while [ $i -le {pause} ]; do {print}; done; {}; \
             while [ $i -le {last} ]; do {print}; done; {}",
            wait("go"),
            wait("end")
        )
    }
}

/// The numbers of a stream's lines, from `stdout.3` to `stdout`, checked as a user would:
/// at most four files, none past its limit, each ending a line, every line the task's.
fn kept(sandbox: &Path, stream: &str, prefix: &str) -> Vec<u64> {
    assert!(
        !sandbox.join(format!("{stream}.4")).exists(),
        "more than three rotated {stream} files"
    );
    let mut numbers = Vec::new();
    for name in ["3", "2", "1", ""].map(|n| match n {
        "" => stream.to_owned(),
        n => format!("{stream}.{n}"),
    }) {
        let Ok(text) = std::fs::read_to_string(sandbox.join(&name)) else {
            continue;
        };
        assert!(text.len() <= 1024, "{name} holds {} bytes", text.len());
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{name} ends inside a line"
        );
        for line in text.lines() {
            let n = line
                .strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name} holds a line the task did not write: {line:?}"));
            numbers.push(n);
        }
    }
    numbers
}

/// Checks both streams hold the task's last lines, each once, none missing, up to its
/// last; returns the first line each kept.
fn whole(sandbox: &Path, output: Output) -> [u64; 2] {
    [("stdout", "line "), ("stderr", "err ")].map(|(stream, prefix)| {
        assert!(
            sandbox.join(format!("{stream}.3")).exists(),
            "{stream} was not rotated three times"
        );
        let numbers = kept(sandbox, stream, prefix);
        let first = numbers.first().copied().unwrap_or_default();
        let expected: Vec<u64> = (first..=output.last).collect();
        assert_eq!(numbers, expected, "a line lost or repeated in {stream}");
        first
    })
}

/// Whether both streams end with line `n`.
fn ends_with(sandbox: &Path, n: u64) -> bool {
    let last = |file: &str| {
        std::fs::read_to_string(sandbox.join(file))
            .ok()
            .and_then(|t| t.lines().last().map(str::to_owned))
    };
    last("stdout") == Some(format!("line {n}")) && last("stderr") == Some(format!("err {n}"))
}

/// Waits for the output up to the pause, makes the fault, lets the task go on, and checks
/// the files once it has ended; the first line each stream kept.
async fn across(
    agent: &mut TestAgent,
    id: &str,
    output: Output,
    fault: impl AsyncFnOnce(&mut TestAgent),
) -> [u64; 2] {
    let sandbox = agent.sandbox(id);
    eventually(
        Duration::from_secs(60),
        "the output up to the pause",
        async || ends_with(&sandbox, output.pause).then_some(()),
    )
    .await;
    fault(agent).await;
    for file in ["go", "end"] {
        std::fs::write(sandbox.join(file), "").expect("write go");
    }
    let done = agent.wait(id);
    assert_eq!(done["state"], "TASK_FINISHED", "{done}");
    eventually(Duration::from_secs(30), "the last lines", async || {
        ends_with(&sandbox, output.last).then_some(())
    })
    .await;
    whole(&sandbox, output)
}

/// Checks the oldest lines were removed, and that the kept ones reach back past the
/// fault.
fn rotated_away(first: [u64; 2]) {
    for first in first {
        assert!(
            first > 0 && first <= LONG.pause,
            "kept from line {first}: nothing removed, or nothing from before the fault"
        );
    }
}

/// SIGKILLs the agent and starts it again with the same flags.
async fn restart(agent: &mut TestAgent) {
    agent.crash();
    agent.restart(FLAGS).await;
}

#[tokio::test]
async fn a_containers_output_rotates_whole_across_an_agent_sigkill() {
    let mut agent = TestAgent::start(FLAGS).await;
    let id = agent.launch(&["--image", SHELL_IMAGE, "--command", &LONG.script()]);
    let name = format!("mesos-{}.{id}", agent.agent_id);
    rotated_away(across(&mut agent, &id, LONG, restart).await);
    // Docker's own copy is bounded too.
    let config = docker_ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", &name]);
    let config: serde_json::Value = serde_json::from_str(&config).expect("LogConfig");
    assert_eq!(config["Type"], "json-file", "{config}");
    assert_eq!(config["Config"]["max-size"], "1048576", "{config}");
    assert_eq!(config["Config"]["max-file"], "3", "{config}");
}

#[tokio::test]
async fn a_plain_processs_output_rotates_whole_across_an_agent_sigkill() {
    let mut agent = TestAgent::start(FLAGS).await;
    let task = serde_json::json!({
        "task_id": {"value": format!("plain-{}", uuid::Uuid::new_v4())},
        "command": {"value": LONG.script(), "shell": true},
    });
    let out = agent.launch_json(&task.to_string());
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    rotated_away(across(&mut agent, &id, LONG, restart).await);
}

#[tokio::test]
async fn a_carrier_killed_with_the_agent_goes_on_whole_across_rotations() {
    let mut agent = TestAgent::start(FLAGS).await;
    let id = executor_mode(&agent, &SHORT.script());
    let name = format!("mesos-{}.{id}", agent.agent_id);
    let first = across(&mut agent, &id, SHORT, async |agent: &mut TestAgent| {
        let carrier = executor_pid(agent, &id);
        agent.crash();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(carrier),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL the carrier");
        // The rest is written while nobody carries it; the next start carries it on from
        // the positions the dead carrier saved, counted across the files it rotated.
        let sandbox = agent.sandbox(&id);
        std::fs::write(sandbox.join("go"), "").expect("write go");
        eventually(
            Duration::from_secs(30),
            "the rest in Docker's log",
            async || {
                // Docker copies each stream apart: either may be logged last.
                let out = docker_cli(&["logs", &name]);
                let has =
                    |bytes: &[u8], line: String| String::from_utf8_lossy(bytes).contains(&line);
                (has(&out.stdout, format!("line {}\n", SHORT.last))
                    && has(&out.stderr, format!("err {}\n", SHORT.last)))
                .then_some(())
            },
        )
        .await;
        agent.restart(FLAGS).await;
    })
    .await;
    assert_eq!(first, [0, 0], "the first lines were removed");
    let view = state_of(&agent, &id);
    assert_eq!(view["state"], "TASK_FINISHED", "{view}");
}

//! A call abandoned while its output is drained: the CLI has exited, a child it left
//! behind holds its stdout. What is under test is that berth signals the CLI's process
//! group only while that group id is provably the call's, i.e. while the CLI is unreaped.
//! The fault that would make the old way visible, another process group taking over the
//! id, cannot be made on demand without writing the machine-wide `ns_last_pid`; so the
//! test checks the condition that rules it out instead.

use std::time::Duration;

use berth::docker::{Docker, DockerConfig};

use crate::support::{eventually, process_alive, script};

/// The state letter of `/proc/<pid>/stat`, `None` once the pid is gone (reaped).
fn state(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next().map(str::to_owned)
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test]
async fn an_abandoned_call_kills_its_cli_group_only_while_the_cli_is_unreaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cli_file, child_file) = (dir.path().join("cli"), dir.path().join("child"));
    // Writes its pids, leaves a child holding stdout open, and exits at once.
    let cli = script(
        dir.path(),
        "leaky-docker",
        &format!(
            "sleep 1000 & echo $! > {child}.tmp; mv {child}.tmp {child}; \
             echo $$ > {cli}.tmp; mv {cli}.tmp {cli}; echo '[]'",
            child = child_file.display(),
            cli = cli_file.display()
        ),
    );
    let docker = Docker::new(DockerConfig {
        program: cli,
        call_timeout: Duration::from_secs(600),
        ..DockerConfig::default()
    });
    // Boxed, so that dropping it drops the call itself.
    let mut call = Box::pin(docker.inspect("mesos-abandoned"));
    let (cli_pid, child_pid) = tokio::select! {
        returned = &mut call => panic!("returned while a child held its stdout: {returned:?}"),
        pids = async {
            let pids = eventually(Duration::from_secs(30), "the stand-in to exit", async || {
                let (cli, child) = (read_pid(&cli_file)?, read_pid(&child_file)?);
                (!process_alive(cli)).then_some((cli, child))
            })
            .await;
            // Another child's exit, awaited: the runtime has handled SIGCHLD since the
            // stand-in's exit, so the call has been woken and could have reaped it.
            tokio::process::Command::new("true")
                .status()
                .await
                .expect("run true");
            pids
        } => pids,
    };
    assert_eq!(
        state(cli_pid).as_deref(),
        Some("Z"),
        "while its pipes are drained the CLI must stay unreaped, or its group id is free for reuse"
    );
    assert!(process_alive(child_pid), "the leftover child holds stdout");

    drop(call);

    // The group was still the call's: its leftover child is killed and the CLI reaped.
    eventually(
        Duration::from_secs(10),
        "the leftover child to die and the CLI to be reaped",
        async || (!process_alive(child_pid) && state(cli_pid).is_none()).then_some(()),
    )
    .await;
}

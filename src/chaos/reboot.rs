//! What a reboot of the host takes from a run: every process of the run but the
//! harness's own helpers (its `docker events` watcher and the watchdogs that resume a
//! paused agent, which stand for the world outside the host), and the run's containers,
//! killed as at power loss. The new boot id the agent sees is [`super::boot_id`]'s.

use std::path::Path;

use berth_chaos::sweep::Marked;

use super::decoys::docker_out;

/// Whether a process of the run dies at a reboot: all but the harness's events watcher,
/// known by its pid (`watcher`: an executor's `docker events` looks the same), and the
/// watchdogs, known by their arguments. Pure.
pub fn dies(process: &Marked, watcher: Option<i32>) -> bool {
    let argv = &process.argv;
    let watchdog =
        argv.get(1).is_some_and(|a| a == "chaos") && argv.get(2).is_some_and(|a| a == "resume");
    Some(process.pid) != watcher && !watchdog
}

/// `docker kill`s the running containers labelled with `agent_id` (an agent of the run);
/// returns those killed.
pub fn kill_containers(docker: &Path, socket: &Path, agent_id: &str) -> Vec<String> {
    let running = docker_out(
        docker,
        socket,
        &[
            "ps".into(),
            "-q".into(),
            "--filter".into(),
            format!("label=berth.agent_id={agent_id}"),
        ],
    )
    .unwrap_or_default();
    running
        .split_whitespace()
        .filter(|id| docker_out(docker, socket, &["kill".into(), (*id).to_owned()]).is_ok())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_harnesss_helpers_outlive_a_reboot() {
        let marked = |pid: i32, s: &str| Marked {
            pid,
            argv: s.split(' ').map(str::to_owned).collect(),
        };
        let watcher = Some(40);
        let cases = [
            (1, "/usr/bin/berth agent --work_dir /r/work", true),
            (2, "/usr/bin/berth executor", true),
            (3, "/r/cli/docker -H unix:///s run -d img", true),
            (4, "/usr/bin/docker -H unix:///s run --rm img", true),
            (5, "sh /r/cli/docker -H unix:///s stop x", true),
            // The watcher, whatever the CLI is called.
            (
                40,
                "/usr/bin/docker.io -H unix:///s events --format x",
                false,
            ),
            // Any other `docker events` is not the harness's.
            (41, "/usr/bin/docker -H unix:///s events --format x", true),
            (
                6,
                "/usr/bin/berth chaos resume --pid 4 --after 300ms",
                false,
            ),
        ];
        for (pid, line, want) in cases {
            assert_eq!(dies(&marked(pid, line), watcher), want, "{line}");
        }
        assert!(dies(&marked(40, "/usr/bin/docker.io events"), None));
        assert!(dies(&marked(7, ""), watcher));
    }
}

//! What a reboot of the host takes from a run: every process of the run but the
//! harness's own helpers (its `docker events` watcher and the watchdogs that resume a
//! paused agent, which stand for the world outside the host), and the run's containers,
//! killed as at power loss. The new boot id the agent sees is [`super::boot_id`]'s.

use std::path::Path;

use super::decoys::docker_out;

/// Whether a process of the run, by its arguments, dies at a reboot. Pure.
pub fn dies(argv: &[String]) -> bool {
    let docker_events =
        argv.first().is_some_and(|a| a.ends_with("docker")) && argv.iter().any(|a| a == "events");
    let watchdog =
        argv.get(1).is_some_and(|a| a == "chaos") && argv.get(2).is_some_and(|a| a == "resume");
    !(docker_events || watchdog)
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
        let argv = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let cases = [
            ("/usr/bin/berth agent --work_dir /r/work", true),
            ("/usr/bin/berth executor", true),
            ("/r/cli/docker -H unix:///s run -d img", true),
            ("/usr/bin/docker -H unix:///s run --rm img", true),
            ("sh /r/cli/docker -H unix:///s stop x", true),
            (
                "/usr/bin/docker -H unix:///s events --format {{json .}}",
                false,
            ),
            ("/usr/bin/berth chaos resume --pid 4 --after 300ms", false),
        ];
        for (line, want) in cases {
            assert_eq!(dies(&argv(line)), want, "{line}");
        }
        assert!(dies(&[]));
    }
}

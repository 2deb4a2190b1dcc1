//! Whether a run is still enough to gather its evidence: no Docker CLI call of the run
//! under way (one that may yet create, start or remove something) and start lines no
//! longer being written. Calls that follow a container for as long as it runs (an
//! executor's `docker logs -f`, the harness's `docker events`) never end on their own, so
//! they do not count. Pure.

use serde::{Deserialize, Serialize};

use crate::sweep::Marked;

/// Verbs whose call lasts as long as what it follows.
const FOLLOWING: [&str; 5] = ["logs", "events", "wait", "attach", "stats"];

/// How the harness waited for the run to be still before gathering the evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiet {
    /// How long it waited.
    pub waited_ms: u64,
    /// Whether it gave up waiting: the evidence may miss what was still under way.
    pub timed_out: bool,
    /// What was still under way when it stopped waiting.
    pub under_way: Vec<String>,
    /// Whether the events of the run's last container (the liveness probe's) had been
    /// read by then, so that every earlier event had been too.
    pub events_caught_up: bool,
}

/// The Docker CLI calls among `processes` (the run's) that may still change something:
/// `docker -H SOCKET VERB ...` (through the stand-in or not) with a verb that does not
/// follow a container. Each as "pid VERB".
pub fn calls_under_way(processes: &[Marked]) -> Vec<String> {
    processes
        .iter()
        .filter_map(|p| {
            let verb = docker_verb(&p.argv)?;
            (!FOLLOWING.contains(&verb)).then(|| format!("{} docker {verb}", p.pid))
        })
        .collect()
}

/// The verb of a Docker CLI call: the argument after `-H SOCKET`, where `-H` follows the
/// program (the real CLI, or the stand-in script run by a shell).
fn docker_verb(argv: &[String]) -> Option<&str> {
    let h = argv.iter().position(|a| a == "-H")?;
    let program = argv.get(h.checked_sub(1)?)?;
    if !program.ends_with("docker") {
        return None;
    }
    argv.get(h + 2).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(pid: i32, argv: &str) -> Marked {
        Marked {
            pid,
            argv: argv.split(' ').map(str::to_owned).collect(),
        }
    }

    #[test]
    fn only_calls_that_may_still_change_something_are_under_way() {
        let processes = [
            marked(1, "/usr/bin/docker -H unix:///s run -d img"),
            marked(2, "/bin/sh /run/cli/docker -H unix:///s rm -f c"),
            marked(3, "/usr/bin/docker -H unix:///s logs -f c"),
            marked(4, "/usr/bin/docker -H unix:///s events --format x"),
            marked(5, "/berth executor --docker /run/cli/docker"),
            marked(6, "/berth agent --work_dir /w"),
            marked(7, "/usr/bin/docker -H"),
            marked(8, "-H unix:///s stop c"),
            marked(9, "sleep 100000"),
        ];
        assert_eq!(calls_under_way(&processes), ["1 docker run", "2 docker rm"]);
        assert!(calls_under_way(&[]).is_empty());
    }
}

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
/// `PROGRAM -H SOCKET VERB ...`, where PROGRAM is one of `programs` (the real CLI's path
/// and the stand-in's, as the run starts them), with a verb that does not follow a
/// container. Each as "pid VERB".
pub fn calls_under_way(processes: &[Marked], programs: &[String]) -> Vec<String> {
    processes
        .iter()
        .filter_map(|p| {
            let verb = docker_verb(&p.argv, programs)?;
            (!FOLLOWING.contains(&verb)).then(|| format!("{} docker {verb}", p.pid))
        })
        .collect()
}

/// The verb of a Docker CLI call: the argument after `-H SOCKET`, where `-H` follows one
/// of `programs` (the real CLI, or the stand-in script run by a shell). A program is known
/// by its path, not its name: the CLI may be `docker.io`, and a name ending in `docker`
/// may be anything.
pub fn docker_verb<'a>(argv: &'a [String], programs: &[String]) -> Option<&'a str> {
    let h = argv.iter().position(|a| a == "-H")?;
    let program = argv.get(h.checked_sub(1)?)?;
    if !programs.contains(program) {
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
            marked(10, "/usr/bin/docker.io -H unix:///s stop c"),
            marked(11, "/opt/notdocker -H unix:///s kill c"),
            marked(12, "/usr/local/bin/docker -H unix:///s rm c"),
        ];
        let programs = ["/usr/bin/docker", "/run/cli/docker"].map(str::to_owned);
        assert_eq!(
            calls_under_way(&processes, &programs),
            ["1 docker run", "2 docker rm"]
        );
        let programs = ["/usr/bin/docker.io", "/run/cli/docker"].map(str::to_owned);
        assert_eq!(
            calls_under_way(&processes, &programs),
            ["2 docker rm", "10 docker stop"]
        );
        assert!(calls_under_way(&[], &programs).is_empty());
    }
}

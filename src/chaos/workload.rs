//! The tasks a campaign launches, and the start lines they leave as evidence. Pure.
//!
//! Every task's first act is to append one line to a file the harness owns (mounted into
//! its container): the task id, the container it runs in (read from the container's own
//! mounts: with host networking its hostname is the host's), and the time since boot,
//! which the host and every container share. A task that starts twice leaves two lines,
//! whatever the agent recorded.

use std::path::Path;
use std::time::Duration;

use berth_chaos::check::Start;
use berth_chaos::schedule::Shape;
use serde_json::{json, Value};

use crate::cli::{task_from_flags, LaunchFlags};

/// Where the evidence directory appears inside a task's container.
pub const EVIDENCE_MOUNT: &str = "/berth-chaos";
/// The start lines' file in the evidence directory.
pub const STARTS: &str = "starts";
/// The file the loopback HTTP server serves to tasks with a URI.
pub const PAYLOAD: &str = "payload.txt";
/// The image pulled tasks pull by default: the unauthenticated registry on 127.0.0.1 that
/// `scripts/docker-engine registry` runs.
pub const PULL_IMAGE: &str = "127.0.0.1:5056/berth-test/public:latest";

/// The task id of the `n`-th task of run `run_id`.
pub fn task_id(run_id: &str, n: u32) -> String {
    format!("chaos-{run_id}-{n}")
}

/// The `n` of a task id [`task_id`] made for run `run_id`; `None` for any other id.
pub fn task_index(run_id: &str, task_id: &str) -> Option<u32> {
    task_id
        .strip_prefix(&format!("chaos-{run_id}-"))?
        .parse()
        .ok()
}

/// The TaskInfo of a task of `shape` that runs `image` (a [`Shape::Pulled`] task pulls it
/// first, even when present). `http` is the loopback server's address.
pub fn task_info(
    task_id: &str,
    shape: Shape,
    image: &str,
    evidence: &Path,
    http: std::net::SocketAddr,
) -> Value {
    let start = start_line(task_id);
    let (body, grace) = match shape {
        Shape::Short => ("sleep 1; exit 0".to_owned(), None),
        Shape::Long | Shape::ExecutorMode | Shape::Pulled => ("exec sleep 3600".to_owned(), None),
        // An odd-numbered one outlasts its grace, so that its kill ends in SIGKILL.
        Shape::TrapsTerm if task_id.ends_with(['1', '3', '5', '7', '9']) => (
            "trap 'sleep 30; exit 0' TERM; while true; do sleep 0.2; done".to_owned(),
            Some(Duration::from_secs(2)),
        ),
        Shape::TrapsTerm => (
            "trap 'sleep 1; exit 0' TERM; while true; do sleep 0.2; done".to_owned(),
            Some(Duration::from_secs(3)),
        ),
        Shape::WithUri => (
            format!("test -s \"$MESOS_SANDBOX/{PAYLOAD}\" || exit 2; exec sleep 3600"),
            None,
        ),
    };
    let flags = LaunchFlags {
        image: Some(image.to_owned()),
        command: Some(format!("{start}{body}")),
        uris: match shape {
            Shape::WithUri => vec![format!("http://{http}/{PAYLOAD}")],
            _ => vec![],
        },
        grace,
        executor: shape == Shape::ExecutorMode,
        force_pull: shape == Shape::Pulled,
        task_id: Some(task_id.to_owned()),
        ..LaunchFlags::default()
    };
    let mut task = task_from_flags(&flags, task_id).unwrap_or_else(|_| json!({}));
    let volume = json!([{
        "container_path": EVIDENCE_MOUNT,
        "host_path": evidence.display().to_string(),
        "mode": "RW",
    }]);
    let holder = if shape == Shape::ExecutorMode {
        &mut task["executor"]["container"]
    } else {
        &mut task["container"]
    };
    holder["volumes"] = volume;
    task
}

/// The shell that appends task `task_id`'s start line: its container's id is read from
/// the bind mounts of Docker's own per-container files (`.../containers/ID/hostname`),
/// whose id is 64 hex digits, so that no other mount (an evidence directory under a path
/// with `containers/` in it) is taken for it.
pub fn start_line(task_id: &str) -> String {
    format!(
        "c=$(grep -oE '/containers/[0-9a-f]{{64}}/(hostname|hosts|resolv\\.conf)' /proc/self/mountinfo | head -n 1); \
         c=${{c#/containers/}}; \
         read up rest < /proc/uptime; \
         echo \"{task_id} ${{c%%/*}} $up\" >> {EVIDENCE_MOUNT}/{STARTS}; "
    )
}

/// Reads the start lines; `boot_ms_at_start` is the time since boot when the run began,
/// so that each start is placed on the run's clock. Lines that do not read (a task cut
/// off while writing) are skipped. Pure.
pub fn starts(text: &str, boot_ms_at_start: u64) -> Vec<Start> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let task = words.next()?.to_owned();
            let container = words.next()?.to_owned();
            let up: f64 = words.next()?.parse().ok()?;
            let at = (up * 1000.0) as u64;
            Some(Start {
                task,
                container,
                at_ms: at.saturating_sub(boot_ms_at_start),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_id_gives_back_its_number_for_its_own_run_only() {
        assert_eq!(task_index("ab12", &task_id("ab12", 7)), Some(7));
        for other in [
            "chaos-cd34-7",
            "chaos-ab12-",
            "chaos-ab12-x",
            "mesos-ab12-7",
            "",
        ] {
            assert_eq!(task_index("ab12", other), None, "{other}");
        }
    }

    #[test]
    fn every_shape_mounts_the_evidence_and_writes_its_start_first() {
        let http = "127.0.0.1:8080".parse().expect("addr");
        let shapes = [
            Shape::Short,
            Shape::Long,
            Shape::TrapsTerm,
            Shape::ExecutorMode,
            Shape::WithUri,
            Shape::Pulled,
        ];
        for shape in shapes {
            let task = task_info("chaos-r-1", shape, "img", Path::new("/run/ev"), http);
            let (command, container) = if shape == Shape::ExecutorMode {
                (&task["executor"]["command"], &task["executor"]["container"])
            } else {
                (&task["command"], &task["container"])
            };
            let value = command["value"].as_str().expect("command");
            assert!(value.starts_with("c=$(grep"), "{shape:?}: {value}");
            assert!(value.contains(">> /berth-chaos/starts"), "{shape:?}");
            assert_eq!(container["volumes"][0]["host_path"], "/run/ev", "{shape:?}");
            assert_eq!(task["task_id"]["value"], "chaos-r-1");
        }
        let with_uri = task_info("t", Shape::WithUri, "img", Path::new("/e"), http);
        assert_eq!(
            with_uri["command"]["uris"][0]["value"],
            "http://127.0.0.1:8080/payload.txt"
        );
        let pulled = task_info("t", Shape::Pulled, "img", Path::new("/e"), http);
        assert_eq!(pulled["container"]["docker"]["force_pull_image"], true);
        assert_eq!(
            with_uri["container"]["docker"]["force_pull_image"], false,
            "only a pulled task forces a pull"
        );
        let traps = task_info("t-2", Shape::TrapsTerm, "img", Path::new("/e"), http);
        assert_eq!(
            traps["kill_policy"]["grace_period"]["nanoseconds"],
            3_000_000_000i64
        );
        // An odd one's trap outlasts its grace: its kill escalates to SIGKILL.
        let outlasts = task_info("t-7", Shape::TrapsTerm, "img", Path::new("/e"), http);
        assert_eq!(
            outlasts["kill_policy"]["grace_period"]["nanoseconds"],
            2_000_000_000i64
        );
        assert!(outlasts["command"]["value"]
            .as_str()
            .is_some_and(|c| c.contains("trap 'sleep 30")));
    }

    #[test]
    fn start_lines_are_placed_on_the_runs_clock() {
        let text = "chaos-r-1 abc123 100.25 0.5\nchaos-r-2 def 101.00\ncut off\n\nchaos-r-3 x notanumber\n";
        let got = starts(text, 100_000);
        assert_eq!(
            got,
            vec![
                Start {
                    task: "chaos-r-1".into(),
                    container: "abc123".into(),
                    at_ms: 250,
                },
                Start {
                    task: "chaos-r-2".into(),
                    container: "def".into(),
                    at_ms: 1000,
                },
            ]
        );
    }
}

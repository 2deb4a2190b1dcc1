//! What one seed makes a campaign do: the workload's requests and the faults, each at a
//! time from the run's start. Pure: the same seed and options give the same schedule, so
//! a report can print the command that replays it and `--dry-run` can show it without
//! touching anything. Timing is not replayed (the machine's own scheduling is not
//! seeded); the order and the choices are.

use serde::{Deserialize, Serialize};

use crate::jitter::Jitter;

/// What shapes a schedule besides the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// How long the workload and the faults go on, in milliseconds; settling comes after.
    pub duration_ms: u64,
    /// At most this many faults.
    pub max_faults: u32,
    /// At most this many launches per second (a few, on two cores).
    pub launches_per_s: u32,
    /// Whether the Docker daemon may be restarted: it hits every container on the
    /// engine, not only the run's.
    pub allow_daemon_faults: bool,
    /// The crash points the agent under test has, by name.
    pub crash_points: Vec<String>,
    /// The kinds of fault the harness injects (`kill_agent`, `pause_agent`, ...).
    pub kinds: Vec<String>,
    /// How long past its time the next fault may wait for the crash point armed before it
    /// to be reached, the rest of the timeline waiting with it: the sweep's, whose visits a
    /// slow restart would otherwise eat. 0 (a seeded run's): it does not wait.
    #[serde(default)]
    pub crash_point_hold_ms: u64,
}

/// Every kind of fault, by the name the JSON gives it.
pub const KINDS: [&str; 11] = [
    "kill_agent",
    "crash_point",
    "pause_agent",
    "kill_executor",
    "kill_docker_client",
    "cli_fails",
    "cli_hangs",
    "disk_full",
    "flip_store_byte",
    "reboot",
    "restart_daemon",
];

/// A shape of task in the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Ends on its own within a second or two.
    Short,
    /// Runs until killed or past the run.
    Long,
    /// Traps SIGTERM and ends only when the grace is over.
    TrapsTerm,
    /// Its image is its executor.
    ExecutorMode,
    /// Fetches a URI from the harness's loopback HTTP server first.
    WithUri,
    /// Its image is pulled even when present (`force_pull`), so that a launch passes the
    /// agent's `docker pull`. Only the crash-point sweep launches it: it needs a registry
    /// (`--pull-image`), which a seeded run does not ask for.
    Pulled,
}

const SHAPES: [Shape; 5] = [
    Shape::Short,
    Shape::Long,
    Shape::TrapsTerm,
    Shape::ExecutorMode,
    Shape::WithUri,
];

/// A request of the workload, about the `task`-th task launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "request")]
pub enum Request {
    /// Launch it.
    Launch {
        /// Which task.
        task: u32,
        /// Its shape.
        shape: Shape,
    },
    /// Kill it.
    Kill {
        /// Which task.
        task: u32,
    },
    /// Wait for its end (`GET .../wait`, a long poll), without holding up the rest of the
    /// workload: the end it answers with is what the task must stay.
    Wait {
        /// Which task.
        task: u32,
    },
}

impl Request {
    /// The task it is about.
    pub fn task(&self) -> u32 {
        match self {
            Request::Launch { task, .. } | Request::Kill { task } | Request::Wait { task } => *task,
        }
    }
}

/// A fault the harness injects, then heals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum Fault {
    /// SIGKILL the agent; it is started again after `down_ms`.
    KillAgent {
        /// How long it stays down.
        down_ms: u64,
    },
    /// SIGKILL the agent when it reaches a named crash point (its `hit`-th time).
    CrashPoint {
        /// The point.
        point: String,
        /// Which hit: 1 is the first.
        hit: u32,
    },
    /// SIGSTOP the agent, SIGCONT after `for_ms` (a watchdog sees to it).
    PauseAgent {
        /// How long it is stopped.
        for_ms: u64,
    },
    /// SIGKILL the executor of the `nth` task running at that moment (modulo how many).
    KillExecutor {
        /// Which running task.
        nth: u32,
    },
    /// SIGKILL the `docker run` client of the `nth` running task.
    KillDockerClient {
        /// Which running task.
        nth: u32,
    },
    /// The Docker CLI fails `verb` for `for_ms`.
    CliFails {
        /// The verb.
        verb: String,
        /// How long.
        for_ms: u64,
    },
    /// The Docker CLI hangs on `verb` for `for_ms`.
    CliHangs {
        /// The verb.
        verb: String,
        /// How long.
        for_ms: u64,
    },
    /// The work dir's filesystem is full for `for_ms`.
    DiskFull {
        /// How long.
        for_ms: u64,
    },
    /// With the agent down, one byte of the store is flipped: the `at`-th byte modulo the
    /// store's length.
    FlipStoreByte {
        /// Where.
        at: u64,
    },
    /// The host "reboots": the run's containers are killed as at power loss, and the
    /// agent starts with a new boot id.
    Reboot,
    /// The Docker daemon is restarted (only with `allow_daemon_faults`).
    RestartDaemon,
}

/// How a report names a crash point armed for its `hit`-th time.
pub fn crash_label(point: &str, hit: u32) -> String {
    format!("{point} (hit {hit})")
}

/// The verbs the stand-in CLI can fail or hang.
const VERBS: [&str; 6] = ["run", "inspect", "stop", "rm", "ps", "pull"];

/// Something at a time from the run's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct At<T> {
    /// Milliseconds from the run's start.
    pub at_ms: u64,
    /// What.
    #[serde(flatten)]
    pub what: T,
}

/// A campaign's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was made from.
    pub seed: u64,
    /// What it was made with.
    pub options: Options,
    /// The workload, in time order.
    pub requests: Vec<At<Request>>,
    /// The faults, in time order; no two overlap.
    pub faults: Vec<At<Fault>>,
}

/// The schedule `seed` makes.
pub fn make(seed: u64, options: &Options) -> Schedule {
    let mut rng = Jitter::new(seed);
    Schedule {
        seed,
        options: options.clone(),
        requests: requests(&mut rng, options),
        faults: faults(&mut rng, options),
    }
}

fn requests(rng: &mut Jitter, options: &Options) -> Vec<At<Request>> {
    let gap_min = 1000 / u64::from(options.launches_per_s.max(1));
    let mut out = Vec::new();
    let mut at = 0;
    let mut launched = 0u32;
    loop {
        at += gap_min + rng.next_u64() % (gap_min * 3 + 1);
        if at >= options.duration_ms {
            return out;
        }
        // One in four requests kills a task launched before, once there is one. A kill,
        // and a short task's launch, are followed by a wait for the task's end (drawing
        // nothing from the seed, so that a seed's kills and launches stay as they were).
        if launched > 0 && rng.next_u64() % 4 == 0 {
            let task = (rng.next_u64() % u64::from(launched)) as u32;
            out.push(At {
                at_ms: at,
                what: Request::Kill { task },
            });
            out.push(At {
                at_ms: at,
                what: Request::Wait { task },
            });
        } else {
            let shape = SHAPES[(rng.next_u64() % SHAPES.len() as u64) as usize];
            out.push(At {
                at_ms: at,
                what: Request::Launch {
                    task: launched,
                    shape,
                },
            });
            if shape == Shape::Short {
                out.push(At {
                    at_ms: at,
                    what: Request::Wait { task: launched },
                });
            }
            launched += 1;
        }
    }
}

fn faults(rng: &mut Jitter, options: &Options) -> Vec<At<Fault>> {
    let mut out = Vec::new();
    if options.max_faults == 0 {
        return out;
    }
    // Faults are spread over the run with room between them for the agent to serve.
    let slot = options.duration_ms / u64::from(options.max_faults);
    let mut at = slot / 4;
    while out.len() < options.max_faults as usize && at < options.duration_ms {
        let Some(fault) = fault(rng, options, slot) else {
            break;
        };
        let lasts = lasts_ms(&fault);
        out.push(At {
            at_ms: at,
            what: fault,
        });
        at += lasts.max(slot / 2) + rng.next_u64() % (slot / 2 + 1);
    }
    out
}

fn fault(rng: &mut Jitter, options: &Options, slot: u64) -> Option<Fault> {
    let window = (slot / 2).clamp(200, 10_000);
    let kinds: Vec<&str> = KINDS
        .into_iter()
        .filter(|k| options.kinds.iter().any(|e| e == k))
        .filter(|k| *k != "crash_point" || !options.crash_points.is_empty())
        .filter(|k| *k != "restart_daemon" || options.allow_daemon_faults)
        .collect();
    let mut pick = |n: u64| rng.next_u64() % n.max(1);
    let kind = *kinds.get(pick(kinds.len() as u64) as usize)?;
    Some(match kind {
        "kill_agent" => Fault::KillAgent {
            down_ms: 100 + pick(window),
        },
        "crash_point" => Fault::CrashPoint {
            point: options.crash_points[pick(options.crash_points.len() as u64) as usize].clone(),
            hit: 1 + pick(3) as u32,
        },
        "pause_agent" => Fault::PauseAgent {
            for_ms: 100 + pick(window),
        },
        "kill_executor" => Fault::KillExecutor {
            nth: pick(16) as u32,
        },
        "kill_docker_client" => Fault::KillDockerClient {
            nth: pick(16) as u32,
        },
        "cli_fails" => Fault::CliFails {
            verb: VERBS[pick(VERBS.len() as u64) as usize].to_owned(),
            for_ms: 100 + pick(window),
        },
        "cli_hangs" => Fault::CliHangs {
            verb: VERBS[pick(VERBS.len() as u64) as usize].to_owned(),
            for_ms: 100 + pick(window),
        },
        "disk_full" => Fault::DiskFull {
            for_ms: 100 + pick(window),
        },
        "flip_store_byte" => Fault::FlipStoreByte { at: pick(u64::MAX) },
        "reboot" => Fault::Reboot,
        _ => Fault::RestartDaemon,
    })
}

/// How long a fault holds before it is healed.
pub fn lasts_ms(fault: &Fault) -> u64 {
    match fault {
        Fault::KillAgent { down_ms } => *down_ms,
        Fault::PauseAgent { for_ms }
        | Fault::CliFails { for_ms, .. }
        | Fault::CliHangs { for_ms, .. }
        | Fault::DiskFull { for_ms } => *for_ms,
        Fault::CrashPoint { .. }
        | Fault::KillExecutor { .. }
        | Fault::KillDockerClient { .. }
        | Fault::FlipStoreByte { .. }
        | Fault::Reboot
        | Fault::RestartDaemon => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(allow_daemon_faults: bool) -> Options {
        Options {
            duration_ms: 60_000,
            max_faults: 12,
            launches_per_s: 2,
            allow_daemon_faults,
            crash_points: vec!["record-Running-before".into(), "docker-stop-after".into()],
            kinds: KINDS.map(str::to_owned).to_vec(),
            crash_point_hold_ms: 0,
        }
    }

    #[test]
    fn a_seed_makes_one_schedule_and_another_seed_another() {
        let o = options(false);
        assert_eq!(make(1, &o), make(1, &o));
        assert_ne!(make(1, &o), make(2, &o));
    }

    #[test]
    fn schedules_keep_within_their_bounds() {
        for seed in 0..200 {
            for allow in [false, true] {
                let o = options(allow);
                let s = make(seed, &o);
                assert!(s.faults.len() <= o.max_faults as usize, "seed {seed}");
                assert!(!s.faults.is_empty(), "seed {seed}: no faults");
                let times: Vec<u64> = s.faults.iter().map(|f| f.at_ms).collect();
                assert!(
                    times.windows(2).all(|w| w[0] < w[1]),
                    "seed {seed}: {times:?}"
                );
                for pair in s.faults.windows(2) {
                    assert!(
                        pair[0].at_ms + lasts_ms(&pair[0].what) <= pair[1].at_ms,
                        "seed {seed}: faults overlap: {pair:?}"
                    );
                }
                assert!(s.faults.iter().all(|f| f.at_ms < o.duration_ms));
                if !allow {
                    assert!(!s.faults.iter().any(|f| f.what == Fault::RestartDaemon));
                }
                let launches = s
                    .requests
                    .iter()
                    .filter(|r| matches!(r.what, Request::Launch { .. }))
                    .count();
                let most = (o.duration_ms / 1000) as usize * o.launches_per_s as usize;
                assert!(launches > 0 && launches <= most, "seed {seed}: {launches}");
                let mut launched = 0;
                for r in &s.requests {
                    match r.what {
                        Request::Launch { task, .. } => {
                            assert_eq!(task, launched);
                            launched += 1;
                        }
                        Request::Kill { task } | Request::Wait { task } => {
                            assert!(task < launched, "seed {seed}")
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn each_kill_and_each_short_launch_is_followed_by_a_wait_for_its_task() {
        let o = options(false);
        for seed in 0..50 {
            let s = make(seed, &o);
            let waits = s
                .requests
                .iter()
                .filter(|r| matches!(r.what, Request::Wait { .. }))
                .count();
            let mut expected = 0;
            for (i, r) in s.requests.iter().enumerate() {
                let waited = match r.what {
                    Request::Kill { .. }
                    | Request::Launch {
                        shape: Shape::Short,
                        ..
                    } => true,
                    _ => continue,
                };
                expected += usize::from(waited);
                let next = s.requests.get(i + 1).expect("a wait follows");
                assert_eq!(
                    next.what,
                    Request::Wait {
                        task: r.what.task()
                    },
                    "seed {seed}"
                );
                assert_eq!(next.at_ms, r.at_ms, "seed {seed}");
            }
            assert_eq!(waits, expected, "seed {seed}: no other waits");
        }
    }

    #[test]
    fn over_many_seeds_every_kind_of_fault_and_shape_comes_up() {
        let o = options(true);
        let mut faults = std::collections::BTreeSet::new();
        let mut shapes = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let s = make(seed, &o);
            for f in &s.faults {
                let json = serde_json::to_value(&f.what).expect("json");
                faults.insert(json["fault"].as_str().unwrap_or_default().to_owned());
            }
            for r in &s.requests {
                if let Request::Launch { shape, .. } = r.what {
                    shapes.insert(format!("{shape:?}"));
                }
            }
        }
        assert_eq!(faults.len(), 11, "{faults:?}");
        assert_eq!(shapes.len(), SHAPES.len(), "{shapes:?}");
    }

    #[test]
    fn only_the_kinds_asked_for_come_up() {
        let mut o = options(true);
        o.kinds = vec!["pause_agent".into(), "restart_daemon".into()];
        let s = make(3, &o);
        assert!(s
            .faults
            .iter()
            .all(|f| matches!(f.what, Fault::PauseAgent { .. } | Fault::RestartDaemon)));
        o.allow_daemon_faults = false;
        assert!(make(3, &o)
            .faults
            .iter()
            .all(|f| matches!(f.what, Fault::PauseAgent { .. })));
        o.kinds.clear();
        assert!(make(3, &o).faults.is_empty());
    }

    #[test]
    fn a_schedule_reads_back_from_its_json() {
        let s = make(7, &options(true));
        let json = serde_json::to_string_pretty(&s).expect("json");
        let back: Schedule = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, s);
        assert!(json.contains("\"fault\""), "{json}");
    }
}

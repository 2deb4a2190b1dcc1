//! The crash-point sweep (`berth chaos run --sweep`): the agent is armed at every named
//! crash point in turn, for its first hit and a later one, while a workload that passes
//! every point runs; no other fault is injected. Pure: the schedule is made from the list
//! of points alone (no seed), so every sweep of one binary runs the same schedule.
//!
//! Each visit lasts [`VISIT_MS`]: the agent is SIGKILLed and started again armed (its
//! crash point fault), the tasks launched two visits before are killed, then the visit
//! launches its own. Kills come first so that the kill path's points (`Killing`, `docker
//! stop`, `Terminated`) are passed early in a visit, and they are of tasks two visits
//! old because a restart of the agent, with its recovery, takes up to a second of each
//! visit: a task of the visit before may not run yet, and a kill during its launch stops
//! no container. The removals those kills make come due in a later visit (the agent
//! removes an ended task's container after its `--docker_remove_delay`, 5 s under `berth
//! chaos`), which passes `docker rm` and `Removed`. A point the agent reaches aborts it;
//! the campaign starts it again, unarmed, for the rest of the visit. A visit whose point
//! is not reached when its time is up goes on, up to [`HOLD_MS`] more, and the rest of the
//! timeline waits for it.

use std::collections::BTreeMap;

use crate::check::Verdict;
use crate::schedule::{crash_label, At, Fault, Options, Request, Schedule, Shape};

/// The hits each point is armed for: the first, and a later one (the same point passed
/// again within one agent's life, by another task or another step).
pub const HITS: [u32; 2] = [1, 2];

/// How long one visit lasts: time for its launches to run (a pull, a create and start)
/// and for the visit after it to kill them while they run.
pub const VISIT_MS: u64 = 3_000;

/// How long a visit may go on past its time while its point is not reached yet (the
/// timeline waits with it): a restart of the agent takes seconds on a loaded machine.
pub const HOLD_MS: u64 = 15_000;

/// Time before the first visit, for the unarmed agent's first look at its tasks.
const LEAD_MS: u64 = 500;

/// Time between two requests of a visit.
const GAP_MS: u64 = 100;

/// Every visit launches two of each shape that passes a point the others do not (the
/// agent's `docker pull`; `docker create` and `docker start` of an executor-mode
/// container), so that a second hit comes within one visit.
const EVERY_VISIT: [Shape; 4] = [
    Shape::Pulled,
    Shape::ExecutorMode,
    Shape::Pulled,
    Shape::ExecutorMode,
];

/// And one of the other shapes, in turn, so that the sweep launches every shape.
const IN_TURN: [Shape; 4] = [Shape::Short, Shape::WithUri, Shape::TrapsTerm, Shape::Long];

/// The schedule that visits every point of `points` for each of [`HITS`].
pub fn make(points: &[String]) -> Schedule {
    let visits: Vec<(&String, u32)> = points
        .iter()
        .flat_map(|point| HITS.map(|hit| (point, hit)))
        .collect();
    let mut requests = Vec::new();
    let mut faults = Vec::new();
    let mut launched = 0u32;
    // The tasks of the visit before, and of the one before it, that run until killed.
    let mut running: [Vec<u32>; 2] = Default::default();
    let mut start = LEAD_MS;
    for (n, (point, hit)) in visits.iter().enumerate() {
        faults.push(At {
            at_ms: start,
            what: Fault::CrashPoint {
                point: (*point).clone(),
                hit: *hit,
            },
        });
        let mut at = start;
        let older = std::mem::take(&mut running[0]);
        running.swap(0, 1);
        for task in older {
            at += GAP_MS;
            requests.push(At {
                at_ms: at,
                what: Request::Kill { task },
            });
        }
        for shape in EVERY_VISIT.into_iter().chain([IN_TURN[n % IN_TURN.len()]]) {
            at += GAP_MS;
            requests.push(At {
                at_ms: at,
                what: Request::Launch {
                    task: launched,
                    shape,
                },
            });
            if shape != Shape::Short {
                running[1].push(launched);
            }
            launched += 1;
        }
        start += VISIT_MS;
    }
    Schedule {
        seed: 0,
        options: Options {
            duration_ms: start,
            max_faults: u32::try_from(visits.len()).unwrap_or(u32::MAX),
            launches_per_s: 2,
            allow_daemon_faults: false,
            crash_points: points.to_vec(),
            kinds: vec!["crash_point".to_owned()],
            crash_point_hold_ms: HOLD_MS,
        },
        requests,
        faults,
    }
}

/// The crash points `schedule` arms that were never reached, by their labels, in the
/// schedule's order; `reached` is what the campaign saw of each it armed.
pub fn unreached(schedule: &Schedule, reached: &BTreeMap<String, bool>) -> Vec<String> {
    schedule
        .faults
        .iter()
        .filter_map(|f| match &f.what {
            Fault::CrashPoint { point, hit } => Some(crash_label(point, *hit)),
            _ => None,
        })
        .filter(|label| !reached.get(label).copied().unwrap_or(false))
        .collect()
}

/// The sweep's verdict: the checker's, except that a run that held while a point was
/// never reached is inconclusive, naming the points: the sweep did not test them. A
/// violation stands whatever was reached.
pub fn judge(checked: Verdict, unreached: &[String]) -> Verdict {
    if unreached.is_empty() || matches!(checked, Verdict::Violated { .. }) {
        return checked;
    }
    let never = format!(
        "{} crash point(s) never reached: {}",
        unreached.len(),
        unreached.join(", ")
    );
    Verdict::Inconclusive {
        why: match checked {
            Verdict::Inconclusive { why } => format!("{why}; {never}"),
            _ => never,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Violation;

    fn points() -> Vec<String> {
        [
            "record-Accepted-before",
            "docker-pull-after",
            "docker-rm-after",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn visits(s: &Schedule) -> Vec<(u64, String, u32)> {
        s.faults
            .iter()
            .map(|f| match &f.what {
                Fault::CrashPoint { point, hit } => (f.at_ms, point.clone(), *hit),
                other => panic!("a sweep injects only crash points: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_point_is_visited_for_each_hit_in_turn() {
        let s = make(&points());
        let got: Vec<(String, u32)> = visits(&s).into_iter().map(|(_, p, h)| (p, h)).collect();
        let want: Vec<(String, u32)> = points()
            .into_iter()
            .flat_map(|p| HITS.map(|h| (p.clone(), h)))
            .collect();
        assert_eq!(got, want);
        let times: Vec<u64> = visits(&s).iter().map(|v| v.0).collect();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] == VISIT_MS),
            "{times:?}"
        );
        assert_eq!(s.options.max_faults as usize, got.len());
        assert_eq!(s.options.kinds, ["crash_point"]);
        assert!(s.faults.iter().all(|f| f.at_ms < s.options.duration_ms));
        assert!(s.requests.iter().all(|r| r.at_ms < s.options.duration_ms));
        assert_eq!(
            make(&points()),
            s,
            "no seed: the same points, the same sweep"
        );
    }

    #[test]
    fn each_visit_passes_every_point_twice_with_its_own_requests() {
        let s = make(&points());
        let visits = visits(&s);
        let mut shapes = std::collections::BTreeSet::new();
        // Each task, by the visit that launched it.
        let mut launched = BTreeMap::new();
        for (n, (start, _, _)) in visits.iter().enumerate() {
            let within: Vec<&Request> = s
                .requests
                .iter()
                .filter(|r| r.at_ms > *start && r.at_ms < start + VISIT_MS)
                .map(|r| &r.what)
                .collect();
            let count = |shape| {
                within
                    .iter()
                    .filter(|r| matches!(r, Request::Launch { shape: s, .. } if *s == shape))
                    .count()
            };
            assert!(count(Shape::Pulled) >= 2, "visit {n}: {within:?}");
            assert!(count(Shape::ExecutorMode) >= 2, "visit {n}: {within:?}");
            let kills: Vec<u32> = within
                .iter()
                .filter_map(|r| match r {
                    Request::Kill { task } => Some(*task),
                    _ => None,
                })
                .collect();
            // From the third visit on, the tasks launched two visits before are killed:
            // each had a whole visit to start running.
            assert!(n < 2 || kills.len() >= 4, "visit {n}: {within:?}");
            for task in kills {
                let by = launched.get(&task).copied();
                assert!(
                    by.is_some_and(|(v, s)| v + 2 == n && s != Shape::Short),
                    "visit {n} kills task {task}, launched (by visit, as) {by:?}"
                );
            }
            for r in within {
                if let Request::Launch { task, shape } = r {
                    launched.insert(*task, (n, *shape));
                    shapes.insert(format!("{shape:?}"));
                }
            }
        }
        assert_eq!(shapes.len(), 6, "every shape comes up: {shapes:?}");
        let tasks: Vec<u32> = launched.keys().copied().collect();
        assert_eq!(tasks, (0..tasks.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn all_the_agents_points_are_swept_within_three_minutes() {
        // berth's 26 points, each for two hits: the time CI spends, settling aside.
        let points: Vec<String> = (0..26).map(|n| format!("p{n}")).collect();
        let s = make(&points);
        assert_eq!(s.faults.len(), 52);
        assert!(
            s.options.duration_ms <= 180_000,
            "{}",
            s.options.duration_ms
        );
        let launches = s
            .requests
            .iter()
            .filter(|r| matches!(r.what, Request::Launch { .. }))
            .count() as u64;
        assert!(launches * 1000 / s.options.duration_ms <= u64::from(s.options.launches_per_s));
    }

    #[test]
    fn no_points_no_visits() {
        let s = make(&[]);
        assert!(s.faults.is_empty() && s.requests.is_empty());
    }

    #[test]
    fn a_sweep_reads_back_from_its_json() {
        let s = make(&points());
        let json = serde_json::to_string(&s).expect("json");
        assert!(json.contains("\"shape\":\"pulled\""), "{json}");
        assert_eq!(serde_json::from_str::<Schedule>(&json).expect("parse"), s);
        assert_eq!(s.options.crash_point_hold_ms, HOLD_MS);
        // A schedule written before the hold existed does not hold.
        let mut old: serde_json::Value = serde_json::from_str(&json).expect("parse");
        old["options"]
            .as_object_mut()
            .expect("options")
            .remove("crash_point_hold_ms");
        let old: Schedule = serde_json::from_value(old).expect("parse");
        assert_eq!(old.options.crash_point_hold_ms, 0);
    }

    #[test]
    fn a_point_armed_and_not_reached_or_never_armed_is_unreached() {
        let s = make(&points()[..1]);
        let reached = |pairs: &[(&str, bool)]| -> BTreeMap<String, bool> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        // What the campaign saw of each point it armed, and what is unreached.
        type Case<'a> = (&'a [(&'a str, bool)], &'a [&'a str]);
        let cases: [Case; 4] = [
            (
                &[
                    ("record-Accepted-before (hit 1)", true),
                    ("record-Accepted-before (hit 2)", true),
                ],
                &[],
            ),
            (
                &[
                    ("record-Accepted-before (hit 1)", true),
                    ("record-Accepted-before (hit 2)", false),
                ],
                &["record-Accepted-before (hit 2)"],
            ),
            // Never armed: the run ended first.
            (
                &[("record-Accepted-before (hit 1)", true)],
                &["record-Accepted-before (hit 2)"],
            ),
            (
                &[],
                &[
                    "record-Accepted-before (hit 1)",
                    "record-Accepted-before (hit 2)",
                ],
            ),
        ];
        for (seen, want) in cases {
            assert_eq!(unreached(&s, &reached(seen)), want, "{seen:?}");
        }
    }

    #[test]
    fn a_point_never_reached_makes_a_held_sweep_inconclusive_and_a_violation_stands() {
        let never = vec!["docker-rm-after (hit 2)".to_owned()];
        let violated = Verdict::Violated {
            violations: vec![Violation::Leaked {
                container: "c".into(),
            }],
        };
        let cases = [
            (Verdict::Held, vec![], Verdict::Held),
            (
                Verdict::Held,
                never.clone(),
                Verdict::Inconclusive {
                    why: "1 crash point(s) never reached: docker-rm-after (hit 2)".into(),
                },
            ),
            (violated.clone(), never.clone(), violated.clone()),
            (
                Verdict::Inconclusive {
                    why: "no task started".into(),
                },
                never.clone(),
                Verdict::Inconclusive {
                    why: "no task started; 1 crash point(s) never reached: docker-rm-after (hit 2)"
                        .into(),
                },
            ),
        ];
        for (checked, unreached, want) in cases {
            assert_eq!(judge(checked.clone(), &unreached), want, "{checked:?}");
        }
    }
}

//! The independent checker of the promise: a verdict from evidence the agent did not
//! write. Pure: the harness gathers the evidence (its own journal of requests and
//! answers, the lines each task's container appends at start to a file the harness owns,
//! `docker events` for the run's label, what it observed while polling, the decoys it made
//! before the run), and this decides.
//!
//! An operation a fault cut off (no answer) may have taken effect or not; the checker
//! accepts either, never both (a task started twice is a violation however it came).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// How a request ended, as the harness saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The agent accepted it (2xx).
    Accepted,
    /// The agent refused it, saying why (4xx, 503).
    Refused,
    /// No answer: a fault cut it off; it may have taken effect or not.
    CutOff,
}

/// A task's state as `berth ps` shows it, in the order they may follow each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Accepted, nothing started.
    Staging,
    /// Being started.
    Starting,
    /// Running.
    Running,
    /// A kill is under way.
    Killing,
    /// Ended on its own, successfully.
    Finished,
    /// Ended on its own, unsuccessfully, or could not start.
    Failed,
    /// Ended by a kill.
    Killed,
    /// Ended without a known outcome.
    Lost,
}

impl State {
    /// Whether the task is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Finished | State::Failed | State::Killed | State::Lost
        )
    }

    /// A rank that never goes down over a task's life.
    fn rank(self) -> u8 {
        match self {
            State::Staging => 0,
            State::Starting => 1,
            State::Running => 2,
            State::Killing => 3,
            State::Finished | State::Failed | State::Killed | State::Lost => 4,
        }
    }
}

/// One task as observed at one moment (`berth ps --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Milliseconds from the run's start.
    pub at_ms: u64,
    /// The state.
    pub state: State,
    /// The reason, for a terminal state.
    pub reason: Option<String>,
}

/// A line a task's container appended at start to the harness's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// The task (berth container id).
    pub task: String,
    /// What it ran in (the container's hostname or id).
    pub container: String,
    /// Milliseconds from the run's start.
    pub at_ms: u64,
}

/// A decoy made before the run, as it was then and as it is after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoy {
    /// What it is ("container foreign-1", "process 4242").
    pub name: String,
    /// Its id, start time, restart count and liveness before the run.
    pub before: String,
    /// The same after the run.
    pub after: String,
}

/// All the evidence of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Each launch the harness sent: task id and how it ended.
    pub launches: BTreeMap<String, Answer>,
    /// The start lines.
    pub starts: Vec<Start>,
    /// What the harness saw of each task while polling, in time order; the last entry is
    /// after settling.
    pub seen: BTreeMap<String, Vec<Seen>>,
    /// The run's containers at the end (names), each with the task its name or label
    /// gives and whether it runs.
    pub containers: Vec<Container>,
    /// Tasks the agent's store holds at the end.
    pub recorded: BTreeSet<String>,
    /// The decoys.
    pub decoys: Vec<Decoy>,
    /// `berth state verify` at the end: `None` when it passed, else its output.
    pub verify_failure: Option<String>,
    /// How the agent died by itself (not at a crash point it was armed with), each time.
    #[serde(default)]
    pub agent_deaths: Vec<String>,
    /// Bytes of the store the harness flipped that the agent did not detect and report as
    /// docs/state-format.md says (a panic, records lost in silence, an undocumented
    /// outcome), each with what happened.
    #[serde(default)]
    pub corruption_unreported: Vec<String>,
}

/// One of the run's containers at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Its name.
    pub name: String,
    /// The task it belongs to, from its name.
    pub task: Option<String>,
    /// Whether it runs.
    pub running: bool,
}

/// A broken promise, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "violation")]
pub enum Violation {
    /// A task started more than once.
    StartedTwice {
        /// The task.
        task: String,
        /// Its start lines.
        starts: Vec<Start>,
    },
    /// After settling, an accepted task neither runs in exactly one container nor is
    /// terminal with a reason.
    NotSettled {
        /// The task.
        task: String,
        /// What was last seen of it, if anything.
        last: Option<Seen>,
        /// Its running containers.
        running: Vec<String>,
    },
    /// A container of the run that no record claims.
    Leaked {
        /// The container.
        container: String,
    },
    /// A task seen terminal that started, or runs, again.
    RanAfterEnd {
        /// The task.
        task: String,
        /// When it was first seen terminal.
        ended_at_ms: u64,
        /// What ran after.
        evidence: String,
    },
    /// A task's state went backwards.
    WentBack {
        /// The task.
        task: String,
        /// The earlier state.
        from: Seen,
        /// The later one.
        to: Seen,
    },
    /// A decoy changed.
    DecoyTouched {
        /// The decoy.
        decoy: Decoy,
    },
    /// `berth state verify` failed.
    VerifyFailed {
        /// What it said.
        output: String,
    },
    /// An accepted launch that the agent does not know.
    AcceptedLost {
        /// The task.
        task: String,
    },
    /// The agent died by itself.
    AgentDied {
        /// How.
        how: String,
    },
    /// A byte of the store flipped on purpose that the agent did not detect and report.
    CorruptionUnreported {
        /// What was flipped and what the agent did.
        what: String,
    },
    /// A launch the agent refused (it said it did nothing) that was taken all the same.
    RefusedButTaken {
        /// The task.
        task: String,
        /// What shows it was taken.
        evidence: String,
    },
}

impl Violation {
    /// The kind, as reports and shrinking compare them.
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::StartedTwice { .. } => "started_twice",
            Violation::NotSettled { .. } => "not_settled",
            Violation::Leaked { .. } => "leaked",
            Violation::RanAfterEnd { .. } => "ran_after_end",
            Violation::WentBack { .. } => "went_back",
            Violation::DecoyTouched { .. } => "decoy_touched",
            Violation::VerifyFailed { .. } => "verify_failed",
            Violation::AcceptedLost { .. } => "accepted_lost",
            Violation::RefusedButTaken { .. } => "refused_but_taken",
            Violation::AgentDied { .. } => "agent_died",
            Violation::CorruptionUnreported { .. } => "corruption_unreported",
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// No violation, and the workload made progress.
    Held,
    /// At least one violation.
    Violated {
        /// Each, with its evidence.
        violations: Vec<Violation>,
    },
    /// No violation, but nothing ran: no evidence either way.
    Inconclusive {
        /// Why.
        why: String,
    },
}

/// Judges a run from its evidence.
pub fn judge(evidence: &Evidence) -> Verdict {
    let mut violations = Vec::new();
    started_once(evidence, &mut violations);
    settled(evidence, &mut violations);
    leaked(evidence, &mut violations);
    ran_after_end(evidence, &mut violations);
    went_back(evidence, &mut violations);
    for decoy in &evidence.decoys {
        if decoy.before != decoy.after {
            violations.push(Violation::DecoyTouched {
                decoy: decoy.clone(),
            });
        }
    }
    for how in &evidence.agent_deaths {
        violations.push(Violation::AgentDied { how: how.clone() });
    }
    for what in &evidence.corruption_unreported {
        violations.push(Violation::CorruptionUnreported { what: what.clone() });
    }
    if let Some(output) = &evidence.verify_failure {
        violations.push(Violation::VerifyFailed {
            output: output.clone(),
        });
    }
    if !violations.is_empty() {
        return Verdict::Violated { violations };
    }
    if evidence.starts.is_empty() {
        return Verdict::Inconclusive {
            why: "no task started: the workload made no progress".into(),
        };
    }
    Verdict::Held
}

fn started_once(evidence: &Evidence, out: &mut Vec<Violation>) {
    let mut by_task: BTreeMap<&str, Vec<Start>> = BTreeMap::new();
    for start in &evidence.starts {
        by_task
            .entry(start.task.as_str())
            .or_default()
            .push(start.clone());
    }
    for (task, starts) in by_task {
        if starts.len() > 1 {
            out.push(Violation::StartedTwice {
                task: task.to_owned(),
                starts,
            });
        }
    }
}

fn settled(evidence: &Evidence, out: &mut Vec<Violation>) {
    for (task, answer) in &evidence.launches {
        let last = evidence.seen.get(task).and_then(|s| s.last()).cloned();
        let running: Vec<String> = evidence
            .containers
            .iter()
            .filter(|c| c.running && c.task.as_deref() == Some(task.as_str()))
            .map(|c| c.name.clone())
            .collect();
        let started = evidence.starts.iter().any(|s| &s.task == task);
        // Accepted, listed, or started: the agent took it, whatever the answer said.
        let taken = *answer == Answer::Accepted || last.is_some() || started;
        if taken && *answer != Answer::Refused && !evidence.recorded.contains(task) {
            // The agent knew it (it accepted it, or listed it) and knows it no more.
            out.push(Violation::AcceptedLost { task: task.clone() });
            continue;
        }
        match (&last, answer) {
            (Some(_), Answer::Refused) => {
                out.push(Violation::RefusedButTaken {
                    task: task.clone(),
                    evidence: "the agent lists it".into(),
                });
                continue;
            }
            (None, Answer::Refused) if started || !running.is_empty() => {
                out.push(Violation::RefusedButTaken {
                    task: task.clone(),
                    evidence: format!("it started, and runs in {running:?}"),
                });
                continue;
            }
            // Refused, or cut off and never seen: it did not take effect, which is allowed,
            // as long as nothing of it runs.
            (None, Answer::CutOff | Answer::Refused) if running.is_empty() => continue,
            (None, Answer::Accepted) => {
                out.push(Violation::AcceptedLost { task: task.clone() });
                continue;
            }
            _ => {}
        }
        let fine = match &last {
            Some(seen) if seen.state.is_terminal() => {
                running.is_empty() && seen.reason.as_deref().is_some_and(|r| !r.is_empty())
            }
            Some(seen) if seen.state == State::Running => running.len() == 1,
            _ => false,
        };
        if !fine {
            out.push(Violation::NotSettled {
                task: task.clone(),
                last,
                running,
            });
        }
    }
}

fn leaked(evidence: &Evidence, out: &mut Vec<Violation>) {
    for container in &evidence.containers {
        let claimed = container
            .task
            .as_ref()
            .is_some_and(|t| evidence.recorded.contains(t));
        if !claimed {
            out.push(Violation::Leaked {
                container: container.name.clone(),
            });
        }
    }
}

fn ran_after_end(evidence: &Evidence, out: &mut Vec<Violation>) {
    for (task, seen) in &evidence.seen {
        let Some(ended) = seen.iter().find(|s| s.state.is_terminal()) else {
            continue;
        };
        if let Some(start) = evidence
            .starts
            .iter()
            .find(|s| &s.task == task && s.at_ms > ended.at_ms)
        {
            out.push(Violation::RanAfterEnd {
                task: task.clone(),
                ended_at_ms: ended.at_ms,
                evidence: format!("started in {} at {} ms", start.container, start.at_ms),
            });
        } else if let Some(c) = evidence
            .containers
            .iter()
            .find(|c| c.running && c.task.as_deref() == Some(task.as_str()))
        {
            out.push(Violation::RanAfterEnd {
                task: task.clone(),
                ended_at_ms: ended.at_ms,
                evidence: format!("{} runs at the end", c.name),
            });
        }
    }
}

fn went_back(evidence: &Evidence, out: &mut Vec<Violation>) {
    for (task, seen) in &evidence.seen {
        for pair in seen.windows(2) {
            let (from, to) = (&pair[0], &pair[1]);
            let back = to.state.rank() < from.state.rank()
                || (from.state.is_terminal() && to.state != from.state);
            if back {
                out.push(Violation::WentBack {
                    task: task.clone(),
                    from: from.clone(),
                    to: to.clone(),
                });
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(at_ms: u64, state: State) -> Seen {
        Seen {
            at_ms,
            state,
            reason: state.is_terminal().then(|| "REASON_X".to_owned()),
        }
    }

    fn start(task: &str, container: &str, at_ms: u64) -> Start {
        Start {
            task: task.into(),
            container: container.into(),
            at_ms,
        }
    }

    fn container(name: &str, task: &str, running: bool) -> Container {
        Container {
            name: name.into(),
            task: Some(task.into()),
            running,
        }
    }

    /// A run in which task `a` ran and finished and `b` runs.
    fn good() -> Evidence {
        Evidence {
            launches: [("a", Answer::Accepted), ("b", Answer::Accepted)]
                .map(|(t, a)| (t.to_owned(), a))
                .into(),
            starts: vec![start("a", "c1", 10), start("b", "c2", 20)],
            seen: [
                (
                    "a",
                    vec![
                        seen(5, State::Staging),
                        seen(15, State::Running),
                        seen(30, State::Finished),
                    ],
                ),
                (
                    "b",
                    vec![seen(25, State::Running), seen(40, State::Running)],
                ),
            ]
            .map(|(t, s)| (t.to_owned(), s))
            .into(),
            containers: vec![
                container("mesos-x.a", "a", false),
                container("mesos-x.b", "b", true),
            ],
            recorded: ["a", "b"].map(str::to_owned).into(),
            decoys: vec![Decoy {
                name: "container foreign".into(),
                before: "id 1, started 5, restarts 0, alive".into(),
                after: "id 1, started 5, restarts 0, alive".into(),
            }],
            verify_failure: None,
            agent_deaths: vec![],
            corruption_unreported: vec![],
        }
    }

    fn kinds(verdict: &Verdict) -> Vec<&'static str> {
        match verdict {
            Verdict::Violated { violations } => violations.iter().map(Violation::kind).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn each_broken_promise_is_named_for_what_broke() {
        type Break = fn(&mut Evidence);
        let cases: [(&str, Break, &[&str]); 14] = [
            ("nothing broken", |_| {}, &[]),
            (
                "a second start",
                |e| e.starts.push(start("b", "c3", 50)),
                &["started_twice"],
            ),
            (
                "a second container running",
                |e| e.containers.push(container("mesos-x.b2", "b", true)),
                &["not_settled"],
            ),
            (
                "a container no record claims",
                |e| e.containers.push(container("mesos-x.z", "z", false)),
                &["leaked"],
            ),
            (
                "an ended task started again",
                |e| e.starts.push(start("a", "c9", 60)),
                &["started_twice", "ran_after_end"],
            ),
            (
                "a status going back",
                |e| {
                    e.seen
                        .get_mut("b")
                        .expect("b")
                        .push(seen(50, State::Starting))
                },
                &["not_settled", "went_back"],
            ),
            (
                "a decoy touched",
                |e| e.decoys[0].after = "id 1, started 5, restarts 1, alive".into(),
                &["decoy_touched"],
            ),
            (
                "verify failing",
                |e| e.verify_failure = Some("history of x: gap".into()),
                &["verify_failed"],
            ),
            (
                "an accepted launch unknown",
                |e| {
                    e.seen.remove("b");
                    e.containers.pop();
                    e.recorded.remove("b");
                },
                &["accepted_lost"],
            ),
            (
                "a task the agent listed and forgot",
                |e| {
                    e.containers.pop();
                    e.recorded.remove("b");
                },
                &["accepted_lost"],
            ),
            (
                "the agent dying by itself",
                |e| e.agent_deaths.push("signal 11".into()),
                &["agent_died"],
            ),
            (
                "a flipped byte of the store the agent lost records to in silence",
                |e| {
                    e.corruption_unreported
                        .push("db offset 7: started without task b".into())
                },
                &["corruption_unreported"],
            ),
            (
                "a cut-off launch that ran and that the agent does not know",
                |e| {
                    e.launches.insert("c".into(), Answer::CutOff);
                    e.starts.push(start("c", "c8", 70));
                },
                &["accepted_lost"],
            ),
            (
                "an end without a reason",
                |e| e.seen.get_mut("a").expect("a")[2].reason = None,
                &["not_settled"],
            ),
        ];
        for (name, break_it, want) in cases {
            let mut e = good();
            break_it(&mut e);
            assert_eq!(kinds(&judge(&e)), want, "{name}");
        }
    }

    #[test]
    fn a_cut_off_launch_may_have_happened_or_not() {
        let mut never = good();
        never.launches.insert("c".into(), Answer::CutOff);
        assert_eq!(judge(&never), Verdict::Held);
        let mut happened = never.clone();
        happened.starts.push(start("c", "c5", 70));
        happened
            .seen
            .insert("c".into(), vec![seen(75, State::Running)]);
        happened.containers.push(container("mesos-x.c", "c", true));
        happened.recorded.insert("c".into());
        assert_eq!(judge(&happened), Verdict::Held);
        // Not taken, yet something of it runs: both at once.
        let mut both = never;
        both.containers.push(container("mesos-x.c", "c", true));
        both.recorded.insert("c".into());
        assert_eq!(kinds(&judge(&both)), ["not_settled"]);
    }

    #[test]
    fn a_refused_launch_must_have_done_nothing() {
        let mut refused = good();
        refused.launches.insert("r".into(), Answer::Refused);
        assert_eq!(judge(&refused), Verdict::Held);
        let mut listed = refused.clone();
        listed
            .seen
            .insert("r".into(), vec![seen(80, State::Staging)]);
        assert_eq!(kinds(&judge(&listed)), ["refused_but_taken"]);
        let mut started = refused;
        started.starts.push(start("r", "c7", 90));
        assert_eq!(kinds(&judge(&started)), ["refused_but_taken"]);
    }

    #[test]
    fn a_run_in_which_nothing_started_proves_nothing() {
        let mut idle = good();
        idle.starts.clear();
        assert!(matches!(judge(&idle), Verdict::Inconclusive { .. }));
    }
}

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

use crate::events::{Action, ContainerEvent};
use crate::quiet::Quiet;

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
/// Mesos's names (`TASK_RUNNING`), as berth writes them; the bare names earlier berths
/// wrote read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Accepted, nothing started.
    #[serde(rename = "TASK_STAGING", alias = "STAGING")]
    Staging,
    /// Being started.
    #[serde(rename = "TASK_STARTING", alias = "STARTING")]
    Starting,
    /// Running.
    #[serde(rename = "TASK_RUNNING", alias = "RUNNING")]
    Running,
    /// A kill is under way.
    #[serde(rename = "TASK_KILLING", alias = "KILLING")]
    Killing,
    /// Ended on its own, successfully.
    #[serde(rename = "TASK_FINISHED", alias = "FINISHED")]
    Finished,
    /// Ended on its own, unsuccessfully, could not start, or ran out of its time.
    #[serde(rename = "TASK_FAILED", alias = "FAILED")]
    Failed,
    /// Ended by a kill.
    #[serde(rename = "TASK_KILLED", alias = "KILLED")]
    Killed,
    /// Ended without a known outcome.
    #[serde(rename = "TASK_LOST", alias = "LOST")]
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
    /// The run's containers' lifecycle, from `docker events` (every agent id the run
    /// announced).
    #[serde(default)]
    pub events: Vec<ContainerEvent>,
    /// Lines of the events' file that did not read.
    #[serde(default)]
    pub events_unreadable: usize,
    /// Each task a kill was sent for, and how the kill was answered.
    #[serde(default)]
    pub kills: BTreeMap<String, Kill>,
    /// The liveness probe once the faults healed and the agent settled.
    #[serde(default)]
    pub probe: Option<Probe>,
    /// How the harness waited for the run to be still before gathering this.
    #[serde(default)]
    pub quiet: Option<Quiet>,
    /// Bytes of the store the harness flipped that the agent did not detect and report as
    /// docs/state-format.md says (a panic, records lost in silence, an undocumented
    /// outcome), each with what happened.
    #[serde(default)]
    pub corruption_unreported: Vec<String>,
    /// Why what the agent's store records could not be read at the end; `recorded` is
    /// then empty, which says nothing of what it holds.
    #[serde(default)]
    pub store_unreadable: Option<String>,
    /// Why the harness's `docker events` watcher was not running when the evidence was
    /// gathered, if it was not: events from then on are missing.
    #[serde(default)]
    pub events_watcher_dead: Option<String>,
    /// Each time the watcher was found gone (a restart of the engine ends it) and started
    /// again, with `--since` the last event it had read.
    #[serde(default)]
    pub events_gaps: Vec<String>,
}

/// A kill the harness sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kill {
    /// How it was answered.
    pub answer: Answer,
    /// When the answer came (milliseconds from the run's start).
    pub answered_at_ms: u64,
    /// The task's state in the agent's answer, when it accepted the kill.
    pub state: Option<State>,
}

/// A short task launched once the faults healed and the agent settled, outside the seeded
/// schedule: the agent must still serve. Its start lines and what was seen of it are kept
/// here, apart from the workload's, so that they count for nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Its task id.
    pub task: String,
    /// Why `GET /v1/health` did not answer ok; `None` when it did.
    pub health_failure: Option<String>,
    /// How its launch was answered (`None`: not sent, the agent did not answer its health).
    pub answer: Option<Answer>,
    /// What the agent said, or why there was no answer.
    pub detail: String,
    /// How long the harness waited for it to finish.
    pub deadline_ms: u64,
    /// What the harness saw of it, in time order.
    pub seen: Vec<Seen>,
    /// Its start lines.
    pub starts: Vec<Start>,
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
        /// Docker's start events of its containers.
        #[serde(default)]
        events: Vec<ContainerEvent>,
    },
    /// After settling, an accepted task neither runs in exactly one container nor is
    /// terminal with nothing of it running.
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
    /// Once the faults healed, the agent did not serve: its health did not answer, or a
    /// fresh short task was not accepted, did not run, or did not finish FINISHED in time.
    NotServing {
        /// The probe's task.
        task: String,
        /// What failed.
        failed: String,
        /// What was last seen of the probe's task.
        last: Option<Seen>,
    },
    /// A kill the agent accepted did not end its task KILLED, and the task had not ended on
    /// its own before it.
    KillIgnored {
        /// The task.
        task: String,
        /// The kill, as answered.
        kill: Kill,
        /// What was last seen of the task.
        last: Option<Seen>,
    },
}

/// Every kind of violation, as [`Violation::kind`] names it: one JUnit case each.
pub const KINDS: [&str; 13] = [
    "started_twice",
    "not_settled",
    "leaked",
    "ran_after_end",
    "went_back",
    "decoy_touched",
    "verify_failed",
    "accepted_lost",
    "refused_but_taken",
    "agent_died",
    "not_serving",
    "kill_ignored",
    "corruption_unreported",
];

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
            Violation::NotServing { .. } => "not_serving",
            Violation::KillIgnored { .. } => "kill_ignored",
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
    kills_honoured(evidence, &mut violations);
    serving(evidence, &mut violations);
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
    let incomplete = incomplete(evidence);
    if !incomplete.is_empty() {
        return Verdict::Inconclusive {
            why: format!("the evidence is incomplete: {}", incomplete.join("; ")),
        };
    }
    if evidence.starts.is_empty() {
        return Verdict::Inconclusive {
            why: "no task started: the workload made no progress".into(),
        };
    }
    Verdict::Held
}

/// Why the evidence may miss something, each said as a reader needs it: with no
/// violation, a run is then inconclusive rather than held. Pure.
pub fn incomplete(evidence: &Evidence) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(quiet) = evidence.quiet.as_ref().filter(|q| q.timed_out) {
        why.push(format!(
            "the run was not still after {} ms (still under way: {}; the probe's end {} in docker events)",
            quiet.waited_ms,
            if quiet.under_way.is_empty() {
                "nothing".to_owned()
            } else {
                quiet.under_way.join(", ")
            },
            if quiet.events_caught_up { "was" } else { "was not" }
        ));
    }
    if evidence.events_unreadable > 0 {
        why.push(format!(
            "{} line(s) of docker events did not read",
            evidence.events_unreadable
        ));
    }
    if let Some(dead) = &evidence.events_watcher_dead {
        why.push(format!("the docker events watcher was not running: {dead}"));
    }
    if let Some(store) = &evidence.store_unreadable {
        why.push(format!(
            "what the agent's store records could not be read, so no task could be judged lost and no container claimed by it: {store}"
        ));
    }
    why
}

/// A task starts once: by its start lines and by Docker's start events of its containers
/// (a start line may be lost to a kill; an event is not).
fn started_once(evidence: &Evidence, out: &mut Vec<Violation>) {
    let mut by_task: BTreeMap<&str, (Vec<Start>, Vec<ContainerEvent>)> = BTreeMap::new();
    for start in &evidence.starts {
        by_task
            .entry(start.task.as_str())
            .or_default()
            .0
            .push(start.clone());
    }
    for event in &evidence.events {
        if let (Action::Start, Some(task)) = (event.action, &event.task) {
            by_task
                .entry(task.as_str())
                .or_default()
                .1
                .push(event.clone());
        }
    }
    for (task, (starts, events)) in by_task {
        if times_started(&starts, &events) > 1 {
            out.push(Violation::StartedTwice {
                task: task.to_owned(),
                starts,
                events,
            });
        }
    }
}

/// How many times a task started: in each of its containers, as many times as its start
/// lines or Docker's start events say, whichever is more (both see the same start).
fn times_started(starts: &[Start], events: &[ContainerEvent]) -> usize {
    let mut per_container: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for start in starts {
        per_container.entry(start.container.as_str()).or_default().0 += 1;
    }
    for event in events {
        per_container.entry(event.container.as_str()).or_default().1 += 1;
    }
    per_container.values().map(|(l, e)| (*l).max(*e)).sum()
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
        // An unread store is no empty one: nothing is judged lost from it.
        let unrecorded = evidence.store_unreadable.is_none() && !evidence.recorded.contains(task);
        if taken && *answer != Answer::Refused && unrecorded {
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
            // An end: nothing of the task runs. An exit or a kill on request has no
            // reason, as in Mesos; a task lost always says why.
            Some(seen) if seen.state.is_terminal() => {
                running.is_empty() && (seen.state != State::Lost || seen.reason.is_some())
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

/// Every container of the run is claimed by a record: those left at the end, and those
/// Docker's events show were made (even if removed before the end).
fn leaked(evidence: &Evidence, out: &mut Vec<Violation>) {
    // With the store unread, a container of a task of the run's may be claimed: it is
    // not called leaked.
    let claimed = |task: &Option<String>| {
        task.as_ref()
            .is_some_and(|t| evidence.store_unreadable.is_some() || evidence.recorded.contains(t))
    };
    for container in &evidence.containers {
        if !claimed(&container.task) {
            out.push(Violation::Leaked {
                container: container.name.clone(),
            });
        }
    }
    let listed: BTreeSet<&str> = evidence
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut by_container: BTreeMap<&str, Vec<&ContainerEvent>> = BTreeMap::new();
    for event in &evidence.events {
        by_container
            .entry(event.container.as_str())
            .or_default()
            .push(event);
    }
    for (id, events) in by_container {
        let name = events
            .iter()
            .find(|e| !e.name.is_empty())
            .map_or(id, |e| e.name.as_str());
        if listed.contains(name) || events.iter().any(|e| claimed(&e.task)) {
            continue;
        }
        let seen: Vec<String> = events
            .iter()
            .map(|e| format!("{:?} at {} ms", e.action, e.at_ms).to_lowercase())
            .collect();
        let label = events
            .iter()
            .find_map(|e| e.berth_id.as_deref())
            .map_or("no berth.container_id label".to_owned(), |l| {
                format!("berth.container_id={l}")
            });
        out.push(Violation::Leaked {
            container: format!(
                "{name} ({id}, {label}; seen only in docker events: {})",
                seen.join(", ")
            ),
        });
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
        } else if let Some(event) = evidence.events.iter().find(|e| {
            e.action == Action::Start
                && e.task.as_deref() == Some(task.as_str())
                && e.at_ms > ended.at_ms
        }) {
            out.push(Violation::RanAfterEnd {
                task: task.clone(),
                ended_at_ms: ended.at_ms,
                evidence: format!(
                    "Docker started {} ({}) at {} ms (docker events)",
                    event.name, event.container, event.at_ms
                ),
            });
        }
    }
}

/// A kill the agent accepted ends its task KILLED, unless the task had ended on its own
/// first: seen ended by the time the kill was answered, or ended as the answer said.
fn kills_honoured(evidence: &Evidence, out: &mut Vec<Violation>) {
    for (task, kill) in &evidence.kills {
        // A task the agent does not know at all is `accepted_lost` already.
        let Some(history) = evidence.seen.get(task) else {
            continue;
        };
        if kill.answer != Answer::Accepted {
            continue;
        }
        let last = history.last();
        let honoured = match last {
            Some(s) if s.state == State::Killed => true,
            // An end of its own (an exit has no reason, as in Mesos) or the one the kill's
            // answer named.
            Some(s) if s.state.is_terminal() => {
                let ended_before = history
                    .iter()
                    .any(|h| h.state == s.state && h.at_ms <= kill.answered_at_ms);
                ended_before || kill.state == Some(s.state)
            }
            _ => false,
        };
        if !honoured {
            out.push(Violation::KillIgnored {
                task: task.clone(),
                kill: *kill,
                last: last.cloned(),
            });
        }
    }
}

/// Once the faults healed, the agent answers its health, and a fresh short task is accepted,
/// runs and finishes FINISHED within the deadline.
fn serving(evidence: &Evidence, out: &mut Vec<Violation>) {
    let Some(probe) = &evidence.probe else {
        return;
    };
    let last = probe.seen.last().cloned();
    let failed = if let Some(why) = &probe.health_failure {
        Some(format!("GET /v1/health: {why}"))
    } else if probe.answer != Some(Answer::Accepted) {
        Some(format!(
            "its launch was not accepted ({}): {}",
            probe
                .answer
                .map_or("not sent".to_owned(), |a| format!("{a:?}").to_lowercase()),
            probe.detail
        ))
    } else if last.as_ref().map(|s| s.state) != Some(State::Finished) {
        Some(format!(
            "it did not end FINISHED within {} ms",
            probe.deadline_ms
        ))
    } else if probe.starts.is_empty() {
        Some("it ended FINISHED without writing its start line: it did not run".to_owned())
    } else {
        None
    };
    if let Some(failed) = failed {
        out.push(Violation::NotServing {
            task: probe.task.clone(),
            failed,
            last,
        });
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

    fn event(at_ms: u64, action: Action, container: &str, task: Option<&str>) -> ContainerEvent {
        ContainerEvent {
            at_ms,
            action,
            container: container.into(),
            name: format!("mesos-x.{container}"),
            berth_id: task.map(|t| format!("id-of-{t}")),
            task: task.map(str::to_owned),
        }
    }

    fn probe() -> Probe {
        Probe {
            task: "p".into(),
            health_failure: None,
            answer: Some(Answer::Accepted),
            detail: "accepted".into(),
            deadline_ms: 30_000,
            seen: vec![seen(100, State::Running), seen(102, State::Finished)],
            starts: vec![start("p", "cp", 101)],
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
            recorded: ["a", "b", "p"].map(str::to_owned).into(),
            decoys: vec![Decoy {
                name: "container foreign".into(),
                before: "id 1, started 5, restarts 0, alive".into(),
                after: "id 1, started 5, restarts 0, alive".into(),
            }],
            verify_failure: None,
            agent_deaths: vec![],
            events: vec![
                event(8, Action::Create, "c1", Some("a")),
                event(9, Action::Start, "c1", Some("a")),
                event(18, Action::Create, "c2", Some("b")),
                event(19, Action::Start, "c2", Some("b")),
                event(29, Action::Die, "c1", Some("a")),
                event(35, Action::Destroy, "c1", Some("a")),
                event(99, Action::Create, "cp", Some("p")),
                event(100, Action::Start, "cp", Some("p")),
                event(101, Action::Die, "cp", Some("p")),
            ],
            events_unreadable: 0,
            kills: BTreeMap::new(),
            probe: Some(probe()),
            quiet: None,
            corruption_unreported: vec![],
            store_unreadable: None,
            events_watcher_dead: None,
            events_gaps: vec![],
        }
    }

    fn kill(answer: Answer, answered_at_ms: u64, state: Option<State>) -> Kill {
        Kill {
            answer,
            answered_at_ms,
            state,
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
        let cases: [(&str, Break, &[&str]); 23] = [
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
                // Its container, made and gone, is claimed by no record.
                &["accepted_lost", "leaked"],
            ),
            (
                "a task the agent listed and forgot",
                |e| {
                    e.containers.pop();
                    e.recorded.remove("b");
                },
                // Its container, made and gone, is claimed by no record.
                &["accepted_lost", "leaked"],
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
                // An exit or a kill on request has none, as in Mesos.
                "an end without a reason",
                |e| e.seen.get_mut("a").expect("a")[2].reason = None,
                &[],
            ),
            (
                "Docker started a second container for a task, its start line lost",
                |e| e.events.push(event(50, Action::Start, "c3", Some("b"))),
                &["started_twice"],
            ),
            (
                "Docker started an ended task's container again",
                |e| e.events.push(event(60, Action::Start, "c1", Some("a"))),
                &["started_twice", "ran_after_end"],
            ),
            (
                "a container made and removed behind the agent's back",
                |e| {
                    for (at, action) in [
                        (40, Action::Create),
                        (41, Action::Start),
                        (45, Action::Destroy),
                    ] {
                        e.events.push(event(at, action, "cz", None));
                    }
                },
                &["leaked"],
            ),
            (
                "an accepted kill of a running task that goes on running",
                |e| {
                    e.kills
                        .insert("b".into(), kill(Answer::Accepted, 30, Some(State::Killing)));
                },
                &["kill_ignored"],
            ),
            (
                "an accepted kill whose task then finished on its own",
                |e| {
                    e.kills
                        .insert("a".into(), kill(Answer::Accepted, 25, Some(State::Killing)));
                },
                &["kill_ignored"],
            ),
            (
                "the agent not answering its health after the faults healed",
                |e| e.probe.as_mut().expect("probe").health_failure = Some("timed out".into()),
                &["not_serving"],
            ),
            (
                "the probe refused after the faults healed",
                |e| {
                    let p = e.probe.as_mut().expect("probe");
                    p.answer = Some(Answer::Refused);
                    p.seen.clear();
                    p.starts.clear();
                },
                &["not_serving"],
            ),
            (
                "the probe not finished in time",
                |e| {
                    e.probe.as_mut().expect("probe").seen.pop();
                },
                &["not_serving"],
            ),
            (
                "the probe finished without running",
                |e| e.probe.as_mut().expect("probe").starts.clear(),
                &["not_serving"],
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
    fn every_kind_of_violation_is_in_kinds_once() {
        let one_of_each = [
            Violation::StartedTwice {
                task: "a".into(),
                starts: vec![],
                events: vec![],
            },
            Violation::NotSettled {
                task: "a".into(),
                last: None,
                running: vec![],
            },
            Violation::Leaked {
                container: "c".into(),
            },
            Violation::RanAfterEnd {
                task: "a".into(),
                ended_at_ms: 1,
                evidence: "e".into(),
            },
            Violation::WentBack {
                task: "a".into(),
                from: seen(1, State::Running),
                to: seen(2, State::Staging),
            },
            Violation::DecoyTouched {
                decoy: good().decoys[0].clone(),
            },
            Violation::VerifyFailed { output: "o".into() },
            Violation::AcceptedLost { task: "a".into() },
            Violation::RefusedButTaken {
                task: "a".into(),
                evidence: "e".into(),
            },
            Violation::AgentDied { how: "h".into() },
            Violation::NotServing {
                task: "p".into(),
                failed: "f".into(),
                last: None,
            },
            Violation::KillIgnored {
                task: "a".into(),
                kill: Kill {
                    answer: Answer::Accepted,
                    answered_at_ms: 1,
                    state: None,
                },
                last: None,
            },
            Violation::CorruptionUnreported { what: "w".into() },
        ];
        for v in &one_of_each {
            // No wildcard: a new variant does not compile until it is listed above.
            match v {
                Violation::StartedTwice { .. }
                | Violation::NotSettled { .. }
                | Violation::Leaked { .. }
                | Violation::RanAfterEnd { .. }
                | Violation::WentBack { .. }
                | Violation::DecoyTouched { .. }
                | Violation::VerifyFailed { .. }
                | Violation::AcceptedLost { .. }
                | Violation::RefusedButTaken { .. }
                | Violation::AgentDied { .. }
                | Violation::NotServing { .. }
                | Violation::KillIgnored { .. }
                | Violation::CorruptionUnreported { .. } => {}
            }
            assert!(KINDS.contains(&v.kind()), "{} is not in KINDS", v.kind());
        }
        let distinct: BTreeSet<&str> = one_of_each.iter().map(Violation::kind).collect();
        assert_eq!(distinct.len(), one_of_each.len(), "two variants, one kind");
        assert_eq!(
            distinct,
            KINDS.into_iter().collect(),
            "KINDS names no kind that is not a variant's"
        );
    }

    #[test]
    fn a_run_in_which_nothing_started_proves_nothing() {
        let mut idle = good();
        idle.starts.clear();
        // The probe started; the workload did not.
        assert!(matches!(judge(&idle), Verdict::Inconclusive { .. }));
    }

    #[test]
    fn incomplete_evidence_makes_a_run_without_violation_inconclusive() {
        type Lack = fn(&mut Evidence);
        let timed_out: Lack = |e| {
            e.quiet = Some(Quiet {
                waited_ms: 15_000,
                timed_out: true,
                under_way: vec!["7 docker run".into()],
                events_caught_up: false,
            })
        };
        let unreadable_store: Lack = |e| {
            e.recorded.clear();
            e.store_unreadable = Some("berth state ls: store locked".into());
        };
        let cases: [(&str, Lack, &str); 5] = [
            ("complete", |_| {}, ""),
            ("the quiet wait timed out", timed_out, "7 docker run"),
            (
                "events lines unreadable",
                |e| e.events_unreadable = 2,
                "2 line(s)",
            ),
            (
                "the watcher died",
                |e| e.events_watcher_dead = Some("exited 1".into()),
                "exited 1",
            ),
            // Not a flood of accepted_lost and leaked: an unread store is no empty one.
            ("the store unreadable", unreadable_store, "store locked"),
        ];
        for (name, lack, why_has) in cases {
            let mut e = good();
            lack(&mut e);
            match judge(&e) {
                Verdict::Held => assert!(why_has.is_empty(), "{name}: held"),
                Verdict::Inconclusive { why } => {
                    assert!(
                        !why_has.is_empty() && why.contains(why_has),
                        "{name}: {why}"
                    )
                }
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(incomplete(&e).is_empty(), why_has.is_empty(), "{name}");
        }
        // A violation is one whatever else is missing.
        let mut e = good();
        timed_out(&mut e);
        unreadable_store(&mut e);
        e.starts.push(start("b", "c3", 50));
        assert_eq!(kinds(&judge(&e)), ["started_twice"]);
        // With the store unread, a container no task of the run's claims is still leaked.
        let mut e = good();
        unreadable_store(&mut e);
        e.containers.push(Container {
            name: "stranger".into(),
            task: None,
            running: true,
        });
        assert_eq!(kinds(&judge(&e)), ["leaked"]);
    }

    #[test]
    fn a_start_seen_both_as_a_line_and_as_an_event_is_one_start() {
        let mut e = good();
        // Docker's events alone, the start lines lost: still one start each.
        e.starts.clear();
        e.starts.push(start("a", "c1", 10));
        assert_eq!(judge(&e), Verdict::Held);
        // The second container's start line without its event (a watcher that lagged).
        e.starts.push(start("a", "c5", 12));
        assert_eq!(kinds(&judge(&e)), ["started_twice"]);
    }

    #[test]
    fn an_unclaimed_container_left_at_the_end_is_one_leak() {
        let mut e = good();
        e.containers.push(container("mesos-x.cz", "z", false));
        e.events.push(event(40, Action::Create, "cz", Some("z")));
        assert_eq!(kinds(&judge(&e)), ["leaked"]);
        let Verdict::Violated { violations } = judge(&e) else {
            panic!("violated")
        };
        assert_eq!(
            violations,
            [Violation::Leaked {
                container: "mesos-x.cz".into()
            }]
        );
        // Made and removed: named with what Docker said of it.
        e.containers.pop();
        let Verdict::Violated { violations } = judge(&e) else {
            panic!("violated")
        };
        let [Violation::Leaked { container }] = violations.as_slice() else {
            panic!("{violations:?}")
        };
        assert!(
            container.starts_with("mesos-x.cz (cz, berth.container_id=id-of-z"),
            "{container}"
        );
        assert!(container.contains("create at 40 ms"), "{container}");
    }

    #[test]
    fn a_kill_is_honoured_by_a_kill_or_by_an_end_that_came_first() {
        let cases = [
            (
                "killed",
                "b",
                State::Killed,
                kill(Answer::Accepted, 30, Some(State::Killing)),
                true,
            ),
            // Seen FINISHED (at 30) before the kill was answered.
            (
                "finished before",
                "a",
                State::Finished,
                kill(Answer::Accepted, 31, Some(State::Finished)),
                true,
            ),
            // The agent answered that it had finished already.
            (
                "answered ended",
                "a",
                State::Finished,
                kill(Answer::Accepted, 25, Some(State::Finished)),
                true,
            ),
            (
                "answered ended otherwise",
                "a",
                State::Finished,
                kill(Answer::Accepted, 25, Some(State::Failed)),
                false,
            ),
            (
                "lost with a reason first",
                "a",
                State::Lost,
                kill(Answer::Accepted, 31, Some(State::Killing)),
                true,
            ),
            (
                "refused",
                "b",
                State::Running,
                kill(Answer::Refused, 30, None),
                true,
            ),
            (
                "cut off",
                "b",
                State::Running,
                kill(Answer::CutOff, 30, None),
                true,
            ),
            (
                "still killing",
                "b",
                State::Killing,
                kill(Answer::Accepted, 30, Some(State::Killing)),
                false,
            ),
        ];
        for (name, task, end, k, fine) in cases {
            let mut e = good();
            let history = e.seen.get_mut(task).expect("task");
            history.last_mut().expect("last").state = end;
            if end == State::Killed {
                e.containers.retain(|c| c.task.as_deref() != Some(task));
            }
            e.kills.insert(task.to_owned(), k);
            let got = kinds(&judge(&e));
            assert_eq!(got.contains(&"kill_ignored"), !fine, "{name}: {got:?}");
        }
    }
}

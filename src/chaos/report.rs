//! What a campaign found, for people (text) and machines (JSON), with the command that
//! replays it. Pure.

use std::collections::BTreeMap;
use std::path::Path;

use berth_chaos::check::{self, Answer, Verdict};
use serde::Serialize;

use super::campaign::Finished;

/// The exit status of `berth chaos run`.
pub fn exit_code(verdict: &Verdict) -> i32 {
    match verdict {
        Verdict::Held => 0,
        Verdict::Violated { .. } => 1,
        Verdict::Inconclusive { .. } => 2,
    }
}

/// The report's JSON.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    /// The verdict, with each violation.
    pub verdict: &'a Verdict,
    /// The seed.
    pub seed: u64,
    /// The command that replays it.
    pub replay: String,
    /// Faults injected, by kind.
    pub faults: &'a BTreeMap<String, u32>,
    /// Launches, by how they were answered.
    pub launches: BTreeMap<String, u32>,
    /// Tasks, by their last state.
    pub outcomes: BTreeMap<String, u32>,
    /// Starts the tasks wrote.
    pub starts: usize,
    /// Each crash point armed (`point (hit N)`), and whether the agent aborted there.
    pub crash_points: &'a BTreeMap<String, bool>,
    /// Why the evidence may miss something (a run without violation is then
    /// inconclusive).
    pub incomplete: Vec<String>,
    /// Each time the events watcher was gone and started again.
    pub events_gaps: &'a [String],
    /// What a reader needs besides.
    pub notes: &'a [String],
    /// Where the report and its evidence are.
    pub dir: String,
    /// The timeline picture.
    pub timeline: String,
    /// The JUnit file, when one was asked for.
    pub junit: Option<String>,
}

/// The picture of a run, in its directory.
pub const TIMELINE: &str = "timeline.svg";

/// The summary of `finished`; `replay` is the command that runs the same schedule,
/// `junit` the JUnit file written beside it, if any.
pub fn summary<'a>(finished: &'a Finished, replay: String, junit: Option<&Path>) -> Summary<'a> {
    let mut launches = BTreeMap::new();
    for answer in finished.evidence.launches.values() {
        let name = match answer {
            Answer::Accepted => "accepted",
            Answer::Refused => "refused",
            Answer::CutOff => "cut off",
        };
        *launches.entry(name.to_owned()).or_default() += 1;
    }
    let mut outcomes = BTreeMap::new();
    for history in finished.evidence.seen.values() {
        if let Some(last) = history.last() {
            let name = serde_json::to_value(last.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            *outcomes.entry(name).or_default() += 1;
        }
    }
    Summary {
        verdict: &finished.verdict,
        seed: finished.schedule.seed,
        replay,
        faults: &finished.faults,
        launches,
        outcomes,
        starts: finished.evidence.starts.len(),
        crash_points: &finished.crash_points,
        incomplete: check::incomplete(&finished.evidence),
        events_gaps: &finished.evidence.events_gaps,
        notes: &finished.notes,
        dir: finished.dir.display().to_string(),
        timeline: finished.dir.join(TIMELINE).display().to_string(),
        junit: junit.map(|j| j.display().to_string()),
    }
}

/// The summary as text.
pub fn text(summary: &Summary) -> String {
    let verdict = match summary.verdict {
        Verdict::Held => "HELD: no violation of the promise".to_owned(),
        Verdict::Violated { violations } => {
            format!("VIOLATED: {} violation(s) of the promise", violations.len())
        }
        Verdict::Inconclusive { why } => format!("INCONCLUSIVE: {why}"),
    };
    let counts = |m: &BTreeMap<String, u32>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = format!(
        "berth chaos: {verdict}\nseed: {}\nfaults: {}\nlaunches: {}\ntasks at the end: {}\nstarts written by tasks: {}\n",
        summary.seed,
        counts(summary.faults),
        counts(&summary.launches),
        counts(&summary.outcomes),
        summary.starts,
    );
    if let Verdict::Violated { violations } = summary.verdict {
        for v in violations {
            let evidence = serde_json::to_string(v).unwrap_or_default();
            out.push_str(&format!("violation {}: {evidence}\n", v.kind()));
        }
    }
    if !summary.crash_points.is_empty() {
        let reached = summary.crash_points.values().filter(|r| **r).count();
        out.push_str(&format!(
            "crash points reached: {reached} of {} armed\n",
            summary.crash_points.len()
        ));
        for (point, reached) in summary.crash_points {
            let how = if *reached { "reached" } else { "NEVER REACHED" };
            out.push_str(&format!("crash point {point}: {how}\n"));
        }
    }
    for why in &summary.incomplete {
        out.push_str(&format!("evidence incomplete: {why}\n"));
    }
    for gap in summary.events_gaps {
        out.push_str(&format!("docker events gap: {gap}\n"));
    }
    for note in summary.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(&format!(
        "replay: {} (the schedule is replayed; timing is not)\nreport and evidence: {}\ntimeline: {}\n",
        summary.replay, summary.dir, summary.timeline
    ));
    if let Some(junit) = &summary.junit {
        out.push_str(&format!("junit: {junit}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_chaos::check::Violation;

    #[test]
    fn each_verdict_has_its_exit_code() {
        assert_eq!(exit_code(&Verdict::Held), 0);
        let violated = Verdict::Violated {
            violations: vec![Violation::Leaked {
                container: "c".into(),
            }],
        };
        assert_eq!(exit_code(&violated), 1);
        assert_eq!(exit_code(&Verdict::Inconclusive { why: "x".into() }), 2);
    }

    #[test]
    fn the_text_names_the_verdict_each_violation_and_the_replay() {
        let verdict = Verdict::Violated {
            violations: vec![Violation::Leaked {
                container: "mesos-a.b".into(),
            }],
        };
        let faults = BTreeMap::from([("kill_agent".to_owned(), 2)]);
        let notes = vec!["reboot is not injected by this harness yet".to_owned()];
        let crash_points = BTreeMap::from([
            ("docker-rm-after (hit 2)".to_owned(), false),
            ("record-Running-before (hit 1)".to_owned(), true),
        ]);
        let summary = Summary {
            verdict: &verdict,
            seed: 7,
            replay: "berth chaos run --seed 7".into(),
            faults: &faults,
            launches: BTreeMap::from([("accepted".to_owned(), 3)]),
            outcomes: BTreeMap::new(),
            starts: 3,
            crash_points: &crash_points,
            incomplete: vec!["the docker events watcher was not running: exited 1".into()],
            events_gaps: &["the watcher was gone from 10 ms".to_owned()],
            notes: &notes,
            dir: "/tmp/run".into(),
            timeline: "/tmp/run/timeline.svg".into(),
            junit: Some("/tmp/junit.xml".into()),
        };
        let text = text(&summary);
        for want in [
            "VIOLATED: 1 violation",
            "seed: 7",
            "faults: kill_agent 2",
            "violation leaked: ",
            "mesos-a.b",
            "replay: berth chaos run --seed 7 (the schedule is replayed; timing is not)",
            "note: reboot",
            "evidence incomplete: the docker events watcher was not running: exited 1\n",
            "docker events gap: the watcher was gone from 10 ms\n",
            "timeline: /tmp/run/timeline.svg\n",
            "junit: /tmp/junit.xml\n",
            "crash points reached: 1 of 2 armed",
            "crash point docker-rm-after (hit 2): NEVER REACHED",
            "crash point record-Running-before (hit 1): reached",
        ] {
            assert!(text.contains(want), "{want:?} in {text}");
        }
    }
}

//! A campaign's verdict as a JUnit XML file, for CI systems that show test reports. Pure.
//!
//! One `<testsuite>` per run (a replay writes one per replayed run); in each, one case per
//! invariant of the checker (each kind of violation: failed with the violations' evidence
//! when the run found that kind, skipped with the reason when the run proves nothing,
//! passed otherwise) and one case per crash point armed (passed when the agent reached
//! it, skipped when it never did).

use std::collections::BTreeMap;
use std::fmt::Write;

use berth_chaos::check::{Verdict, Violation, KINDS};

use super::xml;

/// The class of the invariants' cases.
pub const INVARIANT: &str = "berth.chaos.invariant";
/// The class of the crash points' cases.
pub const CRASH_POINT: &str = "berth.chaos.crash_point";
/// Why a crash point's case is skipped.
pub const NEVER_REACHED: &str = "armed, never reached";

/// One run, as its suite shows it.
#[derive(Debug)]
pub struct Run<'a> {
    /// The suite's name.
    pub name: String,
    /// The checker's verdict.
    pub verdict: &'a Verdict,
    /// Crash points armed (as "point (hit N)"), and whether each was reached.
    pub crash_points: &'a BTreeMap<String, bool>,
    /// How long the run took.
    pub length_ms: u64,
    /// What a reader needs to find or replay it (seed, directory, replay command).
    pub properties: Vec<(&'static str, String)>,
}

enum Outcome {
    Passed,
    Failed { message: String, body: String },
    Skipped(String),
}

struct Case {
    class: &'static str,
    name: String,
    outcome: Outcome,
}

/// The JUnit XML document of `runs`.
pub fn render(runs: &[Run]) -> String {
    let suites: Vec<(&Run, Vec<Case>)> = runs.iter().map(|r| (r, cases(r))).collect();
    let count = |f: fn(&Outcome) -> bool| -> usize {
        suites
            .iter()
            .map(|(_, cases)| cases.iter().filter(|c| f(&c.outcome)).count())
            .sum()
    };
    let failed = |o: &Outcome| matches!(o, Outcome::Failed { .. });
    let skipped = |o: &Outcome| matches!(o, Outcome::Skipped(_));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"berth chaos\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
        count(|_| true),
        count(failed),
        count(skipped),
        seconds(runs.iter().map(|r| r.length_ms).sum()),
    );
    for (run, cases) in &suites {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
            xml::attr(&run.name),
            cases.len(),
            cases.iter().filter(|c| failed(&c.outcome)).count(),
            cases.iter().filter(|c| skipped(&c.outcome)).count(),
            seconds(run.length_ms),
        );
        if !run.properties.is_empty() {
            out.push_str("    <properties>\n");
            for (name, value) in &run.properties {
                let _ = writeln!(
                    out,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    xml::attr(name),
                    xml::attr(value)
                );
            }
            out.push_str("    </properties>\n");
        }
        for case in cases {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
                case.class,
                xml::attr(&case.name)
            );
            match &case.outcome {
                Outcome::Passed => {
                    let _ = writeln!(out, "{open}/>");
                }
                Outcome::Failed { message, body } => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml::attr(message),
                        xml::attr(&case.name),
                        xml::text(body)
                    );
                }
                Outcome::Skipped(why) => {
                    let _ = writeln!(
                        out,
                        "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml::attr(why)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn cases(run: &Run) -> Vec<Case> {
    let mut out: Vec<Case> = KINDS
        .iter()
        .map(|kind| Case {
            class: INVARIANT,
            name: (*kind).to_owned(),
            outcome: invariant(run.verdict, kind),
        })
        .collect();
    out.extend(run.crash_points.iter().map(|(point, reached)| Case {
        class: CRASH_POINT,
        name: point.clone(),
        outcome: if *reached {
            Outcome::Passed
        } else {
            Outcome::Skipped(NEVER_REACHED.to_owned())
        },
    }));
    out
}

fn invariant(verdict: &Verdict, kind: &str) -> Outcome {
    match verdict {
        Verdict::Held => Outcome::Passed,
        Verdict::Inconclusive { why } => Outcome::Skipped(why.clone()),
        Verdict::Violated { violations } => {
            let found: Vec<String> = violations
                .iter()
                .filter(|v| v.kind() == kind)
                .map(evidence)
                .collect();
            match found.as_slice() {
                [] => Outcome::Passed,
                [one] => Outcome::Failed {
                    message: one.clone(),
                    body: one.clone(),
                },
                [first, ..] => Outcome::Failed {
                    message: format!("{first} (and {} more)", found.len() - 1),
                    body: found.join("\n"),
                },
            }
        }
    }
}

fn evidence(violation: &Violation) -> String {
    serde_json::to_string(violation).unwrap_or_else(|_| violation.kind().to_owned())
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::xml::read::{self, Element};

    fn run<'a>(verdict: &'a Verdict, crash_points: &'a BTreeMap<String, bool>) -> Run<'a> {
        Run {
            name: "seed 1".into(),
            verdict,
            crash_points,
            length_ms: 12_345,
            properties: vec![("seed", "1".into())],
        }
    }

    /// Each case's name and outcome: "passed", "failure: MESSAGE", "skipped: MESSAGE".
    fn outcomes(suite: &Element) -> Vec<(String, String)> {
        suite
            .all("testcase")
            .into_iter()
            .map(|case| {
                let name = case.attr("name").expect("name").to_owned();
                let outcome = match case.children.first() {
                    None => "passed".to_owned(),
                    Some(child) => format!(
                        "{}: {}",
                        child.name,
                        child.attr("message").expect("a message")
                    ),
                };
                (name, outcome)
            })
            .collect()
    }

    #[test]
    fn every_invariant_and_armed_point_is_a_case_with_its_outcome() {
        let points = BTreeMap::from([
            ("docker-start-before (hit 1)".to_owned(), true),
            ("record-Running-after (hit 2)".to_owned(), false),
        ]);
        let leaked = |name: &str| Violation::Leaked {
            container: name.into(),
        };
        let violated = Verdict::Violated {
            violations: vec![
                leaked("mesos-a"),
                Violation::AgentDied {
                    how: "signal 11".into(),
                },
                leaked("mesos-b"),
            ],
        };
        let inconclusive = Verdict::Inconclusive {
            why: "no task started".into(),
        };
        type Want = fn(&str) -> Option<String>;
        let cases: [(&str, &Verdict, Want); 3] = [
            ("held", &Verdict::Held, |_| None),
            ("violated", &violated, |kind| match kind {
                "leaked" => Some(
                    "failure: {\"violation\":\"leaked\",\"container\":\"mesos-a\"} (and 1 more)"
                        .into(),
                ),
                "agent_died" => {
                    Some("failure: {\"violation\":\"agent_died\",\"how\":\"signal 11\"}".into())
                }
                _ => None,
            }),
            ("inconclusive", &inconclusive, |_| {
                Some("skipped: no task started".into())
            }),
        ];
        for (name, verdict, want) in cases {
            let doc = render(&[run(verdict, &points)]);
            let root = read::parse(&doc).unwrap_or_else(|e| panic!("{name}: {e}\n{doc}"));
            let suites = root.all("testsuite");
            assert_eq!(suites.len(), 1, "{name}");
            let mut expected: Vec<(String, String)> = KINDS
                .iter()
                .map(|k| {
                    let outcome = want(k).unwrap_or_else(|| "passed".into());
                    ((*k).to_owned(), outcome)
                })
                .collect();
            expected.push(("docker-start-before (hit 1)".into(), "passed".into()));
            expected.push((
                "record-Running-after (hit 2)".into(),
                format!("skipped: {NEVER_REACHED}"),
            ));
            assert_eq!(outcomes(suites[0]), expected, "{name}");
            let counted = |attr: &str, prefix: &str| {
                let n = expected
                    .iter()
                    .filter(|(_, o)| o.starts_with(prefix))
                    .count();
                assert_eq!(
                    root.attr(attr),
                    Some(n.to_string().as_str()),
                    "{name} {attr}"
                );
                assert_eq!(suites[0].attr(attr), root.attr(attr), "{name} {attr}");
            };
            counted("tests", "");
            counted("failures", "failure");
            counted("skipped", "skipped");
            assert_eq!(suites[0].attr("time"), Some("12.345"));
        }
        // Every piece of evidence is in the failure's body.
        let doc = render(&[run(&violated, &points)]);
        let root = read::parse(&doc).expect("parses");
        let failure = root
            .all("failure")
            .into_iter()
            .find(|f| f.attr("type") == Some("leaked"))
            .expect("leaked fails");
        assert!(failure.text.contains("mesos-a") && failure.text.contains("mesos-b"));
    }

    #[test]
    fn whatever_the_evidence_says_the_file_parses_and_says_it_back() {
        let nasty = "<a href=\"x\">&amp;'</a>\u{1}\u{1b}[0m\r\n";
        let violated = Verdict::Violated {
            violations: vec![Violation::VerifyFailed {
                output: nasty.into(),
            }],
        };
        let points = BTreeMap::from([(format!("{nasty} (hit 1)"), false)]);
        let mut one = run(&violated, &points);
        one.name = nasty.into();
        one.properties = vec![("replay", nasty.into())];
        let doc = render(&[one]);
        let root = read::parse(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        let suite = &root.all("testsuite")[0];
        // What XML cannot carry reads back escaped; the rest as it was.
        let carried = "<a href=\"x\">&amp;'</a>\\u{1}\\u{1b}[0m\r\n";
        assert_eq!(suite.attr("name"), Some(carried));
        assert_eq!(suite.all("property")[0].attr("value"), Some(carried));
        let failure = &root.all("failure")[0];
        // The evidence is JSON, which carries every character: it reads back whole.
        let evidence: serde_json::Value =
            serde_json::from_str(failure.attr("message").expect("message")).expect("JSON");
        assert_eq!(evidence["output"], nasty);
        let point = root
            .all("testcase")
            .into_iter()
            .find(|c| c.attr("classname") == Some(CRASH_POINT))
            .expect("the crash point's case");
        assert_eq!(
            point.attr("name"),
            Some(format!("{carried} (hit 1)").as_str())
        );
    }

    #[test]
    fn a_replay_is_one_suite_per_run_and_no_runs_is_an_empty_file() {
        let points = BTreeMap::new();
        let held = Verdict::Held;
        let doc = render(&[run(&held, &points), run(&held, &points)]);
        let root = read::parse(&doc).expect("parses");
        assert_eq!(root.all("testsuite").len(), 2);
        assert_eq!(
            root.attr("tests"),
            Some((2 * KINDS.len()).to_string().as_str())
        );
        assert_eq!(root.attr("time"), Some("24.690"));
        let empty = read::parse(&render(&[])).expect("parses");
        assert_eq!(empty.attr("tests"), Some("0"));
        assert!(empty.children.is_empty());
    }
}

//! The timeline picture of a run (`timeline.svg`), as Jepsen draws its fault windows over
//! its histories: the faults as shaded bands over time, the agent's starts and exits,
//! and one lane per task coloured by the state the harness saw it in. Pure: the run's
//! journal and what it saw of the tasks go in, the SVG comes out.

use std::collections::BTreeMap;
use std::fmt::Write;

use berth_chaos::check::{Seen, State};
use berth_chaos::schedule::{self, Fault};

use super::journal::{Entry, Line, EVERYTHING_HEALED};
use super::xml;

/// A fault, from its injection to its heal (the same moment for one that is over at
/// once, as a kill of an executor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Its kind (`kill_agent`, ...).
    pub kind: String,
    /// When it was injected, from the run's start.
    pub from_ms: u64,
    /// When it was healed.
    pub to_ms: u64,
    /// What it was, for a reader hovering over it.
    pub what: String,
}

/// An agent start or exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// When, from the run's start.
    pub at_ms: u64,
    /// A start (else an exit).
    pub start: bool,
    /// What, for a reader hovering over it.
    pub what: String,
}

/// What the picture shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// Its title.
    pub title: String,
    /// How long the run was.
    pub length_ms: u64,
    /// The faults.
    pub faults: Vec<Window>,
    /// The agent's starts and exits.
    pub agent: Vec<Mark>,
    /// Each task and what was seen of it, in the order the lanes are drawn.
    pub tasks: Vec<(String, Vec<Seen>)>,
}

impl Picture {
    /// The picture of a run that ended at `end_ms` from its journal and what the harness
    /// saw of its tasks. A fault's window ends at its heal, or at the heal of everything
    /// after the workload; a crash point's when the agent aborted there; one never healed
    /// at the run's end.
    pub fn of_run(
        title: String,
        end_ms: u64,
        journal: &[Line],
        seen: &BTreeMap<String, Vec<Seen>>,
    ) -> Self {
        let length_ms = journal
            .iter()
            .map(|l| l.at_ms)
            .chain(seen.values().flatten().map(|s| s.at_ms))
            .fold(end_ms, u64::max);
        let mut faults = Vec::new();
        let mut agent = Vec::new();
        for (i, line) in journal.iter().enumerate() {
            match &line.entry {
                Entry::Fault { fault, target } => {
                    let json = serde_json::to_string(fault).unwrap_or_default();
                    let ends = |entry: &Entry| match entry {
                        Entry::Healed { what } => {
                            *what == json || what.starts_with(EVERYTHING_HEALED)
                        }
                        Entry::AgentExited { .. } => matches!(fault, Fault::CrashPoint { .. }),
                        _ => false,
                    };
                    let lasting =
                        schedule::lasts_ms(fault) > 0 || matches!(fault, Fault::CrashPoint { .. });
                    let to_ms = if lasting {
                        journal[i + 1..]
                            .iter()
                            .find(|l| ends(&l.entry))
                            .map_or(length_ms, |l| l.at_ms)
                    } else {
                        line.at_ms
                    };
                    faults.push(Window {
                        kind: kind_of(fault),
                        from_ms: line.at_ms,
                        to_ms,
                        what: match target {
                            Some(target) => format!("{json} on {target}"),
                            None => json,
                        },
                    });
                }
                Entry::AgentStarted {
                    pid,
                    agent_id,
                    crash_point,
                } => agent.push(Mark {
                    at_ms: line.at_ms,
                    start: true,
                    what: format!(
                        "agent started, pid {pid}{}{}",
                        crash_point
                            .as_ref()
                            .map(|p| format!(", armed with {p}"))
                            .unwrap_or_default(),
                        if agent_id.is_some() {
                            ""
                        } else {
                            ", did not serve"
                        }
                    ),
                }),
                Entry::AgentExited { status } => agent.push(Mark {
                    at_ms: line.at_ms,
                    start: false,
                    what: format!("agent exited by itself: {status}"),
                }),
                _ => {}
            }
        }
        let mut tasks: Vec<(String, Vec<Seen>)> =
            seen.iter().map(|(t, s)| (t.clone(), s.clone())).collect();
        // In the order they were first seen: a task's number sorts badly as text.
        tasks.sort_by_key(|(task, seen)| (seen.first().map(|s| s.at_ms), task.clone()));
        Picture {
            title,
            length_ms,
            faults,
            agent,
            tasks,
        }
    }
}

fn kind_of(fault: &Fault) -> String {
    serde_json::to_value(fault)
        .ok()
        .and_then(|v| v["fault"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 16.0;
/// The lanes share at most this much height: with many tasks they get thinner, and past
/// a few hundred they overlap into a band whose colours still show the states' share.
const LANES_MAX: f64 = 720.0;
const LANE_MAX: f64 = 16.0;
/// The narrowest a fault is drawn, so that one over at once still shows.
const FAULT_MIN: f64 = 2.0;
const LABEL_CHARS: usize = 26;

const STATES: [(State, &str, &str); 8] = [
    (State::Staging, "TASK_STAGING", "#c7c7c7"),
    (State::Starting, "TASK_STARTING", "#9ecae1"),
    (State::Running, "TASK_RUNNING", "#31a354"),
    (State::Killing, "TASK_KILLING", "#fd8d3c"),
    (State::Finished, "TASK_FINISHED", "#3182bd"),
    (State::Failed, "TASK_FAILED", "#de2d26"),
    (State::Killed, "TASK_KILLED", "#756bb1"),
    (State::Lost, "TASK_LOST", "#252525"),
];

/// In the order of `schedule::KINDS`, none a state's colour.
const FAULT_COLOURS: [&str; 11] = [
    "#e7298a", "#8c2d04", "#e6ab02", "#17becf", "#a6761d", "#bcbd22", "#fb9a99", "#8dd3c7",
    "#c51b7d", "#000080", "#01665e",
];

fn state_colour(state: State) -> (&'static str, &'static str) {
    STATES
        .iter()
        .find(|(s, _, _)| *s == state)
        .map_or(("?", "#000000"), |(_, name, colour)| (name, colour))
}

fn fault_colour(kind: &str) -> &'static str {
    schedule::KINDS
        .iter()
        .position(|k| *k == kind)
        .map_or("#777777", |i| FAULT_COLOURS[i % FAULT_COLOURS.len()])
}

/// The picture as an SVG document.
pub fn render(picture: &Picture) -> String {
    let length = picture.length_ms.max(1) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |ms: u64| LEFT + plot * (ms.min(picture.length_ms) as f64 / length);
    let n = picture.tasks.len();
    let lane = if n == 0 {
        ROW
    } else {
        (LANES_MAX / n as f64).min(LANE_MAX)
    };
    // A label every `every` lanes, so that labels never overlap.
    let every = (8.0 / lane).ceil().max(1.0) as usize;
    let font = (lane - 1.0).clamp(7.0, 11.0);
    let faults_y = 34.0;
    let agent_y = faults_y + ROW + 2.0;
    let lanes_y = agent_y + ROW + 4.0;
    let lanes_h = if n == 0 { ROW } else { lane * n as f64 };
    let axis_y = lanes_y + lanes_h + 4.0;
    let mut kinds: Vec<&str> = picture.faults.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let legend_items = STATES.len() + kinds.len();
    let per_row = 6;
    let legend_y = axis_y + 40.0;
    let height = legend_y + ROW * legend_items.div_ceil(per_row) as f64 + 10.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"monospace\" font-size=\"11\">"
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"10\" y=\"20\" font-size=\"14\">{}</text>",
        xml::text(&picture.title)
    );
    let _ = writeln!(
        out,
        "<text x=\"10\" y=\"{:.1}\">faults</text>\n<text x=\"10\" y=\"{:.1}\">agent</text>",
        faults_y + 12.0,
        agent_y + 12.0
    );

    out.push_str("<g class=\"tasks\">\n");
    if n == 0 {
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{:.1}\">no task was seen</text>",
            lanes_y + 12.0
        );
    }
    for (i, (task, seen)) in picture.tasks.iter().enumerate() {
        let y = lanes_y + lane * i as f64;
        let _ = writeln!(out, "<g class=\"lane\"><title>{}</title>", xml::text(task));
        if i % every == 0 {
            let label = if task.chars().count() > LABEL_CHARS {
                let tail: String = task
                    .chars()
                    .skip(task.chars().count() - (LABEL_CHARS - 1))
                    .collect();
                format!("…{tail}")
            } else {
                task.clone()
            };
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{font:.0}\" text-anchor=\"end\">{}</text>",
                LEFT - 4.0,
                y + lane / 2.0 + font * 0.35,
                xml::text(&label)
            );
        }
        for (j, s) in seen.iter().enumerate() {
            let from = s.at_ms;
            // Entries out of order are drawn as nothing, never as a negative width.
            let to = seen
                .get(j + 1)
                .map_or(picture.length_ms, |next| next.at_ms)
                .max(from);
            let (name, colour) = state_colour(s.state);
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {name} {} to {}{}</title></rect>",
                x(from),
                x(to) - x(from),
                (lane - 0.5).max(1.0),
                xml::text(task),
                seconds(from),
                seconds(to),
                s.reason
                    .as_ref()
                    .map(|r| format!(" ({})", xml::text(r)))
                    .unwrap_or_default(),
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n");

    out.push_str("<g class=\"faults\">\n");
    for fault in &picture.faults {
        let from = x(fault.from_ms);
        let width = (x(fault.to_ms.max(fault.from_ms)) - from).max(FAULT_MIN);
        let colour = fault_colour(&fault.kind);
        let _ = writeln!(
            out,
            "<g class=\"fault\"><rect x=\"{from:.1}\" y=\"{faults_y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.15\" pointer-events=\"none\"/><rect x=\"{from:.1}\" y=\"{faults_y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {} to {}: {}</title></rect></g>",
            axis_y - faults_y,
            ROW - 2.0,
            xml::text(&fault.kind),
            seconds(fault.from_ms),
            seconds(fault.to_ms.max(fault.from_ms)),
            xml::text(&fault.what),
        );
    }
    out.push_str("</g>\n");

    out.push_str("<g class=\"agent\">\n");
    for mark in &picture.agent {
        let colour = if mark.start { "#31a354" } else { "#de2d26" };
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{agent_y:.1}\" width=\"2\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {}</title></rect>",
            x(mark.at_ms) - 1.0,
            ROW - 2.0,
            seconds(mark.at_ms),
            xml::text(&mark.what)
        );
    }
    out.push_str("</g>\n");

    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{axis_y:.1}\" x2=\"{:.1}\" y2=\"{axis_y:.1}\" stroke=\"#000000\"/>",
        WIDTH - RIGHT
    );
    let step_ms = tick_ms(picture.length_ms);
    let mut tick = 0;
    while tick <= picture.length_ms {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{axis_y:.1}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#000000\"/><text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{3}s</text>",
            x(tick),
            axis_y + 4.0,
            axis_y + 16.0,
            tick / 1000
        );
        tick = match tick.checked_add(step_ms) {
            Some(next) => next,
            None => break,
        };
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time since the run started (s)</text>",
        LEFT + plot / 2.0,
        axis_y + 30.0
    );

    let legend = STATES
        .iter()
        .map(|(_, name, colour)| (*name, *colour))
        .chain(kinds.iter().map(|k| (*k, fault_colour(k))));
    for (i, (name, colour)) in legend.enumerate() {
        let lx = 10.0 + 195.0 * (i % per_row) as f64;
        let ly = legend_y + ROW * (i / per_row) as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 16.0,
            ly + 10.0,
            xml::text(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A step between ticks that makes at most a dozen of them, in whole seconds.
fn tick_ms(length_ms: u64) -> u64 {
    const STEPS_S: [u64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
    let step_s = STEPS_S
        .into_iter()
        .find(|s| length_ms / (s * 1000) <= 12)
        .unwrap_or_else(|| (length_ms / 12_000).max(1));
    step_s.saturating_mul(1000)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:01}s", ms / 1000, ms % 1000 / 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::xml::read::{self, Element};

    fn seen(at_ms: u64, state: State) -> Seen {
        Seen {
            at_ms,
            state,
            reason: state.is_terminal().then(|| "REASON_<&>".to_owned()),
        }
    }

    fn line(at_ms: u64, entry: Entry) -> Line {
        Line { at_ms, entry }
    }

    fn fault(at_ms: u64, fault: Fault) -> Line {
        line(
            at_ms,
            Entry::Fault {
                fault,
                target: None,
            },
        )
    }

    fn healed(at_ms: u64, fault: &Fault) -> Line {
        line(
            at_ms,
            Entry::Healed {
                what: serde_json::to_string(fault).expect("JSON"),
            },
        )
    }

    fn started(at_ms: u64, crash_point: Option<&str>) -> Line {
        line(
            at_ms,
            Entry::AgentStarted {
                pid: 7,
                agent_id: Some("a".into()),
                crash_point: crash_point.map(str::to_owned),
            },
        )
    }

    #[test]
    fn each_fault_is_a_window_from_its_injection_to_its_heal() {
        let pause = Fault::PauseAgent { for_ms: 500 };
        let kill = Fault::KillAgent { down_ms: 900 };
        let hangs = Fault::CliHangs {
            verb: "run".into(),
            for_ms: 1000,
        };
        let point = Fault::CrashPoint {
            point: "docker-start-before".into(),
            hit: 1,
        };
        let journal = vec![
            started(10, None),
            fault(1000, pause.clone()),
            healed(1500, &pause),
            fault(2000, kill.clone()),
            started(2900, None),
            healed(2950, &kill),
            fault(3000, Fault::KillExecutor { nth: 2 }),
            fault(4000, point.clone()),
            started(4100, Some("docker-start-before (hit 1)")),
            line(
                5000,
                Entry::AgentExited {
                    status: "signal: 6 (SIGABRT)".into(),
                },
            ),
            started(5200, None),
            fault(6000, hangs.clone()),
            // Another fault's heal, in words: not this one's.
            line(
                7000,
                Entry::Healed {
                    what: "restart_daemon: restarted; the decoys described again".into(),
                },
            ),
            // Never healed on its own: the heal of everything ends it.
            line(
                8000,
                Entry::Healed {
                    what: "everything".into(),
                },
            ),
            fault(8500, Fault::DiskFull { for_ms: 100 }),
            line(9000, Entry::Note { text: "end".into() }),
        ];
        let picture = Picture::of_run("t".into(), 0, &journal, &BTreeMap::new());
        let windows: Vec<(&str, u64, u64)> = picture
            .faults
            .iter()
            .map(|w| (w.kind.as_str(), w.from_ms, w.to_ms))
            .collect();
        assert_eq!(
            windows,
            [
                ("pause_agent", 1000, 1500),
                ("kill_agent", 2000, 2950),
                ("kill_executor", 3000, 3000),
                ("crash_point", 4000, 5000),
                ("cli_hangs", 6000, 8000),
                // Still on when the run ended.
                ("disk_full", 8500, 9000),
            ]
        );
        assert_eq!(picture.length_ms, 9000);
        let marks: Vec<(u64, bool)> = picture.agent.iter().map(|m| (m.at_ms, m.start)).collect();
        assert_eq!(
            marks,
            [
                (10, true),
                (2900, true),
                (4100, true),
                (5000, false),
                (5200, true)
            ]
        );
        assert!(picture.agent[2]
            .what
            .contains("armed with docker-start-before"));
    }

    #[test]
    fn lanes_are_in_the_order_the_tasks_were_first_seen() {
        let seen = BTreeMap::from([
            ("chaos-r-10".to_owned(), vec![seen(300, State::Running)]),
            ("chaos-r-9".to_owned(), vec![seen(200, State::Staging)]),
            ("chaos-r-1".to_owned(), vec![]),
        ]);
        let picture = Picture::of_run("t".into(), 0, &[], &seen);
        let order: Vec<&str> = picture.tasks.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(order, ["chaos-r-1", "chaos-r-9", "chaos-r-10"]);
        assert_eq!(picture.length_ms, 300);
        // The run's end, when later than anything seen, is the picture's.
        assert_eq!(Picture::of_run("t".into(), 900, &[], &seen).length_ms, 900);
    }

    fn picture(tasks: usize, faults: Vec<Window>, length_ms: u64) -> Picture {
        Picture {
            title: "berth chaos: seed 1 <held> & \"fine\"".into(),
            length_ms,
            faults,
            agent: vec![Mark {
                at_ms: 0,
                start: true,
                what: "agent started".into(),
            }],
            tasks: (0..tasks)
                .map(|i| {
                    (
                        format!("chaos-<r&'\"{i}>"),
                        vec![
                            seen(100, State::Staging),
                            seen(400, State::Running),
                            // Out of order: drawn as nothing.
                            seen(300, State::Finished),
                        ],
                    )
                })
                .collect(),
        }
    }

    fn window(kind: &str, from_ms: u64, to_ms: u64) -> Window {
        Window {
            kind: kind.into(),
            from_ms,
            to_ms,
            what: format!("{kind} <&>"),
        }
    }

    /// Every number in a geometric attribute, which must be finite and not negative.
    fn geometry(root: &Element) -> Vec<f64> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        while let Some(e) = stack.pop() {
            for (name, value) in &e.attrs {
                if ["x", "y", "x1", "x2", "y1", "y2", "width", "height"].contains(&name.as_str()) {
                    out.push(value.parse::<f64>().unwrap_or(f64::NAN));
                }
            }
            stack.extend(e.children.iter());
        }
        out
    }

    fn class<'a>(root: &'a Element, class: &str) -> Vec<&'a Element> {
        root.all("g")
            .into_iter()
            .filter(|g| g.attr("class") == Some(class))
            .collect()
    }

    #[test]
    fn the_picture_parses_and_has_a_band_per_fault_and_a_lane_per_task() {
        let cases = [
            (
                "a run",
                picture(3, vec![window("kill_agent", 1000, 2000)], 5000),
            ),
            ("no tasks, no faults", picture(0, vec![], 5000)),
            (
                "zero-length and backwards faults",
                picture(
                    2,
                    vec![
                        window("kill_executor", 3000, 3000),
                        window("pause_agent", 4000, 3500),
                        window("no_such_kind", 9000, 9500),
                    ],
                    5000,
                ),
            ),
            (
                "a zero-length run",
                picture(1, vec![window("reboot", 0, 0)], 0),
            ),
            (
                "200 tasks",
                picture(200, vec![window("cli_fails", 10, 20)], 3_600_000),
            ),
            ("3000 tasks", picture(3000, vec![], 1_800_000)),
            ("a run as long as time", picture(1, vec![], u64::MAX)),
        ];
        for (name, picture) in cases {
            let svg = render(&picture);
            let root = read::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(root.name, "svg", "{name}");
            assert_eq!(class(&root, "fault").len(), picture.faults.len(), "{name}");
            let lanes = class(&root, "lane");
            assert_eq!(lanes.len(), picture.tasks.len(), "{name}");
            for (lane, (task, _)) in lanes.iter().zip(&picture.tasks) {
                assert_eq!(lane.all("title")[0].text, *task, "{name}");
            }
            for n in geometry(&root) {
                assert!(n.is_finite() && n >= 0.0, "{name}: {n}");
            }
            let height: f64 = root
                .attr("height")
                .expect("height")
                .parse()
                .expect("number");
            assert!(height <= 1000.0, "{name}: {height} high");
            let ticks = root
                .all("text")
                .iter()
                .filter(|t| t.text.trim_end_matches('s').parse::<u64>().is_ok())
                .count();
            assert!(ticks >= 1, "{name}: no tick");
            assert!(ticks <= 16, "{name}: {ticks} ticks");
            assert!(
                root.all("text")[0].text.contains("<held> & \"fine\""),
                "{name}"
            );
            if picture.tasks.is_empty() {
                assert!(svg.contains("no task was seen"), "{name}");
            }
        }
    }

    #[test]
    fn with_200_tasks_the_labels_do_not_overlap() {
        let svg = render(&picture(200, vec![], 60_000));
        let root = read::parse(&svg).expect("parses");
        let ys: Vec<f64> = class(&root, "lane")
            .iter()
            .filter_map(|lane| {
                lane.all("text")
                    .first()
                    .and_then(|t| t.attr("y")?.parse().ok())
            })
            .collect();
        assert!(ys.len() >= 50, "{} labels", ys.len());
        assert!(ys.windows(2).all(|w| w[1] - w[0] >= 7.0), "{ys:?}");
    }
}

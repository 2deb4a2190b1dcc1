//! `docker events` as evidence: the lifecycle of the run's containers as the engine saw it,
//! whatever the agent recorded. Pure.
//!
//! The harness watches every container that carries a `berth.agent_id` label (an agent
//! that lost its store announces a new id mid-run) and keeps the raw lines; only the events
//! of the ids the run's agents announced are read back. Any line is tolerated: one that
//! does not read (torn by a kill, another format) is skipped and counted, never a panic.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The label that names the agent a container belongs to.
pub const AGENT_LABEL: &str = "berth.agent_id";
/// The label that names the berth container (the record) a container runs.
pub const CONTAINER_LABEL: &str = "berth.container_id";

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Created.
    Create,
    /// Started (again, if it had run before).
    Start,
    /// Its process ended.
    Die,
    /// Removed.
    Destroy,
}

/// One lifecycle event of one of the run's containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEvent {
    /// Milliseconds from the run's start.
    pub at_ms: u64,
    /// What happened.
    pub action: Action,
    /// Docker's id of the container.
    pub container: String,
    /// Its name.
    pub name: String,
    /// Its `berth.container_id` label, if it has one.
    pub berth_id: Option<String>,
    /// The task that label names, as the harness and the agent's store know it (filled in
    /// by the harness; `None` when nothing claims the label).
    #[serde(default)]
    pub task: Option<String>,
}

/// The events read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The run's containers' events, in the order Docker sent them.
    pub events: Vec<ContainerEvent>,
    /// Lines that did not read.
    pub unreadable: usize,
}

/// The time of the last event of `text` that reads, as `docker events --since` takes it
/// (`SECONDS.NANOSECONDS`): a watcher started again from there misses nothing the engine
/// still holds; the events it sends again are read once ([`parse`]).
pub fn since(text: &str) -> Option<String> {
    let nanos = text.lines().rev().find_map(|line| nanos(&read(line)?))?;
    Some(format!(
        "{}.{:09}",
        nanos / 1_000_000_000,
        nanos % 1_000_000_000
    ))
}

/// When an event happened, in nanoseconds since the epoch.
fn nanos(raw: &Raw) -> Option<u64> {
    raw.time_nano
        .or_else(|| raw.time.and_then(|s| s.checked_mul(1_000_000_000)))
}

/// Reads `docker events --format '{{json .}}'` output: the lifecycle events of containers
/// labelled with one of `agent_ids`, placed on the run's clock (`start_epoch_ms` is the
/// wall-clock time the run's clock started). Other events are left out; lines that do not
/// read are counted.
pub fn parse(text: &str, agent_ids: &BTreeSet<String>, start_epoch_ms: u64) -> Parsed {
    let mut parsed = Parsed::default();
    // A watcher started again sends again the events since the last one it read.
    let mut read_before = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match read(line) {
            Some(raw) => {
                let key = (nanos(&raw), raw.actor.id.clone(), raw.action.clone());
                if !read_before.insert(key) {
                    continue;
                }
                if let Some(event) = lifecycle(raw, agent_ids, start_epoch_ms) {
                    parsed.events.push(event);
                }
            }
            None => parsed.unreadable += 1,
        }
    }
    parsed
}

/// The fields of an event that matter here, as Docker spells them.
#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor", default)]
    actor: Actor,
    #[serde(default)]
    time: Option<u64>,
    #[serde(rename = "timeNano", default)]
    time_nano: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct Actor {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: std::collections::BTreeMap<String, String>,
}

fn read(line: &str) -> Option<Raw> {
    let raw: Raw = serde_json::from_str(line).ok()?;
    let when = raw.time_nano.is_some() || raw.time.is_some();
    (when && !raw.actor.id.is_empty()).then_some(raw)
}

fn lifecycle(
    raw: Raw,
    agent_ids: &BTreeSet<String>,
    start_epoch_ms: u64,
) -> Option<ContainerEvent> {
    if raw.kind != "container" {
        return None;
    }
    let action = match raw.action.as_str() {
        "create" => Action::Create,
        "start" => Action::Start,
        "die" => Action::Die,
        "destroy" => Action::Destroy,
        _ => return None,
    };
    let attributes = raw.actor.attributes;
    if !attributes
        .get(AGENT_LABEL)
        .is_some_and(|id| agent_ids.contains(id))
    {
        return None;
    }
    let epoch_ms = match (raw.time_nano, raw.time) {
        (Some(nano), _) => nano / 1_000_000,
        (None, Some(secs)) => secs.saturating_mul(1000),
        (None, None) => return None,
    };
    Some(ContainerEvent {
        at_ms: epoch_ms.saturating_sub(start_epoch_ms),
        action,
        container: raw.actor.id,
        name: attributes.get("name").cloned().unwrap_or_default(),
        berth_id: attributes.get(CONTAINER_LABEL).cloned(),
        task: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(action: &str, id: &str, agent: &str, nano: u64) -> String {
        serde_json::json!({
            "status": action, "id": id, "from": "img", "Type": "container", "Action": action,
            "Actor": {"ID": id, "Attributes": {
                "berth.agent_id": agent, "berth.container_id": "b1", "name": "mesos-a.b1",
            }},
            "scope": "local", "time": nano / 1_000_000_000, "timeNano": nano,
        })
        .to_string()
    }

    #[test]
    fn the_runs_lifecycle_events_are_read_and_anything_else_is_skipped() {
        let ours: BTreeSet<String> = ["a".to_owned(), "a2".to_owned()].into();
        let start = 1_000_000;
        let text = [
            line("create", "c1", "a", 1_000_100_000_000),
            line("start", "c1", "a", 1_000_200_000_000),
            // Not a lifecycle event.
            line("exec_create: sh", "c1", "a", 1_000_250_000_000),
            // Another agent's.
            line("start", "c9", "stranger", 1_000_260_000_000),
            // The agent's id after its store was lost.
            line("die", "c1", "a2", 1_000_300_000_000),
            "{\"Type\": \"network\", \"Action\": \"connect\", \"Actor\": {\"ID\": \"n\"}, \"time\": 1}"
                .to_owned(),
            "not json".to_owned(),
            "{\"Type\": \"container\", \"Action\": \"start\"".to_owned(),
            "{\"Type\": \"container\", \"Action\": \"start\", \"Actor\": {\"ID\": \"\"}, \"time\": 1}"
                .to_owned(),
            "[1, 2]".to_owned(),
            String::new(),
        ]
        .join("\n");
        let parsed = parse(&text, &ours, start);
        let got: Vec<(u64, Action, &str)> = parsed
            .events
            .iter()
            .map(|e| (e.at_ms, e.action, e.container.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (100, Action::Create, "c1"),
                (200, Action::Start, "c1"),
                (300, Action::Die, "c1")
            ]
        );
        assert_eq!(parsed.events[0].berth_id.as_deref(), Some("b1"));
        assert_eq!(parsed.events[0].name, "mesos-a.b1");
        assert_eq!(parsed.unreadable, 4);
    }

    #[test]
    fn an_event_with_only_seconds_or_from_before_the_run_still_reads() {
        let ours: BTreeSet<String> = ["a".to_owned()].into();
        let text = "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"c\",\"Attributes\":{\"berth.agent_id\":\"a\"}},\"time\":5}";
        let parsed = parse(text, &ours, 6_000);
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].at_ms, 0);
        assert_eq!(parsed.events[0].berth_id, None);
        assert_eq!(parse(text, &ours, 1_000).events[0].at_ms, 4_000);
    }

    #[test]
    fn an_event_sent_again_by_a_watcher_started_again_is_read_once() {
        let ours: BTreeSet<String> = ["a".to_owned()].into();
        let text = [
            line("create", "c1", "a", 1_000_100_000_000),
            line("start", "c1", "a", 1_000_200_000_000),
            // The watcher started again with --since the last event it read.
            line("start", "c1", "a", 1_000_200_000_000),
            line("die", "c1", "a", 1_000_300_000_000),
            // The same container started again: another event.
            line("start", "c1", "a", 1_000_400_000_000),
        ]
        .join("\n");
        let got: Vec<(u64, Action)> = parse(&text, &ours, 1_000_000)
            .events
            .iter()
            .map(|e| (e.at_ms, e.action))
            .collect();
        assert_eq!(
            got,
            [
                (100, Action::Create),
                (200, Action::Start),
                (300, Action::Die),
                (400, Action::Start)
            ]
        );
    }

    #[test]
    fn a_watcher_starts_again_from_the_last_event_that_reads() {
        let seconds_only = "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"c\"},\"time\":1700000000}";
        let cases = [
            (
                [
                    line("start", "c1", "x", 1_700_000_000_000_000_123),
                    line("die", "c1", "x", 1_700_000_001_500_000_000),
                ]
                .join("\n")
                    + "\n",
                Some("1700000001.500000000"),
            ),
            // A torn last line is not read.
            (
                line("start", "c1", "x", 1_700_000_000_000_000_123) + "\n{\"Type\": \"conta",
                Some("1700000000.000000123"),
            ),
            (seconds_only.to_owned(), Some("1700000000.000000000")),
            (String::new(), None),
            ("not json\n".to_owned(), None),
        ];
        for (text, want) in cases {
            assert_eq!(since(&text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn no_input_is_a_panic() {
        let ours: BTreeSet<String> = ["a".to_owned()].into();
        for text in [
            "\u{0}\u{ffff}",
            "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"c\",\"Attributes\":{\"berth.agent_id\":\"a\"}},\"timeNano\":18446744073709551615}",
            "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"c\",\"Attributes\":{\"berth.agent_id\":\"a\"}},\"time\":18446744073709551615}",
            "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"c\",\"Attributes\":{\"berth.agent_id\":7}},\"time\":1}",
            "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"c\"},\"time\":-1}",
        ] {
            let _ = parse(text, &ours, u64::MAX);
            let _ = parse(text, &ours, 0);
        }
    }
}

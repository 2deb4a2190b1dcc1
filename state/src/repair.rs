//! What opening a store puts right after a crash: a pure decision over what the scan saw.
//!
//! A phase is written as two values, its history record then the container's summary,
//! without a sled batch (a batch forces sled to write and sync its log on the spot, which
//! would cost one disk write per record and defeat group commit). Both are made durable
//! by the same flush before `record_phase` returns, but a crash between the two writes can
//! leave one without the other. Both carry the whole phase record, so either one can
//! restore the other, and nothing that was written is lost:
//!
//! | summary | history | repair |
//! |---|---|---|
//! | newest = history's newest | any | none |
//! | behind the history | newer record | summary from the history's newest |
//! | ahead of the history | missing its record | its record into the history |
//! | present | empty | its record into the history |
//! | missing (or quarantined) | present | summary rebuilt from the history |
//!
//! A record restored this way was never acknowledged to its caller, so the action it
//! announces never started; the write-ahead rule only says a phase's action *may* have
//! started once the phase is recorded, so keeping it is safe.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::record::{Phase, PhaseRecord, Summary};

/// What the open-time scan saw of one container (only values that decode).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Its summary.
    pub summary: Option<Summary>,
    /// Seq and time of its oldest phase record.
    pub first: Option<(u64, u64)>,
    /// Its newest phase record.
    pub last: Option<PhaseRecord>,
    /// Task id and time of its `Accepted` record.
    pub accepted: Option<(String, u64)>,
}

impl Seen {
    /// Takes one phase record into account (in any order).
    pub fn add(&mut self, record: PhaseRecord) {
        if let Phase::Accepted { task_id, .. } = &record.phase {
            self.accepted = Some((task_id.clone(), record.at_ms));
        }
        if self.first.is_none_or(|(seq, _)| record.seq < seq) {
            self.first = Some((record.seq, record.at_ms));
        }
        if self.last.as_ref().is_none_or(|l| record.seq > l.seq) {
            self.last = Some(record);
        }
    }
}

/// One write that puts a container right.
#[derive(Debug, Clone, PartialEq)]
pub enum Repair {
    /// Write this summary (it was missing or behind the history).
    Summary(Summary),
    /// Write this record into the history (the summary had it, the history did not).
    History(PhaseRecord),
}

impl Repair {
    /// The container it is about.
    pub fn container(&self) -> Uuid {
        match self {
            Repair::Summary(s) => s.container_id,
            Repair::History(r) => r.container_id,
        }
    }

    /// What it does, for a person.
    pub fn describe(&self) -> String {
        match self {
            Repair::Summary(s) => format!(
                "summary of {} set to its newest phase, {} (seq {})",
                s.container_id,
                s.last.phase.name(),
                s.last.seq
            ),
            Repair::History(r) => format!(
                "phase {} (seq {}) of {} restored to its history from its summary",
                r.phase.name(),
                r.seq,
                r.container_id
            ),
        }
    }
}

/// The repairs that make every container's summary and history agree.
pub fn plan(seen: &BTreeMap<Uuid, Seen>) -> Vec<Repair> {
    let mut out = Vec::new();
    for (&id, s) in seen {
        match (&s.summary, &s.last) {
            (Some(summary), Some(last)) if last.seq > summary.last.seq => {
                out.push(Repair::Summary(Summary {
                    last: last.clone(),
                    ..summary.clone()
                }));
            }
            (Some(summary), Some(last)) if last.seq < summary.last.seq => {
                out.push(Repair::History(summary.last.clone()));
            }
            (Some(_), Some(_)) => {}
            (Some(summary), None) => out.push(Repair::History(summary.last.clone())),
            (None, Some(last)) => {
                let (task_id, accepted_at_ms) = s
                    .accepted
                    .clone()
                    .unwrap_or_else(|| (String::new(), s.first.map_or(last.at_ms, |(_, at)| at)));
                out.push(Repair::Summary(Summary {
                    container_id: id,
                    task_id,
                    last: last.clone(),
                    accepted_at_ms,
                }));
            }
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: Uuid, seq: u64, phase: Phase) -> PhaseRecord {
        PhaseRecord {
            seq,
            at_ms: seq * 10,
            container_id: id,
            phase,
        }
    }

    fn accepted() -> Phase {
        Phase::Accepted {
            task_id: "web".into(),
            task_json: "{}".into(),
            kill_at_ms: None,
        }
    }

    fn summary(last: &PhaseRecord) -> Summary {
        Summary {
            container_id: last.container_id,
            task_id: "web".into(),
            last: last.clone(),
            accepted_at_ms: 10,
        }
    }

    #[test]
    fn every_row_of_the_table() {
        let id = Uuid::from_u128(1);
        let r1 = rec(id, 1, accepted());
        let r2 = rec(id, 2, Phase::Fetching);
        let seen = |summary: Option<&PhaseRecord>, history: &[&PhaseRecord]| {
            let mut s = Seen {
                summary: summary.map(summary_of),
                ..Seen::default()
            };
            for r in history {
                s.add((*r).clone());
            }
            BTreeMap::from([(id, s)])
        };
        fn summary_of(r: &PhaseRecord) -> Summary {
            summary(r)
        }
        // In step.
        assert_eq!(plan(&seen(Some(&r2), &[&r1, &r2])), []);
        // Summary behind (crash after the history record).
        assert_eq!(
            plan(&seen(Some(&r1), &[&r2, &r1])),
            [Repair::Summary(summary(&r2))]
        );
        // Summary ahead (the history record lost).
        assert_eq!(
            plan(&seen(Some(&r2), &[&r1])),
            [Repair::History(r2.clone())]
        );
        // No history at all.
        assert_eq!(plan(&seen(Some(&r1), &[])), [Repair::History(r1.clone())]);
        // No summary (crash between the first two writes, or it was quarantined).
        assert_eq!(
            plan(&seen(None, &[&r1, &r2])),
            [Repair::Summary(summary(&r2))]
        );
        // No summary and no Accepted record: the summary says so with an empty task id.
        assert_eq!(
            plan(&seen(None, &[&r2])),
            [Repair::Summary(Summary {
                container_id: id,
                task_id: String::new(),
                last: r2.clone(),
                accepted_at_ms: 20,
            })]
        );
        // Nothing but status updates: nothing to rebuild from.
        assert_eq!(plan(&seen(None, &[])), []);
    }

    #[test]
    fn descriptions_name_the_container_and_phase() {
        let id = Uuid::from_u128(7);
        let r = rec(id, 5, Phase::Removed);
        assert_eq!(
            Repair::History(r.clone()).describe(),
            format!("phase Removed (seq 5) of {id} restored to its history from its summary")
        );
        assert_eq!(Repair::Summary(summary(&r)).container(), id);
    }
}

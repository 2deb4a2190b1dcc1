//! The layouts schema 1 wrote, kept so that every store ever written still reads: a
//! schema-1 value is decoded through these types and upgraded in memory
//! ([`crate::codec::Stored`]); nothing is rewritten on disk until the store writes that
//! key again, in schema 2.
//!
//! Schema 1 differs from schema 2 in one thing: a task's state was stored as its name
//! (`TASK_KILLED`, or `KILLED` from the earliest berths) where schema 2 stores a
//! [`TaskState`]. These types are frozen: never change them.

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;
use uuid::Uuid;

use crate::codec::{self, CodecError, Stored};
use crate::record;
use crate::TaskState;

/// A state's name as schema 1 stored it, with the reason and message stored beside it.
/// A name that is no state was never written by a berth: an end is still an end, so it
/// reads as LOST, with Mesos's reason for an agent that lost track of a task, and a
/// message that keeps what was stored for whoever inspects the store.
fn read_state(name: &str, reason: String, message: String) -> (TaskState, String, String) {
    match TaskState::from_name(name) {
        Some(state) => (state, reason, message),
        None => (
            TaskState::Lost,
            UNREADABLE_STATE_REASON.to_owned(),
            format!(
                "the task ended, but its recorded state {name:?} is not one this berth knows (reason {reason:?}: {message})"
            ),
        ),
    }
}

/// Mesos's reason for a task whose agent lost track of it.
const UNREADABLE_STATE_REASON: &str = "REASON_AGENT_RESTARTED";

/// [`record::Identity`] in schema 1, frozen here so that a change to today's type can
/// never change how schema 1 reads.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct Identity {
    boot_id: String,
    pid: u32,
    start_ticks: u64,
}

impl From<Identity> for record::Identity {
    fn from(old: Identity) -> Self {
        record::Identity {
            boot_id: old.boot_id,
            pid: old.pid,
            start_ticks: old.start_ticks,
        }
    }
}

/// [`record::Phase`] in schema 1.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) enum Phase {
    Accepted {
        task_id: String,
        task_json: String,
        kill_at_ms: Option<u64>,
    },
    Fetching,
    Pulling {
        image: String,
    },
    ExecutorStarting {
        identity: Identity,
    },
    Running {
        container: String,
        pid: Option<u32>,
    },
    Killing {
        grace_ms: u64,
        requested_at_ms: u64,
        reason: String,
    },
    Terminated {
        state: String,
        reason: String,
        message: String,
        exit_code: Option<i32>,
        remove_at_ms: u64,
    },
    Removed,
    Decision {
        action: String,
        why: String,
    },
    RunningProcess {
        identity: Identity,
    },
    ExecutorContainerStarting {
        identity: Identity,
        container: String,
        started_at_ns: u64,
    },
}

impl From<Phase> for record::Phase {
    fn from(old: Phase) -> Self {
        match old {
            Phase::Accepted {
                task_id,
                task_json,
                kill_at_ms,
            } => record::Phase::Accepted {
                task_id,
                task_json,
                kill_at_ms,
            },
            Phase::Fetching => record::Phase::Fetching,
            Phase::Pulling { image } => record::Phase::Pulling { image },
            Phase::ExecutorStarting { identity } => record::Phase::ExecutorStarting {
                identity: identity.into(),
            },
            Phase::Running { container, pid } => record::Phase::Running { container, pid },
            Phase::Killing {
                grace_ms,
                requested_at_ms,
                reason,
            } => record::Phase::Killing {
                grace_ms,
                requested_at_ms,
                reason,
            },
            Phase::Terminated {
                state: name,
                reason,
                message,
                exit_code,
                remove_at_ms,
            } => {
                let (state, reason, message) = read_state(&name, reason, message);
                record::Phase::Terminated {
                    state,
                    reason,
                    message,
                    exit_code,
                    remove_at_ms,
                }
            }
            Phase::Removed => record::Phase::Removed,
            Phase::Decision { action, why } => record::Phase::Decision { action, why },
            Phase::RunningProcess { identity } => record::Phase::RunningProcess {
                identity: identity.into(),
            },
            Phase::ExecutorContainerStarting {
                identity,
                container,
                started_at_ns,
            } => record::Phase::ExecutorContainerStarting {
                identity: identity.into(),
                container,
                started_at_ns,
            },
        }
    }
}

/// [`record::PhaseRecord`] in schema 1.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct PhaseRecord {
    seq: u64,
    at_ms: u64,
    container_id: Uuid,
    phase: Phase,
}

impl From<PhaseRecord> for record::PhaseRecord {
    fn from(old: PhaseRecord) -> Self {
        record::PhaseRecord {
            seq: old.seq,
            at_ms: old.at_ms,
            container_id: old.container_id,
            phase: old.phase.into(),
        }
    }
}

/// [`record::StatusRecord`] in schema 1.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct StatusRecord {
    seq: u64,
    at_ms: u64,
    container_id: Uuid,
    report_seq: u64,
    state: String,
    reason: Option<String>,
    message: Option<String>,
    exit_code: Option<i32>,
    acknowledged: bool,
}

impl From<StatusRecord> for record::StatusRecord {
    fn from(old: StatusRecord) -> Self {
        let (state, reason, message) = match TaskState::from_name(&old.state) {
            Some(state) => (state, old.reason, old.message),
            None => {
                let (state, reason, message) = read_state(
                    &old.state,
                    old.reason.unwrap_or_default(),
                    old.message.unwrap_or_default(),
                );
                (state, Some(reason), Some(message))
            }
        };
        record::StatusRecord {
            seq: old.seq,
            at_ms: old.at_ms,
            container_id: old.container_id,
            report_seq: old.report_seq,
            state,
            reason,
            message,
            exit_code: old.exit_code,
            acknowledged: old.acknowledged,
        }
    }
}

/// [`record::Summary`] in schema 1.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct Summary {
    container_id: Uuid,
    task_id: String,
    last: PhaseRecord,
    accepted_at_ms: u64,
}

impl From<Summary> for record::Summary {
    fn from(old: Summary) -> Self {
        record::Summary {
            container_id: old.container_id,
            task_id: old.task_id,
            last: old.last.into(),
            accepted_at_ms: old.accepted_at_ms,
        }
    }
}

impl Stored for record::PhaseRecord {
    fn decode_older(_schema1: u16, payload: &[u8], limit: u32) -> Result<Self, CodecError> {
        codec::deserialize::<PhaseRecord>(payload, limit).map(Into::into)
    }
}

impl Stored for record::Summary {
    fn decode_older(_schema1: u16, payload: &[u8], limit: u32) -> Result<Self, CodecError> {
        codec::deserialize::<Summary>(payload, limit).map(Into::into)
    }
}

impl Stored for record::StatusRecord {
    fn decode_older(_schema1: u16, payload: &[u8], limit: u32) -> Result<Self, CodecError> {
        codec::deserialize::<StatusRecord>(payload, limit).map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SCHEMA_VERSION;

    /// `value` as schema 1 wrote it: its layout, under a schema-1 header.
    fn written_by_schema1<T: Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = codec::encode(value).expect("encode");
        bytes[4..6].copy_from_slice(&1u16.to_le_bytes());
        bytes
    }

    fn ended(state: &str) -> PhaseRecord {
        PhaseRecord {
            seq: 7,
            at_ms: 8,
            container_id: Uuid::from_u128(9),
            phase: Phase::Terminated {
                state: state.into(),
                reason: "REASON_COMMAND_EXITED".into(),
                message: "exited with status 0".into(),
                exit_code: Some(0),
                remove_at_ms: 10,
            },
        }
    }

    fn reported(state: &str) -> StatusRecord {
        StatusRecord {
            seq: 7,
            at_ms: 8,
            container_id: Uuid::from_u128(9),
            report_seq: 1,
            state: state.into(),
            reason: Some("REASON_EXECUTOR_REPORTED".into()),
            message: Some("it runs".into()),
            exit_code: None,
            acknowledged: true,
        }
    }

    /// Every variant, in schema 1's layout, reads as its schema-2 twin.
    #[test]
    fn every_phase_reads_as_its_twin() {
        let old_identity = || Identity {
            boot_id: "b".into(),
            pid: 3,
            start_ticks: 4,
        };
        let identity = || record::Identity {
            boot_id: "b".into(),
            pid: 3,
            start_ticks: 4,
        };
        let pairs = vec![
            (
                Phase::Accepted {
                    task_id: "t".into(),
                    task_json: "{}".into(),
                    kill_at_ms: Some(5),
                },
                record::Phase::Accepted {
                    task_id: "t".into(),
                    task_json: "{}".into(),
                    kill_at_ms: Some(5),
                },
            ),
            (Phase::Fetching, record::Phase::Fetching),
            (
                Phase::Pulling { image: "i".into() },
                record::Phase::Pulling { image: "i".into() },
            ),
            (
                Phase::ExecutorStarting {
                    identity: old_identity(),
                },
                record::Phase::ExecutorStarting {
                    identity: identity(),
                },
            ),
            (
                Phase::Running {
                    container: "c".into(),
                    pid: Some(6),
                },
                record::Phase::Running {
                    container: "c".into(),
                    pid: Some(6),
                },
            ),
            (
                Phase::Killing {
                    grace_ms: 1,
                    requested_at_ms: 2,
                    reason: "r".into(),
                },
                record::Phase::Killing {
                    grace_ms: 1,
                    requested_at_ms: 2,
                    reason: "r".into(),
                },
            ),
            (
                ended("TASK_FAILED").phase,
                record::Phase::Terminated {
                    state: TaskState::Failed,
                    reason: "REASON_COMMAND_EXITED".into(),
                    message: "exited with status 0".into(),
                    exit_code: Some(0),
                    remove_at_ms: 10,
                },
            ),
            (Phase::Removed, record::Phase::Removed),
            (
                Phase::Decision {
                    action: "a".into(),
                    why: "w".into(),
                },
                record::Phase::Decision {
                    action: "a".into(),
                    why: "w".into(),
                },
            ),
            (
                Phase::RunningProcess {
                    identity: old_identity(),
                },
                record::Phase::RunningProcess {
                    identity: identity(),
                },
            ),
            (
                Phase::ExecutorContainerStarting {
                    identity: old_identity(),
                    container: "c".into(),
                    started_at_ns: 7,
                },
                record::Phase::ExecutorContainerStarting {
                    identity: identity(),
                    container: "c".into(),
                    started_at_ns: 7,
                },
            ),
        ];
        for (old, new) in pairs {
            let name = new.name();
            let bytes = written_by_schema1(&PhaseRecord {
                seq: 1,
                at_ms: 2,
                container_id: Uuid::from_u128(3),
                phase: old,
            });
            let read: record::PhaseRecord = codec::decode(&bytes).expect(name);
            assert_eq!(read.phase, new, "{name}");
            assert_eq!((read.seq, read.at_ms), (1, 2), "{name}");
        }
    }

    /// Every state, by the name this berth wrote and by the bare one the earliest did.
    #[test]
    fn every_stored_name_reads_as_its_state() {
        for state in TaskState::ALL {
            let bare = state.name().strip_prefix("TASK_").expect("TASK_");
            for name in [state.name(), bare] {
                let phase: record::PhaseRecord =
                    codec::decode(&written_by_schema1(&ended(name))).expect(name);
                assert_eq!(
                    phase.phase,
                    record::Phase::Terminated {
                        state,
                        reason: "REASON_COMMAND_EXITED".into(),
                        message: "exited with status 0".into(),
                        exit_code: Some(0),
                        remove_at_ms: 10,
                    },
                    "{name}"
                );
                let status: record::StatusRecord =
                    codec::decode(&written_by_schema1(&reported(name))).expect(name);
                assert_eq!(
                    (
                        status.state,
                        status.reason.as_deref(),
                        status.message.as_deref()
                    ),
                    (state, Some("REASON_EXECUTOR_REPORTED"), Some("it runs")),
                    "{name}"
                );
                let summary: record::Summary = codec::decode(&written_by_schema1(&Summary {
                    container_id: Uuid::from_u128(9),
                    task_id: "t".into(),
                    last: ended(name),
                    accepted_at_ms: 1,
                }))
                .expect(name);
                assert_eq!(summary.last, phase, "{name}");
            }
        }
    }

    #[test]
    fn a_name_that_is_no_state_reads_as_lost_and_keeps_the_name() {
        for name in [
            "",
            "FINISHED\u{0}",
            "PAUSED_FOREVER",
            "finished",
            "TASK_GONE",
        ] {
            let phase: record::PhaseRecord =
                codec::decode(&written_by_schema1(&ended(name))).expect(name);
            let record::Phase::Terminated {
                state,
                reason,
                message,
                exit_code,
                ..
            } = phase.phase
            else {
                panic!("{name:?}: {:?}", phase.phase);
            };
            assert_eq!(
                (state, reason.as_str(), exit_code),
                (TaskState::Lost, UNREADABLE_STATE_REASON, Some(0)),
                "{name:?}"
            );
            for kept in [
                &format!("{name:?}"),
                "REASON_COMMAND_EXITED",
                "exited with status 0",
            ] {
                assert!(message.contains(kept), "{name:?}: {message}");
            }
            let status: record::StatusRecord =
                codec::decode(&written_by_schema1(&reported(name))).expect(name);
            assert_eq!(status.state, TaskState::Lost, "{name:?}");
            assert_eq!(status.reason.as_deref(), Some(UNREADABLE_STATE_REASON));
            let message = status.message.unwrap_or_default();
            assert!(message.contains(&format!("{name:?}")), "{message}");
        }
    }

    /// The same bytes under this build's header are not a schema-2 value: the version in
    /// the header, not a guess from the payload, chooses the layout.
    #[test]
    fn the_header_chooses_the_layout() {
        let bytes = codec::encode(&ended("TASK_KILLED")).expect("encode");
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), SCHEMA_VERSION);
        assert!(codec::decode::<record::PhaseRecord>(&bytes).is_err());
    }
}

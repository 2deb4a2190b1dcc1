//! What `berth state` prints: pure functions from records to tables or JSON.

use std::fmt::Write as _;

use serde::Serialize;
use uuid::Uuid;

use crate::error::{Corrupt, Lost};
use crate::record::{Phase, PhaseRecord, StatusRecord, Summary};
use crate::repair::Repair;

/// Why an id argument names no single container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// No container starts with it.
    #[error("no container id starts with {0:?}: `berth state ls` lists them")]
    NotFound(String),
    /// Several do.
    #[error("{0:?} matches {1} containers: give more of the id")]
    Ambiguous(String, usize),
}

/// Resolves a full id or a unique prefix of one, as `docker` does.
pub fn resolve(arg: &str, ids: &[Uuid]) -> Result<Uuid, IdError> {
    let arg_lower = arg.trim().to_ascii_lowercase();
    let matches: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| !arg_lower.is_empty() && id.to_string().starts_with(&arg_lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(IdError::NotFound(arg.to_owned())),
        many => Err(IdError::Ambiguous(arg.to_owned(), many.len())),
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC, seconds).
pub fn time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime_like(t)
}

fn humantime_like(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// One line of detail for a phase.
pub fn detail(phase: &Phase) -> String {
    match phase {
        Phase::Accepted {
            task_id,
            kill_at_ms,
            ..
        } => match kill_at_ms {
            Some(at) => format!("task {task_id}, killed at {} at the latest", time(*at)),
            None => format!("task {task_id}"),
        },
        Phase::Fetching | Phase::Removed => String::new(),
        Phase::Pulling { image } => format!("image {image}"),
        Phase::ExecutorStarting { identity } | Phase::RunningProcess { identity } => format!(
            "pid {} (start {} ticks, boot {})",
            identity.pid, identity.start_ticks, identity.boot_id
        ),
        Phase::ExecutorContainerStarting {
            identity,
            container,
            started_at_ns,
        } => format!(
            "container {} started {}, pid {} (start {} ticks, boot {})",
            container.get(..12).unwrap_or(container),
            time(started_at_ns / 1_000_000),
            identity.pid,
            identity.start_ticks,
            identity.boot_id
        ),
        Phase::Running { container, pid } => {
            let pid = pid.map_or("-".to_owned(), |p| p.to_string());
            if container.is_empty() {
                format!("pid {pid}")
            } else {
                format!("container {container}, pid {pid}")
            }
        }
        Phase::Killing {
            grace_ms, reason, ..
        } => format!("grace {grace_ms} ms: {reason}"),
        Phase::Terminated {
            state,
            reason,
            message,
            exit_code,
            remove_at_ms,
        } => {
            let code = exit_code.map_or(String::new(), |c| format!(", exit {c}"));
            format!(
                "{} ({reason}{code}): {message}; remove at {}",
                state.name(),
                time(*remove_at_ms)
            )
        }
        Phase::Decision { action, why } => format!("{action}: {why}"),
    }
}

/// `berth state ls`.
pub fn ls(summaries: &[Summary]) -> String {
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.container_id.to_string(),
                s.task_id.clone(),
                s.last.phase.name().to_owned(),
                time(s.last.at_ms),
                detail(&s.last.phase),
            ]
        })
        .collect();
    crate::table::render(&["CONTAINER", "TASK", "PHASE", "SINCE", "DETAIL"], &rows)
}

/// `berth state history ID`.
pub fn history(records: &[PhaseRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                time(r.at_ms),
                r.phase.name().to_owned(),
                detail(&r.phase),
            ]
        })
        .collect();
    crate::table::render(&["SEQ", "TIME", "PHASE", "DETAIL"], &rows)
}

/// `berth state show ID`.
pub fn show(summary: &Summary, records: &[PhaseRecord], statuses: &[StatusRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "container  {}", summary.container_id);
    let _ = writeln!(out, "task       {}", summary.task_id);
    let _ = writeln!(out, "accepted   {}", time(summary.accepted_at_ms));
    let _ = writeln!(
        out,
        "phase      {} since {}",
        summary.last.phase.name(),
        time(summary.last.at_ms)
    );
    out.push_str("\nhistory\n");
    out.push_str(&history(records));
    if !statuses.is_empty() {
        out.push_str("\nstatus updates\n");
        let rows: Vec<Vec<String>> = statuses
            .iter()
            .map(|s| {
                vec![
                    s.seq.to_string(),
                    time(s.at_ms),
                    s.state.name().to_owned(),
                    if s.acknowledged { "yes" } else { "no" }.to_owned(),
                    [s.reason.clone(), s.message.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": "),
                ]
            })
            .collect();
        out.push_str(&crate::table::render(
            &["SEQ", "TIME", "STATE", "ACKED", "REASON"],
            &rows,
        ));
    }
    out
}

/// Everything `verify` found.
#[derive(Debug, Clone, Copy)]
pub struct Findings<'a> {
    /// Values that do not decode.
    pub bad: &'a [Corrupt],
    /// Values in quarantine.
    pub quarantined: &'a [Corrupt],
    /// Acknowledged records missing from the store.
    pub lost: Option<Lost>,
    /// Torn phase pairs the agent will put right at its next start.
    pub repairs: &'a [Repair],
    /// What opening found and did (on the inspected copy; the agent does the same): torn
    /// last batches of the write-ahead log ignored, broken snapshots set aside, where
    /// records were lost.
    pub notes: &'a [String],
    /// Containers in the store.
    pub containers: usize,
}

/// `berth state verify`: the report, and whether everything is sound.
///
/// Corrupt, quarantined and lost records make it unsound. Repairs and notes are only
/// noted: they are what a crash leaves, and the agent deals with them at start.
pub fn verify(f: &Findings<'_>) -> (String, bool) {
    let mut out = String::new();
    let ok = f.bad.is_empty() && f.quarantined.is_empty() && f.lost.is_none();
    if ok {
        let _ = writeln!(out, "ok: {} containers, every record decodes", f.containers);
    }
    if let Some(lost) = f.lost {
        let _ = writeln!(
            out,
            "lost: the newest record is seq {} but seq {} had been made durable: a damaged byte in sled's log or in berth's write-ahead log (the notes say where); records written in between are gone",
            lost.newest, lost.durable
        );
    }
    if !f.bad.is_empty() || !f.quarantined.is_empty() {
        let rows: Vec<Vec<String>> = f
            .bad
            .iter()
            .map(|c| vec![c.key.clone(), "corrupt".to_owned(), c.reason.clone()])
            .chain(
                f.quarantined
                    .iter()
                    .map(|c| vec![c.key.clone(), "quarantined".to_owned(), c.reason.clone()]),
            )
            .collect();
        out.push_str(&crate::table::render(&["KEY", "STATUS", "REASON"], &rows));
        let _ = writeln!(
            out,
            "{} corrupt, {} quarantined (raw bytes kept: `berth state export` shows them)",
            f.bad.len(),
            f.quarantined.len()
        );
    }
    for r in f.repairs {
        let _ = writeln!(
            out,
            "note: at its next start the agent will put right: {}",
            r.describe()
        );
    }
    for n in f.notes {
        let _ = writeln!(out, "note: {n}");
    }
    (out, ok)
}

/// A quarantined or corrupt value as exported.
#[derive(Debug, Serialize)]
pub struct CorruptJson<'a> {
    /// Its key.
    pub key: &'a str,
    /// Why it is bad.
    pub reason: &'a str,
    /// Its bytes, in hex.
    pub bytes_hex: String,
}

impl<'a> From<&'a Corrupt> for CorruptJson<'a> {
    fn from(c: &'a Corrupt) -> Self {
        CorruptJson {
            key: &c.key,
            reason: &c.reason,
            bytes_hex: crate::keys::hex(&c.bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Identity;
    use crate::TaskState;

    const T0: u64 = 1_795_538_397_000; // 2026-11-24T16:39:57Z

    #[test]
    fn every_phase_has_its_detail() {
        let cases = [
            (
                Phase::Accepted {
                    task_id: "web".into(),
                    task_json: "{}".into(),
                    kill_at_ms: Some(T0),
                },
                "task web, killed at 2026-11-24T16:39:57Z at the latest",
            ),
            (
                Phase::Accepted {
                    task_id: "web".into(),
                    task_json: "{}".into(),
                    kill_at_ms: None,
                },
                "task web",
            ),
            (Phase::Fetching, ""),
            (
                Phase::Pulling {
                    image: "busybox:1".into(),
                },
                "image busybox:1",
            ),
            (
                Phase::ExecutorStarting {
                    identity: Identity {
                        boot_id: "b1".into(),
                        pid: 42,
                        start_ticks: 7,
                    },
                },
                "pid 42 (start 7 ticks, boot b1)",
            ),
            (
                Phase::ExecutorContainerStarting {
                    identity: Identity {
                        boot_id: "b1".into(),
                        pid: 42,
                        start_ticks: 7,
                    },
                    container: "0123456789abcdef0123".into(),
                    started_at_ns: 1_700_000_000_123_456_789,
                },
                "container 0123456789ab started 2023-11-14T22:13:20Z, pid 42 (start 7 ticks, boot b1)",
            ),
            (
                Phase::Running {
                    container: "mesos-a.b".into(),
                    pid: None,
                },
                "container mesos-a.b, pid -",
            ),
            (
                Phase::Running {
                    container: String::new(),
                    pid: Some(9),
                },
                "pid 9",
            ),
            (
                Phase::RunningProcess {
                    identity: Identity {
                        boot_id: "b1".into(),
                        pid: 43,
                        start_ticks: 8,
                    },
                },
                "pid 43 (start 8 ticks, boot b1)",
            ),
            (
                Phase::Killing {
                    grace_ms: 3000,
                    requested_at_ms: T0,
                    reason: "killed on request".into(),
                },
                "grace 3000 ms: killed on request",
            ),
            (
                Phase::Terminated {
                    state: TaskState::Failed,
                    reason: "REASON_COMMAND_EXITED".into(),
                    message: "exited with status 1".into(),
                    exit_code: Some(1),
                    remove_at_ms: T0,
                },
                "TASK_FAILED (REASON_COMMAND_EXITED, exit 1): exited with status 1; remove at 2026-11-24T16:39:57Z",
            ),
            (Phase::Removed, ""),
            (
                Phase::Decision {
                    action: "mark lost".into(),
                    why: "executor gone".into(),
                },
                "mark lost: executor gone",
            ),
        ];
        for (phase, text) in cases {
            assert_eq!(detail(&phase), text, "{}", phase.name());
        }
    }

    #[test]
    fn ls_and_history_print_tables() {
        let id = Uuid::from_u128(0xab);
        let rec = |seq, phase| PhaseRecord {
            seq,
            at_ms: T0,
            container_id: id,
            phase,
        };
        let records = [
            rec(
                1,
                Phase::Accepted {
                    task_id: "web".into(),
                    task_json: "{}".into(),
                    kill_at_ms: None,
                },
            ),
            rec(
                2,
                Phase::Pulling {
                    image: "nginx".into(),
                },
            ),
        ];
        let summary = Summary {
            container_id: id,
            task_id: "web".into(),
            last: records[1].clone(),
            accepted_at_ms: T0,
        };
        assert_eq!(
            ls(std::slice::from_ref(&summary)),
            "CONTAINER                             TASK  PHASE    SINCE                 DETAIL\n\
             00000000-0000-0000-0000-0000000000ab  web   Pulling  2026-11-24T16:39:57Z  image nginx\n"
        );
        assert_eq!(
            history(&records),
            "SEQ  TIME                  PHASE     DETAIL\n\
             1    2026-11-24T16:39:57Z  Accepted  task web\n\
             2    2026-11-24T16:39:57Z  Pulling   image nginx\n"
        );
        let shown = show(&summary, &records, &[]);
        assert!(
            shown.starts_with(&format!("container  {id}\ntask       web\n")),
            "{shown}"
        );
        assert!(!shown.contains("status updates"), "{shown}");
    }

    #[test]
    fn ids_resolve_by_unique_prefix() {
        let a = Uuid::parse_str("0b8f2a56-7c3e-4f1a-8d2b-6e9c1a4f3d20").expect("uuid");
        let b = Uuid::parse_str("0b8f9999-7c3e-4f1a-8d2b-6e9c1a4f3d20").expect("uuid");
        let ids = [a, b];
        assert_eq!(resolve("0b8f2", &ids), Ok(a));
        assert_eq!(resolve(&a.to_string().to_uppercase(), &ids), Ok(a));
        assert_eq!(
            resolve("0b8f", &ids),
            Err(IdError::Ambiguous("0b8f".into(), 2))
        );
        assert_eq!(resolve("ff", &ids), Err(IdError::NotFound("ff".into())));
        assert_eq!(resolve("", &ids), Err(IdError::NotFound("".into())));
    }

    #[test]
    fn times_print_as_utc() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_795_538_397_000), "2026-11-24T16:39:57Z");
        assert_eq!(time(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn verify_says_ok_or_lists() {
        let none = Findings {
            bad: &[],
            quarantined: &[],
            lost: None,
            repairs: &[],
            notes: &[],
            containers: 3,
        };
        let (text, ok) = verify(&none);
        assert_eq!(
            (text.as_str(), ok),
            ("ok: 3 containers, every record decodes\n", true)
        );
        let bad = Corrupt {
            key: "p/x/1".into(),
            raw_key: vec![],
            reason: "checksum mismatch".into(),
            bytes: vec![1],
        };
        let (text, ok) = verify(&Findings {
            bad: std::slice::from_ref(&bad),
            ..none
        });
        assert!(!ok);
        assert_eq!(
            text,
            "KEY    STATUS   REASON\np/x/1  corrupt  checksum mismatch\n\
             1 corrupt, 0 quarantined (raw bytes kept: `berth state export` shows them)\n"
        );
        let (text, ok) = verify(&Findings {
            quarantined: std::slice::from_ref(&bad),
            ..none
        });
        assert!(
            !ok && text.contains("quarantined  checksum mismatch"),
            "{text}"
        );
        // A pending repair is a note, not a failure.
        let id = Uuid::from_u128(9);
        let repair = Repair::History(PhaseRecord {
            seq: 4,
            at_ms: 0,
            container_id: id,
            phase: Phase::Fetching,
        });
        let notes = ["removed snap.1.generating".to_owned()];
        let (text, ok) = verify(&Findings {
            repairs: std::slice::from_ref(&repair),
            notes: &notes,
            ..none
        });
        assert!(ok, "{text}");
        assert!(
            text.ends_with("note: removed snap.1.generating\n"),
            "{text}"
        );
        let (text, ok) = verify(&Findings {
            lost: Some(Lost {
                newest: 7,
                durable: 9,
            }),
            ..none
        });
        assert!(!ok);
        assert!(
            text.starts_with("lost: the newest record is seq 7 but seq 9 had been made durable"),
            "{text}"
        );
    }
}

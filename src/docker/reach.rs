//! Whether the Docker engine answers: a small record fed by every call the handle makes,
//! and by a probe while no call has told for a while, so that an idle agent notices too.
//!
//! `berth health` and the metrics read it; a kill waiting on an absent daemon wakes when
//! it says the engine answers again. Reading it never calls Docker.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::error::DockerError;
use super::invoke::Finished;
use super::{argv, Docker};

/// How long an answer is taken to hold before the probe asks again.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// How often the probe asks while the engine does not answer: its return is what kills
/// and launches wait for.
const AWAY_PROBE: Duration = Duration::from_secs(1);

/// Whether the engine answers, as the last call that could tell found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// No call has told yet.
    Unknown,
    /// The engine answered.
    Answering {
        /// Since when (ms since the epoch): its first answer after it was away, or the
        /// first at all.
        since_ms: u64,
        /// When the latest call that found it answering started.
        seen: Instant,
    },
    /// The engine could not be reached.
    Unreachable {
        /// Since when (ms since the epoch): the first failure of this outage.
        since_ms: u64,
        /// What the latest failure said.
        error: String,
        /// When the latest call that failed so started.
        seen: Instant,
    },
}

/// What one call says about the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// It answered (whatever the answer).
    Answered,
    /// It could not be reached; why.
    Unreachable(String),
}

/// When a call started: what it says is placed at that time, not at its end.
#[derive(Debug, Clone, Copy)]
pub(super) struct Started {
    /// Since the epoch, for `since_ms`.
    ms: u64,
    /// For ordering and freshness.
    at: Instant,
}

impl Started {
    pub(super) fn now() -> Started {
        Started {
            ms: berth_state::now_ms(),
            at: Instant::now(),
        }
    }
}

/// The record once `seen` is known from a call that started at `now` (`now_ms` since the
/// epoch): the time of a condition is that of its first observation, the error the latest.
/// Observations are ordered by when their call started, and one that started before what
/// the record holds is left out, however late it ends: a probe that hung through a daemon
/// restart and timed out must not undo the answer of a call made after the restart. Pure.
pub fn observe(before: &Reachability, seen: Seen, now_ms: u64, now: Instant) -> Reachability {
    let latest = match before {
        Reachability::Unknown => None,
        Reachability::Answering { seen, .. } | Reachability::Unreachable { seen, .. } => {
            Some(*seen)
        }
    };
    if latest.is_some_and(|latest| now < latest) {
        return before.clone();
    }
    match (before, seen) {
        (Reachability::Answering { since_ms, .. }, Seen::Answered) => Reachability::Answering {
            since_ms: *since_ms,
            seen: now,
        },
        (_, Seen::Answered) => Reachability::Answering {
            since_ms: now_ms,
            seen: now,
        },
        (Reachability::Unreachable { since_ms, .. }, Seen::Unreachable(error)) => {
            Reachability::Unreachable {
                since_ms: *since_ms,
                error,
                seen: now,
            }
        }
        (_, Seen::Unreachable(error)) => Reachability::Unreachable {
            since_ms: now_ms,
            error,
            seen: now,
        },
    }
}

/// How long until the probe should ask the engine, given what is known at `now`. Pure.
pub fn probe_in(record: &Reachability, now: Instant) -> Duration {
    match record {
        Reachability::Unknown => Duration::ZERO,
        Reachability::Answering { seen, .. } => (*seen + FRESH_FOR).saturating_duration_since(now),
        Reachability::Unreachable { seen, .. } => {
            (*seen + AWAY_PROBE).saturating_duration_since(now)
        }
    }
}

/// What the CLI prints, in one version or another, when it could not get through to the
/// engine: no socket, nobody listening, no permission, or the engine hanging up mid-call
/// (`error during connect: ... EOF` while it shuts down). Lower case.
const NOT_THROUGH: &[&str] = &[
    "cannot connect to the docker daemon",
    "is the docker daemon running",
    "failed to connect to the docker api",
    "permission denied while trying to connect to the docker",
    "error during connect",
    "dial unix",
    "connection refused",
];

/// The line of a CLI's stderr that says the engine cannot be reached, if one does. What
/// the engine answered is an answer, even when it is about connections of its own
/// (`Error response from daemon: ... dial unix /run/containerd/...: connection refused`).
fn unreachable_line(stderr: &str) -> Option<&str> {
    stderr.lines().map(str::trim).find(|line| {
        let lower = line.to_ascii_lowercase();
        !lower.contains("error response from daemon")
            && NOT_THROUGH.iter().any(|words| lower.contains(words))
    })
}

/// Why a CLI call that exited unsuccessfully did not hear from the engine, if it did not:
/// it says it could not get through, or it was ended by a signal before it could tell
/// (nothing then says the engine answered). Pure.
fn not_heard(command: &str, code: Option<i32>, stderr: &str) -> Option<String> {
    match code {
        None => Some(format!("`{command}` was ended by a signal")),
        Some(_) => unreachable_line(stderr).map(str::to_owned),
    }
}

/// Why a failed call says that Docker itself is out of reach, if it does: the CLI could
/// not be started, it could not get through to the engine, or it was ended by a signal.
/// A call that hung is not: the engine may be busy with one container and still answer
/// for the others.
pub fn out_of_reach(error: &DockerError) -> Option<String> {
    match error {
        DockerError::Spawn { .. } => Some(error.to_string()),
        DockerError::Failed {
            command,
            code,
            stderr,
        } => not_heard(command, *code, stderr),
        // An answer that was no HTTP came from something, not from nobody.
        DockerError::Engine { source, .. } if source.kind() != std::io::ErrorKind::InvalidData => {
            Some(error.to_string())
        }
        _ => None,
    }
}

/// What a finished (or failed) CLI call says about the engine; `None` when it cannot tell
/// (a call that hung or printed too much).
fn seen(result: &Result<Finished, DockerError>) -> Option<Seen> {
    match result {
        Ok(done) if done.code == Some(0) => Some(Seen::Answered),
        Ok(done) => Some(match not_heard(&done.command, done.code, &done.stderr) {
            Some(why) => Seen::Unreachable(why),
            None => Seen::Answered,
        }),
        Err(e) => out_of_reach(e).map(Seen::Unreachable),
    }
}

/// What a request to the engine's API says about the engine: any answer, an error
/// status included, is one. Pure.
fn seen_asked<T>(result: &Result<T, DockerError>) -> Option<Seen> {
    match result {
        Ok(_) | Err(DockerError::Refused { .. }) => Some(Seen::Answered),
        Err(e) => out_of_reach(e).map(Seen::Unreachable),
    }
}

/// The record, shared by every clone of a [`Docker`] handle.
#[derive(Debug)]
pub(super) struct Reach(watch::Sender<Reachability>);

impl Reach {
    pub(super) fn new() -> Reach {
        Reach(watch::Sender::new(Reachability::Unknown))
    }

    /// Notes what a call that started at `started` saw; those waiting for the engine to
    /// answer are woken only when the record changed.
    fn saw(&self, started: Started, seen: Seen) {
        self.0.send_if_modified(|record| {
            let next = observe(record, seen, started.ms, started.at);
            let changed = next != *record;
            *record = next;
            changed
        });
    }

    /// Notes what the result of a call that started at `started` says, if it says
    /// anything.
    pub(super) fn note(&self, started: Started, result: &Result<Finished, DockerError>) {
        if let Some(seen) = seen(result) {
            self.saw(started, seen);
        }
    }

    /// Notes what a request to the engine's API that started at `started` says.
    pub(super) fn note_asked<T>(&self, started: Started, result: &Result<T, DockerError>) {
        if let Some(seen) = seen_asked(result) {
            self.saw(started, seen);
        }
    }
}

impl Docker {
    /// What is known of whether the engine answers. Calls nothing.
    pub fn reachability(&self) -> Reachability {
        self.reach.0.borrow().clone()
    }

    /// Resolves once the engine is known to answer (at once if it is).
    pub async fn answering(&self) {
        let mut record = self.reach.0.subscribe();
        // The sender lives in `self.reach`, borrowed here: the wait cannot fail.
        let _ = record
            .wait_for(|r| matches!(r, Reachability::Answering { .. }))
            .await;
    }

    /// Asks the engine for its version, only to learn whether it answers. A probe that
    /// does not finish within the version deadline counts as an engine that does not
    /// answer: a hung daemon is as unavailable as an absent one.
    async fn probe(&self) {
        let started = Started::now();
        let result = self
            .invoke(
                argv::version(),
                self.config.version_timeout,
                Vec::new(),
                &[],
            )
            .await;
        let seen = seen(&result).unwrap_or_else(|| {
            let why = result.err().map(|e| e.to_string()).unwrap_or_default();
            Seen::Unreachable(why)
        });
        self.reach.saw(started, seen);
    }

    /// Keeps the record fresh for as long as it runs: the engine is asked whenever no call
    /// has told for `FRESH_FOR`, and every `AWAY_PROBE` while it does not answer.
    pub async fn keep_reachability_fresh(self) {
        loop {
            match probe_in(&self.reachability(), Instant::now()) {
                Duration::ZERO => self.probe().await,
                due => tokio::time::sleep(due).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_keeps_the_time_it_was_first_seen() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(3);
        let answering = |since_ms, seen| Reachability::Answering { since_ms, seen };
        let away = |since_ms, error: &str, seen| Reachability::Unreachable {
            since_ms,
            error: error.into(),
            seen,
        };
        let gone = |why: &str| Seen::Unreachable(why.into());
        let cases = [
            (Reachability::Unknown, Seen::Answered, answering(2000, t1)),
            (
                Reachability::Unknown,
                gone("refused"),
                away(2000, "refused", t1),
            ),
            (answering(100, t0), Seen::Answered, answering(100, t1)),
            (
                answering(100, t0),
                gone("refused"),
                away(2000, "refused", t1),
            ),
            // The latest error, the outage's first time.
            (
                away(100, "refused", t0),
                gone("hung"),
                away(100, "hung", t1),
            ),
            (
                away(100, "refused", t0),
                Seen::Answered,
                answering(2000, t1),
            ),
        ];
        for (before, seen, want) in cases {
            let got = observe(&before, seen.clone(), 2000, t1);
            assert_eq!(got, want, "{before:?} + {seen:?}");
        }
    }

    #[test]
    fn a_call_that_started_before_what_the_record_holds_is_left_out() {
        let t0 = Instant::now();
        let (t1, t2) = (t0 + Duration::from_secs(1), t0 + Duration::from_secs(2));
        let answering = |since_ms, seen| Reachability::Answering { since_ms, seen };
        let away = |since_ms, error: &str, seen| Reachability::Unreachable {
            since_ms,
            error: error.into(),
            seen,
        };
        let gone = |why: &str| Seen::Unreachable(why.into());
        // (record, what a call saw, when that call started, the record after)
        let cases = [
            // A probe begun during a restart times out after a later call answered.
            (answering(100, t2), gone("hung"), t1, answering(100, t2)),
            // A call begun before the outage answers late.
            (
                away(100, "refused", t2),
                Seen::Answered,
                t1,
                away(100, "refused", t2),
            ),
            // Nor does an old answer move the freshness back.
            (answering(100, t2), Seen::Answered, t0, answering(100, t2)),
            // Begun together: the one that ends last tells.
            (
                answering(100, t1),
                gone("refused"),
                t1,
                away(2000, "refused", t1),
            ),
            (
                Reachability::Unknown,
                gone("hung"),
                t0,
                away(2000, "hung", t0),
            ),
        ];
        for (before, seen, started, want) in cases {
            let got = observe(&before, seen.clone(), 2000, started);
            assert_eq!(got, want, "{before:?} + {seen:?} from {started:?}");
        }
    }

    #[test]
    fn the_probe_asks_when_nothing_is_known_or_what_is_known_is_stale() {
        let t0 = Instant::now();
        let answering = Reachability::Answering {
            since_ms: 1,
            seen: t0,
        };
        let away = Reachability::Unreachable {
            since_ms: 1,
            error: "refused".into(),
            seen: t0,
        };
        let cases = [
            (Reachability::Unknown, 0, Duration::ZERO),
            (answering.clone(), 0, FRESH_FOR),
            (answering.clone(), 2, FRESH_FOR - Duration::from_secs(2)),
            (answering, 60, Duration::ZERO),
            (away.clone(), 0, AWAY_PROBE),
            (away, 2, Duration::ZERO),
        ];
        for (record, after_secs, want) in cases {
            let now = t0 + Duration::from_secs(after_secs);
            assert_eq!(
                probe_in(&record, now),
                want,
                "{record:?} after {after_secs}s"
            );
        }
    }

    #[test]
    fn a_call_tells_whether_the_engine_answered() {
        let finished = |code, stderr: &str| {
            Ok(Finished {
                command: "docker stop -t 0 x".into(),
                code,
                stdout: String::new(),
                stderr: stderr.into(),
            })
        };
        let gone = |why: &str| Some(Seen::Unreachable(why.into()));
        let refused =
            "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?";
        let no_socket = "failed to connect to the docker API at unix:///x.sock; check if the path is correct and if the daemon is running: dial unix /x.sock: connect: no such file or directory";
        let denied = "permission denied while trying to connect to the Docker daemon socket at unix:///x.sock: Get \"http://%2Fx.sock/v1.50/containers/json\": dial unix /x.sock: connect: permission denied";
        let denied_api =
            "permission denied while trying to connect to the docker API at unix:///x.sock";
        let hung_up =
            "error during connect: Post \"http://%2Fx.sock/v1.50/containers/x/stop?t=0\": EOF";
        let old_refused = "dial unix /x.sock: connect: connection refused";
        let containerd_away = "docker: Error response from daemon: failed to create task: dial unix /run/containerd/containerd.sock: connect: connection refused";
        let cases: Vec<(Result<Finished, DockerError>, Option<Seen>)> = vec![
            (finished(Some(0), ""), Some(Seen::Answered)),
            (
                finished(Some(1), "Error response from daemon: No such container: x"),
                Some(Seen::Answered),
            ),
            (
                finished(Some(1), &format!("warning: x\n{refused}\n")),
                gone(refused),
            ),
            (finished(Some(1), no_socket), gone(no_socket)),
            (finished(Some(1), denied), gone(denied)),
            (finished(Some(1), denied_api), gone(denied_api)),
            // The engine hung up: it is shutting down.
            (finished(Some(1), hung_up), gone(hung_up)),
            (finished(Some(1), old_refused), gone(old_refused)),
            // The engine answered, about a connection of its own.
            (finished(Some(125), containerd_away), Some(Seen::Answered)),
            // Ended before it could tell: nothing says the engine answered.
            (
                finished(None, ""),
                gone("`docker stop -t 0 x` was ended by a signal"),
            ),
            (
                Err(DockerError::Spawn {
                    command: "nodocker version".into(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                }),
                gone("could not start `nodocker version`: entity not found; check --docker"),
            ),
            (
                Err(DockerError::Failed {
                    command: "docker inspect x".into(),
                    code: Some(1),
                    stderr: hung_up.into(),
                }),
                gone(hung_up),
            ),
            (
                Err(DockerError::Failed {
                    command: "docker inspect x".into(),
                    code: None,
                    stderr: String::new(),
                }),
                gone("`docker inspect x` was ended by a signal"),
            ),
            (
                Err(DockerError::Timeout {
                    command: "docker inspect x".into(),
                    timeout: Duration::from_secs(30),
                }),
                None,
            ),
        ];
        for (result, want) in cases {
            let what = match &result {
                Ok(done) => format!("{:?} {:?}", done.code, done.stderr),
                Err(e) => e.to_string(),
            };
            assert_eq!(seen(&result), want, "{what}");
        }
    }
}

//! Killing: recorded first, then carried out on whatever the task is doing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use berth_state::{now_ms, Phase};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Containerizer, RequestError, TaskView};
use crate::docker::reach::out_of_reach;
use crate::docker::{DockerError, Reachability};
use crate::model::TaskState;

/// How long a Docker call of a kill may take beyond the grace it was given before it
/// counts as hung and is tried again (escalated).
const CALL_LIMIT: Duration = Duration::from_secs(5);
/// First wait before a failed stop is tried again; doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long a kill of a task whose end is already being carried out waits for that end
/// before it answers that the task is ending.
const ENDING_WAIT: Duration = Duration::from_secs(5);

/// A task killed on request: Mesos sets no reason.
pub const REASON_TASK_KILLED: &str = crate::model::reason::NONE;
pub use crate::model::reason::REASON_MAX_COMPLETION_TIME_REACHED;

/// A kill under way.
#[derive(Debug, Clone, PartialEq)]
pub struct KillRequest {
    /// Grace between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// The terminal state it ends in.
    pub state: TaskState,
    /// Machine-readable reason.
    pub reason: String,
    /// For a person.
    pub message: String,
}

impl Containerizer {
    /// Kills a container: the kill is recorded before anything is signalled. Refused
    /// while the agent recovers: recovery may be about to start a container again (a
    /// resumed launch), and a kill that stopped it just before would be undone.
    pub async fn kill(
        self: &Arc<Self>,
        id: Uuid,
        grace: Option<Duration>,
    ) -> Result<TaskView, RequestError> {
        if self.recovering() {
            return Err(RequestError::Recovering);
        }
        let entry = self
            .entry(id)
            .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        let grace = grace.unwrap_or(entry.grace);
        self.kill_with(
            id,
            KillRequest {
                grace,
                state: TaskState::Killed,
                reason: REASON_TASK_KILLED.to_owned(),
                message: "killed on request".into(),
            },
        )
        .await
    }

    pub(crate) async fn kill_with(
        self: &Arc<Self>,
        id: Uuid,
        request: KillRequest,
    ) -> Result<TaskView, RequestError> {
        let entry = self
            .entry(id)
            .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        let deciding = entry.deciding.lock().await;
        if entry.view.borrow().state.is_terminal() {
            return Ok(entry.view.borrow().clone());
        }
        let ending = entry
            .ending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(end) = ending {
            drop(deciding);
            let mut view = entry.view.subscribe();
            let ended =
                tokio::time::timeout(ENDING_WAIT, view.wait_for(|v| v.state.is_terminal())).await;
            return match ended {
                Ok(Ok(view)) => Ok(view.clone()),
                _ => Err(RequestError::Ending(end)),
            };
        }
        let under_way = entry.kill.borrow().clone();
        let request = match under_way {
            // A second kill drives the first again (it may be stuck on a failing Docker);
            // the first's grace and outcome stand.
            Some(first) => first,
            None => {
                self.record(
                    id,
                    Phase::Killing {
                        grace_ms: u64::try_from(request.grace.as_millis()).unwrap_or(u64::MAX),
                        requested_at_ms: now_ms(),
                        reason: request.message.clone(),
                    },
                )
                .await?;
                self.metrics.kill_recorded(&request.reason);
                entry.view.send_modify(|v| {
                    // Not refused: the view has not ended (seen under `deciding`), and
                    // every state short of an end can become KILLING.
                    let _ = v.advance(
                        TaskState::Killing,
                        Some(request.reason.clone()),
                        Some(request.message.clone()),
                    );
                });
                entry.kill.send_replace(Some(request.clone()));
                request
            }
        };
        drop(deciding);
        self.carry_out_kill(id, &request);
        let view = entry.view.borrow().clone();
        Ok(view)
    }

    /// Signals what runs. Called again when an executor reports RUNNING during a kill, and
    /// by a second kill: a container is stopped by one driver at a time, which such a call
    /// wakes to try again at once.
    pub(crate) fn carry_out_kill(self: &Arc<Self>, id: Uuid, request: &KillRequest) {
        let Some(entry) = self.entry(id) else { return };
        let docker_name = entry.view.borrow().docker_name.clone();
        let executor = entry
            .executor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match docker_name {
            Some(name) => {
                entry.kill_again.store(true, Ordering::Release);
                if entry.kill_driving.swap(true, Ordering::AcqRel) {
                    entry.kill_nudge.notify_one();
                    return;
                }
                let me = self.clone();
                let grace = request.grace;
                self.spawn_owned(async move {
                    loop {
                        entry.kill_again.store(false, Ordering::Release);
                        // A container not created yet is stopped when the executor
                        // reports it running: that report asks for this stop again.
                        let stopped = me
                            .stop_container(id, &name, grace, Some(&entry.kill_nudge), None)
                            .await;
                        if let Err(e) = stopped {
                            tracing::error!(%id, "the kill could not stop {name}: {e}");
                        }
                        entry.kill_driving.store(false, Ordering::Release);
                        // Asked again while finishing: go on, unless another driver took
                        // over in between.
                        if !entry.kill_again.load(Ordering::Acquire)
                            || entry.kill_driving.swap(true, Ordering::AcqRel)
                        {
                            return;
                        }
                    }
                });
            }
            None => {
                if let Some(identity) = executor {
                    signal_executor(id, &identity);
                }
            }
        }
    }

    /// Stops a container: `docker stop` with the grace, retried with backoff when it fails
    /// or hangs, and `docker kill` once the grace is over. Every retry is recorded in the
    /// task's history with its reason. Done when Docker says the container does not run
    /// (or is gone); with `attempts`, gives up after that many and says why. While Docker
    /// is out of reach the task's view says so, and as soon as Docker answers again the
    /// view says the kill's own message again and the next try comes without waiting out
    /// the backoff.
    pub(crate) async fn stop_container(
        &self,
        id: Uuid,
        name: &str,
        grace: Duration,
        nudge: Option<&tokio::sync::Notify>,
        attempts: Option<u32>,
    ) -> Result<(), String> {
        let escalate_at = Instant::now() + grace;
        let mut wait = RETRY_FIRST;
        let mut failed = 0u32;
        // Whether the view says the kill waits for Docker.
        let mut shown_away = false;
        loop {
            let left = escalate_at.saturating_duration_since(Instant::now());
            let escalated = failed > 0 && left.is_zero();
            let verb = if escalated {
                "docker kill"
            } else {
                "docker stop"
            };
            let call = async {
                if escalated {
                    tokio::time::timeout(CALL_LIMIT, self.docker.kill(name)).await
                } else {
                    tokio::time::timeout(left + CALL_LIMIT, self.docker.stop(name, left)).await
                }
            };
            let result = if shown_away {
                tokio::pin!(call);
                tokio::select! {
                    result = &mut call => result,
                    () = self.docker.answering() => {
                        // Docker answers, and this try may take the whole grace: the view
                        // says the kill's own message again now, as health says Docker is
                        // available.
                        self.show_kill_waiting(id, true, None);
                        shown_away = false;
                        call.await
                    }
                }
            } else {
                call.await
            };
            let (failure, error) = match result {
                Ok(Ok(()) | Err(DockerError::NoSuchContainer(_))) => {
                    self.show_kill_waiting(id, shown_away, None);
                    return Ok(());
                }
                Ok(Err(e)) => (e.to_string(), Some(e)),
                Err(_) => ("it did not return in time".to_owned(), None),
            };
            // A call that failed may still have done its work, or the container ended.
            let inspected = tokio::time::timeout(CALL_LIMIT, self.docker.inspect(name)).await;
            if let Ok(Ok(info)) = inspected {
                if info.is_none_or(|i| !i.state.is_live()) {
                    self.show_kill_waiting(id, shown_away, None);
                    return Ok(());
                }
            }
            // Read after the inspect, which gives a probe of a hung daemon time to tell.
            let away = docker_away(error.as_ref(), &self.docker.reachability());
            failed += 1;
            if attempts.is_some_and(|n| failed >= n) {
                self.show_kill_waiting(id, shown_away, None);
                return Err(format!(
                    "`{verb} {name}` failed {failed} times, the last time: {failure}"
                ));
            }
            let next = if Instant::now() + wait >= escalate_at {
                "docker kill"
            } else {
                "docker stop"
            };
            let why = match &away {
                Some(reason) => format!(
                    "`{verb} {name}` failed: Docker is unavailable ({reason}); `{next}` is tried as soon as it answers, or in {} (retry {failed})",
                    crate::duration::format(wait)
                ),
                None => format!(
                    "`{verb} {name}` failed ({failure}); `{next}` is tried in {} (retry {failed})",
                    crate::duration::format(wait)
                ),
            };
            tracing::warn!(%id, "{why}");
            let cause_changed = away.is_some() != shown_away;
            if recorded_retry(failed, verb != next || cause_changed) {
                let retry = Phase::Decision {
                    action: "retry kill".into(),
                    why,
                };
                match self.record(id, retry).await {
                    // Shown only once recorded.
                    Ok(()) => {
                        self.show_kill_waiting(id, shown_away, away.as_deref());
                        shown_away = away.is_some();
                    }
                    Err(e) => tracing::error!(%id, "cannot record the retry of a kill: {e}"),
                }
            }
            let waiting_since = Instant::now();
            let nudged = async {
                match nudge {
                    Some(nudge) => nudge.notified().await,
                    None => std::future::pending().await,
                }
            };
            let answering = async {
                match away {
                    Some(_) => self.docker.answering().await,
                    None => std::future::pending().await,
                }
            };
            let answered = tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = nudged => false,
                _ = answering => true,
            };
            if answered {
                if shown_away {
                    self.docker_answers(id).await;
                    shown_away = false;
                }
                // Not sooner than the first retry would be, so that a Docker flapping
                // between answering and not cannot make this spin.
                tokio::time::sleep_until(waiting_since + RETRY_FIRST).await;
            }
            wait = crate::backoff::doubled(wait, RETRY_MAX);
        }
    }

    /// Docker answers again while the task's view says its kill waits for it: the history
    /// says so, and the view its kill's own message again at once, as health says Docker
    /// is available, rather than once the next try is over (a `docker stop` waits out the
    /// grace).
    async fn docker_answers(&self, id: Uuid) {
        let answers = Phase::Decision {
            action: "retry kill".into(),
            why: "Docker answers again: the kill is tried again without waiting out the backoff"
                .into(),
        };
        if let Err(e) = self.record(id, answers).await {
            tracing::error!(%id, "cannot record that Docker answers again: {e}");
        }
        // Its own message is the recorded one: shown even if this did not go in.
        self.show_kill_waiting(id, true, None);
    }

    /// Shows in a KILLING task's view whether its kill waits for an unreachable Docker
    /// (`away`, with why), or its kill's own message again; nothing when the view already
    /// says so (`shown_away` and `away` both none).
    fn show_kill_waiting(&self, id: Uuid, shown_away: bool, away: Option<&str>) {
        if !shown_away && away.is_none() {
            return;
        }
        let Some(entry) = self.entry(id) else { return };
        let Some(kill) = entry.kill.borrow().as_ref().map(|k| k.message.clone()) else {
            return;
        };
        let message = killing_message(&kill, away);
        entry.view.send_modify(|v| {
            if v.state == TaskState::Killing {
                v.message = Some(message);
            }
        });
    }
}

/// Why a kill's failed call (`error`, or none when it did not return in time) waits for
/// Docker, if it does: the call could not reach it, or it hung while `record` (what
/// health says) finds the engine not answering, as a hung daemon does. A call that hung
/// while the engine answers the agent's other calls does not: the engine may be stuck on
/// this container only, and the task's message must not contradict health. Pure.
fn docker_away(error: Option<&DockerError>, record: &Reachability) -> Option<String> {
    match error {
        Some(DockerError::Timeout { .. }) | None => match record {
            Reachability::Unreachable { error: why, .. } => Some(why.clone()),
            Reachability::Unknown | Reachability::Answering { .. } => None,
        },
        Some(e) => out_of_reach(e),
    }
}

/// A KILLING task's message: its kill's, and while Docker is out of reach, that the kill
/// waits for it. Pure.
fn killing_message(kill: &str, away: Option<&str>) -> String {
    match away {
        None => kill.to_owned(),
        Some(reason) => format!(
            "{kill}; Docker is unavailable ({reason}): the kill is retried as soon as it answers"
        ),
    }
}

/// Whether a kill's `failed`-th retry goes into the task's history: the first ten, each
/// change (from `docker stop` to `docker kill`, or between Docker out of reach and not),
/// then every tenth, so that a Docker that never answers does not fill the disk with them
/// (each says its number). Pure.
fn recorded_retry(failed: u32, changed: bool) -> bool {
    failed <= 10 || changed || failed % 10 == 0
}

/// SIGTERM to a recorded executor, through a pidfd opened before its identity is checked,
/// so that a process that is not berth's is never signalled.
pub(crate) fn signal_executor(id: Uuid, identity: &berth_state::Identity) {
    let recorded = crate::identity::ProcessIdentity {
        boot_id: identity.boot_id.clone(),
        pid: identity.pid,
        start_ticks: identity.start_ticks,
    };
    if let Err(e) = crate::identity::signal(&recorded, rustix::process::Signal::TERM) {
        tracing::warn!(%id, "cannot signal the executor: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_first_retries_each_escalation_and_every_tenth() {
        let kept: Vec<u32> = (1..=40).filter(|&n| recorded_retry(n, false)).collect();
        assert_eq!(kept, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40]);
        assert!(recorded_retry(13, true));
    }

    #[test]
    fn a_kill_waits_for_docker_when_its_call_or_health_says_docker_is_unavailable() {
        let now = Instant::now();
        let answering = Reachability::Answering {
            since_ms: 1,
            seen: now,
        };
        let hung_probe = "`docker version` did not finish within 5s and was killed";
        let away = Reachability::Unreachable {
            since_ms: 1,
            error: hung_probe.into(),
            seen: now,
        };
        let refused =
            "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?";
        let failed = |stderr: &str| DockerError::Failed {
            command: "docker stop -t 0 x".into(),
            code: Some(1),
            stderr: stderr.into(),
        };
        let timeout = DockerError::Timeout {
            command: "docker stop -t 0 x".into(),
            timeout: Duration::from_secs(30),
        };
        let cases = [
            (Some(failed(refused)), answering.clone(), Some(refused)),
            // The daemon answered this call, whatever the record says.
            (
                Some(failed(
                    "Error response from daemon: cannot stop container x",
                )),
                away.clone(),
                None,
            ),
            // A hung daemon: the call did not return, and health says unavailable.
            (None, away.clone(), Some(hung_probe)),
            (Some(timeout), away.clone(), Some(hung_probe)),
            // Hung on this container while the engine answers others: the backoff.
            (None, answering, None),
            (None, Reachability::Unknown, None),
        ];
        for (error, record, want) in cases {
            assert_eq!(
                docker_away(error.as_ref(), &record).as_deref(),
                want,
                "{error:?} with {record:?}"
            );
        }
    }

    #[test]
    fn a_killing_task_says_while_its_kill_waits_for_docker() {
        let cases = [
            (None, "killed on request"),
            (
                Some("Cannot connect to the Docker daemon"),
                "killed on request; Docker is unavailable (Cannot connect to the Docker daemon): the kill is retried as soon as it answers",
            ),
        ];
        for (away, want) in cases {
            assert_eq!(killing_message("killed on request", away), want);
        }
    }
}

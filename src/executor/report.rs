//! Status reports to the agent, retried until acknowledged: the agent may be restarting.
//!
//! The executor waits for an absent agent `--recovery_timeout` in all, not per report:
//! the time starts at the first attempt that fails and is reset by any report the agent
//! acknowledges. Once it has passed, every report fails at once and the executor gives up,
//! leaving its task for the next agent start to decide about.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::{ExecutorError, ExecutorLaunch};
use crate::api::client::Client;
use crate::model::{Ack, StatusReport};

/// How long an executor asked to go (SIGTERM) tries its last report.
const LEAVING_WAIT: Duration = Duration::from_secs(10);

/// One request's deadline; the agent answers reports at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff between tries: doubling from the first to the last value.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Whether the agent has been answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    /// The last attempt was acknowledged (or none has been made).
    Answering,
    /// Attempts have failed since the last acknowledgement; give up at this instant.
    Silent {
        /// When the executor gives up.
        give_up: Instant,
    },
    /// The agent did not answer in time; no report is attempted any more.
    GaveUp,
}

/// The contact after an attempt at `now` that was `acknowledged` or not. Pure.
fn after_attempt(
    contact: Contact,
    acknowledged: bool,
    now: Instant,
    deadline: Duration,
) -> Contact {
    match (contact, acknowledged) {
        (Contact::GaveUp, _) => Contact::GaveUp,
        (_, true) => Contact::Answering,
        (Contact::Answering, false) => Contact::Silent {
            give_up: now + deadline,
        },
        (Contact::Silent { give_up }, false) if now >= give_up => Contact::GaveUp,
        (silent @ Contact::Silent { .. }, false) => silent,
    }
}

/// How long to wait before the next attempt, `None` to give up; `backoff` is the wait the
/// backoff is at. The last wait ends at the give-up instant, for one last attempt
/// there. Pure.
fn next_wait(contact: Contact, now: Instant, backoff: Duration) -> Option<Duration> {
    match contact {
        Contact::Answering => Some(backoff),
        Contact::Silent { give_up } => Some(backoff.min(give_up.saturating_duration_since(now))),
        Contact::GaveUp => None,
    }
}

/// Sends one executor's reports in order.
#[derive(Clone)]
pub(super) struct Reporter {
    client: Client,
    path: String,
    deadline: Duration,
    seq: Arc<AtomicU64>,
    /// Shared by every clone: the deadline is the executor's, not a report's.
    contact: Arc<Mutex<Contact>>,
    gave_up: Arc<watch::Sender<bool>>,
    /// Set by a SIGTERM: whoever sent it (`--recover=cleanup`, an operator) wants the
    /// executor gone once its task has ended, not waiting on an agent that may be gone.
    leaving: Arc<std::sync::atomic::AtomicBool>,
}

impl Reporter {
    pub(super) fn new(launch: &ExecutorLaunch) -> Reporter {
        Reporter::for_socket(
            launch.api_socket.clone(),
            launch.container_id,
            launch.report_deadline,
        )
    }

    fn for_socket(socket: PathBuf, container_id: Uuid, deadline: Duration) -> Reporter {
        Reporter {
            client: Client::new(socket),
            path: format!("/v1/executors/{container_id}/status"),
            deadline,
            seq: Arc::new(AtomicU64::new(1)),
            contact: Arc::new(Mutex::new(Contact::Answering)),
            gave_up: Arc::new(watch::Sender::new(false)),
            leaving: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Asked to go (SIGTERM): the last report is tried for [`LEAVING_WAIT`] only.
    pub(super) fn leave_soon(&self) {
        self.leaving.store(true, Ordering::SeqCst);
    }

    /// Sends the last report: until acknowledged or the deadline, or for
    /// [`LEAVING_WAIT`] once asked to go.
    pub(super) async fn send_last(
        &self,
        report: StatusReport,
        left: &'static str,
    ) -> Result<(), ExecutorError> {
        if !self.leaving.load(Ordering::SeqCst) {
            return self.send(report, left).await;
        }
        match tokio::time::timeout(LEAVING_WAIT, self.send(report, left)).await {
            Ok(sent) => sent,
            Err(_) => Err(self.gave_up_error(left)),
        }
    }

    /// The next report's sequence number.
    pub(super) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends in the background.
    pub(super) fn spawn_send(
        &self,
        report: StatusReport,
        left: &'static str,
    ) -> JoinHandle<Result<(), ExecutorError>> {
        let me = self.clone();
        tokio::spawn(async move { me.send(report, left).await })
    }

    /// Returns once the executor has given up on the agent (never, if it does not).
    pub(super) async fn given_up(&self) {
        let mut gave_up = self.gave_up.subscribe();
        if gave_up.wait_for(|g| *g).await.is_err() {
            // The sender lives as long as `self`: unreachable, but never a false alarm.
            std::future::pending::<()>().await;
        }
    }

    /// Why the executor gave up on the agent; `left` says what it leaves behind.
    pub(super) fn gave_up_error(&self, left: &'static str) -> ExecutorError {
        ExecutorError::AgentGone {
            socket: self.client.socket().to_owned(),
            waited: crate::duration::format(self.deadline),
            left,
        }
    }

    /// Sends until acknowledged, or until the agent has been silent for the deadline:
    /// then `Err` with `left` in its message.
    pub(super) async fn send(
        &self,
        report: StatusReport,
        left: &'static str,
    ) -> Result<(), ExecutorError> {
        let mut backoff = BACKOFF.0;
        loop {
            if self.contact() == Contact::GaveUp {
                return Err(self.gave_up_error(left));
            }
            let acknowledged = match self
                .client
                .post::<_, Ack>(&self.path, &report, REQUEST_TIMEOUT)
                .await
            {
                Ok(ack) if ack.seq == report.seq => true,
                Ok(ack) => {
                    tracing::warn!(sent = report.seq, acked = ack.seq, "mismatched ack");
                    false
                }
                Err(e) => {
                    tracing::debug!("report {} not delivered yet: {e}", report.seq);
                    false
                }
            };
            let now = Instant::now();
            let contact = {
                let mut contact = self.contact.lock().unwrap_or_else(|p| p.into_inner());
                *contact = after_attempt(*contact, acknowledged, now, self.deadline);
                *contact
            };
            if acknowledged {
                return Ok(());
            }
            let Some(wait) = next_wait(contact, now, backoff) else {
                self.gave_up.send_replace(true);
                return Err(self.gave_up_error(left));
            };
            tokio::time::sleep(wait).await;
            backoff = crate::backoff::doubled(backoff, BACKOFF.1);
        }
    }

    fn contact(&self) -> Contact {
        *self.contact.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_runs_from_the_first_silence_until_an_acknowledgement() {
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        let at = |secs| t0 + Duration::from_secs(secs);
        let silent = |secs| Contact::Silent { give_up: at(secs) };
        let table = [
            // (before, acknowledged, now, after)
            (Contact::Answering, true, at(0), Contact::Answering),
            (Contact::Answering, false, at(3), silent(13)),
            // A later failure, even of another report, does not move the instant.
            (silent(13), false, at(8), silent(13)),
            (silent(13), false, at(13), Contact::GaveUp),
            (silent(13), false, at(40), Contact::GaveUp),
            // Any acknowledgement before then starts afresh.
            (silent(13), true, at(12), Contact::Answering),
            // Giving up is for good.
            (Contact::GaveUp, true, at(50), Contact::GaveUp),
            (Contact::GaveUp, false, at(50), Contact::GaveUp),
        ];
        for (before, acknowledged, now, after) in table {
            assert_eq!(
                after_attempt(before, acknowledged, now, d),
                after,
                "{before:?} {acknowledged} {:?}",
                now - t0
            );
        }
    }

    #[test]
    fn waits_back_off_and_end_at_the_give_up_instant() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let silent = Contact::Silent {
            give_up: t0 + ms(1000),
        };
        let table = [
            (Contact::Answering, t0, ms(400), Some(ms(400))),
            (silent, t0, ms(400), Some(ms(400))),
            (silent, t0 + ms(800), ms(400), Some(ms(200))),
            (silent, t0 + ms(1000), ms(400), Some(ms(0))),
            (silent, t0 + ms(1500), ms(400), Some(ms(0))),
            (Contact::GaveUp, t0, ms(400), None),
        ];
        for (contact, now, backoff, want) in table {
            assert_eq!(next_wait(contact, now, backoff), want, "{contact:?}");
        }
    }

    fn report(seq: u64) -> StatusReport {
        StatusReport::running(seq, None, None)
    }

    #[tokio::test]
    async fn an_absent_agent_is_waited_for_once_not_once_per_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nobody = dir.path().join("nobody.sock");
        let reporter =
            Reporter::for_socket(nobody.clone(), Uuid::new_v4(), Duration::from_millis(300));

        let first = reporter
            .send(report(1), "it")
            .await
            .expect_err("nobody answers");
        assert!(
            matches!(&first, ExecutorError::AgentGone { socket, .. } if *socket == nobody),
            "{first}"
        );
        // Given up for good: the next report fails on its first poll, without a try or a
        // wait of its own.
        let second = tokio::time::timeout(Duration::ZERO, reporter.clone().send(report(2), "it"))
            .await
            .expect("fails at once");
        assert!(
            matches!(second, Err(ExecutorError::AgentGone { .. })),
            "{second:?}"
        );
        tokio::time::timeout(Duration::ZERO, reporter.given_up())
            .await
            .expect("the executor is told");
    }
}

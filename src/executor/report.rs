//! Status reports to the agent, retried until acknowledged: the agent may be restarting.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{ExecutorError, ExecutorLaunch};
use crate::api::client::Client;
use crate::api::wire::{Ack, StatusReport};

/// One request's deadline; the agent answers reports at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff between tries: doubling from the first to the last value.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Sends one executor's reports in order.
#[derive(Clone)]
pub(super) struct Reporter {
    client: Client,
    path: String,
    deadline: Duration,
    seq: Arc<AtomicU64>,
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
        }
    }

    /// The next report's sequence number.
    pub(super) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends in the background.
    pub(super) fn spawn_send(&self, report: StatusReport) -> JoinHandle<Result<(), ExecutorError>> {
        let me = self.clone();
        tokio::spawn(async move { me.send(report).await })
    }

    /// Sends until acknowledged or the deadline passes.
    pub(super) async fn send(&self, report: StatusReport) -> Result<(), ExecutorError> {
        let give_up = tokio::time::Instant::now() + self.deadline;
        let mut wait = BACKOFF.0;
        loop {
            match self
                .client
                .post::<_, Ack>(&self.path, &report, REQUEST_TIMEOUT)
                .await
            {
                Ok(ack) if ack.seq == report.seq => return Ok(()),
                Ok(ack) => tracing::warn!(sent = report.seq, acked = ack.seq, "mismatched ack"),
                Err(e) => tracing::debug!("report {} not delivered yet: {e}", report.seq),
            }
            if tokio::time::Instant::now() + wait > give_up {
                return Err(ExecutorError::Unacknowledged(report.state));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(BACKOFF.1);
        }
    }
}

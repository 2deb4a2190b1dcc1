//! An executor's status report applied: stored unacknowledged, decided under the task's
//! lock against a kill under way (RUNNING recorded, or the container stopped; an end
//! recorded), then acknowledged. Apart from the launch because reports come from the
//! executor, through the API, for as long as the task runs.

use std::sync::Arc;

use berth_state::{now_ms, Identity, Phase, StatusRecord};
use uuid::Uuid;

use super::ending::EndCause;
use super::kill::KillRequest;
use super::{Containerizer, RequestError};
use crate::model::{Ack, StatusReport, TaskState};

impl Containerizer {
    /// Applies an executor's report: recorded, then acknowledged.
    pub async fn report(
        self: &Arc<Self>,
        id: Uuid,
        report: StatusReport,
    ) -> Result<Ack, RequestError> {
        let entry = self
            .entry(id)
            .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        {
            let last = entry.last_report.lock().unwrap_or_else(|p| p.into_inner());
            if report.seq <= *last {
                return Ok(Ack { seq: report.seq });
            }
        }
        let status = self.store.record_status(StatusRecord {
            seq: 0,
            at_ms: 0,
            container_id: id,
            report_seq: report.seq,
            state: report.state,
            reason: report.reason.clone(),
            message: report.message.clone(),
            exit_code: report.exit_code,
            acknowledged: false,
        });
        let status = self.check_store(status.await)?;
        let deciding = entry.deciding.lock().await;
        let killing = entry.kill.borrow().clone();
        let ended = entry.view.borrow().state.is_terminal();
        if ended {
            if report.state == TaskState::Running {
                // The task ended before its container came up (an executor-mode container
                // released just before a decision): an ended task never runs again.
                let request = killing.unwrap_or_else(|| KillRequest {
                    grace: entry.grace,
                    state: TaskState::Killed,
                    reason: super::kill::REASON_TASK_KILLED.to_owned(),
                    message: "its task had already ended".to_owned(),
                });
                self.carry_out_kill(id, &request);
            }
        } else if report.state == TaskState::Running {
            if let Some(k) = &killing {
                // Started while a kill was under way: stop it now; no RUNNING.
                self.carry_out_kill(id, k);
            } else {
                let container = entry.view.borrow().docker_name.clone();
                self.record(id, running_phase(container, &report)).await?;
                let mut accepted_at_ms = None;
                entry.view.send_modify(|v| {
                    if v.advance(TaskState::Running, None, None).is_ok() {
                        v.pid = report.pid;
                        accepted_at_ms = Some(v.accepted_at_ms);
                    }
                });
                if let Some(at_ms) = accepted_at_ms {
                    self.metrics.task_running(at_ms, now_ms());
                }
            }
        } else if report.state.is_terminal() {
            let (state, reason, message) = match killing {
                Some(k) => (k.state, k.reason, k.message),
                None => (
                    report.state,
                    report.reason.clone().unwrap_or_default(),
                    report.message.clone().unwrap_or_default(),
                ),
            };
            self.terminate_decided(
                &entry,
                id,
                state,
                &reason,
                message,
                report.exit_code,
                EndCause::Decided,
            )
            .await?;
        }
        drop(deciding);
        self.check_store(self.store.acknowledge(id, status.seq).await)?;
        *entry.last_report.lock().unwrap_or_else(|p| p.into_inner()) = report.seq;
        Ok(Ack { seq: report.seq })
    }
}

/// The phase a RUNNING report is recorded as: a plain process with its full identity
/// when the executor sent one (this host's boot), else `Running`.
fn running_phase(container: Option<String>, report: &StatusReport) -> Phase {
    let boot_id = crate::identity::boot_id().ok();
    match (container, report.pid, report.start_ticks, boot_id) {
        (None, Some(pid), Some(start_ticks), Some(boot_id)) => Phase::RunningProcess {
            identity: Identity {
                boot_id,
                pid,
                start_ticks,
            },
        },
        (container, pid, ..) => Phase::Running {
            container: container.unwrap_or_default(),
            pid,
        },
    }
}

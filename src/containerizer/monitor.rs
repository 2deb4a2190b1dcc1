//! Executor mode's watch of a task's container: the agent itself says RUNNING and the
//! exit, since the container, not a process of the agent's, is the executor; what
//! carries the container's output says when to ask Docker. A re-adopted container whose
//! carrier died is carried on by the agent. Apart from `exits.rs`, which watches
//! executor processes, because here Docker is asked how the task ended.

use std::sync::Arc;
use std::time::Duration;

use berth_state::Identity;
use uuid::Uuid;

use super::Containerizer;
use crate::docker::ContainerState;
use crate::executor::{ExecutorLaunch, Work};
use crate::model::{StatusReport, TaskState};

impl Containerizer {
    /// Carries a re-adopted executor-mode container's output on, in the agent, from where
    /// the sandbox's files stand: its carrier died, and this one starts nothing, so that a
    /// kill that stopped the container just before is never undone. It dies with the
    /// agent; the next start does the same.
    pub(crate) fn carry_on(&self, id: Uuid, name: String) -> Carrier {
        let sandbox = self.settings.sandbox(id);
        let launch = ExecutorLaunch {
            container_id: id,
            api_socket: self.settings.api_socket.clone(),
            sandbox,
            docker_program: self.docker.config().program.clone(),
            docker_socket: self.docker.config().socket.clone(),
            grace: Duration::ZERO,
            report_deadline: self.settings.recovery_timeout,
            work: Work::Attach { name: name.clone() },
            rotation: self.settings.rotation,
        };
        Carrier::Agent(
            self.spawn_owned(async move { crate::executor::carry_on(&launch, &name).await }),
        )
    }

    /// In executor mode the agent itself watches the container: RUNNING once inspect
    /// shows it running, then its exit code once it has exited. What carries its output
    /// says when: the agent's child `berth executor`, the agent's own follow of a
    /// re-adopted container whose carrier died, or, for a container re-adopted while the
    /// old agent's carrier lives, that process through a pidfd. Docker is asked with a
    /// growing interval only until RUNNING is seen. If the carrier ends while the container
    /// still runs, nothing carries its output: the task is handed to the decision about
    /// dead executors.
    pub(crate) fn monitor_executor_container(
        self: Arc<Self>,
        id: Uuid,
        name: String,
        mut child: Option<Carrier>,
    ) {
        let owner = self.clone();
        owner.spawn_owned(async move {
            let Some(entry) = self.entry(id) else { return };
            let carrier = entry
                .executor
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let mut seq = *entry.last_report.lock().unwrap_or_else(|p| p.into_inner());
            // A KILLING task may not have been seen running: its container may start
            // after the kill's stop found it only created, and RUNNING is what stops it.
            let mut running_seen = entry.view.borrow().state == TaskState::Running;
            let own_child = child.is_some();
            let watched = own_child || carrier.is_some();
            let watched_carrier = carrier.clone();
            // The carrier's exit status, when it is the agent's own child: it says whether
            // the end came after Docker went away.
            let carried = async move {
                match (child.as_mut(), &watched_carrier) {
                    (Some(Carrier::Child(child)), _) => {
                        child.wait().await.ok().and_then(|s| s.code())
                    }
                    (Some(Carrier::Agent(following)), _) => match following.await {
                        Ok(Some(Ok(true))) => Some(crate::executor::CARRIED_THROUGH_OUTAGE),
                        Ok(Some(Ok(false))) => Some(0),
                        Ok(Some(Err(e))) => {
                            tracing::warn!(%id, "carrying the container's output: {e}");
                            None
                        }
                        // Stopped with the agent, or panicked.
                        Ok(None) | Err(_) => None,
                    },
                    (None, Some(carrier)) => {
                        super::exits::exited(id, carrier).await;
                        None
                    }
                    (None, None) => std::future::pending().await,
                }
            };
            tokio::pin!(carried);
            let mut poll = Duration::from_millis(100);
            let mut ended_early = false;
            let mut carrier_code = None;
            loop {
                let asking = !running_seen || !watched;
                tokio::select! {
                    code = &mut carried => {
                        carrier_code = code;
                        break;
                    }
                    () = tokio::time::sleep(poll), if asking => {
                        poll = crate::backoff::doubled(poll, Duration::from_secs(2));
                        match self.docker.inspect(&name).await {
                            Ok(Some(info)) if info.state == ContainerState::Running => {
                                if !running_seen {
                                    running_seen = true;
                                    seq += 1;
                                    let running = StatusReport::running(seq, info.pid, None);
                                    if let Err(e) = self.report(id, running).await {
                                        tracing::warn!(%id, "{e}");
                                    }
                                }
                            }
                            Ok(Some(info)) if info.state.is_live() || info.state == ContainerState::Created => {}
                            // Exited (before RUNNING was seen, perhaps), dead or gone.
                            Ok(_) => {
                                ended_early = true;
                                break;
                            }
                            Err(e) => tracing::debug!(%id, "inspect {name}: {e}"),
                        }
                    }
                }
            }
            if ended_early && own_child {
                // Reaped: the carrier returns once the container has ended.
                carrier_code = carried.await;
            }
            let info = match self.docker.inspect(&name).await {
                Ok(info) => info,
                Err(e) => {
                    tracing::warn!(%id, "cannot inspect {name} after its output process ended: {e}");
                    return self.hand_over(id, carrier);
                }
            };
            if info.as_ref().is_some_and(|i| i.state.is_live()) {
                return self.hand_over(id, carrier);
            }
            let exit = match info
                .filter(|i| i.started_at.is_some())
                .and_then(|i| i.exit_code)
            {
                Some(code) if carrier_code == Some(crate::executor::CARRIED_THROUGH_OUTAGE) => {
                    crate::executor::outcome::Exit::AfterOutage { code }
                }
                Some(code) => crate::executor::outcome::Exit::Container { code },
                None => crate::executor::outcome::Exit::RunFailed {
                    code: None,
                    stderr_tail: String::new(),
                },
            };
            let report = crate::executor::outcome::terminal_report(seq + 1, &exit);
            if let Err(e) = self.report(id, report).await {
                tracing::warn!(%id, "{e}");
            }
        });
    }

    /// The container's watcher cannot say how it ended: the decision about dead
    /// executors looks at it.
    fn hand_over(&self, id: Uuid, carrier: Option<Identity>) {
        match carrier {
            Some(carrier) => self.executor_exited(id, carrier),
            None => {
                tracing::error!(%id, "no output process was recorded; the task is decided at the next start")
            }
        }
    }
}

/// What carries an executor-mode container's output, and says by ending when to ask
/// Docker how the container ended.
pub(crate) enum Carrier {
    /// The agent's own child `berth executor`.
    Child(tokio::process::Child),
    /// The agent itself, for a re-adopted container whose carrier died; whether the end
    /// came after Docker went away.
    Agent(tokio::task::JoinHandle<Option<Result<bool, crate::executor::ExecutorError>>>),
}

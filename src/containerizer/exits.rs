//! Executors watched while the agent serves. An executor that exits before its task
//! ended died (it reports the end and waits for the answer before it exits), and the
//! agent must not go on showing the task as running: its exit is handed to whoever
//! decides a task's fate (`crate::recovery::serving`), through [`Containerizer::exits`].
//!
//! No polling: an executor the agent spawned is its child, whose exit `wait` reports; one
//! it re-adopted after a restart is watched through a pidfd, opened before its identity is
//! checked, which becomes readable when that very process exits.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use berth_state::Identity;
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::process::Child;
use uuid::Uuid;

use super::Containerizer;
use crate::identity::{Liveness, ProcessIdentity};

/// An executor's exit, as handed to the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorExit {
    /// The container (launch) whose executor exited.
    pub container_id: Uuid,
    /// The executor that exited: the decision kills what is left of its session.
    pub executor: Identity,
}

impl Containerizer {
    /// Reaps the executor child when it exits, and hands the exit on.
    pub(crate) fn watch_child(self: &Arc<Self>, id: Uuid, executor: Identity, mut child: Child) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let _ = child.wait().await;
            if let Some(c) = me.upgrade() {
                c.executor_exited(id, executor);
            }
        });
    }

    /// Watches a re-adopted executor, which is not the agent's child, through a pidfd.
    pub(crate) fn watch_adopted(self: &Arc<Self>, id: Uuid, executor: Identity) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Err(e) = exited(&executor).await {
                tracing::warn!(%id, pid = executor.pid, "cannot watch the executor, taking it for gone: {e}");
            }
            if let Some(c) = me.upgrade() {
                c.executor_exited(id, executor);
            }
        });
    }

    pub(super) fn executor_exited(&self, id: Uuid, executor: Identity) {
        let ended = self
            .entry(id)
            .is_none_or(|e| e.view.borrow().state.is_terminal());
        if ended {
            return;
        }
        tracing::warn!(%id, pid = executor.pid, "the task's executor exited before the task's end was reported");
        let exit = ExecutorExit {
            container_id: id,
            executor,
        };
        if self.exits.send(exit).is_err() {
            tracing::error!(%id, "nothing decides executor exits; the task is decided at the next start");
        }
    }
}

/// Resolves once the recorded process has exited (at once when it is already gone or its
/// pid belongs to another process now).
pub(super) async fn exited(executor: &Identity) -> std::io::Result<()> {
    let Some(pid) = i32::try_from(executor.pid).ok().and_then(Pid::from_raw) else {
        return Ok(());
    };
    let fd: OwnedFd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let recorded = ProcessIdentity {
        boot_id: executor.boot_id.clone(),
        pid: executor.pid,
        start_ticks: executor.start_ticks,
    };
    // Checked after the pidfd is open: if it is the recorded process now, the fd is it.
    match crate::identity::check(&recorded).map_err(std::io::Error::other)? {
        Liveness::Alive => {}
        Liveness::Gone | Liveness::Reused | Liveness::Rebooted => return Ok(()),
    }
    let fd = register(fd)?;
    let _ready = fd.readable().await?;
    Ok(())
}

#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the pidfd, so it stays open for as long as it is
    // registered and is closed only after being deregistered, when the AsyncFd drops.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}

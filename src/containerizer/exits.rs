//! Executors watched while the agent serves. An executor that exits before its task
//! ended died (it reports the end and waits for the answer before it exits), and the
//! agent must not go on showing the task as running: its exit is handed to whoever
//! decides a task's fate (`crate::recovery::serving`), through `Containerizer::exits`.
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
    /// Waits for the executor child to exit, sweeps its session, reaps it, and hands the
    /// exit on. The sweep comes before the reaping: while the executor is an unreaped
    /// zombie its pid, which is its session's id, cannot be given to another process, so
    /// the sweep cannot reach a stranger's session.
    pub(crate) fn watch_child(self: &Arc<Self>, id: Uuid, executor: Identity, mut child: Child) {
        if let Some(entry) = self.entry(id) {
            entry
                .watched
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let me = Arc::downgrade(self);
        self.spawn_owned(async move {
            exited(id, &executor).await;
            sweep(id, &executor);
            let _ = child.wait().await;
            if let Some(c) = me.upgrade() {
                c.executor_exited(id, executor);
            }
        });
    }

    /// Watches the executor recorded for a restored task, if one is.
    pub(crate) fn watch_recorded_executor(self: &Arc<Self>, id: Uuid) {
        let executor = self
            .entry(id)
            .and_then(|e| e.executor.lock().unwrap_or_else(|p| p.into_inner()).clone());
        if let Some(executor) = executor {
            self.watch_adopted(id, executor);
        }
    }

    /// Watches a re-adopted executor, which is not the agent's child, through a pidfd.
    /// Its session is swept as soon as it exits: while a member of the session lives, the
    /// session's id cannot be given to another process.
    pub(crate) fn watch_adopted(self: &Arc<Self>, id: Uuid, executor: Identity) {
        let watched = self
            .entry(id)
            .is_none_or(|e| e.watched.swap(true, std::sync::atomic::Ordering::AcqRel));
        if watched {
            return;
        }
        let me = Arc::downgrade(self);
        self.spawn_owned(async move {
            exited(id, &executor).await;
            sweep(id, &executor);
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
        self.metrics.executor_died();
        let exit = ExecutorExit {
            container_id: id,
            executor,
        };
        if self.exits.send(exit).is_err() {
            tracing::error!(%id, "nothing decides executor exits; the task is decided at the next start");
        }
    }
}

impl Containerizer {
    /// SIGKILLs what a dead executor left in its session, for a decision that proved the
    /// session the task's.
    pub fn kill_session_of(&self, id: Uuid, executor: &Identity) {
        sweep(id, executor);
    }
}

/// SIGKILLs what an exited executor left in its session: its `docker run`, a plain task's
/// process group, anything the task started that stayed in the session. A task's
/// processes never outlive its executor.
fn sweep(id: Uuid, executor: &Identity) {
    let executor = ProcessIdentity {
        boot_id: executor.boot_id.clone(),
        pid: executor.pid,
        start_ticks: executor.start_ticks,
    };
    match crate::identity::kill_session_leftovers(&executor) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(%id, processes = n, "killed what the executor left in its session"),
        Err(e) => tracing::warn!(%id, "cannot kill what the executor left in its session: {e}"),
    }
}

/// Resolves once the recorded process has exited (at once when it is already gone or its
/// pid belongs to another process now). Through a pidfd; where the kernel refuses one,
/// by asking /proc at a growing interval: an executor is never taken for gone because it
/// could not be watched.
pub(super) async fn exited(id: Uuid, executor: &Identity) {
    let Err(e) = pidfd_exit(executor).await else {
        return;
    };
    tracing::warn!(%id, pid = executor.pid, "cannot watch the executor through a pidfd ({e}); asking /proc instead");
    let recorded = ProcessIdentity {
        boot_id: executor.boot_id.clone(),
        pid: executor.pid,
        start_ticks: executor.start_ticks,
    };
    let mut wait = std::time::Duration::from_millis(500);
    loop {
        match crate::identity::check(&recorded) {
            Ok(Liveness::Alive) => {}
            Ok(Liveness::Gone | Liveness::Reused | Liveness::Rebooted) => return,
            Err(e) => tracing::warn!(%id, "cannot read /proc for the executor: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait = crate::backoff::doubled(wait, std::time::Duration::from_secs(5));
    }
}

async fn pidfd_exit(executor: &Identity) -> std::io::Result<()> {
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

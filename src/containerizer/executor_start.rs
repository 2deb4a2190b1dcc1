//! Starting a task's executor: `berth executor` spawned blocked on its stdin, its
//! identity recorded (`ExecutorStarting`), and only then released with its launch, under
//! the task's lock so that a kill recorded meanwhile is seen. Executor mode does the same
//! for the executor that starts the created container. Kept as one operation because
//! its order is the guarantee: nothing runs before a record announces it.

use std::sync::Arc;
use std::time::Duration;

use berth_state::{Identity, Phase};
use uuid::Uuid;

use super::{spawn, Containerizer, Entry, RequestError};
use crate::docker::RunSpec;
use crate::executor::{ExecutorLaunch, Work};
use crate::model::TaskState;

impl Containerizer {
    /// Spawns `berth executor` (with `--docker_mesos_image`, in a container of its own),
    /// records its identity, then releases it.
    pub(super) async fn start_executor(
        self: &Arc<Self>,
        id: Uuid,
        entry: &Entry,
        work: Work,
        grace: Duration,
    ) -> Result<(), RequestError> {
        if let Some(image) = self.settings.docker_mesos_image.clone() {
            return self
                .start_executor_box(id, entry, work, grace, &image)
                .await;
        }
        let sandbox = entry.view.borrow().sandbox.clone();
        let log = open_in(&sandbox, "executor.log")?;
        let (child, stdin) = spawn::executor(
            &self.settings.executor_program,
            id,
            &sandbox,
            std::process::Stdio::null(),
            log,
        )
        .map_err(|e| RequestError::ExecutorStart(sandbox.clone(), e))?;
        let (child, identity) = self.record_executor(id, entry, child, &sandbox).await?;
        let launch = self.executor_launch(id, &sandbox, grace, work);
        let released = self.release_executor(id, entry, stdin, &launch).await;
        // After the end a kill decided is recorded, so that the exit finds the task ended.
        self.watch_child(id, identity, child);
        released.map_err(|e| RequestError::ExecutorStart(sandbox.clone(), e))
    }

    /// Hands a recorded executor its launch through `stdin` (its own, or that of the
    /// `docker run -i` its container's stdin comes through). Under the task's lock, after
    /// checking for a kill: a kill recorded before this point finds nothing started yet,
    /// so it must be seen here; then the stdin closes empty, the executor exits having
    /// started nothing, and the kill's end is recorded before this returns.
    pub(super) async fn release_executor(
        &self,
        id: Uuid,
        entry: &Entry,
        stdin: tokio::process::ChildStdin,
        launch: &[u8],
    ) -> std::io::Result<()> {
        let deciding = entry.deciding.lock().await;
        let killed = entry.kill.borrow().clone();
        if let Some(k) = killed {
            drop(deciding);
            drop(stdin);
            self.killed_during_launch(id, k, "starting the executor")
                .await;
            return Ok(());
        }
        let released = spawn::release(stdin, launch).await;
        entry.view.send_modify(|v| {
            // A refusal leaves the view at the state it reached: an end decided meanwhile.
            let _ = v.advance(TaskState::Starting, None, None);
        });
        drop(deciding);
        released
    }

    /// Reads a blocked executor's identity while it is unreaped (so its pid cannot belong
    /// to another process yet) and records it. A child whose identity is not recorded is
    /// reaped, never released: it exits having started nothing.
    async fn record_executor(
        &self,
        id: Uuid,
        entry: &Entry,
        child: tokio::process::Child,
        sandbox: &std::path::Path,
    ) -> Result<(tokio::process::Child, Identity), RequestError> {
        let identity = match self.identity_of(child.id().unwrap_or_default(), sandbox) {
            Ok(identity) => identity,
            Err(e) => {
                spawn::reap(self, child);
                return Err(e);
            }
        };
        // Until this record is durable the executor waits on its stdin; if the agent dies
        // first, the pipe closes empty and the executor exits having started nothing.
        let recorded = self
            .record(
                id,
                Phase::ExecutorStarting {
                    identity: identity.clone(),
                },
            )
            .await;
        if let Err(e) = recorded {
            spawn::reap(self, child);
            return Err(e.into());
        }
        *entry.executor.lock().unwrap_or_else(|p| p.into_inner()) = Some(identity.clone());
        Ok((child, identity))
    }

    /// What an executor is handed once its identity is recorded.
    pub(super) fn executor_launch(
        &self,
        id: Uuid,
        sandbox: &std::path::Path,
        grace: Duration,
        work: Work,
    ) -> Vec<u8> {
        let launch = ExecutorLaunch {
            container_id: id,
            api_socket: self.settings.api_socket.clone(),
            sandbox: sandbox.to_owned(),
            docker_program: self.docker.config().program.clone(),
            docker_socket: self.docker.config().socket.clone(),
            grace,
            report_deadline: self.settings.recovery_timeout,
            work,
            rotation: self.settings.rotation,
        };
        // Plain data (paths, strings, numbers): it always serializes.
        serde_json::to_vec(&launch).unwrap_or_default()
    }

    fn identity_of(&self, pid: u32, sandbox: &std::path::Path) -> Result<Identity, RequestError> {
        let found = crate::identity::of_pid(pid).ok().flatten().ok_or_else(|| {
            RequestError::ExecutorStart(
                sandbox.to_owned(),
                std::io::Error::other(format!("process {pid} exited at once")),
            )
        })?;
        Ok(Identity {
            boot_id: found.boot_id,
            pid: found.pid,
            start_ticks: found.start_ticks,
        })
    }

    /// Executor mode: the container is the executor. Once it is created stopped, a
    /// blocked `berth executor` is spawned and its identity recorded; only then is it
    /// released to start the container (`docker start`) and carry its output. So the
    /// container never runs before a record announces it.
    pub(super) async fn start_executor_container(
        self: &Arc<Self>,
        id: Uuid,
        entry: &Entry,
        run: RunSpec,
        grace: Duration,
    ) -> Result<Option<tokio::process::Child>, RequestError> {
        let sandbox = entry.view.borrow().sandbox.clone();
        // Its own words go to its log: the sandbox's `stdout` and `stderr` are the
        // container's, carried from Docker's log.
        let (child, stdin) = spawn::executor(
            &self.settings.executor_program,
            id,
            &sandbox,
            std::process::Stdio::null(),
            open_in(&sandbox, "executor.log")?,
        )
        .map_err(|e| RequestError::ExecutorStart(sandbox.clone(), e))?;
        let (child, _) = self.record_executor(id, entry, child, &sandbox).await?;
        let name = run.name.clone();
        let launch = self.executor_launch(id, &sandbox, grace, Work::Attach { name: run.name });
        // As for an executor: a kill recorded before this point found nothing running.
        let deciding = entry.deciding.lock().await;
        let killed = entry.kill.borrow().clone();
        if let Some(k) = killed {
            drop(deciding);
            drop(stdin);
            spawn::reap(self, child);
            if let Err(e) = self.docker.rm(&name).await {
                tracing::warn!(%id, "cannot remove the created container {name}: {e}; its removal at the due time tries again");
            }
            self.killed_during_launch(id, k, "starting its container")
                .await;
            return Ok(None);
        }
        crate::crash_point::hit("docker-start-before");
        let released = spawn::release(stdin, &launch).await;
        crate::crash_point::hit("docker-start-after");
        entry.view.send_modify(|v| {
            // A refusal leaves the view at the state it reached: an end decided meanwhile.
            let _ = v.advance(TaskState::Starting, None, None);
        });
        drop(deciding);
        if let Err(e) = released {
            spawn::reap(self, child);
            return Err(RequestError::ExecutorStart(sandbox.clone(), e));
        }
        Ok(Some(child))
    }
}

/// Opens a log file of the agent's in the sandbox for appending. The sandbox may be the
/// task's user's by now, so a link or a second name planted there is refused, not written
/// through as root.
pub(super) fn open_in(
    sandbox: &std::path::Path,
    name: &str,
) -> Result<std::fs::File, RequestError> {
    crate::executor::sandbox_file::append(&sandbox.join(name))
        .map_err(|e| RequestError::SandboxFile(sandbox.join(name), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executor_log_is_never_opened_through_a_link_the_task_planted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "host file\n").expect("write");
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir(&sandbox).expect("mkdir");
        std::os::unix::fs::symlink(&outside, sandbox.join("executor.log")).expect("symlink");
        std::os::unix::fs::symlink(dir.path().join("made"), sandbox.join("dangling.log"))
            .expect("symlink");
        std::fs::hard_link(&outside, sandbox.join("linked.log")).expect("link");
        for name in ["executor.log", "dangling.log", "linked.log"] {
            assert!(open_in(&sandbox, name).is_err(), "{name}");
        }
        assert_eq!(
            std::fs::read_to_string(&outside).expect("read"),
            "host file\n"
        );
        assert!(!dir.path().join("made").exists());
        let mut log = open_in(&sandbox, "fresh.log").expect("a new file");
        std::io::Write::write_all(&mut log, b"x").expect("write");
    }
}

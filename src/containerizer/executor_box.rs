//! `--docker_mesos_image`: a task's executor in a container of its own, from the agent's
//! image, so that it outlives the agent's container (stopped, killed, upgraded).
//!
//! The agent runs `docker run -i` of `mesos-<agent id>.<container id>.executor` with
//! `berth executor` blocked on the stdin this CLI forwards, as an executor it spawns
//! itself is blocked on a pipe: the container runs, but its executor starts nothing
//! until the container's identity (Docker id, `State.StartedAt`) and its process's
//! (pid and start time, through /proc in the host's pid namespace) are durable. If the
//! agent dies first, the stdin closes empty and the executor exits having started
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use berth_state::{Identity, Phase};
use tokio::process::Child;
use uuid::Uuid;

use super::{spawn, Containerizer, Entry, RequestError, TaskView};
use crate::docker::argv::{self, labels, ExecutorBox, EXECUTOR_LOG};
use crate::docker::{ContainerName, ContainerState};
use crate::executor::Work;
use crate::model::TaskState;

/// How long the executor's container may take to run once `docker run -i` is started.
const BOX_START: Duration = Duration::from_secs(60);

/// `docker run`'s status when Docker itself failed (the container did not run).
const DOCKER_RUN_FAILED: i32 = 125;

/// The executor container, as recorded.
struct BoxIdentity {
    process: Identity,
    container: String,
    started_at_ns: u64,
}

impl Containerizer {
    /// Starts a task's executor in its own container, records who it is, then releases
    /// it with `work`. A container whose identity is not recorded is released with
    /// nothing: it exits having started nothing, and is removed with the task.
    pub(super) async fn start_executor_box(
        self: &Arc<Self>,
        id: Uuid,
        entry: &Entry,
        work: Work,
        grace: Duration,
        image: &str,
    ) -> Result<(), RequestError> {
        let sandbox = entry.view.borrow().sandbox.clone();
        let agent_id = self.agent_id().to_string();
        let name = ContainerName::executor(&agent_id, id).to_string();
        let api_dir = self
            .settings
            .api_socket
            .parent()
            .map_or_else(|| self.settings.work_dir.clone(), ToOwned::to_owned);
        let spec = ExecutorBox {
            name: name.clone(),
            image: image.to_owned(),
            labels: vec![
                (labels::AGENT_ID.to_owned(), agent_id),
                (labels::CONTAINER_ID.to_owned(), id.to_string()),
                (labels::ROLE.to_owned(), labels::ROLE_EXECUTOR.to_owned()),
            ],
            sandbox: sandbox.clone(),
            api_dir,
            docker_socket: self.docker.config().socket.clone(),
            docker_socket_on_host: self
                .settings
                .docker_socket_on_host
                .clone()
                .unwrap_or_else(|| self.docker.config().socket.clone()),
            host_network: matches!(work, Work::Process { .. } | Work::ProcessAs { .. }),
        };
        let run = argv::executor_box(&spec)
            .map_err(|e| RequestError::ExecutorContainer(name.clone(), e.to_string()))?;
        let log = super::launch::open_in(&sandbox, EXECUTOR_LOG)?;
        let (program, run) = self.docker.command_line(run);
        let (mut child, stdin) = spawn::attached(&program, &run, log)
            .map_err(|e| RequestError::ExecutorContainer(name.clone(), e.to_string()))?;
        // From here the container may exist: the task's end removes it.
        entry
            .executor_box
            .store(true, std::sync::atomic::Ordering::Release);
        let seen = match self.box_identity(&name, &mut child).await {
            Ok(seen) => seen,
            Err(why) => {
                // A CLI that hangs is not left behind; a container it started gets an
                // empty stdin and exits having started nothing.
                drop(stdin);
                let _ = child.start_kill();
                spawn::reap(self, child);
                return Err(RequestError::ExecutorContainer(name, why));
            }
        };
        let recorded = self
            .record(
                id,
                Phase::ExecutorContainerStarting {
                    identity: seen.process.clone(),
                    container: seen.container,
                    started_at_ns: seen.started_at_ns,
                },
            )
            .await;
        if let Err(e) = recorded {
            drop(stdin);
            spawn::reap(self, child);
            return Err(e.into());
        }
        *entry.executor.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen.process.clone());
        let launch = self.executor_launch(id, &sandbox, grace, work);
        let released = self.release_executor(id, entry, stdin, &launch).await;
        // Not the agent's child: its exit is watched as after a restart.
        self.watch_adopted(id, seen.process);
        let_go_of(self, child, entry.view.subscribe());
        released.map_err(|e| RequestError::ExecutorContainer(name, e.to_string()))
    }

    /// Waits until the executor's container runs, and reads who it is: its init's pid
    /// and start time from /proc, seen between two inspects that show the same running
    /// container with that pid (so the process read is that container's).
    async fn box_identity(&self, name: &str, child: &mut Child) -> Result<BoxIdentity, String> {
        let give_up = tokio::time::Instant::now() + BOX_START;
        let mut wait = Duration::from_millis(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "`docker run` of the executor's container ended ({status}) before it ran; the sandbox's {EXECUTOR_LOG} says why"
                ));
            }
            match self.docker.inspect(name).await {
                Ok(Some(first)) if first.state == ContainerState::Running => {
                    let (Some(pid), Some(started)) = (first.pid, first.started_at) else {
                        return Err(format!(
                            "Docker shows the executor's container {name} running without a pid or a start time"
                        ));
                    };
                    let process = crate::identity::of_pid(pid)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| {
                            format!("the executor's process {pid} is not in /proc: is the agent's container run with --pid=host?")
                        })?;
                    // A process that exited before Docker noticed leaves its pid free for
                    // another: the one read must be in this container's cgroup.
                    let cgroup_file = format!("/proc/{pid}/cgroup");
                    let cgroups = std::fs::read_to_string(&cgroup_file)
                        .map_err(|e| format!("cannot read {cgroup_file}: {e}"))?;
                    if !in_cgroup_of(&cgroups, &first.id) {
                        return Err(format!(
                            "process {pid}, which Docker names as the executor's container's, is not in that container's cgroup ({cgroup_file}); it was not taken for the executor"
                        ));
                    }
                    let again = self.docker.inspect(name).await.map_err(|e| e.to_string())?;
                    let same = again.as_ref().is_some_and(|a| {
                        a.id == first.id
                            && a.state == ContainerState::Running
                            && a.pid == Some(pid)
                            && a.started_at == Some(started)
                    });
                    let started_at_ns = crate::docker::inspect::epoch_ns(started)
                        .ok_or_else(|| format!("the executor's container {name} has a start time berth cannot record"))?;
                    if !same {
                        return Err(format!(
                            "the executor's container {name} changed while berth read its identity"
                        ));
                    }
                    return Ok(BoxIdentity {
                        process: Identity {
                            boot_id: process.boot_id,
                            pid: process.pid,
                            start_ticks: process.start_ticks,
                        },
                        container: first.id,
                        started_at_ns,
                    });
                }
                Ok(Some(info))
                    if !info.state.is_live() && info.state != ContainerState::Created =>
                {
                    // Docker's own failure (125) may be a container of that name left from
                    // before, which is what inspect just showed: the CLI says which.
                    let cli = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                    if let Ok(Ok(status)) = cli {
                        if status.code() == Some(DOCKER_RUN_FAILED) {
                            return Err(format!(
                                "`docker run` of it failed ({status}); the sandbox's {EXECUTOR_LOG} says why"
                            ));
                        }
                    }
                    return Err(format!(
                        "the executor's container {name} ended at once (exit status {}); the sandbox's {EXECUTOR_LOG} says why",
                        info.exit_code.map_or("unknown".to_owned(), |c| c.to_string())
                    ));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("inspect {name}: {e}"),
            }
            if tokio::time::Instant::now() + wait > give_up {
                return Err(format!(
                    "the executor's container {name} did not run within {}s",
                    BOX_START.as_secs()
                ));
            }
            tokio::time::sleep(wait).await;
            wait = crate::backoff::doubled(wait, Duration::from_millis(500));
        }
    }
}

/// Ends the `docker run -i` once the executor has shown that it read its launch (its
/// first report was applied: the task runs, or ended), or once it ended: past that, the
/// CLI only holds an attach stream, tens of MB for the task's whole life. Not before:
/// the CLI may still be passing the launch on. The container goes on
/// (`--sig-proxy=false`, and its stdin is closed already).
fn let_go_of(
    owner: &Containerizer,
    mut child: Child,
    mut view: tokio::sync::watch::Receiver<TaskView>,
) {
    owner.spawn_owned(async move {
        let reported = async {
            loop {
                let state = view.borrow_and_update().state;
                if state == TaskState::Running || state.is_terminal() {
                    return;
                }
                if view.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = child.wait() => return,
            () = reported => {}
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
    });
}

/// Whether a `/proc/<pid>/cgroup` text puts the process in the cgroup of the Docker
/// container `id` (its full id is in every driver's path: `/docker/<id>`,
/// `docker-<id>.scope`). Pure.
fn in_cgroup_of(cgroups: &str, id: &str) -> bool {
    id.len() == 64
        && cgroups
            .lines()
            .filter_map(|line| line.splitn(3, ':').nth(2))
            .any(|path| path.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "fafc8ac931c2db8cf011fe5686bd809b23f9b82b21127f785aaca54e8e1a9f49";

    #[test]
    fn the_process_is_in_the_containers_cgroup() {
        let cases = [
            (format!("0::/docker/{ID}\n"), ID, true),
            (format!("12:pids:/docker/{ID}\n0::/docker/{ID}\n"), ID, true),
            (format!("0::/system.slice/docker-{ID}.scope\n"), ID, true),
            (format!("0::/../docker-{ID}.scope\n"), ID, true),
            ("0::/user.slice/session-1.scope\n".to_owned(), ID, false),
            (format!("0::/docker/{ID}\n"), &ID[..12], false),
            (String::new(), ID, false),
            (format!("{ID}\n"), ID, false),
        ];
        for (text, id, want) in cases {
            assert_eq!(in_cgroup_of(&text, id), want, "{text:?} {id}");
        }
    }
}

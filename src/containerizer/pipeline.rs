//! The launch pipeline after admission: Fetching, Pulling, the sandbox given to the
//! task's user, executor mode's `docker create`, then the executor started
//! (`executor_start.rs`). Each phase is durable before its action starts; each step that
//! waits ends at a kill or at the launch's registration deadline, whichever comes first,
//! and the container never starts afterwards. Apart from admission because it also
//! resumes, from the phase it was interrupted in, after a restart (`LaunchStep`).

use std::sync::Arc;
use std::time::Duration;

use berth_state::{now_ms, Phase};
use tokio::sync::watch;
use uuid::Uuid;

use super::kill::KillRequest;
use super::launch::{
    run_as, LaunchStep, BACKOFF, REASON_CONTAINER_LAUNCH_FAILED,
    REASON_EXECUTOR_REGISTRATION_TIMEOUT, REASON_FETCHER_FAILED,
};
use super::monitor::Carrier;
use super::{Containerizer, RequestError};
use crate::docker::{ContainerState, PullPolicy, RunSpec};
use crate::executor::Work;
use crate::run_as::RunAs;
use crate::task::{Launch, LaunchKind};

enum Step<T> {
    Done(T),
    Killed(KillRequest),
    /// `--executor_registration_timeout` ran out first.
    Late,
}

impl<T> Step<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Done(t) => Step::Done(f(t)),
            Step::Killed(k) => Step::Killed(k),
            Step::Late => Step::Late,
        }
    }
}

/// When a launch accepted at `accepted_at_ms` must have handed its executor the task,
/// as a time left from `now_ms` (both ms since the epoch; zero once past). The clock is
/// the wall's, from the durable `Accepted` record, so that a launch resumed after a
/// restart keeps its deadline and one whose deadline passed while the agent was down
/// fails at once. Pure.
pub(crate) fn registration_left(accepted_at_ms: u64, timeout: Duration, now_ms: u64) -> Duration {
    let due_ms =
        accepted_at_ms.saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
    Duration::from_millis(due_ms.saturating_sub(now_ms))
}

impl Containerizer {
    pub(super) async fn pipeline(
        self: Arc<Self>,
        id: Uuid,
        launch: Launch,
        from: LaunchStep,
    ) -> Result<(), RequestError> {
        let entry = self
            .entry(id)
            .ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        let mut kill_rx = entry.kill.subscribe();
        let (sandbox, accepted_at_ms) = {
            let view = entry.view.borrow();
            (view.sandbox.clone(), view.accepted_at_ms)
        };
        let left = registration_left(
            accepted_at_ms,
            self.settings.executor_registration_timeout,
            now_ms(),
        );
        let now = tokio::time::Instant::now();
        // A timeout too long to add to the clock never runs out.
        let due = now
            .checked_add(left)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let mut steps = Watch {
            kill: &mut kill_rx,
            due,
        };

        if from == LaunchStep::Fetch {
            self.record(id, Phase::Fetching).await?;
            // A fetch that an agent's crash cut short left its temporary file; an empty
            // sandbox (a new launch) is read in no time.
            let dir = sandbox.clone();
            match tokio::task::spawn_blocking(move || crate::fetch::remove_partials(&dir)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(%id, "removed {n} partial files of fetches cut short"),
                Ok(Err(e)) => {
                    tracing::warn!(%id, "cannot remove the partial files of fetches cut short: {e}")
                }
                Err(e) => {
                    tracing::warn!(%id, "cannot remove the partial files of fetches cut short: {e}")
                }
            }
            let fetched = self
                .until_killed(
                    &mut steps,
                    self.settings.fetcher.fetch_all(&launch.uris, &sandbox),
                )
                .await;
            if let (Step::Done(result), false) = (&fetched, launch.uris.is_empty()) {
                self.metrics.fetched(result.is_ok());
            }
            let fetched = fetched.map(|r| r.map_err(|e| e.to_string()));
            if !self
                .went_on(id, fetched, "fetching", REASON_FETCHER_FAILED)
                .await
            {
                return Ok(());
            }
        }

        let (run, pull, executor_mode) = match launch.kind {
            LaunchKind::DockerTask { run, pull } => (Some(run), pull, false),
            LaunchKind::DockerExecutor { run, pull } => (Some(run), pull, true),
            LaunchKind::Process { argv, env } => {
                if self.late(id, &steps, "starting the executor").await {
                    return Ok(());
                }
                let Some(user) = self.give_sandbox(id, launch.user, &sandbox).await else {
                    return Ok(());
                };
                let work = Work::process(argv, env, user);
                return self.start_executor(id, &entry, work, launch.grace).await;
            }
        };
        let run = run.ok_or_else(|| RequestError::Unknown(id.to_string()))?;
        if from != LaunchStep::Executor {
            self.record(
                id,
                Phase::Pulling {
                    image: run.image.clone(),
                },
            )
            .await?;
            let pulled = self
                .until_killed(&mut steps, self.pull(&run.image, pull, &sandbox))
                .await;
            if !self
                .went_on(id, pulled, "pulling", REASON_CONTAINER_LAUNCH_FAILED)
                .await
            {
                return Ok(());
            }
        }
        let killed = steps.kill.borrow().clone();
        if let Some(k) = killed {
            self.killed_during_launch(id, k, "pulling").await;
            return Ok(());
        }
        if self.give_sandbox(id, launch.user, &sandbox).await.is_none() {
            return Ok(());
        }
        if executor_mode {
            let name = run.name.clone();
            match self.until_killed(&mut steps, self.create(&run)).await {
                Step::Done(Ok(())) => {}
                Step::Done(Err(message)) => {
                    self.fail_launch_step(id, REASON_CONTAINER_LAUNCH_FAILED, message)
                        .await;
                    return Ok(());
                }
                cut => {
                    // A create cut short may still have reached the daemon.
                    if let Err(e) = self.docker.rm(&name).await {
                        tracing::warn!(%id, "cannot remove {name}, which a create cut short may have made: {e}; its removal at the due time tries again");
                    }
                    self.went_on(
                        id,
                        cut,
                        "creating its container",
                        REASON_CONTAINER_LAUNCH_FAILED,
                    )
                    .await;
                    return Ok(());
                }
            }
            if self.late(id, &steps, "starting the executor").await {
                return Ok(());
            }
            let child = self
                .start_executor_container(id, &entry, run, launch.grace)
                .await?;
            if let Some(child) = child {
                self.clone()
                    .monitor_executor_container(id, name, Some(Carrier::Child(child)));
            }
            Ok(())
        } else {
            if self.late(id, &steps, "starting the executor").await {
                return Ok(());
            }
            self.start_executor(id, &entry, Work::Docker(Box::new(run)), launch.grace)
                .await
        }
    }

    /// Looks the task's user up again (it may have gone since the launch) and gives it
    /// the sandbox; `None` when that failed, and the task with it.
    async fn give_sandbox(
        &self,
        id: Uuid,
        user: Option<String>,
        sandbox: &std::path::Path,
    ) -> Option<Option<RunAs>> {
        let given = match run_as(user).await {
            Ok(None) => return Some(None),
            Ok(Some(user)) => {
                let (path, owner) = (sandbox.to_owned(), user.clone());
                tokio::task::spawn_blocking(move || super::sandbox_owner::give(&path, &owner))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|given| given.map_err(|e| e.to_string()))
                    .map(|()| user)
                    .map_err(|e| {
                        format!(
                            "cannot give the sandbox {} to its user: {e}",
                            sandbox.display()
                        )
                    })
            }
            Err((user, e)) => Err(format!("cannot run as user {user:?} (command.user): {e}")),
        };
        match given {
            Ok(user) => Some(Some(user)),
            Err(message) => {
                self.fail_launch_step(id, REASON_CONTAINER_LAUNCH_FAILED, message)
                    .await;
                None
            }
        }
    }

    /// Runs a launch step until it is done, a kill comes, or the launch's registration
    /// deadline passes; the step is dropped (cancelled) in the other two cases. A kill
    /// goes before the deadline, and both before work not yet begun.
    async fn until_killed<T>(
        &self,
        steps: &mut Watch<'_>,
        work: impl std::future::Future<Output = T>,
    ) -> Step<T> {
        let kill_rx = &mut *steps.kill;
        tokio::select! {
            biased;
            request = async {
                loop {
                    if let Some(k) = kill_rx.borrow_and_update().clone() {
                        return k;
                    }
                    if kill_rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            } => Step::Killed(request),
            () = tokio::time::sleep_until(steps.due) => Step::Late,
            result = work => Step::Done(result),
        }
    }

    /// Ends the launch when its registration deadline has passed before the executor is
    /// started (a launch resumed after a restart may come here with no step left to
    /// bound); true when it did.
    async fn late(&self, id: Uuid, steps: &Watch<'_>, doing: &str) -> bool {
        if tokio::time::Instant::now() < steps.due {
            return false;
        }
        self.fail_launch_step(
            id,
            REASON_EXECUTOR_REGISTRATION_TIMEOUT,
            self.late_message(doing),
        )
        .await;
        true
    }

    fn late_message(&self, doing: &str) -> String {
        format!(
            "the executor was not started within {} of the task's acceptance (--executor_registration_timeout): the launch was given up while {doing}, and the task never started; raise the flag on this agent if its launches need longer",
            crate::duration::format(self.settings.executor_registration_timeout)
        )
    }

    async fn pull(
        &self,
        image: &str,
        policy: PullPolicy,
        sandbox: &std::path::Path,
    ) -> Result<(), String> {
        crate::credentials::prepare_home(sandbox).map_err(|e| e.to_string())?;
        let home = match &self.settings.pull_fallback_home {
            Some(fallback) if !crate::credentials::has_credentials(sandbox) => fallback,
            _ => sandbox,
        };
        let what = format!("the pull of {image}");
        let started = tokio::time::Instant::now();
        let pulled = self
            .while_docker_away(&what, || self.docker.pull(image, policy, Some(home)))
            .await;
        self.metrics.pulled(&pulled, started.elapsed());
        pulled
            .map(drop)
            .map_err(|e| format!("failed to pull image {image}: {e}"))
    }

    /// `docker create` of an executor-mode container, waiting for a Docker that is away.
    /// A try whose answer was lost may have created it: a container of this name that
    /// never started is taken for this launch's (the name holds the launch's id).
    async fn create(&self, run: &RunSpec) -> Result<(), String> {
        let name = &run.name;
        let mut tried = false;
        let created = self
            .while_docker_away(&format!("the create of {name}"), || {
                let first = !std::mem::replace(&mut tried, true);
                async move {
                    match self.docker.create(run).await {
                        Err(e) if !first && !crate::docker::listing::docker_out_of_reach(&e) => {
                            match self.docker.inspect(name).await {
                                Ok(Some(info)) if info.state == ContainerState::Created => Ok(()),
                                _ => Err(e),
                            }
                        }
                        created => created.map(drop),
                    }
                }
            })
            .await;
        created.map_err(|e| format!("failed to create container {name}: {e}"))
    }

    /// Calls Docker until it answers: while it is out of reach (a daemon restart), the
    /// call is tried again with [`BACKOFF`], up to `--recovery_timeout` in all. A kill
    /// ends the wait through `until_killed`, which drops this future.
    async fn while_docker_away<T, F>(
        &self,
        what: &str,
        mut call: impl FnMut() -> F,
    ) -> Result<T, crate::docker::DockerError>
    where
        F: std::future::Future<Output = Result<T, crate::docker::DockerError>>,
    {
        let give_up = tokio::time::Instant::now() + self.settings.recovery_timeout;
        let mut wait = BACKOFF.0;
        loop {
            match call().await {
                Err(e)
                    if crate::docker::listing::docker_out_of_reach(&e)
                        && tokio::time::Instant::now() + wait < give_up =>
                {
                    tracing::warn!("Docker does not answer {what} ({e}); trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = crate::backoff::doubled(wait, BACKOFF.1);
                }
                done => return done,
            }
        }
    }

    /// Ends the task when a launch step was killed (KILLED, nothing started) or failed
    /// (FAILED with `failed_reason`); true when the launch goes on.
    async fn went_on(
        &self,
        id: Uuid,
        step: Step<Result<(), String>>,
        doing: &str,
        failed_reason: &str,
    ) -> bool {
        match step {
            Step::Done(Ok(())) => true,
            Step::Killed(k) => {
                self.killed_during_launch(id, k, doing).await;
                false
            }
            Step::Late => {
                self.fail_launch_step(
                    id,
                    REASON_EXECUTOR_REGISTRATION_TIMEOUT,
                    self.late_message(doing),
                )
                .await;
                false
            }
            Step::Done(Err(message)) => {
                self.fail_launch_step(id, failed_reason, message).await;
                false
            }
        }
    }
}

/// What ends a launch step early: a kill, or the launch's registration deadline.
struct Watch<'a> {
    kill: &'a mut watch::Receiver<Option<KillRequest>>,
    due: tokio::time::Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registration_deadline_counts_from_the_acceptance() {
        let minute = Duration::from_secs(60);
        let cases = [
            // A new launch: the whole timeout.
            (1_000, minute, 1_000, minute),
            // Resumed 20 s after its acceptance: what is left.
            (1_000, minute, 21_000, Duration::from_secs(40)),
            // Resumed after its deadline (the agent was down): none.
            (1_000, minute, 61_000, Duration::ZERO),
            (1_000, minute, 500_000, Duration::ZERO),
            // A clock set back: the deadline stays the acceptance's time plus the timeout.
            (1_000, minute, 0, Duration::from_secs(61)),
            (u64::MAX - 5, minute, u64::MAX - 5, Duration::from_millis(5)),
            (0, Duration::MAX, 0, Duration::from_millis(u64::MAX)),
        ];
        for (accepted_at_ms, timeout, now_ms, want) in cases {
            assert_eq!(
                registration_left(accepted_at_ms, timeout, now_ms),
                want,
                "{accepted_at_ms} {timeout:?} {now_ms}"
            );
        }
    }
}

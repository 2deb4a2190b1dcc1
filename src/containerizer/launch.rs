//! The launch pipeline: Accepted, Fetching, Pulling, ExecutorStarting, then the executor's
//! reports. Each phase is durable before its action starts; a kill at any point ends the
//! work under way and the container never starts afterwards.

use std::sync::Arc;
use std::time::Duration;

use berth_state::{now_ms, Identity, Phase, StatusRecord, StoreError};
use tokio::sync::watch;
use uuid::Uuid;

use super::kill::KillRequest;
use super::{spawn, Containerizer, Entry, RequestError, TaskView};
use crate::docker::{ContainerState, PullPolicy, RunSpec};
use crate::executor::{ExecutorLaunch, Work};
use crate::model::{Ack, StatusReport, TaskState};
use crate::run_as::{LookupError, RunAs};
use crate::task::{self, Launch, LaunchContext, LaunchKind, TaskError};

/// Mesos's reason for every launch failure, a fetch's included (Mesos's fetcher is part of
/// its containerizer's launch).
pub(crate) use crate::model::reason::REASON_CONTAINER_LAUNCH_FAILED;
pub(crate) const REASON_FETCHER_FAILED: &str = REASON_CONTAINER_LAUNCH_FAILED;
pub(crate) use crate::model::reason::REASON_EXECUTOR_REGISTRATION_TIMEOUT;
use crate::model::reason::REASON_TASK_KILLED_DURING_LAUNCH;

/// The answer to a launch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Launched {
    /// The new container's id.
    pub container_id: Uuid,
    /// Fields of the TaskInfo that berth ignored.
    pub warnings: Vec<String>,
}

/// Where a launch pipeline starts: a new launch fetches; a resumed one redoes the phase
/// it was interrupted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchStep {
    /// Fetch, pull, start the executor.
    Fetch,
    /// Pull, start the executor.
    Pull,
    /// Start the executor.
    Executor,
}

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
    /// Validates a TaskInfo, records it, and starts its pipeline. Nothing is recorded or
    /// created for a task that is refused.
    pub async fn launch(self: &Arc<Self>, json: &[u8]) -> Result<Launched, RequestError> {
        let launched = self.admit(json).await;
        if let Err(e) = &launched {
            self.metrics.launch_refused(e.kind());
        }
        launched
    }

    async fn admit(self: &Arc<Self>, json: &[u8]) -> Result<Launched, RequestError> {
        if self.recovering() {
            return Err(RequestError::Recovering);
        }
        let parsed = task::parse(json)?;
        let task_id = parsed.task.task_id.value.trim().to_owned();
        let id = Uuid::new_v4();
        let sandbox = self.settings.sandbox(id);
        let agent_id = self.agent_id().to_string();
        let launch = task::admit(
            &parsed.task,
            &LaunchContext {
                agent_id: &agent_id,
                container_id: id,
                sandbox: &sandbox,
                sandbox_directory: &self.settings.sandbox_directory,
                containerizers: &self.settings.containerizers,
                default_grace: self.settings.stop_timeout,
                docker_log: self.settings.docker_log,
                switch_user: self.settings.switch_user,
                recovery_timeout: self.settings.recovery_timeout,
            },
        )?;
        // Looked up before anything is recorded: a task that names no user of this host
        // is refused, not failed later; one the user database cannot answer for is
        // refused for now (503), since the database may come back.
        match run_as(launch.user.clone()).await {
            Ok(_) => {}
            Err((user, LookupError::NoSuchUser)) => {
                return Err(TaskError::UnknownUser {
                    user,
                    why: LookupError::NoSuchUser.to_string(),
                }
                .into())
            }
            Err((user, e)) => {
                return Err(RequestError::UserDatabase {
                    user,
                    why: e.to_string(),
                })
            }
        }
        // Taken before the first await and held until the entry exists.
        self.reserve_task_id(&task_id, id)?;
        let accepted = self.accept(id, &task_id, json, &launch, &sandbox).await;
        let kill_at_ms = match accepted {
            Ok(kill_at_ms) => kill_at_ms,
            Err(e) => {
                self.release_task_id(&task_id);
                return Err(e);
            }
        };
        let run = launch.kind.docker_run();
        let view = TaskView {
            container_id: id,
            task_id: task_id.clone(),
            state: TaskState::Staging,
            reason: None,
            message: None,
            exit_code: None,
            docker_name: run.map(|r| r.name.clone()),
            image: run.map(|r| r.image.clone()),
            sandbox,
            pid: None,
            accepted_at_ms: now_ms(),
        };
        self.insert_entry(view, launch.grace);
        self.release_task_id(&task_id);
        let launch_warnings = launch.warnings.clone();
        self.arm_max_completion(id, kill_at_ms.zip(launch.max_completion));
        self.spawn_pipeline(id, launch, LaunchStep::Fetch);
        let mut warnings = parsed.warnings;
        warnings.extend(launch_warnings);
        Ok(Launched {
            container_id: id,
            warnings,
        })
    }

    /// Makes the sandbox and records `Accepted`; returns the `max_completion_time` due
    /// time. Nothing is left behind when it fails.
    async fn accept(
        &self,
        id: Uuid,
        task_id: &str,
        json: &[u8],
        launch: &Launch,
        sandbox: &std::path::Path,
    ) -> Result<Option<u64>, RequestError> {
        super::sandbox_owner::make(sandbox)
            .map_err(|e| RequestError::Sandbox(sandbox.to_owned(), e))?;
        let kill_at_ms = launch
            .max_completion
            .map(|d| now_ms().saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
        let accepted = self
            .record(
                id,
                Phase::Accepted {
                    task_id: task_id.to_owned(),
                    task_json: String::from_utf8_lossy(json).into_owned(),
                    kill_at_ms,
                },
            )
            .await;
        if let Err(e) = accepted {
            let _ = std::fs::remove_dir_all(sandbox);
            return Err(e.into());
        }
        self.metrics.launch_accepted();
        Ok(kill_at_ms)
    }

    /// Makes the in-memory entry that the API, reports and kills work on.
    pub(crate) fn insert_entry(&self, view: TaskView, grace: Duration) -> Arc<Entry> {
        let id = view.container_id;
        let entry = Arc::new(Entry {
            view: watch::Sender::new(view),
            kill: watch::Sender::new(None),
            executor: std::sync::Mutex::new(None),
            executor_box: std::sync::atomic::AtomicBool::new(false),
            last_report: std::sync::Mutex::new(0),
            grace,
            deciding: tokio::sync::Mutex::new(()),
            kill_driving: std::sync::atomic::AtomicBool::new(false),
            kill_nudge: tokio::sync::Notify::new(),
            kill_again: std::sync::atomic::AtomicBool::new(false),
            watched: std::sync::atomic::AtomicBool::new(false),
            deadline_armed: std::sync::atomic::AtomicBool::new(false),
            ending: std::sync::Mutex::new(None),
        });
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, entry.clone());
        entry
    }

    /// Kills the task at its stored `max_completion_time` due time (at once if past);
    /// `limit` is the task's `max_completion_time`, for the message.
    pub(crate) fn arm_max_completion(self: &Arc<Self>, id: Uuid, due: Option<(u64, Duration)>) {
        let Some((at_ms, limit)) = due else { return };
        let armed = self.entry(id).is_none_or(|e| {
            e.deadline_armed
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        });
        if armed {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms()))).await;
            let request = KillRequest {
                grace: launch_grace(&me, id),
                state: TaskState::Failed,
                reason: super::kill::REASON_MAX_COMPLETION_TIME_REACHED.to_owned(),
                message: format!(
                    "the task ran longer than its max_completion_time ({})",
                    crate::duration::format(limit)
                ),
            };
            if let Err(e) = me.kill_with(id, request).await {
                tracing::warn!(%id, "max_completion_time kill: {e}");
            }
        });
    }

    /// Runs the launch pipeline from `from` in the background; a failure ends the task.
    pub(crate) fn spawn_pipeline(self: &Arc<Self>, id: Uuid, launch: Launch, from: LaunchStep) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.clone().pipeline(id, launch, from).await {
                tracing::error!(%id, "launch failed: {e}");
                me.fail_launch_step(id, REASON_CONTAINER_LAUNCH_FAILED, e.to_string())
                    .await;
            }
        });
    }

    async fn pipeline(
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

    async fn killed_during_launch(&self, id: Uuid, k: KillRequest, doing: &str) {
        let message = format!("{} while {doing}; the task was never started", k.message);
        self.terminate(id, k.state, launch_reason(&k.reason), message, None)
            .await;
    }

    /// Spawns `berth executor` (with `--docker_mesos_image`, in a container of its own),
    /// records its identity, then releases it.
    async fn start_executor(
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
            v.advance(TaskState::Starting, None, None);
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
                spawn::reap(child);
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
            spawn::reap(child);
            return Err(e.into());
        }
        *entry.executor.lock().unwrap_or_else(|p| p.into_inner()) = Some(identity.clone());
        Ok((child, identity))
    }

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
        Carrier::Agent(tokio::spawn(async move {
            crate::executor::carry_on(&launch, &name).await
        }))
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
    async fn start_executor_container(
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
            spawn::reap(child);
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
            v.advance(TaskState::Starting, None, None);
        });
        drop(deciding);
        if let Err(e) = released {
            spawn::reap(child);
            return Err(RequestError::ExecutorStart(sandbox.clone(), e));
        }
        Ok(Some(child))
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
        tokio::spawn(async move {
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
                        Ok(Ok(true)) => Some(crate::executor::CARRIED_THROUGH_OUTAGE),
                        Ok(Ok(false)) => Some(0),
                        Ok(Err(e)) => {
                            tracing::warn!(%id, "carrying the container's output: {e}");
                            None
                        }
                        Err(_) => None,
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
            state: report.state.name().to_owned(),
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
                    if v.advance(TaskState::Running, None, None) {
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

    /// Records the end of a task and schedules its removal. A record that fails is tried
    /// again with backoff until it succeeds; until then the task shows what was recorded
    /// before, never an end the store does not hold.
    pub(crate) async fn terminate(
        &self,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        exit_code: Option<i32>,
    ) {
        self.end_task(id, state, reason, message, exit_code, EndCause::Decided)
            .await;
    }

    /// Ends a task whose launch step failed (FAILED, `reason`), unless a kill was recorded
    /// meanwhile: a kill answered KILLING decides the end then.
    pub(crate) async fn fail_launch_step(&self, id: Uuid, reason: &str, message: String) {
        self.end_task(
            id,
            TaskState::Failed,
            reason,
            message,
            None,
            EndCause::LaunchStepFailed,
        )
        .await;
    }

    async fn end_task(
        &self,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        exit_code: Option<i32>,
        cause: EndCause,
    ) {
        let Some(entry) = self.entry(id) else { return };
        let mut wait = BACKOFF.0;
        loop {
            let recorded = {
                let _deciding = entry.deciding.lock().await;
                self.terminate_decided(&entry, id, state, reason, message.clone(), exit_code, cause)
                    .await
            };
            match recorded {
                Ok(()) => return,
                Err(e @ StoreError::NotDurable(_)) => {
                    // Trying again cannot help: the store takes no write after a failed one
                    // (the agent stops, and the next start decides from what it holds).
                    tracing::error!(%id, "cannot record the end of the task: {e}");
                    return;
                }
                Err(e @ (StoreError::Transition { .. } | StoreError::UnknownContainer(_))) => {
                    // The history does not take this end, so the task will not come to it:
                    // a kill no longer waits for it (nor answers that the task is ending).
                    tracing::error!(%id, "cannot record the end of the task: {e}");
                    let _deciding = entry.deciding.lock().await;
                    *entry.ending.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    return;
                }
                Err(e) => {
                    tracing::error!(%id, "cannot record the end of the task ({e}); it shows its recorded state until this succeeds; trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = crate::backoff::doubled(wait, BACKOFF.1);
                }
            }
        }
    }

    /// [`Self::terminate`] with the entry's `deciding` lock already held, tried once.
    #[allow(clippy::too_many_arguments)]
    async fn terminate_decided(
        &self,
        entry: &Entry,
        id: Uuid,
        state: TaskState,
        reason: &str,
        message: String,
        exit_code: Option<i32>,
        cause: EndCause,
    ) -> Result<(), StoreError> {
        if entry.view.borrow().state.is_terminal() {
            return Ok(());
        }
        let (state, reason, message) = match cause {
            EndCause::LaunchStepFailed => {
                let kill = entry.kill.borrow();
                end_under_kill(kill.as_ref(), state, reason, message)
            }
            EndCause::Decided => (state, reason.to_owned(), message),
        };
        let reason = reason.as_str();
        let delay = u64::try_from(self.settings.remove_delay.as_millis()).unwrap_or(u64::MAX);
        let remove_at_ms = now_ms().saturating_add(delay);
        self.record(
            id,
            Phase::Terminated {
                state: state.name().to_owned(),
                reason: reason.to_owned(),
                message: message.clone(),
                exit_code,
                remove_at_ms,
            },
        )
        .await?;
        self.metrics.task_ended(state, reason);
        entry.view.send_modify(|v| {
            if v.advance(state, Some(reason.to_owned()), Some(message)) {
                v.exit_code = exit_code;
                v.pid = None;
            }
        });
        let mut names: Vec<String> = entry.view.borrow().docker_name.iter().cloned().collect();
        if entry
            .executor_box
            .load(std::sync::atomic::Ordering::Acquire)
        {
            names.push(
                crate::docker::ContainerName::executor(&self.agent_id().to_string(), id)
                    .to_string(),
            );
        }
        self.schedule_removal(id, names, remove_at_ms);
        Ok(())
    }

    /// Removes the containers at the stored due time, then records `Removed`; each step
    /// is tried again with backoff until it succeeds (after a restart, the plan picks the
    /// due time up from the store).
    pub(crate) fn schedule_removal(&self, id: Uuid, names: Vec<String>, at_ms: u64) {
        let docker = self.docker.clone();
        let store = self.store.clone();
        let store_failed = self.store_failed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms()))).await;
            let mut wait = BACKOFF.0;
            for name in names {
                while let Err(e) = docker.rm(&name).await {
                    tracing::warn!(%id, "cannot remove container {name} ({e}); trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = crate::backoff::doubled(wait, BACKOFF.1);
                }
            }
            loop {
                let removed = store
                    .container(id)
                    .ok()
                    .flatten()
                    .is_some_and(|s| matches!(s.last.phase, Phase::Removed));
                if removed {
                    return;
                }
                match super::record_phase(&store, id, Phase::Removed).await {
                    Ok(()) => return,
                    // The store takes no write after this; the agent stops, and the plan
                    // removes at the next start.
                    Err(StoreError::NotDurable(e)) => {
                        tracing::error!(%id, "cannot record the removal: {e}");
                        super::note_store_failure(&store_failed, &e);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(%id, "cannot record the removal ({e}); trying again in {wait:?}");
                        tokio::time::sleep(wait).await;
                        wait = crate::backoff::doubled(wait, BACKOFF.1);
                    }
                }
            }
        });
    }
}

/// What ends a launch step early: a kill, or the launch's registration deadline.
struct Watch<'a> {
    kill: &'a mut watch::Receiver<Option<KillRequest>>,
    due: tokio::time::Instant,
}

/// What carries an executor-mode container's output, and says by ending when to ask
/// Docker how the container ended.
pub(crate) enum Carrier {
    /// The agent's own child `berth executor`.
    Child(tokio::process::Child),
    /// The agent itself, for a re-adopted container whose carrier died; whether the end
    /// came after Docker went away.
    Agent(tokio::task::JoinHandle<Result<bool, crate::executor::ExecutorError>>),
}

/// The ids of `user`, looked up off the reactor and within a bound (NSS may ask a server
/// that does not answer).
async fn run_as(user: Option<String>) -> Result<Option<RunAs>, (String, LookupError)> {
    let Some(user) = user else { return Ok(None) };
    RunAs::lookup_bounded(user.clone())
        .await
        .map(Some)
        .map_err(|e| (user, e))
}

/// Backoff of work that must be done in the end (an end's record, a removal) and of a
/// launch's Docker calls (pull, create) waiting for Docker: doubling from the first to
/// the last value.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

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

/// The reason a kill ends a task with when it came during the launch: nothing started.
fn launch_reason(reason: &str) -> &str {
    if reason == super::kill::REASON_TASK_KILLED {
        REASON_TASK_KILLED_DURING_LAUNCH
    } else {
        reason
    }
}

/// What an end comes from.
#[derive(Debug, Clone, Copy)]
enum EndCause {
    /// A launch step failed: a kill recorded meanwhile decides the end.
    LaunchStepFailed,
    /// Anything else, which took a recorded kill into account already (an executor's
    /// report, a recovery decision, a kill's own end).
    Decided,
}

/// The end recorded for a task whose launch step failed, given the end it came to (`state`, `reason`,
/// `message`) and the kill recorded for it, if any: a kill answered KILLING decides the
/// end, as a kill during the launch, and the message says how the launch failed. Pure.
fn end_under_kill(
    kill: Option<&KillRequest>,
    state: TaskState,
    reason: &str,
    message: String,
) -> (TaskState, String, String) {
    let Some(k) = kill else {
        return (state, reason.to_owned(), message);
    };
    let the_kills = state == k.state && (reason == k.reason || reason == launch_reason(&k.reason));
    if the_kills {
        return (state, reason.to_owned(), message);
    }
    (
        k.state,
        launch_reason(&k.reason).to_owned(),
        format!(
            "{} while launching; the launch failed meanwhile: {message}",
            k.message
        ),
    )
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

fn launch_grace(c: &Containerizer, id: Uuid) -> Duration {
    c.entry(id).map(|e| e.grace).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerizer::kill::{REASON_MAX_COMPLETION_TIME_REACHED, REASON_TASK_KILLED};

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

    #[test]
    fn a_recorded_kill_decides_the_end_a_failed_launch_step_comes_to() {
        let kill = |state, reason: &str, message: &str| KillRequest {
            grace: Duration::ZERO,
            state,
            reason: reason.to_owned(),
            message: message.to_owned(),
        };
        let on_request = kill(TaskState::Killed, REASON_TASK_KILLED, "killed on request");
        let deadline = kill(
            TaskState::Failed,
            REASON_MAX_COMPLETION_TIME_REACHED,
            "the task ran longer than its max_completion_time (1secs)",
        );
        let pull_failed = "failed to pull image x: denied";
        let cases = [
            // No kill: the end stands.
            (
                None,
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed),
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed.to_owned()),
            ),
            // The kill's own end, as a report or a killed launch step gives it: stands.
            (
                Some(&on_request),
                (TaskState::Killed, REASON_TASK_KILLED, "killed on request"),
                (TaskState::Killed, REASON_TASK_KILLED, "killed on request".to_owned()),
            ),
            (
                Some(&on_request),
                (TaskState::Killed, REASON_TASK_KILLED_DURING_LAUNCH, "killed while pulling"),
                (
                    TaskState::Killed,
                    REASON_TASK_KILLED_DURING_LAUNCH,
                    "killed while pulling".to_owned(),
                ),
            ),
            // A launch step that failed after the kill was answered KILLING.
            (
                Some(&on_request),
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed),
                (
                    TaskState::Killed,
                    REASON_TASK_KILLED_DURING_LAUNCH,
                    format!("killed on request while launching; the launch failed meanwhile: {pull_failed}"),
                ),
            ),
            (
                Some(&on_request),
                (TaskState::Failed, REASON_FETCHER_FAILED, "404"),
                (
                    TaskState::Killed,
                    REASON_TASK_KILLED_DURING_LAUNCH,
                    "killed on request while launching; the launch failed meanwhile: 404"
                        .to_owned(),
                ),
            ),
            // A max_completion_time kill keeps its own state and reason.
            (
                Some(&deadline),
                (TaskState::Failed, REASON_CONTAINER_LAUNCH_FAILED, pull_failed),
                (
                    TaskState::Failed,
                    REASON_MAX_COMPLETION_TIME_REACHED,
                    format!("the task ran longer than its max_completion_time (1secs) while launching; the launch failed meanwhile: {pull_failed}"),
                ),
            ),
        ];
        for (kill, (state, reason, message), (want_state, want_reason, want_message)) in cases {
            let (got_state, got_reason, got_message) =
                end_under_kill(kill, state, reason, message.to_owned());
            assert_eq!(
                (got_state, got_reason.as_str(), got_message.as_str()),
                (want_state, want_reason, want_message.as_str()),
                "{kill:?}: {state:?} {reason} {message}"
            );
        }
    }
}

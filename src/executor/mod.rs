//! The per-task executor process (`berth executor`), which outlives the agent.
//!
//! The agent spawns it in a new session with a pipe on its stdin and writes the
//! [`ExecutorLaunch`] only once the executor's identity is durable in the store. If the
//! agent dies before that, the pipe closes empty and the executor exits having created
//! nothing: there is no moment at which a container exists that no record announces.
//!
//! It then runs the task (`docker run -d`, or a plain process), sends its output to
//! the sandbox's `stdout` and `stderr` files (rotated by size, see [`rotate`]), and
//! reports RUNNING and the exit to the agent, retrying each report until the agent
//! acknowledges it.

mod follow;
pub mod outcome;
mod pipes;
mod report;
pub mod rotate;
pub(crate) mod sandbox_file;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

use crate::docker::{ContainerInfo, ContainerState, Docker, DockerConfig, DockerError, RunSpec};
use crate::model::StatusReport;
use outcome::{terminal_report, Exit};
use report::Reporter;

/// What the agent hands an executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorLaunch {
    /// The container (launch) this executor runs.
    pub container_id: Uuid,
    /// The agent's API socket, where reports go.
    pub api_socket: PathBuf,
    /// The task's sandbox on the host.
    pub sandbox: PathBuf,
    /// The Docker CLI and socket.
    pub docker_program: PathBuf,
    /// The Docker engine's socket.
    pub docker_socket: PathBuf,
    /// Time between SIGTERM and SIGKILL for a plain process.
    pub grace: Duration,
    /// How long to keep retrying a report while the agent is away.
    pub report_deadline: Duration,
    /// What to run.
    pub work: Work,
    /// How the sandbox's `stdout` and `stderr` are rotated; none: never (a launch from an
    /// agent before rotation).
    #[serde(default)]
    pub rotation: Option<rotate::Rotation>,
}

/// What an executor runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Work {
    /// A container: `docker run -d`, its output carried from Docker's log.
    Docker(Box<RunSpec>),
    /// Executor mode: the executor starts the task's created container (`docker start`)
    /// and carries its output to the sandbox; released only once its identity is
    /// recorded, so the container starts after the record that announces it.
    Attach {
        /// The created container.
        name: String,
    },

    /// A plain process in the sandbox, run as the executor's own user (the agent's).
    Process {
        /// Program and arguments.
        argv: Vec<String>,
        /// Environment on top of the executor's.
        env: Vec<(String, String)>,
    },
    /// A plain process in the sandbox, run as `user` (`command.user`). A variant of its
    /// own, not a field of `Process`: an executor from before users (an older
    /// `--docker_mesos_image` image) would ignore the field and run the task as root; it
    /// refuses a variant it does not know, and the task fails instead.
    ProcessAs {
        /// Program and arguments.
        argv: Vec<String>,
        /// Environment on top of the executor's.
        env: Vec<(String, String)>,
        /// The user it runs as.
        user: crate::run_as::RunAs,
    },
}

impl Work {
    /// A plain process, run as `user` if one is given.
    pub fn process(
        argv: Vec<String>,
        env: Vec<(String, String)>,
        user: Option<crate::run_as::RunAs>,
    ) -> Work {
        match user {
            Some(user) => Work::ProcessAs { argv, env, user },
            None => Work::Process { argv, env },
        }
    }
}

/// Why an executor stopped before its task's end was reported.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The launch on stdin is not valid.
    #[error("invalid launch on stdin: {0}")]
    Launch(String),
    /// A sandbox file could not be opened.
    #[error("cannot open {path}: {source}")]
    Sandbox {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The task could not be started at all.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// A plain process could not be started.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Docker did not answer for `--recovery_timeout` after the container's stream ended:
    /// the container is left for the agent to decide.
    #[error("Docker did not answer for {waited} after the container's stream ended; leaving the container for the agent to decide")]
    DockerGone {
        /// How long the executor waited.
        waited: String,
    },
    /// The agent has not answered for the report deadline (`--recovery_timeout`): the
    /// executor gives up, and the next agent start decides about its task.
    #[error("the agent at {} did not answer for {waited}; leaving {left} for the next agent start to decide", socket.display())]
    AgentGone {
        /// The agent's socket.
        socket: PathBuf,
        /// How long the executor waited.
        waited: String,
        /// What it leaves behind.
        left: &'static str,
    },
}

/// The exit status of an executor-mode carrier whose container ended after Docker went
/// away (a daemon restart): the agent, which reports in executor mode, names it.
pub const CARRIED_THROUGH_OUTAGE: i32 = 3;

/// What an executor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// The agent closed the pipe without a launch: nothing was run.
    Nothing,
    /// The task ran and its end was reported.
    Reported,
    /// Executor mode: the container's output was carried to its end, which came after
    /// Docker went away (`true`) or not.
    Carried(bool),
}

/// Sends this process's stderr to `path`, appended: an executor the agent spawns inherits
/// that file, but one in a container of its own (`--docker_mesos_image`) opens it itself,
/// so that its log goes on while the agent's container is down.
pub fn log_to(path: &Path) -> std::io::Result<()> {
    let file = sandbox_file::append(path)?;
    nix::unistd::dup2_stderr(&file)?;
    Ok(())
}

/// Reads the launch from `stdin` and runs it to the end.
pub async fn run(mut stdin: impl AsyncRead + Unpin) -> Result<Ran, ExecutorError> {
    let mut input = Vec::new();
    stdin
        .read_to_end(&mut input)
        .await
        .map_err(|e| ExecutorError::Launch(e.to_string()))?;
    if input.is_empty() {
        return Ok(Ran::Nothing);
    }
    let launch: ExecutorLaunch =
        serde_json::from_slice(&input).map_err(|e| ExecutorError::Launch(e.to_string()))?;
    match &launch.work {
        // Executor mode: the agent reports; this process only starts the container and
        // carries its output, through any Docker restart, until Docker confirms its end.
        Work::Attach { name } => {
            let term = terminate_handler()?;
            return carry(&launch, name, true, Some(term))
                .await
                .map(Ran::Carried);
        }
        Work::Docker(_) | Work::Process { .. } | Work::ProcessAs { .. } => {}
    }
    let reporter = Reporter::new(&launch);
    let exit = match &launch.work {
        Work::Docker(spec) => run_container(&launch, spec, &reporter).await?,
        Work::Process { argv, env } => run_process(&launch, argv, env, None, &reporter).await?,
        Work::ProcessAs { argv, env, user } => {
            run_process(&launch, argv, env, Some(user), &reporter).await?
        }
        Work::Attach { .. } => return Err(ExecutorError::Launch("carried twice".into())),
    };
    let report = terminal_report(reporter.next_seq(), &exit);
    reporter
        .send_last(report, "the task's end unreported")
        .await?;
    Ok(Ran::Reported)
}

fn open_sandbox_file(
    launch: &ExecutorLaunch,
    name: &'static str,
    limit: Option<rotate::Limit>,
) -> Result<rotate::Sink, ExecutorError> {
    rotate::Sink::open(&launch.sandbox, name, limit).map_err(|source| ExecutorError::Sandbox {
        path: launch.sandbox.join(name),
        source,
    })
}

/// What an executor that gives up on the agent while its task runs leaves behind.
const CONTAINER_LEFT: &str = "the container running";
/// The same for a plain process whose RUNNING was not answered yet.
const PROCESS_LEFT: &str = "the task's processes running";
/// A plain process whose executor gives up is killed: nothing could follow it.
const PROCESS_KILLED: &str =
    "the task killed (nothing can follow a plain process without its executor) and its end";

/// Polling interval while waiting for the container to show as running.
const INSPECT_INTERVAL: Duration = Duration::from_millis(100);

/// First wait for a Docker that does not answer; doubled up to the second.
const DOCKER_WAIT: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// How long reading the rest of a stopped container's log may take.
const LAST_WORDS: Duration = Duration::from_secs(30);

fn docker_of(launch: &ExecutorLaunch) -> Docker {
    Docker::new(DockerConfig {
        program: launch.docker_program.clone(),
        socket: launch.docker_socket.clone(),
        ..DockerConfig::default()
    })
}

/// Runs a container (`docker run -d`), carries its output to the sandbox through Docker's
/// log, reports RUNNING once Docker shows it running, and returns its end once Docker
/// confirms it.
async fn run_container(
    launch: &ExecutorLaunch,
    spec: &RunSpec,
    reporter: &Reporter,
) -> Result<Exit, ExecutorError> {
    let docker = docker_of(launch);
    // Installed before the container exists and never acted on: the agent stops
    // containers with `docker stop`, and Docker is what says the container ended.
    // SIGTERM's default action would end this executor and leave the container running
    // with nobody to report its end.
    let mut term = Some(terminate_handler()?);
    if let Some(failed) = start(launch, &docker, &spec.name, Some(spec)).await? {
        return Ok(failed);
    }
    let mut watch = Watch {
        positions: [follow::Position::default(); 2],
        running: None,
        reporter: Some(reporter),
    };
    let exit = watch_to_end(launch, &docker, &spec.name, &mut watch, &mut term).await?;
    let ran = matches!(exit, Exit::Container { .. } | Exit::AfterOutage { .. });
    if watch.running.is_none() && ran {
        // It ran and ended between two looks: RUNNING is still reported, so that every
        // task that ran shows STARTING, RUNNING, then its end, as Mesos reports it.
        let report = StatusReport::running(reporter.next_seq(), None, None);
        watch.running = Some(reporter.spawn_send(report, CONTAINER_LEFT));
    }
    if let Some(sending) = watch.running {
        // Keep the order RUNNING then terminal, as the agent expects.
        let _ = sending.await;
    }
    Ok(exit)
}

/// Carries a running executor-mode container's output on from where the sandbox's files
/// stand, starting nothing (so that a kill that stopped it just before is never undone),
/// until Docker confirms its end: the agent's own carrier, when the process that carried
/// it died. Whether the end came after Docker went away.
pub async fn carry_on(launch: &ExecutorLaunch, name: &str) -> Result<bool, ExecutorError> {
    carry(launch, name, false, None).await
}

/// Executor mode: starts the created container `name` (released only once this process
/// is recorded), or with `starting` false takes over a running one from where the
/// sandbox's files stand, and carries its output until Docker confirms its end; whether
/// that end came after Docker went away.
async fn carry(
    launch: &ExecutorLaunch,
    name: &str,
    starting: bool,
    mut term: Option<tokio::signal::unix::Signal>,
) -> Result<bool, ExecutorError> {
    let docker = docker_of(launch);
    let mut positions = [follow::Position::default(); 2];
    if starting {
        if let Some(failed) = start(launch, &docker, name, None).await? {
            // The agent reads the same from Docker and reports it.
            tracing::warn!(container = %name, "the container did not start: {failed:?}");
            return Ok(false);
        }
    } else {
        // Where the carrier before stood, as it saved it beside the files.
        positions = follow::taken_over(&launch.sandbox);
    }
    let mut watch = Watch {
        positions,
        running: None,
        reporter: None,
    };
    let exit = watch_to_end(launch, &docker, name, &mut watch, &mut term).await?;
    Ok(matches!(exit, Exit::AfterOutage { .. }))
}

/// Starts the container: `docker run -d` of `spec`, or `docker start` of the created
/// `name`. A call that fails is looked after with `docker inspect`: a container it started
/// all the same (its answer lost) is the one to follow; while Docker does not answer, or
/// has no such container after a call that never reached it, the call is made again (the
/// name is the task's alone, so a second call can never make a second container), up to
/// the report deadline. Returns the end of a container that could not be started.
async fn start(
    launch: &ExecutorLaunch,
    docker: &Docker,
    name: &str,
    spec: Option<&RunSpec>,
) -> Result<Option<Exit>, ExecutorError> {
    let mut wait = DOCKER_WAIT.0;
    let since = tokio::time::Instant::now();
    // Executor mode's container is created already; a `docker run -d` whose answer was
    // lost may have created it too, and then it is started, never run again.
    let mut created = spec.is_none();
    loop {
        let called = match spec {
            Some(spec) if !created => docker.run_detached(spec).await.map(drop),
            _ => docker.start(name).await,
        };
        let Err(error) = called else {
            return Ok(None);
        };
        let inspected = docker.inspect_by_api(name).await;
        if let Ok(Some(info)) = &inspected {
            if info.started_at.is_some() || info.state.is_live() {
                return Ok(None);
            }
            if info.state == ContainerState::Created && !created {
                created = true;
                continue;
            }
        }
        // A call that timed out may be under way still: Docker is asked again, and the
        // container's name makes sure there is only ever one.
        let away = inspected.is_err()
            || crate::docker::listing::docker_out_of_reach(&error)
            || matches!(error, DockerError::Timeout { .. });
        if !away {
            // Docker answered and refused: the words `docker run` would have printed go
            // where the task's own would have.
            let (code, said) = match &error {
                DockerError::Failed { code, stderr, .. } => (*code, stderr.clone()),
                other => (None, other.to_string()),
            };
            note(&launch.sandbox.join("stderr"), &said);
            return Ok(Some(Exit::RunFailed {
                code,
                stderr_tail: said,
            }));
        }
        if since.elapsed() >= launch.report_deadline {
            return Err(ExecutorError::DockerGone {
                waited: crate::duration::format(launch.report_deadline),
            });
        }
        tracing::warn!(container = %name, "Docker does not answer the start ({error}); trying again in {wait:?}");
        tokio::time::sleep(wait).await;
        wait = crate::backoff::doubled(wait, DOCKER_WAIT.1);
    }
}

/// What watching a container carries from one follow of its log to the next.
struct Watch<'a> {
    /// Where the sandbox's `stdout` and `stderr` stand in Docker's log.
    positions: [follow::Position; 2],
    /// RUNNING, once it is being sent.
    running: Option<tokio::task::JoinHandle<Result<(), ExecutorError>>>,
    /// Who reports; none in executor mode, where the agent does.
    reporter: Option<&'a Reporter>,
}

/// Follows the container's log until Docker confirms its end: a log that ends is not the
/// container's end (a daemon restart ends it too), `docker inspect` says. A Docker that
/// does not answer is waited for, up to the report deadline (`--recovery_timeout`); a
/// container that runs on is followed again from where the sandbox's files stand.
async fn watch_to_end(
    launch: &ExecutorLaunch,
    docker: &Docker,
    name: &str,
    watch: &mut Watch<'_>,
    term: &mut Option<tokio::signal::unix::Signal>,
) -> Result<Exit, ExecutorError> {
    let stderr = launch.sandbox.join("stderr");
    let mut outage = false;
    let mut wait = DOCKER_WAIT.0;
    let mut away_since: Option<tokio::time::Instant> = None;
    // Docker cannot give this container's log: its output is not carried; it is watched
    // with `docker inspect` alone.
    let mut unreadable = false;
    let mut poll = INSPECT_INTERVAL;
    loop {
        let followed = if unreadable {
            pause(poll, watch.reporter).await?;
            poll = crate::backoff::doubled(poll, DOCKER_WAIT.1);
            Ok(())
        } else {
            follow_reporting(launch, docker, name, watch, term).await?
        };
        // The log ended while the container may run on: the daemon went away (not a
        // write of the sandbox's files that failed here).
        let daemon_side = match &followed {
            Ok(()) => !unreadable,
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                unreadable = true;
                note(&stderr, &format!("berth: Docker cannot give this container's log ({e}); its output is not carried to the sandbox"));
                false
            }
            Err(e) => {
                tracing::warn!(container = %name, "following the container's log broke off ({e})");
                from_the_daemon(e)
            }
        };
        let broke = followed.is_err() && !unreadable;
        let inspected = docker.inspect_by_api(name).await;
        note_running(watch, &inspected);
        match follow::next(&inspected, outage, || tail(&stderr, 1024)) {
            follow::Next::Report(exit) => {
                if (outage || broke) && !unreadable {
                    // What it said since the last follow broke off, up to its end, is in
                    // Docker's log only; the container stopped, so the log ends.
                    let last = follow::follow(
                        &launch.docker_socket,
                        name,
                        &launch.sandbox,
                        launch.rotation,
                        &mut watch.positions,
                    );
                    match tokio::time::timeout(LAST_WORDS, last).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(container = %name, "cannot read the rest of the container's output from Docker's log ({e})")
                        }
                        Err(_) => {
                            tracing::warn!(container = %name, "the rest of the container's output did not come within {LAST_WORDS:?}")
                        }
                    }
                }
                return Ok(exit);
            }
            follow::Next::WaitForDocker => {
                outage = true;
                let since = *away_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= launch.report_deadline {
                    return Err(ExecutorError::DockerGone {
                        waited: crate::duration::format(launch.report_deadline),
                    });
                }
                if let Err(e) = &inspected {
                    tracing::warn!(container = %name, "Docker does not answer after the container's log ended ({e}); asking again in {wait:?}");
                }
                pause(wait, watch.reporter).await?;
                wait = crate::backoff::doubled(wait, DOCKER_WAIT.1);
            }
            follow::Next::FollowAgain if unreadable => {}
            follow::Next::FollowAgain => {
                away_since = None;
                if outage {
                    // Followed before and live still: the log ended early again.
                    pause(wait, watch.reporter).await?;
                    wait = crate::backoff::doubled(wait, DOCKER_WAIT.1);
                }
                outage = outage || daemon_side;
                tracing::warn!(container = %name, "the container runs on after its log ended (a daemon restart?); following it again");
            }
        }
    }
}

/// Whether a follow that broke off says the daemon went away, rather than this side
/// failing (a full disk, a message too long).
fn from_the_daemon(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionReset
            | ConnectionAborted
            | ConnectionRefused
            | NotFound
            | UnexpectedEof
            | TimedOut
            | BrokenPipe
    )
}

/// RUNNING, once Docker shows the container running and it was not reported yet.
fn note_running(watch: &mut Watch<'_>, inspected: &Result<Option<ContainerInfo>, DockerError>) {
    let (Some(reporter), None, Ok(Some(info))) = (watch.reporter, &watch.running, inspected) else {
        return;
    };
    if info.state == ContainerState::Running {
        let report = StatusReport::running(reporter.next_seq(), info.pid, None);
        watch.running = Some(reporter.spawn_send(report, CONTAINER_LEFT));
    }
}

/// Appends a line of berth's own to a sandbox file, where the person reading the task's
/// output looks.
fn note(path: &Path, line: &str) {
    if let Ok(mut file) = sandbox_file::append(path) {
        if let Err(e) = std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes()) {
            tracing::warn!("cannot write to {}: {e}", path.display());
        }
    }
}

/// Waits `wait`, unless the reporter gives up on the agent meanwhile.
async fn pause(wait: Duration, reporter: Option<&Reporter>) -> Result<(), ExecutorError> {
    match reporter {
        Some(reporter) => tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = reporter.given_up() => Err(reporter.gave_up_error(CONTAINER_LEFT)),
        },
        None => {
            tokio::time::sleep(wait).await;
            Ok(())
        }
    }
}

/// One follow of the log to its end, reporting RUNNING (with a reporter) once Docker shows
/// the container running. The outer error is the reporter giving up on the agent; the
/// inner one, the follow breaking off.
async fn follow_reporting(
    launch: &ExecutorLaunch,
    docker: &Docker,
    name: &str,
    watch: &mut Watch<'_>,
    term: &mut Option<tokio::signal::unix::Signal>,
) -> Result<std::io::Result<()>, ExecutorError> {
    let following = follow::follow(
        &launch.docker_socket,
        name,
        &launch.sandbox,
        launch.rotation,
        &mut watch.positions,
    );
    tokio::pin!(following);
    let reporter = watch.reporter;
    // The first look is at once: `docker run -d` and `docker start` return once the
    // container runs, so it is RUNNING the moment the engine says so.
    let mut look_at = tokio::time::Instant::now();
    loop {
        let asking = reporter.is_some() && watch.running.is_none();
        tokio::select! {
            followed = &mut following => return Ok(followed),
            // Not stopped: the next agent start finds it running and decides.
            () = async {
                match reporter {
                    Some(r) => r.given_up().await,
                    None => std::future::pending().await,
                }
            } => {
                let reporter = reporter.ok_or_else(|| ExecutorError::Launch("no reporter".into()))?;
                return Err(reporter.gave_up_error(CONTAINER_LEFT));
            }
            _ = async {
                match term.as_mut() {
                    Some(term) => term.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(r) = reporter {
                    r.leave_soon();
                }
                tracing::warn!(container = %name, "SIGTERM: a container is stopped through Docker; still following it to its end");
            }
            () = tokio::time::sleep_until(look_at), if asking => {
                // A failed or hung inspect is tried again at the next tick: the daemon may
                // be slow.
                look_at = tokio::time::Instant::now() + INSPECT_INTERVAL;
                if let (Some(r), Ok(Some(info))) = (reporter, docker.inspect_by_api(name).await) {
                    if info.state == ContainerState::Running {
                        let report = StatusReport::running(r.next_seq(), info.pid, None);
                        watch.running = Some(r.spawn_send(report, CONTAINER_LEFT));
                    }
                }
            }
        }
    }
}

/// Runs a plain process in the sandbox, its output carried through pipes to the sandbox's
/// rotated files, reports RUNNING, and returns its end; a kill (SIGTERM to this executor)
/// ends its process group.
async fn run_process(
    launch: &ExecutorLaunch,
    argv: &[String],
    env: &[(String, String)],
    user: Option<&crate::run_as::RunAs>,
    reporter: &Reporter,
) -> Result<Exit, ExecutorError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| ExecutorError::Launch("empty argv".into()))?;
    // Installed before the task starts: a kill arriving at any moment after it (even
    // right after RUNNING) must reach the handler below, not SIGTERM's default action,
    // which would end this executor and leave the task's process group running.
    let mut term = terminate_handler()?;
    let rotation = launch.rotation;
    let stdout = open_sandbox_file(launch, "stdout", rotation.map(|r| r.stdout))?;
    let stderr = open_sandbox_file(launch, "stderr", rotation.map(|r| r.stderr))?;
    let spawn_error = |source| ExecutorError::Spawn {
        program: program.clone(),
        source,
    };
    let (out_write, out_read) = tokio::net::unix::pipe::pipe().map_err(spawn_error)?;
    let (err_write, err_read) = tokio::net::unix::pipe::pipe().map_err(spawn_error)?;
    // The command, and this side's write ends with it, is dropped once spawned: the pipes
    // then belong to the task's processes alone.
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.sandbox)
        .stdin(Stdio::null())
        .stdout(out_write.into_blocking_fd().map_err(spawn_error)?)
        .stderr(err_write.into_blocking_fd().map_err(spawn_error)?)
        .process_group(0);
    pipes::held_by_task(&mut command, [&out_read, &err_read]);
    if let Some(user) = user {
        user.apply(&mut command);
    }
    let mut child = command.spawn().map_err(spawn_error)?;
    drop(command);
    let (reaped, reaped_seen) = tokio::sync::watch::channel(false);
    let carrying = [
        tokio::spawn(pipes::carry(out_read, stdout, reaped_seen.clone())),
        tokio::spawn(pipes::carry(err_read, stderr, reaped_seen)),
    ];
    let ended = watch_process(launch, &mut child, &mut term, reporter).await;
    // Its output up to its end is in the files before its end is reported.
    let _ = reaped.send(true);
    for carrier in carrying {
        let _ = carrier.await;
    }
    // What the task left in this session ends with it, as Mesos's containerizer destroys
    // a task's container at its end: once the carriers stop reading, a leftover that
    // writes on would block on a full pipe it holds open itself, and were this executor
    // to leave while the agent is down, nothing would be left to prove the session the
    // task's.
    match crate::identity::kill_own_session_members() {
        Ok(0) => {}
        Ok(n) => tracing::warn!(processes = n, "killed what the task left in its session"),
        Err(e) => tracing::warn!("cannot kill what the task left in its session: {e}"),
    }
    ended
}

/// Waits for the task's end, reporting RUNNING; a kill ends its process group.
async fn watch_process(
    launch: &ExecutorLaunch,
    child: &mut tokio::process::Child,
    term: &mut tokio::signal::unix::Signal,
    reporter: &Reporter,
) -> Result<Exit, ExecutorError> {
    let pid = child.id();
    // Read while the child is unreaped, so that the pid is still the task's.
    let start_ticks = pid
        .and_then(|p| crate::identity::of_pid(p).ok().flatten())
        .map(|found| found.start_ticks);
    let running = reporter.spawn_send(
        StatusReport::running(reporter.next_seq(), pid, start_ticks),
        PROCESS_LEFT,
    );
    // For the test of a kill right after RUNNING: `executor-task-started=sleep(MS)` in
    // FAILPOINTS holds the executor here.
    crate::crash_point::hit("executor-task-started");
    let status = tokio::select! {
        status = child.wait() => status,
        () = reporter.given_up() => {
            // Nothing can follow a plain process once its executor is gone (a container
            // Docker can): it ends with the executor, never left to run a second time.
            if let Some(group) = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw) {
                let _ = killpg(group, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            return Err(reporter.gave_up_error(PROCESS_KILLED));
        }
        _ = term.recv() => {
            reporter.leave_soon();
            // The agent asks for a kill: SIGTERM to the task's group, SIGKILL after grace.
            let group = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw);
            if let Some(group) = group {
                let _ = killpg(group, Signal::SIGTERM);
            }
            match tokio::time::timeout(launch.grace, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    if let Some(group) = group {
                        let _ = killpg(group, Signal::SIGKILL);
                    }
                    child.wait().await
                }
            }
        }
    };
    let _ = running.await;
    use std::os::unix::process::ExitStatusExt;
    Ok(match status {
        Ok(s) => Exit::Process {
            code: s.code(),
            signal: s.signal(),
        },
        Err(_) => Exit::Process {
            code: None,
            signal: None,
        },
    })
}

/// Runs blocking file work (the sandbox's files, their rotation) so that the runtime's
/// other tasks move to another worker meanwhile, where the runtime allows it: a slow disk
/// then holds up no spawned task (the pipes' carriers, the reports). Work on the root
/// future (the container's follower) runs in place, as before.
fn on_disk<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A handler for SIGTERM, from now on for the life of the process.
fn terminate_handler() -> Result<tokio::signal::unix::Signal, ExecutorError> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|source| {
        ExecutorError::Spawn {
            program: "signal handler".into(),
            source,
        }
    })
}

/// The last `max` bytes of a file, as text; empty if it cannot be read.
fn tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = sandbox_file::read(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = file.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Work` as an executor from before `command.user` reads it.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum WorkBeforeUsers {
        Docker(serde_json::Value),
        Attach {
            name: String,
        },
        Process {
            argv: Vec<String>,
            env: Vec<(String, String)>,
        },
    }

    #[test]
    fn an_executor_from_before_users_refuses_a_task_that_has_one() {
        let nobody = crate::run_as::RunAs {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
        };
        let argv = vec!["id".to_owned()];
        let env = vec![("A".to_owned(), "1".to_owned())];
        // Run as root by an executor that does not know the user: refused instead.
        let as_user = serde_json::to_value(Work::process(
            argv.clone(),
            env.clone(),
            Some(nobody.clone()),
        ))
        .expect("serialize");
        assert!(
            serde_json::from_value::<WorkBeforeUsers>(as_user.clone()).is_err(),
            "{as_user}"
        );
        let read: Work = serde_json::from_value(as_user).expect("read");
        assert_eq!(read, Work::process(argv.clone(), env.clone(), Some(nobody)));
        // Without a user, the form it knows, both ways.
        let plain = serde_json::to_value(Work::process(argv.clone(), env.clone(), None))
            .expect("serialize");
        assert!(serde_json::from_value::<WorkBeforeUsers>(plain).is_ok());
        let old = serde_json::json!({"Process": {"argv": argv, "env": env}});
        let read: Work = serde_json::from_value(old).expect("an older launch reads");
        assert_eq!(read, Work::process(argv, env, None));
    }

    #[test]
    fn a_launch_from_an_agent_before_rotation_still_reads() {
        let launch = ExecutorLaunch {
            container_id: Uuid::nil(),
            api_socket: "/w/berth.sock".into(),
            sandbox: "/w/sandboxes/x".into(),
            docker_program: "docker".into(),
            docker_socket: "/var/run/docker.sock".into(),
            grace: Duration::from_secs(1),
            report_deadline: Duration::from_secs(900),
            work: Work::Process {
                argv: vec!["sh".into()],
                env: Vec::new(),
            },
            rotation: None,
        };
        let mut json = serde_json::to_value(&launch).expect("serialize");
        json.as_object_mut().expect("an object").remove("rotation");
        let read: ExecutorLaunch = serde_json::from_value(json).expect("an older launch reads");
        assert_eq!(read, launch);
    }
}

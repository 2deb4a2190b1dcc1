//! The per-task executor process (`berth executor`), which outlives the agent.
//!
//! The agent spawns it in a new session with a pipe on its stdin and writes the
//! [`ExecutorLaunch`] only once the executor's identity is durable in the store. If the
//! agent dies before that, the pipe closes empty and the executor exits having created
//! nothing: there is no moment at which a container exists that no record announces.
//!
//! It then runs the task (`docker run` attached, or a plain process), sends its output to
//! the sandbox's `stdout` and `stderr` files, and reports RUNNING and the exit to the
//! agent, retrying each report until the agent acknowledges it.

mod follow;
pub mod outcome;
mod report;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

use crate::api::wire::StatusReport;
use crate::docker::{ContainerState, Docker, DockerConfig, DockerError, RunSpec};
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
}

/// What an executor runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Work {
    /// A container, with `docker run` attached.
    Docker(Box<RunSpec>),
    /// Executor mode: the executor becomes `docker start -a` of the task's created
    /// container, carrying its output to the sandbox; released only once its identity is
    /// recorded, so the container starts after the record that announces it.
    Attach {
        /// The created container.
        name: String,
    },
    /// A plain process in the sandbox.
    Process {
        /// Program and arguments.
        argv: Vec<String>,
        /// Environment on top of the executor's.
        env: Vec<(String, String)>,
    },
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

/// Reads the launch from `stdin` and runs it to the end.
///
/// Returns `Ok(false)` when the agent closed the pipe without a launch: nothing was run.
pub async fn run(mut stdin: impl AsyncRead + Unpin) -> Result<bool, ExecutorError> {
    let mut input = Vec::new();
    stdin
        .read_to_end(&mut input)
        .await
        .map_err(|e| ExecutorError::Launch(e.to_string()))?;
    if input.is_empty() {
        return Ok(false);
    }
    let launch: ExecutorLaunch =
        serde_json::from_slice(&input).map_err(|e| ExecutorError::Launch(e.to_string()))?;
    if let Work::Attach { name } = &launch.work {
        let docker = Docker::new(DockerConfig {
            program: launch.docker_program.clone(),
            socket: launch.docker_socket.clone(),
            ..DockerConfig::default()
        });
        return Err(ExecutorError::Spawn {
            program: format!("{} start -a {name}", launch.docker_program.display()),
            source: docker.exec_start_attached(name),
        });
    }
    let reporter = Reporter::new(&launch);
    let stdout = open_sandbox_file(&launch.sandbox, "stdout")?;
    let stderr = open_sandbox_file(&launch.sandbox, "stderr")?;
    let exit = match &launch.work {
        Work::Docker(spec) => run_container(&launch, spec, stdout, stderr, &reporter).await?,
        Work::Process { argv, env } => {
            run_process(&launch, argv, env, stdout, stderr, &reporter).await?
        }
        Work::Attach { .. } => return Err(ExecutorError::Launch("attached twice".into())),
    };
    let report = terminal_report(reporter.next_seq(), &exit);
    reporter
        .send_last(report, "the task's end unreported")
        .await?;
    Ok(true)
}

fn open_sandbox_file(sandbox: &Path, name: &str) -> Result<File, ExecutorError> {
    let path = sandbox.join(name);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| ExecutorError::Sandbox { path, source })
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

async fn run_container(
    launch: &ExecutorLaunch,
    spec: &RunSpec,
    stdout: File,
    stderr: File,
    reporter: &Reporter,
) -> Result<Exit, ExecutorError> {
    let docker = Docker::new(DockerConfig {
        program: launch.docker_program.clone(),
        socket: launch.docker_socket.clone(),
        ..DockerConfig::default()
    });
    // Installed before the container exists and never acted on: the agent stops
    // containers with `docker stop`, and `docker run` is what reports the exit. SIGTERM's
    // default action would end this executor and leave the container running with nobody
    // to report its end.
    let mut term = terminate_handler()?;
    let mut running_reported = None;
    let stderr_path = launch.sandbox.join("stderr");
    let mut marks;
    let clone = |file: &File, name: &str| {
        file.try_clone().map_err(|source| ExecutorError::Sandbox {
            path: launch.sandbox.join(name),
            source,
        })
    };
    let mut unreached_since: Option<tokio::time::Instant> = None;
    let mut wait = DOCKER_WAIT.0;
    let status = 'run: loop {
        // The files' bytes so far are not this container's: the words of a `docker run`
        // that never reached the daemon, or someone else's.
        marks = [
            follow::Mark::at(&launch.sandbox.join("stdout")),
            follow::Mark::at(&stderr_path),
        ];
        let mut child =
            docker.spawn_attached(spec, clone(&stdout, "stdout")?, clone(&stderr, "stderr")?)?;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                // Not stopped: the next agent start finds it running and decides.
                () = reporter.given_up() => return Err(reporter.gave_up_error(CONTAINER_LEFT)),
                _ = term.recv() => {
                    reporter.leave_soon();
                    tracing::warn!(
                        container = %spec.name,
                        "SIGTERM: a container is stopped through Docker; still following it to its end, then reporting it briefly"
                    );
                }
                _ = tokio::time::sleep(INSPECT_INTERVAL), if running_reported.is_none() => {
                    // A failed or hung inspect is retried at the next tick: the daemon may be
                    // slow, and `docker run` is still the authority on the exit.
                    if let Ok(Some(info)) = docker.inspect(&spec.name).await {
                        if info.state == ContainerState::Running {
                            let report = StatusReport::running(reporter.next_seq(), info.pid, None);
                            running_reported = Some(reporter.spawn_send(report, CONTAINER_LEFT));
                        }
                    }
                }
            }
        };
        let run_code = status.as_ref().ok().and_then(|s| s.code());
        // The words alone could be the task's own (its stderr shares the file): a Docker
        // that does not answer right now either is what says `docker run` never reached it.
        if running_reported.is_none()
            && follow::never_reached(run_code, &tail(&stderr_path, 512))
            && docker.inspect(&spec.name).await.is_err()
        {
            // `docker run` did not reach the daemon, so it created nothing: once Docker
            // answers, and if it has no such container, the task is run then.
            let since = *unreached_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= launch.report_deadline {
                return Err(ExecutorError::DockerGone {
                    waited: crate::duration::format(launch.report_deadline),
                });
            }
            tracing::warn!(container = %spec.name, "docker run could not reach the Docker daemon; trying again in {wait:?}");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(DOCKER_WAIT.1);
            if !matches!(docker.inspect(&spec.name).await, Ok(Some(_))) {
                continue 'run;
            }
        }
        break status;
    };
    let run_code = status.ok().and_then(|s| s.code());
    let mut following = Following {
        marks,
        running_reported: &mut running_reported,
        reporter,
    };
    let exit = confirmed_end(launch, &docker, spec, run_code, &mut following).await?;
    let ran = matches!(exit, Exit::Container { .. } | Exit::AfterOutage { .. });
    if running_reported.is_none() && ran {
        // It ran and ended between two looks: RUNNING is still reported, so that every
        // task that ran shows STARTING, RUNNING, then its end, as Mesos reports it.
        let report = StatusReport::running(reporter.next_seq(), None, None);
        running_reported = Some(reporter.spawn_send(report, CONTAINER_LEFT));
    }
    if let Some(sending) = running_reported {
        // Keep the order RUNNING then terminal, as the agent expects.
        let _ = sending.await;
    }
    Ok(exit)
}

/// First wait for a Docker that does not answer; doubled up to the second.
const DOCKER_WAIT: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// What following a container again carries from one follow to the next.
struct Following<'a> {
    /// Where the sandbox's `stdout` and `stderr` stand against Docker's log.
    marks: [follow::Mark; 2],
    /// RUNNING, once it is being sent.
    running_reported: &'a mut Option<tokio::task::JoinHandle<Result<(), ExecutorError>>>,
    reporter: &'a Reporter,
}

/// How the container ended, as Docker confirms it once `docker run` (which returned with
/// `run_code`) is over: a daemon that went away is waited for, up to the launch's report
/// deadline (`--recovery_timeout`), and a container that runs on is followed again.
async fn confirmed_end(
    launch: &ExecutorLaunch,
    docker: &Docker,
    spec: &RunSpec,
    run_code: Option<i32>,
    following: &mut Following<'_>,
) -> Result<Exit, ExecutorError> {
    let stderr = launch.sandbox.join("stderr");
    let mut outage = false;
    let mut wait = DOCKER_WAIT.0;
    let mut away_since: Option<tokio::time::Instant> = None;
    loop {
        let inspected = docker.inspect(&spec.name).await;
        match follow::next(&inspected, run_code, outage, || tail(&stderr, 1024)) {
            follow::Next::Report(exit) => {
                if let Exit::AfterOutage { .. } = exit {
                    // What the container wrote after Docker's stream broke off, up to its
                    // end, is in Docker's log only.
                    let spliced = follow::follow_again(
                        &launch.docker_socket,
                        &spec.name,
                        &launch.sandbox,
                        &mut following.marks,
                    )
                    .await;
                    if let Err(e) = spliced {
                        tracing::warn!(container = %spec.name, "cannot read the rest of the container's output from Docker's log ({e})");
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
                    tracing::warn!(container = %spec.name, "Docker does not answer after the container's stream ended ({e}); asking again in {wait:?}");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(DOCKER_WAIT.1);
            }
            follow::Next::FollowAgain => {
                away_since = None;
                if outage {
                    // Followed before and live still: the stream ended early again (a log
                    // driver Docker cannot read back, a container restarting).
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(DOCKER_WAIT.1);
                }
                outage = true;
                if following.running_reported.is_none() {
                    // Docker's stream ended before the executor saw it running: it runs.
                    let pid = inspected
                        .as_ref()
                        .ok()
                        .and_then(Option::as_ref)
                        .and_then(|i| i.pid);
                    let report = StatusReport::running(following.reporter.next_seq(), pid, None);
                    *following.running_reported =
                        Some(following.reporter.spawn_send(report, CONTAINER_LEFT));
                }
                tracing::warn!(container = %spec.name, "the container runs on after Docker's stream ended (a daemon restart?); following its output again");
                let followed = follow::follow_again(
                    &launch.docker_socket,
                    &spec.name,
                    &launch.sandbox,
                    &mut following.marks,
                )
                .await;
                if let Err(e) = followed {
                    tracing::warn!(container = %spec.name, "following the container again failed ({e})");
                }
            }
        }
    }
}

async fn run_process(
    launch: &ExecutorLaunch,
    argv: &[String],
    env: &[(String, String)],
    stdout: File,
    stderr: File,
    reporter: &Reporter,
) -> Result<Exit, ExecutorError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| ExecutorError::Launch("empty argv".into()))?;
    // Installed before the task starts: a kill arriving at any moment after it (even
    // right after RUNNING) must reach the handler below, not SIGTERM's default action,
    // which would end this executor and leave the task's process group running.
    let mut term = terminate_handler()?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.sandbox)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|source| ExecutorError::Spawn {
            program: program.clone(),
            source,
        })?;
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
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = file.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

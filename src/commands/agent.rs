//! `berth agent`: runs the node agent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth::agent::{self, AgentConfig};
use berth::containerizer::Settings;
use berth::docker::argv::LogLimit;
use berth::executor::rotate::{Limit, Rotation};
use clap::Args;

use super::logging::{init_logging, LogFormat};
use super::plan_args::PlanArgs;
use super::values::{duration, file_size, metrics_address, positive_duration, size};
use super::Failure;

/// Flags keep Mesos's names so that operators find them.
#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Run each task as its `command.user`, which must exist on this host: a plain
    /// process runs as that user, and its sandbox (a container's too) belongs to it. With
    /// false every task runs as the agent's user, and `command.user` is ignored.
    #[arg(long = "switch_user", default_value_t = true, action = clap::ArgAction::Set)]
    switch_user: bool,
    /// Grace between SIGTERM and SIGKILL when a task has no kill policy.
    #[arg(long = "docker_stop_timeout", default_value = "0secs", value_parser = duration)]
    docker_stop_timeout: Duration,
    /// How long a finished task's container is kept before removal.
    #[arg(long = "docker_remove_delay", default_value = "6hrs", value_parser = duration)]
    docker_remove_delay: Duration,
    /// How long a removed container's sandbox and records are kept.
    #[arg(long = "gc_delay", default_value = "1weeks", value_parser = duration)]
    gc_delay: Duration,
    /// How long executors keep retrying status reports while the agent is away.
    #[arg(long = "recovery_timeout", default_value = "15mins", value_parser = duration)]
    recovery_timeout: Duration,
    /// How long a fetch of a task's URI may go without receiving a byte before it fails
    /// the task (`0secs`: no limit, as in Mesos).
    #[arg(long = "fetcher_stall_timeout", default_value = "1mins", value_parser = duration)]
    fetcher_stall_timeout: Duration,
    /// How long a launch may take from the task's acceptance until its executor is handed
    /// the task (fetch, pull and container create included); then it is given up and the
    /// task ends FAILED with REASON_EXECUTOR_REGISTRATION_TIMEOUT.
    #[arg(long = "executor_registration_timeout", default_value = "1mins", value_parser = positive_duration)]
    executor_registration_timeout: Duration,
    /// The API's unix socket (default: <work_dir>/berth.sock), mode 0600. Only a stale
    /// socket there is replaced: never a file, nor a socket another agent serves.
    #[arg(long = "api_socket")]
    api_socket: Option<PathBuf>,
    /// Refuse to start on a stored record that does not decode (true), or quarantine it
    /// and go on (false).
    #[arg(long = "strict", default_value_t = true, action = clap::ArgAction::Set)]
    strict: bool,
    /// Registry credentials for pulls whose sandbox has none: the path of a Docker config
    /// file, or its JSON (`{"auths": ...}` or the legacy `.dockercfg` form).
    #[arg(long = "docker_config")]
    docker_config: Option<String>,
    /// The agent runs in a Docker container of its own, and each command task's executor
    /// runs in a container of its own from this image (see docs/operations.md, "The
    /// agent in a container").
    #[arg(long = "docker_mesos_image")]
    docker_mesos_image: Option<String>,
    /// Log format on stderr.
    #[arg(long = "log_format", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Also serve /metrics over plain HTTP on this IP:PORT (such as 127.0.0.1:9273), for
    /// Prometheus; nothing is bound without it.
    #[arg(long = "metrics_address", value_parser = metrics_address)]
    metrics_address: Option<std::net::SocketAddr>,
    #[command(flatten)]
    output: OutputArgs,
}

/// How tasks' output is bounded: the sandbox's files (Mesos's logrotate container
/// logger's parameters) and Docker's own copy.
#[derive(Args)]
struct OutputArgs {
    /// The most bytes a task's sandbox `stdout` holds before it is rotated to `stdout.1`
    /// (Mesos's logrotate logger's `max_stdout_size`).
    #[arg(long = "logrotate_max_stdout_size", value_name = "SIZE", default_value = "10MB", value_parser = file_size)]
    max_stdout_size: u64,
    /// How many rotated `stdout.N` files are kept (`rotate N` in Mesos's
    /// `logrotate_stdout_options`); the oldest beyond is removed.
    #[arg(long = "logrotate_stdout_files", value_name = "N", default_value_t = 5)]
    stdout_files: u32,
    /// The same as `--logrotate_max_stdout_size`, for `stderr`.
    #[arg(long = "logrotate_max_stderr_size", value_name = "SIZE", default_value = "10MB", value_parser = file_size)]
    max_stderr_size: u64,
    /// The same as `--logrotate_stdout_files`, for `stderr`.
    #[arg(long = "logrotate_stderr_files", value_name = "N", default_value_t = 5)]
    stderr_files: u32,
    /// The most bytes of one file of Docker's own log of a task's container (json-file's
    /// `max-size`). Task containers then log with json-file whatever the daemon's default
    /// driver (a daemon-wide journald or fluentd is not used for them), since the executor
    /// must be able to read their output back, bounded; `0B` leaves the daemon's default driver
    /// and options, as does a task's own `log-driver` or `log-opt` parameter.
    #[arg(long = "docker_log_max_size", value_name = "SIZE", default_value = "10MB", value_parser = size)]
    docker_log_max_size: u64,
    /// How many files Docker keeps of that log (json-file's `max-file`).
    #[arg(long = "docker_log_max_files", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    docker_log_max_files: u32,
}

impl OutputArgs {
    fn rotation(&self) -> Rotation {
        Rotation {
            stdout: Limit {
                max_size: self.max_stdout_size,
                files: self.stdout_files,
            },
            stderr: Limit {
                max_size: self.max_stderr_size,
                files: self.stderr_files,
            },
        }
    }

    fn docker_log(&self) -> Option<LogLimit> {
        (self.docker_log_max_size > 0).then_some(LogLimit {
            max_size: self.docker_log_max_size,
            max_files: self.docker_log_max_files,
        })
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM ({e}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub async fn run(mut args: AgentArgs, flags: String) -> Result<ExitCode, Failure> {
    init_logging(args.log_format);
    tracing::info!(version = berth::VERSION, flags = %flags, "berth agent starting");
    // Sandboxes are bind-mounted by their path, which Docker takes for a volume's
    // name unless it is absolute.
    args.plan.work_dir = std::path::absolute(&args.plan.work_dir)?;
    let api_socket = std::path::absolute(
        args.api_socket
            .unwrap_or_else(|| args.plan.work_dir.join("berth.sock")),
    )?;
    let docker_config = args
        .docker_config
        .as_deref()
        .map(berth::credentials::load_flag)
        .transpose()?;
    let network = berth::fetch::Network::from_env();
    let (said, warnings) = network.describe();
    for line in said {
        tracing::info!("fetcher: {line}");
    }
    for warning in warnings {
        tracing::warn!("fetcher: {warning}");
    }
    let fetcher = berth::fetch::Fetcher {
        limits: berth::fetch::Limits {
            stall_timeout: args.fetcher_stall_timeout,
            ..berth::fetch::Limits::default()
        },
        network,
    };
    let config = AgentConfig {
        docker: args.plan.docker.docker(),
        strict: args.strict,
        docker_config,
        recover: args.plan.recover,
        kill_orphans: args.plan.docker_kill_orphans,
        settings: Settings {
            work_dir: args.plan.work_dir,
            containerizers: args.plan.containerizers,
            switch_user: args.switch_user,
            sandbox_directory: args.plan.sandbox_directory,
            stop_timeout: args.docker_stop_timeout,
            remove_delay: args.docker_remove_delay,
            gc_delay: args.gc_delay,
            recovery_timeout: args.recovery_timeout,
            api_socket,
            executor_program: std::env::current_exe().map_err(|e| {
                format!("cannot find the berth binary to start executors from: {e}")
            })?,
            pull_fallback_home: None,
            docker_mesos_image: args.docker_mesos_image,
            own_container: None,
            docker_socket_on_host: None,
            rotation: Some(args.output.rotation()),
            docker_log: args.output.docker_log(),
            fetcher,
            executor_registration_timeout: args.executor_registration_timeout,
        },
        metrics_address: args.metrics_address,
    };
    match agent::run(config, shutdown_signal()).await {
        Err(e @ agent::AgentError::StoreFailed(_)) => {
            // Out at once: the runtime's shutdown would drop tasks holding the store,
            // and closing it would write (see `agent::run`). What it acknowledged is
            // durable, as after a SIGKILL, which berth is built for.
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
        done => done?,
    }
    Ok(ExitCode::SUCCESS)
}

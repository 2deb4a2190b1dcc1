//! The `berth` binary: parses flags, sets up logging, and dispatches to the library.
//! Errors are reported once, here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth::agent::{self, AgentConfig};
use berth::api::client::Client;
use berth::api::wire::StateRequest;
use berth::cli::{self, LaunchFlags};
use berth::containerizer::Settings;
use berth::docker::argv::LogLimit;
use berth::docker::{Docker, DockerConfig};
use berth::executor::rotate::{Limit, Rotation};
use berth::recovery::plan::Recover;
use berth::state_command::{self, StateCommandError, View};
use berth::task::ContainerizerKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// berth: run Mesos tasks in Docker containers, and survive the agent's own crashes.
#[derive(Parser)]
#[command(name = "berth", version = berth::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node agent.
    #[command(
        after_help = "Every flag may also come from the environment: BERTH_<FLAG> (BERTH_WORK_DIR=/srv/berth), and the flags named as Mesos's from MESOS_<FLAG> (MESOS_DOCKER_REMOVE_DELAY=1hrs); the command line wins, then BERTH_, then MESOS_. A boolean flag given bare (--strict) means true."
    )]
    Agent(AgentArgs),
    /// Launch a task; prints the new container's id.
    Launch(LaunchArgs),
    /// Kill a task's container.
    Kill(KillArgs),
    /// Wait for a task to end; prints its final status and exits with the task's exit
    /// code.
    ///
    /// Exits 0 for FINISHED; otherwise with the task's own exit code when it has one
    /// (1-255); without one (or with 0, as a task that traps SIGTERM): 137 for KILLED,
    /// 125 for FAILED (it never ran: a pull, fetch or `docker run` failed), 255 for LOST.
    /// berth's own failures (no agent, an unknown id) exit 1.
    Wait(WaitCmdArgs),
    /// List the agent's containers: id, task, image, state, age, exit code, reason and
    /// message.
    Ps(PsArgs),
    /// Print a task's output from its sandbox (also when the agent is down), or from
    /// Docker's log with --since.
    Logs(LogsArgs),
    /// Print one task as JSON: the agent's view of it (`task`), its Docker container's
    /// `docker inspect` (`docker`), and its records in the store (`history`, `statuses`).
    Inspect(IdArgs),
    /// Print every task's status updates in the order they were recorded (`-f` to follow),
    /// each with its position: `--after POSITION` goes on from there, missing nothing.
    Events(EventsArgs),
    /// Print a shell completion script: `source <(berth completions bash)`.
    Completions(CompletionsArgs),
    /// Print berth's man page (roff), or write one per command into a directory.
    Man(ManArgs),
    /// Inspect the checkpoint store (through the agent while it runs, offline otherwise).
    State(StateArgs),
    /// Say whether the agent is ready (`ok`) or still recovering, its id, and whether Docker
    /// answers it.
    ///
    /// Exits 0 when the agent is ready and Docker answers, 1 while it starts or recovers, 3
    /// when it is ready but Docker does not answer (launches and kills wait for it).
    /// Answers at once: never waits for the agent.
    Health(HealthArgs),
    /// Print the recovery plan a start of the agent would carry out (with --dry-run).
    Recover(RecoverArgs),
    /// Run a chaos campaign against an agent of its own, judged by an independent
    /// checker; or heal one.
    Chaos(ChaosArgs),
    /// Run one task's executor (started by the agent; not for people).
    #[command(hide = true)]
    Executor(ExecutorArgs),
}

#[derive(Args)]
struct ExecutorArgs {
    /// Append this process's own log (stderr) to this file: an executor in a container
    /// of its own (`--docker_mesos_image`) writes its sandbox's log itself.
    #[arg(long = "log")]
    log: Option<PathBuf>,
}

#[derive(Args)]
struct ChaosArgs {
    #[command(subcommand)]
    command: ChaosCommand,
}

#[derive(Subcommand)]
enum ChaosCommand {
    /// Start an agent of its own in a directory of its own, send a seeded workload, inject
    /// seeded faults, heal them, let it settle, check the promise, and remove what it made.
    ///
    /// Exits 0 when the promise held, 1 when it was violated, 2 when the run proves
    /// nothing (no task started, the run could not finish, or Ctrl-C stopped it), 3 when it
    /// refused to start.
    Run(ChaosRunArgs),
    /// Undo a run's faults and remove what it made, from its directory alone (also after
    /// the harness itself was killed).
    Heal(ChaosHealArgs),
    /// Run a run's schedule again, `--times` times, and say how often it ended the same
    /// way. The schedule is replayed; timing is not.
    Replay(ChaosReplayArgs),
    /// Resume a paused agent after a while (the campaign's watchdog; not for people).
    #[command(hide = true)]
    Resume(ChaosResumeArgs),
}

/// What `berth chaos run` and `replay` both take: how a campaign is run, whatever its
/// schedule.
#[derive(Args)]
struct ChaosCampaignArgs {
    /// How long the agent is given to settle once every fault is healed.
    #[arg(long = "settle", default_value = "60secs", value_parser = duration)]
    settle: Duration,
    /// The image the workload's tasks run.
    #[arg(long = "image", default_value = berth::chaos::run_command::IMAGE)]
    image: String,
    /// The image the sweep's pulled tasks pull (every time) and run: the agent's `docker
    /// pull` crash points need a registry (`scripts/docker-engine registry` runs this one).
    #[arg(long = "pull-image", default_value = berth::chaos::workload::PULL_IMAGE)]
    pull_image: String,
    /// How the daemon behind --docker_socket is restarted (run with `sh -c`; only for a
    /// schedule that allows daemon faults) [default: systemctl restart docker, where
    /// systemd runs, for the default socket].
    #[arg(long = "restart-daemon-command", alias = "restart_daemon_command")]
    restart_daemon_command: Option<String>,
    /// Also write a JUnit XML file there: a case per invariant and per crash point armed,
    /// a suite per run.
    #[arg(long = "junit")]
    junit: Option<PathBuf>,
    /// On a violation, cut the schedule down to the smallest that still fails the same
    /// way, spending at most about this long (`0s`: not at all); a replay shrinks its
    /// first failing run.
    #[arg(long = "shrink-budget", default_value = "10mins", value_parser = duration)]
    shrink_budget: Duration,
    /// Break the promise behind the agent's back once it settled (to see the checker
    /// catch it; for the harness's own tests).
    #[arg(long = "sabotage", hide = true, value_enum)]
    sabotage: Option<berth::chaos::campaign::Sabotage>,
    #[command(flatten)]
    docker: DockerArgs,
}

#[derive(Args)]
struct ChaosReplayArgs {
    /// The directory of the run to replay (its `schedule.json`, and its `report.json` if
    /// it has one, to compare with).
    dir: PathBuf,
    /// How many times.
    #[arg(long = "times", default_value_t = 3)]
    times: u32,
    /// Print each replay's verdict, the count reproduced and any shrunk schedule as one
    /// JSON document.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    campaign: ChaosCampaignArgs,
}

#[derive(Args)]
struct ChaosRunArgs {
    /// The schedule's seed (default: from the clock, printed).
    #[arg(long = "seed")]
    seed: Option<u64>,
    /// How long the workload and the faults go on.
    #[arg(long = "duration", default_value = "60secs", value_parser = duration)]
    duration: Duration,
    /// At most this many faults.
    #[arg(long = "max-faults", alias = "max_faults", default_value_t = 12)]
    max_faults: u32,
    /// Allow restarts of the Docker daemon, which hit every container on the engine.
    #[arg(long = "allow-daemon-faults", alias = "allow_daemon_faults")]
    allow_daemon_faults: bool,
    /// Only these kinds of fault, comma-separated (default: every kind the harness
    /// injects: kill_agent, crash_point, pause_agent, kill_executor, kill_docker_client,
    /// cli_fails, cli_hangs, disk_full, flip_store_byte, reboot, and restart_daemon with
    /// --allow-daemon-faults).
    #[arg(long = "faults")]
    faults: Option<String>,
    /// The run's directory: made by the run (an existing non-empty one is refused); it
    /// keeps the report and its evidence (default: a new one under the temp directory).
    #[arg(long = "dir")]
    dir: Option<PathBuf>,
    /// Print the schedule the seed makes, as JSON, and touch nothing.
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
    /// Instead of a seeded schedule, arm every crash point of the agent in turn, for its
    /// first and its second hit, under a workload that passes them all, and inject no
    /// other fault; a point never reached makes the run inconclusive (exit 2). Its
    /// duration follows from the points (about 3 minutes).
    #[arg(
        long = "sweep",
        conflicts_with_all = ["seed", "duration", "max_faults", "allow_daemon_faults"]
    )]
    sweep: bool,
    /// Print the report as JSON.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    campaign: ChaosCampaignArgs,
}

#[derive(Args)]
struct ChaosHealArgs {
    /// The run's directory.
    dir: PathBuf,
    /// Print what was done as JSON.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    docker: DockerArgs,
}

#[derive(Args)]
struct ChaosResumeArgs {
    /// The paused agent.
    #[arg(long = "pid")]
    pid: i32,
    /// How long to wait first.
    #[arg(long = "after", value_parser = duration)]
    after: Duration,
    /// The run's mark, which the agent must carry.
    #[arg(long = "mark")]
    mark: String,
}

#[derive(Args)]
struct RecoverArgs {
    /// Only print the plan; act on nothing (required: recovery itself runs when the agent
    /// starts).
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
    /// The agent's work directory.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    #[command(flatten)]
    docker: DockerArgs,
    /// As the agent's `--recover`.
    #[arg(long = "recover", default_value = "reconnect")]
    recover: Recover,
    /// As the agent's `--docker_kill_orphans`.
    #[arg(long = "docker_kill_orphans", default_value_t = true, action = clap::ArgAction::Set)]
    docker_kill_orphans: bool,
    /// As the agent's `--containerizers` (the stored tasks are planned again with it).
    #[arg(
        long = "containerizers",
        default_value = "docker",
        value_delimiter = ','
    )]
    containerizers: Vec<ContainerizerKind>,
    /// As the agent's `--sandbox_directory`.
    #[arg(long = "sandbox_directory", default_value = "/mnt/mesos/sandbox")]
    sandbox_directory: PathBuf,
    /// How long to wait for Docker.
    #[arg(long = "recovery_timeout", default_value = "15secs", value_parser = duration)]
    recovery_timeout: Duration,
    /// Print the plan as JSON: one object per decision.
    #[arg(long)]
    json: bool,
}

fn duration(text: &str) -> Result<Duration, String> {
    berth::duration::parse(text).map_err(|e| e.to_string())
}

/// A duration that must not be zero: a zero bound would fail everything it bounds.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err("it must be more than 0secs (say 1mins)".into()),
        positive => Ok(positive),
    }
}

/// Flags keep Mesos's names so that operators find them.
#[derive(Args)]
struct AgentArgs {
    /// Directory for the agent's state and sandboxes.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    #[command(flatten)]
    docker: DockerArgs,
    /// Containerizers: `docker` runs tasks in Docker containers; `mesos` also runs tasks
    /// without a container, as plain processes on the host (`docker,mesos`).
    #[arg(
        long = "containerizers",
        default_value = "docker",
        value_delimiter = ','
    )]
    containerizers: Vec<ContainerizerKind>,
    /// Run each task as its `command.user`, which must exist on this host: a plain
    /// process runs as that user, and its sandbox (a container's too) belongs to it. With
    /// false every task runs as the agent's user, and `command.user` is ignored.
    #[arg(long = "switch_user", default_value_t = true, action = clap::ArgAction::Set)]
    switch_user: bool,
    /// Where the sandbox appears inside a task's container.
    #[arg(long = "sandbox_directory", default_value = "/mnt/mesos/sandbox")]
    sandbox_directory: PathBuf,
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
    /// What to do with what ran before a restart: `reconnect` re-adopts it and finishes
    /// what was under way; `cleanup` kills and removes every task of this agent, records
    /// them KILLED, and exits.
    #[arg(long = "recover", default_value = "reconnect")]
    recover: Recover,
    /// Remove containers named for this agent that have no record (false: only report
    /// them).
    #[arg(long = "docker_kill_orphans", default_value_t = true, action = clap::ArgAction::Set)]
    docker_kill_orphans: bool,
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

fn metrics_address(arg: &str) -> Result<std::net::SocketAddr, String> {
    berth::metrics::parse_address(arg).map_err(|e| e.to_string())
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

fn size(text: &str) -> Result<u64, String> {
    berth::byte_size::parse(text).map_err(|e| e.to_string())
}

/// A sandbox file's limit: a file must hold at least a byte.
fn file_size(text: &str) -> Result<u64, String> {
    match size(text)? {
        0 => Err("a sandbox file's size must be at least 1B".into()),
        bytes => Ok(bytes),
    }
}

#[derive(Args)]
struct DockerArgs {
    /// The Docker CLI to run.
    #[arg(long = "docker", default_value = berth::chaos::run_command::DOCKER)]
    docker: PathBuf,
    /// The Docker engine's unix socket, passed to every call as `-H unix://...`.
    #[arg(long = "docker_socket", default_value = berth::chaos::run_command::DOCKER_SOCKET)]
    docker_socket: PathBuf,
}

impl DockerArgs {
    fn docker(&self) -> Docker {
        Docker::new(DockerConfig {
            program: self.docker.clone(),
            socket: self.docker_socket.clone(),
            ..DockerConfig::default()
        })
    }
}

/// How the CLI finds the agent, and how long it waits for it.
#[derive(Args)]
struct ClientArgs {
    /// The agent's work directory; its socket is `<work_dir>/berth.sock`.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    /// The agent's socket, if not in the work directory.
    #[arg(long = "api_socket")]
    api_socket: Option<PathBuf>,
    #[command(flatten)]
    wait: WaitArgs,
}

impl ClientArgs {
    fn client(&self) -> Client {
        self.wait
            .patient(cli::socket(&self.work_dir, self.api_socket.as_deref()))
    }
}

#[derive(Args)]
struct WaitArgs {
    /// How long to wait for an agent that is still starting or recovering (its socket
    /// not there yet, refusing connections, or answering that it recovers); `0secs` fails
    /// at once.
    #[arg(long = "wait_for_agent", default_value = "60secs", value_parser = duration)]
    wait_for_agent: Duration,
}

impl WaitArgs {
    fn patient(&self, socket: PathBuf) -> Client {
        Client::new(socket).patient(self.wait_for_agent, |socket| {
            eprintln!(
                "berth: waiting for the agent at {} to finish starting/recovering...",
                socket.display()
            );
        })
    }
}

#[derive(Args)]
struct HealthArgs {
    /// The agent's work directory; its socket is `<work_dir>/berth.sock`.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    /// The agent's socket, if not in the work directory.
    #[arg(long = "api_socket")]
    api_socket: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct IdArgs {
    /// Container id, or a unique prefix of it.
    id: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct KillArgs {
    /// Container id, or a unique prefix of it.
    id: String,
    /// Grace between SIGTERM and SIGKILL (default: the task's kill policy).
    #[arg(long)]
    grace: Option<String>,
    /// Print the task's view as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct WaitCmdArgs {
    /// Container id, or a unique prefix of it.
    id: String,
    /// Print the task's final view as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct PsArgs {
    /// Only the container ids, one a line.
    #[arg(short, long, conflicts_with = "json")]
    quiet: bool,
    /// Print every container's view as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct LogsArgs {
    /// Container id, or a unique prefix of it.
    id: String,
    /// Which stream: one of them goes to stdout; `both` prints the task's stdout on
    /// stdout and its stderr on stderr, as `docker logs` does.
    #[arg(long, value_enum, default_value_t = berth::logs::Streams::Both)]
    stream: berth::logs::Streams,
    /// The same as --stream stderr.
    #[arg(long, conflicts_with = "stream")]
    stderr: bool,
    /// Keep printing what is appended: until the task ends, or, without an agent, until
    /// interrupted.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines of each stream (across its rotated files; with --since, of
    /// Docker's log, both streams counted together, as `docker logs --tail`).
    #[arg(long, value_name = "N")]
    tail: Option<u64>,
    /// Only what the task wrote since then: a duration back from now (`10m`, `2hrs`) or
    /// an RFC 3339 time (`2026-01-01T10:00:00Z`). The sandbox's files hold no times, so
    /// this reads Docker's log of the task's container through the engine: it needs the
    /// agent, a Docker task, and a log Docker still keeps.
    #[arg(long, value_name = "TIME", value_parser = since)]
    since: Option<std::time::SystemTime>,
    /// The Docker engine's unix socket (read with --since).
    #[arg(long = "docker_socket", default_value = berth::chaos::run_command::DOCKER_SOCKET)]
    docker_socket: PathBuf,
    /// The agent's work directory: its socket is `<work_dir>/berth.sock`, and the
    /// sandboxes read when no agent answers are in `<work_dir>/sandboxes` (a stopped
    /// agent is not waited for).
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    /// The agent's socket, if not in the work directory.
    #[arg(long = "api_socket")]
    api_socket: Option<PathBuf>,
}

fn since(text: &str) -> Result<std::time::SystemTime, String> {
    berth::logs::parse_since(text, std::time::SystemTime::now())
}

#[derive(Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

#[derive(Args)]
struct ManArgs {
    /// Write `berth.1` and a page per command (`berth-agent.1`, ...) into this directory
    /// instead of printing `berth.1`.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Args)]
struct LaunchArgs {
    /// A TaskInfo JSON file (`-` for stdin).
    #[arg(long, conflicts_with = "image")]
    file: Option<PathBuf>,
    /// The Docker image to run.
    #[arg(long, required_unless_present = "file")]
    image: Option<String>,
    /// The command: a shell command line run with /bin/sh -c (Mesos's default), or with
    /// --shell=false the first word after the image. Without it the image's own
    /// ENTRYPOINT and CMD run, as `docker run IMAGE` would.
    #[arg(long)]
    command: Option<String>,
    /// Run --command with /bin/sh -c (default: true with --command, false without).
    #[arg(long, action = clap::ArgAction::Set)]
    shell: Option<bool>,
    /// An argument after --command, with --shell=false (repeatable); without --command,
    /// the arguments replace the image's CMD.
    #[arg(long = "arg")]
    args: Vec<String>,
    /// A URI to fetch into the sandbox (repeatable).
    #[arg(long = "uri")]
    uris: Vec<String>,
    /// An environment variable NAME=VALUE (repeatable).
    #[arg(long = "env")]
    env: Vec<String>,
    /// Pull the image even if present.
    #[arg(long = "force_pull")]
    force_pull: bool,
    /// host, bridge, none, or a user network's name.
    #[arg(long)]
    network: Option<String>,
    /// A port mapping HOST:CONTAINER (repeatable; bridge or user networks).
    #[arg(long = "port")]
    ports: Vec<String>,
    /// CPUs (become --cpu-shares).
    #[arg(long)]
    cpus: Option<f64>,
    /// Memory in MiB (becomes --memory).
    #[arg(long)]
    mem: Option<f64>,
    /// Grace between SIGTERM and SIGKILL when killed.
    #[arg(long, value_parser = duration)]
    grace: Option<Duration>,
    /// Run the image as the task's executor (no berth executor).
    #[arg(long)]
    executor: bool,
    /// The task id (default: generated).
    #[arg(long = "task_id")]
    task_id: Option<String>,
    /// Print the new container's id and the agent's warnings as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
struct StateArgs {
    /// The agent's work directory.
    #[arg(long = "work_dir", default_value = "/var/lib/berth", global = true)]
    work_dir: PathBuf,
    /// The agent's socket, if not in the work directory (used while the agent runs).
    #[arg(long = "api_socket", global = true)]
    api_socket: Option<PathBuf>,
    /// While the agent runs: how long to wait for it to serve its API.
    #[arg(long = "wait_for_agent", default_value = "60secs", value_parser = duration, global = true)]
    wait_for_agent: Duration,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    view: StateView,
}

#[derive(Subcommand)]
enum StateView {
    /// Every container and its newest phase.
    Ls,
    /// One container (id or unique prefix): summary, history and status updates.
    Show {
        /// Container id or a unique prefix of it.
        id: String,
    },
    /// One container's phase history.
    History {
        /// Container id or a unique prefix of it.
        id: String,
    },
    /// Check every record; exits 1 when any is corrupt or quarantined.
    Verify,
    /// Everything in the store, as JSON.
    Export,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
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

type Failure = Box<dyn std::error::Error>;

#[derive(Args)]
struct EventsArgs {
    /// Only the updates after this position (the number each update carries).
    #[arg(long = "after", default_value_t = 0)]
    after: u64,
    /// Keep printing updates as they are recorded.
    #[arg(short = 'f', long = "follow")]
    follow: bool,
    /// Print each update as the API's JSON event (one per line).
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    emit(&format!("{}\n", serde_json::to_string_pretty(value)?));
    Ok(())
}

/// Writes to stdout. A reader that went away (`berth ps | head`) is not an error worth a
/// word: what it did not read is not wanted.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

async fn run(command: Command, flags: String) -> Result<ExitCode, Failure> {
    match command {
        Command::Agent(mut args) => {
            init_logging(args.log_format);
            tracing::info!(version = berth::VERSION, flags = %flags, "berth agent starting");
            // Sandboxes are bind-mounted by their path, which Docker takes for a volume's
            // name unless it is absolute.
            args.work_dir = std::path::absolute(&args.work_dir)?;
            let api_socket = std::path::absolute(
                args.api_socket
                    .unwrap_or_else(|| args.work_dir.join("berth.sock")),
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
                docker: args.docker.docker(),
                strict: args.strict,
                docker_config,
                recover: args.recover,
                kill_orphans: args.docker_kill_orphans,
                settings: Settings {
                    work_dir: args.work_dir,
                    containerizers: args.containerizers,
                    switch_user: args.switch_user,
                    sandbox_directory: args.sandbox_directory,
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
        }
        Command::Chaos(args) => return chaos(args.command).await,
        Command::Executor(args) => {
            if let Some(log) = &args.log {
                berth::executor::log_to(log).map_err(|e| {
                    format!("cannot write the executor's log {}: {e}", log.display())
                })?;
            }
            init_logging(LogFormat::Text);
            if berth::executor::run(tokio::io::stdin()).await?
                == berth::executor::Ran::Carried(true)
            {
                return Ok(ExitCode::from(
                    u8::try_from(berth::executor::CARRIED_THROUGH_OUTAGE).unwrap_or(1),
                ));
            }
        }
        Command::Launch(args) => {
            let json = match &args.file {
                Some(path) if path.as_os_str() == "-" => {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                    buf
                }
                Some(path) => std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                None => {
                    let flags = LaunchFlags {
                        image: args.image.clone().unwrap_or_default(),
                        command: args.command.clone(),
                        shell: args.shell,
                        args: args.args.clone(),
                        uris: args.uris.clone(),
                        env: args.env.clone(),
                        force_pull: args.force_pull,
                        network: args.network.clone(),
                        ports: args.ports.clone(),
                        cpus: args.cpus,
                        mem: args.mem,
                        grace: args.grace,
                        executor: args.executor,
                        task_id: args.task_id.clone(),
                    };
                    let generated = format!("berth-{}", uuid::Uuid::new_v4());
                    cli::task_from_flags(&flags, &generated)?
                        .to_string()
                        .into_bytes()
                }
            };
            let launched = cli::launch(&args.client.client(), json).await?;
            if args.json {
                print_json(&launched)?;
            } else {
                for warning in &launched.warnings {
                    eprintln!("berth: warning: {warning}");
                }
                emit(&format!("{}\n", launched.container_id));
            }
        }
        Command::Kill(args) => {
            let view = cli::kill(&args.client.client(), &args.id, args.grace).await?;
            if args.json {
                print_json(&view)?;
            } else {
                emit(&format!("{}\n", cli::status_line(&view)));
            }
        }
        Command::Wait(args) => {
            let view = cli::wait(&args.client.client(), &args.id).await?;
            if args.json {
                print_json(&view)?;
            } else {
                emit(&format!("{}\n", cli::status_line(&view)));
            }
            return Ok(ExitCode::from(cli::wait_exit(&view)));
        }
        Command::Ps(args) => {
            let views = cli::ps(&args.client.client()).await?;
            if args.json {
                print_json(&views)?;
            } else if args.quiet {
                emit(&cli::ps_quiet(&views));
            } else {
                emit(&cli::ps_table(&views, cli::now_ms()));
            }
        }
        Command::Logs(args) => {
            let request = berth::logs::Request {
                id: args.id,
                streams: if args.stderr {
                    berth::logs::Streams::Stderr
                } else {
                    args.stream
                },
                follow: args.follow,
                tail: args.tail,
                since: args.since,
            };
            let socket = cli::socket(&args.work_dir, args.api_socket.as_deref());
            berth::logs::run(&request, &socket, &args.work_dir, &args.docker_socket).await?;
        }
        Command::Inspect(args) => {
            print_json(&cli::inspect(&args.client.client(), &args.id).await?)?;
        }
        Command::Events(args) => {
            let path = format!("/v1/events?after={}&follow={}", args.after, args.follow);
            let mut failed = None;
            args.client
                .client()
                .get_lines(&path, |line| {
                    if let Some(why) = cli::event_error(line) {
                        failed = Some(why);
                        return false;
                    }
                    let text = if args.json {
                        cli::event_json_line(line)
                    } else {
                        cli::event_line(line)
                    };
                    if let Some(text) = text {
                        emit(&text);
                    }
                    true
                })
                .await?;
            if let Some(why) = failed {
                eprintln!("berth events: the agent ended the stream: {why}");
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Completions(args) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "berth", &mut out);
            emit(&String::from_utf8_lossy(&out));
        }
        Command::Man(args) => {
            // With the `[env: BERTH_<FLAG>=]` lines `--help` shows.
            let command = berth::flag_env::from_environment(Cli::command(), &|_| false);
            match args.dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)?;
                    clap_mangen::generate_to(command, &dir)?;
                }
                None => {
                    let mut out = Vec::new();
                    clap_mangen::Man::new(command).render(&mut out)?;
                    emit(&String::from_utf8_lossy(&out));
                }
            }
        }
        Command::Health(args) => {
            let client = Client::new(cli::socket(&args.work_dir, args.api_socket.as_deref()));
            let health = cli::health(&client).await?;
            if args.json {
                print_json(&health)?;
            } else {
                emit(&format!("{}\n", cli::health_line(&health)));
            }
            let code = cli::health_exit(&health);
            if code != 0 {
                return Ok(ExitCode::from(code));
            }
        }
        Command::Recover(args) => {
            if !args.dry_run {
                return Err("recovery runs when `berth agent` starts; `berth recover --dry-run` prints the plan it would carry out".into());
            }
            let settings = Settings {
                api_socket: args.work_dir.join("berth.sock"),
                work_dir: args.work_dir,
                containerizers: args.containerizers,
                // The plan decides nothing from whom a task runs as.
                switch_user: true,
                sandbox_directory: args.sandbox_directory,
                stop_timeout: Duration::ZERO,
                remove_delay: Duration::ZERO,
                gc_delay: Duration::ZERO,
                recovery_timeout: args.recovery_timeout,
                executor_program: PathBuf::new(),
                pull_fallback_home: None,
                docker_mesos_image: None,
                own_container: None,
                docker_socket_on_host: None,
                rotation: None,
                docker_log: None,
                fetcher: berth::fetch::Fetcher::default(),
                executor_registration_timeout: Duration::ZERO,
            };
            let plan = berth::recovery::preview::preview(
                &settings,
                &args.docker.docker(),
                args.recover,
                args.docker_kill_orphans,
            )
            .await?;
            if args.json {
                print_json(&berth::recovery::act::plan_json(&plan))?;
            } else {
                emit(&berth::recovery::act::render(&plan));
            }
        }
        Command::State(args) => {
            let view = match args.view {
                StateView::Ls => View::Ls,
                StateView::Show { id } => View::Show(id),
                StateView::History { id } => View::History(id),
                StateView::Verify => View::Verify,
                StateView::Export => View::Export,
            };
            let ok = match state_command::run(
                &args.work_dir,
                &view,
                args.json,
                &mut std::io::stdout().lock(),
            ) {
                Err(StateCommandError::AgentRunning { .. }) => {
                    let client = WaitArgs {
                        wait_for_agent: args.wait_for_agent,
                    }
                    .patient(cli::socket(&args.work_dir, args.api_socket.as_deref()));
                    let request = StateRequest {
                        view,
                        json: args.json,
                    };
                    let answer = cli::state(&client, &request).await?;
                    emit(&answer.output);
                    answer.ok
                }
                other => other?,
            };
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A chaos command; a run or replay interrupted by SIGINT or SIGTERM is abandoned, and
/// what its runs made is healed.
async fn chaos(command: ChaosCommand) -> Result<ExitCode, Failure> {
    use berth::chaos::{heal, interrupt};
    let (ChaosCommand::Run(ChaosRunArgs { campaign, .. })
    | ChaosCommand::Replay(ChaosReplayArgs { campaign, .. })) = &command
    else {
        return chaos_command(command).await;
    };
    let (docker, socket) = (
        campaign.docker.docker.clone(),
        campaign.docker.docker_socket.clone(),
    );
    let mut signals = interrupt::Signals::install()?;
    tokio::select! {
        code = chaos_command(command) => code,
        signal = signals.received() => {
            // The run's future is dropped here: nothing of it goes on in this process.
            let healed: Vec<_> = interrupt::made_dirs()
                .into_iter()
                .map(|dir| {
                    let done = heal::heal(&dir, &docker, &socket).map_err(|e| e.to_string());
                    (dir, done)
                })
                .collect();
            eprint!("{}", interrupt::report(signal, &healed));
            Ok(ExitCode::from(2))
        }
    }
}

async fn chaos_command(command: ChaosCommand) -> Result<ExitCode, Failure> {
    use berth::chaos::{campaign, daemon_restart, heal, report, report_files, shrink, ChaosError};
    let mut progress = |line: &str| eprintln!("berth chaos: {line}");
    let restart_way = |allowed: bool, command: Option<&str>, socket: &std::path::Path| {
        daemon_restart::way(
            allowed,
            command,
            socket,
            daemon_restart::systemd_running(),
            daemon_restart::found,
        )
    };
    match command {
        ChaosCommand::Run(args) => {
            let chosen = campaign::chosen_kinds(args.faults.as_deref(), args.allow_daemon_faults)
                .and_then(|kinds| {
                    let way = restart_way(
                        args.allow_daemon_faults,
                        args.campaign.restart_daemon_command.as_deref(),
                        &args.campaign.docker.docker_socket,
                    )?;
                    Ok((kinds, way))
                });
            let (kinds, restart_daemon) = match chosen {
                Ok(chosen) => chosen,
                Err(why) => {
                    eprintln!("berth chaos: refused: {why}");
                    return Ok(ExitCode::from(3));
                }
            };
            let seed = args
                .seed
                .unwrap_or_else(berth_chaos::jitter::Jitter::seed_from_clock);
            let dir = args.dir.clone().unwrap_or_else(|| {
                let short = uuid::Uuid::new_v4().simple().to_string();
                std::env::temp_dir().join(format!("berth-chaos-{seed}-{}", &short[..8]))
            });
            // Its paths go to the agent, the CLI stand-in and Docker's mounts.
            let dir = std::path::absolute(&dir)?;
            let settings = campaign::Settings {
                seed,
                duration: args.duration,
                settle: args.campaign.settle,
                max_faults: args.max_faults,
                allow_daemon_faults: args.allow_daemon_faults,
                kinds,
                restart_daemon: restart_daemon.clone(),
                dir,
                docker: args.campaign.docker.docker.clone(),
                docker_socket: args.campaign.docker.docker_socket.clone(),
                image: args.campaign.image.clone(),
                pull_image: args.campaign.pull_image.clone(),
                berth: std::env::current_exe()?,
                sabotage: args.campaign.sabotage,
            };
            let sabotage = args
                .campaign
                .sabotage
                .and_then(|s| clap::ValueEnum::to_possible_value(&s));
            let replay = berth::chaos::run_command::RunCommand {
                sweep: args.sweep,
                seed,
                duration: args.duration,
                settle: args.campaign.settle,
                max_faults: args.max_faults,
                restart_daemon: restart_daemon.as_deref(),
                faults: args.faults.as_deref(),
                sabotage: sabotage.as_ref().map(|v| v.get_name()),
                image: &args.campaign.image,
                pull_image: &args.campaign.pull_image,
                docker: &args.campaign.docker.docker,
                docker_socket: &args.campaign.docker.docker_socket,
            }
            .line();
            let schedule = if args.sweep {
                if berth::crash_point::POINTS.is_empty() {
                    eprintln!("berth chaos: refused: this berth was built without its crash points (--no-default-features): a sweep has nothing to visit");
                    return Ok(ExitCode::from(3));
                }
                berth_chaos::crash_sweep::make(&settings.options().crash_points)
            } else {
                berth_chaos::schedule::make(seed, &settings.options())
            };
            if args.dry_run {
                print_json(&schedule)?;
                return Ok(ExitCode::SUCCESS);
            }
            let junit = match args.campaign.junit.as_deref().map(report_files::junit_path) {
                Some(Err(e)) => {
                    eprintln!("berth chaos: {e}");
                    return Ok(ExitCode::from(3));
                }
                junit => junit.transpose()?,
            };
            let made_from = if args.sweep {
                "every crash point".to_owned()
            } else {
                format!("seed {seed}")
            };
            eprintln!("berth chaos: {made_from}; replay with: {replay}");
            let finished = match campaign::run(&settings, schedule).await {
                // A sweep that did not reach a point did not test it.
                Ok(mut finished) if args.sweep => {
                    let never = berth_chaos::crash_sweep::unreached(
                        &finished.schedule,
                        &finished.crash_points,
                    );
                    finished.verdict = berth_chaos::crash_sweep::judge(finished.verdict, &never);
                    finished
                }
                Ok(finished) => finished,
                Err(e @ ChaosError::Refused(_)) => {
                    eprintln!("berth chaos: {e}");
                    return Ok(ExitCode::from(3));
                }
                Err(e) => {
                    eprintln!(
                        "berth chaos: INCONCLUSIVE: the run could not finish: {e}\nreplay: {replay}\nwhat it made is removed; `berth chaos heal {}` removes anything left",
                        settings.dir.display()
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let summary = report::summary(&finished, replay.clone(), junit.as_deref());
            let (mut text, json) = report_files::write(&finished, &summary)?;
            if let Some(junit) = &junit {
                report_files::write_junit(junit, &[report_files::junit_run(&finished, &replay)])?;
            }
            let mut json: serde_json::Value = serde_json::from_str(&json)?;
            if let Some(shrunk) = shrink::shrink(
                &settings,
                &finished,
                args.campaign.shrink_budget,
                &mut progress,
            )
            .await
            {
                text.push_str(&shrunk.text());
                json["shrunk"] = serde_json::to_value(&shrunk)?;
                std::fs::write(finished.dir.join("report.txt"), &text)?;
                std::fs::write(
                    finished.dir.join("report.json"),
                    serde_json::to_string_pretty(&json)?,
                )?;
            }
            let json = serde_json::to_string_pretty(&json)?;
            if args.json {
                emit(&format!("{json}\n"));
            } else {
                emit(&text);
            }
            Ok(ExitCode::from(
                u8::try_from(report::exit_code(&finished.verdict)).unwrap_or(1),
            ))
        }
        ChaosCommand::Heal(args) => {
            match heal::heal(&args.dir, &args.docker.docker, &args.docker.docker_socket) {
                Ok(done) if args.json => {
                    print_json(&serde_json::json!({ "dir": args.dir, "done": done }))?;
                    Ok(ExitCode::SUCCESS)
                }
                Ok(done) => {
                    for line in done {
                        emit(&format!("{line}\n"));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ ChaosError::Refused(_)) => {
                    eprintln!("berth chaos: {e}");
                    Ok(ExitCode::from(3))
                }
                Err(e) => Err(e.into()),
            }
        }
        ChaosCommand::Replay(args) => {
            let read = |file: &str| -> Result<serde_json::Value, Failure> {
                Ok(serde_json::from_slice(&std::fs::read(
                    args.dir.join(file),
                )?)?)
            };
            let schedule: berth_chaos::schedule::Schedule =
                serde_json::from_value(read("schedule.json")?)?;
            let restart_daemon = match restart_way(
                schedule.options.allow_daemon_faults,
                args.campaign.restart_daemon_command.as_deref(),
                &args.campaign.docker.docker_socket,
            ) {
                Ok(way) => way,
                Err(why) => {
                    eprintln!("berth chaos: refused: {why}");
                    return Ok(ExitCode::from(3));
                }
            };
            let kinds = |verdict: &serde_json::Value| -> Vec<String> {
                let mut kinds: Vec<String> = verdict["violations"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|v| v["violation"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                kinds.sort();
                kinds.dedup();
                kinds
            };
            let mut reference = read("report.json").ok().map(|r| {
                (
                    r["verdict"]["verdict"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    kinds(&r["verdict"]),
                )
            });
            let mut same = 0;
            let mut violated = false;
            let mut taken = 0;
            let junit = match args.campaign.junit.as_deref().map(report_files::junit_path) {
                Some(Err(e)) => {
                    eprintln!("berth chaos: {e}");
                    return Ok(ExitCode::from(3));
                }
                junit => junit.transpose()?,
            };
            // Each replayed run, for the JUnit file, rewritten after each.
            let mut replayed: Vec<(campaign::Finished, String)> = Vec::new();
            let mut first_violated = None;
            let mut runs = Vec::new();
            for n in 1..=args.times {
                // A directory of its own for each replay, after any an earlier replay made.
                let dir = loop {
                    taken += 1;
                    let mut dir = std::path::absolute(&args.dir)?.into_os_string();
                    dir.push(format!("-replay-{taken}"));
                    let dir = PathBuf::from(dir);
                    if !dir.exists() {
                        break dir;
                    }
                };
                let settings = campaign::Settings {
                    seed: schedule.seed,
                    duration: Duration::from_millis(schedule.options.duration_ms),
                    settle: args.campaign.settle,
                    max_faults: schedule.options.max_faults,
                    allow_daemon_faults: schedule.options.allow_daemon_faults,
                    kinds: schedule.options.kinds.clone(),
                    restart_daemon: restart_daemon.clone(),
                    dir,
                    docker: args.campaign.docker.docker.clone(),
                    docker_socket: args.campaign.docker.docker_socket.clone(),
                    image: args.campaign.image.clone(),
                    pull_image: args.campaign.pull_image.clone(),
                    berth: std::env::current_exe()?,
                    sabotage: args.campaign.sabotage,
                };
                let finished = match campaign::run(&settings, schedule.clone()).await {
                    Ok(finished) => finished,
                    Err(e @ ChaosError::Refused(_)) => {
                        eprintln!("berth chaos: {e}");
                        return Ok(ExitCode::from(3));
                    }
                    Err(e) => return Err(e.into()),
                };
                let verdict = serde_json::to_value(&finished.verdict)?;
                let got = (
                    verdict["verdict"].as_str().unwrap_or_default().to_owned(),
                    kinds(&verdict),
                );
                violated |= got.0 == "violated";
                let shrink_later = got.0 == "violated" && first_violated.is_none();
                if *reference.get_or_insert_with(|| got.clone()) == got {
                    same += 1;
                }
                if args.json {
                    runs.push(serde_json::json!({
                        "replay": n,
                        "verdict": got.0,
                        "violations": got.1,
                        "dir": finished.dir,
                    }));
                } else {
                    emit(&format!(
                        "replay {n}: {} {} ({})\n",
                        got.0,
                        got.1.join(", "),
                        finished.dir.display()
                    ));
                }
                let replay = shrink::replay_command(&settings, &finished.dir);
                let summary = report::summary(&finished, replay.clone(), junit.as_deref());
                report_files::write(&finished, &summary)?;
                if let Some(junit) = &junit {
                    replayed.push((finished.clone(), replay));
                    let runs: Vec<_> = replayed
                        .iter()
                        .map(|(f, r)| report_files::junit_run(f, r))
                        .collect();
                    report_files::write_junit(junit, &runs)?;
                }
                if shrink_later {
                    first_violated = Some((settings, finished));
                }
            }
            let against = match &reference {
                Some((verdict, kinds)) => format!("as {verdict} {}", kinds.join(", ")),
                None => "nothing was replayed".to_owned(),
            };
            if !args.json {
                emit(&format!(
                    "reproduced {same} of {} ({against}); the schedule was replayed, its timing was not\n",
                    args.times
                ));
            }
            let shrunk = match first_violated {
                Some((settings, finished)) => {
                    shrink::shrink(
                        &settings,
                        &finished,
                        args.campaign.shrink_budget,
                        &mut progress,
                    )
                    .await
                }
                None => None,
            };
            if args.json {
                print_json(&serde_json::json!({
                    "replays": runs,
                    "reproduced": same,
                    "times": args.times,
                    "reference": reference.map(|(verdict, violations)| {
                        serde_json::json!({ "verdict": verdict, "violations": violations })
                    }),
                    "shrunk": shrunk,
                }))?;
            } else if let Some(shrunk) = shrunk {
                emit(&shrunk.text());
            }
            Ok(if violated {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        ChaosCommand::Resume(args) => {
            tokio::time::sleep(args.after).await;
            let mark = berth_chaos::sweep::RunMark::from_value(&args.mark);
            mark.signal(args.pid, berth_chaos::sweep::Signal::CONT);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let _crash_points = berth::crash_point::arm_from_env();
    let command =
        berth::flag_env::from_environment(Cli::command(), &|name| std::env::var_os(name).is_some());
    let matches = command.clone().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Logged by the agent at start, so that its log says what it ran with.
    let flags = match (
        command.find_subcommand("agent"),
        matches.subcommand_matches("agent"),
    ) {
        (Some(agent), Some(given)) => cli::flag_line(agent, given, &["docker_config"]),
        _ => String::new(),
    };
    match run(cli.command, flags).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `berth logs`: prints a task's output.

use std::path::PathBuf;
use std::process::ExitCode;

use berth::cli;
use clap::Args;

use super::values::since;
use super::Failure;

#[derive(Args)]
pub struct LogsArgs {
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

pub async fn run(args: LogsArgs) -> Result<ExitCode, Failure> {
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
    Ok(ExitCode::SUCCESS)
}

//! `berth launch`: launches a task from flags or a TaskInfo file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth::cli::{self, LaunchFlags};
use clap::Args;

use super::client_args::ClientArgs;
use super::stdout::{emit, print_json};
use super::values::duration;
use super::Failure;

#[derive(Args)]
pub struct LaunchArgs {
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

pub async fn run(args: LaunchArgs) -> Result<ExitCode, Failure> {
    let json = match &args.file {
        Some(path) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
            buf
        }
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
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
    Ok(ExitCode::SUCCESS)
}

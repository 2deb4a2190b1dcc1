//! `berth recover --dry-run`: prints the recovery plan a start of the agent would carry out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth::recovery::plan::Recover;
use berth::recovery::preview::PreviewFlags;
use berth::task::ContainerizerKind;
use clap::Args;

use super::docker_args::DockerArgs;
use super::stdout::{emit, print_json};
use super::values::duration;
use super::Failure;

#[derive(Args)]
pub struct RecoverArgs {
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

pub async fn run(args: RecoverArgs) -> Result<ExitCode, Failure> {
    if !args.dry_run {
        return Err("recovery runs when `berth agent` starts; `berth recover --dry-run` prints the plan it would carry out".into());
    }
    let flags = PreviewFlags {
        work_dir: args.work_dir,
        containerizers: args.containerizers,
        sandbox_directory: args.sandbox_directory,
        recovery_timeout: args.recovery_timeout,
    };
    let plan = berth::recovery::preview::preview(
        &flags,
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
    Ok(ExitCode::SUCCESS)
}

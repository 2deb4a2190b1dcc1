//! `berth recover --dry-run`: prints the recovery plan a start of the agent would carry out.

use std::process::ExitCode;
use std::time::Duration;

use berth::recovery::preview::PreviewFlags;
use clap::Args;

use super::plan_args::PlanArgs;
use super::stdout::{emit, print_json};
use super::values::duration;
use super::Failure;

/// The agent's flags it takes are worded as the agent's, whose help says what they do.
#[derive(Args)]
#[command(
    mut_arg("work_dir", |a| a.help("The agent's work directory")),
    mut_arg("recover", |a| a.help("As the agent's `--recover`")),
    mut_arg("docker_kill_orphans", |a| a.help("As the agent's `--docker_kill_orphans`")),
    mut_arg("containerizers", |a| a.help(
        "As the agent's `--containerizers`; taken so that the agent's flags can be given as they are, it changes no plan: a stored task is planned again without it (it only refuses new tasks)"
    )),
    mut_arg("sandbox_directory", |a| a.help("As the agent's `--sandbox_directory`")),
)]
pub struct RecoverArgs {
    /// Only print the plan; act on nothing (required: recovery itself runs when the agent
    /// starts).
    #[arg(long = "dry-run", alias = "dry_run")]
    dry_run: bool,
    #[command(flatten)]
    plan: PlanArgs,
    // Not in `PlanArgs`: the agent's default (15mins) is also how long its executors
    // retry their reports, and a preview that waited for Docker that long would seem to
    // hang.
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
        work_dir: args.plan.work_dir,
        containerizers: args.plan.containerizers,
        sandbox_directory: args.plan.sandbox_directory,
        recovery_timeout: args.recovery_timeout,
    };
    let plan = berth::recovery::preview::preview(
        &flags,
        &args.plan.docker.docker(),
        args.plan.recover,
        args.plan.docker_kill_orphans,
    )
    .await?;
    if args.json {
        print_json(&berth::recovery::act::plan_json(&plan))?;
    } else {
        emit(&berth::recovery::act::render(&plan));
    }
    Ok(ExitCode::SUCCESS)
}

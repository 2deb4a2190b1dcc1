//! `berth kill`: kills a task's container.

use std::process::ExitCode;

use berth::cli;
use clap::Args;

use super::client_args::ClientArgs;
use super::stdout::{emit, print_json};
use super::Failure;

#[derive(Args)]
pub struct KillArgs {
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

pub async fn run(args: KillArgs) -> Result<ExitCode, Failure> {
    let view = cli::kill(&args.client.client(), &args.id, args.grace).await?;
    if args.json {
        print_json(&view)?;
    } else {
        emit(&format!("{}\n", cli::status_line(&view)));
    }
    Ok(ExitCode::SUCCESS)
}

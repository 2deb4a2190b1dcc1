//! `berth wait`: waits for a task to end, and exits as it did.

use std::process::ExitCode;

use berth::cli;
use clap::Args;

use super::client_args::ClientArgs;
use super::stdout::{emit, print_json};
use super::Failure;

#[derive(Args)]
pub struct WaitCmdArgs {
    /// Container id, or a unique prefix of it.
    id: String,
    /// Print the task's final view as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: WaitCmdArgs) -> Result<ExitCode, Failure> {
    let view = cli::wait(&args.client.client(), &args.id).await?;
    if args.json {
        print_json(&view)?;
    } else {
        emit(&format!("{}\n", cli::status_line(&view)));
    }
    Ok(ExitCode::from(cli::wait_exit(&view)))
}

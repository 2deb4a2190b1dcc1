//! `berth ps`: lists the agent's containers.

use std::process::ExitCode;

use berth::cli;
use clap::Args;

use super::client_args::ClientArgs;
use super::stdout::{emit, print_json};
use super::Failure;

#[derive(Args)]
pub struct PsArgs {
    /// Only the container ids, one a line.
    #[arg(short, long, conflicts_with = "json")]
    quiet: bool,
    /// Print every container's view as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: PsArgs) -> Result<ExitCode, Failure> {
    let views = cli::ps(&args.client.client()).await?;
    if args.json {
        print_json(&views)?;
    } else if args.quiet {
        emit(&cli::ps_quiet(&views));
    } else {
        emit(&cli::ps_table(&views, cli::now_ms()));
    }
    Ok(ExitCode::SUCCESS)
}

//! `berth inspect`: prints one task as JSON.

use std::process::ExitCode;

use berth::cli;
use clap::Args;

use super::client_args::ClientArgs;
use super::stdout::print_json;
use super::Failure;

#[derive(Args)]
pub struct IdArgs {
    /// Container id, or a unique prefix of it.
    id: String,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: IdArgs) -> Result<ExitCode, Failure> {
    print_json(&cli::inspect(&args.client.client(), &args.id).await?)?;
    Ok(ExitCode::SUCCESS)
}

//! `berth health`: says whether the agent is ready and Docker answers it.

use std::path::PathBuf;
use std::process::ExitCode;

use berth::api::client::Client;
use berth::cli;
use clap::Args;

use super::stdout::{emit, print_json};
use super::Failure;

#[derive(Args)]
pub struct HealthArgs {
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

pub async fn run(args: HealthArgs) -> Result<ExitCode, Failure> {
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
    Ok(ExitCode::SUCCESS)
}

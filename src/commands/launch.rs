//! `berth launch`: launches a task from flags or a TaskInfo file.

use std::path::PathBuf;
use std::process::ExitCode;

use berth::cli::{self, LaunchFlags};
use clap::Args;

use super::client_args::ClientArgs;
use super::stdout::{emit, print_json};
use super::Failure;

#[derive(Args)]
pub struct LaunchArgs {
    /// A TaskInfo JSON file (`-` for stdin).
    #[arg(long, conflicts_with = "image")]
    file: Option<PathBuf>,
    #[command(flatten)]
    flags: LaunchFlags,
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
            let generated = format!("berth-{}", uuid::Uuid::new_v4());
            cli::task_from_flags(&args.flags, &generated)?
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

//! `berth executor`: one task's executor, started by the agent.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::logging::{init_logging, LogFormat};
use super::Failure;

#[derive(Args)]
pub struct ExecutorArgs {
    /// Append this process's own log (stderr) to this file: an executor in a container
    /// of its own (`--docker_mesos_image`) writes its sandbox's log itself.
    #[arg(long = "log")]
    log: Option<PathBuf>,
}

pub async fn run(args: ExecutorArgs) -> Result<ExitCode, Failure> {
    if let Some(log) = &args.log {
        berth::executor::log_to(log)
            .map_err(|e| format!("cannot write the executor's log {}: {e}", log.display()))?;
    }
    init_logging(LogFormat::Text);
    if berth::executor::run(tokio::io::stdin()).await? == berth::executor::Ran::Carried(true) {
        return Ok(ExitCode::from(
            u8::try_from(berth::executor::CARRIED_THROUGH_OUTAGE).unwrap_or(1),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

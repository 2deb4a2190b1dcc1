//! `berth state`: inspects the checkpoint store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth::api::wire::StateRequest;
use berth::cli;
use berth::state_command::{self, StateCommandError, View};
use clap::{Args, Subcommand};

use super::client_args::WaitArgs;
use super::stdout::emit;
use super::values::duration;
use super::Failure;

#[derive(Args)]
pub struct StateArgs {
    /// The agent's work directory.
    #[arg(long = "work_dir", default_value = "/var/lib/berth", global = true)]
    work_dir: PathBuf,
    /// The agent's socket, if not in the work directory (used while the agent runs).
    #[arg(long = "api_socket", global = true)]
    api_socket: Option<PathBuf>,
    /// While the agent runs: how long to wait for it to serve its API.
    #[arg(long = "wait_for_agent", default_value = "60secs", value_parser = duration, global = true)]
    wait_for_agent: Duration,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    view: StateView,
}

#[derive(Subcommand)]
enum StateView {
    /// Every container and its newest phase.
    Ls,
    /// One container (id or unique prefix): summary, history and status updates.
    Show {
        /// Container id or a unique prefix of it.
        id: String,
    },
    /// One container's phase history.
    History {
        /// Container id or a unique prefix of it.
        id: String,
    },
    /// Check every record; exits 1 when any is corrupt or quarantined.
    Verify,
    /// Everything in the store, as JSON.
    Export,
}

pub async fn run(args: StateArgs) -> Result<ExitCode, Failure> {
    let view = match args.view {
        StateView::Ls => View::Ls,
        StateView::Show { id } => View::Show(id),
        StateView::History { id } => View::History(id),
        StateView::Verify => View::Verify,
        StateView::Export => View::Export,
    };
    let ok = match state_command::run(
        &args.work_dir,
        &view,
        args.json,
        &mut std::io::stdout().lock(),
    ) {
        Err(StateCommandError::AgentRunning { .. }) => {
            let client = WaitArgs {
                wait_for_agent: args.wait_for_agent,
            }
            .patient(cli::socket(&args.work_dir, args.api_socket.as_deref()));
            let request = StateRequest {
                view,
                json: args.json,
            };
            let answer = cli::state(&client, &request).await?;
            emit(&answer.output);
            answer.ok
        }
        other => other?,
    };
    if !ok {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

//! `berth events`: prints every task's status updates in order.

use std::process::ExitCode;

use berth::cli;
use clap::Args;

use super::client_args::ClientArgs;
use super::stdout::emit;
use super::Failure;

#[derive(Args)]
pub struct EventsArgs {
    /// Only the updates after this position (the number each update carries).
    #[arg(long = "after", default_value_t = 0)]
    after: u64,
    /// Keep printing updates as they are recorded.
    #[arg(short = 'f', long = "follow")]
    follow: bool,
    /// Print each update as the API's JSON event (one per line).
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: EventsArgs) -> Result<ExitCode, Failure> {
    let path = format!("/v1/events?after={}&follow={}", args.after, args.follow);
    let mut failed = None;
    args.client
        .client()
        .get_lines(&path, |line| {
            if let Some(why) = cli::event_error(line) {
                failed = Some(why);
                return false;
            }
            let text = if args.json {
                cli::event_json_line(line)
            } else {
                cli::event_line(line)
            };
            if let Some(text) = text {
                emit(&text);
            }
            true
        })
        .await?;
    if let Some(why) = failed {
        eprintln!("berth events: the agent ended the stream: {why}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

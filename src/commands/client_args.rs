//! How the client commands find the agent, and how long they wait for it.

use std::path::PathBuf;
use std::time::Duration;

use berth::api::client::Client;
use berth::cli;
use clap::Args;

use super::values::duration;

/// How the CLI finds the agent, and how long it waits for it.
#[derive(Args)]
pub struct ClientArgs {
    /// The agent's work directory; its socket is `<work_dir>/berth.sock`.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    /// The agent's socket, if not in the work directory.
    #[arg(long = "api_socket")]
    api_socket: Option<PathBuf>,
    #[command(flatten)]
    wait: WaitArgs,
}

impl ClientArgs {
    pub fn client(&self) -> Client {
        self.wait
            .patient(cli::socket(&self.work_dir, self.api_socket.as_deref()))
    }
}

#[derive(Args)]
pub struct WaitArgs {
    /// How long to wait for an agent that is still starting or recovering (its socket
    /// not there yet, refusing connections, or answering that it recovers); `0secs` fails
    /// at once.
    #[arg(long = "wait_for_agent", default_value = "60secs", value_parser = duration)]
    pub wait_for_agent: Duration,
}

impl WaitArgs {
    pub fn patient(&self, socket: PathBuf) -> Client {
        Client::new(socket).patient(self.wait_for_agent, |socket| {
            eprintln!(
                "berth: waiting for the agent at {} to finish starting/recovering...",
                socket.display()
            );
        })
    }
}

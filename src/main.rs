//! The `berth` binary: parses flags, sets up logging, and dispatches to the library.
//! Errors are reported once, here.

use std::path::PathBuf;
use std::process::ExitCode;

use berth::agent::{self, AgentConfig};
use berth::docker::{Docker, DockerConfig};
use berth::state_command::{self, View};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// berth: run Mesos tasks in Docker containers, and survive the agent's own crashes.
#[derive(Parser)]
#[command(name = "berth", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node agent.
    Agent(AgentArgs),
    /// Inspect the checkpoint store (offline, while the agent is stopped).
    State(StateArgs),
}

#[derive(Args)]
struct StateArgs {
    /// The agent's work directory.
    #[arg(long = "work_dir", default_value = "/var/lib/berth", global = true)]
    work_dir: PathBuf,
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

/// Flags keep Mesos's names so that operators find them.
#[derive(Args)]
struct AgentArgs {
    /// Directory for the agent's state and sandboxes.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    #[command(flatten)]
    docker: DockerArgs,
    /// Refuse to start on a stored record that does not decode (true), or quarantine it
    /// and go on (false).
    #[arg(long = "strict", default_value_t = true, action = clap::ArgAction::Set)]
    strict: bool,
    /// Log format on stderr.
    #[arg(long = "log_format", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Args)]
struct DockerArgs {
    /// The Docker CLI to run.
    #[arg(long = "docker", default_value = "docker")]
    docker: PathBuf,
    /// The Docker engine's unix socket, passed to every call as `-H unix://...`.
    #[arg(long = "docker_socket", default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
}

impl DockerArgs {
    fn docker(&self) -> Docker {
        Docker::new(DockerConfig {
            program: self.docker.clone(),
            socket: self.docker_socket.clone(),
            ..DockerConfig::default()
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM ({e}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent(args) => {
            init_logging(args.log_format);
            let config = AgentConfig {
                work_dir: args.work_dir,
                docker: args.docker.docker(),
                strict: args.strict,
            };
            agent::run(config, shutdown_signal())
                .await
                .map_err(Into::into)
        }
        Command::State(args) => {
            let view = match args.view {
                StateView::Ls => View::Ls,
                StateView::Show { id } => View::Show(id),
                StateView::History { id } => View::History(id),
                StateView::Verify => View::Verify,
                StateView::Export => View::Export,
            };
            let mut out = std::io::stdout().lock();
            match state_command::run(&args.work_dir, &view, args.json, &mut out) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e.into()),
            }
        }
    };
    let result: Result<(), Box<dyn std::error::Error>> = result;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}

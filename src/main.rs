//! The `berth` binary: parses flags, sets up logging, and dispatches to the library.
//! Errors are reported once, here.

use std::path::PathBuf;
use std::process::ExitCode;

use berth::agent::{self, AgentConfig};
use berth::docker::{Docker, DockerConfig};
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
}

/// Flags keep Mesos's names so that operators find them.
#[derive(Args)]
struct AgentArgs {
    /// Directory for the agent's state and sandboxes.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    work_dir: PathBuf,
    #[command(flatten)]
    docker: DockerArgs,
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
            };
            agent::run(config, shutdown_signal()).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The `berth` binary: parses flags and dispatches each command to its module under
//! `commands/`, which calls into the library. Errors are reported once, here.

mod commands;

use std::process::ExitCode;

use berth::cli;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use commands::{
    agent::AgentArgs, chaos::ChaosArgs, completions::CompletionsArgs, events::EventsArgs,
    executor::ExecutorArgs, health::HealthArgs, inspect::IdArgs, kill::KillArgs,
    launch::LaunchArgs, logs::LogsArgs, man::ManArgs, ps::PsArgs, recover::RecoverArgs,
    state::StateArgs, wait::WaitCmdArgs,
};

/// berth: run Mesos tasks in Docker containers, and survive the agent's own crashes.
#[derive(Parser)]
#[command(name = "berth", version = berth::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node agent.
    #[command(
        after_help = "Every flag may also come from the environment: BERTH_<FLAG> (BERTH_WORK_DIR=/srv/berth), and the flags named as Mesos's from MESOS_<FLAG> (MESOS_DOCKER_REMOVE_DELAY=1hrs); the command line wins, then BERTH_, then MESOS_. A boolean flag given bare (--strict) means true."
    )]
    Agent(AgentArgs),
    /// Launch a task; prints the new container's id.
    Launch(LaunchArgs),
    /// Kill a task's container.
    Kill(KillArgs),
    /// Wait for a task to end; prints its final status and exits with the task's exit
    /// code.
    ///
    /// Exits 0 for FINISHED; otherwise with the task's own exit code when it has one
    /// (1-255); without one (or with 0, as a task that traps SIGTERM): 137 for KILLED,
    /// 125 for FAILED (it never ran: a pull, fetch or `docker run` failed), 255 for LOST.
    /// berth's own failures (no agent, an unknown id) exit 1.
    Wait(WaitCmdArgs),
    /// List the agent's containers: id, task, image, state, age, exit code, reason and
    /// message.
    Ps(PsArgs),
    /// Print a task's output from its sandbox (also when the agent is down), or from
    /// Docker's log with --since.
    Logs(LogsArgs),
    /// Print one task as JSON: the agent's view of it (`task`), its Docker container's
    /// `docker inspect` (`docker`), and its records in the store (`history`, `statuses`).
    Inspect(IdArgs),
    /// Print every task's status updates in the order they were recorded (`-f` to follow),
    /// each with its position: `--after POSITION` goes on from there, missing nothing.
    Events(EventsArgs),
    /// Print a shell completion script: `source <(berth completions bash)`.
    Completions(CompletionsArgs),
    /// Print berth's man page (roff), or write one per command into a directory.
    Man(ManArgs),
    /// Inspect the checkpoint store (through the agent while it runs, offline otherwise).
    State(StateArgs),
    /// Say whether the agent is ready (`ok`) or still recovering, its id, and whether Docker
    /// answers it.
    ///
    /// Exits 0 when the agent is ready and Docker answers, 1 while it starts or recovers, 3
    /// when it is ready but Docker does not answer (launches and kills wait for it).
    /// Answers at once: never waits for the agent.
    Health(HealthArgs),
    /// Print the recovery plan a start of the agent would carry out (with --dry-run).
    Recover(RecoverArgs),
    /// Run a chaos campaign against an agent of its own, judged by an independent
    /// checker; or heal one.
    Chaos(ChaosArgs),
    /// Run one task's executor (started by the agent; not for people).
    #[command(hide = true)]
    Executor(ExecutorArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let _crash_points = berth::crash_point::arm_from_env();
    let command =
        berth::flag_env::from_environment(Cli::command(), &|name| std::env::var_os(name).is_some());
    let matches = command.clone().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Logged by the agent at start, so that its log says what it ran with.
    let flags = match (
        command.find_subcommand("agent"),
        matches.subcommand_matches("agent"),
    ) {
        (Some(agent), Some(given)) => cli::flag_line(agent, given, &["docker_config"]),
        _ => String::new(),
    };
    let done = match cli.command {
        Command::Agent(args) => commands::agent::run(args, flags).await,
        Command::Launch(args) => commands::launch::run(args).await,
        Command::Kill(args) => commands::kill::run(args).await,
        Command::Wait(args) => commands::wait::run(args).await,
        Command::Ps(args) => commands::ps::run(args).await,
        Command::Logs(args) => commands::logs::run(args).await,
        Command::Inspect(args) => commands::inspect::run(args).await,
        Command::Events(args) => commands::events::run(args).await,
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
        Command::Man(args) => commands::man::run(args, Cli::command()),
        Command::State(args) => commands::state::run(args).await,
        Command::Health(args) => commands::health::run(args).await,
        Command::Recover(args) => commands::recover::run(args).await,
        Command::Chaos(args) => commands::chaos::run(args).await,
        Command::Executor(args) => commands::executor::run(args).await,
    };
    match done {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}

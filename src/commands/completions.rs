//! `berth completions`: prints a shell completion script.

use std::process::ExitCode;

use clap::Args;

use super::stdout::emit;
use super::Failure;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

pub fn run(args: CompletionsArgs, mut command: clap::Command) -> Result<ExitCode, Failure> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "berth", &mut out);
    emit(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

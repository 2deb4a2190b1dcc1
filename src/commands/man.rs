//! `berth man`: prints berth's man page, or writes one per command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::stdout::emit;
use super::Failure;

#[derive(Args)]
pub struct ManArgs {
    /// Write `berth.1` and a page per command (`berth-agent.1`, ...) into this directory
    /// instead of printing `berth.1`.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: ManArgs, command: clap::Command) -> Result<ExitCode, Failure> {
    // With the `[env: BERTH_<FLAG>=]` lines `--help` shows.
    let command = berth::flag_env::from_environment(command, &|_| false);
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(command, &dir)?;
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command).render(&mut out)?;
            emit(&String::from_utf8_lossy(&out));
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! The agent's flags its recovery plan depends on, which `berth recover --dry-run` takes
//! too so that it plans as the agent would: declared once, so that the two parse them
//! alike.

use std::path::PathBuf;

use berth::recovery::plan::Recover;
use berth::task::ContainerizerKind;
use clap::Args;

use super::docker_args::DockerArgs;

/// The flags in the agent's words; `berth recover` rewords them as the agent's.
#[derive(Args)]
pub struct PlanArgs {
    /// Directory for the agent's state and sandboxes.
    #[arg(long = "work_dir", default_value = "/var/lib/berth")]
    pub work_dir: PathBuf,
    #[command(flatten)]
    pub docker: DockerArgs,
    /// What to do with what ran before a restart: `reconnect` re-adopts it and finishes
    /// what was under way; `cleanup` kills and removes every task of this agent, records
    /// them KILLED, and exits.
    #[arg(long = "recover", default_value = "reconnect")]
    pub recover: Recover,
    /// Remove containers named for this agent that have no record (false: only report
    /// them).
    #[arg(long = "docker_kill_orphans", default_value_t = true, action = clap::ArgAction::Set)]
    pub docker_kill_orphans: bool,
    /// Containerizers: `docker` runs tasks in Docker containers; `mesos` also runs tasks
    /// without a container, as plain processes on the host (`docker,mesos`).
    #[arg(
        long = "containerizers",
        default_value = "docker",
        value_delimiter = ','
    )]
    pub containerizers: Vec<ContainerizerKind>,
    /// Where the sandbox appears inside a task's container.
    #[arg(long = "sandbox_directory", default_value = "/mnt/mesos/sandbox")]
    pub sandbox_directory: PathBuf,
}

//! berth: a node agent that runs tasks in Docker containers the way Apache Mesos's Docker
//! containerizer does, built so that no crash of the agent loses, duplicates or leaks a task.
//!
//! The binary (`src/main.rs`, a file per command under `src/commands/`) only parses flags
//! and dispatches; everything it calls lives here so that tests can call it too.
//!
//! - [`model`]: the task model every layer shares: states and their one guard, Mesos's
//!   reasons, status reports. A leaf.
//! - [`api`]: the HTTP/JSON API's wire types and its client (CLI and executors).
//! - [`agent`]: the agent process, from start-up checks to shutdown.
//! - [`cli`]: the CLI's client commands (launch, kill, wait, ps, inspect, health).
//! - [`logs`]: `berth logs`, from the sandbox's files (also without the agent) or Docker's log.
//! - [`containerizer`]: the launch pipeline, status reports, kills and removal.
//! - [`crash_point`]: named crash points for the crash test (feature `failpoints`).
//! - [`credentials`]: registry credentials for pulls whose HOME is the sandbox.
//! - [`docker`]: the only place that spawns the Docker CLI.
//! - [`executor`]: the per-task executor process that outlives the agent.
//! - [`own_container`]: the agent's own container (`--docker_mesos_image`): found, its
//!   set-up checked at start, and its id kept so that recovery never touches it.
//! - [`recovery`]: restart recovery: the views gathered at start, and the pure plan made of them.
//! - [`state_command`]: `berth state ...`, the store opened offline.
//! - [`state_view`]: the views `berth state` prints, rendered in one place for the CLI
//!   and the API.
//! - [`fetch`]: a task's URIs into its sandbox (local, file://, http://; archives unpacked).
//! - [`task`]: Mesos `TaskInfo` JSON, what berth refuses in one, and the pure decision of
//!   how one is launched.
//! - [`run_as`]: the host user a task runs as (`command.user`).
//! - [`flag_env`]: flags from `BERTH_<FLAG>` and `MESOS_<FLAG>`, as Mesos reads them.
//! - [`metrics`]: the agent's counters and histograms, as Prometheus scrapes them.
//! - [`identity`]: process identity (boot id, pid, start time) and signals through pidfds.
//! - [`backoff`]: the one backoff policy of every retry loop.
//! - [`duration`]: durations in Mesos's forms (`10secs`, `6hrs`) and short ones (`6h`).
//! - [`byte_size`]: sizes in Mesos's forms (`10MB`, `1234B`).

pub mod agent;
pub mod api;
pub mod backoff;
pub mod byte_size;
pub mod chaos;
pub mod cli;
pub mod containerizer;
pub mod crash_point;
pub mod credentials;
pub mod docker;
pub mod duration;
pub mod executor;
pub mod fetch;
pub mod flag_env;
pub mod identity;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod own_container;
pub mod recovery;
pub mod run_as;
pub mod state_command;
pub mod state_view;
pub mod task;

/// berth's version and the commit it was built from, such as `0.1.0 (abc1234)` (see
/// `build.rs`).
pub const VERSION: &str = env!("BERTH_VERSION");

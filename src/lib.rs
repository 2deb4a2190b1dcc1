//! berth: a node agent that runs tasks in Docker containers the way Apache Mesos's Docker
//! containerizer does, built so that no crash of the agent loses, duplicates or leaks a task.
//!
//! The binary (`src/main.rs`) only parses flags and dispatches; everything it calls lives
//! here so that tests can call it too.
//!
//! - [`api`]: the HTTP/JSON API's wire types and its client (CLI and executors).
//! - [`agent`]: the agent process, from start-up checks to shutdown.
//! - [`cli`]: the CLI's client commands (launch, kill, wait, ps, logs).
//! - [`containerizer`]: the launch pipeline, status reports, kills and removal.
//! - [`crash_point`]: named crash points for the crash test (feature `failpoints`).
//! - [`credentials`]: registry credentials for pulls whose HOME is the sandbox.
//! - [`docker`]: the only place that spawns the Docker CLI.
//! - [`executor`]: the per-task executor process that outlives the agent.
//! - [`own_container`]: the agent's own container (`--docker_mesos_image`): found, its
//!   set-up checked at start, and its id kept so that recovery never touches it.
//! - [`recovery`]: restart recovery: the views gathered at start, and the pure plan made of them.
//! - [`state_command`]: `berth state ...`, the store opened offline.
//! - [`fetch`]: a task's URIs into its sandbox (local, file://, http://; archives unpacked).
//! - [`task`]: Mesos `TaskInfo` JSON and the pure decision of how one is launched.
//! - [`metrics`]: the agent's counters and histograms, as Prometheus scrapes them.
//! - [`identity`]: process identity (boot id, pid, start time) and signals through pidfds.
//! - [`duration`]: durations in Mesos's forms (`10secs`, `6hrs`) and short ones (`6h`).

pub mod agent;
pub mod api;
pub mod chaos;
pub mod cli;
pub mod containerizer;
pub mod crash_point;
pub mod credentials;
pub mod docker;
pub mod duration;
pub mod executor;
pub mod fetch;
pub mod identity;
pub mod metrics;
pub mod own_container;
pub mod recovery;
pub mod state_command;
pub mod task;

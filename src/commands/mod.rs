//! berth's commands: one module per command, each with its flags and a `run` that calls
//! into the library; beside them the flag groups and parsers several commands share.

pub mod agent;
pub mod chaos;
pub mod client_args;
pub mod completions;
pub mod docker_args;
pub mod events;
pub mod executor;
pub mod health;
pub mod inspect;
pub mod kill;
pub mod launch;
pub mod logging;
pub mod logs;
pub mod man;
pub mod plan_args;
pub mod ps;
pub mod recover;
pub mod state;
pub mod stdout;
pub mod values;
pub mod wait;

/// What a command fails with; `main` reports it once.
pub type Failure = Box<dyn std::error::Error>;

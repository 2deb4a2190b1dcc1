//! Integration tests against a real Docker engine. `scripts/test` brings the engine, the
//! test images and the local registries up first; a test that finds them missing fails and
//! says so rather than skipping.

mod agent_start;
mod chaos;
mod cli_first_minute;
mod cli_tools;
mod containerizer;
#[cfg(feature = "failpoints")]
mod crash_points;
mod docker_abandoned;
mod docker_list;
mod docker_outage;
mod docker_outage_api;
mod docker_outage_executor;
mod docker_pull;
mod docker_run;
mod docker_timeout;
mod docker_version;
mod engine_stand_in;
mod events;
mod executor_alone;
mod executor_signals;
mod fetch;
mod in_container;
mod metrics;
mod private_docker;
mod private_registry;
mod recovery;
mod sandbox_logs;
mod serving;
mod session_leftovers;
mod state_cli;
mod support;
mod systemd_unit;
mod taskinfo;

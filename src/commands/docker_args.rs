//! `--docker` and `--docker_socket`: how the agent, `recover` and `chaos` reach Docker.

use std::path::PathBuf;

use berth::docker::{Docker, DockerConfig};
use clap::Args;

#[derive(Args)]
pub struct DockerArgs {
    /// The Docker CLI to run.
    #[arg(long = "docker", default_value = berth::chaos::run_command::DOCKER)]
    pub docker: PathBuf,
    /// The Docker engine's unix socket, passed to every call as `-H unix://...`.
    #[arg(long = "docker_socket", default_value = berth::chaos::run_command::DOCKER_SOCKET)]
    pub docker_socket: PathBuf,
}

impl DockerArgs {
    pub fn docker(&self) -> Docker {
        Docker::new(DockerConfig {
            program: self.docker.clone(),
            socket: self.docker_socket.clone(),
            ..DockerConfig::default()
        })
    }
}

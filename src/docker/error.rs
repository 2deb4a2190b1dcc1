//! The adapter's one error type: no raw I/O or parse error leaks past `src/docker/`.

use std::time::Duration;

use super::argv::SpecError;
use super::inspect::ParseError;
use super::version::Version;

/// What went wrong talking to Docker. Every variant that ran a command names it.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The request itself is invalid; nothing was run.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The CLI could not be started (missing binary, not executable, E2BIG).
    #[error("could not start `{command}`: {source}; check --docker")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The call did not finish in time; a CLI and its children were killed, a request
    /// given up.
    #[error("`{command}` did not finish within {timeout:?}; is the Docker daemon hanging?")]
    Timeout {
        /// The command line.
        command: String,
        /// The limit that expired.
        timeout: Duration,
    },
    /// The CLI exited unsuccessfully.
    #[error("`{command}` failed with {}: {stderr}", exit_text(*.code))]
    Failed {
        /// The command line.
        command: String,
        /// Exit code; `None` when killed by a signal.
        code: Option<i32>,
        /// Its standard error, trimmed and capped.
        stderr: String,
    },
    /// The engine's API could not be reached, or broke off before its answer ended.
    #[error("cannot get `{request}` from the Docker engine: {source}; is the daemon running and --docker_socket its socket?")]
    Engine {
        /// The request (method and path).
        request: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The engine's API answered with an error status.
    #[error("the Docker engine answered `{request}` with status {status}: {message}")]
    Refused {
        /// The request (method and path).
        request: String,
        /// The HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// The named container does not exist.
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    /// The CLI printed something berth cannot read.
    #[error("could not read the output of `{command}`: {reason}")]
    Output {
        /// The command line.
        command: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Inspect output that does not parse.
    #[error("could not read the output of `{command}`: {source}")]
    Inspect {
        /// The command line.
        command: String,
        /// The parse failure.
        source: ParseError,
    },
    /// The client or the engine is older than berth supports.
    #[error("docker {component} version {found} is older than the minimum {min}: upgrade Docker", min = super::version::MINIMUM)]
    TooOld {
        /// `client` or `server`.
        component: &'static str,
        /// The version found.
        found: Version,
    },
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "a signal".to_owned(),
    }
}

//! The Docker container the agent itself runs in (`--docker_mesos_image`): found from the
//! mount table, its set-up checked at start, and its id kept in the work dir so that
//! recovery never touches it, whatever it is named.
//!
//! - [`mountinfo`]: which container this process runs in, from `/proc/self/mountinfo`.
//! - [`checks`]: whether that container is set up as the mode needs (pure).
//! - [`record`]: `<work_dir>/agent-container`, the id kept for later runs and the host.

pub mod checks;
pub mod mountinfo;
pub mod record;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use checks::{Asked, Facts, Refused, SocketSeen};
use mountinfo::Detected;

use crate::docker::{Docker, DockerError};

/// Where the kernel shows this process's mounts.
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The agent's own container, as the checks found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnContainer {
    /// Its full Docker id.
    pub id: String,
    /// The host's path of the Docker socket mounted into it: executor containers get the
    /// socket from the host, so they are given this path (the same as the agent's when
    /// it is mounted as documented).
    pub docker_socket_on_host: std::path::PathBuf,
}

/// Looks at the set-up and returns the agent's own container, or every problem found.
/// Nothing is written. Docker is asked only once its socket is there, and each question
/// once: in this mode the agent's container is run by that same daemon, so one that does
/// not answer now is not waited for.
pub async fn check(
    work_dir: &Path,
    api_socket: &Path,
    docker: &Docker,
    image: &str,
) -> Result<OwnContainer, Refused> {
    let docker_socket = docker.config().socket.clone();
    let socket = socket_seen(&docker_socket);
    let detected = std::fs::read_to_string(MOUNTINFO)
        .map(|text| mountinfo::detect(&text))
        .map_err(|e| format!("{MOUNTINFO}: {e}"));
    let mut reachable = socket == SocketSeen::Socket;
    let inspected = match &detected {
        Ok(Detected::Container(id)) if reachable => match docker.inspect(id).await {
            Ok(info) => Asked::Answered(info),
            Err(e) => {
                // A daemon that hung once is not asked a second question to hang on.
                reachable = !matches!(e, DockerError::Timeout { .. })
                    && crate::docker::reach::out_of_reach(&e).is_none();
                Asked::Failed(e.to_string())
            }
        },
        _ => Asked::NotAsked,
    };
    let image_present = if reachable {
        match docker.image_present(image).await {
            Ok(present) => Asked::Answered(present),
            Err(e) => Asked::Failed(e.to_string()),
        }
    } else {
        Asked::NotAsked
    };
    // Compared with the mounts' destinations, which Docker prints absolute.
    let work_dir = std::path::absolute(work_dir).unwrap_or_else(|_| work_dir.to_path_buf());
    let api_socket = std::path::absolute(api_socket).unwrap_or_else(|_| api_socket.to_path_buf());
    let mounts = match &inspected {
        Asked::Answered(Some(info)) => info.mounts.clone(),
        _ => Vec::new(),
    };
    let id = checks::decide(&Facts {
        work_dir: &work_dir,
        api_socket: &api_socket,
        docker_socket: &docker_socket,
        socket,
        detected,
        inspected,
        image,
        image_present,
    })?;
    Ok(OwnContainer {
        id,
        docker_socket_on_host: checks::host_path(&docker_socket, &mounts).unwrap_or(docker_socket),
    })
}

fn socket_seen(path: &Path) -> SocketSeen {
    match std::fs::metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_socket() {
                SocketSeen::Socket
            } else if kind.is_dir() {
                // What `-v` makes when the host path it was given does not exist.
                SocketSeen::Other("a directory")
            } else if kind.is_file() {
                SocketSeen::Other("a regular file")
            } else {
                SocketSeen::Other("neither a file nor a directory")
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SocketSeen::Missing,
        Err(e) => SocketSeen::Unreadable(e.to_string()),
    }
}

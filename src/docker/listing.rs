//! Reading `docker ps` rows, each to be inspected by itself, so that one container Docker
//! cannot describe does not hide the others.

use super::error::DockerError;
use super::inspect::ContainerInfo;

/// One row of `docker ps --format '{{.ID}} {{.Names}}'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The full container id.
    pub id: String,
    /// The name as `docker ps` printed it (no leading `/`).
    pub name: String,
}

/// One container a listing found.
#[derive(Debug)]
pub struct Listed {
    /// Its name as `docker ps` printed it, so that a failed inspect still names it.
    pub name: String,
    /// What inspecting it gave.
    pub inspect: Result<ContainerInfo, DockerError>,
}

/// The rows of `docker ps` whose name starts with `prefix`. The filter is a regular
/// expression on the engine's side; the prefix is checked here too so that an engine's
/// looser matching cannot widen the set. A row that is not an id and a name is an error:
/// a CLI printing something else must not be read as an empty host.
pub fn parse_rows(stdout: &str, prefix: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut fields = line.split_whitespace();
        let (Some(id), Some(name), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("expected a container id and a name, got {line:?}"));
        };
        if !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("expected a container id, got {id:?}"));
        }
        // A container with several names (legacy links) prints them comma-separated; its
        // own name is the one without a `/`.
        let Some(name) = name.split(',').find(|n| !n.contains('/')) else {
            return Err(format!("no name of its own among {name:?}"));
        };
        if name.starts_with(prefix) {
            rows.push(Row {
                id: id.to_owned(),
                name: name.to_owned(),
            });
        }
    }
    Ok(rows)
}

/// Whether a failed inspect says that Docker itself is out of reach, so that inspecting
/// the containers one by one would only fail as many more times. A call that hung is not:
/// `docker ps` has just answered, and a daemon that hangs on one container's lock still
/// describes the others.
pub fn docker_out_of_reach(error: &DockerError) -> bool {
    super::reach::out_of_reach(error).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// Rows as (id, name), or a piece of the error.
    type Want = Result<Vec<(&'static str, &'static str)>, &'static str>;

    #[test]
    fn rows_are_read_and_filtered_by_prefix() {
        let cases: Vec<(String, Want)> = vec![
            (String::new(), Ok(vec![])),
            ("\n  \n".into(), Ok(vec![])),
            (
                format!("{ID_A} mesos-x.1\n{ID_B} other\n"),
                Ok(vec![(ID_A, "mesos-x.1")]),
            ),
            (
                format!("{ID_A} web/db,mesos-x.1"),
                Ok(vec![(ID_A, "mesos-x.1")]),
            ),
            (ID_A.into(), Err("expected a container id and a name")),
            (
                format!("{ID_A} a b"),
                Err("expected a container id and a name"),
            ),
            ("zzz mesos-x.1".into(), Err("expected a container id")),
            (format!("{ID_A} a/b"), Err("no name of its own")),
        ];
        for (stdout, want) in cases {
            let got = parse_rows(&stdout, "mesos-");
            match (want, got) {
                (Ok(want), Ok(got)) => {
                    let got: Vec<(&str, &str)> = got
                        .iter()
                        .map(|r| (r.id.as_str(), r.name.as_str()))
                        .collect();
                    assert_eq!(got, want, "{stdout:?}");
                }
                (Err(want), Err(got)) => assert!(got.contains(want), "{stdout:?}: {got}"),
                (want, got) => panic!("{stdout:?}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn only_an_unreachable_docker_stops_the_one_by_one_fallback() {
        let failed = |stderr: &str| DockerError::Failed {
            command: "docker inspect".into(),
            code: Some(1),
            stderr: stderr.into(),
        };
        let engine = |kind: std::io::ErrorKind| DockerError::Engine {
            request: "GET /containers/x/json".into(),
            source: std::io::Error::new(kind, "x"),
        };
        let cases = [
            (failed("Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?"), true),
            (failed("error during connect: Get \"http://%2Fx.sock/v1.50/containers/json\": EOF"), true),
            (failed("permission denied while trying to connect to the Docker daemon socket at unix:///x.sock"), true),
            (
                DockerError::Failed {
                    command: "docker inspect".into(),
                    code: None,
                    stderr: String::new(),
                },
                true,
            ),
            (failed("Error response from daemon: dial unix /run/containerd/containerd.sock: connect: connection refused"), false),
            (
                DockerError::Timeout {
                    command: "docker inspect".into(),
                    timeout: std::time::Duration::from_secs(30),
                },
                false,
            ),
            (failed("Error response from daemon: json: cannot unmarshal"), false),
            (engine(std::io::ErrorKind::ConnectionRefused), true),
            (engine(std::io::ErrorKind::NotFound), true),
            (engine(std::io::ErrorKind::UnexpectedEof), true),
            // Something answered, if not in HTTP: not nobody.
            (engine(std::io::ErrorKind::InvalidData), false),
            (
                DockerError::Refused {
                    request: "GET /containers/x/json".into(),
                    status: 500,
                    message: "json: cannot unmarshal".into(),
                },
                false,
            ),
            (DockerError::NoSuchContainer("x".into()), false),
        ];
        for (error, want) in cases {
            assert_eq!(docker_out_of_reach(&error), want, "{error}");
        }
    }
}

//! Whether the agent's container is set up as `--docker_mesos_image` needs, decided from
//! what was found: every problem at once, each saying what to change.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use super::mountinfo::Detected;
use crate::docker::{ContainerInfo, Mount};

/// What was found at the `--docker_socket` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketSeen {
    /// A unix socket.
    Socket,
    /// Nothing.
    Missing,
    /// Something else (`a directory`, `a regular file`...).
    Other(&'static str),
    /// It could not be looked at (the OS error).
    Unreadable(String),
}

/// The answer to a question put to Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked<T> {
    /// Not asked: what it depends on was missing.
    NotAsked,
    /// Docker answered.
    Answered(T),
    /// Docker did not answer (the error).
    Failed(String),
}

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// `--work_dir`, absolute.
    pub work_dir: &'a Path,
    /// `--api_socket`, absolute.
    pub api_socket: &'a Path,
    /// `--docker_socket`.
    pub docker_socket: &'a Path,
    /// What is at `docker_socket`.
    pub socket: SocketSeen,
    /// What `/proc/self/mountinfo` says; `Err` when it could not be read.
    pub detected: Result<Detected, String>,
    /// `docker inspect` of the detected container; `None` when Docker has no such
    /// container.
    pub inspected: Asked<Option<ContainerInfo>>,
    /// `--docker_mesos_image`.
    pub image: &'a str,
    /// Whether Docker has `image`.
    pub image_present: Asked<bool>,
}

/// One thing about the set-up that stops `--docker_mesos_image` from working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Nothing at the socket path.
    #[error("the Docker socket {p} (--docker_socket) does not exist in the agent's container: bind-mount the host's Docker socket there, e.g. `-v {p}:{p}`", p = .socket.display())]
    SocketMissing {
        /// `--docker_socket`.
        socket: PathBuf,
    },
    /// Something else than a socket there.
    #[error("the Docker socket {p} (--docker_socket) is {what}, not a socket: bind-mount the host's Docker socket there, e.g. `-v {p}:{p}`", p = .socket.display())]
    NotASocket {
        /// `--docker_socket`.
        socket: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// The path could not be looked at.
    #[error("the Docker socket {p} (--docker_socket) cannot be looked at ({error}): bind-mount the host's Docker socket there, e.g. `-v {p}:{p}`, where the agent may use it", p = .socket.display())]
    SocketUnreadable {
        /// `--docker_socket`.
        socket: PathBuf,
        /// The OS error.
        error: String,
    },
    /// No mount of Docker's per-container files.
    #[error("--docker_mesos_image is set but berth agent is not in a Docker container (/proc/self/mountinfo has no mount of Docker's containers/<id>/hostname, hosts or resolv.conf): run it in a container as docs/operations.md \"The agent in a container\" shows, or drop --docker_mesos_image to run it on the host")]
    NotInContainer,
    /// The mount table could not be read.
    #[error("cannot read /proc/self/mountinfo to find the agent's own container ({0}): run the agent's container with /proc mounted (Docker does so unless told otherwise)")]
    MountinfoUnreadable(String),
    /// Docker's files come from several containers.
    #[error("cannot tell which Docker container the agent runs in: /etc/hostname, /etc/hosts and /etc/resolv.conf come from the directories of containers {}: do not bind-mount another container's files over them", join(.0))]
    SeveralContainers(BTreeSet<String>),
    /// The daemon behind the socket does not know the agent's container.
    #[error("the Docker daemon at {p} has no container {id}, the agent's own: --docker_socket must be the socket of the daemon that runs the agent's container; bind-mount the host's, e.g. `-v /var/run/docker.sock:{p}`", p = .socket.display())]
    OwnContainerUnknown {
        /// `--docker_socket`.
        socket: PathBuf,
        /// The id from the mount table.
        id: String,
    },
    /// A question to Docker got no answer.
    #[error("Docker at {p} did not answer when asked {question} ({error}): start the Docker daemon, or check that --docker_socket is the host's Docker socket bind-mounted into the agent's container", p = .socket.display())]
    DockerUnanswered {
        /// `--docker_socket`.
        socket: PathBuf,
        /// What was asked.
        question: &'static str,
        /// Docker's error.
        error: String,
    },
    /// The work dir is not the host's directory at the same path.
    #[error("--work_dir {w} is not bind-mounted from the same path on the host ({why}): run the agent's container with `-v {w}:{w}`, so that the work dir has the same path inside and out. The host's Docker daemon resolves the bind mounts of task containers' sandboxes on the host, and executor containers see each sandbox at its host path", w = .work_dir.display())]
    WorkDirNotSamePath {
        /// `--work_dir`.
        work_dir: PathBuf,
        /// What holds it instead.
        why: String,
    },
    /// The work dir is bind-mounted at the same path but cannot be written.
    #[error("--work_dir {w} is bind-mounted at the same path from the host but read-only ({m} is mounted read-only): mount it read-write, `-v {w}:{w}` without :ro; the agent writes its store and the sandboxes there", w = .work_dir.display(), m = .mount.display())]
    WorkDirReadOnly {
        /// `--work_dir`.
        work_dir: PathBuf,
        /// The mount that holds it.
        mount: PathBuf,
    },
    /// The agent's container has a pid namespace of its own.
    #[error("the agent's container runs in {}, not the host's: run it with --pid=host. berth checks executors through /proc (their pid and start time), which shows them only in the host's pid namespace", pid_namespace(.0))]
    PidNotHost(String),
    /// The API socket is not in the work dir, which executor containers are given.
    #[error("--api_socket {a} is not in --work_dir {w}: with --docker_mesos_image, executor containers reach the agent through the work dir (mounted at its host path), so leave --api_socket out (it is then {w}/berth.sock) or put it in the work dir", a = .api_socket.display(), w = .work_dir.display())]
    ApiSocketOutsideWorkDir {
        /// `--api_socket`.
        api_socket: PathBuf,
        /// `--work_dir`.
        work_dir: PathBuf,
    },
    /// The image executors run from is not there.
    #[error("--docker_mesos_image {0} is not present in the Docker engine: build it with scripts/agent-image and pass the reference it prints, or `docker pull {0}`")]
    ImageMissing(String),
}

fn join(ids: &BTreeSet<String>) -> String {
    ids.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn pid_namespace(mode: &str) -> String {
    if mode.is_empty() {
        "a pid namespace of its own".to_owned()
    } else {
        format!("the pid namespace {mode:?}")
    }
}

/// Every problem `facts` show, in the order they were looked for.
fn problems(facts: &Facts) -> Vec<Problem> {
    let mut found = Vec::new();
    let socket = facts.docker_socket.to_path_buf();
    match &facts.socket {
        SocketSeen::Socket => {}
        SocketSeen::Missing => found.push(Problem::SocketMissing {
            socket: socket.clone(),
        }),
        SocketSeen::Other(what) => found.push(Problem::NotASocket {
            socket: socket.clone(),
            what,
        }),
        SocketSeen::Unreadable(e) => found.push(Problem::SocketUnreadable {
            socket: socket.clone(),
            error: e.clone(),
        }),
    }
    if !clean(facts.api_socket).starts_with(clean(facts.work_dir)) {
        found.push(Problem::ApiSocketOutsideWorkDir {
            api_socket: facts.api_socket.to_path_buf(),
            work_dir: facts.work_dir.to_path_buf(),
        });
    }
    match &facts.detected {
        Ok(Detected::Container(_)) => {}
        Ok(Detected::NotInContainer) => found.push(Problem::NotInContainer),
        Ok(Detected::Several(ids)) => found.push(Problem::SeveralContainers(ids.clone())),
        Err(e) => found.push(Problem::MountinfoUnreadable(e.clone())),
    }
    match (&facts.inspected, &facts.detected) {
        (Asked::Answered(Some(own)), _) => {
            found.extend(work_dir(facts.work_dir, &own.mounts));
            if own.pid_mode != "host" {
                found.push(Problem::PidNotHost(own.pid_mode.clone()));
            }
        }
        (Asked::Answered(None), Ok(Detected::Container(id))) => {
            found.push(Problem::OwnContainerUnknown {
                socket: socket.clone(),
                id: id.clone(),
            })
        }
        (Asked::Failed(e), _) => found.push(Problem::DockerUnanswered {
            socket: socket.clone(),
            question: "for the agent's own container",
            error: e.clone(),
        }),
        (Asked::Answered(None), _) | (Asked::NotAsked, _) => {}
    }
    match &facts.image_present {
        Asked::Answered(true) | Asked::NotAsked => {}
        Asked::Answered(false) => found.push(Problem::ImageMissing(facts.image.to_owned())),
        Asked::Failed(e) => found.push(Problem::DockerUnanswered {
            socket,
            question: "whether it has the --docker_mesos_image image",
            error: e.clone(),
        }),
    }
    found
}

/// The agent's own container id when `facts` show no problem; otherwise every problem.
pub fn decide(facts: &Facts) -> Result<String, Refused> {
    let found = problems(facts);
    match &facts.detected {
        Ok(Detected::Container(id)) if found.is_empty() => Ok(id.clone()),
        _ => Err(Refused(found)),
    }
}

/// The work dir must be inside a writable mount whose host path is its path in the
/// container. The deepest mount on the work dir's path is the one that holds it: a mount
/// below a same-path one hides it.
fn work_dir(work_dir: &Path, mounts: &[Mount]) -> Option<Problem> {
    let cleaned = clean(work_dir);
    let holder = mounts
        .iter()
        .filter(|m| cleaned.starts_with(&m.destination))
        .max_by_key(|m| m.destination.components().count());
    let Some(m) = holder else {
        return Some(Problem::WorkDirNotSamePath {
            work_dir: work_dir.to_path_buf(),
            why: "no mount of the agent's container holds it: it is in the container's own filesystem, which the host's daemon and the executor containers do not see".to_owned(),
        });
    };
    if m.source != m.destination {
        let from = match cleaned.strip_prefix(&m.destination) {
            Ok(below) if m.kind != "volume" => {
                let host = m.source.join(below);
                format!(
                    "{}; or use its host path on both sides: `-v {h}:{h} --work_dir {h}`",
                    m.source.display(),
                    h = host.display()
                )
            }
            _ => format!("the volume at {}", m.source.display()),
        };
        return Some(Problem::WorkDirNotSamePath {
            work_dir: work_dir.to_path_buf(),
            why: format!(
                "it is under {}, which is mounted from {from}",
                m.destination.display()
            ),
        });
    }
    if !m.rw {
        return Some(Problem::WorkDirReadOnly {
            work_dir: work_dir.to_path_buf(),
            mount: m.destination.clone(),
        });
    }
    None
}

/// The host's path of `path` in the container, when a bind mount holds it exactly (the
/// Docker socket: a file mounted by itself). Pure.
pub fn host_path(path: &Path, mounts: &[Mount]) -> Option<PathBuf> {
    let cleaned = clean(path);
    mounts
        .iter()
        .find(|m| m.kind != "volume" && clean(&m.destination) == cleaned)
        .map(|m| m.source.clone())
}

/// `path` with `.` and `..` resolved by name, as Docker cleans the paths it is given: the
/// host's daemon sees the sandbox paths berth builds from `--work_dir` that way, never
/// through the container's symlinks.
fn clean(path: &Path) -> PathBuf {
    let mut cleaned = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                cleaned.pop();
            }
            other => cleaned.push(other),
        }
    }
    cleaned
}

/// The refusal: every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub Vec<Problem>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "berth agent is not set up as --docker_mesos_image needs; nothing was started or written. Change this and start it again:"
        )?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::docker::ContainerState;

    const ID: &str = "4e1a1947f94d76a76592af93bdf9f2134a5db9f5fa5e56e23db8997e0b695b2a";
    const IMAGE: &str = "berth-agent:0123456789ab";

    fn bind(source: &str, destination: &str, rw: bool) -> Mount {
        Mount {
            kind: "bind".into(),
            source: source.into(),
            destination: destination.into(),
            rw,
        }
    }

    /// The agent's container as the documented `docker run` line makes it.
    fn own(mounts: Vec<Mount>, pid_mode: &str) -> ContainerInfo {
        ContainerInfo {
            id: ID.into(),
            name: "berth-agent".into(),
            state: ContainerState::Running,
            pid: Some(4242),
            started_at: None,
            exit_code: None,
            labels: BTreeMap::new(),
            pid_mode: pid_mode.into(),
            mounts,
        }
    }

    fn documented() -> Vec<Mount> {
        vec![
            bind("/var/run/docker.sock", "/var/run/docker.sock", true),
            bind("/var/lib/berth", "/var/lib/berth", true),
        ]
    }

    /// A set-up, as the parts that vary.
    struct SetUp {
        work_dir: &'static str,
        socket: SocketSeen,
        detected: Result<Detected, String>,
        inspected: Asked<Option<ContainerInfo>>,
        image_present: Asked<bool>,
    }

    fn good() -> SetUp {
        SetUp {
            work_dir: "/var/lib/berth",
            socket: SocketSeen::Socket,
            detected: Ok(Detected::Container(ID.into())),
            inspected: Asked::Answered(Some(own(documented(), "host"))),
            image_present: Asked::Answered(true),
        }
    }

    fn run(s: &SetUp) -> Result<String, Refused> {
        run_api(s, &Path::new(s.work_dir).join("berth.sock"))
    }

    fn run_api(s: &SetUp, api_socket: &Path) -> Result<String, Refused> {
        decide(&Facts {
            work_dir: Path::new(s.work_dir),
            api_socket,
            docker_socket: Path::new("/var/run/docker.sock"),
            socket: s.socket.clone(),
            detected: s.detected.clone(),
            inspected: s.inspected.clone(),
            image: IMAGE,
            image_present: s.image_present.clone(),
        })
    }

    fn with_mounts(mounts: Vec<Mount>) -> SetUp {
        SetUp {
            inspected: Asked::Answered(Some(own(mounts, "host"))),
            ..good()
        }
    }

    fn with_work_dir(work_dir: &'static str, mounts: Vec<Mount>) -> SetUp {
        SetUp {
            work_dir,
            ..with_mounts(mounts)
        }
    }

    #[test]
    fn table_of_set_ups() {
        let same_path = "same path";
        let fix = "-v /var/lib/berth:/var/lib/berth";
        // (what, set-up, one list of phrases per problem expected, in order)
        let cases: Vec<(&str, SetUp, Vec<Vec<&str>>)> = vec![
            ("the documented set-up", good(), vec![]),
            (
                "a work dir below a same-path mount",
                with_work_dir(
                    "/var/lib/berth/agent-1",
                    vec![bind("/var/lib/berth", "/var/lib/berth", true)],
                ),
                vec![],
            ),
            (
                "a trailing slash and a doubled one",
                with_work_dir(
                    "/var/lib//berth/",
                    vec![bind("/var/lib/berth/", "/var/lib/berth", true)],
                ),
                vec![],
            ),
            (
                "a work dir named with . and ..",
                with_work_dir(
                    "/var/lib/./other/../berth/a",
                    vec![bind("/var/lib/berth", "/var/lib/berth", true)],
                ),
                vec![],
            ),
            (
                "a work dir that .. takes out of the mount",
                with_work_dir(
                    "/var/lib/berth/../other",
                    vec![bind("/var/lib/berth", "/var/lib/berth", true)],
                ),
                vec![vec!["--work_dir /var/lib/berth/../other", same_path, "no mount"]],
            ),
            (
                "the whole of /var/lib at the same path",
                with_mounts(vec![bind("/var/lib", "/var/lib", true)]),
                vec![],
            ),
            (
                "a read-only mount above a writable same-path one",
                with_mounts(vec![
                    bind("/var/lib", "/var/lib", false),
                    bind("/var/lib/berth", "/var/lib/berth", true),
                ]),
                vec![],
            ),
            (
                "no socket",
                SetUp {
                    socket: SocketSeen::Missing,
                    inspected: Asked::NotAsked,
                    image_present: Asked::NotAsked,
                    ..good()
                },
                vec![vec![
                    "Docker socket",
                    "/var/run/docker.sock",
                    "does not exist",
                    "-v /var/run/docker.sock:/var/run/docker.sock",
                ]],
            ),
            (
                "a directory where the socket should be",
                SetUp {
                    socket: SocketSeen::Other("a directory"),
                    inspected: Asked::NotAsked,
                    image_present: Asked::NotAsked,
                    ..good()
                },
                vec![vec![
                    "Docker socket",
                    "is a directory, not a socket",
                    "-v /var/run/docker.sock:/var/run/docker.sock",
                ]],
            ),
            (
                "a socket that cannot be looked at",
                SetUp {
                    socket: SocketSeen::Unreadable("permission denied".into()),
                    inspected: Asked::NotAsked,
                    image_present: Asked::NotAsked,
                    ..good()
                },
                vec![vec![
                    "Docker socket",
                    "permission denied",
                    "-v /var/run/docker.sock:/var/run/docker.sock",
                ]],
            ),
            (
                "on the host",
                SetUp {
                    detected: Ok(Detected::NotInContainer),
                    inspected: Asked::NotAsked,
                    ..good()
                },
                vec![vec![
                    "not in a Docker container",
                    "The agent in a container",
                    "drop --docker_mesos_image",
                ]],
            ),
            (
                "on the host, with neither socket nor image",
                SetUp {
                    socket: SocketSeen::Missing,
                    detected: Ok(Detected::NotInContainer),
                    inspected: Asked::NotAsked,
                    image_present: Asked::NotAsked,
                    ..good()
                },
                vec![vec!["Docker socket"], vec!["not in a Docker container"]],
            ),
            (
                "on the host, without the image",
                SetUp {
                    detected: Ok(Detected::NotInContainer),
                    inspected: Asked::NotAsked,
                    image_present: Asked::Answered(false),
                    ..good()
                },
                vec![
                    vec!["not in a Docker container"],
                    vec![IMAGE, "is not present", "scripts/agent-image"],
                ],
            ),
            (
                "no /proc",
                SetUp {
                    detected: Err("/proc/self/mountinfo: No such file or directory".into()),
                    inspected: Asked::NotAsked,
                    ..good()
                },
                vec![vec!["/proc/self/mountinfo", "No such file"]],
            ),
            (
                "another container's files",
                SetUp {
                    detected: Ok(Detected::Several(BTreeSet::from([
                        ID.to_owned(),
                        "ab".repeat(32),
                    ]))),
                    inspected: Asked::NotAsked,
                    ..good()
                },
                vec![vec!["cannot tell which", ID]],
            ),
            (
                "a daemon that does not run the agent's container",
                SetUp {
                    inspected: Asked::Answered(None),
                    ..good()
                },
                vec![vec!["has no container", ID, "--docker_socket"]],
            ),
            (
                "a daemon that does not answer",
                SetUp {
                    inspected: Asked::Failed("Cannot connect to the Docker daemon".into()),
                    image_present: Asked::NotAsked,
                    ..good()
                },
                vec![vec![
                    "did not answer",
                    "the agent's own container",
                    "Cannot connect",
                ]],
            ),
            (
                "a daemon that fails to say whether it has the image",
                SetUp {
                    image_present: Asked::Failed("`docker image inspect` hung".into()),
                    ..good()
                },
                vec![vec!["did not answer", "--docker_mesos_image", "hung"]],
            ),
            (
                "no work dir mount",
                with_mounts(vec![bind(
                    "/var/run/docker.sock",
                    "/var/run/docker.sock",
                    true,
                )]),
                vec![vec![
                    "--work_dir /var/lib/berth",
                    same_path,
                    fix,
                    "no mount",
                    "resolves",
                ]],
            ),
            (
                "a work dir mounted from another host path",
                with_work_dir(
                    "/var/lib/berth/a",
                    vec![bind("/srv/berth", "/var/lib/berth", true)],
                ),
                vec![vec![
                    "--work_dir",
                    same_path,
                    "-v /var/lib/berth/a:/var/lib/berth/a",
                    "mounted from /srv/berth; or use its host path on both sides: `-v /srv/berth/a:/srv/berth/a --work_dir /srv/berth/a`",
                ]],
            ),
            (
                "a work dir in a volume",
                with_mounts(vec![Mount {
                    kind: "volume".into(),
                    source: "/var/lib/docker/volumes/berth/_data".into(),
                    destination: "/var/lib/berth".into(),
                    rw: true,
                }]),
                vec![vec!["--work_dir", same_path, fix, "the volume at"]],
            ),
            (
                "a work dir only string-prefixed by a mount",
                with_mounts(vec![bind("/var/lib/ber", "/var/lib/ber", true)]),
                vec![vec!["--work_dir", same_path, fix]],
            ),
            (
                "a mount below a same-path one hides it",
                with_mounts(vec![
                    bind("/var/lib", "/var/lib", true),
                    bind("/tmp/elsewhere", "/var/lib/berth", true),
                ]),
                vec![vec!["--work_dir", same_path, "/tmp/elsewhere"]],
            ),
            (
                "a read-only work dir",
                with_mounts(vec![bind("/var/lib/berth", "/var/lib/berth", false)]),
                vec![vec!["--work_dir", same_path, "read-only", fix]],
            ),
            (
                "a read-only mount above the work dir",
                with_work_dir(
                    "/var/lib/berth/agent-1",
                    vec![bind("/var/lib/berth", "/var/lib/berth", false)],
                ),
                vec![vec![
                    "--work_dir /var/lib/berth/agent-1",
                    "/var/lib/berth is mounted read-only",
                ]],
            ),
            (
                "its own pid namespace",
                SetUp {
                    inspected: Asked::Answered(Some(own(documented(), ""))),
                    ..good()
                },
                vec![vec!["--pid=host", "of its own", "/proc"]],
            ),
            (
                "another container's pid namespace",
                SetUp {
                    inspected: Asked::Answered(Some(own(documented(), "container:ab12"))),
                    ..good()
                },
                vec![vec!["--pid=host", "container:ab12"]],
            ),
            (
                "no image",
                SetUp {
                    image_present: Asked::Answered(false),
                    ..good()
                },
                vec![vec![
                    IMAGE,
                    "is not present",
                    "scripts/agent-image",
                    "docker pull",
                ]],
            ),
            (
                "everything wrong in the container at once",
                SetUp {
                    inspected: Asked::Answered(Some(own(vec![], ""))),
                    image_present: Asked::Answered(false),
                    ..good()
                },
                vec![
                    vec!["--work_dir", same_path],
                    vec!["--pid=host"],
                    vec!["is not present"],
                ],
            ),
        ];
        for (what, set_up, want) in cases {
            let got = run(&set_up);
            if want.is_empty() {
                assert_eq!(got, Ok(ID.to_owned()), "{what}");
                continue;
            }
            let Err(Refused(problems)) = got else {
                panic!("{what}: not refused");
            };
            assert_eq!(problems.len(), want.len(), "{what}: {problems:#?}");
            for (problem, phrases) in problems.iter().zip(&want) {
                let said = problem.to_string();
                for phrase in phrases {
                    assert!(said.contains(phrase), "{what}: {phrase:?} not in {said}");
                }
            }
        }
    }

    #[test]
    fn the_refusal_lists_every_problem_on_a_line_of_its_own() {
        let refused = Refused(vec![
            Problem::NotInContainer,
            Problem::ImageMissing(IMAGE.into()),
        ]);
        let said = refused.to_string();
        assert_eq!(said.lines().count(), 3, "{said}");
        assert!(said.contains("nothing was started or written"), "{said}");
        assert!(said.contains("\n  - --docker_mesos_image is set"), "{said}");
        assert!(
            said.contains(&format!("\n  - --docker_mesos_image {IMAGE}")),
            "{said}"
        );
    }

    #[test]
    fn the_configured_socket_path_is_in_the_fix() {
        let said = Problem::SocketMissing {
            socket: "/run/docker-alt.sock".into(),
        }
        .to_string();
        assert!(
            said.contains("-v /run/docker-alt.sock:/run/docker-alt.sock"),
            "{said}"
        );
    }

    #[test]
    fn the_sockets_host_path_is_its_mounts_source() {
        let socket = Path::new("/var/run/docker.sock");
        let cases: Vec<(Vec<Mount>, Option<&str>)> = vec![
            (documented(), Some("/var/run/docker.sock")),
            (
                vec![bind("/run/docker.sock", "/var/run/docker.sock", true)],
                Some("/run/docker.sock"),
            ),
            (
                vec![bind("/run/docker.sock", "/var/run/./docker.sock", true)],
                Some("/run/docker.sock"),
            ),
            // A directory holding it is not the socket's own mount.
            (vec![bind("/run", "/var/run", true)], None),
            (Vec::new(), None),
        ];
        for (mounts, want) in cases {
            assert_eq!(
                host_path(socket, &mounts),
                want.map(PathBuf::from),
                "{mounts:?}"
            );
        }
    }

    #[test]
    fn an_api_socket_outside_the_work_dir_is_refused() {
        let facts = |api: &str| run_api(&good(), Path::new(api)).map(drop).map_err(|r| r.0);
        assert_eq!(facts("/var/lib/berth/berth.sock"), Ok(()));
        assert_eq!(facts("/var/lib/berth/api/berth.sock"), Ok(()));
        assert_eq!(
            facts("/run/berth.sock"),
            Err(vec![Problem::ApiSocketOutsideWorkDir {
                api_socket: "/run/berth.sock".into(),
                work_dir: "/var/lib/berth".into(),
            }])
        );
        assert!(facts("/var/lib/berth/../berth.sock").is_err());
    }
}

//! The launch decision: a [`TaskInfo`] plus the agent's settings become a [`Launch`], or a
//! [`TaskError`] that says what to change. Pure: nothing is created or run here, so a task
//! that is refused leaves nothing behind.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use crate::docker::argv::{
    self, labels, Bind, Command, Network, PortMapping, Protocol, RunSpec, SpecError,
};
use crate::docker::{ContainerName, PullPolicy};
use crate::fetch::Uri;

use super::info::{CommandInfo, ContainerInfo, DurationInfo, Resource, TaskInfo};

/// A containerizer named in `--containerizers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containerizer {
    /// Tasks with a Docker `ContainerInfo`.
    Docker,
    /// Tasks without a container: plain processes in their sandbox.
    Mesos,
}

impl std::str::FromStr for Containerizer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "docker" => Ok(Containerizer::Docker),
            "mesos" => Ok(Containerizer::Mesos),
            other => Err(format!(
                "unknown containerizer {other:?}: berth has `docker` and `mesos`"
            )),
        }
    }
}

/// What the agent knows that the task does not.
#[derive(Debug, Clone)]
pub struct LaunchContext<'a> {
    /// This agent's id.
    pub agent_id: &'a str,
    /// The id chosen for this launch.
    pub container_id: Uuid,
    /// The sandbox on the host.
    pub sandbox: &'a Path,
    /// Where the sandbox appears in a container (`--sandbox_directory`).
    pub sandbox_directory: &'a Path,
    /// `--containerizers`, in order.
    pub containerizers: &'a [Containerizer],
    /// Grace when the task has no kill policy (`--docker_stop_timeout`).
    pub default_grace: Duration,
    /// The bound on Docker's own log of a task's container (`--docker_log_max_size`).
    pub docker_log: Option<argv::LogLimit>,
}

/// A task ready to launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The task's id.
    pub task_id: String,
    /// Files to fetch into the sandbox first.
    pub uris: Vec<Uri>,
    /// Time between SIGTERM and SIGKILL when killed.
    pub grace: Duration,
    /// Killed once it has run this long.
    pub max_completion: Option<Duration>,
    /// How it runs.
    pub kind: LaunchKind,
}

/// How a task runs.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchKind {
    /// A command task in a Docker container, run and carried by a berth executor.
    DockerTask {
        /// The container.
        run: RunSpec,
        /// Pull policy.
        pull: PullPolicy,
    },
    /// The container is the task's executor; no berth executor is forked.
    DockerExecutor {
        /// The container.
        run: RunSpec,
        /// Pull policy.
        pull: PullPolicy,
    },
    /// A plain process in the sandbox (the `mesos` containerizer).
    Process {
        /// Program and arguments.
        argv: Vec<String>,
        /// Environment on top of the executor's.
        env: Vec<(String, String)>,
    },
}

impl LaunchKind {
    /// The Docker container it runs in; `None` for a plain process.
    pub fn docker_run(&self) -> Option<&RunSpec> {
        match self {
            LaunchKind::DockerTask { run, .. } | LaunchKind::DockerExecutor { run, .. } => {
                Some(run)
            }
            LaunchKind::Process { .. } => None,
        }
    }
}

/// Why a task cannot be launched. Each message says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// No task id.
    #[error("task_id.value is empty: give the task an id")]
    EmptyTaskId,
    /// Both or neither of `command` and `executor`.
    #[error("a task needs exactly one of `command` and `executor`, it has {0}")]
    CommandOrExecutor(&'static str),
    /// A container type berth does not run.
    #[error("container type {0:?} is not supported: use DOCKER, or MESOS / no container for a plain process")]
    ContainerType(String),
    /// `type: DOCKER` without `docker`.
    #[error("container type DOCKER needs `container.docker` with an `image`")]
    MissingDockerInfo,
    /// The containerizer the task needs is not enabled.
    #[error("this task needs the {0} containerizer, which is not in --containerizers")]
    ContainerizerDisabled(&'static str),
    /// An executor without a Docker container.
    #[error("an executor must have a DOCKER container: berth runs custom executors only as Docker images")]
    ExecutorNotDocker,
    /// A network mode berth does not know.
    #[error("docker network {0:?} is not one of HOST, BRIDGE, NONE, USER")]
    NetworkMode(String),
    /// `USER` network without a name.
    #[error("network USER needs container.network_infos[0].name")]
    UserNetworkName,
    /// A port outside 1..=65535.
    #[error("port {0} is out of range 1-65535")]
    Port(u32),
    /// A protocol other than tcp/udp.
    #[error("port mapping protocol {0:?} is not tcp or udp")]
    Protocol(String),
    /// A negative duration.
    #[error("{0} must not be negative")]
    NegativeDuration(&'static str),
    /// A resource amount that is not a non-negative number.
    #[error("resource {0} has an invalid amount: use a non-negative number")]
    Resource(String),
    /// A volume berth cannot mount.
    #[error("volume {container_path:?}: {reason}")]
    Volume {
        /// The volume's container path.
        container_path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A plain-process task with nothing to run.
    #[error("command has no value: set `value` (shell=true runs it with /bin/sh -c)")]
    NoCommandValue,
    /// A task label that would take ownership away from berth.
    #[error("task label {0:?} is reserved: labels starting with `berth.` are berth's own")]
    ReservedLabel(String),
    /// The container would not start as specified.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Decides how `task` is launched.
pub fn plan(task: &TaskInfo, ctx: &LaunchContext<'_>) -> Result<Launch, TaskError> {
    let task_id = task.task_id.value.trim();
    if task_id.is_empty() {
        return Err(TaskError::EmptyTaskId);
    }
    let grace = match task.kill_policy.as_ref().and_then(|k| k.grace_period) {
        Some(d) => duration(d, "kill_policy.grace_period")?,
        None => ctx.default_grace,
    };
    let max_completion = task
        .max_completion_time
        .map(|d| duration(d, "max_completion_time"))
        .transpose()?;
    let (kind, uris) = match (&task.command, &task.executor) {
        (Some(_), Some(_)) => return Err(TaskError::CommandOrExecutor("both")),
        (None, None) => return Err(TaskError::CommandOrExecutor("neither")),
        (Some(command), None) => match container_kind(task.container.as_ref())? {
            Kind::Docker(container) => {
                enabled(ctx, Containerizer::Docker, "docker")?;
                let (run, pull) = docker_run(task, command, container, &task.resources, ctx)?;
                (LaunchKind::DockerTask { run, pull }, command.uris.clone())
            }
            Kind::Plain => {
                enabled(ctx, Containerizer::Mesos, "mesos")?;
                (process(command, ctx)?, command.uris.clone())
            }
        },
        (None, Some(executor)) => {
            let container = match container_kind(executor.container.as_ref())? {
                Kind::Docker(c) => c,
                Kind::Plain => return Err(TaskError::ExecutorNotDocker),
            };
            enabled(ctx, Containerizer::Docker, "docker")?;
            let command = executor.command.clone().unwrap_or(CommandInfo {
                shell: Some(false),
                ..CommandInfo::default()
            });
            let resources: Vec<Resource> = executor
                .resources
                .iter()
                .chain(&task.resources)
                .cloned()
                .collect();
            let (run, pull) = docker_run(task, &command, container, &resources, ctx)?;
            (
                LaunchKind::DockerExecutor { run, pull },
                command.uris.clone(),
            )
        }
    };
    Ok(Launch {
        task_id: task_id.to_owned(),
        uris,
        grace,
        max_completion,
        kind,
    })
}

enum Kind<'a> {
    Docker(&'a ContainerInfo),
    Plain,
}

fn container_kind(container: Option<&ContainerInfo>) -> Result<Kind<'_>, TaskError> {
    match container {
        None => Ok(Kind::Plain),
        Some(c) => match c.kind.as_str() {
            "DOCKER" => Ok(Kind::Docker(c)),
            "MESOS" if c.docker.is_none() => Ok(Kind::Plain),
            other => Err(TaskError::ContainerType(other.to_owned())),
        },
    }
}

fn enabled(
    ctx: &LaunchContext<'_>,
    which: Containerizer,
    name: &'static str,
) -> Result<(), TaskError> {
    if ctx.containerizers.contains(&which) {
        Ok(())
    } else {
        Err(TaskError::ContainerizerDisabled(name))
    }
}

fn duration(d: DurationInfo, what: &'static str) -> Result<Duration, TaskError> {
    u64::try_from(d.nanoseconds)
        .map(Duration::from_nanos)
        .map_err(|_| TaskError::NegativeDuration(what))
}

fn scalar(resources: &[Resource], name: &str) -> Result<Option<f64>, TaskError> {
    let mut total = None;
    for r in resources.iter().filter(|r| r.name == name) {
        let value = r.scalar.as_ref().map(|s| s.value);
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => *total.get_or_insert(0.0) += v,
            _ => return Err(TaskError::Resource(name.to_owned())),
        }
    }
    Ok(total)
}

fn docker_run(
    task: &TaskInfo,
    command: &CommandInfo,
    container: &ContainerInfo,
    resources: &[Resource],
    ctx: &LaunchContext<'_>,
) -> Result<(RunSpec, PullPolicy), TaskError> {
    let docker = container
        .docker
        .as_ref()
        .ok_or(TaskError::MissingDockerInfo)?;
    let name = ContainerName::task(ctx.agent_id, ctx.container_id).to_string();
    let network = match docker.network.as_deref().unwrap_or("HOST") {
        "HOST" => Network::Host,
        "BRIDGE" => Network::Bridge,
        "NONE" => Network::None,
        "USER" => Network::User(
            container
                .network_infos
                .first()
                .and_then(|n| n.name.clone())
                .filter(|n| !n.trim().is_empty())
                .ok_or(TaskError::UserNetworkName)?,
        ),
        other => return Err(TaskError::NetworkMode(other.to_owned())),
    };
    let port_mappings = docker
        .port_mappings
        .iter()
        .map(|p| {
            let port = |n: u32| {
                u16::try_from(n)
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or(TaskError::Port(n))
            };
            let protocol = match p
                .protocol
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("tcp") => Protocol::Tcp,
                Some("udp") => Protocol::Udp,
                Some(other) => return Err(TaskError::Protocol(other.to_owned())),
            };
            Ok(PortMapping {
                host_port: port(p.host_port)?,
                container_port: port(p.container_port)?,
                protocol,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut run_labels = vec![
        (labels::AGENT_ID.to_owned(), ctx.agent_id.to_owned()),
        (
            labels::CONTAINER_ID.to_owned(),
            ctx.container_id.to_string(),
        ),
        (
            labels::TASK_ID.to_owned(),
            task.task_id.value.trim().to_owned(),
        ),
        (labels::ROLE.to_owned(), labels::ROLE_TASK.to_owned()),
    ];
    for label in task.labels.iter().flat_map(|l| &l.labels) {
        if label.key.starts_with(labels::RESERVED_PREFIX) {
            return Err(TaskError::ReservedLabel(label.key.clone()));
        }
        run_labels.push((label.key.clone(), label.value.clone().unwrap_or_default()));
    }
    let mut binds = vec![Bind {
        host: ctx.sandbox.to_owned(),
        container: ctx.sandbox_directory.to_owned(),
        read_only: false,
    }];
    for volume in &container.volumes {
        binds.push(volume_bind(volume, ctx.sandbox)?);
    }
    let mut env: Vec<(String, String)> = command
        .environment
        .iter()
        .flat_map(|e| &e.variables)
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    // Set last so that the task cannot point them elsewhere.
    env.push((
        "MESOS_SANDBOX".into(),
        ctx.sandbox_directory.display().to_string(),
    ));
    env.push(("MESOS_CONTAINER_NAME".into(), name.clone()));
    let run_command = if command.shell() {
        Command::Shell(command.value.clone().unwrap_or_default())
    } else {
        Command::Exec {
            value: command.value.clone(),
            arguments: command.arguments.clone(),
        }
    };
    let spec = RunSpec {
        name,
        image: docker.image.clone(),
        labels: run_labels,
        binds,
        env,
        network,
        port_mappings,
        privileged: docker.privileged,
        parameters: docker
            .parameters
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        cpus: scalar(resources, "cpus")?,
        mem_mb: scalar(resources, "mem")?.map(|m| m.ceil() as u64),
        command: run_command,
        log_limit: ctx.docker_log,
    };
    // Build the argv once now so that a task Docker would refuse is refused before
    // anything is recorded or fetched.
    argv::run(&spec, argv::Attach::Attached)?;
    let pull = if docker.force_pull_image {
        PullPolicy::Always
    } else {
        PullPolicy::IfMissing
    };
    Ok((spec, pull))
}

fn volume_bind(volume: &super::info::Volume, sandbox: &Path) -> Result<Bind, TaskError> {
    let fail = |reason| TaskError::Volume {
        container_path: volume.container_path.clone(),
        reason,
    };
    let container = PathBuf::from(&volume.container_path);
    if !container.is_absolute() {
        return Err(fail("container_path must be absolute"));
    }
    let host = volume
        .host_path
        .as_deref()
        .ok_or_else(|| fail("host_path is required"))?;
    let host = PathBuf::from(host);
    let host = if host.is_absolute() {
        host
    } else if host.components().all(|c| matches!(c, Component::Normal(_))) {
        sandbox.join(host)
    } else {
        return Err(fail("a relative host_path must stay inside the sandbox"));
    };
    let read_only = match volume.mode.as_deref() {
        None | Some("RW") => false,
        Some("RO") => true,
        Some(_) => return Err(fail("mode must be RW or RO")),
    };
    Ok(Bind {
        host,
        container,
        read_only,
    })
}

fn process(command: &CommandInfo, ctx: &LaunchContext<'_>) -> Result<LaunchKind, TaskError> {
    let value = command
        .value
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or(TaskError::NoCommandValue)?;
    let argv = if command.shell() {
        vec!["/bin/sh".to_owned(), "-c".to_owned(), value]
    } else {
        std::iter::once(value)
            .chain(command.arguments.iter().cloned())
            .collect()
    };
    let mut env: Vec<(String, String)> = command
        .environment
        .iter()
        .flat_map(|e| &e.variables)
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    env.push(("MESOS_SANDBOX".into(), ctx.sandbox.display().to_string()));
    Ok(LaunchKind::Process { argv, env })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::info::parse;

    const AGENT: &str = "5f0c4a8e-3b1d-4d59-9a7e-2f4f9d1c0b11";

    fn plan_json(json: &str, containerizers: &[Containerizer]) -> Result<Launch, TaskError> {
        let task = parse(json.as_bytes()).expect("valid json in test").task;
        let ctx = LaunchContext {
            agent_id: AGENT,
            container_id: Uuid::nil(),
            sandbox: Path::new("/w/sandbox"),
            sandbox_directory: Path::new("/mnt/mesos/sandbox"),
            containerizers,
            default_grace: Duration::from_secs(2),
            docker_log: None,
        };
        plan(&task, &ctx)
    }

    const BOTH: &[Containerizer] = &[Containerizer::Docker, Containerizer::Mesos];

    fn docker_task(extra_docker: &str, extra: &str) -> String {
        format!(
            r#"{{"task_id": {{"value": "t1"}}, "command": {{"value": "echo hi"}},
                "container": {{"type": "DOCKER", "docker": {{"image": "busybox"{extra_docker}}}}}{extra}}}"#
        )
    }

    #[test]
    fn a_docker_task_becomes_a_run_with_berths_name_labels_and_sandbox() {
        let launch = plan_json(
            &docker_task("", r#", "resources": [{"name": "cpus", "scalar": {"value": 0.25}}, {"name": "mem", "scalar": {"value": 64}}]"#),
            BOTH,
        )
        .expect("valid");
        assert_eq!(launch.task_id, "t1");
        assert_eq!(launch.grace, Duration::from_secs(2));
        let LaunchKind::DockerTask { run, pull } = launch.kind else {
            panic!("not a docker task: {:?}", launch.kind);
        };
        assert_eq!(pull, PullPolicy::IfMissing);
        let name = format!("mesos-{AGENT}.{}", Uuid::nil());
        assert_eq!(run.name, name);
        assert_eq!(run.network, Network::Host);
        assert_eq!(run.command, Command::Shell("echo hi".into()));
        assert_eq!(run.cpus, Some(0.25));
        assert_eq!(run.mem_mb, Some(64));
        assert_eq!(run.binds[0].host, Path::new("/w/sandbox"));
        assert_eq!(run.binds[0].container, Path::new("/mnt/mesos/sandbox"));
        assert!(run.labels.contains(&(labels::TASK_ID.into(), "t1".into())));
        assert!(run
            .labels
            .contains(&(labels::AGENT_ID.into(), AGENT.into())));
        assert_eq!(
            &run.env[run.env.len() - 2..],
            [
                ("MESOS_SANDBOX".to_owned(), "/mnt/mesos/sandbox".to_owned()),
                ("MESOS_CONTAINER_NAME".to_owned(), name)
            ]
        );
    }

    #[test]
    fn table_of_refusals() {
        let cases: Vec<(String, &[Containerizer], TaskError)> = vec![
            (r#"{"task_id": {"value": " "}, "command": {"value": "x"}}"#.into(), BOTH, TaskError::EmptyTaskId),
            (r#"{"task_id": {"value": "t"}}"#.into(), BOTH, TaskError::CommandOrExecutor("neither")),
            (
                r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "executor": {"executor_id": {"value": "e"}}}"#.into(),
                BOTH,
                TaskError::CommandOrExecutor("both"),
            ),
            (
                r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"type": "APPC"}}"#.into(),
                BOTH,
                TaskError::ContainerType("APPC".into()),
            ),
            (
                r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"type": "DOCKER"}}"#.into(),
                BOTH,
                TaskError::MissingDockerInfo,
            ),
            (docker_task("", ""), &[Containerizer::Mesos], TaskError::ContainerizerDisabled("docker")),
            (
                r#"{"task_id": {"value": "t"}, "command": {"value": "x"}}"#.into(),
                &[Containerizer::Docker],
                TaskError::ContainerizerDisabled("mesos"),
            ),
            (
                r#"{"task_id": {"value": "t"}, "executor": {"executor_id": {"value": "e"}, "command": {"value": "x"}}}"#.into(),
                BOTH,
                TaskError::ExecutorNotDocker,
            ),
            (docker_task(r#", "network": "OVERLAY""#, ""), BOTH, TaskError::NetworkMode("OVERLAY".into())),
            (docker_task(r#", "network": "USER""#, ""), BOTH, TaskError::UserNetworkName),
            (
                docker_task(r#", "network": "BRIDGE", "port_mappings": [{"host_port": 70000, "container_port": 80}]"#, ""),
                BOTH,
                TaskError::Port(70000),
            ),
            (
                docker_task(r#", "network": "BRIDGE", "port_mappings": [{"host_port": 8080, "container_port": 80, "protocol": "sctp"}]"#, ""),
                BOTH,
                TaskError::Protocol("sctp".into()),
            ),
            (
                docker_task("", r#", "kill_policy": {"grace_period": {"nanoseconds": -1}}"#),
                BOTH,
                TaskError::NegativeDuration("kill_policy.grace_period"),
            ),
            (
                docker_task("", r#", "resources": [{"name": "cpus", "scalar": {"value": -1}}]"#),
                BOTH,
                TaskError::Resource("cpus".into()),
            ),
            (
                docker_task("", r#", "labels": {"labels": [{"key": "berth.task_id", "value": "x"}]}"#),
                BOTH,
                TaskError::ReservedLabel("berth.task_id".into()),
            ),
            (
                r#"{"task_id": {"value": "t"}, "command": {"shell": false}}"#.into(),
                BOTH,
                TaskError::NoCommandValue,
            ),
            (
                r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"type": "DOCKER", "docker": {"image": ""}}}"#.into(),
                BOTH,
                TaskError::Spec(SpecError::Image(String::new())),
            ),
            (
                docker_task(r#", "parameters": [{"key": "name", "value": "mine"}]"#, ""),
                BOTH,
                TaskError::Spec(SpecError::ReservedParameter { key: "name".into(), value: "mine".into() }),
            ),
            (
                r#"{"task_id": {"value": "t"}, "command": {}, "container": {"type": "DOCKER", "docker": {"image": "i"}}}"#.into(),
                BOTH,
                TaskError::Spec(SpecError::ShellWithoutValue),
            ),
        ];
        for (json, containerizers, want) in cases {
            assert_eq!(plan_json(&json, containerizers), Err(want), "{json}");
        }
    }

    #[test]
    fn volumes_are_confined_and_moded() {
        let with = |volume: &str| {
            plan_json(
                &format!(
                    r#"{{"task_id": {{"value": "t"}}, "command": {{"value": "x"}},
                        "container": {{"type": "DOCKER", "docker": {{"image": "i"}}, "volumes": [{volume}]}}}}"#
                ),
                BOTH,
            )
        };
        let binds = |launch: Launch| match launch.kind {
            LaunchKind::DockerTask { run, .. } => run.binds,
            other => panic!("{other:?}"),
        };
        let b = binds(
            with(r#"{"container_path": "/data", "host_path": "cache", "mode": "RO"}"#)
                .expect("valid"),
        );
        assert_eq!(b[1].host, Path::new("/w/sandbox/cache"));
        assert!(b[1].read_only);
        let b =
            binds(with(r#"{"container_path": "/data", "host_path": "/srv/data"}"#).expect("valid"));
        assert_eq!(b[1].host, Path::new("/srv/data"));
        assert!(!b[1].read_only);
        for bad in [
            r#"{"container_path": "data", "host_path": "/x"}"#,
            r#"{"container_path": "/data"}"#,
            r#"{"container_path": "/data", "host_path": "../escape"}"#,
            r#"{"container_path": "/data", "host_path": "/x", "mode": "RX"}"#,
        ] {
            assert!(matches!(with(bad), Err(TaskError::Volume { .. })), "{bad}");
        }
    }

    #[test]
    fn plain_processes_and_executors() {
        let launch = plan_json(
            r#"{"task_id": {"value": "t"}, "command": {"value": "echo hi"}}"#,
            BOTH,
        )
        .expect("valid");
        assert_eq!(
            launch.kind,
            LaunchKind::Process {
                argv: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
                env: vec![("MESOS_SANDBOX".into(), "/w/sandbox".into())],
            }
        );
        let launch = plan_json(
            r#"{"task_id": {"value": "t"}, "command": {"shell": false, "value": "/bin/echo", "arguments": ["a"]}}"#,
            BOTH,
        )
        .expect("valid");
        assert!(
            matches!(launch.kind, LaunchKind::Process { ref argv, .. } if argv == &["/bin/echo", "a"])
        );

        let launch = plan_json(
            r#"{"task_id": {"value": "t"}, "executor": {"executor_id": {"value": "e"},
                "container": {"type": "DOCKER", "docker": {"image": "exec-image", "force_pull_image": true}},
                "resources": [{"name": "mem", "scalar": {"value": 32}}]},
                "resources": [{"name": "mem", "scalar": {"value": 32}}],
                "max_completion_time": {"nanoseconds": 5000000000}}"#,
            BOTH,
        )
        .expect("valid");
        assert_eq!(launch.max_completion, Some(Duration::from_secs(5)));
        let LaunchKind::DockerExecutor { run, pull } = launch.kind else {
            panic!("{:?}", launch.kind);
        };
        assert_eq!(pull, PullPolicy::Always);
        assert_eq!(run.mem_mb, Some(64));
        assert_eq!(run.command, Command::default());
    }

    #[test]
    fn containerizers_parse() {
        assert_eq!("docker".parse(), Ok(Containerizer::Docker));
        assert_eq!(" mesos".parse(), Ok(Containerizer::Mesos));
        assert!("appc".parse::<Containerizer>().is_err());
    }
}

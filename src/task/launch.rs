//! The launch decision: a [`TaskInfo`] plus the agent's settings become a [`Launch`], or a
//! [`TaskError`] that says what to change. Pure: nothing is created or run here, so a task
//! that is refused leaves nothing behind.
//!
//! A new task is [`admit`]ted: [`super::check`] refuses what berth does not do, then
//! [`plan`] decides how it runs. A recorded task is only planned again: it was taken under
//! the rules of its day, and a later rule must not leave it unmanaged.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use super::info::Uri;
use crate::docker::argv::{
    self, labels, Bind, Command, Limit, Limits, Network, PortMapping, Protocol, RunSpec, SpecError,
};
use crate::docker::{ContainerName, PullPolicy};

use super::info::{CommandInfo, ContainerInfo, DurationInfo, ExecutorInfo, Resource, TaskInfo};

/// A containerizer named in `--containerizers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerizerKind {
    /// Tasks with a Docker `ContainerInfo`.
    Docker,
    /// Tasks without a container: plain processes in their sandbox.
    Mesos,
}

impl std::str::FromStr for ContainerizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "docker" => Ok(ContainerizerKind::Docker),
            "mesos" => Ok(ContainerizerKind::Mesos),
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
    pub containerizers: &'a [ContainerizerKind],
    /// Grace when the task has no kill policy (`--docker_stop_timeout`).
    pub default_grace: Duration,
    /// The bound on Docker's own log of a task's container (`--docker_log_max_size`).
    pub docker_log: Option<argv::LogLimit>,
    /// `--switch_user`: run a task as its `command.user`.
    pub switch_user: bool,
    /// `--recovery_timeout`, which an executor-mode container is told.
    pub recovery_timeout: Duration,
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
    /// The user the sandbox is given to, and a plain process runs as (`command.user`
    /// with `--switch_user`); it must exist on the host.
    pub user: Option<String>,
    /// How it runs.
    pub kind: LaunchKind,
    /// What the caller should know: fields that do not do here what they do in Mesos.
    pub warnings: Vec<String>,
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
    #[error("container type {0:?} is not supported: use DOCKER with docker.image")]
    ContainerType(String),
    /// A container without a type.
    #[error("container.type is missing: use \"type\": \"DOCKER\" with docker.image")]
    MissingContainerType,
    /// `type: MESOS`: berth has no Mesos containerizer to isolate the task with.
    #[error("container type MESOS is not supported: berth runs tasks in Docker containers, as Mesos's Docker containerizer does, and does not run one without the isolation it asked for; write the container as {{\"type\": \"DOCKER\", \"docker\": {{\"image\": \"{}\"}}}}", .image.as_deref().unwrap_or("<image>"))]
    MesosContainer {
        /// The Docker image the task named for the Mesos containerizer, if any.
        image: Option<String>,
    },
    /// A task without a container while plain processes are off.
    #[error("this task has no container, so it would run as a plain process on the host, without isolation, and plain processes are off: give it a container ({{\"type\": \"DOCKER\", \"docker\": {{\"image\": \"<image>\"}}}}), or start the agent with --containerizers=docker,mesos to run plain processes (Mesos's mesos containerizer)")]
    PlainProcessesOff,
    /// `type: DOCKER` without `docker`.
    #[error("container type DOCKER needs `container.docker` with an `image`")]
    MissingDockerInfo,
    /// The containerizer the task needs is not enabled.
    #[error("this task needs the {0} containerizer, which is not in --containerizers: start the agent with --containerizers=docker")]
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
    #[error("volume {container_path:?} is refused: {reason}")]
    Volume {
        /// The volume's container path.
        container_path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A plain-process task with nothing to run.
    #[error("command has no value: set `value` (shell=true runs it with /bin/sh -c)")]
    NoCommandValue,
    /// A field berth does not carry out.
    #[error("{field} is not supported: {why}")]
    Unsupported {
        /// The field, as a JSON path.
        field: String,
        /// Why, and what to write instead.
        why: &'static str,
    },
    /// A secret environment variable.
    #[error("environment variable {0:?} is a SECRET: berth has no secret store; give it as a VALUE, or fetch a file holding it into the sandbox with a URI")]
    SecretVariable(String),
    /// A limit on something other than cpus and mem.
    #[error("limits.{0} is not supported: only cpus and mem may have limits")]
    LimitName(String),
    /// A limit that is not a positive amount.
    #[error("limits.{0} must be a positive number or \"Infinity\", got {1}")]
    LimitAmount(String, f64),
    /// A limit without the request it bounds.
    #[error("limits.{0} needs a {0} request: add a {0} resource no larger than the limit")]
    LimitWithoutRequest(String),
    /// A limit below its request.
    #[error("limits.{name} ({limit}) is below the {name} request ({request}): a limit must be at least the request")]
    LimitBelowRequest {
        /// `cpus` or `mem`.
        name: String,
        /// The limit.
        limit: f64,
        /// The request.
        request: f64,
    },
    /// Limits on a plain process.
    #[error("limits apply to Docker containers only: berth runs a plain process without resource isolation; give the task a container or leave limits out")]
    PlainProcessLimits,
    /// Port mappings without a `ports` resource.
    #[error("port mappings need a ports resource whose ranges hold each host_port: add {{\"name\": \"ports\", \"type\": \"RANGES\", \"ranges\": {{\"range\": [{{\"begin\": {0}, \"end\": {0}}}]}}}} to the resources")]
    PortsWithoutResource(u32),
    /// A host port outside the task's `ports` ranges.
    #[error("host_port {port} is not in the task's ports resource ({ranges}): map a port the task was given, or add it to the ports ranges")]
    PortNotInResources {
        /// The host port.
        port: u32,
        /// The ranges the task has, such as `31000-31005, 31010`.
        ranges: String,
    },
    /// A host name Docker cannot give.
    #[error("container.hostname {0:?} is not a host name: use up to 64 letters, digits, `-`, `_` and `.`")]
    Hostname(String),
    /// A host name with the host's network, which has the host's name.
    #[error("container.hostname needs network BRIDGE, USER or NONE: a container on the HOST network has the host's name")]
    HostnameWithHostNetwork,
    /// `command.user` names no user the task can run as.
    #[error("command.user {user:?} cannot be run as: {why}; create the user, name an existing one, or leave command.user out (--switch_user=false runs every task as the agent's user)")]
    UnknownUser {
        /// The user.
        user: String,
        /// Why (no such user, or the lookup failed).
        why: String,
    },
    /// A task label that would take ownership away from berth.
    #[error("task label {0:?} is reserved: labels starting with `berth.` are berth's own")]
    ReservedLabel(String),
    /// The container would not start as specified.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Decides whether a new task is taken and how it is launched: refused when it asks for
/// what berth does not do ([`super::check`]) or for a containerizer not in
/// `--containerizers`, else planned.
pub fn admit(task: &TaskInfo, ctx: &LaunchContext<'_>) -> Result<Launch, TaskError> {
    super::check::check(task)?;
    planned(task, ctx, Taking::New)
}

/// Plans a recorded task again, as it was taken. `--containerizers` is not asked: the
/// task was accepted under the containerizers of its time (plain processes were on by
/// default once), and refusing it now would leave a running task unmanaged; only new
/// tasks are refused.
pub fn plan(task: &TaskInfo, ctx: &LaunchContext<'_>) -> Result<Launch, TaskError> {
    planned(task, ctx, Taking::Recorded)
}

/// Whether a task is new or recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taking {
    New,
    Recorded,
}

fn planned(task: &TaskInfo, ctx: &LaunchContext<'_>, taking: Taking) -> Result<Launch, TaskError> {
    let needs = |which| match taking {
        Taking::New => enabled(ctx, which),
        Taking::Recorded => Ok(()),
    };
    let task_id = task.task_id.value.trim();
    if task_id.is_empty() {
        return Err(TaskError::EmptyTaskId);
    }
    let shutdown_grace = task.executor.as_ref().and_then(|e| e.shutdown_grace_period);
    let grace = match (
        task.kill_policy.as_ref().and_then(|k| k.grace_period),
        shutdown_grace,
    ) {
        (Some(d), _) => duration(d, "kill_policy.grace_period")?,
        (None, Some(d)) => duration(d, "executor.shutdown_grace_period")?,
        (None, None) => ctx.default_grace,
    };
    let max_completion = task
        .max_completion_time
        .map(|d| duration(d, "max_completion_time"))
        .transpose()?;
    let mut warnings = ignored_here(task);
    let (kind, command) = match (&task.command, &task.executor) {
        (Some(_), Some(_)) => return Err(TaskError::CommandOrExecutor("both")),
        (None, None) => return Err(TaskError::CommandOrExecutor("neither")),
        (Some(command), None) => match container_kind(task.container.as_ref())? {
            Kind::Docker(container) => {
                needs(ContainerizerKind::Docker)?;
                let (run, pull) = docker_run(task, command, container, &task.resources, &[], ctx)?;
                (LaunchKind::DockerTask { run, pull }, command.clone())
            }
            Kind::Plain => {
                needs(ContainerizerKind::Mesos)?;
                (process(command, ctx)?, command.clone())
            }
        },
        (None, Some(executor)) => {
            let container = match container_kind(executor.container.as_ref())? {
                Kind::Docker(c) => c,
                Kind::Plain => return Err(TaskError::ExecutorNotDocker),
            };
            needs(ContainerizerKind::Docker)?;
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
            let env = executor_env(executor, grace, ctx);
            let (run, pull) = docker_run(task, &command, container, &resources, &env, ctx)?;
            (LaunchKind::DockerExecutor { run, pull }, command)
        }
    };
    let user = match command.user {
        Some(user) if !ctx.switch_user => {
            warnings.push(format!(
                "command.user {user:?} is ignored: with --switch_user=false every task runs as the agent's user"
            ));
            None
        }
        user => user,
    };
    Ok(Launch {
        task_id: task_id.to_owned(),
        uris: command.uris,
        grace,
        max_completion,
        user,
        kind,
        warnings,
    })
}

/// Fields berth takes and does not act on although Mesos would: said back to the caller.
fn ignored_here(task: &TaskInfo) -> Vec<String> {
    let mut warnings = Vec::new();
    if task.health_check.is_some() {
        warnings.push(
            "health_check is ignored: berth runs no health checks, so the task is never killed as unhealthy".to_owned(),
        );
    }
    if task.check.is_some() {
        warnings.push("check is ignored: berth runs no checks".to_owned());
    }
    let data = task.data.is_some() || task.executor.as_ref().is_some_and(|e| e.data.is_some());
    if data && task.executor.is_some() {
        warnings.push(
            "data is not handed to the executor: berth has no executor API; give the executor what it needs in its environment or a fetched file".to_owned(),
        );
    }
    warnings
}

/// What Mesos's agent tells a custom executor (`executorEnvironment` in Mesos's
/// slave.cpp), as far as it means something here: nothing of an executor API that berth
/// does not have (no agent endpoint, no PID, no token).
fn executor_env(
    executor: &ExecutorInfo,
    grace: Duration,
    ctx: &LaunchContext<'_>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(framework) = &executor.framework_id {
        env.push(("MESOS_FRAMEWORK_ID".into(), framework.value.clone()));
    }
    env.extend([
        (
            "MESOS_EXECUTOR_ID".into(),
            executor.executor_id.value.clone(),
        ),
        // As in Mesos, the sandbox's path on the host; inside it is MESOS_SANDBOX.
        ("MESOS_DIRECTORY".into(), ctx.sandbox.display().to_string()),
        ("MESOS_SLAVE_ID".into(), ctx.agent_id.to_owned()),
        ("MESOS_AGENT_ID".into(), ctx.agent_id.to_owned()),
        // berth records every task and recovers it after a restart.
        ("MESOS_CHECKPOINT".into(), "1".into()),
        (
            "MESOS_RECOVERY_TIMEOUT".into(),
            crate::duration::format(ctx.recovery_timeout),
        ),
        (
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".into(),
            crate::duration::format(grace),
        ),
    ]);
    env
}

enum Kind<'a> {
    Docker(&'a ContainerInfo),
    Plain,
}

fn container_kind(container: Option<&ContainerInfo>) -> Result<Kind<'_>, TaskError> {
    match container {
        None => Ok(Kind::Plain),
        Some(c) => match c.kind.as_deref() {
            Some("DOCKER") => Ok(Kind::Docker(c)),
            // A task recorded when MESOS meant a plain process ([`super::check`] refuses
            // it now).
            Some("MESOS") if c.docker.is_none() => Ok(Kind::Plain),
            Some(other) => Err(TaskError::ContainerType(other.to_owned())),
            None => Err(TaskError::MissingContainerType),
        },
    }
}

fn enabled(ctx: &LaunchContext<'_>, which: ContainerizerKind) -> Result<(), TaskError> {
    match (ctx.containerizers.contains(&which), which) {
        (true, _) => Ok(()),
        (false, ContainerizerKind::Mesos) => Err(TaskError::PlainProcessesOff),
        (false, ContainerizerKind::Docker) => Err(TaskError::ContainerizerDisabled("docker")),
    }
}

fn duration(d: DurationInfo, what: &'static str) -> Result<Duration, TaskError> {
    u64::try_from(d.nanoseconds)
        .map(Duration::from_nanos)
        .map_err(|_| TaskError::NegativeDuration(what))
}

/// The total of a scalar resource, if the task has it.
pub(super) fn scalar(resources: &[Resource], name: &str) -> Result<Option<f64>, TaskError> {
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

fn limit(task: &TaskInfo, name: &str) -> Option<Limit> {
    task.limits.get(name).map(|&amount| {
        if amount == f64::INFINITY {
            Limit::Unlimited
        } else {
            Limit::At(amount)
        }
    })
}

fn docker_run(
    task: &TaskInfo,
    command: &CommandInfo,
    container: &ContainerInfo,
    resources: &[Resource],
    agent_env: &[(String, String)],
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
        binds.push(volume_bind(volume, ctx)?);
    }
    let mut env: Vec<(String, String)> = command
        .variables()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    // As Mesos's Docker containerizer: the role the resources were allocated to.
    if let Some(role) = resources
        .first()
        .and_then(|r| r.allocation_info.as_ref())
        .and_then(|a| a.role.clone())
    {
        env.push(("MESOS_ALLOCATION_ROLE".into(), role));
    }
    // The agent's own after the task's, so that the task cannot point them elsewhere
    // (Docker takes the last of a name); the sandbox and the name last of all.
    env.extend(agent_env.iter().cloned());
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
        limits: Limits {
            cpus: limit(task, "cpus"),
            mem_mb: limit(task, "mem"),
        },
        hostname: container.hostname.clone(),
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

/// A volume as Mesos's Docker containerizer mounts it: a relative `container_path` is
/// inside the container's sandbox, a relative `host_path` inside the sandbox on the host
/// (not both: the task reaches its sandbox already).
fn volume_bind(volume: &super::info::Volume, ctx: &LaunchContext<'_>) -> Result<Bind, TaskError> {
    let fail = |reason| TaskError::Volume {
        container_path: volume.container_path.clone(),
        reason,
    };
    let inside = |path: &Path| path.components().all(|c| matches!(c, Component::Normal(_)));
    let container = PathBuf::from(&volume.container_path);
    let host = volume
        .host_path
        .as_deref()
        .map(PathBuf::from)
        .ok_or_else(|| fail("host_path is required"))?;
    let container = if container.is_absolute() {
        container
    } else if host.is_absolute() && inside(&container) {
        ctx.sandbox_directory.join(container)
    } else if host.is_absolute() {
        return Err(fail(
            "a relative container_path must stay inside the sandbox",
        ));
    } else {
        return Err(fail(
            "host_path and container_path are both relative: the task reaches its sandbox already",
        ));
    };
    let host = if host.is_absolute() {
        host
    } else if inside(&host) {
        ctx.sandbox.join(host)
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
        .variables()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    env.push(("MESOS_SANDBOX".into(), ctx.sandbox.display().to_string()));
    Ok(LaunchKind::Process { argv, env })
}

/// Both containerizers, as tests use them.
#[cfg(test)]
pub(super) const BOTH: &[ContainerizerKind] =
    &[ContainerizerKind::Docker, ContainerizerKind::Mesos];

/// The agent's side of a launch, as tests use it: agent [`TEST_AGENT`], container id nil,
/// sandbox `/w/sandbox`, Mesos's defaults otherwise.
#[cfg(test)]
pub(super) fn test_context(containerizers: &'static [ContainerizerKind]) -> LaunchContext<'static> {
    LaunchContext {
        agent_id: TEST_AGENT,
        container_id: Uuid::nil(),
        sandbox: Path::new("/w/sandbox"),
        sandbox_directory: Path::new("/mnt/mesos/sandbox"),
        containerizers,
        default_grace: Duration::from_secs(2),
        docker_log: None,
        switch_user: true,
        recovery_timeout: Duration::from_secs(900),
    }
}

/// The agent id of [`test_context`].
#[cfg(test)]
pub(super) const TEST_AGENT: &str = "5f0c4a8e-3b1d-4d59-9a7e-2f4f9d1c0b11";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::info::parse;

    const AGENT: &str = TEST_AGENT;

    fn plan_json(
        json: &str,
        containerizers: &'static [ContainerizerKind],
    ) -> Result<Launch, TaskError> {
        let task = parse(json.as_bytes()).expect("valid json in test").task;
        admit(&task, &test_context(containerizers))
    }

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
        let cases: Vec<(String, &[ContainerizerKind], TaskError)> = vec![
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
            (docker_task("", ""), &[ContainerizerKind::Mesos], TaskError::ContainerizerDisabled("docker")),
            (
                r#"{"task_id": {"value": "t"}, "command": {"value": "x"}}"#.into(),
                &[ContainerizerKind::Docker],
                TaskError::PlainProcessesOff,
            ),
            (
                r#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"docker": {"image": "i"}}}"#.into(),
                BOTH,
                TaskError::MissingContainerType,
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
                docker_task(
                    r#", "network": "BRIDGE", "port_mappings": [{"host_port": 8080, "container_port": 80, "protocol": "sctp"}]"#,
                    r#", "resources": [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 8080, "end": 8080}]}}]"#,
                ),
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
        // As Mesos: a relative container_path is inside the container's sandbox.
        let b = binds(
            with(r#"{"container_path": "data/in", "host_path": "/srv/data", "mode": 1}"#)
                .expect("valid"),
        );
        assert_eq!(b[1].container, Path::new("/mnt/mesos/sandbox/data/in"));
        assert!(!b[1].read_only);
        for bad in [
            r#"{"container_path": "data", "host_path": "cache"}"#,
            r#"{"container_path": "../data", "host_path": "/x"}"#,
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
    fn an_executor_container_is_told_what_mesos_tells_a_custom_executor() {
        let launch = plan_json(
            r#"{"task_id": {"value": "t"}, "executor": {"executor_id": {"value": "exec-1"},
                "framework_id": {"value": "fw-1"},
                "command": {"value": "run", "environment": {"variables": [
                    {"name": "MESOS_CHECKPOINT", "value": "0"}, {"name": "MINE", "value": "1"}]}},
                "container": {"type": "DOCKER", "docker": {"image": "exec-image"}}},
                "kill_policy": {"grace_period": {"nanoseconds": 7000000000}}}"#,
            BOTH,
        )
        .expect("valid");
        let LaunchKind::DockerExecutor { run, .. } = launch.kind else {
            panic!("{:?}", launch.kind);
        };
        let name = format!("mesos-{AGENT}.{}", Uuid::nil());
        let want: Vec<(String, String)> = [
            ("MESOS_CHECKPOINT", "0"),
            ("MINE", "1"),
            ("MESOS_FRAMEWORK_ID", "fw-1"),
            ("MESOS_EXECUTOR_ID", "exec-1"),
            ("MESOS_DIRECTORY", "/w/sandbox"),
            ("MESOS_SLAVE_ID", AGENT),
            ("MESOS_AGENT_ID", AGENT),
            // The agent's, after the task's: Docker takes the last of a name.
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "15mins"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "7secs"),
            ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
            ("MESOS_CONTAINER_NAME", &name),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(run.env, want);
        // A command task's container is not an executor: none of them.
        let launch = plan_json(&docker_task("", ""), BOTH).expect("valid");
        let run = launch.kind.docker_run().expect("docker");
        assert!(
            !run.env.iter().any(|(k, _)| k == "MESOS_EXECUTOR_ID"),
            "{:?}",
            run.env
        );
    }

    #[test]
    fn command_user_follows_switch_user() {
        let task =
            parse(br#"{"task_id": {"value": "t"}, "command": {"value": "id", "user": "nobody"}}"#)
                .expect("valid")
                .task;
        let switched = admit(&task, &test_context(BOTH)).expect("valid");
        assert_eq!(switched.user.as_deref(), Some("nobody"));
        assert_eq!(switched.warnings, Vec::<String>::new());
        let ctx = LaunchContext {
            switch_user: false,
            ..test_context(BOTH)
        };
        let unswitched = admit(&task, &ctx).expect("valid");
        assert_eq!(unswitched.user, None);
        assert_eq!(
            unswitched.warnings,
            ["command.user \"nobody\" is ignored: with --switch_user=false every task runs as the agent's user"]
        );
    }

    #[test]
    fn a_recorded_task_is_planned_as_it_was_taken() {
        // MESOS once meant a plain process: a task recorded then is planned as one, not
        // refused (which would leave it unmanaged).
        let task = parse(
            br#"{"task_id": {"value": "t"}, "command": {"value": "x"}, "container": {"type": "MESOS"}}"#,
        )
        .expect("valid")
        .task;
        assert_eq!(
            admit(&task, &test_context(BOTH)),
            Err(TaskError::MesosContainer { image: None })
        );
        let planned = plan(&task, &test_context(BOTH)).expect("planned again");
        assert!(matches!(planned.kind, LaunchKind::Process { .. }));
        // Plain processes off since it was taken: it was taken when they were on, and
        // stays managed; only a new one is refused.
        let docker_only = test_context(&[ContainerizerKind::Docker]);
        let planned = plan(&task, &docker_only).expect("planned again");
        assert!(matches!(planned.kind, LaunchKind::Process { .. }));
        let plain = parse(br#"{"task_id": {"value": "t"}, "command": {"value": "x"}}"#)
            .expect("valid")
            .task;
        assert!(plan(&plain, &docker_only).is_ok());
        assert_eq!(
            admit(&plain, &docker_only),
            Err(TaskError::PlainProcessesOff)
        );
    }

    #[test]
    fn containerizers_parse() {
        assert_eq!("docker".parse(), Ok(ContainerizerKind::Docker));
        assert_eq!(" mesos".parse(), Ok(ContainerizerKind::Mesos));
        assert!("appc".parse::<ContainerizerKind>().is_err());
    }
}

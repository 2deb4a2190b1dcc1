//! Pure builders of Docker CLI argument vectors.
//!
//! Nothing here spawns a process: each function turns a typed request into the exact argv
//! (after the global `-H` option) so that it can be golden-tested. The semantics follow
//! Mesos's Docker containerizer: see docs/architecture.md.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Label keys berth puts on every container it creates, so that it can find them again
/// without trusting names alone. Users may not set these through `parameters`.
pub mod labels {
    /// The id of the agent that created the container.
    pub const AGENT_ID: &str = "berth.agent_id";
    /// The container's id (the UUID in its name).
    pub const CONTAINER_ID: &str = "berth.container_id";
    /// The id of the task the container runs.
    pub const TASK_ID: &str = "berth.task_id";
    /// What the container is to the task: [`ROLE_TASK`] or [`ROLE_EXECUTOR`].
    pub const ROLE: &str = "berth.role";
    /// The task's own container.
    pub const ROLE_TASK: &str = "task";
    /// The container its executor runs in (`--docker_mesos_image`).
    pub const ROLE_EXECUTOR: &str = "executor";
    /// Prefix reserved for berth's labels.
    pub const RESERVED_PREFIX: &str = "berth.";
}

/// Mesos's floor for `--cpu-shares` (the kernel's minimum is 2).
pub const MIN_CPU_SHARES: u64 = 2;
/// `--cpu-shares` per CPU, as in Mesos.
pub const CPU_SHARES_PER_CPU: f64 = 1024.0;
/// Mesos's floor for `--memory`: 32 MiB.
pub const MIN_MEMORY_BYTES: u64 = 32 * 1024 * 1024;
/// The CFS period Docker uses unless told otherwise (100 ms), in µs: `--cpu-quota` is
/// a share of it, as in Mesos.
pub const CPU_CFS_PERIOD_US: f64 = 100_000.0;
/// Mesos's floor for `--cpu-quota`: 1 ms.
pub const MIN_CPU_CFS_QUOTA_US: u64 = 1_000;

/// How the container is networked (Mesos's `DockerInfo.network`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// `--net=host`, Mesos's default on Linux.
    #[default]
    Host,
    /// `--net=bridge`, with port mappings.
    Bridge,
    /// `--net=none`.
    None,
    /// A user-defined network by name (`--net=NAME`), with port mappings.
    User(String),
}

/// Transport of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

/// A `-p HOST:CONTAINER[/udp]` mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Port on the host.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Transport.
    pub protocol: Protocol,
}

/// What the container runs (Mesos's `CommandInfo` `shell`, `value`, `arguments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `shell=true`: `--entrypoint /bin/sh IMAGE -c VALUE`; the image's ENTRYPOINT and CMD
    /// are both bypassed.
    Shell(String),
    /// `shell=false`: `value` (if any) then `arguments` follow the image: they replace its
    /// CMD and are passed to its ENTRYPOINT. With neither, the image's default CMD runs.
    Exec {
        /// The command's value, the first word after the image.
        value: Option<String>,
        /// Further arguments.
        arguments: Vec<String>,
    },
}

impl Default for Command {
    /// No value and no arguments: the image's own CMD runs.
    fn default() -> Self {
        Command::Exec {
            value: None,
            arguments: Vec::new(),
        }
    }
}

/// Everything `docker run` needs for one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Container name (see [`super::ContainerName`]).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Labels, berth's own among them.
    pub labels: Vec<(String, String)>,
    /// Bind mounts, the sandbox first.
    pub binds: Vec<Bind>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Networking.
    pub network: Network,
    /// Port mappings; only valid with [`Network::Bridge`] or [`Network::User`].
    pub port_mappings: Vec<PortMapping>,
    /// `--privileged`.
    pub privileged: bool,
    /// Free-form `--key=value` options (Mesos's `DockerInfo.parameters`).
    pub parameters: Vec<(String, String)>,
    /// CPUs, turned into `--cpu-shares`.
    pub cpus: Option<f64>,
    /// Memory in MiB, turned into `--memory` (`--memory-reservation` when there is a
    /// memory limit).
    pub mem_mb: Option<u64>,
    /// The task's limits (Mesos's `TaskInfo.limits`).
    #[serde(default)]
    pub limits: Limits,
    /// `--hostname` (Mesos's `ContainerInfo.hostname`).
    #[serde(default)]
    pub hostname: Option<String>,
    /// What runs.
    pub command: Command,
    /// The bound on Docker's own copy of the output; none leaves the daemon's default log
    /// driver and options.
    #[serde(default)]
    pub log_limit: Option<LogLimit>,
}

/// The most a container may use beyond its request, as Mesos's Docker containerizer
/// applies a task's `limits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// CPUs: `--cpu-quota`.
    pub cpus: Option<Limit>,
    /// Memory in MiB: `--memory`, the request becoming `--memory-reservation`.
    pub mem_mb: Option<Limit>,
}

/// One limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Limit {
    /// No limit (Mesos's `Infinity`): the flag is left out.
    Unlimited,
    /// At most this much.
    At(f64),
}

/// A bound on Docker's own log of a task's container (`--docker_log_max_size`,
/// `--docker_log_max_files`): the `json-file` driver, which the executor reads back
/// through the engine's API and `docker logs` reads as ever, rotated by Docker. It is only
/// a buffer: the executor carries the output to the sandbox as it comes, and reads
/// Docker's copy again only after a carrier died or the daemon restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimit {
    /// `--log-opt max-size`, in bytes.
    pub max_size: u64,
    /// `--log-opt max-file`.
    pub max_files: u32,
}

/// Whether `docker run` stays attached to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Stay attached until the container exits; its output is the CLI's (the executor).
    Attached,
    /// `-d`: print the id and return once started.
    Detached,
}

/// A bind mount of a host path into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// Path on the host.
    pub host: PathBuf,
    /// Where it appears inside the container.
    pub container: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Why a [`RunSpec`] cannot become a `docker run`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The image reference is empty or has whitespace or control characters.
    #[error("invalid image reference {0:?}: give an image such as `busybox` or `registry:5000/team/app:1.2`")]
    Image(String),
    /// `shell=true` without a command value.
    #[error(
        "shell=true needs a command value to run with /bin/sh -c; set a value or use shell=false"
    )]
    ShellWithoutValue,
    /// Port mappings with a network that cannot have them.
    #[error("port mappings need network BRIDGE or USER, not {0}")]
    PortsWithoutBridge(&'static str),
    /// A user network with an empty name.
    #[error("network USER needs a network name")]
    EmptyNetworkName,
    /// A parameter that would take ownership away from berth.
    #[error("parameter `{key}={value}` is reserved: berth sets the container's name and its `berth.` labels itself; remove it")]
    ReservedParameter {
        /// The parameter's key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A parameter that would leave the task's output with nowhere to come from.
    #[error("parameter `{key}={value}` is refused: berth runs the container detached and carries its output to the sandbox through Docker's log, which {why}; remove it")]
    OutputParameter {
        /// The parameter's key.
        key: String,
        /// Its value.
        value: String,
        /// What it would do to the log.
        why: &'static str,
    },
    /// A parameter whose key is not a plain option name.
    #[error("parameter key {0:?} is not an option name: use keys like `memory-swap` or `add-host`, without leading dashes")]
    ParameterKey(String),
    /// An environment variable name Docker cannot pass.
    #[error("environment variable name {0:?} is empty or contains `=`")]
    EnvName(String),
    /// A CPU count that is not a positive finite number.
    #[error("cpus must be a positive number, got {0}")]
    Cpus(f64),
    /// A limit that is not a positive number.
    #[error("the {0} limit must be a positive number or Infinity, got {1}")]
    Limit(&'static str, f64),
    /// A path that Docker's option syntax cannot carry.
    #[error("path {0:?} cannot be passed to docker: it is not UTF-8 or contains a newline or a double quote")]
    Path(PathBuf),
}

/// Builds `docker run ...` (without the global `-H` option).
pub fn run(spec: &RunSpec, attach: Attach) -> Result<Vec<String>, SpecError> {
    validate_image(&spec.image)?;
    let mut argv = vec!["run".to_owned()];
    if attach == Attach::Detached {
        argv.push("-d".into());
    }
    argv.push(format!("--name={}", spec.name));
    for (k, v) in &spec.labels {
        argv.push(format!("--label={k}={v}"));
    }
    if spec.privileged {
        argv.push("--privileged".into());
    }
    if let Some(cpus) = spec.cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(SpecError::Cpus(cpus));
        }
        argv.push(format!("--cpu-shares={}", cpu_shares(cpus)));
    }
    if let Some(Limit::At(cpus)) = spec.limits.cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(SpecError::Limit("cpus", cpus));
        }
        argv.push(format!("--cpu-quota={}", cpu_quota_us(cpus)));
    }
    // As Mesos: a memory limit is `--memory` and the request only a reservation; an
    // infinite limit leaves the memory unbounded.
    let reservation = match spec.limits.mem_mb {
        None => {
            if let Some(mem) = spec.mem_mb {
                argv.push(format!("--memory={}", memory_bytes(mem)));
            }
            None
        }
        Some(Limit::Unlimited) => spec.mem_mb,
        Some(Limit::At(limit)) => {
            if !(limit.is_finite() && limit > 0.0) {
                return Err(SpecError::Limit("mem", limit));
            }
            argv.push(format!("--memory={}", memory_bytes(limit.ceil() as u64)));
            spec.mem_mb
        }
    };
    if let Some(mem) = reservation {
        argv.push(format!("--memory-reservation={}", memory_bytes(mem)));
    }
    if let Some(hostname) = &spec.hostname {
        argv.push(format!("--hostname={hostname}"));
    }
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') {
            return Err(SpecError::EnvName(k.clone()));
        }
        argv.push("-e".into());
        argv.push(format!("{k}={v}"));
    }
    for bind in &spec.binds {
        argv.extend(bind_mount(bind)?);
    }
    argv.extend(network(&spec.network, &spec.port_mappings)?);
    // A task that chose its own log driver or options keeps them (checked below to leave
    // a log Docker can give back).
    let own_log = spec
        .parameters
        .iter()
        .any(|(key, _)| key == "log-driver" || key == "log-opt");
    if let (Some(limit), false) = (spec.log_limit, own_log) {
        argv.push("--log-driver=json-file".into());
        argv.push(format!("--log-opt=max-size={}", limit.max_size));
        argv.push(format!("--log-opt=max-file={}", limit.max_files));
    }
    for (key, value) in &spec.parameters {
        check_parameter(key, value)?;
        argv.push(format!("--{key}={value}"));
    }
    match &spec.command {
        Command::Shell(value) => {
            if value.is_empty() {
                return Err(SpecError::ShellWithoutValue);
            }
            argv.push("--entrypoint=/bin/sh".into());
            argv.push(spec.image.clone());
            argv.push("-c".into());
            argv.push(value.clone());
        }
        Command::Exec { value, arguments } => {
            argv.push(spec.image.clone());
            argv.extend(value.iter().cloned());
            argv.extend(arguments.iter().cloned());
        }
    }
    Ok(argv)
}

/// Builds `docker create ...`: the same options as `run`, without starting anything.
pub fn create(spec: &RunSpec) -> Result<Vec<String>, SpecError> {
    let mut argv = run(spec, Attach::Attached)?;
    argv[0] = "create".into();
    Ok(argv)
}

/// The container a task's executor runs in, with `--docker_mesos_image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorBox {
    /// `mesos-<agent id>.<container id>.executor`.
    pub name: String,
    /// `--docker_mesos_image`.
    pub image: String,
    /// berth's labels.
    pub labels: Vec<(String, String)>,
    /// The task's sandbox: mounted at its host path, where the task's own `docker run`
    /// (which the host's daemon resolves) finds it, and its working directory.
    pub sandbox: PathBuf,
    /// The directory of the agent's API socket, mounted read-only at its host path: the
    /// socket is made again by each agent start, so the directory, not the file, is
    /// mounted.
    pub api_dir: PathBuf,
    /// The Docker engine's socket, where the executor finds it (the agent's own path).
    pub docker_socket: PathBuf,
    /// The host's path of that socket, which the host's daemon mounts.
    pub docker_socket_on_host: PathBuf,
    /// The host's network, for a plain-process task, which runs in this container as it
    /// would on the host; an executor of a Docker task speaks only through the two
    /// sockets and gets none.
    pub host_network: bool,
}

/// The executor's own log in its sandbox, which it writes itself.
pub const EXECUTOR_LOG: &str = "executor.log";

/// Builds `docker run -i ...` of an executor's container: `berth executor` blocked on
/// stdin (which the agent holds through this CLI until the executor's identity is
/// recorded), its entrypoint set (an image whose ENTRYPOINT is the agent would otherwise
/// take `executor` as the agent's argument), in the host's pid and user namespaces (its
/// identity is checked through /proc), with no network unless a plain process runs in it
/// (an executor speaks only through the two sockets), and nothing else of the host's.
pub fn executor_box(spec: &ExecutorBox) -> Result<Vec<String>, SpecError> {
    validate_image(&spec.image)?;
    let mut argv = vec![
        "run".to_owned(),
        "-i".to_owned(),
        // A signal the CLI gets is not the executor's.
        "--sig-proxy=false".to_owned(),
        format!("--name={}", spec.name),
    ];
    for (k, v) in &spec.labels {
        argv.push(format!("--label={k}={v}"));
    }
    argv.push("--entrypoint=berth".into());
    argv.push("--pid=host".into());
    // A daemon with user namespaces remapped refuses the host's pid namespace without it.
    argv.push("--userns=host".into());
    argv.push(if spec.host_network {
        "--network=host".into()
    } else {
        "--network=none".into()
    });
    let same = |path: &PathBuf, read_only| Bind {
        host: path.clone(),
        container: path.clone(),
        read_only,
    };
    let socket = Bind {
        host: spec.docker_socket_on_host.clone(),
        container: spec.docker_socket.clone(),
        read_only: false,
    };
    for bind in [
        socket,
        same(&spec.api_dir, true),
        same(&spec.sandbox, false),
    ] {
        argv.extend(bind_mount(&bind)?);
    }
    argv.push(format!("--workdir={}", path_text(&spec.sandbox)?));
    argv.push(spec.image.clone());
    argv.push("executor".into());
    argv.push("--log".into());
    argv.push(path_text(&spec.sandbox.join(EXECUTOR_LOG))?);
    Ok(argv)
}

/// `docker start NAME`: starts a created container.
pub fn start(name: &str) -> Vec<String> {
    vec!["start".into(), name.into()]
}

/// `--cpu-shares` for a CPU count, with Mesos's floor.
pub fn cpu_shares(cpus: f64) -> u64 {
    // `as` saturates for out-of-range floats, which is the behaviour wanted here.
    ((cpus * CPU_SHARES_PER_CPU) as u64).max(MIN_CPU_SHARES)
}

/// `--cpu-quota` in µs for a CPU limit, with Mesos's floor.
pub fn cpu_quota_us(cpus: f64) -> u64 {
    // `as` saturates for out-of-range floats, which is the behaviour wanted here.
    ((cpus * CPU_CFS_PERIOD_US) as u64).max(MIN_CPU_CFS_QUOTA_US)
}

/// `--memory` in bytes for MiB, with Mesos's floor.
pub fn memory_bytes(mem_mb: u64) -> u64 {
    mem_mb.saturating_mul(1024 * 1024).max(MIN_MEMORY_BYTES)
}

/// A bind mount. `-v` splits on `:`, so a path with `:` (or `,`, which `--mount` splits
/// on) goes through `--mount` with CSV quoting instead.
fn bind_mount(bind: &Bind) -> Result<Vec<String>, SpecError> {
    let (h, c) = (path_text(&bind.host)?, path_text(&bind.container)?);
    let plain = |s: &str| !s.contains(':') && !s.contains(',');
    if plain(&h) && plain(&c) {
        let mode = if bind.read_only { ":ro" } else { "" };
        Ok(vec!["-v".into(), format!("{h}:{c}{mode}")])
    } else {
        let mode = if bind.read_only { ",readonly" } else { "" };
        Ok(vec![
            "--mount".into(),
            format!("type=bind,\"source={h}\",\"target={c}\"{mode}"),
        ])
    }
}

fn path_text(path: &std::path::Path) -> Result<String, SpecError> {
    match path.to_str() {
        Some(text) if !text.contains('\n') && !text.contains('"') => Ok(text.to_owned()),
        _ => Err(SpecError::Path(path.to_owned())),
    }
}

fn network(network: &Network, ports: &[PortMapping]) -> Result<Vec<String>, SpecError> {
    let name = match network {
        Network::Host => "host",
        Network::Bridge => "bridge",
        Network::None => "none",
        Network::User(name) if name.trim().is_empty() => return Err(SpecError::EmptyNetworkName),
        Network::User(name) => name.as_str(),
    };
    if !ports.is_empty() && matches!(network, Network::Host | Network::None) {
        return Err(SpecError::PortsWithoutBridge(
            if *network == Network::Host {
                "HOST"
            } else {
                "NONE"
            },
        ));
    }
    let mut argv = vec![format!("--net={name}")];
    for p in ports {
        let proto = match p.protocol {
            Protocol::Tcp => "",
            Protocol::Udp => "/udp",
        };
        argv.push("-p".into());
        argv.push(format!("{}:{}{proto}", p.host_port, p.container_port));
    }
    Ok(argv)
}

fn check_parameter(key: &str, value: &str) -> Result<(), SpecError> {
    let valid_key = !key.is_empty()
        && !key.starts_with('-')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_key {
        return Err(SpecError::ParameterKey(key.to_owned()));
    }
    let label_key = value.split('=').next().unwrap_or_default();
    let reserved = match key {
        "name" => true,
        "label" | "l" => label_key.starts_with(labels::RESERVED_PREFIX),
        _ => false,
    };
    if reserved {
        return Err(SpecError::ReservedParameter {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    let off = matches!(value.to_ascii_lowercase().as_str(), "false" | "0");
    let why = match key {
        "tty" | "t" if !off => Some("a TTY makes one stream of raw bytes"),
        "log-driver" if value == "none" => Some("`none` does not keep"),
        "attach" | "a" | "detach" | "d" => Some("this would change how it is run"),
        "rm" if !off => {
            Some("would go with the container, which berth removes itself once it recorded the end")
        }
        "restart" if value != "no" => {
            Some("would see Docker run the task again behind berth's back")
        }
        _ => None,
    };
    if let Some(why) = why {
        return Err(SpecError::OutputParameter {
            key: key.to_owned(),
            value: value.to_owned(),
            why,
        });
    }
    Ok(())
}

pub(super) fn validate_image(image: &str) -> Result<(), SpecError> {
    let bad = image.is_empty()
        || image.starts_with('-')
        // No reference has them, and in a request path they would name another resource.
        || image.split('/').any(|part| part == "." || part == "..")
        || image
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"');
    if bad {
        return Err(SpecError::Image(image.to_owned()));
    }
    Ok(())
}

/// Whether the pull step pulls always or only when the image is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    /// Pull only if the engine does not have the image.
    IfMissing,
    /// Always pull (`force_pull_image`).
    Always,
}

/// `docker pull IMAGE`.
pub fn pull(image: &str) -> Result<Vec<String>, SpecError> {
    validate_image(image)?;
    Ok(vec!["pull".into(), image.into()])
}

/// `docker stop -t SECONDS NAME`.
pub fn stop(name: &str, grace_secs: u64) -> Vec<String> {
    vec![
        "stop".into(),
        "-t".into(),
        grace_secs.to_string(),
        name.into(),
    ]
}

/// `docker kill --signal KILL`: when `docker stop` failed or hung past the grace period.
pub fn kill(name: &str) -> Vec<String> {
    vec!["kill".into(), "--signal".into(), "KILL".into(), name.into()]
}

/// `docker rm -f -v NAME`: removes the container and its anonymous volumes.
pub fn rm(name: &str) -> Vec<String> {
    vec!["rm".into(), "-f".into(), "-v".into(), name.into()]
}

/// `docker ps -a` of every container whose name starts with `prefix`: a line each, its full
/// id and its names.
pub fn ps_prefix(prefix: &str) -> Vec<String> {
    vec![
        "ps".into(),
        "-a".into(),
        "--no-trunc".into(),
        format!("--filter=name=^/?{prefix}"),
        "--format={{.ID}} {{.Names}}".into(),
    ]
}

/// `docker version` reduced to `CLIENT|SERVER`.
pub fn version() -> Vec<String> {
    vec![
        "version".into(),
        "--format={{.Client.Version}}|{{.Server.Version}}".into(),
    ]
}

/// Largest total size of the ids given to one `docker inspect`. Linux allows far more
/// (ARG_MAX is at least 128 KiB and usually 2 MiB, shared with the environment); staying
/// well under it keeps a huge listing from failing with E2BIG.
pub const INSPECT_ARGV_BUDGET: usize = 64 * 1024;

/// `docker inspect --type=container` of many containers, split into as few calls as fit
/// the argv budget.
pub fn inspect_containers(ids: &[String]) -> Vec<Vec<String>> {
    let head = || vec!["inspect".to_owned(), "--type=container".to_owned()];
    let mut calls = Vec::new();
    let mut current = head();
    let mut size = 0;
    for id in ids {
        if size + id.len() + 1 > INSPECT_ARGV_BUDGET && current.len() > 2 {
            calls.push(std::mem::replace(&mut current, head()));
            size = 0;
        }
        size += id.len() + 1;
        current.push(id.clone());
    }
    if current.len() > 2 {
        calls.push(current);
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            name: "mesos-a.0b8f2a56-7c3e-4f1a-8d2b-6e9c1a4f3d20".into(),
            image: "busybox".into(),
            ..RunSpec::default()
        }
    }

    fn run_checked(spec: &RunSpec) -> Result<Vec<String>, SpecError> {
        run(spec, Attach::Attached)
    }

    fn run_line(spec: &RunSpec) -> String {
        run(spec, Attach::Attached)
            .expect("valid spec in test")
            .join(" ")
    }

    #[test]
    fn golden_full_run() {
        let s = RunSpec {
            labels: vec![(labels::AGENT_ID.into(), "a".into())],
            binds: vec![
                Bind {
                    host: "/var/lib/berth/sandboxes/x".into(),
                    container: "/mnt/mesos/sandbox".into(),
                    read_only: false,
                },
                Bind {
                    host: "/etc/ssl".into(),
                    container: "/etc/ssl".into(),
                    read_only: true,
                },
            ],
            env: vec![
                ("MESOS_SANDBOX".into(), "/mnt/mesos/sandbox".into()),
                ("EMPTY".into(), "".into()),
            ],
            network: Network::Bridge,
            port_mappings: vec![
                PortMapping {
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    host_port: 5353,
                    container_port: 53,
                    protocol: Protocol::Udp,
                },
            ],
            privileged: true,
            parameters: vec![("add-host".into(), "db:127.0.0.1".into())],
            cpus: Some(0.5),
            mem_mb: Some(128),
            command: Command::Shell("echo hi; sleep 1".into()),
            log_limit: Some(LogLimit {
                max_size: 10 << 20,
                max_files: 2,
            }),
            ..spec()
        };
        let argv = run(&s, Attach::Detached).expect("valid");
        assert_eq!(
            argv,
            [
                "run",
                "-d",
                "--name=mesos-a.0b8f2a56-7c3e-4f1a-8d2b-6e9c1a4f3d20",
                "--label=berth.agent_id=a",
                "--privileged",
                "--cpu-shares=512",
                "--memory=134217728",
                "-e",
                "MESOS_SANDBOX=/mnt/mesos/sandbox",
                "-e",
                "EMPTY=",
                "-v",
                "/var/lib/berth/sandboxes/x:/mnt/mesos/sandbox",
                "-v",
                "/etc/ssl:/etc/ssl:ro",
                "--net=bridge",
                "-p",
                "8080:80",
                "-p",
                "5353:53/udp",
                "--log-driver=json-file",
                "--log-opt=max-size=10485760",
                "--log-opt=max-file=2",
                "--add-host=db:127.0.0.1",
                "--entrypoint=/bin/sh",
                "busybox",
                "-c",
                "echo hi; sleep 1",
            ]
        );
    }

    #[test]
    fn limits_and_hostname_follow_mesos() {
        let with = |cpus, mem_mb, limits| RunSpec {
            cpus,
            mem_mb,
            limits,
            ..spec()
        };
        let cases = [
            // Requests alone: shares and a hard memory bound.
            (
                with(Some(1.0), Some(64), Limits::default()),
                "--cpu-shares=1024 --memory=67108864",
            ),
            // A CPU limit is a CFS quota of Docker's 100 ms period, at least 1 ms.
            (
                with(
                    Some(0.5),
                    None,
                    Limits {
                        cpus: Some(Limit::At(2.0)),
                        mem_mb: None,
                    },
                ),
                "--cpu-shares=512 --cpu-quota=200000",
            ),
            (
                with(
                    None,
                    None,
                    Limits {
                        cpus: Some(Limit::At(0.001)),
                        mem_mb: None,
                    },
                ),
                "--cpu-quota=1000",
            ),
            (
                with(
                    Some(0.5),
                    None,
                    Limits {
                        cpus: Some(Limit::Unlimited),
                        mem_mb: None,
                    },
                ),
                "--cpu-shares=512",
            ),
            // A memory limit bounds; the request is a reservation.
            (
                with(
                    None,
                    Some(64),
                    Limits {
                        cpus: None,
                        mem_mb: Some(Limit::At(256.0)),
                    },
                ),
                "--memory=268435456 --memory-reservation=67108864",
            ),
            (
                with(
                    None,
                    Some(64),
                    Limits {
                        cpus: None,
                        mem_mb: Some(Limit::Unlimited),
                    },
                ),
                "--memory-reservation=67108864",
            ),
        ];
        for (spec, flags) in cases {
            let line = run_line(&spec);
            let want = format!("run --name={} {flags} --net=host busybox", spec.name);
            assert_eq!(line, want, "{:?}", spec.limits);
        }
        let named = RunSpec {
            hostname: Some("web-1".into()),
            network: Network::Bridge,
            ..spec()
        };
        assert!(run_line(&named).contains(" --hostname=web-1 --net=bridge "));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let cpus = with(
                None,
                None,
                Limits {
                    cpus: Some(Limit::At(bad)),
                    mem_mb: None,
                },
            );
            assert!(
                matches!(run_checked(&cpus), Err(SpecError::Limit("cpus", _))),
                "{bad}"
            );
            let mem = with(
                None,
                None,
                Limits {
                    cpus: None,
                    mem_mb: Some(Limit::At(bad)),
                },
            );
            assert!(
                matches!(run_checked(&mem), Err(SpecError::Limit("mem", _))),
                "{bad}"
            );
        }
    }

    #[test]
    fn command_semantics_follow_mesos() {
        let with = |command| RunSpec { command, ..spec() };
        let cases = [
            // Default CMD: nothing after the image.
            (Command::default(), "busybox"),
            // shell=false value replaces CMD and goes to the ENTRYPOINT.
            (
                Command::Exec {
                    value: Some("hello".into()),
                    arguments: vec![],
                },
                "busybox hello",
            ),
            // Arguments alone also replace CMD.
            (
                Command::Exec {
                    value: None,
                    arguments: vec!["a b".into(), "c".into()],
                },
                "busybox a b c",
            ),
            (
                Command::Exec {
                    value: Some("ls".into()),
                    arguments: vec!["-l".into()],
                },
                "busybox ls -l",
            ),
            // shell=true bypasses the ENTRYPOINT.
            (
                Command::Shell("echo $HOME".into()),
                "--entrypoint=/bin/sh busybox -c echo $HOME",
            ),
        ];
        for (command, tail) in cases {
            let line = run_line(&with(command.clone()));
            let expected_prefix =
                "run --name=mesos-a.0b8f2a56-7c3e-4f1a-8d2b-6e9c1a4f3d20 --net=host ";
            assert_eq!(line, format!("{expected_prefix}{tail}"), "{command:?}");
        }
        assert_eq!(
            run_checked(&with(Command::Shell(String::new()))),
            Err(SpecError::ShellWithoutValue)
        );
    }

    #[test]
    fn sandbox_paths_with_colon_or_comma_use_mount() {
        let with = |host: &str| RunSpec {
            binds: vec![Bind {
                host: host.into(),
                container: "/mnt/mesos/sandbox".into(),
                read_only: false,
            }],
            ..spec()
        };
        let cases = [
            ("/w/plain", "-v /w/plain:/mnt/mesos/sandbox"),
            (
                "/w/a:b",
                "--mount type=bind,\"source=/w/a:b\",\"target=/mnt/mesos/sandbox\"",
            ),
            (
                "/w/a,b",
                "--mount type=bind,\"source=/w/a,b\",\"target=/mnt/mesos/sandbox\"",
            ),
            ("/w/with space", "-v /w/with space:/mnt/mesos/sandbox"),
        ];
        let read_only = |host: &str| RunSpec {
            binds: vec![Bind {
                host: host.into(),
                container: "/c".into(),
                read_only: true,
            }],
            ..spec()
        };
        assert!(run_line(&read_only("/a:b")).contains("\"target=/c\",readonly"));
        for (host, want) in cases {
            let line = run_line(&with(host));
            assert!(line.contains(want), "{host}: {line}");
        }
        assert!(matches!(
            run_checked(&with("/w/a\"b")),
            Err(SpecError::Path(_))
        ));
        assert!(matches!(
            run_checked(&with("/w/a\nb")),
            Err(SpecError::Path(_))
        ));
    }

    #[test]
    fn networks() {
        let port = PortMapping {
            host_port: 1,
            container_port: 2,
            protocol: Protocol::Tcp,
        };
        let with = |network, port_mappings| RunSpec {
            network,
            port_mappings,
            ..spec()
        };
        let ok = [
            (Network::Host, vec![], "--net=host"),
            (Network::None, vec![], "--net=none"),
            (Network::Bridge, vec![], "--net=bridge"),
            (
                Network::User("tenant".into()),
                vec![port],
                "--net=tenant -p 1:2",
            ),
        ];
        for (network, ports, want) in ok {
            assert!(run_line(&with(network, ports)).contains(want), "{want}");
        }
        assert_eq!(
            run_checked(&with(Network::Host, vec![port])),
            Err(SpecError::PortsWithoutBridge("HOST"))
        );
        assert_eq!(
            run_checked(&with(Network::None, vec![port])),
            Err(SpecError::PortsWithoutBridge("NONE"))
        );
        assert_eq!(
            run_checked(&with(Network::User(" ".into()), vec![])),
            Err(SpecError::EmptyNetworkName)
        );
    }

    #[test]
    fn dockers_copy_is_bounded_unless_the_task_sets_its_own_log() {
        let limit = Some(LogLimit {
            max_size: 1024,
            max_files: 3,
        });
        let bounded = "--log-driver=json-file --log-opt=max-size=1024 --log-opt=max-file=3";
        let with = |parameters: &[(&str, &str)], log_limit| RunSpec {
            parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log_limit,
            ..spec()
        };
        // (the task's parameters, the bound asked, the log options expected)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<LogLimit>, Option<&'a str>);
        let cases: &[Case] = &[
            (&[], limit, Some(bounded)),
            (&[("add-host", "db:127.0.0.1")], limit, Some(bounded)),
            // No bound asked: the daemon's default driver and options.
            (&[], None, None),
            // The task's own driver or options: Docker's log as it asks.
            (
                &[("log-driver", "local")],
                limit,
                Some("--log-driver=local"),
            ),
            (
                &[("log-opt", "max-size=1g")],
                limit,
                Some("--log-opt=max-size=1g"),
            ),
        ];
        for (parameters, log_limit, want) in cases {
            let line = run_line(&with(parameters, *log_limit));
            let logs: Vec<&str> = line
                .split(' ')
                .filter(|word| word.starts_with("--log-"))
                .collect();
            let want: Vec<&str> = want.map(|w| w.split(' ').collect()).unwrap_or_default();
            assert_eq!(logs, want, "{parameters:?} {log_limit:?}");
        }
    }

    #[test]
    fn parameters_cannot_take_ownership() {
        let with = |k: &str, v: &str| RunSpec {
            parameters: vec![(k.into(), v.into())],
            ..spec()
        };
        for (k, v) in [
            ("name", "other"),
            ("label", "berth.agent_id=x"),
            ("l", "berth.task_id=x"),
            ("label", "berth.anything"),
        ] {
            assert!(
                matches!(
                    run_checked(&with(k, v)),
                    Err(SpecError::ReservedParameter { .. })
                ),
                "{k}={v}"
            );
        }
        for (k, v) in [
            ("tty", "true"),
            ("t", ""),
            ("log-driver", "none"),
            ("attach", "STDOUT"),
            ("d", "true"),
            ("rm", "true"),
            ("restart", "always"),
            ("restart", "on-failure:3"),
        ] {
            assert!(
                matches!(
                    run_checked(&with(k, v)),
                    Err(SpecError::OutputParameter { .. })
                ),
                "{k}={v}"
            );
        }
        assert!(run_line(&with("tty", "false")).contains("--tty=false"));
        assert!(run_line(&with("restart", "no")).contains("--restart=no"));
        assert!(run_line(&with("log-driver", "json-file")).contains("--log-driver=json-file"));
        for k in ["", "-v", "--name", "a b", "x=y"] {
            assert!(
                matches!(run_checked(&with(k, "v")), Err(SpecError::ParameterKey(_))),
                "{k:?}"
            );
        }
        assert!(run_line(&with("label", "team=infra")).contains("--label=team=infra"));
        assert!(run_line(&with("memory-swap", "-1")).contains("--memory-swap=-1"));
    }

    #[test]
    fn limits_have_mesos_floors() {
        let cases = [
            (0.001, 2),
            (0.5, 512),
            (1.0, 1024),
            (2.25, 2304),
            (1e30, u64::MAX),
        ];
        for (cpus, shares) in cases {
            assert_eq!(cpu_shares(cpus), shares, "{cpus}");
        }
        assert_eq!(memory_bytes(0), MIN_MEMORY_BYTES);
        assert_eq!(memory_bytes(64), 64 * 1024 * 1024);
        assert_eq!(memory_bytes(u64::MAX), u64::MAX);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let s = RunSpec {
                cpus: Some(bad),
                ..spec()
            };
            assert!(matches!(run_checked(&s), Err(SpecError::Cpus(_))), "{bad}");
        }
    }

    #[test]
    fn bad_images_and_env() {
        for image in [
            "",
            "-v",
            "bad image",
            "a\nb",
            "a\"b",
            "../x",
            "a/../b",
            "./a",
        ] {
            let s = RunSpec {
                image: image.into(),
                ..spec()
            };
            assert_eq!(run_checked(&s), Err(SpecError::Image(image.into())));
            assert!(pull(image).is_err());
        }
        for name in ["", "A=B"] {
            let s = RunSpec {
                env: vec![(name.into(), "v".into())],
                ..spec()
            };
            assert_eq!(run_checked(&s), Err(SpecError::EnvName(name.into())));
        }
    }

    #[test]
    fn small_verbs() {
        assert_eq!(stop("c", 10), ["stop", "-t", "10", "c"]);
        assert_eq!(start("c"), ["start", "c"]);
        let created = create(&spec()).expect("valid");
        assert_eq!(created[0], "create");
        assert_eq!(
            created[1..],
            run(&spec(), Attach::Attached).expect("valid")[1..]
        );
        assert_eq!(rm("c"), ["rm", "-f", "-v", "c"]);
        assert_eq!(pull("busybox:1").expect("valid"), ["pull", "busybox:1"]);
        assert_eq!(
            ps_prefix("mesos-"),
            [
                "ps",
                "-a",
                "--no-trunc",
                "--filter=name=^/?mesos-",
                "--format={{.ID}} {{.Names}}"
            ]
        );
    }

    #[test]
    fn inspect_batches_split_only_past_the_budget() {
        assert!(inspect_containers(&[]).is_empty());
        let ids: Vec<String> = (0..100).map(|i| format!("{i:064}")).collect();
        let calls = inspect_containers(&ids);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].len(), 102);
        let many: Vec<String> = (0..3000).map(|i| format!("{i:064}")).collect();
        let calls = inspect_containers(&many);
        assert!(calls.len() > 1);
        let total: usize = calls.iter().map(|c| c.len() - 2).sum();
        assert_eq!(total, 3000);
        for call in &calls {
            let size: usize = call[2..].iter().map(|id| id.len() + 1).sum();
            assert!(size <= INSPECT_ARGV_BUDGET);
        }
    }

    #[test]
    fn executor_box_line() {
        let spec = ExecutorBox {
            name: "mesos-a.c.executor".into(),
            image: "berth-agent:1".into(),
            labels: vec![(labels::ROLE.into(), labels::ROLE_EXECUTOR.into())],
            sandbox: "/w/sandboxes/c".into(),
            api_dir: "/w".into(),
            docker_socket: "/var/run/docker.sock".into(),
            docker_socket_on_host: "/run/docker.sock".into(),
            host_network: false,
        };
        assert_eq!(
            executor_box(&spec).expect("valid"),
            [
                "run",
                "-i",
                "--sig-proxy=false",
                "--name=mesos-a.c.executor",
                "--label=berth.role=executor",
                "--entrypoint=berth",
                "--pid=host",
                "--userns=host",
                "--network=none",
                "-v",
                "/run/docker.sock:/var/run/docker.sock",
                "-v",
                "/w:/w:ro",
                "-v",
                "/w/sandboxes/c:/w/sandboxes/c",
                "--workdir=/w/sandboxes/c",
                "berth-agent:1",
                "executor",
                "--log",
                "/w/sandboxes/c/executor.log",
            ]
        );
        let odd = ExecutorBox {
            sandbox: "/w:x/sandboxes/c".into(),
            api_dir: "/w:x".into(),
            ..spec.clone()
        };
        let line = executor_box(&odd).expect("colons go through --mount");
        assert!(line.contains(&"type=bind,\"source=/w:x\",\"target=/w:x\",readonly".to_owned()));
        let process = ExecutorBox {
            host_network: true,
            ..spec.clone()
        };
        assert!(executor_box(&process)
            .expect("valid")
            .contains(&"--network=host".to_owned()));
        let bad = ExecutorBox {
            image: "two words".into(),
            ..spec
        };
        assert!(executor_box(&bad).is_err());
    }
}

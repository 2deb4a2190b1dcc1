//! Mesos's `TaskInfo`, in the JSON form real Mesos tooling produces.
//!
//! Every field of Mesos's `TaskInfo` is modelled, whether berth acts on it, refuses it
//! ([`super::check`]) or accepts it without acting on it ([`Opaque`]): docs/api.md,
//! "TaskInfo fields", says which. Fields Mesos does not have are not dropped silently:
//! [`parse`] returns them as warnings, which the API hands back to the caller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::proto_json;

/// A `{"value": "..."}` wrapper, as Mesos's ids are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Id {
    /// The id itself.
    pub value: String,
}

/// Any JSON: a field berth accepts and does not act on (docs/api.md, "TaskInfo fields").
/// Read whole, so that what is inside is not reported as unknown.
pub type Opaque = Option<serde_json::Value>;

/// A task to run.
///
/// Field names are Mesos's (`task_id`); the proto3 JSON mapping's camelCase (`taskId`) is
/// read too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TaskInfo {
    /// Human-readable name; berth names a task by its id.
    #[serde(default)]
    pub name: String,
    /// The framework's id for the task; unique among this agent's live tasks.
    #[serde(alias = "taskId")]
    pub task_id: Id,
    /// The agent the task was offered on (`slave_id` in older Mesos); berth runs it on
    /// itself whatever it says.
    #[serde(default, alias = "slave_id", alias = "agentId", alias = "slaveId")]
    pub agent_id: Option<Id>,
    /// Resources: `cpus` and `mem` become Docker's shares and memory, `ports` bound the
    /// port mappings.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// What to run (a command task).
    #[serde(default)]
    pub command: Option<CommandInfo>,
    /// How to containerize it.
    #[serde(default)]
    pub container: Option<ContainerInfo>,
    /// A custom executor instead of a command (executor mode).
    #[serde(default)]
    pub executor: Option<ExecutorInfo>,
    /// A health check; berth runs none (a warning says so).
    #[serde(default, alias = "healthCheck")]
    pub health_check: Opaque,
    /// A check; berth runs none (a warning says so).
    #[serde(default)]
    pub check: Opaque,
    /// How the task is killed.
    #[serde(default, alias = "killPolicy")]
    pub kill_policy: Option<KillPolicy>,
    /// Opaque data for the executor (base64 in JSON); berth has no executor API to hand
    /// it over.
    #[serde(default)]
    pub data: Option<String>,
    /// Free-form labels, put on the task's container.
    #[serde(default)]
    pub labels: Option<Labels>,
    /// Service discovery information, for tools that read it from the master.
    #[serde(default)]
    pub discovery: Opaque,
    /// The task is killed once it has run this long.
    #[serde(default, alias = "maxCompletionTime")]
    pub max_completion_time: Option<DurationInfo>,
    /// Resource limits (`cpus`, `mem`): the most the task may use, beyond its request.
    /// `f64::INFINITY` for no limit.
    #[serde(default, deserialize_with = "proto_json::scalar_map")]
    pub limits: BTreeMap<String, f64>,
}

/// Mesos's `CommandInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CommandInfo {
    /// The command; with `shell` it is a shell command line.
    #[serde(default)]
    pub value: Option<String>,
    /// Run `value` with `/bin/sh -c` (Mesos's default: true).
    #[serde(default, deserialize_with = "proto_json::optional_boolean")]
    pub shell: Option<bool>,
    /// Arguments, used when `shell` is false.
    #[serde(default)]
    pub arguments: Vec<String>,
    /// Files to fetch into the sandbox first.
    #[serde(default)]
    pub uris: Vec<Uri>,
    /// Environment variables.
    #[serde(default)]
    pub environment: Option<Environment>,
    /// The user a plain process runs as and the sandbox belongs to (`--switch_user`).
    #[serde(default)]
    pub user: Option<String>,
}

impl CommandInfo {
    /// `shell`, with Mesos's default.
    pub fn shell(&self) -> bool {
        self.shell.unwrap_or(true)
    }

    /// The environment's variables, in order.
    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.environment.iter().flat_map(|e| &e.variables)
    }
}

/// Mesos's `Environment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Environment {
    /// The variables, in order.
    #[serde(default)]
    pub variables: Vec<Variable>,
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Variable {
    /// Name.
    pub name: String,
    /// `VALUE` (the default) or `SECRET`, which berth refuses.
    #[serde(
        default,
        rename = "type",
        deserialize_with = "proto_json::variable_type"
    )]
    pub kind: Option<String>,
    /// Value.
    #[serde(default)]
    pub value: String,
    /// A secret's reference; berth has no secret store and refuses it.
    #[serde(default)]
    pub secret: Opaque,
}

/// Mesos's `Resource`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Resource {
    /// `cpus`, `mem`, `disk`, `ports`, ...
    pub name: String,
    /// `SCALAR`, `RANGES`, `SET` or `TEXT`.
    #[serde(default, rename = "type", deserialize_with = "proto_json::value_type")]
    pub kind: Option<String>,
    /// The amount, for scalars.
    #[serde(default)]
    pub scalar: Option<Scalar>,
    /// The ranges, for `ports`.
    #[serde(default)]
    pub ranges: Option<Ranges>,
    /// Items, for sets.
    #[serde(default)]
    pub set: Opaque,
    /// The role the resource was reserved for (before Mesos 1.4).
    #[serde(default)]
    pub role: Option<String>,
    /// The role it was allocated to: `MESOS_ALLOCATION_ROLE` in a Docker container.
    #[serde(default, alias = "allocationInfo")]
    pub allocation_info: Option<AllocationInfo>,
    /// Reservation (one, before Mesos 1.4).
    #[serde(default)]
    pub reservation: Opaque,
    /// Reservations.
    #[serde(default)]
    pub reservations: Opaque,
    /// Disk: a persistent volume is refused, the rest is not acted on.
    #[serde(default)]
    pub disk: Option<DiskInfo>,
    /// Revocable resources.
    #[serde(default)]
    pub revocable: Opaque,
    /// Shared resources.
    #[serde(default)]
    pub shared: Opaque,
    /// The resource provider.
    #[serde(default, alias = "providerId")]
    pub provider_id: Opaque,
}

/// A scalar amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Scalar {
    /// The amount (CPUs, or MiB for `mem`).
    #[serde(default, deserialize_with = "proto_json::double")]
    pub value: f64,
}

/// Mesos's `Value.Ranges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ranges {
    /// The ranges.
    #[serde(default)]
    pub range: Vec<Range>,
}

/// An inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Range {
    /// First value.
    #[serde(deserialize_with = "proto_json::uint64")]
    pub begin: u64,
    /// Last value.
    #[serde(deserialize_with = "proto_json::uint64")]
    pub end: u64,
}

/// Mesos's `Resource.AllocationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AllocationInfo {
    /// The role.
    #[serde(default)]
    pub role: Option<String>,
}

/// Mesos's `Resource.DiskInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DiskInfo {
    /// A persistent volume's id: berth has no persistent volumes.
    #[serde(default)]
    pub persistence: Opaque,
    /// Where a persistent volume is mounted.
    #[serde(default)]
    pub volume: Opaque,
    /// The disk's source (a mount or path disk).
    #[serde(default)]
    pub source: Opaque,
}

/// Mesos's `ContainerInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContainerInfo {
    /// `DOCKER`; `MESOS` is refused.
    #[serde(
        default,
        rename = "type",
        deserialize_with = "proto_json::container_type"
    )]
    pub kind: Option<String>,
    /// The Docker part.
    #[serde(default)]
    pub docker: Option<DockerInfo>,
    /// The Mesos containerizer's part (an image it would provision).
    #[serde(default)]
    pub mesos: Option<MesosInfo>,
    /// Bind mounts.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Networks; a `USER` network takes its name from the only one.
    #[serde(default, alias = "networkInfos")]
    pub network_infos: Vec<NetworkInfo>,
    /// Host name inside the container (`docker run --hostname`).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Linux settings of the Mesos containerizer: only `share_cgroups` (or
    /// `shareCgroups`) is accepted.
    #[serde(default, alias = "linuxInfo")]
    pub linux_info: Option<serde_json::Map<String, serde_json::Value>>,
    /// Resource limits of the Mesos containerizer; refused.
    #[serde(default, alias = "rlimitInfo")]
    pub rlimit_info: Opaque,
    /// A terminal; refused.
    #[serde(default, alias = "ttyInfo")]
    pub tty_info: Opaque,
}

/// Mesos's `ContainerInfo.MesosInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MesosInfo {
    /// The image the Mesos containerizer would provision.
    #[serde(default)]
    pub image: Option<Image>,
}

/// Mesos's `Image`, as far as a message naming it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Image {
    /// `DOCKER` or `APPC`.
    #[serde(default, rename = "type", deserialize_with = "proto_json::image_type")]
    pub kind: Option<String>,
    /// A Docker image's reference.
    #[serde(default)]
    pub docker: Option<ImageName>,
    /// Whether a cached copy may be used.
    #[serde(default)]
    pub cached: Opaque,
    /// An Appc image.
    #[serde(default)]
    pub appc: Opaque,
}

/// A Docker image's name in Mesos's `Image.Docker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ImageName {
    /// The reference, such as `alpine`.
    #[serde(default)]
    pub name: String,
    /// Credentials or a secret for the pull.
    #[serde(default)]
    pub credential: Opaque,
    /// A secret holding a Docker config.
    #[serde(default)]
    pub config: Opaque,
}

/// Mesos's `DockerInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DockerInfo {
    /// Image reference.
    pub image: String,
    /// `HOST` (default), `BRIDGE`, `NONE` or `USER`.
    #[serde(default, deserialize_with = "proto_json::docker_network")]
    pub network: Option<String>,
    /// Port mappings for `BRIDGE` and `USER`.
    #[serde(default, alias = "portMappings")]
    pub port_mappings: Vec<PortMapping>,
    /// `--privileged`.
    #[serde(default, deserialize_with = "proto_json::boolean")]
    pub privileged: bool,
    /// Free-form `--key=value` options.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Pull even if the image is present.
    #[serde(
        default,
        alias = "forcePullImage",
        deserialize_with = "proto_json::boolean"
    )]
    pub force_pull_image: bool,
    /// A volume driver for every volume (deprecated in Mesos 1.0); refused.
    #[serde(default, alias = "volumeDriver")]
    pub volume_driver: Option<String>,
}

/// A port mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PortMapping {
    /// Port on the host; it must be in the task's `ports` ranges.
    #[serde(alias = "hostPort", deserialize_with = "proto_json::uint32")]
    pub host_port: u32,
    /// Port in the container.
    #[serde(alias = "containerPort", deserialize_with = "proto_json::uint32")]
    pub container_port: u32,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A Docker parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Parameter {
    /// Option name without dashes.
    pub key: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// A bind mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Volume {
    /// Path inside the container; a relative one is inside the container's sandbox.
    #[serde(alias = "containerPath")]
    pub container_path: String,
    /// Path on the host; a relative one is inside the sandbox.
    #[serde(default, alias = "hostPath")]
    pub host_path: Option<String>,
    /// `RW` (default) or `RO`.
    #[serde(default, deserialize_with = "proto_json::volume_mode")]
    pub mode: Option<String>,
    /// An image to mount (Mesos containerizer); refused.
    #[serde(default)]
    pub image: Opaque,
    /// A Docker volume, secret, CSI volume...; refused.
    #[serde(default)]
    pub source: Opaque,
}

/// A network to join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkInfo {
    /// The network's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Addresses asked for; Docker assigns them.
    #[serde(default, alias = "ipAddresses")]
    pub ip_addresses: Opaque,
    /// Network groups.
    #[serde(default)]
    pub groups: Opaque,
    /// Labels for network plugins.
    #[serde(default)]
    pub labels: Opaque,
    /// CNI port mappings; refused (Docker's are `docker.port_mappings`).
    #[serde(default, alias = "portMappings")]
    pub port_mappings: Opaque,
}

/// Mesos's `ExecutorInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ExecutorInfo {
    /// `CUSTOM` (or unset); `DEFAULT`, Mesos's own executor of task groups, is refused.
    #[serde(
        default,
        rename = "type",
        deserialize_with = "proto_json::executor_type"
    )]
    pub kind: Option<String>,
    /// The executor's id.
    #[serde(alias = "executorId")]
    pub executor_id: Id,
    /// The framework it belongs to: `MESOS_FRAMEWORK_ID`.
    #[serde(default, alias = "frameworkId")]
    pub framework_id: Option<Id>,
    /// How to start it.
    #[serde(default)]
    pub command: Option<CommandInfo>,
    /// Its container: a Docker one makes the container the executor.
    #[serde(default)]
    pub container: Option<ContainerInfo>,
    /// Its resources.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its source (deprecated in Mesos 1.0).
    #[serde(default)]
    pub source: Option<String>,
    /// Opaque data for it; berth has no executor API to hand it over.
    #[serde(default)]
    pub data: Option<String>,
    /// Service discovery information.
    #[serde(default)]
    pub discovery: Opaque,
    /// How long it has to exit once asked to: the grace of a kill when the task has no
    /// kill policy.
    #[serde(default, alias = "shutdownGracePeriod")]
    pub shutdown_grace_period: Option<DurationInfo>,
    /// Its labels.
    #[serde(default)]
    pub labels: Opaque,
}

/// Mesos's `KillPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct KillPolicy {
    /// Time between SIGTERM and SIGKILL.
    #[serde(default, alias = "gracePeriod")]
    pub grace_period: Option<DurationInfo>,
}

/// Mesos's `DurationInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DurationInfo {
    /// Nanoseconds, a number or a string of one; negative values are refused.
    #[serde(default, deserialize_with = "proto_json::int64")]
    pub nanoseconds: i64,
}

/// Mesos's `Labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Labels {
    /// The labels.
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// One label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Label {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: Option<String>,
}

/// A task parsed from JSON, with the fields berth did not recognise and the JSON itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The task.
    pub task: TaskInfo,
    /// One line per unknown field, such as `unknown field container.docker.foo (ignored)`.
    pub warnings: Vec<String>,
    /// The JSON as received: what is recorded, so that a restart plans from the very
    /// words the client sent, unknown fields and all.
    pub json: String,
}

/// Why JSON is not a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the task is not valid TaskInfo JSON: {0}")]
pub struct JsonError(pub String);

/// Parses TaskInfo JSON, collecting unknown fields as warnings.
pub fn parse(json: &[u8]) -> Result<Parsed, JsonError> {
    let mut warnings = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    let task: TaskInfo = serde_ignored::deserialize(&mut de, |path| {
        // Option layers print as `?`; a person wants the field's JSON path.
        let path = path.to_string().replace(".?", "");
        warnings.push(format!("unknown field {path} (ignored)"));
    })
    .map_err(|e| JsonError(e.to_string()))?;
    de.end().map_err(|e| JsonError(e.to_string()))?;
    // serde_json does not check the strings of fields it skips, so a byte that is not
    // UTF-8 is replaced there, as the store has always kept it.
    let json = String::from_utf8_lossy(json).into_owned();
    Ok(Parsed {
        task,
        warnings,
        json,
    })
}

/// Mesos's `CommandInfo.URI`, in the JSON Mesos's tooling produces. Unset fields take
/// Mesos's defaults when fetched: `executable` false, `extract` true, `cache` false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Uri {
    /// An absolute local path, a `file://` URL, or an `http://` or `https://` URL.
    pub value: String,
    /// Set mode 0755 on the fetched file (and do not unpack it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "proto_json::optional_boolean"
    )]
    pub executable: Option<bool>,
    /// Unpack archives and gunzip `.gz` files (Mesos's default: true).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "proto_json::optional_boolean"
    )]
    pub extract: Option<bool>,
    /// Accepted for compatibility; berth has no fetcher cache and always fetches.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "proto_json::optional_boolean"
    )]
    pub cache: Option<bool>,
    /// The file's path relative to the sandbox, instead of the URI's last segment
    /// (`outputFile` in the proto3 JSON mapping's names).
    #[serde(default, alias = "outputFile", skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_mesos_tooling_sends() {
        let json = br#"{
            "name": "web", "task_id": {"value": "t1"}, "slave_id": {"value": "S0"},
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "role": "*"},
                {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}}
            ],
            "command": {"value": "echo hi", "uris": [{"value": "http://127.0.0.1/x.tgz", "extract": true}],
                        "environment": {"variables": [{"name": "A", "value": "1"}]}},
            "container": {"type": "DOCKER", "docker": {"image": "busybox", "network": "BRIDGE",
                          "port_mappings": [{"host_port": 31000, "container_port": 80, "protocol": "tcp"}],
                          "parameters": [{"key": "add-host", "value": "db:127.0.0.1"}],
                          "force_pull_image": true}},
            "kill_policy": {"grace_period": {"nanoseconds": 3000000000}},
            "max_completion_time": {"nanoseconds": 1000000000}
        }"#;
        let parsed = parse(json).expect("valid");
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        let t = parsed.task;
        assert_eq!(t.task_id.value, "t1");
        assert_eq!(t.agent_id.map(|a| a.value).as_deref(), Some("S0"));
        let command = t.command.expect("command");
        assert!(command.shell());
        assert_eq!(command.uris.len(), 1);
        let docker = t.container.expect("container").docker.expect("docker");
        assert!(docker.force_pull_image);
        assert_eq!(docker.port_mappings[0].container_port, 80);
        let grace = t.kill_policy.and_then(|k| k.grace_period).expect("grace");
        assert_eq!(grace.nanoseconds, 3_000_000_000);
    }

    #[test]
    fn unknown_fields_become_warnings() {
        let json = br#"{"task_id": {"value": "t"}, "checks": {}, "command": {"value": "x", "colour": 1},
                        "container": {"type": "DOCKER", "docker": {"image": "i", "volume_drivers": "x"}}}"#;
        let parsed = parse(json).expect("valid");
        assert_eq!(
            parsed.warnings,
            [
                "unknown field checks (ignored)",
                "unknown field command.colour (ignored)",
                "unknown field container.docker.volume_drivers (ignored)",
            ]
        );
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for bad in [
            &b"{"[..],
            b"",
            b"[]",
            b"{}",
            b"{\"task_id\": \"t\"}",
            b"{\"task_id\": {\"value\": \"t\"}} trailing",
            b"{\"task_id\": {\"value\": \"t\"}, \"resources\": [{\"name\": 1}]}",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

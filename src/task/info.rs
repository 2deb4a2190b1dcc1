//! Mesos's `TaskInfo`, in the JSON form real Mesos tooling produces.
//!
//! Only what berth acts on is modelled. Fields berth does not know are not dropped
//! silently: [`parse`] returns them as warnings, which the API hands back to the caller.

use serde::{Deserialize, Serialize};

use crate::fetch::Uri;

/// A `{"value": "..."}` wrapper, as Mesos's ids are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Id {
    /// The id itself.
    pub value: String,
}

/// A task to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TaskInfo {
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// The framework's id for the task; unique among this agent's live tasks.
    pub task_id: Id,
    /// The agent the task was offered on (`slave_id` in older Mesos).
    #[serde(default, alias = "slave_id")]
    pub agent_id: Option<Id>,
    /// Resources; `cpus` and `mem` become Docker limits.
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
    /// How the task is killed.
    #[serde(default)]
    pub kill_policy: Option<KillPolicy>,
    /// The task is killed once it has run this long.
    #[serde(default)]
    pub max_completion_time: Option<DurationInfo>,
    /// Free-form labels.
    #[serde(default)]
    pub labels: Option<Labels>,
    /// Opaque data for the executor (base64 in JSON).
    #[serde(default)]
    pub data: Option<String>,
}

/// Mesos's `CommandInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CommandInfo {
    /// The command; with `shell` it is a shell command line.
    #[serde(default)]
    pub value: Option<String>,
    /// Run `value` with `/bin/sh -c` (Mesos's default: true).
    #[serde(default)]
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
    /// User to run as (plain-process tasks only).
    #[serde(default)]
    pub user: Option<String>,
}

impl CommandInfo {
    /// `shell`, with Mesos's default.
    pub fn shell(&self) -> bool {
        self.shell.unwrap_or(true)
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
    /// Value (`VALUE` type; secrets are not supported).
    #[serde(default)]
    pub value: String,
}

/// Mesos's `Resource`, scalar kind only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Resource {
    /// `cpus`, `mem`, `disk`, `ports`, ...
    pub name: String,
    /// `SCALAR`, `RANGES` or `SET`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The amount, for scalars.
    #[serde(default)]
    pub scalar: Option<Scalar>,
    /// Ranges (ports); accepted, berth does not enforce them.
    #[serde(default)]
    pub ranges: Option<serde_json::Value>,
    /// The role the resource was reserved for; accepted and ignored.
    #[serde(default)]
    pub role: Option<String>,
}

/// A scalar amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Scalar {
    /// The amount (CPUs, or MiB for `mem`).
    pub value: f64,
}

/// Mesos's `ContainerInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContainerInfo {
    /// `DOCKER` or `MESOS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The Docker part.
    #[serde(default)]
    pub docker: Option<DockerInfo>,
    /// Bind mounts.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Networks; a `USER` network takes its name from the first.
    #[serde(default)]
    pub network_infos: Vec<NetworkInfo>,
    /// Host name inside the container.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// Mesos's `DockerInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DockerInfo {
    /// Image reference.
    pub image: String,
    /// `HOST` (default), `BRIDGE`, `NONE` or `USER`.
    #[serde(default)]
    pub network: Option<String>,
    /// Port mappings for `BRIDGE` and `USER`.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// Free-form `--key=value` options.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Pull even if the image is present.
    #[serde(default)]
    pub force_pull_image: bool,
}

/// A port mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PortMapping {
    /// Port on the host.
    pub host_port: u32,
    /// Port in the container.
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
    /// Path inside the container.
    pub container_path: String,
    /// Path on the host; relative paths are inside the sandbox.
    #[serde(default)]
    pub host_path: Option<String>,
    /// `RW` or `RO`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// A network to join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkInfo {
    /// The network's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Mesos's `ExecutorInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ExecutorInfo {
    /// The executor's id.
    pub executor_id: Id,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// How to start it.
    #[serde(default)]
    pub command: Option<CommandInfo>,
    /// Its container: a Docker one makes the container the executor.
    #[serde(default)]
    pub container: Option<ContainerInfo>,
    /// Its resources.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// The framework it belongs to; accepted and ignored.
    #[serde(default)]
    pub framework_id: Option<Id>,
}

/// Mesos's `KillPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct KillPolicy {
    /// Time between SIGTERM and SIGKILL.
    #[serde(default)]
    pub grace_period: Option<DurationInfo>,
}

/// Mesos's `DurationInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DurationInfo {
    /// Nanoseconds; negative values are refused by validation.
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

/// A task parsed from JSON, with the fields berth did not recognise.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The task.
    pub task: TaskInfo,
    /// One line per unknown field, such as `unknown field container.docker.foo (ignored)`.
    pub warnings: Vec<String>,
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
    Ok(Parsed { task, warnings })
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
        let json = br#"{"task_id": {"value": "t"}, "check": {}, "command": {"value": "x", "colour": 1},
                        "container": {"type": "DOCKER", "docker": {"image": "i", "volume_driver": "x"}}}"#;
        let parsed = parse(json).expect("valid");
        assert_eq!(
            parsed.warnings,
            [
                "unknown field check (ignored)",
                "unknown field command.colour (ignored)",
                "unknown field container.docker.volume_driver (ignored)",
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

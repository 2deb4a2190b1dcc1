//! One row per field of Mesos's `TaskInfo` and of the messages in it: what berth does with
//! it, as docs/api.md's "TaskInfo fields" says. A field is used (the launch shows it),
//! refused (with a message saying what to write instead), or accepted without effect:
//! quietly when it changes nothing here either, with a warning when Mesos would act on it.

use std::time::Duration;

use serde_json::{json, Value};

use super::launch::{test_context, BOTH};
use super::{admit, parse, Launch, LaunchKind};
use crate::docker::argv::{Limit, Network, RunSpec};

/// What berth does with a field.
enum Outcome {
    /// The launch shows it.
    Used(fn(&Launch) -> bool),
    /// Refused; the message contains this.
    Refused(&'static str),
    /// Taken without a word.
    Quiet,
    /// Taken with a warning containing this.
    Warned(&'static str),
}

use Outcome::{Quiet, Refused, Used, Warned};

/// A command task in a Docker container.
fn docker() -> Value {
    json!({"task_id": {"value": "t"}, "command": {"value": "x"},
           "container": {"type": "DOCKER", "docker": {"image": "i"}}})
}

/// A command task without a container.
fn plain() -> Value {
    json!({"task_id": {"value": "t"}, "command": {"value": "x"}})
}

/// An executor-mode task.
fn executor() -> Value {
    json!({"task_id": {"value": "t"}, "executor": {"executor_id": {"value": "e"},
           "container": {"type": "DOCKER", "docker": {"image": "i"}}}})
}

/// `base` with `patch` laid over it, objects merged key by key.
fn merged(mut base: Value, patch: Value) -> Value {
    match (&mut base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                let old = b.remove(&k).unwrap_or(Value::Null);
                b.insert(k, merged(old, v));
            }
            base
        }
        (_, patch) => patch,
    }
}

fn run(launch: &Launch) -> &RunSpec {
    launch.kind.docker_run().expect("a Docker launch")
}

fn env_has(launch: &Launch, name: &str, value: &str) -> bool {
    run(launch)
        .env
        .contains(&(name.to_owned(), value.to_owned()))
}

fn ports(begin: u64, end: u64) -> Value {
    json!({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": begin, "end": end}]}})
}

#[test]
fn every_field_is_used_refused_or_accepted_as_documented() {
    let bridge = |docker_fields: Value| json!({"container": {"docker": merged(json!({"network": "BRIDGE"}), docker_fields)}});
    let rows: Vec<(&str, Value, Value, Outcome)> = vec![
        // TaskInfo
        ("name", docker(), json!({"name": "web"}), Quiet),
        (
            "task_id",
            docker(),
            json!({"task_id": {"value": "web-1"}}),
            Used(|l| l.task_id == "web-1"),
        ),
        (
            "agent_id",
            docker(),
            json!({"agent_id": {"value": "S1"}}),
            Quiet,
        ),
        (
            "slave_id",
            docker(),
            json!({"slave_id": {"value": "S1"}}),
            Quiet,
        ),
        (
            "resources cpus",
            docker(),
            json!({"resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}]}),
            Used(|l| run(l).cpus == Some(0.5)),
        ),
        (
            "resources mem",
            docker(),
            json!({"resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": "64"}}]}),
            Used(|l| run(l).mem_mb == Some(64)),
        ),
        (
            "resources disk",
            docker(),
            json!({"resources": [{"name": "disk", "type": "SCALAR", "scalar": {"value": 64}}]}),
            Quiet,
        ),
        (
            "resources gpus",
            docker(),
            json!({"resources": [{"name": "gpus", "type": "SCALAR", "scalar": {"value": 1}}]}),
            Quiet,
        ),
        (
            "command",
            docker(),
            json!({}),
            Used(|l| matches!(l.kind, LaunchKind::DockerTask { .. })),
        ),
        (
            "executor",
            executor(),
            json!({}),
            Used(|l| matches!(l.kind, LaunchKind::DockerExecutor { .. })),
        ),
        (
            "container",
            plain(),
            json!({}),
            Used(|l| matches!(l.kind, LaunchKind::Process { .. })),
        ),
        (
            "health_check",
            docker(),
            json!({"health_check": {"type": "COMMAND", "command": {"value": "true"}}}),
            Warned("health_check is ignored"),
        ),
        (
            "check",
            docker(),
            json!({"check": {"type": "COMMAND"}}),
            Warned("check is ignored"),
        ),
        (
            "kill_policy.grace_period",
            docker(),
            json!({"kill_policy": {"grace_period": {"nanoseconds": "3000000000"}}}),
            Used(|l| l.grace == Duration::from_secs(3)),
        ),
        (
            "data, command task",
            docker(),
            json!({"data": "aGk="}),
            Quiet,
        ),
        (
            "data, executor task",
            executor(),
            json!({"data": "aGk="}),
            Warned("data is not handed to the executor"),
        ),
        (
            "labels",
            docker(),
            json!({"labels": {"labels": [{"key": "team", "value": "web"}]}}),
            Used(|l| run(l).labels.contains(&("team".into(), "web".into()))),
        ),
        (
            "discovery",
            docker(),
            json!({"discovery": {"visibility": "FRAMEWORK", "name": "web"}}),
            Quiet,
        ),
        (
            "max_completion_time",
            docker(),
            json!({"max_completion_time": {"nanoseconds": 5000000000u64}}),
            Used(|l| l.max_completion == Some(Duration::from_secs(5))),
        ),
        (
            "limits.cpus",
            docker(),
            json!({"resources": [{"name": "cpus", "scalar": {"value": 1}}], "limits": {"cpus": {"value": 2}}}),
            Used(|l| run(l).limits.cpus == Some(Limit::At(2.0))),
        ),
        (
            "limits.mem",
            docker(),
            json!({"resources": [{"name": "mem", "scalar": {"value": 64}}], "limits": {"mem": "Infinity"}}),
            Used(|l| run(l).limits.mem_mb == Some(Limit::Unlimited)),
        ),
        (
            "limits.disk",
            docker(),
            json!({"limits": {"disk": {"value": 10}}}),
            Refused("limits.disk is not supported"),
        ),
        (
            "limits, plain process",
            plain(),
            json!({"resources": [{"name": "cpus", "scalar": {"value": 1}}], "limits": {"cpus": {"value": 2}}}),
            Refused("limits apply to Docker containers only"),
        ),
        (
            "limits below the request",
            docker(),
            json!({"resources": [{"name": "mem", "scalar": {"value": 64}}], "limits": {"mem": {"value": 32}}}),
            Refused("is below the mem request"),
        ),
        (
            "limits without a request",
            docker(),
            json!({"limits": {"cpus": {"value": 2}}}),
            Refused("limits.cpus needs a cpus request"),
        ),
        // CommandInfo
        (
            "command.value",
            docker(),
            json!({"command": {"value": "echo hi"}}),
            Used(|l| run(l).command == crate::docker::argv::Command::Shell("echo hi".into())),
        ),
        (
            "command.shell, command.arguments",
            docker(),
            json!({"command": {"shell": "false", "arguments": ["a"]}}),
            Used(|l| {
                run(l).command
                    == crate::docker::argv::Command::Exec {
                        value: Some("x".into()),
                        arguments: vec!["a".into()],
                    }
            }),
        ),
        (
            "command.uris",
            docker(),
            json!({"command": {"uris": [{"value": "http://127.0.0.1/a"}]}}),
            Used(|l| l.uris.len() == 1),
        ),
        (
            "command.environment",
            docker(),
            json!({"command": {"environment": {"variables": [{"name": "A", "value": "1", "type": "VALUE"}]}}}),
            Used(|l| env_has(l, "A", "1")),
        ),
        (
            "command.environment type SECRET",
            docker(),
            json!({"command": {"environment": {"variables": [{"name": "A", "type": "SECRET"}]}}}),
            Refused("\"A\" is a SECRET: berth has no secret store"),
        ),
        (
            "command.environment secret",
            docker(),
            json!({"command": {"environment": {"variables": [{"name": "A", "secret": {"type": "VALUE", "value": {"data": "eA=="}}}]}}}),
            Refused("berth has no secret store"),
        ),
        (
            "command.user",
            docker(),
            json!({"command": {"user": "nobody"}}),
            Used(|l| l.user.as_deref() == Some("nobody")),
        ),
        (
            "command.user, plain process",
            plain(),
            json!({"command": {"user": "nobody"}}),
            Used(|l| l.user.as_deref() == Some("nobody")),
        ),
        // ContainerInfo
        (
            "container.type MESOS",
            plain(),
            json!({"container": {"type": "MESOS"}}),
            Refused("container type MESOS is not supported"),
        ),
        (
            "container.mesos.image",
            plain(),
            json!({"container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}}}}),
            Refused(r#"{"type": "DOCKER", "docker": {"image": "alpine"}}"#),
        ),
        (
            "container.mesos.image, enums as numbers",
            plain(),
            json!({"container": {"type": 2, "mesos": {"image": {"type": 2, "docker": {"name": "alpine"}}}}}),
            Refused(r#"{"type": "DOCKER", "docker": {"image": "alpine"}}"#),
        ),
        (
            "container.mesos, DOCKER container",
            docker(),
            json!({"container": {"mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}}}}),
            Quiet,
        ),
        (
            "container.volumes",
            docker(),
            json!({"container": {"volumes": [{"container_path": "/data", "host_path": "/srv", "mode": "RO"}]}}),
            Used(|l| run(l).binds.len() == 2 && run(l).binds[1].read_only),
        ),
        (
            "container.volumes relative container_path",
            docker(),
            json!({"container": {"volumes": [{"container_path": "data", "host_path": "/srv"}]}}),
            Used(|l| run(l).binds[1].container == std::path::Path::new("/mnt/mesos/sandbox/data")),
        ),
        (
            "container.volumes[].image",
            docker(),
            json!({"container": {"volumes": [{"container_path": "/d", "mode": "RW", "image": {"type": "DOCKER", "docker": {"name": "x"}}}]}}),
            Refused("an image volume"),
        ),
        (
            "container.volumes[].source",
            docker(),
            json!({"container": {"volumes": [{"container_path": "/d", "mode": "RW", "source": {"type": "DOCKER_VOLUME", "docker_volume": {"name": "v"}}}]}}),
            Refused("a volume source"),
        ),
        (
            "container.hostname",
            docker(),
            merged(
                bridge(json!({})),
                json!({"container": {"hostname": "web-1"}}),
            ),
            Used(|l| run(l).hostname.as_deref() == Some("web-1")),
        ),
        (
            "container.hostname, HOST network",
            docker(),
            json!({"container": {"hostname": "web-1"}}),
            Refused("container.hostname needs network BRIDGE, USER or NONE"),
        ),
        (
            "container.hostname, not a name",
            docker(),
            merged(bridge(json!({})), json!({"container": {"hostname": "a b"}})),
            Refused("is not a host name"),
        ),
        (
            "container.network_infos[].name",
            docker(),
            json!({"container": {"docker": {"network": "USER"}, "network_infos": [{"name": "tenant"}]}}),
            Used(|l| run(l).network == Network::User("tenant".into())),
        ),
        (
            "container.network_infos[] ip_addresses, groups, labels",
            docker(),
            json!({"container": {"network_infos": [{"name": "n", "ip_addresses": [{"protocol": "IPv4"}], "groups": ["g"], "labels": {"labels": []}}]}}),
            Quiet,
        ),
        (
            "container.network_infos[].port_mappings",
            docker(),
            json!({"container": {"network_infos": [{"name": "n", "port_mappings": [{"host_port": 1, "container_port": 2}]}]}}),
            Refused("they are CNI's"),
        ),
        (
            "two container.network_infos",
            docker(),
            json!({"container": {"network_infos": [{"name": "a"}, {"name": "b"}]}}),
            Refused("more than one container.network_infos"),
        ),
        (
            "container.linux_info.share_cgroups",
            docker(),
            json!({"container": {"linux_info": {"share_cgroups": true}}}),
            Quiet,
        ),
        (
            "container.volumes[].container_path empty",
            docker(),
            json!({"container": {"volumes": [{"container_path": "", "host_path": "/srv", "mode": "RO"}]}}),
            Refused("container_path is empty"),
        ),
        (
            "container.linuxInfo.shareCgroups (proto3 JSON names)",
            docker(),
            json!({"container": {"linuxInfo": {"shareCgroups": true}}}),
            Quiet,
        ),
        (
            "container.linux_info.capability_info",
            docker(),
            json!({"container": {"linux_info": {"capability_info": {"capabilities": []}}}}),
            Refused("container.linux_info.capability_info is not supported"),
        ),
        (
            "container.rlimit_info",
            docker(),
            json!({"container": {"rlimit_info": {"rlimits": []}}}),
            Refused("ulimit"),
        ),
        (
            "container.tty_info",
            docker(),
            json!({"container": {"tty_info": {}}}),
            Refused("container.tty_info is not supported"),
        ),
        // DockerInfo
        (
            "container.docker.image",
            docker(),
            json!({"container": {"docker": {"image": "busybox:1"}}}),
            Used(|l| run(l).image == "busybox:1"),
        ),
        (
            "container.docker.network",
            docker(),
            bridge(json!({})),
            Used(|l| run(l).network == Network::Bridge),
        ),
        (
            "container.docker.port_mappings",
            docker(),
            merged(
                bridge(json!({"port_mappings": [{"host_port": "31000", "container_port": 80}]})),
                json!({"resources": [ports(31000, 31009)]}),
            ),
            Used(|l| run(l).port_mappings.len() == 1),
        ),
        (
            "container.docker.port_mappings outside the ports",
            docker(),
            merged(
                bridge(json!({"port_mappings": [{"host_port": 8080, "container_port": 80}]})),
                json!({"resources": [ports(31000, 31009)]}),
            ),
            Refused("host_port 8080 is not in the task's ports resource (31000-31009)"),
        ),
        (
            "container.docker.port_mappings without ports",
            docker(),
            bridge(json!({"port_mappings": [{"host_port": 8080, "container_port": 80}]})),
            Refused("port mappings need a ports resource"),
        ),
        (
            "container.docker.privileged",
            docker(),
            json!({"container": {"docker": {"privileged": true}}}),
            Used(|l| run(l).privileged),
        ),
        (
            "container.docker.parameters",
            docker(),
            json!({"container": {"docker": {"parameters": [{"key": "add-host", "value": "db:127.0.0.1"}]}}}),
            Used(|l| run(l).parameters.len() == 1),
        ),
        (
            "container.docker.force_pull_image",
            docker(),
            json!({"container": {"docker": {"force_pull_image": "true"}}}),
            Used(|l| {
                matches!(
                    l.kind,
                    LaunchKind::DockerTask {
                        pull: crate::docker::PullPolicy::Always,
                        ..
                    }
                )
            }),
        ),
        (
            "container.docker.volume_driver",
            docker(),
            json!({"container": {"docker": {"volume_driver": "rexray"}}}),
            Refused("container.docker.volume_driver is not supported"),
        ),
        // Resource
        (
            "resources[].role, reservation(s), revocable, shared, provider_id, set",
            docker(),
            json!({"resources": [{"name": "cpus", "type": 0, "scalar": {"value": 1}, "role": "*", "reservation": {"principal": "p"}, "reservations": [{"type": "STATIC", "role": "r"}], "revocable": {}, "shared": {}, "provider_id": {"value": "p"}, "set": {"item": []}}]}),
            Quiet,
        ),
        (
            "resources[].allocation_info",
            docker(),
            json!({"resources": [{"name": "cpus", "scalar": {"value": 1}, "allocation_info": {"role": "web"}}]}),
            Used(|l| env_has(l, "MESOS_ALLOCATION_ROLE", "web")),
        ),
        (
            "resources[].disk.persistence",
            docker(),
            json!({"resources": [{"name": "disk", "scalar": {"value": 1}, "disk": {"persistence": {"id": "p"}, "volume": {"container_path": "d", "mode": "RW"}}}]}),
            Refused("berth has no persistent volumes"),
        ),
        (
            "resources[].disk.source",
            docker(),
            json!({"resources": [{"name": "disk", "scalar": {"value": 1}, "disk": {"source": {"type": "MOUNT"}}}]}),
            Quiet,
        ),
        // ExecutorInfo
        (
            "executor.type DEFAULT",
            executor(),
            json!({"executor": {"type": "DEFAULT"}}),
            Refused("executor.type DEFAULT is not supported"),
        ),
        (
            "executor.type CUSTOM",
            executor(),
            json!({"executor": {"type": "CUSTOM"}}),
            Quiet,
        ),
        (
            "executor.executor_id",
            executor(),
            json!({}),
            Used(|l| env_has(l, "MESOS_EXECUTOR_ID", "e")),
        ),
        (
            "executor.framework_id",
            executor(),
            json!({"executor": {"framework_id": {"value": "F1"}}}),
            Used(|l| env_has(l, "MESOS_FRAMEWORK_ID", "F1")),
        ),
        (
            "executor.command",
            executor(),
            json!({"executor": {"command": {"value": "run"}}}),
            Used(|l| run(l).command == crate::docker::argv::Command::Shell("run".into())),
        ),
        (
            "executor.resources",
            executor(),
            json!({"executor": {"resources": [{"name": "cpus", "scalar": {"value": 0.5}}]}}),
            Used(|l| run(l).cpus == Some(0.5)),
        ),
        (
            "executor.shutdown_grace_period",
            executor(),
            json!({"executor": {"shutdown_grace_period": {"nanoseconds": "4000000000"}}}),
            Used(|l| {
                l.grace == Duration::from_secs(4)
                    && env_has(l, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "4secs")
            }),
        ),
        (
            "executor.name, source, data, discovery, labels (command-less)",
            executor(),
            json!({"executor": {"name": "n", "source": "s", "discovery": {"visibility": "EXTERNAL"}, "labels": {"labels": []}}}),
            Quiet,
        ),
        (
            "executor.data",
            executor(),
            json!({"executor": {"data": "aGk="}}),
            Warned("data is not handed to the executor"),
        ),
    ];
    let mut failures = Vec::new();
    for (field, base, patch, outcome) in rows {
        let json = merged(base, patch).to_string();
        let parsed = parse(json.as_bytes()).unwrap_or_else(|e| panic!("{field}: {e}: {json}"));
        if !parsed.warnings.is_empty() {
            failures.push(format!("{field}: unknown fields {:?}", parsed.warnings));
            continue;
        }
        let admitted = admit(&parsed.task, &test_context(BOTH));
        let ok = match (&outcome, &admitted) {
            (Used(shows), Ok(launch)) => launch.warnings.is_empty() && shows(launch),
            (Quiet, Ok(launch)) => launch.warnings.is_empty(),
            (Warned(says), Ok(launch)) => launch.warnings.iter().any(|w| w.contains(says)),
            (Refused(says), Err(e)) => e.to_string().contains(says),
            _ => false,
        };
        if !ok {
            failures.push(format!("{field}: {admitted:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

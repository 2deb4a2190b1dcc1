//! What berth refuses in a new task: fields that ask for something berth does not do
//! (a Mesos container, a secret, a persistent volume...), and combinations Mesos refuses
//! too (a host port the task was not given, a limit below its request). Each refusal says
//! what to write instead. Pure. A recorded task is not checked again (see [`super::launch`]).

use super::info::{CommandInfo, ContainerInfo, Resource, TaskInfo};
use super::launch::{scalar, TaskError};

/// Refuses `task` if it asks for what berth does not do.
pub fn check(task: &TaskInfo) -> Result<(), TaskError> {
    let executor = task.executor.as_ref();
    if let Some(executor) = executor {
        if executor.kind.as_deref() == Some("DEFAULT") {
            return Err(unsupported(
                "executor.type DEFAULT",
                "Mesos's default executor runs task groups, which berth does not have; give a CUSTOM executor with a DOCKER container",
            ));
        }
    }
    let commands = task
        .command
        .iter()
        .chain(executor.and_then(|e| e.command.as_ref()));
    for command in commands {
        variables(command)?;
    }
    let resources: Vec<Resource> = executor
        .iter()
        .flat_map(|e| &e.resources)
        .chain(&task.resources)
        .cloned()
        .collect();
    for (at, resource) in resources.iter().enumerate() {
        let persistent = resource
            .disk
            .as_ref()
            .is_some_and(|d| d.persistence.is_some());
        if persistent {
            return Err(TaskError::Unsupported {
                field: format!("resources[{at}].disk.persistence ({})", resource.name),
                why:
                    "berth has no persistent volumes; mount a host directory with container.volumes",
            });
        }
    }
    let containers = task
        .container
        .iter()
        .chain(executor.and_then(|e| e.container.as_ref()));
    for container in containers {
        container_fields(container, &resources)?;
    }
    let plain = executor.is_none() && task.container.is_none();
    limits(task, &resources, plain)
}

fn unsupported(field: &str, why: &'static str) -> TaskError {
    TaskError::Unsupported {
        field: field.to_owned(),
        why,
    }
}

fn variables(command: &CommandInfo) -> Result<(), TaskError> {
    for variable in command.variables() {
        if variable.kind.as_deref() == Some("SECRET") || variable.secret.is_some() {
            return Err(TaskError::SecretVariable(variable.name.clone()));
        }
    }
    Ok(())
}

fn container_fields(container: &ContainerInfo, resources: &[Resource]) -> Result<(), TaskError> {
    if container.kind.as_deref() == Some("MESOS") {
        let image = container
            .mesos
            .as_ref()
            .and_then(|m| m.image.as_ref())
            .and_then(|i| i.docker.as_ref())
            .map(|d| d.name.clone());
        return Err(TaskError::MesosContainer { image });
    }
    let linux = container.linux_info.iter().flat_map(|l| l.keys());
    // share_cgroups is about nesting in the Mesos containerizer's cgroups: nothing here.
    // Under either name: proto3 JSON writes shareCgroups.
    if let Some(key) = linux
        .into_iter()
        .find(|k| !matches!(k.as_str(), "share_cgroups" | "shareCgroups"))
    {
        return Err(TaskError::Unsupported {
            field: format!("container.linux_info.{key}"),
            why: "berth passes no Linux settings of the Mesos containerizer; use docker.parameters (cap-add, cap-drop, security-opt, pid, ipc...)",
        });
    }
    if container.rlimit_info.is_some() {
        return Err(unsupported(
            "container.rlimit_info",
            "use docker.parameters with key ulimit, such as {\"key\": \"ulimit\", \"value\": \"nofile=1024:1024\"}",
        ));
    }
    if container.tty_info.is_some() {
        return Err(unsupported(
            "container.tty_info",
            "berth carries a task's output to its sandbox, which a terminal would merge into one stream",
        ));
    }
    if container.network_infos.len() > 1 {
        return Err(unsupported(
            "more than one container.network_infos",
            "a Docker container joins one network at its start",
        ));
    }
    if container
        .network_infos
        .iter()
        .any(|n| n.port_mappings.is_some())
    {
        return Err(unsupported(
            "container.network_infos[].port_mappings",
            "they are CNI's; give Docker's as container.docker.port_mappings",
        ));
    }
    for volume in &container.volumes {
        let reason = if volume.container_path.is_empty() {
            // It would be taken as relative, inside the container's sandbox: the volume
            // would be mounted over the sandbox itself, hiding it from the task.
            Some("container_path is empty: give the path the volume is mounted at in the container (a relative one is inside the container's sandbox)")
        } else if volume.image.is_some() {
            Some("an image volume is the Mesos containerizer's; mount a host path, or build the files into the image")
        } else if volume.source.is_some() {
            Some("a volume source (Docker volume, secret, CSI...) is not supported; mount a host path, or a Docker volume with docker.parameters {\"key\": \"volume\", \"value\": \"NAME:/path\"}")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(TaskError::Volume {
                container_path: volume.container_path.clone(),
                reason,
            });
        }
    }
    let Some(docker) = &container.docker else {
        return Ok(());
    };
    if docker.volume_driver.is_some() {
        return Err(unsupported(
            "container.docker.volume_driver",
            "it is deprecated since Mesos 1.0; use docker.parameters {\"key\": \"volume-driver\", \"value\": \"DRIVER\"} with a volume parameter",
        ));
    }
    let network = docker.network.as_deref().unwrap_or("HOST");
    if let Some(hostname) = &container.hostname {
        let valid = !hostname.is_empty()
            && hostname.len() <= 64
            && hostname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            return Err(TaskError::Hostname(hostname.clone()));
        }
        if network == "HOST" {
            return Err(TaskError::HostnameWithHostNetwork);
        }
    }
    // Mappings with other networks are refused when the task is planned.
    if matches!(network, "BRIDGE" | "USER") {
        ports(&docker.port_mappings, resources)?;
    }
    Ok(())
}

/// As Mesos's Docker containerizer: each host port must be one the task was given.
fn ports(mappings: &[super::info::PortMapping], resources: &[Resource]) -> Result<(), TaskError> {
    let ranges: Vec<(u64, u64)> = resources
        .iter()
        .filter(|r| r.name == "ports")
        .flat_map(|r| r.ranges.iter().flat_map(|rs| &rs.range))
        .map(|r| (r.begin, r.end))
        .collect();
    for mapping in mappings {
        if !(1..=65535).contains(&mapping.host_port) {
            return Err(TaskError::Port(mapping.host_port));
        }
        let port = u64::from(mapping.host_port);
        if ranges.is_empty() {
            return Err(TaskError::PortsWithoutResource(mapping.host_port));
        }
        if !ranges.iter().any(|&(b, e)| b <= port && port <= e) {
            let ranges = ranges
                .iter()
                .map(|&(b, e)| {
                    if b == e {
                        b.to_string()
                    } else {
                        format!("{b}-{e}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(TaskError::PortNotInResources {
                port: mapping.host_port,
                ranges,
            });
        }
    }
    Ok(())
}

/// As Mesos's master validates them: cpus and mem only, each with a request no larger.
fn limits(task: &TaskInfo, resources: &[Resource], plain: bool) -> Result<(), TaskError> {
    if task.limits.is_empty() {
        return Ok(());
    }
    if plain {
        return Err(TaskError::PlainProcessLimits);
    }
    for (name, &limit) in &task.limits {
        if name != "cpus" && name != "mem" {
            return Err(TaskError::LimitName(name.clone()));
        }
        if limit.is_nan() || limit <= 0.0 {
            return Err(TaskError::LimitAmount(name.clone(), limit));
        }
        let request =
            scalar(resources, name)?.ok_or_else(|| TaskError::LimitWithoutRequest(name.clone()))?;
        if limit < request {
            return Err(TaskError::LimitBelowRequest {
                name: name.clone(),
                limit,
                request,
            });
        }
    }
    Ok(())
}

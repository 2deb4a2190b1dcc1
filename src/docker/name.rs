//! Container names: `mesos-<agent id>.<container uuid>`, and `<that>.executor` for an
//! executor's own container.
//!
//! Names are how berth finds its containers again after a restart, so parsing is strict:
//! a name whose container part is not a UUID is not berth's (Mesos learned this when an
//! agent killed a container called `mesos-slave`).

use std::fmt;

use uuid::Uuid;

/// Every container berth creates starts with this; `docker ps` is filtered on it.
pub const PREFIX: &str = "mesos-";

/// The separator between the agent id, the container id and the executor suffix.
pub const SEPARATOR: char = '.';

/// Suffix of the container that runs a task's executor in `--docker_mesos_image` mode.
pub const EXECUTOR_SUFFIX: &str = "executor";

/// A parsed berth container name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerName {
    /// The agent that created the container.
    pub agent_id: String,
    /// The container's id, unique per launch.
    pub container_id: Uuid,
    /// True for `<task container name>.executor`.
    pub executor: bool,
}

/// Why a name is not one of berth's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name lacks the `mesos-` prefix.
    #[error("name {0:?} does not start with {PREFIX:?}")]
    NoPrefix(String),
    /// The name has the prefix but not the `<agent id>.<uuid>[.executor]` shape.
    #[error("name {0:?} is not of the form mesos-<agent id>.<container uuid>[.executor]")]
    Malformed(String),
}

impl ContainerName {
    /// The name of a task's container.
    pub fn task(agent_id: &str, container_id: Uuid) -> ContainerName {
        ContainerName {
            agent_id: agent_id.to_owned(),
            container_id,
            executor: false,
        }
    }

    /// The name of a task's executor's own container (`--docker_mesos_image`).
    pub fn executor(agent_id: &str, container_id: Uuid) -> ContainerName {
        ContainerName {
            executor: true,
            ..ContainerName::task(agent_id, container_id)
        }
    }

    /// Parses a name as Docker prints it (`docker inspect` adds a leading `/`).
    pub fn parse(name: &str) -> Result<ContainerName, NameError> {
        let bare = name.strip_prefix('/').unwrap_or(name);
        let rest = bare
            .strip_prefix(PREFIX)
            .ok_or_else(|| NameError::NoPrefix(name.to_owned()))?;
        let malformed = || NameError::Malformed(name.to_owned());
        let mut parts = rest.split(SEPARATOR);
        let agent_id = parts
            .next()
            .filter(|a| !a.is_empty())
            .ok_or_else(malformed)?;
        let container = parts.next().ok_or_else(malformed)?;
        // Only the hyphenated form berth writes; `Uuid::parse_str` would also take braces
        // and URNs, which would make two names map to one container.
        let container_id = Uuid::try_parse(container)
            .ok()
            .filter(|u| u.hyphenated().to_string() == container)
            .ok_or_else(malformed)?;
        let executor = match parts.next() {
            None => false,
            Some(EXECUTOR_SUFFIX) => true,
            Some(_) => return Err(malformed()),
        };
        if parts.next().is_some() {
            return Err(malformed());
        }
        Ok(ContainerName {
            agent_id: agent_id.to_owned(),
            container_id,
            executor,
        })
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}{SEPARATOR}{}",
            self.agent_id,
            self.container_id.hyphenated()
        )?;
        if self.executor {
            write!(f, "{SEPARATOR}{EXECUTOR_SUFFIX}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "5f0c4a8e-3b1d-4d59-9a7e-2f4f9d1c0b11";
    const CONTAINER: &str = "0b8f2a56-7c3e-4f1a-8d2b-6e9c1a4f3d20";

    #[test]
    fn formats_and_parses_back() {
        let id = Uuid::parse_str(CONTAINER).expect("valid in test");
        let task = ContainerName::task(AGENT, id);
        assert_eq!(task.to_string(), format!("mesos-{AGENT}.{CONTAINER}"));
        assert_eq!(ContainerName::parse(&task.to_string()), Ok(task.clone()));
        let executor = ContainerName {
            executor: true,
            ..task
        };
        assert_eq!(
            executor.to_string(),
            format!("mesos-{AGENT}.{CONTAINER}.executor")
        );
        assert_eq!(ContainerName::parse(&executor.to_string()), Ok(executor));
    }

    #[test]
    fn table_of_names() {
        let ok = |agent: &str, executor| {
            Ok(ContainerName {
                agent_id: agent.to_owned(),
                container_id: Uuid::parse_str(CONTAINER).expect("valid in test"),
                executor,
            })
        };
        let cases: Vec<(String, Result<ContainerName, ()>)> = vec![
            (format!("mesos-{AGENT}.{CONTAINER}"), ok(AGENT, false)),
            (format!("/mesos-{AGENT}.{CONTAINER}"), ok(AGENT, false)),
            (
                format!("mesos-{AGENT}.{CONTAINER}.executor"),
                ok(AGENT, true),
            ),
            (format!("mesos-slave1.{CONTAINER}"), ok("slave1", false)),
            ("mesos-slave".into(), Err(())),
            (format!("mesos-.{CONTAINER}"), Err(())),
            (format!("mesos-{AGENT}.not-a-uuid"), Err(())),
            (
                format!("mesos-{AGENT}.{}", CONTAINER.to_uppercase()),
                Err(()),
            ),
            (
                format!("mesos-{AGENT}.{}", CONTAINER.replace('-', "")),
                Err(()),
            ),
            (format!("mesos-{AGENT}.{{{CONTAINER}}}"), Err(())),
            (format!("mesos-{AGENT}.{CONTAINER}.sidecar"), Err(())),
            (format!("mesos-{AGENT}.{CONTAINER}.executor.x"), Err(())),
            (format!("xmesos-{AGENT}.{CONTAINER}"), Err(())),
            (format!("{AGENT}.{CONTAINER}"), Err(())),
            ("".into(), Err(())),
        ];
        for (name, want) in cases {
            let got = ContainerName::parse(&name).map_err(|_| ());
            assert_eq!(got, want, "parsing {name:?}");
        }
    }
}

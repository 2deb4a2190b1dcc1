//! The CLI's client commands: `launch`, `kill`, `wait`, `ps`, `logs`, `health`. Each talks to the
//! running agent through its API; what to print is decided by pure functions here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::api::client::{Client, ClientError};
use crate::api::wire::{
    DockerStatus, Health, HealthStatus, KillBody, StateAnswer, StateRequest, TaskState,
};
use crate::containerizer::launch::Launched;
use crate::containerizer::TaskView;

/// Requests answer at once; only `wait` holds the connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// `wait` gives up after this long (the agent answers as soon as the task ends).
const WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// `berth launch` without `--file`: the flags that make a TaskInfo.
#[derive(Debug, Clone, Default)]
pub struct LaunchFlags {
    /// `--image`.
    pub image: String,
    /// `--command`.
    pub command: Option<String>,
    /// `--shell`; when not given, true with a command (Mesos's default) and false without
    /// (the image's own command runs).
    pub shell: Option<bool>,
    /// `--arg`, repeated.
    pub args: Vec<String>,
    /// `--uri`, repeated.
    pub uris: Vec<String>,
    /// `--env K=V`, repeated.
    pub env: Vec<String>,
    /// `--force_pull`.
    pub force_pull: bool,
    /// `--network`.
    pub network: Option<String>,
    /// `--port HOST:CONTAINER`, repeated.
    pub ports: Vec<String>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--mem` (MiB).
    pub mem: Option<f64>,
    /// `--grace`.
    pub grace: Option<Duration>,
    /// `--executor`: run the image as the task's executor.
    pub executor: bool,
    /// The task id (`--task_id`, default: generated).
    pub task_id: Option<String>,
}

/// Why the flags do not make a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// `--env` without `=`.
    #[error("--env {0:?} must be NAME=VALUE")]
    Env(String),
    /// `--port` not `HOST:CONTAINER`.
    #[error("--port {0:?} must be HOST:CONTAINER, such as 8080:80")]
    Port(String),
    /// `--shell=true` with nothing to run in the shell.
    #[error("--shell=true needs --command; leave out --shell to run the image's own command")]
    ShellWithoutCommand,
}

/// Builds the TaskInfo JSON the flags describe. Pure.
pub fn task_from_flags(flags: &LaunchFlags, generated_id: &str) -> Result<Value, FlagError> {
    // Mesos runs the image's default command when the value is unset and shell is false,
    // as `docker run IMAGE` does; shell=true would have nothing to run.
    let shell = flags.shell.unwrap_or(flags.command.is_some());
    if shell && flags.command.is_none() {
        return Err(FlagError::ShellWithoutCommand);
    }
    let variables = flags
        .env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| json!({"name": k, "value": v}))
                .ok_or_else(|| FlagError::Env(kv.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let port_mappings = flags
        .ports
        .iter()
        .map(|p| {
            let (h, c) = p
                .split_once(':')
                .ok_or_else(|| FlagError::Port(p.clone()))?;
            let h: u32 = h.parse().map_err(|_| FlagError::Port(p.clone()))?;
            let c: u32 = c.parse().map_err(|_| FlagError::Port(p.clone()))?;
            Ok(json!({"host_port": h, "container_port": c, "protocol": "tcp"}))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let network = match flags
        .network
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("host") => json!({"network": "HOST"}),
        Some("bridge") => json!({"network": "BRIDGE"}),
        Some("none") => json!({"network": "NONE"}),
        Some(_) => json!({"network": "USER"}),
    };
    let mut docker = json!({
        "image": flags.image,
        "force_pull_image": flags.force_pull,
        "port_mappings": port_mappings,
    });
    if let (Value::Object(d), Value::Object(n)) = (&mut docker, network) {
        d.extend(n);
    }
    let mut container = json!({"type": "DOCKER", "docker": docker});
    if let Some(name) = flags
        .network
        .as_deref()
        .filter(|n| !["host", "bridge", "none"].contains(&n.to_ascii_lowercase().as_str()))
    {
        container["network_infos"] = json!([{"name": name}]);
    }
    let mut command = json!({
        "shell": shell,
        "arguments": flags.args,
        "uris": flags.uris.iter().map(|u| json!({"value": u})).collect::<Vec<_>>(),
        "environment": {"variables": variables},
    });
    if let Some(value) = &flags.command {
        command["value"] = json!(value);
    }
    let mut resources = Vec::new();
    if let Some(cpus) = flags.cpus {
        resources.push(json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}));
    }
    if let Some(mem) = flags.mem {
        resources.push(json!({"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}));
    }
    let task_id = flags
        .task_id
        .clone()
        .unwrap_or_else(|| generated_id.to_owned());
    let mut task = json!({
        "name": task_id,
        "task_id": {"value": task_id},
        "resources": resources,
    });
    if flags.executor {
        task["executor"] = json!({
            "executor_id": {"value": task_id},
            "command": command,
            "container": container,
        });
    } else {
        task["command"] = command;
        task["container"] = container;
    }
    if let Some(grace) = flags.grace {
        task["kill_policy"] = json!({"grace_period": {"nanoseconds": grace.as_nanos() as i64}});
    }
    Ok(task)
}

/// The socket the CLI talks to.
pub fn socket(work_dir: &Path, api_socket: Option<&Path>) -> PathBuf {
    api_socket.map_or_else(|| work_dir.join("berth.sock"), Path::to_owned)
}

/// `berth launch`: sends the task, prints warnings on stderr and the new id on stdout.
pub async fn launch(
    client: &Client,
    task_json: Vec<u8>,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let launched: Launched = client
        .post_raw("/v1/tasks", task_json, REQUEST_TIMEOUT)
        .await?;
    for warning in &launched.warnings {
        eprintln!("berth: warning: {warning}");
    }
    let _ = writeln!(out, "{}", launched.container_id);
    Ok(())
}

/// `berth kill`.
pub async fn kill(
    client: &Client,
    id: &str,
    grace: Option<String>,
) -> Result<TaskView, ClientError> {
    client
        .post(
            &format!("/v1/containers/{id}/kill"),
            &KillBody { grace },
            REQUEST_TIMEOUT,
        )
        .await
}

/// `berth wait`: the final view.
pub async fn wait(client: &Client, id: &str) -> Result<TaskView, ClientError> {
    client
        .get(&format!("/v1/containers/{id}/wait"), WAIT_TIMEOUT)
        .await
}

/// One container.
pub async fn get(client: &Client, id: &str) -> Result<TaskView, ClientError> {
    client
        .get(&format!("/v1/containers/{id}"), REQUEST_TIMEOUT)
        .await
}

/// `berth ps`.
pub async fn ps(client: &Client) -> Result<Vec<TaskView>, ClientError> {
    client.get("/v1/containers", REQUEST_TIMEOUT).await
}

/// `berth state` while the agent runs: the agent renders the view from its store.
pub async fn state(client: &Client, request: &StateRequest) -> Result<StateAnswer, ClientError> {
    client.post("/v1/state", request, REQUEST_TIMEOUT).await
}

/// `berth health`: asked once; it is the command that says whether to wait.
pub async fn health(client: &Client) -> Result<Health, ClientError> {
    client.get("/v1/health", REQUEST_TIMEOUT).await
}

/// `berth health` as one line: the status and the agent id, then what is wrong with
/// Docker when something is (`docker=unavailable since=TIME: ERROR`). Pure.
pub fn health_line(health: &Health) -> String {
    let status = match health.status {
        HealthStatus::Ok => "ok",
        HealthStatus::Recovering => "recovering",
    };
    let mut line = format!("{status} {}", health.agent_id);
    if health.docker.status == DockerStatus::Unavailable {
        line.push_str(" docker=unavailable");
        if let Some(since) = health.docker.since_ms {
            line.push_str(&format!(" since={}", berth_state::inspect::time(since)));
        }
        if let Some(error) = &health.docker.error {
            line.push_str(&format!(": {error}"));
        }
    }
    line
}

/// `berth health`'s exit status when the agent is still starting or recovering.
pub const HEALTH_NOT_READY: u8 = 1;
/// `berth health`'s exit status when the agent is ready but Docker does not answer: launches
/// and kills are accepted and wait for it.
pub const HEALTH_DOCKER_UNAVAILABLE: u8 = 3;

/// `berth health`'s exit status: 0 when the agent is ready and Docker answers (or the agent
/// does not say), [`HEALTH_NOT_READY`] while it recovers, whatever Docker does, and
/// [`HEALTH_DOCKER_UNAVAILABLE`] when it is ready but Docker does not answer. Pure.
pub fn health_exit(health: &Health) -> u8 {
    match (health.status, health.docker.status) {
        (HealthStatus::Recovering, _) => HEALTH_NOT_READY,
        (HealthStatus::Ok, DockerStatus::Unavailable) => HEALTH_DOCKER_UNAVAILABLE,
        (HealthStatus::Ok, DockerStatus::Available | DockerStatus::Unknown) => 0,
    }
}

/// A final status as one line. Pure.
pub fn status_line(view: &TaskView) -> String {
    let state = format!("{:?}", view.state).to_uppercase();
    let mut line = format!("{} {state}", view.container_id);
    if let Some(code) = view.exit_code {
        line.push_str(&format!(" exit={code}"));
    }
    if let Some(reason) = &view.reason {
        line.push_str(&format!(" reason={reason}"));
    }
    if let Some(message) = &view.message {
        line.push_str(&format!(": {message}"));
    }
    line
}

/// `berth ps` as a table; the message last, since it can be long. Pure.
pub fn ps_table(views: &[TaskView]) -> String {
    let mut out = String::from(
        "CONTAINER                             TASK                 STATE     REASON                     MESSAGE\n",
    );
    for v in views {
        let row = format!(
            "{:<37} {:<20} {:<9} {:<26} {}",
            // A Uuid's Display ignores the width.
            v.container_id.to_string(),
            v.task_id,
            format!("{:?}", v.state).to_uppercase(),
            v.reason.as_deref().unwrap_or(""),
            v.message.as_deref().unwrap_or("")
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

/// Whether `wait` exits 0.
pub fn finished(view: &TaskView) -> bool {
    view.state == TaskState::Finished
}

/// `berth logs`: prints the sandbox file, and with `follow` keeps printing what is
/// appended until the task has ended and the file is drained.
pub async fn logs(
    client: &Client,
    id: &str,
    stderr: bool,
    follow: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    use notify::Watcher;
    let view = get(client, id).await?;
    let path = view.sandbox.join(if stderr { "stderr" } else { "stdout" });
    let mut offset = 0u64;
    let copy = |offset: &mut u64, out: &mut dyn Write| -> std::io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&path) else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(*offset))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        *offset += buf.len() as u64;
        out.write_all(&buf)?;
        out.flush()
    };
    let io = |e: std::io::Error| ClientError::Body(e.to_string());
    copy(&mut offset, out).map_err(io)?;
    if !follow {
        return Ok(());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Watch the directory: the file may not exist yet, and a watch on a file follows its
    // old inode if it is replaced.
    let mut watcher = notify::recommended_watcher(move |_| {
        let _ = tx.send(());
    })
    .map_err(|e| ClientError::Body(e.to_string()))?;
    watcher
        .watch(&view.sandbox, notify::RecursiveMode::NonRecursive)
        .map_err(|e| ClientError::Body(e.to_string()))?;
    loop {
        tokio::select! {
            _ = rx.recv() => copy(&mut offset, out).map_err(io)?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let ended = get(client, id).await.map(|v| v.state.is_terminal()).unwrap_or(true);
                copy(&mut offset, out).map_err(io)?;
                if ended {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_mesos_json() {
        let flags = LaunchFlags {
            image: "busybox".into(),
            command: Some("echo hi".into()),
            shell: Some(true),
            env: vec!["A=1".into(), "B=x=y".into()],
            network: Some("bridge".into()),
            ports: vec!["8080:80".into()],
            cpus: Some(0.5),
            mem: Some(64.0),
            grace: Some(Duration::from_secs(3)),
            ..LaunchFlags::default()
        };
        let task = task_from_flags(&flags, "gen-1").expect("valid");
        assert_eq!(task["task_id"]["value"], "gen-1");
        assert_eq!(task["command"]["value"], "echo hi");
        assert_eq!(
            task["command"]["environment"]["variables"][1]["value"],
            "x=y"
        );
        assert_eq!(task["container"]["docker"]["network"], "BRIDGE");
        assert_eq!(
            task["container"]["docker"]["port_mappings"][0]["host_port"],
            8080
        );
        assert_eq!(
            task["kill_policy"]["grace_period"]["nanoseconds"],
            3_000_000_000i64
        );
        let parsed =
            crate::task::parse(task.to_string().as_bytes()).expect("berth reads what it builds");
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);

        let exec = task_from_flags(
            &LaunchFlags {
                image: "i".into(),
                executor: true,
                network: Some("tenant".into()),
                ..LaunchFlags::default()
            },
            "x",
        )
        .expect("valid");
        assert!(exec.get("command").is_none());
        assert_eq!(
            exec["executor"]["container"]["network_infos"][0]["name"],
            "tenant"
        );

        assert_eq!(
            task_from_flags(
                &LaunchFlags {
                    env: vec!["NOEQ".into()],
                    ..LaunchFlags::default()
                },
                "x"
            ),
            Err(FlagError::Env("NOEQ".into()))
        );
        assert_eq!(
            task_from_flags(
                &LaunchFlags {
                    ports: vec!["80".into()],
                    ..LaunchFlags::default()
                },
                "x"
            ),
            Err(FlagError::Port("80".into()))
        );
    }

    #[test]
    fn without_a_command_the_image_runs_its_own() {
        // (--command, --shell) -> shell, or the refusal.
        type Case = (Option<&'static str>, Option<bool>, Result<bool, FlagError>);
        let cases: [Case; 6] = [
            // `docker run IMAGE`: Mesos's default command needs shell=false and no value.
            (None, None, Ok(false)),
            (None, Some(false), Ok(false)),
            (None, Some(true), Err(FlagError::ShellWithoutCommand)),
            // With a command, Mesos's default stands: a shell command line.
            (Some("echo hi"), None, Ok(true)),
            (Some("echo hi"), Some(true), Ok(true)),
            (Some("echo"), Some(false), Ok(false)),
        ];
        for (command, shell, want) in cases {
            let flags = LaunchFlags {
                image: "berth-test/cmd:latest".into(),
                command: command.map(str::to_owned),
                shell,
                ..LaunchFlags::default()
            };
            let got = task_from_flags(&flags, "x");
            let task = match (got, want) {
                (Ok(task), Ok(shell)) => {
                    assert_eq!(task["command"]["shell"], shell, "{command:?} {shell:?}");
                    task
                }
                (got, want) => {
                    assert_eq!(got.err(), want.err(), "{command:?} {shell:?}");
                    continue;
                }
            };
            assert_eq!(
                task["command"].get("value").and_then(Value::as_str),
                command,
                "{command:?} {shell:?}"
            );
            let parsed = crate::task::parse(task.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{command:?} {shell:?}: {e}"));
            assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        }
    }

    #[test]
    fn health_prints_the_status_the_agent_id_and_an_unavailable_docker() {
        use crate::api::wire::DockerHealth;
        let id = uuid::Uuid::nil();
        let docker = |status, since_ms, error: Option<&str>| DockerHealth {
            status,
            since_ms,
            error: error.map(str::to_owned),
        };
        let available = docker(DockerStatus::Available, Some(1), None);
        let away = docker(
            DockerStatus::Unavailable,
            Some(1_767_225_600_000),
            Some("Cannot connect to the Docker daemon"),
        );
        let cases = [
            (
                HealthStatus::Ok,
                available.clone(),
                "ok 00000000-0000-0000-0000-000000000000",
                0,
            ),
            (
                HealthStatus::Ok,
                DockerHealth::default(),
                "ok 00000000-0000-0000-0000-000000000000",
                0,
            ),
            (
                HealthStatus::Ok,
                away.clone(),
                "ok 00000000-0000-0000-0000-000000000000 docker=unavailable since=2026-01-01T00:00:00Z: Cannot connect to the Docker daemon",
                HEALTH_DOCKER_UNAVAILABLE,
            ),
            (
                HealthStatus::Recovering,
                available,
                "recovering 00000000-0000-0000-0000-000000000000",
                HEALTH_NOT_READY,
            ),
            (
                HealthStatus::Recovering,
                away,
                "recovering 00000000-0000-0000-0000-000000000000 docker=unavailable since=2026-01-01T00:00:00Z: Cannot connect to the Docker daemon",
                HEALTH_NOT_READY,
            ),
        ];
        for (status, docker, line, exit) in cases {
            let health = Health {
                status,
                agent_id: id,
                docker,
            };
            assert_eq!(health_line(&health), line);
            assert_eq!(health_exit(&health), exit, "{line}");
        }
    }

    #[test]
    fn ps_shows_each_task_with_its_message_last() {
        let view = |task: &str, state, reason: Option<&str>, message: Option<&str>| TaskView {
            container_id: uuid::Uuid::nil(),
            task_id: task.into(),
            state,
            reason: reason.map(str::to_owned),
            message: message.map(str::to_owned),
            exit_code: None,
            docker_name: None,
            sandbox: PathBuf::from("/s"),
            pid: None,
            accepted_at_ms: 0,
        };
        let table = ps_table(&[
            view("web", TaskState::Staging, None, None),
            view(
                "db",
                TaskState::Killing,
                Some("REASON_TASK_KILLED"),
                Some("killed on request; Docker is unavailable"),
            ),
        ]);
        let want = "\
CONTAINER                             TASK                 STATE     REASON                     MESSAGE
00000000-0000-0000-0000-000000000000  web                  STAGING
00000000-0000-0000-0000-000000000000  db                   KILLING   REASON_TASK_KILLED         killed on request; Docker is unavailable
";
        assert_eq!(table, want);
    }
}

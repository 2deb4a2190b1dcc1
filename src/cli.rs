//! The CLI's client commands: `launch`, `kill`, `wait`, `ps`, `inspect`, `health`. Each
//! talks to the running agent through its API; what to print, and with what exit status,
//! is decided by pure functions here. `berth logs` is [`crate::logs`].

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

/// `berth launch` without `--file`: the flags that make a TaskInfo. Their doc comments
/// are `berth launch --help`'s.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LaunchFlags {
    /// The Docker image to run.
    // None only with `berth launch --file`, which reads none of these flags.
    #[arg(long, required_unless_present = "file")]
    pub image: Option<String>,
    /// The command: a shell command line run with /bin/sh -c (Mesos's default), or with
    /// --shell=false the first word after the image. Without it the image's own
    /// ENTRYPOINT and CMD run, as `docker run IMAGE` would.
    #[arg(long)]
    pub command: Option<String>,
    /// Run --command with /bin/sh -c (default: true with --command, false without).
    #[arg(long, action = clap::ArgAction::Set)]
    pub shell: Option<bool>,
    /// An argument after --command, with --shell=false (repeatable); without --command,
    /// the arguments replace the image's CMD.
    #[arg(long = "arg")]
    pub args: Vec<String>,
    /// A URI to fetch into the sandbox (repeatable).
    #[arg(long = "uri")]
    pub uris: Vec<String>,
    /// An environment variable NAME=VALUE (repeatable).
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Pull the image even if present.
    #[arg(long = "force_pull")]
    pub force_pull: bool,
    /// host, bridge, none, or a user network's name.
    #[arg(long)]
    pub network: Option<String>,
    /// A port mapping HOST:CONTAINER (repeatable; bridge or user networks).
    #[arg(long = "port")]
    pub ports: Vec<String>,
    /// CPUs (become --cpu-shares).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory in MiB (becomes --memory).
    #[arg(long)]
    pub mem: Option<f64>,
    /// Grace between SIGTERM and SIGKILL when killed.
    #[arg(long, value_parser = crate::duration::parse)]
    pub grace: Option<Duration>,
    /// Run the image as the task's executor (no berth executor).
    #[arg(long)]
    pub executor: bool,
    /// The task id (default: generated).
    #[arg(long = "task_id")]
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
    let ports = flags
        .ports
        .iter()
        .map(|p| {
            let (h, c) = p
                .split_once(':')
                .ok_or_else(|| FlagError::Port(p.clone()))?;
            let h: u32 = h.parse().map_err(|_| FlagError::Port(p.clone()))?;
            let c: u32 = c.parse().map_err(|_| FlagError::Port(p.clone()))?;
            Ok((h, c))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let port_mappings: Vec<Value> = ports
        .iter()
        .map(|(h, c)| json!({"host_port": h, "container_port": c, "protocol": "tcp"}))
        .collect();
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
        "image": flags.image.as_deref().unwrap_or_default(),
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
    // As a Mesos offer gives them: a mapped host port is one of the task's ports.
    if !ports.is_empty() {
        let ranges: Vec<Value> = ports
            .iter()
            .map(|(h, _)| json!({"begin": h, "end": h}))
            .collect();
        resources.push(json!({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}}));
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

/// `berth launch`: sends the task; the new container's id and the agent's warnings.
pub async fn launch(client: &Client, task_json: Vec<u8>) -> Result<Launched, ClientError> {
    client
        .post_raw("/v1/tasks", task_json, REQUEST_TIMEOUT)
        .await
}

/// `berth inspect`: the task, its Docker container and its records, as the agent has them.
pub async fn inspect(client: &Client, id: &str) -> Result<Value, ClientError> {
    client
        .get(&format!("/v1/containers/{id}/inspect"), REQUEST_TIMEOUT)
        .await
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
    let state = view.state.name();
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

/// `berth ps` as a table, one row a container, the message last since it can be long:
/// CONTAINER, TASK, IMAGE, STATE, AGE (since it was accepted, at `now_ms`), EXIT, REASON,
/// MESSAGE. Pure.
pub fn ps_table(views: &[TaskView], now_ms: u64) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.container_id.to_string(),
                v.task_id.clone(),
                v.image.clone().unwrap_or_else(|| "-".to_owned()),
                state_name(v.state),
                age(now_ms.saturating_sub(v.accepted_at_ms)),
                v.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                v.reason.clone().unwrap_or_default(),
                v.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    berth_state::table::render(
        &[
            "CONTAINER",
            "TASK",
            "IMAGE",
            "STATE",
            "AGE",
            "EXIT",
            "REASON",
            "MESSAGE",
        ],
        &rows,
    )
}

/// `berth ps -q`: the container ids alone, one a line. Pure.
pub fn ps_quiet(views: &[TaskView]) -> String {
    views
        .iter()
        .map(|v| format!("{}\n", v.container_id))
        .collect()
}

fn state_name(state: TaskState) -> String {
    state.name().to_owned()
}

/// How long ago, in the largest whole unit, as `docker ps` and `crictl ps` show an age:
/// `45s`, `12m`, `3h`, `9d`. Pure.
pub fn age(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// One event of `GET /v1/events` as `berth events` prints it: time, position, container,
/// task, state, source, reason and exit code when there are some, message; `None` for a
/// heartbeat or a line that is not an update. Pure.
pub fn event_line(line: &[u8]) -> Option<String> {
    let event: serde_json::Value = serde_json::from_slice(line).ok()?;
    if event["type"] != "TASK_UPDATED" {
        return None;
    }
    let updated = &event["task_updated"];
    let status = &updated["status"];
    // Up to the end of year 9999, which RFC 3339 can write; otherwise the number itself.
    let at = match status["timestamp"].as_f64() {
        Some(t) if (0.0..253_402_300_800.0).contains(&t) => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t);
            humantime::format_rfc3339_millis(at).to_string()
        }
        _ => status["timestamp"].to_string(),
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{at} #{} {} {} {} {}",
        event["position"],
        text(&updated["container_id"]),
        text(&status["task_id"]["value"]),
        text(&status["state"]),
        text(&status["source"]),
    );
    if let Some(reason) = status["reason"].as_str() {
        out.push_str(&format!(" reason={reason}"));
    }
    if let Some(code) = updated["exit_code"].as_i64() {
        out.push_str(&format!(" exit={code}"));
    }
    if let Some(message) = status["message"].as_str() {
        out.push_str(&format!(" {message}"));
    }
    out.push('\n');
    Some(out)
}

/// The message of an `ERROR` event, the stream's last. Pure.
pub fn event_error(line: &[u8]) -> Option<String> {
    let event: serde_json::Value = serde_json::from_slice(line).ok()?;
    (event["type"] == "ERROR").then(|| event["message"].as_str().unwrap_or("").to_owned())
}

/// One event as `berth events --json` prints it: the line as the API sent it, heartbeats
/// left out. Pure.
pub fn event_json_line(line: &[u8]) -> Option<String> {
    let event: serde_json::Value = serde_json::from_slice(line).ok()?;
    (event["type"] != "HEARTBEAT").then(|| format!("{event}\n"))
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `berth wait`'s exit status for a task that ended KILLED without an exit code of its
/// own (or with 0): 128 + SIGKILL, as a shell and `docker wait` report a killed process.
pub const WAIT_KILLED: u8 = 137;
/// `berth wait`'s exit status for a task that ended FAILED without an exit code (it never
/// ran: a pull, a fetch or `docker run` failed), as `docker run` exits 125 when the
/// container could not be run.
pub const WAIT_FAILED: u8 = 125;
/// `berth wait`'s exit status for a task that ended LOST without an exit code: berth lost
/// track of it and nobody knows how it ended, which Docker reports as 255.
pub const WAIT_LOST: u8 = 255;

/// `berth wait`'s exit status: 0 for FINISHED; the task's own exit code (1-255) when it
/// ended otherwise with one; [`WAIT_KILLED`], [`WAIT_FAILED`] or [`WAIT_LOST`] when it has
/// none (or 0, as a task that traps SIGTERM and exits 0 when killed: only FINISHED exits
/// 0). Berth's own failures (no agent, an unknown id) exit 1. Pure.
pub fn wait_exit(view: &TaskView) -> u8 {
    let own = view
        .exit_code
        .and_then(|c| u8::try_from(c).ok())
        .filter(|&c| c != 0);
    match (view.state, own) {
        (TaskState::Finished, _) => 0,
        (_, Some(code)) => code,
        (TaskState::Killed, None) => WAIT_KILLED,
        (TaskState::Lost, None) => WAIT_LOST,
        // `wait` answers once the task ended; anything else is no success either.
        (_, None) => WAIT_FAILED,
    }
}

/// The agent's effective flags as one line, `--name=value` each, in the order `command`
/// defines them, whether given, from a default or from the environment; the flags named
/// in `secret` show only that they are set (`--docker_config` may be the credentials
/// themselves). Pure.
pub fn flag_line(command: &clap::Command, matches: &clap::ArgMatches, secret: &[&str]) -> String {
    let mut flags = Vec::new();
    for arg in command.get_arguments() {
        let (Some(long), Ok(Some(values))) =
            (arg.get_long(), matches.try_get_raw(arg.get_id().as_str()))
        else {
            continue;
        };
        let value = if secret.contains(&long) {
            "(set)".to_owned()
        } else {
            values
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",")
        };
        flags.push(format!("--{long}={value}"));
    }
    flags.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_mesos_json() {
        let flags = LaunchFlags {
            image: Some("busybox".into()),
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
        // A host port is one the task was given, as Mesos wants it.
        assert_eq!(
            crate::task::check::check(&parsed.task),
            Ok(()),
            "berth takes what it builds"
        );
        assert_eq!(
            task["resources"][2],
            json!({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 8080, "end": 8080}]}})
        );

        let exec = task_from_flags(
            &LaunchFlags {
                image: Some("i".into()),
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
                image: Some("berth-test/cmd:latest".into()),
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

    fn view(task: &str, state: TaskState) -> TaskView {
        TaskView {
            container_id: uuid::Uuid::nil(),
            task_id: task.into(),
            state,
            reason: None,
            message: None,
            exit_code: None,
            docker_name: None,
            image: Some("berth-test/shell:latest".into()),
            sandbox: PathBuf::from("/s"),
            pid: None,
            accepted_at_ms: 0,
        }
    }

    #[test]
    fn ps_aligns_its_columns_whatever_the_ids_and_puts_the_message_last() {
        let long = "a-task-id-of-forty-two-characters-or-so-xy";
        let mut killing = view(long, TaskState::Killing);
        killing.reason = Some("REASON_TASK_KILLED_DURING_LAUNCH".into());
        killing.message = Some("killed on request; Docker is unavailable".into());
        killing.accepted_at_ms = 3_600_000;
        let mut failed = view("db", TaskState::Failed);
        failed.container_id = uuid::Uuid::from_u128(u128::MAX);
        failed.exit_code = Some(3);
        failed.image = None;
        let table = ps_table(
            &[view("web", TaskState::Staging), killing, failed],
            7_200_000,
        );
        let want = "\
CONTAINER                             TASK                                        IMAGE                    STATE         AGE  EXIT  REASON                            MESSAGE
00000000-0000-0000-0000-000000000000  web                                         berth-test/shell:latest  TASK_STAGING  2h
00000000-0000-0000-0000-000000000000  a-task-id-of-forty-two-characters-or-so-xy  berth-test/shell:latest  TASK_KILLING  1h         REASON_TASK_KILLED_DURING_LAUNCH  killed on request; Docker is unavailable
ffffffff-ffff-ffff-ffff-ffffffffffff  db                                          -                        TASK_FAILED   2h   3
";
        assert_eq!(table, want);
        assert_eq!(
            ps_quiet(&[view("web", TaskState::Running)]),
            "00000000-0000-0000-0000-000000000000\n"
        );
        assert_eq!(ps_quiet(&[]), "");
    }

    #[test]
    fn ages_read_in_their_largest_unit() {
        let cases = [
            (0, "0s"),
            (59_999, "59s"),
            (60_000, "1m"),
            (3_599_999, "59m"),
            (3_600_000, "1h"),
            (86_399_999, "23h"),
            (86_400_000, "1d"),
            (u64::MAX, "213503982334d"),
        ];
        for (ms, want) in cases {
            assert_eq!(age(ms), want, "{ms}");
        }
    }

    #[test]
    fn wait_exits_with_the_task_s_code_or_one_that_names_its_end() {
        use TaskState::*;
        let cases = [
            (Finished, Some(0), 0),
            (Finished, None, 0),
            (Failed, Some(3), 3),
            (Failed, Some(1), 1),
            (Failed, None, WAIT_FAILED),
            // Out of an exit status's range: the state's code.
            (Failed, Some(-1), WAIT_FAILED),
            (Failed, Some(256), WAIT_FAILED),
            (Killed, Some(143), 143),
            (Killed, Some(137), 137),
            // A task that traps SIGTERM and exits 0 was still killed.
            (Killed, Some(0), WAIT_KILLED),
            (Killed, None, WAIT_KILLED),
            (Lost, Some(2), 2),
            (Lost, None, WAIT_LOST),
        ];
        for (state, code, want) in cases {
            let mut v = view("t", state);
            v.exit_code = code;
            assert_eq!(wait_exit(&v), want, "{state:?} {code:?}");
        }
        let codes = [WAIT_FAILED, WAIT_KILLED, WAIT_LOST];
        assert!(
            !codes.contains(&0) && !codes.contains(&1),
            "0 and 1 mean something else"
        );
        assert_eq!(
            codes.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
    }

    #[test]
    fn the_flag_line_has_every_flag_and_hides_secrets() {
        use clap::{Arg, ArgAction, Command};
        let command = Command::new("agent")
            .arg(
                Arg::new("work_dir")
                    .long("work_dir")
                    .default_value("/var/lib/berth"),
            )
            .arg(Arg::new("docker_config").long("docker_config"))
            .arg(
                Arg::new("strict")
                    .long("strict")
                    .action(ArgAction::Set)
                    .default_value("true"),
            )
            .arg(
                Arg::new("containerizers")
                    .long("containerizers")
                    .value_delimiter(',')
                    .default_value("docker,mesos"),
            )
            .arg(Arg::new("unset").long("unset"));
        let cases: [(&[&str], &str); 2] = [
            (
                &["agent"],
                "--work_dir=/var/lib/berth --strict=true --containerizers=docker,mesos",
            ),
            (
                &[
                    "agent",
                    "--docker_config",
                    "{\"auths\": {}}",
                    "--strict",
                    "false",
                    "--work_dir",
                    "/w",
                ],
                "--work_dir=/w --docker_config=(set) --strict=false --containerizers=docker,mesos",
            ),
        ];
        for (argv, want) in cases {
            let matches = command.clone().get_matches_from(argv);
            assert_eq!(
                flag_line(&command, &matches, &["docker_config"]),
                want,
                "{argv:?}"
            );
        }
    }

    #[test]
    fn an_event_prints_on_one_line_and_odd_ones_do_not_panic() {
        let update = br#"{"type":"TASK_UPDATED","position":42,"task_updated":{"container_id":"c1","exit_code":3,"status":{"task_id":{"value":"web"},"state":"TASK_FAILED","source":"SOURCE_EXECUTOR","message":"command exited with status 3","timestamp":1795540219.368}}}"#;
        assert_eq!(
            event_line(update).as_deref(),
            Some("2026-11-24T17:10:19.368Z #42 c1 web TASK_FAILED SOURCE_EXECUTOR exit=3 command exited with status 3\n")
        );
        assert_eq!(event_line(br#"{"type":"HEARTBEAT"}"#), None);
        assert_eq!(event_json_line(br#"{"type":"HEARTBEAT"}"#), None);
        assert_eq!(
            event_error(br#"{"type":"ERROR","message":"cannot read the store"}"#).as_deref(),
            Some("cannot read the store")
        );
        for odd in [
            &br#"{"type":"TASK_UPDATED","task_updated":{"status":{"timestamp":1e300}}}"#[..],
            br#"{"type":"TASK_UPDATED","task_updated":{"status":{"timestamp":-1}}}"#,
            br#"{"type":"TASK_UPDATED"}"#,
            b"not json",
        ] {
            let _ = event_line(odd);
        }
    }
}

//! Typed values parsed from `docker inspect --type=container` output.
//!
//! Parsing never panics: whatever Docker (or something pretending to be Docker) prints,
//! the result is a value or a [`ParseError`] that says what was wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;

/// What berth needs to know about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full container id.
    pub id: String,
    /// Name without Docker's leading `/`.
    pub name: String,
    /// Lifecycle state.
    pub state: ContainerState,
    /// Pid of the container's init process on the host; `None` when not running.
    pub pid: Option<u32>,
    /// When it last started; `None` if it never did.
    pub started_at: Option<SystemTime>,
    /// Exit code of the last run; `None` while it has not exited.
    pub exit_code: Option<i32>,
    /// Labels, berth's among them.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig.PidMode`: `host` for the host's pid namespace, empty for its own.
    pub pid_mode: String,
    /// What is mounted into it (`Mounts`), in Docker's order.
    pub mounts: Vec<Mount>,
}

/// One entry of `Mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`...; empty from engines that did not say.
    pub kind: String,
    /// Where it comes from on the host (a bind mount's host path, a volume's directory).
    pub source: PathBuf,
    /// Where it appears in the container.
    pub destination: PathBuf,
    /// Whether it is writable (`RW`); an entry that does not say counts as read-only.
    pub rw: bool,
}

/// Docker's container states (`State.Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused (still has processes).
    Paused,
    /// Being restarted by a restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited.
    Exited,
    /// Dead: removal failed half-way.
    Dead,
    /// A state this version of berth does not know.
    Unknown(String),
}

impl ContainerState {
    fn from_status(status: &str) -> ContainerState {
        match status {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            other => ContainerState::Unknown(other.to_owned()),
        }
    }

    /// Whether the container has processes that could still run or be signalled.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
}

/// Why inspect output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not the JSON array of objects Docker prints.
    #[error("not a JSON array of containers: {0}")]
    Json(String),
    /// An entry without an id.
    #[error("entry {0} has no Id")]
    MissingId(usize),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawContainer {
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    config: RawConfig,
    // Read loosely (see `mounts`): an odd entry here must not make the whole listing,
    // and with it recovery, unreadable.
    #[serde(default)]
    host_config: serde_json::Value,
    #[serde(default)]
    mounts: serde_json::Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawState {
    // Docker before 1.10 printed no Status; Running, Paused, Restarting and Dead stand in.
    status: Option<String>,
    #[serde(default)]
    running: bool,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    restarting: bool,
    #[serde(default)]
    dead: bool,
    #[serde(default)]
    pid: i64,
    #[serde(default)]
    exit_code: i64,
    started_at: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Parses the JSON array `docker inspect --type=container` prints.
pub fn parse(json: &str) -> Result<Vec<ContainerInfo>, ParseError> {
    let trimmed = json.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let raw: Vec<RawContainer> =
        serde_json::from_str(trimmed).map_err(|e| ParseError::Json(e.to_string()))?;
    raw.into_iter()
        .enumerate()
        .map(|(index, c)| convert(index, c))
        .collect()
}

/// Parses one container as the engine's API gives it (`GET /containers/NAME/json`).
pub fn parse_one(json: &[u8]) -> Result<ContainerInfo, ParseError> {
    let raw: RawContainer =
        serde_json::from_slice(json).map_err(|e| ParseError::Json(e.to_string()))?;
    convert(0, raw)
}

fn convert(index: usize, c: RawContainer) -> Result<ContainerInfo, ParseError> {
    let id =
        c.id.filter(|id| !id.is_empty())
            .ok_or(ParseError::MissingId(index))?;
    let s = c.state;
    let state = match s.status.as_deref() {
        Some(status) => ContainerState::from_status(status),
        None if s.dead => ContainerState::Dead,
        None if s.restarting => ContainerState::Restarting,
        None if s.paused => ContainerState::Paused,
        None if s.running => ContainerState::Running,
        None if s.started_at.as_deref().and_then(parse_time).is_some() => ContainerState::Exited,
        None => ContainerState::Created,
    };
    let pid = u32::try_from(s.pid).ok().filter(|&p| p > 0);
    let exit_code = match state {
        ContainerState::Exited | ContainerState::Dead => i32::try_from(s.exit_code).ok(),
        _ => None,
    };
    Ok(ContainerInfo {
        id,
        name: c.name.strip_prefix('/').unwrap_or(&c.name).to_owned(),
        state,
        pid,
        started_at: s.started_at.as_deref().and_then(parse_time),
        exit_code,
        labels: c.config.labels.unwrap_or_default(),
        pid_mode: c
            .host_config
            .get("PidMode")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        mounts: mounts(&c.mounts),
    })
}

/// The entries of `Mounts` that name a destination; anything else in it is skipped.
fn mounts(raw: &serde_json::Value) -> Vec<Mount> {
    let text = |entry: &serde_json::Value, key: &str| {
        entry
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    raw.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let destination = text(entry, "Destination");
            if destination.is_empty() {
                return None;
            }
            Some(Mount {
                kind: text(entry, "Type"),
                source: PathBuf::from(text(entry, "Source")),
                destination: PathBuf::from(destination),
                rw: entry
                    .get("RW")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
            })
        })
        .collect()
}

/// A start time as berth records it: nanoseconds since the epoch (`None` before 1970 or
/// after 2554).
pub fn epoch_ns(time: SystemTime) -> Option<u64> {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// Docker prints `0001-01-01T00:00:00Z` for "never"; that and anything unreadable is `None`.
fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const RUNNING: &str = r#"[{
        "Id": "ee76", "Name": "/mesos-a.b",
        "State": {"Status": "running", "Running": true, "Pid": 4681, "ExitCode": 0,
                  "StartedAt": "2026-11-24T16:39:57.691949679Z",
                  "FinishedAt": "0001-01-01T00:00:00Z"},
        "Config": {"Labels": {"berth.task_id": "t1"}, "Image": "busybox"}
    }]"#;

    #[test]
    fn parses_a_running_container() {
        let got = parse(RUNNING).expect("valid");
        assert_eq!(got.len(), 1);
        let c = &got[0];
        assert_eq!(c.id, "ee76");
        assert_eq!(c.name, "mesos-a.b");
        assert_eq!(c.state, ContainerState::Running);
        assert_eq!(c.pid, Some(4681));
        assert_eq!(c.exit_code, None);
        assert_eq!(
            c.labels.get("berth.task_id").map(String::as_str),
            Some("t1")
        );
        let started = c.started_at.expect("has a start time");
        let secs = started.duration_since(UNIX_EPOCH).expect("after epoch");
        assert_eq!(secs.as_secs(), 1_795_538_397);
        assert!(secs.subsec_nanos() > 0);
    }

    #[test]
    fn table_of_states() {
        let entry = |state: &str| format!(r#"[{{"Id":"x","Name":"/n","State":{state}}}]"#);
        let cases = [
            (
                r#"{"Status":"created","Pid":0,"StartedAt":"0001-01-01T00:00:00Z"}"#,
                ContainerState::Created,
                None,
                None,
                false,
            ),
            (
                r#"{"Status":"exited","Pid":0,"ExitCode":137,"StartedAt":"2026-01-01T00:00:00Z"}"#,
                ContainerState::Exited,
                None,
                Some(137),
                true,
            ),
            (
                r#"{"Status":"paused","Pid":12,"Running":true,"Paused":true}"#,
                ContainerState::Paused,
                Some(12),
                None,
                false,
            ),
            (
                r#"{"Status":"dead","Pid":0,"ExitCode":-1}"#,
                ContainerState::Dead,
                None,
                Some(-1),
                false,
            ),
            (
                r#"{"Status":"hibernating"}"#,
                ContainerState::Unknown("hibernating".into()),
                None,
                None,
                false,
            ),
            // Docker < 1.10: no Status.
            (
                r#"{"Running":true,"Pid":7}"#,
                ContainerState::Running,
                Some(7),
                None,
                false,
            ),
            (
                r#"{"Running":false,"Pid":0,"ExitCode":2,"StartedAt":"2015-08-01T00:00:00Z"}"#,
                ContainerState::Exited,
                None,
                Some(2),
                true,
            ),
            (r#"{"Pid":-5}"#, ContainerState::Created, None, None, false),
            (
                r#"{"Status":"exited","ExitCode":99999999999}"#,
                ContainerState::Exited,
                None,
                None,
                false,
            ),
        ];
        for (state, want, pid, exit, started) in cases {
            let got = parse(&entry(state)).expect("valid");
            let c = &got[0];
            assert_eq!(c.state, want, "{state}");
            assert_eq!(c.pid, pid, "{state}");
            assert_eq!(c.exit_code, exit, "{state}");
            assert_eq!(c.started_at.is_some(), started, "{state}");
        }
    }

    #[test]
    fn tolerates_missing_parts_and_null_labels() {
        let got = parse(r#"[{"Id":"x","Config":{"Labels":null}}, {"Id":"y"}]"#).expect("valid");
        assert_eq!(got.len(), 2);
        assert!(got[0].labels.is_empty());
        assert_eq!(got[1].name, "");
        assert_eq!(parse("[]\n").expect("valid"), vec![]);
        assert_eq!(parse("  ").expect("valid"), vec![]);
    }

    #[test]
    fn table_of_pid_modes_and_mounts() {
        let bind = |source: &str, destination: &str, rw: bool| Mount {
            kind: "bind".into(),
            source: source.into(),
            destination: destination.into(),
            rw,
        };
        let entry = |rest: &str| format!(r#"[{{"Id":"x"{rest}}}]"#);
        let cases: Vec<(&str, &str, Vec<Mount>)> = vec![
            ("", "", vec![]),
            (r#","HostConfig":null,"Mounts":null"#, "", vec![]),
            (r#","HostConfig":{"PidMode":"host"}"#, "host", vec![]),
            (r#","HostConfig":{"PidMode":""}"#, "", vec![]),
            (
                r#","HostConfig":{"PidMode":"container:ab12"}"#,
                "container:ab12",
                vec![],
            ),
            (r#","HostConfig":{"PidMode":7}"#, "", vec![]),
            (r#","HostConfig":"host""#, "", vec![]),
            (
                r#","HostConfig":{"PidMode":"host"},"Mounts":[
                    {"Type":"bind","Source":"/var/lib/berth","Destination":"/var/lib/berth",
                     "Mode":"","RW":true,"Propagation":"rprivate"},
                    {"Type":"bind","Source":"/var/run/docker.sock",
                     "Destination":"/var/run/docker.sock","Mode":"ro","RW":false}]"#,
                "host",
                vec![
                    bind("/var/lib/berth", "/var/lib/berth", true),
                    bind("/var/run/docker.sock", "/var/run/docker.sock", false),
                ],
            ),
            (
                r#","Mounts":[{"Type":"volume","Name":"v1",
                    "Source":"/var/lib/docker/volumes/v1/_data","Destination":"/data",
                    "Driver":"local","RW":true}]"#,
                "",
                vec![Mount {
                    kind: "volume".into(),
                    source: "/var/lib/docker/volumes/v1/_data".into(),
                    destination: "/data".into(),
                    rw: true,
                }],
            ),
            // Docker before 1.13 printed no Type; an entry without RW counts as read-only.
            (
                r#","Mounts":[{"Source":"/a b","Destination":"/a b"}]"#,
                "",
                vec![Mount {
                    kind: String::new(),
                    source: "/a b".into(),
                    destination: "/a b".into(),
                    rw: false,
                }],
            ),
            // Odd entries are skipped, the rest kept.
            (
                r#","Mounts":[1,"x",null,{"Source":"/s"},{"Destination":5},
                    {"Type":"tmpfs","Source":"","Destination":"/tmp","RW":"yes"}]"#,
                "",
                vec![Mount {
                    kind: "tmpfs".into(),
                    source: "".into(),
                    destination: "/tmp".into(),
                    rw: false,
                }],
            ),
            (r#","Mounts":{"Destination":"/x"}"#, "", vec![]),
        ];
        for (rest, pid_mode, mounts) in cases {
            let got = parse(&entry(rest)).expect("valid");
            assert_eq!(got[0].pid_mode, pid_mode, "{rest}");
            assert_eq!(got[0].mounts, mounts, "{rest}");
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "{",
            "null",
            "{}",
            "[1]",
            "[{\"Id\":5}]",
            "\u{0}",
            "[{\"Id\":\"x\"}] trailing",
            "[{\"Id\":\"x\",\"State\":{\"Pid\":\"twelve\"}}]",
        ] {
            assert!(matches!(parse(bad), Err(ParseError::Json(_))), "{bad:?}");
        }
        assert_eq!(parse(r#"[{"Name":"/n"}]"#), Err(ParseError::MissingId(0)));
        assert_eq!(parse(r#"[{"Id":""}]"#), Err(ParseError::MissingId(0)));
        let t = UNIX_EPOCH + Duration::from_secs(1);
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(t));
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}

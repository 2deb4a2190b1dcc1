//! What the agent recorded, read from its store with `berth state` while the agent is down
//! (SIGKILLed at the end of a run, as a crash would leave it): what it would recover from,
//! not what it last said over its API.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use super::ChaosError;

/// Each berth container the store holds, with its task: `berth state ls --json` offline.
/// Why not, when the store cannot be read.
pub fn recorded(berth: &Path, work: &Path) -> Result<BTreeMap<String, String>, String> {
    let out = state(berth, work, &["ls", "--json"]).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "`berth state ls` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_ls(&String::from_utf8_lossy(&out.stdout))
}

/// `berth state verify` offline: `None` when it passed, else what it said.
pub fn verify(berth: &Path, work: &Path) -> Result<Option<String>, ChaosError> {
    let out = state(berth, work, &["verify"])?;
    Ok((!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }))
}

/// `berth` as the harness runs it: with no BERTH_/MESOS_ settings of the operator's, which
/// could point it at another agent's socket.
pub fn berth_command(berth: &Path) -> Command {
    let mut command = Command::new(berth);
    for name in crate::flag_env::inherited_variables_to_clear() {
        command.env_remove(name);
    }
    command
}

fn state(berth: &Path, work: &Path, view: &[&str]) -> Result<Output, ChaosError> {
    berth_command(berth)
        .arg("state")
        .args(view)
        .arg("--work_dir")
        .arg(work)
        // The agent is down: a store found held is an error, not a reason to wait for an
        // API that will not answer.
        .args(["--wait_for_agent", "1secs"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ChaosError::Agent(format!("cannot run berth state: {e}")))
}

/// Container id to task id, from `berth state ls --json`. Pure.
fn parse_ls(text: &str) -> Result<BTreeMap<String, String>, String> {
    let listed: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| format!("`berth state ls --json` did not print a list: {e}"))?;
    Ok(listed
        .iter()
        .filter_map(|c| {
            Some((
                c["container_id"].as_str()?.to_owned(),
                c["task_id"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_reads_as_containers_and_their_tasks() {
        let text = r#"[
            {"container_id": "c1", "task_id": "t1", "last": {}, "accepted_at_ms": 1},
            {"container_id": "c2", "task_id": "t2"},
            {"container_id": 7, "task_id": "t3"}
        ]"#;
        let got = parse_ls(text).expect("a list");
        assert_eq!(
            got,
            BTreeMap::from([("c1".into(), "t1".into()), ("c2".into(), "t2".into())])
        );
        assert_eq!(parse_ls("[]"), Ok(BTreeMap::new()));
        assert!(parse_ls("berth: no store").is_err());
        assert!(parse_ls("{}").is_err());
    }
}

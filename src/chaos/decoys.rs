//! Things that are not the run's, made before it to prove that nothing of it touches them:
//! a stranger's container, a container named as another berth agent's would be, and a
//! stranger's process sitting in the agent's work directory (where a sweep by working
//! directory would hit it). Each is described before the run and again after; any
//! difference is a violation.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use berth_chaos::check::Decoy;
use berth_chaos::sweep::RunMark;

use super::ChaosError;

/// The decoys of a run.
#[derive(Debug)]
pub struct Decoys {
    /// The containers' ids, with the names they were given.
    containers: Vec<(String, String)>,
    process: Option<Child>,
    /// What each looked like before the run, by name.
    before: Vec<(String, String)>,
}

/// The decoy containers' names, chosen (and journaled) before they are made, so that
/// `heal` finds them whenever the harness dies: a stranger's, and one named and labelled
/// as another berth agent's (its agent id).
pub fn planned(run_id: &str) -> ([String; 2], uuid::Uuid) {
    let other_agent = uuid::Uuid::new_v4();
    (
        [
            format!("berth-chaos-decoy-{run_id}"),
            format!("mesos-{other_agent}.{}", uuid::Uuid::new_v4()),
        ],
        other_agent,
    )
}

/// The label every decoy container carries, so that `heal` removes only a container the
/// harness made as a decoy, whatever name a journal holds.
pub const LABEL: &str = "berth-chaos.decoy";

/// Whether `name` is one [`planned`] makes for the run `run_id`: the stranger's, named for
/// the run, or one named as another agent's would be (`mesos-UUID.UUID`). Pure.
pub fn is_planned(name: &str, run_id: &str) -> bool {
    if name == format!("berth-chaos-decoy-{run_id}") {
        return true;
    }
    let uuid = |s: &str| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok();
    name.strip_prefix("mesos-")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(agent, container)| uuid(agent) && uuid(container))
}

impl Decoys {
    /// Makes them with the real Docker CLI `docker` and image `image` under the
    /// [`planned`] names; the process sits in `cwd`. What was made is removed if the rest
    /// cannot be.
    pub fn make(
        docker: &Path,
        socket: &Path,
        image: &str,
        (names, other_agent): &([String; 2], uuid::Uuid),
        cwd: &Path,
        mark: &RunMark,
    ) -> Result<Decoys, ChaosError> {
        let mut decoys = Decoys {
            containers: Vec::new(),
            process: None,
            before: Vec::new(),
        };
        for (n, name) in names.iter().enumerate() {
            let mut args = vec![
                "run".to_owned(),
                "-d".into(),
                format!("--name={name}"),
                format!("--label={LABEL}=1"),
            ];
            if n == 1 {
                args.push(format!("--label=berth.agent_id={other_agent}"));
            }
            args.extend([image.to_owned(), "sleep".into(), "100000".into()]);
            match docker_out(docker, socket, &args) {
                Ok(id) => decoys.containers.push((id.trim().to_owned(), name.clone())),
                Err(e) => {
                    decoys.remove(docker, socket);
                    return Err(e);
                }
            }
        }
        let (key, value) = mark.env();
        let process = Command::new("sleep")
            .env(key, value)
            .arg("100000")
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let process = match process {
            Ok(process) => process,
            Err(e) => {
                decoys.remove(docker, socket);
                return Err(ChaosError::Docker(format!(
                    "cannot start the decoy process: {e}"
                )));
            }
        };
        decoys.process = Some(process);
        decoys.before = decoys.describe(docker, socket);
        Ok(decoys)
    }

    /// Takes what each decoy looks like now as the state to compare with: after a daemon
    /// restart, which stops every container on the engine (the harness's doing, not the
    /// agent's).
    pub fn describe_again(&mut self, docker: &Path, socket: &Path) {
        self.before = self.describe(docker, socket);
    }

    /// Each decoy before and now.
    pub fn compare(&mut self, docker: &Path, socket: &Path) -> Vec<Decoy> {
        let now = self.describe(docker, socket);
        self.before
            .iter()
            .zip(now)
            .map(|((name, before), (_, after))| Decoy {
                name: name.clone(),
                before: before.clone(),
                after,
            })
            .collect()
    }

    fn describe(&mut self, docker: &Path, socket: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, name) in &self.containers {
            let args = [
                "inspect",
                "--type=container",
                "-f",
                "{{.Id}} started {{.State.StartedAt}} restarts {{.RestartCount}} running {{.State.Running}}",
                id,
            ]
            .map(str::to_owned);
            let state = docker_out(docker, socket, &args)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|e| format!("gone ({e})"));
            out.push((format!("container {name}"), state));
        }
        if let Some(child) = &mut self.process {
            let pid = child.id();
            let alive = matches!(child.try_wait(), Ok(None));
            let ticks = crate::identity::of_pid(pid)
                .ok()
                .flatten()
                .map(|i| i.start_ticks.to_string())
                .unwrap_or_else(|| "-".into());
            out.push((
                format!("process {pid}"),
                format!("started at tick {ticks}, alive {alive}"),
            ));
        }
        out
    }

    /// Removes them: the containers by the ids Docker gave them, the process through its
    /// handle.
    pub fn remove(&mut self, docker: &Path, socket: &Path) {
        for (id, _) in self.containers.drain(..) {
            let _ = docker_out(docker, socket, &["rm".into(), "-f".into(), id]);
        }
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the real CLI against `socket`; its stdout.
pub fn docker_out(docker: &Path, socket: &Path, args: &[String]) -> Result<String, ChaosError> {
    let out = Command::new(docker)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ChaosError::Docker(format!("cannot run {}: {e}", docker.display())))?;
    if !out.status.success() {
        return Err(ChaosError::Docker(format!(
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_planned_for_the_run_are_its_decoys() {
        let ([own, agents], _) = planned("r1");
        let cases = [
            (own.as_str(), "r1", true),
            (agents.as_str(), "r1", true),
            (own.as_str(), "r2", false),
            ("berth-chaos-decoy-r1x", "r1", false),
            ("my-database", "r1", false),
            ("mesos-", "r1", false),
            ("mesos-not-a-uuid.at-all", "r1", false),
            (
                "mesos-0b8b0d0e-8f7a-4b8e-9f4c-6f1d2a3b4c5d.0b8b0d0e8f7a4b8e9f4c6f1d2a3b4c5d",
                "r1",
                false,
            ),
            ("", "", false),
        ];
        for (name, run_id, want) in cases {
            assert_eq!(is_planned(name, run_id), want, "{name} {run_id}");
        }
    }
}

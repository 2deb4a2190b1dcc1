//! Where an executor's processes are accounted: with systemd as init, each executor is
//! started in a transient scope of its own (`systemd-run --scope`) under `berth.slice`,
//! outside the agent's unit, so that stopping or restarting the agent's unit (or a kill of
//! its whole cgroup) never takes executors and plain-process tasks with it, and their
//! memory is not charged to the agent. Without systemd, they stay where the agent is, in
//! a session of their own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// The slice executors' scopes go under.
pub const SLICE: &str = "berth.slice";

/// Whether executors start in systemd scopes: systemd is the init system (`sd_booted()`:
/// its runtime directory exists) and `systemd-run` is on the `PATH` (a host's /run seen
/// from a container without it is not enough). Looked at once.
pub fn systemd_scopes() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Path::new("/run/systemd/system").is_dir()
            && std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| dir.join("systemd-run").is_file())
            })
    })
}

/// Where executors go, for the agent's log.
pub fn describe() -> String {
    if systemd_scopes() {
        format!("executors start in systemd scopes of their own under {SLICE}")
    } else {
        "executors start in sessions of their own, in the agent's cgroup (systemd is not init, or systemd-run is not on the PATH)".to_owned()
    }
}

/// The program and arguments that start `berth executor` from `berth` for container
/// `id`: through `systemd-run --scope` when `systemd` is true. `systemd-run` puts itself
/// in the scope and then executes the executor in its place: the pid the agent records
/// is the executor's, and the pipe on its stdin is the one the agent holds. The scope's
/// name carries `attempt` so that a launch resumed after a crash never meets its
/// predecessor's scope. Pure.
pub fn executor_command(
    berth: &Path,
    id: Uuid,
    attempt: &str,
    systemd: bool,
) -> (PathBuf, Vec<OsString>) {
    if !systemd {
        return (berth.to_owned(), vec!["executor".into()]);
    }
    let mut args: Vec<OsString> = vec![
        "--scope".into(),
        "--quiet".into(),
        "--collect".into(),
        format!("--slice={SLICE}").into(),
        format!("--unit=berth-executor-{id}-{attempt}").into(),
        format!("--description=berth executor of container {id}").into(),
        "--".into(),
    ];
    args.push(berth.into());
    args.push("executor".into());
    (PathBuf::from("systemd-run"), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_systemd_the_executor_runs_in_a_scope_of_its_own() {
        let id = Uuid::from_u128(7);
        let berth = Path::new("/usr/local/bin/berth");
        assert_eq!(
            executor_command(berth, id, "a1", false),
            (berth.to_owned(), vec![OsString::from("executor")])
        );
        let (program, args) = executor_command(berth, id, "a1", true);
        assert_eq!(program, PathBuf::from("systemd-run"));
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--scope",
                "--quiet",
                "--collect",
                "--slice=berth.slice",
                "--unit=berth-executor-00000000-0000-0000-0000-000000000007-a1",
                "--description=berth executor of container 00000000-0000-0000-0000-000000000007",
                "--",
                "/usr/local/bin/berth",
                "executor",
            ]
        );
    }
}

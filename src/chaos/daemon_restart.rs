//! Restarting the Docker daemon behind `--docker_socket`, which hits every container on
//! the engine and so is done only with `--allow-daemon-faults`. The harness cannot know
//! how the engine it is pointed at is run, so the operator says it
//! (`--restart-daemon-command`, run with `sh -c`); the default, `systemctl restart docker`,
//! is taken only where systemd runs and only for the host's default socket, since it
//! restarts the host's main engine and not a private one behind another socket. With no
//! way to restart it, the run is refused before it touches anything.

use std::path::Path;
use std::time::Duration;

/// The command used when none is given.
pub const DEFAULT: &str = "systemctl restart docker";

/// The sockets of the engine the default command restarts.
const DEFAULT_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

/// How long the command may take.
const COMMAND: Duration = Duration::from_secs(120);
/// How long the engine may take to answer again once the command returned.
const BACK: Duration = Duration::from_secs(60);

/// The command that restarts the daemon, `None` when daemon faults are not allowed, or
/// why the run must be refused. `socket` is `--docker_socket`; `found` says whether a
/// program is on `PATH`. Pure.
pub fn way(
    allowed: bool,
    command: Option<&str>,
    socket: &Path,
    systemd_running: bool,
    found: impl Fn(&str) -> bool,
) -> Result<Option<String>, String> {
    let command = command.map(str::trim);
    if !allowed {
        return match command {
            Some(_) => Err(
                "--restart-daemon-command is only used with --allow-daemon-faults: give both, or neither".into(),
            ),
            None => Ok(None),
        };
    }
    match command {
        Some("") => Err("--restart-daemon-command is empty: give the command that restarts the Docker daemon behind --docker_socket".into()),
        Some(given) => {
            let program = given.split_whitespace().next().unwrap_or_default();
            if found(program) {
                Ok(Some(given.to_owned()))
            } else {
                Err(format!(
                    "--restart-daemon-command {given:?}: {program} is not found, so the Docker daemon could not be restarted"
                ))
            }
        }
        None if !DEFAULT_SOCKETS.iter().any(|d| socket == Path::new(d)) => Err(format!(
            "--allow-daemon-faults against the engine behind {}, and no --restart-daemon-command: `{DEFAULT}` restarts the host's main engine, not that one; give the command that restarts the daemon behind --docker_socket",
            socket.display()
        )),
        None if systemd_running && found("systemctl") => Ok(Some(DEFAULT.to_owned())),
        None => Err(format!(
            "--allow-daemon-faults, and no way to restart the Docker daemon: systemd does not run here, so `{DEFAULT}` cannot; give the command that restarts the daemon behind --docker_socket with --restart-daemon-command"
        )),
    }
}

/// Whether systemd runs this machine.
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whether `program` is a path to a file, or found on `PATH`.
pub fn found(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs `command`, then waits until the engine behind `socket` answers `docker version`
/// again; says how it went.
pub async fn restart(command: &str, docker: &Path, socket: &Path) -> String {
    let ran = tokio::time::timeout(
        COMMAND,
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    let how = match ran {
        Ok(Ok(out)) if out.status.success() => format!("`{command}` done"),
        Ok(Ok(out)) => format!(
            "`{command}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(Err(e)) => format!("`{command}` could not be run: {e}"),
        Err(_) => format!("`{command}` did not return within {COMMAND:?}"),
    };
    let deadline = tokio::time::Instant::now() + BACK;
    loop {
        let answered = tokio::process::Command::new(docker)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .is_ok_and(|o| o.status.success());
        if answered {
            return format!("{how}; the engine answers again");
        }
        if tokio::time::Instant::now() >= deadline {
            return format!("{how}; the engine did not answer within {BACK:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allowed, the command given, the socket, systemd running, the programs found, and
    /// the way.
    type Case = (
        bool,
        Option<&'static str>,
        &'static str,
        bool,
        &'static [&'static str],
        Result<Option<&'static str>, &'static str>,
    );

    #[test]
    fn the_daemon_is_restarted_only_when_allowed_and_only_by_a_way_that_exists() {
        let only = |names: &'static [&'static str]| move |p: &str| names.contains(&p);
        const MAIN: &str = "/var/run/docker.sock";
        let cases: [Case; 13] = [
            (false, None, MAIN, true, &["systemctl"], Ok(None)),
            (false, Some("x"), MAIN, true, &["x"], Err("only used with")),
            (true, None, MAIN, true, &["systemctl"], Ok(Some(DEFAULT))),
            (
                true,
                None,
                "/run/docker.sock",
                true,
                &["systemctl"],
                Ok(Some(DEFAULT)),
            ),
            (
                true,
                None,
                MAIN,
                false,
                &["systemctl"],
                Err("systemd does not run"),
            ),
            (true, None, MAIN, true, &[], Err("systemd does not run")),
            // A private engine: the default would restart the host's main one.
            (
                true,
                None,
                "/tmp/private/docker.sock",
                true,
                &["systemctl"],
                Err("restarts the host's main engine"),
            ),
            (
                true,
                None,
                "/var/run/../run/docker.sock.other",
                true,
                &["systemctl"],
                Err("restarts the host's main engine"),
            ),
            (
                true,
                None,
                "docker.sock",
                true,
                &["systemctl"],
                Err("restarts the host's main engine"),
            ),
            (
                true,
                Some("/opt/restart-private"),
                "/tmp/private/docker.sock",
                true,
                &["/opt/restart-private"],
                Ok(Some("/opt/restart-private")),
            ),
            (
                true,
                Some(" /opt/restart-engine --fast "),
                MAIN,
                false,
                &["/opt/restart-engine"],
                Ok(Some("/opt/restart-engine --fast")),
            ),
            (
                true,
                Some("nowhere now"),
                MAIN,
                true,
                &["systemctl"],
                Err("nowhere is not found"),
            ),
            (
                true,
                Some("  "),
                MAIN,
                true,
                &["systemctl"],
                Err("is empty"),
            ),
        ];
        for (allowed, command, socket, systemd, names, want) in cases {
            let got = way(allowed, command, Path::new(socket), systemd, only(names));
            match (&got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{command:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{command:?}: {got}"),
                _ => panic!("{allowed} {command:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_program_is_found_by_path_or_on_path() {
        assert!(found("sh"));
        assert!(found("/bin/sh"));
        assert!(!found("/no/such/program"));
        assert!(!found("berth-no-such-program"));
    }
}

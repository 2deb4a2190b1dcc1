//! The boot id a run's agent sees, when its schedule reboots the host: every start of the
//! agent runs in a private mount namespace (util-linux `unshare`, propagation slave so
//! that nothing mounted in it reaches the host) in which a file of the run is bound over
//! `/proc/sys/kernel/random/boot_id`, where the agent reads it. A reboot writes a new id
//! into the file. The namespace lives only as long as its processes (the agent, its
//! executors, their Docker clients), so once they are killed there is nothing of it to
//! unmount.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

use super::ChaosError;

/// Where the kernel tells a process its boot id.
pub const KERNEL: &str = "/proc/sys/kernel/random/boot_id";

/// Binds the file given as `$0` over the kernel's boot id, then becomes the command.
const SCRIPT: &str = "mount --bind \"$0\" /proc/sys/kernel/random/boot_id && exec \"$@\"";

/// Writes the run's file with the host's own boot id, so that until a reboot the agent
/// sees what any other process sees.
pub fn create(file: &Path) -> Result<(), ChaosError> {
    let host = std::fs::read_to_string(KERNEL).map_err(|e| ChaosError::io(Path::new(KERNEL), e))?;
    std::fs::write(file, host).map_err(|e| ChaosError::io(file, e))
}

/// Writes a new boot id into the run's file (written in place: the file is what is bound);
/// returns it.
pub fn renew(file: &Path) -> Result<String, ChaosError> {
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(file, format!("{id}\n")).map_err(|e| ChaosError::io(file, e))?;
    Ok(id)
}

/// The command line that runs `program args` in a namespace of its own that sees `file`
/// as its boot id. Pure.
pub fn wrapped(file: &Path, program: &Path, args: &[OsString]) -> (OsString, Vec<OsString>) {
    let mut argv: Vec<OsString> = [
        "--mount",
        "--propagation",
        "slave",
        "--",
        "sh",
        "-c",
        SCRIPT,
    ]
    .map(OsString::from)
    .to_vec();
    argv.push(file.into());
    argv.push(program.into());
    argv.extend(args.iter().cloned());
    ("unshare".into(), argv)
}

/// Checks, before the run starts an agent this way, that a process started so reads the
/// run's boot id: it takes `unshare`, `mount` and the right to mount (root).
pub fn probe(file: &Path) -> Result<(), ChaosError> {
    let (program, args) = wrapped(file, Path::new("cat"), &[KERNEL.into()]);
    let refused = |why: String| {
        ChaosError::Refused(format!(
            "the run reboots the host (reboot), which needs its agent in a mount namespace of its own that sees a boot id of the run's, and {why} (it takes util-linux's unshare and mount, as root): run as root, or leave reboot out with --faults"
        ))
    };
    let out = Command::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| refused(format!("{} cannot be run: {e}", program.to_string_lossy())))?;
    let want = std::fs::read_to_string(file).map_err(|e| ChaosError::io(file, e))?;
    if out.status.success() && out.stdout == want.as_bytes() {
        return Ok(());
    }
    Err(refused(format!(
        "a process started so did not see it ({}: {})",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_run_by_the_script_with_the_file_as_its_zeroth_argument() {
        let (program, argv) = wrapped(
            Path::new("/run/x/boot_id"),
            Path::new("/bin/berth"),
            &["agent".into(), "--work_dir".into(), "/w".into()],
        );
        assert_eq!(program, "unshare");
        let argv: Vec<&str> = argv.iter().map(|a| a.to_str().expect("utf-8")).collect();
        assert_eq!(
            argv,
            [
                "--mount",
                "--propagation",
                "slave",
                "--",
                "sh",
                "-c",
                SCRIPT,
                "/run/x/boot_id",
                "/bin/berth",
                "agent",
                "--work_dir",
                "/w"
            ]
        );
    }

    #[test]
    fn a_process_started_so_sees_the_runs_boot_id_and_the_host_does_not() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("boot_id");
        create(&file).expect("create");
        let host = std::fs::read_to_string(KERNEL).expect("host");
        let renewed = renew(&file).expect("renew");
        assert_ne!(renewed, host.trim());
        probe(&file).expect("the namespace sees the run's id");
        assert_eq!(std::fs::read_to_string(KERNEL).expect("host"), host);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mounts.contains("boot_id"), "nothing reached the host");
    }
}

//! The Docker CLI stand-in the campaign's agent is given with `--docker`: it runs the real
//! CLI, except for the verbs switched to fail or hang. Switches are files in its
//! directory, so that a fault is turned on and off (healed) without restarting anything,
//! and `heal` turns every one off even after the harness itself was killed.

use std::path::{Path, PathBuf};

use super::ChaosError;

/// How a switched verb misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Exits 1 at once, saying so on stderr, without running anything.
    Fail,
    /// Waits without running anything until switched off; the caller's deadline ends it.
    Hang,
}

impl Misbehaviour {
    fn prefix(self) -> &'static str {
        match self {
            Misbehaviour::Fail => "fail-",
            Misbehaviour::Hang => "hang-",
        }
    }
}

/// The script. `docker` is the real CLI; the agent puts `-H unix://SOCKET` first, so the
/// verb is the third argument. Pure.
pub fn script(real: &Path, switches: &Path) -> String {
    let (real, switches) = (quoted(real), quoted(switches));
    format!(
        "#!/bin/sh\n\
         # berth chaos: the real Docker CLI, except for the verbs switched to fail or hang.\n\
         verb=\"$3\"\n\
         if [ -e {switches}/fail-\"$verb\" ]; then\n\
         \techo \"berth chaos: docker $verb fails on purpose\" >&2\n\
         \texit 1\n\
         fi\n\
         while [ -e {switches}/hang-\"$verb\" ]; do sleep 0.1; done\n\
         exec {real} \"$@\"\n"
    )
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// The stand-in in the run's `cli` directory.
#[derive(Debug, Clone)]
pub struct StandIn {
    dir: PathBuf,
}

impl StandIn {
    /// Writes the stand-in for the real CLI `real` into `dir`.
    pub fn install(dir: &Path, real: &Path) -> Result<StandIn, ChaosError> {
        use std::os::unix::fs::PermissionsExt;
        let switches = dir.join("switches");
        std::fs::create_dir_all(&switches).map_err(|e| ChaosError::io(&switches, e))?;
        let program = dir.join("docker");
        std::fs::write(&program, script(real, &switches))
            .map_err(|e| ChaosError::io(&program, e))?;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| ChaosError::io(&program, e))?;
        Ok(StandIn {
            dir: dir.to_owned(),
        })
    }

    /// The stand-in found in `dir`, for `heal`.
    pub fn at(dir: &Path) -> StandIn {
        StandIn {
            dir: dir.to_owned(),
        }
    }

    /// What the agent is given as `--docker`.
    pub fn program(&self) -> PathBuf {
        self.dir.join("docker")
    }

    /// Turns `verb`'s misbehaviour on.
    pub fn switch_on(&self, verb: &str, how: Misbehaviour) -> Result<(), ChaosError> {
        let file = self
            .dir
            .join("switches")
            .join(format!("{}{verb}", how.prefix()));
        std::fs::write(&file, "").map_err(|e| ChaosError::io(&file, e))
    }

    /// Turns every misbehaviour off. A `switches` that is a symlink is refused: the run
    /// made a directory there, so a link was put there by someone else, and what it points
    /// to is not the run's to empty.
    pub fn switch_all_off(&self) -> Result<(), ChaosError> {
        let switches = self.dir.join("switches");
        match std::fs::symlink_metadata(&switches) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ChaosError::Refused(format!(
                "{} is a symlink, not the directory the run made: nothing it points to is touched",
                switches.display()
            )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ChaosError::io(&switches, e)),
        }
        let entries = match std::fs::read_dir(&switches) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ChaosError::io(&switches, e)),
        };
        for entry in entries.flatten() {
            std::fs::remove_file(entry.path()).map_err(|e| ChaosError::io(&entry.path(), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(program: &Path, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .expect("run the stand-in");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn switched_verbs_fail_and_others_reach_the_real_cli() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The "real" CLI echoes its arguments.
        let real = dir.path().join("real docker");
        std::fs::write(&real, "#!/bin/sh\necho \"real $*\"\n").expect("write");
        std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let stand_in = StandIn::install(&dir.path().join("cli"), &real).expect("install");
        let program = stand_in.program();
        let args = ["-H", "unix:///x.sock", "inspect", "c"];
        assert_eq!(run(&program, &args).1, "real -H unix:///x.sock inspect c\n");
        stand_in
            .switch_on("inspect", Misbehaviour::Fail)
            .expect("switch");
        let (code, out, err) = run(&program, &args);
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.contains("docker inspect fails on purpose"), "{err}");
        // Other verbs are not switched.
        assert_eq!(run(&program, &["-H", "u", "ps"]).0, 0);
        stand_in.switch_all_off().expect("off");
        assert_eq!(run(&program, &args).0, 0);
    }

    #[test]
    fn switches_that_link_elsewhere_are_refused_and_what_they_point_to_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).expect("mkdir");
        std::fs::write(theirs.join("data"), "x").expect("write");
        let cli = dir.path().join("cli");
        std::fs::create_dir(&cli).expect("mkdir");
        std::os::unix::fs::symlink(&theirs, cli.join("switches")).expect("symlink");
        let got = StandIn::at(&cli).switch_all_off();
        assert!(
            matches!(&got, Err(ChaosError::Refused(why)) if why.contains("is a symlink")),
            "{got:?}"
        );
        assert!(theirs.join("data").exists());
        // No switches at all: nothing to turn off.
        StandIn::at(&dir.path().join("none"))
            .switch_all_off()
            .expect("nothing to do");
    }

    #[test]
    fn a_hanging_verb_goes_on_once_switched_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stand_in =
            StandIn::install(&dir.path().join("cli"), Path::new("/bin/true")).expect("install");
        stand_in
            .switch_on("stop", Misbehaviour::Hang)
            .expect("switch");
        let mut child = std::process::Command::new(stand_in.program())
            .args(["-H", "u", "stop", "c"])
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(child.try_wait().expect("try_wait"), None, "it hangs");
        stand_in.switch_all_off().expect("off");
        let status = child.wait().expect("wait");
        assert!(status.success());
    }
}

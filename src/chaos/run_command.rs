//! The `berth chaos run` command line that runs a run again, as printed for the operator to
//! paste into a shell: every option that shaped the run and is not its default, each
//! word quoted for `sh` where it must be.

use std::path::Path;
use std::time::Duration;

/// `--image`'s default.
pub const IMAGE: &str = "berth-test/shell:latest";
/// `--docker`'s default.
pub const DOCKER: &str = "docker";
/// `--docker_socket`'s default.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// What a run was given.
#[derive(Debug, Clone, Copy)]
pub struct RunCommand<'a> {
    /// `--sweep`: the seed, duration and faults follow from the crash points.
    pub sweep: bool,
    /// The seed.
    pub seed: u64,
    /// `--duration`.
    pub duration: Duration,
    /// `--settle`.
    pub settle: Duration,
    /// `--max-faults`.
    pub max_faults: u32,
    /// The command that restarts the daemon, when daemon faults are allowed.
    pub restart_daemon: Option<&'a str>,
    /// `--faults`.
    pub faults: Option<&'a str>,
    /// `--sabotage`, by its name.
    pub sabotage: Option<&'a str>,
    /// `--image`.
    pub image: &'a str,
    /// `--pull-image`.
    pub pull_image: &'a str,
    /// `--docker`.
    pub docker: &'a Path,
    /// `--docker_socket`.
    pub docker_socket: &'a Path,
}

impl RunCommand<'_> {
    /// The command line. Pure.
    pub fn line(&self) -> String {
        let mut words: Vec<String> = ["berth", "chaos", "run"].map(str::to_owned).into();
        let duration = crate::duration::format;
        if self.sweep {
            words.push("--sweep".into());
            words.extend(["--settle".into(), duration(self.settle)]);
        } else {
            words.extend([
                "--seed".into(),
                self.seed.to_string(),
                "--duration".into(),
                duration(self.duration),
                "--settle".into(),
                duration(self.settle),
                "--max-faults".into(),
                self.max_faults.to_string(),
            ]);
            if let Some(command) = self.restart_daemon {
                words.push("--allow-daemon-faults".into());
                words.extend(["--restart-daemon-command".into(), command.to_owned()]);
            }
            if let Some(faults) = self.faults {
                words.extend(["--faults".into(), faults.to_owned()]);
            }
        }
        if let Some(sabotage) = self.sabotage {
            words.extend(["--sabotage".into(), sabotage.to_owned()]);
        }
        let path = |p: &Path| p.to_string_lossy().into_owned();
        for (name, value, default) in [
            ("--image", self.image.to_owned(), IMAGE),
            (
                "--pull-image",
                self.pull_image.to_owned(),
                super::workload::PULL_IMAGE,
            ),
            ("--docker", path(self.docker), DOCKER),
            ("--docker_socket", path(self.docker_socket), DOCKER_SOCKET),
        ] {
            if value != default {
                words.extend([name.to_owned(), value]);
            }
        }
        words
            .iter()
            .map(|w| shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `word` as `sh` reads it back: as it is when it holds only characters the shell takes
/// literally, else in single quotes (a quote inside closes them, is escaped, and opens
/// them again). Pure.
pub fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given() -> RunCommand<'static> {
        RunCommand {
            sweep: false,
            seed: 7,
            duration: Duration::from_secs(60),
            settle: Duration::from_secs(30),
            max_faults: 12,
            restart_daemon: None,
            faults: None,
            sabotage: None,
            image: IMAGE,
            pull_image: crate::chaos::workload::PULL_IMAGE,
            docker: Path::new(DOCKER),
            docker_socket: Path::new(DOCKER_SOCKET),
        }
    }

    #[test]
    fn the_replay_command_carries_every_option_that_is_not_the_default_quoted_for_sh() {
        let plain = "berth chaos run --seed 7 --duration 1mins --settle 30secs --max-faults 12";
        let cases: [(RunCommand, String); 6] = [
            (given(), plain.to_owned()),
            (
                RunCommand {
                    restart_daemon: Some("sh -c 'kill -HUP $(cat /run/d.pid)'"),
                    faults: Some("kill_agent,restart_daemon"),
                    docker_socket: Path::new("/tmp/private dir/docker.sock"),
                    ..given()
                },
                format!(
                    r#"{plain} --allow-daemon-faults --restart-daemon-command 'sh -c '\''kill -HUP $(cat /run/d.pid)'\''' --faults kill_agent,restart_daemon --docker_socket '/tmp/private dir/docker.sock'"#
                ),
            ),
            (
                RunCommand {
                    image: "registry:5000/me/shell:1",
                    pull_image: "reg/pulled:2",
                    docker: Path::new("/opt/docker"),
                    sabotage: Some("second-container"),
                    ..given()
                },
                format!(
                    "{plain} --sabotage second-container --image registry:5000/me/shell:1 --pull-image reg/pulled:2 --docker /opt/docker"
                ),
            ),
            (
                RunCommand {
                    sweep: true,
                    ..given()
                },
                "berth chaos run --sweep --settle 30secs".to_owned(),
            ),
            (
                RunCommand {
                    sweep: true,
                    pull_image: "127.0.0.1:5000/x:latest",
                    ..given()
                },
                "berth chaos run --sweep --settle 30secs --pull-image 127.0.0.1:5000/x:latest"
                    .to_owned(),
            ),
            (
                RunCommand {
                    image: "",
                    ..given()
                },
                format!("{plain} --image ''"),
            ),
        ];
        for (command, want) in cases {
            assert_eq!(command.line(), want, "{command:?}");
        }
    }

    #[test]
    fn a_quoted_word_reads_back_the_same_in_sh() {
        for word in [
            "it's",
            "a b",
            r#"$(x) `y` \ "z""#,
            "",
            "plain-1.0:x=y,z",
            "'",
            "\n",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_word(word)))
                .output()
                .expect("sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), word, "{word:?}");
        }
    }
}

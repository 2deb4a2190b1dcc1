//! Running one Docker CLI call: a deadline, output capture, and a kill that reaches every
//! process the call started.
//!
//! The CLI runs in its own process group so that on timeout the whole group is killed: a
//! wrapper script's children must not outlive the call and hold its pipes open.

use std::ffi::OsString;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use super::error::DockerError;

/// Output larger than this is refused rather than buffered: `inspect` of thousands of
/// containers stays far below it.
const MAX_OUTPUT: u64 = 256 * 1024 * 1024;
/// How much of stderr an error carries.
const MAX_STDERR_IN_ERROR: usize = 4096;
/// How much of a command line an error shows.
const MAX_COMMAND_IN_ERROR: usize = 400;

/// One call's request.
pub(super) struct Call<'a> {
    /// The CLI.
    pub program: &'a Path,
    /// Arguments, global options first.
    pub argv: Vec<String>,
    /// Environment to set on top of the agent's.
    pub env: Vec<(&'static str, OsString)>,
    /// Environment variables to remove.
    pub env_remove: &'static [&'static str],
    /// Deadline for the whole call.
    pub timeout: Duration,
}

/// A finished call.
pub(super) struct Finished {
    /// The command line, for messages.
    pub command: String,
    /// Exit code; `None` when ended by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Finished {
    /// The output of a successful call; a failed one becomes [`DockerError::Failed`].
    pub fn success(self) -> Result<Finished, DockerError> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            Err(self.failure())
        }
    }

    /// This call as a failure.
    pub fn failure(self) -> DockerError {
        let mut stderr = self.stderr.trim().to_owned();
        if stderr.len() > MAX_STDERR_IN_ERROR {
            let cut = floor_char_boundary(&stderr, MAX_STDERR_IN_ERROR);
            stderr.truncate(cut);
            stderr.push_str("...");
        }
        DockerError::Failed {
            command: self.command,
            code: self.code,
            stderr,
        }
    }
}

/// Runs the call to completion or to its deadline.
pub(super) async fn run(call: Call<'_>) -> Result<Finished, DockerError> {
    let command = render(call.program, &call.argv);
    let mut cmd = Command::new(call.program);
    cmd.args(&call.argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for key in call.env_remove {
        cmd.env_remove(key);
    }
    for (key, value) in &call.env {
        cmd.env(key, value);
    }
    let child = cmd.spawn().map_err(|source| DockerError::Spawn {
        command: command.clone(),
        source,
    })?;
    // If the caller drops this future (a kill during a pull), the whole group goes too.
    let mut group = Group::new(child);
    let mut stdout = tokio::spawn(read_capped(group.child.stdout.take()));
    let mut stderr = tokio::spawn(read_capped(group.child.stderr.take()));
    let deadline = tokio::time::Instant::now() + call.timeout;
    let timed_out = || DockerError::Timeout {
        command: command.clone(),
        timeout: call.timeout,
    };
    // The pipes are drained before the CLI is reaped, not after: children it left behind
    // may hold them open past its exit, and only while the CLI is unreaped can its group
    // be killed without risk of hitting another group that took over the id.
    let drained = tokio::time::timeout_at(deadline, async {
        ((&mut stdout).await, (&mut stderr).await)
    })
    .await;
    let (stdout, stderr) = match drained {
        Ok(outputs) => outputs,
        Err(_) => {
            group.kill().await;
            stdout.abort();
            stderr.abort();
            return Err(timed_out());
        }
    };
    let status = match tokio::time::timeout_at(deadline, group.wait()).await {
        Ok(status) => status.map_err(|source| DockerError::Spawn {
            command: command.clone(),
            source,
        })?,
        Err(_) => {
            group.kill().await;
            return Err(timed_out());
        }
    };
    let output = |joined: Result<Option<Vec<u8>>, tokio::task::JoinError>| {
        joined.ok().flatten().ok_or_else(|| DockerError::Output {
            command: command.clone(),
            reason: format!("output could not be read or exceeded {MAX_OUTPUT} bytes"),
        })
    };
    let stdout = output(stdout)?;
    let stderr = output(stderr)?;
    Ok(Finished {
        command: command.clone(),
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// A call's CLI, leader of its own process group, which is killed whole when the call
/// times out or is abandoned.
///
/// The group is signalled only while the CLI is unreaped: until then its pid, and so the
/// group id, cannot be reused. Once it is reaped nothing proves the id is still the
/// call's: open pipes do not (their holder may have left the group, and the group may be
/// empty and its id taken by an unrelated process), so a reaped CLI's group is never
/// signalled. That is why the CLI is reaped last, once its pipes are drained: children
/// that hold them keep the call unfinished, and are killed with the group if it is
/// abandoned or times out.
struct Group {
    child: Child,
    pgid: Option<Pid>,
    reaped: bool,
}

impl Group {
    fn new(child: Child) -> Group {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Group {
            child,
            pgid,
            reaped: false,
        }
    }

    /// Waits for the CLI and reaps it.
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        // In the poll that reaped it: the future cannot be dropped between the two. An
        // error leaves it unknown whether the CLI was reaped, so it counts as reaped.
        self.reaped = true;
        status
    }

    /// SIGKILL to the whole group, then reaps the CLI.
    async fn kill(&mut self) {
        self.signal();
        let _ = self.wait().await;
    }

    fn signal(&self) {
        if let (false, Some(pgid)) = (self.reaped, self.pgid) {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal();
        // A CLI that had already exited (its pipes were being drained) is reaped now; one
        // still dying is killed and reaped by tokio (`kill_on_drop`).
        let _ = self.child.try_wait();
    }
}

async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(pipe) = pipe {
        pipe.take(MAX_OUTPUT + 1).read_to_end(&mut buf).await.ok()?;
    }
    (buf.len() as u64 <= MAX_OUTPUT).then_some(buf)
}

/// The command line as a person would type it, shortened for messages.
fn render(program: &Path, argv: &[String]) -> String {
    let mut line = program.display().to_string();
    for arg in argv {
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
            line.push_str(&format!("'{}'", arg.replace('\'', "'\\''")));
        } else {
            line.push_str(arg);
        }
    }
    if line.len() > MAX_COMMAND_IN_ERROR {
        let cut = floor_char_boundary(&line, MAX_COMMAND_IN_ERROR);
        line.truncate(cut);
        line.push_str(" ...");
    }
    line
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_quoted_and_capped() {
        let argv = [
            "run".to_owned(),
            "-c".into(),
            "echo it's".into(),
            String::new(),
        ];
        assert_eq!(
            render(Path::new("docker"), &argv),
            r"docker run -c 'echo it'\''s' ''"
        );
        let long: Vec<String> = (0..100).map(|i| format!("id{i:08}")).collect();
        let line = render(Path::new("docker"), &long);
        assert!(line.len() <= MAX_COMMAND_IN_ERROR + 4);
        assert!(line.ends_with(" ..."));
        assert_eq!(floor_char_boundary("aé", 2), 1);
    }

    #[test]
    fn failure_caps_stderr() {
        let f = Finished {
            command: "docker x".into(),
            code: Some(1),
            stdout: String::new(),
            stderr: "é".repeat(5000),
        };
        match f.failure() {
            DockerError::Failed { stderr, code, .. } => {
                assert_eq!(code, Some(1));
                assert!(stderr.len() <= MAX_STDERR_IN_ERROR + 3);
            }
            other => panic!("unexpected {other}"),
        }
    }
}

//! Starting processes that must outlive the agent, in their own session.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

/// Puts the child in a new session, so that the agent's death (or its terminal's) does
/// not signal it.
#[allow(unsafe_code)]
pub(super) fn detach(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls setsid(2), which is
    // async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
}

/// Starts `berth executor` for container `id` blocked on its stdin, its stdout and stderr
/// going to the given sandbox files and the sandbox as its working directory (so
/// `/proc/<pid>/cwd` says whose executor it is); in a systemd scope of its own when
/// systemd is init (`placement`).
pub(super) fn executor(
    program: &std::path::Path,
    id: uuid::Uuid,
    sandbox: &std::path::Path,
    stdout: Stdio,
    stderr: std::fs::File,
) -> std::io::Result<(Child, ChildStdin)> {
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let (program, args) = super::placement::executor_command(
        program,
        id,
        &attempt[..8],
        super::placement::systemd_scopes(),
    );
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(sandbox)
        .stdout(stdout)
        .stderr(stderr);
    piped(command)
}

/// Starts the Docker CLI `program` with `argv` (a `docker run -i` of an executor's
/// container), its stdin piped for the launch it forwards, its complaints to `stderr`.
/// In a session of its own: a signal to the agent's terminal must not reach it.
pub(super) fn attached(
    program: &std::path::Path,
    argv: &[String],
    stderr: std::fs::File,
) -> std::io::Result<(Child, ChildStdin)> {
    let mut command = Command::new(program);
    command.args(argv).stdout(Stdio::null()).stderr(stderr);
    piped(command)
}

/// Spawns `command` in a session of its own with its stdin piped, returning that pipe.
/// It does not inherit the agent's flag variables: an executor, and a plain-process task
/// after it, must not see `BERTH_DOCKER_CONFIG`, which may hold registry credentials.
fn piped(mut command: Command) -> std::io::Result<(Child, ChildStdin)> {
    for name in crate::flag_env::inherited_variables_to_clear() {
        command.env_remove(name);
    }
    command.stdin(Stdio::piped());
    detach(&mut command);
    let mut child = command.spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the started process has no stdin"))?;
    Ok((child, stdin))
}

/// Hands the launch to a blocked executor and closes its stdin.
pub(super) async fn release(mut stdin: ChildStdin, launch: &[u8]) -> std::io::Result<()> {
    stdin.write_all(launch).await?;
    stdin.shutdown().await
}

/// Reaps a child in the background so it never lingers as a zombie while the agent runs.
pub(super) fn reap(owner: &super::Containerizer, mut child: Child) {
    owner.spawn_owned(async move {
        let _ = child.wait().await;
    });
}

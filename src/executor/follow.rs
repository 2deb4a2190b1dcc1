//! After `docker run` returns: whether Docker confirmed the container's end, and
//! following a container again when only Docker's stream ended.
//!
//! `docker run` attached returns when its stream from the daemon ends, which is also what
//! a daemon restart does. With live-restore the container goes on running; without it the
//! daemon's shutdown ends it. Either way the truth is what `docker inspect` says once the
//! daemon answers again, never `docker run`'s own exit status.

use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::outcome::Exit;
use crate::docker::{ContainerInfo, ContainerState, Docker, DockerError};

/// What the executor does next, from what Docker says after `docker run` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The end is known: report it.
    Report(Exit),
    /// Docker does not answer: wait for it.
    WaitForDocker,
    /// The container still runs; only the stream ended: follow its output again.
    FollowAgain,
}

/// Decides from the inspect after `docker run` returned with `run_code`; `outage` says
/// whether Docker was seen away (or the container seen running on) since. Pure.
pub fn next(
    inspected: &Result<Option<ContainerInfo>, DockerError>,
    run_code: Option<i32>,
    outage: bool,
    stderr_tail: impl FnOnce() -> String,
) -> Next {
    let info = match inspected {
        Err(_) => return Next::WaitForDocker,
        Ok(None) if outage => return Next::Report(Exit::Vanished),
        Ok(None) => {
            return Next::Report(Exit::RunFailed {
                code: run_code,
                stderr_tail: stderr_tail(),
            })
        }
        Ok(Some(info)) => info,
    };
    if info.state.is_live() {
        return Next::FollowAgain;
    }
    match (info.started_at.is_some(), info.exit_code) {
        (true, Some(code)) if outage => Next::Report(Exit::AfterOutage { code }),
        (true, Some(code)) => Next::Report(Exit::Container { code }),
        _ if outage && info.state != ContainerState::Created => Next::Report(Exit::Vanished),
        _ => Next::Report(Exit::RunFailed {
            code: run_code,
            stderr_tail: stderr_tail(),
        }),
    }
}

/// Whether `docker run`, which returned `run_code` and left `stderr_tail`, never reached
/// the daemon (so it created nothing). Pure.
pub fn never_reached(run_code: Option<i32>, stderr_tail: &str) -> bool {
    let said = stderr_tail.to_ascii_lowercase();
    run_code == Some(125)
        && (said.contains("cannot connect to the docker daemon")
            || said.contains("is the docker daemon running"))
}

/// Follows a running container's output again with `docker logs --follow`, appending to
/// the sandbox's `stdout` and `stderr` only what they do not hold yet: Docker's log holds
/// the whole output, and the files hold its first bytes, as the attached stream wrote
/// them, so the first file-length bytes of each stream are skipped. Returns when the
/// stream ends (the container stopped, or the daemon went away again).
pub async fn follow_again(docker: &Docker, name: &str, sandbox: &Path) -> std::io::Result<()> {
    let mut child = docker
        .spawn_logs(name)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    let (stdout, stderr) = (sandbox.join("stdout"), sandbox.join("stderr"));
    let (copied_out, copied_err) =
        tokio::join!(append_after(out, &stdout), append_after(err, &stderr));
    let _ = child.wait().await;
    copied_out.and(copied_err)
}

/// Appends what `from` gives past the target file's current length.
async fn append_after(from: Option<impl AsyncRead + Unpin>, to: &Path) -> std::io::Result<()> {
    let Some(mut from) = from else { return Ok(()) };
    let mut skip = tokio::fs::metadata(to).await.map(|m| m.len()).unwrap_or(0);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)
        .await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return file.flush().await;
        }
        let dropped = usize::try_from(skip).unwrap_or(usize::MAX).min(n);
        skip -= dropped as u64;
        file.write_all(&buf[dropped..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    use super::*;

    fn info(state: ContainerState, started: bool, exit_code: Option<i32>) -> ContainerInfo {
        ContainerInfo {
            id: "c0ffee".into(),
            name: "mesos-a.b".into(),
            state,
            pid: None,
            started_at: started.then_some(SystemTime::UNIX_EPOCH),
            exit_code,
            labels: BTreeMap::new(),
        }
    }

    fn decide(inspected: Result<Option<ContainerInfo>, DockerError>, outage: bool) -> Next {
        next(&inspected, Some(125), outage, || "tail".into())
    }

    #[test]
    fn only_what_docker_says_ends_a_task() {
        let down = || {
            Err(DockerError::Timeout {
                command: "docker inspect".into(),
                timeout: std::time::Duration::from_secs(30),
            })
        };
        let run_failed = Next::Report(Exit::RunFailed {
            code: Some(125),
            stderr_tail: "tail".into(),
        });
        let cases = [
            (down(), false, Next::WaitForDocker),
            (down(), true, Next::WaitForDocker),
            (
                Ok(Some(info(ContainerState::Running, true, None))),
                false,
                Next::FollowAgain,
            ),
            (
                Ok(Some(info(ContainerState::Paused, true, None))),
                true,
                Next::FollowAgain,
            ),
            (
                Ok(Some(info(ContainerState::Exited, true, Some(3)))),
                false,
                Next::Report(Exit::Container { code: 3 }),
            ),
            (
                Ok(Some(info(ContainerState::Exited, true, Some(137)))),
                true,
                Next::Report(Exit::AfterOutage { code: 137 }),
            ),
            (
                Ok(Some(info(ContainerState::Created, false, None))),
                false,
                run_failed.clone(),
            ),
            (
                Ok(Some(info(ContainerState::Created, false, None))),
                true,
                run_failed.clone(),
            ),
            (
                Ok(Some(info(ContainerState::Dead, true, None))),
                true,
                Next::Report(Exit::Vanished),
            ),
            (Ok(None), false, run_failed),
            (Ok(None), true, Next::Report(Exit::Vanished)),
        ];
        for (inspected, outage, want) in cases {
            let shown = format!("{inspected:?}, outage {outage}");
            assert_eq!(decide(inspected, outage), want, "{shown}");
        }
    }

    #[test]
    fn a_run_that_never_reached_docker_is_told_by_its_status_and_words() {
        let unreachable = "docker: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?\n";
        let cases = [
            (Some(125), unreachable, true),
            (Some(125), "Is the docker daemon running?", true),
            (
                Some(125),
                "docker: Error response from daemon: Conflict.",
                false,
            ),
            (Some(1), unreachable, false),
            (None, unreachable, false),
            (Some(125), "", false),
        ];
        for (code, tail, want) in cases {
            assert_eq!(never_reached(code, tail), want, "{code:?} {tail:?}");
        }
    }

    #[tokio::test]
    async fn following_again_appends_only_what_the_file_lacks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("stdout");
        std::fs::write(&file, "0\n1\n2").expect("write");
        // The whole log, as Docker kept it: the file holds its first five bytes.
        let log: &[u8] = b"0\n1\n2\n3\n4\n";
        append_after(Some(log), &file).await.expect("append");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "0\n1\n2\n3\n4\n"
        );
        // Nothing new: nothing appended.
        append_after(Some(&b"0\n1\n"[..]), &file)
            .await
            .expect("append");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "0\n1\n2\n3\n4\n"
        );
    }
}

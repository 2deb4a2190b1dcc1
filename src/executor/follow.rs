//! After `docker run` returns: whether Docker confirmed the container's end, and
//! following a container again when only Docker's stream ended.
//!
//! `docker run` attached returns when its stream from the daemon ends, which is also what
//! a daemon restart does. With live-restore the container goes on running; without it the
//! daemon's shutdown ends it. Either way the truth is what `docker inspect` says once the
//! daemon answers again, never `docker run`'s own exit status.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::outcome::Exit;
use crate::docker::log::Stream;
use crate::docker::{ContainerInfo, ContainerState, DockerError};

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

/// How one sandbox file (`stdout` or `stderr`) stands against Docker's log of the same
/// stream, between two follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    /// How many of the log's bytes the file holds.
    pub held: u64,
    /// The file's length up to which its bytes are accounted for: the container's (as many
    /// as `held`) and, after them, words of the CLI's own (`docker run` saying the daemon
    /// went away), which are left where they are.
    pub end: u64,
}

impl Mark {
    /// Before the container's first byte: the file's current length is all someone else's.
    pub fn at(file: &Path) -> Mark {
        Mark {
            held: 0,
            end: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        }
    }
}

/// How far back from a file's end its bytes are compared with the log rather than taken
/// to be the log's: only the end of what `docker run` wrote can be words of its own.
const WINDOW: u64 = 64 * 1024;

/// One follow of one stream: which of the log's bytes the file lacks. Pure.
///
/// The file's unaccounted bytes (past [`Mark::end`]) are the log's next ones, as the
/// attached stream wrote them, then perhaps the CLI's words. All but the last
/// [`WINDOW`] of them are taken as the log's; the window is compared byte for byte, and
/// the first byte that differs (or the window's end) is where the log's bytes the file
/// lacks begin. So nothing is written twice, nothing is skipped, and a line the
/// attached stream cut short is completed by the log.
#[derive(Debug)]
struct Splice {
    /// Where the window starts in the file.
    window_at: u64,
    /// The file's last unaccounted bytes.
    window: Vec<u8>,
    /// The log's bytes the file holds before the window.
    before: u64,
    /// The log's bytes seen so far.
    seen: u64,
    /// How many of the window's bytes the log matched.
    matched: usize,
    /// Whether the window is still being compared.
    comparing: bool,
    /// Bytes appended to the file.
    appended: u64,
}

impl Splice {
    fn new(mark: Mark, window_at: u64, window: Vec<u8>) -> Splice {
        Splice {
            window_at,
            window,
            before: mark.held + window_at.saturating_sub(mark.end),
            seen: 0,
            matched: 0,
            comparing: true,
            appended: 0,
        }
    }

    /// The part of `chunk`, the log's next bytes, that the file lacks.
    fn feed<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let skip = self.before.saturating_sub(self.seen);
        let mut i = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
        while self.comparing && i < chunk.len() {
            if self.window.get(self.matched) == Some(&chunk[i]) {
                self.matched += 1;
                i += 1;
            } else {
                self.comparing = false;
            }
        }
        self.seen += chunk.len() as u64;
        self.appended += (chunk.len() - i) as u64;
        &chunk[i..]
    }

    /// Where the file stands once the log ended.
    fn mark(&self) -> Mark {
        let matched = self.matched as u64;
        if self.comparing {
            // The rest of the window is not known to be the CLI's: the next follow compares
            // it again.
            Mark {
                held: self.before + matched,
                end: self.window_at + matched,
            }
        } else {
            Mark {
                held: self.before + matched + self.appended,
                end: self.window_at + self.window.len() as u64 + self.appended,
            }
        }
    }
}

/// Follows a running container's output again through the engine's API, appending to
/// the sandbox's `stdout` and `stderr` what they lack of Docker's log ([`Splice`]), and
/// moving `marks` (stdout's, stderr's) on. Returns when the log ends (the container
/// stopped, or the daemon went away again).
pub async fn follow_again(
    socket: &Path,
    name: &str,
    sandbox: &Path,
    marks: &mut [Mark; 2],
) -> std::io::Result<()> {
    let mut log = crate::docker::log::follow(socket, name).await?;
    let mut out = Target::open(&sandbox.join("stdout"), marks[0]).await?;
    let mut err = Target::open(&sandbox.join("stderr"), marks[1]).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let ended = loop {
        match log.next(&mut buf).await {
            Ok(Some((stream, n))) => {
                let target = match stream {
                    Stream::Stdout => &mut out,
                    Stream::Stderr => &mut err,
                };
                let lacking = target.splice.feed(&buf[..n]);
                if let Err(e) = target.file.write_all(lacking).await {
                    break Err(e);
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // What was written stands even if the log broke off: the marks say so.
    let flushed = out.file.flush().await.and(err.file.flush().await);
    *marks = [out.splice.mark(), err.splice.mark()];
    ended.and(flushed)
}

/// A sandbox file being spliced.
struct Target {
    file: tokio::fs::File,
    splice: Splice,
}

impl Target {
    async fn open(path: &Path, mark: Mark) -> std::io::Result<Target> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .await?;
        let len = file.metadata().await?.len();
        let window_at = len.saturating_sub(WINDOW).max(mark.end.min(len));
        file.seek(std::io::SeekFrom::Start(window_at)).await?;
        let mut window = Vec::new();
        (&mut file)
            .take(len - window_at)
            .read_to_end(&mut window)
            .await?;
        Ok(Target {
            file,
            splice: Splice::new(mark, window_at, window),
        })
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

    /// The file as the splice leaves it: `file` then what `log` (in `pieces`) adds.
    fn spliced(mark: Mark, file: &str, log: &[&str]) -> (String, Mark) {
        let len = file.len() as u64;
        let window_at = len.saturating_sub(WINDOW).max(mark.end.min(len));
        let window = file.as_bytes()[window_at as usize..].to_vec();
        let mut splice = Splice::new(mark, window_at, window);
        let mut out = file.to_owned();
        for piece in log {
            out.push_str(std::str::from_utf8(splice.feed(piece.as_bytes())).expect("utf-8"));
        }
        (out, splice.mark())
    }

    #[test]
    fn the_log_fills_in_only_what_the_file_lacks() {
        let start = |end| Mark { held: 0, end };
        let cases = [
            // The attached stream wrote the first lines; the log has them and more.
            (
                start(0),
                "0\n1\n",
                vec!["0\n1\n2\n"],
                "0\n1\n2\n",
                Mark { held: 6, end: 6 },
            ),
            // In pieces that cut the window anywhere.
            (
                start(0),
                "0\n1\n",
                vec!["0", "\n1\n", "2", "\n"],
                "0\n1\n2\n",
                Mark { held: 6, end: 6 },
            ),
            // The CLI's words after the container's: left where they are, not taken as
            // the log's.
            (
                start(0),
                "a\nerror waiting for container: unexpected EOF\n",
                vec!["a\nb\n"],
                "a\nerror waiting for container: unexpected EOF\nb\n",
                Mark { held: 4, end: 48 },
            ),
            // A line the attached stream cut short is completed.
            (
                start(0),
                "0\npart",
                vec!["0\npartial\n"],
                "0\npartial\n",
                Mark { held: 10, end: 10 },
            ),
            // The attached stream's last bytes never reached the log (the daemon dropped
            // them): the log's go on after them.
            (
                start(0),
                "0\npart",
                vec!["0\nnext\n"],
                "0\npartnext\n",
                Mark { held: 7, end: 11 },
            ),
            // Someone else's bytes before the container's first.
            (
                start(6),
                "fetch\n0\n",
                vec!["0\n1\n"],
                "fetch\n0\n1\n",
                Mark { held: 4, end: 10 },
            ),
            // Nothing new: nothing appended, and the mark stays.
            (
                Mark { held: 4, end: 4 },
                "0\n1\n",
                vec!["0\n1\n"],
                "0\n1\n",
                Mark { held: 4, end: 4 },
            ),
            // A second follow after words of the CLI's: the first 4 log bytes are held, the
            // words are accounted for; only the new bytes are written.
            (
                Mark { held: 4, end: 9 },
                "a\nb\nEOF\n\n",
                vec!["a\nb\nc\n"],
                "a\nb\nEOF\n\nc\n",
                Mark { held: 6, end: 11 },
            ),
            // The log broke off inside the window: the rest is compared again next time.
            (
                start(0),
                "0\n1\n",
                vec!["0\n"],
                "0\n1\n",
                Mark { held: 2, end: 2 },
            ),
        ];
        for (mark, file, log, want, want_mark) in cases {
            let (got, got_mark) = spliced(mark, file, &log);
            assert_eq!(
                (got.as_str(), got_mark),
                (want, want_mark),
                "{mark:?} {file:?} {log:?}"
            );
        }
    }

    #[test]
    fn bytes_before_the_window_are_taken_as_the_logs() {
        // A long output: only its last WINDOW bytes are compared; the CLI's words at the
        // end are still found.
        let body: String = (0..20_000).map(|i| format!("{i}\n")).collect();
        let file = format!("{body}docker: error\n");
        let log = format!("{body}tail\n");
        let (got, mark) = spliced(Mark::default(), &file, &[&log]);
        assert_eq!(got, format!("{file}tail\n"));
        assert_eq!(mark.held, log.len() as u64);
        assert_eq!(mark.end, got.len() as u64);
    }
}

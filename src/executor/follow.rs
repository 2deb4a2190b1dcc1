//! A container's output, carried to the sandbox from Docker's log, and whether Docker
//! confirmed the container's end when the log ended.
//!
//! The log ends when the container stops, and also when the daemon goes away (a restart,
//! an upgrade). With live-restore the container goes on running; without it the daemon's
//! shutdown ends it. Either way the truth is what `docker inspect` says once the daemon
//! answers again; a container that runs on is followed again from where the sandbox's
//! files stand ([`Position`]).

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use super::outcome::Exit;
use crate::docker::log::Stream;
use crate::docker::{ContainerInfo, ContainerState, DockerError};

/// What the executor does next, from what Docker says once the container's log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The end is known: report it.
    Report(Exit),
    /// Docker does not answer: wait for it.
    WaitForDocker,
    /// The container still runs; only the stream ended: follow its output again.
    FollowAgain,
}

/// Decides from the inspect once the log ended; `run_code` is what starting the container
/// returned, if it failed; `outage` says whether Docker was seen away (or the container
/// seen running on after its log ended) since. Pure.
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

/// Where one sandbox file (`stdout` or `stderr`) stands in Docker's log of the same
/// stream: the files hold exactly the log's bytes, in order, so the time of the last
/// message they hold bytes of, and how many bytes of the messages at that time, say
/// where to go on from. Times survive what a byte count does not: Docker rotating the
/// log's first files away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// When Docker logged the last message the file holds bytes of; `None` before the
    /// first follow, when `bytes` counts from the log's start.
    pub at: Option<SystemTime>,
    /// How many bytes of the messages logged at that time the file holds (the pieces of
    /// one long line share their time); without a time, how many of the log's first.
    pub bytes: u64,
}

/// How far one follow has come through the messages it is sent again.
#[derive(Debug, Clone, Copy, Default)]
struct Resume {
    /// A message the file lacked has come: everything from here on is new.
    caught_up: bool,
    /// Bytes of the messages at the position's time seen in this follow.
    seen_at: u64,
}

impl Position {
    /// How many of the first bytes of a message logged `at`, `len` bytes long, the file
    /// holds already. Pure.
    fn held(&self, resume: &mut Resume, at: SystemTime, len: usize) -> usize {
        if resume.caught_up {
            return 0;
        }
        match self.at {
            Some(mine) if at < mine => return len,
            Some(mine) if at > mine => {
                resume.caught_up = true;
                return 0;
            }
            // At the position's time, or counting from the log's start.
            _ => {}
        }
        let held = usize::try_from(self.bytes.saturating_sub(resume.seen_at))
            .unwrap_or(usize::MAX)
            .min(len);
        resume.seen_at += len as u64;
        if held < len {
            resume.caught_up = true;
        }
        held
    }

    /// The file took `written` more bytes of a message logged `at`, of which it held the
    /// first `held` already.
    fn took(&mut self, at: SystemTime, held: u64, written: u64) {
        match self.at {
            Some(mine) if mine == at => self.bytes += written,
            // A clock Docker's host set back: the file still holds what it holds.
            Some(mine) if mine > at => {}
            _ => {
                self.at = Some(at);
                self.bytes = held + written;
            }
        }
    }
}

/// Follows a container's log through the engine's API, appending to the sandbox's
/// `stdout` and `stderr` what they lack of it ([`Position`]), and moving `positions`
/// (stdout's, stderr's) on as each write lands. Returns when the log ends (the container
/// stopped, or the daemon went away).
pub async fn follow(
    socket: &Path,
    name: &str,
    sandbox: &Path,
    positions: &mut [Position; 2],
) -> std::io::Result<()> {
    // The stream that holds the least says where to start; the other's messages before
    // its own position are skipped by it.
    let since = positions.iter().filter_map(|p| p.at).min();
    let mut log = crate::docker::log::follow(socket, name, since).await?;
    let mut files = [
        append_to(&sandbox.join("stdout"))?,
        append_to(&sandbox.join("stderr"))?,
    ];
    let mut resume = [Resume::default(); 2];
    while let Some(message) = log
        .next(|e| tracing::warn!(container = %name, "Docker says in the container's log: {e}"))
        .await?
    {
        let i = match message.stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let held = positions[i].held(&mut resume[i], message.at, message.bytes.len());
        let mut rest = &message.bytes[held..];
        let mut landed = held as u64;
        // Counted as each write lands, so that a write that fails half-way (a full disk)
        // leaves the position where the file is.
        while !rest.is_empty() {
            let n = files[i].write(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            positions[i].took(message.at, landed, n as u64);
            landed += n as u64;
            rest = &rest[n..];
        }
    }
    Ok(())
}

fn append_to(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
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

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms)
    }

    /// What a follow from `position` writes of `log` (messages as (time, bytes)), and the
    /// position after.
    fn resumed(mut position: Position, log: &[(u64, &str)]) -> (String, Position) {
        let mut resume = Resume::default();
        let mut out = String::new();
        for (ms, text) in log {
            let held = position.held(&mut resume, at(*ms), text.len());
            out.push_str(&text[held..]);
            if held < text.len() {
                position.took(at(*ms), held as u64, (text.len() - held) as u64);
            }
        }
        (out, position)
    }

    fn pos(ms: u64, bytes: u64) -> Position {
        Position {
            at: Some(at(ms)),
            bytes,
        }
    }

    #[test]
    fn a_follow_writes_only_what_the_file_lacks() {
        let log = [(1, "0\n"), (2, "1\n"), (3, "2\n")];
        let cases = [
            // Nothing held yet: everything.
            (Position::default(), &log[..], "0\n1\n2\n", pos(3, 2)),
            // The first two held.
            (pos(2, 2), &log[..], "2\n", pos(3, 2)),
            // All held: nothing, and the position stays.
            (pos(3, 2), &log[..], "", pos(3, 2)),
            // The log asked from a later time (`since`): the held ones are not sent.
            (pos(2, 2), &log[2..], "2\n", pos(3, 2)),
            // A long line in pieces sharing their time, broken off after the first piece
            // and part of the second.
            (
                pos(5, 6),
                &[(5, "aaaa"), (5, "bbbb"), (6, "\n")][..],
                "bb\n",
                pos(6, 1),
            ),
            // Docker rotated the held messages away: the log starts later; nothing new
            // is skipped.
            (pos(2, 2), &[(9, "9\n")][..], "9\n", pos(9, 2)),
            // Counting from the log's start (a carrier that took over from a dead one):
            // the first three bytes held, the rest of the second message and the third
            // written.
            (
                Position { at: None, bytes: 3 },
                &log[..],
                "\n2\n",
                pos(3, 2),
            ),
            // A count within one message: its time and its whole length after.
            (Position { at: None, bytes: 1 }, &log[..1], "\n", pos(1, 2)),
        ];
        for (position, log, want, want_position) in cases {
            let (got, got_position) = resumed(position, log);
            assert_eq!(
                (got.as_str(), got_position),
                (want, want_position),
                "{position:?} {log:?}"
            );
        }
    }

    #[test]
    fn once_caught_up_every_message_is_written_even_one_logged_earlier() {
        // A clock set back after the resume point: the later message is still new.
        let (got, position) = resumed(pos(2, 2), &[(2, "1\n"), (3, "2\n"), (1, "x\n")]);
        assert_eq!(got, "2\nx\n");
        assert_eq!(position, pos(3, 2));
    }
}

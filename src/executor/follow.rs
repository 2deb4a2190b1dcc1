//! A container's output, carried to the sandbox from Docker's log, and whether Docker
//! confirmed the container's end when the log ended.
//!
//! The log ends when the container stops, and also when the daemon goes away (a restart,
//! an upgrade). With live-restore the container goes on running; without it the daemon's
//! shutdown ends it. Either way the truth is what `docker inspect` says once the daemon
//! answers again; a container that runs on is followed again from where the sandbox's
//! files stand ([`Position`]).

use std::path::Path;
use std::time::SystemTime;

use super::outcome::Exit;
use super::rotate::{self, Rotation, Sink};
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

/// Decides from the inspect of a container that was started, once its log ended;
/// `outage` says whether Docker was seen away (or the container seen running on after its
/// log ended) since. Pure.
pub fn next(
    inspected: &Result<Option<ContainerInfo>, DockerError>,
    outage: bool,
    stderr_tail: impl FnOnce() -> String,
) -> Next {
    let info = match inspected {
        Err(_) => return Next::WaitForDocker,
        // Started, and Docker no longer knows it: gone, whatever its end was.
        Ok(None) => return Next::Report(Exit::Vanished),
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
            code: None,
            stderr_tail: stderr_tail(),
        }),
    }
}

/// Where one sandbox file (`stdout` or `stderr`) stands in Docker's log of the same
/// stream: the files hold exactly the log's bytes, in order, so a point in the log says
/// where to go on from: the time of the last message they hold bytes of, and how many
/// bytes of the messages at that time (times survive what a byte count from the start
/// does not: Docker rotating the log's first files away); and how many bytes past that
/// point, written after the point was last saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// When Docker logged the last message the file holds bytes of; `None`: counting from
    /// the log's start.
    pub at: Option<SystemTime>,
    /// How many bytes of the messages logged at that time the file holds (the pieces of
    /// one long line share their time); without a time, how many of the log's first.
    pub bytes: u64,
    /// How many bytes past that point the file holds.
    pub after: u64,
}

/// How far one follow has come through the messages it is sent again.
#[derive(Debug, Clone, Copy, Default)]
struct Resume {
    /// A message the file lacked has come: everything from here on is new, but for what
    /// Docker sends twice.
    caught_up: bool,
    /// Bytes seen at the position's time, or from the start.
    seen: u64,
    /// Bytes past the position's point taken as held.
    past: u64,
    /// The time of the last message seen, and the bytes of the messages at that time seen
    /// so far (the current one included).
    same: Option<(SystemTime, u64)>,
    /// The bytes of the messages at the current one's time seen before it.
    before: u64,
    /// The last message written: its time, and whether it ended a line.
    last: Option<(SystemTime, bool)>,
}

impl Position {
    /// Whether the file holds nothing past its point, counted from the start: then the log
    /// must be asked for from its start.
    fn counts_from_start(&self) -> bool {
        self.at.is_none() && (self.bytes > 0 || self.after > 0)
    }

    /// How many of the first bytes of `message`, logged `at`, the file holds already.
    /// Pure.
    fn held(&self, resume: &mut Resume, at: SystemTime, message: &[u8]) -> usize {
        let len = message.len();
        let before = match resume.same {
            Some((time, n)) if time == at => n,
            _ => 0,
        };
        resume.same = Some((at, before + len as u64));
        resume.before = before;
        if resume.caught_up {
            // Docker's follower sends the last message again when it rotates the log: one
            // older than the last written, or at its time when that one ended a line.
            return match resume.last {
                Some((time, ended)) if at < time || (at == time && ended) => len,
                _ => 0,
            };
        }
        let to_point = |seen: &mut u64| {
            let held = usize::try_from(self.bytes.saturating_sub(*seen))
                .unwrap_or(usize::MAX)
                .min(len);
            *seen += len as u64;
            held
        };
        let before_point = match self.at {
            Some(mine) if at < mine => len,
            Some(mine) if at > mine => 0,
            // At the point's time, or counting from the log's start.
            _ => to_point(&mut resume.seen),
        };
        let past = usize::try_from(self.after.saturating_sub(resume.past))
            .unwrap_or(usize::MAX)
            .min(len - before_point);
        resume.past += past as u64;
        let held = before_point + past;
        if held < len {
            resume.caught_up = true;
        }
        held
    }

    /// The file now holds the first `upto` bytes of the current message, logged `at`.
    fn took(
        &mut self,
        resume: &mut Resume,
        at: SystemTime,
        upto: u64,
        whole: bool,
        ended_line: bool,
    ) {
        if whole {
            resume.last = Some((at, ended_line));
        }
        if self.at.is_some_and(|mine| at < mine) {
            // A clock Docker's host set back: the point stays where it is.
            return;
        }
        self.at = Some(at);
        self.bytes = resume.before + upto;
        self.after = 0;
    }
}

/// Where the positions are saved beside the files, so that whoever takes over from a
/// carrier that died goes on exactly where it stood.
pub const SAVED: &str = ".berth-output-position";

/// A saved point of one stream, with how many bytes the stream's files had when it was
/// saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Saved {
    /// Nanoseconds since the epoch of the point's time; none when counting from the start.
    at_ns: Option<u128>,
    bytes: u64,
    /// The bytes the stream's files had in all, rotated-away ones included (see
    /// `rotate`), so that a count survives a rotation.
    file_len: u64,
}

/// The saved record's fixed size: each save overwrites it in one write.
const SAVED_LEN: usize = 512;

/// The positions to go on from after a carrier died, from what it saved and what the files
/// hold now (bytes written after the last save are past its point); counted from the log's
/// start when nothing readable was saved.
pub fn taken_over(sandbox: &Path) -> [Position; 2] {
    let saved: Option<[Saved; 2]> =
        super::sandbox_file::read_capped(&sandbox.join(SAVED), 4 * SAVED_LEN as u64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(bytes.trim_ascii_end()).ok());
    let mut positions = [Position::default(); 2];
    for (i, file) in ["stdout", "stderr"].into_iter().enumerate() {
        let len = rotate::written(sandbox, file);
        positions[i] = match saved {
            Some(saved) if saved[i].file_len <= len => Position {
                at: saved[i]
                    .at_ns
                    .and_then(|ns| u64::try_from(ns).ok())
                    .map(|ns| SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(ns)),
                bytes: saved[i].bytes,
                after: len - saved[i].file_len,
            },
            _ => Position {
                at: None,
                bytes: len,
                after: 0,
            },
        };
    }
    positions
}

/// Follows a container's log through the engine's API, appending to the sandbox's
/// `stdout` and `stderr` (rotated by `rotation`) what they lack of it ([`Position`]), and
/// moving `positions` (stdout's, stderr's) on as each write lands, saving them beside the
/// files. Returns when the log ends (the container stopped, or the daemon went away).
pub async fn follow(
    socket: &Path,
    name: &str,
    sandbox: &Path,
    rotation: Option<Rotation>,
    positions: &mut [Position; 2],
) -> std::io::Result<()> {
    // A stream counted from the start needs the whole log; otherwise the stream that holds
    // the least says where to start, and the other skips what it holds.
    let since = if positions.iter().any(Position::counts_from_start) {
        None
    } else {
        positions.iter().filter_map(|p| p.at).min()
    };
    let mut log = crate::docker::log::follow(socket, name, since).await?;
    let mut files = [
        Sink::open(sandbox, "stdout", rotation.map(|r| r.stdout))?,
        Sink::open(sandbox, "stderr", rotation.map(|r| r.stderr))?,
    ];
    let saved = super::sandbox_file::write(&sandbox.join(SAVED))?;
    let mut resume = [Resume::default(); 2];
    while let Some(message) = log
        .next(|e| tracing::warn!(container = %name, "Docker says in the container's log: {e}"))
        .await?
    {
        let i = match message.stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let bytes = &message.bytes;
        let held = positions[i].held(&mut resume[i], message.at, bytes);
        let mut upto = held;
        // Counted as each write lands, so that a write that fails half-way (a full disk)
        // leaves the position where the file is.
        super::on_disk(|| -> std::io::Result<()> {
            while upto < bytes.len() {
                let n = files[i].write(&bytes[upto..])?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                upto += n;
                let whole = upto == bytes.len();
                let ended_line = bytes.last() == Some(&b'\n');
                positions[i].took(&mut resume[i], message.at, upto as u64, whole, ended_line);
                save(&saved, positions, &[files[0].written(), files[1].written()])?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Overwrites the saved record in one write: a record torn by a crash does not read, and
/// whoever takes over counts from the start instead.
fn save(file: &std::fs::File, positions: &[Position; 2], lens: &[u64; 2]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let saved = [0, 1].map(|i| Saved {
        at_ns: positions[i]
            .at
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos()),
        bytes: positions[i].bytes,
        // A position with bytes past its point was never saved after them: none here.
        file_len: lens[i] - positions[i].after,
    });
    let mut record = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
    record.resize(SAVED_LEN.max(record.len()), b' ');
    file.write_all_at(&record, 0)
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
            pid_mode: String::new(),
            mounts: Vec::new(),
        }
    }

    fn decide(inspected: Result<Option<ContainerInfo>, DockerError>, outage: bool) -> Next {
        next(&inspected, outage, || "tail".into())
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
            code: None,
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
            (Ok(None), false, Next::Report(Exit::Vanished)),
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
            let held = position.held(&mut resume, at(*ms), text.as_bytes());
            out.push_str(&text[held..]);
            if held < text.len() {
                position.took(
                    &mut resume,
                    at(*ms),
                    text.len() as u64,
                    true,
                    text.ends_with('\n'),
                );
            }
        }
        (out, position)
    }

    fn pos(ms: u64, bytes: u64) -> Position {
        Position {
            at: Some(at(ms)),
            bytes,
            after: 0,
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
                Position {
                    at: None,
                    bytes: 3,
                    after: 0,
                },
                &log[..],
                "\n2\n",
                pos(3, 2),
            ),
            // A count within one message: its time and its whole length after.
            (
                Position {
                    at: None,
                    bytes: 1,
                    after: 0,
                },
                &log[..1],
                "\n",
                pos(1, 2),
            ),
            // Bytes past a saved point (a carrier killed between its write and its save).
            (
                Position {
                    at: Some(at(1)),
                    bytes: 2,
                    after: 3,
                },
                &log[..],
                "\n",
                pos(3, 2),
            ),
            // Pieces of a long line taken over in the middle: the earlier pieces count at
            // their time.
            (
                Position {
                    at: None,
                    bytes: 6,
                    after: 0,
                },
                &[(5, "aaaa"), (5, "bbbb"), (5, "cc\n")][..],
                "bbcc\n",
                pos(5, 11),
            ),
            // Docker sends the last message again as it rotates the log: written once.
            (
                Position::default(),
                &[(1, "0\n"), (2, "1\n"), (2, "1\n"), (1, "0\n"), (3, "2\n")][..],
                "0\n1\n2\n",
                pos(3, 2),
            ),
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
    fn a_follow_after_a_takeover_goes_on_from_its_own_point() {
        // Taken over in the middle of a long line, then followed again after a restart:
        // nothing twice.
        let first = [(5, "aaaa"), (5, "bbbb"), (5, "cc")];
        let (out, position) = resumed(
            Position {
                at: None,
                bytes: 6,
                after: 0,
            },
            &first,
        );
        assert_eq!(out, "bbcc");
        let again = [(5, "aaaa"), (5, "bbbb"), (5, "cc"), (6, "\n")];
        let (out, position) = resumed(position, &again);
        assert_eq!(out, "\n");
        assert_eq!(position, pos(6, 1));
    }

    #[test]
    fn a_quiet_stream_counted_from_the_start_asks_for_the_whole_log() {
        assert!(Position {
            at: None,
            bytes: 3,
            after: 0
        }
        .counts_from_start());
        assert!(!Position::default().counts_from_start());
        assert!(!pos(1, 3).counts_from_start());
    }

    #[test]
    fn a_takeover_reads_what_the_carrier_saved_and_what_it_wrote_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("stdout"), "0\n1\n2\n").expect("write");
        std::fs::write(dir.path().join("stderr"), "e\n").expect("write");
        // Nothing saved: counted from the start.
        assert_eq!(
            taken_over(dir.path()),
            [
                Position {
                    at: None,
                    bytes: 6,
                    after: 0
                },
                Position {
                    at: None,
                    bytes: 2,
                    after: 0
                },
            ]
        );
        // Saved after "0\n1\n" and "e\n"; "2\n" written after.
        let saved = dir.path().join(SAVED);
        let file = std::fs::File::create(&saved).expect("create");
        let positions = [pos(2, 2), pos(1, 2)];
        save(&file, &positions, &[4, 2]).expect("save");
        assert_eq!(
            taken_over(dir.path()),
            [
                Position {
                    at: Some(at(2)),
                    bytes: 2,
                    after: 2
                },
                Position {
                    at: Some(at(1)),
                    bytes: 2,
                    after: 0
                },
            ]
        );
        // A torn record reads as nothing saved.
        std::fs::write(&saved, "{\"at").expect("write");
        assert_eq!(
            taken_over(dir.path())[0],
            Position {
                at: None,
                bytes: 6,
                after: 0
            }
        );
    }
}

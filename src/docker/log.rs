//! A container's log, followed through the engine's API on its socket rather than with
//! `docker logs` or an attached `docker run`: the API's multiplexed stream tells the
//! container's stdout and stderr apart and carries nothing else, where the CLI writes its
//! own errors (a daemon that goes away in the middle) into the same stderr as the
//! container's; and each message comes with the time Docker logged it, which says exactly
//! where a follow broke off, even after Docker rotated the log's first files away.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::UnixStream;

/// Which of the container's streams a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// One message of the log: a line, or a piece of a long one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its stream.
    pub stream: Stream,
    /// When Docker logged it; the pieces of one long line share it.
    pub at: SystemTime,
    /// What the container wrote.
    pub bytes: Vec<u8>,
}

/// A container's log, followed until the container stops or the daemon goes away.
pub struct LogFollow<R> {
    reader: R,
}

/// The most one message may hold: Docker splits lines at 16 KiB (json-file) or 1 MiB.
const MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// Which part of a container's log to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Query {
    /// Only what Docker logged from then on (the whole log without it).
    pub since: Option<SystemTime>,
    /// Only the last this many lines (of both streams together), as `docker logs --tail`.
    pub tail: Option<u64>,
    /// Keep reading what comes until the container stops.
    pub follow: bool,
}

/// Connects to the engine at `socket` and asks for the log of container `name`, followed,
/// from `since` on (the whole log without it).
pub async fn follow(
    socket: &Path,
    name: &str,
    since: Option<SystemTime>,
) -> io::Result<LogFollow<BufReader<UnixStream>>> {
    let query = Query {
        since,
        tail: None,
        follow: true,
    };
    open(socket, name, &query).await
}

/// Connects to the engine at `socket` and asks for the part of container `name`'s log
/// that `query` names.
pub async fn open(
    socket: &Path,
    name: &str,
    query: &Query,
) -> io::Result<LogFollow<BufReader<UnixStream>>> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a container name berth makes"),
        ));
    }
    let opened = super::engine::open(socket, &path(name, query), super::engine::HEAD_LIMIT)
        .await
        .map_err(|e| match e.kind() {
            // The engine answered something other than HTTP: it cannot give the log.
            io::ErrorKind::InvalidData => io::Error::new(io::ErrorKind::Unsupported, e),
            _ => e,
        })?;
    accepted(opened.status)?;
    Ok(LogFollow {
        reader: opened.body,
    })
}

/// The request path of a container's log: both streams, with Docker's times. Pure.
fn path(name: &str, query: &Query) -> String {
    let since = query.since.map(since_param).unwrap_or_default();
    let tail = query.tail.map(|n| format!("&tail={n}")).unwrap_or_default();
    let follow = u8::from(query.follow);
    format!("/containers/{name}/logs?follow={follow}&stdout=1&stderr=1&timestamps=1{since}{tail}")
}

/// The `since` query parameter: seconds and nanoseconds since the epoch. Pure.
fn since_param(at: SystemTime) -> String {
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("&since={}.{:09}", d.as_secs(), d.subsec_nanos())
}

impl<R: AsyncRead + Unpin> LogFollow<R> {
    /// The next message; `None` once the log ends (the container stopped, or the daemon
    /// went away: a message cut short is not returned). Docker's own errors in the
    /// stream (a log entry it cannot read) are passed to `on_error` and skipped.
    pub async fn next(&mut self, on_error: impl Fn(&str)) -> io::Result<Option<Message>> {
        loop {
            let mut header = [0u8; 8];
            match self.reader.read_exact(&mut header).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let (kind, len) = frame_header(&header)?;
            let mut payload = vec![0u8; len];
            match self.reader.read_exact(&mut payload).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let stream = match kind {
                Frame::Stdout => Stream::Stdout,
                Frame::Stderr => Stream::Stderr,
                Frame::System => {
                    on_error(String::from_utf8_lossy(&payload).trim_end());
                    continue;
                }
            };
            let (at, bytes) = stamped(&payload)?;
            return Ok(Some(Message { stream, at, bytes }));
        }
    }
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Stdout,
    Stderr,
    /// Docker's own error, in the middle of the stream.
    System,
}

/// Whether the response's status line says the log follows. Pure.
fn accepted(status: u16) -> io::Result<()> {
    if status == 200 {
        return Ok(());
    }
    // Unsupported: the engine answered, and it cannot give this container's log (a log
    // driver it cannot read back); not a daemon away.
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the Docker engine refused the container's log with status {status}"),
    ))
}

/// A multiplexed frame's header: the stream (1 stdout, 2 stderr, 3 Docker's error), three
/// zero bytes, and the payload's length, big-endian. Pure.
fn frame_header(header: &[u8; 8]) -> io::Result<(Frame, usize)> {
    let kind = match header[0] {
        1 => Frame::Stdout,
        2 => Frame::Stderr,
        3 => Frame::System,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the Docker engine sent a log frame of unknown stream {other} (a container with a TTY?)"),
            ))
        }
    };
    let len = usize::try_from(u32::from_be_bytes([
        header[4], header[5], header[6], header[7],
    ]))
    .unwrap_or(usize::MAX);
    if len > MESSAGE_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the Docker engine sent a log message of {len} bytes, more than berth reads ({MESSAGE_LIMIT})"),
        ));
    }
    Ok((kind, len))
}

/// A message's time and bytes: Docker puts the time, RFC 3339 with nanoseconds, and a
/// space before what the container wrote. Pure.
fn stamped(payload: &[u8]) -> io::Result<(SystemTime, Vec<u8>)> {
    let space = payload.iter().position(|&b| b == b' ');
    let at = space
        .and_then(|i| std::str::from_utf8(&payload[..i]).ok())
        .and_then(rfc3339);
    match (space, at) {
        (Some(i), Some(at)) => Ok((at, payload[i + 1..].to_vec())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a log message without the time Docker logged it",
        )),
    }
}

/// An RFC 3339 time with nanoseconds, in UTC (`Z`) or with an offset (some log drivers
/// give the daemon's local time). Pure.
fn rfc3339(text: &str) -> Option<SystemTime> {
    if let Some(utc) = text.strip_suffix('Z') {
        return humantime::parse_rfc3339(&format!("{utc}Z")).ok();
    }
    // The offset's sign comes after the time of day, past the date's own dashes.
    let sign_at = text.get(19..)?.find(['+', '-'])? + 19;
    let (local, offset) = text.split_at(sign_at);
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    let seconds = hours.parse::<u64>().ok()? * 3600 + minutes.parse::<u64>().ok()? * 60;
    let local = humantime::parse_rfc3339(&format!("{local}Z")).ok()?;
    let offset = Duration::from_secs(seconds);
    match offset.is_zero() || text.as_bytes()[sign_at] == b'+' {
        true => local.checked_sub(offset),
        false => local.checked_add(offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_ask_for_what_the_query_names() {
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_767_225_600, 5);
        let cases = [
            (
                Query {
                    since: None,
                    tail: None,
                    follow: true,
                },
                "follow=1&stdout=1&stderr=1&timestamps=1",
            ),
            (
                Query {
                    since: Some(at),
                    tail: Some(10),
                    follow: false,
                },
                "follow=0&stdout=1&stderr=1&timestamps=1&since=1767225600.000000005&tail=10",
            ),
        ];
        for (query, want) in cases {
            assert_eq!(
                path("mesos-a.b", &query),
                format!("/containers/mesos-a.b/logs?{want}"),
                "{query:?}"
            );
        }
    }

    #[test]
    fn only_a_200_opens_the_log() {
        let cases = [(200, true), (404, false), (500, false), (204, false)];
        for (status, ok) in cases {
            assert_eq!(accepted(status).is_ok(), ok, "{status:?}");
        }
    }

    #[test]
    fn frame_headers_name_their_stream_and_length() {
        type Case = ([u8; 8], Option<(Frame, usize)>);
        let cases: [Case; 6] = [
            ([1, 0, 0, 0, 0, 0, 0, 5], Some((Frame::Stdout, 5))),
            ([2, 0, 0, 0, 0, 0, 1, 0], Some((Frame::Stderr, 256))),
            ([3, 0, 0, 0, 0, 0, 0, 9], Some((Frame::System, 9))),
            ([0, 0, 0, 0, 0, 0, 0, 1], None),
            ([b'h', b'e', b'l', b'l', b'o', 0, 0, 1], None),
            ([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], None),
        ];
        for (header, want) in cases {
            assert_eq!(frame_header(&header).ok(), want, "{header:?}");
        }
    }

    #[test]
    fn times_in_utc_or_with_an_offset_are_the_same_instant() {
        let utc = rfc3339("2026-12-01T18:57:33.437955742Z").expect("utc");
        for text in [
            "2026-12-01T19:57:33.437955742+01:00",
            "2026-12-01T13:57:33.437955742-05:00",
            "2026-12-01T18:57:33.437955742+00:00",
        ] {
            assert_eq!(rfc3339(text), Some(utc), "{text}");
        }
        for bad in ["", "2026-12-01", "2026-12-01T18:57:33+1", "yesterday"] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_is_seconds_and_nanoseconds() {
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(since_param(at), "&since=1700000000.000000005");
    }

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 0, 0, 0];
        out.extend((payload.len() as u32).to_be_bytes());
        out.extend(payload);
        out
    }

    #[tokio::test]
    async fn messages_carry_their_stream_and_time_and_docker_errors_are_skipped() {
        let mut body = Vec::new();
        body.extend(frame(1, b"2026-12-01T18:57:33.437955742Z out1\n"));
        body.extend(frame(3, b"Error grabbing logs: invalid character"));
        body.extend(frame(2, b"2026-12-01T18:57:33.4384Z err1\n"));
        // Cut short by a daemon going away: not returned.
        body.extend(&frame(1, b"2026-12-01T18:57:34.0Z partial")[..20]);
        let mut log = LogFollow { reader: &body[..] };
        let errors = std::cell::RefCell::new(Vec::new());
        let mut got = Vec::new();
        while let Some(m) = log
            .next(|e| errors.borrow_mut().push(e.to_owned()))
            .await
            .expect("read")
        {
            got.push(m);
        }
        let at = |s: &str| humantime::parse_rfc3339(s).expect("time");
        assert_eq!(
            got,
            vec![
                Message {
                    stream: Stream::Stdout,
                    at: at("2026-12-01T18:57:33.437955742Z"),
                    bytes: b"out1\n".to_vec(),
                },
                Message {
                    stream: Stream::Stderr,
                    at: at("2026-12-01T18:57:33.4384Z"),
                    bytes: b"err1\n".to_vec(),
                },
            ]
        );
        assert_eq!(*errors.borrow(), ["Error grabbing logs: invalid character"]);
    }

    #[tokio::test]
    async fn a_message_without_its_time_is_an_error_not_a_panic() {
        let body = frame(1, b"no time here");
        let mut log = LogFollow { reader: &body[..] };
        assert!(log.next(|_| {}).await.is_err());
        let body = frame(1, b"\xff\xfe x");
        let mut log = LogFollow { reader: &body[..] };
        assert!(log.next(|_| {}).await.is_err());
    }
}

//! A container's log, followed through the engine's API on its socket rather than with
//! `docker logs`: the API's multiplexed stream tells the container's stdout and stderr
//! apart, and carries nothing else, where the CLI writes its own errors (a daemon that
//! goes away in the middle) into the same stderr as the container's. Following a
//! container again after a daemon restart must know exactly which bytes are the
//! container's.

use std::io;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::UnixStream;

/// Which of the container's streams a piece of its log came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// A container's log from its first byte, followed until the container stops or the
/// daemon goes away.
pub struct LogFollow<R> {
    reader: R,
    /// The stream of the frame being read and how many of its bytes are still to come.
    frame: Option<(Stream, usize)>,
}

/// Connects to the engine at `socket` and asks for the log of container `name`, followed.
pub async fn follow(socket: &Path, name: &str) -> io::Result<LogFollow<BufReader<UnixStream>>> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a container name berth makes"),
        ));
    }
    let mut stream = UnixStream::connect(socket).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot connect to {}: {e}", socket.display()),
        )
    })?;
    // HTTP/1.0: the engine then sends the body as it comes and closes at its end, with no
    // chunked encoding to undo.
    let request = format!(
        "GET /containers/{name}/logs?follow=1&stdout=1&stderr=1 HTTP/1.0\r\nHost: docker\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).await?;
    accepted(&status)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header.trim_end().is_empty() {
            break;
        }
    }
    Ok(LogFollow {
        reader,
        frame: None,
    })
}

impl<R: AsyncRead + Unpin> LogFollow<R> {
    /// Reads the next piece of the log into `buf`: which stream it is and how many bytes.
    /// `None` once the log ends (the container stopped, or the daemon went away).
    pub async fn next(&mut self, buf: &mut [u8]) -> io::Result<Option<(Stream, usize)>> {
        loop {
            if let Some((stream, left)) = self.frame.as_mut() {
                if *left > 0 {
                    let want = (*left).min(buf.len());
                    let n = self.reader.read(&mut buf[..want]).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    *left -= n;
                    return Ok(Some((*stream, n)));
                }
            }
            let mut header = [0u8; 8];
            match self.reader.read_exact(&mut header).await {
                Ok(_) => self.frame = Some(frame_header(&header)?),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether the response's status line says the log follows. Pure.
fn accepted(status: &str) -> io::Result<()> {
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if status.starts_with("HTTP/") && code == "200" {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "the Docker engine refused the container's log: {}",
        status.trim_end()
    )))
}

/// A multiplexed frame's header: the stream (1 stdout, 2 stderr), three zero bytes, and
/// the payload's length, big-endian. Pure.
fn frame_header(header: &[u8; 8]) -> io::Result<(Stream, usize)> {
    let stream = match header[0] {
        1 => Stream::Stdout,
        2 => Stream::Stderr,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the Docker engine sent a log frame of unknown stream {other}"),
            ))
        }
    };
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    Ok((stream, usize::try_from(len).unwrap_or(usize::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_200_opens_the_log() {
        let cases = [
            ("HTTP/1.0 200 OK\r\n", true),
            ("HTTP/1.1 200 OK\r\n", true),
            ("HTTP/1.0 404 Not Found\r\n", false),
            ("HTTP/1.0 500 Internal Server Error\r\n", false),
            ("", false),
            ("200", false),
        ];
        for (status, ok) in cases {
            assert_eq!(accepted(status).is_ok(), ok, "{status:?}");
        }
    }

    #[test]
    fn frame_headers_name_their_stream_and_length() {
        type Case = ([u8; 8], Option<(Stream, usize)>);
        let cases: [Case; 4] = [
            ([1, 0, 0, 0, 0, 0, 0, 5], Some((Stream::Stdout, 5))),
            ([2, 0, 0, 0, 0, 0, 1, 0], Some((Stream::Stderr, 256))),
            ([0, 0, 0, 0, 0, 0, 0, 1], None),
            ([b'h', b'e', b'l', b'l', b'o', 0, 0, 1], None),
        ];
        for (header, want) in cases {
            assert_eq!(frame_header(&header).ok(), want, "{header:?}");
        }
    }

    #[tokio::test]
    async fn frames_are_read_in_pieces_and_the_end_is_none() {
        let body: &[u8] = b"\x01\x00\x00\x00\x00\x00\x00\x05out1\n\x02\x00\x00\x00\x00\x00\x00\x05err1\n\x01\x00\x00\x00\x00\x00\x00\x0cpartial";
        let mut log = LogFollow {
            reader: body,
            frame: None,
        };
        let mut buf = [0u8; 3];
        let mut got = Vec::new();
        while let Some((stream, n)) = log.next(&mut buf).await.expect("read") {
            got.push((stream, String::from_utf8_lossy(&buf[..n]).into_owned()));
        }
        let want = [
            (Stream::Stdout, "out"),
            (Stream::Stdout, "1\n"),
            (Stream::Stderr, "err"),
            (Stream::Stderr, "1\n"),
            (Stream::Stdout, "par"),
            (Stream::Stdout, "tia"),
            (Stream::Stdout, "l"),
        ];
        let want: Vec<(Stream, String)> = want.iter().map(|(s, t)| (*s, t.to_string())).collect();
        assert_eq!(got, want);
    }
}

//! The engine's API on its socket, for the questions a launch asks on its way to RUNNING
//! (is the image here, does the container run and with which pid) and for a container's
//! log: each answer comes in a millisecond or two, where a `docker` CLI process costs
//! tens of milliseconds of start-up and CPU before it asks the same socket. Actions (run,
//! start, stop, rm, pull) stay CLI commands, as the seed describes.
//!
//! Requests are HTTP/1.0: the engine then sends the body as it comes and closes at its
//! end, with no chunked encoding to undo.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UnixStream;

/// How long connecting and reading the head of a log's answer may take: a daemon that
/// hangs must not hold a follow, and the report after it, for ever.
pub const HEAD_LIMIT: Duration = Duration::from_secs(10);
/// The most a line of the answer's head may hold.
const HEAD_LINE: u64 = 8 * 1024;
/// The most a whole answer's body may hold: an inspect is a few kilobytes.
const BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// An answer whose head was read: its status and the connection its body comes on.
pub struct Opened {
    /// The HTTP status code.
    pub status: u16,
    /// The body's length, when the head says it.
    pub length: Option<u64>,
    /// The body, as the engine sends it, until it closes.
    pub body: BufReader<UnixStream>,
}

/// Connects to the engine at `socket`, sends `GET path` and reads the answer's head,
/// within `limit`.
pub async fn open(socket: &Path, path: &str, limit: Duration) -> io::Result<Opened> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    tokio::time::timeout(limit, async {
        let mut stream = UnixStream::connect(socket).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot connect to {}: {e}", socket.display()),
            )
        })?;
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
        let mut body = BufReader::new(stream);
        let status = status_code(&head_line(&mut body).await?)?;
        let mut length = None;
        loop {
            let line = head_line(&mut body).await?;
            match header(&line)? {
                Header::End => break,
                Header::Length(n) => length = Some(n),
                Header::Other => {}
            }
        }
        Ok(Opened {
            status,
            length,
            body,
        })
    })
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the Docker engine at {} did not answer within {limit:?}",
                socket.display()
            ),
        )
    })?
}

/// `GET path` and its whole answer (status and body), within `limit` in all. A body
/// shorter than its stated length is an engine that went away in the middle
/// (`UnexpectedEof`), not an answer.
pub async fn get(socket: &Path, path: &str, limit: Duration) -> io::Result<(u16, Vec<u8>)> {
    tokio::time::timeout(limit, async {
        let Opened {
            status,
            length,
            body,
        } = open(socket, path, limit).await?;
        // With a stated length, that many bytes and no more: a peer that keeps the
        // connection open after them must not hold the call.
        let mut bytes = Vec::new();
        let most = length.map_or(BODY_LIMIT + 1, |n| n.min(BODY_LIMIT + 1));
        body.take(most).read_to_end(&mut bytes).await?;
        if bytes.len() as u64 > BODY_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the engine's answer to {path} is larger than {BODY_LIMIT} bytes"),
            ));
        }
        if length.is_some_and(|n| (bytes.len() as u64) < n) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the engine's answer to {path} ended before its stated length"),
            ));
        }
        Ok((status, bytes))
    })
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the Docker engine did not answer {path} within {limit:?}"),
        )
    })?
}

/// What one line of an answer's head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// The empty line: the body follows.
    End,
    /// `Content-Length`.
    Length(u64),
    /// Anything else.
    Other,
}

/// Reads one line of an answer's head. A chunked body is refused: a request in HTTP/1.0
/// never gets one from the engine, so whatever sent it is not the engine. Pure.
fn header(line: &str) -> io::Result<Header> {
    let line = line.trim_end();
    if line.is_empty() {
        return Ok(Header::End);
    }
    let Some((name, value)) = line.split_once(':') else {
        return Ok(Header::Other);
    };
    let value = value.trim();
    if name.eq_ignore_ascii_case("content-length") {
        return value.parse().map(Header::Length).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the Docker engine's answer has a bad Content-Length: {value:?}"),
            )
        });
    }
    if name.eq_ignore_ascii_case("transfer-encoding") && !value.eq_ignore_ascii_case("identity") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the answer on the Docker socket is sent {value}, which the engine never does for HTTP/1.0: is --docker_socket the engine's?"),
        ));
    }
    Ok(Header::Other)
}

/// The message of an error answer (`{"message": "..."}`), or the body as text. Pure.
pub fn message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Said {
        message: String,
    }
    match serde_json::from_slice::<Said>(body) {
        Ok(said) => said.message,
        Err(_) => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(512)
            .collect(),
    }
}

/// `text` with every byte outside what image references and container names are made of
/// percent-encoded, for a request path. Pure.
pub fn path_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"._-/:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn head_line(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> io::Result<String> {
    let mut line = String::new();
    if reader.take(HEAD_LINE).read_line(&mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the Docker engine closed the connection before its answer's head ended",
        ));
    }
    if !line.ends_with('\n') {
        // Longer than any head line the engine sends, or cut short by its going away:
        // either way the head cannot be read on from here.
        return Err(io::Error::new(
            if line.len() as u64 >= HEAD_LINE {
                io::ErrorKind::InvalidData
            } else {
                io::ErrorKind::UnexpectedEof
            },
            "the Docker engine's answer has a head line that does not end",
        ));
    }
    Ok(line)
}

/// The code of an HTTP status line. Pure.
fn status_code(line: &str) -> io::Result<u16> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next().and_then(|c| c.parse().ok())) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => Ok(code),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the Docker engine's answer does not start with an HTTP status line: {:?}",
                line.trim_end()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code("HTTP/1.0 200 OK\r\n").ok(), Some(200));
        assert_eq!(status_code("HTTP/1.1 404 Not Found\r\n").ok(), Some(404));
        for bad in ["", "200 OK", "HTTP/1.0 x", "garbage"] {
            assert!(status_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn head_lines() {
        let cases = [
            ("\r\n", Some(Header::End)),
            ("Content-Length: 42\r\n", Some(Header::Length(42))),
            ("content-length:7\r\n", Some(Header::Length(7))),
            ("Content-Length: x\r\n", None),
            ("Content-Type: application/json\r\n", Some(Header::Other)),
            ("Transfer-Encoding: chunked\r\n", None),
            ("no colon\r\n", Some(Header::Other)),
        ];
        for (line, want) in cases {
            assert_eq!(header(line).ok(), want, "{line:?}");
        }
    }

    #[test]
    fn error_answers_give_their_message() {
        assert_eq!(
            message(br#"{"message":"No such image: x:latest"}"#),
            "No such image: x:latest"
        );
        assert_eq!(message(b"page not found\n"), "page not found");
    }

    #[test]
    fn path_parts_keep_references_and_encode_the_rest() {
        assert_eq!(
            path_part("127.0.0.1:5000/a/b_c-d.e:tag@sha256:00"),
            "127.0.0.1:5000/a/b_c-d.e:tag@sha256:00"
        );
        assert_eq!(path_part("a b?c#"), "a%20b%3Fc%23");
    }

    #[tokio::test]
    async fn an_answer_is_read_whole_and_a_silent_engine_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("engine.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let serving = tokio::spawn(async move {
            let (mut answering, _) = listener.accept().await.expect("accept");
            let mut asked = vec![0u8; 1024];
            let n = answering.read(&mut asked).await.expect("read");
            tokio::io::AsyncWriteExt::write_all(
                &mut answering,
                b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}",
            )
            .await
            .expect("write");
            drop(answering);
            let (mut short, _) = listener.accept().await.expect("accept");
            let _ = short.read(&mut [0u8; 1024]).await.expect("read");
            tokio::io::AsyncWriteExt::write_all(
                &mut short,
                b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n{\"a\"",
            )
            .await
            .expect("write");
            drop(short);
            let (silent, _) = listener.accept().await.expect("accept");
            (String::from_utf8_lossy(&asked[..n]).into_owned(), silent)
        });
        let (status, body) = get(&socket, "/x/json", Duration::from_secs(5))
            .await
            .expect("answer");
        assert_eq!((status, body.as_slice()), (200, &b"{\"a\":1}"[..]));
        let cut = get(&socket, "/z/json", Duration::from_secs(5))
            .await
            .expect_err("cut short");
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
        let timed_out = get(&socket, "/y/json", Duration::from_millis(200))
            .await
            .expect_err("no answer");
        assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
        let (asked, _silent) = serving.await.expect("server");
        assert!(asked.starts_with("GET /x/json HTTP/1.0\r\n"), "{asked}");
    }
}

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

/// How long connecting and reading an answer's head may take: a daemon that hangs must
/// not hold a launch, a follow or the report after it for ever.
pub const HEAD_LIMIT: Duration = Duration::from_secs(10);
/// The most a line of the answer's head may hold.
const HEAD_LINE: u64 = 8 * 1024;
/// The most a whole answer's body may hold: an inspect is a few kilobytes.
const BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// An answer whose head was read: its status and the connection its body comes on.
pub struct Opened {
    /// The HTTP status code.
    pub status: u16,
    /// The body, as the engine sends it, until it closes.
    pub body: BufReader<UnixStream>,
}

/// Connects to the engine at `socket`, sends `GET path` and reads the answer's head,
/// within [`HEAD_LIMIT`].
pub async fn open(socket: &Path, path: &str) -> io::Result<Opened> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    tokio::time::timeout(HEAD_LIMIT, async {
        let mut stream = UnixStream::connect(socket).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot connect to {}: {e}", socket.display()),
            )
        })?;
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
        let mut body = BufReader::new(stream);
        let status = status_code(&head_line(&mut body).await?)?;
        while !head_line(&mut body).await?.trim_end().is_empty() {}
        Ok(Opened { status, body })
    })
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the Docker engine at {} did not answer within {HEAD_LIMIT:?}",
                socket.display()
            ),
        )
    })?
}

/// `GET path` and its whole answer (status and body), within `limit` in all.
pub async fn get(socket: &Path, path: &str, limit: Duration) -> io::Result<(u16, Vec<u8>)> {
    tokio::time::timeout(limit, async {
        let Opened { status, body } = open(socket, path).await?;
        let mut bytes = Vec::new();
        body.take(BODY_LIMIT + 1).read_to_end(&mut bytes).await?;
        if bytes.len() as u64 > BODY_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the engine's answer to {path} is larger than {BODY_LIMIT} bytes"),
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
            let (silent, _) = listener.accept().await.expect("accept");
            (String::from_utf8_lossy(&asked[..n]).into_owned(), silent)
        });
        let (status, body) = get(&socket, "/x/json", Duration::from_secs(5))
            .await
            .expect("answer");
        assert_eq!((status, body.as_slice()), (200, &b"{\"a\":1}"[..]));
        let timed_out = get(&socket, "/y/json", Duration::from_millis(200))
            .await
            .expect_err("no answer");
        assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
        let (asked, _silent) = serving.await.expect("server");
        assert!(asked.starts_with("GET /x/json HTTP/1.0\r\n"), "{asked}");
    }
}

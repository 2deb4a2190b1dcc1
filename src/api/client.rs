//! The API's client: one HTTP/1.1 request per connection over the agent's unix socket.
//! Used by the CLI and by executors.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

use super::wire::ErrorBody;

/// Why a request did not get a successful answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("cannot reach the agent at {socket}: {source}; is `berth agent` running with this --work_dir or --api_socket?")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The connection broke or spoke something other than HTTP.
    #[error("talking to the agent at {socket} failed: {reason}")]
    Http {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No answer in time.
    #[error("the agent at {0} did not answer within {1:?}")]
    Timeout(PathBuf, Duration),
    /// The agent answered with an error.
    #[error("{message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The agent's message.
        message: String,
        /// The answer had `Retry-After`: the agent refused the request for now and did
        /// nothing with it.
        retry_later: bool,
    },
    /// The agent was not ready within the client's patience.
    #[error("{}", not_ready_message(socket, *why, *waited, said.as_deref()))]
    NotReady {
        /// The socket.
        socket: PathBuf,
        /// What the last attempt found.
        why: NotReady,
        /// How long the client waited.
        waited: Duration,
        /// What the agent said the last time it refused the request for now: it is not
        /// always recovering (the host's user database may not answer).
        said: Option<String>,
    },
    /// The agent's answer was not the expected JSON.
    #[error("unexpected answer from the agent: {0}")]
    Body(String),
}

/// Why the agent cannot take a request yet, though it may soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The socket does not exist: the agent has not bound it yet, or none runs.
    NoSocket,
    /// Nothing accepts connections on the socket: an agent about to serve it, or the
    /// stale socket of one that stopped.
    Refused,
    /// The agent answers, and refuses requests until it has started and recovered.
    Recovering,
}

impl ClientError {
    /// Whether the agent is not ready yet, in a way that sending the same request again
    /// later is safe: nothing reached the agent, or it refused the request without acting
    /// on it. Pure.
    pub fn not_ready(&self) -> Option<NotReady> {
        match self {
            ClientError::Connect { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => Some(NotReady::NoSocket),
                std::io::ErrorKind::ConnectionRefused => Some(NotReady::Refused),
                _ => None,
            },
            ClientError::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_later: true,
                ..
            } => Some(NotReady::Recovering),
            _ => None,
        }
    }
}

fn not_ready_message(socket: &Path, why: NotReady, waited: Duration, said: Option<&str>) -> String {
    let socket = socket.display();
    let waited = crate::duration::format(waited);
    // An agent that refuses for now because it recovers says so in words this client
    // knows; any other reason (the host's user database not answering) is its own words.
    let other_reason = said.filter(|said| *said != crate::model::RECOVERING);
    match why {
        NotReady::NoSocket => format!(
            "no agent serves {socket} (the socket does not exist) after waiting {waited}: \
             start one with `berth agent --work_dir DIR`, or point at the running one with \
             --work_dir DIR or --api_socket PATH"
        ),
        NotReady::Refused => format!(
            "nothing accepts connections on {socket} after waiting {waited} (the socket of an \
             agent that stopped?): start the agent with `berth agent` and the same \
             --work_dir, or point at the running one with --work_dir or --api_socket"
        ),
        NotReady::Recovering => match other_reason {
            Some(said) => format!(
                "the agent at {socket} still refused the request for now after {waited}: \
                 {said}; --wait_for_agent allows longer"
            ),
            None => format!(
                "the agent at {socket} is still starting or recovering after {waited}: its log \
             says what it waits for (often the Docker engine); `berth health` says when it \
             is ready, and --wait_for_agent allows longer"
            ),
        },
    }
}

/// A client for one agent.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    patience: Duration,
    on_wait: fn(&Path),
}

impl Client {
    /// A client of the agent listening on `socket`. A request fails at once when the
    /// agent is not ready.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
            patience: Duration::ZERO,
            on_wait: |_| {},
        }
    }

    /// Sends requests again while the agent is not ready (see [`ClientError::not_ready`]),
    /// for up to `patience`; calls `on_wait` with the socket once, when it starts waiting.
    pub fn patient(self, patience: Duration, on_wait: fn(&Path)) -> Client {
        Client {
            patience,
            on_wait,
            ..self
        }
    }

    /// The socket it talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET path`, decoding a JSON answer.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let body = self.request(Method::GET, path, None, timeout).await?;
        decode(&body)
    }

    /// `GET path`, returning the body as text.
    pub async fn get_text(&self, path: &str, timeout: Duration) -> Result<String, ClientError> {
        let body = self.request(Method::GET, path, None, timeout).await?;
        String::from_utf8(body.to_vec()).map_err(|e| ClientError::Body(e.to_string()))
    }

    /// `POST path` with a JSON body, decoding a JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).map_err(|e| ClientError::Body(e.to_string()))?;
        let answer = self
            .request(Method::POST, path, Some(Bytes::from(json)), timeout)
            .await?;
        decode(&answer)
    }

    /// `POST path` with raw bytes (a TaskInfo as the user wrote it).
    pub async fn post_raw<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let answer = self
            .request(Method::POST, path, Some(Bytes::from(body)), timeout)
            .await?;
        decode(&answer)
    }

    /// `GET path`, handing each line of the answer to `on_line` as it arrives (a followed
    /// event stream never ends by itself), until the answer ends or `on_line` returns
    /// false. Waits for a starting agent as [`Client::patient`] says, then connects once.
    pub async fn get_lines(
        &self,
        path: &str,
        mut on_line: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), ClientError> {
        if !self.patience.is_zero() {
            self.request(Method::GET, "/v1/health", None, Duration::from_secs(10))
                .await?;
        }
        let (response, driver) = self.send(Method::GET, path, None).await?;
        let status = response.status();
        let retry_later = response.headers().contains_key(hyper::header::RETRY_AFTER);
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await.map_err(|e| self.http(e))?.to_bytes();
            driver.abort();
            return Err(refused(status, retry_later, &bytes));
        }
        let mut pending: Vec<u8> = Vec::new();
        let ended = loop {
            let Some(frame) = body.frame().await else {
                break Ok(());
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => break Err(self.http(e)),
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            let mut go_on = true;
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if !on_line(&line[..end]) {
                    go_on = false;
                    break;
                }
            }
            if !go_on {
                break Ok(());
            }
        };
        driver.abort();
        ended
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        let mut told = false;
        loop {
            let answer =
                tokio::time::timeout(timeout, self.exchange(method.clone(), path, body.clone()))
                    .await
                    .map_err(|_| ClientError::Timeout(self.socket.clone(), timeout))
                    .and_then(|answer| answer);
            let why = match &answer {
                Err(e) if !self.patience.is_zero() => e.not_ready(),
                _ => None,
            };
            let Some(why) = why else {
                return answer;
            };
            let waited = started.elapsed();
            if waited >= self.patience {
                let said = match answer {
                    Err(ClientError::Status { message, .. }) => Some(message),
                    _ => None,
                };
                return Err(ClientError::NotReady {
                    socket: self.socket.clone(),
                    why,
                    waited: self.patience,
                    said,
                });
            }
            if !told {
                (self.on_wait)(&self.socket);
                told = true;
            }
            tokio::time::sleep(pause.min(self.patience - waited)).await;
            pause = crate::backoff::doubled(pause, Duration::from_secs(1));
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, ClientError> {
        let (response, driver) = self.send(method, path, body).await?;
        let status = response.status();
        let retry_later = response.headers().contains_key(hyper::header::RETRY_AFTER);
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http(e))?
            .to_bytes();
        driver.abort();
        if status.is_success() {
            return Ok(bytes);
        }
        Err(refused(status, retry_later, &bytes))
    }

    /// One request on a connection of its own: the answer, whose body is still to be
    /// read, and the task that drives the connection (to abort once it is read).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(Response<Incoming>, JoinHandle<hyper::Result<()>>), ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http(e))?;
        let driver = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "berth")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| self.http(e))?;
        match sender.send_request(request).await {
            Ok(response) => Ok((response, driver)),
            Err(e) => {
                driver.abort();
                Err(self.http(e))
            }
        }
    }

    fn http(&self, reason: impl std::fmt::Display) -> ClientError {
        ClientError::Http {
            socket: self.socket.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The error a non-2xx answer says: its `{"error"}`, or its status and body.
fn refused(status: StatusCode, retry_later: bool, body: &[u8]) -> ClientError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| format!("{status}: {}", String::from_utf8_lossy(body).trim()));
    ClientError::Status {
        status,
        message,
        retry_later,
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Body(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;

    fn connect(kind: ErrorKind) -> ClientError {
        ClientError::Connect {
            socket: PathBuf::from("/s"),
            source: std::io::Error::from(kind),
        }
    }

    fn status(status: StatusCode, retry_later: bool) -> ClientError {
        ClientError::Status {
            status,
            message: String::new(),
            retry_later,
        }
    }

    #[test]
    fn only_a_request_the_agent_never_acted_on_is_sent_again() {
        let cases = [
            (connect(ErrorKind::NotFound), Some(NotReady::NoSocket)),
            (
                connect(ErrorKind::ConnectionRefused),
                Some(NotReady::Refused),
            ),
            // Waiting does not give permission.
            (connect(ErrorKind::PermissionDenied), None),
            (
                status(StatusCode::SERVICE_UNAVAILABLE, true),
                Some(NotReady::Recovering),
            ),
            // A 503 without Retry-After (a store failure) is not a matter of time.
            (status(StatusCode::SERVICE_UNAVAILABLE, false), None),
            (status(StatusCode::BAD_REQUEST, false), None),
            (status(StatusCode::NOT_FOUND, true), None),
            // The request may have reached the agent.
            (
                ClientError::Http {
                    socket: PathBuf::from("/s"),
                    reason: "connection reset".into(),
                },
                None,
            ),
            (
                ClientError::Timeout(PathBuf::from("/s"), Duration::from_secs(1)),
                None,
            ),
            (ClientError::Body("not json".into()), None),
        ];
        for (error, want) in cases {
            assert_eq!(error.not_ready(), want, "{error:?}");
        }
    }

    #[test]
    fn giving_up_says_what_to_do() {
        let cases = [
            (NotReady::NoSocket, "`berth agent --work_dir DIR`"),
            (NotReady::Refused, "start the agent with `berth agent`"),
            (NotReady::Recovering, "`berth health`"),
        ];
        let recovering = crate::model::RECOVERING.to_owned();
        for (why, advice) in cases {
            for said in [None, Some(recovering.clone())] {
                let message = ClientError::NotReady {
                    socket: PathBuf::from("/w/berth.sock"),
                    why,
                    waited: Duration::from_secs(30),
                    said,
                }
                .to_string();
                assert!(message.contains("/w/berth.sock"), "{message}");
                assert!(message.contains("30secs"), "{message}");
                assert!(message.contains(advice), "{message}");
            }
        }
        // Refused for now for another reason than recovering: the agent's own words.
        let said = "cannot look up command.user \"web\" in the host's user database";
        let message = ClientError::NotReady {
            socket: PathBuf::from("/w/berth.sock"),
            why: NotReady::Recovering,
            waited: Duration::from_secs(30),
            said: Some(said.into()),
        }
        .to_string();
        assert!(message.contains(said), "{message}");
        assert!(message.contains("30secs"), "{message}");
    }
}

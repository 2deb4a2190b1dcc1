//! The API's client: one HTTP/1.1 request per connection over the agent's unix socket.
//! Used by the CLI and by executors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

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
    },
    /// The agent's answer was not the expected JSON.
    #[error("unexpected answer from the agent: {0}")]
    Body(String),
}

/// A client for one agent.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// A client of the agent listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
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

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        tokio::time::timeout(timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| ClientError::Timeout(self.socket.clone(), timeout))?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Bytes, ClientError> {
        let http = |reason: String| ClientError::Http {
            socket: self.socket.clone(),
            reason,
        };
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "berth")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| http(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| http(e.to_string()))?
            .to_bytes();
        driver.abort();
        if status.is_success() {
            return Ok(bytes);
        }
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("{status}: {}", String::from_utf8_lossy(&bytes).trim()));
        Err(ClientError::Status { status, message })
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Body(e.to_string()))
}

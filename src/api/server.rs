//! The API server: HTTP/JSON on the agent's unix socket. Handlers only parse and map; the
//! containerizer does the work and never sees HTTP.

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::{UnixListener, UnixStream};

use super::wire::{
    DockerHealth, DockerStatus, ErrorBody, Health, HealthStatus, KillBody, StateAnswer,
    StateRequest, StatusReport,
};
use crate::containerizer::{Containerizer, RequestError};
use crate::docker::Reachability;
use crate::state_view::ViewError;
use crate::task;

/// An error answer: a status code and a message that says what to do.
struct ApiError {
    status: StatusCode,
    message: String,
    /// Refused only for now, and nothing was done: `Retry-After` tells clients that the
    /// same request may be sent again.
    retry_later: bool,
    /// With a 409: the container that holds the task id.
    existing: Option<uuid::Uuid>,
}

impl ApiError {
    fn new(status: StatusCode, message: String) -> ApiError {
        ApiError {
            status,
            message,
            retry_later: false,
            existing: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
                container_id: self.existing,
            }),
        )
            .into_response();
        if self.retry_later {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        let status = match &e {
            RequestError::Task(_) | RequestError::Json(_) => StatusCode::BAD_REQUEST,
            RequestError::Duplicate(..) | RequestError::Ending(_) => StatusCode::CONFLICT,
            RequestError::Unknown(_) => StatusCode::NOT_FOUND,
            RequestError::Store(_)
            | RequestError::Recovering
            | RequestError::UserDatabase { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::Sandbox(..)
            | RequestError::SandboxFile(..)
            | RequestError::ExecutorStart(..)
            | RequestError::Abandoned(_)
            | RequestError::ExecutorContainer(..) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let existing = match &e {
            RequestError::Duplicate(_, id) => Some(*id),
            _ => None,
        };
        ApiError {
            status,
            // Nothing was done, and the same request may well be taken later.
            retry_later: matches!(
                e,
                RequestError::Recovering | RequestError::UserDatabase { .. }
            ),
            message: e.to_string(),
            existing,
        }
    }
}

type Shared = Arc<Containerizer>;

/// The routes.
pub fn router(containerizer: Shared) -> Router {
    Router::new()
        .route("/v1/tasks", post(launch))
        .route("/v1/containers", get(list))
        .route("/v1/containers/{id}", get(get_one))
        .route("/v1/containers/{id}/kill", post(kill))
        .route("/v1/containers/{id}/wait", get(wait))
        .route("/v1/containers/{id}/inspect", get(inspect))
        .route("/v1/executors/{id}/status", post(report))
        .route("/v1/state", post(state))
        .route("/v1/health", get(health))
        .route("/v1/events", get(events))
        .route("/metrics", get(metrics))
        .with_state(containerizer)
}

/// Why the API socket cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Something that is not a socket is at the path: it is left alone.
    #[error("--api_socket {0} exists and is not a socket; remove it or choose another path")]
    NotSocket(PathBuf),
    /// A socket that accepts connections is at the path.
    #[error("another agent is serving {0}; stop it, or give this agent another --api_socket or --work_dir")]
    InUse(PathBuf),
    /// The file system refused.
    #[error("cannot serve the API on {path}: {source}")]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What is at the API socket's path before the agent puts its own there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing.
    Nothing,
    /// A file, directory, symlink or anything else that is not a socket.
    NotSocket,
    /// A socket that accepts connections.
    Live,
    /// A socket that refuses connections: left by an agent that stopped.
    Stale,
}

/// Whether the agent may put its socket where `found` is. Pure.
pub fn may_replace(found: Found, path: &Path) -> Result<(), SocketError> {
    match found {
        Found::Nothing | Found::Stale => Ok(()),
        Found::NotSocket => Err(SocketError::NotSocket(path.to_owned())),
        Found::Live => Err(SocketError::InUse(path.to_owned())),
    }
}

/// How long a connection to a socket found at the path may take: one that does not
/// complete is queued on a listener, so something serves the socket.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

async fn probe(path: &Path) -> std::io::Result<Found> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        meta => meta?,
    };
    if !meta.file_type().is_socket() {
        return Ok(Found::NotSocket);
    }
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(_)) | Err(_) => Ok(Found::Live),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(Found::Stale),
        Ok(Err(e)) => Err(e),
    }
}

/// A directory only its owner can enter, beside the socket's path, removed when dropped.
/// The socket is bound and made owner-only in here, then renamed into place: it never
/// exists where others could connect to it while its mode is wider than 0600.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create(parent: &Path) -> std::io::Result<PrivateDir> {
        let name = format!(".berth-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let dir = parent.join(name);
        // mkdir applies the umask, which only takes bits away: never wider than 0700.
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(PrivateDir(dir))
    }

    /// Where the socket is bound: a short name, since a socket's path must fit in 108
    /// bytes and this one is longer than the final path.
    fn socket(&self) -> PathBuf {
        self.0.join("s")
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Binds the API socket at `path`, owner-only (0600) from the first moment anyone else
/// could reach it, replacing only a stale socket.
pub async fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(io)?;
    may_replace(probe(path).await.map_err(io)?, path)?;
    let private = PrivateDir::create(parent).map_err(io)?;
    let listener = UnixListener::bind(private.socket()).map_err(io)?;
    std::fs::set_permissions(private.socket(), std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    // Atomic: a stale socket at `path` is replaced, and clients see the old socket or the
    // new one, never no socket.
    std::fs::rename(private.socket(), path).map_err(io)?;
    Ok(listener)
}

/// Serves the API on `listener` (from [`bind`]) until `shutdown` completes.
pub async fn serve(
    listener: UnixListener,
    containerizer: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(containerizer))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs the containerizer's part of a request in a task of its own, which the
/// containerizer owns: a client that hangs up drops this handler's future, and must not
/// cut short work that may already be durable (a recorded launch whose entry was never
/// made would be a task nobody sees). Only the agent's stop ends it early.
async fn detached<T: Send + 'static>(
    owner: &Containerizer,
    work: impl Future<Output = Result<T, RequestError>> + Send + 'static,
) -> Result<T, ApiError> {
    owner
        .spawn_owned(work)
        .await
        .map_err(|e| RequestError::Abandoned(e.to_string()))?
        .ok_or_else(|| RequestError::Abandoned("the agent is stopping".into()))?
        .map_err(ApiError::from)
}

/// The body is parsed here, and the containerizer given the task; a recovering agent
/// answers 503 before it parses the body, as it does every launch.
async fn launch(State(c): State<Shared>, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    if c.recovering() {
        return Err(c.launch_refused(RequestError::Recovering).into());
    }
    let parsed = task::parse(&body).map_err(|e| c.launch_refused(e.into()))?;
    let launched = detached(&c.clone(), async move { c.launch(parsed).await }).await?;
    Ok((StatusCode::CREATED, Json(launched)))
}

async fn list(State(c): State<Shared>) -> impl IntoResponse {
    Json(c.list())
}

async fn get_one(
    State(c): State<Shared>,
    UrlPath(id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = c.resolve(&id)?;
    c.get(id)
        .map(Json)
        .ok_or_else(|| RequestError::Unknown(id.to_string()).into())
}

async fn kill(
    State(c): State<Shared>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let id = c.resolve(&id)?;
    let body: KillBody = if body.is_empty() {
        KillBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid kill request: {e}"),
            )
        })?
    };
    let grace = body
        .grace
        .as_deref()
        .map(crate::duration::parse)
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Json(
        detached(&c.clone(), async move { c.kill(id, grace).await }).await?,
    ))
}

async fn wait(
    State(c): State<Shared>,
    UrlPath(id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = c.resolve(&id)?;
    c.wait(id)
        .await
        .map(Json)
        .ok_or_else(|| RequestError::Unknown(id.to_string()).into())
}

async fn inspect(
    State(c): State<Shared>,
    UrlPath(id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = c.resolve(&id)?;
    Ok(Json(c.inspect(id).await?))
}

async fn events(
    State(c): State<Shared>,
    axum::extract::Query(query): axum::extract::Query<super::events::EventsQuery>,
) -> Result<Response, ApiError> {
    use super::events::{self, Follow, Next};
    let agent_id = c.agent_id();
    let store = c.store.clone();
    // Every position a client was given is at most this store's settled one: a larger
    // one comes from another agent or a store made again, and reading on from it would
    // skip updates without a word.
    let settled = store.settled_seq();
    if query.after > settled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "position {} is past this agent's newest ({settled}): it was not given by this agent ({agent_id}) or its store was made again; read from 0",
                query.after
            ),
        ));
    }
    let ndjson = [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")];
    if !query.follow {
        let (found, _) = events::read_since(store, query.after)
            .await
            .map_err(|why| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why))?;
        let body: Vec<u8> = found
            .iter()
            .flat_map(|u| events::line(&u.event(agent_id)))
            .collect();
        return Ok((ndjson, body).into_response());
    }
    // Ends when the client hangs up (the next write fails and the stream is dropped, a
    // heartbeat at the latest), when the store cannot be read (an error line last), and
    // when the API stops.
    let follow = Follow {
        recorded: c.recorded(),
        stopping: c.streams_stopping(),
    };
    let stream = futures_util::stream::unfold(
        (store, query.after, follow, false),
        move |(store, after, mut follow, done)| async move {
            if done {
                return None;
            }
            match events::next(&store, agent_id, after, &mut follow).await {
                Next::Send(lines, after) => Some((
                    Ok::<_, std::io::Error>(Bytes::from(lines)),
                    (store, after, follow, false),
                )),
                Next::Last(lines) => Some((Ok(Bytes::from(lines)), (store, after, follow, true))),
                Next::End => None,
            }
        },
    );
    Ok((ndjson, axum::body::Body::from_stream(stream)).into_response())
}

async fn report(
    State(c): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Json(report): Json<StatusReport>,
) -> Result<impl IntoResponse, ApiError> {
    let id = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a container id"),
        )
    })?;
    Ok(Json(
        detached(&c.clone(), async move { c.report(id, report).await }).await?,
    ))
}

async fn state(
    State(c): State<Shared>,
    Json(request): Json<StateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let mut output = Vec::new();
    let ok = crate::state_view::render(c.store(), &request.view, request.json, &mut output)
        .map_err(|e| {
            let status = match e {
                ViewError::Id(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError::new(status, e.to_string())
        })?;
    Ok(Json(StateAnswer {
        ok,
        output: String::from_utf8_lossy(&output).into_owned(),
    }))
}

async fn health(State(c): State<Shared>) -> impl IntoResponse {
    Json(Health {
        status: if c.recovering() {
            HealthStatus::Recovering
        } else {
            HealthStatus::Ok
        },
        agent_id: c.agent_id(),
        docker: docker_health(&c.docker().reachability()),
    })
}

/// What health says of the Docker engine. Pure.
fn docker_health(record: &Reachability) -> DockerHealth {
    match record {
        Reachability::Unknown => DockerHealth::default(),
        Reachability::Answering { since_ms, .. } => DockerHealth {
            status: DockerStatus::Available,
            since_ms: Some(*since_ms),
            error: None,
        },
        Reachability::Unreachable {
            since_ms, error, ..
        } => DockerHealth {
            status: DockerStatus::Unavailable,
            since_ms: Some(*since_ms),
            error: Some(error.clone()),
        },
    }
}

async fn metrics(State(c): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    let text = c.metrics_text().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the metrics: {e}"),
        )
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    ))
}

/// How many scrapes are served at once over TCP; more wait to be accepted.
const METRICS_CONNECTIONS: usize = 8;

/// How long one scrape's connection may last, however slow its client.
const METRICS_CONNECTION_TIME: Duration = Duration::from_secs(5);

/// `--metrics_address`: `/metrics` alone, over plain HTTP on `listener`, for a Prometheus
/// that cannot reach the owner-only socket. Serves until dropped. What anyone who reaches
/// the port can take is bounded: a few connections at once, one request each, each for a
/// few seconds, so file descriptors and the agent's runtime stay the agent's.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    containerizer: Shared,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .with_state(containerizer);
    let slots = Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS));
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)?;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was taken:
                // the listener stays, and tries again shortly.
                tracing::warn!("cannot accept a /metrics connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(METRICS_CONNECTION_TIME, connection).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_says_what_the_record_knows_of_docker() {
        let seen = tokio::time::Instant::now();
        let cases = [
            (Reachability::Unknown, DockerHealth::default()),
            (
                Reachability::Answering { since_ms: 5, seen },
                DockerHealth {
                    status: DockerStatus::Available,
                    since_ms: Some(5),
                    error: None,
                },
            ),
            (
                Reachability::Unreachable {
                    since_ms: 9,
                    error: "refused".into(),
                    seen,
                },
                DockerHealth {
                    status: DockerStatus::Unavailable,
                    since_ms: Some(9),
                    error: Some("refused".into()),
                },
            ),
        ];
        for (record, want) in cases {
            assert_eq!(docker_health(&record), want, "{record:?}");
        }
    }

    #[test]
    fn only_nothing_or_a_stale_socket_is_replaced() {
        let path = Path::new("/w/berth.sock");
        let cases = [
            (Found::Nothing, Ok(())),
            (Found::Stale, Ok(())),
            (
                Found::NotSocket,
                Err("--api_socket /w/berth.sock exists and is not a socket; remove it or choose another path"),
            ),
            (Found::Live, Err("another agent is serving /w/berth.sock; stop it, or give this agent another --api_socket or --work_dir")),
        ];
        for (found, want) in cases {
            let got = may_replace(found, path).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{found:?}");
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777
    }

    /// Everything in `dir`, by name.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_private_directory_admits_its_owner_alone() {
        let parent = tempfile::tempdir().expect("tempdir");
        let private = PrivateDir::create(parent.path()).expect("create");
        assert_eq!(mode(&private.0) & 0o077, 0, "{:o}", mode(&private.0));
        assert_eq!(private.socket().parent(), Some(private.0.as_path()));
        drop(private);
        assert!(names(parent.path()).is_empty());
    }

    #[tokio::test]
    async fn the_socket_is_owner_only_and_replaces_only_a_stale_one() {
        let parent = tempfile::tempdir().expect("tempdir");
        let path = parent.path().join("sub/berth.sock");
        let listener = bind(&path).await.expect("bind");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names(&parent.path().join("sub")), ["berth.sock"]);
        // The renamed socket is the one listened on.
        let (accepted, connected) = tokio::join!(listener.accept(), UnixStream::connect(&path));
        accepted.expect("accept");
        connected.expect("connect");

        let live = bind(&path).await.expect_err("a live socket is not taken");
        assert!(matches!(live, SocketError::InUse(_)), "{live}");
        drop(listener);

        // Left by an agent that stopped: it refuses connections, and is replaced. Another
        // test's child may hold the listener between its fork and its exec (the fd is
        // close-on-exec): the socket is stale once that exec is done.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let again = loop {
            match bind(&path).await {
                Err(SocketError::InUse(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                bound => break bound.expect("a stale socket is replaced"),
            }
        };
        assert_eq!(mode(&path), 0o600);
        drop(again);

        let file = parent.path().join("file");
        std::fs::write(&file, "keep me").expect("write");
        let refused = bind(&file).await.expect_err("a file is not a socket");
        assert!(matches!(refused, SocketError::NotSocket(_)), "{refused}");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");
        assert_eq!(names(parent.path()), ["file", "sub"]);
    }
}

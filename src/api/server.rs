//! The API server: HTTP/JSON on the agent's unix socket. Handlers only parse and map; the
//! containerizer does the work and never sees HTTP.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::UnixListener;

use super::wire::{
    ErrorBody, Health, HealthStatus, KillBody, StateAnswer, StateRequest, StatusReport, TaskState,
};
use crate::containerizer::{Containerizer, RequestError};
use crate::state_command::StateCommandError;

/// An error answer: a status code and a message that says what to do.
struct ApiError {
    status: StatusCode,
    message: String,
    /// Refused only for now, and nothing was done: `Retry-After` tells clients that the
    /// same request may be sent again.
    retry_later: bool,
}

impl ApiError {
    fn new(status: StatusCode, message: String) -> ApiError {
        ApiError {
            status,
            message,
            retry_later: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
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
            RequestError::Duplicate(..) => StatusCode::CONFLICT,
            RequestError::Unknown(_) => StatusCode::NOT_FOUND,
            RequestError::Store(_) | RequestError::Recovering => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::Sandbox(..) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            retry_later: matches!(e, RequestError::Recovering),
            message: e.to_string(),
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
        .route("/v1/executors/{id}/status", post(report))
        .route("/v1/state", post(state))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(containerizer)
}

/// Binds the socket (replacing a stale one), makes it owner-only, and serves until
/// `shutdown` completes.
pub async fn serve(
    socket: PathBuf,
    containerizer: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let socket = socket.as_path();
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(socket)?;
    // Owner-only before the first request can be accepted: the API launches containers.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    axum::serve(listener, router(containerizer))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn launch(State(c): State<Shared>, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    let launched = c.launch(&body).await?;
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
    Ok(Json(c.kill(id, grace).await?))
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
    Ok(Json(c.report(id, report).await?))
}

async fn state(
    State(c): State<Shared>,
    Json(request): Json<StateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let mut output = Vec::new();
    let ok = crate::state_command::render(c.store(), &request.view, request.json, &mut output)
        .map_err(|e| {
            let status = match e {
                StateCommandError::Id(_) => StatusCode::NOT_FOUND,
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
    })
}

async fn metrics(State(c): State<Shared>) -> impl IntoResponse {
    let counts = c.counts();
    let mut text = String::from(
        "# HELP berth_tasks Tasks known to the agent, by state.\n# TYPE berth_tasks gauge\n",
    );
    for state in [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Lost,
    ] {
        let name = format!("{state:?}").to_uppercase();
        text.push_str(&format!(
            "berth_tasks{{state=\"{name}\"}} {}\n",
            counts.get(&state).copied().unwrap_or(0)
        ));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}

//! The loopback HTTP server that serves the URIs of the workload's tasks, on 127.0.0.1
//! only, for as long as the run holds it.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::ChaosError;

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct Loopback {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Loopback {
    /// Serves the files of `dir` (by name, no subdirectories).
    pub async fn serve(dir: PathBuf) -> Result<Loopback, ChaosError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| ChaosError::io(&dir, e))?;
        let addr = listener.local_addr().map_err(|e| ChaosError::io(&dir, e))?;
        let router = Router::new().route("/{name}", get(file)).with_state(dir);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Loopback { addr, task })
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn file(State(dir): State<PathBuf>, Path(name): Path<String>) -> Result<Vec<u8>, StatusCode> {
    if name.contains('/') || name.starts_with('.') {
        return Err(StatusCode::NOT_FOUND);
    }
    tokio::fs::read(dir.join(name))
        .await
        .map_err(|_| StatusCode::NOT_FOUND)
}

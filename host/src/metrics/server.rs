//! The operations endpoint: `/metrics` (Prometheus text format), `/healthz` (the process serves
//! requests) and `/readyz` (the Kubernetes API answered and the configured operators loaded).
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::HostMetrics;

/// Shared readiness flag: set by whoever knows the host is ready.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct ServerState {
    metrics: HostMetrics,
    readiness: Readiness,
}

/// A bound, running metrics server.
pub struct MetricsServer {
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port; see `local_addr`) and serves until `shutdown`
    /// resolves or the server is dropped.
    pub async fn start(
        addr: SocketAddr,
        metrics: HostMetrics,
        readiness: Readiness,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<MetricsServer> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!("cannot listen on {addr} for /metrics: {error}"),
            )
        })?;
        let local_addr = listener.local_addr()?;
        let router = Router::new()
            .route("/metrics", get(serve_metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(serve_readiness))
            .with_state(ServerState { metrics, readiness });
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "metrics server stopped");
            }
        });
        Ok(MetricsServer { local_addr, task })
    }

    /// Waits until the server has shut down (after its shutdown future resolved).
    pub async fn join(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_metrics(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn serve_readiness(State(state): State<ServerState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: waiting for the Kubernetes API and the operators to load\n",
        )
    }
}

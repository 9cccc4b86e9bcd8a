//! A Prometheus-like query API on a loopback port, for the metrics-scaler: `GET
//! <prefix>/api/v1/query?query=...` answers with whatever the test set last, after the delay it
//! set last (slow or hanging egress), and every query it receives is recorded.

use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use serde_json::json;

/// The server's current answer and what it has been asked.
#[derive(Default)]
struct Shared {
    status: u16,
    body: String,
    /// How long each answer is held back.
    delay: std::time::Duration,
    /// (path, raw query) of every request, in order.
    requests: Vec<(String, String)>,
}

/// A running query API. It stops with the test's runtime.
#[derive(Clone)]
pub struct MetricsApi {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl MetricsApi {
    /// Starts the server on a free loopback port; it answers every path (so a test can tell
    /// which paths were asked for) with the current answer, at first an empty vector.
    pub async fn start() -> MetricsApi {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let router = Router::new()
            .fallback(get(answer))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let api = MetricsApi { port, shared };
        api.answer_vector_body(json!([]));
        api
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers queries with a one-sample vector holding `value` (a Prometheus number string).
    pub fn answer_value(&self, value: &str) {
        self.answer_vector_body(json!([{"metric": {}, "value": [1767323045.0, value]}]));
    }

    fn answer_vector_body(&self, result: serde_json::Value) {
        let body = json!({"status": "success", "data": {"resultType": "vector", "result": result}});
        self.answer(200, &body.to_string());
    }

    /// Answers every request with `status` and `body`.
    pub fn answer(&self, status: u16, body: &str) {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.status = status;
        shared.body = body.to_owned();
    }

    /// Holds every answer back for `delay` from now on (a long one: the API hangs). Requests
    /// already waiting keep the delay they started with.
    pub fn delay_answers(&self, delay: std::time::Duration) {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).delay = delay;
    }

    /// (path, raw query string) of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .clone()
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> (StatusCode, String) {
    let delay = {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        shared
            .requests
            .push((uri.path().to_owned(), query.unwrap_or_default()));
        shared.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let shared = shared.lock().unwrap_or_else(|e| e.into_inner());
    let status = StatusCode::from_u16(shared.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, shared.body.clone())
}

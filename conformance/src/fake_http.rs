//! The fake HTTP server of a run, on a free loopback port (`${http}` in scenarios).
//!
//! Paths under `/fixed/` always answer the same way, for the ABI guests:
//! `/fixed/status/<code>` (that code, body `status <code>`), `/fixed/hang` (never answers),
//! `/fixed/large/<bytes>` (a body of that many `x`), `/fixed/echo` (the method, the `x-probe`
//! header and the body, as JSON). Every other path (the metrics-scaler's query API) gets what
//! the last `serve` step set: a Prometheus vector with one sample, a status and body, or no
//! answer at all. Before any `serve`, an empty vector.
//!
//! [`closed_url`] is a loopback URL where nothing listens (`${closed}`), for transport errors.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use serde_json::json;

use crate::scenario::Serve;

#[derive(Clone)]
enum Answer {
    Reply { status: u16, body: String },
    Hang,
}

/// A running server; it stops when the run's runtime does, or when dropped.
pub struct FakeHttp {
    url: String,
    answer: Arc<Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeHttp {
    pub async fn start() -> anyhow::Result<FakeHttp> {
        let answer = Arc::new(Mutex::new(vector_answer(None)));
        let router = Router::new().fallback(respond).with_state(answer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(FakeHttp { url, answer, task })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers non-fixed paths as `serve` says from now on.
    pub fn serve(&self, serve: &Serve) {
        let answer = if serve.hang {
            Answer::Hang
        } else if let Some(value) = &serve.value {
            vector_answer(Some(value))
        } else {
            Answer::Reply {
                status: serve.status.unwrap_or(200),
                body: serve.body.clone().unwrap_or_default(),
            }
        };
        *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = answer;
    }
}

fn vector_answer(value: Option<&str>) -> Answer {
    let result = match value {
        Some(value) => json!([{"metric": {}, "value": [1767323045.0, value]}]),
        None => json!([]),
    };
    let body = json!({"status": "success", "data": {"resultType": "vector", "result": result}});
    Answer::Reply {
        status: 200,
        body: body.to_string(),
    }
}

async fn respond(
    State(answer): State<Arc<Mutex<Answer>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path();
    let answer = if let Some(fixed) = path.strip_prefix("/fixed/") {
        fixed_answer(fixed, &method, &headers, &body)
    } else {
        answer.lock().unwrap_or_else(|e| e.into_inner()).clone()
    };
    match answer {
        Answer::Reply { status, body } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        ),
        Answer::Hang => std::future::pending().await,
    }
}

fn fixed_answer(path: &str, method: &Method, headers: &HeaderMap, body: &[u8]) -> Answer {
    let reply = |status: u16, body: String| Answer::Reply { status, body };
    let mut parts = path.splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some("status"), Some(code)) => match code.parse::<u16>() {
            Ok(code) => reply(code, format!("status {code}")),
            Err(_) => reply(400, format!("bad status {code:?}")),
        },
        (Some("hang"), _) => Answer::Hang,
        (Some("large"), Some(size)) => reply(200, "x".repeat(size.parse().unwrap_or(0))),
        (Some("echo"), _) => reply(
            200,
            json!({
                "method": method.as_str(),
                "probe": headers.get("x-probe").and_then(|v| v.to_str().ok()),
                "body": String::from_utf8_lossy(body),
            })
            .to_string(),
        ),
        _ => reply(404, format!("no fixed answer at /fixed/{path}")),
    }
}

/// A loopback URL nothing listens on: a port bound and released at once.
pub fn closed_url() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}

//! Tests of [`HttpEgress`] against a real HTTP/1.1 server on 127.0.0.1.
//!
//! The server is a few lines over a tokio `TcpListener`, so each test controls exactly what goes
//! on the wire (slow responses, chunked bodies, invalid UTF-8, redirects) and can count the
//! requests that actually arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use wasm_operator_abi::{HostError, HostResponse, HttpRequest, HttpResponse};

use super::{AdminPolicy, EgressConfigError, EgressPolicy, HttpEgress};

/// A request as the test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    async fn start() -> TestServer {
        TestServer::start_on("127.0.0.1").await
    }

    /// A server on another loopback address (Linux routes all of 127.0.0.0/8 to `lo`).
    async fn start_on(ip: &str) -> TestServer {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, addr, recorded).await;
                });
            }
        });
        TestServer { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn prefix(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let content_length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body).await?;
    let request = Seen {
        method,
        path: path.clone(),
        headers,
        body,
    };
    recorded.lock().unwrap().push(request.clone());

    let mut stream = reader.into_inner();
    match path.as_str() {
        "/ok" => {
            respond(
                &mut stream,
                "200 OK",
                &[("content-type", "text/plain"), ("x-test", "yes")],
                b"hello",
            )
            .await
        }
        "/echo" => {
            let echoed = request
                .headers
                .iter()
                .find(|(name, _)| name == "x-echo")
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            respond(
                &mut stream,
                "200 OK",
                &[("x-echoed", &echoed)],
                &request.body,
            )
            .await
        }
        "/missing" => {
            respond(
                &mut stream,
                "404 Not Found",
                &[("content-type", "text/plain")],
                b"not here",
            )
            .await
        }
        "/binary" => {
            respond(
                &mut stream,
                "200 OK",
                &[("content-type", "image/png")],
                &[0x89, 0xff, 0xfe, 0x00],
            )
            .await
        }
        "/big-declared" => respond(&mut stream, "200 OK", &[], &vec![b'x'; 64 * 1024]).await,
        "/big-streamed" => stream_chunks_until_closed(&mut stream).await,
        "/redirect-inside" => respond(&mut stream, "302 Found", &[("location", "/ok")], b"").await,
        "/redirect-outside" => {
            // Same server, but named `localhost`: not the `127.0.0.1` prefix the tests allow.
            let location = format!("http://localhost:{}/ok", addr.port());
            respond(&mut stream, "302 Found", &[("location", &location)], b"").await
        }
        to if to.starts_with("/redirect-to/") => {
            let location = &to["/redirect-to/".len()..];
            respond(&mut stream, "302 Found", &[("location", location)], b"").await
        }
        // Never answers; the connection stays open until the client gives up.
        "/slow" => std::future::pending().await,
        _ => {
            respond(
                &mut stream,
                "500 Internal Server Error",
                &[],
                b"unknown test path",
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// A chunked body with no declared length that only ends when the client hangs up (or after a
/// bound no test should ever reach).
async fn stream_chunks_until_closed(stream: &mut TcpStream) -> std::io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        .await?;
    let chunk = vec![b'y'; 16 * 1024];
    for _ in 0..4096 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(&chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    stream.write_all(b"0\r\n\r\n").await
}

/// An operator's client with the admin policy the test servers need: 127.0.0.1 only.
fn egress(prefixes: &[String], default_timeout: Duration, max_response_bytes: usize) -> HttpEgress {
    egress_under(
        AdminPolicy::allowing_networks(&["127.0.0.1/32"]),
        prefixes,
        default_timeout,
        max_response_bytes,
    )
}

fn egress_under(
    admin: AdminPolicy,
    prefixes: &[String],
    default_timeout: Duration,
    max_response_bytes: usize,
) -> HttpEgress {
    HttpEgress::new(EgressPolicy {
        allow_prefixes: prefixes.to_vec(),
        default_timeout,
        max_response_bytes,
        admin,
    })
    .unwrap()
}

fn ok_response(response: HostResponse) -> HttpResponse {
    match response {
        HostResponse::Ok(value) => serde_json::from_value(value).unwrap(),
        HostResponse::Error(error) => panic!("expected a response, got error {error:?}"),
    }
}

fn error(response: HostResponse) -> HostError {
    match response {
        HostResponse::Ok(value) => panic!("expected an error, got {value}"),
        HostResponse::Error(error) => error,
    }
}

const GENEROUS: Duration = Duration::from_secs(30);

#[tokio::test]
async fn allowed_request_returns_status_headers_and_body() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);
    let response = ok_response(egress.send(HttpRequest::get(server.url("/ok"))).await);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "hello");
    assert_eq!(
        response.headers.get("x-test").map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        response.headers.get("content-type").map(String::as_str),
        Some("text/plain")
    );
}

#[tokio::test]
async fn method_headers_and_body_reach_the_server() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);
    let mut request = HttpRequest::get(server.url("/echo"));
    request.method = "post".to_owned();
    request
        .headers
        .insert("x-echo".to_owned(), "ping".to_owned());
    request.body = Some("{\"a\":1}".to_owned());
    let response = ok_response(egress.send(request).await);
    assert_eq!(response.body, "{\"a\":1}");
    assert_eq!(
        response.headers.get("x-echoed").map(String::as_str),
        Some("ping")
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].body, b"{\"a\":1}");
}

#[tokio::test]
async fn url_outside_the_allowlist_is_refused_without_connecting() {
    let server = TestServer::start().await;
    let egress = egress(&[format!("{}allowed/", server.prefix())], GENEROUS, 1 << 20);
    let refused = error(egress.send(HttpRequest::get(server.url("/ok"))).await);
    assert!(
        matches!(refused, HostError::CapabilityDenied { .. }),
        "{refused:?}"
    );
    assert!(
        refused
            .message()
            .contains("not in the operator's allowlist"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("/allowed/"),
        "message lists the allowed prefixes: {}",
        refused.message()
    );
    assert!(
        server.seen().is_empty(),
        "a refused request must not reach the server"
    );
}

#[tokio::test]
async fn evil_host_sharing_the_prefix_text_is_refused() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);
    let port = server.addr.port();
    // `localhost` is the same server under a name the allowlist does not contain.
    for url in [
        format!("http://127.0.0.1:{port}.evil.com/ok"),
        format!("http://127.0.0.1:{port}@localhost:{port}/ok"),
        format!("http://127.0.0.1:{port}.localhost:{port}/ok"),
    ] {
        match error(egress.send(HttpRequest::get(&url)).await) {
            HostError::CapabilityDenied { .. } | HostError::InvalidRequest { .. } => {}
            other => panic!("{url}: expected a refusal, got {other:?}"),
        }
    }
    assert!(
        server.seen().is_empty(),
        "no evil request reached the server"
    );
}

#[tokio::test]
async fn slow_server_times_out_at_the_request_timeout() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);
    let mut request = HttpRequest::get(server.url("/slow"));
    request.timeout_ms = Some(200);
    let started = Instant::now();
    let timed_out = error(egress.send(request).await);
    assert!(
        matches!(timed_out, HostError::Timeout { .. }),
        "{timed_out:?}"
    );
    assert_eq!(timed_out.message(), "http request timed out after 200 ms");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn request_timeout_is_capped_by_the_policy_default() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], Duration::from_millis(150), 1 << 20);
    let mut request = HttpRequest::get(server.url("/slow"));
    request.timeout_ms = Some(600_000);
    let timed_out = error(egress.send(request).await);
    assert_eq!(timed_out.message(), "http request timed out after 150 ms");
}

#[tokio::test]
async fn declared_oversize_body_is_refused() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1024);
    let refused = error(
        egress
            .send(HttpRequest::get(server.url("/big-declared")))
            .await,
    );
    match &refused {
        HostError::LimitExceeded { limit, message } => {
            assert_eq!(limit, "responseSize");
            assert!(message.contains("exceeds 1024 bytes"), "{message}");
        }
        other => panic!("expected limitExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn streamed_oversize_body_is_refused_without_reading_it_all() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 100 * 1024);
    let refused = error(
        egress
            .send(HttpRequest::get(server.url("/big-streamed")))
            .await,
    );
    assert!(
        matches!(&refused, HostError::LimitExceeded { limit, .. } if limit == "responseSize"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn non_2xx_status_passes_through_as_a_response() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);
    let response = ok_response(egress.send(HttpRequest::get(server.url("/missing"))).await);
    assert_eq!(response.status, 404);
    assert_eq!(response.body, "not here");
}

#[tokio::test]
async fn non_utf8_body_is_a_clear_error() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);
    let refused = error(egress.send(HttpRequest::get(server.url("/binary"))).await);
    assert!(
        matches!(refused, HostError::InvalidRequest { .. }),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("not UTF-8 text"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("image/png"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn redirects_are_followed_only_inside_the_allowlist() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);

    let followed = ok_response(
        egress
            .send(HttpRequest::get(server.url("/redirect-inside")))
            .await,
    );
    assert_eq!((followed.status, followed.body.as_str()), (200, "hello"));

    let stopped = ok_response(
        egress
            .send(HttpRequest::get(server.url("/redirect-outside")))
            .await,
    );
    assert_eq!(
        stopped.status, 302,
        "a redirect leaving the allowlist is handed back, not followed"
    );
    let paths: Vec<String> = server.seen().into_iter().map(|seen| seen.path).collect();
    assert_eq!(paths, ["/redirect-inside", "/ok", "/redirect-outside"]);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let egress = egress(&[format!("http://{addr}/")], GENEROUS, 1 << 20);
    let failed = error(
        egress
            .send(HttpRequest::get(format!("http://{addr}/x")))
            .await,
    );
    assert!(matches!(failed, HostError::Transport { .. }), "{failed:?}");
    assert!(
        failed.message().contains(&addr.to_string()),
        "{}",
        failed.message()
    );
}

#[tokio::test]
async fn unusable_requests_are_invalid_requests() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);

    let not_a_url = error(egress.send(HttpRequest::get("/relative/path")).await);
    assert!(
        matches!(not_a_url, HostError::InvalidRequest { .. }),
        "{not_a_url:?}"
    );

    let mut bad_method = HttpRequest::get(server.url("/ok"));
    bad_method.method = "GE T".to_owned();
    assert!(matches!(
        error(egress.send(bad_method).await),
        HostError::InvalidRequest { .. }
    ));

    let mut bad_header = HttpRequest::get(server.url("/ok"));
    bad_header
        .headers
        .insert("x-bad".to_owned(), "line\nbreak".to_owned());
    assert!(matches!(
        error(egress.send(bad_header).await),
        HostError::InvalidRequest { .. }
    ));
    assert!(server.seen().is_empty());
}

#[test]
fn invalid_prefix_is_a_configuration_error() {
    let result = HttpEgress::new(EgressPolicy {
        allow_prefixes: vec!["prometheus:9090".to_owned()],
        default_timeout: GENEROUS,
        max_response_bytes: 1024,
        admin: AdminPolicy::default(),
    });
    match result {
        Err(EgressConfigError::InvalidPrefix(invalid)) => {
            assert_eq!(invalid.prefix, "prometheus:9090")
        }
        other => panic!("expected an invalid prefix error, got {other:?}"),
    }
}

fn capability_denied(response: HostResponse) -> String {
    match error(response) {
        HostError::CapabilityDenied { message } => message,
        other => panic!("expected capabilityDenied, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_is_denied_by_default_even_when_allowlisted() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let egress = egress_under(
        AdminPolicy::default(),
        &[
            server.prefix(),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ],
        GENEROUS,
        1 << 20,
    );
    // The same address as dotted quad, as a number the URL parser normalises, and IPv4-mapped.
    for url in [
        server.url("/ok"),
        format!("http://2130706433:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
    ] {
        let message = capability_denied(egress.send(HttpRequest::get(&url)).await);
        assert!(message.contains("loopback"), "{url}: {message}");
        assert!(
            message.contains("--egress-allow-network"),
            "says how to allow it: {message}"
        );
    }
    assert!(server.seen().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_denied_after_resolution() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let egress = egress_under(
        AdminPolicy::default(),
        &[format!("http://localhost:{port}/")],
        GENEROUS,
        1 << 20,
    );
    let message = capability_denied(
        egress
            .send(HttpRequest::get(format!("http://localhost:{port}/ok")))
            .await,
    );
    assert!(message.contains("localhost resolves to"), "{message}");
    assert!(message.contains("loopback"), "{message}");
    assert!(server.seen().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn the_admin_network_flag_reopens_loopback() {
    let server = TestServer::start().await;
    let egress = egress_under(
        AdminPolicy::new(None, vec!["127.0.0.0/8".parse().unwrap()]).unwrap(),
        &[server.prefix()],
        GENEROUS,
        1 << 20,
    );
    let response = ok_response(egress.send(HttpRequest::get(server.url("/ok"))).await);
    assert_eq!((response.status, response.body.as_str()), (200, "hello"));
}

#[tokio::test]
async fn a_redirect_to_a_denied_address_is_refused_at_the_hop() {
    let allowed = TestServer::start().await;
    let denied = TestServer::start_on("127.0.0.2").await;
    // Both servers are in the operator's allowlist; only 127.0.0.1 is in the admin's networks.
    let egress = egress(&[allowed.prefix(), denied.prefix()], GENEROUS, 1 << 20);
    let hop = format!("/redirect-to/{}", denied.url("/ok"));
    let message = capability_denied(egress.send(HttpRequest::get(allowed.url(&hop))).await);
    assert!(message.contains("127.0.0.2 is"), "{message}");
    assert!(message.contains("loopback"), "{message}");
    assert_eq!(allowed.seen().len(), 1, "the first hop was made");
    assert!(denied.seen().is_empty(), "the denied hop was not");

    // Named hops are resolved and checked again: localhost is 127.0.0.1 (allowed) or ::1
    // (denied), so it reaches the allowed server and nothing else.
    let named = format!("/redirect-to/http://localhost:{}/ok", denied.addr.port());
    let egress = egress_under(
        AdminPolicy::allowing_networks(&["127.0.0.1/32"]),
        &[
            allowed.prefix(),
            format!("http://localhost:{}/", denied.addr.port()),
        ],
        GENEROUS,
        1 << 20,
    );
    let refused = error(egress.send(HttpRequest::get(allowed.url(&named))).await);
    assert!(
        matches!(
            refused,
            HostError::Transport { .. } | HostError::CapabilityDenied { .. }
        ),
        "{refused:?}"
    );
    assert!(denied.seen().is_empty(), "127.0.0.2 is never reached");
}

#[tokio::test]
async fn host_and_hop_by_hop_headers_are_refused() {
    let server = TestServer::start().await;
    let egress = egress(&[server.prefix()], GENEROUS, 1 << 20);
    for name in [
        "Host",
        "host",
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
    ] {
        let mut request = HttpRequest::get(server.url("/ok"));
        request
            .headers
            .insert(name.to_owned(), "metadata.google.internal".to_owned());
        match error(egress.send(request).await) {
            HostError::InvalidRequest { message } => {
                assert!(message.contains(name), "{name}: {message}");
                assert!(message.contains("set by the host"), "{message}");
            }
            other => panic!("{name}: expected invalidRequest, got {other:?}"),
        }
    }
    assert!(
        server.seen().is_empty(),
        "no request with those headers was sent"
    );
}

#[test]
fn operator_prefixes_must_lie_inside_the_admin_prefixes() {
    let admin = AdminPolicy::new(
        Some(&["http://metrics.example:9090/api/".to_owned()]),
        Vec::new(),
    )
    .unwrap();
    let policy = |prefix: &str| EgressPolicy {
        allow_prefixes: vec![prefix.to_owned()],
        default_timeout: GENEROUS,
        max_response_bytes: 1024,
        admin: admin.clone(),
    };
    assert!(HttpEgress::new(policy("http://metrics.example:9090/api/v1/")).is_ok());
    for outside in [
        "http://metrics.example:9090/",
        "http://metrics.example:9090/apix/",
        "http://169.254.169.254/latest/",
        "https://metrics.example:9090/api/",
    ] {
        match HttpEgress::new(policy(outside)) {
            Err(EgressConfigError::OutsideAdminPolicy(message)) => {
                assert!(message.contains(outside), "{message}");
                assert!(message.contains("--egress-allow-prefix"), "{message}");
            }
            other => panic!("{outside}: expected a refusal, got {other:?}"),
        }
    }
}

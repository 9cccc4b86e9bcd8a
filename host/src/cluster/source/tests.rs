//! Module fetches against hostile sources: a real HTTP/1.1 server on 127.0.0.1 that never
//! answers, streams bodies without end, or declares huge ones, as a URL or as an OCI registry.
//! Each test shows the fetch fails with a clear message within its bound, and the streaming
//! server shows how much was taken from it before the host hung up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::{
    module_slots, sha256_digest, SourceError, SourceFetcher, SourceLimits, MAX_METADATA_BYTES,
};
use crate::cluster::resource::{HttpSource, ModuleSource, OciSource};

struct HostileServer {
    addr: SocketAddr,
    /// Body bytes the server managed to write before the client hung up.
    streamed: Arc<AtomicUsize>,
    /// Requests for `/slow.wasm` received (and never answered).
    hung: Arc<AtomicUsize>,
}

/// What `/tiny.wasm` serves: a module header, enough for a fetch (validation comes later).
const TINY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

impl HostileServer {
    async fn start() -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let streamed = Arc::new(AtomicUsize::new(0));
        let hung = Arc::new(AtomicUsize::new(0));
        let (counter, hung_counter) = (streamed.clone(), hung.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, hung_counter) = (counter.clone(), hung_counter.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, addr, counter, hung_counter).await;
                });
            }
        });
        HostileServer {
            addr,
            streamed,
            hung,
        }
    }
}

async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    streamed: Arc<AtomicUsize>,
    hung: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let mut stream = reader.into_inner();
    let head_only = method == "HEAD";
    match path.as_str() {
        // Accepts the request and never answers.
        "/slow.wasm" => {
            hung.fetch_add(1, Ordering::SeqCst);
            std::future::pending().await
        }
        "/tiny.wasm" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                TINY_MODULE.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(TINY_MODULE).await
        }
        "/endless.wasm" | "/v2/ops/big/manifests/v1" | "/token" if !head_only => {
            stream_without_end(&mut stream, &streamed).await
        }
        "/declared.wasm" => {
            // Declares 1 GiB and sends nothing: the host must refuse on the header alone.
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n")
                .await?;
            std::future::pending().await
        }
        "/v2/ops/big/manifests/v1" => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
        }
        "/v2/ops/token/manifests/v1" => {
            let challenge = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\
                 www-authenticate: Bearer realm=\"http://{addr}/token\",service=\"s\"\r\n\r\n"
            );
            stream.write_all(challenge.as_bytes()).await
        }
        _ => {
            stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
        }
    }
}

/// A chunked body that ends only when the client hangs up (or after 4 GiB, which no test
/// reaches).
async fn stream_without_end(stream: &mut TcpStream, streamed: &AtomicUsize) -> std::io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        .await?;
    let chunk = vec![b'{'; 64 * 1024];
    for _ in 0..65536 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(&chunk).await?;
        stream.write_all(b"\r\n").await?;
        streamed.fetch_add(chunk.len(), Ordering::SeqCst);
    }
    stream.write_all(b"0\r\n\r\n").await
}

/// A fetcher allowed to reach the test servers on 127.0.0.1 (denied by default).
fn fetcher(limits: SourceLimits) -> SourceFetcher {
    default_fetcher(SourceLimits {
        allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
        ..limits
    })
}

fn default_fetcher(limits: SourceLimits) -> SourceFetcher {
    let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
    SourceFetcher::new(kube::Client::try_from(config).unwrap(), None, limits).unwrap()
}

fn http_source(server: &HostileServer, path: &str) -> ModuleSource {
    ModuleSource {
        http: Some(HttpSource {
            url: format!("http://{}{path}", server.addr),
            sha256: "0".repeat(64),
        }),
        ..ModuleSource::default()
    }
}

fn oci_source(server: &HostileServer, repository: &str) -> ModuleSource {
    ModuleSource {
        oci: Some(OciSource {
            reference: format!("{}/{repository}:v1", server.addr),
            insecure: true,
        }),
        ..ModuleSource::default()
    }
}

async fn fetch_error(fetcher: &SourceFetcher, source: &ModuleSource) -> SourceError {
    match fetcher.fetch("ns", source).await {
        Ok(_) => panic!("the fetch must fail"),
        Err(error) => error,
    }
}

fn tiny_source(server: &HostileServer) -> ModuleSource {
    ModuleSource {
        http: Some(HttpSource {
            url: format!("http://{}/tiny.wasm", server.addr),
            sha256: sha256_digest(TINY_MODULE)["sha256:".len()..].to_owned(),
        }),
        ..ModuleSource::default()
    }
}

/// Module slots are taken once a body starts to arrive: with the default size cap (two slots),
/// sources that accept and never answer hold none, so a source that answers is fetched at once
/// while four of them hang.
#[tokio::test]
async fn sources_that_never_answer_hold_no_module_slot() {
    let server = HostileServer::start().await;
    let limits = SourceLimits {
        fetch_timeout: Duration::from_secs(300),
        ..SourceLimits::default()
    };
    assert_eq!(module_slots(limits.max_module_bytes), 2);
    let fetcher = fetcher(limits);
    let hanging: Vec<_> = (0..4)
        .map(|_| {
            let (fetcher, source) = (fetcher.clone(), http_source(&server, "/slow.wasm"));
            tokio::spawn(async move { fetcher.fetch("ns", &source).await.map(|_| ()) })
        })
        .collect();
    while server.hung.load(Ordering::SeqCst) < 4 {
        tokio::task::yield_now().await;
    }
    let fetched = tokio::time::timeout(
        Duration::from_secs(30),
        fetcher.fetch("ns", &tiny_source(&server)),
    )
    .await
    .expect("the answering source is not held back by the hanging ones")
    .unwrap();
    assert_eq!(fetched.wasm, TINY_MODULE);
    for fetch in hanging {
        fetch.abort();
    }
}

/// Fetched modules keep their slot until dropped, so module bytes held between fetch and load
/// are bounded: with both slots held, a third fetch waits (here until its timeout), and gets
/// through once one is released.
#[tokio::test]
async fn fetched_modules_hold_their_slot_until_dropped() {
    let server = HostileServer::start().await;
    let fetcher = fetcher(SourceLimits {
        fetch_timeout: Duration::from_secs(1),
        ..SourceLimits::default()
    });
    let first = fetcher.fetch("ns", &tiny_source(&server)).await.unwrap();
    let _second = fetcher.fetch("ns", &tiny_source(&server)).await.unwrap();
    let error = fetch_error(&fetcher, &tiny_source(&server)).await;
    assert!(
        error.message.contains("did not finish within 1s"),
        "{}",
        error.message
    );
    drop(first);
    fetcher.fetch("ns", &tiny_source(&server)).await.unwrap();
}

#[tokio::test]
async fn a_source_that_never_answers_fails_at_the_fetch_timeout() {
    let server = HostileServer::start().await;
    let fetcher = fetcher(SourceLimits {
        fetch_timeout: Duration::from_millis(500),
        ..SourceLimits::default()
    });
    let started = Instant::now();
    let error = fetch_error(&fetcher, &http_source(&server, "/slow.wasm")).await;
    let took = started.elapsed();
    eprintln!("a never-answering source failed after {took:?} (timeout 500ms)");
    assert_eq!(error.reason, "SourceUnavailable");
    assert!(
        error.message.contains("did not finish within 500ms"),
        "{}",
        error.message
    );
    assert!(error.message.contains("/slow.wasm"), "{}", error.message);
    assert!(
        error.message.contains("--module-fetch-timeout"),
        "{}",
        error.message
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn an_endless_module_is_refused_at_the_size_cap_without_buffering_it() {
    let server = HostileServer::start().await;
    let cap = 1 << 20;
    let fetcher = fetcher(SourceLimits {
        max_module_bytes: cap,
        ..SourceLimits::default()
    });
    let error = fetch_error(&fetcher, &http_source(&server, "/endless.wasm")).await;
    assert!(
        error.message.contains("larger than 1 MiB"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("--max-module-size"),
        "{}",
        error.message
    );
    // The host stopped reading at the cap; what the server got out is what fits in the socket
    // buffers on top of it, far below the 4 GiB it would have sent.
    let streamed = server.streamed.load(Ordering::SeqCst);
    eprintln!("an endless module body: the server wrote {streamed} bytes (cap {cap})");
    assert!(streamed < 64 << 20, "the server streamed {streamed} bytes");
}

#[tokio::test]
async fn a_declared_oversized_module_is_refused_before_its_body() {
    let server = HostileServer::start().await;
    let fetcher = fetcher(SourceLimits {
        max_module_bytes: 1 << 20,
        // Far longer than the test may take: the refusal must come from the header.
        fetch_timeout: Duration::from_secs(600),
        ..SourceLimits::default()
    });
    let started = Instant::now();
    let error = fetch_error(&fetcher, &http_source(&server, "/declared.wasm")).await;
    assert!(
        error.message.contains("larger than 1 MiB"),
        "{}",
        error.message
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn an_oversized_oci_manifest_is_refused() {
    let server = HostileServer::start().await;
    let fetcher = fetcher(SourceLimits::default());
    let error = fetch_error(&fetcher, &oci_source(&server, "ops/big")).await;
    eprintln!(
        "an endless OCI manifest: the server wrote {} bytes (cap {MAX_METADATA_BYTES})",
        server.streamed.load(Ordering::SeqCst)
    );
    assert_eq!(error.reason, "SourceUnavailable");
    assert!(
        error.message.contains("registry manifest")
            && error
                .message
                .contains(&format!("larger than {} KiB", MAX_METADATA_BYTES >> 10)),
        "{}",
        error.message
    );
    let streamed = server.streamed.load(Ordering::SeqCst);
    assert!(streamed < 64 << 20, "the server streamed {streamed} bytes");
}

#[tokio::test]
async fn an_oversized_registry_token_is_refused() {
    let server = HostileServer::start().await;
    let fetcher = fetcher(SourceLimits::default());
    let error = fetch_error(&fetcher, &oci_source(&server, "ops/token")).await;
    assert!(
        error.message.contains("registry token") && error.message.contains("larger than"),
        "{}",
        error.message
    );
    let streamed = server.streamed.load(Ordering::SeqCst);
    assert!(streamed < 64 << 20, "the server streamed {streamed} bytes");
}

#[tokio::test]
async fn module_urls_at_non_public_addresses_are_refused_without_connecting() {
    let server = HostileServer::start().await;
    let fetcher = default_fetcher(SourceLimits::default());
    let metadata = ModuleSource {
        http: Some(HttpSource {
            url: "http://169.254.169.254/latest/meta-data/".to_owned(),
            sha256: "0".repeat(64),
        }),
        ..ModuleSource::default()
    };
    // Nothing is sent to 169.254.169.254: the literal is refused before any connection.
    let error = fetch_error(&fetcher, &metadata).await;
    assert_eq!(error.reason, "AddressDenied", "{}", error.message);
    assert!(error.message.contains("link-local"), "{}", error.message);
    let error = fetch_error(&fetcher, &http_source(&server, "/endless.wasm")).await;
    assert_eq!(error.reason, "AddressDenied", "{}", error.message);
    assert!(error.message.contains("loopback"), "{}", error.message);
    let named = ModuleSource {
        http: Some(HttpSource {
            url: format!("http://localhost:{}/endless.wasm", server.addr.port()),
            sha256: "0".repeat(64),
        }),
        ..ModuleSource::default()
    };
    let error = fetch_error(&fetcher, &named).await;
    assert_eq!(error.reason, "AddressDenied", "{}", error.message);
    assert!(
        error.message.contains("localhost resolves to"),
        "{}",
        error.message
    );
    let error = fetch_error(&fetcher, &oci_source(&server, "ops/big")).await;
    assert_eq!(error.reason, "AddressDenied", "{}", error.message);
    assert_eq!(server.streamed.load(Ordering::SeqCst), 0);
}

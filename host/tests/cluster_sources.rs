//! Where WasmOperator modules come from, against the real control plane and real HTTP servers
//! on loopback: an HTTP URL pinned by SHA-256 (a wrong digest is refused), an OCI artifact from
//! a registry speaking the distribution API with anonymous bearer tokens, and a file under the
//! host's modules directory; and hostile sources (never answering, endless, a symbolic link out
//! of the modules directory) that fail within their bounds while the others run.
mod cluster_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use wasm_operator_test_support::{control_plane, guest_module, test_namespace};

use cluster_support::*;
use wasm_operator::cluster::ControllerSettings;

/// What the loopback server serves: `/modules/empty.wasm`, and the repository `ops/empty`
/// (tag `v1`) of a registry that wants an anonymous bearer token from `/token`.
struct Served {
    wasm: Vec<u8>,
    manifest: Vec<u8>,
    addr: SocketAddr,
    tokens_issued: AtomicUsize,
}

fn manifest_for(wasm: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.wasm.config.v0+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [
            {"mediaType": "text/plain", "digest": sha256(b"readme"), "size": 6},
            {"mediaType": "application/wasm", "digest": sha256(wasm), "size": wasm.len()},
        ],
    }))
    .unwrap()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer anonymous-pull")
}

fn challenge(served: &Served) -> Response {
    let header = format!(
        r#"Bearer realm="http://{}/token",service="fake-registry",scope="repository:ops/empty:pull""#,
        served.addr
    );
    (StatusCode::UNAUTHORIZED, [("www-authenticate", header)]).into_response()
}

async fn serve(wasm: Vec<u8>) -> Arc<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = Arc::new(Served {
        manifest: manifest_for(&wasm),
        wasm,
        addr: listener.local_addr().unwrap(),
        tokens_issued: AtomicUsize::new(0),
    });
    let app =
        Router::new()
            .route(
                "/modules/empty.wasm",
                get(|State(s): State<Arc<Served>>| async move { s.wasm.clone() }),
            )
            .route(
                "/token",
                get(|State(s): State<Arc<Served>>| async move {
                    s.tokens_issued.fetch_add(1, Ordering::SeqCst);
                    (
                        [("content-type", "application/json")],
                        json!({"token": "anonymous-pull"}).to_string(),
                    )
                }),
            )
            .route(
                "/v2/ops/empty/manifests/{reference}",
                get(
                    |State(s): State<Arc<Served>>,
                     Path(reference): Path<String>,
                     headers: HeaderMap| async move {
                        if !authorized(&headers) {
                            return challenge(&s);
                        }
                        if reference != "v1" && reference != sha256(&s.manifest) {
                            return StatusCode::NOT_FOUND.into_response();
                        }
                        (
                            [("content-type", "application/vnd.oci.image.manifest.v1+json")],
                            s.manifest.clone(),
                        )
                            .into_response()
                    },
                ),
            )
            .route(
                "/v2/ops/empty/blobs/{digest}",
                get(
                    |State(s): State<Arc<Served>>,
                     Path(digest): Path<String>,
                     headers: HeaderMap| async move {
                        if !authorized(&headers) {
                            return challenge(&s);
                        }
                        if digest == sha256(&s.wasm) {
                            s.wasm.clone().into_response()
                        } else {
                            StatusCode::NOT_FOUND.into_response()
                        }
                    },
                ),
            )
            .with_state(served.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    served
}

fn digest_hex(wasm: &[u8]) -> String {
    sha256(wasm).trim_start_matches("sha256:").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_come_from_http_oci_and_the_modules_directory() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-sources").await;
    let ns = namespace.name.as_str();
    // The empty guest watches ConfigMaps in all namespaces: its account must be allowed to.
    grant_reads_everywhere(&client, ns, "default", EMPTY_GUEST_READS).await;
    let wasm = std::fs::read(guest_module("test-guest-empty")).unwrap();
    let served = serve(wasm.clone()).await;
    let modules = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(modules.path().join("ops")).unwrap();
    std::fs::write(modules.path().join("ops/empty.wasm"), &wasm).unwrap();
    let host = InProcessHost::start_with(
        ns,
        None,
        Some(modules.path().to_path_buf()),
        Default::default(),
    )
    .await;

    let url = format!("http://{}/modules/empty.wasm", served.addr);
    create_wasm_operator(
        &client,
        ns,
        "from-http",
        json!({"module": {"http": {"url": url, "sha256": digest_hex(&wasm)}}}),
    )
    .await;
    create_wasm_operator(
        &client,
        ns,
        "wrong-digest",
        json!({"module": {"http": {"url": url, "sha256": format!("sha256:{}", "0".repeat(64))}}}),
    )
    .await;
    let reference = format!("{}/ops/empty:v1", served.addr);
    create_wasm_operator(
        &client,
        ns,
        "from-oci",
        json!({"module": {"oci": {"reference": reference, "insecure": true}}}),
    )
    .await;
    let pinned = format!("{}/ops/empty@{}", served.addr, sha256(&served.manifest));
    create_wasm_operator(
        &client,
        ns,
        "from-oci-digest",
        json!({"module": {"oci": {"reference": pinned, "insecure": true}}}),
    )
    .await;
    create_wasm_operator(
        &client,
        ns,
        "from-path",
        json!({"module": {"path": "ops/empty.wasm"}}),
    )
    .await;
    create_wasm_operator(
        &client,
        ns,
        "escaping-path",
        json!({"module": {"path": "../empty.wasm"}}),
    )
    .await;

    for name in ["from-http", "from-oci", "from-oci-digest", "from-path"] {
        let object =
            wait_for_wasm_operator(&client, ns, name, &format!("{name} to run"), |object| {
                phase(object) == "Idle"
            })
            .await;
        assert_eq!(
            object.status.unwrap().module_digest.as_deref(),
            Some(sha256(&wasm).as_str()),
            "{name}"
        );
    }
    assert!(served.tokens_issued.load(Ordering::SeqCst) >= 2);

    let wrong = wait_for_wasm_operator(
        &client,
        ns,
        "wrong-digest",
        "wrong-digest to fail",
        |object| phase(object) == "Failed",
    )
    .await;
    let status = wrong.status.unwrap();
    let accepted = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ModuleAccepted")
        .unwrap();
    assert_eq!(accepted.reason, "DigestMismatch");
    assert!(status.last_error.unwrap().contains(&digest_hex(&wasm)));
    let event = wait_for_event(&client, ns, "wrong-digest", "DigestMismatch").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));

    let escaping = wait_for_wasm_operator(
        &client,
        ns,
        "escaping-path",
        "escaping-path to fail",
        |object| phase(object) == "Failed",
    )
    .await;
    assert!(escaping
        .status
        .unwrap()
        .last_error
        .unwrap()
        .contains("without `..`"));
    host.stop().await;
}

/// A loopback server whose module URLs are hostile: `/slow.wasm` never answers, and
/// `/endless.wasm` streams without end, counting what it got out.
async fn serve_hostile() -> (SocketAddr, Arc<AtomicUsize>) {
    let streamed = Arc::new(AtomicUsize::new(0));
    let counter = streamed.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/slow.wasm", get(std::future::pending::<String>))
        .route(
            "/endless.wasm",
            get(move || {
                let counter = counter.clone();
                async move {
                    let chunks = futures::stream::repeat_with(move || {
                        counter.fetch_add(64 * 1024, Ordering::SeqCst);
                        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 64 * 1024]))
                    });
                    axum::body::Body::from_stream(chunks)
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, streamed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sources_fail_within_their_bounds_and_do_not_stall_the_others() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "hostile-sources").await;
    let ns = namespace.name.as_str();
    let wasm = std::fs::read(guest_module("test-guest-empty")).unwrap();
    let (addr, streamed) = serve_hostile().await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.wasm"), &wasm).unwrap();
    let modules = tempfile::tempdir().unwrap();
    std::fs::write(modules.path().join("empty.wasm"), &wasm).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.wasm"),
        modules.path().join("escape.wasm"),
    )
    .unwrap();
    // Several never-answering sources, retried every second: fetched one after another they
    // would hold the good one back for SLOW x fetch_timeout (30 s) and more on every resync.
    const SLOW: u32 = 6;
    let fetch_timeout = std::time::Duration::from_secs(5);
    let controller = ControllerSettings {
        resync_interval: std::time::Duration::from_secs(1),
        ..controller_settings(ns, "test-host")
    };
    grant_reads_everywhere(&client, ns, "default", EMPTY_GUEST_READS).await;
    let host = InProcessHost::start_with_sources(
        controller,
        None,
        Some(modules.path().to_path_buf()),
        Default::default(),
        SourceLimits {
            max_module_bytes: 1 << 20,
            fetch_timeout,
            allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
        },
    )
    .await;

    let started = std::time::Instant::now();
    let slow_url =
        json!({"http": {"url": format!("http://{addr}/slow.wasm"), "sha256": digest_hex(&wasm)}});
    let mut sources: Vec<(String, serde_json::Value)> = (0..SLOW)
        .map(|n| (format!("slow-{n}"), slow_url.clone()))
        .collect();
    sources.extend([
        (
            "endless".to_string(),
            json!({"http": {"url": format!("http://{addr}/endless.wasm"), "sha256": digest_hex(&wasm)}}),
        ),
        ("escape".to_string(), json!({"path": "escape.wasm"})),
        // Last, behind every hostile one.
        ("good".to_string(), json!({"path": "empty.wasm"})),
    ]);
    for (name, module) in &sources {
        create_wasm_operator(&client, ns, name, json!({"module": module})).await;
    }
    wait_for_wasm_operator(&client, ns, "good", "good to run", |o| phase(o) == "Idle").await;
    // Each source is fetched on its own: the good one does not wait for the slow ones'
    // timeouts. Generous for a loaded machine, and far below the 30 s a serial controller
    // needs.
    let took = started.elapsed();
    eprintln!("the good WasmOperator ran {took:?} after the others were created");
    assert!(
        took < fetch_timeout * SLOW / 3,
        "the good WasmOperator ran only after {took:?}, behind {SLOW} sources that never answer"
    );
    let failed_with = |name: String| {
        let client = client.clone();
        async move {
            let object =
                wait_for_wasm_operator(&client, ns, &name, &format!("{name} to fail"), |o| {
                    phase(o) == "Failed"
                })
                .await;
            object.status.unwrap().last_error.unwrap()
        }
    };
    for n in 0..SLOW {
        let slow = failed_with(format!("slow-{n}")).await;
        assert!(slow.contains("did not finish within 5s"), "{slow}");
    }
    let endless = failed_with("endless".into()).await;
    assert!(endless.contains("larger than 1 MiB"), "{endless}");
    let escape = failed_with("escape".into()).await;
    assert!(escape.contains("symbolic link leading out"), "{escape}");
    // Retried every second, the slow ones keep failing and the good one keeps running.
    let good = wait_for_wasm_operator(&client, ns, "good", "good still running", |o| {
        phase(o) == "Idle"
    })
    .await;
    assert!(good.status.unwrap().last_error.is_none());
    let streamed = streamed.load(Ordering::SeqCst);
    assert!(
        streamed < 64 << 20,
        "the endless source got {streamed} bytes out"
    );
    host.stop().await;
}

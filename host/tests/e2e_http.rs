//! Outbound HTTP from an operator: refused unless the URL matches the operator's allowlist, and
//! delivered when it does (to a real server on loopback).
mod e2e_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use serde_json::json;
use wasm_operator_test_support::test_namespace;

use e2e_support::{create_widget, guest, spec, wait_for_config_map, TestHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_outside_the_allowlist_is_refused_and_inside_it_succeeds() {
    let secret_hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/allowed/greeting", get(|| async { "hello from loopback" }))
        .route(
            "/secret",
            get({
                let secret_hits = secret_hits.clone();
                move || async move {
                    secret_hits.fetch_add(1, Ordering::SeqCst);
                    "secret"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "http").await;
    let ns = namespace.name.as_str();
    let mut mapper = spec("prober", guest("configmapper"), json!({"namespace": ns}));
    mapper.allow_http = vec![format!("http://127.0.0.1:{port}/allowed/")];
    host.manager.load(mapper).await.unwrap();

    create_widget(
        &host.client,
        ns,
        "inside",
        json!({"probeUrl": format!("http://127.0.0.1:{port}/allowed/greeting")}),
    )
    .await;
    create_widget(
        &host.client,
        ns,
        "outside",
        json!({"probeUrl": format!("http://127.0.0.1:{port}/secret")}),
    )
    .await;

    let inside = wait_for_config_map(
        &host.client,
        ns,
        "inside-config",
        "the allowed probe's result",
        |data| data.contains_key("httpResult"),
    )
    .await;
    assert_eq!(inside["httpResult"], "status 200: hello from loopback");
    let outside = wait_for_config_map(
        &host.client,
        ns,
        "outside-config",
        "the refused probe's result",
        |data| data.contains_key("httpResult"),
    )
    .await;
    let result = outside["httpResult"].as_str().unwrap();
    assert!(result.starts_with("error capabilityDenied: "), "{result}");
    assert!(
        result.contains("allowlist"),
        "the refusal says why: {result}"
    );
    assert_eq!(
        secret_hits.load(Ordering::SeqCst),
        0,
        "a refused request must not reach the server"
    );
}

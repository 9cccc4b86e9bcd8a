//! Outbound HTTP from an operator: refused unless the URL matches the operator's allowlist, and
//! delivered when it does (to a real server on loopback); and the cluster admin's egress policy
//! above the allowlist: loopback is denied unless the admin allows its network, after DNS
//! resolution (`localhost`) and on every redirect hop.
mod e2e_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use wasm_operator::egress::AdminPolicy;
use wasm_operator_test_support::test_namespace;

use e2e_support::{create_widget, guest, spec, wait_for_config_map, TestHost};

/// A loopback server counting the requests it answers; `/allowed/hop` redirects to `hop_to`.
async fn counting_server(ip: &str, hop_to: Option<String>) -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let mut router = Router::new().route(
        "/allowed/greeting",
        get(move || async move {
            counted.fetch_add(1, Ordering::SeqCst);
            "hello from loopback"
        }),
    );
    if let Some(location) = hop_to {
        router = router.route(
            "/allowed/hop",
            get(move || async move { Redirect::temporary(&location) }),
        );
    }
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, hits)
}

/// The `httpResult` the configmapper guest records for widget `name` probing `url`.
async fn probe(host: &TestHost, ns: &str, name: &str, url: String) -> String {
    create_widget(&host.client, ns, name, json!({"probeUrl": url})).await;
    let data = wait_for_config_map(
        &host.client,
        ns,
        &format!("{name}-config"),
        "the probe's result",
        |data| data.contains_key("httpResult"),
    )
    .await;
    data["httpResult"].as_str().unwrap().to_owned()
}

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

    // The admin allows the loopback address the test server is on (`--egress-allow-network`).
    let host = TestHost::start_with_egress(AdminPolicy::allowing_networks(&["127.0.0.1/32"])).await;
    let namespace = test_namespace(&host.client, "http").await;
    let ns = namespace.name.as_str();
    let mut mapper = spec("prober", guest("configmapper"), json!({"namespace": ns}));
    mapper.allow_http = vec![format!("http://127.0.0.1:{port}/allowed/")];
    host.manager.load(mapper).await.unwrap();

    let inside = probe(
        &host,
        ns,
        "inside",
        format!("http://127.0.0.1:{port}/allowed/greeting"),
    )
    .await;
    assert_eq!(inside, "status 200: hello from loopback");
    let result = probe(
        &host,
        ns,
        "outside",
        format!("http://127.0.0.1:{port}/secret"),
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_denied_by_default_even_when_allowlisted() {
    let (port, hits) = counting_server("127.0.0.1", None).await;
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "http-deny").await;
    let ns = namespace.name.as_str();
    let mut mapper = spec("prober", guest("configmapper"), json!({"namespace": ns}));
    mapper.allow_http = vec![
        format!("http://127.0.0.1:{port}/allowed/"),
        format!("http://localhost:{port}/allowed/"),
    ];
    host.manager.load(mapper).await.unwrap();

    let literal = probe(
        &host,
        ns,
        "literal",
        format!("http://127.0.0.1:{port}/allowed/greeting"),
    )
    .await;
    assert!(literal.starts_with("error capabilityDenied: "), "{literal}");
    assert!(literal.contains("loopback"), "{literal}");
    // A name is checked on what it resolves to.
    let named = probe(
        &host,
        ns,
        "named",
        format!("http://localhost:{port}/allowed/greeting"),
    )
    .await;
    assert!(named.starts_with("error capabilityDenied: "), "{named}");
    assert!(named.contains("localhost resolves to"), "{named}");
    assert!(named.contains("loopback"), "{named}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_denied_address_is_refused_at_the_hop() {
    // 127.0.0.2 is loopback too, outside the one address the admin allows.
    let (denied_port, denied_hits) = counting_server("127.0.0.2", None).await;
    let hop_to = format!("http://127.0.0.2:{denied_port}/allowed/greeting");
    let (port, _) = counting_server("127.0.0.1", Some(hop_to)).await;
    let host = TestHost::start_with_egress(AdminPolicy::allowing_networks(&["127.0.0.1/32"])).await;
    let namespace = test_namespace(&host.client, "http-hop").await;
    let ns = namespace.name.as_str();
    let mut mapper = spec("prober", guest("configmapper"), json!({"namespace": ns}));
    // The tenant allowlists both; the admin policy still decides.
    mapper.allow_http = vec![
        format!("http://127.0.0.1:{port}/allowed/"),
        format!("http://127.0.0.2:{denied_port}/allowed/"),
    ];
    host.manager.load(mapper).await.unwrap();

    let direct = probe(
        &host,
        ns,
        "direct",
        format!("http://127.0.0.1:{port}/allowed/greeting"),
    )
    .await;
    assert_eq!(direct, "status 200: hello from loopback");
    let hop = probe(
        &host,
        ns,
        "hop",
        format!("http://127.0.0.1:{port}/allowed/hop"),
    )
    .await;
    assert!(hop.starts_with("error capabilityDenied: "), "{hop}");
    assert!(hop.contains("127.0.0.2 is a loopback"), "{hop}");
    assert_eq!(
        denied_hits.load(Ordering::SeqCst),
        0,
        "the redirect to 127.0.0.2 was not followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_http_entry_outside_the_admin_prefixes_fails_the_load() {
    let admin = AdminPolicy::new(
        Some(&["http://127.0.0.1:9/allowed/".to_owned()]),
        Vec::new(),
    )
    .unwrap();
    let host = TestHost::start_with_egress(admin).await;
    let namespace = test_namespace(&host.client, "http-admin").await;
    let ns = namespace.name.as_str();
    let mut mapper = spec("prober", guest("configmapper"), json!({"namespace": ns}));
    mapper.allow_http = vec!["http://169.254.169.254/latest/".to_owned()];
    let error = host.manager.load(mapper).await.unwrap_err().to_string();
    assert!(
        error.contains("outside the URL prefixes the cluster admin permits"),
        "{error}"
    );
    assert!(error.contains("169.254.169.254"), "{error}");
}

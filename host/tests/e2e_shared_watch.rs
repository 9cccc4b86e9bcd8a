//! Two operators watching the same kinds share one watch per kind, visible in /metrics, and the
//! watches close when the last operator using them is unloaded.
mod e2e_support;

use std::net::SocketAddr;

use serde_json::json;
use wasm_operator::metrics::sample_value;
use wasm_operator::metrics::server::{MetricsServer, Readiness};
use wasm_operator_test_support::{test_namespace, wait_for};

use e2e_support::{create_widget, guest, spec, wait_for_config_map, TestHost, PROMPTLY};

async fn scrape(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn gauge(text: &str, name: &str) -> f64 {
    sample_value(text, name, "").unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_watching_the_same_kinds_share_one_watch_per_kind() {
    let host = TestHost::start().await;
    let readiness = Readiness::default();
    let server = MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        host.metrics.clone(),
        readiness.clone(),
        std::future::pending(),
    )
    .await
    .unwrap();
    let addr = server.local_addr;
    assert_eq!(scrape(addr, "/healthz").await.0, 200);
    assert_eq!(scrape(addr, "/readyz").await.0, 503);

    let namespace = test_namespace(&host.client, "shared").await;
    let ns = namespace.name.as_str();
    // Same Registration (Widget + owned ConfigMaps in one namespace); different ConfigMap names.
    host.manager
        .load(spec(
            "first",
            guest("configmapper"),
            json!({"namespace": ns, "suffix": "first"}),
        ))
        .await
        .unwrap();
    host.manager
        .load(spec(
            "second",
            guest("configmapper"),
            json!({"namespace": ns, "suffix": "second"}),
        ))
        .await
        .unwrap();
    readiness.set(true);
    assert_eq!(scrape(addr, "/readyz").await.0, 200);

    let (_, metrics) = scrape(addr, "/metrics").await;
    assert_eq!(
        gauge(&metrics, "wasm_operator_watches_open"),
        2.0,
        "one Widget watch and one ConfigMap watch"
    );
    assert_eq!(
        gauge(&metrics, "wasm_operator_watch_subscriptions"),
        4.0,
        "two operators on each watch"
    );
    assert_eq!(
        sample_value(&metrics, "wasm_operator_operators", "state=\"idle\""),
        Some(2.0)
    );

    // Each event reaches both operators through the one watch.
    create_widget(&host.client, ns, "both", json!({"data": {"k": "v"}})).await;
    for suffix in ["first", "second"] {
        wait_for_config_map(
            &host.client,
            ns,
            &format!("both-{suffix}"),
            "both operators to reconcile",
            |data| data.contains_key("k"),
        )
        .await;
    }
    // The ConfigMaps appear during the reconciles; a reconcile is counted when it returns.
    let metrics = wait_for(
        "both operators' reconciles to be counted",
        PROMPTLY,
        || async {
            let (_, metrics) = scrape(addr, "/metrics").await;
            let counted = |operator: &str| {
                let labels = format!("operator=\"{operator}\",result=\"success\"");
                sample_value(&metrics, "wasm_operator_reconciles_total", &labels).is_some()
            };
            (counted("first") && counted("second")).then_some(metrics)
        },
    )
    .await;
    for operator in ["first", "second"] {
        let reconciles = sample_value(
            &metrics,
            "wasm_operator_reconciles_total",
            &format!("operator=\"{operator}\",result=\"success\""),
        );
        assert!(
            reconciles.unwrap_or(0.0) >= 1.0,
            "{operator} reconciles are counted:\n{metrics}"
        );
        let memory = sample_value(
            &metrics,
            "wasm_operator_memory_bytes",
            &format!("operator=\"{operator}\""),
        );
        assert!(memory.unwrap_or(0.0) > 0.0, "{operator} memory is reported");
    }
    assert!(
        metrics.contains("wasm_operator_reconcile_duration_seconds_bucket{"),
        "durations are reported"
    );
    assert!(
        metrics.contains("wasm_operator_queue_depth{operator=\"first\"}"),
        "queue depth is reported"
    );

    host.manager.unload("first").await.unwrap();
    let (_, metrics) = scrape(addr, "/metrics").await;
    assert_eq!(
        gauge(&metrics, "wasm_operator_watches_open"),
        2.0,
        "still used by the second operator"
    );
    assert_eq!(gauge(&metrics, "wasm_operator_watch_subscriptions"), 2.0);

    host.manager.unload("second").await.unwrap();
    let (_, metrics) = scrape(addr, "/metrics").await;
    assert_eq!(
        gauge(&metrics, "wasm_operator_watches_open"),
        0.0,
        "the last unload closes the watches"
    );
    assert_eq!(host.manager.watches().open_watches(), 0);
}

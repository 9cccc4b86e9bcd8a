//! The metrics-scaler example in the host against the real control plane and a Prometheus-like
//! API on loopback: it scales a Deployment up and down as the metric moves (with no change to
//! any object, so only its requeue timer can be the reason), reports error responses in its
//! status, and cannot reach a URL outside its allowlist.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, PostParams};
use operators_tests::kinds::{self, field, wait_for_event, wait_for_object, Kind};
use operators_tests::metrics_api::MetricsApi;
use operators_tests::{spec, Harness, Lang};
use serde_json::{json, Value};
use wasm_operator_test_support::{test_namespace, TestNamespace};

const QUERY: &str = "sum(rate(http_requests_total{job=\"web\"}[1m]))";

/// A host running metrics-scaler in `lang`, allowed to reach `allowed_prefix` only, and a
/// namespace with a Deployment `web` of `replicas` replicas.
async fn start(lang: Lang, allowed_prefix: &str, replicas: i32) -> (Harness, TestNamespace) {
    let harness = Harness::start().await;
    let namespace = test_namespace(&harness.client, &format!("scaler-{lang}")).await;
    let mut scaler = spec(&format!("scaler-{lang}"), lang, "metrics-scaler", json!({}));
    scaler.allow_http = vec![allowed_prefix.to_owned()];
    harness.load_spec(scaler).await;
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    }))
    .unwrap();
    Api::<Deployment>::namespaced(harness.client.clone(), &namespace.name)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("creating the target Deployment");
    (harness, namespace)
}

async fn create_scaler(harness: &Harness, namespace: &str, metrics_url: &str) {
    let spec = json!({"targetRef": {"name": "web"}, "metricsUrl": metrics_url, "query": QUERY,
                      "targetValue": 100, "minReplicas": 1, "maxReplicas": 10, "intervalSeconds": 1});
    kinds::create(&harness.client, namespace, Kind::MetricScaler, "rps", spec).await;
}

async fn wait_for_replicas(harness: &Harness, namespace: &str, replicas: i32, what: &str) {
    let deployments: Api<Deployment> = Api::namespaced(harness.client.clone(), namespace);
    wait_for_object(&deployments, "web", what, |d| {
        d.spec.replicas == Some(replicas)
    })
    .await;
}

async fn wait_for_status(
    harness: &Harness,
    namespace: &str,
    what: &str,
    check: impl Fn(&DynamicObject) -> bool,
) -> DynamicObject {
    wait_for_object(
        &kinds::api(&harness.client, namespace, Kind::MetricScaler),
        "rps",
        what,
        check,
    )
    .await
}

fn ready(scaler: &DynamicObject) -> (Value, Value, Value) {
    let condition = &field(scaler, "/status/conditions/0")
        .cloned()
        .unwrap_or_default();
    (
        condition["status"].clone(),
        condition["reason"].clone(),
        condition["message"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scaler_follows_the_metric_up_and_down_on_its_interval() {
    for lang in Lang::available("metrics-scaler") {
        let metrics = MetricsApi::start().await;
        let (harness, namespace) = start(lang, &metrics.url("/prometheus"), 2).await;
        let ns = namespace.name.as_str();
        metrics.answer_value("250");
        create_scaler(&harness, ns, &metrics.url("/prometheus/")).await;

        wait_for_replicas(&harness, ns, 5, "2 replicas at 250/100 to become 5").await;
        let scaler = wait_for_status(&harness, ns, "the status of the first scale", |s| {
            field(s, "/status/desiredReplicas") == Some(&json!(5))
        })
        .await;
        assert_eq!(field(&scaler, "/status/lastValue"), Some(&json!("250")));
        assert_eq!(field(&scaler, "/status/currentReplicas"), Some(&json!(2)));
        assert!(field(&scaler, "/status/lastScaleTime").is_some());
        assert_eq!(field(&scaler, "/status/lastError"), None);
        assert_eq!(
            ready(&scaler),
            (
                json!("True"),
                json!("MetricAvailable"),
                json!("metric value 250")
            )
        );
        let event = wait_for_event(&harness.client, ns, "rps", "metrics-scaler", "Scaled").await;
        assert_eq!(
            event.note.as_deref(),
            Some("scaled Deployment web from 2 to 5 replicas (metric value 250)")
        );

        // Nothing changes in the cluster: only the requeue timer brings the next reading.
        metrics.answer_value("20");
        wait_for_replicas(&harness, ns, 1, "5 replicas at 20/100 to become 1").await;
        wait_for_status(&harness, ns, "the status of the scale down", |s| {
            field(s, "/status/desiredReplicas") == Some(&json!(1))
                && field(s, "/status/lastValue") == Some(&json!("20"))
        })
        .await;

        let (path, query) = metrics.requests()[0].clone();
        assert_eq!(path, "/prometheus/api/v1/query");
        assert_eq!(
            query, "query=sum%28rate%28http_requests_total%7Bjob%3D%22web%22%7D%5B1m%5D%29%29",
            "the query, percent-encoded, under the base URL without its trailing slash"
        );
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scaler_reports_error_responses_and_recovers() {
    for lang in Lang::available("metrics-scaler") {
        let metrics = MetricsApi::start().await;
        let (harness, namespace) = start(lang, &metrics.url("/"), 3).await;
        let ns = namespace.name.as_str();
        metrics.answer(503, "overloaded");
        create_scaler(&harness, ns, &metrics.url("")).await;

        let scaler = wait_for_status(&harness, ns, "lastError for HTTP 503", |s| {
            field(s, "/status/lastError") == Some(&json!("metrics API returned HTTP 503"))
        })
        .await;
        assert_eq!(
            ready(&scaler),
            (
                json!("False"),
                json!("MetricUnavailable"),
                json!("metrics API returned HTTP 503")
            )
        );
        assert_eq!(
            field(&scaler, "/status/desiredReplicas"),
            None,
            "nothing was ever measured"
        );

        metrics.answer(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        );
        wait_for_status(&harness, ns, "lastError for an empty vector", |s| {
            field(s, "/status/lastError") == Some(&json!("metrics API returned no usable sample"))
        })
        .await;

        metrics.answer_value("100");
        let scaler = wait_for_status(&harness, ns, "recovery: lastError cleared", |s| {
            field(s, "/status/lastValue") == Some(&json!("100"))
                && field(s, "/status/lastError").is_none()
        })
        .await;
        assert_eq!(
            field(&scaler, "/status/desiredReplicas"),
            Some(&json!(3)),
            "3 replicas at 100/100 stay 3"
        );
        assert_eq!(ready(&scaler).0, json!("True"));
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scaler_cannot_reach_a_url_outside_its_allowlist() {
    for lang in Lang::available("metrics-scaler") {
        let metrics = MetricsApi::start().await;
        let (harness, namespace) = start(lang, &metrics.url("/allowed"), 3).await;
        let ns = namespace.name.as_str();
        metrics.answer_value("900");
        create_scaler(&harness, ns, &metrics.url("/forbidden")).await;

        let scaler = wait_for_status(&harness, ns, "the refusal in lastError", |s| {
            field(s, "/status/lastError")
                .and_then(Value::as_str)
                .is_some_and(|e| e.contains("allowlist"))
        })
        .await;
        assert_eq!(ready(&scaler).1, json!("MetricUnavailable"));
        assert!(
            metrics.requests().is_empty(),
            "the host must not connect: {:?}",
            metrics.requests()
        );
        let deployment = Api::<Deployment>::namespaced(harness.client.clone(), ns)
            .get("web")
            .await
            .unwrap();
        assert_eq!(deployment.spec.replicas, Some(3));
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scaler_reports_a_missing_target() {
    for lang in Lang::available("metrics-scaler") {
        let metrics = MetricsApi::start().await;
        let (harness, namespace) = start(lang, &metrics.url("/"), 3).await;
        let ns = namespace.name.as_str();
        metrics.answer_value("100");
        let spec = json!({"targetRef": {"name": "nowhere"}, "metricsUrl": metrics.url(""), "query": "up",
                          "targetValue": 1, "maxReplicas": 4, "intervalSeconds": 1});
        kinds::create(&harness.client, ns, Kind::MetricScaler, "rps", spec).await;
        wait_for_status(&harness, ns, "lastError for the missing target", |s| {
            field(s, "/status/lastError") == Some(&json!("target Deployment nowhere not found"))
        })
        .await;
        harness.stop().await;
    }
}

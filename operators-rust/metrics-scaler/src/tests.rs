//! The metrics-scaler operator against the fake host: the exact host calls of docs/examples.md
//! for a scale, a steady reading and each way the metric can be unavailable.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use wasm_operator_sdk::abi::{HostError, HostResponse, HttpResponse, KubeRequest, ReconcileResult};
use wasm_operator_sdk::testing::{self, FakeHost};

use crate::metric::{parse_query_response, query_request, Sample};
use crate::{wasm_operator_init, wasm_operator_reconcile};

const NOW: &str = "2026-01-02T03:04:05Z";

fn host() -> FakeHost {
    let host = FakeHost::install();
    host.set_clock(UNIX_EPOCH + Duration::from_secs(1_767_323_045));
    host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "scaler-1", "config": {}}),
    )
    .registration();
    host
}

fn scaler(status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "MetricScaler",
        "metadata": {"name": "rps", "namespace": "ns", "uid": "uid-9", "generation": 3},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "metricsUrl": "http://127.0.0.1:9090/", "query": "sum(rate(http_requests_total[1m]))",
                 "targetValue": 100, "minReplicas": 1, "maxReplicas": 10, "intervalSeconds": 15}
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

fn request(object: Value) -> Value {
    json!({"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "MetricScaler", "namespace": "ns", "name": "rps",
           "object": object})
}

fn vector(value: &str) -> String {
    json!({"status": "success", "data": {"resultType": "vector",
           "result": [{"metric": {}, "value": [1767323045.5, value]}]}})
    .to_string()
}

/// Answers the metric with `metric` and the target with `replicas` replicas (`None`: no target).
fn serve(host: &FakeHost, metric: HostResponse<HttpResponse>, replicas: Option<i64>) {
    host.on_http(move |_| metric.clone());
    host.on_kube(move |request| match (request, replicas) {
        (KubeRequest::Get { .. }, Some(replicas)) => testing::ok(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}})),
        (KubeRequest::Get { .. }, None) => testing::not_found("deployments.apps", "web"),
        _ => testing::echo(request),
    });
}

fn ready(status: &str, reason: &str, message: &str, time: &str) -> Value {
    json!({"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": time})
}

fn status_patch(status: Value) -> Value {
    json!({"verb": "patch", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "MetricScaler", "namespace": "ns",
           "name": "rps", "subresource": "status", "patchType": "merge", "body": {"status": status}})
}

fn requeue_after_interval() -> ReconcileResult {
    ReconcileResult {
        requeue_after_ms: Some(15_000),
        requeue: false,
    }
}

#[test]
fn registers_for_metric_scalers_only() {
    let host = FakeHost::install();
    let outcome = host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "s", "config": {}}),
    );
    assert_eq!(
        outcome.result.unwrap(),
        json!({"for": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "MetricScaler", "predicates": ["generationChanged"]},
               "owns": [], "watches": []})
    );
}

#[test]
fn the_query_is_percent_encoded_under_the_base_url_without_its_trailing_slash() {
    let request = query_request("http://m:9090/prom/", "up{job=\"a b\"}/2~");
    assert_eq!(
        serde_json::to_value(request.as_abi()).unwrap(),
        json!({"method": "GET", "url": "http://m:9090/prom/api/v1/query?query=up%7Bjob%3D%22a%20b%22%7D%2F2~",
               "headers": {"accept": "application/json"}, "timeoutMs": 5000})
    );
    assert_eq!(
        query_request("http://m:9090", "x").as_abi().url,
        "http://m:9090/api/v1/query?query=x"
    );
}

#[test]
fn samples_come_from_vectors_and_scalars_as_finite_numbers_only() {
    let sample = |text: &str| {
        Some(Sample {
            text: text.to_owned(),
            value: text.parse().unwrap(),
        })
    };
    assert_eq!(parse_query_response(&vector("0.75")), sample("0.75"));
    let scalar =
        json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "12e1"]}})
            .to_string();
    assert_eq!(parse_query_response(&scalar), sample("12e1"));
    for unusable in [
        json!({"status": "success", "data": {"resultType": "vector", "result": []}}).to_string(),
        json!({"status": "error", "errorType": "bad_data", "error": "parse error"}).to_string(),
        json!({"status": "success", "data": {"resultType": "matrix", "result": []}}).to_string(),
        json!({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, 5]}]}}).to_string(),
        vector("NaN"),
        vector("+Inf"),
        vector("lots"),
        "not json".to_owned(),
    ] {
        assert_eq!(parse_query_response(&unusable), None, "{unusable}");
    }
}

#[test]
fn a_value_over_target_scales_up_records_an_event_and_the_status() {
    let host = host();
    serve(&host, testing::http_response(200, &vector("250")), Some(2));
    let result = host
        .reconcile(wasm_operator_reconcile, request(scaler(None)))
        .reconcile_result();
    assert_eq!(result, requeue_after_interval());

    assert_eq!(
        host.raw_http_requests(),
        [
            json!({"method": "GET", "url": "http://127.0.0.1:9090/api/v1/query?query=sum%28rate%28http_requests_total%5B1m%5D%29%29",
                "headers": {"accept": "application/json"}, "timeoutMs": 5000})
        ]
    );
    let sent = host.raw_kube_requests();
    let expected = [
        json!({"verb": "get", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web"}),
        json!({"verb": "patch", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web",
               "patchType": "merge", "body": {"spec": {"replicas": 5}}}),
        json!({"verb": "create", "apiVersion": "events.k8s.io/v1", "kind": "Event", "namespace": "ns",
               "body": {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                        "metadata": {"generateName": "rps-", "namespace": "ns"},
                        "eventTime": "2026-01-02T03:04:05.000000Z",
                        "reportingController": "demo.wasm-operator.dev/metrics-scaler", "reportingInstance": "metrics-scaler",
                        "action": "Reconcile", "reason": "Scaled", "type": "Normal",
                        "note": "scaled Deployment web from 2 to 5 replicas (metric value 250)",
                        "regarding": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "MetricScaler",
                                      "namespace": "ns", "name": "rps", "uid": "uid-9"}}}),
        status_patch(
            json!({"observedGeneration": 3, "lastValue": "250", "currentReplicas": 2, "desiredReplicas": 5,
                            "lastScaleTime": NOW, "lastError": null,
                            "conditions": [ready("True", "MetricAvailable", "metric value 250", NOW)]}),
        ),
    ];
    assert_eq!(sent, expected);
}

#[test]
fn a_value_under_target_scales_down_to_the_minimum() {
    let host = host();
    serve(&host, testing::http_response(200, &vector("0.5")), Some(4));
    host.reconcile(wasm_operator_reconcile, request(scaler(None)))
        .reconcile_result();
    assert_eq!(
        host.raw_kube_requests()[1]["body"],
        json!({"spec": {"replicas": 1}})
    );
}

#[test]
fn a_steady_reading_keeps_the_last_scale_time_and_neither_patches_nor_records() {
    let host = host();
    serve(&host, testing::http_response(200, &vector("100")), Some(3));
    let status = json!({"observedGeneration": 2, "lastValue": "90", "currentReplicas": 3, "desiredReplicas": 3,
                        "lastScaleTime": "2025-12-31T00:00:00Z", "lastError": "earlier trouble",
                        "conditions": [ready("True", "MetricAvailable", "metric value 90", "2025-12-31T00:00:00Z")]});
    host.reconcile(wasm_operator_reconcile, request(scaler(Some(status))))
        .reconcile_result();
    let sent = host.raw_kube_requests();
    assert_eq!(sent.len(), 2, "a get and the status: {sent:#?}");
    assert_eq!(
        sent[1],
        status_patch(
            json!({"observedGeneration": 3, "lastValue": "100", "currentReplicas": 3, "desiredReplicas": 3,
                            "lastScaleTime": "2025-12-31T00:00:00Z", "lastError": null,
                            "conditions": [ready("True", "MetricAvailable", "metric value 100", "2025-12-31T00:00:00Z")]})
        )
    );
}

#[test]
fn an_unchanged_status_is_not_written() {
    let host = host();
    serve(&host, testing::http_response(200, &vector("100")), Some(3));
    let status = json!({"observedGeneration": 3, "lastValue": "100", "currentReplicas": 3, "desiredReplicas": 3,
                        "conditions": [ready("True", "MetricAvailable", "metric value 100", "2025-12-31T00:00:00Z")]});
    host.reconcile(wasm_operator_reconcile, request(scaler(Some(status))))
        .reconcile_result();
    assert_eq!(host.kube_requests().len(), 1, "only the get of the target");
}

/// The status written when the metric is unavailable: the other fields of `previous` kept.
fn unavailable_status(last_error: &str) -> Value {
    json!({"observedGeneration": 3, "lastValue": "90", "currentReplicas": 3, "desiredReplicas": 3,
           "lastScaleTime": "2025-12-31T00:00:00Z", "lastError": last_error,
           "conditions": [ready("False", "MetricUnavailable", last_error, NOW)]})
}

fn previous() -> Value {
    json!({"observedGeneration": 2, "lastValue": "90", "currentReplicas": 3, "desiredReplicas": 3,
           "lastScaleTime": "2025-12-31T00:00:00Z",
           "conditions": [ready("True", "MetricAvailable", "metric value 90", "2025-12-31T00:00:00Z")]})
}

#[test]
fn an_error_response_makes_the_metric_unavailable_without_reading_the_target() {
    let host = host();
    serve(&host, testing::http_response(503, "overloaded"), Some(3));
    let result = host
        .reconcile(wasm_operator_reconcile, request(scaler(Some(previous()))))
        .reconcile_result();
    assert_eq!(result, requeue_after_interval());
    assert_eq!(
        host.raw_kube_requests(),
        [status_patch(unavailable_status(
            "metrics API returned HTTP 503"
        ))]
    );
}

#[test]
fn a_refused_request_reports_the_hosts_message() {
    let host = host();
    let denied = HostError::capability_denied(
        "http request to http://127.0.0.1:9090/ refused: not in the operator's allowlist",
    );
    serve(&host, HostResponse::Error(denied), Some(3));
    host.reconcile(wasm_operator_reconcile, request(scaler(Some(previous()))))
        .reconcile_result();
    assert_eq!(
        host.raw_kube_requests(),
        [status_patch(unavailable_status(
            "http request to http://127.0.0.1:9090/ refused: not in the operator's allowlist"
        ))]
    );
}

#[test]
fn a_body_without_a_sample_is_no_usable_sample() {
    let host = host();
    serve(
        &host,
        testing::http_response(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        ),
        Some(3),
    );
    host.reconcile(wasm_operator_reconcile, request(scaler(Some(previous()))))
        .reconcile_result();
    assert_eq!(
        host.raw_kube_requests(),
        [status_patch(unavailable_status(
            "metrics API returned no usable sample"
        ))]
    );
}

#[test]
fn a_missing_target_is_reported_after_the_get() {
    let host = host();
    serve(&host, testing::http_response(200, &vector("250")), None);
    host.reconcile(wasm_operator_reconcile, request(scaler(Some(previous()))))
        .reconcile_result();
    let sent = host.raw_kube_requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1],
        status_patch(unavailable_status("target Deployment web not found"))
    );
}

#[test]
fn a_non_positive_target_value_is_reported_after_the_get() {
    let host = host();
    serve(&host, testing::http_response(200, &vector("250")), Some(3));
    let mut object = scaler(Some(previous()));
    object["spec"]["targetValue"] = json!(0);
    host.reconcile(wasm_operator_reconcile, request(object))
        .reconcile_result();
    let sent = host.raw_kube_requests();
    assert_eq!(sent[0]["verb"], "get");
    assert_eq!(
        sent[1],
        status_patch(unavailable_status("targetValue must be positive"))
    );
}

#[test]
fn other_errors_reading_the_target_fail_the_reconcile() {
    let host = host();
    host.on_http(|_| testing::http_response(200, &vector("250")));
    let calls = Rc::new(RefCell::new(0));
    let counter = calls.clone();
    host.on_kube(move |_| {
        *counter.borrow_mut() += 1;
        testing::api_error(403, "Forbidden", "deployments.apps \"web\" is forbidden")
    });
    let error = host
        .reconcile(wasm_operator_reconcile, request(scaler(None)))
        .guest_error();
    assert_eq!(
        error.message,
        "reading target Deployment web: deployments.apps \"web\" is forbidden"
    );
    assert_eq!(*calls.borrow(), 1);
}

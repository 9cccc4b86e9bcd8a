//! JSON shape of every message: each type round-trips (value -> JSON -> value), parses the wire
//! examples of the ABI decisions, writes camelCase, omits unset optional fields and accepts
//! missing defaults.

use std::fmt::Debug;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use wasm_operator_abi::*;

/// Serializes `value`, parses it back, and checks nothing was lost. Returns the JSON.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Value {
    let text = serde_json::to_string(value).expect("serializes");
    let parsed: T = serde_json::from_str(&text).expect("parses what it wrote");
    assert_eq!(
        &parsed, value,
        "round trip changed the value; JSON was {text}"
    );
    serde_json::from_str(&text).unwrap()
}

/// Parses a wire example and checks that writing it back gives the same JSON (nulls and unset
/// defaults aside, which are omitted on output).
fn parse_example<T: Serialize + DeserializeOwned + PartialEq + Debug>(example: &str) -> T {
    let parsed: T =
        serde_json::from_str(example).unwrap_or_else(|error| panic!("{error}: {example}"));
    let written = round_trip(&parsed);
    let expected = strip_nulls(serde_json::from_str(example).unwrap());
    assert_eq!(
        strip_nulls(written),
        expected,
        "example does not survive a round trip: {example}"
    );
    parsed
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key, strip_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[test]
fn init_input() {
    let input: InitInput = parse_example(
        r#"{"abiVersion":1,"operatorName":"webapp","config":{"replicas":2,"image":"nginx"}}"#,
    );
    assert_eq!(input.operator_name, "webapp");
    assert_eq!(input.config["replicas"], 2);

    let without_config: InitInput =
        serde_json::from_str(r#"{"abiVersion":1,"operatorName":"x"}"#).unwrap();
    assert_eq!(
        without_config.config,
        json!({}),
        "config defaults to an empty object"
    );
    assert!(
        serde_json::from_str::<InitInput>(r#"{"operatorName":"x"}"#).is_err(),
        "abiVersion is required"
    );
}

#[test]
fn registration() {
    let registration: Registration = parse_example(
        r#"{
  "for": {"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":null,"labelSelector":null,
          "predicates":["generationChanged"]},
  "owns": [{"apiVersion":"apps/v1","kind":"Deployment","namespace":null,"labelSelector":null,"predicates":[]}],
  "watches": [{"apiVersion":"v1","kind":"ConfigMap","namespace":null,"labelSelector":"app=x","predicates":[],
               "mapping":{"type":"labels","nameLabel":"demo.wasm-operator.dev/webapp","namespaceLabel":null}}]
}"#,
    );
    assert_eq!(registration.for_.kind, "WebApp");
    assert_eq!(
        registration.for_.predicates,
        vec![Predicate::GenerationChanged]
    );
    assert_eq!(registration.owns[0].kind, "Deployment");
    assert_eq!(
        registration.watches[0].spec.label_selector.as_deref(),
        Some("app=x")
    );
    assert_eq!(
        registration.watches[0].mapping,
        Mapping::Labels {
            name_label: "demo.wasm-operator.dev/webapp".into(),
            namespace_label: None
        }
    );

    let minimal: Registration =
        serde_json::from_str(r#"{"for":{"apiVersion":"v1","kind":"ConfigMap"}}"#).unwrap();
    assert_eq!(
        minimal,
        Registration::new(WatchSpec::new("v1", "ConfigMap")),
        "owns, watches, predicates default to []"
    );
    assert_eq!(
        round_trip(&minimal),
        json!({"for":{"apiVersion":"v1","kind":"ConfigMap","predicates":[]},"owns":[],"watches":[]})
    );
}

#[test]
fn watch_spec_predicates_and_every_mapping() {
    let spec = WatchSpec {
        namespace: Some("prod".into()),
        label_selector: Some("tier!=db".into()),
        predicates: vec![
            Predicate::GenerationChanged,
            Predicate::LabelsChanged,
            Predicate::AnnotationsChanged,
        ],
        ..WatchSpec::new("apps/v1", "Deployment")
    };
    assert_eq!(
        round_trip(&spec)["predicates"],
        json!(["generationChanged", "labelsChanged", "annotationsChanged"])
    );
    for (mapping, wire) in [
        (Mapping::Owner, json!({"type":"owner"})),
        (Mapping::All, json!({"type":"all"})),
        (
            Mapping::Labels {
                name_label: "app".into(),
                namespace_label: Some("app-ns".into()),
            },
            json!({"type":"labels","nameLabel":"app","namespaceLabel":"app-ns"}),
        ),
    ] {
        assert_eq!(round_trip(&mapping), wire);
        let watch = Watch {
            spec: spec.clone(),
            mapping,
        };
        let json = round_trip(&watch);
        assert_eq!(
            json["kind"], "Deployment",
            "WatchSpec fields sit beside mapping: {json}"
        );
    }
    assert!(serde_json::from_str::<Mapping>(r#"{"type":"selector"}"#).is_err());
    assert!(
        serde_json::from_str::<Watch>(r#"{"apiVersion":"v1","kind":"Secret"}"#).is_err(),
        "mapping is required"
    );
}

#[test]
fn reconcile_request() {
    let request: ReconcileRequest = parse_example(
        r#"{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"default","name":"web","object":{"metadata":{"name":"web","generation":3}},"attempt":0}"#,
    );
    assert_eq!(
        request.object.as_ref().unwrap()["metadata"]["generation"],
        3
    );

    let deleted: ReconcileRequest = parse_example(
        r#"{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"default","name":"web","object":null,"absentReason":"deleted","attempt":2}"#,
    );
    assert_eq!((deleted.object, deleted.attempt), (None, 2));
    assert_eq!(deleted.absent_reason, Some(AbsentReason::Deleted));

    let relabelled: ReconcileRequest = parse_example(
        r#"{"apiVersion":"v1","kind":"ConfigMap","namespace":"default","name":"settings","object":null,"absentReason":"notSelected","attempt":0}"#,
    );
    assert_eq!(relabelled.absent_reason, Some(AbsentReason::NotSelected));
    let from_a_newer_host: ReconcileRequest = serde_json::from_str(
        r#"{"apiVersion":"v1","kind":"ConfigMap","name":"settings","absentReason":"movedToTheMoon"}"#,
    )
    .unwrap();
    assert_eq!(
        from_a_newer_host.absent_reason,
        Some(AbsentReason::Unknown),
        "a reason the guest does not know reads as unknown"
    );

    let cluster_scoped: ReconcileRequest =
        serde_json::from_str(r#"{"apiVersion":"v1","kind":"Namespace","name":"team-a"}"#).unwrap();
    assert_eq!(
        (cluster_scoped.namespace, cluster_scoped.attempt),
        (None, 0)
    );
}

#[test]
fn reconcile_result() {
    assert_eq!(
        parse_example::<ReconcileResult>(r#"{"requeueAfterMs": 30000}"#),
        ReconcileResult::requeue_after(Duration::from_secs(30))
    );
    assert_eq!(
        parse_example::<ReconcileResult>("{}"),
        ReconcileResult::done()
    );
    assert_eq!(
        parse_example::<ReconcileResult>(r#"{"requeue": true}"#),
        ReconcileResult::requeue()
    );
    assert_eq!(round_trip(&ReconcileResult::done()), json!({}));
    assert!(
        serde_json::from_str::<ReconcileResult>(r#"{"requeueAfterMs": 1.5}"#).is_err(),
        "milliseconds are integers"
    );
}

#[test]
fn guest_error() {
    let error: GuestError =
        parse_example(r#"{"message":"deployment web: image missing","requeueAfterMs":null}"#);
    assert_eq!(error, GuestError::new("deployment web: image missing"));
    let delayed: GuestError =
        parse_example(r#"{"message":"waiting for the database","requeueAfterMs":5000}"#);
    assert_eq!(
        delayed,
        GuestError::new("waiting for the database").with_requeue_after(Duration::from_secs(5))
    );
    assert_eq!(delayed.to_string(), "waiting for the database");
}

#[test]
fn every_kube_request_verb() {
    let examples = [
        r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x"}"#,
        r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","cached":true}"#,
        r#"{"verb":"list","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","labelSelector":"a=b","fieldSelector":null}"#,
        r#"{"verb":"create","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","body":{"metadata":{"name":"x"},"data":{"k":"v"}}}"#,
        r#"{"verb":"update","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","subresource":null,"body":{"metadata":{"name":"x"}}}"#,
        r#"{"verb":"update","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"ns","name":"x","subresource":"status","body":{"status":{"ready":true}}}"#,
        r#"{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","subresource":null,"patchType":"apply","fieldManager":"webapp","force":true,"body":{"data":{"k":"v"}}}"#,
        r#"{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","patchType":"json","body":[{"op":"remove","path":"/data/k"}]}"#,
        r#"{"verb":"delete","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","propagationPolicy":null}"#,
        r#"{"verb":"delete","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","propagationPolicy":"Foreground"}"#,
    ];
    let mut verbs: Vec<&str> = examples
        .iter()
        .map(|example| parse_example::<KubeRequest>(example).verb())
        .collect();
    verbs.dedup();
    assert_eq!(
        verbs,
        ["get", "list", "create", "update", "patch", "delete"]
    );

    let patch: KubeRequest = serde_json::from_str(examples[6]).unwrap();
    assert_eq!(
        (
            patch.api_version(),
            patch.kind(),
            patch.namespace(),
            patch.name()
        ),
        ("v1", "ConfigMap", Some("ns"), Some("x"))
    );
    let KubeRequest::Patch {
        patch_type,
        force,
        field_manager,
        ..
    } = patch
    else {
        panic!("{patch:?}")
    };
    assert_eq!(
        (patch_type, force, field_manager.as_deref()),
        (PatchType::Apply, true, Some("webapp"))
    );

    let list: KubeRequest =
        serde_json::from_str(r#"{"verb":"list","apiVersion":"v1","kind":"Namespace"}"#).unwrap();
    assert_eq!(
        list,
        KubeRequest::List {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            label_selector: None,
            field_selector: None,
            cached: false,
        }
    );
    assert!(serde_json::from_str::<KubeRequest>(
        r#"{"verb":"watch","apiVersion":"v1","kind":"Pod"}"#
    )
    .is_err());
}

#[test]
fn patch_types_and_propagation_policies() {
    for (patch_type, wire, content_type) in [
        (PatchType::Merge, "merge", "application/merge-patch+json"),
        (PatchType::Json, "json", "application/json-patch+json"),
        (
            PatchType::Strategic,
            "strategic",
            "application/strategic-merge-patch+json",
        ),
        (PatchType::Apply, "apply", "application/apply-patch+yaml"),
    ] {
        assert_eq!(round_trip(&patch_type), json!(wire));
        assert_eq!(patch_type.content_type(), content_type);
    }
    for (policy, wire) in [
        (PropagationPolicy::Background, "Background"),
        (PropagationPolicy::Foreground, "Foreground"),
        (PropagationPolicy::Orphan, "Orphan"),
    ] {
        assert_eq!(round_trip(&policy), json!(wire));
    }
}

#[test]
fn http_request_and_response() {
    let request: HttpRequest = parse_example(
        r#"{"method":"GET","url":"http://127.0.0.1:9090/api/v1/query?query=up","headers":{"accept":"application/json"},"body":null,"timeoutMs":5000}"#,
    );
    assert_eq!(request.timeout_ms, Some(5000));
    let post: HttpRequest = parse_example(
        r#"{"method":"POST","url":"http://127.0.0.1:8080/hook","body":"{\"event\":\"ready\"}"}"#,
    );
    assert!(post.headers.is_empty());
    assert_eq!(
        round_trip(&HttpRequest::get("http://127.0.0.1/")),
        json!({"method":"GET","url":"http://127.0.0.1/"})
    );

    let response: HttpResponse = parse_example(
        r#"{"status":200,"headers":{"content-type":"application/json"},"body":"{\"status\":\"success\"}"}"#,
    );
    assert!(response.is_success());
    let not_found: HttpResponse = parse_example(r#"{"status":404,"headers":{},"body":""}"#);
    assert!(!not_found.is_success());
}

#[test]
fn log_records_at_every_level() {
    for level in ["error", "warn", "info", "debug", "trace"] {
        let record: LogRecord =
            parse_example(&format!(r#"{{"level":"{level}","message":"hello"}}"#));
        assert_eq!(record.level.as_str(), level);
    }
    let record: LogRecord = parse_example(
        r#"{"level":"info","message":"reconciled","fields":{"name":"web","replicas":3}}"#,
    );
    assert_eq!(
        record,
        LogRecord::new(LogLevel::Info, "reconciled")
            .with_field("name", "web")
            .with_field("replicas", 3)
    );
    assert!(
        LogLevel::Error < LogLevel::Trace,
        "ordered from most to least severe"
    );
    assert!(serde_json::from_str::<LogRecord>(r#"{"level":"fatal","message":"x"}"#).is_err());
}

#[test]
fn host_response_ok_carries_objects_and_http_responses() {
    let ok: HostResponse = parse_example(
        r#"{"ok":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":null}}"#,
    );
    let object = ok.into_result().unwrap();
    assert!(
        object["data"].is_null(),
        "objects are passed through exactly, nulls included"
    );

    let http: HostResponse<HttpResponse> =
        parse_example(r#"{"ok":{"status":503,"headers":{},"body":"overloaded"}}"#);
    assert_eq!(http.into_result().unwrap().status, 503);

    let error: HostResponse = parse_example(
        r#"{"error":{"type":"timeout","message":"http request timed out after 5000 ms"}}"#,
    );
    assert!(matches!(
        error.into_result(),
        Err(HostError::Timeout { .. })
    ));
    assert_eq!(
        HostResponse::from(Ok::<_, HostError>(json!(1))),
        HostResponse::Ok(json!(1))
    );
}

#[test]
fn every_host_error_type() {
    let examples = [
        r#"{"type":"apiStatus","message":"configmaps \"x\" not found","status":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"configmaps"},"code":404}}"#,
        r#"{"type":"capabilityDenied","message":"http request to https://evil.example/ refused: not in the operator's allowlist (allowed prefixes: http://127.0.0.1:9090/)"}"#,
        r#"{"type":"limitExceeded","message":"response body exceeds 4194304 bytes","limit":"responseSize"}"#,
        r#"{"type":"timeout","message":"http request timed out after 5000 ms"}"#,
        r#"{"type":"transport","message":"connection refused"}"#,
        r#"{"type":"invalidRequest","message":"unknown kind Foo in apiVersion example.com/v1"}"#,
    ];
    let errors: Vec<HostError> = examples
        .iter()
        .map(|example| parse_example(example))
        .collect();
    let types: Vec<_> = errors.iter().map(HostError::type_name).collect();
    assert_eq!(
        types,
        [
            "apiStatus",
            "capabilityDenied",
            "limitExceeded",
            "timeout",
            "transport",
            "invalidRequest"
        ]
    );
    assert_eq!(errors[0].message(), "configmaps \"x\" not found");
    assert!(errors[0].is_not_found() && !errors[0].is_conflict());
    assert_eq!(
        (errors[0].status_code(), errors[0].status_reason()),
        (Some(404), Some("NotFound"))
    );
    for error in &errors[1..] {
        assert!(
            !error.is_not_found() && !error.is_conflict() && error.status().is_none(),
            "{error:?}"
        );
    }
    assert_eq!(
        errors[2],
        HostError::limit_exceeded("responseSize", "response body exceeds 4194304 bytes")
    );
    assert_eq!(errors[4], HostError::transport("connection refused"));
    assert_eq!(errors[1].to_string(), errors[1].message());
    let constructed = [
        HostError::capability_denied("c"),
        HostError::timeout("t"),
        HostError::invalid_request("i"),
    ];
    let types: Vec<_> = constructed
        .iter()
        .map(|error| round_trip(error)["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            json!("capabilityDenied"),
            json!("timeout"),
            json!("invalidRequest")
        ]
    );
}

#[test]
fn not_found_and_conflict_follow_client_go() {
    let status = |code: i32, reason: Option<&str>| {
        let mut status = KubeStatus::failure(code, "", "m");
        status.reason = reason.map(str::to_owned);
        HostError::api_status(status)
    };
    assert!(status(404, Some("NotFound")).is_not_found());
    assert!(
        status(404, None).is_not_found(),
        "code decides when there is no reason"
    );
    assert!(
        status(404, Some("SomethingNew")).is_not_found(),
        "code decides when the reason is unknown"
    );
    assert!(
        !status(404, Some("Forbidden")).is_not_found(),
        "a known reason wins over the code"
    );
    assert!(status(409, Some("Conflict")).is_conflict());
    assert!(status(409, None).is_conflict());
    assert!(
        !status(409, Some("AlreadyExists")).is_conflict(),
        "AlreadyExists is a 409 but not a conflict"
    );
    assert!(status(409, Some("AlreadyExists")).is_already_exists());
    assert!(!status(500, Some("InternalError")).is_not_found());

    let without_message = HostError::api_status(KubeStatus {
        message: None,
        ..KubeStatus::failure(409, "Conflict", "")
    });
    assert_eq!(
        without_message.message(),
        "the API server answered 409 Conflict"
    );
    let minimal_status: KubeStatus =
        serde_json::from_str(r#"{"code":410,"reason":"Expired"}"#).unwrap();
    assert_eq!(
        (
            minimal_status.kind.as_str(),
            minimal_status.api_version.as_str()
        ),
        ("Status", "v1")
    );
}

#[test]
fn capabilities_are_lower_case_on_the_wire() {
    assert_eq!(
        round_trip(&Capability::ALL.to_vec()),
        json!(["kubernetes", "http", "log"])
    );
}

//! The controller-runtime-style helpers: finalizers, owner references, conditions, the status
//! comparison, Events, time formats, HTTP and logging.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::json;
use wasm_operator_sdk::abi::{HostError, HostResponse, LogLevel};
use wasm_operator_sdk::conditions::{self, new_condition, ConditionStatus};
use wasm_operator_sdk::prelude::*;
use wasm_operator_sdk::testing::{self, FakeHost};
use wasm_operator_sdk::{finalizer, http, log, owner, status, time};

/// 2026-01-02T03:04:05.123456789Z
fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_767_323_045, 123_456_789)
}

fn config_map(name: &str, uid: Option<&str>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: uid.map(Into::into),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

#[test]
fn finalizers_are_added_once_and_removed_keeping_the_others_in_order() {
    let mut object = config_map("x", None);
    assert!(!finalizer::remove(&mut object, "a/b"), "nothing to remove");
    assert_eq!(
        object.metadata.finalizers, None,
        "removing from no list must not create one"
    );
    assert!(finalizer::add(&mut object, "first"));
    assert!(finalizer::add(&mut object, "a/b"));
    assert!(finalizer::add(&mut object, "last"));
    assert!(!finalizer::add(&mut object, "a/b"));
    assert!(finalizer::has(&object, "a/b"));
    assert!(finalizer::remove(&mut object, "a/b"));
    assert_eq!(
        object.metadata.finalizers.as_deref(),
        Some(&["first".to_owned(), "last".to_owned()][..])
    );
    finalizer::remove(&mut object, "first");
    finalizer::remove(&mut object, "last");
    assert_eq!(
        serde_json::to_value(&object).unwrap()["metadata"]["finalizers"],
        json!([])
    );
    assert!(!finalizer::is_being_deleted(&object));
}

#[test]
fn controller_references_block_owner_deletion_and_refuse_a_second_controller() {
    let owner_object = config_map("owner", Some("uid-1"));
    let reference = owner::controller_reference(&owner_object).unwrap();
    assert_eq!(
        serde_json::to_value(&reference).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "uid-1", "controller": true, "blockOwnerDeletion": true})
    );
    assert!(owner::controller_reference(&config_map("unsaved", None)).is_none());

    let mut owned = config_map("owned", None);
    owner::set_controller_reference(&owner_object, &mut owned).unwrap();
    owner::set_controller_reference(&owner_object, &mut owned).unwrap();
    assert_eq!(
        owned.metadata.owner_references.as_ref().unwrap().len(),
        1,
        "setting it again replaces it"
    );
    assert_eq!(owner::controller_of(&owned).unwrap().uid, "uid-1");
    let error = owner::set_controller_reference(&config_map("other", Some("uid-2")), &mut owned)
        .unwrap_err();
    assert_eq!(error.to_string(), "already controlled by ConfigMap owner");

    let mut elsewhere = config_map("elsewhere", None);
    elsewhere.metadata.namespace = Some("other".into());
    assert!(owner::set_controller_reference(&owner_object, &mut elsewhere).is_err());

    assert!(!owner::remove_owner_reference(
        &config_map("other", Some("uid-2")),
        &mut owned
    ));
    assert!(owner::remove_owner_reference(&owner_object, &mut owned));
    assert_eq!(
        owned.metadata.owner_references, None,
        "no empty list left behind"
    );
    assert!(!owner::remove_owner_reference(&owner_object, &mut owned));
}

#[test]
fn a_condition_keeps_its_transition_time_until_its_status_changes() {
    let host = FakeHost::install();
    host.set_clock(fixed_clock());
    let mut list = Vec::new();
    assert!(conditions::set(
        &mut list,
        new_condition("Ready", false, "Waiting", "0/1")
    ));
    let first_time = list[0].last_transition_time.clone();

    host.set_clock(fixed_clock() + Duration::from_secs(60));
    assert!(!conditions::set(
        &mut list,
        new_condition("Ready", ConditionStatus::False, "Waiting", "0/2")
    ));
    assert_eq!(list[0].last_transition_time, first_time);
    assert_eq!(list[0].message, "0/2");

    assert!(conditions::set(
        &mut list,
        new_condition("Ready", true, "Done", "2/2")
    ));
    assert_ne!(list[0].last_transition_time, first_time);
    assert!(conditions::is_true(&list, "Ready"));
    assert_eq!(list.len(), 1);
    assert!(conditions::remove(&mut list, "Ready"));
    assert!(conditions::find(&list, "Ready").is_none());
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExampleStatus {
    observed_generation: i64,
    last_error: Option<String>,
    conditions: Vec<conditions::Condition>,
}

#[test]
fn status_comparison_ignores_transition_times_and_nulls_only() {
    let host = FakeHost::install();
    host.set_clock(fixed_clock());
    let current = ExampleStatus {
        observed_generation: 1,
        last_error: None,
        conditions: vec![new_condition("Ready", true, "Ok", "fine")],
    };
    host.set_clock(fixed_clock() + Duration::from_secs(5));
    let same_but_later = ExampleStatus {
        observed_generation: 1,
        last_error: None,
        conditions: vec![new_condition("Ready", true, "Ok", "fine")],
    };
    assert!(!status::differs(Some(&current), &same_but_later));
    let newer = ExampleStatus {
        observed_generation: 2,
        ..same_but_later
    };
    assert!(status::differs(Some(&current), &newer));
    assert!(status::differs(None, &current));
    let with_error = ExampleStatus {
        last_error: Some("x".into()),
        ..ExampleStatus {
            observed_generation: 1,
            last_error: None,
            conditions: vec![],
        }
    };
    assert!(status::differs(
        Some(&ExampleStatus {
            observed_generation: 1,
            last_error: None,
            conditions: vec![]
        }),
        &with_error
    ));
}

#[test]
fn times_are_formatted_as_kubernetes_writes_them() {
    let host = FakeHost::install();
    host.set_clock(fixed_clock());
    assert_eq!(
        serde_json::to_value(time::now()).unwrap(),
        "2026-01-02T03:04:05Z"
    );
    assert_eq!(
        serde_json::to_value(time::now_micro()).unwrap(),
        "2026-01-02T03:04:05.123456Z"
    );
}

#[test]
fn an_event_is_one_create_of_an_events_v1_event() {
    let host = FakeHost::install();
    host.set_clock(fixed_clock());
    host.on_kube(testing::echo);
    let regarding = config_map("web", Some("uid-1")).object_ref(&());
    let recorder = Recorder::new(Reporter {
        controller: "demo.wasm-operator.dev/webapp".into(),
        instance: Some("webapp".into()),
    });
    let event = Event {
        type_: EventType::Normal,
        reason: "Ready".into(),
        note: Some("1/1".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&event, &regarding).unwrap();
    recorder.publish(&event, &regarding).unwrap();
    let raw = host.raw_kube_requests();
    assert_eq!(
        raw.len(),
        2,
        "no aggregation: every publish creates an Event"
    );
    assert_eq!(
        raw[0],
        json!({"verb": "create", "apiVersion": "events.k8s.io/v1", "kind": "Event", "namespace": "ns",
               "body": {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                        "metadata": {"generateName": "web-", "namespace": "ns"},
                        "eventTime": "2026-01-02T03:04:05.123456Z",
                        "reportingController": "demo.wasm-operator.dev/webapp", "reportingInstance": "webapp",
                        "action": "Reconcile", "reason": "Ready", "note": "1/1", "type": "Normal",
                        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "web", "uid": "uid-1"}}})
    );
}

#[test]
fn a_failed_event_is_logged_not_returned_and_long_notes_are_cut() {
    let host = FakeHost::install();
    host.on_kube(|_| testing::api_error(403, "Forbidden", "events.events.k8s.io is forbidden"));
    let regarding = config_map("web", Some("uid-1")).object_ref(&());
    let recorder = Recorder::new(Reporter {
        controller: "example.com/x".into(),
        instance: None,
    });
    let long_note = format!("{}é{}", "a".repeat(1020), "b".repeat(100));
    let event = Event {
        type_: EventType::Warning,
        reason: "Broken".into(),
        note: Some(long_note),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish_or_log(&event, &regarding);

    let note = host.raw_kube_requests()[0]["body"]["note"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        note,
        format!("{}...", "a".repeat(1020)),
        "cut before the character crossing byte 1021"
    );
    assert_eq!(
        host.raw_kube_requests()[0]["body"]["reportingInstance"],
        json!("example.com/x"),
        "without an instance or an init, the controller stands in: the API server requires one"
    );
    let logs = host.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(
        (logs[0].level, logs[0].message.as_str()),
        (LogLevel::Warn, "could not record event")
    );
    assert_eq!(
        serde_json::to_value(&logs[0].fields).unwrap(),
        json!({"reason": "Broken", "regarding": "web", "error": "events.events.k8s.io is forbidden"})
    );
}

#[test]
fn http_requests_carry_method_headers_body_and_timeout() {
    let host = FakeHost::install();
    host.on_http(|request| match request.method.as_str() {
        "GET" => testing::http_response(200, r#"{"answer": 42}"#),
        _ => testing::http_response(503, "overloaded\nplease wait"),
    });
    #[derive(serde::Deserialize)]
    struct Answer {
        answer: u32,
    }
    let answer: Answer = http::get_json("http://127.0.0.1:9090/x").unwrap();
    assert_eq!(answer.answer, 42);
    let response = http::Request::post("http://127.0.0.1:9090/hook")
        .json(&json!({"n": 1}))
        .unwrap()
        .timeout(Duration::from_secs(2))
        .send()
        .unwrap();
    assert_eq!(response.status, 503);
    let error = response.error_for_status().unwrap_err();
    assert_eq!(error.to_string(), "HTTP 503: overloaded");

    assert_eq!(
        host.raw_http_requests(),
        [
            json!({"method": "GET", "url": "http://127.0.0.1:9090/x", "headers": {"accept": "application/json"}}),
            json!({"method": "POST", "url": "http://127.0.0.1:9090/hook", "headers": {"content-type": "application/json"},
                   "body": "{\"n\":1}", "timeoutMs": 2000}),
        ]
    );
}

#[test]
fn refused_http_is_a_capability_error() {
    let host = FakeHost::install();
    host.on_http(|_| HostResponse::Error(HostError::capability_denied("not in the allowlist")));
    let error = http::get("https://evil.example/").unwrap_err();
    assert!(error.is_capability_denied());
    assert_eq!(error.to_string(), "not in the allowlist");
}

#[test]
fn percent_encoding_keeps_only_unreserved_bytes() {
    assert_eq!(http::percent_encode("AZaz09-._~"), "AZaz09-._~");
    assert_eq!(
        http::percent_encode("sum(rate(x[5m])) / 2"),
        "sum%28rate%28x%5B5m%5D%29%29%20%2F%202"
    );
    assert_eq!(http::percent_encode("é"), "%C3%A9");
}

#[test]
fn log_records_carry_level_message_and_fields() {
    let host = FakeHost::install();
    log::info("started");
    log::Logger::new()
        .with("name", "web")
        .with("replicas", 3)
        .warn("scaled");
    let records = host.logs();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (records[0].level, records[0].message.as_str()),
        (LogLevel::Info, "started")
    );
    assert!(records[0].fields.is_empty());
    assert_eq!(records[1].level, LogLevel::Warn);
    assert_eq!(records[1].fields["replicas"], 3);
}

#[test]
fn a_record_longer_than_the_abi_allows_is_cut_not_sent_whole() {
    use wasm_operator_sdk::abi::limits::MAX_LOG_RECORD_BYTES;
    let host = FakeHost::install();
    let long = "é".repeat(60_000); // 120,000 bytes
    log::Logger::new()
        .with("body", long.as_str())
        .with("items", json!(vec![7; 40_000]))
        .error(long.as_str());
    let many = (0..100).fold(log::Logger::new(), |logger, i| {
        logger.with(&format!("field{i}"), "x".repeat(5_000))
    });
    many.warn("many fields");
    let records = host.logs();
    assert_eq!(records.len(), 2);
    for record in &records {
        let bytes = serde_json::to_vec(record).unwrap().len();
        assert!(bytes <= MAX_LOG_RECORD_BYTES, "{bytes} bytes sent");
    }
    let cut = &records[0];
    assert!(cut.message.len() <= 4096 && cut.message.ends_with('…'));
    assert!(cut.fields["body"].as_str().unwrap().starts_with("éé"));
    assert!(cut.fields["items"].as_str().unwrap().starts_with("[7,7,"));
    assert_eq!(records[1].message, "many fields");
    assert_eq!(
        records[1].fields.keys().collect::<Vec<_>>(),
        ["fieldsDropped"]
    );
}

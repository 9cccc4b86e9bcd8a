//! The Kubernetes client against the fake host: the exact KubeRequest each call sends (unset
//! options left out, not sent as null), how answers decode, and how API errors classify.

use std::cell::RefCell;
use std::rc::Rc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{json, Value};
use wasm_operator_sdk::abi::{HostError, KubeRequest};
use wasm_operator_sdk::testing::{self, FakeHost};
use wasm_operator_sdk::{Api, DeleteParams, ListParams, Patch, PatchParams};

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "ns", "uid": "u-1", "resourceVersion": "7"},
           "data": {"k": "v"}})
}

fn assert_no_nulls(value: &Value) {
    match value {
        Value::Null => panic!("a request carried a null"),
        Value::Object(fields) => fields.values().for_each(assert_no_nulls),
        Value::Array(items) => items.iter().for_each(assert_no_nulls),
        _ => {}
    }
}

#[test]
fn get_sends_a_plain_get_and_decodes_the_object() {
    let host = FakeHost::install();
    host.on_kube(|_| testing::ok(config_map("x")));
    let found = Api::<ConfigMap>::namespaced("ns").get("x").unwrap();
    assert_eq!(found.data.unwrap()["k"], "v");
    assert_eq!(
        host.raw_kube_requests(),
        [
            json!({"verb": "get", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"})
        ]
    );
}

#[test]
fn get_cached_asks_for_the_cache() {
    let host = FakeHost::install();
    host.on_kube(|_| testing::ok(config_map("x")));
    Api::<ConfigMap>::namespaced("ns").get_cached("x").unwrap();
    assert_eq!(host.raw_kube_requests()[0]["cached"], true);
}

#[test]
fn get_opt_turns_not_found_into_none_and_keeps_other_errors() {
    let host = FakeHost::install();
    host.on_kube(|request| match request.name() {
        Some("missing") => testing::not_found("configmaps", "missing"),
        _ => testing::api_error(403, "Forbidden", "configmaps \"secret\" is forbidden"),
    });
    let api = Api::<ConfigMap>::namespaced("ns");
    assert!(api.get_opt("missing").unwrap().is_none());
    let error = api.get_opt("secret").unwrap_err();
    assert!(!error.is_not_found());
    assert_eq!(error.api_status().unwrap().code, 403);
    assert_eq!(error.to_string(), "configmaps \"secret\" is forbidden");
}

#[test]
fn list_sends_selectors_and_decodes_items() {
    let host = FakeHost::install();
    host.on_kube(|_| {
        testing::ok(json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "9"},
                           "items": [config_map("a"), config_map("b")]}))
    });
    let list = Api::<ConfigMap>::all()
        .list(
            &ListParams::default()
                .labels("app=web")
                .fields("metadata.name=a"),
        )
        .unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .map(|item| item.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(list.metadata.resource_version.as_deref(), Some("9"));
    assert_eq!(
        host.raw_kube_requests(),
        [
            json!({"verb": "list", "apiVersion": "v1", "kind": "ConfigMap",
                "labelSelector": "app=web", "fieldSelector": "metadata.name=a"})
        ]
    );
}

#[test]
fn writes_send_the_typed_object_without_unset_fields() {
    let host = FakeHost::install();
    host.on_kube(testing::echo);
    let api = Api::<ConfigMap>::namespaced("ns");
    let mut object: ConfigMap = serde_json::from_value(config_map("x")).unwrap();
    api.create(&object).unwrap();
    object.data = Some([("k".to_owned(), "w".to_owned())].into());
    api.replace("x", &object).unwrap();
    api.replace_status("x", &object).unwrap();
    api.delete("x", &DeleteParams::foreground()).unwrap();
    api.delete("x", &DeleteParams::default()).unwrap();

    let raw = host.raw_kube_requests();
    raw.iter().for_each(assert_no_nulls);
    assert_eq!(
        raw[0],
        json!({"verb": "create", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "body": config_map("x")})
    );
    assert_eq!(raw[1]["verb"], "update");
    assert_eq!(raw[1]["body"]["data"]["k"], "w");
    assert!(raw[1].get("subresource").is_none());
    assert_eq!(raw[2]["subresource"], "status");
    assert_eq!(
        raw[3],
        json!({"verb": "delete", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x", "propagationPolicy": "Foreground"})
    );
    assert_eq!(
        raw[4],
        json!({"verb": "delete", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"})
    );
}

#[test]
fn patches_carry_their_type_manager_and_force() {
    let host = FakeHost::install();
    host.on_kube(testing::echo);
    let deployments = Api::<Value>::namespaced_with("ns", "apps/v1", "Deployment");
    let apply = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    deployments
        .patch(
            "web",
            &PatchParams::apply("webapp").force(),
            &Patch::Apply(&apply),
        )
        .unwrap();
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .unwrap();
    deployments
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::<()>::Json(json!([{"op": "remove", "path": "/status/x"}])),
        )
        .unwrap();
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {}})),
        )
        .unwrap();

    let raw = host.raw_kube_requests();
    raw.iter().for_each(assert_no_nulls);
    assert_eq!(
        raw[0],
        json!({"verb": "patch", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web",
               "patchType": "apply", "fieldManager": "webapp", "force": true, "body": apply})
    );
    assert_eq!(
        raw[1],
        json!({"verb": "patch", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web",
               "patchType": "merge", "body": {"spec": {"replicas": 3}}})
    );
    assert_eq!(raw[2]["patchType"], "json");
    assert_eq!(raw[2]["subresource"], "status");
    assert_eq!(raw[3]["patchType"], "strategic");
}

#[test]
fn api_errors_classify_like_client_go() {
    let host = FakeHost::install();
    let answers = Rc::new(RefCell::new(vec![
        testing::conflict("deployments.apps", "web"),
        testing::already_exists("deployments.apps", "web"),
        testing::api_error(404, "SomethingNew", "gone somewhere"),
        testing::host_error(HostError::capability_denied("not granted")),
    ]));
    let queue = answers.clone();
    host.on_kube(move |_| queue.borrow_mut().remove(0));
    let api = Api::<Deployment>::namespaced("ns");
    let conflict = api.get("web").unwrap_err();
    assert!(conflict.is_conflict() && !conflict.is_already_exists() && !conflict.is_not_found());
    let exists = api.get("web").unwrap_err();
    assert!(exists.is_already_exists() && !exists.is_conflict());
    let unknown_reason = api.get("web").unwrap_err();
    assert!(
        unknown_reason.is_not_found(),
        "an unknown reason leaves the code to decide"
    );
    let denied = api.get("web").unwrap_err();
    assert!(
        denied.is_capability_denied() && !denied.is_not_found() && denied.api_status().is_none()
    );
}

#[test]
fn an_object_that_does_not_fit_the_type_names_kind_and_key() {
    let host = FakeHost::install();
    host.on_kube(|_| {
        testing::ok(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}}))
    });
    let error = Api::<ConfigMap>::namespaced("ns").get("x").unwrap_err();
    assert!(
        error.to_string().starts_with("decoding ConfigMap ns/x: "),
        "{error}"
    );
}

#[test]
fn without_a_fake_host_calls_fail_with_a_transport_error_saying_what_to_do() {
    let error = Api::<ConfigMap>::namespaced("ns").get("x").unwrap_err();
    assert!(matches!(
        error.host_error(),
        Some(HostError::Transport { .. })
    ));
    assert!(error.to_string().contains("FakeHost"), "{error}");
}

#[test]
fn raw_requests_go_through_unchanged() {
    let host = FakeHost::install();
    host.on_kube(|request| match request {
        KubeRequest::Get { name, .. } => testing::ok(config_map(name)),
        _ => testing::echo(request),
    });
    let request = KubeRequest::Get {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("ns".into()),
        name: "raw".into(),
        cached: false,
    };
    let object = wasm_operator_sdk::request(&request).unwrap();
    assert_eq!(object["metadata"]["name"], "raw");
    assert_eq!(host.kube_requests(), [request]);
}

#[test]
fn with_context_builds_its_context_only_for_an_error() {
    use wasm_operator_sdk::ResultExt;
    let host = FakeHost::install();
    host.on_kube(|_| testing::not_found("configmaps", "settings"));
    let built = std::cell::Cell::new(0);
    let context = || {
        built.set(built.get() + 1);
        "reading the settings"
    };
    let found: Result<u32, wasm_operator_sdk::Error> = Ok(7);
    assert_eq!(found.with_context(context).unwrap(), 7);
    assert_eq!(built.get(), 0, "no error, no context built");

    let error = Api::<ConfigMap>::namespaced("ns")
        .get("settings")
        .with_context(context)
        .unwrap_err();
    assert_eq!(built.get(), 1);
    assert!(error.is_not_found(), "the cause is kept: {error}");
    assert!(
        error.to_string().starts_with("reading the settings: "),
        "{error}"
    );
}

#[test]
fn forbidden_invalid_unauthorized_gone_and_too_many_requests_are_classified() {
    let host = FakeHost::install();
    let answers = [
        (403, "Forbidden"),
        (422, "Invalid"),
        (401, "Unauthorized"),
        (410, "Gone"),
        (429, "TooManyRequests"),
        (422, ""), // no reason: the code decides
    ];
    let queue = Rc::new(RefCell::new(
        answers
            .iter()
            .map(|(code, reason)| testing::api_error(*code, reason, "refused"))
            .collect::<Vec<_>>(),
    ));
    host.on_kube(move |_| queue.borrow_mut().remove(0));
    let api = Api::<ConfigMap>::namespaced("ns");
    let mut classes = Vec::new();
    for _ in answers {
        let error = api.get("x").unwrap_err();
        let class: Vec<&str> = [
            ("forbidden", error.is_forbidden()),
            ("invalid", error.is_invalid()),
            ("unauthorized", error.is_unauthorized()),
            ("gone", error.is_gone()),
            ("tooManyRequests", error.is_too_many_requests()),
            ("notFound", error.is_not_found()),
        ]
        .into_iter()
        .filter_map(|(name, yes)| yes.then_some(name))
        .collect();
        classes.push(class.join(","));
    }
    assert_eq!(
        classes,
        [
            "forbidden",
            "invalid",
            "unauthorized",
            "gone",
            "tooManyRequests",
            "invalid"
        ]
    );
}

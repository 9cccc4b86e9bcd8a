//! The request proxy against the real API server: every verb and patch type, the status
//! subresource, and API errors passed through as the server's Status.
mod e2e_support;

use serde_json::{json, Value};
use wasm_operator::kube::discovery::Discovery;
use wasm_operator::kube::requests::execute;
use wasm_operator_abi::{HostResponse, KubeRequest, PatchType, PropagationPolicy};
use wasm_operator_test_support::{control_plane, test_namespace};

use e2e_support::{ensure_widget_crd, widget_resource};

fn ok(response: HostResponse) -> Value {
    match response {
        HostResponse::Ok(value) => value,
        HostResponse::Error(error) => panic!("request failed: {error:?}"),
    }
}

fn patch(ns: &str, name: &str, patch_type: PatchType, body: Value) -> KubeRequest {
    KubeRequest::Patch {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: name.into(),
        subresource: None,
        patch_type,
        field_manager: None,
        force: false,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_and_patch_type_reaches_the_api_server() {
    let client = control_plane().client().await;
    let namespace = test_namespace(&client, "requests").await;
    let ns = namespace.name.as_str();
    let discovery = Discovery::new(client.clone());
    let run = |request: KubeRequest| {
        let (client, discovery) = (client.clone(), discovery.clone());
        async move { execute(&client, &discovery, "requests-test", request).await }
    };

    let created = ok(run(KubeRequest::Create {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        body: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": "1"}}),
    })
    .await);
    assert_eq!(created["metadata"]["namespace"], ns);

    let got = ok(run(KubeRequest::Get {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "x".into(),
        cached: false,
    })
    .await);
    assert_eq!(got["data"]["k"], "1");
    assert_eq!(
        got["kind"], "ConfigMap",
        "objects arrive exactly as the server sends them"
    );

    let mut update = got.clone();
    update["data"]["k"] = json!("2");
    let updated = ok(run(KubeRequest::Update {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "x".into(),
        subresource: None,
        body: update.clone(),
    })
    .await);
    assert_eq!(updated["data"]["k"], "2");

    // Updating with the stale resourceVersion is a conflict, passed through as the server's Status.
    let conflict = run(KubeRequest::Update {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "x".into(),
        subresource: None,
        body: update,
    })
    .await;
    let HostResponse::Error(error) = conflict else {
        panic!("a stale update must fail")
    };
    assert!(error.is_conflict(), "{error:?}");
    assert_eq!(error.status().unwrap().code, 409);

    assert_eq!(
        ok(run(patch(
            ns,
            "x",
            PatchType::Merge,
            json!({"data": {"m": "merge"}})
        ))
        .await)["data"]["m"],
        "merge"
    );
    assert_eq!(
        ok(run(patch(
            ns,
            "x",
            PatchType::Strategic,
            json!({"data": {"s": "strategic"}})
        ))
        .await)["data"]["s"],
        "strategic"
    );
    let json_patch = json!([{"op": "add", "path": "/data/j", "value": "json"}]);
    assert_eq!(
        ok(run(patch(ns, "x", PatchType::Json, json_patch)).await)["data"]["j"],
        "json"
    );
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "apply"}});
    let applied = ok(run(patch(ns, "applied", PatchType::Apply, apply)).await);
    assert_eq!(applied["data"]["a"], "apply");
    assert_eq!(
        applied["metadata"]["managedFields"][0]["manager"], "requests-test",
        "the operator's name is the default field manager"
    );

    let bad_json_patch = run(patch(ns, "x", PatchType::Json, json!({"not": "a list"}))).await;
    let HostResponse::Error(error) = bad_json_patch else {
        panic!("a malformed JSON patch must fail")
    };
    assert_eq!(error.type_name(), "invalidRequest");

    let listed = ok(run(KubeRequest::List {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        label_selector: Some("a=b".into()),
        field_selector: None,
        cached: false,
    })
    .await);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    ok(run(KubeRequest::Delete {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "x".into(),
        propagation_policy: Some(PropagationPolicy::Background),
    })
    .await);
    let gone = run(KubeRequest::Get {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "x".into(),
        cached: false,
    })
    .await;
    let HostResponse::Error(error) = gone else {
        panic!("the ConfigMap must be gone")
    };
    assert!(error.is_not_found());
    assert_eq!(error.message(), "configmaps \"x\" not found");

    let unknown = run(KubeRequest::Get {
        api_version: "nowhere.example/v1".into(),
        kind: "Ghost".into(),
        namespace: Some(ns.into()),
        name: "x".into(),
        cached: false,
    })
    .await;
    let HostResponse::Error(error) = unknown else {
        panic!("an unknown kind must fail")
    };
    assert_eq!(error.type_name(), "invalidRequest");
    assert!(
        error.message().contains("unknown kind Ghost"),
        "{}",
        error.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_subresource_is_written_separately_from_the_spec() {
    let client = control_plane().client().await;
    ensure_widget_crd(&client).await;
    let namespace = test_namespace(&client, "requests-status").await;
    let ns = namespace.name.as_str();
    let discovery = Discovery::new(client.clone());
    let widget = widget_resource();
    let run = |request: KubeRequest| {
        let (client, discovery) = (client.clone(), discovery.clone());
        async move { execute(&client, &discovery, "requests-test", request).await }
    };
    ok(run(KubeRequest::Create {
        api_version: widget.api_version.clone(),
        kind: "Widget".into(),
        namespace: Some(ns.into()),
        body: json!({"apiVersion": widget.api_version, "kind": "Widget", "metadata": {"name": "w"}, "spec": {"data": {"a": "1"}}}),
    })
    .await);
    let status_patch = |subresource: Option<&str>| KubeRequest::Patch {
        api_version: widget.api_version.clone(),
        kind: "Widget".into(),
        namespace: Some(ns.into()),
        name: "w".into(),
        subresource: subresource.map(Into::into),
        patch_type: PatchType::Merge,
        field_manager: None,
        force: false,
        body: json!({"status": {"configMapName": "from-status"}}),
    };
    // Without the subresource the server ignores status changes; with it they land.
    let ignored = ok(run(status_patch(None)).await);
    assert!(ignored["status"]["configMapName"].is_null(), "{ignored}");
    let written = ok(run(status_patch(Some("status"))).await);
    assert_eq!(written["status"]["configMapName"], "from-status");
    assert_eq!(
        written["metadata"]["generation"], 1,
        "a status write does not bump the generation"
    );

    let mut replaced = written.clone();
    replaced["status"]["configMapName"] = json!("replaced");
    let updated = ok(run(KubeRequest::Update {
        api_version: widget.api_version.clone(),
        kind: "Widget".into(),
        namespace: Some(ns.into()),
        name: "w".into(),
        subresource: Some("status".into()),
        body: replaced,
    })
    .await);
    assert_eq!(updated["status"]["configMapName"], "replaced");
}

/// `update` names the object twice: `name` (the URL) and `body.metadata.name`. The host passes
/// both on unchanged and the API server decides: when they differ, or the body has no name, or
/// the body's namespace differs from `namespace`, the answer is an `apiStatus` 400 BadRequest
/// naming both, and the object is unchanged. docs/abi.md (KubeRequest) says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_body_names_another_object_is_refused_by_the_api_server() {
    let client = control_plane().client().await;
    let namespace = test_namespace(&client, "requests-update-name").await;
    let ns = namespace.name.as_str();
    let discovery = Discovery::new(client.clone());
    let run = |request: KubeRequest| {
        let (client, discovery) = (client.clone(), discovery.clone());
        async move { execute(&client, &discovery, "requests-test", request).await }
    };
    for name in ["x", "y"] {
        ok(run(KubeRequest::Create {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(ns.into()),
            body: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "1"}}),
        })
        .await);
    }
    let update = |body: Value| KubeRequest::Update {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: "x".into(),
        subresource: None,
        body,
    };
    let refused = |response: HostResponse| match response {
        HostResponse::Error(error) => {
            assert_eq!(error.type_name(), "apiStatus", "{error:?}");
            assert_eq!(error.status_code(), Some(400), "{error:?}");
            assert_eq!(error.status_reason(), Some("BadRequest"), "{error:?}");
            error.message().to_owned()
        }
        HostResponse::Ok(value) => panic!("the update went through: {value}"),
    };

    let other_name = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "data": {"k": "2"}});
    let message = refused(run(update(other_name)).await);
    assert_eq!(
        message,
        "the name of the object (y) does not match the name on the URL (x)"
    );
    let no_name =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {"k": "2"}});
    let message = refused(run(update(no_name)).await);
    assert_eq!(
        message,
        "the name of the object (x based on URL) was undeterminable: name must be provided"
    );
    let other_namespace = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "elsewhere"}, "data": {"k": "2"}});
    let message = refused(run(update(other_namespace)).await);
    assert!(message.contains("namespace"), "{message}");

    for name in ["x", "y"] {
        let unchanged = ok(run(KubeRequest::Get {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(ns.into()),
            name: name.into(),
            cached: false,
        })
        .await);
        assert_eq!(unchanged["data"]["k"], "1", "{name} is unchanged");
    }

    // Without a namespace in the body, the request's namespace is used.
    let no_namespace = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "3"}});
    let updated = ok(run(update(no_namespace)).await);
    assert_eq!(updated["data"]["k"], "3");
    assert_eq!(updated["metadata"]["namespace"], ns);
}

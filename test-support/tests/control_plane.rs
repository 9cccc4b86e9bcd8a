//! The control plane is real: namespaces, CRDs, watches, every write verb, RBAC through
//! impersonation and the TokenRequest API, against the kube-apiserver the harness starts.
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::Api;
use serde_json::json;
use wasm_operator_test_support::{apply_crd, control_plane, test_namespace};

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.wasm-operator.dev
spec:
  group: test.wasm-operator.dev
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
          status:
            type: object
            properties:
              seen: {type: integer}
"#;

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "test.wasm-operator.dev",
        "v1",
        "Widget",
    ))
}

#[tokio::test]
async fn namespaces_are_created_and_fresh() {
    let client = control_plane().client().await;
    let a = test_namespace(&client, "cp-ns").await;
    let b = test_namespace(&client, "cp-ns").await;
    assert_ne!(a.name, b.name);
    let namespaces: Api<Namespace> = Api::all(client);
    let fetched = namespaces.get(&a.name).await.expect("the namespace exists");
    assert_eq!(
        fetched.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
}

#[tokio::test]
async fn custom_objects_are_created_watched_updated_patched_and_deleted() {
    let client = control_plane().client().await;
    apply_crd(&client, WIDGET_CRD)
        .await
        .expect("CRD applies and becomes Established");
    let ns = test_namespace(&client, "cp-crd").await;
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &widget_resource());

    let mut events = widgets
        .watch(&WatchParams::default().timeout(60), "0")
        .await
        .expect("watch starts")
        .boxed();

    let mut widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.wasm-operator.dev/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 1}
    }))
    .unwrap();
    let created = widgets
        .create(&PostParams::default(), &widget)
        .await
        .expect("create");
    assert_eq!(created.data["spec"]["size"], 1);

    widget.metadata.resource_version = created.metadata.resource_version.clone();
    widget.data["spec"]["size"] = json!(2);
    let updated = widgets
        .replace("w1", &PostParams::default(), &widget)
        .await
        .expect("update");
    assert_eq!(updated.data["spec"]["size"], 2);

    let patched = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.data["spec"]["size"], 3);

    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"seen": 3}})),
        )
        .await
        .expect("status patch");
    assert_eq!(status.data["status"]["seen"], 3);
    assert_eq!(
        status.metadata.generation, patched.metadata.generation,
        "a status write keeps the generation"
    );

    widgets
        .delete("w1", &DeleteParams::default())
        .await
        .expect("delete");

    // The watch must report every step, ending with the delete, within the deadline.
    let collect = async {
        let mut seen = Vec::new();
        while let Some(event) = events.try_next().await.expect("watch stream") {
            seen.push(match event {
                WatchEvent::Added(_) => "added",
                WatchEvent::Modified(_) => "modified",
                WatchEvent::Deleted(_) => "deleted",
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("watch error: {e:?}"),
            });
            if seen.last() == Some(&"deleted") {
                break;
            }
        }
        seen
    };
    let seen = tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .expect("the watch reported the delete within 30s");
    assert_eq!(
        seen,
        ["added", "modified", "modified", "modified", "deleted"]
    );
}

#[tokio::test]
async fn configmaps_support_every_write_verb() {
    let client = control_plane().client().await;
    let ns = test_namespace(&client, "cp-cm").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);

    let mut cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c1"}, "data": {"a": "1"}})).unwrap();
    let created = configmaps
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    cm.metadata.resource_version = created.metadata.resource_version;
    cm.data.as_mut().unwrap().insert("b".into(), "2".into());
    configmaps
        .replace("c1", &PostParams::default(), &cm)
        .await
        .expect("update");

    configmaps
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"c": "3"}})),
        )
        .await
        .expect("strategic merge patch");
    configmaps
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([{"op": "remove", "path": "/data/a"}])).unwrap(),
            ),
        )
        .await
        .expect("JSON patch");
    let applied = configmaps
        .patch(
            "c1",
            &PatchParams::apply("cp-test").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"d": "4"}})),
        )
        .await
        .expect("server-side apply");
    let data = applied.data.unwrap();
    assert_eq!(data.get("a"), None);
    assert_eq!(data.get("b").map(String::as_str), Some("2"));
    assert_eq!(data.get("c").map(String::as_str), Some("3"));
    assert_eq!(data.get("d").map(String::as_str), Some("4"));

    configmaps
        .delete("c1", &DeleteParams::default())
        .await
        .expect("delete");
    let err = configmaps.get("c1").await.expect_err("deleted");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "expected 404, got {err}"
    );
}

#[tokio::test]
async fn impersonated_service_account_without_permission_is_forbidden() {
    let cp = control_plane();
    let admin = cp.client().await;
    let ns = test_namespace(&admin, "cp-rbac").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns.name);
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "nobody"}})).unwrap(),
        )
        .await
        .expect("create ServiceAccount");

    let as_nobody = cp.client_as_service_account(&ns.name, "nobody").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(as_nobody, &ns.name);
    let err = configmaps
        .list(&Default::default())
        .await
        .expect_err("nobody may not list ConfigMaps");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(
                status
                    .message
                    .contains(&format!("system:serviceaccount:{}:nobody", ns.name)),
                "{}",
                status.message
            );
        }
        other => panic!("expected 403 from the API server, got {other}"),
    }
}

#[tokio::test]
async fn token_request_issues_a_service_account_token() {
    let admin = control_plane().client().await;
    let ns = test_namespace(&admin, "cp-token").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns.name);
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap(),
        )
        .await
        .expect("create ServiceAccount");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let issued = accounts
        .create_token_request("robot", &PostParams::default(), &request)
        .await
        .expect("TokenRequest");
    let token = issued
        .status
        .expect("a token in status")
        .token
        .expect("a token");
    assert_eq!(token.split('.').count(), 3, "a JWT has three parts");

    // The token authenticates as the ServiceAccount: a SelfSubjectReview names it.
    let mut config = control_plane().config().await;
    config.auth_info = Default::default();
    config.auth_info.token = Some(token.into());
    let as_robot = kube::Client::try_from(config).unwrap();
    let review = as_robot
        .request::<serde_json::Value>(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})).unwrap())
                .unwrap(),
        )
        .await
        .expect("SelfSubjectReview with the issued token");
    assert_eq!(
        review["status"]["userInfo"]["username"],
        format!("system:serviceaccount:{}:robot", ns.name)
    );
}

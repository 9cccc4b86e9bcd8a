//! The test's own side of the cluster: objects of any kind by `apiVersion` + `kind` (resolved
//! through discovery), the run's namespaces, its final state, and clean-up.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, Scope};
use kube::Client;
use serde_json::{json, Value};

/// The field manager of the test's own server-side applies.
pub const FIELD_MANAGER: &str = "conformance";

/// An API for `kind` of `api_version`; namespaced kinds in `namespace`.
pub async fn api_for(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> anyhow::Result<(Api<DynamicObject>, bool)> {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = pinned_kind(client, &gvk).await.map_err(|e| {
        anyhow::anyhow!("the API server does not serve {kind} in {api_version}: {e}")
    })?;
    Ok(match capabilities.scope {
        Scope::Namespaced => (
            Api::namespaced_with(client.clone(), namespace, &resource),
            true,
        ),
        Scope::Cluster => (Api::all_with(client.clone(), &resource), false),
    })
}

/// Server-side applies `object` as the test; `namespace` unless the object names one.
pub async fn apply(client: &Client, object: &Value, namespace: &str) -> anyhow::Result<()> {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("the object to apply has no {pointer}"))
    };
    let (api_version, kind, name) = (
        text("/apiVersion")?,
        text("/kind")?,
        text("/metadata/name")?,
    );
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(namespace);
    let (api, namespaced) = api_for(client, api_version, kind, namespace).await?;
    let mut object = object.clone();
    if namespaced {
        object["metadata"]["namespace"] = json!(namespace);
    }
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await?;
    Ok(())
}

/// Creates namespace `name`.
pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                [(
                    "wasm-operator.dev/conformance".to_owned(),
                    "true".to_owned(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|e| anyhow::anyhow!("creating namespace {name}: {e}"))?;
    Ok(())
}

/// The objects of `(api_version, kind)` in `namespaces`, reduced to what operators decide
/// (metadata the user or operator set, spec, data, status), in namespace order then by name.
pub async fn final_state(
    client: &Client,
    (api_version, kind): (&str, &str),
    namespaces: &[String],
) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    for namespace in namespaces {
        let (api, _) = api_for(client, api_version, kind, namespace).await?;
        let Ok(list) = api.list(&ListParams::default()).await else {
            continue; // a namespace a step never created
        };
        for object in list.items {
            let mut object = serde_json::to_value(&object)?;
            // Items of a list do not name their kind.
            object["apiVersion"] = json!(api_version);
            object["kind"] = json!(kind);
            objects.push(reduce(&object));
        }
    }
    Ok(objects)
}

fn reduce(object: &Value) -> Value {
    let metadata = &object["metadata"];
    let mut reduced_metadata = json!({});
    for field in [
        "name",
        "namespace",
        "labels",
        "annotations",
        "finalizers",
        "generation",
        "ownerReferences",
    ] {
        if let Some(value) = metadata.get(field) {
            reduced_metadata[field] = value.clone();
        }
    }
    let mut reduced = json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": reduced_metadata,
    });
    for field in ["spec", "data", "status"] {
        if let Some(value) = object.get(field) {
            reduced[field] = value.clone();
        }
    }
    reduced
}

/// Deletes every object of `(api_version, kind)` in `namespaces` and waits until they are gone
/// (the operator, still running, removes its finalizers). What is left after `patience` loses
/// its finalizers, so nothing outlives the run.
pub async fn remove_all(
    client: &Client,
    (api_version, kind): (&str, &str),
    namespaces: &[String],
    patience: Duration,
) -> anyhow::Result<()> {
    let mut apis = Vec::new();
    for namespace in namespaces {
        let (api, _) = api_for(client, api_version, kind, namespace).await?;
        if let Ok(list) = api.list(&ListParams::default()).await {
            for object in &list.items {
                if let Some(name) = &object.metadata.name {
                    let _ = api.delete(name, &DeleteParams::default()).await;
                }
            }
        }
        apis.push(api);
    }
    let deadline = Instant::now() + patience;
    loop {
        let mut left = Vec::new();
        for api in &apis {
            if let Ok(list) = api.list(&ListParams::default()).await {
                left.extend(list.items.into_iter().map(|object| (api.clone(), object)));
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            for (api, object) in left {
                if let Some(name) = &object.metadata.name {
                    let patch = json!({"metadata": {"finalizers": null}});
                    let _ = api
                        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes the run's namespaces (in the background: the namespace controller empties them).
pub async fn delete_namespaces(client: &Client, namespaces: &[String]) {
    let api: Api<Namespace> = Api::all(client.clone());
    for namespace in namespaces {
        let _ = api.delete(namespace, &DeleteParams::background()).await;
    }
}

//! The examples' custom kinds as dynamic APIs (tests read them as JSON, like a user with
//! kubectl), creating them, and waiting until an object looks the way an operator should make it.

use std::fmt::Debug;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::Client;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use wasm_operator_test_support::wait_for;

use crate::harness::PROMPTLY;

/// The custom kinds of crds/.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    WebApp,
    MetricScaler,
    TestResource,
    Counter,
}

impl Kind {
    fn name_and_plural(self) -> (&'static str, &'static str) {
        match self {
            Kind::WebApp => ("WebApp", "webapps"),
            Kind::MetricScaler => ("MetricScaler", "metricscalers"),
            Kind::TestResource => ("TestResource", "testresources"),
            Kind::Counter => ("Counter", "counters"),
        }
    }

    pub fn resource(self) -> ApiResource {
        let (kind, plural) = self.name_and_plural();
        ApiResource {
            group: "demo.wasm-operator.dev".into(),
            version: "v1alpha1".into(),
            api_version: "demo.wasm-operator.dev/v1alpha1".into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }
}

/// The objects of `kind` in `namespace`.
pub fn api(client: &Client, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.resource())
}

/// Creates `namespace/name` of `kind` with `spec`.
pub async fn create(
    client: &Client,
    namespace: &str,
    kind: Kind,
    name: &str,
    spec: Value,
) -> DynamicObject {
    let resource = kind.resource();
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": resource.api_version, "kind": resource.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .expect("a well-formed object");
    api(client, namespace, kind)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("creating {} {namespace}/{name}: {e}", resource.kind))
}

/// The value at JSON `pointer` (`/status/readyReplicas`) of a dynamic object.
pub fn field<'a>(object: &'a DynamicObject, pointer: &str) -> Option<&'a Value> {
    object.data.pointer(pointer)
}

/// Waits until `name` exists and `check` accepts it; returns it.
pub async fn wait_for_object<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    check: impl Fn(&K) -> bool,
) -> K
where
    K: Clone + DeserializeOwned + Debug,
{
    wait_for(what, PROMPTLY, || async {
        let object = api.get_opt(name).await.ok()??;
        check(&object).then_some(object)
    })
    .await
}

/// Waits until `name` no longer exists.
pub async fn wait_for_absence<K>(api: &Api<K>, name: &str, what: &str)
where
    K: Clone + DeserializeOwned + Debug,
{
    wait_for(what, PROMPTLY, || async {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await
}

/// The events.k8s.io/v1 Events in `namespace` about object `name`, reported by `operator` (the
/// example's name).
pub async fn events_about(
    client: &Client,
    namespace: &str,
    name: &str,
    operator: &str,
) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let reporter = format!("demo.wasm-operator.dev/{operator}");
    let listed = events
        .list(&ListParams::default())
        .await
        .map(|list| list.items)
        .unwrap_or_default();
    listed
        .into_iter()
        .filter(|event| event.reporting_controller.as_deref() == Some(reporter.as_str()))
        .filter(|event| {
            event
                .regarding
                .as_ref()
                .and_then(|regarding| regarding.name.as_deref())
                == Some(name)
        })
        .collect()
}

/// Waits until an Event with `reason` about `name` was reported by `operator`.
pub async fn wait_for_event(
    client: &Client,
    namespace: &str,
    name: &str,
    operator: &str,
    reason: &str,
) -> Event {
    wait_for(
        &format!("a {reason} Event about {name}"),
        PROMPTLY,
        || async {
            events_about(client, namespace, name, operator)
                .await
                .into_iter()
                .find(|event| event.reason.as_deref() == Some(reason))
        },
    )
    .await
}

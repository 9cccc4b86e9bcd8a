//! The webapp example in the host against the real control plane: a WebApp becomes a Deployment,
//! a Service and a registry entry with a Ready condition and Events; drift in what it owns is
//! repaired; the finalizer removes the registry entry on delete.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use operators_tests::kinds::{
    self, field, wait_for_absence, wait_for_event, wait_for_object, Kind,
};
use operators_tests::{Harness, Lang};
use serde_json::json;
use wasm_operator_test_support::{test_namespace, TestNamespace};

const FINALIZER: &str = "demo.wasm-operator.dev/registry";

/// A host running webapp in `lang` with its registry in a namespace of its own.
async fn start(lang: Lang, prefix: &str) -> (Harness, TestNamespace, TestNamespace) {
    let harness = Harness::start().await;
    let namespace = test_namespace(&harness.client, &format!("{prefix}-{lang}")).await;
    let registry = test_namespace(&harness.client, &format!("registry-{lang}")).await;
    let name = format!("webapp-{lang}");
    harness
        .load(
            &name,
            lang,
            "webapp",
            json!({"registryNamespace": registry.name}),
        )
        .await;
    (harness, namespace, registry)
}

/// Deletes a WebApp and waits until its finalizer let it go, so no WebApp holding the finalizer
/// outlives the operator that would remove it (its namespace could not be deleted).
async fn delete_and_wait(harness: &Harness, namespace: &str, name: &str) {
    let webapps = kinds::api(&harness.client, namespace, Kind::WebApp);
    webapps
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for_absence(&webapps, name, "the WebApp to be deleted").await;
}

fn ready_condition(webapp: &kube::api::DynamicObject) -> Option<(String, String, String)> {
    let condition = field(webapp, "/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    let text = |key: &str| condition[key].as_str().unwrap_or_default().to_owned();
    Some((text("status"), text("reason"), text("message")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webapp_creates_deployment_service_registry_entry_status_and_events() {
    for lang in Lang::available("webapp") {
        let (harness, namespace, registry) = start(lang, "webapp").await;
        let (client, ns) = (&harness.client, namespace.name.as_str());
        kinds::create(
            client,
            ns,
            Kind::WebApp,
            "shop",
            json!({"image": "nginx:1.27", "replicas": 0}),
        )
        .await;

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let deployment =
            wait_for_object(&deployments, "shop", "the WebApp's Deployment", |_| true).await;
        let owner = &deployment.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("WebApp", "shop", Some(true))
        );
        assert_eq!(deployment.labels()["app.kubernetes.io/instance"], "shop");
        let container = &deployment.spec.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(container.image.as_deref(), Some("nginx:1.27"));
        assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 8080);

        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        let service = wait_for_object(&services, "shop", "the WebApp's Service", |_| true).await;
        assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 8080);

        let entries: Api<ConfigMap> = Api::namespaced(client.clone(), &registry.name);
        let entry = wait_for_object(
            &entries,
            &format!("webapp-{ns}-shop"),
            "the registry entry",
            |_| true,
        )
        .await;
        let data = entry.data.unwrap();
        assert_eq!(
            (data["namespace"].as_str(), data["name"].as_str()),
            (ns, "shop")
        );
        assert_eq!(data["url"], format!("http://shop.{ns}.svc:8080"));

        let webapps = kinds::api(client, ns, Kind::WebApp);
        let webapp = wait_for_object(
            &webapps,
            "shop",
            "status and Ready=True for 0/0 replicas",
            |webapp| ready_condition(webapp).is_some_and(|(status, _, _)| status == "True"),
        )
        .await;
        assert!(webapp.finalizers().iter().any(|f| f == FINALIZER));
        assert_eq!(field(&webapp, "/status/readyReplicas"), Some(&json!(0)));
        assert_eq!(
            field(&webapp, "/status/observedGeneration"),
            Some(&json!(1))
        );
        assert_eq!(ready_condition(&webapp).unwrap().1, "DeploymentReady");
        wait_for_event(client, ns, "shop", "webapp", "DeploymentReady").await;

        // No kubelet runs, so replicas never become ready: scaling up turns Ready False.
        let scale = json!({"spec": {"replicas": 2}});
        webapps
            .patch("shop", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .unwrap();
        let webapp = wait_for_object(
            &webapps,
            "shop",
            "Ready=False after scaling to 2",
            |webapp| ready_condition(webapp).is_some_and(|(status, _, _)| status == "False"),
        )
        .await;
        assert_eq!(
            ready_condition(&webapp).unwrap(),
            (
                "False".into(),
                "DeploymentNotReady".into(),
                "0/2 replicas ready".into()
            )
        );
        assert_eq!(
            field(&webapp, "/status/observedGeneration"),
            Some(&json!(2))
        );
        let event = wait_for_event(client, ns, "shop", "webapp", "DeploymentNotReady").await;
        assert_eq!(event.note.as_deref(), Some("0/2 replicas ready"));
        assert_eq!(event.action.as_deref(), Some("Reconcile"));
        wait_for_object(&deployments, "shop", "the Deployment scaled to 2", |d| {
            d.spec.replicas == Some(2)
        })
        .await;
        delete_and_wait(&harness, ns, "shop").await;
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webapp_repairs_a_deleted_or_edited_deployment_and_service() {
    for lang in Lang::available("webapp") {
        let (harness, namespace, _registry) = start(lang, "webapp-drift").await;
        let (client, ns) = (&harness.client, namespace.name.as_str());
        kinds::create(
            client,
            ns,
            Kind::WebApp,
            "drift",
            json!({"image": "nginx:1.27", "replicas": 1, "port": 9000}),
        )
        .await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let original = wait_for_object(&deployments, "drift", "the Deployment", |_| true).await;

        deployments
            .delete("drift", &DeleteParams::default())
            .await
            .unwrap();
        wait_for_object(
            &deployments,
            "drift",
            "the deleted Deployment to come back",
            |d| d.uid() != original.uid(),
        )
        .await;

        // Another field manager changes what the operator owns.
        let tamper = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "app", "image": "evil:1"}]}}}});
        deployments
            .patch("drift", &PatchParams::default(), &Patch::Strategic(&tamper))
            .await
            .unwrap();
        wait_for_object(
            &deployments,
            "drift",
            "the edited Deployment to be put back",
            |d| {
                let spec = &d.spec;
                let image = spec.template.spec.as_ref().unwrap().containers[0]
                    .image
                    .as_deref();
                spec.replicas == Some(1) && image == Some("nginx:1.27")
            },
        )
        .await;

        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        let service = wait_for_object(&services, "drift", "the Service", |_| true).await;
        services
            .delete("drift", &DeleteParams::default())
            .await
            .unwrap();
        let service = wait_for_object(
            &services,
            "drift",
            "the deleted Service to come back",
            |s| s.uid() != service.uid(),
        )
        .await;
        assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 9000);
        delete_and_wait(&harness, ns, "drift").await;
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webapp_finalizer_removes_the_registry_entry_on_delete() {
    for lang in Lang::available("webapp") {
        let (harness, namespace, registry) = start(lang, "webapp-delete").await;
        let (client, ns) = (&harness.client, namespace.name.as_str());
        kinds::create(
            client,
            ns,
            Kind::WebApp,
            "gone",
            json!({"image": "nginx:1.27"}),
        )
        .await;
        let entries: Api<ConfigMap> = Api::namespaced(client.clone(), &registry.name);
        let entry_name = format!("webapp-{ns}-gone");
        wait_for_object(&entries, &entry_name, "the registry entry", |_| true).await;

        let webapps = kinds::api(client, ns, Kind::WebApp);
        webapps
            .delete("gone", &DeleteParams::default())
            .await
            .unwrap();
        wait_for_absence(
            &entries,
            &entry_name,
            "the finalizer to delete the registry entry",
        )
        .await;
        wait_for_absence(
            &webapps,
            "gone",
            "the WebApp to go once its finalizer is removed",
        )
        .await;
        harness.stop().await;
    }
}

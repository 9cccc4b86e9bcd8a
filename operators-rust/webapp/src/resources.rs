//! The objects a WebApp stands for, as server-side apply bodies: exactly the fields the operator
//! owns, nothing else (a field in an apply body is a field the operator claims).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServicePort,
    ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wasm_operator_sdk::{owner, Error, Result};

use crate::types::WebApp;

const NAME_LABEL: &str = "app.kubernetes.io/name";
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Where a WebApp's registry entry lives: one ConfigMap per WebApp in the registry namespace.
pub fn registry_entry_name(namespace: &str, name: &str) -> String {
    format!("webapp-{namespace}-{name}")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// Name, namespace, both labels and the controller reference to `app`.
fn owned_metadata(app: &WebApp, namespace: &str, name: &str) -> Result<ObjectMeta> {
    let controller = owner::controller_reference(app)
        .ok_or_else(|| Error::msg("the WebApp has no uid: it was not read from the API server"))?;
    Ok(ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels(&[(NAME_LABEL, "webapp"), (INSTANCE_LABEL, name)])),
        owner_references: Some(vec![controller]),
        ..ObjectMeta::default()
    })
}

pub fn deployment(app: &WebApp, namespace: &str, name: &str) -> Result<Deployment> {
    Ok(Deployment {
        metadata: owned_metadata(app, namespace, name)?,
        spec: DeploymentSpec {
            replicas: Some(app.spec.replicas()),
            selector: LabelSelector {
                match_labels: Some(labels(&[(INSTANCE_LABEL, name)])),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[(NAME_LABEL, "webapp"), (INSTANCE_LABEL, name)])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".to_owned(),
                        image: Some(app.spec.image.clone()),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".to_owned()),
                            container_port: app.spec.port(),
                            ..ContainerPort::default()
                        }]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    })
}

pub fn service(app: &WebApp, namespace: &str, name: &str) -> Result<Service> {
    let port = app.spec.port();
    Ok(Service {
        metadata: owned_metadata(app, namespace, name)?,
        spec: Some(ServiceSpec {
            selector: Some(labels(&[(INSTANCE_LABEL, name)])),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port,
                target_port: Some(IntOrString::Int(port)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// The registry entry: in another namespace, so no owner reference can collect it; the
/// operator's finalizer deletes it instead.
pub fn registry_entry(
    app: &WebApp,
    registry_namespace: &str,
    namespace: &str,
    name: &str,
) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(registry_entry_name(namespace, name)),
            namespace: Some(registry_namespace.to_owned()),
            labels: Some(labels(&[(NAME_LABEL, "webapp")])),
            ..ObjectMeta::default()
        },
        data: Some(labels(&[
            ("namespace", namespace),
            ("name", name),
            (
                "url",
                &format!("http://{name}.{namespace}.svc:{}", app.spec.port()),
            ),
        ])),
        ..ConfigMap::default()
    }
}

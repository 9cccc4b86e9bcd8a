//! The webapp example operator (docs/examples.md, "webapp"): each WebApp gets a Deployment and a
//! Service it owns, plus an entry in a registry namespace that a finalizer cleans up, and a
//! `Ready` condition that follows the Deployment's ready replicas.

mod resources;
#[cfg(test)]
mod tests;
pub mod types;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use wasm_operator_sdk::conditions::{self, new_condition, Condition};
use wasm_operator_sdk::prelude::*;
use wasm_operator_sdk::{finalizer, status};

use crate::types::{WebApp, WebAppStatus};

/// The field manager and event reporter: the example's name, whatever the host calls the instance.
const OPERATOR: &str = "webapp";
const FINALIZER: &str = "demo.wasm-operator.dev/registry";

/// What the operator reads of the Deployment the API server returns from an apply.
#[derive(Deserialize)]
struct AppliedDeployment {
    status: Option<AppliedDeploymentStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppliedDeploymentStatus {
    ready_replicas: Option<i32>,
}

/// What init reads from the operator's configuration.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    #[serde(default = "default_registry_namespace")]
    registry_namespace: String,
}

fn default_registry_namespace() -> String {
    "default".to_owned()
}

fn init(init: &InitContext) -> Result<(Controller, Settings)> {
    let settings: Settings = init.config()?;
    let controller = Controller::new(
        Api::<WebApp>::all(),
        WatchConfig::default().predicates([Predicate::GenerationChanged]),
    )
    .owns(Api::<Deployment>::all(), WatchConfig::default())
    .owns(Api::<Service>::all(), WatchConfig::default());
    Ok((controller, settings))
}

fn reconcile(request: Request<WebApp>, settings: &mut Settings) -> Result<Action> {
    let Some(mut app) = request.object else {
        return Ok(Action::await_change());
    };
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let name = request.name.as_str();
    let webapps = Api::<WebApp>::namespaced(namespace);
    let registry = Api::<ConfigMap>::namespaced(&settings.registry_namespace);
    let registry_entry = resources::registry_entry_name(namespace, name);

    if finalizer::is_being_deleted(&app) {
        if finalizer::has(&app, FINALIZER) {
            match registry.delete(&registry_entry, &DeleteParams::default()) {
                Err(error) if !error.is_not_found() => {
                    return Err(error.context("deleting the registry entry"))
                }
                _ => {}
            }
            finalizer::remove(&mut app, FINALIZER);
            webapps
                .replace(name, &app)
                .context("removing the finalizer")?;
        }
        return Ok(Action::await_change());
    }
    if finalizer::add(&mut app, FINALIZER) {
        app = webapps
            .replace(name, &app)
            .context("adding the finalizer")?;
    }

    // The answers are decoded only as far as they are read: decoding a whole Deployment or
    // Service would put their (large) decoders into the module for nothing.
    let apply = PatchParams::apply(OPERATOR).force();
    let deployment: AppliedDeployment = Api::<Deployment>::namespaced(namespace)
        .as_type()
        .patch(
            name,
            &apply,
            &Patch::Apply(resources::deployment(&app, namespace, name)?),
        )
        .context("applying the Deployment")?;
    Api::<Service>::namespaced(namespace)
        .as_type::<IgnoredAny>()
        .patch(
            name,
            &apply,
            &Patch::Apply(resources::service(&app, namespace, name)?),
        )
        .context("applying the Service")?;
    let entry = resources::registry_entry(&app, &settings.registry_namespace, namespace, name);
    registry
        .as_type::<IgnoredAny>()
        .patch(&registry_entry, &apply, &Patch::Apply(&entry))
        .context("applying the registry entry")?;

    let ready_replicas = deployment
        .status
        .and_then(|status| status.ready_replicas)
        .unwrap_or(0);
    update_status(&webapps, &app, ready_replicas)?;
    Ok(Action::await_change())
}

/// Writes `readyReplicas` and the `Ready` condition when they changed, and records an Event when
/// the condition's status flips.
fn update_status(webapps: &Api<WebApp>, app: &WebApp, ready_replicas: i32) -> Result<()> {
    let replicas = app.spec.replicas();
    let message = format!("{ready_replicas}/{replicas} replicas ready");
    let ready = ready_replicas >= replicas;
    let reason = if ready {
        "DeploymentReady"
    } else {
        "DeploymentNotReady"
    };
    let current = app.status.as_ref();
    let mut known_conditions = current
        .and_then(|status| status.conditions.clone())
        .unwrap_or_default();
    let condition = Condition {
        observed_generation: app.metadata.generation,
        ..new_condition("Ready", ready, reason, message.clone())
    };
    let flipped = conditions::set(&mut known_conditions, condition);
    let condition = conditions::find(&known_conditions, "Ready").cloned();
    let desired = WebAppStatus {
        observed_generation: app.metadata.generation,
        ready_replicas: Some(ready_replicas),
        conditions: Some(condition.into_iter().collect()),
    };
    if status::differs(current, &desired) {
        webapps
            .as_type::<IgnoredAny>()
            .patch_status(
                &app.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": desired })),
            )
            .context("writing the status")?;
    }
    if flipped {
        let event = Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            note: Some(message),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        recorder().publish_or_log(&event, &app.object_ref(&()));
    }
    Ok(())
}

fn recorder() -> Recorder {
    Recorder::new(Reporter {
        controller: format!("demo.wasm-operator.dev/{OPERATOR}"),
        instance: Some(OPERATOR.to_owned()),
    })
}

wasm_operator_sdk::operator!(init, reconcile);

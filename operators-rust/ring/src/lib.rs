//! The ring example operator (docs/examples.md, "ring"), the density benchmark: N instances of
//! this module, instance i watching namespace i and writing namespace i+1, pass each
//! TestResource's nonce around the ring until every namespace holds the highest one.

#[cfg(test)]
mod tests;
pub mod types;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::IgnoredAny;
use serde_json::{json, Value};
use wasm_operator_sdk::prelude::*;

use crate::types::{TestResource, TestResourceSpec};

/// This instance's place in the ring.
struct Ring {
    out_namespace: String,
}

/// The namespace named by config key `key`; absent, empty or not a string count as missing.
fn namespace_setting(config: &Value, key: &str) -> Option<String> {
    let namespace = config.get(key)?.as_str()?;
    (!namespace.is_empty()).then(|| namespace.to_owned())
}

fn init(init: &InitContext) -> Result<(Controller, Ring)> {
    let in_namespace = namespace_setting(&init.config, "inNamespace");
    let out_namespace = namespace_setting(&init.config, "outNamespace");
    let (Some(in_namespace), Some(out_namespace)) = (&in_namespace, out_namespace.clone()) else {
        // Every missing key at once, so one failed init says all that is wrong.
        let missing: Vec<&str> = [
            ("\"inNamespace\"", &in_namespace),
            ("\"outNamespace\"", &out_namespace),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| key)
        .collect();
        return Err(Error::msg(match missing.as_slice() {
            [one] => format!("config key {one} is required"),
            several => format!("config keys {} are required", several.join(" and ")),
        }));
    };
    let controller = Controller::new(
        Api::<TestResource>::namespaced(in_namespace),
        WatchConfig::default(),
    );
    Ok((controller, Ring { out_namespace }))
}

fn reconcile(request: Request<TestResource>, ring: &mut Ring) -> Result<Action> {
    let Some(resource) = request.object else {
        return Ok(Action::await_change());
    };
    let nonce = resource.spec.nonce;
    let next = Api::<TestResource>::namespaced(&ring.out_namespace);
    match next
        .get_opt(&request.name)
        .context("reading the next namespace's copy")?
    {
        None => {
            let copy = TestResource {
                metadata: ObjectMeta {
                    name: Some(request.name.clone()),
                    namespace: Some(ring.out_namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: TestResourceSpec { nonce },
            };
            next.create(&copy)
                .context("creating the next namespace's copy")?;
        }
        Some(existing) if existing.spec.nonce < nonce => {
            next.as_type::<IgnoredAny>()
                .patch(
                    &request.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"nonce": nonce}})),
                )
                .context("passing the nonce on")?;
        }
        Some(_) => {}
    }
    Ok(Action::await_change())
}

wasm_operator_sdk::operator!(init, reconcile);

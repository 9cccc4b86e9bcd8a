//! The counter example operator (docs/examples.md, "counter"): deliberately stateful. It keeps
//! in memory every generation it saw of every Counter and writes the list, a running count and
//! a checksum to the Counter's status, so an instance that lost its memory (a failed swap) is
//! visible at once.

mod memory;
#[cfg(test)]
mod tests;
pub mod types;

use serde::de::IgnoredAny;
use serde_json::json;
use wasm_operator_sdk::prelude::*;
use wasm_operator_sdk::status;

use crate::memory::Memory;
use crate::types::{Counter, CounterStatus};

fn init(_: &InitContext) -> Result<(Controller, Memory)> {
    let controller = Controller::new(
        Api::<Counter>::all(),
        WatchConfig::default().predicates([Predicate::GenerationChanged]),
    );
    Ok((controller, Memory::default()))
}

fn reconcile(request: Request<Counter>, memory: &mut Memory) -> Result<Action> {
    let key = format!("{}/{}", request.namespace_or_empty(), request.name);
    let Some(counter) = &request.object else {
        memory.forget(&key);
        return Ok(Action::await_change());
    };
    let generation = counter.metadata.generation.unwrap_or_default();
    let Some(sighting) = memory.sight(&key, generation) else {
        return Ok(Action::await_change());
    };
    let desired = CounterStatus {
        observed_generations: Some(sighting.generations.clone()),
        total_seen: Some(sighting.total_seen),
        checksum: Some(sighting.checksum_hex()),
    };
    if status::differs(counter.status.as_ref(), &desired) {
        Api::<Counter>::namespaced(request.namespace_or_empty())
            .as_type::<IgnoredAny>()
            .patch_status(
                &request.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": desired })),
            )
            .context("writing the status")?;
    }
    // Remembered only once written: a failed write is retried rather than skipped as "seen".
    memory.commit(sighting);
    Ok(Action::await_change())
}

wasm_operator_sdk::operator!(init, reconcile);

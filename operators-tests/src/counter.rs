//! The counter example's tests' shared parts: what it writes into a Counter's status, computed
//! independently of both implementations (docs/examples.md, "counter"), and [`CounterRun`], one
//! counter operator with its own namespace.
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use wasm_operator_test_support::{test_namespace, TestNamespace};

use crate::kinds::{self, field, wait_for_absence, wait_for_object, Kind};
use crate::{Harness, Lang};

/// The offset basis the checksum starts from.
pub const CHECKSUM_START: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a, continued over `bytes`.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The checksum continued over `ns/name@generation;` for each generation, in order.
pub fn checksum_over(
    start: u64,
    namespace: &str,
    name: &str,
    generations: impl IntoIterator<Item = i64>,
) -> u64 {
    generations.into_iter().fold(start, |hash, generation| {
        fnv1a(hash, format!("{namespace}/{name}@{generation};").as_bytes())
    })
}

/// `status.checksum` as the operator writes it.
pub fn checksum_text(checksum: u64) -> String {
    format!("{checksum:016x}")
}

/// `status.observedGenerations`, empty if absent.
pub fn observed(counter: &DynamicObject) -> Vec<i64> {
    field(counter, "/status/observedGenerations")
        .and_then(|list| list.as_array())
        .map(|list| list.iter().filter_map(|g| g.as_i64()).collect())
        .unwrap_or_default()
}

/// A counter operator for one test, with a namespace of its own for its Counters.
pub struct CounterRun {
    /// The operator's name in the host: `<prefix>-<lang>`.
    pub operator: String,
    pub namespace: TestNamespace,
    pub counters: Api<DynamicObject>,
}

impl CounterRun {
    /// Loads the counter example in `lang` into `harness` as `<prefix>-<lang>`.
    pub async fn start(harness: &Harness, lang: Lang, prefix: &str) -> CounterRun {
        let operator = format!("{prefix}-{lang}");
        let namespace = test_namespace(&harness.client, &operator).await;
        harness.load(&operator, lang, "counter", json!({})).await;
        let counters = kinds::api(&harness.client, &namespace.name, Kind::Counter);
        CounterRun {
            operator,
            namespace,
            counters,
        }
    }

    pub fn ns(&self) -> &str {
        &self.namespace.name
    }

    /// Creates Counter `name` without waiting for the operator.
    pub async fn create(&self, client: &Client, name: &str) {
        kinds::create(client, self.ns(), Kind::Counter, name, json!({"step": 1})).await;
    }

    /// Creates Counter `name` and waits until the operator recorded its generation 1.
    pub async fn create_seen(&self, client: &Client, name: &str) {
        self.create(client, name).await;
        self.wait_for_generations(name, &[1]).await;
    }

    /// Changes the spec of `name`, making a new generation.
    pub async fn set_step(&self, name: &str, step: i64) {
        let update = json!({"spec": {"step": step}});
        self.counters
            .patch(name, &PatchParams::default(), &Patch::Merge(&update))
            .await
            .unwrap_or_else(|e| panic!("updating Counter {name}: {e}"));
    }

    /// Waits until the status of `name` lists exactly `generations`; returns the Counter.
    pub async fn wait_for_generations(&self, name: &str, generations: &[i64]) -> DynamicObject {
        let what = format!("generations {generations:?} in the status of {name}");
        wait_for_object(&self.counters, name, &what, |c| observed(c) == generations).await
    }

    /// Deletes the Counters and waits until they are gone, so that the next language's
    /// operator (which watches every namespace) does not count them.
    pub async fn delete(&self, names: &[&str]) {
        for name in names {
            self.counters
                .delete(name, &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("deleting Counter {name}: {e}"));
        }
        for name in names {
            wait_for_absence(&self.counters, name, "the Counter to be gone").await;
        }
    }
}

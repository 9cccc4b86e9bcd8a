//! Following the shards this replica holds: which WasmOperators are this replica's to run,
//! and what changes when a shard is given up or taken over.
use super::{operator_name, Controller, Key};
use crate::cluster::shards::Held;

impl Controller {
    /// Whether WasmOperator `key` is this replica's to run now.
    pub(super) fn owns(&self, key: &Key) -> bool {
        self.shards
            .as_ref()
            .is_none_or(|(view, _)| view.may_run(&operator_name(&key.0, &key.1)))
    }

    /// Forgets WasmOperator `key`'s operator without touching its status (its shard's new
    /// holder writes that): aborted, as its shard may already run elsewhere.
    pub(super) async fn forget(&mut self, key: &Key) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        self.operators.remove(&entry.operator);
        if self.manager.state(&entry.operator).is_some() {
            self.manager.abort(vec![entry.operator.clone()]).await;
        }
        self.counter.reset(&entry.operator);
        tracing::info!(wasmoperator = %format!("{}/{}", key.0, key.1), operator = %entry.operator, "not this replica's shard any more: operator stopped");
    }

    /// Forgets the operators of every shard given up or taken anew since last time (a shard
    /// lost and retaken has had its operators aborted meanwhile), then syncs the
    /// WasmOperators of the shards held that are not running.
    pub(super) async fn shards_changed(&mut self, held: Held) {
        let Some((view, last)) = &mut self.shards else {
            return;
        };
        let before = std::mem::replace(last, held.clone());
        let view = view.clone();
        let changed = |operator: &str| {
            let shard = view.shard_of(operator);
            before.acquisition(shard) != held.acquisition(shard)
        };
        let stale: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, entry)| changed(&entry.operator))
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            self.forget(&key).await;
        }
        let mut waiting: Vec<Key> = self
            .objects
            .keys()
            .filter(|key| !self.entries.contains_key(*key) && self.owns(key))
            .cloned()
            .collect();
        waiting.sort();
        tracing::info!(shards = ?held.shards().collect::<Vec<_>>(), starting = waiting.len(), "shards held changed");
        for key in waiting {
            self.sync(&key).await;
        }
    }
}

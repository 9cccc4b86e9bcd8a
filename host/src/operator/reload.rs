//! Replacing a running operator's module ([`OperatorManager::reload`]).
//!
//! A reload is an unload followed by a load of the new spec under the same name: the old
//! instance finishes its in-flight reconcile (within the stop deadline), its watch
//! subscriptions are dropped, and the new instance subscribes again. Work queued for the old
//! instance is not carried over; it is not lost either, because a new subscription lists its
//! watch and enqueues every object the operator watches, so each is reconciled by the new
//! module. Watches shared with other operators stay open throughout (their caches are reused).
use super::{OperatorError, OperatorManager, OperatorSpec};

impl OperatorManager {
    /// Replaces operator `spec.name` (loaded, or listed as Failed) by a new instance of
    /// `spec`, or loads it if no operator of that name is listed.
    pub async fn reload(&self, spec: OperatorSpec) -> Result<(), OperatorError> {
        match self.unload(&spec.name).await {
            Ok(()) | Err(OperatorError::NotLoaded(_)) => {}
            Err(error) => return Err(error),
        }
        self.load(spec).await
    }
}

//! Sharding WasmOperators over host replicas, with Kubernetes Leases as the only coordination.
//!
//! WasmOperators are divided into a fixed number of shards by a stable hash of their operator
//! name ([`assignment::shard_of`]). Each shard has a Lease; the replica holding it runs the
//! shard's operators, so each operator runs on exactly one replica at a time. With one shard
//! this is plain active-passive leader election on the group's Lease.
//!
//! With more shards, each replica also renews a member Lease while it is alive; every replica
//! lists the group's Leases, takes the live members, and computes the same owner for each
//! shard by rendezvous hashing with bounded load ([`assignment`]). A replica takes the free or expired shard
//! Leases it should own, renews those it holds, and hands back the ones that now belong to
//! another live replica (a replica joined): it stops their operators first, then releases the
//! Lease so the new owner takes it on its next round. A replica that dies stops renewing; its
//! member and shard Leases expire after the lease duration and the remaining replicas take
//! its shards over.
//!
//! Fencing is the single-leader rule, per shard: a replica counts each renewal from the moment
//! it took the `renewTime` it wrote, and gives a shard up at the renew deadline (half the
//! lease duration after its last renewal) wherever an attempt is. Giving a shard up closes it
//! at once for the operator workers (no reconcile starts in a shard the replica does not hold)
//! and aborts its operators' in-flight reconciles, within the other half of the duration.
//! The [`coordinator`] owns all of this and publishes the shards held ([`Held`]); the
//! controller follows them through a [`ShardView`].
pub mod assignment;
mod coordinator;
mod lease;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

pub use assignment::shard_of;
pub use coordinator::Coordinator;
pub use lease::{LeaseSettings, GROUP_LABEL};

/// The shards a replica holds, each with the number of the acquisition that gave it (a shard
/// lost and taken again gets a new number, so whoever follows can tell the two apart).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held(BTreeMap<u32, u64>);

impl Held {
    pub fn holds(&self, shard: u32) -> bool {
        self.0.contains_key(&shard)
    }

    /// The acquisition `shard` is held by, if it is held.
    pub fn acquisition(&self, shard: u32) -> Option<u64> {
        self.0.get(&shard).copied()
    }

    pub fn shards(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.keys().copied()
    }
}

/// A read-only view of the shards this replica holds.
#[derive(Clone)]
pub struct ShardView {
    shards: u32,
    held: watch::Receiver<Held>,
}

impl ShardView {
    /// A view and the sender the [`Coordinator`] publishes through; nothing is held at first.
    pub fn channel(shards: u32) -> (watch::Sender<Held>, ShardView) {
        let (sender, held) = watch::channel(Held::default());
        (sender, ShardView { shards, held })
    }

    pub fn shard_of(&self, operator: &str) -> u32 {
        shard_of(operator, self.shards)
    }

    /// The shards held now.
    pub fn held(&self) -> Held {
        self.held.borrow().clone()
    }

    /// Whether the operator named `operator` may run here now.
    pub fn may_run(&self, operator: &str) -> bool {
        self.held.borrow().holds(self.shard_of(operator))
    }

    /// Waits until the shards held change, and returns them; never returns if the coordinator
    /// is gone (nothing changes any more).
    pub async fn changed(&mut self) -> Held {
        if self.held.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.held.borrow_and_update().clone()
    }

    /// The check the operator workers make before each reconcile.
    pub fn fence(&self) -> crate::operator::Fence {
        let view = self.clone();
        Arc::new(move |operator: &str| view.may_run(operator))
    }
}

//! The Leases sharding is built on: their names and labels, their timing (how often they are
//! renewed, when a holder that cannot renew must step down), and the compare-and-swap writes
//! that take, renew and release one.
//!
//! Every write is a replace carrying the resourceVersion the Lease was read with, so two
//! replicas can never both believe they took or renewed the same Lease: the second gets a
//! conflict. Expiry is judged from the `renewTime` and `leaseDurationSeconds` the holder wrote,
//! as client-go's leader election does.
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::Api;

/// The label every Lease of a group carries (its value: the group's name), so one list finds
/// them all.
pub const GROUP_LABEL: &str = "wasm-operator.dev/lease-group";

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    /// The group's name: the only Lease when there is one shard, the prefix of every Lease
    /// when there are more.
    pub name: String,
    /// This host's identity in the Leases (unique among replicas: the pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal; whole seconds, at least one.
    pub lease_duration: Duration,
    /// How many shards WasmOperators are divided into; at least one. One shard is
    /// active-passive: the replica holding the Lease runs every operator.
    pub shards: u32,
}

impl LeaseSettings {
    /// How often Leases are renewed, and free ones tried.
    pub fn retry_period(&self) -> Duration {
        self.lease_duration / 5
    }

    /// How long after its last renewal a holder that could not renew gives a shard up.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration - self.stop_margin()
    }

    /// What is left between giving a shard up and its Lease expiring for the others: the time
    /// the holder has to abort the shard's operators (and the allowance for clock skew).
    pub fn stop_margin(&self) -> Duration {
        self.lease_duration / 2
    }

    /// The Lease of `shard`. With a single shard it is the group's name itself, the Lease
    /// active-passive replicas of earlier releases elect their leader on, so a rolling
    /// upgrade between them never runs an operator twice.
    pub fn shard_lease(&self, shard: u32) -> String {
        if self.shards == 1 {
            self.name.clone()
        } else {
            format!("{}-{shard}", self.name)
        }
    }

    /// The Lease replica `identity` renews while it is alive (only with more than one shard).
    pub fn member_lease(&self, identity: &str) -> String {
        format!("{}-member-{identity}", self.name)
    }

    /// The identity of the replica a member Lease belongs to.
    pub fn member_of<'a>(&self, lease_name: &'a str) -> Option<&'a str> {
        lease_name.strip_prefix(&format!("{}-member-", self.name))
    }

    fn duration_seconds(&self) -> i32 {
        self.lease_duration.as_secs().clamp(1, i32::MAX as u64) as i32
    }
}

/// The holder a Lease names, if any.
pub fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|holder| !holder.is_empty())
}

/// Whether the holder's last renewal is older than the lease duration it announced.
pub fn expired(lease: &Lease) -> bool {
    expired_for(lease) > SignedDuration::ZERO
}

/// How long ago the Lease expired (negative: it is still valid).
pub fn expired_for(lease: &Lease) -> SignedDuration {
    let Some(spec) = &lease.spec else {
        return SignedDuration::MAX;
    };
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return SignedDuration::MAX;
    };
    let valid_until = renewed.0 + SignedDuration::from_secs(i64::from(seconds));
    Timestamp::now().duration_since(valid_until)
}

/// What a write found.
#[derive(Debug)]
pub enum Written {
    /// The write went through: this host holds the Lease (or released it).
    Done,
    /// Someone else wrote the Lease since it was read.
    Conflict,
}

/// Writes Leases of one group in one namespace as one identity.
#[derive(Clone)]
pub struct LeaseWriter {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl LeaseWriter {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        LeaseWriter {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    pub fn api(&self) -> &Api<Lease> {
        &self.api
    }

    /// Takes or renews Lease `name` as it was read (`None`: it does not exist yet), stamped
    /// `now`. The caller decides whether it may be taken (free, expired, or already its own).
    pub async fn hold(
        &self,
        name: &str,
        read: Option<&Lease>,
        now: Timestamp,
    ) -> Result<Written, kube::Error> {
        let me = &self.settings.identity;
        let now = MicroTime(now);
        let Some(read) = read else {
            let mut labels = BTreeMap::new();
            labels.insert(GROUP_LABEL.to_string(), self.settings.name.clone());
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(self.settings.namespace.clone()),
                    labels: Some(labels),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(self.settings.duration_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return conflict_is_not_an_error(self.api.create(&PostParams::default(), &lease).await);
        };
        let mut lease = read.clone();
        let spec = lease.spec.get_or_insert_with(Default::default);
        if holder(read) != Some(me.as_str()) {
            spec.holder_identity = Some(me.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(self.settings.duration_seconds());
        lease.metadata.managed_fields = None;
        // The resourceVersion read makes this a compare-and-swap.
        conflict_is_not_an_error(self.api.replace(name, &PostParams::default(), &lease).await)
    }

    /// Gives Lease `name` (as read) up if this host holds it, so another replica may take it
    /// at once instead of after the lease duration.
    pub async fn release(&self, name: &str, read: &Lease) -> Result<Written, kube::Error> {
        if holder(read) != Some(self.settings.identity.as_str()) {
            return Ok(Written::Done);
        }
        let mut lease = read.clone();
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.metadata.managed_fields = None;
        conflict_is_not_an_error(self.api.replace(name, &PostParams::default(), &lease).await)
    }
}

fn conflict_is_not_an_error(result: Result<Lease, kube::Error>) -> Result<Written, kube::Error> {
    match result {
        Ok(_) => Ok(Written::Done),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Written::Conflict),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seconds: u64, shards: u32) -> LeaseSettings {
        LeaseSettings {
            namespace: "ns".into(),
            name: "hosts".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(seconds),
            shards,
        }
    }

    #[test]
    fn a_holder_gives_up_with_time_left_to_stop_before_the_lease_expires() {
        for seconds in [1, 3, 15, 60] {
            let lease = settings(seconds, 4);
            // Several renewal attempts fit before the deadline ...
            assert!(lease.renew_deadline() >= lease.retry_period() * 2);
            // ... and giving up leaves a margin to abort every operator before any other
            // replica may see the Lease expired.
            assert!(lease.renew_deadline() + lease.stop_margin() <= lease.lease_duration);
            assert!(lease.stop_margin() >= lease.lease_duration / 2);
        }
    }

    #[test]
    fn one_shard_uses_the_group_name_and_more_shards_number_their_leases() {
        assert_eq!(settings(3, 1).shard_lease(0), "hosts");
        let sharded = settings(3, 8);
        assert_eq!(sharded.shard_lease(7), "hosts-7");
        let member = sharded.member_lease("pod-a");
        assert_eq!(member, "hosts-member-pod-a");
        assert_eq!(sharded.member_of(&member), Some("pod-a"));
        assert_eq!(sharded.member_of("hosts-3"), None);
    }

    #[test]
    fn a_lease_expires_after_its_duration_without_renewal() {
        let renewed_at = |ago: i64| Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(Timestamp::now() - SignedDuration::from_secs(ago))),
                lease_duration_seconds: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(!expired(&renewed_at(1)));
        assert!(expired(&renewed_at(5)));
        assert!(expired(&Lease::default()));
    }
}

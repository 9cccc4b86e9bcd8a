//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several host replicas only
//! one runs operators at a time.
//!
//! The leader renews the Lease every `lease_duration / 3`; a renewal is a replace with the
//! Lease's resourceVersion, so two hosts can never both think they renewed. Others take the
//! Lease over once it has not been renewed for `lease_duration`. A leader that cannot renew for
//! two thirds of the lease duration steps down (and stops its operators) before anyone else may
//! take over. A leader that shuts down cleanly releases the Lease, so the next one starts at
//! once instead of after the lease duration.
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::Api;

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This host's identity in the Lease (unique among replicas: the pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal; whole seconds, at least one.
    pub lease_duration: Duration,
}

impl LeaseSettings {
    fn retry_period(&self) -> Duration {
        self.lease_duration / 3
    }

    fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }

    fn duration_seconds(&self) -> i32 {
        self.lease_duration.as_secs().max(1) as i32
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

/// What one attempt found.
enum Attempt {
    Leading,
    HeldBy(String),
}

impl LeaderElector {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    /// Returns once this host holds the Lease.
    pub async fn acquire(&self) {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(
                        lease = %self.settings.name,
                        identity = %self.settings.identity,
                        "became the leader"
                    );
                    return;
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(lease = %self.settings.name, %holder, "another host is the leader; standing by");
                        last_holder = Some(holder);
                    }
                }
                Err(error) => {
                    tracing::warn!(lease = %self.settings.name, "cannot acquire the lease: {error}")
                }
            }
            tokio::time::sleep(self.settings.retry_period()).await;
        }
    }

    /// Renews the Lease while this host leads; returns when leadership is lost (not renewed for
    /// the renew deadline, or taken by another host).
    pub async fn keep_leading(&self) {
        let mut renewed_at = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period()).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => renewed_at = Instant::now(),
                Ok(Attempt::HeldBy(holder)) => {
                    tracing::warn!(lease = %self.settings.name, %holder, "lost the lease to another host");
                    return;
                }
                Err(error) => {
                    tracing::warn!(lease = %self.settings.name, "cannot renew the lease: {error}");
                }
            }
            if renewed_at.elapsed() >= self.settings.renew_deadline() {
                tracing::warn!(lease = %self.settings.name, "the lease was not renewed in time; stepping down");
                return;
            }
        }
    }

    /// Gives the Lease up (if held), so another replica takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(&self.settings.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.settings.name, "released the lease"),
            Err(error) => {
                tracing::warn!(lease = %self.settings.name, "cannot release the lease: {error}")
            }
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let me = &self.settings.identity;
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
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
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::HeldBy("(created concurrently)".into()))
                }
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty());
        if holder.as_deref() != Some(me.as_str()) {
            if let Some(holder) = holder {
                if !expired(spec) {
                    return Ok(Attempt::HeldBy(holder));
                }
            }
            spec.holder_identity = Some(me.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(self.settings.duration_seconds());
        // The resourceVersion read above makes this a compare-and-swap.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Leading),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Attempt::HeldBy("(updated concurrently)".into()))
            }
            Err(error) => Err(error),
        }
    }
}

/// Whether the holder's last renewal is older than the lease duration it announced.
fn expired(spec: &LeaseSpec) -> bool {
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    let valid_until = renewed.0 + SignedDuration::from_secs(i64::from(seconds));
    valid_until < Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_after_its_duration_without_renewal() {
        let renewed_at = |ago: i64| LeaseSpec {
            renew_time: Some(MicroTime(Timestamp::now() - SignedDuration::from_secs(ago))),
            lease_duration_seconds: Some(3),
            ..Default::default()
        };
        assert!(!expired(&renewed_at(1)));
        assert!(expired(&renewed_at(5)));
        assert!(expired(&LeaseSpec::default()));
    }
}

//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several host replicas only
//! one runs operators at a time.
//!
//! The leader renews the Lease every `lease_duration / 5`; a renewal is a replace with the
//! Lease's resourceVersion, so two hosts can never both think they renewed. Others take the
//! Lease over once it has not been renewed for `lease_duration` (from the `renewTime` written).
//!
//! Fencing: a leader must have stopped every reconcile before anyone else may take over. It
//! measures its renewals from the moment it took the `renewTime` it wrote (never later than
//! what others see), gives each attempt at most the time left, and steps down at the renew
//! deadline, half the lease duration after its last renewal, wherever an attempt is. The
//! caller then aborts its operators (no graceful finish), within the other half: the stop
//! margin, which also absorbs clock skew between replicas. A leader that shuts down cleanly
//! releases the Lease, so the next one starts at once instead of after the lease duration.
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
    /// How often the leader renews, and a standby tries to acquire.
    pub fn retry_period(&self) -> Duration {
        self.lease_duration / 5
    }

    /// How long after its last renewal a leader that could not renew steps down.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration - self.stop_margin()
    }

    /// What is left between stepping down and the Lease expiring for the others: the time the
    /// caller has to abort every operator.
    pub fn stop_margin(&self) -> Duration {
        self.lease_duration / 2
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

    /// Returns once this host holds the Lease, with the instant the winning attempt started
    /// (the Lease's `renewTime` is no earlier): hand it to [`keep_leading`](Self::keep_leading).
    pub async fn acquire(&self) -> Instant {
        let mut last_holder = None;
        loop {
            let attempt_started = Instant::now();
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(
                        lease = %self.settings.name,
                        identity = %self.settings.identity,
                        "became the leader"
                    );
                    return attempt_started;
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

    /// Renews the Lease while this host leads; returns when leadership is lost (not renewed by
    /// the renew deadline, or taken by another host), at the latest at the renew deadline,
    /// even while a renewal request hangs. The caller must stop its operators within
    /// [`LeaseSettings::stop_margin`] of the return.
    pub async fn keep_leading(&self, acquired_at: Instant) {
        // The renewTime last written is no earlier than this.
        let mut renewed_at = acquired_at;
        loop {
            let deadline = renewed_at + self.settings.renew_deadline();
            let next = (Instant::now() + self.settings.retry_period()).min(deadline);
            tokio::time::sleep_until(next.into()).await;
            if Instant::now() >= deadline {
                break;
            }
            let attempt_started = Instant::now();
            let attempt = tokio::time::timeout_at(deadline.into(), self.try_acquire_or_renew());
            match attempt.await {
                Ok(Ok(Attempt::Leading)) => renewed_at = attempt_started,
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    tracing::warn!(lease = %self.settings.name, %holder, "lost the lease to another host");
                    return;
                }
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.settings.name, "cannot renew the lease: {error}");
                }
                Err(_) => break, // the renewal hung until the deadline
            }
        }
        tracing::warn!(
            lease = %self.settings.name,
            renew_deadline_ms = self.settings.renew_deadline().as_millis() as u64,
            "the lease was not renewed in time; stepping down"
        );
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
        // Taken before anything is sent: the renewal counts from here (see `keep_leading`).
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

    fn settings(seconds: u64) -> LeaseSettings {
        LeaseSettings {
            namespace: "ns".into(),
            name: "lease".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn a_leader_steps_down_with_time_left_to_stop_before_the_lease_expires() {
        for seconds in [1, 3, 15, 60] {
            let lease = settings(seconds);
            // Several renewal attempts fit before the deadline ...
            assert!(lease.renew_deadline() >= lease.retry_period() * 2);
            // ... and stepping down leaves a margin to abort every operator before any other
            // replica may see the Lease expired.
            assert!(lease.renew_deadline() + lease.stop_margin() <= lease.lease_duration);
            assert!(lease.stop_margin() >= lease.lease_duration / 2);
        }
    }

    /// Against a Lease API that never answers (a partitioned leader), `keep_leading` returns at
    /// the renew deadline, not when the hung request gives up.
    #[tokio::test]
    async fn a_hung_renewal_does_not_delay_stepping_down() {
        // A listener that accepts and never answers: each request hangs.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        let config = kube::Config::new(format!("http://{address}").parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let lease = settings(2);
        let elector = LeaderElector::new(client, lease.clone());
        let started = Instant::now();
        tokio::time::timeout(lease.lease_duration * 10, elector.keep_leading(started))
            .await
            .expect("keep_leading returned");
        let took = started.elapsed();
        assert!(took >= lease.renew_deadline(), "{took:?}");
        assert!(
            took < lease.renew_deadline() + lease.stop_margin(),
            "stepped down after {took:?}, when others may already take over"
        );
    }

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

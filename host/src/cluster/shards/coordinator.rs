//! The per-replica loop that takes, renews and hands back shard Leases (see the module above
//! for the scheme), publishes the shards held, and aborts the operators of every shard it
//! gives up.
//!
//! One round every retry period (a fifth of the lease duration): read the group's Leases,
//! renew this replica's member Lease, work out who should own each shard, then for each shard
//! renew, take, hand back or release its Lease. A round is cut short at the earliest renew
//! deadline of the shards held (and never lasts longer than a renew deadline, so a request
//! that hangs cannot stop the loop), and every shard whose deadline passed is given up after it,
//! however the round went: a replica cut off from the API server stops its operators in time.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ListParams, Preconditions};
use tokio::sync::watch;

use super::assignment::{assign, shard_of};
use super::lease::{
    expired, expired_for, holder, LeaseSettings, LeaseWriter, Written, GROUP_LABEL,
};
use super::Held;
use crate::operator::OperatorManager;

/// Member Leases expired for this many lease durations are deleted by whichever replica
/// notices (pod names change with every restart; their Leases would pile up).
const STALE_MEMBER_DURATIONS: u32 = 10;

/// What holds for every shard in one round.
#[derive(Clone, Copy)]
struct Round {
    /// When the round began: a renewal made in it counts from here (see the module above).
    started: Instant,
    /// The `renewTime` and `acquireTime` this round writes.
    now: Timestamp,
    /// Whether shards may be taken (not while draining, nor while an earlier release leads).
    may_take: bool,
}

pub struct Coordinator {
    writer: LeaseWriter,
    manager: OperatorManager,
    held: watch::Sender<Held>,
    /// When the last successful renewal of each shard held started.
    renewed_at: BTreeMap<u32, Instant>,
    acquisitions: u64,
    /// Shards given up in this round whose operators are still to be aborted.
    to_abort: BTreeSet<u32>,
    /// The members last logged, to log only changes of membership.
    last_members: Vec<String>,
    /// The other replica last seen leading the group alone (one shard, or an earlier release),
    /// to log only changes.
    last_leader: Option<String>,
    /// Set while the host shuts down: shards held are renewed (their operators are finishing)
    /// but no new one is taken.
    draining: bool,
    /// The last failure to read the Leases, to log it once rather than every round.
    last_read_error: Option<String>,
}

impl Coordinator {
    pub fn new(
        client: kube::Client,
        settings: LeaseSettings,
        manager: OperatorManager,
        held: watch::Sender<Held>,
    ) -> Self {
        Coordinator {
            writer: LeaseWriter::new(client, settings),
            manager,
            held,
            renewed_at: BTreeMap::new(),
            acquisitions: 0,
            to_abort: BTreeSet::new(),
            last_members: Vec::new(),
            last_leader: None,
            draining: false,
            last_read_error: None,
        }
    }

    fn settings(&self) -> &LeaseSettings {
        self.writer.settings()
    }

    /// Runs rounds until dropped (the caller drops it on shutdown, then calls
    /// [`Coordinator::release_all`]).
    pub async fn run(&mut self) {
        loop {
            let started = Instant::now();
            // A request that hangs (a partition) must not hold the loop: no round outlives the
            // renew deadline, nor the renew deadline of a shard held.
            let limit = started + self.settings().renew_deadline();
            let deadline = self
                .earliest_deadline()
                .map_or(limit, |held| held.min(limit));
            let _ = tokio::time::timeout_at(deadline.into(), self.round()).await;
            self.give_up_overdue();
            self.abort_given_up().await;
            let next = started + self.settings().retry_period();
            let next = self
                .earliest_deadline()
                .map_or(next, |deadline| next.min(deadline));
            tokio::time::sleep_until(next.into()).await;
        }
    }

    /// From now on [`Coordinator::run`] only keeps the shards held (renewing them, giving them up
    /// if it cannot) and takes no other: for the graceful stop of the host's operators, which
    /// may take longer than a Lease stays valid without renewal.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// On shutdown, after the operators were stopped: releases every shard Lease held and the
    /// member Lease, so the other replicas take over at once.
    pub async fn release_all(&mut self) {
        let settings = self.settings().clone();
        let shards: Vec<u32> = self.renewed_at.keys().copied().collect();
        for shard in shards {
            self.give_up(shard, "shutting down");
            self.release_current(&settings.shard_lease(shard)).await;
        }
        self.to_abort.clear();
        if settings.shards > 1 {
            self.release_current(&settings.name).await;
            let name = settings.member_lease(&settings.identity);
            if let Err(error) = self
                .writer
                .api()
                .delete(&name, &DeleteParams::default())
                .await
            {
                tracing::warn!(lease = %name, "cannot delete the member lease: {error}");
            }
        }
    }

    fn earliest_deadline(&self) -> Option<Instant> {
        let deadline = self.settings().renew_deadline();
        self.renewed_at.values().map(|at| *at + deadline).min()
    }

    async fn round(&mut self) {
        let started = Instant::now();
        let now = Timestamp::now();
        let leases = match self.read_leases().await {
            Ok(leases) => {
                self.last_read_error = None;
                leases
            }
            Err(error) => {
                let error = error.to_string();
                if self.last_read_error.as_ref() != Some(&error) {
                    tracing::warn!(lease = %self.settings().name, "cannot read the leases (retrying every {}ms): {error}", self.settings().retry_period().as_millis());
                    self.last_read_error = Some(error);
                }
                return;
            }
        };
        let members = self.live_members(&leases, now).await;
        let owners: Vec<String> = assign(&members, self.settings().shards)
            .into_iter()
            .map(str::to_string)
            .collect();
        let may_take = self
            .keep_earlier_releases_out(&leases, &members, &owners, now)
            .await
            && !self.draining;
        let round = Round {
            started,
            now,
            may_take,
        };
        for shard in 0..self.settings().shards {
            let name = self.settings().shard_lease(shard);
            let lease = leases.get(&name);
            let should_own = owners[shard as usize] == self.settings().identity;
            if let Err(error) = self.step(shard, &name, lease, should_own, &round).await {
                tracing::warn!(lease = %name, "cannot update the lease: {error}");
            }
        }
    }

    /// With several shards, the group's own name is the Lease replicas of earlier, active-passive
    /// releases (and `--shards=1`) elect their leader on, running every operator. While such a
    /// replica holds it, no shard may be taken (`false`); otherwise the owner of shard 0 holds
    /// it, so that none of them becomes leader while shards run: a rolling upgrade from one
    /// layout to the other never runs an operator twice.
    async fn keep_earlier_releases_out(
        &mut self,
        leases: &HashMap<String, Lease>,
        members: &[String],
        owners: &[String],
        now: Timestamp,
    ) -> bool {
        let settings = self.settings().clone();
        if settings.shards == 1 {
            return true;
        }
        let me = settings.identity.as_str();
        let name = settings.name.as_str();
        let legacy = leases.get(name);
        let leader = legacy
            .filter(|lease| !expired(lease))
            .and_then(holder)
            .filter(|holder| !members.iter().any(|member| member == holder));
        if let Some(leader) = leader {
            if self.last_leader.as_deref() != Some(leader) {
                tracing::info!(lease = %name, %leader, "a replica electing a single leader runs every operator; taking no shard until it stops");
                self.last_leader = Some(leader.to_string());
            }
            return false;
        }
        self.last_leader = None;
        let result = if owners.first().map(String::as_str) == Some(me) {
            self.writer.hold(name, legacy, now).await.map(|_| ())
        } else if let Some(legacy) = legacy.filter(|lease| holder(lease) == Some(me)) {
            self.writer.release(name, legacy).await.map(|_| ())
        } else {
            Ok(())
        };
        if let Err(error) = result {
            tracing::warn!(lease = %name, "cannot update the lease: {error}");
        }
        true
    }

    /// What to do with one shard's Lease this round.
    async fn step(
        &mut self,
        shard: u32,
        name: &str,
        lease: Option<&Lease>,
        should_own: bool,
        round: &Round,
    ) -> Result<(), kube::Error> {
        let Round {
            started,
            now,
            may_take,
        } = *round;
        let me = self.settings().identity.clone();
        let holder = lease.and_then(holder);
        let held = self.renewed_at.contains_key(&shard);
        match (held, should_own) {
            (true, _) if holder != Some(me.as_str()) => {
                let taker = holder.unwrap_or("nobody").to_string();
                self.give_up(shard, &format!("its lease was taken by {taker}"));
            }
            (true, true) => {
                if let Written::Done = self.writer.hold(name, lease, now).await? {
                    self.renewed_at.insert(shard, started);
                }
            }
            (true, false) => self.give_up(shard, "it belongs to another replica now"),
            (false, true) if !may_take => {}
            (false, true) => {
                let free = lease.is_none_or(|lease| {
                    holder.is_none() || holder == Some(me.as_str()) || expired(lease)
                });
                if free {
                    if let Written::Done = self.writer.hold(name, lease, now).await? {
                        self.take(shard, started, holder);
                    }
                } else if self.settings().shards == 1 && self.last_leader.as_deref() != holder {
                    let holder = holder.unwrap_or_default().to_string();
                    tracing::info!(lease = %name, %holder, "another host is the leader; standing by");
                    self.last_leader = Some(holder);
                }
            }
            (false, false) => {
                // Held in the API server's eyes but not here (given up last round, or left by
                // an earlier process with this identity): hand it over at once.
                if let Some(lease) =
                    lease.filter(|lease| holder == Some(me.as_str()) && !expired(lease))
                {
                    self.release(name, lease).await;
                }
            }
        }
        Ok(())
    }

    fn take(&mut self, shard: u32, started: Instant, previous: Option<&str>) {
        self.acquisitions += 1;
        let acquisition = self.acquisitions;
        self.renewed_at.insert(shard, started);
        self.held.send_modify(|held| {
            held.0.insert(shard, acquisition);
        });
        tracing::info!(
            lease = %self.settings().shard_lease(shard),
            shard,
            previous = previous.unwrap_or(""),
            "took the shard over"
        );
        if self.settings().shards == 1 {
            tracing::info!(lease = %self.settings().name, identity = %self.settings().identity, "became the leader");
        }
    }

    /// Stops running `shard` here: no reconcile starts from now on; its operators are aborted
    /// at the end of the round.
    fn give_up(&mut self, shard: u32, why: &str) {
        if self.renewed_at.remove(&shard).is_none() {
            return;
        }
        self.held.send_modify(|held| {
            held.0.remove(&shard);
        });
        self.to_abort.insert(shard);
        tracing::warn!(lease = %self.settings().shard_lease(shard), shard, "giving the shard up: {why}");
    }

    fn give_up_overdue(&mut self) {
        let deadline = self.settings().renew_deadline();
        let overdue: Vec<u32> = self
            .renewed_at
            .iter()
            .filter(|(_, at)| at.elapsed() >= deadline)
            .map(|(shard, _)| *shard)
            .collect();
        for shard in overdue {
            let why = format!(
                "its lease was not renewed within {}ms",
                deadline.as_millis()
            );
            self.give_up(shard, &why);
        }
    }

    /// Aborts every operator of the shards given up, abandoning in-flight reconciles: another
    /// replica may take the shard over once the stop margin has passed.
    async fn abort_given_up(&mut self) {
        if self.to_abort.is_empty() {
            return;
        }
        let shards = std::mem::take(&mut self.to_abort);
        let count = self.settings().shards;
        let names: Vec<String> = self
            .manager
            .list()
            .into_iter()
            .map(|operator| operator.name)
            .filter(|name| shards.contains(&shard_of(name, count)))
            .collect();
        let started = Instant::now();
        let aborted = names.len();
        self.manager.abort(names).await;
        tracing::warn!(
            ?shards,
            aborted,
            took_ms = started.elapsed().as_millis() as u64,
            "operators of the shards given up aborted"
        );
        if self.settings().shards == 1 {
            tracing::warn!("no longer the leader: all operators stopped; standing by");
        }
    }

    /// Reads Lease `name` and releases it if this host holds it.
    async fn release_current(&self, name: &str) {
        match self.writer.api().get_opt(name).await {
            Ok(Some(lease)) => self.release(name, &lease).await,
            Ok(None) => {}
            Err(error) => tracing::warn!(lease = %name, "cannot release the lease: {error}"),
        }
    }

    async fn release(&self, name: &str, lease: &Lease) {
        match self.writer.release(name, lease).await {
            Ok(Written::Done) => tracing::info!(lease = %name, "released the lease"),
            Ok(Written::Conflict) => {}
            Err(error) => tracing::warn!(lease = %name, "cannot release the lease: {error}"),
        }
    }

    /// The group's Leases by name: the single Lease with one shard (read by name, as earlier
    /// releases created it without labels), else every Lease with the group's label.
    async fn read_leases(&self) -> Result<HashMap<String, Lease>, kube::Error> {
        let settings = self.settings();
        // The group's name: the one Lease with one shard, and the Lease of earlier releases'
        // leader with more (read by name: they created it without labels).
        let mut leases: Vec<Lease> = self
            .writer
            .api()
            .get_opt(&settings.name)
            .await?
            .into_iter()
            .collect();
        if settings.shards > 1 {
            let selector = format!("{GROUP_LABEL}={}", settings.name);
            let listed = self
                .writer
                .api()
                .list(&ListParams::default().labels(&selector))
                .await?;
            let named =
                |lease: &Lease| lease.metadata.name.as_deref() == Some(settings.name.as_str());
            leases.extend(listed.items.into_iter().filter(|lease| !named(lease)));
        }
        Ok(leases
            .into_iter()
            .filter_map(|lease| Some((lease.metadata.name.clone()?, lease)))
            .collect())
    }

    /// Renews this replica's member Lease and returns the live members, this replica among
    /// them; deletes member Leases long expired. With one shard there are no members: every
    /// replica competes for the one Lease.
    async fn live_members(
        &mut self,
        leases: &HashMap<String, Lease>,
        now: Timestamp,
    ) -> Vec<String> {
        let settings = self.settings().clone();
        let me = settings.identity.clone();
        if settings.shards == 1 {
            return vec![me];
        }
        let mine = settings.member_lease(&me);
        match self.writer.hold(&mine, leases.get(&mine), now).await {
            Ok(_) => {}
            Err(error) => tracing::warn!(lease = %mine, "cannot renew the member lease: {error}"),
        }
        let stale_after =
            SignedDuration::try_from(settings.lease_duration * STALE_MEMBER_DURATIONS)
                .unwrap_or(SignedDuration::MAX);
        let mut members = vec![me.clone()];
        for (name, lease) in leases {
            let Some(member) = settings.member_of(name) else {
                continue;
            };
            if member == me {
                continue;
            }
            if !expired(lease) {
                members.push(member.to_string());
            } else if expired_for(lease) > stale_after {
                self.delete_stale(name, lease).await;
            }
        }
        members.sort();
        if members != self.last_members {
            tracing::info!(?members, "replicas sharing the operators");
            self.last_members = members.clone();
        }
        members
    }

    async fn delete_stale(&self, name: &str, lease: &Lease) {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: None,
            }),
            ..Default::default()
        };
        match self.writer.api().delete(name, &params).await {
            Ok(_) => tracing::info!(lease = %name, "deleted the lease of a replica long gone"),
            Err(error) => {
                tracing::debug!(lease = %name, "cannot delete a stale member lease: {error}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Against a Lease API that never answers (a replica cut off from the API server), a
    /// shard held is given up at its renew deadline, not when the hung request gives up.
    #[tokio::test]
    async fn a_hung_renewal_does_not_delay_giving_a_shard_up() {
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
        let settings = LeaseSettings {
            namespace: "ns".into(),
            name: "hosts".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(2),
            shards: 4,
        };
        let cache = tempfile::tempdir().unwrap();
        let runtime = crate::runtime::Runtime::new(crate::runtime::RuntimeConfig {
            cache_dir: cache.path().to_path_buf(),
            epoch_tick: Duration::from_millis(10),
        })
        .unwrap();
        let manager = OperatorManager::new(
            runtime,
            client.clone(),
            crate::metrics::HostMetrics::new(),
            crate::operator::ManagerConfig::default(),
        );
        let (sender, mut view) = super::super::ShardView::channel(settings.shards);
        let mut coordinator = Coordinator::new(client, settings.clone(), manager, sender);
        // As if shard 2 had just been taken.
        let started = Instant::now();
        coordinator.take(2, started, None);
        assert!(view.held().holds(2));
        let run = tokio::spawn(async move { coordinator.run().await });
        let given_up = async { while view.changed().await.holds(2) {} };
        tokio::time::timeout(settings.lease_duration * 10, given_up)
            .await
            .expect("the shard was given up");
        let took = started.elapsed();
        assert!(took >= settings.renew_deadline(), "{took:?}");
        assert!(
            took < settings.renew_deadline() + settings.stop_margin(),
            "gave up after {took:?}, when others may already take over"
        );
        run.abort();
    }
}

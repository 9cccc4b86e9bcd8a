//! `wasm-operator cluster` sharded: three replicas as separate processes (the in-cluster
//! environment, the RBAC of deploy/default) divide twelve WasmOperators over eight shard
//! Leases. Each operator must run where the rendezvous assignment puts it, on exactly one
//! replica; a replica killed with SIGKILL has its shards taken over once their Leases expire;
//! a replica stopped with SIGTERM hands its shards over at once; and at the end one replica
//! runs everything and every operator still reconciles a change made after all the moves.
//!
//! "Exactly one replica" is checked from the replicas' own logs (one clock, this machine):
//! every operator reconciles every 400 ms, each reconcile is logged with the operator's name,
//! and between two moves an operator's reconciles must all come from its owner.
mod cluster_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use serde_json::json;
use wasm_operator::cluster::operator_name;
use wasm_operator::cluster::shards::assignment::{owner, shard_of};
use wasm_operator::cluster::WasmOperator;
use wasm_operator_test_support::{control_plane, guest_module, test_namespace, wait_for};

use cluster_support::processes::*;
use cluster_support::*;

const LEASE_DURATION: Duration = Duration::from_secs(4);
const SHARDS: u32 = 8;
const OPERATORS: usize = 12;

fn operator_names() -> Vec<String> {
    (0..OPERATORS).map(|i| format!("ticker-{i}")).collect()
}

/// Where each WasmOperator (by name) should run when `members` are the live replicas.
fn assignment(namespace: &str, members: &[&str]) -> BTreeMap<String, String> {
    let members: Vec<String> = members.iter().map(|member| member.to_string()).collect();
    operator_names()
        .into_iter()
        .map(|name| {
            let shard = shard_of(&operator_name(namespace, &name), SHARDS);
            let host = owner(shard, &members).unwrap().to_string();
            (name, host)
        })
        .collect()
}

/// Where each WasmOperator runs by its status (loaded there: Idle or Running).
async fn placement(client: &Client, namespace: &str) -> BTreeMap<String, String> {
    let api: Api<WasmOperator> = Api::namespaced(client.clone(), namespace);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return BTreeMap::new();
    };
    list.items
        .iter()
        .filter(|object| matches!(phase(object), "Idle" | "Running"))
        .filter_map(|object| {
            let host = object.status.as_ref()?.host.clone()?;
            Some((object.metadata.name.clone()?, host))
        })
        .collect()
}

/// Waits until every WasmOperator runs where `members` put it; returns when that was seen.
async fn wait_for_assignment(client: &Client, namespace: &str, members: &[&str]) -> Instant {
    let expected = assignment(namespace, members);
    let what = format!("the operators to run on {members:?} as assigned: {expected:?}");
    wait_for(&what, PROMPTLY, || async {
        (placement(client, namespace).await == expected).then(Instant::now)
    })
    .await
}

/// A reconcile a replica logged.
struct Reconcile {
    at: Timestamp,
    operator: String,
    /// `namespace/name` of the object reconciled.
    object: String,
}

/// Every reconcile logged by `host` so far.
fn reconciles(host: &mut HostProcess) -> Vec<Reconcile> {
    host.drain();
    host.log
        .iter()
        .filter_map(|line| {
            let object = line.split("reconcile ").nth(1)?;
            let (object, rest) = object.split_once(" count=")?;
            let operator = rest.split("operator=").nth(1)?.split_whitespace().next()?;
            Some(Reconcile {
                at: logged_at(line)?,
                operator: operator.trim_matches('"').to_string(),
                object: object.to_string(),
            })
        })
        .collect()
}

/// Asserts that between `from` and `to` every reconcile of each operator came from the
/// replica `owners` names for it (by operator name in the host, from `namespace`).
fn assert_only_owners_reconciled(
    logs: &[(&str, &[Reconcile])],
    namespace: &str,
    owners: &BTreeMap<String, String>,
    (from, to): (Timestamp, Timestamp),
) {
    let owner_of: BTreeMap<String, &String> = owners
        .iter()
        .map(|(name, host)| (operator_name(namespace, name), host))
        .collect();
    let mut seen = 0;
    for (host, reconciles) in logs {
        for reconcile in reconciles.iter() {
            if reconcile.at < from || reconcile.at > to {
                continue;
            }
            let Some(owner) = owner_of.get(&reconcile.operator) else {
                continue;
            };
            assert_eq!(
                owner.as_str(),
                *host,
                "{} reconciled on {host} at {}, while {owner} owned it",
                reconcile.operator,
                reconcile.at
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no reconciles logged between {from} and {to}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_operators_and_take_over_from_one_that_dies() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-shards").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "host").await;
    grant_host_rbac(&client, ns).await;
    grant(
        &client,
        ns,
        "reads",
        ns,
        "default",
        vec![rule("", &["configmaps"], &["list", "watch"])],
    )
    .await;
    wait_for_access(&client, ns, "default", ("v1", "ConfigMap"), Some(ns), true).await;
    let module = std::fs::read(guest_module("test-guest-behaviours")).unwrap();
    put_module(&client, ns, "modules", &module).await;
    for name in operator_names() {
        create_wasm_operator(
            &client,
            ns,
            &name,
            json!({
                "module": {"configMap": {"name": "modules", "key": "webapp.wasm"}},
                "allowHttp": [GRANTS_HTTP_ONLY],
                "config": {
                    "requeueAfterMs": 400,
                    "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns}},
                },
            }),
        )
        .await;
    }

    let dir = tempfile::tempdir().unwrap();
    let sa_dir = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa_dir).unwrap();
    let server = service_account_dir(&client, ns, &sa_dir).await;
    let cache = dir.path().join("cache");
    let shards = SHARDS.to_string();
    let spawn = |identity: &str| {
        HostProcess::spawn(
            identity,
            ns,
            &sa_dir,
            &server,
            &cache,
            LEASE_DURATION,
            &["--shards", &shards],
        )
    };

    // One replica takes every shard; two more join and get their share.
    let mut a = spawn("host-a");
    wait_for_assignment(&client, ns, &["host-a"]).await;
    let mut b = spawn("host-b");
    let mut c = spawn("host-c");
    wait_for_assignment(&client, ns, &["host-a", "host-b", "host-c"]).await;
    let steady_from = Timestamp::now();
    let three = assignment(ns, &["host-a", "host-b", "host-c"]);
    for (host, identity) in [(&a, "host-a"), (&b, "host-b"), (&c, "host-c")] {
        let expected = three.values().filter(|owner| *owner == identity).count();
        assert_eq!(host.operators().await, Some(expected as i64), "{identity}");
    }
    // Every operator ticks a few times where it is.
    wait_for("each replica to reconcile its operators", PROMPTLY, || {
        let done = [(&mut a, "host-a"), (&mut b, "host-b"), (&mut c, "host-c")]
            .into_iter()
            .all(|(host, identity)| {
                let mine = reconciles(host);
                three
                    .iter()
                    .filter(|(_, owner)| owner.as_str() == identity)
                    .all(|(name, _)| {
                        let operator = operator_name(ns, name);
                        let ticks = mine
                            .iter()
                            .filter(|r| r.operator == operator && r.at > steady_from);
                        ticks.count() >= 3
                    })
            });
        std::future::ready(done.then_some(()))
    })
    .await;

    // host-b dies without a word: its shards go to a and c once their Leases expire.
    let b_shards = shards_held_by(&client, ns, "host-b").await;
    b.child.kill().unwrap();
    let killed_at = Timestamp::now();
    let killed_instant = Instant::now();
    let b_log = reconciles(&mut b);
    let moved_at = wait_for_assignment(&client, ns, &["host-a", "host-c"]).await;
    let moved_at_wall = Timestamp::now();
    let two = assignment(ns, &["host-a", "host-c"]);
    let takeover = moved_at - killed_instant;
    let mut latest_acquired = killed_at;
    for shard in &b_shards {
        let lease = leases(&client, ns)
            .await
            .remove(&format!("hosts-{shard}"))
            .unwrap();
        let spec = lease.spec.unwrap();
        let acquired = spec.acquire_time.unwrap().0;
        assert_ne!(spec.holder_identity.as_deref(), Some("host-b"));
        latest_acquired = latest_acquired.max(acquired);
    }
    let lease_takeover = latest_acquired.duration_since(killed_at);
    eprintln!(
        "{} shards of the killed replica taken over {lease_takeover:?} after SIGKILL (Lease \
         acquireTime); its operators running elsewhere {takeover:?} after",
        b_shards.len()
    );
    // Expired after LEASE_DURATION at most, noticed within a retry period (a fifth of it).
    let bound = LEASE_DURATION + LEASE_DURATION / 3 + Duration::from_secs(1);
    assert!(
        lease_takeover <= k8s_openapi::jiff::SignedDuration::try_from(bound).unwrap(),
        "takeover took {lease_takeover:?}"
    );
    let a_log = reconciles(&mut a);
    let c_log = reconciles(&mut c);
    assert_only_owners_reconciled(
        &[("host-a", &a_log), ("host-b", &b_log), ("host-c", &c_log)],
        ns,
        &three,
        (steady_from, killed_at),
    );

    // host-c stops cleanly: it releases its Leases and host-a takes them at once.
    wait_for("the operators to tick after the takeover", PROMPTLY, || {
        let ticked = reconciles(&mut a).iter().any(|r| r.at > moved_at_wall)
            && reconciles(&mut c).iter().any(|r| r.at > moved_at_wall);
        std::future::ready(ticked.then_some(()))
    })
    .await;
    let stopping_at = Instant::now();
    let pid = c.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = c.child.wait().unwrap();
    assert!(
        status.success(),
        "host-c exited with {status}:\n{}",
        c.drain()
    );
    let c_stopped = Timestamp::now();
    wait_for_assignment(&client, ns, &["host-a"]).await;
    let handover = stopping_at.elapsed();
    eprintln!("a clean stop handed its shards over in {handover:?}");
    // No Lease expiry to wait for: released at once, taken within a retry period or two.
    assert!(handover < LEASE_DURATION, "handover took {handover:?}");
    assert!(
        !leases(&client, ns)
            .await
            .contains_key("hosts-member-host-c"),
        "host-c's member Lease outlived it"
    );
    let c_log = reconciles(&mut c);
    let a_log = reconciles(&mut a);
    assert_only_owners_reconciled(
        &[("host-a", &a_log), ("host-c", &c_log)],
        ns,
        &two,
        (moved_at_wall, c_stopped),
    );

    // After all the moves, every operator reconciles a change made now, on host-a.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let marker = ConfigMap {
        metadata: ObjectMeta {
            name: Some("after-the-moves".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &marker)
        .await
        .unwrap();
    let marker = format!("{ns}/after-the-moves");
    wait_for(
        "every operator to reconcile the new ConfigMap",
        PROMPTLY,
        || {
            let done = reconciles(&mut a);
            let all = operator_names().iter().all(|name| {
                let operator = operator_name(ns, name);
                done.iter()
                    .any(|r| r.operator == operator && r.object == marker)
            });
            std::future::ready(all.then_some(()))
        },
    )
    .await;
    assert_eq!(a.operators().await, Some(OPERATORS as i64));
    delete_cluster_bindings(&client, ns).await;
}

async fn leases(client: &Client, namespace: &str) -> BTreeMap<String, Lease> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|lease| Some((lease.metadata.name.clone()?, lease)))
        .collect()
}

/// The shards whose Lease names `identity` as holder.
async fn shards_held_by(client: &Client, namespace: &str, identity: &str) -> Vec<u32> {
    let mut held = Vec::new();
    for shard in 0..SHARDS {
        let holder = lease_holder_of(client, namespace, &format!("hosts-{shard}")).await;
        if holder.as_deref() == Some(identity) {
            held.push(shard);
        }
    }
    held
}

//! `wasm-operator cluster` sharded: three replicas as separate processes (the in-cluster
//! environment, the RBAC of deploy/default) divide twelve WasmOperators over eight shard
//! Leases. Each operator must run where the rendezvous assignment puts it, on exactly one
//! replica; a replica killed with SIGKILL has its shards taken over once their Leases expire;
//! a replica stopped with SIGTERM hands its shards over at once; and at the end one replica
//! runs everything and every operator still reconciles a change made after all the moves.
//!
//! "Exactly one replica" is checked twice between moves: from the replicas' own logs (one clock,
//! this machine: every operator reconciles every 400 ms, each reconcile logged with the
//! operator's name, and all must come from its owner), and from the API server's view (every
//! status write of a WasmOperator, seen through a watch, names the replica that runs it and
//! carries its reconcile count: all must name the owner).
mod cluster_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use serde_json::json;
use wasm_operator::cluster::operator_name;
use wasm_operator::cluster::shards::assignment::{assign, shard_of};
use wasm_operator::cluster::WasmOperator;
use wasm_operator_test_support::{control_plane, guest_module, test_namespace, wait_for};

use cluster_support::processes::*;
use cluster_support::*;

const LEASE_DURATION: Duration = Duration::from_secs(4);
const SHARDS: u32 = 8;
const OPERATORS: usize = 12;

fn operator_names() -> Vec<String> {
    numbered_operators(OPERATORS)
}

fn numbered_operators(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("ticker-{i}")).collect()
}

/// Where each WasmOperator (by name) should run when `members` are the live replicas.
fn assignment(namespace: &str, members: &[&str]) -> BTreeMap<String, String> {
    assignment_of(&operator_names(), SHARDS, namespace, members)
}

fn assignment_of(
    operators: &[String],
    shards: u32,
    namespace: &str,
    members: &[&str],
) -> BTreeMap<String, String> {
    let members: Vec<String> = members.iter().map(|member| member.to_string()).collect();
    let owners = assign(&members, shards);
    operators
        .iter()
        .map(|name| {
            let shard = shard_of(&operator_name(namespace, name), shards);
            (name.clone(), owners[shard as usize].to_string())
        })
        .collect()
}

/// Where each WasmOperator runs by its status (loaded there: Idle, Running or Swapped).
async fn placement(client: &Client, namespace: &str) -> BTreeMap<String, String> {
    let api: Api<WasmOperator> = Api::namespaced(client.clone(), namespace);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return BTreeMap::new();
    };
    list.items
        .iter()
        .filter(|object| matches!(phase(object), "Idle" | "Running" | "Swapped"))
        .filter_map(|object| {
            let host = object.status.as_ref()?.host.clone()?;
            Some((object.metadata.name.clone()?, host))
        })
        .collect()
}

/// Waits until every WasmOperator runs where `members` put it; returns when that was seen.
async fn wait_for_assignment(client: &Client, namespace: &str, members: &[&str]) -> Instant {
    wait_for_placement(client, namespace, &assignment(namespace, members)).await
}

/// Waits until every WasmOperator runs where `expected` says; returns when that was seen.
async fn wait_for_placement(
    client: &Client,
    namespace: &str,
    expected: &BTreeMap<String, String>,
) -> Instant {
    let what = format!("the operators to run as assigned: {expected:?}");
    wait_for(&what, PROMPTLY, || async {
        (placement(client, namespace).await == *expected).then(Instant::now)
    })
    .await
}

/// A reconcile a replica logged.
struct Reconcile {
    at: Timestamp,
    operator: String,
    /// `namespace/name` of the object reconciled.
    object: String,
    /// Reconciles since the operator's init (the behaviours guest counts them in memory).
    count: u64,
}

/// Every reconcile logged by `host` so far.
fn reconciles(host: &mut HostProcess) -> Vec<Reconcile> {
    host.drain();
    host.log
        .iter()
        .filter_map(|line| {
            let object = line.split("reconcile ").nth(1)?;
            let (object, rest) = object.split_once(" count=")?;
            let count = rest.split_whitespace().next()?.parse().ok()?;
            let operator = rest.split("operator=").nth(1)?.split_whitespace().next()?;
            Some(Reconcile {
                at: logged_at(line)?,
                operator: operator.trim_matches('"').to_string(),
                object: object.to_string(),
                count,
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
    let setup = Setup::new(&client, "cluster-shards", &operator_names(), Some(400)).await;
    let ns = setup.namespace.name.as_str();
    let spawn = |identity: &str| setup.spawn(identity, SHARDS);
    let statuses = StatusWrites::watch(&client, ns);

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
    // Shards without operators may be taken a round later than the others.
    let latest_acquired = wait_for(
        "host-b's shard Leases to be taken over",
        PROMPTLY,
        || async {
            let all = leases(&client, ns).await;
            let mut latest = killed_at;
            for shard in &b_shards {
                let spec = all.get(&format!("hosts-{shard}"))?.spec.as_ref()?;
                if spec.holder_identity.as_deref() == Some("host-b") {
                    return None;
                }
                latest = latest.max(spec.acquire_time.as_ref()?.0);
            }
            Some(latest)
        },
    )
    .await;
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
    statuses.assert_only_owners_reported(&three, (steady_from, killed_at));

    // host-c stops cleanly: it releases its Leases and host-a takes them at once.
    wait_for("the operators to tick after the takeover", PROMPTLY, || {
        let ticked = reconciles(&mut a).iter().any(|r| r.at > moved_at_wall)
            && reconciles(&mut c).iter().any(|r| r.at > moved_at_wall);
        std::future::ready(ticked.then_some(()))
    })
    .await;
    let stopping_at = Instant::now();
    c.terminate();
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
    shards_held_by_of(client, namespace, identity, SHARDS).await
}

async fn shards_held_by_of(
    client: &Client,
    namespace: &str,
    identity: &str,
    shards: u32,
) -> Vec<u32> {
    let mut held = Vec::new();
    for shard in 0..shards {
        let holder = lease_holder_of(client, namespace, &format!("hosts-{shard}")).await;
        if holder.as_deref() == Some(identity) {
            held.push(shard);
        }
    }
    held
}

/// One status write as the watch saw it: when it arrived, the WasmOperator, the replica named in
/// `status.host` and the reconcile count it reported.
type StatusWrite = (Timestamp, String, String, u64);

/// Every status write of the namespace's WasmOperators as a watch sees it.
struct StatusWrites {
    seen: std::sync::Arc<std::sync::Mutex<Vec<StatusWrite>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusWrites {
    fn watch(client: &Client, namespace: &str) -> StatusWrites {
        use futures::StreamExt;
        use kube::runtime::watcher;
        let api: Api<WasmOperator> = Api::namespaced(client.clone(), namespace);
        let seen: std::sync::Arc<std::sync::Mutex<Vec<StatusWrite>>> = std::sync::Arc::default();
        let record = std::sync::Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) = event
                else {
                    continue;
                };
                let Some(status) = object.status.as_ref() else {
                    continue;
                };
                let (Some(host), Some(name)) = (status.host.clone(), object.metadata.name.clone())
                else {
                    continue;
                };
                let count = status.reconciles.as_ref().map_or(0, |r| r.succeeded);
                record
                    .lock()
                    .unwrap()
                    .push((Timestamp::now(), name, host, count));
            }
        });
        StatusWrites { seen, task }
    }

    /// Asserts that every status write seen between `from` and `to` names the replica `owners`
    /// assigns, and that the writes reported reconciles.
    fn assert_only_owners_reported(
        &self,
        owners: &BTreeMap<String, String>,
        (from, to): (Timestamp, Timestamp),
    ) {
        let seen = self.seen.lock().unwrap();
        let window: Vec<_> = seen
            .iter()
            .filter(|(at, ..)| *at >= from && *at <= to)
            .collect();
        for (at, name, host, _) in &window {
            assert_eq!(
                owners.get(name.as_str()),
                Some(host),
                "the API server saw {name}'s status written by {host} at {at}"
            );
        }
        assert!(
            window.iter().any(|(.., count)| *count > 0),
            "no status write with reconciles between {from} and {to}"
        );
    }
}

impl Drop for StatusWrites {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A namespace with the host's ServiceAccount and RBAC, the behaviours guest in a ConfigMap,
/// WasmOperators of it, and the files a pod would have mounted.
struct Setup {
    namespace: wasm_operator_test_support::TestNamespace,
    dir: tempfile::TempDir,
    sa_dir: std::path::PathBuf,
    server: (String, String),
    cache: std::path::PathBuf,
}

impl Setup {
    /// `operators` WasmOperators of the behaviours guest, each watching the namespace's
    /// ConfigMaps and (with `requeue_ms`) reconciling them that often.
    async fn new(
        client: &Client,
        prefix: &str,
        operators: &[String],
        requeue_ms: Option<u64>,
    ) -> Setup {
        ensure_crds(client).await;
        let namespace = test_namespace(client, prefix).await;
        let ns = namespace.name.as_str();
        create_service_account(client, ns, "host").await;
        grant_host_rbac(client, ns).await;
        grant(
            client,
            ns,
            "reads",
            ns,
            "default",
            vec![rule("", &["configmaps"], &["list", "watch"])],
        )
        .await;
        wait_for_access(client, ns, "default", ("v1", "ConfigMap"), Some(ns), true).await;
        let module = std::fs::read(guest_module("test-guest-behaviours")).unwrap();
        put_module(client, ns, "modules", &module).await;
        for name in operators {
            create_wasm_operator(
                client,
                ns,
                name,
                json!({
                    "module": {"configMap": {"name": "modules", "key": "webapp.wasm"}},
                    "allowHttp": [GRANTS_HTTP_ONLY],
                    "config": {
                        "requeueAfterMs": requeue_ms,
                        "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns}},
                    },
                }),
            )
            .await;
        }
        let dir = tempfile::tempdir().unwrap();
        let sa_dir = dir.path().join("serviceaccount");
        std::fs::create_dir_all(&sa_dir).unwrap();
        let server = service_account_dir(client, ns, &sa_dir).await;
        let cache = dir.path().join("cache");
        Setup {
            namespace,
            dir,
            sa_dir,
            server,
            cache,
        }
    }

    fn spawn(&self, identity: &str, shards: u32) -> HostProcess {
        self.spawn_with(identity, shards, &[])
    }

    fn spawn_with(&self, identity: &str, shards: u32, extra: &[&str]) -> HostProcess {
        let shards = shards.to_string();
        let mut flags = vec!["--shards", shards.as_str()];
        flags.extend_from_slice(extra);
        HostProcess::spawn(
            identity,
            &self.namespace.name,
            &self.sa_dir,
            &self.server,
            &self.cache,
            LEASE_DURATION,
            &flags,
        )
    }
}

/// Figures for docs/benchmarks.md ("Sharding: takeover and movement"): for 10 and 100 idle
/// operators, active-passive (1 shard, 2 replicas) against sharded (8 shards over 3 replicas):
/// how long after a replica's SIGKILL its Leases are taken over and its operators run
/// elsewhere, and how many operators move when the last replica joins. Medians of three runs.
/// `cargo test -p wasm-operator --test cluster_shards -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures for docs/benchmarks.md; takes a few minutes"]
async fn takeover_and_movement_figures() {
    const RUNS: usize = 3;
    let client = control_plane().client().await;
    let mut rows = Vec::new();
    for count in [10, 100] {
        let operators = numbered_operators(count);
        let mut baseline = None;
        for (layout, shards, replicas) in [
            ("1 shard, 2 replicas", 1, 2),
            ("8 shards, 3 replicas", 8, 3),
        ] {
            let mut runs = Vec::new();
            for _ in 0..RUNS {
                runs.push(measure_layout(&client, &operators, shards, replicas).await);
            }
            let pick = |value: fn(&LayoutRun) -> Duration| {
                let mut values: Vec<Duration> = runs.iter().map(value).collect();
                median(&mut values)
            };
            let running = pick(|run| run.running_elsewhere);
            let ratio = match baseline {
                None => {
                    baseline = Some(running);
                    "1 (baseline)".to_string()
                }
                Some(baseline) => {
                    format!("{:.2}", running.as_secs_f64() / baseline.as_secs_f64())
                }
            };
            let mut moved: Vec<usize> = runs.iter().map(|run| run.moved).collect();
            rows.push(format!(
                "| {count} | {layout} | {:.2} s | {:.2} s | {ratio} | {} of {count} | {:.2} s |",
                pick(|run| run.leases_taken).as_secs_f64(),
                running.as_secs_f64(),
                median(&mut moved),
                pick(|run| run.settled_after_join).as_secs_f64(),
            ));
        }
    }
    println!(
        "Lease duration {}s; medians of {RUNS} runs\n\n\
         | operators | layout | SIGKILL → its Leases taken | SIGKILL → its operators running elsewhere | ratio | moved when the last replica joined | join → settled |\n\
         |---|---|---|---|---|---|---|",
        LEASE_DURATION.as_secs()
    );
    for row in rows {
        println!("{row}");
    }
}

struct LayoutRun {
    leases_taken: Duration,
    running_elsewhere: Duration,
    moved: usize,
    settled_after_join: Duration,
}

/// One run: `replicas - 1` replicas, then the last joins (movement), then the replica running
/// the most operators is killed (takeover).
async fn measure_layout(
    client: &Client,
    operators: &[String],
    shards: u32,
    replicas: usize,
) -> LayoutRun {
    let setup = Setup::new(client, "shard-figures", operators, None).await;
    let ns = setup.namespace.name.as_str();
    let names: Vec<String> = (0..replicas).map(|i| format!("host-{i}")).collect();
    let members = |count: usize| {
        names[..count]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    };
    // With one shard the first replica leads and keeps everything while it lives.
    let expected = |live: &[&str]| -> BTreeMap<String, String> {
        if shards == 1 {
            let leader = live[0].to_string();
            operators
                .iter()
                .map(|name| (name.clone(), leader.clone()))
                .collect()
        } else {
            assignment_of(operators, shards, ns, live)
        }
    };
    let mut hosts = Vec::new();
    for (index, name) in members(replicas - 1).into_iter().enumerate() {
        hosts.push(setup.spawn(name, shards));
        if index == 0 {
            // The first replica holds every shard before anyone else asks.
            wait_for_placement(client, ns, &expected(&members(1))).await;
        }
    }
    let before = expected(&members(replicas - 1));
    wait_for_placement(client, ns, &before).await;
    let joined = Instant::now();
    hosts.push(setup.spawn(&names[replicas - 1], shards));
    let after = expected(&members(replicas));
    let settled = wait_for_placement(client, ns, &after).await;
    let moved = before
        .iter()
        .filter(|(name, host)| after[*name] != **host)
        .count();

    let victim = names
        .iter()
        .max_by_key(|name| after.values().filter(|host| host == name).count())
        .unwrap()
        .clone();
    let held = if shards == 1 {
        vec!["hosts".to_string()]
    } else {
        let held = shards_held_by_of(client, ns, &victim, shards).await;
        held.into_iter()
            .map(|shard| format!("hosts-{shard}"))
            .collect()
    };
    let index = names.iter().position(|name| *name == victim).unwrap();
    hosts[index].child.kill().unwrap();
    let killed_at = Timestamp::now();
    let killed = Instant::now();
    let survivors: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| *name != victim)
        .collect();
    let running = wait_for_placement(client, ns, &expected(&survivors)).await - killed;
    let taken = wait_for("the victim's Leases to be taken over", PROMPTLY, || async {
        let all = leases(client, ns).await;
        let mut latest = killed_at;
        for name in &held {
            let spec = all.get(name)?.spec.as_ref()?;
            if spec.holder_identity.as_deref() == Some(victim.as_str()) {
                return None;
            }
            latest = latest.max(spec.acquire_time.as_ref()?.0);
        }
        Some(latest)
    })
    .await;
    let leases_taken = Duration::try_from(taken.duration_since(killed_at)).unwrap_or_default();
    delete_cluster_bindings(client, ns).await;
    LayoutRun {
        leases_taken,
        running_elsewhere: running,
        moved,
        settled_after_join: settled - joined,
    }
}

fn median<T: Ord + Copy>(values: &mut [T]) -> T {
    values.sort();
    values[values.len() / 2]
}

/// Operators keep their in-memory state when they change replica: with one state directory
/// shared by the replicas, a replica stopped with SIGTERM swaps its operators out and leaves
/// them a resume point, a replica joining takes its shards with their swapped-out state, and
/// one killed with SIGKILL leaves the snapshots of its swapped-out operators. Each time, the
/// new replica resumes them without init: the behaviours guest's reconcile count (kept in its
/// memory since init) goes on from where it was instead of starting at 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_resume_their_state_on_the_replica_that_takes_them_over() {
    let client = control_plane().client().await;
    let operators = numbered_operators(6);
    let setup = Setup::new(&client, "shard-resume", &operators, None).await;
    let ns = setup.namespace.name.as_str();
    let state = setup.dir.path().join("state");
    let state = state.to_str().unwrap();
    let spawn = |identity: &str| {
        setup.spawn_with(
            identity,
            SHARDS,
            &["--state-dir", state, "--swap-after", "1s"],
        )
    };
    let expected = |members: &[&str]| assignment_of(&operators, SHARDS, ns, members);
    let mut hosts = BTreeMap::new();
    hosts.insert("host-a", spawn("host-a"));
    hosts.insert("host-b", spawn("host-b"));
    let two = expected(&["host-a", "host-b"]);
    wait_for_placement(&client, ns, &two).await;

    // Work for every operator: a ConfigMap changed a few times; then all idle and swapped out.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for round in 0..3 {
        let work = ConfigMap {
            metadata: ObjectMeta {
                name: Some("work".into()),
                ..Default::default()
            },
            data: Some([("round".to_string(), round.to_string())].into()),
            ..Default::default()
        };
        config_maps
            .patch(
                "work",
                &kube::api::PatchParams::apply("shard-resume").force(),
                &kube::api::Patch::Apply(&work),
            )
            .await
            .unwrap();
    }
    let counts = wait_for_counts(&mut hosts, &two, ns, 3).await;
    wait_for_phase(&client, ns, "Swapped").await;

    // SIGTERM: host-b swaps out (already is) and hands over; host-a resumes.
    let mut b = hosts.remove("host-b").unwrap();
    let since = Timestamp::now();
    b.terminate();
    let one = expected(&["host-a"]);
    wait_for_placement(&client, ns, &one).await;
    let moved: Vec<&String> = two
        .iter()
        .filter(|(_, host)| *host == "host-b")
        .map(|(name, _)| name)
        .collect();
    assert_counts_continue(&mut hosts, &one, ns, &counts, &moved, since).await;

    // A replica joins: it takes its shards with their state.
    wait_for_phase(&client, ns, "Swapped").await;
    let counts = latest_counts(&mut hosts, &one, ns, Timestamp::UNIX_EPOCH);
    let since = Timestamp::now();
    hosts.insert("host-c", spawn("host-c"));
    let with_c = expected(&["host-a", "host-c"]);
    wait_for_placement(&client, ns, &with_c).await;
    let moved: Vec<&String> = with_c
        .iter()
        .filter(|(_, host)| *host == "host-c")
        .map(|(name, _)| name)
        .collect();
    assert_counts_continue(&mut hosts, &with_c, ns, &counts, &moved, since).await;

    // SIGKILL of a replica whose operators are swapped out: their snapshots are taken over.
    wait_for_phase(&client, ns, "Swapped").await;
    let counts = latest_counts(&mut hosts, &with_c, ns, Timestamp::UNIX_EPOCH);
    let mut c = hosts.remove("host-c").unwrap();
    let since = Timestamp::now();
    c.child.kill().unwrap();
    let _ = c.child.wait();
    wait_for_placement(&client, ns, &one).await;
    assert_counts_continue(&mut hosts, &one, ns, &counts, &moved, since).await;
    let resumed = hosts["host-a"]
        .metric_sum("wasm_operator_resumes_total", "result=\"resumed\"")
        .await;
    assert!(resumed.is_some_and(|resumed| resumed >= 1.0), "{resumed:?}");
    delete_cluster_bindings(&client, ns).await;
}

/// Waits until every WasmOperator has `phase`.
async fn wait_for_phase(client: &Client, namespace: &str, wanted: &str) {
    let api: Api<WasmOperator> = Api::namespaced(client.clone(), namespace);
    wait_for(
        &format!("every operator to be {wanted}"),
        PROMPTLY,
        || async {
            let list = api.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .all(|object| phase(object) == wanted)
                .then_some(())
        },
    )
    .await
}

/// The highest reconcile count each operator logged on the replica `placement` names for it,
/// from `since` on.
fn latest_counts(
    hosts: &mut BTreeMap<&str, HostProcess>,
    placement: &BTreeMap<String, String>,
    namespace: &str,
    since: Timestamp,
) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (name, host) in placement {
        let operator = operator_name(namespace, name);
        let Some(process) = hosts.get_mut(host.as_str()) else {
            continue;
        };
        let latest = reconciles(process)
            .iter()
            .filter(|r| r.operator == operator && r.at >= since)
            .map(|r| r.count)
            .max();
        if let Some(latest) = latest {
            counts.insert(name.clone(), latest);
        }
    }
    counts
}

/// Waits until every operator has reconciled at least `at_least` times where it runs; returns
/// the counts.
async fn wait_for_counts(
    hosts: &mut BTreeMap<&str, HostProcess>,
    placement: &BTreeMap<String, String>,
    namespace: &str,
    at_least: u64,
) -> BTreeMap<String, u64> {
    let started = Instant::now();
    loop {
        let counts = latest_counts(hosts, placement, namespace, Timestamp::UNIX_EPOCH);
        if placement
            .keys()
            .all(|name| counts.get(name).is_some_and(|n| *n >= at_least))
        {
            return counts;
        }
        assert!(started.elapsed() < PROMPTLY, "reconcile counts: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every operator in `moved` reconciles on its new replica (its watches list again), and its
/// count goes on from `before` instead of starting again at 1.
async fn assert_counts_continue(
    hosts: &mut BTreeMap<&str, HostProcess>,
    placement: &BTreeMap<String, String>,
    namespace: &str,
    before: &BTreeMap<String, u64>,
    moved: &[&String],
    since: Timestamp,
) {
    assert!(!moved.is_empty(), "nothing moved: {placement:?}");
    let started = Instant::now();
    loop {
        let now = latest_counts(hosts, placement, namespace, since);
        let done = moved.iter().all(|name| now.contains_key(*name));
        if done {
            for name in moved {
                assert!(
                    now[*name] > before[*name],
                    "{name} started again: count {} after {} before it moved",
                    now[*name],
                    before[*name]
                );
            }
            return;
        }
        assert!(
            started.elapsed() < PROMPTLY,
            "counts after the move: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A rolling upgrade between the layouts: replicas of an earlier, active-passive release
/// (`--shards=1`, the Lease `hosts` itself) and sharded ones never run an operator twice. While
/// a single leader holds `hosts`, a sharded replica takes no shard; once it is gone the sharded
/// replicas take the shards and hold `hosts` too, so a single-leader replica started then stands
/// by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_and_single_leader_replicas_take_turns_in_an_upgrade() {
    let client = control_plane().client().await;
    let operators = numbered_operators(4);
    let setup = Setup::new(&client, "shard-upgrade", &operators, None).await;
    let ns = setup.namespace.name.as_str();
    let everything_on = |host: &str| -> BTreeMap<String, String> {
        operators
            .iter()
            .map(|name| (name.clone(), host.to_string()))
            .collect()
    };
    let mut old = setup.spawn("host-old", 1);
    wait_for_placement(&client, ns, &everything_on("host-old")).await;
    let mut new = setup.spawn("host-new", SHARDS);
    wait_for("host-new to join as a member", PROMPTLY, || async {
        leases(&client, ns)
            .await
            .contains_key("hosts-member-host-new")
            .then_some(())
    })
    .await;
    // A few rounds of host-new (a fifth of the Lease duration each) find the leader there.
    wait_for("host-new to see the single leader", PROMPTLY, || {
        new.drain();
        let logged = new
            .log
            .iter()
            .any(|line| line.contains("taking no shard until it stops"));
        std::future::ready(logged.then_some(()))
    })
    .await;
    assert!(shards_held_by(&client, ns, "host-new").await.is_empty());
    assert_eq!(placement(&client, ns).await, everything_on("host-old"));

    // The old leader stops: host-new takes every shard, and `hosts` with them.
    old.terminate();
    wait_for_placement(&client, ns, &everything_on("host-new")).await;
    wait_for(
        "host-new to hold the single leader's Lease",
        PROMPTLY,
        || async { (lease_holder(&client, ns).await.as_deref() == Some("host-new")).then_some(()) },
    )
    .await;
    let mut late = setup.spawn("host-old-2", 1);
    wait_for(
        "the late single-leader replica to stand by",
        PROMPTLY,
        || {
            late.drain();
            let logged = late
                .log
                .iter()
                .any(|line| line.contains("another host is the leader; standing by"));
            std::future::ready(logged.then_some(()))
        },
    )
    .await;
    assert_eq!(late.operators().await, Some(0));
    assert_eq!(placement(&client, ns).await, everything_on("host-new"));
    delete_cluster_bindings(&client, ns).await;
}

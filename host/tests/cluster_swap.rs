//! A WasmOperator's swap policy: idle longer than `spec.swap.afterIdle`, the operator is
//! swapped out (phase Swapped, a SwappedOut Event); work brings it back (a SwappedIn Event).
//! Each swap is one Event, however much shorter than the status interval it is.
mod cluster_support;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use serde_json::json;
use tokio::sync::broadcast;
use wasm_operator::cluster::{operator_name, ControllerSettings};
use wasm_operator::operator::{ManagerConfig, OperatorState, StateChange, SwapConfig};
use wasm_operator_test_support::{control_plane, guest_module, test_namespace, wait_for};

use cluster_support::*;

/// A host with swap enabled, for WasmOperators whose module is the empty guest at path
/// `empty.wasm`.
struct SwappingHost {
    host: InProcessHost,
    _modules: tempfile::TempDir,
    _state: tempfile::TempDir,
}

impl SwappingHost {
    async fn start(controller: ControllerSettings) -> SwappingHost {
        let modules = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        std::fs::copy(
            guest_module("test-guest-empty"),
            modules.path().join("empty.wasm"),
        )
        .unwrap();
        let manager_config = ManagerConfig {
            swap: SwapConfig {
                state_dir: Some(state.path().to_path_buf()),
                ..SwapConfig::default()
            },
            ..ManagerConfig::default()
        };
        let host = InProcessHost::start_with_controller(
            controller,
            None,
            Some(modules.path().to_path_buf()),
            manager_config,
        )
        .await;
        SwappingHost {
            host,
            _modules: modules,
            _state: state,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_operator_is_swapped_out_and_back_in_with_events() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-swap").await;
    let ns = namespace.name.as_str();
    // The empty guest watches ConfigMaps in all namespaces: its account must be allowed to.
    grant_reads_everywhere(&client, ns, "default", EMPTY_GUEST_READS).await;
    let swapping = SwappingHost::start(controller_settings(ns, "test-host")).await;
    create_wasm_operator(
        &client,
        ns,
        "sleepy",
        json!({"module": {"path": "empty.wasm"}, "swap": {"afterIdle": "1s"}}),
    )
    .await;

    wait_for_wasm_operator(&client, ns, "sleepy", "phase Swapped", |object| {
        phase(object) == "Swapped"
    })
    .await;
    wait_for_event(&client, ns, "sleepy", "SwappedOut").await;

    wake_up(&client, ns).await;
    wait_for_event(&client, ns, "sleepy", "SwappedIn").await;
    swapping.host.stop().await;
}

/// Gives the empty guest work, which restores it if it is swapped out: it watches ConfigMaps,
/// and this creates one in `namespace`.
async fn wake_up(client: &kube::Client, namespace: &str) {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("wake-up".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();
}

/// Waits for the next state operator `operator` enters.
async fn next_state(
    changes: &mut broadcast::Receiver<StateChange>,
    operator: &str,
) -> OperatorState {
    tokio::time::timeout(PROMPTLY, async {
        loop {
            let change = changes.recv().await.expect("the manager's state changes");
            if change.operator == operator {
                return change.state;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("operator {operator} did not change state within {PROMPTLY:?}"))
}

/// Waits until operator `operator` is swapped out.
async fn until_swapped(changes: &mut broadcast::Receiver<StateChange>, operator: &str) {
    while next_state(changes, operator).await != OperatorState::Swapped {}
}

/// How many times an operator was swapped out and back in, as the manager tells it.
#[derive(Clone, Default)]
struct SwapCounts {
    outs: Arc<AtomicI32>,
    ins: Arc<AtomicI32>,
}

impl SwapCounts {
    /// Counts the swaps of `operator` from now on, in the background.
    fn follow(mut changes: broadcast::Receiver<StateChange>, operator: String) -> SwapCounts {
        let counts = SwapCounts::default();
        let (outs, ins) = (counts.outs.clone(), counts.ins.clone());
        tokio::spawn(async move {
            let mut swapped = false;
            while let Ok(change) = changes.recv().await {
                if change.operator != operator {
                    continue;
                }
                let now_swapped = change.state == OperatorState::Swapped;
                match (swapped, now_swapped) {
                    (false, true) => outs.fetch_add(1, Ordering::SeqCst),
                    (true, false) => ins.fetch_add(1, Ordering::SeqCst),
                    _ => 0,
                };
                swapped = now_swapped;
            }
        });
        counts
    }

    fn get(&self) -> (i32, i32) {
        (
            self.outs.load(Ordering::SeqCst),
            self.ins.load(Ordering::SeqCst),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_shorter_than_the_status_interval_are_each_reported() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-quick-swap").await;
    let ns = namespace.name.as_str();
    // The empty guest watches ConfigMaps in all namespaces: its account must be allowed to.
    grant_reads_everywhere(&client, ns, "default", EMPTY_GUEST_READS).await;
    // Statuses are refreshed much later than the swaps below happen: only the stream of state
    // changes can report them in time.
    let status_interval = Duration::from_secs(60);
    let started = Instant::now();
    let swapping = SwappingHost::start(ControllerSettings {
        status_interval,
        ..controller_settings(ns, "test-host")
    })
    .await;
    let host = &swapping.host;
    let operator = operator_name(ns, "quick");
    let mut changes = host.manager.state_changes();
    let swaps = SwapCounts::follow(host.manager.state_changes(), operator.clone());
    create_wasm_operator(
        &client,
        ns,
        "quick",
        json!({"module": {"path": "empty.wasm"}, "swap": {"afterIdle": "1s"}}),
    )
    .await;

    // Out, in, and out again once idle.
    until_swapped(&mut changes, &operator).await;
    wake_up(&client, ns).await;
    assert_ne!(
        next_state(&mut changes, &operator).await,
        OperatorState::Swapped
    );
    until_swapped(&mut changes, &operator).await;

    // Each swap is one Event, well before the first status refresh. Other tests' objects may
    // wake the operator too, so the Events are compared with the swaps counted before and
    // after reading them.
    let reported = Duration::from_secs(10);
    assert!(
        started.elapsed() + reported < status_interval,
        "the swaps took too long ({:?}) to tell Events from status refreshes",
        started.elapsed()
    );
    wait_for("one Event per swap out and per swap in", reported, || {
        let (client, swaps) = (client.clone(), swaps.clone());
        async move {
            let (outs_before, ins_before) = swaps.get();
            let outs = event_count(&client, ns, "quick", "SwappedOut").await;
            let ins = event_count(&client, ns, "quick", "SwappedIn").await;
            let (outs_after, ins_after) = swaps.get();
            (outs_before >= 2
                && ins_before >= 1
                && (outs_before..=outs_after).contains(&outs)
                && (ins_before..=ins_after).contains(&ins))
            .then_some(())
        }
    })
    .await;
    swapping.host.stop().await;
}

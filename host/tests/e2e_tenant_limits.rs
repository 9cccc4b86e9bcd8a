//! Hostile operators against the real host and API server: what one tenant's module can make
//! the host do is bounded per operator. A Registration with too many watches or an oversized
//! selector is refused naming the limit; a requeue storm runs at the documented rate; a logging
//! loop emits a bounded number of truncated lines; an init that fails is retried with backoff
//! until it succeeds; a swap-out the memory budget asked for that fails is retried later.
mod e2e_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use wasm_operator::metrics::sample_value;
use wasm_operator::operator::{
    ManagerConfig, OperatorError, OperatorState, RegistrationLimits, SwapConfig,
};
use wasm_operator_test_support::{test_namespace, wait_for};

use e2e_support::{guest, spec, TestHost, PROMPTLY};

async fn create_config_map(client: &kube::Client, namespace: &str, name: &str, label: &str) {
    let config_map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"tenant-test": label}},
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();
}

fn for_config_maps(namespace: &str, label: &str) -> Value {
    json!({"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace,
                   "labelSelector": format!("tenant-test={label}")}})
}

fn failed_reason(host: &TestHost, name: &str) -> String {
    match host.manager.state(name) {
        Some(OperatorState::Failed { reason }) => reason,
        other => panic!("expected {name} Failed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_with_too_many_watches_is_refused_naming_the_limit() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "watches-limit").await;
    let mut registration = for_config_maps(&namespace.name, "many");
    let owns = vec![json!({"apiVersion": "v1", "kind": "Secret"}); 16];
    registration["owns"] = json!(owns);
    let error = host
        .manager
        .load(spec(
            "greedy",
            guest("behaviours"),
            json!({"registration": registration}),
        ))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, OperatorError::Start { .. }), "{message}");
    assert!(
        message.contains("17 watches") && message.contains("at most 16"),
        "{message}"
    );
    let reason = failed_reason(&host, "greedy");
    assert!(reason.contains("at most 16"), "{reason}");
    assert_eq!(
        host.manager.watches().open_watches(),
        0,
        "nothing was subscribed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_label_selector_is_refused_naming_the_limit() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "selector-limit").await;
    let selector = (0..200)
        .map(|index| format!("key{index}=value{index}"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(selector.len() > 1024);
    let registration = json!({"for": {"apiVersion": "v1", "kind": "ConfigMap",
        "namespace": namespace.name, "labelSelector": selector}});
    let error = host
        .manager
        .load(spec(
            "wordy",
            guest("behaviours"),
            json!({"registration": registration}),
        ))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("label selector") && message.contains("at most 1024 bytes"),
        "{message}"
    );
    assert!(failed_reason(&host, "wordy").contains("at most 1024 bytes"));
    assert_eq!(host.manager.watches().open_watches(), 0);
}

/// Reconcile starts of `operator` within `[from, to)`.
fn reconciles_between(host: &TestHost, operator: &str, from: Instant, to: Instant) -> usize {
    host.reconciles
        .of(operator)
        .iter()
        .filter(|record| record.started_at >= from && record.started_at < to)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeue_storm_is_held_to_the_documented_rate() {
    let limits = RegistrationLimits::default();
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "requeue-storm").await;
    let ns = namespace.name.as_str();
    // Every reconcile asks to run again after 0 ms, for every object: unbounded, this is a
    // busy loop of the host around the guest.
    let objects = 30;
    host.manager
        .load(spec(
            "storm",
            guest("behaviours"),
            json!({"registration": for_config_maps(ns, "storm"), "requeueAfterMs": 0}),
        ))
        .await
        .unwrap();
    // A single object asking for 0 ms is held to the minimum interval.
    host.manager
        .load(spec(
            "spinner",
            guest("behaviours"),
            json!({"registration": for_config_maps(ns, "spinner"), "requeueAfterMs": 0}),
        ))
        .await
        .unwrap();
    create_config_map(&host.client, ns, "spin", "spinner").await;
    for index in 0..objects {
        create_config_map(&host.client, ns, &format!("storm-{index}"), "storm").await;
    }

    // Past the burst (50 tokens at 20/s), measure a 4 s window of the steady state.
    let first = wait_for("the storm's first reconcile", PROMPTLY, || async {
        host.reconciles
            .of("storm")
            .first()
            .map(|record| record.started_at)
    })
    .await;
    let window_start = first + Duration::from_secs(4);
    let window = Duration::from_secs(4);
    let window_end = window_start + window;
    wait_for("the measuring window to pass", PROMPTLY, || async {
        host.reconciles
            .of("storm")
            .last()
            .is_some_and(|last| last.started_at >= window_end)
            .then_some(())
    })
    .await;
    let counted = reconciles_between(&host, "storm", window_start, window_end);
    let rate = limits.requeue_rate.per_second;
    let allowed = (rate * window.as_secs_f64() * 1.5) as usize + 5;
    eprintln!(
        "requeue storm: {counted} reconciles of {objects} objects in {window:?} (rate limit {rate}/s, allowed {allowed})"
    );
    assert!(
        counted <= allowed,
        "{counted} reconciles in {window:?} exceed the rate limit of {rate}/s"
    );
    assert!(counted >= 5, "the operator still makes progress: {counted}");

    let spins = host.reconciles.of_key("spinner", &format!("{ns}/spin"));
    assert!(spins.len() >= 3, "{}", spins.len());
    for pair in spins.windows(2) {
        let timer_started = pair[0].started_at + pair[0].duration;
        let gap = pair[1].started_at.duration_since(timer_started);
        assert!(
            gap >= limits.min_requeue_after - Duration::from_millis(5),
            "requeueAfterMs 0 ran again after {gap:?}, the minimum is {:?}",
            limits.min_requeue_after
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_init_is_retried_with_backoff_until_it_succeeds() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "init-retry").await;
    let ns = namespace.name.as_str();
    // init fails while the ConfigMap "gate" does not exist. Each retry is a fresh instance,
    // so the guest can only learn that the gate opened from the API server.
    let gate = json!({"verb": "get", "apiVersion": "v1", "kind": "ConfigMap",
                      "namespace": ns, "name": "gate"});
    let error = host
        .manager
        .load(spec(
            "patient",
            guest("behaviours"),
            json!({"onInit": "gate", "initGate": gate,
                   "registration": for_config_maps(ns, "patient")}),
        ))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("init gate is closed"), "{error}");

    // Retried, with the error in the state meanwhile.
    wait_for("a third init attempt", PROMPTLY, || async {
        match host.manager.state("patient") {
            Some(OperatorState::Failed { reason })
                if reason.contains("attempt 3") && reason.contains("init gate is closed") =>
            {
                Some(())
            }
            _ => None,
        }
    })
    .await;

    // Open the gate: the next retry starts the operator, which then works.
    create_config_map(&host.client, ns, "gate", "not-watched").await;
    wait_for("the operator to start", PROMPTLY, || async {
        matches!(host.manager.state("patient"), Some(OperatorState::Idle)).then_some(())
    })
    .await;
    create_config_map(&host.client, ns, "work", "patient").await;
    wait_for("a reconcile after the late start", PROMPTLY, || async {
        (!host
            .reconciles
            .of_key("patient", &format!("{ns}/work"))
            .is_empty())
        .then_some(())
    })
    .await;
    host.manager.unload("patient").await.unwrap();
}

/// Counts the guest log lines the host emitted per operator, and the longest one.
#[derive(Clone, Default)]
struct GuestLines(Arc<Mutex<HashMap<String, (usize, usize)>>>);

impl GuestLines {
    fn of(&self, operator: &str) -> (usize, usize) {
        self.0
            .lock()
            .unwrap()
            .get(operator)
            .copied()
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct EventFields {
    operator: Option<String>,
    message_bytes: usize,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "operator" {
            self.operator = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message_bytes = format!("{value:?}").len(),
            "operator" => self.operator = Some(format!("{value:?}").trim_matches('"').to_string()),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for GuestLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let target = event.metadata().target();
        // The `log` host call and the guest's stdout/stderr; not the host's own warnings.
        if target != "operator" && target != "wasm_operator::guest" {
            return;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        if let Some(operator) = fields.operator {
            let mut lines = self.0.lock().unwrap();
            let entry = lines.entry(operator).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(fields.message_bytes);
        }
    }
}

fn guest_lines() -> GuestLines {
    static LINES: OnceLock<GuestLines> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = GuestLines::default();
            let subscriber = tracing_subscriber::registry().with(lines.clone());
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other subscriber in this test binary");
            lines
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logging_loop_emits_a_bounded_number_of_truncated_lines() {
    let lines = guest_lines();
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "log-flood").await;
    let ns = namespace.name.as_str();
    let per_source = 20_000u64;
    host.manager
        .load(spec(
            "chatty",
            guest("behaviours"),
            json!({"registration": for_config_maps(ns, "chatty"), "onReconcile": "logFlood",
                   "logLines": per_source}),
        ))
        .await
        .unwrap();
    host.manager
        .load(spec(
            "calm",
            guest("behaviours"),
            json!({"registration": for_config_maps(ns, "calm")}),
        ))
        .await
        .unwrap();
    let started = Instant::now();
    create_config_map(&host.client, ns, "flood", "chatty").await;
    let flood = wait_for("the flood reconcile to finish", PROMPTLY, || async {
        host.reconciles.of("chatty").first().cloned()
    })
    .await;
    // The neighbour is served while (or right after) the flood runs.
    create_config_map(&host.client, ns, "quiet", "calm").await;
    wait_for("the neighbour's reconcile", PROMPTLY, || async {
        (!host.reconciles.of("calm").is_empty()).then_some(())
    })
    .await;
    let elapsed = started.elapsed();

    let attempted = 2 * per_source + 3;
    let (emitted, longest) = lines.of("chatty");
    // burst + rate × elapsed, with slack for the summary timing.
    let allowed = 200 + (50.0 * elapsed.as_secs_f64()) as usize + 20;
    let dropped = sample_value(
        &host.metrics.encode(),
        "wasm_operator_guest_log_lines_dropped_total",
        "operator=\"chatty\"",
    )
    .unwrap_or(0.0) as u64;
    eprintln!(
        "log flood: {attempted} lines attempted, {emitted} emitted, {dropped} dropped, longest {longest} bytes, \
         reconcile took {:?}, {elapsed:?} in all",
        flood.duration
    );
    assert!(
        emitted <= allowed,
        "{emitted} lines emitted in {elapsed:?}, allowed {allowed}"
    );
    assert!(emitted >= 100, "the first lines do get through: {emitted}");
    assert!(
        dropped >= attempted - emitted as u64 - 5,
        "dropped lines are counted: {dropped}"
    );
    assert!(
        (4000..=4096 + 64).contains(&longest),
        "the 20 KiB lines are cut to 4 KiB: {longest} bytes"
    );
    assert!(flood.duration < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_budget_swap_out_is_retried_once_it_can_succeed() {
    // The state directory cannot be created at first (its parent is a file), so the swap-out the
    // memory budget asks for fails. Once the directory can be made, the operator must be asked
    // again and swapped out: before, it was never asked again and counted as gone.
    let base = tempfile::tempdir().unwrap();
    let blocker = base.path().join("blocked");
    std::fs::write(
        &blocker,
        b"a file where the state directory's parent should be",
    )
    .unwrap();
    let state_dir = blocker.join("state");
    let host = TestHost::start_with(ManagerConfig {
        swap: SwapConfig {
            state_dir: Some(state_dir.clone()),
            swap_after: None,
            memory_budget: Some(1),
            pre_wake: None,
            ..SwapConfig::default()
        },
        ..ManagerConfig::default()
    })
    .await;
    let namespace = test_namespace(&host.client, "swap-retry").await;
    let ns = namespace.name.as_str();
    host.manager
        .load(spec(
            "hoarder",
            guest("behaviours"),
            json!({"registration": for_config_maps(ns, "hoarder")}),
        ))
        .await
        .unwrap();
    let failures = || {
        sample_value(
            &host.metrics.encode(),
            "wasm_operator_swap_failures_total",
            "operator=\"hoarder\",kind=\"io\"",
        )
        .unwrap_or(0.0)
    };
    wait_for("the first failed swap-out", PROMPTLY, || async {
        (failures() >= 1.0).then_some(())
    })
    .await;
    assert!(matches!(
        host.manager.state("hoarder"),
        Some(OperatorState::Idle)
    ));

    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    // Each event makes the operator work and go idle again, which re-checks the budget.
    let config_maps = Api::<ConfigMap>::namespaced(host.client.clone(), ns);
    create_config_map(&host.client, ns, "poke", "hoarder").await;
    let mut pokes = 0u32;
    wait_for("the operator to be swapped out", PROMPTLY, || {
        pokes += 1;
        let patch = json!({"data": {"poke": pokes.to_string()}});
        let config_maps = config_maps.clone();
        let host = &host;
        async move {
            if matches!(host.manager.state("hoarder"), Some(OperatorState::Swapped)) {
                return Some(());
            }
            config_maps
                .patch("poke", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
            None
        }
    })
    .await;
    let total = failures();
    eprintln!("swap-out failures before the directory could be made: {total}");
    assert!(
        total <= 10.0,
        "a failing swap-out is retried with backoff, not in a loop: {total}"
    );
}

//! Calls into a real Rust operator (the `test-guest-behaviours` guest, built from source): init,
//! reconcile, guest errors, host calls, and the failures the runtime must contain (runaway loops,
//! traps, memory exhaustion, malformed host calls) without affecting other instances.

mod runtime_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use wasm_operator::runtime::{CallError, InstanceLimits};
use wasm_operator_abi::{HostError, HostResponse, KubeRequest, Registration, WatchSpec};

use runtime_support::*;

#[tokio::test]
async fn init_returns_the_registration() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    assert!(
        module.digest().starts_with("sha256:") && module.digest().len() == 7 + 64,
        "{}",
        module.digest()
    );

    let mut instance = module
        .instantiate("webapp", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    let registration = json!({
        "for": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp", "predicates": ["generationChanged"]},
        "owns": [{"apiVersion": "apps/v1", "kind": "Deployment"}]
    });
    let returned = instance
        .init(&init_input(
            "webapp",
            json!({ "registration": registration.clone() }),
        ))
        .await
        .unwrap();
    assert_eq!(
        returned,
        serde_json::from_value::<Registration>(registration).unwrap()
    );

    let mut defaulted = module
        .instantiate("plain", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    let returned = defaulted
        .init(&init_input("plain", json!({})))
        .await
        .unwrap();
    assert_eq!(
        returned,
        Registration::new(WatchSpec::new("v1", "ConfigMap"))
    );
}

#[tokio::test]
async fn reconcile_succeeds_and_guest_state_persists_between_calls() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let services = FakeServices::new();
    let config = json!({ "requeueAfterMs": 30000 });
    let mut instance = behaviours_instance(
        &module,
        "webapp",
        config,
        limits(DEFAULT_DEADLINE),
        services.clone(),
    )
    .await;

    for _ in 0..3 {
        let result = instance.reconcile(&reconcile_request("web")).await.unwrap();
        assert_eq!(result.requeue_after_ms, Some(30000));
    }
    assert_eq!(
        services.log_messages(),
        [
            "reconcile default/web count=1",
            "reconcile default/web count=2",
            "reconcile default/web count=3"
        ]
    );
    assert!(
        instance.memory_bytes() >= 64 * 1024,
        "memory_bytes = {}",
        instance.memory_bytes()
    );
}

#[tokio::test]
async fn guest_error_is_reported_and_the_instance_stays_usable() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let services = FakeServices::new();
    let config = json!({ "onReconcile": "error" });
    let mut instance = behaviours_instance(
        &module,
        "failing",
        config,
        limits(DEFAULT_DEADLINE),
        services.clone(),
    )
    .await;

    for _ in 0..2 {
        match instance.reconcile(&reconcile_request("web")).await {
            Err(error @ CallError::Guest(_)) => {
                assert!(!error.instance_unusable());
                assert!(
                    error
                        .to_string()
                        .contains("reconcile failed because the config asked it to"),
                    "{error}"
                );
            }
            other => panic!("expected a guest error, got {other:?}"),
        }
    }
    assert_eq!(
        services.log_messages().len(),
        2,
        "both calls reached the guest"
    );
}

#[tokio::test]
async fn init_error_is_a_guest_error() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let mut instance = module
        .instantiate("failing", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    let error = instance
        .init(&init_input("failing", json!({ "onInit": "error" })))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CallError::Guest(guest) if guest.message == "init failed because the config asked it to"),
        "{error:?}"
    );
}

#[tokio::test]
async fn runaway_loop_stops_at_the_deadline() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let deadline = Duration::from_millis(300);
    let mut instance = behaviours_instance(
        &module,
        "spinner",
        json!({ "onReconcile": "loop" }),
        limits(deadline),
        FakeServices::new(),
    )
    .await;

    let started = Instant::now();
    let error = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error, CallError::DeadlineExceeded(deadline));
    assert!(error.instance_unusable());
    assert!(
        error.to_string().contains("call deadline of 300 ms"),
        "{error}"
    );
    assert!(elapsed >= deadline, "stopped early, after {elapsed:?}");
    assert!(
        elapsed < deadline + Duration::from_secs(5),
        "stopped late, after {elapsed:?}"
    );

    let started = Instant::now();
    let again = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    assert_eq!(again, error, "an unusable instance repeats its failure");
    assert!(
        started.elapsed() < deadline,
        "without entering the guest again"
    );
}

#[tokio::test]
async fn init_loop_stops_at_the_deadline() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let deadline = Duration::from_millis(200);
    let mut instance = module
        .instantiate("spinner", limits(deadline), FakeServices::new())
        .await
        .unwrap();
    let error = instance
        .init(&init_input("spinner", json!({ "onInit": "loop" })))
        .await
        .unwrap_err();
    assert_eq!(error, CallError::DeadlineExceeded(deadline));
}

#[tokio::test]
async fn host_call_that_never_answers_stops_at_the_deadline() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let deadline = Duration::from_millis(300);
    let services = FakeServices::answering(Answer::Hang, Answer::Hang);
    let config = json!({ "onReconcile": "http", "url": "http://127.0.0.1:9/" });
    let mut instance = behaviours_instance(
        &module,
        "waiter",
        config,
        limits(deadline),
        services.clone(),
    )
    .await;

    let started = Instant::now();
    let error = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    assert_eq!(error, CallError::DeadlineExceeded(deadline));
    assert!(
        started.elapsed() < deadline + Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(services.http_requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn trap_is_reported_with_its_location() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let mut instance = behaviours_instance(
        &module,
        "trapper",
        json!({ "onReconcile": "trap" }),
        limits(DEFAULT_DEADLINE),
        FakeServices::new(),
    )
    .await;
    match instance.reconcile(&reconcile_request("web")).await {
        Err(error @ CallError::Trap(_)) => {
            assert!(error.instance_unusable());
            let message = error.to_string();
            assert!(message.contains("unreachable"), "{message}");
            assert!(
                message.contains("wasm_operator_reconcile"),
                "the backtrace summary names the export: {message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn growing_memory_past_the_cap_is_memory_limit_exceeded() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let cap = 8 << 20;
    let limits = InstanceLimits {
        max_memory_bytes: cap,
        call_deadline: DEFAULT_DEADLINE,
    };
    let mut instance = behaviours_instance(
        &module,
        "hoarder",
        json!({ "onReconcile": "growMemory" }),
        limits,
        FakeServices::new(),
    )
    .await;
    let error = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    assert_eq!(error, CallError::MemoryLimitExceeded { limit: cap });
    assert!(
        error.to_string().contains("memory limit of 8388608 bytes"),
        "{error}"
    );
    assert!(
        instance.memory_bytes() <= cap,
        "memory grew to {} bytes",
        instance.memory_bytes()
    );
    assert!(
        instance.memory_bytes() > cap / 2,
        "the guest did grow its memory: {} bytes",
        instance.memory_bytes()
    );
}

#[tokio::test]
async fn garbage_json_to_kube_request_is_an_abi_violation() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let services = FakeServices::new();
    let mut instance = behaviours_instance(
        &module,
        "garbage",
        json!({ "onReconcile": "kubeGarbage" }),
        limits(DEFAULT_DEADLINE),
        services.clone(),
    )
    .await;
    match instance.reconcile(&reconcile_request("web")).await {
        Err(CallError::AbiViolation(message)) => {
            assert!(message.contains("`kube_request`"), "{message}");
            assert!(message.contains("not a valid KubeRequest"), "{message}");
            assert!(
                message.contains("{this is not json"),
                "the message quotes the bytes: {message}"
            );
        }
        other => panic!("expected an ABI violation, got {other:?}"),
    }
    assert!(
        services.kube_requests.lock().unwrap().is_empty(),
        "nothing reached the services"
    );
}

#[tokio::test]
async fn kube_request_reaches_the_services_and_the_guest_reads_the_response() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let not_found = HostResponse::Error(HostError::api_status(
        wasm_operator_abi::KubeStatus::failure(404, "NotFound", "configmaps \"x\" not found"),
    ));
    let services = FakeServices::answering(Answer::Respond(not_found.clone()), Answer::Hang);
    let request = json!({"verb": "get", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"});
    let config = json!({ "onReconcile": "kube", "kubeRequest": request.clone() });
    let mut instance = behaviours_instance(
        &module,
        "getter",
        config,
        limits(DEFAULT_DEADLINE),
        services.clone(),
    )
    .await;

    instance.reconcile(&reconcile_request("web")).await.unwrap();
    assert_eq!(
        *services.kube_requests.lock().unwrap(),
        [serde_json::from_value::<KubeRequest>(request).unwrap()]
    );
    assert_eq!(
        services.logged_response(),
        serde_json::to_value(&not_found).unwrap()
    );
}

#[tokio::test]
async fn http_request_reaches_the_services_and_the_guest_reads_the_response() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let answer = HostResponse::Ok(
        json!({ "status": 200, "headers": {"content-type": "text/plain"}, "body": "pong" }),
    );
    let services = FakeServices::answering(Answer::Hang, Answer::Respond(answer.clone()));
    let config = json!({ "onReconcile": "http", "url": "http://127.0.0.1:9090/ping" });
    let mut instance = behaviours_instance(
        &module,
        "pinger",
        config,
        limits(DEFAULT_DEADLINE),
        services.clone(),
    )
    .await;

    instance.reconcile(&reconcile_request("web")).await.unwrap();
    let requests = services.http_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].url.as_str()),
        ("GET", "http://127.0.0.1:9090/ping")
    );
    assert_eq!(
        services.logged_response(),
        serde_json::to_value(&answer).unwrap()
    );
}

#[tokio::test]
async fn one_instance_trapping_does_not_affect_another() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let healthy_services = FakeServices::new();
    let mut trapping = behaviours_instance(
        &module,
        "trapper",
        json!({ "onReconcile": "trap" }),
        limits(DEFAULT_DEADLINE),
        FakeServices::new(),
    )
    .await;
    let mut healthy = behaviours_instance(
        &module,
        "healthy",
        json!({}),
        limits(DEFAULT_DEADLINE),
        healthy_services.clone(),
    )
    .await;

    healthy.reconcile(&reconcile_request("a")).await.unwrap();
    assert!(matches!(
        trapping.reconcile(&reconcile_request("b")).await,
        Err(CallError::Trap(_))
    ));
    healthy.reconcile(&reconcile_request("a")).await.unwrap();
    assert_eq!(
        healthy_services.log_messages(),
        ["reconcile default/a count=1", "reconcile default/a count=2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_instance_does_not_stall_others_on_other_workers() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let spin_deadline = Duration::from_secs(3);
    let mut spinner = behaviours_instance(
        &module,
        "spinner",
        json!({ "onReconcile": "loop" }),
        limits(spin_deadline),
        FakeServices::new(),
    )
    .await;
    let mut healthy = behaviours_instance(
        &module,
        "healthy",
        json!({}),
        limits(DEFAULT_DEADLINE),
        FakeServices::new(),
    )
    .await;

    let started = Instant::now();
    let spinning = tokio::spawn(async move { spinner.reconcile(&reconcile_request("spin")).await });
    healthy.reconcile(&reconcile_request("ok")).await.unwrap();
    let healthy_done = started.elapsed();
    assert_eq!(
        spinning.await.unwrap().unwrap_err(),
        CallError::DeadlineExceeded(spin_deadline)
    );
    assert!(
        healthy_done < spin_deadline,
        "the healthy call waited for the spinner: {healthy_done:?}"
    );
}

/// Captures `wasm_operator::guest` events as (operator, stream, message).
#[derive(Clone, Default)]
struct GuestOutputCapture(Arc<Mutex<Vec<(String, String, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GuestOutputCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "wasm_operator::guest" {
            return;
        }
        #[derive(Default)]
        struct Fields(String, String, String);
        impl Visit for Fields {
            fn record_str(&mut self, field: &Field, value: &str) {
                match field.name() {
                    "operator" => self.0 = value.to_owned(),
                    "stream" => self.1 = value.to_owned(),
                    _ => {}
                }
            }
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.2 = format!("{value:?}");
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push((fields.0, fields.1, fields.2));
    }
}

#[tokio::test]
async fn guest_stdout_and_stderr_become_tracing_events_per_line() {
    let capture = GuestOutputCapture::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let mut instance = behaviours_instance(
        &module,
        "printer",
        json!({ "onReconcile": "stdout" }),
        limits(DEFAULT_DEADLINE),
        FakeServices::new(),
    )
    .await;
    instance.reconcile(&reconcile_request("web")).await.unwrap();

    let events = capture.0.lock().unwrap().clone();
    let expected =
        |stream: &str, message: &str| ("printer".to_owned(), stream.to_owned(), message.to_owned());
    assert!(
        events.contains(&expected("stdout", "stdout line one from web")),
        "{events:?}"
    );
    assert!(
        events.contains(&expected("stderr", "stderr line from web")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_call_cancelled_midway_leaves_the_instance_unusable() {
    let test = test_runtime();
    let module = load_behaviours(&test.runtime).await;
    let services = FakeServices::answering(Answer::Hang, Answer::Hang);
    let config = json!({ "onReconcile": "http", "url": "http://127.0.0.1:9/" });
    let mut instance = behaviours_instance(
        &module,
        "cancelled",
        config,
        limits(DEFAULT_DEADLINE),
        services.clone(),
    )
    .await;

    // One poll runs the guest up to its host call, which never answers; dropping the future
    // then abandons the guest midway.
    use futures::FutureExt;
    assert!(instance
        .reconcile(&reconcile_request("web"))
        .now_or_never()
        .is_none());
    assert_eq!(
        services.http_requests.lock().unwrap().len(),
        1,
        "the guest was inside its host call"
    );

    let error = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CallError::Trap(message) if message.contains("cancelled")),
        "{error:?}"
    );
    assert!(error.instance_unusable());
    assert_eq!(
        services.http_requests.lock().unwrap().len(),
        1,
        "the guest was not entered again"
    );
}

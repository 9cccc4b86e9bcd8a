//! Hostile guests against the real runtime (modules in WAT, so each one does exactly one hostile
//! thing): the largest ABI payloads of the densest shape, payloads one byte over the limit, a
//! WASI sleep of an hour, and a module importing a capability its operator was not granted.
//! The spinning-guest attack is in e2e_hostile_guests.rs, against the real host binary.

mod runtime_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::json;
use wasm_operator::runtime::{
    granted_capabilities, CallError, HostServices, LoadError, LoadedModule, OperatorInstance,
};
use wasm_operator_abi::limits::{
    MAX_HTTP_REQUEST_BYTES, MAX_KUBE_REQUEST_BYTES, MAX_LOG_RECORD_BYTES, MAX_RESULT_BYTES,
};
use wasm_operator_abi::{HostResponse, HttpRequest, KubeRequest, LogRecord};

use runtime_support::*;

/// Where a payload guest builds its payload: page 1, clear of the data below it.
const PAYLOAD_AT: usize = 65536;

/// A JSON payload of exactly `len` bytes: `prefix`, then `0,` repeated, then `suffix` (which
/// starts with the last `0`). `[0,0,0,...]` is the densest JSON there is: two bytes per value.
/// Spaces pad the prefix so the length comes out exact.
struct Payload {
    prefix: String,
    pairs: usize,
    suffix: &'static str,
}

impl Payload {
    fn of_len(prefix: &str, suffix: &'static str, len: usize) -> Payload {
        let fixed = prefix.len() + suffix.len();
        assert!(len > fixed, "{len} bytes cannot hold the payload's frame");
        let pad = (len - fixed) % 2;
        Payload {
            prefix: format!("{prefix}{}", " ".repeat(pad)),
            pairs: (len - fixed - pad) / 2,
            suffix,
        }
    }

    fn len(&self) -> usize {
        self.prefix.len() + 2 * self.pairs + self.suffix.len()
    }

    fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.prefix.clone().into_bytes();
        bytes.extend("0,".repeat(self.pairs).bytes());
        bytes.extend(self.suffix.bytes());
        bytes
    }
}

/// The densest payload of `len` bytes for `import`, a valid message of its type.
fn densest(import: &str, len: usize) -> Payload {
    match import {
        "kube_request" => Payload::of_len(
            r#"{"verb":"create","apiVersion":"v1","kind":"ConfigMap","namespace":"x","body":["#,
            "0]}",
            len,
        ),
        "http_request" => Payload::of_len(
            r#"{"method":"POST","url":"http://127.0.0.1:9/","body":""#,
            "0\"}",
            len,
        ),
        "log" => Payload::of_len(
            r#"{"level":"info","message":"dense","fields":{"values":["#,
            "0]}}",
            len,
        ),
        "result_write" => Payload::of_len(r#"{"requeue":false,"values":["#, "0]}", len),
        other => panic!("no payload for {other}"),
    }
}

/// An operator whose reconcile writes `payload` into its memory, then passes `(ptr, len)` of it
/// to `import` (or, with `send` set, that range instead), and returns an empty ReconcileResult.
fn payload_guest(import: &str, payload: &Payload, send: Option<(usize, usize)>) -> Vec<u8> {
    let (ptr, len) = send.unwrap_or((PAYLOAD_AT, payload.len()));
    let pages = (PAYLOAD_AT + payload.len()).div_ceil(65536) + 1;
    let fill_at = PAYLOAD_AT + payload.prefix.len();
    let suffix_at = fill_at + 2 * payload.pairs;
    let signature = if matches!(import, "kube_request" | "http_request") {
        "(param i32 i32) (result i32)"
    } else {
        "(param i32 i32)"
    };
    let call = if matches!(import, "kube_request" | "http_request") {
        format!("(drop (call $import (i32.const {ptr}) (i32.const {len})))")
    } else {
        format!("(call $import (i32.const {ptr}) (i32.const {len}))")
    };
    let import_decl = if import == "result_write" {
        String::new()
    } else {
        format!(r#"(import "wasm_operator" "{import}" (func $import {signature}))"#)
    };
    let import_ref = if import == "result_write" {
        "$result_write"
    } else {
        "$import"
    };
    let call = call.replace("$import", import_ref);
    let source = format!(
        r#"(module
  (import "wasm_operator" "result_write" (func $result_write (param i32 i32)))
  {import_decl}
  (memory (export "memory") {pages})
  (data (i32.const 0) "{registration}")
  (data (i32.const 512) "{{}}")
  (data (i32.const {PAYLOAD_AT}) "{prefix}")
  (data (i32.const {suffix_at}) "{suffix}")
  (func (export "wasm_operator_abi_v1"))
  (func (export "wasm_operator_init") (param i32) (result i32)
    (call $result_write (i32.const 0) (i32.const {registration_len}))
    (i32.const 0))
  (func (export "wasm_operator_reconcile") (param i32) (result i32)
    (local $at i32)
    (local.set $at (i32.const {fill_at}))
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $at) (i32.const {suffix_at})))
        ;; "0," little-endian
        (i32.store16 (local.get $at) (i32.const 0x2c30))
        (local.set $at (i32.add (local.get $at) (i32.const 2)))
        (br $fill)))
    (call $result_write (i32.const 512) (i32.const 2))
    {call}
    (i32.const 0))
)"#,
        registration = REGISTRATION.replace('"', "\\\""),
        registration_len = REGISTRATION.len(),
        prefix = payload.prefix.replace('"', "\\\""),
        suffix = payload.suffix.replace('"', "\\\""),
    );
    wat::parse_str(&source).unwrap_or_else(|error| panic!("payload WAT: {error}"))
}

const REGISTRATION: &str = r#"{"for":{"apiVersion":"v1","kind":"ConfigMap"}}"#;

async fn instance_of(wasm: &[u8], services: Arc<dyn HostServices>) -> OperatorInstance {
    let test = test_runtime();
    let module = test.runtime.load(wasm).await.expect("the module loads");
    // The runtime (and its cache directory) may go: the module keeps what it needs.
    let mut instance = module
        .instantiate("hostile", limits(DEFAULT_DEADLINE), services)
        .await
        .expect("instantiates");
    instance
        .init(&init_input("hostile", json!({})))
        .await
        .expect("init");
    instance
}

const IMPORTS: [(&str, usize); 4] = [
    ("kube_request", MAX_KUBE_REQUEST_BYTES),
    ("http_request", MAX_HTTP_REQUEST_BYTES),
    ("log", MAX_LOG_RECORD_BYTES),
    ("result_write", MAX_RESULT_BYTES),
];

#[tokio::test]
async fn the_largest_allowed_payload_of_the_densest_shape_is_served() {
    for (import, max) in IMPORTS {
        let payload = densest(import, max);
        assert_eq!(payload.len(), max);
        let services = FakeServices::new();
        let mut instance =
            instance_of(&payload_guest(import, &payload, None), services.clone()).await;
        instance
            .reconcile(&reconcile_request("dense"))
            .await
            .unwrap_or_else(|error| panic!("{import} with {max} bytes: {error}"));
        let values = payload.pairs + 1;
        match import {
            "kube_request" => {
                let requests = services.kube_requests.lock().unwrap();
                let Some(KubeRequest::Create { body, .. }) = requests.first() else {
                    panic!("no create reached the services: {requests:?}");
                };
                assert_eq!(body.as_array().map(Vec::len), Some(values));
            }
            "http_request" => {
                let requests = services.http_requests.lock().unwrap();
                assert_eq!(
                    requests[0].body.as_ref().map(String::len),
                    Some(2 * values - 1)
                );
            }
            "log" => {
                let logs = services.logs.lock().unwrap();
                assert_eq!(
                    logs[0].fields["values"].as_array().map(Vec::len),
                    Some(values)
                );
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_payload_one_byte_over_the_limit_is_refused_before_it_is_read() {
    for (import, max) in IMPORTS {
        let payload = densest(import, max + 1);
        let services = FakeServices::new();
        let mut instance =
            instance_of(&payload_guest(import, &payload, None), services.clone()).await;
        let error = instance
            .reconcile(&reconcile_request("dense"))
            .await
            .unwrap_err();
        let expected = format!(
            "`{import}` was given {} bytes, more than the {max} bytes",
            max + 1
        );
        assert!(
            matches!(&error, CallError::AbiViolation(message) if message.contains(&expected)),
            "{import}: {error:?}"
        );
        assert!(error.to_string().contains("docs/abi.md"), "{error}");
        assert!(services.kube_requests.lock().unwrap().is_empty());
        assert!(services.http_requests.lock().unwrap().is_empty());
        assert!(services.logs.lock().unwrap().is_empty());
    }
}

/// `poll_oneoff` with one relative clock subscription of `nanos` nanoseconds, as Rust's
/// `std::thread::sleep` compiles to on wasm32-wasip1.
fn sleep_call(nanos: u64) -> String {
    format!(
        "(i64.store (i32.const 2048) (i64.const 0))
         (i32.store8 (i32.const 2056) (i32.const 0))
         (i32.store (i32.const 2064) (i32.const 1))
         (i64.store (i32.const 2072) (i64.const {nanos}))
         (i64.store (i32.const 2080) (i64.const 0))
         (i32.store16 (i32.const 2088) (i32.const 0))
         (drop (call $poll_oneoff (i32.const 2048) (i32.const 2112) (i32.const 1) (i32.const 2200)))"
    )
}

const POLL_ONEOFF: &str = r#"(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))"#;
const AN_HOUR: u64 = 3_600_000_000_000;

#[tokio::test]
async fn a_wasi_sleep_of_an_hour_ends_at_the_call_deadline() {
    let wasm = wat_operator(
        POLL_ONEOFF,
        &format!("{} (i32.const 0)", sleep_call(AN_HOUR)),
        "",
    );
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    let deadline = Duration::from_millis(1500);
    let mut instance = module
        .instantiate("sleeper", limits(deadline), FakeServices::new())
        .await
        .unwrap();
    instance
        .init(&init_input("sleeper", json!({})))
        .await
        .unwrap();
    let started = Instant::now();
    let error = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error, CallError::DeadlineExceeded(deadline));
    assert!(elapsed >= deadline, "stopped early, after {elapsed:?}");
    assert!(
        elapsed < deadline + Duration::from_secs(5),
        "took {elapsed:?}"
    );
    // Like after any deadline, the instance is not entered again.
    let started = Instant::now();
    let again = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    assert_eq!(again, error);
    assert!(started.elapsed() < deadline);
}

#[tokio::test]
async fn a_wasi_sleep_in_initialize_ends_at_the_call_deadline() {
    let wasm = wat_operator(
        POLL_ONEOFF,
        "(i32.const 0)",
        &format!("(func (export \"_initialize\") {})", sleep_call(AN_HOUR)),
    );
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    let deadline = Duration::from_millis(1000);
    let started = Instant::now();
    let error = module
        .instantiate("sleeper", limits(deadline), FakeServices::new())
        .await
        .err()
        .expect("instantiation fails");
    assert_eq!(error, CallError::DeadlineExceeded(deadline));
    assert!(started.elapsed() < deadline + Duration::from_secs(5));
}

#[tokio::test]
async fn a_huge_call_deadline_is_bounded_not_a_panic() {
    // Durations that overflow `Instant + Duration`: the runtime bounds them instead.
    let wasm = wat_operator("", "(i32.const 0)", "");
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    let mut instance = module
        .instantiate("patient", limits(Duration::MAX), FakeServices::new())
        .await
        .expect("instantiates");
    assert_eq!(
        instance.limits().call_deadline,
        wasm_operator::runtime::MAX_CALL_DEADLINE
    );
    instance
        .init(&init_input("patient", json!({})))
        .await
        .unwrap();
}

const HTTP_REQUEST: &str =
    r#"(import "wasm_operator" "http_request" (func $http_request (param i32 i32) (result i32)))"#;

#[tokio::test]
async fn a_module_importing_http_request_needs_an_http_grant() {
    let wasm = wat_operator(HTTP_REQUEST, "(i32.const 0)", "");
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    match module.check_grants("fetcher", &granted_capabilities(&[])) {
        Err(LoadError::NotGranted(message)) => {
            assert!(
                message.contains("`http_request` (capability `http`)"),
                "{message}"
            );
            assert!(
                message.contains("operator `fetcher` was not granted"),
                "{message}"
            );
            assert!(message.contains("allowHttp"), "{message}");
        }
        other => panic!("expected NotGranted, got {other:?}"),
    }
    module
        .check_grants(
            "fetcher",
            &granted_capabilities(&["http://127.0.0.1:9/".to_owned()]),
        )
        .expect("granted with an allowlist");
    // A module without http_request needs no HTTP grant.
    let plain = test
        .runtime
        .load(&wat_operator("", "(i32.const 0)", ""))
        .await
        .unwrap();
    plain
        .check_grants("plain", &granted_capabilities(&[]))
        .unwrap();
}

/// Host services that count requests and drop them at once, as the real services do once the
/// request is sent: what stays in memory is only what the runtime itself holds.
#[derive(Default)]
struct Sink {
    kube: AtomicUsize,
}

impl HostServices for Sink {
    fn kube(&self, request: KubeRequest) -> BoxFuture<'static, HostResponse> {
        drop(request);
        self.kube.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(HostResponse::Ok(json!({}))).boxed()
    }

    fn http(&self, _: HttpRequest) -> BoxFuture<'static, HostResponse> {
        futures::future::ready(HostResponse::Ok(json!({}))).boxed()
    }

    fn log(&self, _: LogRecord) {}
}

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

/// How far the process's peak RSS rose above its RSS while `work` ran, in MiB. Writing 5 to
/// clear_refs resets the peak (VmHWM) to the current RSS.
async fn peak_rise<F: std::future::Future<Output = ()>>(work: F) -> f64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");
    let before = status_kib("VmRSS:");
    work.await;
    (status_kib("VmHWM:").saturating_sub(before)) as f64 / 1024.0
}

async fn reconcile_twice_measuring_the_second(module: &LoadedModule) -> f64 {
    let sink = Arc::new(Sink::default());
    let mut instance = module
        .instantiate("measured", limits(DEFAULT_DEADLINE), sink.clone())
        .await
        .unwrap();
    instance
        .init(&init_input("measured", json!({})))
        .await
        .unwrap();
    // The first reconcile touches the guest's pages; the second shows what the host adds.
    instance
        .reconcile(&reconcile_request("warm"))
        .await
        .unwrap();
    let rise = peak_rise(async {
        instance
            .reconcile(&reconcile_request("measured"))
            .await
            .unwrap();
    })
    .await;
    assert_eq!(sink.kube.load(Ordering::SeqCst), 2);
    rise
}

/// Host peak RSS for the largest kube_request of the densest shape, against a small request
/// from the same guest and against the previous parse path (copy, then the derived
/// `Deserialize` through serde's Content tree) on the same bytes. docs/benchmarks.md has the
/// figures and this command:
/// `cargo test -p wasm-operator --test runtime_hostile_guests -- --ignored --nocapture measure`
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn measure_host_peak_rss_for_the_largest_kube_request() {
    let test = test_runtime();
    let largest = densest("kube_request", MAX_KUBE_REQUEST_BYTES);
    let small = r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","name":"x"}"#;
    // The baseline guest fills the same memory but sends a small request.
    let baseline_payload = Payload {
        prefix: format!("{small}{}", " ".repeat(largest.prefix.len() - small.len())),
        pairs: largest.pairs,
        suffix: "   ",
    };
    let baseline_wasm = payload_guest(
        "kube_request",
        &baseline_payload,
        Some((PAYLOAD_AT, small.len())),
    );
    let largest_wasm = payload_guest("kube_request", &largest, None);
    let baseline_module = test.runtime.load(&baseline_wasm).await.unwrap();
    let largest_module = test.runtime.load(&largest_wasm).await.unwrap();

    let baseline = reconcile_twice_measuring_the_second(&baseline_module).await;
    let host = reconcile_twice_measuring_the_second(&largest_module).await;
    let bytes = largest.bytes();
    let previous = peak_rise(async {
        let copy = bytes.to_vec();
        let parsed: KubeRequest = serde_json::from_slice(&copy).unwrap();
        drop(parsed);
    })
    .await;
    let direct = peak_rise(async {
        drop(KubeRequest::from_json_slice(&bytes).unwrap());
    })
    .await;
    println!(
        "payload {} bytes ([0,0,...] body, {} values)\n\
         host peak RSS rise during one reconcile: small request {baseline:.1} MiB, largest request {host:.1} MiB\n\
         parse only, same bytes: previous path (copy + derived Deserialize) {previous:.1} MiB, \
         KubeRequest::from_json_slice {direct:.1} MiB",
        largest.len(),
        largest.pairs + 1
    );
    assert!(
        host < 256.0,
        "the largest request raised peak RSS by {host:.1} MiB"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_yields_its_thread_to_other_tasks() {
    // One thread for everything: without yielding, the timer below could only fire after the
    // guest's deadline.
    let deadline = Duration::from_secs(20);
    let wasm = wat_operator("", "(loop $spin (br $spin)) (i32.const 0)", "");
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    let mut instance = module
        .instantiate("spinner", limits(deadline), FakeServices::new())
        .await
        .unwrap();
    instance
        .init(&init_input("spinner", json!({})))
        .await
        .unwrap();
    let spinning = tokio::spawn(async move {
        let outcome = instance.reconcile(&reconcile_request("spin")).await;
        (instance, outcome)
    });
    // Let the guest start spinning first.
    tokio::task::yield_now().await;
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        worst = worst.max(started.elapsed());
    }
    assert!(!spinning.is_finished(), "the guest is still spinning");
    assert!(
        worst < Duration::from_secs(2),
        "a 10 ms timer took {worst:?}"
    );
    spinning.abort();
}

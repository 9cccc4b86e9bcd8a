//! A test operator whose behaviour is chosen by its init `config`, so host tests can provoke every
//! outcome (success, guest error, runaway loop, trap, memory exhaustion, host calls) from one module.
//!
//! Config keys (all optional):
//! - `onInit`: `"ok"` (default) | `"error"` | `"trap"` | `"loop"` | `"gate"` (fails until the
//!   KubeRequest in `initGate` succeeds: a fresh instance per retry remembers nothing, so the
//!   test opens the gate through a real API object)
//! - `registration`: the Registration to return from init (default: For `v1` `ConfigMap`)
//! - `onReconcile`: `"ok"` (default) | `"error"` | `"loop"` | `"trap"` | `"growMemory"` | `"http"` |
//!   `"kube"` | `"kubeGarbage"` | `"stdout"` | `"logFlood"` (`logLines` lines through the `log` host
//!   call and as many on stdout, after one 20 KiB line of multi-byte characters on each)
//! - `url`: the URL for `"http"`; `kubeRequest`: the KubeRequest for `"kube"`
//! - `requeueAfterMs`: returned in every successful ReconcileResult
//!
//! Every reconcile first logs `reconcile <namespace>/<name> count=<n>` at info, where `n` counts
//! reconciles since init: a test can see that guest state survived between calls. Host calls log
//! their raw HostResponse at info as `response <json>`.

use std::sync::Mutex;

use serde_json::{json, Value};
use test_guest_glue::export_operator;
use wasm_operator_abi::{
    GuestError, InitInput, LogLevel, ReconcileRequest, ReconcileResult, Registration, WatchSpec,
};

/// The init config, kept for later reconciles (guest memory persists between calls).
static CONFIG: Mutex<Value> = Mutex::new(Value::Null);
/// Reconciles since init.
static RECONCILE_COUNT: Mutex<u64> = Mutex::new(0);
/// Memory kept alive by `growMemory`, so the allocator must keep growing linear memory.
static HOARD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

export_operator!(init, reconcile);

fn init(input: InitInput) -> Result<Registration, GuestError> {
    let config = input.config;
    *lock(&CONFIG) = config.clone();
    *lock(&RECONCILE_COUNT) = 0;
    match behaviour(&config, "onInit").as_str() {
        "ok" => {}
        "error" => {
            return Err(GuestError::new(
                "init failed because the config asked it to",
            ))
        }
        "trap" => trap(),
        "loop" => spin_forever(),
        "gate" => {
            let request = config.get("initGate").cloned().unwrap_or(Value::Null);
            let response = test_guest_glue::kube_raw(request.to_string().as_bytes());
            let opened = serde_json::from_slice::<Value>(&response)
                .ok()
                .is_some_and(|response| response.get("ok").is_some());
            if !opened {
                return Err(GuestError::new(format!(
                    "the init gate is closed: {}",
                    String::from_utf8_lossy(&response)
                )));
            }
        }
        other => {
            return Err(GuestError::new(format!(
                "unknown onInit behaviour {other:?}"
            )))
        }
    }
    match config.get("registration") {
        Some(registration) => serde_json::from_value(registration.clone()).map_err(|error| {
            GuestError::new(format!(
                "config.registration is not a Registration: {error}"
            ))
        }),
        None => Ok(Registration::new(WatchSpec::new("v1", "ConfigMap"))),
    }
}

fn reconcile(request: ReconcileRequest) -> Result<ReconcileResult, GuestError> {
    let count = {
        let mut count = lock(&RECONCILE_COUNT);
        *count += 1;
        *count
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    test_guest_glue::log(
        LogLevel::Info,
        &format!("reconcile {namespace}/{} count={count}", request.name),
    );

    let config = lock(&CONFIG).clone();
    match behaviour(&config, "onReconcile").as_str() {
        "ok" => {}
        "error" => {
            return Err(GuestError::new(
                "reconcile failed because the config asked it to",
            ))
        }
        "loop" => spin_forever(),
        "trap" => trap(),
        "growMemory" => grow_memory_forever(),
        "http" => {
            let url = config
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let request = json!({ "method": "GET", "url": url, "headers": {}, "body": null });
            let response = test_guest_glue::http_raw(request.to_string().as_bytes());
            log_response(&response);
        }
        "kube" => {
            let request = config.get("kubeRequest").cloned().unwrap_or(Value::Null);
            let response = test_guest_glue::kube_raw(request.to_string().as_bytes());
            log_response(&response);
        }
        "kubeGarbage" => {
            let response = test_guest_glue::kube_raw(b"{this is not json");
            log_response(&response);
        }
        "stdout" => {
            println!("stdout line one from {}", request.name);
            eprintln!("stderr line from {}", request.name);
        }
        "logFlood" => {
            let huge = "é".repeat(10 * 1024);
            test_guest_glue::log(LogLevel::Info, &huge);
            println!("{huge}");
            let lines = config
                .get("logLines")
                .and_then(Value::as_u64)
                .unwrap_or(1000);
            for line in 0..lines {
                test_guest_glue::log(LogLevel::Info, &format!("flood line {line}"));
                println!("flood stdout line {line}");
            }
        }
        other => {
            return Err(GuestError::new(format!(
                "unknown onReconcile behaviour {other:?}"
            )))
        }
    }
    Ok(ReconcileResult {
        requeue_after_ms: config.get("requeueAfterMs").and_then(Value::as_u64),
        ..ReconcileResult::default()
    })
}

fn behaviour(config: &Value, key: &str) -> String {
    config
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("ok")
        .to_owned()
}

fn log_response(response: &[u8]) {
    test_guest_glue::log(
        LogLevel::Info,
        &format!("response {}", String::from_utf8_lossy(response)),
    );
}

fn lock<T>(mutex: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    // A poisoned lock only means an earlier call trapped mid-update; the host recreates the
    // instance after a trap anyway, so carrying on is fine.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn grow_memory_forever() -> ! {
    loop {
        // Touch every page so the allocation is real, not just reserved.
        let chunk = vec![1u8; 1 << 20];
        lock(&HOARD).push(std::hint::black_box(chunk));
    }
}

//! A test operator that keeps one ConfigMap per `Widget` (group `e2e.wasm-operator.dev`).
//!
//! For each Widget `<name>` it server-side applies ConfigMap `<name>-<suffix>` whose data is the
//! Widget's `spec.data` plus `generation`, controlled by the Widget (ownerReference with
//! `controller: true`), and records `status.configMapName` / `status.observedGeneration` through
//! the status subresource (with `status.reconciles`, the count of reconciles so far). When the
//! Widget is gone it deletes the ConfigMap. It returns
//! `spec.requeueAfterMs` as its RequeueAfter. When `spec.probeUrl` is set it GETs that URL
//! through the host and records the outcome in the ConfigMap's `httpResult`
//! (`status <code>: <body>` or `error <type>: <message>`).
//!
//! Init config: `{"namespace": "...", "suffix": "config", "cachedReads": false}`. `namespace`
//! restricts every watch to one namespace (tests run side by side); `cachedReads` makes it read
//! its ConfigMap from the host's cache before applying, to exercise cached gets.
//!
//! Registration: For Widget with the generationChanged predicate (so its own status writes do
//! not wake it again), Owns ConfigMap.

use std::sync::Mutex;

use serde_json::{json, Value};
use test_guest_glue::export_operator;
use wasm_operator_abi::{
    GuestError, HostResponse, HttpRequest, InitInput, KubeRequest, LogLevel, PatchType, Predicate,
    ReconcileRequest, ReconcileResult, Registration, WatchSpec,
};

const WIDGET_API_VERSION: &str = "e2e.wasm-operator.dev/v1";

struct Settings {
    suffix: String,
    cached_reads: bool,
    operator: String,
}

static SETTINGS: Mutex<Option<Settings>> = Mutex::new(None);
/// Reconciles since init, written to `status.reconciles`: every status write differs, so a host
/// that let status writes wake the operator would make it spin.
static RECONCILES: Mutex<u64> = Mutex::new(0);

export_operator!(init, reconcile);

fn init(input: InitInput) -> Result<Registration, GuestError> {
    let config = &input.config;
    let namespace = config
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let suffix = config
        .get("suffix")
        .and_then(Value::as_str)
        .unwrap_or("config")
        .to_owned();
    let cached_reads = config
        .get("cachedReads")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    *SETTINGS.lock().unwrap_or_else(|e| e.into_inner()) = Some(Settings {
        suffix,
        cached_reads,
        operator: input.operator_name,
    });
    let mut widgets = WatchSpec::new(WIDGET_API_VERSION, "Widget");
    widgets.namespace = namespace.clone();
    widgets.predicates = vec![Predicate::GenerationChanged];
    let mut config_maps = WatchSpec::new("v1", "ConfigMap");
    config_maps.namespace = namespace;
    let mut registration = Registration::new(widgets);
    registration.owns.push(config_maps);
    Ok(registration)
}

fn reconcile(request: ReconcileRequest) -> Result<ReconcileResult, GuestError> {
    let settings = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(settings) = settings.as_ref() else {
        return Err(GuestError::new("reconcile before init"));
    };
    let namespace = request
        .namespace
        .clone()
        .ok_or_else(|| GuestError::new("Widget must be namespaced"))?;
    let config_map_name = format!("{}-{}", request.name, settings.suffix);
    let Some(widget) = request.object else {
        return delete_config_map(&namespace, &config_map_name);
    };

    if settings.cached_reads {
        // Exercises the cache path; the answer is only logged.
        let cached = test_guest_glue::kube(&KubeRequest::Get {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(namespace.clone()),
            name: config_map_name.clone(),
            cached: true,
        });
        let found = matches!(cached, HostResponse::Ok(_));
        test_guest_glue::log(
            LogLevel::Debug,
            &format!("cached get of {config_map_name}: found={found}"),
        );
    }

    let reconciles = {
        let mut count = RECONCILES.lock().unwrap_or_else(|e| e.into_inner());
        *count += 1;
        *count
    };
    let generation = widget
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let uid = widget
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut data = serde_json::Map::new();
    if let Some(spec_data) = widget.pointer("/spec/data").and_then(Value::as_object) {
        for (key, value) in spec_data {
            data.insert(
                key.clone(),
                Value::String(
                    value
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| value.to_string()),
                ),
            );
        }
    }
    data.insert("generation".into(), Value::String(generation.to_string()));
    if let Some(url) = widget.pointer("/spec/probeUrl").and_then(Value::as_str) {
        data.insert("httpResult".into(), Value::String(probe(url)));
    }
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name,
            "namespace": namespace,
            "ownerReferences": [{
                "apiVersion": WIDGET_API_VERSION,
                "kind": "Widget",
                "name": request.name,
                "uid": uid,
                "controller": true,
            }],
        },
        "data": data,
    });
    expect_ok(
        "apply the ConfigMap",
        test_guest_glue::kube(&KubeRequest::Patch {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(namespace.clone()),
            name: config_map_name.clone(),
            subresource: None,
            patch_type: PatchType::Apply,
            field_manager: Some(settings.operator.clone()),
            force: true,
            body: config_map,
        }),
    )?;
    expect_ok(
        "write the Widget status",
        test_guest_glue::kube(&KubeRequest::Patch {
            api_version: WIDGET_API_VERSION.into(),
            kind: "Widget".into(),
            namespace: Some(namespace),
            name: request.name.clone(),
            subresource: Some("status".into()),
            patch_type: PatchType::Merge,
            field_manager: None,
            force: false,
            body: json!({"status": {"configMapName": config_map_name, "observedGeneration": generation, "reconciles": reconciles}}),
        }),
    )?;
    let requeue_after_ms = widget
        .pointer("/spec/requeueAfterMs")
        .and_then(Value::as_u64);
    Ok(ReconcileResult {
        requeue_after_ms,
        ..ReconcileResult::default()
    })
}

fn probe(url: &str) -> String {
    match test_guest_glue::http(&HttpRequest::get(url)) {
        HostResponse::Ok(response) => {
            let status = response
                .get("status")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            let body = response
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default();
            format!("status {status}: {body}")
        }
        HostResponse::Error(error) => format!("error {}: {}", error.type_name(), error.message()),
    }
}

fn delete_config_map(namespace: &str, name: &str) -> Result<ReconcileResult, GuestError> {
    let response = test_guest_glue::kube(&KubeRequest::Delete {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
        propagation_policy: None,
    });
    match response {
        HostResponse::Ok(_) => Ok(ReconcileResult::default()),
        HostResponse::Error(error) if error.is_not_found() => Ok(ReconcileResult::default()),
        HostResponse::Error(error) => {
            Err(GuestError::new(format!("delete ConfigMap {name}: {error}")))
        }
    }
}

fn expect_ok(what: &str, response: HostResponse) -> Result<Value, GuestError> {
    response
        .into_result()
        .map_err(|error| GuestError::new(format!("{what}: {error}")))
}

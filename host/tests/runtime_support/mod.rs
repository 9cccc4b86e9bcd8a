//! Shared fixtures for the runtime tests: a runtime with a private cache directory, a recording
//! fake of the operator's host services, the behaviours test guest and small WAT operators.

#![allow(dead_code)] // each test file uses a different subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};
use tempfile::TempDir;
use wasm_operator::runtime::{
    HostServices, InstanceLimits, LoadedModule, OperatorInstance, Runtime, RuntimeConfig,
};
use wasm_operator_abi::{
    HostResponse, HttpRequest, InitInput, KubeRequest, LogRecord, ReconcileRequest,
};

pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A runtime whose module cache lives in a temporary directory owned by the fixture.
pub struct TestRuntime {
    pub runtime: Runtime,
    pub cache_dir: TempDir,
}

pub fn test_runtime() -> TestRuntime {
    let cache_dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache_dir.path().to_path_buf(),
        epoch_tick: EPOCH_TICK,
    })
    .expect("runtime starts");
    TestRuntime { runtime, cache_dir }
}

/// What the fake host services answer to a host call.
pub enum Answer {
    Respond(HostResponse),
    /// Never answers: the host call lasts until the call deadline.
    Hang,
}

/// Records every host call and answers with a fixed response.
pub struct FakeServices {
    pub logs: Mutex<Vec<LogRecord>>,
    pub kube_requests: Mutex<Vec<KubeRequest>>,
    pub http_requests: Mutex<Vec<HttpRequest>>,
    kube_answer: Answer,
    http_answer: Answer,
}

impl FakeServices {
    pub fn new() -> Arc<FakeServices> {
        FakeServices::answering(
            Answer::Respond(HostResponse::Ok(json!({}))),
            Answer::Respond(HostResponse::Ok(json!({}))),
        )
    }

    pub fn answering(kube_answer: Answer, http_answer: Answer) -> Arc<FakeServices> {
        Arc::new(FakeServices {
            logs: Mutex::default(),
            kube_requests: Mutex::default(),
            http_requests: Mutex::default(),
            kube_answer,
            http_answer,
        })
    }

    pub fn log_messages(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|record| record.message.clone())
            .collect()
    }

    /// The HostResponse the guest logged after its host call (it logs `response <json>`).
    pub fn logged_response(&self) -> Value {
        let messages = self.log_messages();
        let logged = messages
            .iter()
            .find_map(|message| message.strip_prefix("response "))
            .unwrap_or_else(|| panic!("the guest logged no response; its log: {messages:?}"));
        serde_json::from_str(logged).unwrap()
    }
}

fn answer(answer: &Answer) -> BoxFuture<'static, HostResponse> {
    match answer {
        Answer::Respond(response) => futures::future::ready(response.clone()).boxed(),
        Answer::Hang => futures::future::pending().boxed(),
    }
}

impl HostServices for FakeServices {
    fn kube(&self, request: KubeRequest) -> BoxFuture<'static, HostResponse> {
        self.kube_requests.lock().unwrap().push(request);
        answer(&self.kube_answer)
    }

    fn http(&self, request: HttpRequest) -> BoxFuture<'static, HostResponse> {
        self.http_requests.lock().unwrap().push(request);
        answer(&self.http_answer)
    }

    fn log(&self, record: LogRecord) {
        self.logs.lock().unwrap().push(record);
    }
}

pub fn limits(call_deadline: Duration) -> InstanceLimits {
    InstanceLimits {
        max_memory_bytes: 64 << 20,
        call_deadline,
    }
}

pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);

pub fn behaviours_wasm() -> Vec<u8> {
    std::fs::read(wasm_operator_test_support::guest_module(
        "test-guest-behaviours",
    ))
    .unwrap()
}

pub async fn load_behaviours(runtime: &Runtime) -> LoadedModule {
    runtime
        .load(&behaviours_wasm())
        .await
        .expect("the behaviours guest loads")
}

pub fn init_input(operator: &str, config: Value) -> InitInput {
    InitInput {
        abi_version: 1,
        operator_name: operator.to_owned(),
        config,
    }
}

pub fn reconcile_request(name: &str) -> ReconcileRequest {
    ReconcileRequest {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        namespace: Some("default".to_owned()),
        name: name.to_owned(),
        object: None,
        absent_reason: None,
        attempt: 0,
    }
}

/// Instantiates the behaviours guest and runs init with `config`.
pub async fn behaviours_instance(
    module: &LoadedModule,
    operator: &str,
    config: Value,
    limits: InstanceLimits,
    services: Arc<FakeServices>,
) -> OperatorInstance {
    let mut instance = module
        .instantiate(operator, limits, services)
        .await
        .expect("instantiates");
    instance
        .init(&init_input(operator, config))
        .await
        .expect("init succeeds");
    instance
}

/// A minimal ABI v1 operator in WAT. Init returns a Registration for v1 ConfigMaps; the caller
/// provides reconcile's body (param 0 = input length; must leave an i32 return code), extra
/// imports (module `wasm_operator`) and extra module fields. Memory is one page; offsets from
/// 1024 up are free for the body to use.
pub fn wat_operator(imports: &str, reconcile_body: &str, extra_fields: &str) -> Vec<u8> {
    let registration = r#"{"for":{"apiVersion":"v1","kind":"ConfigMap"}}"#;
    let escaped = registration.replace('"', "\\\"");
    let source = format!(
        r#"(module
  (import "wasm_operator" "result_write" (func $result_write (param i32 i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 0) "{escaped}")
  (func (export "wasm_operator_abi_v1"))
  (func (export "wasm_operator_init") (param i32) (result i32)
    (call $result_write (i32.const 0) (i32.const {len}))
    (i32.const 0))
  (func (export "wasm_operator_reconcile") (param $input_len i32) (result i32)
    {reconcile_body})
  {extra_fields}
)"#,
        len = registration.len()
    );
    wat::parse_str(&source)
        .unwrap_or_else(|error| panic!("test WAT does not parse: {error}\n{source}"))
}

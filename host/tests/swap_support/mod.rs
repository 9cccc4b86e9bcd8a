//! Fixtures for the swap tests: the stateful test guest, reading the state it reports, and WAT
//! operators whose globals and data segments make restore mistakes visible as traps.

#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use wasm_operator::runtime::{
    InstanceLimits, LoadedModule, OperatorInstance, RestoreMode, Runtime, SwappedInstance,
};

use crate::runtime_support::{init_input, reconcile_request, FakeServices};

pub fn stateful_wasm() -> Vec<u8> {
    std::fs::read(wasm_operator_test_support::guest_module(
        "test-guest-stateful",
    ))
    .unwrap()
}

pub async fn load_stateful(runtime: &Runtime) -> LoadedModule {
    let module = runtime
        .load(&stateful_wasm())
        .await
        .expect("the stateful guest loads");
    assert!(
        module.swappable(),
        "the stateful guest must be swappable: {:?}",
        module.swap_unsupported_reason()
    );
    module
}

/// Instantiates the stateful guest holding `state_bytes` of live state and runs init.
pub async fn stateful_instance(
    module: &LoadedModule,
    operator: &str,
    state_bytes: u64,
    limits: InstanceLimits,
    services: Arc<FakeServices>,
) -> OperatorInstance {
    let mut instance = module
        .instantiate(operator, limits, services)
        .await
        .expect("instantiates");
    instance
        .init(&init_input(
            operator,
            json!({ "stateBytes": state_bytes, "seed": 7 }),
        ))
        .await
        .expect("init succeeds");
    instance
}

/// The stateful guest holding 1 MiB of live state, with the default limits: what most swap
/// tests start from.
pub async fn mib_instance(
    module: &LoadedModule,
    operator: &str,
    services: &Arc<FakeServices>,
) -> OperatorInstance {
    let limits = crate::runtime_support::limits(crate::runtime_support::DEFAULT_DEADLINE);
    stateful_instance(module, operator, 1 << 20, limits, services.clone()).await
}

/// What the stateful guest logged after its last successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub reconciles: u64,
    pub inits: u64,
    pub sum: u64,
    pub bytes: u64,
}

pub fn last_report(services: &FakeServices) -> Report {
    let messages = services.log_messages();
    let line = messages
        .iter()
        .rev()
        .find_map(|message| message.strip_prefix("state "))
        .unwrap_or_else(|| panic!("the guest reported no state; its log: {messages:?}"));
    let field = |name: &str| -> u64 {
        line.split(' ')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    Report {
        reconciles: field("reconciles"),
        inits: field("inits"),
        sum: field("sum"),
        bytes: field("bytes"),
    }
}

/// Reconciles `name` and returns the guest's report, failing the test on any error.
pub async fn reconcile_ok(
    instance: &mut OperatorInstance,
    services: &FakeServices,
    name: &str,
) -> Report {
    instance
        .reconcile(&reconcile_request(name))
        .await
        .unwrap_or_else(|error| panic!("reconcile {name} failed: {error}"));
    last_report(services)
}

pub fn swap_out(instance: OperatorInstance, dir: &Path) -> SwappedInstance {
    instance
        .swap_out(dir)
        .unwrap_or_else(|failure| panic!("swap-out failed: {failure}"))
}

pub async fn swap_in(
    swapped: SwappedInstance,
    services: Arc<FakeServices>,
    mode: RestoreMode,
) -> OperatorInstance {
    swapped
        .swap_in_with(services, mode)
        .await
        .unwrap_or_else(|error| panic!("swap-in failed: {error}"))
}

/// Regular files in `dir`, by name.
pub fn files_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Input length of a ReconcileRequest whose name is empty: a request named with `n` characters
/// is `n` bytes longer, which lets a WAT guest learn a number from its input length alone.
pub fn empty_name_input_len() -> usize {
    serde_json::to_vec(&reconcile_request("")).unwrap().len()
}

/// A request whose input length tells the globals guest which call number this is.
pub fn numbered_request(call: usize) -> wasm_operator_abi::ReconcileRequest {
    reconcile_request(&"x".repeat(call))
}

const REGISTRATION: &str = r#"{"for":{"apiVersion":"v1","kind":"ConfigMap"}}"#;

fn wat_module(memory_pages: u32, extra_fields: &str, reconcile_body: &str) -> Vec<u8> {
    let source = format!(
        r#"(module
  (import "wasm_operator" "result_write" (func $result_write (param i32 i32)))
  (memory (export "memory") {memory_pages})
  (data (i32.const 0) "{registration}")
  (data (i32.const 1024) "{{}}")
  {extra_fields}
  (func (export "wasm_operator_abi_v1"))
  (func (export "wasm_operator_init") (param i32) (result i32)
    (call $result_write (i32.const 0) (i32.const {len}))
    (i32.const 0))
  (func (export "wasm_operator_reconcile") (param $input_len i32) (result i32)
    {reconcile_body}
    (call $result_write (i32.const 1024) (i32.const 2))
    (i32.const 0))
)"#,
        registration = REGISTRATION.replace('"', "\\\""),
        len = REGISTRATION.len(),
    );
    wat::parse_str(&source)
        .unwrap_or_else(|error| panic!("test WAT does not parse: {error}\n{source}"))
}

/// An operator with a mutable global of every value type. Call `n` (see [`numbered_request`])
/// traps unless every global holds exactly what `n` calls in one instance produce, so a restore
/// that loses or mixes up a global fails the call.
pub fn globals_operator() -> Vec<u8> {
    let base = empty_name_input_len();
    let fields = r#"
  (global $count (mut i64) (i64.const 0))
  (global $half (mut f64) (f64.const 0))
  (global $quarter (mut f32) (f32.const 0))
  (global $triple (mut i32) (i32.const 0))
  (global $lanes (mut v128) (v128.const i32x4 0 0 0 0))
  (global $first_call_marker (mut i32) (i32.const 77))"#;
    let body = format!(
        r#"
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    (global.set $half (f64.add (global.get $half) (f64.const 0.5)))
    (global.set $quarter (f32.add (global.get $quarter) (f32.const 0.25)))
    (global.set $triple (i32.add (global.get $triple) (i32.const 3)))
    (global.set $lanes (i32x4.add (global.get $lanes) (v128.const i32x4 1 2 3 4)))
    (if (i64.eq (global.get $count) (i64.const 1))
      (then (global.set $first_call_marker (i32.const 99))))
    (if (i64.ne (global.get $count)
                (i64.extend_i32_u (i32.sub (local.get $input_len) (i32.const {base}))))
      (then unreachable))
    (if (f64.ne (global.get $half) (f64.mul (f64.convert_i64_u (global.get $count)) (f64.const 0.5)))
      (then unreachable))
    (if (f32.ne (global.get $quarter) (f32.mul (f32.convert_i64_u (global.get $count)) (f32.const 0.25)))
      (then unreachable))
    (if (i64.ne (i64.extend_i32_u (global.get $triple)) (i64.mul (global.get $count) (i64.const 3)))
      (then unreachable))
    (if (i32.ne (i32x4.extract_lane 3 (global.get $lanes))
                (i32.wrap_i64 (i64.mul (global.get $count) (i64.const 4))))
      (then unreachable))
    (if (i32.ne (global.get $first_call_marker) (i32.const 99))
      (then unreachable))"#
    );
    wat_module(1, fields, &body)
}

/// An operator whose second memory page starts with a data segment. The first reconcile zeroes
/// it, so that page becomes all zero (a hole in the snapshot); every later reconcile traps unless
/// it is still zero: restoring it from the module's data segment instead would be a mistake.
pub fn zeroed_segment_operator() -> Vec<u8> {
    let fields = r#"(data (i32.const 65536) "initialised by a data segment")"#;
    let body = r#"
    (if (i32.eqz (i32.load8_u (i32.const 2048)))
      (then
        (memory.fill (i32.const 65536) (i32.const 0) (i32.const 29))
        (i32.store8 (i32.const 2048) (i32.const 1)))
      (else
        (if (i32.load8_u (i32.const 65536)) (then unreachable))))"#;
    wat_module(2, fields, body)
}

/// An instance of [`zeroed_segment_operator`] that has zeroed its data segment's page.
pub async fn zeroed_segment_instance(
    module: &LoadedModule,
    operator: &str,
    services: &Arc<FakeServices>,
) -> OperatorInstance {
    let limits = crate::runtime_support::limits(crate::runtime_support::DEFAULT_DEADLINE);
    let mut instance = module
        .instantiate(operator, limits, services.clone())
        .await
        .unwrap();
    instance
        .reconcile(&reconcile_request("zero it"))
        .await
        .unwrap();
    instance
}

/// An operator that grows its function table at run time, which a snapshot of memory and globals
/// would not capture: it loads and runs, but cannot be swapped.
pub fn table_growing_operator() -> Vec<u8> {
    let fields = r#"(table $table 1 funcref)"#;
    let body = r#"(drop (table.grow $table (ref.null func) (i32.const 1)))"#;
    wat_module(1, fields, body)
}

pub fn config_for(state_bytes: u64) -> Value {
    json!({ "stateBytes": state_bytes, "seed": 7 })
}

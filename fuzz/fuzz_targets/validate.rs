//! Fuzz target: `wasm_operator_abi::validate` must return on any input, never panic, and a
//! rejection must hold at least one problem, each a single line.
//!
//! Each input is tried twice: as the module bytes themselves, and spliced into a valid operator
//! module (overwriting, inserting or truncating at a position the input chooses), so that
//! mutations also get past the header and reach the ABI checks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const SEED_MODULE: &str = r#"
(module
  (import "wasm_operator" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasm_operator" "result_write" (func $result_write (param i32 i32)))
  (import "wasm_operator" "kube_request" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "log" (func (param i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 4)
  (table 1 funcref)
  (global $counter (mut i32) (i32.const 0))
  (data (i32.const 16) "{}")
  (elem (i32.const 0) $init)
  (func (export "wasm_operator_abi_v1"))
  (func (export "_initialize"))
  (func $init (export "wasm_operator_init") (param $len i32) (result i32)
    (drop (call $input_read (i32.const 1024) (local.get $len)))
    (call $result_write (i32.const 16) (i32.const 2))
    (i32.const 0))
  (func (export "wasm_operator_reconcile") (param $len i32) (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (call $result_write (i32.const 16) (i32.const 2))
    (i32.const 0)))"#;

fn seed_module() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| wat::parse_str(SEED_MODULE).expect("seed module assembles"))
}

fn check(bytes: &[u8]) {
    if let Err(error) = wasm_operator_abi::validate(bytes) {
        assert!(!error.problems.is_empty(), "a rejection without a problem");
        for problem in &error.problems {
            let line = problem.to_string();
            assert!(
                !line.is_empty() && !line.contains('\n'),
                "not one line: {line:?}"
            );
        }
    }
}

/// The seed with `data` applied: bytes 0-1 choose a position, byte 2 what to do there, the rest
/// is the payload.
fn spliced(data: &[u8]) -> Option<Vec<u8>> {
    let [position_low, position_high, mode, payload @ ..] = data else {
        return None;
    };
    let mut module = seed_module().to_vec();
    let position = usize::from(u16::from_le_bytes([*position_low, *position_high])) % module.len();
    match mode % 3 {
        0 => {
            let end = (position + payload.len()).min(module.len());
            module[position..end].copy_from_slice(&payload[..end - position]);
        }
        1 => {
            module.splice(position..position, payload.iter().copied());
        }
        _ => {
            module.truncate(position);
            module.extend_from_slice(payload);
        }
    }
    Some(module)
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(module) = spliced(data) {
        check(&module);
    }
});

//! `validate` runs on untrusted bytes: it must return, never panic, on anything. This feeds it
//! thousands of damaged variants of valid modules (every truncation, bit flips, byte
//! replacements, insertions, deletions) and random buffers, from a fixed seed so that a failure
//! reproduces. The cargo-fuzz target in fuzz/ explores the same property without a bound.

mod damage;

use damage::{for_each_variant, Rng, Rounds};
use wasm_operator_abi::{validate, ValidationError};

/// A valid operator module exercising most sections: imports, table, globals, data, elements,
/// a start function, custom names.
const RICH_MODULE: &str = r#"
(module
  (import "wasm_operator" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "wasm_operator" "result_write" (func $result_write (param i32 i32)))
  (import "wasm_operator" "kube_request" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "log" (func (param i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 4)
  (table 2 funcref)
  (global $counter (mut i32) (i32.const 0))
  (global (export "__heap_base") i32 (i32.const 4096))
  (data (i32.const 16) "{\"requeueAfterMs\":1000}")
  (elem (i32.const 0) $init $reconcile)
  (func $start (global.set $counter (i32.const 1)))
  (start $start)
  (func (export "wasm_operator_abi_v1"))
  (func (export "_initialize"))
  (func $init (export "wasm_operator_init") (param $len i32) (result i32)
    (drop (call $input_read (i32.const 1024) (local.get $len)))
    (call $result_write (i32.const 16) (i32.const 22))
    (i32.const 0))
  (func $reconcile (export "wasm_operator_reconcile") (param $len i32) (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (if (result i32) (i32.gt_u (local.get $len) (i32.const 100))
      (then (i32.const 1))
      (else (call $result_write (i32.const 16) (i32.const 22)) (i32.const 0))))
)"#;

const MINIMAL_MODULE: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "wasm_operator_abi_v1"))
  (func (export "wasm_operator_init") (param i32) (result i32) i32.const 0)
  (func (export "wasm_operator_reconcile") (param i32) (result i32) i32.const 0))"#;

/// Validates `bytes` and checks the shape of the answer. Returns whether it was accepted.
fn validate_checked(bytes: &[u8]) -> bool {
    match validate(bytes) {
        Ok(info) => {
            assert_eq!(info.size_bytes, bytes.len() as u64);
            true
        }
        Err(ValidationError { problems }) => {
            assert!(
                !problems.is_empty(),
                "rejection without a problem for {bytes:02x?}"
            );
            for problem in problems {
                let line = problem.to_string();
                assert!(
                    !line.is_empty() && !line.contains('\n'),
                    "bad problem line {line:?}"
                );
            }
            false
        }
    }
}

/// Byte values that break length and index arithmetic in a binary format.
const BOUNDARY_BYTES: &[u8] = &[0x00, 0xff, 0x80];

fn variants_of(seed_module: &[u8], rng: &mut Rng) -> usize {
    let rounds = Rounds {
        bit_flips: 1500,
        replacements: 1000,
        insertions_and_deletions: 500,
    };
    for_each_variant(seed_module, rng, &rounds, BOUNDARY_BYTES, |bytes| {
        validate_checked(bytes);
    })
}

#[test]
fn validate_never_panics_on_damaged_modules() {
    let mut rng = Rng(0x5eed_0f4b_1c0f_fee0);
    let mut checked = 0;
    for text in [RICH_MODULE, MINIMAL_MODULE] {
        let module = wat::parse_str(text).expect("seed module assembles");
        assert!(
            validate_checked(&module),
            "the undamaged seed must be accepted"
        );
        checked += variants_of(&module, &mut rng);
    }
    assert!(checked > 6000, "only {checked} variants checked");
}

#[test]
fn validate_never_panics_on_random_bytes() {
    let mut rng = Rng(0xdead_beef_1234_5678);
    for round in 0..2000 {
        let length = rng.below(512);
        let mut bytes: Vec<u8> = (0..length).map(|_| rng.byte()).collect();
        // Half of the buffers get a valid header, so the section parser sees them too.
        if round % 2 == 0 {
            let header = b"\0asm\x01\0\0\0";
            bytes.splice(0..length.min(8), header.iter().copied());
        }
        validate_checked(&bytes);
    }
}

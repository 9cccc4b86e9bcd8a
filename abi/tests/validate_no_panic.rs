//! `validate` runs on untrusted bytes: it must return, never panic, on anything. This feeds it
//! thousands of damaged variants of valid modules (every truncation, bit flips, byte
//! replacements, insertions, deletions) and random buffers, from a fixed seed so that a failure
//! reproduces. The cargo-fuzz target in fuzz/ explores the same property without a bound.

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

/// xorshift64*: tiny, deterministic, good enough to pick positions and bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

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

fn variants_of(seed_module: &[u8], rng: &mut Rng) -> usize {
    let mut checked = 0;
    for length in 0..seed_module.len() {
        validate_checked(&seed_module[..length]);
        checked += 1;
    }
    for _ in 0..1500 {
        let mut bytes = seed_module.to_vec();
        let bit = rng.below(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        validate_checked(&bytes);
        checked += 1;
    }
    for _ in 0..1000 {
        let mut bytes = seed_module.to_vec();
        for _ in 0..1 + rng.below(4) {
            let position = rng.below(bytes.len());
            // Boundary values are the ones that break length and index arithmetic.
            bytes[position] = match rng.below(4) {
                0 => 0x00,
                1 => 0xff,
                2 => 0x80,
                _ => rng.byte(),
            };
        }
        validate_checked(&bytes);
        checked += 1;
    }
    for _ in 0..500 {
        let mut bytes = seed_module.to_vec();
        let position = rng.below(bytes.len());
        if rng.below(2) == 0 {
            bytes.insert(position, rng.byte());
        } else {
            bytes.remove(position);
        }
        validate_checked(&bytes);
        checked += 1;
    }
    checked
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

//! Modules that break the ABI at run time (written in WAT, so each one breaks exactly one rule):
//! the host must report an AbiViolation (or the right limit) with a clear message, never panic,
//! and never call such an instance again.

mod runtime_support;

use std::time::Duration;

use serde_json::json;
use wasm_operator::runtime::{CallError, InstanceLimits, OperatorInstance};
use wasm_operator_abi::ReconcileResult;

use runtime_support::*;

const INPUT_READ: &str =
    r#"(import "wasm_operator" "input_read" (func $input_read (param i32 i32) (result i32)))"#;
const LOG: &str = r#"(import "wasm_operator" "log" (func $log (param i32 i32)))"#;

async fn reconcile_outcome(wasm: &[u8]) -> CallError {
    let test = test_runtime();
    let module = test
        .runtime
        .load(wasm)
        .await
        .expect("the test module passes validation");
    let mut instance = module
        .instantiate("broken", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    instance
        .init(&init_input("broken", json!({})))
        .await
        .expect("init is well-behaved in every test module");
    let error = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    if error.instance_unusable() {
        let again = instance
            .reconcile(&reconcile_request("web"))
            .await
            .unwrap_err();
        assert_eq!(
            again, error,
            "an unusable instance must repeat its failure, not run again"
        );
    }
    error
}

fn expect_violation(error: CallError, fragments: &[&str]) {
    match &error {
        CallError::AbiViolation(message) => {
            for fragment in fragments {
                assert!(
                    message.contains(fragment),
                    "{fragment:?} missing from {message:?}"
                );
            }
            assert!(error.instance_unusable());
            assert!(
                error
                    .to_string()
                    .contains("rebuild it with a wasm-operator SDK"),
                "{error}"
            );
        }
        other => panic!("expected an ABI violation, got {other:?}"),
    }
}

#[tokio::test]
async fn out_of_bounds_input_buffer_is_an_abi_violation() {
    let wasm = wat_operator(
        INPUT_READ,
        "(drop (call $input_read (i32.const 65530) (local.get $input_len))) (i32.const 0)",
        "",
    );
    expect_violation(
        reconcile_outcome(&wasm).await,
        &["`input_read`", "65530..", "65536 bytes long"],
    );
}

#[tokio::test]
async fn pointer_beyond_4_gib_wraparound_is_an_abi_violation() {
    let wasm = wat_operator(
        "",
        "(call $result_write (i32.const -1) (i32.const -1)) (i32.const 0)",
        "",
    );
    expect_violation(
        reconcile_outcome(&wasm).await,
        &["`result_write`", "4294967295.."],
    );
}

#[tokio::test]
async fn out_of_bounds_log_record_is_an_abi_violation() {
    let wasm = wat_operator(
        LOG,
        "(call $log (i32.const 60000) (i32.const 10000)) (i32.const 0)",
        "",
    );
    expect_violation(reconcile_outcome(&wasm).await, &["`log`", "60000..70000"]);
}

#[tokio::test]
async fn invalid_log_record_json_is_an_abi_violation() {
    let wasm = wat_operator(
        LOG,
        "(call $log (i32.const 1024) (i32.const 5)) (i32.const 0)",
        r#"(data (i32.const 1024) "{\"le")"#,
    );
    expect_violation(
        reconcile_outcome(&wasm).await,
        &["`log`", "not a valid LogRecord"],
    );
}

#[tokio::test]
async fn unknown_return_code_is_an_abi_violation() {
    let wasm = wat_operator("", "(i32.const 7)", "");
    expect_violation(
        reconcile_outcome(&wasm).await,
        &["returned 7", "0 (ok) or 1 (error)"],
    );
}

#[tokio::test]
async fn success_without_a_result_is_an_abi_violation() {
    let wasm = wat_operator("", "(i32.const 0)", "");
    expect_violation(
        reconcile_outcome(&wasm).await,
        &["without calling `result_write`"],
    );
}

#[tokio::test]
async fn failure_without_a_result_is_a_guest_error_not_a_violation() {
    // docs/abi.md: code 1 with no result is the guest's failure, under a message the host makes.
    let wasm = wat_operator("", "(i32.const 1)", "");
    match reconcile_outcome(&wasm).await {
        CallError::Guest(error) => assert_eq!(
            error.message,
            "wasm_operator_reconcile returned 1 without a result"
        ),
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[tokio::test]
async fn result_that_is_not_a_reconcile_result_is_an_abi_violation() {
    let wasm = wat_operator(
        "",
        "(call $result_write (i32.const 1024) (i32.const 4)) (i32.const 0)",
        r#"(data (i32.const 1024) "nope")"#,
    );
    expect_violation(
        reconcile_outcome(&wasm).await,
        &["not a valid ReconcileResult"],
    );
}

#[tokio::test]
async fn error_result_that_is_not_a_guest_error_is_an_abi_violation() {
    let wasm = wat_operator(
        "",
        "(call $result_write (i32.const 1024) (i32.const 2)) (i32.const 1)",
        r#"(data (i32.const 1024) "[]")"#,
    );
    expect_violation(reconcile_outcome(&wasm).await, &["not a valid GuestError"]);
}

#[tokio::test]
async fn host_call_from_initialize_is_an_abi_violation() {
    let wasm = wat_operator(
        LOG,
        "(i32.const 0)",
        r#"(func (export "_initialize") (call $log (i32.const 0) (i32.const 2)))"#,
    );
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    let error = module
        .instantiate("early", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .err()
        .expect("instantiation fails");
    expect_violation(
        error,
        &["`log`", "no init or reconcile call was in progress"],
    );
}

/// Limits of one 64 KiB page more than the WAT operators' single page: room for nothing.
fn one_page_cap() -> InstanceLimits {
    InstanceLimits {
        max_memory_bytes: 2 * 65536,
        call_deadline: DEFAULT_DEADLINE,
    }
}

/// `wasm` loaded, instantiated under [`one_page_cap`] and initialised; the runtime owns the
/// module cache and must outlive the instance.
async fn initialised_under_one_page_cap(wasm: &[u8]) -> (TestRuntime, OperatorInstance) {
    let test = test_runtime();
    let module = test.runtime.load(wasm).await.unwrap();
    let mut instance = module
        .instantiate("grower", one_page_cap(), FakeServices::new())
        .await
        .unwrap();
    instance
        .init(&init_input("grower", json!({})))
        .await
        .unwrap();
    (test, instance)
}

/// `{}` at offset 1024 of a WAT operator's memory, for a reconcile that succeeds.
const EMPTY_RESULT_AT_1024: &str = r#"(data (i32.const 1024) "{}")"#;

#[tokio::test]
async fn memory_grow_past_the_cap_returns_minus_one_and_the_guest_carries_on() {
    // The guest checks what memory.grow returned: anything but -1 traps.
    let wasm = wat_operator(
        "",
        "(if (i32.ne (memory.grow (i32.const 100)) (i32.const -1)) (then unreachable))
         (call $result_write (i32.const 1024) (i32.const 2))
         (i32.const 0)",
        EMPTY_RESULT_AT_1024,
    );
    let (_runtime, mut instance) = initialised_under_one_page_cap(&wasm).await;
    for attempt in 0..2 {
        let result = instance.reconcile(&reconcile_request("web")).await;
        assert_eq!(
            result,
            Ok(ReconcileResult::default()),
            "reconcile {attempt}: the refused growth is an ordinary -1, the instance stays usable"
        );
    }
    assert_eq!(
        instance.memory_bytes(),
        65536,
        "the refused growth did not happen"
    );
}

#[tokio::test]
async fn a_trap_after_a_refused_growth_is_memory_limit_exceeded() {
    // What Rust's and Go's allocators do when memory.grow returns -1: abort.
    let wasm = wat_operator("", "(drop (memory.grow (i32.const 100))) unreachable", "");
    let (_runtime, mut instance) = initialised_under_one_page_cap(&wasm).await;
    let error = instance
        .reconcile(&reconcile_request("web"))
        .await
        .unwrap_err();
    assert_eq!(error, CallError::MemoryLimitExceeded { limit: 2 * 65536 });
    assert_eq!(instance.memory_bytes(), 65536);
}

#[tokio::test]
async fn a_refusal_the_guest_survived_is_not_blamed_for_a_later_trap() {
    // The first reconcile's growth is refused and handled; the second reconcile traps for
    // another reason, which is what it is reported as.
    let wasm = wat_operator(
        "",
        "(global.set $calls (i32.add (global.get $calls) (i32.const 1)))
         (if (i32.eq (global.get $calls) (i32.const 2)) (then unreachable))
         (drop (memory.grow (i32.const 100)))
         (call $result_write (i32.const 1024) (i32.const 2))
         (i32.const 0)",
        &format!("{EMPTY_RESULT_AT_1024} (global $calls (mut i32) (i32.const 0))"),
    );
    let (_runtime, mut instance) = initialised_under_one_page_cap(&wasm).await;
    assert_eq!(
        instance.reconcile(&reconcile_request("web")).await,
        Ok(ReconcileResult::default())
    );
    match instance.reconcile(&reconcile_request("web")).await {
        Err(CallError::Trap(message)) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn initial_memory_over_the_cap_fails_instantiation() {
    let wasm = wat_operator("", "(i32.const 0)", "");
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    let limits = InstanceLimits {
        max_memory_bytes: 1024,
        call_deadline: DEFAULT_DEADLINE,
    };
    let error = module
        .instantiate("tiny", limits, FakeServices::new())
        .await
        .err()
        .expect("instantiation fails");
    assert_eq!(error, CallError::MemoryLimitExceeded { limit: 1024 });
}

#[tokio::test]
async fn busy_loop_in_wat_is_interrupted() {
    let wasm = wat_operator("", "(loop $spin (br $spin)) (i32.const 0)", "");
    let test = test_runtime();
    let module = test.runtime.load(&wasm).await.unwrap();
    let deadline = Duration::from_millis(100);
    let mut instance = module
        .instantiate("spinner", limits(deadline), FakeServices::new())
        .await
        .unwrap();
    instance
        .init(&init_input("spinner", json!({})))
        .await
        .unwrap();
    assert_eq!(
        instance
            .reconcile(&reconcile_request("web"))
            .await
            .unwrap_err(),
        CallError::DeadlineExceeded(deadline)
    );
}

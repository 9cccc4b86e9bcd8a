//! [`replay`]: runs an operator's exports natively against a tape recorded from a real run
//! (`wasm-operator run --record DIR`), the way `wasm-operator test MODULE --replay TAPE` runs
//! its compiled module: the recorded InitInput and ReconcileRequests in order, every host call
//! answered from the recording, and the first request or outcome that differs (timestamps
//! aside) failing the test with a diff. The matching is [`wasm_operator_abi::tape::Expected`],
//! the host's own. Log records are not compared.
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use serde_json::json;
use wasm_operator_abi::tape::{Expected, Mismatch, Outcome, Tape};
use wasm_operator_abi::{GuestError, HostResponse, HttpResponse, ReconcileResult};

use crate::testing::{CallOutcome, Export, FakeHost};

/// Replays the tape at `path` against the operator's `init` and `reconcile` exports (those
/// [`operator!`](crate::operator) defines: `wasm_operator_init`, `wasm_operator_reconcile`);
/// panics, failing the test, at the first difference from the recording.
pub fn replay(path: impl AsRef<Path>, init: Export, reconcile: Export) {
    let path = path.as_ref();
    let fail = |report: String| -> ! {
        panic!(
            "{}: the operator differs from the recording\n{report}",
            path.display()
        )
    };
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read the tape {}: {error}", path.display()));
    let tape = Tape::parse(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let reconciles = tape
        .reconciles()
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));

    let host = FakeHost::install();
    let expected = Rc::new(RefCell::new(Expected::new("init", tape.init_calls())));
    let kube = expected.clone();
    host.on_kube(move |request| kube.borrow_mut().answer(json!({ "kube": request })));
    let http = expected.clone();
    host.on_http(
        move |request| match http.borrow_mut().answer(json!({ "http": request })) {
            HostResponse::Ok(value) => serde_json::from_value::<HttpResponse>(value)
                .map(HostResponse::Ok)
                .unwrap_or_else(|error| {
                    panic!("a recorded HTTP answer is not an HttpResponse: {error}")
                }),
            HostResponse::Error(error) => HostResponse::Error(error),
        },
    );

    let outcome = host.init(init, &tape.header.init);
    if let Some(mismatch) = expected.borrow_mut().finish() {
        fail(report(&mismatch));
    }
    if outcome.code != 0 {
        fail(format!(
            "init: init failed, but it succeeded in the recording: {:?}",
            outcome.result
        ));
    }
    for (call, episode) in &reconciles {
        let Some(request) = &episode.reconcile else {
            continue; // `reconciles` holds reconciles only
        };
        *expected.borrow_mut() = Expected::new(call, episode.calls.clone());
        let outcome = host.reconcile(reconcile, request);
        if let Some(mismatch) = expected.borrow_mut().finish() {
            fail(report(&mismatch));
        }
        let replayed = as_host_records(&outcome);
        if let Some(mismatch) = Mismatch::of_outcome(call, episode.outcome.as_ref(), &replayed) {
            fail(report(&mismatch));
        }
    }
}

/// The outcome as the host records it: a GuestError reads as the host words it.
fn as_host_records(outcome: &CallOutcome) -> Outcome {
    let result = outcome.result.clone();
    match outcome.code {
        0 => Outcome::Result(
            result
                .and_then(|value| serde_json::from_value::<ReconcileResult>(value).ok())
                .unwrap_or_default(),
        ),
        _ => Outcome::Error {
            reason: "guest".into(),
            message: format!(
                "the operator reported an error: {}",
                result
                    .and_then(|value| serde_json::from_value::<GuestError>(value).ok())
                    .map_or_else(String::new, |error| error.message)
            ),
        },
    }
}

fn report(mismatch: &Mismatch) -> String {
    mismatch.render(|recorded, replayed| {
        similar::TextDiff::from_lines(recorded, replayed)
            .unified_diff()
            .context_radius(4)
            .header("recorded", "replayed")
            .to_string()
    })
}

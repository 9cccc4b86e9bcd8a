//! [`replay`]: runs an operator's exports natively against a tape recorded from a real run
//! (`wasm-operator run --record DIR`), the way `wasm-operator test MODULE --replay TAPE` runs
//! its compiled module: the recorded InitInput and ReconcileRequests in order, every host call
//! answered from the recording, and the first request or outcome that differs (timestamps
//! aside) failing the test with a diff. Log records are not compared.
use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;

use serde_json::{json, Value};
use wasm_operator_abi::tape::{normalized, Call, Episode, Tape};
use wasm_operator_abi::{GuestError, HostError, HostResponse, HttpResponse, ReconcileResult};

use crate::testing::{Export, FakeHost};

/// Replays the tape at `path` against the operator's `init` and `reconcile` exports (those
/// [`operator!`](crate::operator) defines: `wasm_operator_init`, `wasm_operator_reconcile`);
/// panics, failing the test, at the first difference from the recording.
pub fn replay(path: impl AsRef<Path>, init: Export, reconcile: Export) {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read the tape {}: {error}", path.display()));
    let tape =
        Tape::parse(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let host = FakeHost::install();
    let expectations = Rc::new(RefCell::new(Expectations::default()));
    let kube = expectations.clone();
    host.on_kube(move |request| kube.borrow_mut().answer(json!({ "kube": request })));
    let http = expectations.clone();
    host.on_http(move |request| {
        match http.borrow_mut().answer(json!({ "http": request })) {
            HostResponse::Ok(value) => serde_json::from_value::<HttpResponse>(value)
                .map(HostResponse::Ok)
                .unwrap_or_else(|error| panic!("a recorded HTTP answer is not an HttpResponse: {error}")),
            HostResponse::Error(error) => HostResponse::Error(error),
        }
    });
    let fail = |mismatch: String| -> ! {
        panic!("{}: the operator differs from the recording\n{mismatch}", path.display())
    };

    let init_calls = tape
        .episodes
        .iter()
        .take_while(|episode| episode.reconcile.is_none())
        .flat_map(|episode| episode.calls.clone());
    expectations.borrow_mut().expect(init_calls.collect(), "init");
    let outcome = host.init(init, &tape.header.init);
    if let Some(mismatch) = expectations.borrow_mut().finish() {
        fail(mismatch);
    }
    if outcome.code != 0 {
        fail(format!(
            "init: init failed, but it succeeded in the recording: {:?}",
            outcome.result
        ));
    }

    let mut count = 0;
    for episode in tape.episodes.iter().skip_while(|episode| episode.reconcile.is_none()) {
        let Episode {
            reconcile: Some(request),
            calls,
            outcome: recorded,
        } = episode
        else {
            panic!(
                "{}: host calls outside a reconcile after the first reconcile: the operator's \
                 instance was recreated during the recording, which a replay cannot follow",
                path.display()
            );
        };
        count += 1;
        let call = match &request.namespace {
            Some(namespace) => format!("reconcile {count} ({namespace}/{})", request.name),
            None => format!("reconcile {count} ({})", request.name),
        };
        expectations.borrow_mut().expect(calls.clone(), &call);
        let outcome = host.reconcile(reconcile, request);
        if let Some(mismatch) = expectations.borrow_mut().finish() {
            fail(mismatch);
        }
        // What the host would have recorded: a GuestError reads as the host words it.
        let replayed = match outcome.code {
            0 => json!({"result": outcome.result.clone().map(serde_json::from_value::<ReconcileResult>)
                .and_then(Result::ok)}),
            _ => {
                let error = outcome
                    .result
                    .clone()
                    .and_then(|value| serde_json::from_value::<GuestError>(value).ok())
                    .map_or_else(String::new, |error| error.message);
                json!({"error": {"reason": "guest",
                                 "message": format!("the operator reported an error: {error}")}})
            }
        };
        let recorded = recorded
            .as_ref()
            .map(|outcome| serde_json::to_value(outcome).unwrap_or_default());
        if recorded.as_ref().map(normalized) != Some(normalized(&replayed)) {
            fail(format!(
                "{call}: the outcome differs\n{}",
                diff(&recorded.map(|value| pretty(&value)).unwrap_or_default(), &pretty(&replayed))
            ));
        }
    }
}

/// The host calls expected during the current call into the guest.
#[derive(Default)]
struct Expectations {
    call: String,
    expected: VecDeque<Call>,
    made: usize,
    mismatch: Option<String>,
}

impl Expectations {
    fn expect(&mut self, calls: Vec<Call>, call: &str) {
        *self = Expectations {
            call: call.into(),
            expected: calls.into(),
            ..Expectations::default()
        };
    }

    fn answer(&mut self, made: Value) -> HostResponse {
        self.made += 1;
        let made = normalized(&made);
        match self.expected.pop_front() {
            Some(expected) if normalized(&expected.request_json()) == made => {
                expected.response().clone()
            }
            expected => {
                if self.mismatch.is_none() {
                    let what = match &expected {
                        Some(_) => format!("host call {} differs", self.made),
                        None => format!(
                            "host call {} was not in the recording (it had {})",
                            self.made,
                            self.made - 1
                        ),
                    };
                    let recorded = expected
                        .map(|call| pretty(&normalized(&call.request_json())))
                        .unwrap_or_default();
                    self.mismatch = Some(format!(
                        "{}: {what}\n{}",
                        self.call,
                        diff(&recorded, &pretty(&made))
                    ));
                }
                HostResponse::Error(HostError::Transport {
                    message: "replay: this request differs from the recording".into(),
                })
            }
        }
    }

    fn finish(&mut self) -> Option<String> {
        if let Some(mismatch) = self.mismatch.take() {
            return Some(mismatch);
        }
        let missing = self.expected.front()?;
        Some(format!(
            "{}: host call {} of the recording was not made ({} more after it)\n{}",
            self.call,
            self.made + 1,
            self.expected.len() - 1,
            diff(&pretty(&normalized(&missing.request_json())), "")
        ))
    }
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn diff(recorded: &str, replayed: &str) -> String {
    similar::TextDiff::from_lines(recorded, replayed)
        .unified_diff()
        .context_radius(4)
        .header("recorded", "replayed")
        .to_string()
}

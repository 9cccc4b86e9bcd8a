//! Runs an operator module against a tape: the same InitInput and ReconcileRequests as in the
//! recording, every host call answered with the recorded answer, and the first host call or
//! outcome that differs from the recording reported with a diff ([`Mismatch`]).
//!
//! Requests and results are compared after [`normalized`] (timestamps differ from run to run).
//! Log records are not compared.
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;
use wasm_operator_abi::tape::{normalized, Call, Episode, Outcome, Tape};
use wasm_operator_abi::{HostError, HostResponse, HttpRequest, KubeRequest, LogRecord};

use crate::runtime::{CallError, HostServices, InstanceLimits, LoadedModule};

/// Where a replay first parted ways with the recording.
#[derive(Debug)]
pub struct Mismatch {
    /// Which call into the guest: `init`, or `reconcile N (namespace/name)`.
    pub call: String,
    /// What differed, in words.
    pub what: String,
    /// The recorded and the replayed side, as pretty JSON (empty when there is nothing).
    pub recorded: String,
    pub replayed: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.call, self.what)?;
        let diff = similar::TextDiff::from_lines(&self.recorded, &self.replayed);
        write!(
            f,
            "{}",
            diff.unified_diff()
                .context_radius(4)
                .header("recorded", "replayed")
        )
    }
}

/// What a replay that matched went through.
#[derive(Debug, PartialEq, Eq)]
pub struct Replayed {
    pub reconciles: usize,
    pub host_calls: usize,
}

/// Why a replay could not run at all (as opposed to a [`Mismatch`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplayError(pub String);

/// Replays `tape` against `module`: `Ok(Ok(..))` when everything matched.
pub async fn replay(
    module: &LoadedModule,
    tape: &Tape,
    limits: InstanceLimits,
) -> Result<Result<Replayed, Mismatch>, ReplayError> {
    let services = Arc::new(ReplayServices::default());
    let operator = &tape.header.operator;
    let episodes = &tape.episodes;
    // Host calls recorded outside a reconcile before the first one are init's.
    let init_calls: Vec<Call> = episodes
        .iter()
        .take_while(|episode| episode.reconcile.is_none())
        .flat_map(|episode| episode.calls.clone())
        .collect();
    services.expect(init_calls, "init");
    let mut instance = module
        .instantiate(operator, limits, services.clone())
        .await
        .map_err(|error| ReplayError(format!("the module could not be instantiated: {error}")))?;
    let init = instance.init(&tape.header.init).await;
    if let Some(mismatch) = services.finish() {
        return Ok(Err(mismatch));
    }
    if let Err(error) = init {
        return Ok(Err(Mismatch {
            call: "init".into(),
            what: format!("init failed, but it succeeded in the recording: {error}"),
            recorded: String::new(),
            replayed: String::new(),
        }));
    }

    let mut replayed = Replayed {
        reconciles: 0,
        host_calls: 0,
    };
    let reconciles = episodes
        .iter()
        .skip_while(|episode| episode.reconcile.is_none());
    for episode in reconciles {
        let Episode {
            reconcile: Some(request),
            calls,
            outcome,
        } = episode
        else {
            return Err(ReplayError(
                "the recording has host calls outside a reconcile after the first reconcile: \
                 the operator's instance was recreated during the recording (after a trap or a \
                 lost swap-in), which a replay cannot follow; record again"
                    .into(),
            ));
        };
        replayed.reconciles += 1;
        let call = match &request.namespace {
            Some(namespace) => format!(
                "reconcile {} ({namespace}/{})",
                replayed.reconciles, request.name
            ),
            None => format!("reconcile {} ({})", replayed.reconciles, request.name),
        };
        services.expect(calls.clone(), &call);
        replayed.host_calls += calls.len();
        let result = instance.reconcile(request).await;
        if let Some(mismatch) = services.finish() {
            return Ok(Err(mismatch));
        }
        let now = match &result {
            Ok(result) => Outcome::Result(result.clone()),
            Err(error) => Outcome::Error {
                reason: error.reason_label().into(),
                message: error.to_string(),
            },
        };
        if outcome.as_ref().map(outcome_json) != Some(outcome_json(&now)) {
            return Ok(Err(Mismatch {
                call,
                what: "the outcome differs".into(),
                recorded: outcome.as_ref().map(outcome_json).map_or_else(String::new, pretty),
                replayed: pretty(outcome_json(&now)),
            }));
        }
        if result.as_ref().is_err_and(CallError::instance_unusable) {
            return Err(ReplayError(format!(
                "{call} left the instance unusable, as it did in the recording; a replay cannot \
                 go past it"
            )));
        }
    }
    Ok(Ok(replayed))
}

fn outcome_json(outcome: &Outcome) -> Value {
    normalized(&serde_json::to_value(outcome).unwrap_or_default())
}

fn pretty(value: Value) -> String {
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Answers host calls from the calls expected for the current call into the guest.
#[derive(Default)]
struct ReplayServices {
    state: Mutex<Expectations>,
}

#[derive(Default)]
struct Expectations {
    call: String,
    expected: VecDeque<Call>,
    made: usize,
    mismatch: Option<Mismatch>,
}

impl ReplayServices {
    fn expect(&self, calls: Vec<Call>, call: &str) {
        let mut state = self.lock();
        *state = Expectations {
            call: call.into(),
            expected: calls.into(),
            made: 0,
            mismatch: None,
        };
    }

    /// The mismatch of the call that just ended, counting recorded host calls it did not make.
    fn finish(&self) -> Option<Mismatch> {
        let mut state = self.lock();
        if let Some(mismatch) = state.mismatch.take() {
            return Some(mismatch);
        }
        let missing = state.expected.front()?;
        Some(Mismatch {
            call: state.call.clone(),
            what: format!(
                "host call {} of the recording was not made ({} more after it)",
                state.made + 1,
                state.expected.len() - 1
            ),
            recorded: pretty(normalized(&missing.request_json())),
            replayed: String::new(),
        })
    }

    fn answer(&self, made: Value) -> BoxFuture<'static, HostResponse> {
        let mut state = self.lock();
        state.made += 1;
        let made = normalized(&made);
        let expected = state.expected.pop_front();
        let response = match expected {
            Some(expected) if normalized(&expected.request_json()) == made => {
                expected.response().clone()
            }
            expected if state.mismatch.is_none() => {
                state.mismatch = Some(Mismatch {
                    call: state.call.clone(),
                    what: match &expected {
                        Some(_) => format!("host call {} differs", state.made),
                        None => format!(
                            "host call {} was not in the recording (it had {})",
                            state.made,
                            state.made - 1
                        ),
                    },
                    recorded: expected
                        .map(|call| pretty(normalized(&call.request_json())))
                        .unwrap_or_default(),
                    replayed: pretty(made),
                });
                not_recorded()
            }
            _ => not_recorded(),
        };
        futures::future::ready(response).boxed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expectations> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn not_recorded() -> HostResponse {
    HostResponse::Error(HostError::Transport {
        message: "replay: this request differs from the recording".into(),
    })
}

impl HostServices for ReplayServices {
    fn kube(&self, request: KubeRequest) -> BoxFuture<'static, HostResponse> {
        self.answer(serde_json::json!({ "kube": request }))
    }

    fn http(&self, request: HttpRequest) -> BoxFuture<'static, HostResponse> {
        self.answer(serde_json::json!({ "http": request }))
    }

    fn log(&self, _record: LogRecord) {}
}

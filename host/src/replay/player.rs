//! Runs an operator module against a tape: the same InitInput and ReconcileRequests as in the
//! recording, every host call answered with the recorded answer, and the first host call or
//! outcome that differs from the recording reported with a diff. The matching itself is
//! [`wasm_operator_abi::tape::Expected`], shared with the Rust SDK's `testing::replay`.
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};
use wasm_operator_abi::tape::{Expected, Mismatch, Outcome, Tape};
use wasm_operator_abi::{HostResponse, HttpRequest, KubeRequest, LogRecord};

use crate::runtime::{CallError, HostServices, InstanceLimits, LoadedModule};

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

/// A mismatch as people read it: what differed, then a unified diff.
pub fn report(mismatch: &Mismatch) -> String {
    mismatch.render(|recorded, replayed| {
        similar::TextDiff::from_lines(recorded, replayed)
            .unified_diff()
            .context_radius(4)
            .header("recorded", "replayed")
            .to_string()
    })
}

/// Replays `tape` against `module`: `Ok(Ok(..))` when everything matched.
pub async fn replay(
    module: &LoadedModule,
    tape: &Tape,
    limits: InstanceLimits,
) -> Result<Result<Replayed, Mismatch>, ReplayError> {
    let reconciles = tape.reconciles().map_err(ReplayError)?;
    let services = Arc::new(ReplayServices::default());
    services.expect(Expected::new("init", tape.init_calls()));
    let mut instance = module
        .instantiate(&tape.header.operator, limits, services.clone())
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

    let mut host_calls = 0;
    for (call, episode) in &reconciles {
        let Some(request) = &episode.reconcile else {
            continue; // `reconciles` holds reconciles only
        };
        services.expect(Expected::new(call, episode.calls.clone()));
        host_calls += episode.calls.len();
        let result = instance.reconcile(request).await;
        if let Some(mismatch) = services.finish() {
            return Ok(Err(mismatch));
        }
        let replayed = match &result {
            Ok(result) => Outcome::Result(result.clone()),
            Err(error) => Outcome::Error {
                reason: error.reason_label().into(),
                message: error.to_string(),
            },
        };
        if let Some(mismatch) = Mismatch::of_outcome(call, episode.outcome.as_ref(), &replayed) {
            return Ok(Err(mismatch));
        }
        if result.as_ref().is_err_and(CallError::instance_unusable) {
            return Err(ReplayError(format!(
                "{call} left the instance unusable, as it did in the recording; a replay cannot \
                 go past it"
            )));
        }
    }
    Ok(Ok(Replayed {
        reconciles: reconciles.len(),
        host_calls,
    }))
}

/// Answers host calls from what the current call into the guest is expected to make.
#[derive(Default)]
struct ReplayServices {
    expected: Mutex<Expected>,
}

impl ReplayServices {
    fn expect(&self, expected: Expected) {
        *self.lock() = expected;
    }

    fn finish(&self) -> Option<Mismatch> {
        self.lock().finish()
    }

    fn answer(&self, made: Value) -> BoxFuture<'static, HostResponse> {
        futures::future::ready(self.lock().answer(made)).boxed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expected> {
        self.expected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl HostServices for ReplayServices {
    fn kube(&self, request: KubeRequest) -> BoxFuture<'static, HostResponse> {
        self.answer(json!({ "kube": request }))
    }

    fn http(&self, request: HttpRequest) -> BoxFuture<'static, HostResponse> {
        self.answer(json!({ "http": request }))
    }

    fn log(&self, _record: LogRecord) {}
}

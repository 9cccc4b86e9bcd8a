//! Recordings of an operator's conversation with the host ("tapes"), for testing an operator
//! offline: `wasm-operator run --record DIR` writes one per operator, and `wasm-operator test
//! MODULE --replay TAPE` (or the SDKs' replay helpers) runs the module against it, answering
//! every host call from the recording and failing on the first request or result that differs.
//!
//! A tape is JSON lines: a [`Header`] first (the InitInput the operator was started with), then
//! one [`Episode`] per reconcile: the ReconcileRequest, every host call made during it with the
//! answer it got, and the outcome. Host calls made outside a reconcile (during init) form an
//! episode without a request. Log records are not recorded: they change nothing outside.
//!
//! Comparing requests: timestamps (RFC 3339 strings, as in conditions and Events) differ from
//! run to run, so [`normalized`] replaces them before requests and results are compared.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    HostError, HostResponse, HttpRequest, InitInput, KubeRequest, ReconcileRequest, ReconcileResult,
};

/// The `format` of the header line of tapes this crate reads and writes.
pub const FORMAT: &str = "wasm-operator-tape/v1";

/// The first line of a tape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The operator's name in the recording host.
    pub operator: String,
    /// What its `wasm_operator_init` was called with.
    pub init: InitInput,
}

/// One host call and the answer the guest got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Call {
    Kube {
        request: KubeRequest,
        response: HostResponse,
    },
    Http {
        request: HttpRequest,
        response: HostResponse,
    },
}

impl Call {
    /// The request as JSON, tagged with its import (`{"kube": ...}` or `{"http": ...}`), for
    /// comparing and showing.
    pub fn request_json(&self) -> Value {
        match self {
            Call::Kube { request, .. } => serde_json::json!({"kube": request}),
            Call::Http { request, .. } => serde_json::json!({"http": request}),
        }
    }

    pub fn response(&self) -> &HostResponse {
        match self {
            Call::Kube { response, .. } | Call::Http { response, .. } => response,
        }
    }
}

/// How a recorded call into the guest ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It returned 0 with this result.
    Result(ReconcileResult),
    /// It failed: `reason` as in the host's metrics (guest, trap, deadline, memory, abi, host).
    Error { reason: String, message: String },
}

/// One call into the guest and the host calls it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    /// The reconcile; `None` for host calls made outside one (during init).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<ReconcileRequest>,
    #[serde(default)]
    pub calls: Vec<Call>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// A whole tape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tape {
    pub header: Header,
    pub episodes: Vec<Episode>,
}

impl Tape {
    /// Parses a tape; the error names the line that is not what a tape holds.
    pub fn parse(text: &str) -> Result<Tape, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty());
        let (_, first) = lines.next().ok_or("the tape is empty")?;
        let header: Header = serde_json::from_str(first)
            .map_err(|error| format!("line 1 is not a tape header: {error}"))?;
        if header.format != FORMAT {
            return Err(format!(
                "the tape's format is {:?}; this version reads {FORMAT:?}",
                header.format
            ));
        }
        let episodes = lines
            .map(|(index, line)| {
                serde_json::from_str(line)
                    .map_err(|error| format!("line {} is not a tape episode: {error}", index + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(Tape { header, episodes })
    }

    /// The host calls recorded before the first reconcile: init's.
    pub fn init_calls(&self) -> Vec<Call> {
        self.episodes
            .iter()
            .take_while(|episode| episode.reconcile.is_none())
            .flat_map(|episode| episode.calls.clone())
            .collect()
    }

    /// The reconciles, in order, each with its name for messages (`reconcile N (ns/name)`).
    /// Host calls outside a reconcile after the first one mean the operator's instance was
    /// recreated during the recording, which a replay cannot follow: an error.
    pub fn reconciles(&self) -> Result<Vec<(String, &Episode)>, String> {
        let mut reconciles = Vec::new();
        let after_init = self
            .episodes
            .iter()
            .skip_while(|episode| episode.reconcile.is_none());
        for episode in after_init {
            let Some(request) = &episode.reconcile else {
                return Err(format!(
                    "the recording has host calls outside a reconcile after reconcile {}: the \
                     operator's instance was recreated during the recording (after a trap or a \
                     lost swap-in), which a replay cannot follow; record again",
                    reconciles.len()
                ));
            };
            let number = reconciles.len() + 1;
            let name = match &request.namespace {
                Some(namespace) => format!("reconcile {number} ({namespace}/{})", request.name),
                None => format!("reconcile {number} ({})", request.name),
            };
            reconciles.push((name, episode));
        }
        Ok(reconciles)
    }
}

/// Where a replay first parted ways with the recording: which call into the guest (`init`,
/// `reconcile N (ns/name)`), what differed, and both sides as pretty, normalised JSON (empty
/// where there is nothing) for a diff.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub call: String,
    pub what: String,
    pub recorded: String,
    pub replayed: String,
}

impl Mismatch {
    /// The outcome of `call`, `replayed`, against the recorded one; `None` when they agree.
    pub fn of_outcome(call: &str, recorded: Option<&Outcome>, replayed: &Outcome) -> Option<Self> {
        let as_json =
            |outcome: &Outcome| normalized(&serde_json::to_value(outcome).unwrap_or_default());
        let recorded = recorded.map(as_json);
        let replayed = as_json(replayed);
        (recorded.as_ref() != Some(&replayed)).then(|| Mismatch {
            call: call.into(),
            what: "the outcome differs".into(),
            recorded: recorded.as_ref().map(pretty).unwrap_or_default(),
            replayed: pretty(&replayed),
        })
    }

    /// The report: `call: what`, then `diff(recorded, replayed)` (a unified diff).
    pub fn render(&self, diff: impl Fn(&str, &str) -> String) -> String {
        format!(
            "{}: {}\n{}",
            self.call,
            self.what,
            diff(&self.recorded, &self.replayed)
        )
    }
}

/// The host calls one call into the guest is expected to make, matched as it makes them.
#[derive(Debug, Default)]
pub struct Expected {
    call: String,
    calls: VecDeque<Call>,
    made: usize,
    mismatch: Option<Mismatch>,
}

impl Expected {
    /// `calls`, expected during `call` (`init`, `reconcile N (ns/name)`).
    pub fn new(call: &str, calls: Vec<Call>) -> Self {
        Expected {
            call: call.into(),
            calls: calls.into(),
            ..Expected::default()
        }
    }

    /// The answer to the host call `made` (`{"kube": ..}` or `{"http": ..}`): the recorded one
    /// when it is the next recorded request; otherwise the first mismatch is kept and the guest
    /// gets a transport error.
    pub fn answer(&mut self, made: Value) -> HostResponse {
        self.made += 1;
        let made = normalized(&made);
        match self.calls.pop_front() {
            Some(expected) if normalized(&expected.request_json()) == made => {
                expected.response().clone()
            }
            expected => {
                if self.mismatch.is_none() {
                    self.mismatch = Some(Mismatch {
                        call: self.call.clone(),
                        what: match &expected {
                            Some(_) => format!("host call {} differs", self.made),
                            None => format!(
                                "host call {} was not in the recording (it had {})",
                                self.made,
                                self.made - 1
                            ),
                        },
                        recorded: expected
                            .map(|call| pretty(&normalized(&call.request_json())))
                            .unwrap_or_default(),
                        replayed: pretty(&made),
                    });
                }
                HostResponse::Error(HostError::Transport {
                    message: "replay: this request differs from the recording".into(),
                })
            }
        }
    }

    /// After the call: its first mismatch, or a recorded host call it did not make.
    pub fn finish(&mut self) -> Option<Mismatch> {
        if let Some(mismatch) = self.mismatch.take() {
            return Some(mismatch);
        }
        let missing = self.calls.front()?;
        Some(Mismatch {
            call: self.call.clone(),
            what: format!(
                "host call {} of the recording was not made ({} more after it)",
                self.made + 1,
                self.calls.len() - 1
            ),
            recorded: pretty(&normalized(&missing.request_json())),
            replayed: String::new(),
        })
    }
}

/// Pretty JSON with a final newline, as diffs show it.
fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// `value` with every RFC 3339 timestamp string replaced by `"<time>"`, for comparing what one
/// run wrote with what another writes.
pub fn normalized(value: &Value) -> Value {
    match value {
        Value::String(text) if is_timestamp(text) => Value::String("<time>".into()),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), normalized(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `2026-01-02T03:04:05Z`, with optional fraction and a `Z` or `±hh:mm` offset.
pub fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let fixed = bytes.len() >= 20
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19);
    if !fixed {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return false;
        }
        rest = &fraction[end..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_and_only_timestamps_are_normalized() {
        let value = json!({"at": "2026-01-02T03:04:05Z", "micro": "2026-01-02T03:04:05.123456Z",
                           "offset": "2026-01-02T03:04:05+02:00", "name": "2026-01-02",
                           "list": ["2026-01-02T03:04:05Z", "web"], "n": 3});
        assert_eq!(
            normalized(&value),
            json!({"at": "<time>", "micro": "<time>", "offset": "<time>", "name": "2026-01-02",
                   "list": ["<time>", "web"], "n": 3})
        );
        assert!(!is_timestamp("2026-01-02T03:04:05"));
        assert!(!is_timestamp("2026-01-02T03:04:05.Z"));
    }

    #[test]
    fn a_tape_reads_back_what_was_written_and_names_a_bad_line() {
        let header = Header {
            format: FORMAT.into(),
            operator: "web".into(),
            init: InitInput {
                abi_version: 1,
                operator_name: "web".into(),
                config: json!({}),
            },
        };
        let episode = Episode {
            reconcile: None,
            calls: vec![Call::Kube {
                request: serde_json::from_value(
                    json!({"verb": "get", "apiVersion": "v1", "kind": "ConfigMap", "name": "a"}),
                )
                .unwrap(),
                response: HostResponse::Ok(json!({"kind": "ConfigMap"})),
            }],
            outcome: None,
        };
        let text = format!(
            "{}\n{}\n",
            serde_json::to_string(&header).unwrap(),
            serde_json::to_string(&episode).unwrap()
        );
        let tape = Tape::parse(&text).unwrap();
        assert_eq!(tape.header, header);
        assert_eq!(tape.episodes, vec![episode]);
        let error = Tape::parse(&format!("{text}{{\"calls\": 3}}\n")).unwrap_err();
        assert!(error.starts_with("line 3 is not a tape episode"), "{error}");
    }
}

//! The probes: one per `data.action` of a probe ConfigMap. docs/conformance.md lists the host
//! calls each makes; the Go guest makes the same ones in the same order.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use wasm_operator_abi::{
    GuestError, HostError, HostResponse, HttpRequest, HttpResponse, KubeRequest, LogLevel,
    LogRecord, PatchType, PropagationPolicy, ReconcileRequest,
};

use crate::{input_len, raw, Ending, Settings};

/// The field manager of the guest's server-side applies.
const FIELD_MANAGER: &str = "abi-conformance";

type Findings = BTreeMap<String, String>;

pub fn run(settings: &Settings, request: &ReconcileRequest) -> Ending {
    let Some(object) = &request.object else {
        // Probes named `absence-*` report why their object is gone; other probes' deletions
        // (the suite's cleanup) stay silent so their transcripts do not depend on it.
        if request.name.starts_with("absence-") {
            let reason = request
                .absent_reason
                .map_or("none", |reason| reason.as_str());
            let probe = Probe {
                settings,
                name: &request.name,
            };
            probe.report(&Findings::from([(
                "absentReason".to_owned(),
                reason.to_owned(),
            )]));
        }
        return Ending::ok(&json!({}));
    };
    let action = object
        .pointer("/data/action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let probe = Probe {
        settings,
        name: &request.name,
    };
    let attempt = request.attempt;
    let findings = match action {
        "kube" => probe.kube(),
        "http" => probe.http(),
        "memory" => return probe.memory(),
        "guest-error" => {
            return Ending::guest_error(&GuestError {
                message: format!("probe {} failed on purpose", request.name),
                requeue_after_ms: Some(3_600_000),
            })
        }
        // Each of these misbehaves on its first attempt and reports on the retry.
        "error-without-result" if attempt == 0 => {
            return Ending {
                result: None,
                code: 1,
            }
        }
        "no-result" if attempt == 0 => {
            return Ending {
                result: None,
                code: 0,
            }
        }
        "bad-return" if attempt == 0 => return Ending::ok_with_code(7),
        "bad-json" if attempt == 0 => {
            raw::kube_request(b"this is not JSON");
            return Ending::ok(&json!({}));
        }
        "bad-pointer" if attempt == 0 => {
            raw::kube_request_at(0xffff_fff0, 64);
            return Ending::ok(&json!({}));
        }
        "trap" if attempt == 0 => {
            // SAFETY: deliberately out of bounds: the access traps, which is the point.
            let value = unsafe { core::ptr::read_volatile(0xffff_fff0usize as *const u32) };
            return Ending::ok(&json!({"unreachable": value}));
        }
        "error-without-result"
        | "no-result"
        | "bad-return"
        | "bad-json"
        | "bad-pointer"
        | "trap" => Findings::from([("recoveredAtAttempt".to_owned(), attempt.to_string())]),
        other => Findings::from([("unknownAction".to_owned(), other.to_owned())]),
    };
    probe.report(&findings);
    Ending::ok(&json!({}))
}

impl Ending {
    fn ok_with_code(code: i32) -> Self {
        Ending {
            result: Some(b"{}".to_vec()),
            code,
        }
    }
}

struct Probe<'a> {
    settings: &'a Settings,
    name: &'a str,
}

impl Probe<'_> {
    fn namespace(&self) -> Option<String> {
        Some(self.settings.namespace.clone())
    }

    fn config_map(&self, name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": self.settings.namespace},
               "data": data})
    }

    fn get(&self, name: &str, cached: bool) -> HostResponse {
        kube(&KubeRequest::Get {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: self.namespace(),
            name: name.into(),
            cached,
        })
    }

    fn patch(&self, name: &str, patch_type: PatchType, body: Value) -> HostResponse {
        let apply = patch_type == PatchType::Apply;
        kube(&KubeRequest::Patch {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: self.namespace(),
            name: name.into(),
            subresource: None,
            patch_type,
            field_manager: apply.then(|| FIELD_MANAGER.to_owned()),
            force: apply,
            body,
        })
    }

    /// Writes the findings to `<probe>-result`.
    fn report(&self, findings: &Findings) {
        let name = format!("{}-result", self.name);
        let body = self.config_map(&name, json!(findings));
        self.patch(&name, PatchType::Apply, body);
    }

    /// Every Kubernetes verb, and the errors the API server and the host answer with.
    fn kube(&self) -> Findings {
        let mut found = Findings::new();
        let scratch = format!("{}-scratch", self.name);
        found.insert("cachedGet".into(), outcome(&self.get(self.name, true)));
        let missing = self.get(&format!("{}-missing", self.name), false);
        found.insert("getMissing".into(), outcome(&missing));
        found.insert(
            "getMissingIsNotFound".into(),
            flag(&missing, HostError::is_not_found),
        );

        let create = || {
            kube(&KubeRequest::Create {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: self.namespace(),
                body: self.config_map(&scratch, json!({"step": "created"})),
            })
        };
        let created = create();
        found.insert("create".into(), outcome(&created));
        let again = create();
        found.insert("createAgain".into(), outcome(&again));
        found.insert(
            "createAgainIsAlreadyExists".into(),
            flag(&again, HostError::is_already_exists),
        );
        found.insert(
            "createAgainIsConflict".into(),
            flag(&again, HostError::is_conflict),
        );

        let original = match &created {
            HostResponse::Ok(object) => object.clone(),
            HostResponse::Error(_) => json!({}),
        };
        let update = |step: &str| {
            let mut body = original.clone();
            body["data"]["step"] = json!(step);
            kube(&KubeRequest::Update {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: self.namespace(),
                name: scratch.clone(),
                subresource: None,
                body,
            })
        };
        found.insert("update".into(), outcome(&update("updated")));
        // The same resourceVersion again: the object has moved on since.
        let stale = update("stale");
        found.insert("staleUpdate".into(), outcome(&stale));
        found.insert(
            "staleUpdateIsConflict".into(),
            flag(&stale, HostError::is_conflict),
        );

        let merge = self.patch(
            &scratch,
            PatchType::Merge,
            json!({"data": {"merge": "yes"}}),
        );
        found.insert("mergePatch".into(), outcome(&merge));
        let json_patch = json!([{"op": "add", "path": "/data/json", "value": "yes"}]);
        found.insert(
            "jsonPatch".into(),
            outcome(&self.patch(&scratch, PatchType::Json, json_patch)),
        );
        let strategic = self.patch(
            &scratch,
            PatchType::Strategic,
            json!({"data": {"strategic": "yes"}}),
        );
        found.insert("strategicPatch".into(), outcome(&strategic));
        let apply_body = self.config_map(&scratch, json!({"apply": "yes"}));
        found.insert(
            "applyPatch".into(),
            outcome(&self.patch(&scratch, PatchType::Apply, apply_body)),
        );

        let list =
            |label_selector: Option<String>, field_selector: Option<String>, cached: bool| {
                kube(&KubeRequest::List {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: self.namespace(),
                    label_selector,
                    field_selector,
                    cached,
                })
            };
        let by_label = list(Some(crate::PROBE_LABEL.into()), None, false);
        found.insert("listByLabel".into(), count(&by_label));
        let by_field = list(None, Some(format!("metadata.name={scratch}")), false);
        found.insert("listByField".into(), count(&by_field));
        let from_cache = list(Some(crate::PROBE_LABEL.into()), None, true);
        found.insert("listCached".into(), count(&from_cache));

        let delete = || {
            kube(&KubeRequest::Delete {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: self.namespace(),
                name: scratch.clone(),
                propagation_policy: Some(PropagationPolicy::Background),
            })
        };
        found.insert("delete".into(), outcome(&delete()));
        let deleted_again = delete();
        found.insert("deleteAgain".into(), outcome(&deleted_again));
        found.insert(
            "deleteAgainIsNotFound".into(),
            flag(&deleted_again, HostError::is_not_found),
        );

        let unknown = kube(&KubeRequest::Get {
            api_version: "example.com/v1".into(),
            kind: "Nope".into(),
            namespace: self.namespace(),
            name: "x".into(),
            cached: false,
        });
        found.insert("unknownKind".into(), outcome(&unknown));
        found
    }

    /// Outbound HTTP: any status is an answer; refusals, timeouts, size limits and transport
    /// failures are errors.
    fn http(&self) -> Findings {
        let base = &self.settings.http;
        let get = |url: String, timeout_ms: Option<u64>| HttpRequest {
            method: "GET".into(),
            url,
            headers: BTreeMap::from([("x-probe".to_owned(), self.name.to_owned())]),
            body: None,
            timeout_ms,
        };
        let mut found = Findings::new();
        found.insert(
            "get200".into(),
            http_outcome(&http(&get(format!("{base}/fixed/status/200"), None))),
        );
        found.insert(
            "get503".into(),
            http_outcome(&http(&get(format!("{base}/fixed/status/503"), None))),
        );
        let mut echo = get(format!("{base}/fixed/echo"), None);
        echo.method = "POST".into();
        echo.headers
            .insert("content-type".into(), "text/plain".into());
        echo.body = Some("ping".into());
        found.insert("echo".into(), http_outcome(&http(&echo)));
        found.insert(
            "hang".into(),
            http_outcome(&http(&get(format!("{base}/fixed/hang"), Some(300)))),
        );
        found.insert(
            "large".into(),
            http_outcome(&http(&get(format!("{base}/fixed/large/100000"), None))),
        );
        found.insert(
            "denied".into(),
            http_outcome(&http(&get("http://denied.invalid/".into(), None))),
        );
        let closed = format!("{}/", self.settings.closed);
        found.insert("closed".into(), http_outcome(&http(&get(closed, None))));
        found
    }

    /// The memory protocol's corner cases, and `log` at every level.
    fn memory(&self) -> Ending {
        let mut found = Findings::new();
        let mut small = [0u8; 16];
        found.insert(
            "pendingAtStart".into(),
            raw::response_read(&mut small).to_string(),
        );
        let prefix = raw::input(4);
        found.insert(
            "inputPrefix".into(),
            String::from_utf8_lossy(&prefix).into_owned(),
        );
        found.insert(
            "inputWhole".into(),
            (raw::input(input_len()).len() as u32 == input_len()).to_string(),
        );

        let request = serde_json::to_vec(&KubeRequest::Get {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: self.namespace(),
            name: self.name.into(),
            cached: true,
        })
        .unwrap_or_default();
        let len = raw::kube_request(&request);
        let mut three = [0u8; 3];
        found.insert(
            "partialRead".into(),
            raw::response_read(&mut three).to_string(),
        );
        found.insert(
            "partialBytes".into(),
            String::from_utf8_lossy(&three).into_owned(),
        );
        found.insert(
            "wholeRead".into(),
            (raw::read_response(len).len() as u32 == len).to_string(),
        );
        for level in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Trace,
        ] {
            let record = LogRecord {
                level,
                message: "memory probe".into(),
                fields: BTreeMap::from([("probe".to_owned(), json!(self.name))]),
            };
            raw::log(&serde_json::to_vec(&record).unwrap_or_default());
        }
        found.insert("logged".into(), "5".into());
        found.insert(
            "readAfterLog".into(),
            (raw::read_response(len).len() as u32 == len).to_string(),
        );
        self.report(&found);
        // The last write wins: the first is not even a ReconcileResult.
        raw::result_write(b"not a result");
        Ending::ok(&json!({}))
    }
}

fn kube(request: &KubeRequest) -> HostResponse {
    let bytes = serde_json::to_vec(request).unwrap_or_default();
    parse(&raw::read_response(raw::kube_request(&bytes)))
}

fn http(request: &HttpRequest) -> HostResponse {
    let bytes = serde_json::to_vec(request).unwrap_or_default();
    parse(&raw::read_response(raw::http_request(&bytes)))
}

fn parse(bytes: &[u8]) -> HostResponse {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        HostResponse::Error(HostError::invalid_request(format!(
            "unparseable HostResponse: {e}"
        )))
    })
}

/// `ok`, `apiStatus <code> <reason>`, `limitExceeded <limit>` or the error type.
fn outcome(response: &HostResponse) -> String {
    match response {
        HostResponse::Ok(_) => "ok".into(),
        HostResponse::Error(error) => error_outcome(error),
    }
}

fn error_outcome(error: &HostError) -> String {
    match error {
        HostError::ApiStatus { status, .. } => {
            format!(
                "apiStatus {} {}",
                status.code,
                status.reason.as_deref().unwrap_or_default()
            )
        }
        HostError::LimitExceeded { limit, .. } => format!("limitExceeded {limit}"),
        other => other.type_name().into(),
    }
}

/// `ok <status> <body>` or the error.
fn http_outcome(response: &HostResponse) -> String {
    match response {
        HostResponse::Ok(value) => match serde_json::from_value::<HttpResponse>(value.clone()) {
            Ok(answer) => format!("ok {} {}", answer.status, answer.body),
            Err(e) => format!("unparseable HttpResponse: {e}"),
        },
        HostResponse::Error(error) => error_outcome(error),
    }
}

fn flag(response: &HostResponse, test: fn(&HostError) -> bool) -> String {
    match response {
        HostResponse::Error(error) => test(error).to_string(),
        HostResponse::Ok(_) => "false".into(),
    }
}

fn count(response: &HostResponse) -> String {
    match response {
        HostResponse::Ok(list) => list["items"].as_array().map_or(0, Vec::len).to_string(),
        HostResponse::Error(error) => error_outcome(error),
    }
}

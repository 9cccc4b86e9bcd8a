//! The scenario format: one YAML file per scenario under `conformance/scenarios/`, read into
//! [`Scenario`]. docs/conformance.md describes every field and step with examples.
//!
//! Scenarios are data, not code: they name an operator (a row of [`crate::subjects`]), its
//! config, the namespaces it needs, and a list of [`Step`]s. Strings may hold placeholders that
//! are filled in per run (`${ns}`, `${<namespace role>}`, `${http}`, `${closed}`), so that every
//! run has namespaces and loopback ports of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// The file's stem, e.g. `webapp-create`; set by [`load_dir`].
    #[serde(skip)]
    pub name: String,
    /// What the scenario shows, one sentence.
    pub description: String,
    /// The operator under test: a row of [`crate::subjects::SUBJECTS`].
    pub operator: String,
    /// Handed to the operator's init (placeholders expanded).
    #[serde(default = "empty_object")]
    pub config: Value,
    /// Namespaces besides `${ns}`, by role: created before the operator is loaded, referred to
    /// as `${<role>}`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// URL prefixes the operator may reach (placeholders expanded).
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// Include the message of failed reconciles in the transcript (only for operators whose
    /// messages both implementations spell the same way, such as the ABI guests).
    #[serde(default)]
    pub reconcile_messages: bool,
    /// Loading the operator must fail with an error containing this text (its init fails);
    /// the steps then run without it.
    #[serde(default)]
    pub load_error: Option<String>,
    pub steps: Vec<Step>,
    /// The file as parsed, before placeholders are expanded.
    #[serde(skip)]
    raw: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A reference to one object. `namespace` defaults to `${ns}` for namespaced kinds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One step. The runner records which step every host call happened in, and in the swapping
/// pass forces a swap-out and swap-in of the operator after each step.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Server-side apply of an object by the test (field manager `conformance`).
    Apply(Value),
    /// A JSON merge patch by the test.
    Patch {
        #[serde(flatten)]
        target: ObjectRef,
        #[serde(default)]
        subresource: Option<String>,
        body: Value,
    },
    /// Deletes an object (foreground is not used: finalizers are the operator's business).
    Delete(ObjectRef),
    /// Creates the namespace of a role that was not created up front.
    CreateNamespace(String),
    /// Waits until the object exists and every JSON pointer in `fields` has the value given
    /// (`{fnv1a: "<text>"}` stands for the 16-hex-digit FNV-1a hash of the text), or until it is
    /// gone when `absent` is true.
    Wait {
        #[serde(flatten)]
        target: ObjectRef,
        #[serde(default)]
        fields: BTreeMap<String, Value>,
        #[serde(default)]
        absent: bool,
    },
    /// Waits until an events.k8s.io/v1 Event about `regarding` (in `${ns}`) with `reason`, and
    /// `note` when given, exists.
    Event {
        regarding: String,
        reason: String,
        #[serde(default)]
        note: Option<String>,
    },
    /// Waits for a reconcile of `${ns}/<name>` that started after the previous step began: the
    /// way past a requeue timer or a backoff delay. With `failed`, waits for a failed one whose
    /// reason (guest, trap, deadline, memory, abi, host) is `failed`.
    Reconcile {
        name: String,
        #[serde(default)]
        failed: Option<String>,
    },
    /// Sets what the fake HTTP server answers from now on (paths outside `/fixed/`).
    Serve(Serve),
    /// Forces a swap-out and a swap-in of the operator now (in both passes).
    Swap {},
}

/// The fake HTTP server's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Serve {
    /// A Prometheus query answer: a vector with one sample of this value.
    #[serde(default)]
    pub value: Option<String>,
    /// Or this status code and body.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<String>,
    /// Or no answer at all: the request hangs until the caller's timeout.
    #[serde(default)]
    pub hang: bool,
}

impl Step {
    /// A short label for reports: `apply WebApp shop`.
    pub fn label(&self) -> String {
        match self {
            Step::Apply(object) => format!(
                "apply {} {}",
                object["kind"].as_str().unwrap_or("?"),
                object["metadata"]["name"].as_str().unwrap_or("?")
            ),
            Step::Patch {
                target,
                subresource,
                ..
            } => match subresource {
                Some(sub) => format!("patch {} {} /{sub}", target.kind, target.name),
                None => format!("patch {} {}", target.kind, target.name),
            },
            Step::Delete(target) => format!("delete {} {}", target.kind, target.name),
            Step::CreateNamespace(role) => format!("create namespace {role}"),
            Step::Wait {
                target,
                absent: true,
                ..
            } => {
                format!("wait until {} {} is gone", target.kind, target.name)
            }
            Step::Wait { target, .. } => format!("wait for {} {}", target.kind, target.name),
            Step::Event {
                regarding, reason, ..
            } => {
                format!("wait for a {reason} Event about {regarding}")
            }
            Step::Reconcile { name, failed: None } => {
                format!("wait for the next reconcile of {name}")
            }
            Step::Reconcile {
                name,
                failed: Some(reason),
            } => {
                format!("wait for a failed ({reason}) reconcile of {name}")
            }
            Step::Serve(serve) => match (&serve.value, serve.status, serve.hang) {
                (_, _, true) => "serve nothing (hang)".to_owned(),
                (Some(value), _, _) => format!("serve value {value}"),
                (None, Some(status), _) => format!("serve HTTP {status}"),
                (None, None, false) => "serve".to_owned(),
            },
            Step::Swap {} => "swap out and in".to_owned(),
        }
    }

    /// Namespace roles this step creates later (so their names are known from the start).
    fn deferred_namespace(&self) -> Option<&str> {
        match self {
            Step::CreateNamespace(role) => Some(role),
            _ => None,
        }
    }
}

impl Scenario {
    /// Every namespace role of the scenario: `ns`, then those created up front, then those
    /// created by steps.
    pub fn namespace_roles(&self) -> Vec<String> {
        let mut roles = vec!["ns".to_owned()];
        roles.extend(self.namespaces.iter().cloned());
        roles.extend(
            self.steps
                .iter()
                .filter_map(Step::deferred_namespace)
                .map(str::to_owned),
        );
        roles
    }

    /// This scenario with every `${...}` placeholder replaced from `vars`.
    pub fn expanded(&self, vars: &BTreeMap<String, String>) -> anyhow::Result<Scenario> {
        from_value(expand(self.raw.clone(), vars)?, &self.name)
    }
}

/// Replaces `${key}` in every string of `value` (keys of objects included).
pub fn expand(value: Value, vars: &BTreeMap<String, String>) -> anyhow::Result<Value> {
    Ok(match value {
        Value::String(text) => Value::String(expand_str(&text, vars)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| expand(item, vars))
                .collect::<anyhow::Result<_>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| Ok((expand_str(&key, vars)?, expand(item, vars)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => other,
    })
}

fn expand_str(text: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .with_context(|| format!("unterminated placeholder in {text:?}"))?;
        let key = &after[..end];
        let value = vars.get(key).with_context(|| {
            let known: Vec<_> = vars.keys().map(|k| format!("${{{k}}}")).collect();
            format!(
                "unknown placeholder ${{{key}}} in {text:?}; known: {} (namespace roles come from `namespaces:` and `createNamespace` steps)",
                known.join(", ")
            )
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads every `*.yaml` in `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Scenario>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|path| load_file(path)).collect()
}

/// Reads one scenario file.
pub fn load_file(path: &Path) -> anyhow::Result<Scenario> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, &file_stem(path)).with_context(|| format!("in scenario {}", path.display()))
}

/// Parses a scenario named `name` from YAML text.
pub fn parse(text: &str, name: &str) -> anyhow::Result<Scenario> {
    from_value(serde_saphyr::from_str(text)?, name)
}

fn from_value(raw: Value, name: &str) -> anyhow::Result<Scenario> {
    let mut scenario: Scenario = serde_json::from_value(raw.clone())?;
    scenario.name = name.to_owned();
    scenario.raw = raw;
    anyhow::ensure!(
        !scenario.steps.is_empty() || scenario.load_error.is_some(),
        "a scenario needs at least one step"
    );
    Ok(scenario)
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The 64-bit FNV-1a hash of `text` as 16 lower-case hex digits (the counter's checksum).
pub fn fnv1a_hex(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_and_unknown_ones_are_named() {
        let vars = BTreeMap::from([("ns".to_owned(), "c-1".to_owned())]);
        assert_eq!(expand_str("a/${ns}/b", &vars).unwrap(), "a/c-1/b");
        let error = expand_str("${nope}", &vars).unwrap_err().to_string();
        assert!(
            error.contains("${nope}") && error.contains("${ns}"),
            "{error}"
        );
    }

    #[test]
    fn fnv1a_matches_the_counter_worked_example() {
        assert_eq!(fnv1a_hex("default/a@1;"), "d6bd7b4133c64266");
        assert_eq!(fnv1a_hex("default/a@1;default/a@2;"), "01aa10780731a9fa");
    }
}

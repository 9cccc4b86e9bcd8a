//! Normalization: what differs between two correct runs is replaced by a stable token, so that a
//! transcript or an object can be compared across runs, passes and languages.
//!
//! - the run's own names (namespaces, loopback URLs) become their placeholders (`${ns}`,
//!   `${http}`), the way scenarios spell them;
//! - `uid`s and any UUID inside a string become `<uid>`, `resourceVersion`s `<resourceVersion>`,
//!   RFC 3339 timestamps `<time>`;
//! - a name the API server generated from `generateName` becomes `<generateName><generated>`;
//! - the counter's `checksum` becomes `<checksum>`: it hashes the namespace name, so it differs
//!   per run; scenarios check its value against the expected hash instead.
//!
//! Object keys come out sorted, whatever order an implementation wrote them in.

use serde_json::{Map, Value};
use wasm_operator_abi::tape::is_timestamp;

/// Replaces run-specific values in JSON.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    /// (text as it appears in this run, placeholder), longest text first.
    replacements: Vec<(String, String)>,
}

impl Normalizer {
    /// `replacements`: (actual text, placeholder), e.g. (`c-3f2a1b-ns`, `${ns}`).
    pub fn new(mut replacements: Vec<(String, String)>) -> Self {
        replacements.retain(|(actual, _)| !actual.is_empty());
        replacements.sort_by_key(|(actual, _)| std::cmp::Reverse(actual.len()));
        Normalizer { replacements }
    }

    /// The normalized copy of `value`.
    pub fn value(&self, value: &Value) -> Value {
        self.walk(value, None)
    }

    /// The normalized copy of a string.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (actual, placeholder) in &self.replacements {
            if out.contains(actual.as_str()) {
                out = out.replace(actual.as_str(), placeholder);
            }
        }
        if is_timestamp(&out) {
            return "<time>".to_owned();
        }
        replace_uuids(&out)
    }

    fn walk(&self, value: &Value, key: Option<&str>) -> Value {
        match value {
            Value::String(text) => match key {
                Some("uid") => "<uid>".into(),
                Some("resourceVersion") if !text.is_empty() => "<resourceVersion>".into(),
                Some("checksum") => "<checksum>".into(),
                _ => self.text(text).into(),
            },
            Value::Array(items) => Value::Array(items.iter().map(|v| self.walk(v, None)).collect()),
            Value::Object(map) => self.object(map),
            other => other.clone(),
        }
    }

    fn object(&self, map: &Map<String, Value>) -> Value {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        let mut out = Map::new();
        for key in keys {
            let normalized_key = self.text(key);
            out.insert(normalized_key, self.walk(&map[key], Some(key)));
        }
        // A generated name: keep the chosen prefix, drop the server's random suffix.
        if let Some(Value::Object(metadata)) = out.get_mut("metadata") {
            if let (Some(Value::String(prefix)), Some(Value::String(name))) =
                (metadata.get("generateName"), metadata.get("name"))
            {
                if name.starts_with(prefix.as_str()) && name != prefix {
                    let generated = format!("{prefix}<generated>");
                    metadata.insert("name".into(), generated.into());
                }
            }
        }
        Value::Object(out)
    }
}

/// Replaces every `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex) in `text` with `<uid>`.
fn replace_uuids(text: &str) -> String {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    const LEN: usize = 36;
    let bytes = text.as_bytes();
    let is_uuid_at = |start: usize| {
        if start + LEN > bytes.len() {
            return false;
        }
        let mut at = start;
        for (index, group) in GROUPS.iter().enumerate() {
            if !bytes[at..at + group].iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            at += group;
            if index < GROUPS.len() - 1 {
                if bytes[at] != b'-' {
                    return false;
                }
                at += 1;
            }
        }
        // Not part of a longer hex run.
        bytes.get(at).is_none_or(|b| !b.is_ascii_hexdigit())
            && (start == 0 || !bytes[start - 1].is_ascii_hexdigit())
    };
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        if is_uuid_at(index) {
            out.push_str("<uid>");
            index += LEN;
        } else {
            // Copy one UTF-8 character.
            let ch = text[index..].chars().next().unwrap_or_default();
            out.push(ch);
            index += ch.len_utf8().max(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_specific_values_become_tokens() {
        let normalizer = Normalizer::new(vec![
            ("c-1a2b3c-ns".into(), "${ns}".into()),
            ("http://127.0.0.1:4242".into(), "${http}".into()),
        ]);
        let object = json!({
            "metadata": {"name": "shop-x7k2q", "generateName": "shop-", "namespace": "c-1a2b3c-ns",
                         "uid": "5e0c6a43-3f5b-4a0e-9d55-1c0b5a0e6f11", "resourceVersion": "812",
                         "creationTimestamp": "2026-01-02T03:04:05Z"},
            "note": "owner 5e0c6a43-3f5b-4a0e-9d55-1c0b5a0e6f11 at http://127.0.0.1:4242/q",
            "eventTime": "2026-01-02T03:04:05.123456Z",
            "status": {"checksum": "d6bd7b4133c64266"},
        });
        assert_eq!(
            Normalizer::value(&normalizer, &object),
            json!({
                "metadata": {"name": "shop-<generated>", "generateName": "shop-", "namespace": "${ns}",
                             "uid": "<uid>", "resourceVersion": "<resourceVersion>",
                             "creationTimestamp": "<time>"},
                "note": "owner <uid> at ${http}/q",
                "eventTime": "<time>",
                "status": {"checksum": "<checksum>"},
            })
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let normalizer = Normalizer::default();
        for text in [
            "0/1 replicas ready",
            "2026",
            "deadbeef-cafe",
            "metric value 12.5",
        ] {
            assert_eq!(normalizer.text(text), text);
        }
    }
}

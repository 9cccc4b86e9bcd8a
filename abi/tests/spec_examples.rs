//! Keeps docs/abi.md and the message types in step: every ```json abi:TYPE block of the
//! specification must parse as TYPE and survive a round trip, TYPE must be a known message type,
//! and every message type (and every tagged variant: each verb, each HostError and Mapping type,
//! both HostResponse arms) must have at least one example.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wasm_operator_abi::*;

/// Read at run time relative to the package cargo runs the test in: the target directory is
/// shared between checkouts, so a path compiled in could name another checkout's copy.
fn spec_path() -> std::path::PathBuf {
    let package =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    std::path::Path::new(&package).join("../docs/abi.md")
}

/// The info-string prefix that marks a checked example.
const EXAMPLE_TAG: &str = "abi:";

/// Every message type, as named in the specification's example blocks.
const MESSAGE_TYPES: &[&str] = &[
    "InitInput",
    "Registration",
    "WatchSpec",
    "Watch",
    "Mapping",
    "ReconcileRequest",
    "ReconcileResult",
    "GuestError",
    "KubeRequest",
    "HttpRequest",
    "HttpResponse",
    "LogRecord",
    "HostResponse",
    "HostError",
    "KubeStatus",
];

struct Example {
    type_name: String,
    json: String,
    line: usize,
}

/// Pulls every fenced block whose info string is `json abi:TYPE` out of the Markdown.
fn extract_examples(markdown: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut open: Option<Example> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(example) = open.as_mut() {
            if trimmed.starts_with("```") {
                examples.push(open.take().unwrap());
            } else {
                example.json.push_str(line);
                example.json.push('\n');
            }
            continue;
        }
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        if words.next() != Some("json") {
            continue;
        }
        if let Some(type_name) = words.find_map(|word| word.strip_prefix(EXAMPLE_TAG)) {
            open = Some(Example {
                type_name: type_name.to_owned(),
                json: String::new(),
                line: index + 1,
            });
        }
    }
    assert!(open.is_none(), "docs/abi.md ends inside a code block");
    examples
}

/// Parses one example as `T`, writes it back and compares. What the example spells out must come
/// back unchanged; the writer may add only fields holding a default (`[]`, `{}`, `false`, `0`)
/// and may drop only fields the example sets to `null`. Returns the value written back, so the
/// caller can see which variant it was.
fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    example: &Example,
) -> Result<Value, String> {
    let parsed: T =
        serde_json::from_str(&example.json).map_err(|error| format!("does not parse: {error}"))?;
    let written =
        serde_json::to_value(&parsed).map_err(|error| format!("does not serialize: {error}"))?;
    let reparsed: T = serde_json::from_value(written.clone())
        .map_err(|error| format!("does not re-parse: {error}"))?;
    if reparsed != parsed {
        return Err(format!(
            "round trip changed the value: {parsed:?} became {reparsed:?}"
        ));
    }
    let original: Value = serde_json::from_str(&example.json).expect("parsed once already");
    same_json(&original, &written, "$")?;
    Ok(written)
}

fn same_json(example: &Value, written: &Value, path: &str) -> Result<(), String> {
    match (example, written) {
        (Value::Object(example_fields), Value::Object(written_fields)) => {
            for (key, value) in example_fields {
                let field_path = format!("{path}.{key}");
                match written_fields.get(key) {
                    Some(written_value) => same_json(value, written_value, &field_path)?,
                    None if value.is_null() => {}
                    None => {
                        return Err(format!(
                            "{field_path} is lost on a round trip (misspelt or unknown field?)"
                        ))
                    }
                }
            }
            for (key, value) in written_fields {
                if !example_fields.contains_key(key) && !is_default(value) {
                    return Err(format!(
                        "{path}.{key} = {value} appears from nowhere on a round trip"
                    ));
                }
            }
            Ok(())
        }
        (Value::Array(example_items), Value::Array(written_items))
            if example_items.len() == written_items.len() =>
        {
            for (index, (example_item, written_item)) in
                example_items.iter().zip(written_items).enumerate()
            {
                same_json(example_item, written_item, &format!("{path}[{index}]"))?;
            }
            Ok(())
        }
        _ if example == written => Ok(()),
        _ => Err(format!("{path} was {example} but came back as {written}")),
    }
}

fn is_default(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_u64() == Some(0),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        Value::String(_) => false,
    }
}

/// Checks one example against its type and names what it covers, e.g. `KubeRequest` and
/// `KubeRequest/get`.
fn check_example(example: &Example) -> Result<Vec<String>, String> {
    let type_name = example.type_name.as_str();
    // `Type/variant` for tagged types, from the tag field of the value written back.
    let variant = |type_name: &str, written: &Value, tag_field: &str| -> String {
        let variant = written
            .get(tag_field)
            .and_then(Value::as_str)
            .unwrap_or_default();
        format!("{type_name}/{variant}")
    };
    let mut covered = vec![type_name.to_owned()];
    match type_name {
        "InitInput" => drop(check::<InitInput>(example)?),
        "Registration" => drop(check::<Registration>(example)?),
        "WatchSpec" => drop(check::<WatchSpec>(example)?),
        "Watch" => drop(check::<Watch>(example)?),
        "Mapping" => covered.push(variant(type_name, &check::<Mapping>(example)?, "type")),
        "ReconcileRequest" => drop(check::<ReconcileRequest>(example)?),
        "ReconcileResult" => drop(check::<ReconcileResult>(example)?),
        "GuestError" => drop(check::<GuestError>(example)?),
        "KubeRequest" => covered.push(variant(type_name, &check::<KubeRequest>(example)?, "verb")),
        "HttpRequest" => drop(check::<HttpRequest>(example)?),
        "HttpResponse" => drop(check::<HttpResponse>(example)?),
        "LogRecord" => drop(check::<LogRecord>(example)?),
        "HostResponse" => {
            let written = check::<HostResponse>(example)?;
            match written.get("error") {
                Some(error) => {
                    covered.push("HostResponse/error".to_owned());
                    covered.push(variant("HostError", error, "type"));
                }
                None => covered.push("HostResponse/ok".to_owned()),
            }
        }
        "HostError" => covered.push(variant(type_name, &check::<HostError>(example)?, "type")),
        "KubeStatus" => drop(check::<KubeStatus>(example)?),
        unknown => {
            return Err(format!(
                "unknown message type `{unknown}`: use one of {} (or add the type to this test)",
                MESSAGE_TYPES.join(", ")
            ))
        }
    }
    Ok(covered)
}

/// What the specification must show an example of.
fn required_coverage() -> BTreeSet<String> {
    let mut required: BTreeSet<String> =
        MESSAGE_TYPES.iter().map(|name| name.to_string()).collect();
    for verb in ["get", "list", "create", "update", "patch", "delete"] {
        required.insert(format!("KubeRequest/{verb}"));
    }
    for error_type in [
        "apiStatus",
        "capabilityDenied",
        "limitExceeded",
        "timeout",
        "transport",
        "invalidRequest",
    ] {
        required.insert(format!("HostError/{error_type}"));
    }
    for mapping in ["owner", "labels", "all"] {
        required.insert(format!("Mapping/{mapping}"));
    }
    required.insert("HostResponse/ok".to_owned());
    required.insert("HostResponse/error".to_owned());
    required
}

#[test]
fn every_example_in_the_spec_is_a_valid_message_and_every_message_has_one() {
    let path = spec_path();
    let markdown = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let examples = extract_examples(&markdown);

    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for example in &examples {
        match check_example(example) {
            Ok(names) => covered.extend(names),
            Err(problem) => failures.push(format!(
                "docs/abi.md:{} (abi:{}): {problem}",
                example.line, example.type_name
            )),
        }
    }
    let missing: Vec<_> = required_coverage().difference(&covered).cloned().collect();
    if !missing.is_empty() {
        failures.push(format!(
            "docs/abi.md has no example of: {}",
            missing.join(", ")
        ));
    }
    assert!(
        failures.is_empty(),
        "{} example problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(examples.len() >= required_coverage().len() - MESSAGE_TYPES.len());
}

#[test]
fn the_checker_rejects_what_it_must() {
    let example = |type_name: &str, json: &str| Example {
        type_name: type_name.into(),
        json: json.into(),
        line: 1,
    };
    let unknown = check_example(&example("Frobnicate", "{}")).unwrap_err();
    assert!(
        unknown.contains("unknown message type `Frobnicate`"),
        "{unknown}"
    );
    let misspelt =
        check_example(&example("ReconcileResult", r#"{"requeueAfterMS": 5}"#)).unwrap_err();
    assert!(misspelt.contains("$.requeueAfterMS is lost"), "{misspelt}");
    let wrong_type = check_example(&example("GuestError", r#"{"message": 7}"#)).unwrap_err();
    assert!(wrong_type.contains("does not parse"), "{wrong_type}");
    assert_eq!(
        check_example(&example(
            "KubeRequest",
            r#"{"verb":"get","apiVersion":"v1","kind":"Pod","name":"p"}"#
        ))
        .unwrap(),
        ["KubeRequest", "KubeRequest/get"]
    );

    let markdown = "text\n```json abi:GuestError\n{\"message\": \"m\"}\n```\n```json\n{}\n```\n```rust\nfn x() {}\n```\n";
    let examples = extract_examples(markdown);
    assert_eq!(examples.len(), 1);
    assert_eq!(
        (examples[0].type_name.as_str(), examples[0].line),
        ("GuestError", 2)
    );
}

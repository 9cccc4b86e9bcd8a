//! Deciding whether a status needs writing. Writing an unchanged status costs an API round trip
//! and a watch event for every watcher, so operators compare first. The comparison ignores
//! `lastTransitionTime` (a condition rewritten with the same status keeps the old time anyway)
//! and treats a `null` field as an absent one, which is what a merge patch makes of it.

use serde::Serialize;
use serde_json::{Map, Value};

/// Whether `desired` differs from `current` (`None`: the object has no status yet) in any field
/// other than `lastTransitionTime`.
pub fn differs<S: Serialize>(current: Option<&S>, desired: &S) -> bool {
    let current = current.map_or(Ok(Value::Object(Map::new())), serde_json::to_value);
    match (current, serde_json::to_value(desired)) {
        (Ok(current), Ok(desired)) => normalize(current) != normalize(desired),
        // A status that cannot be turned into JSON cannot be written either; calling it changed
        // lets the write report the problem.
        _ => true,
    }
}

fn normalize(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(key, value)| !value.is_null() && key != "lastTransitionTime")
                .map(|(key, value)| (key, normalize(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

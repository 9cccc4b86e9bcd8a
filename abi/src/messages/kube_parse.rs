//! [`KubeRequest::from_json_slice`]: parses a KubeRequest without serde's buffering of
//! internally tagged enums.
//!
//! The derived `Deserialize` of an internally tagged enum must find the `verb` before it knows
//! the variant, so it first copies every field into serde's private `Content` tree and only then
//! builds the variant from it: a `body` exists twice, as `Content` and as `Value`, each about 16
//! times the size of dense JSON such as `[0,0,0,...]`. Here the one large field, `body`, is
//! parsed straight into its `Value` in a single pass, and every other field (strings, numbers,
//! booleans: small) goes through the derived implementation, so the accepted messages and the
//! error messages stay those of the derived `Deserialize`.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::kube::KubeRequest;

impl KubeRequest {
    /// Parses the JSON of one KubeRequest, accepting exactly the objects `serde_json::from_slice`
    /// accepts, with one copy of the body instead of two.
    pub fn from_json_slice(bytes: &[u8]) -> serde_json::Result<KubeRequest> {
        let fields: TopLevel = serde_json::from_slice(bytes)?;
        let mut request: KubeRequest = serde_json::from_slice(&fields.without_body())?;
        if let (Some(parsed), Some(slot)) = (fields.body, request.body_mut()) {
            *slot = parsed;
        }
        Ok(request)
    }

    fn body_mut(&mut self) -> Option<&mut Value> {
        match self {
            KubeRequest::Create { body, .. }
            | KubeRequest::Update { body, .. }
            | KubeRequest::Patch { body, .. } => Some(body),
            KubeRequest::Get { .. } | KubeRequest::List { .. } | KubeRequest::Delete { .. } => None,
        }
    }
}

/// The top-level members of the message in their order, the last `body` parsed as a `Value`.
struct TopLevel {
    members: Vec<(String, Member)>,
    body: Option<Value>,
}

enum Member {
    /// A string, number, boolean or null, kept as it was.
    Scalar(Value),
    /// An array or object: no KubeRequest field but `body` has one, so only its type matters
    /// (for the error message, or nothing when the field is unknown and ignored).
    Array,
    Object,
    /// `body`: parsed into [`TopLevel::body`], written back as `null` so the derived
    /// implementation still sees the field (and rejects it if it is repeated).
    Body,
}

impl TopLevel {
    /// The message with `body` replaced by `null` and every array or object emptied: small, so
    /// serde's buffering of it costs nothing worth counting.
    fn without_body(&self) -> Vec<u8> {
        let mut json = Vec::with_capacity(64 * self.members.len() + 2);
        json.push(b'{');
        for (index, (key, member)) in self.members.iter().enumerate() {
            if index > 0 {
                json.push(b',');
            }
            // Writing a String or a scalar Value to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut json, key);
            json.push(b':');
            match member {
                Member::Scalar(value) => {
                    let _ = serde_json::to_writer(&mut json, value);
                }
                Member::Array => json.extend_from_slice(b"[]"),
                Member::Object => json.extend_from_slice(b"{}"),
                Member::Body => json.extend_from_slice(b"null"),
            }
        }
        json.push(b'}');
        json
    }
}

impl<'de> de::Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopLevelVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a KubeRequest object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut members = Vec::new();
        let mut body = None;
        while let Some(key) = map.next_key::<String>()? {
            let member = if key == "body" {
                body = Some(map.next_value::<Value>()?);
                Member::Body
            } else {
                map.next_value::<Member>()?
            };
            members.push((key, member));
        }
        Ok(TopLevel { members, body })
    }
}

impl<'de> de::Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Member, E> {
        Ok(Member::Scalar(Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Member, E> {
        Ok(Member::Scalar(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Member, E> {
        Ok(Member::Scalar(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Member, E> {
        Ok(Member::Scalar(value.into()))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Member, E> {
        Ok(Member::Scalar(Value::String(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Member, E> {
        Ok(Member::Scalar(Value::String(value)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Member, E> {
        Ok(Member::Scalar(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Member, E> {
        Ok(Member::Scalar(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
        // Skipped without allocating: only the fact that it is an array is kept.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Member::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Member::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both parsers agree: same request, or both refuse.
    fn agree(json: &str) -> Option<KubeRequest> {
        let derived = serde_json::from_str::<KubeRequest>(json);
        let direct = KubeRequest::from_json_slice(json.as_bytes());
        match (derived, direct) {
            (Ok(derived), Ok(direct)) => {
                assert_eq!(derived, direct, "{json}");
                Some(direct)
            }
            (Err(_), Err(_)) => None,
            (derived, direct) => panic!("{json}: derived {derived:?}, direct {direct:?}"),
        }
    }

    #[test]
    fn accepts_what_the_derived_implementation_accepts() {
        for json in [
            r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":"default","name":"web"}"#,
            r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":null,"name":"w","cached":true}"#,
            r#"{"apiVersion":"v1","kind":"ConfigMap","name":"web","verb":"delete","propagationPolicy":"Orphan"}"#,
            r#"{"verb":"list","apiVersion":"v1","kind":"Pod","labelSelector":"a=b","unknown":[1,{"x":2}]}"#,
            r#"{"verb":"create","apiVersion":"v1","kind":"ConfigMap","body":{"metadata":{"name":"x"},"data":[0,0,0]}}"#,
            r#"{"body":[1,"two",{"3":null}],"verb":"update","apiVersion":"v1","kind":"ConfigMap","name":"x","subresource":"status"}"#,
            r#"{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","name":"x","patchType":"apply","force":true,"fieldManager":"m","body":{}}"#,
            r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","name":"x","body":[0,0]}"#,
            r#"{"ver\u0062":"get","apiVersion":"v\u0031","kind":"ConfigMap","name":"x\"y"}"#,
        ] {
            assert!(agree(json).is_some(), "accepted: {json}");
        }
    }

    #[test]
    fn refuses_what_the_derived_implementation_refuses() {
        for json in [
            "",
            "[]",
            "null",
            "{this is not json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","name":"web"}"#,
            r#"{"verb":"fetch","apiVersion":"v1","kind":"ConfigMap","name":"web"}"#,
            r#"{"verb":"get","verb":"get","apiVersion":"v1","kind":"ConfigMap","name":"web"}"#,
            r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","name":"a","name":"b"}"#,
            r#"{"verb":"get","apiVersion":["v1"],"kind":"ConfigMap","name":"web"}"#,
            r#"{"verb":"get","apiVersion":"v1","kind":{},"name":"web"}"#,
            r#"{"verb":"get","apiVersion":"v1","kind":"ConfigMap","name":"web","cached":1}"#,
            r#"{"verb":"create","apiVersion":"v1","kind":"ConfigMap"}"#,
            r#"{"verb":"create","apiVersion":"v1","kind":"ConfigMap","body":{},"body":{}}"#,
            r#"{"verb":"create","apiVersion":"v1","kind":"ConfigMap","body":[0,0"#,
            r#"{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","name":"x","patchType":"yaml","body":{}}"#,
        ] {
            assert!(agree(json).is_none(), "refused: {json}");
        }
    }

    #[test]
    fn the_body_is_the_parsed_value() {
        let request = KubeRequest::from_json_slice(
            br#"{"verb":"create","apiVersion":"v1","kind":"ConfigMap","body":{"data":{"k":"v"}}}"#,
        )
        .unwrap();
        let KubeRequest::Create { body, .. } = request else {
            panic!("a create");
        };
        assert_eq!(body, serde_json::json!({"data": {"k": "v"}}));
    }
}

//! Documents: JSON objects with system fields `_id` (given or generated),
//! `_created`, `_updated` (ms since the epoch) and `_version` (1, then +1
//! per write, for optimistic concurrency). Limits keep one document from
//! hurting a store: size, nesting depth, field names.

use serde_json::{Map, Value};

use crate::error::Error;

/// Largest document, as compact JSON.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Deepest nesting of objects and arrays.
pub const MAX_DEPTH: usize = 32;
/// Longest `_id`.
pub const MAX_ID: usize = 128;

pub const SYSTEM_FIELDS: [&str; 4] = ["_id", "_created", "_updated", "_version"];

/// Checks a document sent by a client: an object, within the limits, field
/// names not empty and not starting with `$`, no system field but `_id`
/// (a string of 1–128 of `A-Z a-z 0-9 - _ .`).
pub fn check_incoming(doc: &Value) -> Result<(), Error> {
    let Value::Object(map) = doc else {
        return Err(Error::invalid("a document is a JSON object"));
    };
    let size = serde_json::to_vec(doc)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "the document is {size} bytes; the limit is {MAX_BYTES}"
        )));
    }
    for key in map.keys() {
        if key != "_id" && SYSTEM_FIELDS.contains(&key.as_str()) {
            return Err(Error::invalid(format!(
                "{key} is set by Bundoc; leave it out"
            )));
        }
    }
    if let Some(id) = map.get("_id") {
        check_id(id)?;
    }
    check_names_and_depth(doc, 0)
}

pub fn check_id(id: &Value) -> Result<&str, Error> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_ID
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match id {
        Value::String(s) if ok(s) => Ok(s),
        _ => Err(Error::invalid(format!(
            "_id is a string of 1 to {MAX_ID} of A-Z a-z 0-9 - _ ."
        ))),
    }
}

fn check_names_and_depth(value: &Value, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(format!(
            "documents nest at most {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key.is_empty() || key.starts_with('$') || key.contains('.') {
                    return Err(Error::invalid(format!(
                        "field name {key:?}: names are not empty and contain no '.' and do not start with '$'"
                    )));
                }
                check_names_and_depth(inner, depth + 1)?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_names_and_depth(v, depth + 1)),
        _ => Ok(()),
    }
}

/// JSON Merge Patch (RFC 7396): objects merge recursively, `null` removes
/// a field, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn incoming_documents_are_checked() {
        assert!(
            check_incoming(&json!({"_id": "order-1", "total": 5, "items": [{"sku": "a"}]})).is_ok()
        );
        let cases = [
            (json!([1]), "a JSON object"),
            (json!({"_version": 3}), "set by Bundoc"),
            (json!({"_created": 1}), "set by Bundoc"),
            (json!({"_id": 5}), "_id is a string"),
            (json!({"_id": "a b"}), "_id is a string"),
            (json!({"$set": {"a": 1}}), "do not start with '$'"),
            (json!({"a.b": 1}), "contain no '.'"),
            (json!({"": 1}), "names are not empty"),
        ];
        for (doc, expected) in cases {
            let err = check_incoming(&doc).unwrap_err();
            assert!(err.to_string().contains(expected), "{doc}: {err}");
        }
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH {
            deep = json!({"a": deep});
        }
        assert!(
            check_incoming(&deep)
                .unwrap_err()
                .to_string()
                .contains("nest")
        );
        let big = json!({"blob": "x".repeat(MAX_BYTES)});
        assert_eq!(
            check_incoming(&big).unwrap_err().code(),
            crate::ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The RFC's own example (section 3).
        let mut doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"], "content": "This will be unchanged"});
        merge_patch(
            &mut doc,
            &json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": null}, "tags": ["example"]}),
        );
        assert_eq!(
            doc,
            json!({"title": "Hello!", "author": {"givenName": "John"},
            "tags": ["example"], "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"})
        );
        let mut scalar = json!({"a": 1});
        merge_patch(&mut scalar, &json!({"a": {"b": 2}}));
        assert_eq!(scalar, json!({"a": {"b": 2}}));
    }
}

//! Why: a collection's JSON Schema is sent by a project admin and every
//! document written to the collection (by end users too) is checked
//! against it. `Schema::compile` must refuse what it does not support with
//! `InvalidInput`, and `validate` must never panic, never recurse or loop
//! without bound (however nested the schema, its `$ref`s or the document),
//! and give the same answer every time.
//!
//! Input layout: two JSON values one after the other (serde_json's
//! stream reader: whitespace between them, none needed after `}`/`]`/
//! `"`): the schema, then the document (`null` when absent). E.g.
//! `{"type":"object","required":["a"]} {"a":1}`.
#![no_main]

use bunbase_core::ErrorCode;
use bunbase_core::docs::schema::Schema;
use libfuzzer_sys::fuzz_target;
use serde_json::{Deserializer, Value, json};

/// `validate`'s answer: `Ok`, or the error's text.
fn check(schema: &Schema, doc: &Value) -> Result<(), String> {
    schema.validate(doc).map_err(|e| {
        assert_eq!(e.code(), ErrorCode::InvalidInput, "{e}");
        e.to_string()
    })
}

/// Whether the check ran out of steps or depth (then it says so, and the
/// answer is neither yes nor no).
fn exhausted(answer: &Result<(), String>) -> bool {
    answer
        .as_ref()
        .is_err_and(|e| e.contains("could not be checked"))
}

/// Whether any object key starts with `$`: such a schema may not be
/// wrapped in another one unchanged (`$ref` pointers would move, `$schema`
/// and `$id` belong at the root).
fn has_dollar_keys(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_dollar_keys(v)),
        Value::Array(items) => items.iter().any(has_dollar_keys),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut values = Deserializer::from_slice(data).into_iter::<Value>();
    let Some(Ok(source)) = values.next() else {
        return;
    };
    let doc = match values.next() {
        None => Value::Null,
        Some(Ok(doc)) => doc,
        Some(Err(_)) => return,
    };

    let schema = match Schema::compile(&source) {
        Ok(schema) => schema,
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::InvalidInput, "{source}: {e}");
            let again = Schema::compile(&source).err().map(|e| e.to_string());
            assert_eq!(again, Some(e.to_string()), "compiling is deterministic");
            return;
        }
    };
    assert_eq!(schema.source(), &source);
    let recompiled = Schema::compile(&source).expect("compiles the second time");

    let answer = check(&schema, &doc);
    assert_eq!(answer, check(&schema, &doc), "validating is deterministic");
    assert_eq!(
        answer,
        check(&recompiled, &doc),
        "a recompiled schema agrees"
    );
    // A few more documents, the schema itself among them (once each: a
    // check may take up to MAX_STEPS steps, slow under ASan).
    for other in [json!({}), json!([]), json!("s"), json!(1.5), source.clone()] {
        let _ = check(&schema, &other);
    }

    // `not` negates, `allOf` of one changes nothing (for schemas that can
    // be nested unchanged, and that still fit the depth limit).
    if !has_dollar_keys(&source) {
        if let Ok(negated) = Schema::compile(&json!({"not": source})) {
            let negative = check(&negated, &doc);
            if !exhausted(&answer) && !exhausted(&negative) {
                assert_eq!(
                    answer.is_ok(),
                    negative.is_err(),
                    "{source} vs its \"not\" on {doc}"
                );
            }
        }
        if let Ok(all) = Schema::compile(&json!({"allOf": [source]})) {
            let same = check(&all, &doc);
            if !exhausted(&answer) && !exhausted(&same) {
                assert_eq!(answer.is_ok(), same.is_ok(), "{source} vs allOf on {doc}");
            }
        }
    }
});

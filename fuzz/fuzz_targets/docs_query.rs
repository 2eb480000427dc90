//! Why: a Bundoc query body (`filter`, `sort`, `limit`, `cursor`,
//! `fields`) comes straight from any caller, end users included.
//! `Filter::parse` and `Query::parse` must refuse bad bodies with
//! `InvalidInput` and never panic; a parsed query, run by the reference
//! evaluator, must give the same answer every time, and its cursors must
//! page through exactly the documents one big page would return.
//!
//! Input layout: JSON values one after the other (serde_json's stream
//! reader, as the HTTP layer reads bodies): the first is parsed both as a
//! filter and as a whole query body; up to 8 more objects join the fixed
//! documents below (each given a unique `_id`; those `check_incoming`
//! refuses are left out). E.g.
//! `{"sort":[{"n":"asc"}],"limit":1} {"n":0.3} {"n":[1]}`.
#![no_main]

use std::sync::LazyLock;

use bunbase_core::ErrorCode;
use bunbase_core::docs::Query;
use bunbase_core::docs::document::check_incoming;
use bunbase_core::docs::filter::Filter;
use bunbase_core::docs::path::Path;
use libfuzzer_sys::fuzz_target;
use serde_json::{Deserializer, Value, json};

/// Documents as a store holds them (system fields included).
static DOCUMENTS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    vec![
        json!({"_id": "a", "_version": 1, "city": "Oslo", "age": 30, "score": 4.5, "vip": true,
               "tags": ["vip", "beta"], "address": {"city": "Oslo", "zip": "0150"},
               "items": [{"sku": "x", "n": 1}, {"sku": ["y", "z"], "n": 7}, {"q": 0}]}),
        json!({"_id": "b", "_version": 3, "city": "Bergen", "age": 17, "score": -0.0, "vip": false,
               "tags": [], "address": null, "items": [], "n": null}),
        json!({"_id": "c", "_version": 1, "city": ["Oslo", "Bergen"], "age": 30.0,
               "score": 18446744073709551615_u64, "tags": "vip", "address": {"city": "Tromsø"}}),
        json!({"_id": "d", "_version": 2, "age": "30", "n": {"a": [1, 2]}, "0": {"1": "deep"},
               "items": [[{"sku": "x"}]], "e": ""}),
        json!({"_id": "e", "_version": 1, "city": "oslo", "age": -9223372036854775808_i64,
               "score": 1e300, "vip": null, "tags": [["vip"]], "address": {"zip": 150}}),
        json!({"_id": "f", "_version": 1}),
        json!({"_version": 1, "city": "Oslo", "note": "no _id"}),
    ]
});

fn check_filter(value: &Value, documents: &[Value]) {
    let filter = match Filter::parse(value) {
        Ok(filter) => filter,
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::InvalidInput, "{value}: {e}");
            return;
        }
    };
    assert_eq!(
        Filter::parse(value).ok().as_ref(),
        Some(&filter),
        "parsing is deterministic"
    );
    for path in filter.paths() {
        assert_eq!(Path::parse(&path.as_string()).ok().as_ref(), Some(path));
    }
    let answers: Vec<bool> = documents.iter().map(|d| filter.matches(d)).collect();
    let again: Vec<bool> = documents.iter().map(|d| filter.matches(d)).collect();
    assert_eq!(answers, again, "matching is deterministic");

    // A top-level $not negates, a one-filter $or changes nothing (when
    // the wrapped filter still fits the nesting and size limits).
    if let Ok(negated) = Filter::parse(&json!({"$not": value})) {
        for (doc, yes) in documents.iter().zip(&answers) {
            assert_eq!(negated.matches(doc), !yes, "{value} on {doc}");
        }
    }
    if let Ok(either) = Filter::parse(&json!({"$or": [value]})) {
        for (doc, yes) in documents.iter().zip(&answers) {
            assert_eq!(either.matches(doc), *yes, "{value} on {doc}");
        }
    }
}

/// The body with `cursor` set (a body may also be the array form serde
/// accepts for a struct: filter, sort, limit, cursor, fields).
fn with_cursor(body: &Value, cursor: &str) -> Option<Value> {
    let mut body = body.clone();
    match &mut body {
        Value::Object(map) => {
            map.insert("cursor".into(), json!(cursor));
        }
        Value::Array(items) if items.len() > 3 => items[3] = json!(cursor),
        _ => return None,
    }
    Some(body)
}

fn check_query(body: &Value, documents: &[Value]) {
    let query = match Query::parse(body) {
        Ok(query) => query,
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::InvalidInput, "{body}: {e}");
            return;
        }
    };
    assert_eq!(
        Query::parse(body).ok().as_ref(),
        Some(&query),
        "parsing is deterministic"
    );
    let page = query.run(documents.iter());
    assert_eq!(
        page,
        query.run(documents.iter()),
        "running is deterministic"
    );
    assert!(page.documents.len() <= query.limit);

    // The whole answer at once (the same query, a limit above the
    // document count), and page by page through the cursors: the same
    // documents in the same order, none twice.
    let whole = Query {
        limit: documents.len() + 1,
        ..query.clone()
    }
    .run(documents.iter());
    assert!(whole.next_cursor.is_none());
    assert_eq!(
        page.next_cursor.is_some(),
        whole.documents.len() > query.limit,
        "{body}: a cursor exactly when more documents match"
    );
    let mut paged = page.documents.clone();
    let mut next = page.next_cursor;
    let mut pages = 1;
    while let Some(cursor) = next {
        pages += 1;
        assert!(pages <= documents.len() + 1, "cursors loop: {body}");
        let Some(resumed) = with_cursor(body, &cursor) else {
            return;
        };
        let resumed = Query::parse(&resumed)
            .unwrap_or_else(|e| panic!("{body}: its own cursor {cursor:?} is refused: {e}"));
        assert_eq!(resumed.fingerprint, query.fingerprint);
        let page = resumed.run(documents.iter());
        assert!(page.documents.len() <= query.limit);
        assert!(
            !page.documents.is_empty(),
            "{body}: a cursor led to an empty page"
        );
        paged.extend(page.documents);
        next = page.next_cursor;
    }
    assert_eq!(paged, whole.documents, "{body}: pages vs one page");
    if query.fields.is_none() {
        for doc in &whole.documents {
            assert!(query.filter.matches(doc), "{body}: {doc} does not match");
        }
    }
}

/// Most documents taken from the input.
const MAX_EXTRA: usize = 8;

fuzz_target!(|data: &[u8]| {
    let mut values = Deserializer::from_slice(data).into_iter::<Value>();
    let Some(Ok(value)) = values.next() else {
        return;
    };
    let mut documents = DOCUMENTS.clone();
    for (i, doc) in values.take(MAX_EXTRA).enumerate() {
        let Ok(Value::Object(mut doc)) = doc else {
            break;
        };
        // `_id`s are unique in a collection; a document the store would
        // refuse (a `$` name, too deep, …) is left out.
        doc.insert("_id".into(), json!(format!("x{i}")));
        let doc = Value::Object(doc);
        if check_incoming(&doc).is_ok() {
            documents.push(doc);
        }
    }
    check_filter(&value, &documents);
    if let Some(filter) = value.get("filter") {
        check_filter(filter, &documents);
    }
    check_query(&value, &documents);
});

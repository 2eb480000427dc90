//! Index entries: the byte keys a document puts in each of its
//! collection's indexes. Three kinds of entry per index:
//!
//! - **value** entries (`VALUES`): the indexed fields' whole values (a
//!   missing field as `null`, as sorting sees it), then the `_id` — one per
//!   document, in exactly the query order, so an index on the sort fields
//!   serves a sort and its cursor;
//! - **element** entries (`ELEMENTS`): for an array field, each distinct
//!   element (and for a scalar, the value itself), so `{"tags": "vip"}`
//!   (array membership) and ranges find documents by lookup. A missing
//!   field is its own marker, below `null`. Unique indexes are enforced
//!   here: the key ends with the `_id` only when the index is not unique
//!   or a field is missing (missing values never collide);
//! - an **arrays** entry (`ARRAYS`) for a document with an array in an
//!   indexed field, so a read of value entries under an equality prefix
//!   (which holds whole values) can add the documents whose array only
//!   contains the value.
//!
//! Keys are [`super::keys`] encodings, so byte order is the query order.

use std::collections::BTreeSet;

use serde_json::Value;

use super::keys;
use super::model::{Collection, Index};
use super::path::Reach;
use super::store::IndexEntry;
use crate::error::Error;

/// First byte of a value entry.
pub const VALUES: u8 = 1;
/// First byte of an element entry.
pub const ELEMENTS: u8 = 2;
/// First byte of the entry a document with an array in an indexed field
/// adds (then its `_id`): equality on value entries can't find it, so
/// ordered reads fetch these beside.
pub const ARRAYS: u8 = 3;
/// Most element entries one document may put in one index.
pub const MAX_ELEMENTS: usize = 1000;

/// Every entry `doc` puts in the collection's indexes.
pub fn entries(collection: &Collection, doc: &Value) -> Result<Vec<IndexEntry>, Error> {
    let mut out = Vec::new();
    for index in &collection.indexes {
        out.extend(index_entries(index, doc)?);
    }
    Ok(out)
}

/// The entries `doc` puts in one index.
pub fn index_entries(index: &Index, doc: &Value) -> Result<Vec<IndexEntry>, Error> {
    let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
    // Value entries hold what sorting sees (`get`); element entries what
    // filters see (`reach`, through arrays of objects too).
    let wholes: Vec<Option<&Value>> = index.fields.iter().map(|f| f.get(doc)).collect();
    let mut whole = vec![VALUES];
    for value in &wholes {
        keys::encode(&mut whole, value.unwrap_or(&Value::Null));
    }
    keys::encode_str(&mut whole, id);

    // Per field: `None` when missing, else the values a lookup must find
    // the document by, and whether there are several (an array).
    let reached: Vec<Option<(Vec<&Value>, bool)>> = index
        .fields
        .iter()
        .map(|f| match f.reach(doc) {
            Reach::One(None) => None,
            Reach::One(Some(Value::Array(items))) => Some((items.iter().collect(), true)),
            Reach::One(Some(v)) => Some((vec![v], false)),
            Reach::Many(vs) if vs.is_empty() => None,
            Reach::Many(vs) => Some((
                vs.into_iter()
                    .flat_map(|v| match v {
                        Value::Array(items) => items.iter().collect(),
                        other => vec![other],
                    })
                    .collect(),
                true,
            )),
        })
        .collect();

    // Element entries: the product over fields of their elements; at most
    // one field may hold several (two would multiply entries).
    let arrays: Vec<usize> = (0..reached.len())
        .filter(|&i| reached[i].as_ref().is_some_and(|(_, many)| *many))
        .collect();
    if arrays.len() > 1 {
        return Err(Error::invalid(format!(
            "index {}: {} and {} are both arrays; a compound index takes at most one array field",
            index.name,
            index.fields[arrays[0]].as_string(),
            index.fields[arrays[1]].as_string()
        )));
    }
    let missing = reached.iter().any(Option::is_none);
    let suffix_id = !index.unique || missing;
    let empty = Value::Array(Vec::new());
    let choices: Vec<&Value> = match arrays.first().and_then(|&i| reached[i].as_ref()) {
        Some((items, _)) => {
            if items.len() > MAX_ELEMENTS {
                return Err(Error::invalid(format!(
                    "index {}: {} has {} elements; an indexed array has at most {MAX_ELEMENTS}",
                    index.name,
                    index.fields[arrays[0]].as_string(),
                    items.len()
                )));
            }
            if items.is_empty() {
                // Still one entry, so lookups on the other fields find
                // the document.
                vec![&empty]
            } else {
                items.clone()
            }
        }
        None => vec![&Value::Null],
    };
    let mut element_keys = BTreeSet::new();
    for choice in choices {
        let mut key = vec![ELEMENTS];
        for (i, field) in reached.iter().enumerate() {
            match field {
                None => keys::encode_missing(&mut key),
                Some(_) if arrays.first() == Some(&i) => keys::encode(&mut key, choice),
                Some((values, _)) => keys::encode(&mut key, values[0]),
            }
        }
        if suffix_id {
            keys::encode_str(&mut key, id);
        }
        element_keys.insert(key);
    }

    let mut out = vec![IndexEntry {
        index: index.name.clone(),
        key: whole,
    }];
    if !arrays.is_empty() {
        let mut key = vec![ARRAYS];
        keys::encode_str(&mut key, id);
        out.push(IndexEntry {
            index: index.name.clone(),
            key,
        });
    }
    out.extend(element_keys.into_iter().map(|key| IndexEntry {
        index: index.name.clone(),
        key,
    }));
    Ok(out)
}

/// What changes between two documents' entries: (remove, add).
pub fn diff(old: Vec<IndexEntry>, new: Vec<IndexEntry>) -> (Vec<IndexEntry>, Vec<IndexEntry>) {
    let old_set: BTreeSet<IndexEntry> = old.into_iter().collect();
    let new_set: BTreeSet<IndexEntry> = new.into_iter().collect();
    (
        old_set.difference(&new_set).cloned().collect(),
        new_set.difference(&old_set).cloned().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collection(indexes: Value) -> Collection {
        Collection::parse("c", &json!({ "indexes": indexes }), 1).unwrap()
    }

    #[test]
    fn arrays_get_one_entry_per_distinct_element() {
        let c = collection(json!([{"fields": ["tags"]}]));
        let e = entries(&c, &json!({"_id": "a", "tags": ["x", "y", "x"]})).unwrap();
        let elements = e.iter().filter(|e| e.key[0] == ELEMENTS).count();
        assert_eq!(elements, 2);
        assert_eq!(e.iter().filter(|e| e.key[0] == VALUES).count(), 1);
    }

    #[test]
    fn unique_keys_collide_across_documents_unless_missing() {
        let c = collection(json!([{"fields": ["email"], "unique": true}]));
        let key = |doc: Value| {
            entries(&c, &doc)
                .unwrap()
                .into_iter()
                .filter(|e| e.key[0] == ELEMENTS)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            key(json!({"_id": "a", "email": "x@y"})),
            key(json!({"_id": "b", "email": "x@y"}))
        );
        assert_ne!(key(json!({"_id": "a"})), key(json!({"_id": "b"})));
    }

    #[test]
    fn two_array_fields_in_a_compound_index_are_refused() {
        let c = collection(json!([{"fields": ["a", "b"]}]));
        let err = entries(&c, &json!({"_id": "x", "a": [1], "b": [2]})).unwrap_err();
        assert!(err.to_string().contains("at most one array field"), "{err}");
        assert!(entries(&c, &json!({"_id": "x", "a": [1, 2], "b": 3})).is_ok());
    }

    #[test]
    fn diff_keeps_unchanged_entries_out() {
        let c = collection(json!([{"fields": ["a"]}, {"fields": ["b"]}]));
        let old = entries(&c, &json!({"_id": "x", "a": 1, "b": 1})).unwrap();
        let new = entries(&c, &json!({"_id": "x", "a": 1, "b": 2})).unwrap();
        let (remove, add) = diff(old, new);
        assert!(remove.iter().chain(&add).all(|e| e.index == "b"));
        assert_eq!((remove.len(), add.len()), (2, 2));
    }
}

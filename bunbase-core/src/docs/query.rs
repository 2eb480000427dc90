//! Queries: a filter, a multi-field sort, a limit, an opaque cursor and a
//! projection — parsed with clear errors, and run over documents in memory
//! (the reference the store adapters are checked against).
//!
//! ```json
//! {"filter": {"city": "Oslo"}, "sort": [{"n": "desc"}], "limit": 20,
//!  "cursor": "…", "fields": ["n", "address.city"]}
//! ```
//!
//! Sorting uses the total order of [`super::order`] (a missing field sorts
//! as `null`), then `_id` in the direction of the last sort field
//! (ascending without a sort, as in Firestore), so every document has one
//! place, an index on the sort fields can serve the order read backwards,
//! and a cursor (the last document's sort values and `_id`) resumes
//! exactly after it however documents are added or removed meanwhile.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::filter::Filter;
use super::order::compare;
use super::path::Path;
use crate::error::Error;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;
pub const MAX_SORT_FIELDS: usize = 8;
pub const MAX_FIELDS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Filter,
    pub sort: Vec<(Path, Direction)>,
    pub limit: usize,
    /// The position to resume after: sort values, then `_id`.
    pub after: Option<Vec<Value>>,
    pub fields: Option<Vec<Path>>,
    /// Which filter and sort this is (a digest): cursors carry it, so one
    /// query's cursor is refused by another.
    pub fingerprint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    sort: Vec<Map<String, Value>>,
    limit: Option<usize>,
    cursor: Option<String>,
    fields: Option<Vec<String>>,
}

/// A page of results (as the API answers it; the client reads it back).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    pub documents: Vec<Value>,
    /// Pass back as `cursor` for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

impl Query {
    pub fn parse(body: &Value) -> Result<Query, Error> {
        let raw: Raw = serde_json::from_value(body.clone())
            .map_err(|e| Error::invalid(format!("invalid query: {e}")))?;
        let filter = Filter::parse(raw.filter.as_ref().unwrap_or(&json!({})))?;
        if raw.sort.len() > MAX_SORT_FIELDS {
            return Err(Error::invalid(format!(
                "sort by at most {MAX_SORT_FIELDS} fields"
            )));
        }
        let mut sort = Vec::with_capacity(raw.sort.len());
        for item in &raw.sort {
            let mut entries = item.iter();
            let (Some((field, direction)), None) = (entries.next(), entries.next()) else {
                return Err(Error::invalid(
                    "each sort item is one {\"field\": \"asc\" | \"desc\"}",
                ));
            };
            let direction = match direction.as_str() {
                Some("asc") => Direction::Asc,
                Some("desc") => Direction::Desc,
                _ => {
                    return Err(Error::invalid(format!(
                        "sort direction for {field} is \"asc\" or \"desc\""
                    )));
                }
            };
            sort.push((Path::parse(field)?, direction));
        }
        let limit = raw.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::invalid(format!("limit is 1 to {MAX_LIMIT}")));
        }
        let fingerprint = fingerprint(raw.filter.as_ref(), &raw.sort);
        let after = raw
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &fingerprint, sort.len()))
            .transpose()?;
        let fields = match raw.fields {
            None => None,
            Some(list) if list.len() > MAX_FIELDS => {
                return Err(Error::invalid(format!(
                    "project at most {MAX_FIELDS} fields"
                )));
            }
            Some(list) => Some(
                list.iter()
                    .map(|f| Path::parse(f))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Query {
            filter,
            sort,
            limit,
            after,
            fields,
            fingerprint,
        })
    }

    /// The position of `doc` in this query's order: its sort values
    /// (missing = null), then its `_id`.
    pub fn position(&self, doc: &Value) -> Vec<Value> {
        let mut key: Vec<Value> = self
            .sort
            .iter()
            .map(|(path, _)| path.get(doc).cloned().unwrap_or(Value::Null))
            .collect();
        key.push(doc.get("_id").cloned().unwrap_or(Value::Null));
        key
    }

    /// Compares two positions in this query's order.
    pub fn compare_positions(&self, a: &[Value], b: &[Value]) -> Ordering {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let direction = self
                .sort
                .get(i)
                .or(self.sort.last())
                .map_or(Direction::Asc, |(_, d)| *d);
            let order = compare(x, y);
            let order = if direction == Direction::Desc {
                order.reverse()
            } else {
                order
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }

    /// Runs the query over `documents` (the reference evaluator).
    pub fn run<'a>(&self, documents: impl IntoIterator<Item = &'a Value>) -> Page {
        let mut hits: Vec<(Vec<Value>, &Value)> = documents
            .into_iter()
            .filter(|d| self.filter.matches(d))
            .map(|d| (self.position(d), d))
            .filter(|(pos, _)| {
                self.after
                    .as_ref()
                    .is_none_or(|after| self.compare_positions(pos, after) == Ordering::Greater)
            })
            .collect();
        hits.sort_by(|(a, _), (b, _)| self.compare_positions(a, b));
        let more = hits.len() > self.limit;
        hits.truncate(self.limit);
        let next_cursor = if more {
            hits.last()
                .map(|(pos, _)| encode_cursor(&self.fingerprint, pos))
        } else {
            None
        };
        Page {
            documents: hits.into_iter().map(|(_, d)| self.project(d)).collect(),
            next_cursor,
        }
    }

    /// The document with only the asked-for fields (and the system
    /// fields), or whole.
    pub fn project(&self, doc: &Value) -> Value {
        let Some(fields) = &self.fields else {
            return doc.clone();
        };
        let mut out = Value::Object(Map::new());
        for system in super::document::SYSTEM_FIELDS {
            if let Some(v) = doc.get(system) {
                out[system] = v.clone();
            }
        }
        for path in fields {
            if let Some(value) = path.get(doc) {
                let mut at = &mut out;
                let segments = path.segments();
                for segment in &segments[..segments.len() - 1] {
                    if !at.get(segment).is_some_and(Value::is_object) {
                        at[segment.as_str()] = Value::Object(Map::new());
                    }
                    at = &mut at[segment.as_str()];
                }
                at[segments[segments.len() - 1].as_str()] = value.clone();
            }
        }
        out
    }
}

/// A short digest of a query's filter and sort (`serde_json` maps are
/// ordered, so equal queries give equal text).
fn fingerprint(filter: Option<&Value>, sort: &[Map<String, Value>]) -> String {
    let text = json!([filter.unwrap_or(&json!({})), sort]).to_string();
    hex::encode(&crate::kms::crypto::sha256(text.as_bytes())[..6])
}

/// The cursor: the query's fingerprint, then the position.
fn encode_cursor(fingerprint: &str, position: &[Value]) -> String {
    let mut items = vec![json!(fingerprint)];
    items.extend(position.iter().map(exact));
    URL_SAFE_NO_PAD.encode(Value::Array(items).to_string())
}

fn decode_cursor(cursor: &str, fingerprint: &str, sort_fields: usize) -> Result<Vec<Value>, Error> {
    let bad = || Error::invalid("cursor must be one returned by this query");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    match serde_json::from_slice::<Value>(&bytes).map_err(|_| bad())? {
        Value::Array(mut items)
            if items.len() == sort_fields + 2 && items[0] == json!(fingerprint) =>
        {
            items.remove(0);
            items
                .into_iter()
                .map(|v| unexact(v).ok_or_else(bad))
                .collect()
        }
        _ => Err(bad()),
    }
}

/// A cursor value with every float as its bits, `{"$f": bits}`: serde_json
/// reads a float's decimal text back only to about the last bit, and a
/// position one bit off would return a document again on every page (or
/// skip one). Documents hold no `$` names, so the tag is unambiguous.
fn exact(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => json!({"$f": n.as_f64().map(f64::to_bits)}),
        Value::Array(items) => Value::Array(items.iter().map(exact).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), exact(v))).collect())
        }
        other => other.clone(),
    }
}

/// The value [`exact`] wrote; `None` for a tag that is not a float's bits.
fn unexact(value: Value) -> Option<Value> {
    Some(match value {
        Value::Object(map) if map.contains_key("$f") => {
            let bits = map.get("$f").filter(|_| map.len() == 1)?.as_u64()?;
            Value::Number(serde_json::Number::from_f64(f64::from_bits(bits))?)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(unexact).collect::<Option<_>>()?),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Some((k, unexact(v)?)))
                .collect::<Option<_>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<Value> {
        (0..25)
            .map(|i| {
                let mut d = json!({"_id": format!("d{i:02}"), "n": i % 5, "city": if i % 2 == 0 { "Oslo" } else { "Bergen" }});
                if i == 7 {
                    d.as_object_mut().unwrap().remove("n");
                }
                d
            })
            .collect()
    }

    #[test]
    fn filters_sorts_and_pages_without_gaps_or_repeats() {
        let all = docs();
        let mut body = json!({"filter": {"city": "Oslo"}, "sort": [{"n": "desc"}], "limit": 4});
        let mut seen = Vec::new();
        loop {
            let query = Query::parse(&body).unwrap();
            let page = query.run(&all);
            assert!(page.documents.len() <= 4);
            seen.extend(
                page.documents
                    .iter()
                    .map(|d| d["_id"].as_str().unwrap().to_string()),
            );
            match page.next_cursor {
                Some(cursor) => body["cursor"] = json!(cursor),
                None => break,
            }
        }
        assert_eq!(seen.len(), 13, "{seen:?}");
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 13);
        // n descending, then _id descending too.
        let ns: Vec<i64> = seen
            .iter()
            .map(|id| {
                all.iter().find(|d| d["_id"] == json!(id)).unwrap()["n"]
                    .as_i64()
                    .unwrap_or(-1)
            })
            .collect();
        assert!(ns.windows(2).all(|w| w[0] >= w[1]), "{ns:?}");
        let ids_of_n4: Vec<&String> = seen
            .iter()
            .zip(&ns)
            .filter(|(_, n)| **n == 4)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids_of_n4, ["d24", "d14", "d04"]);
    }

    #[test]
    fn a_missing_sort_field_sorts_as_null_and_projection_keeps_system_fields() {
        let all = docs();
        let query =
            Query::parse(&json!({"sort": [{"n": "asc"}], "limit": 1, "fields": ["city"]})).unwrap();
        let page = query.run(&all);
        assert_eq!(
            page.documents,
            vec![json!({"_id": "d07", "city": "Bergen"})]
        );
        let nested = Query::parse(&json!({"fields": ["a.b"]})).unwrap();
        assert_eq!(
            nested.project(&json!({"_id": "x", "a": {"b": 1, "c": 2}, "z": 3})),
            json!({"_id": "x", "a": {"b": 1}})
        );
    }

    /// serde_json reads `203685477580.3000000` and the shortest text of
    /// what it read (`203685477580.30002`) one bit apart: a cursor holding
    /// that text led back to the same document on every page (found by
    /// fuzz/docs_query).
    #[test]
    fn cursors_resume_exactly_after_floats() {
        let all: Vec<Value> = [
            r#"{"_id": "a", "n": 203685477580.3000000}"#,
            r#"{"_id": "b", "n": 203685477580.3000000}"#,
            r#"{"_id": "c", "n": [0.30000000000000004, {"x": 1e300}]}"#,
            r#"{"_id": "d", "n": [0.30000000000000004, {"x": 1e300}]}"#,
        ]
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
        for direction in ["asc", "desc"] {
            let mut body = json!({"sort": [{"n": direction}], "limit": 1});
            let mut seen = Vec::new();
            while seen.len() <= all.len() {
                let page = Query::parse(&body).unwrap().run(&all);
                seen.extend(page.documents.iter().map(|d| d["_id"].clone()));
                match page.next_cursor {
                    Some(cursor) => body["cursor"] = json!(cursor),
                    None => break,
                }
            }
            seen.sort_by(compare);
            assert_eq!(seen, ["a", "b", "c", "d"], "{direction}");
        }
        // A tag that is not a float's bits is refused.
        let query = Query::parse(&json!({"sort": [{"n": "asc"}]})).unwrap();
        for forged in [
            json!({"$f": "x"}),
            json!({"$f": 1, "y": 2}),
            json!({"$f": 0x7ff0_0000_0000_0000_u64}),
        ] {
            let cursor =
                URL_SAFE_NO_PAD.encode(json!([query.fingerprint, forged, "a"]).to_string());
            let err = Query::parse(&json!({"sort": [{"n": "asc"}], "cursor": cursor})).unwrap_err();
            assert!(
                err.to_string().contains("cursor must be one returned"),
                "{forged}: {err}"
            );
        }
    }

    #[test]
    fn bad_queries_get_clear_errors() {
        let cases = [
            (json!({"limit": 0}), "limit is 1 to"),
            (json!({"limit": 5000}), "limit is 1 to"),
            (json!({"sort": [{"n": "up"}]}), "\"asc\" or \"desc\""),
            (
                json!({"sort": [{"a": "asc", "b": "asc"}]}),
                "each sort item is one",
            ),
            (json!({"cursor": "!!"}), "cursor must be one returned"),
            (
                json!({"filter": {"city": "Bergen"}, "cursor": Query::parse(&json!({"limit": 1})).unwrap().run(&docs()).next_cursor}),
                "cursor must be one returned",
            ),
            (
                json!({"sort": [{"n": "asc"}], "cursor": URL_SAFE_NO_PAD.encode("[1]")}),
                "cursor must be one returned",
            ),
            (json!({"filter": {"a": {"$bad": 1}}}), "unknown operator"),
            (json!({"select": ["a"]}), "invalid query"),
            (json!({"fields": ["$x"]}), "operators, not fields"),
            (json!({"limit": "5"}), "invalid query"),
        ];
        for (body, expected) in cases {
            let err = Query::parse(&body).unwrap_err();
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
    }
}

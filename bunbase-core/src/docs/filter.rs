//! Filters: what a query's `filter` says, parsed into a tree with clear
//! errors, and evaluated against a document — the reference evaluator
//! every store adapter must agree with.
//!
//! ```json
//! {"city": "Oslo",                          // $eq, implicit
//!  "age": {"$gte": 18, "$lt": 65},          // several conditions: all hold
//!  "tags": "vip",                           // an array field matches if an element does
//!  "$or": [{"plan": "pro"}, {"seats": {"$gt": 10}}],
//!  "email": {"$exists": true},
//!  "status": {"$not": {"$in": ["banned", "deleted"]}}}
//! ```
//!
//! Comparisons use the total order of [`super::order`]: `$gt`/`$lt` and
//! friends compare only values of the same type (a string is never
//! greater than a number), as in MongoDB; `$eq`/`$ne` compare any two.

use serde_json::{Map, Value};

use super::order::{compare, equal};
use super::path::Path;
use crate::error::Error;

/// Most conditions in one filter (operators and fields together).
pub const MAX_CONDITIONS: usize = 256;
/// Deepest nesting of `$and` / `$or` / `$not`.
pub const MAX_NESTING: usize = 16;
/// Most values in one `$in` / `$nin`.
pub const MAX_IN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(Compare, Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Exists(bool),
    /// `{"$not": {...}}` on a field: the inner conditions do not all hold
    /// (the negation of their conjunction).
    Not(Vec<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every part holds (`{}` is all documents).
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// A top-level `$not`.
    Not(Box<Filter>),
    Field(Path, Vec<Condition>),
}

struct Budget {
    conditions: usize,
}

impl Budget {
    fn spend(&mut self) -> Result<(), Error> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(Error::invalid(format!(
                "a filter has at most {MAX_CONDITIONS} conditions"
            )));
        }
        Ok(())
    }
}

impl Filter {
    /// Parses a filter object.
    pub fn parse(value: &Value) -> Result<Filter, Error> {
        Filter::parse_object(value, 0, &mut Budget { conditions: 0 })
    }

    fn parse_object(value: &Value, depth: usize, budget: &mut Budget) -> Result<Filter, Error> {
        if depth > MAX_NESTING {
            return Err(Error::invalid(format!(
                "filters nest at most {MAX_NESTING} levels"
            )));
        }
        let Value::Object(map) = value else {
            return Err(Error::invalid(format!(
                "a filter is a JSON object, not {value}"
            )));
        };
        let mut parts = Vec::with_capacity(map.len());
        for (key, inner) in map {
            budget.spend()?;
            parts.push(match key.as_str() {
                "$and" | "$or" => {
                    let Value::Array(items) = inner else {
                        return Err(Error::invalid(format!("{key} takes an array of filters")));
                    };
                    if items.is_empty() {
                        return Err(Error::invalid(format!("{key} needs at least one filter")));
                    }
                    let filters = items
                        .iter()
                        .map(|f| Filter::parse_object(f, depth + 1, budget))
                        .collect::<Result<Vec<_>, _>>()?;
                    if key == "$and" {
                        Filter::And(filters)
                    } else {
                        Filter::Or(filters)
                    }
                }
                "$not" => Filter::Not(Box::new(Filter::parse_object(inner, depth + 1, budget)?)),
                op if op.starts_with('$') => {
                    return Err(Error::invalid(format!(
                        "unknown operator {op} at the top of a filter (use $and, $or, $not, or a field name)"
                    )));
                }
                field => Filter::Field(Path::parse(field)?, parse_conditions(field, inner, depth, budget)?),
            });
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    /// Every field path the filter reads.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Filter::And(parts) | Filter::Or(parts) => {
                parts.iter().flat_map(Filter::paths).collect()
            }
            Filter::Not(inner) => inner.paths(),
            Filter::Field(path, _) => vec![path],
        }
    }

    /// Whether `document` matches.
    pub fn matches(&self, document: &Value) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|p| p.matches(document)),
            Filter::Or(parts) => parts.iter().any(|p| p.matches(document)),
            Filter::Not(inner) => !inner.matches(document),
            Filter::Field(path, conditions) => {
                let values = path.reach(document).values();
                conditions.iter().all(|c| holds(c, &values))
            }
        }
    }
}

/// A field's conditions: an operator object, or a plain value (`$eq`).
fn parse_conditions(
    field: &str,
    value: &Value,
    depth: usize,
    budget: &mut Budget,
) -> Result<Vec<Condition>, Error> {
    match value {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
            if map.keys().any(|k| !k.starts_with('$')) {
                return Err(Error::invalid(format!(
                    "{field}: mixes operators and field names; to match an object exactly, use {{\"$eq\": {{…}}}}"
                )));
            }
            parse_operators(field, map, depth, budget)
        }
        other => Ok(vec![Condition::Compare(Compare::Eq, other.clone())]),
    }
}

fn parse_operators(
    field: &str,
    map: &Map<String, Value>,
    depth: usize,
    budget: &mut Budget,
) -> Result<Vec<Condition>, Error> {
    let mut out = Vec::with_capacity(map.len());
    for (op, arg) in map {
        budget.spend()?;
        let compare = |c| Condition::Compare(c, arg.clone());
        out.push(match op.as_str() {
            "$eq" => compare(Compare::Eq),
            "$ne" => compare(Compare::Ne),
            "$gt" | "$gte" | "$lt" | "$lte" => {
                if matches!(arg, Value::Null | Value::Array(_) | Value::Object(_)) {
                    return Err(Error::invalid(format!(
                        "{field}: {op} compares a number, string or boolean, not {arg}"
                    )));
                }
                compare(match op.as_str() {
                    "$gt" => Compare::Gt,
                    "$gte" => Compare::Gte,
                    "$lt" => Compare::Lt,
                    _ => Compare::Lte,
                })
            }
            "$in" | "$nin" => {
                let Value::Array(values) = arg else {
                    return Err(Error::invalid(format!("{field}: {op} takes an array of values")));
                };
                if values.len() > MAX_IN {
                    return Err(Error::invalid(format!(
                        "{field}: {op} takes at most {MAX_IN} values"
                    )));
                }
                if op == "$in" {
                    Condition::In(values.clone())
                } else {
                    Condition::NotIn(values.clone())
                }
            }
            "$exists" => match arg {
                Value::Bool(b) => Condition::Exists(*b),
                other => {
                    return Err(Error::invalid(format!(
                        "{field}: $exists takes true or false, not {other}"
                    )));
                }
            },
            "$not" => {
                if depth + 1 > MAX_NESTING {
                    return Err(Error::invalid(format!(
                        "filters nest at most {MAX_NESTING} levels"
                    )));
                }
                match arg {
                    Value::Object(inner) if !inner.is_empty() && inner.keys().all(|k| k.starts_with('$')) => {
                        Condition::Not(parse_operators(field, inner, depth + 1, budget)?)
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "{field}: $not takes an object of operators, e.g. {{\"$not\": {{\"$gt\": 5}}}}"
                        )));
                    }
                }
            }
            other => {
                return Err(Error::invalid(format!(
                    "{field}: unknown operator {other} (one of $eq $ne $gt $gte $lt $lte $in $nin $exists $not)"
                )));
            }
        });
    }
    Ok(out)
}

/// Whether `value` (or, for an array, one of its elements) satisfies `op`
/// against `arg`. Ordering operators only compare values of one type.
fn compares(op: Compare, value: &Value, arg: &Value) -> bool {
    let same_type = std::mem::discriminant(value) == std::mem::discriminant(arg);
    let order = compare(value, arg);
    match op {
        Compare::Eq => order.is_eq(),
        Compare::Ne => !order.is_eq(),
        Compare::Gt => same_type && order.is_gt(),
        Compare::Gte => same_type && order.is_ge(),
        Compare::Lt => same_type && order.is_lt(),
        Compare::Lte => same_type && order.is_le(),
    }
}

/// The candidates a condition looks at: the value, and for an array its
/// elements too (array membership).
fn candidates(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => std::iter::once(value).chain(items.iter()).collect(),
        other => vec![other],
    }
}

/// Whether a condition holds for the values a path reached (none when
/// the field is missing; several through arrays of objects).
fn holds(condition: &Condition, values: &[&Value]) -> bool {
    let mut candidates = values.iter().flat_map(|v| candidates(v));
    match condition {
        Condition::Exists(wanted) => values.is_empty() != *wanted,
        Condition::Not(inner) => !inner.iter().all(|c| holds(c, values)),
        // A missing field never equals anything, so it satisfies $ne and
        // $nin (as in MongoDB), and nothing else.
        Condition::Compare(Compare::Ne, arg) => !candidates.any(|c| equal(c, arg)),
        Condition::NotIn(args) => !candidates.any(|c| args.iter().any(|a| equal(c, a))),
        Condition::Compare(op, arg) => candidates.any(|c| compares(*op, c, arg)),
        Condition::In(args) => candidates.any(|c| args.iter().any(|a| equal(c, a))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(filter: Value, doc: Value) -> bool {
        Filter::parse(&filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&doc)
    }

    #[test]
    fn equality_comparison_and_ranges() {
        let doc = json!({"city": "Oslo", "age": 30, "score": 4.5, "vip": true});
        assert!(
            matches(json!({}), doc.clone()),
            "the empty filter matches all"
        );
        assert!(matches(json!({"city": "Oslo"}), doc.clone()));
        assert!(!matches(json!({"city": "oslo"}), doc.clone()));
        assert!(matches(
            json!({"age": {"$gte": 18, "$lt": 65}}),
            doc.clone()
        ));
        assert!(!matches(json!({"age": {"$gt": 30}}), doc.clone()));
        assert!(
            matches(json!({"age": 30.0}), doc.clone()),
            "numbers by value"
        );
        assert!(matches(json!({"score": {"$lte": 4.5}}), doc.clone()));
        assert!(matches(
            json!({"vip": true, "city": {"$ne": "Bergen"}}),
            doc.clone()
        ));
        // Ordering operators never cross types.
        assert!(!matches(json!({"city": {"$gt": 5}}), doc.clone()));
        assert!(!matches(json!({"age": {"$lt": "a"}}), doc.clone()));
    }

    #[test]
    fn missing_fields_exists_ne_and_nin() {
        let doc = json!({"a": 1, "n": null});
        assert!(matches(json!({"b": {"$exists": false}}), doc.clone()));
        assert!(
            matches(json!({"n": {"$exists": true}}), doc.clone()),
            "null is present"
        );
        assert!(matches(json!({"n": null}), doc.clone()));
        assert!(
            !matches(json!({"b": null}), doc.clone()),
            "missing is not null"
        );
        assert!(matches(json!({"b": {"$ne": 1}}), doc.clone()));
        assert!(matches(json!({"b": {"$nin": [1, 2]}}), doc.clone()));
        assert!(!matches(json!({"b": {"$in": [1, 2]}}), doc.clone()));
        assert!(!matches(json!({"b": {"$gt": 0}}), doc.clone()));
    }

    #[test]
    fn names_read_through_arrays_of_objects() {
        let doc = json!({"items": [{"sku": "a", "n": 1}, {"sku": ["b", "c"], "n": 7}, {"x": 0}]});
        assert!(matches(json!({"items.sku": "a"}), doc.clone()));
        assert!(
            matches(json!({"items.sku": "c"}), doc.clone()),
            "an element of a reached array"
        );
        assert!(matches(json!({"items.n": {"$gt": 5}}), doc.clone()));
        assert!(!matches(json!({"items.sku": {"$ne": "b"}}), doc.clone()));
        assert!(matches(json!({"items.sku": {"$nin": ["z"]}}), doc.clone()));
        assert!(matches(json!({"items.x": {"$exists": true}}), doc.clone()));
        assert!(!matches(json!({"items.y": {"$exists": true}}), doc.clone()));
        assert!(matches(json!({"items.1.n": 7}), doc.clone()));
    }

    #[test]
    fn arrays_match_by_membership_or_whole() {
        let doc = json!({"tags": ["vip", "beta"], "scores": [3, 9]});
        assert!(matches(json!({"tags": "vip"}), doc.clone()));
        assert!(
            matches(json!({"tags": ["vip", "beta"]}), doc.clone()),
            "the whole array"
        );
        assert!(!matches(json!({"tags": "gold"}), doc.clone()));
        assert!(matches(
            json!({"tags": {"$in": ["gold", "beta"]}}),
            doc.clone()
        ));
        assert!(!matches(json!({"tags": {"$nin": ["beta"]}}), doc.clone()));
        assert!(!matches(json!({"tags": {"$ne": "vip"}}), doc.clone()));
        assert!(
            matches(json!({"scores": {"$gt": 5}}), doc.clone()),
            "an element above 5"
        );
        assert!(matches(json!({"scores.1": 9}), doc.clone()), "by index");
    }

    #[test]
    fn nested_paths_and_logic() {
        let doc = json!({"address": {"city": "Oslo", "zip": "0150"}, "plan": "free", "seats": 12});
        assert!(matches(json!({"address.city": "Oslo"}), doc.clone()));
        assert!(matches(
            json!({"address": {"$eq": {"zip": "0150", "city": "Oslo"}}}),
            doc.clone()
        ));
        assert!(matches(
            json!({"$or": [{"plan": "pro"}, {"seats": {"$gt": 10}}]}),
            doc.clone()
        ));
        assert!(!matches(
            json!({"$and": [{"plan": "free"}, {"seats": {"$lt": 10}}]}),
            doc.clone()
        ));
        assert!(matches(json!({"$not": {"plan": "pro"}}), doc.clone()));
        assert!(matches(
            json!({"seats": {"$not": {"$gt": 20}}}),
            doc.clone()
        ));
        assert!(!matches(
            json!({"seats": {"$not": {"$gt": 10, "$lt": 20}}}),
            doc.clone()
        ));
        assert!(matches(
            json!({"missing": {"$not": {"$eq": 1}}}),
            doc.clone()
        ));
    }

    #[test]
    fn bad_filters_get_clear_errors() {
        let cases = [
            (json!([1]), "a filter is a JSON object"),
            (json!({"a": {"$regex": "x"}}), "unknown operator $regex"),
            (json!({"$where": "1"}), "unknown operator $where"),
            (json!({"a": {"$in": 5}}), "$in takes an array"),
            (
                json!({"a": {"$exists": "yes"}}),
                "$exists takes true or false",
            ),
            (json!({"a": {"$gt": null}}), "$gt compares"),
            (json!({"a": {"$gt": [1]}}), "$gt compares"),
            (json!({"$or": []}), "needs at least one"),
            (json!({"$and": {"a": 1}}), "takes an array"),
            (
                json!({"a": {"$gt": 1, "b": 2}}),
                "mixes operators and field names",
            ),
            (
                json!({"a": {"$not": 5}}),
                "$not takes an object of operators",
            ),
            (json!({"a..b": 1}), "empty segment"),
            (json!({"a.$gt": 1}), "operators, not fields"),
        ];
        for (filter, expected) in cases {
            let err = Filter::parse(&filter).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput);
            assert!(err.to_string().contains(expected), "{filter}: {err}");
        }
        let mut deep = json!({"a": 1});
        for _ in 0..=MAX_NESTING {
            deep = json!({"$not": deep});
        }
        assert!(
            Filter::parse(&deep)
                .unwrap_err()
                .to_string()
                .contains("nest")
        );
        let wide: Map<String, Value> = (0..=MAX_CONDITIONS)
            .map(|i| (format!("f{i}"), json!(i)))
            .collect();
        assert!(
            Filter::parse(&Value::Object(wide))
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
        let many: Vec<Value> = (0..=MAX_IN).map(|i| json!(i)).collect();
        assert!(Filter::parse(&json!({"a": {"$in": many}})).is_err());
    }
}

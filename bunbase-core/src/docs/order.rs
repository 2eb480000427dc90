//! The total order of JSON values, across types:
//!
//! `null` < booleans (`false` < `true`) < numbers (by value) < strings (by
//! Unicode code point, i.e. UTF-8 bytes) < arrays (element by element,
//! then shorter first) < objects (by their keys in sorted order, key then
//! value, then fewer keys first).
//!
//! Every comparison (`$gt`, `$lt`, …) and every sort uses it, so a query
//! means the same on every store.

use std::cmp::Ordering;

use serde_json::{Map, Value};

fn rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A number as its nearest f64 and the exact remainder (`value - f64`,
/// non-zero only for integers beyond 2^53), with -0.0 taken as 0.0.
///
/// Ordering by this pair is ordering by exact value, and unlike mixing
/// exact integer and f64 comparisons it is transitive (9007199254740993 >
/// 9007199254740992.0 == 9007199254740992). The index keys of
/// [`super::keys`] encode the same pair, so both always agree.
pub(crate) fn number_parts(n: &serde_json::Number) -> (f64, i128) {
    let (approx, exact) = if let Some(i) = n.as_i64() {
        (i as f64, i128::from(i))
    } else if let Some(u) = n.as_u64() {
        (u as f64, i128::from(u))
    } else {
        // serde_json numbers are finite, so this is the float itself.
        let f = n.as_f64().unwrap_or(0.0);
        return (if f == 0.0 { 0.0 } else { f }, 0);
    };
    // Integers up to u64::MAX round to at most 2^64, exact as an i128.
    (approx, exact - approx as i128)
}

/// Numbers compare by exact value (see [`number_parts`]).
fn numbers(a: &serde_json::Number, b: &serde_json::Number) -> Ordering {
    let (x, rx) = number_parts(a);
    let (y, ry) = number_parts(b);
    x.total_cmp(&y).then(rx.cmp(&ry))
}

fn objects(a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    let mut ka: Vec<&String> = a.keys().collect();
    let mut kb: Vec<&String> = b.keys().collect();
    ka.sort();
    kb.sort();
    for (x, y) in ka.iter().zip(kb.iter()) {
        let by_key = x.cmp(y);
        if by_key != Ordering::Equal {
            return by_key;
        }
        let by_value = compare(&a[x.as_str()], &b[y.as_str()]);
        if by_value != Ordering::Equal {
            return by_value;
        }
    }
    ka.len().cmp(&kb.len())
}

/// Compares two JSON values in the total order.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => objects(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Equality in the same order (so `1` equals `1.0`).
pub fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_order_before_values() {
        let ascending = [
            json!(null),
            json!(false),
            json!(true),
            json!(-5),
            json!(1.5),
            json!(2),
            json!(""),
            json!("B"),
            json!("a"),
            json!("é"),
            json!([]),
            json!([1]),
            json!([1, 2]),
            json!([2]),
            json!({}),
            json!({"a": 1}),
            json!({"a": 1, "b": 0}),
            json!({"a": 2}),
            json!({"b": 0}),
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(compare(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(equal(&json!(1), &json!(1.0)));
        assert_eq!(
            compare(&json!(u64::MAX), &json!(i64::MAX)),
            Ordering::Greater
        );
        assert_eq!(compare(&json!(-1), &json!(u64::MAX)), Ordering::Less);
        assert_eq!(
            compare(&json!(9007199254740993_i64), &json!(9007199254740992_i64)),
            Ordering::Greater
        );
        assert!(equal(&json!(0), &json!(-0.0)), "-0.0 is 0");
        assert_eq!(compare(&json!(-0.0), &json!(-1e-300)), Ordering::Greater);
        assert_eq!(
            compare(&json!(u64::MAX), &json!(18446744073709551616.0)),
            Ordering::Less,
            "u64::MAX rounds up to 2^64 as f64 but is below it"
        );
        assert_eq!(
            compare(&json!(i64::MIN), &json!(-9223372036854775808.0)),
            Ordering::Equal
        );
        assert!(
            equal(&json!({"a": 1, "b": 2}), &json!({"b": 2.0, "a": 1})),
            "key order does not matter"
        );
    }

    #[test]
    fn big_integers_and_floats_order_transitively() {
        // 2^53 + 1 rounds to the float 2^53: by f64 alone they would be
        // equal while the integers 2^53 and 2^53 + 1 are not.
        let (lo, hi, float) = (
            json!(9007199254740992_u64),
            json!(9007199254740993_u64),
            json!(9007199254740992.0),
        );
        assert!(equal(&lo, &float));
        assert_eq!(compare(&hi, &float), Ordering::Greater);
        assert_eq!(compare(&float, &hi), Ordering::Less);
        assert_eq!(compare(&hi, &lo), Ordering::Greater);
        let next_float = json!(9007199254740994.0);
        assert_eq!(compare(&hi, &next_float), Ordering::Less);
        assert_eq!(
            compare(&json!(-9007199254740993_i64), &json!(-9007199254740992.0)),
            Ordering::Less
        );
    }
}

//! Index keys: JSON values as byte strings whose plain byte order
//! (`memcmp`, as Rust's `Vec<u8>`, Postgres `bytea` and SQLite `BLOB`
//! compare) is the total order of [`super::order`]:
//! `encode(a).cmp(&encode(b)) == order::compare(a, b)`.
//!
//! Every encoding is self-delimiting (no encoding is a prefix of
//! another), so a compound key — several encoded values, then the encoded
//! document `_id` — sorts as the tuple of its parts.
//!
//! Layout (one tag byte, then the body):
//!
//! | tag | value | body |
//! | --- | --- | --- |
//! | `00` | end of an array or object | — |
//! | `01` | field missing (below everything) | — |
//! | `02` / `03` / `04` | `null` / `false` / `true` | — |
//! | `05` | number | 8-byte f64 (order-preserving bits), then the exact remainder |
//! | `06` | string | UTF-8, `00` escaped as `00 FF`, ended by `00 01` |
//! | `07` | array | the elements, then `00` |
//! | `08` | object | per key in byte order: `01`, key as a string body, value; then `00` |
//!
//! Numbers are the pair of [`super::order::number_parts`]: the nearest
//! f64, then the remainder (non-zero only for integers beyond 2^53) as a
//! small signed varint: `80` for 0, else `80 ± n` and `n` big-endian
//! bytes of the magnitude (complemented when negative).
//!
//! Keys are stored, so this layout is a storage format: change it only
//! with a migration that re-encodes every index.

use serde_json::{Map, Value};

use super::order::number_parts;

const END: u8 = 0x00;
const MISSING: u8 = 0x01;
const NULL: u8 = 0x02;
const FALSE: u8 = 0x03;
const TRUE: u8 = 0x04;
const NUMBER: u8 = 0x05;
const STRING: u8 = 0x06;
const ARRAY: u8 = 0x07;
const OBJECT: u8 = 0x08;
/// Starts each object entry; above [`END`] so fewer keys sort first.
const ENTRY: u8 = 0x01;

/// Appends the key of `value`.
pub fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            out.push(NUMBER);
            let (approx, remainder) = number_parts(n);
            out.extend_from_slice(&f64_key(approx));
            encode_remainder(out, remainder);
        }
        Value::String(s) => encode_str(out, s),
        Value::Array(items) => {
            out.push(ARRAY);
            for item in items {
                encode(out, item);
            }
            out.push(END);
        }
        Value::Object(map) => encode_object(out, map),
    }
}

/// Appends the key of a missing field: below `null` and every value, so
/// documents without the field sort first.
pub fn encode_missing(out: &mut Vec<u8>) {
    out.push(MISSING);
}

/// Appends the key of a string (the same bytes as [`encode`] of
/// `Value::String`), without building a `Value` (e.g. for `_id`).
pub fn encode_str(out: &mut Vec<u8>, s: &str) {
    out.push(STRING);
    string_body(out, s);
}

/// The range `[lower, upper)` holding the key of every value of the same
/// JSON type as `value` (booleans are one type): bounds `$gt`/`$lt` scans,
/// which compare only values of one type.
pub fn type_bounds(value: &Value) -> (Vec<u8>, Vec<u8>) {
    let (lower, upper) = match value {
        Value::Null => (NULL, FALSE),
        Value::Bool(_) => (FALSE, NUMBER),
        Value::Number(_) => (NUMBER, STRING),
        Value::String(_) => (STRING, ARRAY),
        Value::Array(_) => (ARRAY, OBJECT),
        Value::Object(_) => (OBJECT, OBJECT + 1),
    };
    (vec![lower], vec![upper])
}

/// The smallest byte string above every string that starts with
/// `prefix` (the exclusive upper bound of a prefix scan), or `None` when
/// there is none (empty, or all `FF`).
pub fn successor_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut next = prefix[..=last].to_vec();
    next[last] += 1;
    Some(next)
}

fn string_body(out: &mut Vec<u8>, s: &str) {
    // `00 01` ends the string below any byte that can follow within it
    // (`00 FF` or `01`+), so a prefix sorts first and no key is a prefix
    // of another.
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn encode_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(OBJECT);
    // Key order is byte order, whatever order the map keeps.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (key, value) in entries {
        out.push(ENTRY);
        string_body(out, key);
        encode(out, value);
    }
    out.push(END);
}

/// The f64's bits, reordered so byte order is `f64::total_cmp` order:
/// positives get the sign bit set, negatives are inverted whole.
fn f64_key(f: f64) -> [u8; 8] {
    let bits = f.to_bits();
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    key.to_be_bytes()
}

/// An order-preserving varint: `80` is 0; `80 + n` then `n` bytes is a
/// positive magnitude, `80 - n` then the complemented `n` bytes a negative
/// one, so longer magnitudes sort further from zero.
fn encode_remainder(out: &mut Vec<u8>, remainder: i128) {
    let magnitude = remainder.unsigned_abs();
    let bytes = magnitude.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let digits = &bytes[skip..];
    // At most 16 digits, so the length byte stays within 0x70..=0x90.
    let n = digits.len() as u8;
    if remainder >= 0 {
        out.push(0x80 + n);
        out.extend_from_slice(digits);
    } else {
        out.push(0x80 - n);
        out.extend(digits.iter().map(|b| !b));
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::{Number, json};

    use super::super::order::compare;
    use super::*;

    fn key(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, value);
        out
    }

    fn random_number(rng: &mut impl Rng) -> Value {
        const TWO_53: i64 = 1 << 53;
        match rng.random_range(0..10) {
            0 => json!(rng.random_range(-3..=3)),
            1 => json!(TWO_53 + rng.random_range(-3..=3)),
            2 => json!(-TWO_53 + rng.random_range(-3..=3)),
            3 => json!(u64::MAX - rng.random_range(0..4096)),
            4 => json!(i64::MIN + rng.random_range(0..4096)),
            5 => json!(i64::MAX - rng.random_range(0..4096)),
            6 => json!(rng.random::<i64>()),
            7 => json!(rng.random::<u64>()),
            8 => {
                // Floats that collide with the integers above.
                let picks = [
                    0.0,
                    -0.0,
                    0.5,
                    -1.5,
                    9007199254740992.0,
                    9007199254740994.0,
                    -9007199254740992.0,
                    18446744073709551616.0,
                    9223372036854775808.0,
                    -9223372036854775808.0,
                    f64::MAX,
                    f64::MIN,
                    f64::MIN_POSITIVE,
                    -f64::MIN_POSITIVE,
                    5e-324,
                ];
                let f = picks[rng.random_range(0..picks.len())];
                Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            _ => {
                let f = rng.random_range(-1e6..1e6) * 10f64.powi(rng.random_range(-20..20));
                Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
        }
    }

    fn random_string(rng: &mut impl Rng) -> String {
        // A small alphabet makes equal strings and shared prefixes common.
        const ALPHABET: [char; 8] = ['\0', '\u{1}', 'a', 'b', '\u{7f}', 'é', '\u{ffff}', '😀'];
        let len = rng.random_range(0..5);
        (0..len)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect()
    }

    fn random_value(rng: &mut impl Rng, depth: u32) -> Value {
        let kinds = if depth >= 3 { 5 } else { 7 };
        match rng.random_range(0..kinds) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 | 3 => random_number(rng),
            4 => Value::String(random_string(rng)),
            5 => {
                let len = rng.random_range(0..4);
                Value::Array((0..len).map(|_| random_value(rng, depth + 1)).collect())
            }
            _ => {
                let len = rng.random_range(0..4);
                Value::Object(
                    (0..len)
                        .map(|_| (random_string(rng), random_value(rng, depth + 1)))
                        .collect(),
                )
            }
        }
    }

    fn sample(seed: u64, n: usize) -> Vec<Value> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| random_value(&mut rng, 0)).collect()
    }

    #[test]
    fn byte_order_is_the_value_order() {
        let values = sample(1, 1500);
        let keys: Vec<Vec<u8>> = values.iter().map(key).collect();
        for (a, ka) in values.iter().zip(&keys) {
            for (b, kb) in values.iter().zip(&keys) {
                assert_eq!(ka.cmp(kb), compare(a, b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn compound_keys_order_as_tuples() {
        let firsts = sample(2, 120);
        let seconds = sample(3, 120);
        let pairs: Vec<(&Value, &Value, Vec<u8>)> = firsts
            .iter()
            .zip(&seconds)
            .map(|(a, b)| {
                let mut k = key(a);
                encode(&mut k, b);
                (a, b, k)
            })
            .collect();
        for (a1, b1, k1) in &pairs {
            for (a2, b2, k2) in &pairs {
                let expected = compare(a1, a2).then_with(|| compare(b1, b2));
                assert_eq!(k1.cmp(k2), expected, "({a1}, {b1}) vs ({a2}, {b2})");
                // Equal first parts: the second decides.
                let mut same_first = key(a1);
                encode(&mut same_first, b2);
                assert_eq!(k1.cmp(&same_first), compare(b1, b2));
            }
        }
    }

    #[test]
    fn keys_are_prefix_free() {
        let values = sample(4, 600);
        let keys: Vec<Vec<u8>> = values.iter().map(key).collect();
        for (a, ka) in values.iter().zip(&keys) {
            for (b, kb) in values.iter().zip(&keys) {
                if ka != kb {
                    assert!(!kb.starts_with(ka), "{a} is a prefix of {b}");
                }
            }
        }
    }

    #[test]
    fn type_bounds_enclose_each_type_only() {
        let values = sample(5, 2000);
        let probes = [
            json!(null),
            json!(true),
            json!(0),
            json!(""),
            json!([]),
            json!({}),
        ];
        for probe in &probes {
            let (lower, upper) = type_bounds(probe);
            assert!(lower < upper);
            for v in &values {
                let k = key(v);
                let same_type = std::mem::discriminant(v) == std::mem::discriminant(probe);
                assert_eq!(
                    lower <= k && k < upper,
                    same_type,
                    "{v} in bounds of {probe}"
                );
            }
            let mut missing = Vec::new();
            encode_missing(&mut missing);
            assert!(missing < lower);
        }
        assert_eq!(type_bounds(&json!(false)), type_bounds(&json!(true)));
    }

    #[test]
    fn missing_sorts_below_everything() {
        let mut missing = Vec::new();
        encode_missing(&mut missing);
        assert!(missing < key(&json!(null)));
        for v in sample(6, 500) {
            assert!(missing < key(&v), "{v}");
        }
        // Also within compound keys: (missing, id) < (null, id).
        let mut a = missing.clone();
        encode_str(&mut a, "zzz");
        let mut b = key(&json!(null));
        encode_str(&mut b, "a");
        assert!(a < b);
    }

    #[test]
    fn encode_str_matches_encode() {
        for s in ["", "a", "a\0b", "\0", "é😀"] {
            let mut direct = Vec::new();
            encode_str(&mut direct, s);
            assert_eq!(direct, key(&json!(s)));
        }
    }

    #[test]
    fn successor_prefix_bounds_prefix_scans() {
        assert_eq!(successor_prefix(b""), None);
        assert_eq!(successor_prefix(&[0xFF, 0xFF]), None);
        assert_eq!(successor_prefix(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(successor_prefix(&[1, 0xFF, 0xFF]), Some(vec![2]));
        // Bytes near the edges, where carries happen.
        const EDGES: [u8; 4] = [0x00, 0x01, 0xFE, 0xFF];
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let len = rng.random_range(1..4);
            let prefix: Vec<u8> = (0..len)
                .map(|_| EDGES[rng.random_range(0..EDGES.len())])
                .collect();
            let tail_len = rng.random_range(0..4);
            let mut under = prefix.clone();
            under.extend((0..tail_len).map(|_| rng.random::<u8>()));
            let other: Vec<u8> = (0..rng.random_range(0..5))
                .map(|_| EDGES[rng.random_range(0..EDGES.len())])
                .collect();
            match successor_prefix(&prefix) {
                Some(next) => {
                    assert!(under < next, "{under:?} < {next:?}");
                    // Smallest such: anything below it starts with prefix
                    // or sorts before prefix.
                    if other < next {
                        assert!(other.starts_with(&prefix) || other < prefix);
                    }
                }
                None => assert!(prefix.iter().all(|&b| b == 0xFF)),
            }
        }
    }

    #[test]
    fn numbers_keep_exact_integer_order() {
        let ascending = [
            json!(-1e300),
            json!(i64::MIN),
            json!(-9007199254740993_i64),
            json!(-9007199254740992.0),
            json!(-1),
            json!(-0.5),
            json!(0),
            json!(5e-324),
            json!(1),
            json!(9007199254740992.0),
            json!(9007199254740993_u64),
            json!(9007199254740994_u64),
            json!(i64::MAX),
            json!(9223372036854775808_u64),
            json!(u64::MAX),
            json!(18446744073709551616.0),
            json!(1e300),
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(key(a).cmp(&key(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(key(&json!(-0.0)), key(&json!(0)));
        assert_eq!(key(&json!(1.0)), key(&json!(1)));
        assert_eq!(
            key(&json!(9007199254740992_u64)),
            key(&json!(9007199254740992.0))
        );
        assert_eq!(key(&json!(1)).len(), 10, "small numbers take 10 bytes");
    }

    #[test]
    fn nested_values_order_by_elements_then_length() {
        let ascending = [
            json!([]),
            json!([null]),
            json!([null, null]),
            json!([false]),
            json!([1, "a"]),
            json!([1, "a\0"]),
            json!([1, "ab"]),
            json!([[]]),
            json!({}),
            json!({"": 0}),
            json!({"a": 1}),
            json!({"a": 1, "b": 0}),
            json!({"a\0": 0}),
            json!({"a\0b": 0}),
            json!({"aa": 0}),
            json!({"b": 0}),
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(key(a).cmp(&key(b)), i.cmp(&j), "{a} vs {b}");
                assert_eq!(compare(a, b), i.cmp(&j));
            }
        }
    }
}

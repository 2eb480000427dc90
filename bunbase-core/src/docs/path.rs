//! Dotted paths into documents: `address.city`, `items.0.sku` (a number
//! segment indexes an array). Field names may not start with `$` (that is
//! operators' syntax) or be empty, so a path can never smuggle an operator
//! or reach outside the document.

use serde_json::Value;

use crate::error::Error;

/// Deepest path a query may name.
pub const MAX_DEPTH: usize = 32;
/// Longest path, in bytes.
pub const MAX_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    segments: Vec<String>,
}

impl Path {
    pub fn parse(raw: &str) -> Result<Path, Error> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(Error::invalid(format!(
                "field paths are 1 to {MAX_LEN} bytes"
            )));
        }
        let segments: Vec<String> = raw.split('.').map(str::to_string).collect();
        if segments.len() > MAX_DEPTH {
            return Err(Error::invalid(format!(
                "field path {raw:?} is deeper than {MAX_DEPTH}"
            )));
        }
        for segment in &segments {
            if segment.is_empty() {
                return Err(Error::invalid(format!(
                    "field path {raw:?} has an empty segment"
                )));
            }
            if segment.starts_with('$') {
                return Err(Error::invalid(format!(
                    "field path {raw:?}: names starting with $ are operators, not fields"
                )));
            }
            if segment.chars().any(char::is_control) {
                return Err(Error::invalid(format!(
                    "field path {raw:?} contains a control character"
                )));
            }
        }
        Ok(Path { segments })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn as_string(&self) -> String {
        self.segments.join(".")
    }

    /// What a filter sees at this path. A name segment met by an array
    /// reads that name in each of its objects, as MongoDB does
    /// (`items.sku` reaches every item's `sku`): then all the values
    /// reached, `Reach::Many`. Otherwise the one value [`Path::get`] finds.
    pub fn reach<'a>(&self, document: &'a Value) -> Reach<'a> {
        let mut frontier = vec![document];
        let mut fanned = false;
        for segment in &self.segments {
            let index = segment.parse::<usize>().ok();
            let mut next = Vec::with_capacity(frontier.len());
            for value in frontier {
                match value {
                    Value::Object(map) => next.extend(map.get(segment)),
                    Value::Array(items) => match index {
                        Some(i) => next.extend(items.get(i)),
                        None => {
                            fanned = true;
                            next.extend(items.iter().filter_map(|item| item.get(segment)));
                        }
                    },
                    _ => {}
                }
            }
            frontier = next;
        }
        if fanned {
            Reach::Many(frontier)
        } else {
            Reach::One(frontier.first().copied())
        }
    }

    /// The value at this path, if there is one (what sorting and
    /// projection use; it does not read through arrays of objects).
    pub fn get<'a>(&self, document: &'a Value) -> Option<&'a Value> {
        let mut at = document;
        for segment in &self.segments {
            at = match at {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }
}

/// What a path reaches in a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach<'a> {
    /// Through objects and array positions only: at most one value.
    One(Option<&'a Value>),
    /// Through arrays of objects: every value reached (maybe none).
    Many(Vec<&'a Value>),
}

impl<'a> Reach<'a> {
    /// The values reached.
    pub fn values(&self) -> Vec<&'a Value> {
        match self {
            Reach::One(v) => v.iter().copied().collect(),
            Reach::Many(vs) => vs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nested_objects_and_array_items() {
        let doc = json!({"a": {"b": {"c": 1}}, "items": [{"sku": "x"}, {"sku": "y"}], "n": 5});
        assert_eq!(Path::parse("a.b.c").unwrap().get(&doc), Some(&json!(1)));
        assert_eq!(
            Path::parse("items.1.sku").unwrap().get(&doc),
            Some(&json!("y"))
        );
        assert_eq!(Path::parse("items.9.sku").unwrap().get(&doc), None);
        assert_eq!(Path::parse("n.x").unwrap().get(&doc), None);
        assert_eq!(Path::parse("missing").unwrap().get(&doc), None);
    }

    #[test]
    fn names_read_through_arrays_of_objects() {
        let doc = json!({"items": [{"sku": "x"}, {"n": 1}, {"sku": ["y", "z"]}, 5], "o": {"a": 1}});
        assert_eq!(
            Path::parse("items.sku").unwrap().reach(&doc),
            Reach::Many(vec![&json!("x"), &json!(["y", "z"])])
        );
        assert_eq!(Path::parse("items.sku").unwrap().get(&doc), None);
        assert_eq!(
            Path::parse("items.0.sku").unwrap().reach(&doc),
            Reach::One(Some(&json!("x")))
        );
        assert_eq!(
            Path::parse("o.a").unwrap().reach(&doc),
            Reach::One(Some(&json!(1)))
        );
        assert_eq!(
            Path::parse("items.none").unwrap().reach(&doc),
            Reach::Many(vec![])
        );
    }

    #[test]
    fn refuses_what_is_not_a_field_path() {
        for bad in ["", "a..b", ".a", "a.", "$where", "a.$gt", "a\u{1}b"] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
        let deep = vec!["a"; MAX_DEPTH + 1].join(".");
        assert!(Path::parse(&deep).is_err());
        assert!(Path::parse(&vec!["a"; MAX_DEPTH].join(".")).is_ok());
        assert!(Path::parse(&"a".repeat(MAX_LEN + 1)).is_err());
        assert!(
            Path::parse("a\\b").is_ok(),
            "a backslash is an ordinary character"
        );
    }
}

//! Collections: a project's named sets of documents, each with its
//! indexes, optional JSON Schema, access rules per operation, encrypted
//! fields and scan policy. The definition is stored as JSON (what the API
//! takes and returns) and parsed here once per version.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::path::Path;
use super::rules::Expr;
use super::schema::Schema;
use crate::error::Error;

/// Most indexes per collection.
pub const MAX_INDEXES: usize = 16;
/// Most fields in one compound index.
pub const MAX_INDEX_FIELDS: usize = 8;
/// Most encrypted fields per collection.
pub const MAX_ENCRYPTED: usize = 32;

/// The operations rules govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    List,
    Create,
    Update,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Read,
        Operation::List,
        Operation::Create,
        Operation::Update,
        Operation::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: String,
    pub fields: Vec<Path>,
    pub unique: bool,
}

/// One rule: its text (returned as given) and its parsed form.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub source: String,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub struct Collection {
    pub name: String,
    pub indexes: Vec<Index>,
    pub schema: Option<Schema>,
    /// Per operation; `None` lets only keys with data rights (secret keys,
    /// services, accounts) through — end users are denied.
    pub rules: [Option<Rule>; 5],
    pub encrypted: Vec<Path>,
    /// Whether queries may examine any number of documents without an
    /// index.
    pub allow_scans: bool,
    /// 1 at creation, +1 per update.
    pub version: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    fields: Vec<String>,
    #[serde(default)]
    unique: bool,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    read: Option<String>,
    list: Option<String>,
    create: Option<String>,
    update: Option<String>,
    delete: Option<String>,
}

/// What a client sends to create or update a collection (`name` only on
/// create; an update replaces everything else).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollection {
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    indexes: Vec<RawIndex>,
    schema: Option<Value>,
    rules: Option<RawRules>,
    #[serde(default)]
    encrypted: Vec<String>,
    #[serde(default)]
    allow_scans: bool,
}

/// Collection and index names: 1–64 of `a-z 0-9 _ -`, starting with a
/// letter or digit.
pub fn check_name(kind: &str, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{kind} name {name:?}: 1 to 64 of a-z 0-9 _ -, starting with a letter or digit"
        )))
    }
}

impl Collection {
    /// Parses a definition as sent by a client (or stored).
    pub fn parse(name: &str, body: &Value, version: u64) -> Result<Collection, Error> {
        check_name("collection", name)?;
        let raw: RawCollection = serde_json::from_value(body.clone())
            .map_err(|e| Error::invalid(format!("invalid collection definition: {e}")))?;
        if raw.indexes.len() > MAX_INDEXES {
            return Err(Error::invalid(format!(
                "a collection has at most {MAX_INDEXES} indexes"
            )));
        }
        let encrypted = parse_paths("encrypted", &raw.encrypted, MAX_ENCRYPTED)?;
        for path in &encrypted {
            if path.segments()[0].starts_with('_') {
                return Err(Error::invalid(format!(
                    "encrypted: {} is a system field",
                    path.as_string()
                )));
            }
        }
        let mut indexes: Vec<Index> = Vec::with_capacity(raw.indexes.len());
        for raw_index in raw.indexes {
            let index = parse_index(raw_index)?;
            if indexes.iter().any(|i| i.name == index.name) {
                return Err(Error::invalid(format!("two indexes named {}", index.name)));
            }
            if let Some(field) = index
                .fields
                .iter()
                .find(|f| encrypted.iter().any(|e| overlaps(e, f)))
            {
                return Err(Error::invalid(format!(
                    "index {}: {} is encrypted, and encrypted fields can't be indexed",
                    index.name,
                    field.as_string()
                )));
            }
            indexes.push(index);
        }
        let schema = match raw.schema {
            None | Some(Value::Null) => None,
            Some(source) => Some(Schema::compile(&source)?),
        };
        let raw_rules = raw.rules.unwrap_or(RawRules {
            read: None,
            list: None,
            create: None,
            update: None,
            delete: None,
        });
        let rules = [
            raw_rules.read,
            raw_rules.list,
            raw_rules.create,
            raw_rules.update,
            raw_rules.delete,
        ]
        .into_iter()
        .zip(Operation::ALL)
        .map(|(source, op)| {
            source
                .map(|source| {
                    Expr::parse(&source)
                        .map(|expr| Rule { source, expr })
                        .map_err(|e| Error::invalid(format!("rules.{}: {e}", op.as_str())))
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
        // Rules see stored values, which for encrypted fields are
        // ciphertext: a rule on one could never mean what it says.
        for (rule, op) in rules.iter().zip(Operation::ALL) {
            let Some(rule) = rule else { continue };
            for path in rule.expr.paths() {
                let in_document =
                    path.len() > 1 && matches!(path[0].as_str(), "resource" | "request");
                if in_document
                    && encrypted
                        .iter()
                        .any(|e| e.segments().iter().zip(&path[1..]).all(|(x, y)| x == y))
                {
                    return Err(Error::invalid(format!(
                        "rules.{}: {} reads an encrypted field, which rules can't see",
                        op.as_str(),
                        path.join(".")
                    )));
                }
            }
        }
        let [read, list, create, update, delete]: [Option<Rule>; 5] = rules
            .try_into()
            .map_err(|_| Error::internal("five rules"))?;
        Ok(Collection {
            name: name.to_string(),
            indexes,
            schema,
            rules: [read, list, create, update, delete],
            encrypted,
            allow_scans: raw.allow_scans,
            version,
        })
    }

    /// The definition as stored and returned (without name and version).
    pub fn definition(&self) -> Value {
        let mut rules = Map::new();
        for (rule, op) in self.rules.iter().zip(Operation::ALL) {
            if let Some(rule) = rule {
                rules.insert(op.as_str().into(), json!(rule.source));
            }
        }
        json!({
            "indexes": self.indexes.iter().map(|i| json!({
                "name": i.name,
                "fields": i.fields.iter().map(Path::as_string).collect::<Vec<_>>(),
                "unique": i.unique,
            })).collect::<Vec<_>>(),
            "schema": self.schema.as_ref().map(Schema::source),
            "rules": rules,
            "encrypted": self.encrypted.iter().map(Path::as_string).collect::<Vec<_>>(),
            "allow_scans": self.allow_scans,
        })
    }

    /// What the API shows.
    pub fn describe(&self) -> Value {
        let mut out = self.definition();
        out["name"] = json!(self.name);
        out["version"] = json!(self.version);
        out
    }

    pub fn rule(&self, op: Operation) -> Option<&Rule> {
        self.rules[op as usize].as_ref()
    }

    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// Whether a path is (or lies inside, or contains) an encrypted field.
    pub fn is_encrypted(&self, path: &Path) -> bool {
        self.encrypted.iter().any(|e| overlaps(e, path))
    }
}

/// Whether one path is a prefix of the other (`a` and `a.b`).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.segments().iter().zip(b.segments()).all(|(x, y)| x == y)
}

fn parse_paths(what: &str, raw: &[String], max: usize) -> Result<Vec<Path>, Error> {
    if raw.len() > max {
        return Err(Error::invalid(format!("{what}: at most {max} fields")));
    }
    let mut paths: Vec<Path> = Vec::with_capacity(raw.len());
    for field in raw {
        let path = Path::parse(field).map_err(|e| Error::invalid(format!("{what}: {e}")))?;
        if paths.contains(&path) {
            return Err(Error::invalid(format!("{what}: {field} is listed twice")));
        }
        paths.push(path);
    }
    Ok(paths)
}

fn parse_index(raw: RawIndex) -> Result<Index, Error> {
    if raw.fields.is_empty() {
        return Err(Error::invalid("an index has at least one field"));
    }
    let fields = parse_paths("index", &raw.fields, MAX_INDEX_FIELDS)?;
    let name = match raw.name {
        Some(name) => name,
        None => raw.fields.join("_").replace('.', "_").to_ascii_lowercase(),
    };
    check_name("index", &name)?;
    Ok(Index {
        name,
        fields,
        unique: raw.unique,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_describes_a_definition() {
        let body = json!({
            "indexes": [{"fields": ["city"]}, {"fields": ["email"], "unique": true},
                        {"fields": ["address.zip", "n"], "name": "zip_n"}],
            "rules": {"read": "resource.owner == auth.uid", "create": "request.owner == auth.uid"},
            "encrypted": ["ssn"],
        });
        let c = Collection::parse("orders", &body, 1).unwrap();
        assert_eq!(c.indexes[0].name, "city");
        assert!(c.indexes[1].unique);
        assert_eq!(c.indexes[2].name, "zip_n");
        assert!(c.rule(Operation::Read).is_some());
        assert!(c.rule(Operation::Delete).is_none());
        assert!(c.is_encrypted(&Path::parse("ssn").unwrap()));
        let again = Collection::parse("orders", &c.definition(), 2).unwrap();
        assert_eq!(again.definition(), c.definition());
        assert_eq!(again.describe()["version"], json!(2));
    }

    #[test]
    fn bad_definitions_get_clear_errors() {
        let cases = [
            (json!({"indexes": [{"fields": []}]}), "at least one field"),
            (
                json!({"indexes": [{"fields": ["a"]}, {"fields": ["a"]}]}),
                "two indexes named a",
            ),
            (json!({"indexes": [{"fields": ["$a"]}]}), "index"),
            (
                json!({"indexes": [{"fields": ["ssn.x"]}], "encrypted": ["ssn"]}),
                "can't be indexed",
            ),
            (json!({"rules": {"read": "auth.uid =="}}), "rules.read"),
            (json!({"rules": {"write": "true"}}), "unknown field"),
            (json!({"encrypted": ["_id"]}), "system field"),
            (
                json!({"encrypted": ["ssn"], "rules": {"read": "resource.ssn == 1"}}),
                "encrypted field",
            ),
            (json!({"colour": 1}), "unknown field"),
            (
                json!({"allow_scans": "yes"}),
                "invalid collection definition",
            ),
        ];
        for (body, expected) in cases {
            let err = Collection::parse("c", &body, 1).unwrap_err();
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
        assert!(Collection::parse("Bad Name", &json!({}), 1).is_err());
    }
}

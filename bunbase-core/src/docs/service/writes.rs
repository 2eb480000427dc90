//! Writes: create, replace, patch, delete and batches, each prepared
//! (checks, rules, schema, system fields, encryption, index entries) and
//! committed as one batch, retried when it raced another write.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::access::Caller;
use super::bundoc::Bundoc;
use super::commit::{Change, EVENT_DOC_MAX, EVENT_DOCS_MAX, refusal_error};
use crate::auth::{Access, Principal};
use crate::docs::document::{SYSTEM_FIELDS, check_id, check_incoming, merge_patch};
use crate::docs::index;
use crate::docs::model::{Collection, Operation};
use crate::docs::store::{Batch, Expect, Refusal, Write};
use crate::error::Error;
use crate::id::{ProjectId, random_hex};

/// Retries of a write that raced another (when the caller gave no
/// version), after a short random pause that grows with each attempt.
const RETRIES: usize = 32;

/// One write of a batch, as a client asks for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum WriteOp {
    Create {
        doc: Value,
    },
    Replace {
        id: String,
        doc: Value,
        if_version: Option<u64>,
    },
    Patch {
        id: String,
        patch: Value,
        if_version: Option<u64>,
    },
    Delete {
        id: String,
        if_version: Option<u64>,
    },
}

impl WriteOp {
    fn if_version(&self) -> Option<u64> {
        match self {
            WriteOp::Create { .. } => None,
            WriteOp::Replace { if_version, .. }
            | WriteOp::Patch { if_version, .. }
            | WriteOp::Delete { if_version, .. } => *if_version,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new `_id`: the time in ms (hex) then 8 random hex digits, so new
/// documents land at the end of the id order (B-tree friendly).
fn new_id() -> String {
    format!("{:011x}{}", now_ms(), random_hex(4))
}

/// The document without its system fields (what schemas and rules see as
/// `request`).
fn user_fields(doc: &Value) -> Value {
    let mut out = doc.clone();
    if let Value::Object(map) = &mut out {
        for field in SYSTEM_FIELDS {
            map.remove(field);
        }
    }
    out
}

/// Only the system fields of a document (`_id`, `_version`, …).
fn system_fields(doc: &Value) -> Value {
    Value::Object(
        SYSTEM_FIELDS
            .iter()
            .filter_map(|f| Some((f.to_string(), doc.get(*f)?.clone())))
            .collect(),
    )
}

/// A document as a change event carries it: whole if it fits beside
/// `beside` bytes already carried, else left out (`truncated`).
struct EventDoc {
    doc: Option<Value>,
    truncated: bool,
    size: usize,
}

fn event_doc(doc: Option<&Value>, beside: usize) -> EventDoc {
    let Some(doc) = doc else {
        return EventDoc {
            doc: None,
            truncated: false,
            size: 0,
        };
    };
    let size = serde_json::to_vec(doc).map_or(usize::MAX, |v| v.len());
    let limit = if beside == 0 {
        EVENT_DOC_MAX
    } else {
        EVENT_DOCS_MAX.saturating_sub(beside)
    };
    let fits = size <= limit;
    EventDoc {
        doc: fits.then(|| doc.clone()),
        truncated: !fits,
        size: if fits { size } else { 0 },
    }
}

/// A prepared write, and what it produces.
struct Prepared {
    write: Write,
    change: Change,
    /// The new document (decrypted), `None` for a delete.
    result: Option<Value>,
}

impl Bundoc {
    pub async fn create(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        doc: Value,
    ) -> Result<Value, Error> {
        let create = WriteOp::Create { doc };
        self.write_one("create", who, project, collection, create)
            .await
    }

    /// Replaces a document, or creates it with that id: the document, and
    /// whether it was created.
    pub async fn replace(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        id: &str,
        doc: Value,
        if_version: Option<u64>,
    ) -> Result<(Value, bool), Error> {
        let op = WriteOp::Replace {
            id: id.to_string(),
            doc,
            if_version,
        };
        let doc = self
            .write_one("replace", who, project, collection, op)
            .await?;
        // Versions start at 1 and every write adds one: a replace that
        // answers version 1 created the document.
        let created = doc["_version"] == json!(1);
        Ok((doc, created))
    }

    /// Applies a JSON Merge Patch (RFC 7396) to a document.
    pub async fn patch(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        id: &str,
        patch: Value,
        if_version: Option<u64>,
    ) -> Result<Value, Error> {
        let op = WriteOp::Patch {
            id: id.to_string(),
            patch,
            if_version,
        };
        self.write_one("patch", who, project, collection, op).await
    }

    pub async fn delete(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        id: &str,
        if_version: Option<u64>,
    ) -> Result<(), Error> {
        let op = WriteOp::Delete {
            id: id.to_string(),
            if_version,
        };
        self.write_one("delete", who, project, collection, op)
            .await
            .map(|_| ())
    }

    /// Applies every write or none: the new documents (`null` for
    /// deletes), in order.
    pub async fn batch(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<Value>, Error> {
        self.counted("batch", async {
            if ops.is_empty() || ops.len() > self.inner.limits.max_batch {
                return Err(Error::invalid(format!(
                    "a batch has 1 to {} writes",
                    self.inner.limits.max_batch
                )));
            }
            self.write(who, project, collection, ops).await
        })
        .await
    }

    /// One write (counted as `name`): the new document, `null` for a
    /// delete.
    async fn write_one(
        &self,
        name: &str,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        op: WriteOp,
    ) -> Result<Value, Error> {
        self.counted(name, async {
            let mut out = self.write(who, project, collection, vec![op]).await?;
            Ok(out.pop().unwrap_or(Value::Null))
        })
        .await
    }

    /// Prepares and commits writes as one batch; when they raced another
    /// write and the caller named no versions, prepares them again.
    async fn write(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<Value>, Error> {
        let caller = self.caller(who, project, Access::Write)?;
        let versioned = ops.iter().any(|op| op.if_version().is_some());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let collection = self.definition(project, name).await?;
            let now = now_ms();
            let mut ids = HashSet::new();
            let mut prepared = Vec::with_capacity(ops.len());
            for op in &ops {
                let p = self.prepare(&caller, project, &collection, op, now).await?;
                if !ids.insert(p.write.id.clone()) {
                    return Err(Error::invalid(format!(
                        "document {} appears twice in the batch",
                        p.write.id
                    )));
                }
                prepared.push(p);
            }
            let creates: HashSet<String> = ops
                .iter()
                .zip(&prepared)
                .filter(|(op, _)| matches!(op, WriteOp::Create { .. }))
                .map(|(_, p)| p.write.id.clone())
                .collect();
            let (writes, rest): (Vec<Write>, Vec<(Change, Option<Value>)>) = prepared
                .into_iter()
                .map(|p| (p.write, (p.change, p.result)))
                .unzip();
            let (changes, results): (Vec<Change>, Vec<Option<Value>>) = rest.into_iter().unzip();
            let batch = Batch {
                collection: collection.name.clone(),
                collection_version: collection.version,
                writes,
                quota: Some(self.inner.limits.quota),
            };
            match self.inner.committers.commit(project, batch, changes).await {
                Ok(()) => {
                    return Ok(results
                        .into_iter()
                        .map(|r| r.unwrap_or(Value::Null))
                        .collect());
                }
                Err(Refusal::Changed { id }) if creates.contains(&id) => {
                    return Err(Error::AlreadyExists(format!(
                        "document {id} exists in {name}"
                    )));
                }
                Err(Refusal::Changed { id }) if versioned || attempt >= RETRIES => {
                    return Err(Error::Conflict(format!(
                        "document {id} changed meanwhile; read it and try again"
                    )));
                }
                Err(Refusal::Stale) if attempt < RETRIES => {
                    self.forget_definition(project, name);
                    continue;
                }
                Err(Refusal::Changed { .. }) => {
                    // A definition change may be why: read it again.
                    self.forget_definition(project, name);
                    let pause = rand::random_range(0..=attempt as u64 * 200);
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                    continue;
                }
                Err(other) => return Err(refusal_error(other)),
            }
        }
    }

    /// Reads what a write changes and builds it: checks, rules, schema,
    /// system fields, encryption and index entries.
    async fn prepare(
        &self,
        caller: &Caller,
        project: &ProjectId,
        collection: &Collection,
        op: &WriteOp,
        now: u64,
    ) -> Result<Prepared, Error> {
        let id = match op {
            WriteOp::Create { doc } => {
                check_incoming(doc)?;
                match doc.get("_id") {
                    Some(id) => check_id(id)?.to_string(),
                    None => new_id(),
                }
            }
            WriteOp::Replace { id, .. }
            | WriteOp::Patch { id, .. }
            | WriteOp::Delete { id, .. } => {
                check_id(&json!(id))?;
                id.clone()
            }
        };
        let stored = match op {
            WriteOp::Create { .. } => None,
            _ => self.inner.store.get(project, &collection.name, &id).await?,
        };
        let resource = stored.as_ref().unwrap_or(&Value::Null);
        let (version, expect) = match &stored {
            Some(doc) => {
                let v = doc["_version"].as_u64().unwrap_or(0);
                (v + 1, Expect::Version(v))
            }
            None => (1, Expect::Absent),
        };
        let old_entries = match &stored {
            Some(doc) => index::entries(collection, doc)?,
            None => Vec::new(),
        };

        // The new document's user fields.
        let body = match op {
            WriteOp::Delete { .. } => None,
            WriteOp::Create { doc } => Some(doc.clone()),
            WriteOp::Replace { doc, .. } => {
                check_incoming(doc)?;
                if doc.get("_id").is_some_and(|given| given != &json!(id)) {
                    return Err(Error::invalid("_id in the body differs from the URL's"));
                }
                Some(doc.clone())
            }
            WriteOp::Patch { patch, .. } => {
                if !patch.is_object() {
                    return Err(Error::invalid("a merge patch is a JSON object"));
                }
                check_incoming(patch)?;
                if patch.get("_id").is_some_and(|given| given != &json!(id)) {
                    return Err(Error::invalid("_id can't be changed"));
                }
                let mut merged = resource.clone();
                self.open(project, collection, &mut merged).await?;
                let mut merged = user_fields(&merged);
                merge_patch(&mut merged, patch);
                check_incoming(&merged)?;
                Some(merged)
            }
        };

        // Rules first: a caller under rules learns nothing of a document it
        // may not touch — not whether it exists, not its version.
        let request = body.as_ref().map(user_fields);
        let rule_op = match (&request, &stored, op) {
            (None, _, _) => Operation::Delete,
            (Some(_), None, WriteOp::Create { .. } | WriteOp::Replace { .. }) => Operation::Create,
            (Some(_), _, _) => Operation::Update,
        };
        Self::check_rule(
            caller,
            collection,
            rule_op,
            resource,
            request.as_ref().unwrap_or(&Value::Null),
        )?;
        if stored.is_none()
            && (op.if_version().is_some()
                || matches!(op, WriteOp::Patch { .. } | WriteOp::Delete { .. }))
        {
            return Err(Error::NotFound(format!(
                "no document {id} in {}",
                collection.name
            )));
        }
        if let (Some(wanted), Some(doc)) = (op.if_version(), &stored) {
            let at = doc["_version"].as_u64().unwrap_or(0);
            if at != wanted {
                return Err(Error::Conflict(format!(
                    "document {id} is at version {at}, not {wanted}"
                )));
            }
        }
        let before = event_doc(stored.as_ref(), 0);

        let Some(request) = request else {
            return Ok(Prepared {
                write: Write {
                    id: id.clone(),
                    expect,
                    doc: None,
                    remove: old_entries,
                    add: Vec::new(),
                },
                change: Change {
                    op: "delete".into(),
                    id,
                    version,
                    doc: None,
                    truncated: false,
                    before: before.doc,
                    before_truncated: before.truncated,
                },
                result: None,
            });
        };
        if let Some(schema) = &collection.schema {
            schema.validate(&request)?;
        }
        let mut doc = request;
        if let Value::Object(map) = &mut doc {
            let created = stored
                .as_ref()
                .and_then(|s| s.get("_created").cloned())
                .unwrap_or(json!(now));
            map.insert("_id".into(), json!(id));
            map.insert("_created".into(), created);
            map.insert("_updated".into(), json!(now));
            map.insert("_version".into(), json!(version));
        }
        let plain = doc.clone();
        if let Some(crypt) = &self.inner.crypt {
            crypt.seal(project, collection, &mut doc).await?;
        }
        let (remove, add) = index::diff(old_entries, index::entries(collection, &doc)?);
        let after = event_doc(Some(&doc), 0);
        let before = event_doc(stored.as_ref(), after.size);
        let change = Change {
            op: if stored.is_some() { "update" } else { "create" }.into(),
            id: id.clone(),
            version,
            doc: after.doc,
            truncated: after.truncated,
            before: before.doc,
            before_truncated: before.truncated,
        };
        // A caller under rules gets back only what its read rule shows it:
        // otherwise just the system fields (the write happened, at this
        // version).
        let plain = if Self::allowed(caller, collection, Operation::Read, &plain, &Value::Null) {
            plain
        } else {
            system_fields(&plain)
        };
        Ok(Prepared {
            write: Write {
                id,
                expect,
                doc: Some(doc),
                remove,
                add,
            },
            change,
            result: Some(plain),
        })
    }
}

//! Bundoc's service: what shells and embedders call. It authorizes (data
//! rights bypass rules; end users and publishable keys are checked against
//! the collection's rules), validates, keeps the system fields and index
//! entries, encrypts fields, plans queries, commits through one committer
//! per project (group commit, so change events go out in commit order)
//! and publishes each change on Buncast topic `bundoc.{collection}`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use super::crypt::FieldCrypt;
use super::document::{SYSTEM_FIELDS, check_id, check_incoming, merge_patch};
use super::index;
use super::metrics::DocsMetrics;
use super::model::{Collection, Operation};
use super::plan::{Run, Stats};
use super::query::{Page, Query};
use super::rules::Context;
use super::store::{Batch, DocStore, Expect, Quota, Refusal, Usage, Write};
use crate::auth::{Access, Principal, PrincipalKind};
use crate::error::Error;
use crate::events::{Events, Payload, Topic};
use crate::id::{ProjectId, random_hex};
use crate::kms::Keys;

/// Change events carry documents up to this size; bigger ones are sent
/// without (`"doc": null, "truncated": true`), readers fetch them.
pub const EVENT_DOC_MAX: usize = 32 * 1024;
/// Most batches one store transaction commits.
const GROUP_MAX: usize = 64;
/// Retries of a write that raced another (when the caller gave no
/// version), after a short random pause that grows with each attempt.
const RETRIES: usize = 32;

#[derive(Debug, Clone, Copy)]
pub struct DocsLimits {
    /// Most documents a query may examine without an index narrowing it.
    pub max_scan: usize,
    /// Every project's quota.
    pub quota: Quota,
    /// Most writes in one batch.
    pub max_batch: usize,
    pub max_collections: usize,
    /// How long a collection definition is used before it is read again
    /// (changes made through this instance apply at once).
    pub definition_ttl: Duration,
    /// Projects whose data key stays in memory.
    pub data_keys_cached: usize,
}

impl Default for DocsLimits {
    fn default() -> Self {
        DocsLimits {
            max_scan: 1000,
            quota: Quota {
                max_documents: 1_000_000,
                max_bytes: 1024 * 1024 * 1024,
            },
            max_batch: 500,
            max_collections: 200,
            definition_ttl: Duration::from_secs(2),
            data_keys_cached: 10_000,
        }
    }
}

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

/// What a change event says (the `data` of a Buncast event on topic
/// `bundoc.{collection}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    /// `create`, `update` or `delete`.
    pub op: String,
    pub id: String,
    pub version: u64,
    /// The document as stored (encrypted fields as ciphertext); `null` on
    /// delete, or when larger than [`EVENT_DOC_MAX`].
    pub doc: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The topic a collection's changes are published on.
pub fn changes_topic(collection: &str) -> Result<Topic, Error> {
    Topic::new(&format!("bundoc.{collection}"))
}

/// Who is calling, as far as rules go.
pub(crate) enum Caller {
    /// Holds the data right the operation needs: rules don't apply.
    Trusted,
    /// An end user or a publishable key: the collection's rules decide.
    Ruled { auth: Value },
}

/// Parsed collection definitions and when each was read.
type Definitions = HashMap<(ProjectId, String), (Instant, Arc<Collection>)>;

struct Job {
    batch: Batch,
    changes: Vec<Change>,
    reply: oneshot::Sender<Result<(), Refusal>>,
}

struct Inner {
    store: Arc<dyn DocStore>,
    events: Events,
    crypt: Option<FieldCrypt>,
    limits: DocsLimits,
    metrics: Arc<DocsMetrics>,
    definitions: Mutex<Definitions>,
    committers: Mutex<HashMap<ProjectId, mpsc::Sender<Job>>>,
}

#[derive(Clone)]
pub struct Bundoc {
    inner: Arc<Inner>,
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

/// A prepared write, and what it produces.
struct Prepared {
    write: Write,
    change: Change,
    /// The new document (decrypted), `None` for a delete.
    result: Option<Value>,
}

impl Bundoc {
    pub fn new(
        store: Arc<dyn DocStore>,
        events: Events,
        keys: Option<Arc<dyn Keys>>,
        limits: DocsLimits,
        metrics: Arc<DocsMetrics>,
    ) -> Bundoc {
        let crypt = keys.map(|k| FieldCrypt::new(k, store.clone(), limits.data_keys_cached));
        Bundoc {
            inner: Arc::new(Inner {
                store,
                events,
                crypt,
                limits,
                metrics,
                definitions: Mutex::new(HashMap::new()),
                committers: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn limits(&self) -> DocsLimits {
        self.inner.limits
    }

    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    pub(crate) fn store(&self) -> &Arc<dyn DocStore> {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Arc<DocsMetrics> {
        &self.inner.metrics
    }

    pub async fn check(&self) -> Result<(), Error> {
        self.inner.store.check().await
    }

    /// Whether the key service for encrypted fields answers (`Ok` when
    /// none is configured).
    pub async fn check_keys(&self) -> Result<(), Error> {
        match &self.inner.crypt {
            Some(crypt) => crypt.check().await,
            None => Ok(()),
        }
    }

    /// Counts an operation's outcome.
    pub(crate) fn counted<T>(&self, op: &str, result: Result<T, Error>) -> Result<T, Error> {
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.inner
            .metrics
            .operations
            .with_label_values(&[op, label])
            .inc();
        result
    }

    /// Whether `who` may act on `project`'s documents with `access`, and
    /// whether rules apply.
    pub(crate) fn caller(
        &self,
        who: &Principal,
        project: &ProjectId,
        access: Access,
    ) -> Result<Caller, Error> {
        let ruled = matches!(
            who.kind,
            PrincipalKind::EndUser | PrincipalKind::PublishableKey
        );
        if ruled && &who.project == project && !who.rights.allows(access) {
            let mut auth = Map::new();
            auth.insert("kind".into(), json!(who.kind.as_str()));
            if who.kind == PrincipalKind::EndUser {
                auth.insert("uid".into(), json!(who.subject));
            }
            return Ok(Caller::Ruled {
                auth: Value::Object(auth),
            });
        }
        who.authorize(project, access)?;
        Ok(Caller::Trusted)
    }

    pub(crate) fn allowed(
        caller: &Caller,
        collection: &Collection,
        op: Operation,
        resource: &Value,
        request: &Value,
    ) -> bool {
        match caller {
            Caller::Trusted => true,
            Caller::Ruled { auth } => collection.rule(op).is_some_and(|rule| {
                rule.expr.allows(&Context {
                    auth,
                    resource,
                    request,
                })
            }),
        }
    }

    fn check_rule(
        caller: &Caller,
        collection: &Collection,
        op: Operation,
        resource: &Value,
        request: &Value,
    ) -> Result<(), Error> {
        if Self::allowed(caller, collection, op, resource, request) {
            return Ok(());
        }
        Err(Error::PermissionDenied(match collection.rule(op) {
            None => format!(
                "{} on {} is closed to end users: the collection has no {} rule",
                op.as_str(),
                collection.name,
                op.as_str()
            ),
            Some(rule) => format!(
                "the {} rule of {} denies this: {}",
                op.as_str(),
                collection.name,
                rule.source
            ),
        }))
    }

    // ---- collections ----

    /// The collection's current definition (cached briefly).
    pub(crate) async fn definition(
        &self,
        project: &ProjectId,
        name: &str,
    ) -> Result<Arc<Collection>, Error> {
        let key = (project.clone(), name.to_string());
        {
            let cache = self.lock_definitions();
            if let Some((at, c)) = cache.get(&key)
                && at.elapsed() < self.inner.limits.definition_ttl
            {
                return Ok(c.clone());
            }
        }
        let stored = self
            .inner
            .store
            .collection(project, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no collection {name} in project {project}")))?;
        let collection = Arc::new(Collection::parse(name, &stored.definition, stored.version)?);
        self.lock_definitions()
            .insert(key, (Instant::now(), collection.clone()));
        Ok(collection)
    }

    fn lock_definitions(&self) -> std::sync::MutexGuard<'_, Definitions> {
        self.inner
            .definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn forget_definition(&self, project: &ProjectId, name: &str) {
        self.lock_definitions()
            .remove(&(project.clone(), name.to_string()));
    }

    fn check_encryption(&self, collection: &Collection) -> Result<(), Error> {
        if !collection.encrypted.is_empty() && self.inner.crypt.is_none() {
            return Err(Error::invalid(
                "encrypted fields need BunKMS, and this Bundoc has no key service configured",
            ));
        }
        Ok(())
    }

    pub async fn create_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        body: &Value,
    ) -> Result<Value, Error> {
        let result = async {
            who.authorize(project, Access::Admin)?;
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("a collection needs a \"name\""))?;
            let collection = Collection::parse(name, body, 1)?;
            self.check_encryption(&collection)?;
            let existing = self.inner.store.collections(project).await?;
            if existing.len() >= self.inner.limits.max_collections {
                return Err(Error::QuotaExceeded(format!(
                    "a project has at most {} collections",
                    self.inner.limits.max_collections
                )));
            }
            self.inner
                .store
                .put_collection(
                    project,
                    name,
                    &collection.definition(),
                    Expect::Absent,
                    &[],
                    None,
                )
                .await
                .map_err(|r| match r {
                    Refusal::Changed { .. } => {
                        Error::AlreadyExists(format!("collection {name} exists"))
                    }
                    other => refusal_error(other),
                })?;
            self.forget_definition(project, name);
            Ok(collection.describe())
        }
        .await;
        self.counted("create_collection", result)
    }

    /// Replaces a collection's indexes, schema, rules and scan policy
    /// (encrypted fields are fixed at creation). New indexes are built
    /// over the stored documents in the same transaction.
    pub async fn update_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        body: &Value,
    ) -> Result<Value, Error> {
        let result = async {
            who.authorize(project, Access::Admin)?;
            if body.get("name").is_some_and(|n| n != name) {
                return Err(Error::invalid("a collection can't be renamed"));
            }
            self.forget_definition(project, name);
            let old = self.definition(project, name).await?;
            let new = Collection::parse(name, body, old.version + 1)?;
            if new.encrypted != old.encrypted {
                return Err(Error::invalid(
                    "encrypted fields are fixed when a collection is created",
                ));
            }
            let dropped: Vec<String> = old
                .indexes
                .iter()
                .filter(|i| !new.indexes.contains(i))
                .map(|i| i.name.clone())
                .collect();
            let added: Vec<_> = new
                .indexes
                .iter()
                .filter(|i| !old.indexes.contains(i))
                .cloned()
                .collect();
            let build = |doc: &Value| -> Result<Vec<super::store::IndexEntry>, Error> {
                let mut out = Vec::new();
                for index in &added {
                    out.extend(index::index_entries(index, doc)?);
                }
                Ok(out)
            };
            self.inner
                .store
                .put_collection(
                    project,
                    name,
                    &new.definition(),
                    Expect::Version(old.version),
                    &dropped,
                    (!added.is_empty()).then_some(&build as _),
                )
                .await
                .map_err(|r| match r {
                    Refusal::Changed { .. } => Error::Conflict(format!(
                        "collection {name} changed meanwhile; read it and try again"
                    )),
                    Refusal::Duplicate { index } => Error::Conflict(format!(
                        "unique index {index} can't be built: two documents have the same value"
                    )),
                    other => refusal_error(other),
                })?;
            self.forget_definition(project, name);
            Ok(new.describe())
        }
        .await;
        self.counted("update_collection", result)
    }

    pub async fn get_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<Value, Error> {
        let result = async {
            who.authorize(project, Access::Read)?;
            self.forget_definition(project, name);
            Ok(self.definition(project, name).await?.describe())
        }
        .await;
        self.counted("get_collection", result)
    }

    pub async fn list_collections(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Vec<Value>, Error> {
        let result = async {
            who.authorize(project, Access::Read)?;
            self.inner
                .store
                .collections(project)
                .await?
                .into_iter()
                .map(|s| Collection::parse(&s.name, &s.definition, s.version).map(|c| c.describe()))
                .collect()
        }
        .await;
        self.counted("list_collections", result)
    }

    pub async fn delete_collection(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<(), Error> {
        let result = async {
            who.authorize(project, Access::Admin)?;
            let deleted = self.inner.store.delete_collection(project, name).await?;
            self.forget_definition(project, name);
            if !deleted {
                return Err(Error::NotFound(format!(
                    "no collection {name} in project {project}"
                )));
            }
            Ok(())
        }
        .await;
        self.counted("delete_collection", result)
    }

    pub async fn usage(&self, who: &Principal, project: &ProjectId) -> Result<Usage, Error> {
        let result = async {
            who.authorize(project, Access::Read)?;
            self.inner.store.usage(project).await
        }
        .await;
        self.counted("usage", result)
    }

    // ---- documents ----

    pub async fn get(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        id: &str,
    ) -> Result<Value, Error> {
        let result = async {
            let caller = self.caller(who, project, Access::Read)?;
            let collection = self.definition(project, collection).await?;
            check_id(&json!(id))?;
            let stored = self.inner.store.get(project, &collection.name, id).await?;
            let resource = stored.as_ref().unwrap_or(&Value::Null);
            Self::check_rule(
                &caller,
                &collection,
                Operation::Read,
                resource,
                &Value::Null,
            )?;
            let mut doc = stored.ok_or_else(|| {
                Error::NotFound(format!("no document {id} in {}", collection.name))
            })?;
            self.open(project, &collection, &mut doc).await?;
            Ok(doc)
        }
        .await;
        self.counted("get", result)
    }

    pub async fn create(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        doc: Value,
    ) -> Result<Value, Error> {
        let result = self
            .write_one(who, project, collection, WriteOp::Create { doc })
            .await;
        self.counted("create", result)
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
        let result = self.write_one(who, project, collection, op).await;
        // Versions start at 1 and every write adds one: a replace that
        // answers version 1 created the document.
        let result = result.map(|doc| {
            let created = doc["_version"] == json!(1);
            (doc, created)
        });
        self.counted("replace", result)
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
        let result = self.write_one(who, project, collection, op).await;
        self.counted("patch", result)
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
        let result = self
            .write_one(who, project, collection, op)
            .await
            .map(|_| ());
        self.counted("delete", result)
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
        let result = async {
            if ops.is_empty() || ops.len() > self.inner.limits.max_batch {
                return Err(Error::invalid(format!(
                    "a batch has 1 to {} writes",
                    self.inner.limits.max_batch
                )));
            }
            self.write(who, project, collection, ops).await
        }
        .await;
        self.counted("batch", result)
    }

    async fn write_one(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        op: WriteOp,
    ) -> Result<Value, Error> {
        let mut out = self.write(who, project, collection, vec![op]).await?;
        Ok(out.pop().unwrap_or(Value::Null))
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
            match self.commit(project, batch, changes).await {
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
        if let (Some(wanted), Some(doc)) = (op.if_version(), &stored) {
            let at = doc["_version"].as_u64().unwrap_or(0);
            if at != wanted {
                return Err(Error::Conflict(format!(
                    "document {id} is at version {at}, not {wanted}"
                )));
            }
        }
        let missing = || Error::NotFound(format!("no document {id} in {}", collection.name));
        if stored.is_none()
            && (op.if_version().is_some()
                || matches!(op, WriteOp::Patch { .. } | WriteOp::Delete { .. }))
        {
            return Err(missing());
        }
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

        let Some(body) = body else {
            Self::check_rule(
                caller,
                collection,
                Operation::Delete,
                resource,
                &Value::Null,
            )?;
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
                },
                result: None,
            });
        };
        let request = user_fields(&body);
        let rule_op = if stored.is_some() {
            Operation::Update
        } else {
            Operation::Create
        };
        Self::check_rule(caller, collection, rule_op, resource, &request)?;
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
        let size = serde_json::to_vec(&doc).map_or(usize::MAX, |v| v.len());
        let change = Change {
            op: if stored.is_some() { "update" } else { "create" }.into(),
            id: id.clone(),
            version,
            doc: (size <= EVENT_DOC_MAX).then(|| doc.clone()),
            truncated: size > EVENT_DOC_MAX,
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

    /// Decrypts a stored document's encrypted fields.
    pub(crate) async fn open(
        &self,
        project: &ProjectId,
        collection: &Collection,
        doc: &mut Value,
    ) -> Result<(), Error> {
        match &self.inner.crypt {
            Some(crypt) if !collection.encrypted.is_empty() => {
                crypt.open(project, collection, doc).await
            }
            _ => Ok(()),
        }
    }

    // ---- queries ----

    pub(crate) fn parse_query(collection: &Collection, body: &Value) -> Result<Query, Error> {
        let query = Query::parse(body)?;
        let sorted = query.sort.iter().map(|(p, _)| p);
        if let Some(path) = query
            .filter
            .paths()
            .into_iter()
            .chain(sorted)
            .find(|p| collection.is_encrypted(p))
        {
            return Err(Error::invalid(format!(
                "{} is encrypted: it can't be filtered or sorted on",
                path.as_string()
            )));
        }
        Ok(query)
    }

    /// A page of the documents matching a query that the caller's list
    /// rule allows.
    pub async fn query(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        body: &Value,
    ) -> Result<Page, Error> {
        let result = async {
            let caller = self.caller(who, project, Access::Read)?;
            let collection = self.definition(project, collection).await?;
            let query = Self::parse_query(&collection, body)?;
            let (mut page, _) = self.run(&caller, project, &collection, &query).await?;
            for doc in &mut page.documents {
                self.open(project, &collection, doc).await?;
            }
            Ok(page)
        }
        .await;
        self.counted("query", result)
    }

    /// How a query runs: the plan and what it read (it is run).
    pub async fn explain(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        body: &Value,
    ) -> Result<Stats, Error> {
        let result = async {
            let caller = self.caller(who, project, Access::Read)?;
            let collection = self.definition(project, collection).await?;
            let query = Self::parse_query(&collection, body)?;
            Ok(self.run(&caller, project, &collection, &query).await?.1)
        }
        .await;
        self.counted("explain", result)
    }

    /// How many documents match a filter (that the caller's list rule
    /// allows).
    pub async fn count(
        &self,
        who: &Principal,
        project: &ProjectId,
        collection: &str,
        filter: &Value,
    ) -> Result<usize, Error> {
        let result = async {
            let caller = self.caller(who, project, Access::Read)?;
            let collection = self.definition(project, collection).await?;
            let query = Self::parse_query(&collection, &json!({ "filter": filter }))?;
            let allowed = |doc: &Value| {
                Self::allowed(&caller, &collection, Operation::List, doc, &Value::Null)
            };
            let run = Run {
                store: self.inner.store.as_ref(),
                project,
                collection: &collection,
                query: &query,
                max_scan: self.inner.limits.max_scan,
                allowed: &allowed,
            };
            run.count().await
        }
        .await;
        self.counted("count", result)
    }

    pub(crate) async fn run(
        &self,
        caller: &Caller,
        project: &ProjectId,
        collection: &Collection,
        query: &Query,
    ) -> Result<(Page, Stats), Error> {
        let started = Instant::now();
        let allowed =
            |doc: &Value| Self::allowed(caller, collection, Operation::List, doc, &Value::Null);
        let run = Run {
            store: self.inner.store.as_ref(),
            project,
            collection,
            query,
            max_scan: self.inner.limits.max_scan,
            allowed: &allowed,
        };
        let (page, stats) = run.page().await?;
        let metrics = &self.inner.metrics;
        metrics
            .query_seconds
            .with_label_values(&[stats.plan])
            .observe(started.elapsed().as_secs_f64());
        metrics.documents_examined.observe(stats.examined as f64);
        Ok((page, stats))
    }

    // ---- commits ----

    /// Hands a batch to the project's committer and waits for its result.
    async fn commit(
        &self,
        project: &ProjectId,
        batch: Batch,
        changes: Vec<Change>,
    ) -> Result<(), Refusal> {
        let (reply, result) = oneshot::channel();
        let job = Job {
            batch,
            changes,
            reply,
        };
        let stopped =
            || Refusal::Failed(Error::Unavailable("the document committer stopped".into()));
        self.committer(project)
            .send(job)
            .await
            .map_err(|_| stopped())?;
        result.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn committer(&self, project: &ProjectId) -> mpsc::Sender<Job> {
        let mut committers = self
            .inner
            .committers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = committers.get(project)
            && !sender.is_closed()
        {
            return sender.clone();
        }
        let (sender, jobs) = mpsc::channel(1024);
        tokio::spawn(run_committer(
            project.clone(),
            jobs,
            self.inner.store.clone(),
            self.inner.events.clone(),
            self.inner.metrics.clone(),
        ));
        committers.insert(project.clone(), sender.clone());
        sender
    }
}

/// One project's committer: takes the batches waiting, commits them in
/// one store transaction, publishes their changes in that order, answers.
async fn run_committer(
    project: ProjectId,
    mut jobs: mpsc::Receiver<Job>,
    store: Arc<dyn DocStore>,
    events: Events,
    metrics: Arc<DocsMetrics>,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (batches, waiting): (Vec<Batch>, Vec<_>) = group
            .into_iter()
            .map(|j| (j.batch, (j.changes, j.reply)))
            .unzip();
        metrics.commit_batches.observe(batches.len() as f64);
        let results = store.commit(&project, &batches).await;
        for ((batch, (changes, reply)), result) in batches.iter().zip(waiting).zip(results) {
            if result.is_ok() {
                publish(&events, &metrics, &project, &batch.collection, &changes).await;
            }
            let _ = reply.send(result);
        }
    }
}

async fn publish(
    events: &Events,
    metrics: &DocsMetrics,
    project: &ProjectId,
    collection: &str,
    changes: &[Change],
) {
    let topic = match changes_topic(collection) {
        Ok(topic) => topic,
        Err(e) => {
            tracing::error!(error = %e, "no topic for collection {collection}");
            return;
        }
    };
    for change in changes {
        let payload = Payload::from_value(&json!(change));
        if let Err(e) = events.publish_payload(project, &topic, payload).await {
            metrics.change_events_failed.inc();
            tracing::warn!(error = %e, %project, collection, id = change.id, "change event not published");
        }
    }
}

fn refusal_error(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Changed { id } => Error::Conflict(format!("{id} changed meanwhile")),
        Refusal::Duplicate { index } => Error::Conflict(format!(
            "unique index {index}: another document has the same value"
        )),
        Refusal::Stale => {
            Error::Conflict("the collection's definition kept changing; try again".into())
        }
        Refusal::Quota(message) => Error::QuotaExceeded(message),
        Refusal::Failed(e) => e,
    }
}

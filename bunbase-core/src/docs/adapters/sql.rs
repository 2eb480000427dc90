//! Bundoc's store on SQLite (the all-in-one) and Postgres (compose): one
//! SQL text for both dialects where it can be (`$n` placeholders, TEXT,
//! BIGINT), one macro for both pool types. Only a commit's bulk statements
//! differ: Postgres binds arrays and UNNESTs them (one round trip for many
//! rows); SQLite runs in process, where a statement per row is cheap.
//!
//! Bodies are compact JSON in TEXT on both. JSONB would refuse strings
//! holding U+0000 (documents may) and rewrite numbers (`1e16` comes back
//! as an integer), so Postgres would not return what the memory store
//! returns; and core never asks the database to look inside a body (it
//! computes index keys itself), so JSONB would buy nothing here.
//!
//! Every write transaction of a project first locks the project's usage
//! row, so they run one at a time per project. A commit then reads the
//! stored state of what its batches touch (versions, sizes, index keys),
//! decides each batch in memory exactly as the memory store does, and
//! writes the net result of the accepted batches in a few bulk statements:
//! about ten round trips per commit however many batches it carries, and
//! no savepoint (each would be a Postgres subtransaction).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use async_trait::async_trait;
use serde_json::Value;

use crate::docs::adapters::memory::quota_message;
use crate::docs::store::{
    Batch, DocStore, EntriesOf, Expect, KeyRange, Refusal, StoredCollection, Usage,
};
use crate::error::Error;
use crate::id::ProjectId;
use crate::sql::{Migration, db, from_db, to_db};

pub const DOMAIN: &str = "docs";

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
CREATE TABLE bundoc_collections (
    project TEXT NOT NULL,
    name {bytewise_text} NOT NULL,
    definition TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE bundoc_documents (
    project TEXT NOT NULL,
    collection {bytewise_text} NOT NULL,
    id {bytewise_text} NOT NULL,
    version BIGINT,
    body TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (project, collection, id)
);
CREATE TABLE bundoc_index_entries (
    project TEXT NOT NULL,
    collection {bytewise_text} NOT NULL,
    index_name TEXT NOT NULL,
    key {bytes} NOT NULL,
    doc_id {bytewise_text} NOT NULL,
    PRIMARY KEY (project, collection, index_name, key)
);
CREATE TABLE bundoc_usage (
    project TEXT PRIMARY KEY,
    documents BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
CREATE TABLE bundoc_data_keys (
    project TEXT PRIMARY KEY,
    sealed {bytes} NOT NULL
);
",
}];

/// Creates the project's usage row if missing and locks it (the upsert
/// takes the row lock) for the rest of the transaction.
const LOCK_USAGE: &str = "INSERT INTO bundoc_usage (project, documents, bytes) VALUES ($1, 0, 0)
    ON CONFLICT (project) DO UPDATE SET documents = bundoc_usage.documents
    RETURNING documents, bytes";
const WRITE_USAGE: &str = "UPDATE bundoc_usage SET documents = $2, bytes = $3 WHERE project = $1";
const COLLECTION_VERSION: &str =
    "SELECT version FROM bundoc_collections WHERE project = $1 AND name = $2";
/// Documents are read in pages this long when a new index is built.
const BUILD_PAGE: i64 = 256;
const PAGE: &str = "SELECT id, body FROM bundoc_documents
    WHERE project = $1 AND collection = $2 AND id > $3 ORDER BY id LIMIT $4";

/// Defines the four index scans, joining each entry to its document with
/// `$document` (`d`, with its `body`). The lower bound is always inclusive
/// and the upper always exclusive (see `key_bounds`), so four statements
/// cover every range.
macro_rules! scan_index_statements {
    ($document:literal) => {
const SCAN_INDEX: &str = scan_index_statements!(@ $document, "", "");
const SCAN_INDEX_BELOW: &str = scan_index_statements!(@ $document, " AND e.key < $6", "");
const SCAN_INDEX_REVERSE: &str = scan_index_statements!(@ $document, "", " DESC");
        const SCAN_INDEX_BELOW_REVERSE: &str =
    scan_index_statements!(@ $document, " AND e.key < $6", " DESC");
    };
    (@ $document:literal, $upper:literal, $order:literal) => {
        concat!(
            "SELECT e.key, d.body FROM bundoc_index_entries e ",
            $document,
            " WHERE e.project = $1 AND e.collection = $2 AND e.index_name = $3 AND e.key >= $4",
            $upper,
            " ORDER BY e.key",
            $order,
            " LIMIT $5"
        )
    };
}

/// `range` as an inclusive lower key and an exclusive upper one (`None`:
/// no upper bound): the keys just above `k` in byte order start at
/// `k ++ [0]`, and the empty key is below every key.
fn key_bounds(range: &KeyRange) -> (Vec<u8>, Option<Vec<u8>>) {
    let successor = |k: &Vec<u8>| {
        let mut next = k.clone();
        next.push(0);
        next
    };
    let lower = match &range.lower {
        Bound::Included(k) => k.clone(),
        Bound::Excluded(k) => successor(k),
        Bound::Unbounded => Vec::new(),
    };
    let upper = match &range.upper {
        Bound::Included(k) => Some(successor(k)),
        Bound::Excluded(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    (lower, upper)
}

fn parse_doc(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("a stored document is not JSON: {e}")))
}

/// A copy of `e` (errors are not `Clone`), for every batch a failure ends.
fn copy(e: &Error) -> Error {
    match e {
        Error::Internal(detail) => Error::Internal(detail.clone()),
        other => Error::from_code(other.code(), other.to_string()),
    }
}

/// A document as written: compact JSON, its length (the usage bytes, as
/// the memory store counts them) and its `_version`.
struct Body {
    text: String,
    bytes: u64,
    version: Option<u64>,
}

/// The bodies of every write of `batches` (`None` for deletes).
fn bodies(batches: &[Batch]) -> Result<Vec<Vec<Option<Body>>>, Error> {
    batches
        .iter()
        .map(|batch| {
            batch
                .writes
                .iter()
                .map(|write| {
                    write
                        .doc
                        .as_ref()
                        .map(|doc| {
                            let text = serde_json::to_string(doc)?;
                            Ok(Body {
                                bytes: text.len() as u64,
                                version: doc["_version"].as_u64(),
                                text,
                            })
                        })
                        .transpose()
                })
                .collect()
        })
        .collect()
}

/// What a commit found stored in one collection, for what its batches
/// touch.
#[derive(Default)]
struct Found {
    /// The collection definition's version.
    version: u64,
    /// Document id → (version, bytes).
    docs: HashMap<String, (Option<u64>, u64)>,
    /// Index → key → whether it is taken, for every key a write adds.
    keys: HashMap<String, HashMap<Vec<u8>, bool>>,
}

impl Found {
    fn key(&self, index: &str, key: &[u8]) -> Option<bool> {
        self.keys.get(index).and_then(|keys| keys.get(key)).copied()
    }
}

/// Where a write's document is: batch and write number.
type WriteAt = (usize, usize);

/// A commit decided: each batch's result, the usage after the accepted
/// ones, and the final state of what they wrote.
struct Plan<'a> {
    results: Vec<Result<(), Refusal>>,
    usage: Usage,
    /// (collection, id) → the write whose document is stored last, or
    /// none (deleted).
    docs: BTreeMap<(&'a str, &'a str), Option<WriteAt>>,
    /// (collection, index, key) → the document it points to, or none.
    keys: BTreeMap<(&'a str, &'a str, &'a [u8]), Option<&'a str>>,
}

/// A document row to insert or update.
struct DocRow<'a> {
    id: &'a str,
    version: Option<i64>,
    body: &'a str,
    bytes: i64,
    /// The stored version an update replaces.
    expected: Option<i64>,
}

/// What one collection's rows become when a commit is written.
#[derive(Default)]
struct Changes<'a> {
    insert: Vec<DocRow<'a>>,
    update: Vec<DocRow<'a>>,
    /// (id, stored version).
    delete: Vec<(&'a str, Option<i64>)>,
    /// (index, key): keys that may be stored and must go (or be replaced).
    unkey: Vec<(&'a str, &'a [u8])>,
    /// (index, key, document id).
    key: Vec<(&'a str, &'a [u8], &'a str)>,
}

/// Decides every batch in order against the stored state, as the memory
/// store would (`found` holds the collections that exist).
fn plan<'a>(
    batches: &'a [Batch],
    bodies: &[Vec<Option<Body>>],
    found: &HashMap<String, Found>,
    usage: Usage,
) -> Plan<'a> {
    let mut plan = Plan {
        results: Vec::with_capacity(batches.len()),
        usage,
        docs: BTreeMap::new(),
        keys: BTreeMap::new(),
    };
    for (b, batch) in batches.iter().enumerate() {
        let result = match found.get(&batch.collection) {
            None => Err(Refusal::Failed(Error::NotFound(format!(
                "no collection {}",
                batch.collection
            )))),
            Some(stored) if stored.version != batch.collection_version => Err(Refusal::Stale),
            Some(stored) => plan.check(b, batch, bodies, stored).map(|after| {
                plan.usage = after;
                plan.apply(b, batch);
            }),
        };
        plan.results.push(result);
    }
    plan
}

impl<'a> Plan<'a> {
    /// The (version, bytes) of a document after the batches accepted so far.
    fn doc(
        &self,
        collection: &str,
        id: &str,
        bodies: &[Vec<Option<Body>>],
        stored: &Found,
    ) -> Option<(Option<u64>, u64)> {
        match self.docs.get(&(collection, id)) {
            Some(Some((b, w))) => bodies[*b][*w].as_ref().map(|d| (d.version, d.bytes)),
            Some(None) => None,
            None => stored.docs.get(id).copied(),
        }
    }

    fn taken(&self, collection: &str, index: &str, key: &[u8], stored: &Found) -> bool {
        match self.keys.get(&(collection, index, key)) {
            Some(doc) => doc.is_some(),
            None => stored.key(index, key) == Some(true),
        }
    }

    /// Versions, unique keys, quota (the memory store's `check`): the usage
    /// after the batch.
    fn check(
        &self,
        b: usize,
        batch: &Batch,
        bodies: &[Vec<Option<Body>>],
        stored: &Found,
    ) -> Result<Usage, Refusal> {
        let collection = batch.collection.as_str();
        let mut after = self.usage;
        let mut removed = HashSet::new();
        let mut added = HashSet::new();
        for (w, write) in batch.writes.iter().enumerate() {
            let current = self.doc(collection, &write.id, bodies, stored);
            match (write.expect, current) {
                (Expect::Absent, None) => {}
                (Expect::Version(v), Some((Some(version), _))) if version == v => {}
                _ => {
                    return Err(Refusal::Changed {
                        id: write.id.clone(),
                    });
                }
            }
            if let Some((_, bytes)) = current {
                after.documents = after.documents.saturating_sub(1);
                after.bytes = after.bytes.saturating_sub(bytes);
            }
            if let Some(body) = &bodies[b][w] {
                after.documents += 1;
                after.bytes += body.bytes;
            }
            removed.extend(write.remove.iter().map(|e| (&e.index, &e.key)));
        }
        for entry in batch.writes.iter().flat_map(|w| &w.add) {
            let taken = self.taken(collection, &entry.index, &entry.key, stored)
                && !removed.contains(&(&entry.index, &entry.key));
            if taken || !added.insert((&entry.index, &entry.key)) {
                return Err(Refusal::Duplicate {
                    index: entry.index.clone(),
                });
            }
        }
        if let Some(quota) = batch.quota {
            let grows = after.documents > self.usage.documents || after.bytes > self.usage.bytes;
            if grows && (after.documents > quota.max_documents || after.bytes > quota.max_bytes) {
                return Err(Refusal::Quota(quota_message(after, quota)));
            }
        }
        Ok(after)
    }

    /// Records an accepted batch's writes (the memory store's `apply`).
    fn apply(&mut self, b: usize, batch: &'a Batch) {
        let collection = batch.collection.as_str();
        for (w, write) in batch.writes.iter().enumerate() {
            for entry in &write.remove {
                self.keys
                    .insert((collection, &entry.index, &entry.key), None);
            }
            for entry in &write.add {
                self.keys
                    .insert((collection, &entry.index, &entry.key), Some(&write.id));
            }
            self.docs.insert(
                (collection, &write.id),
                write.doc.is_some().then_some((b, w)),
            );
        }
    }

    fn accepted(&self) -> bool {
        self.results.iter().any(Result::is_ok)
    }

    /// The rows to write, per collection.
    fn changes<'p>(
        &'p self,
        bodies: &'p [Vec<Option<Body>>],
        found: &HashMap<String, Found>,
    ) -> BTreeMap<&'a str, Changes<'p>>
    where
        'a: 'p,
    {
        let mut changes: BTreeMap<&str, Changes> = BTreeMap::new();
        for (&(collection, id), last) in &self.docs {
            let stored = found
                .get(collection)
                .and_then(|f| f.docs.get(id))
                .map(|(version, _)| version.map(to_db));
            let c = changes.entry(collection).or_default();
            let body = last.and_then(|(b, w)| bodies[b][w].as_ref());
            match (stored, body) {
                (None, Some(body)) => c.insert.push(doc_row(id, body, None)),
                (Some(expected), Some(body)) => c.update.push(doc_row(id, body, expected)),
                (Some(expected), None) => c.delete.push((id, expected)),
                (None, None) => {}
            }
        }
        for (&(collection, index, key), doc) in &self.keys {
            let c = changes.entry(collection).or_default();
            // A key looked up and found free needs no delete: the common
            // insert writes no DELETE at all.
            let free = found.get(collection).and_then(|f| f.key(index, key)) == Some(false);
            if !free {
                c.unkey.push((index, key));
            }
            if let Some(doc) = doc {
                c.key.push((index, key, doc));
            }
        }
        changes
    }
}

fn doc_row<'a>(id: &'a str, body: &'a Body, expected: Option<i64>) -> DocRow<'a> {
    DocRow {
        id,
        version: body.version.map(to_db),
        body: &body.text,
        bytes: to_db(body.bytes),
        expected,
    }
}

/// The error for a write that the plan expected to succeed: another writer
/// changed the project without its lock.
fn raced(collection: &str) -> Error {
    Error::internal(format!(
        "documents of collection {collection} changed during a commit"
    ))
}

macro_rules! docs_store {
    ($store:ident, $conn:ty) => {
        /// Locks the project's usage row (see the module notes): its usage.
        async fn lock_usage(conn: &mut $conn, project: &ProjectId) -> Result<Usage, Error> {
            let (documents, bytes): (i64, i64) = sqlx::query_as(LOCK_USAGE)
                .bind(project.as_str())
                .fetch_one(conn)
                .await
                .map_err(db)?;
            Ok(Usage {
                documents: from_db(documents),
                bytes: from_db(bytes),
            })
        }

        async fn write_usage(
            conn: &mut $conn,
            project: &ProjectId,
            usage: Usage,
        ) -> Result<(), Error> {
            sqlx::query(WRITE_USAGE)
                .bind(project.as_str())
                .bind(to_db(usage.documents))
                .bind(to_db(usage.bytes))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        }

        /// Reads what `batches` touch in each collection that exists.
        async fn find(
            conn: &mut $conn,
            project: &ProjectId,
            batches: &[Batch],
        ) -> Result<HashMap<String, Found>, Error> {
            let mut touched: BTreeMap<&str, (Vec<&str>, Vec<(&str, &[u8])>)> = BTreeMap::new();
            for batch in batches {
                let (ids, keys) = touched.entry(&batch.collection).or_default();
                for write in &batch.writes {
                    ids.push(&write.id);
                    keys.extend(
                        write
                            .add
                            .iter()
                            .map(|e| (e.index.as_str(), e.key.as_slice())),
                    );
                }
            }
            let mut found = HashMap::new();
            for (collection, (mut ids, mut keys)) in touched {
                let version: Option<i64> = sqlx::query_scalar(COLLECTION_VERSION)
                    .bind(project.as_str())
                    .bind(collection)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                let Some(version) = version else {
                    continue;
                };
                ids.sort_unstable();
                ids.dedup();
                keys.sort_unstable();
                keys.dedup();
                let mut stored = Found {
                    version: from_db(version),
                    ..Found::default()
                };
                for (id, version, bytes) in
                    load_docs(&mut *conn, project.as_str(), collection, &ids).await?
                {
                    stored
                        .docs
                        .insert(id, (version.map(from_db), from_db(bytes)));
                }
                for (index, key) in &keys {
                    stored
                        .keys
                        .entry(index.to_string())
                        .or_default()
                        .insert(key.to_vec(), false);
                }
                for (index, key) in
                    load_keys(&mut *conn, project.as_str(), collection, &keys).await?
                {
                    stored.keys.entry(index).or_default().insert(key, true);
                }
                found.insert(collection.to_string(), stored);
            }
            Ok(found)
        }

        /// Writes a decided commit's rows (the transaction is `conn`'s).
        async fn write(
            conn: &mut $conn,
            project: &ProjectId,
            plan: &Plan<'_>,
            bodies: &[Vec<Option<Body>>],
            found: &HashMap<String, Found>,
            usage: Usage,
        ) -> Result<(), Error> {
            let project_id = project.as_str();
            for (collection, c) in plan.changes(bodies, found) {
                let expect = |done: u64, rows: usize| {
                    if done == rows as u64 {
                        Ok(())
                    } else {
                        Err(raced(collection))
                    }
                };
                if !c.delete.is_empty() {
                    let done = delete_docs(&mut *conn, project_id, collection, &c.delete).await?;
                    expect(done, c.delete.len())?;
                }
                if !c.update.is_empty() {
                    let done = update_docs(&mut *conn, project_id, collection, &c.update).await?;
                    expect(done, c.update.len())?;
                }
                if !c.insert.is_empty() {
                    let done = insert_docs(&mut *conn, project_id, collection, &c.insert).await?;
                    expect(done, c.insert.len())?;
                }
                if !c.unkey.is_empty() {
                    delete_entries(&mut *conn, project_id, collection, &c.unkey).await?;
                }
                if !c.key.is_empty() {
                    let done = insert_entries(&mut *conn, project_id, collection, &c.key).await?;
                    expect(done, c.key.len())?;
                }
            }
            if plan.usage != usage {
                write_usage(conn, project, plan.usage).await?;
            }
            Ok(())
        }

        /// Computes the entries of every stored document of `collection`
        /// with `build` and inserts them, page by page.
        async fn build_entries(
            conn: &mut $conn,
            project: &ProjectId,
            collection: &str,
            build: EntriesOf<'_>,
        ) -> Result<(), Refusal> {
            let mut after = String::new();
            loop {
                let page: Vec<(String, String)> = sqlx::query_as(PAGE)
                    .bind(project.as_str())
                    .bind(collection)
                    .bind(&after)
                    .bind(BUILD_PAGE)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db)?;
                let Some((last, _)) = page.last() else {
                    return Ok(());
                };
                after = last.clone();
                // Inserted per index, so a short count names the index
                // that has a duplicate.
                let mut by_index: BTreeMap<String, Vec<(Vec<u8>, &str)>> = BTreeMap::new();
                for (id, body) in &page {
                    for entry in build(&parse_doc(body)?)? {
                        by_index
                            .entry(entry.index)
                            .or_default()
                            .push((entry.key, id.as_str()));
                    }
                }
                for (index, entries) in &by_index {
                    let rows: Vec<(&str, &[u8], &str)> = entries
                        .iter()
                        .map(|(key, id)| (index.as_str(), key.as_slice(), *id))
                        .collect();
                    let done =
                        insert_entries(&mut *conn, project.as_str(), collection, &rows).await?;
                    if done < rows.len() as u64 {
                        return Err(Refusal::Duplicate {
                            index: index.clone(),
                        });
                    }
                }
            }
        }

        #[async_trait]
        impl DocStore for $store {
            async fn check(&self) -> Result<(), Error> {
                sqlx::query("SELECT 1")
                    .execute(self.reader())
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn put_collection(
                &self,
                project: &ProjectId,
                name: &str,
                definition: &Value,
                expect: Expect,
                drop: &[String],
                build: Option<EntriesOf<'_>>,
            ) -> Result<(), Refusal> {
                let definition = serde_json::to_string(definition).map_err(Error::from)?;
                let mut tx = self.begin().await?;
                lock_usage(&mut tx, project).await?;
                let written =
                    match expect {
                        Expect::Absent => sqlx::query(
                            "INSERT INTO bundoc_collections (project, name, definition, version)
                         VALUES ($1, $2, $3, 1) ON CONFLICT DO NOTHING",
                        )
                        .bind(project.as_str())
                        .bind(name)
                        .bind(&definition)
                        .execute(&mut *tx)
                        .await,
                        Expect::Version(v) => sqlx::query(
                            "UPDATE bundoc_collections SET definition = $3, version = version + 1
                         WHERE project = $1 AND name = $2 AND version = $4",
                        )
                        .bind(project.as_str())
                        .bind(name)
                        .bind(&definition)
                        .bind(to_db(v))
                        .execute(&mut *tx)
                        .await,
                    }
                    .map_err(db)?
                    .rows_affected();
                if written == 0 {
                    return Err(Refusal::Changed {
                        id: name.to_string(),
                    });
                }
                for index in drop {
                    sqlx::query(
                        "DELETE FROM bundoc_index_entries
                         WHERE project = $1 AND collection = $2 AND index_name = $3",
                    )
                    .bind(project.as_str())
                    .bind(name)
                    .bind(index)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
                if let Some(build) = build {
                    build_entries(&mut tx, project, name, build).await?;
                }
                tx.commit().await.map_err(db)?;
                Ok(())
            }

            async fn collection(
                &self,
                project: &ProjectId,
                name: &str,
            ) -> Result<Option<StoredCollection>, Error> {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT definition, version FROM bundoc_collections
                     WHERE project = $1 AND name = $2",
                )
                .bind(project.as_str())
                .bind(name)
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
                row.map(|(definition, version)| {
                    Ok(StoredCollection {
                        name: name.to_string(),
                        definition: parse_doc(&definition)?,
                        version: from_db(version),
                    })
                })
                .transpose()
            }

            async fn collections(
                &self,
                project: &ProjectId,
            ) -> Result<Vec<StoredCollection>, Error> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT name, definition, version FROM bundoc_collections
                     WHERE project = $1 ORDER BY name",
                )
                .bind(project.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
                rows.into_iter()
                    .map(|(name, definition, version)| {
                        Ok(StoredCollection {
                            name,
                            definition: parse_doc(&definition)?,
                            version: from_db(version),
                        })
                    })
                    .collect()
            }

            async fn delete_collection(
                &self,
                project: &ProjectId,
                name: &str,
            ) -> Result<bool, Error> {
                let mut tx = self.begin().await?;
                let usage = lock_usage(&mut tx, project).await?;
                let deleted =
                    sqlx::query("DELETE FROM bundoc_collections WHERE project = $1 AND name = $2")
                        .bind(project.as_str())
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?
                        .rows_affected();
                if deleted == 0 {
                    return Ok(false);
                }
                // SUM of a BIGINT is a NUMERIC on Postgres.
                let (documents, bytes): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM bundoc_documents
                     WHERE project = $1 AND collection = $2",
                )
                .bind(project.as_str())
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                for sql in [
                    "DELETE FROM bundoc_documents WHERE project = $1 AND collection = $2",
                    "DELETE FROM bundoc_index_entries WHERE project = $1 AND collection = $2",
                ] {
                    sqlx::query(sql)
                        .bind(project.as_str())
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                let after = Usage {
                    documents: usage.documents.saturating_sub(from_db(documents)),
                    bytes: usage.bytes.saturating_sub(from_db(bytes)),
                };
                write_usage(&mut tx, project, after).await?;
                tx.commit().await.map_err(db)?;
                Ok(true)
            }

            async fn commit(
                &self,
                project: &ProjectId,
                batches: &[Batch],
            ) -> Vec<Result<(), Refusal>> {
                let failed = |e: &Error| -> Vec<Result<(), Refusal>> {
                    batches
                        .iter()
                        .map(|_| Err(Refusal::Failed(copy(e))))
                        .collect()
                };
                if batches.is_empty() {
                    return Vec::new();
                }
                let bodies = match bodies(batches) {
                    Ok(bodies) => bodies,
                    Err(e) => return failed(&e),
                };
                let mut tx = match self.begin().await {
                    Ok(tx) => tx,
                    Err(e) => return failed(&e),
                };
                let decided = async {
                    let usage = lock_usage(&mut tx, project).await?;
                    let found = find(&mut tx, project, batches).await?;
                    Ok::<_, Error>((usage, found))
                }
                .await;
                let (usage, found) = match decided {
                    Ok(decided) => decided,
                    Err(e) => return failed(&e),
                };
                let plan = plan(batches, &bodies, &found, usage);
                if !plan.accepted() {
                    return plan.results;
                }
                let written = async {
                    write(&mut tx, project, &plan, &bodies, &found, usage).await?;
                    tx.commit().await.map_err(db)
                }
                .await;
                match written {
                    Ok(()) => plan.results,
                    // Nothing of the transaction stays: the batches it
                    // would have committed failed.
                    Err(e) => plan
                        .results
                        .into_iter()
                        .map(|r| r.and_then(|()| Err(Refusal::Failed(copy(&e)))))
                        .collect(),
                }
            }

            async fn get(
                &self,
                project: &ProjectId,
                collection: &str,
                id: &str,
            ) -> Result<Option<Value>, Error> {
                let body: Option<String> = sqlx::query_scalar(
                    "SELECT body FROM bundoc_documents
                     WHERE project = $1 AND collection = $2 AND id = $3",
                )
                .bind(project.as_str())
                .bind(collection)
                .bind(id)
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
                body.as_deref().map(parse_doc).transpose()
            }

            async fn get_many(
                &self,
                project: &ProjectId,
                collection: &str,
                ids: &[String],
            ) -> Result<Vec<Value>, Error> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let bodies =
                    get_many_bodies(self.reader(), project.as_str(), collection, ids).await?;
                bodies.iter().map(|b| parse_doc(b)).collect()
            }

            async fn scan(
                &self,
                project: &ProjectId,
                collection: &str,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<Value>, Error> {
                // Ids are never empty, so "" is below them all.
                let rows: Vec<(String, String)> = sqlx::query_as(PAGE)
                    .bind(project.as_str())
                    .bind(collection)
                    .bind(after.unwrap_or(""))
                    .bind(to_db(limit as u64))
                    .fetch_all(self.reader())
                    .await
                    .map_err(db)?;
                rows.iter().map(|(_, body)| parse_doc(body)).collect()
            }

            async fn scan_index(
                &self,
                project: &ProjectId,
                collection: &str,
                index: &str,
                range: &KeyRange,
                limit: usize,
            ) -> Result<Vec<(Vec<u8>, Value)>, Error> {
                let (lower, upper) = key_bounds(range);
                let sql = match (upper.is_some(), range.reverse) {
                    (false, false) => SCAN_INDEX,
                    (false, true) => SCAN_INDEX_REVERSE,
                    (true, false) => SCAN_INDEX_BELOW,
                    (true, true) => SCAN_INDEX_BELOW_REVERSE,
                };
                let mut query = sqlx::query_as::<_, (Vec<u8>, String)>(sql)
                    .bind(project.as_str())
                    .bind(collection)
                    .bind(index)
                    .bind(lower)
                    .bind(to_db(limit as u64));
                if let Some(upper) = upper {
                    query = query.bind(upper);
                }
                let rows = query.fetch_all(self.reader()).await.map_err(db)?;
                rows.into_iter()
                    .map(|(key, body)| Ok((key, parse_doc(&body)?)))
                    .collect()
            }

            async fn usage(&self, project: &ProjectId) -> Result<Usage, Error> {
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT documents, bytes FROM bundoc_usage WHERE project = $1")
                        .bind(project.as_str())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(db)?;
                Ok(row.map_or_else(Usage::default, |(documents, bytes)| Usage {
                    documents: from_db(documents),
                    bytes: from_db(bytes),
                }))
            }

            async fn data_key(&self, project: &ProjectId) -> Result<Option<Vec<u8>>, Error> {
                sqlx::query_scalar("SELECT sealed FROM bundoc_data_keys WHERE project = $1")
                    .bind(project.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db)
            }

            async fn put_data_key(
                &self,
                project: &ProjectId,
                sealed: &[u8],
            ) -> Result<Vec<u8>, Error> {
                sqlx::query(
                    "INSERT INTO bundoc_data_keys (project, sealed) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                )
                .bind(project.as_str())
                .bind(sealed)
                .execute(self.writer())
                .await
                .map_err(db)?;
                // Read where it was written: the winner's key either way.
                sqlx::query_scalar("SELECT sealed FROM bundoc_data_keys WHERE project = $1")
                    .bind(project.as_str())
                    .fetch_one(self.writer())
                    .await
                    .map_err(db)
            }
        }
    };
}

pub mod sqlite {
    //! SQLite: the all-in-one's document store (a file in the data
    //! directory).
    use super::*;

    /// Reads use a pool; writes go through one connection (SQLite has one
    /// writer at a time anyway).
    pub struct SqliteDocs {
        pool: sqlx::SqlitePool,
        writer: sqlx::SqlitePool,
    }

    impl SqliteDocs {
        pub async fn open(path: &std::path::Path) -> Result<SqliteDocs, Error> {
            let (pool, writer) = crate::sql::open_sqlite(path, DOMAIN, MIGRATIONS).await?;
            Ok(SqliteDocs { pool, writer })
        }

        fn reader(&self) -> &sqlx::SqlitePool {
            &self.pool
        }

        fn writer(&self) -> &sqlx::SqlitePool {
            &self.writer
        }

        /// Takes the write lock at BEGIN: another process on the file makes
        /// it wait (busy timeout) instead of failing a deferred upgrade.
        async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, Error> {
            self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
        }
    }

    type Conn = sqlx::SqliteConnection;

    // In process, a prepared statement per row costs no round trip.

    async fn load_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        ids: &[&str],
    ) -> Result<Vec<(String, Option<i64>, i64)>, Error> {
        let mut rows = Vec::new();
        for id in ids {
            let row: Option<(Option<i64>, i64)> = sqlx::query_as(
                "SELECT version, bytes FROM bundoc_documents
                 WHERE project = $1 AND collection = $2 AND id = $3",
            )
            .bind(project)
            .bind(collection)
            .bind(*id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            if let Some((version, bytes)) = row {
                rows.push((id.to_string(), version, bytes));
            }
        }
        Ok(rows)
    }

    async fn load_keys(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        keys: &[(&str, &[u8])],
    ) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let mut taken = Vec::new();
        for (index, key) in keys {
            let found: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM bundoc_index_entries
                 WHERE project = $1 AND collection = $2 AND index_name = $3 AND key = $4",
            )
            .bind(project)
            .bind(collection)
            .bind(*index)
            .bind(*key)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            if found > 0 {
                taken.push((index.to_string(), key.to_vec()));
            }
        }
        Ok(taken)
    }

    /// Runs `sql` once per row (`$1`–`$6`: project, collection, id,
    /// version, body, bytes; `$7`: the expected version, when `expected`).
    async fn each_doc(
        conn: &mut Conn,
        sql: &'static str,
        expected: bool,
        project: &str,
        collection: &str,
        rows: &[DocRow<'_>],
    ) -> Result<u64, Error> {
        let mut done = 0;
        for row in rows {
            let mut query = sqlx::query(sql)
                .bind(project)
                .bind(collection)
                .bind(row.id)
                .bind(row.version)
                .bind(row.body)
                .bind(row.bytes);
            if expected {
                query = query.bind(row.expected);
            }
            done += query.execute(&mut *conn).await.map_err(db)?.rows_affected();
        }
        Ok(done)
    }

    async fn insert_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[DocRow<'_>],
    ) -> Result<u64, Error> {
        let sql = "INSERT INTO bundoc_documents (project, collection, id, version, body, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6)";
        each_doc(conn, sql, false, project, collection, rows).await
    }

    async fn update_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[DocRow<'_>],
    ) -> Result<u64, Error> {
        let sql = "UPDATE bundoc_documents SET version = $4, body = $5, bytes = $6
                 WHERE project = $1 AND collection = $2 AND id = $3
                   AND version IS NOT DISTINCT FROM $7";
        each_doc(conn, sql, true, project, collection, rows).await
    }

    async fn delete_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[(&str, Option<i64>)],
    ) -> Result<u64, Error> {
        let mut done = 0;
        for (id, expected) in rows {
            done += sqlx::query(
                "DELETE FROM bundoc_documents
                 WHERE project = $1 AND collection = $2 AND id = $3
                   AND version IS NOT DISTINCT FROM $4",
            )
            .bind(project)
            .bind(collection)
            .bind(*id)
            .bind(*expected)
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
        }
        Ok(done)
    }

    async fn delete_entries(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        keys: &[(&str, &[u8])],
    ) -> Result<(), Error> {
        for (index, key) in keys {
            sqlx::query(
                "DELETE FROM bundoc_index_entries
                 WHERE project = $1 AND collection = $2 AND index_name = $3 AND key = $4",
            )
            .bind(project)
            .bind(collection)
            .bind(*index)
            .bind(*key)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        }
        Ok(())
    }

    /// Inserts entries whose key is free: how many were.
    async fn insert_entries(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[(&str, &[u8], &str)],
    ) -> Result<u64, Error> {
        let mut done = 0;
        for (index, key, id) in rows {
            done += sqlx::query(
                "INSERT INTO bundoc_index_entries (project, collection, index_name, key, doc_id)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(project)
            .bind(collection)
            .bind(*index)
            .bind(*key)
            .bind(*id)
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
        }
        Ok(done)
    }

    /// The bodies of the documents `ids` names, in id order (the ids go as
    /// one JSON array).
    async fn get_many_bodies(
        pool: &sqlx::SqlitePool,
        project: &str,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<String>, Error> {
        let ids = serde_json::to_string(ids).map_err(Error::internal)?;
        sqlx::query_scalar(
            "SELECT body FROM bundoc_documents
             WHERE project = $1 AND collection = $2 AND id IN (SELECT value FROM json_each($3))
             ORDER BY id",
        )
        .bind(project)
        .bind(collection)
        .bind(ids)
        .fetch_all(pool)
        .await
        .map_err(db)
    }

    scan_index_statements!(
        "JOIN bundoc_documents d
         ON d.project = e.project AND d.collection = e.collection AND d.id = e.doc_id"
    );

    docs_store!(SqliteDocs, Conn);
}

pub mod postgres {
    //! Postgres: the document store in compose.
    use super::*;

    pub struct PostgresDocs {
        pool: sqlx::PgPool,
    }

    impl PostgresDocs {
        /// Connects and migrates (several instances may start at once).
        pub async fn connect(url: &str) -> Result<PostgresDocs, Error> {
            let pool = crate::sql::connect_postgres(url, 20).await?;
            crate::sql::migrate_postgres(&pool, DOMAIN, MIGRATIONS).await?;
            Ok(PostgresDocs { pool })
        }

        fn reader(&self) -> &sqlx::PgPool {
            &self.pool
        }

        fn writer(&self) -> &sqlx::PgPool {
            &self.pool
        }

        async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, Error> {
            self.pool.begin().await.map_err(db)
        }
    }

    type Conn = sqlx::PgConnection;

    // Each statement takes its rows as arrays: one round trip however many.
    // Every row is found by its whole primary key in a LATERAL subquery,
    // and updated or deleted by the `ctid` found so: with plain joins, the
    // planner may scan the whole collection per statement (it does while
    // a new table's statistics still say it is empty, and keeps that plan).

    async fn load_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        ids: &[&str],
    ) -> Result<Vec<(String, Option<i64>, i64)>, Error> {
        sqlx::query_as(
            "SELECT d.id, d.version, d.bytes FROM UNNEST($3::text[]) AS t(id)
             CROSS JOIN LATERAL (SELECT id, version, bytes FROM bundoc_documents
                 WHERE project = $1 AND collection = $2 AND id = t.id LIMIT 1) d",
        )
        .bind(project)
        .bind(collection)
        .bind(ids)
        .fetch_all(conn)
        .await
        .map_err(db)
    }

    async fn load_keys(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        keys: &[(&str, &[u8])],
    ) -> Result<Vec<(String, Vec<u8>)>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (indexes, keys): (Vec<&str>, Vec<&[u8]>) = keys.iter().copied().unzip();
        sqlx::query_as(
            "SELECT e.index_name, e.key FROM UNNEST($3::text[], $4::bytea[]) AS t(index_name, key)
             CROSS JOIN LATERAL (SELECT index_name, key FROM bundoc_index_entries
                 WHERE project = $1 AND collection = $2 AND index_name = t.index_name
                   AND key = t.key LIMIT 1) e",
        )
        .bind(project)
        .bind(collection)
        .bind(indexes)
        .bind(keys)
        .fetch_all(conn)
        .await
        .map_err(db)
    }

    /// The columns of document rows, as arrays.
    #[allow(clippy::type_complexity)]
    fn doc_columns<'a>(
        rows: &[DocRow<'a>],
    ) -> (
        Vec<&'a str>,
        Vec<Option<i64>>,
        Vec<&'a str>,
        Vec<i64>,
        Vec<Option<i64>>,
    ) {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            columns.0.push(row.id);
            columns.1.push(row.version);
            columns.2.push(row.body);
            columns.3.push(row.bytes);
            columns.4.push(row.expected);
        }
        columns
    }

    /// Runs `sql` over the rows as arrays (`$1`–`$6`: project, collection,
    /// ids, versions, bodies, sizes; `$7`: expected versions, when
    /// `expected`).
    async fn all_docs(
        conn: &mut Conn,
        sql: &'static str,
        expected: bool,
        project: &str,
        collection: &str,
        rows: &[DocRow<'_>],
    ) -> Result<u64, Error> {
        let (ids, versions, bodies, bytes, expected_versions) = doc_columns(rows);
        let mut query = sqlx::query(sql)
            .bind(project)
            .bind(collection)
            .bind(ids)
            .bind(versions)
            .bind(bodies)
            .bind(bytes);
        if expected {
            query = query.bind(expected_versions);
        }
        Ok(query.execute(conn).await.map_err(db)?.rows_affected())
    }

    async fn insert_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[DocRow<'_>],
    ) -> Result<u64, Error> {
        let sql = "INSERT INTO bundoc_documents (project, collection, id, version, body, bytes)
             SELECT $1, $2, * FROM UNNEST($3::text[], $4::int8[], $5::text[], $6::int8[])";
        all_docs(conn, sql, false, project, collection, rows).await
    }

    async fn update_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[DocRow<'_>],
    ) -> Result<u64, Error> {
        let sql =
            "UPDATE bundoc_documents d SET version = t.version, body = t.body, bytes = t.bytes
             FROM (SELECT u.version, u.body, u.bytes, s.tid
                   FROM UNNEST($3::text[], $4::int8[], $5::text[], $6::int8[], $7::int8[])
                     AS u(id, version, body, bytes, expected)
                   CROSS JOIN LATERAL (SELECT ctid AS tid FROM bundoc_documents
                       WHERE project = $1 AND collection = $2 AND id = u.id
                         AND version IS NOT DISTINCT FROM u.expected LIMIT 1) s) t
             WHERE d.ctid = t.tid";
        all_docs(conn, sql, true, project, collection, rows).await
    }

    async fn delete_docs(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[(&str, Option<i64>)],
    ) -> Result<u64, Error> {
        let (ids, expected): (Vec<&str>, Vec<Option<i64>>) = rows.iter().copied().unzip();
        let done = sqlx::query(
            "DELETE FROM bundoc_documents d
             USING (SELECT s.tid FROM UNNEST($3::text[], $4::int8[]) AS u(id, expected)
                    CROSS JOIN LATERAL (SELECT ctid AS tid FROM bundoc_documents
                        WHERE project = $1 AND collection = $2 AND id = u.id
                          AND version IS NOT DISTINCT FROM u.expected LIMIT 1) s) t
             WHERE d.ctid = t.tid",
        )
        .bind(project)
        .bind(collection)
        .bind(ids)
        .bind(expected)
        .execute(conn)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn delete_entries(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        keys: &[(&str, &[u8])],
    ) -> Result<(), Error> {
        let (indexes, keys): (Vec<&str>, Vec<&[u8]>) = keys.iter().copied().unzip();
        sqlx::query(
            "DELETE FROM bundoc_index_entries e
             USING (SELECT s.tid FROM UNNEST($3::text[], $4::bytea[]) AS u(index_name, key)
                    CROSS JOIN LATERAL (SELECT ctid AS tid FROM bundoc_index_entries
                        WHERE project = $1 AND collection = $2 AND index_name = u.index_name
                          AND key = u.key LIMIT 1) s) t
             WHERE e.ctid = t.tid",
        )
        .bind(project)
        .bind(collection)
        .bind(indexes)
        .bind(keys)
        .execute(conn)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Inserts entries whose key is free: how many were.
    async fn insert_entries(
        conn: &mut Conn,
        project: &str,
        collection: &str,
        rows: &[(&str, &[u8], &str)],
    ) -> Result<u64, Error> {
        let mut columns: (Vec<&str>, Vec<&[u8]>, Vec<&str>) = (Vec::new(), Vec::new(), Vec::new());
        for (index, key, id) in rows {
            columns.0.push(index);
            columns.1.push(key);
            columns.2.push(id);
        }
        let done = sqlx::query(
            "INSERT INTO bundoc_index_entries (project, collection, index_name, key, doc_id)
             SELECT $1, $2, * FROM UNNEST($3::text[], $4::bytea[], $5::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(project)
        .bind(collection)
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .execute(conn)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn get_many_bodies(
        pool: &sqlx::PgPool,
        project: &str,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<String>, Error> {
        sqlx::query_scalar(
            "SELECT d.body FROM (SELECT DISTINCT id FROM UNNEST($3::text[]) AS t(id)) t
             CROSS JOIN LATERAL (SELECT id, body FROM bundoc_documents
                 WHERE project = $1 AND collection = $2 AND id = t.id LIMIT 1) d
             ORDER BY d.id",
        )
        .bind(project)
        .bind(collection)
        .bind(ids)
        .fetch_all(pool)
        .await
        .map_err(db)
    }

    scan_index_statements!(
        "CROSS JOIN LATERAL (SELECT body FROM bundoc_documents
            WHERE project = e.project AND collection = e.collection AND id = e.doc_id LIMIT 1) d"
    );

    docs_store!(PostgresDocs, Conn);
}

//! The `DocStore` trait: what a Bundoc adapter keeps — collection
//! definitions, documents (whole JSON, system fields included) and index
//! entries — and the few ordered reads the planner needs. Adapters know
//! nothing of filters, rules or index layouts: core computes every index
//! key (an order-preserving byte string, [`super::keys`]) and the adapter
//! stores and range-scans bytes, so the three stores agree by construction.

use std::ops::Bound;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Error;
use crate::id::ProjectId;

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No document (or collection) with that id yet.
    Absent,
    /// The stored one is at this version.
    Version(u64),
}

/// One row of an index: which index, and its key (already encoded, and
/// unique within the index; for non-unique indexes the key ends with the
/// document id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexEntry {
    pub index: String,
    pub key: Vec<u8>,
}

/// One document write. The service read the stored document first, so it
/// states the version it saw and the index entries to remove and add.
#[derive(Debug, Clone)]
pub struct Write {
    pub id: String,
    pub expect: Expect,
    /// The whole new document (`_version` included), or `None` to delete.
    pub doc: Option<Value>,
    pub remove: Vec<IndexEntry>,
    pub add: Vec<IndexEntry>,
}

/// The most a project may store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_documents: u64,
    pub max_bytes: u64,
}

/// Writes to one collection that commit all together or not at all.
#[derive(Debug, Clone)]
pub struct Batch {
    pub collection: String,
    /// The definition version the writes were prepared under (index
    /// entries, schema, rules): a batch prepared under another is refused
    /// with [`Refusal::Stale`].
    pub collection_version: u64,
    pub writes: Vec<Write>,
    /// Refuse the batch if it grows the project past this.
    pub quota: Option<Quota>,
}

/// Why a batch did not commit (nothing of it did).
#[derive(Debug)]
pub enum Refusal {
    /// A document was not at the expected version (or existed / did not).
    Changed { id: String },
    /// A unique index already has the key.
    Duplicate { index: String },
    /// The collection's definition changed since the batch was prepared:
    /// prepare it again.
    Stale,
    /// The batch would take the project past its quota.
    Quota(String),
    /// The store failed.
    Failed(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Failed(e)
    }
}

/// What a project stores: documents and their bytes (compact JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub documents: u64,
    pub bytes: u64,
}

/// A collection's stored definition (JSON, parsed by core) and its
/// version (1, then +1 per update).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCollection {
    pub name: String,
    pub definition: Value,
    pub version: u64,
}

/// A range of index keys, read in key order or backwards.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRange {
    pub lower: Bound<Vec<u8>>,
    pub upper: Bound<Vec<u8>>,
    pub reverse: bool,
}

/// Computes the index entries of a document for a new index (used when an
/// update adds indexes to a collection that has documents).
pub type EntriesOf<'a> = &'a (dyn Fn(&Value) -> Result<Vec<IndexEntry>, Error> + Sync);

#[async_trait]
pub trait DocStore: Send + Sync + 'static {
    /// Whether the store answers (health checks).
    async fn check(&self) -> Result<(), Error>;

    /// Creates (`Expect::Absent`) or replaces (`Expect::Version`) a
    /// collection's definition. On replace, `drop` lists indexes whose
    /// entries go, and `build` computes the entries of indexes added, for
    /// every stored document, in the same transaction (a duplicate key
    /// refuses the whole update).
    async fn put_collection(
        &self,
        project: &ProjectId,
        name: &str,
        definition: &Value,
        expect: Expect,
        drop: &[String],
        build: Option<EntriesOf<'_>>,
    ) -> Result<(), Refusal>;
    async fn collection(
        &self,
        project: &ProjectId,
        name: &str,
    ) -> Result<Option<StoredCollection>, Error>;
    /// The project's collections, by name.
    async fn collections(&self, project: &ProjectId) -> Result<Vec<StoredCollection>, Error>;
    /// Deletes a collection with its documents and index entries: whether
    /// it existed.
    async fn delete_collection(&self, project: &ProjectId, name: &str) -> Result<bool, Error>;

    /// Commits each batch in order, each all or nothing; one result per
    /// batch. One call is one durable transaction where the store allows
    /// (group commit), so callers gather concurrent batches.
    async fn commit(&self, project: &ProjectId, batches: &[Batch]) -> Vec<Result<(), Refusal>>;

    async fn get(
        &self,
        project: &ProjectId,
        collection: &str,
        id: &str,
    ) -> Result<Option<Value>, Error>;
    /// Documents by id, in id order (missing ids are left out).
    async fn get_many(
        &self,
        project: &ProjectId,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<Value>, Error>;
    /// Up to `limit` documents in id order (bytes), after `after`.
    async fn scan(
        &self,
        project: &ProjectId,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Value>, Error>;
    /// Up to `limit` entries of an index in `range`, with their documents,
    /// in key order (or backwards).
    async fn scan_index(
        &self,
        project: &ProjectId,
        collection: &str,
        index: &str,
        range: &KeyRange,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>, Error>;

    async fn usage(&self, project: &ProjectId) -> Result<Usage, Error>;

    /// The project's data key for field encryption, sealed by BunKMS.
    async fn data_key(&self, project: &ProjectId) -> Result<Option<Vec<u8>>, Error>;
    /// Stores `sealed` unless the project has a data key already: the one
    /// stored (the first writer wins, so racing instances agree).
    async fn put_data_key(&self, project: &ProjectId, sealed: &[u8]) -> Result<Vec<u8>, Error>;
}

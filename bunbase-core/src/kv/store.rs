//! The `KvStore` trait: per-project key-value storage (what Bunder Manager
//! serves over HTTP), on the engine in-process or any Redis-protocol server.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Error;
use crate::id::ProjectId;

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// When a put may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    #[default]
    Always,
    /// Only if the key does not exist (create).
    IfAbsent,
    /// Only if the key exists (update).
    IfPresent,
}

impl Condition {
    /// `absent` (create only) or `present` (update only), as the API takes
    /// them.
    pub fn parse(raw: &str) -> Result<Condition, Error> {
        match raw {
            "absent" => Ok(Condition::IfAbsent),
            "present" => Ok(Condition::IfPresent),
            other => Err(Error::invalid(format!(
                "if must be absent or present, not {other:?}"
            ))),
        }
    }

    /// Why a put under this condition wrote nothing.
    pub fn refusal(self, key: &str) -> String {
        match self {
            Condition::IfAbsent => format!("key {key:?} already exists"),
            _ => format!("key {key:?} does not exist"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    pub ttl: Option<Duration>,
    pub condition: Condition,
    /// Refuse the write if it would take the project past this.
    pub quota: Option<Quota>,
}

/// The most a project may store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_keys: u64,
    /// Keys plus values, in bytes.
    pub max_bytes: u64,
}

/// What a project stores: its live keys, and their keys plus values in
/// bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub keys: u64,
    pub bytes: u64,
}

/// A write's place in its project's history: each committed write gets
/// the next one, in commit order, so consumers of change events can tell
/// which of two writes to a key came last.
pub type Revision = u64;

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// Keys (without the project namespace), in no particular order.
    pub keys: Vec<Bytes>,
    /// Pass back to continue; 0 when the scan is complete.
    pub cursor: u64,
}

/// Per-project key-value storage. Every write keeps the project's usage
/// (keys, bytes) up to date, so quotas hold across instances.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    async fn get(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Bytes>, Error>;
    /// The write's revision, or `None` when its condition refused it.
    async fn put(
        &self,
        project: &ProjectId,
        key: &[u8],
        value: Bytes,
        options: PutOptions,
    ) -> Result<Option<Revision>, Error>;
    /// The delete's revision, or `None` if there was no such key.
    async fn delete(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Revision>, Error>;
    /// Atomic increment of an integer value (a missing key counts as 0):
    /// the new value and the write's revision.
    async fn incr(
        &self,
        project: &ProjectId,
        key: &[u8],
        by: i64,
        quota: Option<Quota>,
    ) -> Result<(i64, Revision), Error>;
    /// Remaining time to live: `None` for no expiry; `not_found` if missing.
    async fn ttl(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Duration>, Error>;
    /// Keys starting with `prefix`, a page at a time.
    async fn scan(
        &self,
        project: &ProjectId,
        prefix: &[u8],
        cursor: u64,
        count: usize,
    ) -> Result<ScanPage, Error>;
    /// The project's usage, expired keys no longer counted.
    async fn usage(&self, project: &ProjectId) -> Result<Usage, Error>;
    /// Whether the server answers.
    async fn check(&self) -> Result<(), Error>;
}

/// Every project key starts `kv:{project}:`, so on a server shared with
/// other subsystems (Buncast's `buncast:…`, the identity cache's
/// `bunbase:…`) no project id can reach their keys.
const KEY_PREFIX: &[u8] = b"kv:";

/// `kv:{project}:` — project ids have no `:`, so one project's prefix is
/// never a prefix of another's.
fn project_prefix(project: &ProjectId) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_PREFIX.len() + project.as_str().len() + 1);
    out.extend_from_slice(KEY_PREFIX);
    out.extend_from_slice(project.as_str().as_bytes());
    out.push(b':');
    out
}

/// Checks a key and returns its namespaced form `kv:{project}:{key}`.
pub fn namespaced(project: &ProjectId, key: &[u8]) -> Result<Bytes, Error> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!("keys are 1 to {MAX_KEY_LEN} bytes")));
    }
    let mut out = project_prefix(project);
    out.extend_from_slice(key);
    Ok(Bytes::from(out))
}

/// A glob matching every key of `project` that starts with `prefix`
/// (glob characters in the prefix are escaped).
pub fn prefix_pattern(project: &ProjectId, prefix: &[u8]) -> Vec<u8> {
    let mut out = project_prefix(project);
    for &b in prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'*');
    out
}

/// Strips the namespace from a stored key.
pub fn strip(project: &ProjectId, stored: &[u8]) -> Option<Bytes> {
    let prefix = project_prefix(project);
    (stored.len() > prefix.len() && stored.starts_with(&prefix))
        .then(|| Bytes::copy_from_slice(&stored[prefix.len()..]))
}

/// A PTTL answer as a KvStore TTL: -2 (no key) is `not_found`, -1 (no
/// expiry) is `None`.
pub fn ttl_from_pttl(ms: i64) -> Result<Option<Duration>, Error> {
    match ms {
        -2 => Err(Error::not_found("key")),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        _ => Ok(None),
    }
}

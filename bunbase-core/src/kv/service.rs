//! Bunder Manager's service: per-project KV over HTTP, what shells and
//! embedders call. It validates, authorizes, enforces limits and quotas,
//! and publishes each change to the project's Buncast topic `kv`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::metrics::KvMetrics;
use super::store::{Condition, KvStore, MAX_KEY_LEN, PutOptions, Quota, Revision, Usage};
use crate::auth::{Access, Principal};
use crate::error::Error;
use crate::events::{Events, Payload, Subscription, Topic};
use crate::id::ProjectId;

/// The Buncast topic changes are published on.
pub const CHANGES_TOPIC: &str = "kv";
/// Values up to this size travel inside change events.
pub const EVENT_VALUE_MAX: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct KvLimits {
    pub max_value_bytes: usize,
    /// Longest time to live a put may ask for.
    pub max_ttl: Duration,
    /// Most keys a scan page returns.
    pub max_page: usize,
    /// Every project's quota.
    pub quota: Quota,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits {
            max_value_bytes: 1024 * 1024,
            max_ttl: Duration::from_secs(365 * 24 * 3600),
            max_page: 1000,
            quota: Quota {
                max_keys: 100_000,
                max_bytes: 256 * 1024 * 1024,
            },
        }
    }
}

/// A put as asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutRequest {
    pub ttl: Option<Duration>,
    pub condition: Condition,
}

/// One page of keys (as the API answers it; the client reads it back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPage {
    pub keys: Vec<String>,
    /// Pass back for the next page; `None` when the scan is complete.
    pub cursor: Option<String>,
}

/// A project's usage against its quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub keys: u64,
    pub bytes: u64,
    pub max_keys: u64,
    pub max_bytes: u64,
}

/// What a change event says (the `data` of a Buncast event on topic `kv`).
/// `rev` is the project's revision at the write: events of concurrent
/// writes may arrive out of order, the higher `rev` is the later write.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Change<'a> {
    Put {
        key: &'a str,
        rev: Revision,
        size: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    Incr {
        key: &'a str,
        rev: Revision,
        value: i64,
    },
    Delete {
        key: &'a str,
        rev: Revision,
    },
}

#[derive(Clone)]
pub struct Kv {
    store: Arc<dyn KvStore>,
    events: Events,
    limits: KvLimits,
    metrics: Arc<KvMetrics>,
}

/// Checks a key given by a client: 1 to 1024 bytes of UTF-8 text.
fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "keys are 1 to {MAX_KEY_LEN} bytes; this one is {}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::invalid("keys may not contain control characters"));
    }
    Ok(())
}

impl Kv {
    pub fn new(
        store: Arc<dyn KvStore>,
        events: Events,
        limits: KvLimits,
        metrics: Arc<KvMetrics>,
    ) -> Kv {
        Kv {
            store,
            events,
            limits,
            metrics,
        }
    }

    pub fn limits(&self) -> KvLimits {
        self.limits
    }

    /// Counts an operation's outcome.
    fn counted<T>(&self, op: &str, result: Result<T, Error>) -> Result<T, Error> {
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.metrics
            .operations
            .with_label_values(&[op, label])
            .inc();
        result
    }

    pub async fn get(
        &self,
        who: &Principal,
        project: &ProjectId,
        key: &str,
    ) -> Result<Option<Bytes>, Error> {
        let result = async {
            who.authorize(project, Access::Read)?;
            check_key(key)?;
            self.store.get(project, key.as_bytes()).await
        }
        .await;
        self.counted("get", result)
    }

    /// Writes `value`; `Ok(false)` when the condition refused the write.
    pub async fn put(
        &self,
        who: &Principal,
        project: &ProjectId,
        key: &str,
        value: Bytes,
        request: PutRequest,
    ) -> Result<bool, Error> {
        let result = async {
            who.authorize(project, Access::Write)?;
            check_key(key)?;
            if value.len() > self.limits.max_value_bytes {
                return Err(Error::PayloadTooLarge(format!(
                    "the value is {} bytes; the limit is {}",
                    value.len(),
                    self.limits.max_value_bytes
                )));
            }
            if let Some(ttl) = request.ttl
                && (ttl.is_zero() || ttl > self.limits.max_ttl)
            {
                return Err(Error::invalid(format!(
                    "a time to live is 1 ms to {} s",
                    self.limits.max_ttl.as_secs()
                )));
            }
            let options = PutOptions {
                ttl: request.ttl,
                condition: request.condition,
                quota: Some(self.limits.quota),
            };
            let written = self
                .store
                .put(project, key.as_bytes(), value.clone(), options)
                .await?;
            if let Some(rev) = written {
                let text = std::str::from_utf8(&value)
                    .ok()
                    .filter(|t| t.len() <= EVENT_VALUE_MAX);
                self.publish(
                    project,
                    &Change::Put {
                        key,
                        rev,
                        size: value.len(),
                        value: text,
                        ttl_ms: request.ttl.map(|t| t.as_millis() as u64),
                    },
                )
                .await;
            }
            Ok(written.is_some())
        }
        .await;
        self.counted("put", result)
    }

    pub async fn delete(
        &self,
        who: &Principal,
        project: &ProjectId,
        key: &str,
    ) -> Result<bool, Error> {
        let result = async {
            who.authorize(project, Access::Write)?;
            check_key(key)?;
            let deleted = self.store.delete(project, key.as_bytes()).await?;
            if let Some(rev) = deleted {
                self.publish(project, &Change::Delete { key, rev }).await;
            }
            Ok(deleted.is_some())
        }
        .await;
        self.counted("delete", result)
    }

    pub async fn incr(
        &self,
        who: &Principal,
        project: &ProjectId,
        key: &str,
        by: i64,
    ) -> Result<i64, Error> {
        let result = async {
            who.authorize(project, Access::Write)?;
            check_key(key)?;
            let (value, rev) = self
                .store
                .incr(project, key.as_bytes(), by, Some(self.limits.quota))
                .await?;
            self.publish(project, &Change::Incr { key, rev, value })
                .await;
            Ok(value)
        }
        .await;
        self.counted("incr", result)
    }

    pub async fn ttl(
        &self,
        who: &Principal,
        project: &ProjectId,
        key: &str,
    ) -> Result<Option<Duration>, Error> {
        let result = async {
            who.authorize(project, Access::Read)?;
            check_key(key)?;
            self.store.ttl(project, key.as_bytes()).await
        }
        .await;
        self.counted("ttl", result)
    }

    /// Keys starting with `prefix`, about `limit` (capped) a page. As with
    /// Redis's SCAN, keys come in no order, a page may hold fewer (even
    /// none) or somewhat more, and the scan is done only when `cursor` is
    /// `None`.
    pub async fn scan(
        &self,
        who: &Principal,
        project: &ProjectId,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<KeyPage, Error> {
        let result = async {
            who.authorize(project, Access::Read)?;
            if prefix.len() > MAX_KEY_LEN {
                return Err(Error::invalid("the prefix is longer than any key"));
            }
            let cursor = match cursor {
                None | Some("") => 0,
                Some(c) => c
                    .parse::<u64>()
                    .map_err(|_| Error::invalid("cursor must be one returned by a scan"))?,
            };
            let limit = limit.unwrap_or(100);
            if limit == 0 || limit > self.limits.max_page {
                return Err(Error::invalid(format!(
                    "limit is 1 to {}",
                    self.limits.max_page
                )));
            }
            let page = self
                .store
                .scan(project, prefix.as_bytes(), cursor, limit)
                .await?;
            Ok(KeyPage {
                keys: page
                    .keys
                    .into_iter()
                    .map(|k| String::from_utf8_lossy(&k).into_owned())
                    .collect(),
                cursor: (page.cursor != 0).then(|| page.cursor.to_string()),
            })
        }
        .await;
        self.counted("scan", result)
    }

    pub async fn usage(&self, who: &Principal, project: &ProjectId) -> Result<UsageReport, Error> {
        let result = async {
            who.authorize(project, Access::Read)?;
            let Usage { keys, bytes } = self.store.usage(project).await?;
            Ok(UsageReport {
                keys,
                bytes,
                max_keys: self.limits.quota.max_keys,
                max_bytes: self.limits.quota.max_bytes,
            })
        }
        .await;
        self.counted("usage", result)
    }

    /// The project's change stream (Buncast topic `kv`), resuming after
    /// `after` if given.
    pub async fn changes(
        &self,
        who: &Principal,
        project: &ProjectId,
        after: Option<u64>,
    ) -> Result<Subscription, Error> {
        let result = self
            .events
            .subscribe(who, project, CHANGES_TOPIC, after)
            .await;
        self.counted("changes", result)
    }

    pub async fn check(&self) -> Result<(), Error> {
        self.store.check().await
    }

    /// Publishes a change; a failure is logged and counted, never undoes
    /// the write it describes.
    async fn publish(&self, project: &ProjectId, change: &Change<'_>) {
        let payload = match serde_json::to_value(change) {
            Ok(value) => Payload::from_value(&value),
            Err(e) => {
                tracing::warn!(error = %e, "change event not serializable");
                return;
            }
        };
        let topic = match Topic::new(CHANGES_TOPIC) {
            Ok(topic) => topic,
            Err(e) => {
                tracing::warn!(error = %e, "invalid changes topic");
                return;
            }
        };
        if let Err(e) = self.events.publish_payload(project, &topic, payload).await {
            self.metrics.change_events_failed.inc();
            tracing::warn!(project = %project, error = %e, "change event not published");
        }
    }
}

/// Keys deleted per scan page when a project is deleted.
const PURGE_PAGE: usize = 500;

#[async_trait::async_trait]
impl crate::platform::ProjectData for Kv {
    fn service(&self) -> &'static str {
        "kv"
    }

    /// Deletes every key of the project, a scan page at a time (each
    /// delete keeps the usage right; no change events: nobody is left to
    /// receive them).
    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error> {
        let mut removed = 0;
        let mut cursor = 0;
        loop {
            let page = self.store.scan(project, b"", cursor, PURGE_PAGE).await?;
            for key in &page.keys {
                if self.store.delete(project, key).await?.is_some() {
                    removed += 1;
                }
            }
            if page.cursor == 0 {
                return Ok(removed);
            }
            cursor = page.cursor;
        }
    }
}

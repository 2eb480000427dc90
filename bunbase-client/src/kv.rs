//! Bunder Manager (`/kv`): each project's key-value store.

use std::time::Duration;

use bunbase_core::Error;
use bytes::Bytes;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::events::{EventStream, stream_at};
use crate::transport::{Client, check, segment, transport};

pub struct KvClient {
    client: Client,
}

/// When a put may write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PutCondition {
    #[default]
    Always,
    /// Only if the key does not exist.
    IfAbsent,
    /// Only if the key exists.
    IfPresent,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Put {
    pub ttl: Option<Duration>,
    pub condition: PutCondition,
}

/// One page of key names (the type the server answers with).
pub use bunbase_core::kv::KeyPage;
/// Keys and bytes a project stores, with its quota.
pub use bunbase_core::kv::UsageReport as KvUsage;

#[derive(Deserialize)]
struct Written {
    written: bool,
}

#[derive(Deserialize)]
struct Deleted {
    deleted: bool,
}

#[derive(Deserialize)]
struct Counter {
    value: i64,
}

#[derive(Deserialize)]
struct TimeToLive {
    ttl_ms: Option<u64>,
}

impl Client {
    /// Bunder Manager (`/kv`): each project's key-value store.
    pub fn kv(&self) -> KvClient {
        KvClient::new(self.clone())
    }
}

impl KvClient {
    pub(crate) fn new(client: Client) -> KvClient {
        KvClient { client }
    }

    fn project_url(&self, project: &str) -> String {
        self.client
            .url(&format!("/kv/v1/projects/{}", segment(project)))
    }

    fn key_url(&self, project: &str, key: &str) -> String {
        format!("{}/keys/{}", self.project_url(project), segment(key))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, Error> {
        self.client.send_json(request).await
    }

    /// The value, or `None` if the key does not exist.
    pub async fn get(&self, project: &str, key: &str) -> Result<Option<Bytes>, Error> {
        let request = self.client.http.get(self.key_url(project, key));
        let response = self.client.send(request).await?;
        if response.status() == StatusCode::NOT_FOUND {
            // A 404 for the key, not for the route: the body says not_found.
            let err = check(response).await.err();
            return match err {
                Some(Error::NotFound(_)) => Ok(None),
                Some(other) => Err(other),
                None => Ok(None),
            };
        }
        check(response)
            .await?
            .bytes()
            .await
            .map(Some)
            .map_err(transport)
    }

    /// Writes `value` with no expiry.
    pub async fn put(
        &self,
        project: &str,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.put_with(project, key, value, Put::default())
            .await
            .map(|_| ())
    }

    /// Writes `value` with a TTL and/or condition; `Ok(false)` when the
    /// condition refused the write.
    pub async fn put_with(
        &self,
        project: &str,
        key: &str,
        value: impl Into<Bytes>,
        options: Put,
    ) -> Result<bool, Error> {
        let mut url = self.key_url(project, key);
        if let Some(ttl) = options.ttl {
            url.push_str(&format!("?ttl_ms={}", ttl.as_millis()));
        }
        let mut request = self.client.http.put(url).body(value.into());
        request = match options.condition {
            PutCondition::Always => request,
            PutCondition::IfAbsent => request.header(reqwest::header::IF_NONE_MATCH, "*"),
            PutCondition::IfPresent => request.header(reqwest::header::IF_MATCH, "*"),
        };
        let response = self.client.send(request).await?;
        if response.status() == StatusCode::PRECONDITION_FAILED {
            return Ok(false);
        }
        let written: Written = check(response)
            .await?
            .json()
            .await
            .map_err(|e| Error::internal(format!("unexpected response: {e}")))?;
        Ok(written.written)
    }

    /// Deletes a key; `Ok(false)` if it did not exist.
    pub async fn delete(&self, project: &str, key: &str) -> Result<bool, Error> {
        let deleted: Deleted = self
            .json(self.client.http.delete(self.key_url(project, key)))
            .await?;
        Ok(deleted.deleted)
    }

    /// Adds `by` to an integer value (a missing key counts as 0).
    pub async fn incr(&self, project: &str, key: &str, by: i64) -> Result<i64, Error> {
        let url = format!("{}/incr", self.key_url(project, key));
        let counter: Counter = self
            .json(
                self.client
                    .http
                    .post(url)
                    .json(&serde_json::json!({ "by": by })),
            )
            .await?;
        Ok(counter.value)
    }

    /// Time left to live: `None` for no expiry; `not_found` if missing.
    pub async fn ttl(&self, project: &str, key: &str) -> Result<Option<Duration>, Error> {
        let url = format!("{}/ttl", self.key_url(project, key));
        let ttl: TimeToLive = self.json(self.client.http.get(url)).await?;
        Ok(ttl.ttl_ms.map(Duration::from_millis))
    }

    /// One page of key names starting with `prefix`; pass the returned
    /// cursor back until it is `None`.
    pub async fn list(
        &self,
        project: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<KeyPage, Error> {
        let mut url = format!(
            "{}/keys?prefix={}&limit={limit}",
            self.project_url(project),
            segment(prefix)
        );
        if let Some(cursor) = cursor {
            url.push_str(&format!("&cursor={}", segment(cursor)));
        }
        self.json(self.client.http.get(url)).await
    }

    /// Every key name starting with `prefix` (all pages).
    pub async fn list_all(&self, project: &str, prefix: &str) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list(project, prefix, cursor.as_deref(), 1000).await?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    pub async fn usage(&self, project: &str) -> Result<KvUsage, Error> {
        let url = format!("{}/usage", self.project_url(project));
        self.json(self.client.http.get(url)).await
    }

    /// Every change to the project's keys from now on (put, incr, delete
    /// events as `{"op", "key", …}`), resuming by itself after drops.
    pub async fn changes(&self, project: &str) -> Result<EventStream, Error> {
        self.changes_after(project, None).await
    }

    /// Changes after a sequence number (`Some(0)`: all the server retains).
    pub async fn changes_after(
        &self,
        project: &str,
        after: Option<u64>,
    ) -> Result<EventStream, Error> {
        let url = format!("{}/changes", self.project_url(project));
        stream_at(&self.client, url, after).await
    }
}

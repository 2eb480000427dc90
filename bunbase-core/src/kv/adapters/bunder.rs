use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_redis::{Pool, Runtime};

use crate::error::Error;
use crate::id::ProjectId;
use crate::kv::adapters::memory::engine_error;
use crate::kv::store::{
    KvStore, PutOptions, ScanPage, namespaced, prefix_pattern, set_args, strip, ttl_from_pttl,
};

/// Any Redis-protocol server (our bunder, or Redis) through a pool.
pub struct BunderKv {
    pool: Pool,
}

impl BunderKv {
    /// `url`: `redis://[:password@]host:port[/db]`. Connects on first use.
    pub fn new(url: &str) -> Result<BunderKv, Error> {
        let pool = deadpool_redis::Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| Error::invalid(format!("invalid KV server URL: {e}")))?;
        Ok(BunderKv { pool })
    }

    async fn query<T: redis::FromRedisValue>(&self, args: Vec<Bytes>) -> Result<T, Error> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| Error::Unavailable(format!("KV server unavailable: {e}")))?;
        let mut command = redis::Cmd::new();
        for arg in &args {
            command.arg(arg.as_ref());
        }
        command
            .query_async(&mut conn)
            .await
            .map_err(|e| match e.kind() {
                redis::ErrorKind::Io => Error::Unavailable(format!("KV server unavailable: {e}")),
                _ => engine_error(e.to_string()),
            })
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[async_trait]
impl KvStore for BunderKv {
    async fn get(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Bytes>, Error> {
        let value: Option<Vec<u8>> = self
            .query(vec![b("GET"), namespaced(project, key)?])
            .await?;
        Ok(value.map(Bytes::from))
    }

    async fn put(
        &self,
        project: &ProjectId,
        key: &[u8],
        value: Bytes,
        options: PutOptions,
    ) -> Result<bool, Error> {
        let reply: Option<String> = self
            .query(set_args(namespaced(project, key)?, value, &options))
            .await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, project: &ProjectId, key: &[u8]) -> Result<bool, Error> {
        let n: i64 = self
            .query(vec![b("DEL"), namespaced(project, key)?])
            .await?;
        Ok(n == 1)
    }

    async fn incr(&self, project: &ProjectId, key: &[u8], by: i64) -> Result<i64, Error> {
        self.query(vec![
            b("INCRBY"),
            namespaced(project, key)?,
            Bytes::from(by.to_string()),
        ])
        .await
    }

    async fn ttl(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Duration>, Error> {
        let ms: i64 = self
            .query(vec![b("PTTL"), namespaced(project, key)?])
            .await?;
        ttl_from_pttl(ms)
    }

    async fn scan(
        &self,
        project: &ProjectId,
        prefix: &[u8],
        cursor: u64,
        count: usize,
    ) -> Result<ScanPage, Error> {
        let (next, keys): (u64, Vec<Vec<u8>>) = self
            .query(vec![
                b("SCAN"),
                Bytes::from(cursor.to_string()),
                b("MATCH"),
                Bytes::from(prefix_pattern(project, prefix)),
                b("COUNT"),
                Bytes::from(count.max(1).to_string()),
            ])
            .await?;
        Ok(ScanPage {
            cursor: next,
            keys: keys.iter().filter_map(|k| strip(project, k)).collect(),
        })
    }
}

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Pool, Runtime};

use super::Cache;
use crate::error::Error;

/// A cache on any Redis-protocol server. Every call is bounded by a short
/// timeout: a slow or absent cache must not slow its callers much.
pub struct RedisCache {
    pool: Pool,
    prefix: String,
    timeout: Duration,
}

impl RedisCache {
    /// `url`: `redis://[:password@]host:port[/db]`. Does not connect yet.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<RedisCache, Error> {
        let mut config = deadpool_redis::Config::from_url(url);
        config.pool = Some(deadpool_redis::PoolConfig {
            max_size: 16,
            timeouts: deadpool_redis::Timeouts {
                wait: Some(timeout),
                create: Some(timeout),
                recycle: Some(timeout),
            },
            ..Default::default()
        });
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| Error::invalid(format!("invalid cache URL: {e}")))?;
        Ok(RedisCache {
            pool,
            prefix: prefix.to_string(),
            timeout,
        })
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, Error> {
        let work = async {
            let mut conn = self.pool.get().await.map_err(unavailable)?;
            cmd.query_async::<T>(&mut conn).await.map_err(unavailable)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::unavailable("cache did not answer in time"))?
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("cache unavailable: {e}"))
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        self.run(cmd).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        self.run::<()>(cmd).await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        self.run::<()>(cmd).await
    }
}

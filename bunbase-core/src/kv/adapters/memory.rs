use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Error;
use crate::id::ProjectId;
use crate::kv::engine::{Engine, Session};
use crate::kv::reply::Reply;
use crate::kv::store::{
    KvStore, PutOptions, ScanPage, namespaced, prefix_pattern, set_args, strip, ttl_from_pttl,
};

/// The engine in this process, through the same commands a client sends.
pub struct MemoryKv {
    engine: Arc<Engine>,
}

impl MemoryKv {
    pub fn new(engine: Arc<Engine>) -> MemoryKv {
        MemoryKv { engine }
    }

    fn run(&self, args: Vec<Bytes>) -> Result<Reply, Error> {
        let mut session = Session::new(0);
        match self.engine.execute(&mut session, &args) {
            Reply::Error(e) => Err(engine_error(e)),
            reply => Ok(reply),
        }
    }
}

/// Engine errors as platform errors (type and value errors are the caller's).
pub fn engine_error(message: String) -> Error {
    if message.starts_with("WRONGTYPE")
        || message.contains("not an integer")
        || message.contains("overflow")
    {
        Error::Conflict(message)
    } else {
        Error::InvalidInput(message)
    }
}

fn cmd(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

#[async_trait]
impl KvStore for MemoryKv {
    async fn get(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Bytes>, Error> {
        match self.run(vec![Bytes::from_static(b"GET"), namespaced(project, key)?])? {
            Reply::Bulk(v) => Ok(Some(v)),
            _ => Ok(None),
        }
    }

    async fn put(
        &self,
        project: &ProjectId,
        key: &[u8],
        value: Bytes,
        options: PutOptions,
    ) -> Result<bool, Error> {
        let reply = self.run(set_args(namespaced(project, key)?, value, &options))?;
        Ok(!matches!(reply, Reply::Nil))
    }

    async fn delete(&self, project: &ProjectId, key: &[u8]) -> Result<bool, Error> {
        let reply = self.run(vec![Bytes::from_static(b"DEL"), namespaced(project, key)?])?;
        Ok(reply == Reply::Integer(1))
    }

    async fn incr(&self, project: &ProjectId, key: &[u8], by: i64) -> Result<i64, Error> {
        let reply = self.run(vec![
            Bytes::from_static(b"INCRBY"),
            namespaced(project, key)?,
            Bytes::from(by.to_string()),
        ])?;
        match reply {
            Reply::Integer(n) => Ok(n),
            other => Err(Error::internal(format!(
                "unexpected INCRBY reply {other:?}"
            ))),
        }
    }

    async fn ttl(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Duration>, Error> {
        match self.run(vec![Bytes::from_static(b"PTTL"), namespaced(project, key)?])? {
            Reply::Integer(ms) => ttl_from_pttl(ms),
            other => Err(Error::internal(format!("unexpected PTTL reply {other:?}"))),
        }
    }

    async fn scan(
        &self,
        project: &ProjectId,
        prefix: &[u8],
        cursor: u64,
        count: usize,
    ) -> Result<ScanPage, Error> {
        let pattern = prefix_pattern(project, prefix);
        let reply = self.run(cmd(&[
            b"SCAN",
            cursor.to_string().as_bytes(),
            b"MATCH",
            &pattern,
            b"COUNT",
            count.max(1).to_string().as_bytes(),
        ]))?;
        let Reply::Array(parts) = reply else {
            return Err(Error::internal("unexpected SCAN reply"));
        };
        let (Some(Reply::Bulk(next)), Some(Reply::Array(keys))) = (parts.first(), parts.get(1))
        else {
            return Err(Error::internal("unexpected SCAN reply"));
        };
        Ok(ScanPage {
            cursor: std::str::from_utf8(next)
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            keys: keys
                .iter()
                .filter_map(|k| match k {
                    Reply::Bulk(k) => strip(project, k),
                    _ => None,
                })
                .collect(),
        })
    }
}

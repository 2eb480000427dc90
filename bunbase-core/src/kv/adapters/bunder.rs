//! Any Redis-protocol server (our bunder, or Redis) as a [`Runner`],
//! through a connection pool.

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_redis::{Connection, Pool, Runtime};
use redis::Value;

use crate::error::Error;
use crate::kv::accounted::AccountedKv;
use crate::kv::reply::Reply;
use crate::kv::runner::{Command, Runner, Transaction, check_replies, engine_error};

/// The store on a Redis-protocol server.
pub type BunderKv = AccountedKv<RedisRunner>;

impl BunderKv {
    /// `url`: `redis://[:password@]host:port[/db]`. Connects on first use.
    pub fn new(url: &str) -> Result<BunderKv, Error> {
        Ok(AccountedKv::on(RedisRunner::new(url)?))
    }
}

pub struct RedisRunner {
    pool: Pool,
}

impl RedisRunner {
    pub fn new(url: &str) -> Result<RedisRunner, Error> {
        let pool = deadpool_redis::Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| Error::invalid(format!("invalid KV server URL: {e}")))?;
        Ok(RedisRunner { pool })
    }

    async fn connection(&self) -> Result<Connection, Error> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Unavailable(format!("KV server unavailable: {e}")))
    }
}

fn to_cmd(args: &[Bytes]) -> redis::Cmd {
    let mut command = redis::Cmd::new();
    for arg in args {
        command.arg(arg.as_ref());
    }
    command
}

fn redis_error(e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        Error::Unavailable(format!("KV server unavailable: {e}"))
    } else {
        // The server's own text, e.g. "WRONGTYPE …" or "OOM …".
        let text = match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => e.to_string(),
        };
        engine_error(text)
    }
}

/// A server value in the engine's reply shape.
fn to_reply(value: Value) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(n) => Reply::Integer(n),
        Value::BulkString(b) => Reply::Bulk(Bytes::from(b)),
        Value::Array(items) | Value::Set(items) => {
            Reply::Array(items.into_iter().map(to_reply).collect())
        }
        Value::Okay => Reply::ok(),
        Value::SimpleString(s) => Reply::Bulk(Bytes::from(s)),
        Value::Double(d) => Reply::Double(d),
        Value::Boolean(b) => Reply::Integer(b as i64),
        Value::Map(pairs) => Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (to_reply(k), to_reply(v)))
                .collect(),
        ),
        Value::ServerError(e) => {
            Reply::Error(format!("{} {}", e.code(), e.details().unwrap_or_default()))
        }
        other => Reply::Error(format!("ERR unexpected reply {other:?}")),
    }
}

#[async_trait]
impl Runner for RedisRunner {
    async fn run(&self, command: Command) -> Result<Reply, Error> {
        let mut conn = self.connection().await?;
        let value: Value = to_cmd(&command)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match to_reply(value) {
            Reply::Error(e) => Err(engine_error(e)),
            reply => Ok(reply),
        }
    }

    async fn watch(&self, keys: Vec<Bytes>) -> Result<Box<dyn Transaction>, Error> {
        let mut conn = self.connection().await?;
        let mut watch = vec![Bytes::from_static(b"WATCH")];
        watch.extend(keys);
        let _: Value = to_cmd(&watch)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(Box::new(RedisTransaction { conn: Some(conn) }))
    }
}

/// A pooled connection holding a WATCH.
struct RedisTransaction {
    conn: Option<Connection>,
}

impl RedisTransaction {
    fn conn(&mut self) -> Result<&mut Connection, Error> {
        self.conn
            .as_mut()
            .ok_or_else(|| Error::internal("transaction already finished"))
    }
}

impl Drop for RedisTransaction {
    fn drop(&mut self) {
        // Abandoned mid-way (an error): the connection still holds the
        // WATCH, so it must not go back to the pool.
        if let Some(conn) = self.conn.take() {
            drop(deadpool_redis::Connection::take(conn));
        }
    }
}

#[async_trait]
impl Transaction for RedisTransaction {
    async fn read(&mut self, commands: Vec<Command>) -> Result<Vec<Reply>, Error> {
        let mut pipe = redis::pipe();
        for c in &commands {
            pipe.add_command(to_cmd(c));
        }
        let values: Vec<Value> = pipe.query_async(self.conn()?).await.map_err(redis_error)?;
        check_replies(values.into_iter().map(to_reply).collect())
    }

    async fn commit(
        mut self: Box<Self>,
        writes: Vec<Command>,
    ) -> Result<Option<Vec<Reply>>, Error> {
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| Error::internal("transaction already finished"))?;
        if writes.is_empty() {
            let _: Value = redis::cmd("UNWATCH")
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            return Ok(Some(Vec::new()));
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for c in &writes {
            pipe.add_command(to_cmd(c));
        }
        // EXEC answers nil when a watched key changed.
        let values: Option<Vec<Value>> = pipe.query_async(&mut conn).await.map_err(redis_error)?;
        match values {
            None => Ok(None),
            Some(values) => check_replies(values.into_iter().map(to_reply).collect()).map(Some),
        }
    }
}

//! What the [`KvStore`](super::KvStore) implementation needs from a
//! Redis-protocol engine: single commands, and optimistic transactions
//! (WATCH, reads, then MULTI…EXEC that fails if a watched key changed).
//!
//! Two runners exist: the engine in this process and any server over TCP;
//! the store logic above them is written once.

use async_trait::async_trait;
use bytes::Bytes;

use super::reply::Reply;
use crate::error::Error;

pub type Command = Vec<Bytes>;

#[async_trait]
pub trait Runner: Send + Sync + 'static {
    /// Runs one command; an error reply becomes an `Err`.
    async fn run(&self, command: Command) -> Result<Reply, Error>;

    /// Watches `keys` and returns a transaction to read and then commit in.
    async fn watch(&self, keys: Vec<Bytes>) -> Result<Box<dyn Transaction>, Error>;
}

#[async_trait]
pub trait Transaction: Send {
    /// Runs reads (pipelined); error replies become an `Err`.
    async fn read(&mut self, commands: Vec<Command>) -> Result<Vec<Reply>, Error>;

    /// Runs `writes` atomically if no watched key changed since the watch:
    /// `None` when one did (nothing was written; try again). With no
    /// writes, just releases the watch.
    async fn commit(self: Box<Self>, writes: Vec<Command>) -> Result<Option<Vec<Reply>>, Error>;
}

/// Builds a command from string-ish parts.
pub fn command<const N: usize>(parts: [&[u8]; N]) -> Command {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

/// Engine errors as platform errors (type and value errors are the caller's).
pub fn engine_error(message: String) -> Error {
    if message.starts_with("OOM") || message.starts_with("EXECABORT") {
        // The server's maxmemory (shared by every project), not this
        // project's quota; 507 like a quota, and nothing was written
        // (EXECABORT: MULTI refused a queued write, OOM in practice).
        Error::QuotaExceeded(format!(
            "the KV server is full (its maxmemory, shared by every project); nothing was written: {message}"
        ))
    } else if message.starts_with("WRONGTYPE")
        || message.contains("not an integer")
        || message.contains("overflow")
    {
        Error::Conflict(message)
    } else {
        Error::InvalidInput(message)
    }
}

/// The replies of a run, with any error reply as an `Err`.
pub fn check_replies(replies: Vec<Reply>) -> Result<Vec<Reply>, Error> {
    if let Some(Reply::Error(e)) = replies.iter().find(|r| r.is_error()) {
        return Err(engine_error(e.clone()));
    }
    Ok(replies)
}

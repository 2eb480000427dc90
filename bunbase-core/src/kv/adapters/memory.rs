//! The engine in this process as a [`Runner`]: the all-in-one's KV store.
//!
//! Commands go through the same path a RESP client's do (the transaction
//! gate, the append-only file, WATCH bookkeeping), so an in-process store
//! and a RESP port can share one engine.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Error;
use crate::kv::accounted::AccountedKv;
use crate::kv::aof::{self, Aof};
use crate::kv::engine::{Engine, Session};
use crate::kv::reply::Reply;
use crate::kv::runner::{Command, Runner, Transaction, check_replies, engine_error};
use crate::kv::tx::{Transactions, Watch};

/// The store on the engine in this process.
pub type MemoryKv = AccountedKv<EngineRunner>;

impl MemoryKv {
    /// A store on its own engine state (no persistence).
    pub fn new(engine: Arc<Engine>) -> MemoryKv {
        AccountedKv::on(EngineRunner::new(engine, Arc::default(), None))
    }
}

/// Runs commands on an engine, in database 0.
#[derive(Clone)]
pub struct EngineRunner {
    engine: Arc<Engine>,
    tx: Arc<Transactions>,
    aof: Option<Arc<Aof>>,
}

impl EngineRunner {
    /// `tx` and `aof` are those of the RESP server sharing the engine, if
    /// any, so its clients' WATCHes and the append-only file see our writes.
    pub fn new(engine: Arc<Engine>, tx: Arc<Transactions>, aof: Option<Arc<Aof>>) -> EngineRunner {
        EngineRunner { engine, tx, aof }
    }

    /// One command; the caller holds the transaction gate.
    fn execute(&self, args: &[Bytes]) -> Reply {
        self.execute_in(&mut Session::new(0), args)
    }

    fn execute_in(&self, session: &mut Session, args: &[Bytes]) -> Reply {
        match aof::execute_logged(&self.engine, self.aof.as_ref(), session, args) {
            Ok(reply) => {
                // Writes and evictions count as changes for WATCH.
                self.tx.record(0, args, &reply, &session.evicted);
                reply
            }
            Err(e) => Reply::Error(format!("ERR {e}")),
        }
    }
}

#[async_trait]
impl Runner for EngineRunner {
    async fn run(&self, command: Command) -> Result<Reply, Error> {
        let reply = {
            let _gate = self.tx.shared();
            self.execute(&command)
        };
        match reply {
            Reply::Error(e) => Err(engine_error(e)),
            reply => Ok(reply),
        }
    }

    async fn watch(&self, keys: Vec<Bytes>) -> Result<Box<dyn Transaction>, Error> {
        // A watched key that expires before the commit counts as changed.
        let watches = keys
            .into_iter()
            .map(|k| {
                let deadline = self.engine.expires_at(0, &k).unwrap_or(0);
                self.tx.watch_until(0, k, deadline)
            })
            .collect();
        Ok(Box::new(EngineTransaction {
            runner: self.clone(),
            watches,
        }))
    }
}

struct EngineTransaction {
    runner: EngineRunner,
    watches: Vec<Watch>,
}

impl Drop for EngineTransaction {
    fn drop(&mut self) {
        self.runner.tx.unwatch(&self.watches);
    }
}

#[async_trait]
impl Transaction for EngineTransaction {
    async fn read(&mut self, commands: Vec<Command>) -> Result<Vec<Reply>, Error> {
        let replies = {
            let _gate = self.runner.tx.shared();
            commands.iter().map(|c| self.runner.execute(c)).collect()
        };
        check_replies(replies)
    }

    async fn commit(self: Box<Self>, writes: Vec<Command>) -> Result<Option<Vec<Reply>>, Error> {
        if writes.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let replies = {
            let _alone = self.runner.tx.exclusive();
            if !self.runner.tx.unchanged(&self.watches) {
                return Ok(None);
            }
            // As EXEC after MULTI: every write is checked (maxmemory among
            // them) before any runs, so a refused batch writes nothing.
            if let Some(refusal) = writes
                .iter()
                .filter(|c| !is_counter(c))
                .find_map(|c| self.runner.engine.check_queued(c))
            {
                return check_replies(vec![refusal]).map(Some);
            }
            let mut session = Session::new(0);
            session.in_exec = true;
            writes
                .iter()
                .map(|c| self.runner.execute_in(&mut session, c))
                .collect()
        };
        check_replies(replies).map(Some)
    }
}

/// INCR/INCRBY/DECR/DECRBY: the store's bookkeeping (usage counters,
/// revisions) rewrites a small integer, so a full engine still lets a
/// delete, which decrements them, free memory.
fn is_counter(command: &[Bytes]) -> bool {
    command.first().is_some_and(|name| {
        [&b"INCR"[..], b"INCRBY", b"DECR", b"DECRBY"]
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c))
    })
}

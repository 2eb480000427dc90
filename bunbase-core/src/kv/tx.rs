//! Transactions: MULTI/EXEC run queued commands with no other command in
//! between, and WATCH makes EXEC fail if a watched key was written since.
//!
//! Every command runs under a shared gate; EXEC takes it exclusively.
//! Watched keys get a version that each write to them bumps (a flush bumps
//! every version of its database); only watched keys are tracked.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

#[derive(Default)]
pub struct Transactions {
    gate: RwLock<()>,
    /// (db, key) → (version, how many connections watch it).
    watched: Mutex<HashMap<(usize, Bytes), (u64, usize)>>,
    /// Per-database flush counters (any flush invalidates its watches).
    flushes: Mutex<HashMap<usize, u64>>,
}

/// What a connection remembers of a WATCH: where to compare at EXEC.
#[derive(Debug, Clone)]
pub struct Watch {
    db: usize,
    key: Bytes,
    version: u64,
    flushes: u64,
}

impl Transactions {
    /// Held (shared) while any single command runs.
    pub fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Held (exclusive) while EXEC checks watches and runs its queue.
    pub fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn watch(&self, db: usize, key: Bytes) -> Watch {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let entry = watched.entry((db, key.clone())).or_insert((0, 0));
        entry.1 += 1;
        let flushes = *self
            .flushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&db)
            .unwrap_or(&0);
        Watch {
            db,
            key,
            version: entry.0,
            flushes,
        }
    }

    /// Forgets a connection's watches (after EXEC, DISCARD, UNWATCH, close).
    pub fn unwatch(&self, watches: &[Watch]) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        for w in watches {
            let slot = (w.db, w.key.clone());
            if let Some(entry) = watched.get_mut(&slot) {
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    watched.remove(&slot);
                }
            }
        }
    }

    /// True if none of the watched keys changed.
    pub fn unchanged(&self, watches: &[Watch]) -> bool {
        let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let flushes = self.flushes.lock().unwrap_or_else(|e| e.into_inner());
        watches.iter().all(|w| {
            watched
                .get(&(w.db, w.key.clone()))
                .is_some_and(|(v, _)| *v == w.version)
                && *flushes.get(&w.db).unwrap_or(&0) == w.flushes
        })
    }

    /// Records that a command (just run, successfully, in `db`) wrote.
    pub fn wrote(&self, db: usize, args: &[Bytes]) {
        let name = args[0].to_ascii_uppercase();
        match name.as_slice() {
            b"FLUSHDB" => {
                *self
                    .flushes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(db)
                    .or_default() += 1
            }
            b"FLUSHALL" => {
                let mut flushes = self.flushes.lock().unwrap_or_else(|e| e.into_inner());
                let dbs: Vec<usize> = self
                    .watched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .keys()
                    .map(|(d, _)| *d)
                    .collect();
                for d in dbs {
                    *flushes.entry(d).or_default() += 1;
                }
            }
            _ => {
                let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
                if watched.is_empty() {
                    return;
                }
                for key in written_keys(&name, &args[1..]) {
                    if let Some(entry) = watched.get_mut(&(db, key.clone())) {
                        entry.0 += 1;
                    }
                }
            }
        }
    }
}

/// The keys a write command changes (none for reads).
fn written_keys<'a>(name: &[u8], rest: &'a [Bytes]) -> Vec<&'a Bytes> {
    match name {
        b"MSET" => rest.iter().step_by(2).collect(),
        b"DEL" | b"UNLINK" | b"RENAME" | b"RENAMENX" => rest.iter().collect(),
        b"SET" | b"SETNX" | b"SETEX" | b"PSETEX" | b"GETDEL" | b"INCR" | b"DECR" | b"INCRBY"
        | b"DECRBY" | b"APPEND" | b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT"
        | b"PERSIST" | b"LPUSH" | b"RPUSH" | b"LPOP" | b"RPOP" | b"HSET" | b"HMSET" | b"HSETNX"
        | b"HDEL" | b"HINCRBY" | b"SADD" | b"SREM" | b"ZADD" | b"ZREM" | b"LTRIM"
        | b"ZREMRANGEBYSCORE" | b"SETRANGE" | b"INCRBYFLOAT" | b"GETEX" | b"LSET" | b"LREM"
        | b"LINSERT" | b"SPOP" | b"ZINCRBY" | b"ZPOPMIN" | b"ZPOPMAX" => {
            rest.first().into_iter().collect()
        }
        _ => Vec::new(),
    }
}

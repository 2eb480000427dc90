//! Transactions: MULTI/EXEC run queued commands with no other command in
//! between, and WATCH makes EXEC fail if a watched key was written since.
//!
//! Every command runs under a shared gate; EXEC takes it exclusively.
//! Watched keys get a version that each write to them bumps (a flush bumps
//! every version of its database); only watched keys are tracked.
//!
//! Expiry is not a write anyone logs, so a watch also remembers when its
//! key was due to expire: a key whose deadline passed before EXEC counts
//! as changed (as in Redis), whether or not it was removed yet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use super::reply::Reply;

#[derive(Default)]
pub struct Transactions {
    gate: RwLock<()>,
    /// (db, key) → (version, how many connections watch it).
    watched: Mutex<HashMap<(usize, Bytes), (u64, usize)>>,
    /// Entries in `watched`: with none, writes skip its lock. (SeqCst: a
    /// write that reads 0 is ordered before any WATCH still to come; on
    /// x86 such a load costs what a plain one does.)
    watching: AtomicUsize,
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
    /// When the key was due to expire at WATCH time (ms; 0 = never, or
    /// the key did not exist).
    deadline: u64,
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

    /// Starts watching `key`, which expires at `deadline` (ms since the
    /// epoch; 0 = never or missing, as `Engine::expires_at` tells).
    pub fn watch_until(&self, db: usize, key: Bytes, deadline: u64) -> Watch {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let entry = watched.entry((db, key.clone())).or_insert_with(|| {
            self.watching.fetch_add(1, SeqCst);
            (0, 0)
        });
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
            deadline,
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
                    self.watching.fetch_sub(1, SeqCst);
                }
            }
        }
    }

    /// True if none of the watched keys changed (or expired).
    pub fn unchanged(&self, watches: &[Watch]) -> bool {
        let now = super::engine::now_ms();
        let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let flushes = self.flushes.lock().unwrap_or_else(|e| e.into_inner());
        watches.iter().all(|w| {
            watched
                .get(&(w.db, w.key.clone()))
                .is_some_and(|(v, _)| *v == w.version)
                && *flushes.get(&w.db).unwrap_or(&0) == w.flushes
                && (w.deadline == 0 || now < w.deadline)
        })
    }

    /// Records what a command that just ran in `db` changed: its own keys
    /// unless it failed, and the keys evicted to make room for it
    /// (`Session::evicted`).
    pub fn record(&self, db: usize, args: &[Bytes], reply: &Reply, evicted: &[(usize, Bytes)]) {
        if !evicted.is_empty() && self.watching.load(SeqCst) > 0 {
            let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            for (db, key) in evicted {
                if let Some(entry) = watched.get_mut(&(*db, key.clone())) {
                    entry.0 += 1;
                }
            }
        }
        if !reply.is_error() {
            self.wrote_replying(db, args, reply);
        }
    }

    /// Bumps the versions of the keys a successful command wrote (for
    /// BLPOP/BRPOP, the key in its reply).
    fn wrote_replying(&self, db: usize, args: &[Bytes], reply: &Reply) {
        let Some(first) = args.first() else {
            return;
        };
        let flush =
            first.eq_ignore_ascii_case(b"FLUSHDB") || first.eq_ignore_ascii_case(b"FLUSHALL");
        if !flush && self.watching.load(SeqCst) == 0 {
            return;
        }
        let name = first.to_ascii_uppercase();
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
                for key in written_keys(&name, &args[1..], reply) {
                    if let Some(entry) = watched.get_mut(&(db, key.clone())) {
                        entry.0 += 1;
                    }
                }
            }
        }
    }
}

/// The keys a write command changes (none for reads).
fn written_keys<'a>(name: &[u8], rest: &'a [Bytes], reply: &'a Reply) -> Vec<&'a Bytes> {
    match name {
        // The key a blocking pop took from is in its reply.
        b"BLPOP" | b"BRPOP" => match reply {
            Reply::Array(items) => match items.first() {
                Some(Reply::Bulk(key)) => vec![key],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        },
        b"MSET" => rest.iter().step_by(2).collect(),
        b"DEL" | b"UNLINK" | b"RENAME" | b"RENAMENX" => rest.iter().collect(),
        b"SET" | b"SETNX" | b"SETEX" | b"PSETEX" | b"GETDEL" | b"INCR" | b"DECR" | b"INCRBY"
        | b"DECRBY" | b"APPEND" | b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT"
        | b"PERSIST" | b"LPUSH" | b"RPUSH" | b"LPOP" | b"RPOP" | b"HSET" | b"HMSET" | b"HSETNX"
        | b"HDEL" | b"HINCRBY" | b"SADD" | b"SREM" | b"ZADD" | b"ZREM" | b"LTRIM"
        | b"ZREMRANGEBYSCORE" | b"SETRANGE" | b"INCRBYFLOAT" | b"GETEX" | b"LSET" | b"LREM"
        | b"LINSERT" | b"SPOP" | b"ZINCRBY" | b"ZPOPMIN" | b"ZPOPMAX" | b"HINCRBYFLOAT" => {
            rest.first().into_iter().collect()
        }
        _ => Vec::new(),
    }
}

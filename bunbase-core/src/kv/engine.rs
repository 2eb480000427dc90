//! The keyspace and command execution.
//!
//! Each database is split into shards, each behind its own lock, so
//! commands on different keys run in parallel on both cores. Expired keys
//! are removed when touched (lazily) and by [`Engine::sweep_expired`],
//! which the server calls periodically so memory is freed without traffic.
//! Every shard also keeps the estimated size of its entries, for
//! `maxmemory` (see [`memory`]).

mod blocking;
mod clients;
mod commands;
mod memory;

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::reply::Reply;

pub use blocking::{ListWait, block_timeout};
pub use clients::{Activity, ClientHandle};
pub use memory::{EvictionPolicy, MemoryStats};

#[cfg(test)]
pub(super) use commands::names as command_names;

#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    pub databases: usize,
    /// Locks per database (a power of two).
    pub shards: usize,
    /// `maxmemory` in bytes (estimated; see [`MemoryStats`]); `None` = no limit.
    pub max_memory: Option<usize>,
    /// What writes do once over `max_memory`.
    pub eviction: EvictionPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            databases: 16,
            shards: 64,
            max_memory: None,
            eviction: EvictionPolicy::NoEviction,
        }
    }
}

/// A stored value.
#[derive(Debug, Clone)]
pub enum Value {
    Str(Bytes),
    // Collections are boxed, so every entry stays the size of a string value.
    List(Box<super::types::List>),
    Hash(Box<super::types::Hash>),
    Set(Box<super::types::Set>),
    ZSet(Box<super::types::ZSet>),
}

impl Value {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// Estimated bytes beyond the entry itself (O(1): collections count
    /// their payload as it changes).
    pub(super) fn mem(&self) -> usize {
        use memory::{COLLECTION_OVERHEAD, HASH_ITEM, LIST_ITEM, SET_ITEM, ZSET_ITEM};
        match self {
            Value::Str(v) => v.len(),
            Value::List(l) => COLLECTION_OVERHEAD + l.bytes() + l.len() * LIST_ITEM,
            Value::Hash(h) => COLLECTION_OVERHEAD + h.bytes() + h.len() * HASH_ITEM,
            Value::Set(s) => COLLECTION_OVERHEAD + s.bytes() + s.len() * SET_ITEM,
            Value::ZSet(z) => COLLECTION_OVERHEAD + z.bytes() + z.len() * ZSET_ITEM,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) value: Value,
    /// Milliseconds since the epoch; 0 = no expiry.
    pub(super) expires_at: u64,
    /// When it was last touched, in [`memory`] clock ticks (0 while no LRU
    /// policy is in force). A `Cell`, so reads can stamp it under the lock.
    pub(super) access: Cell<u32>,
}

impl Entry {
    pub(super) fn new(value: Value, expires_at: u64) -> Entry {
        Entry {
            value,
            expires_at,
            access: Cell::new(0),
        }
    }

    pub(super) fn expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }
}

fn entry_size(key_len: usize, entry: &Entry) -> usize {
    memory::ENTRY_OVERHEAD + key_len + entry.value.mem()
}

/// Hashes keys (shard choice and shard maps): foldhash, seeded at random
/// per process — several times faster than SipHash on short keys, and not
/// predictable from outside.
type KeyHasher = foldhash::fast::RandomState;

/// One lock's worth of a database: its entries and their estimated size.
/// Every change goes through these methods, which keep `used` right.
#[derive(Default)]
pub(super) struct Shard {
    map: HashMap<Bytes, Entry, KeyHasher>,
    /// Estimated bytes of the entries.
    used: usize,
    /// The part of `used` already counted in the engine-wide total.
    reported: usize,
    /// Access time stamped on entries touched under this lock (0 = none).
    clock: u32,
    /// The database it belongs to (its size counts there too).
    db: usize,
}

impl Shard {
    fn touch(&self, entry: &Entry) {
        if self.clock != 0 {
            entry.access.set(self.clock);
        }
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&Entry> {
        let entry = self.map.get(key)?;
        self.touch(entry);
        Some(entry)
    }

    /// For edits that keep the value's size (expiry); after changing the
    /// value itself, call [`Shard::resized`].
    pub(super) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let clock = self.clock;
        let entry = self.map.get_mut(key)?;
        if clock != 0 {
            entry.access.set(clock);
        }
        Some(entry)
    }

    /// Records that a value changed in place from `before` to `after`
    /// bytes (as [`Value::mem`] measures them).
    pub(super) fn resized(&mut self, before: usize, after: usize) {
        self.used = self.used.saturating_sub(before) + after;
    }

    pub(super) fn insert(&mut self, key: Bytes, entry: Entry) -> Option<Entry> {
        entry.access.set(self.clock);
        let key_len = key.len();
        self.used += entry_size(key_len, &entry);
        let old = self.map.insert(key, entry);
        if let Some(old) = &old {
            self.used = self.used.saturating_sub(entry_size(key_len, old));
        }
        old
    }

    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.used = self.used.saturating_sub(entry_size(key.len(), &entry));
        Some(entry)
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Bytes, &Entry) -> bool) {
        let mut freed = 0;
        self.map.retain(|k, e| {
            let kept = keep(k, e);
            if !kept {
                freed += entry_size(k.len(), e);
            }
            kept
        });
        self.used = self.used.saturating_sub(freed);
    }

    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.used = 0;
    }

    /// Every entry, without touching access times.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter()
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A locked shard; reports its size change to the engine-wide total when
/// released.
pub(super) struct ShardGuard<'a> {
    shard: MutexGuard<'a, Shard>,
    memory: &'a memory::Memory,
}

impl std::ops::Deref for ShardGuard<'_> {
    type Target = Shard;

    fn deref(&self) -> &Shard {
        &self.shard
    }
}

impl std::ops::DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        self.memory.report(&mut self.shard);
    }
}

struct Db {
    shards: Vec<Mutex<Shard>>,
}

/// Per-connection state the engine reads and changes.
#[derive(Debug, Clone)]
pub struct Session {
    pub db: usize,
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub id: u64,
    /// Set by QUIT: the connection closes after the reply.
    pub closing: bool,
    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    /// Keys (db, key) evicted to make room for the last command; the
    /// append-only file logs them as DELs, WATCH counts them as writes.
    pub evicted: Vec<(usize, Bytes)>,
    /// Replaying the append-only file: no memory limit applies (it already
    /// holds the DELs of what was evicted).
    pub(super) replaying: bool,
    /// Running EXEC's queue: memory was checked once for the whole
    /// transaction (as Redis does), so no command in it is refused half-way.
    pub in_exec: bool,
}

impl Session {
    pub fn new(id: u64) -> Session {
        Session {
            db: 0,
            resp3: false,
            name: None,
            id,
            closing: false,
            lib_name: None,
            lib_ver: None,
            evicted: Vec::new(),
            replaying: false,
            in_exec: false,
        }
    }
}

pub struct Engine {
    dbs: Vec<Db>,
    hasher: KeyHasher,
    mask: usize,
    started: std::time::Instant,
    /// Connected clients, kept by the server (for INFO).
    pub clients: std::sync::atomic::AtomicU64,
    /// Commands executed (for INFO).
    /// Calls per command, by table position; the last slot counts
    /// unknown commands.
    calls: Box<[std::sync::atomic::AtomicU64]>,
    memory: memory::Memory,
    client_registry: Arc<clients::Registry>,
    waiters: blocking::Waiters,
}

thread_local! {
    /// Set while this thread loads a file (append-only file, snapshot).
    static LOADING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `load` with the clock stopped at 0, so no key counts as expired:
/// a logged command ran while its key was alive and must find it so on
/// replay (an INCR must not recreate an expired key without its expiry, a
/// RENAME must not fail). What expired is swept once loading is over.
pub(crate) fn loading<T>(load: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            LOADING.with(|l| l.set(false));
        }
    }
    LOADING.with(|l| l.set(true));
    let _reset = Reset;
    load()
}

pub(super) fn now_ms() -> u64 {
    if LOADING.with(Cell::get) {
        return 0;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn wrong_args(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

pub(super) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub(super) const SYNTAX: &str = "ERR syntax error";
pub(super) const WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";

pub(super) fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

pub(super) fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's rule for client and library names: printable, no spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (shown by CLIENT LIST).
fn client_setinfo(session: &mut Session, attribute: &[u8], value: &Bytes) -> Reply {
    let slot = if eq(attribute, "LIB-NAME") {
        &mut session.lib_name
    } else if eq(attribute, "LIB-VER") {
        &mut session.lib_ver
    } else {
        return Reply::error(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attribute)
        ));
    };
    if !valid_name(value) {
        return Reply::error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attribute).to_ascii_lowercase()
        ));
    }
    *slot = (!value.is_empty()).then(|| value.clone());
    Reply::ok()
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        let shards = config.shards.max(1).next_power_of_two();
        let databases = config.databases.max(1);
        Engine {
            dbs: (0..databases)
                .map(|db| Db {
                    shards: (0..shards)
                        .map(|_| {
                            Mutex::new(Shard {
                                db,
                                ..Shard::default()
                            })
                        })
                        .collect(),
                })
                .collect(),
            hasher: KeyHasher::default(),
            mask: shards - 1,
            started: std::time::Instant::now(),
            clients: std::sync::atomic::AtomicU64::new(0),
            calls: (0..=commands::count())
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            memory: memory::Memory::new(
                config.max_memory.filter(|m| *m > 0),
                config.eviction,
                databases,
            ),
            client_registry: Arc::default(),
            waiters: blocking::Waiters::default(),
        }
    }

    pub(super) fn shard_count(&self) -> usize {
        self.mask + 1
    }

    /// Locks shard `index` of `db`, stamping the LRU clock on it.
    pub(super) fn lock_shard(&self, db: usize, index: usize) -> ShardGuard<'_> {
        let mut shard = self.dbs[db].shards[index]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.clock = self.memory.clock();
        ShardGuard {
            shard,
            memory: &self.memory,
        }
    }

    /// Some live key of one shard (for RANDOMKEY).
    pub(super) fn first_live_key(&self, db: usize, shard: usize, now: u64) -> Option<Bytes> {
        let shard = self.lock_shard(db, shard);
        shard
            .iter()
            .find(|(_, e)| !e.expired(now))
            .map(|(k, _)| k.clone())
    }

    /// Calls so far of each command that ran at least once (`unknown`
    /// for names we don't know).
    pub fn command_calls(&self) -> Vec<(&'static str, u64)> {
        self.calls
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    commands::name_at(i),
                    n.load(std::sync::atomic::Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn total_calls(&self) -> u64 {
        self.calls
            .iter()
            .map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    pub(super) fn shard(&self, db: usize, key: &[u8]) -> ShardGuard<'_> {
        self.lock_shard(db, self.shard_index(key))
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & self.mask
    }

    /// When a live key expires (ms since the epoch; 0 = never), `None` if
    /// it does not exist. WATCH remembers it: a key that expires before
    /// EXEC counts as changed.
    pub fn expires_at(&self, db: usize, key: &[u8]) -> Option<u64> {
        let shard = self.shard(db, key);
        shard
            .get(key)
            .filter(|e| !e.expired(now_ms()))
            .map(|e| e.expires_at)
    }

    /// Keys in a database (expired ones not yet swept are not counted).
    pub fn dbsize(&self, db: usize) -> usize {
        let now = now_ms();
        (0..self.shard_count())
            .map(|index| {
                self.lock_shard(db, index)
                    .iter()
                    .filter(|(_, e)| !e.expired(now))
                    .count()
            })
            .sum()
    }

    /// Removes expired keys from up to `max_shards` shards of every
    /// database, starting at `cursor`; returns the next cursor and how many
    /// keys were freed.
    pub fn sweep_expired(&self, cursor: usize, max_shards: usize) -> (usize, usize) {
        let now = now_ms();
        let mut freed = 0;
        let total = self.mask + 1;
        for step in 0..max_shards.min(total) {
            let index = (cursor + step) & self.mask;
            for db in 0..self.dbs.len() {
                let mut shard = self.lock_shard(db, index);
                let before = shard.len();
                shard.retain(|_, e| !e.expired(now));
                freed += before - shard.len();
            }
        }
        ((cursor + max_shards) & self.mask, freed)
    }

    /// The commands that rebuild every database's current contents (for
    /// rewriting the append-only file), one shard locked at a time.
    pub fn snapshot(&self) -> Vec<(usize, Vec<Vec<Bytes>>)> {
        const CHUNK: usize = 512;
        let now = now_ms();
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        let mut out = Vec::new();
        for index in 0..self.dbs.len() {
            let mut commands = Vec::new();
            for shard_index in 0..self.shard_count() {
                let shard = self.lock_shard(index, shard_index);
                for (key, entry) in shard.iter().filter(|(_, e)| !e.expired(now)) {
                    let head = |cmd: &'static str| vec![b(cmd), key.clone()];
                    match &entry.value {
                        Value::Str(v) => commands.push(vec![b("SET"), key.clone(), v.clone()]),
                        Value::List(items) => {
                            let items: Vec<&Bytes> = items.iter().collect();
                            for chunk in items.chunks(CHUNK) {
                                let mut c = head("RPUSH");
                                c.extend(chunk.iter().map(|v| (*v).clone()));
                                commands.push(c);
                            }
                        }
                        Value::Hash(fields) => {
                            let pairs: Vec<(&Bytes, &Bytes)> = fields.iter().collect();
                            for chunk in pairs.chunks(CHUNK) {
                                let mut c = head("HSET");
                                for (f, v) in chunk {
                                    c.push((*f).clone());
                                    c.push((*v).clone());
                                }
                                commands.push(c);
                            }
                        }
                        Value::Set(members) => {
                            let members: Vec<&Bytes> = members.iter().collect();
                            for chunk in members.chunks(CHUNK) {
                                let mut c = head("SADD");
                                c.extend(chunk.iter().map(|m| (*m).clone()));
                                commands.push(c);
                            }
                        }
                        Value::ZSet(z) => {
                            let pairs = z.pairs();
                            for chunk in pairs.chunks(CHUNK) {
                                let mut c = head("ZADD");
                                for (score, member) in chunk {
                                    c.push(Bytes::from(super::reply::format_double_exact(*score)));
                                    c.push(member.clone());
                                }
                                commands.push(c);
                            }
                        }
                    }
                    if entry.expires_at != 0 {
                        commands.push(vec![
                            b("PEXPIREAT"),
                            key.clone(),
                            Bytes::from(entry.expires_at.to_string()),
                        ]);
                    }
                }
            }
            if !commands.is_empty() {
                out.push((index, commands));
            }
        }
        out
    }

    /// Runs one command. `args[0]` is the command name.
    pub fn execute(&self, session: &mut Session, args: &[Bytes]) -> Reply {
        let Some(name) = args.first() else {
            return Reply::error("ERR empty command");
        };
        let upper = name.to_ascii_uppercase();
        let slot = commands::position_upper(&upper).unwrap_or(self.calls.len() - 1);
        self.calls[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        session.evicted.clear();
        if self.memory.limit().is_some()
            && !session.replaying
            && !session.in_exec
            && let Err(oom) = self.make_room(session, &upper)
        {
            return oom;
        }
        // Borrowed (no allocation) unless the name is not UTF-8.
        let name_str = String::from_utf8_lossy(&upper);
        let a = &args[1..];
        match upper.as_slice() {
            b"PING" => match a.len() {
                0 => Reply::Simple("PONG"),
                1 => Reply::Bulk(a[0].clone()),
                _ => wrong_args(&name_str),
            },
            b"ECHO" if a.len() == 1 => Reply::Bulk(a[0].clone()),
            b"QUIT" => {
                session.closing = true;
                Reply::ok()
            }
            b"SELECT" if a.len() == 1 => match parse_i64(&a[0]) {
                Some(n) if n >= 0 && (n as usize) < self.dbs.len() => {
                    session.db = n as usize;
                    Reply::ok()
                }
                Some(_) => Reply::error("ERR DB index is out of range"),
                None => Reply::error(NOT_INTEGER),
            },
            b"GET" if a.len() == 1 => self.get(session.db, &a[0]),
            b"SET" if a.len() >= 2 => self.set(session.db, a),
            b"SETNX" if a.len() == 2 => {
                match self.set_with(session.db, &a[0], &a[1], SetOptions::nx()) {
                    Ok(SetOutcome::Written(_)) => Reply::Integer(1),
                    Ok(_) => Reply::Integer(0),
                    Err(e) => e,
                }
            }
            b"SETEX" | b"PSETEX" if a.len() == 3 => {
                let Some(ttl) = parse_i64(&a[1]) else {
                    return Reply::error(NOT_INTEGER);
                };
                if ttl <= 0 {
                    return Reply::error(format!(
                        "ERR invalid expire time in '{}' command",
                        name_str.to_ascii_lowercase()
                    ));
                }
                let ms = if upper.as_slice() == b"SETEX" {
                    ttl.saturating_mul(1000)
                } else {
                    ttl
                };
                let options = SetOptions {
                    expires_at: Some(now_ms().saturating_add(ms as u64)),
                    ..SetOptions::default()
                };
                match self.set_with(session.db, &a[0], &a[2], options) {
                    Ok(_) => Reply::ok(),
                    Err(e) => e,
                }
            }
            b"MGET" if !a.is_empty() => {
                Reply::Array(a.iter().map(|k| self.get(session.db, k)).collect())
            }
            b"MSET" if !a.is_empty() && a.len().is_multiple_of(2) => {
                self.mset(session.db, a);
                Reply::ok()
            }
            b"GETDEL" if a.len() == 1 => {
                let mut shard = self.shard(session.db, &a[0]);
                match shard.get(&a[0]) {
                    Some(e) if e.expired(now_ms()) => {
                        shard.remove(&a[0]);
                        Reply::Nil
                    }
                    Some(Entry {
                        value: Value::Str(v),
                        ..
                    }) => {
                        let v = v.clone();
                        shard.remove(&a[0]);
                        Reply::Bulk(v)
                    }
                    Some(_) => Reply::error(WRONGTYPE),
                    None => Reply::Nil,
                }
            }
            b"INCR" if a.len() == 1 => self.incr_by(session.db, &a[0], 1),
            b"DECR" if a.len() == 1 => self.incr_by(session.db, &a[0], -1),
            b"INCRBY" | b"DECRBY" if a.len() == 2 => match parse_i64(&a[1]) {
                Some(n) if upper.as_slice() == b"INCRBY" => self.incr_by(session.db, &a[0], n),
                Some(n) => match n.checked_neg() {
                    Some(neg) => self.incr_by(session.db, &a[0], neg),
                    None => Reply::error("ERR decrement would overflow"),
                },
                None => Reply::error(NOT_INTEGER),
            },
            b"APPEND" if a.len() == 2 => self.append(session.db, &a[0], &a[1]),
            b"STRLEN" if a.len() == 1 => match self.get(session.db, &a[0]) {
                Reply::Bulk(v) => Reply::Integer(v.len() as i64),
                Reply::Nil => Reply::Integer(0),
                other => other,
            },
            b"DEL" | b"UNLINK" if !a.is_empty() => {
                let now = now_ms();
                let removed = a
                    .iter()
                    .filter(|k| {
                        self.shard(session.db, k)
                            .remove(&k[..])
                            .is_some_and(|e| !e.expired(now))
                    })
                    .count();
                Reply::Integer(removed as i64)
            }
            b"EXISTS" if !a.is_empty() => {
                let now = now_ms();
                let found = a
                    .iter()
                    .filter(|k| {
                        self.shard(session.db, k)
                            .get(&k[..])
                            .is_some_and(|e| !e.expired(now))
                    })
                    .count();
                Reply::Integer(found as i64)
            }
            b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" if a.len() == 2 => {
                let Some(n) = parse_i64(&a[1]) else {
                    return Reply::error(NOT_INTEGER);
                };
                let now = now_ms() as i64;
                let at = match upper.as_slice() {
                    b"EXPIRE" => now.saturating_add(n.saturating_mul(1000)),
                    b"PEXPIRE" => now.saturating_add(n),
                    b"EXPIREAT" => n.saturating_mul(1000),
                    _ => n,
                };
                self.expire_at(session.db, &a[0], at)
            }
            b"TTL" | b"PTTL" if a.len() == 1 => {
                let now = now_ms();
                let shard = self.shard(session.db, &a[0]);
                match shard.get(&a[0]) {
                    Some(e) if !e.expired(now) => {
                        if e.expires_at == 0 {
                            Reply::Integer(-1)
                        } else {
                            let ms = e.expires_at - now;
                            Reply::Integer(if upper.as_slice() == b"TTL" {
                                ms.div_ceil(1000)
                            } else {
                                ms
                            } as i64)
                        }
                    }
                    _ => Reply::Integer(-2),
                }
            }
            b"PERSIST" if a.len() == 1 => {
                let now = now_ms();
                let mut shard = self.shard(session.db, &a[0]);
                match shard.get_mut(&a[0]) {
                    Some(e) if !e.expired(now) && e.expires_at != 0 => {
                        e.expires_at = 0;
                        Reply::Integer(1)
                    }
                    _ => Reply::Integer(0),
                }
            }
            b"TYPE" if a.len() == 1 => {
                let shard = self.shard(session.db, &a[0]);
                match shard.get(&a[0]) {
                    Some(e) if !e.expired(now_ms()) => Reply::Simple(e.value.type_name()),
                    _ => Reply::Simple("none"),
                }
            }
            b"DBSIZE" if a.is_empty() => Reply::Integer(self.dbsize(session.db) as i64),
            b"KEYS" if a.len() == 1 => {
                let keys = self.keys_matching(session.db, 0..=self.mask, Some(&a[0]), None);
                Reply::Array(keys.into_iter().map(Reply::Bulk).collect())
            }
            b"SCAN" if !a.is_empty() => self.scan(session.db, a),
            b"FLUSHDB" => {
                for index in 0..self.shard_count() {
                    self.lock_shard(session.db, index).clear();
                }
                Reply::ok()
            }
            b"FLUSHALL" => {
                for db in 0..self.dbs.len() {
                    for index in 0..self.shard_count() {
                        self.lock_shard(db, index).clear();
                    }
                }
                Reply::ok()
            }
            b"TIME" if a.is_empty() => {
                let micros = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_micros())
                    .unwrap_or(0);
                Reply::Array(vec![
                    Reply::bulk((micros / 1_000_000).to_string()),
                    Reply::bulk((micros % 1_000_000).to_string()),
                ])
            }
            b"HELLO" => self.hello(session, a),
            b"INFO" => Reply::Bulk(Bytes::from(
                self.info(a.first().map(|s| s.to_ascii_lowercase())),
            )),
            b"CLIENT" if !a.is_empty() => self.client(session, args),
            b"CONFIG" if !a.is_empty() => self.config(a),
            b"COMMAND" => commands::command(a),
            _ if let Some(reply) = self.execute_collection(session, &upper, a) => reply,
            _ if let Some(reply) = self.execute_strings(session.db, &upper, &name_str, a) => reply,
            _ if commands::known(&upper) => wrong_args(&name_str),
            _ => {
                let mut preview = String::new();
                for arg in a.iter().take(3) {
                    preview.push_str(&format!("'{}' ", String::from_utf8_lossy(arg)));
                }
                Reply::error(format!(
                    "ERR unknown command '{}', with args beginning with: {preview}",
                    String::from_utf8_lossy(name)
                ))
            }
        }
    }

    /// What MULTI checks before queueing a command, as Redis does (it then
    /// refuses the whole EXEC): an unknown name, a wrong number of
    /// arguments, or a command that may grow memory while a noeviction
    /// maxmemory is exceeded. `None` when it may be queued.
    pub fn check_queued(&self, args: &[Bytes]) -> Option<Reply> {
        let name = args.first()?;
        let upper = name.to_ascii_uppercase();
        let Some(arity) = commands::arity(&upper) else {
            let mut preview = String::new();
            for arg in args.iter().skip(1).take(3) {
                preview.push_str(&format!("'{}' ", String::from_utf8_lossy(arg)));
            }
            return Some(Reply::error(format!(
                "ERR unknown command '{}', with args beginning with: {preview}",
                String::from_utf8_lossy(name)
            )));
        };
        let given = args.len() as i64;
        if (arity >= 0 && given != arity) || (arity < 0 && given < -arity) {
            return Some(wrong_args(&String::from_utf8_lossy(&upper)));
        }
        self.memory_refuses(&upper)
    }

    fn keys_matching(
        &self,
        db: usize,
        shards: std::ops::RangeInclusive<usize>,
        pattern: Option<&[u8]>,
        type_name: Option<&[u8]>,
    ) -> Vec<Bytes> {
        let now = now_ms();
        let mut keys = Vec::new();
        for index in shards {
            let shard = self.lock_shard(db, index);
            keys.extend(
                shard
                    .iter()
                    .filter(|(k, e)| {
                        !e.expired(now)
                            && pattern.is_none_or(|p| super::glob::matches(p, k))
                            && type_name.is_none_or(|t| {
                                t.eq_ignore_ascii_case(e.value.type_name().as_bytes())
                            })
                    })
                    .map(|(k, _)| k.clone()),
            );
        }
        keys
    }

    /// SCAN's cursor walks the shards: each call returns whole shards (at
    /// least COUNT keys' worth when there are that many), so every key
    /// present for the whole scan is returned at least once.
    fn scan(&self, db: usize, a: &[Bytes]) -> Reply {
        let Some(cursor) = parse_i64(&a[0]).filter(|c| *c >= 0) else {
            return Reply::error("ERR invalid cursor");
        };
        let mut pattern = None;
        let mut count = 10usize;
        let mut type_name = None;
        let mut i = 1;
        while i < a.len() {
            if i + 1 >= a.len() {
                return Reply::error(SYNTAX);
            }
            if eq(&a[i], "MATCH") {
                pattern = Some(a[i + 1].clone());
            } else if eq(&a[i], "COUNT") {
                match parse_i64(&a[i + 1]) {
                    Some(n) if n >= 1 => count = n as usize,
                    Some(_) => return Reply::error(SYNTAX),
                    None => return Reply::error(NOT_INTEGER),
                }
            } else if eq(&a[i], "TYPE") {
                type_name = Some(a[i + 1].clone());
            } else {
                return Reply::error(SYNTAX);
            }
            i += 2;
        }
        let total = self.mask + 1;
        let mut shard = cursor as usize;
        let mut keys = Vec::new();
        let mut visited = 0usize;
        while shard < total && (visited == 0 || keys.len() < count) {
            keys.extend(self.keys_matching(
                db,
                shard..=shard,
                pattern.as_deref(),
                type_name.as_deref(),
            ));
            shard += 1;
            visited += 1;
        }
        let next = if shard >= total { 0 } else { shard };
        Reply::Array(vec![
            Reply::bulk(next.to_string()),
            Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
        ])
    }

    fn get(&self, db: usize, key: &[u8]) -> Reply {
        let mut shard = self.shard(db, key);
        match shard.get(key) {
            Some(e) if e.expired(now_ms()) => {
                shard.remove(key);
                Reply::Nil
            }
            Some(Entry {
                value: Value::Str(v),
                ..
            }) => Reply::Bulk(v.clone()),
            Some(_) => Reply::error(WRONGTYPE),
            None => Reply::Nil,
        }
    }

    fn set(&self, db: usize, a: &[Bytes]) -> Reply {
        let mut options = SetOptions::default();
        let mut i = 2;
        let now = now_ms() as i64;
        let mut expiry_given = false;
        while i < a.len() {
            let word = &a[i];
            let takes_value = ["EX", "PX", "EXAT", "PXAT"].iter().any(|w| eq(word, w));
            if takes_value {
                if expiry_given || options.keep_ttl || i + 1 >= a.len() {
                    return Reply::error(SYNTAX);
                }
                let Some(n) = parse_i64(&a[i + 1]) else {
                    return Reply::error(NOT_INTEGER);
                };
                if n <= 0 {
                    return Reply::error("ERR invalid expire time in 'set' command");
                }
                let at = if eq(word, "EX") {
                    now.saturating_add(n.saturating_mul(1000))
                } else if eq(word, "PX") {
                    now.saturating_add(n)
                } else if eq(word, "EXAT") {
                    n.saturating_mul(1000)
                } else {
                    n
                };
                options.expires_at = Some(at.max(1) as u64);
                expiry_given = true;
                i += 2;
                continue;
            }
            if eq(word, "NX") && !options.xx {
                options.nx = true;
            } else if eq(word, "XX") && !options.nx {
                options.xx = true;
            } else if eq(word, "KEEPTTL") && !expiry_given {
                options.keep_ttl = true;
            } else if eq(word, "GET") {
                options.get = true;
            } else {
                return Reply::error(SYNTAX);
            }
            i += 1;
        }
        let get = options.get;
        match self.set_with(db, &a[0], &a[1], options) {
            Ok(SetOutcome::Written(old)) if get => old.map_or(Reply::Nil, Reply::Bulk),
            Ok(SetOutcome::Skipped(old)) if get => old.map_or(Reply::Nil, Reply::Bulk),
            Ok(SetOutcome::Written(_)) => Reply::ok(),
            Ok(SetOutcome::Skipped(_)) => Reply::Nil,
            Err(e) => e,
        }
    }

    fn set_with(
        &self,
        db: usize,
        key: &Bytes,
        value: &Bytes,
        options: SetOptions,
    ) -> Result<SetOutcome, Reply> {
        let now = now_ms();
        let mut shard = self.shard(db, key);
        let current = shard.get(key).filter(|e| !e.expired(now));
        let old = current.and_then(|e| match &e.value {
            Value::Str(v) => Some(v.clone()),
            _ => None,
        });
        if options.get && current.is_some() && old.is_none() {
            return Err(Reply::error(WRONGTYPE));
        }
        let exists = current.is_some();
        if (options.nx && exists) || (options.xx && !exists) {
            return Ok(SetOutcome::Skipped(old));
        }
        let expires_at = match (options.expires_at, options.keep_ttl) {
            (Some(at), _) => at,
            (None, true) => current.map_or(0, |e| e.expires_at),
            (None, false) => 0,
        };
        shard.insert(
            key.clone(),
            Entry::new(Value::Str(value.clone()), expires_at),
        );
        Ok(SetOutcome::Written(old))
    }

    /// MSET is atomic: every involved shard is locked (in index order).
    fn mset(&self, db: usize, a: &[Bytes]) {
        let mut indices: Vec<usize> = a.chunks(2).map(|pair| self.shard_index(&pair[0])).collect();
        indices.sort_unstable();
        indices.dedup();
        let mut guards: HashMap<usize, ShardGuard<'_>> = indices
            .iter()
            .map(|&i| (i, self.lock_shard(db, i)))
            .collect();
        for pair in a.chunks(2) {
            if let Some(shard) = guards.get_mut(&self.shard_index(&pair[0])) {
                shard.insert(pair[0].clone(), Entry::new(Value::Str(pair[1].clone()), 0));
            }
        }
    }

    fn incr_by(&self, db: usize, key: &Bytes, by: i64) -> Reply {
        let now = now_ms();
        let mut shard = self.shard(db, key);
        let (current, expires_at) = match shard.get(key).filter(|e| !e.expired(now)) {
            None => (0, 0),
            Some(Entry {
                value: Value::Str(v),
                expires_at,
                ..
            }) => match parse_i64(v) {
                Some(n)
                    if v.len() <= 20
                        && !v.starts_with(b"+")
                        && !(v.len() > 1 && v.starts_with(b"0")) =>
                {
                    (n, *expires_at)
                }
                _ => return Reply::error(NOT_INTEGER),
            },
            Some(_) => return Reply::error(WRONGTYPE),
        };
        let Some(next) = current.checked_add(by) else {
            return Reply::error("ERR increment or decrement would overflow");
        };
        shard.insert(
            key.clone(),
            Entry::new(Value::Str(Bytes::from(next.to_string())), expires_at),
        );
        Reply::Integer(next)
    }

    fn append(&self, db: usize, key: &Bytes, suffix: &Bytes) -> Reply {
        let now = now_ms();
        let mut shard = self.shard(db, key);
        let (mut value, expires_at) = match shard.get(key).filter(|e| !e.expired(now)) {
            None => (Vec::new(), 0),
            Some(Entry {
                value: Value::Str(v),
                expires_at,
                ..
            }) => (v.to_vec(), *expires_at),
            Some(_) => return Reply::error(WRONGTYPE),
        };
        value.extend_from_slice(suffix);
        let len = value.len();
        shard.insert(
            key.clone(),
            Entry::new(Value::Str(Bytes::from(value)), expires_at),
        );
        Reply::Integer(len as i64)
    }

    fn expire_at(&self, db: usize, key: &Bytes, at_ms: i64) -> Reply {
        let now = now_ms();
        let mut shard = self.shard(db, key);
        match shard.get_mut(key) {
            Some(e) if !e.expired(now) => {
                if at_ms <= now as i64 {
                    shard.remove(key);
                } else {
                    e.expires_at = at_ms as u64;
                }
                Reply::Integer(1)
            }
            _ => Reply::Integer(0),
        }
    }

    /// INFO: the sections clients and tools read (server, clients, memory,
    /// stats, keyspace), in Redis's `field:value` text format.
    fn info(&self, section: Option<Vec<u8>>) -> String {
        use std::fmt::Write;
        let wants = |name: &str| {
            section.as_deref().is_none_or(|s| {
                s == b"all" || s == b"everything" || s == b"default" || s == name.as_bytes()
            })
        };
        let mut out = String::new();
        if wants("server") {
            let _ = write!(
                out,
                "# Server\r\nredis_version:7.0.0\r\nbunder_version:{}\r\nredis_mode:standalone\r\nuptime_in_seconds:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                self.started.elapsed().as_secs()
            );
        }
        if wants("clients") {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nblocked_clients:{}\r\n\r\n",
                self.clients.load(std::sync::atomic::Ordering::Relaxed),
                self.blocked_clients()
            );
        }
        if wants("memory") {
            let stats = self.memory_stats();
            let max = stats.max.unwrap_or(0);
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n\r\n",
                stats.used,
                memory::human(stats.used),
                memory::human(max),
                stats.policy,
            );
        }
        if wants("stats") {
            let _ = write!(
                out,
                "# Stats\r\ntotal_commands_processed:{}\r\nevicted_keys:{}\r\n\r\n",
                self.total_calls(),
                self.evicted_keys()
            );
        }
        if wants("keyspace") {
            out.push_str("# Keyspace\r\n");
            let now = now_ms();
            for db in 0..self.dbs.len() {
                let (mut keys, mut expires) = (0usize, 0usize);
                for index in 0..self.shard_count() {
                    let shard = self.lock_shard(db, index);
                    for (_, entry) in shard.iter().filter(|(_, e)| !e.expired(now)) {
                        keys += 1;
                        expires += usize::from(entry.expires_at != 0);
                    }
                }
                if keys > 0 {
                    let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
                }
            }
        }
        out
    }

    fn hello(&self, session: &mut Session, a: &[Bytes]) -> Reply {
        if let Some(version) = a.first() {
            match parse_i64(version) {
                Some(2) => session.resp3 = false,
                Some(3) => session.resp3 = true,
                Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
                None => {
                    return Reply::error("ERR Protocol version is not an integer or out of range");
                }
            }
        }
        let mut i = 1;
        while i < a.len() {
            if eq(&a[i], "SETNAME") && i + 1 < a.len() {
                if !valid_name(&a[i + 1]) {
                    return Reply::error(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                }
                session.name = Some(a[i + 1].clone());
                i += 2;
            } else if eq(&a[i], "AUTH") && i + 2 < a.len() {
                i += 3; // authentication is checked by the server layer
            } else {
                return Reply::error(SYNTAX);
            }
        }
        Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("bunder")),
            (
                Reply::bulk("version"),
                Reply::bulk(env!("CARGO_PKG_VERSION")),
            ),
            (
                Reply::bulk("proto"),
                Reply::Integer(if session.resp3 { 3 } else { 2 }),
            ),
            (Reply::bulk("id"), Reply::Integer(session.id as i64)),
            (Reply::bulk("mode"), Reply::bulk("standalone")),
            (Reply::bulk("role"), Reply::bulk("master")),
            (Reply::bulk("modules"), Reply::Array(Vec::new())),
        ])
    }

    /// CLIENT …; `args` is the whole command (CLIENT LIST/INFO show it).
    fn client(&self, session: &mut Session, args: &[Bytes]) -> Reply {
        let a = &args[1..];
        let sub = &a[0];
        let arity = |n: usize, name: &str| {
            (a.len() != n).then(|| {
                Reply::error(format!(
                    "ERR wrong number of arguments for 'client|{name}' command"
                ))
            })
        };
        if eq(sub, "SETNAME") {
            if let Some(e) = arity(2, "setname") {
                return e;
            }
            if !valid_name(&a[1]) {
                return Reply::error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            session.name = (!a[1].is_empty()).then(|| a[1].clone());
            Reply::ok()
        } else if eq(sub, "GETNAME") {
            arity(1, "getname")
                .unwrap_or_else(|| session.name.clone().map_or(Reply::Nil, Reply::Bulk))
        } else if eq(sub, "ID") {
            arity(1, "id").unwrap_or(Reply::Integer(session.id as i64))
        } else if eq(sub, "INFO") {
            arity(1, "info").unwrap_or_else(|| self.client_info(session, args))
        } else if eq(sub, "LIST") {
            self.client_list(session, args, &a[1..])
        } else if eq(sub, "SETINFO") {
            arity(3, "setinfo").unwrap_or_else(|| client_setinfo(session, &a[1], &a[2]))
        } else {
            Reply::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(sub)
            ))
        }
    }

    fn config(&self, a: &[Bytes]) -> Reply {
        if eq(&a[0], "GET") && a.len() >= 2 {
            let params = [
                ("save", String::new()),
                ("appendonly", "no".to_string()),
                ("databases", self.dbs.len().to_string()),
                ("maxmemory", self.memory.limit().unwrap_or(0).to_string()),
                ("maxmemory-policy", self.memory.policy().name().to_string()),
            ];
            let mut pairs = Vec::new();
            for pattern in &a[1..] {
                for (name, value) in &params {
                    if super::glob::matches(pattern, name.as_bytes()) {
                        pairs.push(Reply::bulk(*name));
                        pairs.push(Reply::bulk(value.clone()));
                    }
                }
            }
            Reply::Array(pairs)
        } else if eq(&a[0], "GET") {
            Reply::error("ERR wrong number of arguments for 'config|get' command")
        } else if eq(&a[0], "SET") {
            self.config_set(&a[1..])
        } else {
            Reply::error(format!(
                "ERR unknown subcommand '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(&a[0])
            ))
        }
    }

    /// CONFIG SET name value […]: all checked before any applies. Settings
    /// we do not have are accepted and ignored.
    fn config_set(&self, pairs: &[Bytes]) -> Reply {
        if pairs.is_empty() {
            return Reply::error("ERR wrong number of arguments for 'config|set' command");
        }
        if !pairs.len().is_multiple_of(2) {
            return Reply::error(SYNTAX);
        }
        let failed = |name: &[u8], why: &str| {
            Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                String::from_utf8_lossy(name)
            ))
        };
        let (mut limit, mut policy) = (None, None);
        for (i, pair) in pairs.chunks(2).enumerate() {
            let (name, value) = (&pair[0], &pair[1]);
            if pairs[..i * 2]
                .iter()
                .step_by(2)
                .any(|n| n.eq_ignore_ascii_case(name))
            {
                return failed(name, "duplicate parameter");
            }
            if eq(name, "maxmemory") {
                match memory::parse_redis_size(value) {
                    Some(n) => limit = Some(n),
                    None => return failed(name, "argument must be a memory value"),
                }
            } else if eq(name, "maxmemory-policy") {
                match std::str::from_utf8(value).ok().map(EvictionPolicy::parse) {
                    Some(Ok(p)) => policy = Some(p),
                    _ => {
                        return failed(
                            name,
                            "argument(s) must be one of the following: volatile-lru, allkeys-lru, noeviction",
                        );
                    }
                }
            }
        }
        if let Some(p) = policy {
            self.set_eviction_policy(p);
        }
        if let Some(n) = limit {
            self.set_max_memory((n > 0).then_some(n));
        }
        Reply::ok()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    expires_at: Option<u64>,
}

impl SetOptions {
    fn nx() -> SetOptions {
        SetOptions {
            nx: true,
            ..SetOptions::default()
        }
    }
}

enum SetOutcome {
    Written(Option<Bytes>),
    Skipped(Option<Bytes>),
}

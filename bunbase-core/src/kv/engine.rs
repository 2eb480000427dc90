//! The keyspace and command execution.
//!
//! Each database is split into shards, each behind its own lock, so
//! commands on different keys run in parallel on both cores. Expired keys
//! are removed when touched (lazily) and by [`Engine::sweep_expired`],
//! which the server calls periodically so memory is freed without traffic.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::reply::Reply;

#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    pub databases: usize,
    /// Locks per database (a power of two).
    pub shards: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            databases: 16,
            shards: 64,
        }
    }
}

/// A stored value.
#[derive(Debug, Clone)]
pub enum Value {
    Str(Bytes),
    List(std::collections::VecDeque<Bytes>),
    // Boxed, so every entry stays the size of a string value.
    Hash(Box<HashMap<Bytes, Bytes>>),
    Set(Box<std::collections::HashSet<Bytes>>),
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
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) value: Value,
    /// Milliseconds since the epoch; 0 = no expiry.
    pub(super) expires_at: u64,
}

impl Entry {
    pub(super) fn expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }
}

pub(super) type Shard = HashMap<Bytes, Entry>;

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
}

impl Session {
    pub fn new(id: u64) -> Session {
        Session {
            db: 0,
            resp3: false,
            name: None,
            id,
            closing: false,
        }
    }
}

pub struct Engine {
    dbs: Vec<Db>,
    hasher: RandomState,
    mask: usize,
    started: std::time::Instant,
    /// Connected clients, kept by the server (for INFO).
    pub clients: std::sync::atomic::AtomicU64,
    /// Commands executed (for INFO).
    commands: std::sync::atomic::AtomicU64,
}

pub(super) fn now_ms() -> u64 {
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

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        let shards = config.shards.max(1).next_power_of_two();
        Engine {
            dbs: (0..config.databases.max(1))
                .map(|_| Db {
                    shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
                })
                .collect(),
            hasher: RandomState::new(),
            mask: shards - 1,
            started: std::time::Instant::now(),
            clients: std::sync::atomic::AtomicU64::new(0),
            commands: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(super) fn shard_count(&self) -> usize {
        self.mask + 1
    }

    /// Some live key of one shard (for RANDOMKEY).
    pub(super) fn first_live_key(&self, db: usize, shard: usize, now: u64) -> Option<Bytes> {
        let shard = self.dbs[db].shards[shard]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard
            .iter()
            .find(|(_, e)| !e.expired(now))
            .map(|(k, _)| k.clone())
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    pub(super) fn shard(&self, db: usize, key: &[u8]) -> std::sync::MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key) as usize) & self.mask;
        self.dbs[db].shards[index]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & self.mask
    }

    /// Keys in a database (expired ones not yet swept are not counted).
    pub fn dbsize(&self, db: usize) -> usize {
        let now = now_ms();
        self.dbs[db]
            .shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .filter(|e| !e.expired(now))
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
            for db in &self.dbs {
                let mut shard = db.shards[index].lock().unwrap_or_else(|e| e.into_inner());
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
        for (index, db) in self.dbs.iter().enumerate() {
            let mut commands = Vec::new();
            for shard in &db.shards {
                let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
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
        self.commands
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let upper = name.to_ascii_uppercase();
        let name_str = String::from_utf8_lossy(&upper).into_owned();
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
                for shard in &self.dbs[session.db].shards {
                    shard.lock().unwrap_or_else(|e| e.into_inner()).clear();
                }
                Reply::ok()
            }
            b"FLUSHALL" => {
                for db in &self.dbs {
                    for shard in &db.shards {
                        shard.lock().unwrap_or_else(|e| e.into_inner()).clear();
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
            b"CLIENT" if !a.is_empty() => self.client(session, a),
            b"CONFIG" if !a.is_empty() => self.config(a),
            b"COMMAND" => match a.first() {
                Some(sub) if eq(sub, "COUNT") => Reply::Integer(COMMANDS.len() as i64),
                // Clients ask for DOCS/INFO to learn commands; an empty
                // answer makes them fall back to sending commands as-is.
                _ => Reply::Array(Vec::new()),
            },
            _ if let Some(reply) = self.execute_collection(session.db, &upper, &name_str, a) => {
                reply
            }
            _ if let Some(reply) = self.execute_strings(session.db, &upper, &name_str, a) => reply,
            _ if COMMANDS.contains(&name_str.as_str()) => wrong_args(&name_str),
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
            let shard = self.dbs[db].shards[index]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
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
            Entry {
                value: Value::Str(value.clone()),
                expires_at,
            },
        );
        Ok(SetOutcome::Written(old))
    }

    /// MSET is atomic: every involved shard is locked (in index order).
    fn mset(&self, db: usize, a: &[Bytes]) {
        let mut indices: Vec<usize> = a.chunks(2).map(|pair| self.shard_index(&pair[0])).collect();
        indices.sort_unstable();
        indices.dedup();
        let mut guards: HashMap<usize, std::sync::MutexGuard<'_, Shard>> = indices
            .iter()
            .map(|&i| {
                (
                    i,
                    self.dbs[db].shards[i]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()),
                )
            })
            .collect();
        for pair in a.chunks(2) {
            if let Some(shard) = guards.get_mut(&self.shard_index(&pair[0])) {
                shard.insert(
                    pair[0].clone(),
                    Entry {
                        value: Value::Str(pair[1].clone()),
                        expires_at: 0,
                    },
                );
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
            Entry {
                value: Value::Str(Bytes::from(next.to_string())),
                expires_at,
            },
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
            }) => (v.to_vec(), *expires_at),
            Some(_) => return Reply::error(WRONGTYPE),
        };
        value.extend_from_slice(suffix);
        let len = value.len();
        shard.insert(
            key.clone(),
            Entry {
                value: Value::Str(Bytes::from(value)),
                expires_at,
            },
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

    /// INFO: the sections clients and tools read (server, clients, stats,
    /// keyspace), in Redis's `field:value` text format.
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
                "# Clients\r\nconnected_clients:{}\r\n\r\n",
                self.clients.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        if wants("stats") {
            let _ = write!(
                out,
                "# Stats\r\ntotal_commands_processed:{}\r\n\r\n",
                self.commands.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        if wants("keyspace") {
            out.push_str("# Keyspace\r\n");
            let now = now_ms();
            for (index, db) in self.dbs.iter().enumerate() {
                let (mut keys, mut expires) = (0usize, 0usize);
                for shard in &db.shards {
                    let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                    for entry in shard.values().filter(|e| !e.expired(now)) {
                        keys += 1;
                        expires += usize::from(entry.expires_at != 0);
                    }
                }
                if keys > 0 {
                    let _ = write!(out, "db{index}:keys={keys},expires={expires},avg_ttl=0\r\n");
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

    fn client(&self, session: &mut Session, a: &[Bytes]) -> Reply {
        let sub = &a[0];
        if eq(sub, "SETNAME") && a.len() == 2 {
            if a[1].iter().any(|b| *b == b' ' || *b == b'\n') {
                return Reply::error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            session.name = (!a[1].is_empty()).then(|| a[1].clone());
            Reply::ok()
        } else if eq(sub, "GETNAME") && a.len() == 1 {
            session.name.clone().map_or(Reply::Nil, Reply::Bulk)
        } else if eq(sub, "ID") && a.len() == 1 {
            Reply::Integer(session.id as i64)
        } else if eq(sub, "SETINFO") {
            Reply::ok()
        } else {
            Reply::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(sub)
            ))
        }
    }

    fn config(&self, a: &[Bytes]) -> Reply {
        if eq(&a[0], "GET") && a.len() >= 2 {
            let mut pairs = Vec::new();
            for pattern in &a[1..] {
                for (name, value) in [("save", ""), ("appendonly", "no"), ("databases", "16")] {
                    if super::glob::matches(pattern, name.as_bytes()) {
                        pairs.push(Reply::bulk(name));
                        pairs.push(Reply::bulk(value));
                    }
                }
            }
            Reply::Array(pairs)
        } else if eq(&a[0], "SET") {
            Reply::ok()
        } else {
            Reply::error(format!(
                "ERR unknown subcommand '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(&a[0])
            ))
        }
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

/// Commands this engine knows (for COMMAND COUNT and arity errors).
const COMMANDS: &[&str] = &[
    "PING",
    "ECHO",
    "QUIT",
    "SELECT",
    "GET",
    "SET",
    "SETNX",
    "SETEX",
    "PSETEX",
    "MGET",
    "MSET",
    "GETDEL",
    "INCR",
    "DECR",
    "INCRBY",
    "DECRBY",
    "APPEND",
    "STRLEN",
    "DEL",
    "UNLINK",
    "EXISTS",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "TTL",
    "PTTL",
    "PERSIST",
    "TYPE",
    "DBSIZE",
    "FLUSHDB",
    "FLUSHALL",
    "TIME",
    "HELLO",
    "CLIENT",
    "CONFIG",
    "COMMAND",
];

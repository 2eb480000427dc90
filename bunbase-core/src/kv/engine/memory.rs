//! maxmemory: an estimate of the bytes the keyspace holds, and eviction.
//!
//! Each shard keeps the estimated size of its entries, updated under its
//! own lock (an addition per write). The engine-wide total is an atomic
//! the shards report into when their lock is released: at once while a
//! limit is set, in batches otherwise, so with no limit writes on
//! different shards never touch a shared cache line.
//!
//! Sizes are estimates: payload bytes plus a fixed overhead per entry and
//! per collection item (Redis's own figure is its allocator's, which we
//! do not have). Eviction follows Redis's approximation of LRU: sample a
//! few keys, evict the one touched longest ago.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;

use super::{Engine, Session, Shard, now_ms};
use crate::error::Error;
use crate::kv::reply::Reply;

/// What a write does once memory is over `maxmemory` (Redis's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// Refuse commands that may grow memory (`-OOM …`).
    #[default]
    NoEviction,
    /// Evict the least recently used keys, any of them.
    AllKeysLru,
    /// Evict the least recently used keys that have an expiry.
    VolatileLru,
}

impl EvictionPolicy {
    const ALL: [EvictionPolicy; 3] = [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::NoEviction,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::VolatileLru => "volatile-lru",
        }
    }

    /// Parses a policy name (case-insensitive, as CONFIG SET takes it).
    pub fn parse(raw: &str) -> Result<EvictionPolicy, Error> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "maxmemory-policy must be one of noeviction, allkeys-lru, volatile-lru, not {raw:?}"
                ))
            })
    }

    fn from_u8(raw: u8) -> EvictionPolicy {
        match raw {
            1 => EvictionPolicy::AllKeysLru,
            2 => EvictionPolicy::VolatileLru,
            _ => EvictionPolicy::NoEviction,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            EvictionPolicy::NoEviction => 0,
            EvictionPolicy::AllKeysLru => 1,
            EvictionPolicy::VolatileLru => 2,
        }
    }
}

impl std::str::FromStr for EvictionPolicy {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self, Error> {
        EvictionPolicy::parse(raw)
    }
}

impl std::fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Memory figures, for INFO and a metrics exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStats {
    /// Estimated bytes held by keys and values.
    pub used: usize,
    pub max: Option<usize>,
    pub policy: EvictionPolicy,
    /// Keys evicted since start.
    pub evicted_keys: u64,
}

/// Estimated bytes of one entry beyond its key and payload: the hash
/// table slot (key handle and entry, 88 bytes, at the table's load
/// factor) and the buffers behind the handles. Measured: a million small
/// strings take ~230 MB of RSS; this puts their estimate at ~80% of that.
pub(super) const ENTRY_OVERHEAD: usize = 160;
/// A collection's own box and table headers.
pub(super) const COLLECTION_OVERHEAD: usize = 64;
/// Per item: its handle and allocation (a sorted-set member is stored
/// twice, with its score).
pub(super) const LIST_ITEM: usize = 48;
pub(super) const HASH_ITEM: usize = 96;
pub(super) const SET_ITEM: usize = 56;
pub(super) const ZSET_ITEM: usize = 112;

/// Without a limit, a shard reports its size change once it is this big.
const REPORT_BATCH: usize = 64 * 1024;
/// Keys compared per eviction (Redis's `maxmemory-samples` default).
const SAMPLES: usize = 5;
/// How far into a shard a sample may start (bounds the walk).
const SAMPLE_WINDOW: usize = 256;

pub(super) const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

pub(super) struct Memory {
    /// Bytes; 0 = no limit.
    limit: AtomicUsize,
    policy: AtomicU8,
    /// Sum of what the shards reported (see [`Memory::report`]).
    used: AtomicUsize,
    /// The same, per database (eviction picks a database by its share).
    per_db: Vec<AtomicUsize>,
    evicted: AtomicU64,
    epoch: Instant,
}

impl Memory {
    pub(super) fn new(limit: Option<usize>, policy: EvictionPolicy, databases: usize) -> Memory {
        Memory {
            limit: AtomicUsize::new(limit.unwrap_or(0)),
            policy: AtomicU8::new(policy.as_u8()),
            used: AtomicUsize::new(0),
            per_db: (0..databases).map(|_| AtomicUsize::new(0)).collect(),
            evicted: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(super) fn limit(&self) -> Option<usize> {
        match self.limit.load(Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    pub(super) fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_u8(self.policy.load(Relaxed))
    }

    /// The access time to stamp on touched entries: 0 (not tracked) unless
    /// an LRU policy is in force. Ticks of 100 ms since start.
    pub(super) fn clock(&self) -> u32 {
        if self.limit.load(Relaxed) == 0 || self.policy() == EvictionPolicy::NoEviction {
            return 0;
        }
        let ticks = self.epoch.elapsed().as_millis() / 100;
        u32::try_from(ticks).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// Moves a shard's size change into the engine-wide total (called as
    /// its lock is released).
    pub(super) fn report(&self, shard: &mut Shard) {
        if shard.used == shard.reported {
            return;
        }
        let grew = shard.used > shard.reported;
        let delta = shard.used.abs_diff(shard.reported);
        if delta < REPORT_BATCH && self.limit.load(Relaxed) == 0 {
            return;
        }
        for total in [&self.used, &self.per_db[shard.db]] {
            if grew {
                total.fetch_add(delta, Relaxed);
            } else {
                total.fetch_sub(delta, Relaxed);
            }
        }
        shard.reported = shard.used;
    }

    /// A database chosen with probability in proportion to its size.
    fn pick_db(&self, rng: &mut impl Rng) -> Option<usize> {
        let sizes: Vec<usize> = self.per_db.iter().map(|u| u.load(Relaxed)).collect();
        let total: usize = sizes.iter().sum();
        if total == 0 {
            return None;
        }
        let mut point = rng.random_range(0..total);
        sizes.iter().position(|size| {
            if point < *size {
                return true;
            }
            point -= size;
            false
        })
    }
}

/// Eviction candidates seen so far, and the least recently used of them.
#[derive(Default)]
struct Sample {
    taken: usize,
    /// (access time, db, shard, key)
    best: Option<(u32, usize, usize, Bytes)>,
}

impl Sample {
    fn full(&self) -> bool {
        self.taken >= SAMPLES
    }

    /// Offers up to `max` keys of one shard (with an expiry only, if
    /// `volatile`), from a random place in it.
    fn take(
        &mut self,
        shard: &Shard,
        index: usize,
        volatile: bool,
        max: usize,
        rng: &mut impl Rng,
    ) {
        if shard.is_empty() {
            return;
        }
        let offset = rng.random_range(0..shard.len().min(SAMPLE_WINDOW));
        let candidates = shard
            .iter()
            .skip(offset)
            .chain(shard.iter().take(offset))
            .filter(|(_, e)| !volatile || e.expires_at != 0)
            .take(max.min(SAMPLES - self.taken));
        for (key, entry) in candidates {
            self.taken += 1;
            let access = entry.access.get();
            if self.best.as_ref().is_none_or(|b| access < b.0) {
                self.best = Some((access, shard.db, index, key.clone()));
            }
        }
    }
}

impl Engine {
    /// Estimated bytes held now (every shard's exact figure, so it locks
    /// them all: for INFO and metrics, not per command).
    pub fn used_memory(&self) -> usize {
        let mut used = 0;
        for db in 0..self.dbs.len() {
            for index in 0..self.shard_count() {
                used += self.lock_shard(db, index).used;
            }
        }
        used
    }

    /// Keys evicted since start.
    pub fn evicted_keys(&self) -> u64 {
        self.memory.evicted.load(Relaxed)
    }

    pub fn memory_stats(&self) -> MemoryStats {
        MemoryStats {
            used: self.used_memory(),
            max: self.memory.limit(),
            policy: self.memory.policy(),
            evicted_keys: self.evicted_keys(),
        }
    }

    /// Sets (or with `None` lifts) the limit; takes effect at the next command.
    pub fn set_max_memory(&self, limit: Option<usize>) {
        self.memory.limit.store(limit.unwrap_or(0), Relaxed);
        if limit.is_some() {
            // Shards hold back small changes while there is no limit:
            // bring the total up to date (each lock reports as it drops).
            for db in 0..self.dbs.len() {
                for index in 0..self.shard_count() {
                    drop(self.lock_shard(db, index));
                }
            }
        }
    }

    pub fn set_eviction_policy(&self, policy: EvictionPolicy) {
        self.memory.policy.store(policy.as_u8(), Relaxed);
    }

    /// Runs before each command while a limit is set: over it, evict (LRU
    /// policies), then refuse the command if it may grow memory and the
    /// limit is still exceeded. Evicted keys go to `session.evicted`.
    /// The OOM error a growing command would get now under noeviction
    /// (the evicting policies make room when the command runs instead).
    pub(super) fn memory_refuses(&self, command: &[u8]) -> Option<Reply> {
        let limit = self.memory.limit()?;
        (self.memory.policy() == EvictionPolicy::NoEviction
            && self.memory.used.load(Relaxed) > limit
            && super::commands::denies_oom(command))
        .then(|| Reply::error(OOM))
    }

    pub(super) fn make_room(&self, session: &mut Session, command: &[u8]) -> Result<(), Reply> {
        let Some(limit) = self.memory.limit() else {
            return Ok(());
        };
        if self.memory.used.load(Relaxed) <= limit {
            return Ok(());
        }
        let policy = self.memory.policy();
        if policy != EvictionPolicy::NoEviction {
            let volatile = policy == EvictionPolicy::VolatileLru;
            while self.memory.used.load(Relaxed) > limit {
                let Some((db, key, live)) = self.evict_one(volatile) else {
                    break;
                };
                if live {
                    self.memory.evicted.fetch_add(1, Relaxed);
                    session.evicted.push((db, key));
                }
            }
        }
        if self.memory.used.load(Relaxed) > limit && super::commands::denies_oom(command) {
            return Err(Reply::error(OOM));
        }
        Ok(())
    }

    /// Removes the least recently used of a few sampled keys (only keys
    /// with an expiry if `volatile`): (db, key, whether it was still live).
    /// `None` when there is nothing to evict.
    fn evict_one(&self, volatile: bool) -> Option<(usize, Bytes, bool)> {
        let mut rng = rand::rng();
        let shards = self.shard_count();
        let mut sample = Sample::default();
        // One key from each of a few random shards of a database picked by
        // its size, so every key has a chance.
        if let Some(db) = self.memory.pick_db(&mut rng) {
            for _ in 0..shards {
                if sample.full() {
                    break;
                }
                let index = rng.random_range(0..shards);
                sample.take(&self.lock_shard(db, index), index, volatile, 1, &mut rng);
            }
        }
        // Few candidates there (say no keys with an expiry): walk everything.
        if sample.best.is_none() {
            let total = self.dbs.len() * shards;
            let start = rng.random_range(0..total);
            for step in 0..total {
                let slot = (start + step) % total;
                let (db, index) = (slot / shards, slot % shards);
                sample.take(
                    &self.lock_shard(db, index),
                    index,
                    volatile,
                    SAMPLES,
                    &mut rng,
                );
                if sample.full() {
                    break;
                }
            }
        }
        let (_, db, index, key) = sample.best?;
        let removed = self.lock_shard(db, index).remove(&key)?;
        Some((db, key, !removed.expired(now_ms())))
    }
}

/// Parses a Redis memory value: digits with an optional unit (`b`, `k`
/// = 1000, `kb` = 1024, `m`, `mb`, `g`, `gb`; any case).
pub(super) fn parse_redis_size(raw: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(raw).ok()?.to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits.parse().ok()?;
    let mult: usize = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Bytes as Redis's INFO shows them (`1.50M`).
pub(super) fn human(bytes: usize) -> String {
    const UNITS: [(f64, &str); 4] = [
        (1024.0 * 1024.0 * 1024.0 * 1024.0, "T"),
        (1024.0 * 1024.0 * 1024.0, "G"),
        (1024.0 * 1024.0, "M"),
        (1024.0, "K"),
    ];
    let b = bytes as f64;
    for (size, unit) in UNITS {
        if b >= size {
            return format!("{:.2}{unit}", b / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
impl Engine {
    /// `used_memory` recomputed from scratch by walking every value (for
    /// tests: the running counts must agree with it).
    pub(crate) fn recount_memory(&self) -> usize {
        use super::Value;
        let mut used = 0;
        for db in 0..self.dbs.len() {
            for index in 0..self.shard_count() {
                let shard = self.lock_shard(db, index);
                for (key, entry) in shard.iter() {
                    let payload = match &entry.value {
                        Value::Str(v) => v.len(),
                        Value::List(l) => {
                            COLLECTION_OVERHEAD
                                + l.iter().map(|i| i.len() + LIST_ITEM).sum::<usize>()
                        }
                        Value::Hash(h) => {
                            COLLECTION_OVERHEAD
                                + h.iter()
                                    .map(|(f, v)| f.len() + v.len() + HASH_ITEM)
                                    .sum::<usize>()
                        }
                        Value::Set(s) => {
                            COLLECTION_OVERHEAD
                                + s.iter().map(|m| m.len() + SET_ITEM).sum::<usize>()
                        }
                        Value::ZSet(z) => {
                            COLLECTION_OVERHEAD
                                + z.pairs()
                                    .iter()
                                    .map(|(_, m)| m.len() + ZSET_ITEM)
                                    .sum::<usize>()
                        }
                    };
                    used += ENTRY_OVERHEAD + key.len() + payload;
                }
            }
        }
        used
    }
}

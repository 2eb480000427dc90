//! The one [`KvStore`] implementation, over any [`Runner`]: keys live in
//! the project's namespace (`kv:{project}:{key}`), and every write updates the
//! project's usage in the same optimistic transaction, so quotas hold
//! however many manager instances share a server.
//!
//! Per project, beside its keys, three bookkeeping keys (which can never
//! collide with project keys, which all start `kv:`):
//! - `_kv:{project}:sizes`: hash, key → bytes it counts (key + value);
//!   its length is the key count.
//! - `_kv:{project}:expiry`: sorted set, key → when it expires (ms), so
//!   keys that expire stop counting: each write (and each usage read)
//!   first settles up to [`SETTLE_BATCH`] expired keys.
//! - `_kv:{project}:bytes`: the byte total.
//! - `_kv:{project}:rev`: the project's revision, one more per write.
//!
//! Expiry times are absolute (`PXAT`, this process's clock) so the
//! bookkeeping and the server agree on when a key ends. Writes made to the
//! same keys by other means (a raw RESP client) are not accounted.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::reply::Reply;
use super::runner::{Command, Runner, Transaction};
use super::store::{
    Condition, KvStore, PutOptions, Quota, Revision, ScanPage, Usage, namespaced, prefix_pattern,
    strip, ttl_from_pttl,
};
use crate::error::Error;
use crate::id::{ProjectId, now_millis};

/// Expired keys settled per write, so one write never does unbounded work.
pub const SETTLE_BATCH: usize = 128;
/// Optimistic attempts before a write gives up under contention.
const MAX_ATTEMPTS: usize = 50;

pub struct AccountedKv<R> {
    runner: R,
}

impl<R: Runner> AccountedKv<R> {
    pub fn on(runner: R) -> AccountedKv<R> {
        AccountedKv { runner }
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }
}

/// The names one operation touches.
struct Names {
    user_key: Bytes,
    key: Bytes,
    sizes: Bytes,
    expiry: Bytes,
    bytes: Bytes,
    rev: Bytes,
}

fn bookkeeping(project: &ProjectId, what: &str) -> Bytes {
    Bytes::from(format!("_kv:{}:{what}", project.as_str()))
}

impl Names {
    fn new(project: &ProjectId, key: &[u8]) -> Result<Names, Error> {
        Ok(Names {
            user_key: Bytes::copy_from_slice(key),
            key: namespaced(project, key)?,
            sizes: bookkeeping(project, "sizes"),
            expiry: bookkeeping(project, "expiry"),
            bytes: bookkeeping(project, "bytes"),
            rev: bookkeeping(project, "rev"),
        })
    }

    /// The bookkeeping names alone (no key: an empty name, which no user
    /// key can have).
    fn project_only(project: &ProjectId) -> Names {
        Names {
            user_key: Bytes::new(),
            key: Bytes::new(),
            sizes: bookkeeping(project, "sizes"),
            expiry: bookkeeping(project, "expiry"),
            bytes: bookkeeping(project, "bytes"),
            rev: bookkeeping(project, "rev"),
        }
    }

    fn watched(&self) -> Vec<Bytes> {
        vec![
            self.key.clone(),
            self.sizes.clone(),
            self.expiry.clone(),
            self.bytes.clone(),
        ]
    }
}

fn cmd(parts: &[&[u8]]) -> Command {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

fn number(reply: &Reply) -> Result<i64, Error> {
    match reply {
        Reply::Integer(n) => Ok(*n),
        Reply::Nil => Ok(0),
        Reply::Bulk(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::internal(format!("bookkeeping value {b:?} is not a number"))),
        other => Err(Error::internal(format!("unexpected reply {other:?}"))),
    }
}

/// What a transaction read of the project before writing.
struct Found {
    /// The key exists and has not expired by our clock.
    exists: bool,
    /// The bytes the key counts now, if it is counted.
    counted: Option<u64>,
    keys: u64,
    bytes: u64,
    /// Expired keys (other than this one) to settle, with their sizes.
    expired: Vec<(Bytes, u64)>,
    /// A full batch expired: more may wait behind it.
    more_expired: bool,
    /// Replies to the caller's extra reads.
    extra: Vec<Reply>,
}

impl Found {
    /// Usage once the expired keys are settled and `key` is gone.
    fn base(&self) -> Usage {
        let expired_bytes: u64 = self.expired.iter().map(|(_, n)| n).sum();
        Usage {
            keys: self
                .keys
                .saturating_sub(self.expired.len() as u64 + self.counted.is_some() as u64),
            bytes: self
                .bytes
                .saturating_sub(expired_bytes + self.counted.unwrap_or(0)),
        }
    }

    /// Checks `quota` for the key counting `size` bytes after the write.
    fn check(&self, project: &ProjectId, size: u64, quota: Option<Quota>) -> Result<(), Error> {
        let Some(quota) = quota else { return Ok(()) };
        let after = self.base();
        let adds_key = self.counted.is_none();
        if adds_key && after.keys + 1 > quota.max_keys {
            return Err(Error::QuotaExceeded(format!(
                "project {project} has {} keys; its quota is {}",
                after.keys, quota.max_keys
            )));
        }
        let grows = size > self.counted.unwrap_or(0);
        if grows && after.bytes + size > quota.max_bytes {
            return Err(Error::QuotaExceeded(format!(
                "project {project} would store {} bytes; its quota is {}",
                after.bytes + size,
                quota.max_bytes
            )));
        }
        Ok(())
    }

    /// `Ok(None)` when the write fits `quota`. When it does not but more
    /// expired keys wait than one batch settles, `Ok(Some(writes))` settles
    /// a batch (the caller commits them and tries again); else the error.
    fn check_or_settle(
        &self,
        project: &ProjectId,
        n: &Names,
        size: u64,
        quota: Option<Quota>,
    ) -> Result<Option<Vec<Command>>, Error> {
        match self.check(project, size, quota) {
            Ok(()) => Ok(None),
            Err(_) if self.more_expired => Ok(Some(self.settle_alone(project, n)?)),
            Err(e) => Err(e),
        }
    }

    fn expired_bytes(&self) -> u64 {
        self.expired.iter().map(|(_, s)| s).sum()
    }

    /// The writes that settle the expired keys, their bytes included (for
    /// transactions that write nothing else).
    fn settle_alone(&self, project: &ProjectId, n: &Names) -> Result<Vec<Command>, Error> {
        let mut writes = self.settle(project, n)?;
        if !writes.is_empty() {
            let freed = self.expired_bytes().to_string();
            writes.push(cmd(&[b"DECRBY", &n.bytes, freed.as_bytes()]));
        }
        Ok(writes)
    }

    /// The writes that settle the expired keys (their bytes are released
    /// by the caller's own byte update).
    fn settle(&self, project: &ProjectId, n: &Names) -> Result<Vec<Command>, Error> {
        if self.expired.is_empty() {
            return Ok(Vec::new());
        }
        let mut del = vec![Bytes::from_static(b"DEL")];
        let mut hdel = vec![Bytes::from_static(b"HDEL"), n.sizes.clone()];
        let mut zrem = vec![Bytes::from_static(b"ZREM"), n.expiry.clone()];
        for (key, _) in &self.expired {
            del.push(namespaced(project, key)?);
            hdel.push(key.clone());
            zrem.push(key.clone());
        }
        Ok(vec![del, hdel, zrem])
    }
}

/// The keys of a `ZRANGE … WITHSCORES` answer whose expiry is past.
/// (RESP2 gives a flat array, RESP3 pairs.)
fn past_expiries(reply: &Reply, now: u64) -> Result<Vec<Bytes>, Error> {
    let Reply::Array(items) = reply else {
        return Ok(Vec::new());
    };
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Reply::Array(pair) => flat.extend(pair.iter()),
            other => flat.push(other),
        }
    }
    let mut past = Vec::new();
    for pair in flat.chunks(2) {
        let [Reply::Bulk(key), score] = pair else {
            return Err(Error::internal("unexpected ZRANGE reply"));
        };
        let at = match score {
            Reply::Double(d) => *d,
            Reply::Bulk(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::internal("unexpected expiry score"))?,
            _ => return Err(Error::internal("unexpected expiry score")),
        };
        if at > now as f64 {
            break; // sorted: the rest expire later
        }
        past.push(key.clone());
    }
    Ok(past)
}

/// Reads, under the transaction's WATCH, what a write needs to know.
async fn observe(
    tx: &mut Box<dyn Transaction>,
    n: &Names,
    extra: Vec<Command>,
) -> Result<Found, Error> {
    let now = now_millis();
    let mut reads = vec![
        cmd(&[b"EXISTS", &n.key]),
        cmd(&[b"HGET", &n.sizes, &n.user_key]),
        cmd(&[b"HLEN", &n.sizes]),
        cmd(&[b"GET", &n.bytes]),
        // The soonest expiries first; those already past are settled.
        cmd(&[
            b"ZRANGE",
            &n.expiry,
            b"0",
            (SETTLE_BATCH - 1).to_string().as_bytes(),
            b"WITHSCORES",
        ]),
    ];
    reads.extend(extra);
    let mut replies = tx.read(reads).await?;
    let extra = replies.split_off(5);
    let expired_keys = past_expiries(&replies[4], now)?;
    let more_expired = expired_keys.len() >= SETTLE_BATCH;
    let self_expired = expired_keys.contains(&n.user_key);
    let others: Vec<Bytes> = expired_keys
        .into_iter()
        .filter(|k| *k != n.user_key)
        .collect();
    let mut expired = Vec::with_capacity(others.len());
    if !others.is_empty() {
        let mut hmget = vec![Bytes::from_static(b"HMGET"), n.sizes.clone()];
        hmget.extend(others.iter().cloned());
        let sizes = tx.read(vec![hmget]).await?;
        if let Some(Reply::Array(sizes)) = sizes.first() {
            for (key, size) in others.into_iter().zip(sizes) {
                expired.push((key, number(size)?.max(0) as u64));
            }
        }
    }
    let counted = match &replies[1] {
        Reply::Nil => None,
        r => Some(number(r)?.max(0) as u64),
    };
    Ok(Found {
        exists: number(&replies[0])? == 1 && !self_expired,
        counted,
        keys: number(&replies[2])?.max(0) as u64,
        bytes: number(&replies[3])?.max(0) as u64,
        expired,
        more_expired,
        extra,
    })
}

/// Runs `attempt` until its transaction commits (it returns `Some`).
async fn retrying<T, F, Fut>(project: &ProjectId, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, Error>>,
{
    for round in 0..MAX_ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
        // Someone else wrote to the project meanwhile: back off a little,
        // more each time, so contending writers spread out.
        let micros = 50 * (round as u64 + 1) + (now_millis() % 7) * 20;
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }
    Err(Error::Unavailable(format!(
        "too many concurrent writes to project {project}; try again"
    )))
}

/// The accounting writes for `key` now counting `size` bytes.
fn account(n: &Names, found: &Found, size: u64) -> Vec<Command> {
    let delta = size as i64
        - found.counted.unwrap_or(0) as i64
        - found.expired.iter().map(|(_, s)| *s as i64).sum::<i64>();
    vec![
        cmd(&[b"HSET", &n.sizes, &n.user_key, size.to_string().as_bytes()]),
        cmd(&[b"INCRBY", &n.bytes, delta.to_string().as_bytes()]),
    ]
}

/// Commits `writes` plus the project's revision bump; the revision, or
/// `None` if a watched key changed (nothing was written).
async fn commit_with_revision(
    tx: Box<dyn Transaction>,
    n: &Names,
    mut writes: Vec<Command>,
) -> Result<Option<Revision>, Error> {
    writes.push(cmd(&[b"INCR", &n.rev]));
    let Some(replies) = tx.commit(writes).await? else {
        return Ok(None);
    };
    match replies.last() {
        Some(Reply::Integer(rev)) => Ok(Some(*rev as Revision)),
        other => Err(Error::internal(format!("unexpected INCR reply {other:?}"))),
    }
}

/// Parses a stored counter the way Redis does (canonical decimal only).
fn parse_counter(value: &[u8]) -> Result<i64, Error> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok().filter(|n| n.to_string() == s))
        .ok_or_else(|| Error::Conflict("the value is not an integer or out of range".into()))
}

#[async_trait]
impl<R: Runner> KvStore for AccountedKv<R> {
    async fn get(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Bytes>, Error> {
        match self
            .runner
            .run(vec![Bytes::from_static(b"GET"), namespaced(project, key)?])
            .await?
        {
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
    ) -> Result<Option<Revision>, Error> {
        let n = Names::new(project, key)?;
        let size = (key.len() + value.len()) as u64;
        retrying(project, || async {
            let mut tx = self.runner.watch(n.watched()).await?;
            let found = observe(&mut tx, &n, Vec::new()).await?;
            let allowed = match options.condition {
                Condition::Always => true,
                Condition::IfAbsent => !found.exists,
                Condition::IfPresent => found.exists,
            };
            if !allowed {
                // Nothing to write but the settling of expired keys.
                let settle = found.settle_alone(project, &n)?;
                return Ok(tx.commit(settle).await?.map(|_| None));
            }
            if let Some(settled) = found.check_or_settle(project, &n, size, options.quota)? {
                return Ok(tx.commit(settled).await?.and(None));
            }
            let mut writes = vec![vec![
                Bytes::from_static(b"SET"),
                n.key.clone(),
                value.clone(),
            ]];
            match options.ttl {
                Some(ttl) => {
                    let at = now_millis() + ttl.as_millis().max(1) as u64;
                    writes[0].push(Bytes::from_static(b"PXAT"));
                    writes[0].push(Bytes::from(at.to_string()));
                    writes.push(cmd(&[b"ZADD", &n.expiry, at.to_string().as_bytes(), key]));
                }
                None => writes.push(cmd(&[b"ZREM", &n.expiry, key])),
            }
            writes.extend(account(&n, &found, size));
            writes.extend(found.settle(project, &n)?);
            commit_with_revision(tx, &n, writes)
                .await
                .map(|r| r.map(Some))
        })
        .await
    }

    async fn delete(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Revision>, Error> {
        let n = Names::new(project, key)?;
        retrying(project, || async {
            let mut tx = self.runner.watch(n.watched()).await?;
            let found = observe(&mut tx, &n, Vec::new()).await?;
            let freed = found.counted.unwrap_or(0) + found.expired_bytes();
            let mut writes = vec![
                cmd(&[b"DEL", &n.key]),
                cmd(&[b"HDEL", &n.sizes, key]),
                cmd(&[b"ZREM", &n.expiry, key]),
                cmd(&[b"DECRBY", &n.bytes, freed.to_string().as_bytes()]),
            ];
            writes.extend(found.settle(project, &n)?);
            if !found.exists {
                // Tidy (an expired key's leftovers), but no change to report.
                return Ok(tx.commit(writes).await?.map(|_| None));
            }
            commit_with_revision(tx, &n, writes)
                .await
                .map(|r| r.map(Some))
        })
        .await
    }

    async fn incr(
        &self,
        project: &ProjectId,
        key: &[u8],
        by: i64,
        quota: Option<Quota>,
    ) -> Result<(i64, Revision), Error> {
        let n = Names::new(project, key)?;
        retrying(project, || async {
            let mut tx = self.runner.watch(n.watched()).await?;
            let found = observe(&mut tx, &n, vec![cmd(&[b"GET", &n.key])]).await?;
            let current = match (&found.extra[0], found.exists) {
                (Reply::Bulk(v), true) => parse_counter(v)?,
                _ => 0,
            };
            let next = current
                .checked_add(by)
                .ok_or_else(|| Error::Conflict("increment or decrement would overflow".into()))?;
            let text = next.to_string();
            let size = (key.len() + text.len()) as u64;
            if let Some(settled) = found.check_or_settle(project, &n, size, quota)? {
                return Ok(tx.commit(settled).await?.and(None));
            }
            let mut writes = if found.exists {
                // INCR keeps a key's time to live.
                vec![cmd(&[b"SET", &n.key, text.as_bytes(), b"KEEPTTL"])]
            } else {
                vec![
                    cmd(&[b"SET", &n.key, text.as_bytes()]),
                    cmd(&[b"ZREM", &n.expiry, key]),
                ]
            };
            writes.extend(account(&n, &found, size));
            writes.extend(found.settle(project, &n)?);
            commit_with_revision(tx, &n, writes)
                .await
                .map(|r| r.map(|rev| (next, rev)))
        })
        .await
    }

    async fn ttl(&self, project: &ProjectId, key: &[u8]) -> Result<Option<Duration>, Error> {
        match self
            .runner
            .run(vec![Bytes::from_static(b"PTTL"), namespaced(project, key)?])
            .await?
        {
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
        let reply = self
            .runner
            .run(cmd(&[
                b"SCAN",
                cursor.to_string().as_bytes(),
                b"MATCH",
                &pattern,
                b"COUNT",
                count.max(1).to_string().as_bytes(),
            ]))
            .await?;
        let Reply::Array(parts) = reply else {
            return Err(Error::internal("unexpected SCAN reply"));
        };
        let (Some(next), Some(Reply::Array(keys))) = (parts.first(), parts.get(1)) else {
            return Err(Error::internal("unexpected SCAN reply"));
        };
        Ok(ScanPage {
            cursor: number(next)?.max(0) as u64,
            keys: keys
                .iter()
                .filter_map(|k| match k {
                    Reply::Bulk(k) => strip(project, k),
                    _ => None,
                })
                .collect(),
        })
    }

    async fn usage(&self, project: &ProjectId) -> Result<Usage, Error> {
        let n = Names::project_only(project);
        retrying(project, || async {
            let mut tx = self
                .runner
                .watch(vec![n.sizes.clone(), n.expiry.clone(), n.bytes.clone()])
                .await?;
            let found = observe(&mut tx, &n, Vec::new()).await?;
            let usage = Usage {
                keys: found.keys.saturating_sub(found.expired.len() as u64),
                bytes: found
                    .bytes
                    .saturating_sub(found.expired.iter().map(|(_, s)| s).sum::<u64>()),
            };
            let writes = found.settle_alone(project, &n)?;
            Ok(tx.commit(writes).await?.map(|_| usage))
        })
        .await
    }

    async fn check(&self) -> Result<(), Error> {
        self.runner.run(cmd(&[b"PING"])).await.map(|_| ())
    }
}

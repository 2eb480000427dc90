//! Lists, hashes, sets and sorted sets.

mod counted;
mod zrange;

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::engine::{
    Engine, Entry, NOT_INTEGER, SYNTAX, Session, Shard, Value, WRONGTYPE, block_timeout, eq,
    now_ms, parse_i64,
};
use super::reply::{Reply, format_double};

pub use counted::{Hash, List, Set};

/// A sorted set: member → score, and (score, member) in order.
#[derive(Debug, Clone, Default)]
pub struct ZSet {
    scores: HashMap<Bytes, f64>,
    ordered: BTreeSet<(Score, Bytes)>,
    /// Bytes of the members (for maxmemory).
    bytes: usize,
}

/// f64 with a total order (NaN is never stored).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl ZSet {
    /// Sets a member's score; returns true if the member is new.
    fn insert(&mut self, member: Bytes, score: f64) -> bool {
        match self.scores.insert(member.clone(), score) {
            Some(old) => {
                self.ordered.remove(&(Score(old), member.clone()));
                self.ordered.insert((Score(score), member));
                false
            }
            None => {
                self.bytes += member.len();
                self.ordered.insert((Score(score), member));
                true
            }
        }
    }

    fn remove(&mut self, member: &Bytes) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.bytes -= member.len();
                self.ordered.remove(&(Score(score), member.clone()));
                true
            }
            None => false,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// (score, member) pairs in order.
    pub fn pairs(&self) -> Vec<(f64, Bytes)> {
        self.ordered.iter().map(|(s, m)| (s.0, m.clone())).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

/// `[count]` of the pop commands: absent, or a non-negative integer.
fn optional_count(arg: Option<&Bytes>) -> Result<Option<usize>, Reply> {
    match arg.map(|c| parse_i64(c)) {
        None => Ok(None),
        Some(Some(n)) if n >= 0 => Ok(Some(n as usize)),
        Some(_) => Err(Reply::error("ERR value is out of range, must be positive")),
    }
}

/// A float argument or stored value (`inf` allowed, `nan` not).
fn parse_float(arg: &[u8]) -> Option<f64> {
    std::str::from_utf8(arg)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|f| !f.is_nan())
}

fn parse_score(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    let value = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => text.parse().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

/// A ZRANGEBYSCORE bound: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Clone, Copy)]
struct ScoreBound {
    value: f64,
    exclusive: bool,
}

impl ScoreBound {
    fn parse(arg: &[u8]) -> Option<ScoreBound> {
        let (exclusive, rest) = match arg.first() {
            Some(b'(') => (true, &arg[1..]),
            _ => (false, arg),
        };
        Some(ScoreBound {
            value: parse_score(rest)?,
            exclusive,
        })
    }

    /// `score` is at or above this lower bound.
    fn below(self, score: f64) -> bool {
        if self.exclusive {
            score > self.value
        } else {
            score >= self.value
        }
    }

    /// `score` is at or below this upper bound.
    fn above(self, score: f64) -> bool {
        if self.exclusive {
            score < self.value
        } else {
            score <= self.value
        }
    }
}

/// Which collection a command needs.
#[derive(Clone, Copy)]
enum Kind {
    List,
    Hash,
    Set,
    ZSet,
}

impl Kind {
    fn empty(self) -> Value {
        match self {
            Kind::List => Value::List(Box::default()),
            Kind::Hash => Value::Hash(Box::default()),
            Kind::Set => Value::Set(Box::default()),
            Kind::ZSet => Value::ZSet(Box::default()),
        }
    }

    fn matches(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (Kind::List, Value::List(_))
                | (Kind::Hash, Value::Hash(_))
                | (Kind::Set, Value::Set(_))
                | (Kind::ZSet, Value::ZSet(_))
        )
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::ZSet(z) => z.is_empty(),
    }
}

/// Runs `f` on the key's collection of `kind`: `create` makes a missing key
/// (else `f` gets `None`); a key of another type is WRONGTYPE; a collection
/// left empty is removed, as in Redis.
fn with_collection(
    shard: &mut Shard,
    key: &Bytes,
    kind: Kind,
    create: bool,
    f: impl FnOnce(Option<&mut Value>) -> Reply,
) -> Reply {
    let now = now_ms();
    if shard.get(key).is_some_and(|e| e.expired(now)) {
        shard.remove(key);
    }
    match shard.get_mut(key) {
        Some(entry) if !kind.matches(&entry.value) => Reply::error(WRONGTYPE),
        Some(entry) => {
            let before = entry.value.mem();
            let reply = f(Some(&mut entry.value));
            let (after, empty) = (entry.value.mem(), is_empty(&entry.value));
            shard.resized(before, after);
            if empty {
                shard.remove(key);
            }
            reply
        }
        None if create => {
            let mut value = kind.empty();
            let reply = f(Some(&mut value));
            if !reply.is_error() && !is_empty(&value) {
                shard.insert(key.clone(), Entry::new(value, 0));
            }
            reply
        }
        None => f(None),
    }
}

/// Normalises Redis-style (possibly negative) start/stop over `len` items.
fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

impl Engine {
    /// Collection commands; `None` if `upper` is not one (or has bad arity:
    /// the caller answers that from the command table).
    pub(super) fn execute_collection(
        &self,
        session: &Session,
        upper: &[u8],
        a: &[Bytes],
    ) -> Option<Reply> {
        let db = session.db;
        let reply =
            match upper {
                b"LPUSH" | b"RPUSH" if a.len() >= 2 => {
                    let front = upper == b"LPUSH";
                    let reply =
                        with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, true, |v| {
                            let Some(Value::List(list)) = v else {
                                return Reply::Integer(0);
                            };
                            for item in &a[1..] {
                                if front {
                                    list.push_front(item.clone());
                                } else {
                                    list.push_back(item.clone());
                                }
                            }
                            Reply::Integer(list.len() as i64)
                        });
                    if !reply.is_error() {
                        self.list_pushed(db, &a[0]);
                    }
                    reply
                }
                b"BLPOP" | b"BRPOP" if a.len() >= 2 => {
                    self.pop_first(db, &a[..a.len() - 1], &a[a.len() - 1], upper == b"BLPOP")
                }
                b"HINCRBYFLOAT" if a.len() == 3 => self.hincrbyfloat(db, a),
                _ if zrange::handles(upper) && a.len() >= 3 => {
                    let query = match zrange::Query::parse(upper, a) {
                        Ok(q) => q,
                        Err(e) => return Some(e),
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, false, |v| {
                        match v {
                            Some(Value::ZSet(z)) => query.run(z, session.resp3),
                            _ => Reply::Array(Vec::new()),
                        }
                    })
                }
                b"LPOP" | b"RPOP" if a.len() == 1 || a.len() == 2 => {
                    let front = upper == b"LPOP";
                    let count = match optional_count(a.get(1)) {
                        Ok(c) => c,
                        Err(e) => return Some(e),
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        let Some(Value::List(list)) = v else {
                            return if count.is_some() {
                                Reply::NilArray
                            } else {
                                Reply::Nil
                            };
                        };
                        let mut pop = || list.pop(front);
                        match count {
                            None => pop().map_or(Reply::Nil, Reply::Bulk),
                            Some(n) => {
                                Reply::Array((0..n).map_while(|_| pop()).map(Reply::Bulk).collect())
                            }
                        }
                    })
                }
                b"LLEN" if a.len() == 1 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        match v {
                            Some(Value::List(list)) => Reply::Integer(list.len() as i64),
                            _ => Reply::Integer(0),
                        }
                    })
                }
                b"LRANGE" if a.len() == 3 => {
                    let (Some(start), Some(stop)) = (parse_i64(&a[1]), parse_i64(&a[2])) else {
                        return Some(Reply::error(NOT_INTEGER));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        match v {
                            Some(Value::List(list)) => match range(start, stop, list.len()) {
                                Some((s, e)) => Reply::Array(
                                    list.range(s..=e).cloned().map(Reply::Bulk).collect(),
                                ),
                                None => Reply::Array(Vec::new()),
                            },
                            _ => Reply::Array(Vec::new()),
                        }
                    })
                }
                b"LINDEX" if a.len() == 2 => {
                    let Some(index) = parse_i64(&a[1]) else {
                        return Some(Reply::error(NOT_INTEGER));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        match v {
                            Some(Value::List(list)) => list_position(list.len(), index)
                                .and_then(|i| list.get(i))
                                .cloned()
                                .map_or(Reply::Nil, Reply::Bulk),
                            _ => Reply::Nil,
                        }
                    })
                }
                b"LTRIM" if a.len() == 3 => {
                    let (Some(start), Some(stop)) = (parse_i64(&a[1]), parse_i64(&a[2])) else {
                        return Some(Reply::error(NOT_INTEGER));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        if let Some(Value::List(list)) = v {
                            match range(start, stop, list.len()) {
                                Some((s, e)) => list.keep(s, e),
                                None => list.clear(),
                            }
                        }
                        Reply::ok()
                    })
                }
                b"ZREMRANGEBYSCORE" | b"ZCOUNT" if a.len() == 3 => {
                    let (Some(min), Some(max)) =
                        (ScoreBound::parse(&a[1]), ScoreBound::parse(&a[2]))
                    else {
                        return Some(Reply::error("ERR min or max is not a float"));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, false, |v| {
                        let Some(Value::ZSet(z)) = v else {
                            return Reply::Integer(0);
                        };
                        let hits: Vec<(f64, Bytes)> = z
                            .ordered
                            .iter()
                            .filter(|(s, _)| min.below(s.0) && max.above(s.0))
                            .map(|(s, m)| (s.0, m.clone()))
                            .collect();
                        match upper {
                            b"ZCOUNT" => Reply::Integer(hits.len() as i64),
                            _ => {
                                for (_, m) in &hits {
                                    z.remove(m);
                                }
                                Reply::Integer(hits.len() as i64)
                            }
                        }
                    })
                }
                b"HSET" | b"HMSET" if a.len() >= 3 && a.len() % 2 == 1 => {
                    let hmset = upper == b"HMSET";
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, true, |v| {
                        let Some(Value::Hash(hash)) = v else {
                            return Reply::Integer(0);
                        };
                        let added = a[1..]
                            .chunks(2)
                            .filter(|p| hash.insert(p[0].clone(), p[1].clone()).is_none())
                            .count();
                        if hmset {
                            Reply::ok()
                        } else {
                            Reply::Integer(added as i64)
                        }
                    })
                }
                b"HSETNX" if a.len() == 3 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, true, |v| {
                        let Some(Value::Hash(hash)) = v else {
                            return Reply::Integer(0);
                        };
                        if hash.contains_key(&a[1]) {
                            Reply::Integer(0)
                        } else {
                            hash.insert(a[1].clone(), a[2].clone());
                            Reply::Integer(1)
                        }
                    })
                }
                b"HGET" if a.len() == 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, false, |v| {
                        match v {
                            Some(Value::Hash(hash)) => {
                                hash.get(&a[1]).cloned().map_or(Reply::Nil, Reply::Bulk)
                            }
                            _ => Reply::Nil,
                        }
                    })
                }
                b"HMGET" if a.len() >= 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, false, |v| {
                        let hash = match v {
                            Some(Value::Hash(hash)) => Some(hash),
                            _ => None,
                        };
                        Reply::Array(
                            a[1..]
                                .iter()
                                .map(|f| {
                                    hash.as_ref()
                                        .and_then(|h| h.get(f))
                                        .cloned()
                                        .map_or(Reply::Nil, Reply::Bulk)
                                })
                                .collect(),
                        )
                    })
                }
                b"HGETALL" | b"HKEYS" | b"HVALS" if a.len() == 1 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, false, |v| {
                        let Some(Value::Hash(hash)) = v else {
                            return if upper == b"HGETALL" {
                                Reply::Map(Vec::new())
                            } else {
                                Reply::Array(Vec::new())
                            };
                        };
                        match upper {
                            b"HGETALL" => Reply::Map(
                                hash.iter()
                                    .map(|(k, v)| (Reply::Bulk(k.clone()), Reply::Bulk(v.clone())))
                                    .collect(),
                            ),
                            b"HKEYS" => {
                                Reply::Array(hash.keys().cloned().map(Reply::Bulk).collect())
                            }
                            _ => Reply::Array(hash.values().cloned().map(Reply::Bulk).collect()),
                        }
                    })
                }
                b"HDEL" if a.len() >= 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, false, |v| {
                        match v {
                            Some(Value::Hash(hash)) => Reply::Integer(
                                a[1..].iter().filter(|f| hash.remove(f).is_some()).count() as i64,
                            ),
                            _ => Reply::Integer(0),
                        }
                    })
                }
                b"HEXISTS" if a.len() == 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, false, |v| {
                        match v {
                            Some(Value::Hash(hash)) => {
                                Reply::Integer(i64::from(hash.contains_key(&a[1])))
                            }
                            _ => Reply::Integer(0),
                        }
                    })
                }
                b"HLEN" if a.len() == 1 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, false, |v| {
                        match v {
                            Some(Value::Hash(hash)) => Reply::Integer(hash.len() as i64),
                            _ => Reply::Integer(0),
                        }
                    })
                }
                b"HINCRBY" if a.len() == 3 => {
                    let Some(by) = parse_i64(&a[2]) else {
                        return Some(Reply::error(NOT_INTEGER));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, true, |v| {
                        let Some(Value::Hash(hash)) = v else {
                            return Reply::Integer(0);
                        };
                        let current = match hash.get(&a[1]) {
                            None => 0,
                            Some(raw) => match parse_i64(raw) {
                                Some(n) => n,
                                None => return Reply::error("ERR hash value is not an integer"),
                            },
                        };
                        match current.checked_add(by) {
                            Some(next) => {
                                hash.insert(a[1].clone(), Bytes::from(next.to_string()));
                                Reply::Integer(next)
                            }
                            None => Reply::error("ERR increment or decrement would overflow"),
                        }
                    })
                }
                b"SADD" if a.len() >= 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Set, true, |v| {
                        let Some(Value::Set(set)) = v else {
                            return Reply::Integer(0);
                        };
                        Reply::Integer(
                            a[1..].iter().filter(|m| set.insert((*m).clone())).count() as i64
                        )
                    })
                }
                b"SREM" if a.len() >= 2 => with_collection(
                    &mut self.shard(db, &a[0]),
                    &a[0],
                    Kind::Set,
                    false,
                    |v| match v {
                        Some(Value::Set(set)) => {
                            Reply::Integer(a[1..].iter().filter(|m| set.remove(m)).count() as i64)
                        }
                        _ => Reply::Integer(0),
                    },
                ),
                b"SMEMBERS" if a.len() == 1 => with_collection(
                    &mut self.shard(db, &a[0]),
                    &a[0],
                    Kind::Set,
                    false,
                    |v| match v {
                        Some(Value::Set(set)) => {
                            Reply::Array(set.iter().cloned().map(Reply::Bulk).collect())
                        }
                        _ => Reply::Array(Vec::new()),
                    },
                ),
                b"SISMEMBER" if a.len() == 2 => with_collection(
                    &mut self.shard(db, &a[0]),
                    &a[0],
                    Kind::Set,
                    false,
                    |v| match v {
                        Some(Value::Set(set)) => Reply::Integer(i64::from(set.contains(&a[1]))),
                        _ => Reply::Integer(0),
                    },
                ),
                b"SCARD" if a.len() == 1 => with_collection(
                    &mut self.shard(db, &a[0]),
                    &a[0],
                    Kind::Set,
                    false,
                    |v| match v {
                        Some(Value::Set(set)) => Reply::Integer(set.len() as i64),
                        _ => Reply::Integer(0),
                    },
                ),
                b"ZADD" if a.len() >= 3 => self.zadd(db, a),
                b"ZSCORE" if a.len() == 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, false, |v| {
                        match v {
                            Some(Value::ZSet(z)) => z.scores.get(&a[1]).map_or(Reply::Nil, |s| {
                                Reply::Bulk(Bytes::from(format_double(*s)))
                            }),
                            _ => Reply::Nil,
                        }
                    })
                }
                b"ZCARD" if a.len() == 1 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, false, |v| {
                        match v {
                            Some(Value::ZSet(z)) => Reply::Integer(z.len() as i64),
                            _ => Reply::Integer(0),
                        }
                    })
                }
                b"ZREM" if a.len() >= 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, false, |v| {
                        match v {
                            Some(Value::ZSet(z)) => {
                                Reply::Integer(a[1..].iter().filter(|m| z.remove(m)).count() as i64)
                            }
                            _ => Reply::Integer(0),
                        }
                    })
                }
                b"LSET" if a.len() == 3 => {
                    let Some(index) = parse_i64(&a[1]) else {
                        return Some(Reply::error(NOT_INTEGER));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        match v {
                            Some(Value::List(list)) => match list_position(list.len(), index) {
                                Some(i) if list.replace(i, a[2].clone()) => Reply::ok(),
                                _ => Reply::error("ERR index out of range"),
                            },
                            _ => Reply::error("ERR no such key"),
                        }
                    })
                }
                b"LREM" if a.len() == 3 => {
                    let Some(count) = parse_i64(&a[1]) else {
                        return Some(Reply::error(NOT_INTEGER));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        let Some(Value::List(list)) = v else {
                            return Reply::Integer(0);
                        };
                        let limit = if count == 0 {
                            usize::MAX
                        } else {
                            count.unsigned_abs() as usize
                        };
                        let mut removed = 0;
                        if count >= 0 {
                            let mut i = 0;
                            while i < list.len() && removed < limit {
                                if list[i] == a[2] {
                                    list.remove(i);
                                    removed += 1;
                                } else {
                                    i += 1;
                                }
                            }
                        } else {
                            let mut i = list.len();
                            while i > 0 && removed < limit {
                                i -= 1;
                                if list[i] == a[2] {
                                    list.remove(i);
                                    removed += 1;
                                }
                            }
                        }
                        Reply::Integer(removed as i64)
                    })
                }
                b"LINSERT" if a.len() == 4 => {
                    let before = if eq(&a[1], "BEFORE") {
                        true
                    } else if eq(&a[1], "AFTER") {
                        false
                    } else {
                        return Some(Reply::error(SYNTAX));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::List, false, |v| {
                        let Some(Value::List(list)) = v else {
                            return Reply::Integer(0);
                        };
                        match list.iter().position(|item| *item == a[2]) {
                            Some(i) => {
                                list.insert(if before { i } else { i + 1 }, a[3].clone());
                                Reply::Integer(list.len() as i64)
                            }
                            None => Reply::Integer(-1),
                        }
                    })
                }
                b"SMISMEMBER" if a.len() >= 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Set, false, |v| {
                        let set = match v {
                            Some(Value::Set(set)) => Some(set),
                            _ => None,
                        };
                        Reply::Array(
                            a[1..]
                                .iter()
                                .map(|m| {
                                    Reply::Integer(i64::from(
                                        set.as_ref().is_some_and(|s| s.contains(m)),
                                    ))
                                })
                                .collect(),
                        )
                    })
                }
                b"SINTER" | b"SUNION" | b"SDIFF" if !a.is_empty() => {
                    let mut sets = Vec::with_capacity(a.len());
                    for key in a {
                        let members =
                            with_collection(&mut self.shard(db, key), key, Kind::Set, false, |v| {
                                match v {
                                    Some(Value::Set(set)) => {
                                        Reply::Array(set.iter().cloned().map(Reply::Bulk).collect())
                                    }
                                    _ => Reply::Array(Vec::new()),
                                }
                            });
                        match members {
                            Reply::Array(items) => sets.push(
                                items
                                    .into_iter()
                                    .filter_map(|r| match r {
                                        Reply::Bulk(b) => Some(b),
                                        _ => None,
                                    })
                                    .collect::<std::collections::HashSet<Bytes>>(),
                            ),
                            error => return Some(error),
                        }
                    }
                    let mut iter = sets.into_iter();
                    let first = iter.next().unwrap_or_default();
                    let result = iter.fold(first, |acc, next| match upper {
                        b"SINTER" => acc.intersection(&next).cloned().collect(),
                        b"SUNION" => acc.union(&next).cloned().collect(),
                        _ => acc.difference(&next).cloned().collect(),
                    });
                    Reply::Array(result.into_iter().map(Reply::Bulk).collect())
                }
                b"SPOP" | b"SRANDMEMBER" if a.len() == 1 || a.len() == 2 => {
                    let pop = upper == b"SPOP";
                    // SRANDMEMBER takes a negative count (repeats allowed).
                    let count = match (pop, a.get(1)) {
                        (_, None) => None,
                        (true, count) => match optional_count(count) {
                            Ok(n) => n.map(|n| n as i64),
                            Err(e) => return Some(e),
                        },
                        (false, Some(n)) => match parse_i64(n) {
                            // Repeats are built in one reply: bound them, or a
                            // count like -2^63 exhausts memory and aborts.
                            Some(n) if n < -(1 << 20) => {
                                return Some(Reply::error("ERR value is out of range"));
                            }
                            Some(n) => Some(n),
                            None => return Some(Reply::error(NOT_INTEGER)),
                        },
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Set, false, |v| {
                        let Some(Value::Set(set)) = v else {
                            return if count.is_some() {
                                Reply::Array(Vec::new())
                            } else {
                                Reply::Nil
                            };
                        };
                        use rand::seq::IteratorRandom;
                        let mut rng = rand::rng();
                        match count {
                            None => {
                                let Some(member) = set.iter().choose(&mut rng).cloned() else {
                                    return Reply::Nil;
                                };
                                if pop {
                                    set.remove(&member);
                                }
                                Reply::Bulk(member)
                            }
                            // A negative SRANDMEMBER count may repeat members.
                            Some(n) if n < 0 => {
                                let members: Vec<&Bytes> = set.iter().collect();
                                Reply::Array(
                                    (0..n.unsigned_abs())
                                        .filter_map(|_| {
                                            members
                                                .iter()
                                                .choose(&mut rng)
                                                .map(|m| Reply::Bulk((*m).clone()))
                                        })
                                        .collect(),
                                )
                            }
                            Some(n) => {
                                // Capped: choose_multiple reserves `n` slots up front.
                                let n = (n as usize).min(set.len());
                                let chosen: Vec<Bytes> =
                                    set.iter().cloned().choose_multiple(&mut rng, n);
                                if pop {
                                    for m in &chosen {
                                        set.remove(m);
                                    }
                                }
                                Reply::Array(chosen.into_iter().map(Reply::Bulk).collect())
                            }
                        }
                    })
                }
                b"ZINCRBY" if a.len() == 3 => {
                    let Some(by) = parse_score(&a[1]) else {
                        return Some(Reply::error("ERR value is not a valid float"));
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, true, |v| {
                        let Some(Value::ZSet(z)) = v else {
                            return Reply::Nil;
                        };
                        let next = z.scores.get(&a[2]).copied().unwrap_or(0.0) + by;
                        if next.is_nan() {
                            return Reply::error("ERR resulting score is not a number (NaN)");
                        }
                        z.insert(a[2].clone(), next);
                        Reply::Bulk(Bytes::from(format_double(next)))
                    })
                }
                b"ZRANK" | b"ZREVRANK" if a.len() == 2 => {
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, false, |v| {
                        let Some(Value::ZSet(z)) = v else {
                            return Reply::Nil;
                        };
                        let Some(score) = z.scores.get(&a[1]).copied() else {
                            return Reply::Nil;
                        };
                        let rank = z.ordered.range(..(Score(score), a[1].clone())).count();
                        Reply::Integer(if upper == b"ZRANK" {
                            rank
                        } else {
                            z.len() - 1 - rank
                        } as i64)
                    })
                }
                b"ZPOPMIN" | b"ZPOPMAX" if a.len() == 1 || a.len() == 2 => {
                    let count = match optional_count(a.get(1)) {
                        Ok(n) => n.unwrap_or(1),
                        Err(e) => return Some(e),
                    };
                    with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, false, |v| {
                        let Some(Value::ZSet(z)) = v else {
                            return Reply::Array(Vec::new());
                        };
                        let mut out = Vec::new();
                        for _ in 0..count {
                            let next = if upper == b"ZPOPMIN" {
                                z.ordered.first().cloned()
                            } else {
                                z.ordered.last().cloned()
                            };
                            let Some((score, member)) = next else { break };
                            z.remove(&member);
                            out.push(Reply::Bulk(member));
                            out.push(Reply::Bulk(Bytes::from(format_double(score.0))));
                        }
                        Reply::Array(out)
                    })
                }
                b"HSCAN" | b"SSCAN" if a.len() >= 2 => {
                    // One page holds everything (a valid SCAN answer): cursor 0.
                    let mut pattern: Option<Bytes> = None;
                    let mut i = 2;
                    while i < a.len() {
                        if eq(&a[i], "MATCH") && i + 1 < a.len() {
                            pattern = Some(a[i + 1].clone());
                        } else if !(eq(&a[i], "COUNT") && i + 1 < a.len()) {
                            return Some(Reply::error(SYNTAX));
                        }
                        i += 2;
                    }
                    let keep =
                        |m: &Bytes| pattern.as_ref().is_none_or(|p| super::glob::matches(p, m));
                    let kind = if upper == b"HSCAN" {
                        Kind::Hash
                    } else {
                        Kind::Set
                    };
                    let items = with_collection(
                        &mut self.shard(db, &a[0]),
                        &a[0],
                        kind,
                        false,
                        |v| match v {
                            Some(Value::Hash(hash)) => Reply::Array(
                                hash.iter()
                                    .filter(|(f, _)| keep(f))
                                    .flat_map(|(f, v)| {
                                        [Reply::Bulk(f.clone()), Reply::Bulk(v.clone())]
                                    })
                                    .collect(),
                            ),
                            Some(Value::Set(set)) => Reply::Array(
                                set.iter()
                                    .filter(|m| keep(m))
                                    .cloned()
                                    .map(Reply::Bulk)
                                    .collect(),
                            ),
                            _ => Reply::Array(Vec::new()),
                        },
                    );
                    if items.is_error() {
                        return Some(items);
                    }
                    Reply::Array(vec![Reply::bulk("0"), items])
                }
                _ => return None,
            };
        Some(reply)
    }

    /// BLPOP/BRPOP without blocking: pops from the first non-empty list
    /// of `keys` ([key, item]), or answers a null array (the connection
    /// decides whether to wait).
    fn pop_first(&self, db: usize, keys: &[Bytes], timeout: &[u8], front: bool) -> Reply {
        if let Err(e) = block_timeout(timeout) {
            return e;
        }
        for key in keys {
            let popped =
                with_collection(
                    &mut self.shard(db, key),
                    key,
                    Kind::List,
                    false,
                    |v| match v {
                        Some(Value::List(list)) => {
                            list.pop(front).map_or(Reply::NilArray, Reply::Bulk)
                        }
                        _ => Reply::NilArray,
                    },
                );
            match popped {
                Reply::NilArray => continue,
                Reply::Bulk(item) => {
                    return Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(item)]);
                }
                error => return error,
            }
        }
        Reply::NilArray
    }

    fn hincrbyfloat(&self, db: usize, a: &[Bytes]) -> Reply {
        let by = match parse_float(&a[2]) {
            Some(by) if by.is_finite() => by,
            Some(_) => return Reply::error("ERR value is NaN or Infinity"),
            None => return Reply::error("ERR value is not a valid float"),
        };
        with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::Hash, true, |v| {
            let Some(Value::Hash(hash)) = v else {
                return Reply::Nil;
            };
            let current = match hash.get(&a[1]) {
                None => 0.0,
                Some(raw) => match parse_float(raw) {
                    Some(f) => f,
                    None => return Reply::error("ERR hash value is not a float"),
                },
            };
            let next = current + by;
            if !next.is_finite() {
                return Reply::error("ERR increment would produce NaN or Infinity");
            }
            let text = Bytes::from(format_double(next));
            hash.insert(a[1].clone(), text.clone());
            Reply::Bulk(text)
        })
    }

    fn zadd(&self, db: usize, a: &[Bytes]) -> Reply {
        let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
            (false, false, false, false, false, false);
        let mut i = 1;
        while i < a.len() {
            let w = &a[i];
            if eq(w, "NX") {
                nx = true;
            } else if eq(w, "XX") {
                xx = true;
            } else if eq(w, "GT") {
                gt = true;
            } else if eq(w, "LT") {
                lt = true;
            } else if eq(w, "CH") {
                ch = true;
            } else if eq(w, "INCR") {
                incr = true;
            } else {
                break;
            }
            i += 1;
        }
        let pairs = &a[i..];
        if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
            return Reply::error(SYNTAX);
        }
        if nx && xx {
            return Reply::error("ERR XX and NX options at the same time are not compatible");
        }
        if (gt && lt) || (nx && (gt || lt)) {
            return Reply::error(
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            );
        }
        if incr && pairs.len() != 2 {
            return Reply::error("ERR INCR option supports a single increment-element pair");
        }
        let mut parsed = Vec::with_capacity(pairs.len() / 2);
        for pair in pairs.chunks(2) {
            match parse_score(&pair[0]) {
                Some(score) => parsed.push((score, pair[1].clone())),
                None => return Reply::error("ERR value is not a valid float"),
            }
        }
        with_collection(&mut self.shard(db, &a[0]), &a[0], Kind::ZSet, !xx, |v| {
            let Some(Value::ZSet(z)) = v else {
                return if incr { Reply::Nil } else { Reply::Integer(0) };
            };
            let (mut added, mut changed) = (0, 0);
            let mut last = None;
            for (score, member) in parsed {
                let current = z.scores.get(&member).copied();
                if (nx && current.is_some()) || (xx && current.is_none()) {
                    continue;
                }
                let new = if incr {
                    current.unwrap_or(0.0) + score
                } else {
                    score
                };
                if new.is_nan() {
                    return Reply::error("ERR resulting score is not a number (NaN)");
                }
                if let Some(old) = current
                    && ((gt && new <= old) || (lt && new >= old))
                {
                    continue;
                }
                if current != Some(new) {
                    if z.insert(member, new) {
                        added += 1;
                    } else {
                        changed += 1;
                    }
                }
                last = Some(new);
            }
            if incr {
                last.map_or(Reply::Nil, Reply::Double)
            } else {
                Reply::Integer(if ch { added + changed } else { added })
            }
        })
    }
}

/// A list index as LINDEX/LSET take it (negative counts from the end), as
/// a position; `None` before the start.
fn list_position(len: usize, index: i64) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    usize::try_from(i).ok()
}

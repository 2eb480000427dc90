//! More string and key commands: GETRANGE SETRANGE INCRBYFLOAT GETEX
//! RENAME RENAMENX RANDOMKEY.

use bytes::Bytes;

use super::engine::{
    Engine, Entry, NOT_INTEGER, SYNTAX, Value, WRONGTYPE, eq, now_ms, parse_i64, wrong_args,
};
use super::reply::{Reply, format_double};

/// Largest string SETRANGE may grow a value to (Redis's 512 MB).
const MAX_STRING: usize = 512 * 1024 * 1024;

impl Engine {
    /// `None` if `upper` is not one of these commands.
    pub(super) fn execute_strings(
        &self,
        db: usize,
        upper: &[u8],
        name: &str,
        a: &[Bytes],
    ) -> Option<Reply> {
        Some(match upper {
            b"GETRANGE" if a.len() == 3 => {
                let (Some(start), Some(end)) = (parse_i64(&a[1]), parse_i64(&a[2])) else {
                    return Some(Reply::error(NOT_INTEGER));
                };
                match self.string(db, &a[0]) {
                    Err(e) => e,
                    Ok(None) => Reply::bulk(Bytes::new()),
                    Ok(Some(v)) => {
                        let len = v.len() as i64;
                        let s = if start < 0 {
                            (len + start).max(0)
                        } else {
                            start
                        };
                        let e = if end < 0 { len + end } else { end.min(len - 1) };
                        if s > e || s >= len {
                            Reply::bulk(Bytes::new())
                        } else {
                            Reply::Bulk(v.slice(s as usize..=e as usize))
                        }
                    }
                }
            }
            b"SETRANGE" if a.len() == 3 => {
                let Some(offset) = parse_i64(&a[1]).filter(|o| *o >= 0) else {
                    return Some(Reply::error("ERR offset is out of range"));
                };
                let offset = offset as usize;
                if offset.saturating_add(a[2].len()) > MAX_STRING {
                    return Some(Reply::error(
                        "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                    ));
                }
                let now = now_ms();
                let mut shard = self.shard(db, &a[0]);
                let (mut value, expires_at) = match shard.get(&a[0]).filter(|e| !e.expired(now)) {
                    None => (Vec::new(), 0),
                    Some(Entry {
                        value: Value::Str(v),
                        expires_at,
                        ..
                    }) => (v.to_vec(), *expires_at),
                    Some(_) => return Some(Reply::error(WRONGTYPE)),
                };
                if a[2].is_empty() {
                    return Some(Reply::Integer(value.len() as i64));
                }
                if value.len() < offset + a[2].len() {
                    value.resize(offset + a[2].len(), 0);
                }
                value[offset..offset + a[2].len()].copy_from_slice(&a[2]);
                let len = value.len();
                shard.insert(
                    a[0].clone(),
                    Entry::new(Value::Str(Bytes::from(value)), expires_at),
                );
                Reply::Integer(len as i64)
            }
            b"INCRBYFLOAT" if a.len() == 2 => {
                let Some(by) = std::str::from_utf8(&a[1])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|f| f.is_finite())
                else {
                    return Some(Reply::error("ERR value is not a valid float"));
                };
                let now = now_ms();
                let mut shard = self.shard(db, &a[0]);
                let (current, expires_at) = match shard.get(&a[0]).filter(|e| !e.expired(now)) {
                    None => (0.0, 0),
                    Some(Entry {
                        value: Value::Str(v),
                        expires_at,
                        ..
                    }) => match std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<f64>().ok())
                    {
                        Some(f) => (f, *expires_at),
                        None => return Some(Reply::error("ERR value is not a valid float")),
                    },
                    Some(_) => return Some(Reply::error(WRONGTYPE)),
                };
                let next = current + by;
                if !next.is_finite() {
                    return Some(Reply::error("ERR increment would produce NaN or Infinity"));
                }
                let text = format_double(next);
                shard.insert(
                    a[0].clone(),
                    Entry::new(Value::Str(Bytes::from(text.clone())), expires_at),
                );
                Reply::bulk(text)
            }
            b"GETEX" if !a.is_empty() => self.getex(db, a),
            b"RENAME" | b"RENAMENX" if a.len() == 2 => {
                self.rename(db, &a[0], &a[1], upper == b"RENAMENX")
            }
            b"RANDOMKEY" if a.is_empty() => {
                let now = now_ms();
                let start = (now as usize).wrapping_mul(2654435761);
                let shards = self.shard_count();
                for step in 0..shards {
                    let index = (start + step) % shards;
                    if let Some(key) = self.first_live_key(db, index, now) {
                        return Some(Reply::Bulk(key));
                    }
                }
                Reply::Nil
            }
            _ if [
                "GETRANGE",
                "SETRANGE",
                "INCRBYFLOAT",
                "GETEX",
                "RENAME",
                "RENAMENX",
                "RANDOMKEY",
            ]
            .contains(&name) =>
            {
                wrong_args(name)
            }
            _ => return None,
        })
    }

    /// The string at `key`: `Ok(None)` if missing, WRONGTYPE otherwise.
    fn string(&self, db: usize, key: &Bytes) -> Result<Option<Bytes>, Reply> {
        let shard = self.shard(db, key);
        match shard.get(key).filter(|e| !e.expired(now_ms())) {
            None => Ok(None),
            Some(Entry {
                value: Value::Str(v),
                ..
            }) => Ok(Some(v.clone())),
            Some(_) => Err(Reply::error(WRONGTYPE)),
        }
    }

    fn getex(&self, db: usize, a: &[Bytes]) -> Reply {
        let now = now_ms() as i64;
        let mut expiry: Option<u64> = None; // Some(0) = PERSIST
        let mut i = 1;
        while i < a.len() {
            let word = &a[i];
            if eq(word, "PERSIST") {
                expiry = Some(0);
                i += 1;
                continue;
            }
            let Some(value) = a.get(i + 1) else {
                return Reply::error(SYNTAX);
            };
            let Some(n) = parse_i64(value) else {
                return Reply::error(NOT_INTEGER);
            };
            if n <= 0 {
                return Reply::error("ERR invalid expire time in 'getex' command");
            }
            let at = if eq(word, "EX") {
                now.saturating_add(n.saturating_mul(1000))
            } else if eq(word, "PX") {
                now.saturating_add(n)
            } else if eq(word, "EXAT") {
                n.saturating_mul(1000)
            } else if eq(word, "PXAT") {
                n
            } else {
                return Reply::error(SYNTAX);
            };
            expiry = Some(at.max(1) as u64);
            i += 2;
        }
        let mut shard = self.shard(db, &a[0]);
        match shard.get_mut(&a[0]).filter(|e| !e.expired(now as u64)) {
            None => Reply::Nil,
            Some(Entry {
                value: Value::Str(v),
                expires_at,
                ..
            }) => {
                if let Some(at) = expiry {
                    *expires_at = at;
                }
                Reply::Bulk(v.clone())
            }
            Some(_) => Reply::error(WRONGTYPE),
        }
    }

    fn rename(&self, db: usize, from: &Bytes, to: &Bytes, only_if_absent: bool) -> Reply {
        let now = now_ms();
        let entry = {
            let mut shard = self.shard(db, from);
            match shard.remove(from) {
                Some(e) if !e.expired(now) => e,
                _ => return Reply::error("ERR no such key"),
            }
        };
        if from == to {
            self.shard(db, from).insert(from.clone(), entry);
            return if only_if_absent {
                Reply::Integer(0)
            } else {
                Reply::ok()
            };
        }
        let mut target = self.shard(db, to);
        if only_if_absent && target.get(to).is_some_and(|e| !e.expired(now)) {
            drop(target);
            self.shard(db, from).insert(from.clone(), entry);
            return Reply::Integer(0);
        }
        let list = matches!(entry.value, Value::List(_));
        target.insert(to.clone(), entry);
        drop(target);
        if list {
            // A client may be blocked waiting for a list under this name.
            self.list_pushed(db, to);
        }
        if only_if_absent {
            Reply::Integer(1)
        } else {
            Reply::ok()
        }
    }
}

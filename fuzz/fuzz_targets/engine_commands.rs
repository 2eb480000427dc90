//! Why: every argument of every command comes straight from a client; a
//! panic in `Engine::execute` drops that client mid-command, and a huge
//! allocation aborts the whole server. This runs sequences of real commands
//! with arbitrary arguments on a fresh engine and checks that nothing
//! panics or blows up memory (replies are also encoded in RESP2 and RESP3).
//!
//! Input layout: commands separated by '\n'; in each, the first byte picks
//! the command name from `COMMANDS` and the rest is split on 0x00 into
//! arguments. E.g. `[idx of SET] k \0 v \n [idx of GET] k`.
#![no_main]

use bunbase_core::kv::engine::Session;
use bunbase_core::kv::{Engine, EngineConfig};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

/// Every command `Engine::execute` answers (kv/engine.rs, types.rs, strings.rs);
/// MULTI/WATCH/AUTH/pub-sub belong to the connection and are left out.
#[rustfmt::skip]
const COMMANDS: &[&str] = &[
    "PING", "ECHO", "QUIT", "SELECT", "GET", "SET", "SETNX", "SETEX", "PSETEX", "MGET", "MSET",
    "GETDEL", "INCR", "DECR", "INCRBY", "DECRBY", "APPEND", "STRLEN", "DEL", "UNLINK", "EXISTS",
    "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "TTL", "PTTL", "PERSIST", "TYPE", "DBSIZE",
    "KEYS", "SCAN", "FLUSHDB", "FLUSHALL", "TIME", "HELLO", "INFO", "CLIENT", "CONFIG", "COMMAND",
    "LPUSH", "RPUSH", "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LTRIM", "LSET", "LREM",
    "LINSERT", "HSET", "HMSET", "HSETNX", "HGET", "HMGET", "HGETALL", "HKEYS", "HVALS", "HDEL",
    "HEXISTS", "HLEN", "HINCRBY", "HSCAN", "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SCARD",
    "SMISMEMBER", "SINTER", "SUNION", "SDIFF", "SPOP", "SRANDMEMBER", "SSCAN", "ZADD", "ZSCORE",
    "ZCARD", "ZREM", "ZRANGE", "ZRANGEBYSCORE", "ZREMRANGEBYSCORE", "ZCOUNT", "ZINCRBY", "ZRANK",
    "ZREVRANK", "ZPOPMIN", "ZPOPMAX", "GETRANGE", "SETRANGE", "INCRBYFLOAT", "GETEX", "RENAME",
    "RENAMENX", "RANDOMKEY", "HINCRBYFLOAT", "BLPOP", "BRPOP", "ZREVRANGE", "ZRANGEBYLEX",
    "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE",
];

fuzz_target!(|data: &[u8]| {
    let engine = Engine::new(EngineConfig::default());
    let mut session = Session::new(1);
    let mut out = BytesMut::new();
    for line in data.split(|b| *b == b'\n').take(64) {
        let Some((&pick, rest)) = line.split_first() else {
            continue;
        };
        let name = COMMANDS[usize::from(pick) % COMMANDS.len()];
        let mut args = vec![Bytes::from_static(name.as_bytes())];
        if !rest.is_empty() {
            args.extend(rest.split(|b| *b == 0).map(Bytes::copy_from_slice));
        }
        // SETRANGE may legitimately build a 512 MB string; that only
        // measures memory, so keep offsets small.
        if name == "SETRANGE" && args.get(2).is_some_and(|offset| offset.len() > 6) {
            continue;
        }
        let reply = engine.execute(&mut session, &args);
        out.clear();
        reply.encode(&mut out, false);
        reply.encode(&mut out, true);
    }
});

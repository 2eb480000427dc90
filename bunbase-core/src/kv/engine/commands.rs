//! The commands Bunder knows, with what COMMAND INFO / COMMAND DOCS report
//! about them (arity, flags, key positions, group, summary) and what the
//! engine needs (is a name known, may a command grow memory).

use bytes::Bytes;

use super::eq;
use crate::kv::glob;
use crate::kv::reply::Reply;

/// One command. `arity` counts the name, negative = at least that many;
/// `keys` is (first, last, step) as Redis reports them; `syntax` lists
/// the arguments (see [`arguments`]).
struct Spec {
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    group: &'static str,
    since: &'static str,
    syntax: &'static str,
    summary: &'static str,
}

const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];
const W: &[&str] = &["write"];
const WF: &[&str] = &["write", "fast"];
const WD: &[&str] = &["write", "denyoom"];
const WDF: &[&str] = &["write", "denyoom", "fast"];
const WB: &[&str] = &["write", "noscript", "blocking"];
const CONN: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const PUBSUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const NONE: &[&str] = &[];

const K1: (i64, i64, i64) = (1, 1, 1);
const KALL: (i64, i64, i64) = (1, -1, 1);
const K0: (i64, i64, i64) = (0, 0, 0);

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $group:literal, $since:literal, $syntax:literal, $summary:literal) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            group: $group,
            since: $since,
            syntax: $syntax,
            summary: $summary,
        }
    };
}

/// Sorted by name (binary search; a test checks the order). Columns: name,
/// arity, flags, keys, group, since, syntax, summary.
#[rustfmt::skip]
const TABLE: &[Spec] = &[
    spec!("append", 3, WDF, K1, "string", "2.0.0", "key value", "Appends a string to the value of a key; creates the key if needed."),
    spec!("auth", -2, CONN, K0, "connection", "1.0.0", "[username] password", "Authenticates the connection."),
    spec!("blpop", -3, WB, (1, -2, 1), "list", "2.0.0", "key... timeout", "Removes and returns the first element of the first non-empty list, or blocks until one is available."),
    spec!("brpop", -3, WB, (1, -2, 1), "list", "2.0.0", "key... timeout", "Removes and returns the last element of the first non-empty list, or blocks until one is available."),
    spec!("client", -2, NONE, K0, "connection", "2.4.0", "", "Connection commands: ID, INFO, LIST, GETNAME, SETNAME, SETINFO."),
    spec!("command", -1, &["loading", "stale"], K0, "server", "2.8.13", "", "Returns detailed information about commands."),
    spec!("config", -2, NONE, K0, "server", "2.0.0", "", "Reads or changes configuration: GET, SET."),
    spec!("dbsize", 1, RF, K0, "server", "1.0.0", "", "Returns the number of keys in the database."),
    spec!("decr", 2, WDF, K1, "string", "1.0.0", "key", "Decrements the integer value of a key by one."),
    spec!("decrby", 3, WDF, K1, "string", "1.0.0", "key decrement", "Decrements the integer value of a key by a number."),
    spec!("del", -2, W, KALL, "generic", "1.0.0", "key...", "Deletes one or more keys."),
    spec!("discard", 1, TX, K0, "transactions", "2.0.0", "", "Discards a transaction."),
    spec!("echo", 2, &["fast"], K0, "connection", "1.0.0", "message", "Returns the given string."),
    spec!("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], K0, "transactions", "1.2.0", "", "Executes all commands in a transaction."),
    spec!("exists", -2, RF, KALL, "generic", "1.0.0", "key...", "Counts how many of the keys exist."),
    spec!("expire", 3, WF, K1, "generic", "1.0.0", "key seconds", "Sets a key's time to live in seconds."),
    spec!("expireat", 3, WF, K1, "generic", "1.2.0", "key unix-time-seconds", "Sets a key's expiry to a Unix time in seconds."),
    spec!("flushall", -1, W, K0, "server", "1.0.0", "[ASYNC|SYNC]", "Removes all keys from all databases."),
    spec!("flushdb", -1, W, K0, "server", "1.0.0", "[ASYNC|SYNC]", "Removes all keys from the current database."),
    spec!("get", 2, RF, K1, "string", "1.0.0", "key", "Returns the string value of a key."),
    spec!("getdel", 2, WF, K1, "string", "6.2.0", "key", "Returns the string value of a key and deletes the key."),
    spec!("getex", -2, WF, K1, "string", "6.2.0", "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]", "Returns the string value of a key, changing its expiry."),
    spec!("getrange", 4, R, K1, "string", "2.4.0", "key start end", "Returns a substring of the string value of a key."),
    spec!("hdel", -3, WF, K1, "hash", "2.0.0", "key field...", "Deletes fields from a hash."),
    spec!("hello", -1, CONN, K0, "connection", "6.0.0", "[protover [AUTH username password] [SETNAME clientname]]", "Handshakes: protocol version, authentication, name."),
    spec!("hexists", 3, RF, K1, "hash", "2.0.0", "key field", "Tells whether a field exists in a hash."),
    spec!("hget", 3, RF, K1, "hash", "2.0.0", "key field", "Returns the value of a field in a hash."),
    spec!("hgetall", 2, R, K1, "hash", "2.0.0", "key", "Returns all fields and values of a hash."),
    spec!("hincrby", 4, WDF, K1, "hash", "2.0.0", "key field increment", "Increments the integer value of a field in a hash by a number."),
    spec!("hincrbyfloat", 4, WDF, K1, "hash", "2.6.0", "key field increment", "Increments the floating point value of a field in a hash by a number."),
    spec!("hkeys", 2, R, K1, "hash", "2.0.0", "key", "Returns all fields of a hash."),
    spec!("hlen", 2, RF, K1, "hash", "2.0.0", "key", "Returns the number of fields in a hash."),
    spec!("hmget", -3, RF, K1, "hash", "2.0.0", "key field...", "Returns the values of fields of a hash."),
    spec!("hmset", -4, WDF, K1, "hash", "2.0.0", "key (field value)...", "Sets fields of a hash."),
    spec!("hscan", -3, R, K1, "hash", "2.8.0", "key cursor [MATCH pattern] [COUNT count]", "Iterates over the fields and values of a hash."),
    spec!("hset", -4, WDF, K1, "hash", "2.0.0", "key (field value)...", "Sets fields of a hash; creates the key if needed."),
    spec!("hsetnx", 4, WDF, K1, "hash", "2.0.0", "key field value", "Sets a field of a hash only if it does not exist."),
    spec!("hvals", 2, R, K1, "hash", "2.0.0", "key", "Returns all values of a hash."),
    spec!("incr", 2, WDF, K1, "string", "1.0.0", "key", "Increments the integer value of a key by one."),
    spec!("incrby", 3, WDF, K1, "string", "1.0.0", "key increment", "Increments the integer value of a key by a number."),
    spec!("incrbyfloat", 3, WDF, K1, "string", "2.6.0", "key increment", "Increments the floating point value of a key by a number."),
    spec!("info", -1, &["loading", "stale"], K0, "server", "1.0.0", "[section...]", "Returns information and statistics about the server."),
    spec!("keys", 2, R, K0, "generic", "1.0.0", "pattern", "Returns all key names matching a pattern."),
    spec!("lindex", 3, R, K1, "list", "1.0.0", "key index", "Returns an element of a list by its index."),
    spec!("linsert", 5, WD, K1, "list", "2.2.0", "key (BEFORE|AFTER) pivot element", "Inserts an element before or after another in a list."),
    spec!("llen", 2, RF, K1, "list", "1.0.0", "key", "Returns the length of a list."),
    spec!("lpop", -2, WF, K1, "list", "1.0.0", "key [count]", "Removes and returns the first elements of a list."),
    spec!("lpush", -3, WDF, K1, "list", "1.0.0", "key element...", "Prepends elements to a list; creates the key if needed."),
    spec!("lrange", 4, R, K1, "list", "1.0.0", "key start stop", "Returns a range of elements of a list."),
    spec!("lrem", 4, W, K1, "list", "1.0.0", "key count element", "Removes elements equal to a value from a list."),
    spec!("lset", 4, WD, K1, "list", "1.0.0", "key index element", "Sets the value of an element of a list by its index."),
    spec!("ltrim", 4, W, K1, "list", "1.0.0", "key start stop", "Keeps only a range of elements of a list."),
    spec!("mget", -2, RF, KALL, "string", "1.0.0", "key...", "Returns the string values of keys."),
    spec!("mset", -3, WD, (1, -1, 2), "string", "1.0.1", "(key value)...", "Sets the string values of keys."),
    spec!("multi", 1, TX, K0, "transactions", "1.2.0", "", "Starts a transaction."),
    spec!("persist", 2, WF, K1, "generic", "2.2.0", "key", "Removes the expiry of a key."),
    spec!("pexpire", 3, WF, K1, "generic", "2.6.0", "key milliseconds", "Sets a key's time to live in milliseconds."),
    spec!("pexpireat", 3, WF, K1, "generic", "2.6.0", "key unix-time-milliseconds", "Sets a key's expiry to a Unix time in milliseconds."),
    spec!("ping", -1, &["fast"], K0, "connection", "1.0.0", "[message]", "Returns the server's liveliness response."),
    spec!("psetex", 4, WD, K1, "string", "2.6.0", "key milliseconds value", "Sets the string value and expiry (milliseconds) of a key."),
    spec!("psubscribe", -2, PUBSUB, K0, "pubsub", "2.0.0", "pattern...", "Listens for messages published to channels matching patterns."),
    spec!("pttl", 2, RF, K1, "generic", "2.6.0", "key", "Returns a key's time to live in milliseconds."),
    spec!("publish", 3, &["pubsub", "loading", "stale", "fast"], K0, "pubsub", "2.0.0", "channel message", "Posts a message to a channel."),
    spec!("punsubscribe", -1, PUBSUB, K0, "pubsub", "2.0.0", "[pattern...]", "Stops listening to messages published to channels matching patterns."),
    spec!("quit", -1, CONN, K0, "connection", "1.0.0", "", "Closes the connection."),
    spec!("randomkey", 1, R, K0, "generic", "1.0.0", "", "Returns a random key name."),
    spec!("rename", 3, W, (1, 2, 1), "generic", "1.0.0", "key newkey", "Renames a key, overwriting the target."),
    spec!("renamenx", 3, WF, (1, 2, 1), "generic", "1.0.0", "key newkey", "Renames a key only if the target does not exist."),
    spec!("rpop", -2, WF, K1, "list", "1.0.0", "key [count]", "Removes and returns the last elements of a list."),
    spec!("rpush", -3, WDF, K1, "list", "1.0.0", "key element...", "Appends elements to a list; creates the key if needed."),
    spec!("sadd", -3, WDF, K1, "set", "1.0.0", "key member...", "Adds members to a set; creates the key if needed."),
    spec!("scan", -2, R, K0, "generic", "2.8.0", "cursor [MATCH pattern] [COUNT count] [TYPE type]", "Iterates over the key names in the database."),
    spec!("scard", 2, RF, K1, "set", "1.0.0", "key", "Returns the number of members in a set."),
    spec!("sdiff", -2, R, KALL, "set", "1.0.0", "key...", "Returns the difference of sets."),
    spec!("select", 2, &["loading", "stale", "fast"], K0, "connection", "1.0.0", "index", "Changes the selected database."),
    spec!("set", -3, WD, K1, "string", "1.0.0", "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]", "Sets the string value of a key, with options for expiry and conditions."),
    spec!("setex", 4, WD, K1, "string", "2.0.0", "key seconds value", "Sets the string value and expiry (seconds) of a key."),
    spec!("setnx", 3, WDF, K1, "string", "1.0.0", "key value", "Sets the string value of a key only if it does not exist."),
    spec!("setrange", 4, WD, K1, "string", "2.2.0", "key offset value", "Overwrites part of a string value from an offset."),
    spec!("sinter", -2, R, KALL, "set", "1.0.0", "key...", "Returns the intersection of sets."),
    spec!("sismember", 3, RF, K1, "set", "1.0.0", "key member", "Tells whether a member belongs to a set."),
    spec!("smembers", 2, R, K1, "set", "1.0.0", "key", "Returns all members of a set."),
    spec!("smismember", -3, RF, K1, "set", "6.2.0", "key member...", "Tells whether each of several members belongs to a set."),
    spec!("spop", -2, WF, K1, "set", "1.0.0", "key [count]", "Removes and returns random members of a set."),
    spec!("srandmember", -2, R, K1, "set", "1.0.0", "key [count]", "Returns random members of a set."),
    spec!("srem", -3, WF, K1, "set", "1.0.0", "key member...", "Removes members from a set."),
    spec!("sscan", -3, R, K1, "set", "2.8.0", "key cursor [MATCH pattern] [COUNT count]", "Iterates over the members of a set."),
    spec!("strlen", 2, RF, K1, "string", "2.2.0", "key", "Returns the length of a string value."),
    spec!("subscribe", -2, PUBSUB, K0, "pubsub", "2.0.0", "channel...", "Listens for messages published to channels."),
    spec!("sunion", -2, R, KALL, "set", "1.0.0", "key...", "Returns the union of sets."),
    spec!("time", 1, &["loading", "stale", "fast"], K0, "server", "2.6.0", "", "Returns the server time."),
    spec!("ttl", 2, RF, K1, "generic", "1.0.0", "key", "Returns a key's time to live in seconds."),
    spec!("type", 2, RF, K1, "generic", "1.0.0", "key", "Returns the type of the value stored at a key."),
    spec!("unlink", -2, WF, KALL, "generic", "4.0.0", "key...", "Deletes one or more keys."),
    spec!("unsubscribe", -1, PUBSUB, K0, "pubsub", "2.0.0", "[channel...]", "Stops listening to messages posted to channels."),
    spec!("unwatch", 1, TX, K0, "transactions", "2.2.0", "", "Forgets all watched keys."),
    spec!("watch", -2, TX, KALL, "transactions", "2.2.0", "key...", "Watches keys: EXEC fails if one changes first."),
    spec!("zadd", -4, WDF, K1, "sorted-set", "1.2.0", "key [NX|XX] [GT|LT] [CH] [INCR] (score member)...", "Adds members to a sorted set, or updates their scores."),
    spec!("zcard", 2, RF, K1, "sorted-set", "1.2.0", "key", "Returns the number of members in a sorted set."),
    spec!("zcount", 4, RF, K1, "sorted-set", "2.0.0", "key min max", "Counts the members of a sorted set within a range of scores."),
    spec!("zincrby", 4, WDF, K1, "sorted-set", "1.2.0", "key increment member", "Increments the score of a member of a sorted set."),
    spec!("zpopmax", -2, WF, K1, "sorted-set", "5.0.0", "key [count]", "Removes and returns the members with the highest scores."),
    spec!("zpopmin", -2, WF, K1, "sorted-set", "5.0.0", "key [count]", "Removes and returns the members with the lowest scores."),
    spec!("zrange", -4, R, K1, "sorted-set", "1.2.0", "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]", "Returns members of a sorted set by rank, score or lexicographic range."),
    spec!("zrangebylex", -4, R, K1, "sorted-set", "2.8.9", "key min max [LIMIT offset count]", "Returns members of a sorted set within a lexicographic range."),
    spec!("zrangebyscore", -4, R, K1, "sorted-set", "1.0.5", "key min max [WITHSCORES] [LIMIT offset count]", "Returns members of a sorted set within a range of scores."),
    spec!("zrank", 3, RF, K1, "sorted-set", "2.0.0", "key member", "Returns the rank of a member, scores ascending."),
    spec!("zrem", -3, WF, K1, "sorted-set", "1.2.0", "key member...", "Removes members from a sorted set."),
    spec!("zremrangebyscore", 4, W, K1, "sorted-set", "1.2.0", "key min max", "Removes the members of a sorted set within a range of scores."),
    spec!("zrevrange", -4, R, K1, "sorted-set", "1.2.0", "key start stop [WITHSCORES]", "Returns members of a sorted set by rank, scores descending."),
    spec!("zrevrangebylex", -4, R, K1, "sorted-set", "2.8.9", "key max min [LIMIT offset count]", "Returns members of a sorted set within a lexicographic range, in reverse."),
    spec!("zrevrangebyscore", -4, R, K1, "sorted-set", "2.2.0", "key max min [WITHSCORES] [LIMIT offset count]", "Returns members of a sorted set within a range of scores, descending."),
    spec!("zrevrank", 3, RF, K1, "sorted-set", "2.0.0", "key member", "Returns the rank of a member, scores descending."),
    spec!("zscore", 3, RF, K1, "sorted-set", "1.2.0", "key member", "Returns the score of a member of a sorted set."),
];

/// Finds a command by name, in any case.
fn find(name: &[u8]) -> Option<&'static Spec> {
    position(name).map(|i| &TABLE[i])
}

/// A command's place in the table (its slot in the per-command counters).
pub(super) fn position(name: &[u8]) -> Option<usize> {
    TABLE
        .binary_search_by(|s| {
            s.name
                .bytes()
                .cmp(name.iter().map(|b| b.to_ascii_lowercase()))
        })
        .ok()
}

/// [`position`] for an already upper-cased name, by hash (this runs for
/// every command, to count it).
pub(super) fn position_upper(upper: &[u8]) -> Option<usize> {
    static INDEX: std::sync::OnceLock<
        std::collections::HashMap<Vec<u8>, usize, foldhash::fast::FixedState>,
    > = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            TABLE
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.to_ascii_uppercase().into_bytes(), i))
                .collect()
        })
        .get(upper)
        .copied()
}

/// How many commands the table holds.
pub(super) fn count() -> usize {
    TABLE.len()
}

/// The name at a table position.
pub(super) fn name_at(position: usize) -> &'static str {
    TABLE.get(position).map_or("unknown", |s| s.name)
}

/// A command's arity as COMMAND INFO gives it (negative: at least).
pub(super) fn arity(name: &[u8]) -> Option<i64> {
    find(name).map(|s| s.arity)
}

/// Whether `name` is a command we know (for wrong-arity errors).
pub(super) fn known(name: &[u8]) -> bool {
    find(name).is_some()
}

/// Whether a command may grow memory (refused over `maxmemory`).
pub(super) fn denies_oom(name: &[u8]) -> bool {
    find(name).is_some_and(|s| s.flags.contains(&"denyoom"))
}

/// Redis's ACL categories, from the flags and the group.
fn categories(spec: &Spec) -> Vec<Reply> {
    let mut out = Vec::new();
    let flag = |f: &str| spec.flags.contains(&f);
    if spec.group == "generic" {
        out.push("@keyspace");
    }
    if flag("write") {
        out.push("@write");
    }
    if flag("readonly") {
        out.push("@read");
    }
    out.push(match spec.group {
        "string" => "@string",
        "list" => "@list",
        "hash" => "@hash",
        "set" => "@set",
        "sorted-set" => "@sortedset",
        "connection" => "@connection",
        "pubsub" => "@pubsub",
        "transactions" => "@transaction",
        _ => "",
    });
    out.push(if flag("fast") { "@fast" } else { "@slow" });
    if flag("blocking") {
        out.push("@blocking");
    }
    out.into_iter()
        .filter(|c| !c.is_empty())
        .map(Reply::Simple)
        .collect()
}

/// COMMAND INFO's entry: [name, arity, flags, first key, last key, step,
/// ACL categories, tips, key specs, subcommands].
fn info(spec: &Spec) -> Reply {
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Integer(spec.arity),
        Reply::Array(spec.flags.iter().map(|f| Reply::Simple(f)).collect()),
        Reply::Integer(spec.keys.0),
        Reply::Integer(spec.keys.1),
        Reply::Integer(spec.keys.2),
        Reply::Array(categories(spec)),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

/// COMMAND DOCS's entry: the fields Redis always sends, and the
/// arguments (redis-cli builds its hints from them).
fn docs(spec: &Spec) -> Reply {
    let mut fields = vec![
        (Reply::bulk("summary"), Reply::bulk(spec.summary)),
        (Reply::bulk("since"), Reply::bulk(spec.since)),
        (Reply::bulk("group"), Reply::bulk(spec.group)),
    ];
    let arguments = arguments(spec.syntax);
    if !arguments.is_empty() {
        fields.push((
            Reply::bulk("arguments"),
            Reply::Array(arguments.iter().map(Arg::reply).collect()),
        ));
    }
    Reply::Map(fields)
}

/// An argument as COMMAND DOCS describes it.
#[derive(Default)]
struct Arg {
    name: String,
    /// `key`, `string`, `pure-token` (a literal word), `oneof`, `block`.
    kind: &'static str,
    /// The literal word that introduces it (`EX` of `EX seconds`).
    token: Option<String>,
    optional: bool,
    multiple: bool,
    args: Vec<Arg>,
}

impl Arg {
    /// An UPPER-case word is a literal; others name a value.
    fn word(word: &str) -> Arg {
        if word.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
            Arg {
                name: word.to_ascii_lowercase(),
                kind: "pure-token",
                token: Some(word.to_string()),
                ..Arg::default()
            }
        } else {
            Arg {
                name: word.to_string(),
                kind: if word.ends_with("key") {
                    "key"
                } else {
                    "string"
                },
                ..Arg::default()
            }
        }
    }

    /// Items in a row: one argument (`EX seconds` is a value with its
    /// token), or a block of them.
    fn sequence(mut items: Vec<Arg>) -> Arg {
        let plain = |a: &Arg| !a.optional && !a.multiple && a.args.is_empty();
        let led_by_token = items
            .first()
            .is_some_and(|a| a.kind == "pure-token" && plain(a));
        if items.len() == 1 {
            return items.remove(0);
        }
        if led_by_token && items.len() == 2 && plain(&items[1]) && items[1].kind != "pure-token" {
            let value = items.remove(1);
            return Arg {
                token: items.remove(0).token,
                ..value
            };
        }
        if led_by_token {
            let head = items.remove(0);
            return Arg {
                name: head.name,
                kind: "block",
                token: head.token,
                args: items,
                ..Arg::default()
            };
        }
        Arg {
            name: items.first().map(|a| a.name.clone()).unwrap_or_default(),
            kind: "block",
            args: items,
            ..Arg::default()
        }
    }

    fn reply(&self) -> Reply {
        let mut fields = vec![
            (Reply::bulk("name"), Reply::bulk(self.name.clone())),
            (Reply::bulk("type"), Reply::bulk(self.kind)),
        ];
        if let Some(token) = &self.token {
            fields.push((Reply::bulk("token"), Reply::bulk(token.clone())));
        }
        let flags: Vec<Reply> = [("optional", self.optional), ("multiple", self.multiple)]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(flag, _)| Reply::Simple(flag))
            .collect();
        if !flags.is_empty() {
            fields.push((Reply::bulk("flags"), Reply::Array(flags)));
        }
        if !self.args.is_empty() {
            fields.push((
                Reply::bulk("arguments"),
                Reply::Array(self.args.iter().map(Arg::reply).collect()),
            ));
        }
        Reply::Map(fields)
    }
}

/// Reads a `Spec::syntax`: words (UPPER case = literal), `[…]` optional,
/// `(…)` grouped, `a|b` alternatives inside brackets, `...` after an item
/// = repeatable. `key [NX|XX] (field value)...`
fn arguments(syntax: &str) -> Vec<Arg> {
    Syntax { rest: syntax }.items()
}

struct Syntax<'a> {
    rest: &'a str,
}

impl Syntax<'_> {
    /// Items up to the end, a `|` or a closing bracket.
    fn items(&mut self) -> Vec<Arg> {
        let mut out = Vec::new();
        loop {
            self.rest = self.rest.trim_start();
            let mut arg = match self.rest.chars().next() {
                None | Some('|' | ']' | ')') => return out,
                Some(open @ ('[' | '(')) => {
                    self.rest = &self.rest[1..];
                    let mut arg = self.alternatives();
                    self.rest = self.rest.get(1..).unwrap_or_default();
                    arg.optional |= open == '[';
                    arg
                }
                Some(_) => {
                    let end = self
                        .rest
                        .find(|c: char| " []()|.".contains(c))
                        .unwrap_or(self.rest.len());
                    let word = Arg::word(&self.rest[..end]);
                    self.rest = &self.rest[end..];
                    word
                }
            };
            if let Some(rest) = self.rest.strip_prefix("...") {
                arg.multiple = true;
                self.rest = rest;
            }
            out.push(arg);
        }
    }

    fn alternatives(&mut self) -> Arg {
        let mut choices = vec![Arg::sequence(self.items())];
        while let Some(rest) = self.rest.strip_prefix('|') {
            self.rest = rest;
            choices.push(Arg::sequence(self.items()));
        }
        if choices.len() == 1 {
            return choices.remove(0);
        }
        Arg {
            name: choices[0].name.clone(),
            kind: "oneof",
            args: choices,
            ..Arg::default()
        }
    }
}

/// COMMAND [COUNT | LIST | INFO name… | DOCS name…].
pub(super) fn command(a: &[Bytes]) -> Reply {
    let Some(sub) = a.first() else {
        return Reply::Array(TABLE.iter().map(info).collect());
    };
    let names = &a[1..];
    if eq(sub, "COUNT") {
        if !names.is_empty() {
            return Reply::error("ERR wrong number of arguments for 'command|count' command");
        }
        Reply::Integer(TABLE.len() as i64)
    } else if eq(sub, "INFO") {
        if names.is_empty() {
            return Reply::Array(TABLE.iter().map(info).collect());
        }
        Reply::Array(
            names
                .iter()
                .map(|n| find(n).map_or(Reply::Nil, info))
                .collect(),
        )
    } else if eq(sub, "DOCS") {
        let specs: Vec<&Spec> = if names.is_empty() {
            TABLE.iter().collect()
        } else {
            names.iter().filter_map(|n| find(n)).collect()
        };
        Reply::Map(
            specs
                .into_iter()
                .map(|s| (Reply::bulk(s.name), docs(s)))
                .collect(),
        )
    } else if eq(sub, "LIST") {
        let pattern = match names {
            [] => None,
            [by, kind, pattern] if eq(by, "FILTERBY") && eq(kind, "PATTERN") => Some(pattern),
            _ => return Reply::error(super::SYNTAX),
        };
        Reply::Array(
            TABLE
                .iter()
                .filter(|s| pattern.is_none_or(|p| glob::matches(p, s.name.as_bytes())))
                .map(|s| Reply::bulk(s.name))
                .collect(),
        )
    } else {
        Reply::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        ))
    }
}

#[cfg(test)]
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What redis-cli (7.0) shows as a command's parameters, built from
    /// COMMAND DOCS's arguments the way it builds them.
    fn hint(args: &[Arg], separator: &str) -> String {
        let one = |a: &Arg| {
            let token = a.token.clone().unwrap_or_default();
            let token = if token.is_empty() || a.kind == "pure-token" {
                token
            } else {
                format!("{token} ")
            };
            let repeat = match a.kind {
                "oneof" => hint(&a.args, "|"),
                "block" => hint(&a.args, " "),
                "pure-token" => String::new(),
                _ => a.name.clone(),
            };
            let mut out = format!("{token}{repeat}");
            if a.multiple {
                out = format!("{out} [{repeat} ...]");
            }
            if a.optional {
                out = format!("[{out}]");
            }
            out
        };
        args.iter().map(one).collect::<Vec<_>>().join(separator)
    }

    #[test]
    fn arguments_give_redis_cli_the_same_hints_as_redis() {
        // The hints redis-server 7 gives redis-cli for these commands.
        let redis = [
            (
                "set",
                "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
            ),
            (
                "zrange",
                "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]",
            ),
            ("hset", "key field value [field value ...]"),
            ("blpop", "key [key ...] timeout"),
            ("linsert", "key BEFORE|AFTER pivot element"),
            (
                "hello",
                "[protover [AUTH username password] [SETNAME clientname]]",
            ),
            ("info", "[section [section ...]]"),
            (
                "zadd",
                "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]",
            ),
            ("ping", "[message]"),
        ];
        for (name, want) in redis {
            let spec = find(name.as_bytes()).unwrap();
            assert_eq!(hint(&arguments(spec.syntax), " "), want, "{name}");
        }
        // Every syntax reads back as written, with repeats spelled out.
        let expand = |syntax: &str| {
            let mut out = String::new();
            let mut rest = syntax;
            while let Some(c) = rest.chars().next() {
                if c == '(' {
                    let close = rest.find(')').unwrap();
                    let inner = &rest[1..close];
                    rest = &rest[close + 1..];
                    match rest.strip_prefix("...") {
                        Some(r) => {
                            out += &format!("{inner} [{inner} ...]");
                            rest = r;
                        }
                        None => out += inner,
                    }
                } else if let Some(r) = rest.strip_prefix("...") {
                    let start = out.rfind([' ', '[']).map_or(0, |i| i + 1);
                    let word = out[start..].to_string();
                    out += &format!(" [{word} ...]");
                    rest = r;
                } else {
                    out.push(c);
                    rest = &rest[1..];
                }
            }
            out
        };
        for spec in TABLE {
            assert_eq!(
                hint(&arguments(spec.syntax), " "),
                expand(spec.syntax),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn the_table_is_sorted_so_lookups_find_every_command() {
        for pair in TABLE.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for spec in TABLE {
            assert!(
                known(spec.name.to_ascii_uppercase().as_bytes()),
                "{}",
                spec.name
            );
        }
        assert!(!known(b"NOSUCH"));
        assert!(denies_oom(b"set") && !denies_oom(b"DEL") && !denies_oom(b"GET"));
    }
}

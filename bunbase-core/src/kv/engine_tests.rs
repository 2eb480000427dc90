//! String and key commands: Redis's replies and error texts.

use bytes::Bytes;

use super::engine::{Engine, EngineConfig, Session};
use super::reply::Reply;

fn run(engine: &Engine, session: &mut Session, line: &str) -> Reply {
    let args: Vec<Bytes> = line
        .split(' ')
        .map(|s| Bytes::from(s.to_string()))
        .collect();
    engine.execute(session, &args)
}

fn bulk(s: &str) -> Reply {
    Reply::bulk(s.to_string())
}

fn err(reply: Reply) -> String {
    match reply {
        Reply::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn strings() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    assert_eq!(run(&e, s, "SET k v"), Reply::ok());
    assert_eq!(run(&e, s, "get k"), bulk("v"));
    assert_eq!(run(&e, s, "SET k w NX"), Reply::Nil);
    assert_eq!(run(&e, s, "SET k w XX GET"), bulk("v"));
    assert_eq!(run(&e, s, "SET nope w XX"), Reply::Nil);
    assert_eq!(run(&e, s, "SETNX k x"), Reply::Integer(0));
    assert_eq!(run(&e, s, "APPEND k 123"), Reply::Integer(4));
    assert_eq!(run(&e, s, "STRLEN k"), Reply::Integer(4));
    assert_eq!(run(&e, s, "MSET a 1 b 2"), Reply::ok());
    assert_eq!(
        run(&e, s, "MGET a b c"),
        Reply::Array(vec![bulk("1"), bulk("2"), Reply::Nil])
    );
    assert_eq!(run(&e, s, "GETDEL a"), bulk("1"));
    assert_eq!(run(&e, s, "GET a"), Reply::Nil);
    assert_eq!(err(run(&e, s, "SET k v NX XX")), "ERR syntax error");
    assert_eq!(
        err(run(&e, s, "SET k v EX 0")),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(run(&e, s, "SET k v EX x")),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(run(&e, s, "GET")),
        "ERR wrong number of arguments for 'get' command"
    );
    assert!(
        err(run(&e, s, "FOO a b"))
            .starts_with("ERR unknown command 'FOO', with args beginning with: 'a' 'b'")
    );
}

#[test]
fn counters() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    assert_eq!(run(&e, s, "INCR n"), Reply::Integer(1));
    assert_eq!(run(&e, s, "INCRBY n 41"), Reply::Integer(42));
    assert_eq!(run(&e, s, "DECRBY n 2"), Reply::Integer(40));
    assert_eq!(run(&e, s, "DECR n"), Reply::Integer(39));
    run(&e, s, "SET big 9223372036854775807");
    assert_eq!(
        err(run(&e, s, "INCR big")),
        "ERR increment or decrement would overflow"
    );
    run(&e, s, "SET text abc");
    assert_eq!(
        err(run(&e, s, "INCR text")),
        "ERR value is not an integer or out of range"
    );
    run(&e, s, "SET padded 007");
    assert_eq!(
        err(run(&e, s, "INCR padded")),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn expiry_and_keys() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    run(&e, s, "SET k v");
    assert_eq!(run(&e, s, "TTL k"), Reply::Integer(-1));
    assert_eq!(run(&e, s, "TTL missing"), Reply::Integer(-2));
    assert_eq!(run(&e, s, "EXPIRE k 100"), Reply::Integer(1));
    assert_eq!(run(&e, s, "TTL k"), Reply::Integer(100));
    assert_eq!(run(&e, s, "PERSIST k"), Reply::Integer(1));
    assert_eq!(run(&e, s, "PERSIST k"), Reply::Integer(0));
    run(&e, s, "SET short v PX 30");
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert_eq!(run(&e, s, "GET short"), Reply::Nil, "lazily expired");
    run(&e, s, "SET swept v PX 10");
    std::thread::sleep(std::time::Duration::from_millis(30));
    let mut freed = 0;
    let mut cursor = 0;
    for _ in 0..64 {
        let (next, n) = e.sweep_expired(cursor, 8);
        cursor = next;
        freed += n;
    }
    assert_eq!(freed, 1, "the sweep frees expired keys without traffic");
    assert_eq!(run(&e, s, "EXISTS k swept"), Reply::Integer(1));
    assert_eq!(run(&e, s, "TYPE k"), Reply::Simple("string"));
    assert_eq!(run(&e, s, "TYPE none"), Reply::Simple("none"));
    assert_eq!(run(&e, s, "DEL k k missing"), Reply::Integer(1));
    assert_eq!(run(&e, s, "EXPIRE k 10"), Reply::Integer(0));
}

#[test]
fn databases_are_separate() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    run(&e, s, "SET k zero");
    assert_eq!(run(&e, s, "SELECT 1"), Reply::ok());
    assert_eq!(run(&e, s, "GET k"), Reply::Nil);
    assert_eq!(run(&e, s, "DBSIZE"), Reply::Integer(0));
    assert_eq!(err(run(&e, s, "SELECT 16")), "ERR DB index is out of range");
    run(&e, s, "SELECT 0");
    assert_eq!(run(&e, s, "DBSIZE"), Reply::Integer(1));
    run(&e, s, "FLUSHALL");
    assert_eq!(run(&e, s, "DBSIZE"), Reply::Integer(0));
}

#[test]
fn connection_commands() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(7);
    assert_eq!(run(&e, s, "PING"), Reply::Simple("PONG"));
    assert_eq!(run(&e, s, "ECHO hi"), bulk("hi"));
    assert!(matches!(run(&e, s, "HELLO 3"), Reply::Map(_)));
    assert!(s.resp3);
    assert_eq!(run(&e, s, "CLIENT SETNAME me"), Reply::ok());
    assert_eq!(run(&e, s, "CLIENT GETNAME"), bulk("me"));
    assert_eq!(run(&e, s, "CLIENT ID"), Reply::Integer(7));
    let config = run(&e, s, "CONFIG GET save");
    assert_eq!(config, Reply::Array(vec![bulk("save"), bulk("")]));
    assert_eq!(run(&e, s, "QUIT"), Reply::ok());
    assert!(s.closing);
}

#[test]
fn scan_visits_every_key_once_and_filters() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    for i in 0..500 {
        run(&e, s, &format!("SET user:{i} x"));
    }
    run(&e, s, "SET other y");
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = run(&e, s, &format!("SCAN {cursor} MATCH user:* COUNT 50"));
        let Reply::Array(parts) = reply else { panic!() };
        let Reply::Bulk(next) = &parts[0] else {
            panic!()
        };
        let Reply::Array(keys) = &parts[1] else {
            panic!()
        };
        for k in keys {
            let Reply::Bulk(k) = k else { panic!() };
            assert!(k.starts_with(b"user:"));
            assert!(seen.insert(k.clone()), "each key once");
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 500);
    let Reply::Array(all) = run(&e, s, "KEYS *") else {
        panic!()
    };
    assert_eq!(all.len(), 501);
    assert_eq!(err(run(&e, s, "SCAN x")), "ERR invalid cursor");
    assert_eq!(err(run(&e, s, "SCAN 0 COUNT")), "ERR syntax error");
}

#[test]
fn collections_and_wrongtype() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    assert_eq!(run(&e, s, "LPUSH l a b c"), Reply::Integer(3));
    assert_eq!(run(&e, s, "RPUSH l z"), Reply::Integer(4));
    assert_eq!(
        run(&e, s, "LRANGE l 0 -1"),
        Reply::Array(vec![bulk("c"), bulk("b"), bulk("a"), bulk("z")])
    );
    assert_eq!(run(&e, s, "LINDEX l -1"), bulk("z"));
    assert_eq!(run(&e, s, "LPOP l"), bulk("c"));
    assert_eq!(
        run(&e, s, "RPOP l 2"),
        Reply::Array(vec![bulk("z"), bulk("a")])
    );
    assert_eq!(run(&e, s, "LLEN l"), Reply::Integer(1));
    run(&e, s, "LPOP l");
    assert_eq!(
        run(&e, s, "EXISTS l"),
        Reply::Integer(0),
        "empty collections disappear"
    );
    assert_eq!(run(&e, s, "LPOP l"), Reply::Nil);

    assert_eq!(run(&e, s, "HSET h f1 v1 f2 v2"), Reply::Integer(2));
    assert_eq!(run(&e, s, "HSET h f1 v9"), Reply::Integer(0));
    assert_eq!(run(&e, s, "HGET h f1"), bulk("v9"));
    assert_eq!(run(&e, s, "HINCRBY h n 5"), Reply::Integer(5));
    assert_eq!(
        err(run(&e, s, "HINCRBY h f1 1")),
        "ERR hash value is not an integer"
    );
    assert_eq!(run(&e, s, "HLEN h"), Reply::Integer(3));
    assert_eq!(run(&e, s, "HDEL h f1 nope"), Reply::Integer(1));
    assert_eq!(
        run(&e, s, "HMGET h f2 nope"),
        Reply::Array(vec![bulk("v2"), Reply::Nil])
    );
    assert_eq!(run(&e, s, "TYPE h"), Reply::Simple("hash"));

    assert_eq!(run(&e, s, "SADD s a b a"), Reply::Integer(2));
    assert_eq!(run(&e, s, "SISMEMBER s a"), Reply::Integer(1));
    assert_eq!(run(&e, s, "SCARD s"), Reply::Integer(2));
    assert_eq!(run(&e, s, "SREM s a x"), Reply::Integer(1));

    assert_eq!(run(&e, s, "ZADD z 2 b 1 a 3 c"), Reply::Integer(3));
    assert_eq!(run(&e, s, "ZADD z CH 5 a"), Reply::Integer(1));
    assert_eq!(run(&e, s, "ZADD z NX 9 a"), Reply::Integer(0));
    assert_eq!(run(&e, s, "ZADD z XX GT 1 c"), Reply::Integer(0));
    assert_eq!(
        run(&e, s, "ZRANGE z 0 -1 WITHSCORES"),
        Reply::Array(vec![
            bulk("b"),
            bulk("2"),
            bulk("c"),
            bulk("3"),
            bulk("a"),
            bulk("5")
        ])
    );
    assert_eq!(run(&e, s, "ZSCORE z a"), bulk("5"));
    assert_eq!(run(&e, s, "ZADD z INCR 1.5 b"), Reply::Double(3.5));
    assert_eq!(
        err(run(&e, s, "ZADD z x a")),
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(run(&e, s, "ZADD z NX XX 1 a")),
        "ERR XX and NX options at the same time are not compatible"
    );

    run(&e, s, "SET str v");
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for cmd in [
        "LPUSH str x",
        "HGET str f",
        "SADD str m",
        "ZADD str 1 m",
        "LLEN str",
    ] {
        assert_eq!(err(run(&e, s, cmd)), wrongtype, "{cmd}");
    }
    for cmd in ["GET h", "INCR s", "APPEND z x", "GETDEL h"] {
        assert_eq!(err(run(&e, s, cmd)), wrongtype, "{cmd}");
    }
    assert_eq!(
        run(&e, s, "EXISTS h"),
        Reply::Integer(1),
        "a refused GETDEL deletes nothing"
    );
    assert_eq!(
        run(&e, s, "SET h now-a-string"),
        Reply::ok(),
        "SET replaces any type"
    );
    assert_eq!(
        err(run(&e, s, "LPUSH")),
        "ERR wrong number of arguments for 'lpush' command"
    );
}

#[test]
fn info_reports_keyspace() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    run(&e, s, "SET a 1");
    run(&e, s, "SET b 2 EX 100");
    let Reply::Bulk(text) = run(&e, s, "INFO keyspace") else {
        panic!()
    };
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(text.contains("db0:keys=2,expires=1"), "{text}");
    let Reply::Bulk(all) = run(&e, s, "INFO") else {
        panic!()
    };
    assert!(
        String::from_utf8(all.to_vec())
            .unwrap()
            .contains("redis_version:")
    );
}

#[test]
fn more_strings_and_keys() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    run(&e, s, "SET k Hello");
    assert_eq!(run(&e, s, "GETRANGE k 1 3"), bulk("ell"));
    assert_eq!(run(&e, s, "GETRANGE k -3 -1"), bulk("llo"));
    assert_eq!(run(&e, s, "GETRANGE k 10 20"), bulk(""));
    assert_eq!(run(&e, s, "SETRANGE k 6 World"), Reply::Integer(11));
    assert_eq!(run(&e, s, "GET k"), Reply::bulk(b"Hello\0World".to_vec()));
    assert_eq!(
        err(run(&e, s, "SETRANGE k -1 x")),
        "ERR offset is out of range"
    );
    assert_eq!(run(&e, s, "INCRBYFLOAT f 10.5"), bulk("10.5"));
    assert_eq!(run(&e, s, "INCRBYFLOAT f 0.25"), bulk("10.75"));
    assert_eq!(
        err(run(&e, s, "INCRBYFLOAT k 1")),
        "ERR value is not a valid float"
    );
    assert_eq!(run(&e, s, "GETEX f EX 100"), bulk("10.75"));
    assert_eq!(run(&e, s, "TTL f"), Reply::Integer(100));
    assert_eq!(run(&e, s, "GETEX f PERSIST"), bulk("10.75"));
    assert_eq!(run(&e, s, "TTL f"), Reply::Integer(-1));
    assert_eq!(run(&e, s, "RENAME f g"), Reply::ok());
    assert_eq!(run(&e, s, "GET f"), Reply::Nil);
    assert_eq!(run(&e, s, "GET g"), bulk("10.75"));
    assert_eq!(run(&e, s, "RENAMENX g k"), Reply::Integer(0));
    assert_eq!(
        run(&e, s, "GET g"),
        bulk("10.75"),
        "a refused RENAMENX changes nothing"
    );
    assert_eq!(err(run(&e, s, "RENAME missing x")), "ERR no such key");
    assert!(matches!(run(&e, s, "RANDOMKEY"), Reply::Bulk(_)));
    run(&e, s, "FLUSHDB");
    assert_eq!(run(&e, s, "RANDOMKEY"), Reply::Nil);
}

#[test]
fn more_collection_commands() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    run(&e, s, "RPUSH l a b a c a");
    assert_eq!(run(&e, s, "LREM l 2 a"), Reply::Integer(2));
    assert_eq!(
        run(&e, s, "LRANGE l 0 -1"),
        Reply::Array(vec![bulk("b"), bulk("c"), bulk("a")])
    );
    assert_eq!(run(&e, s, "LINSERT l BEFORE c x"), Reply::Integer(4));
    assert_eq!(run(&e, s, "LINSERT l AFTER nope x"), Reply::Integer(-1));
    assert_eq!(run(&e, s, "LSET l -1 z"), Reply::ok());
    assert_eq!(
        run(&e, s, "LRANGE l 0 -1"),
        Reply::Array(vec![bulk("b"), bulk("x"), bulk("c"), bulk("z")])
    );
    assert_eq!(err(run(&e, s, "LSET l 9 q")), "ERR index out of range");
    assert_eq!(err(run(&e, s, "LSET nolist 0 q")), "ERR no such key");

    run(&e, s, "SADD s1 a b c");
    run(&e, s, "SADD s2 b c d");
    let sorted = |r: Reply| {
        let Reply::Array(items) = r else { panic!() };
        let mut v: Vec<String> = items
            .into_iter()
            .map(|i| match i {
                Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(sorted(run(&e, s, "SINTER s1 s2")), ["b", "c"]);
    assert_eq!(sorted(run(&e, s, "SUNION s1 s2")), ["a", "b", "c", "d"]);
    assert_eq!(sorted(run(&e, s, "SDIFF s1 s2")), ["a"]);
    assert_eq!(
        run(&e, s, "SMISMEMBER s1 a d"),
        Reply::Array(vec![Reply::Integer(1), Reply::Integer(0)])
    );
    assert!(matches!(run(&e, s, "SRANDMEMBER s1"), Reply::Bulk(_)));
    assert_eq!(sorted(run(&e, s, "SPOP s1 3")).len(), 3);
    assert_eq!(run(&e, s, "EXISTS s1"), Reply::Integer(0));
    let Reply::Array(page) = run(&e, s, "SSCAN s2 0 MATCH [bc]") else {
        panic!()
    };
    assert_eq!(page[0], bulk("0"), "one page, cursor 0");
    assert_eq!(sorted(page[1].clone()), ["b", "c"]);

    run(&e, s, "ZADD z 1 a 2 b 3 c");
    assert_eq!(run(&e, s, "ZINCRBY z 5 a"), bulk("6"));
    assert_eq!(run(&e, s, "ZRANK z a"), Reply::Integer(2));
    assert_eq!(run(&e, s, "ZREVRANK z a"), Reply::Integer(0));
    assert_eq!(run(&e, s, "ZRANK z nope"), Reply::Nil);
    assert_eq!(
        run(&e, s, "ZPOPMIN z"),
        Reply::Array(vec![bulk("b"), bulk("2")])
    );
    assert_eq!(
        run(&e, s, "ZPOPMAX z 5"),
        Reply::Array(vec![bulk("a"), bulk("6"), bulk("c"), bulk("3")])
    );

    run(&e, s, "HSET h f1 1 f2 2 g 3");
    let Reply::Array(page) = run(&e, s, "HSCAN h 0 MATCH f*") else {
        panic!()
    };
    assert_eq!(page[0], bulk("0"));
    let Reply::Array(items) = &page[1] else {
        panic!()
    };
    assert_eq!(items.len(), 4, "two fields with their values");
}

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

fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn hincrbyfloat() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    assert_eq!(run(&e, s, "HINCRBYFLOAT h f 1.5"), bulk("1.5"));
    assert_eq!(run(&e, s, "HINCRBYFLOAT h f 0.25"), bulk("1.75"));
    assert_eq!(run(&e, s, "HINCRBYFLOAT h f -1.75"), bulk("0"));
    assert_eq!(run(&e, s, "HINCRBYFLOAT h f 5e2"), bulk("500"));
    run(&e, s, "HSET h text abc i 5");
    assert_eq!(run(&e, s, "HINCRBYFLOAT h i 0.5"), bulk("5.5"));
    assert_eq!(run(&e, s, "HGET h i"), bulk("5.5"));
    let cases = [
        ("HINCRBYFLOAT h f abc", "ERR value is not a valid float"),
        ("HINCRBYFLOAT h f nan", "ERR value is not a valid float"),
        ("HINCRBYFLOAT h f inf", "ERR value is NaN or Infinity"),
        ("HINCRBYFLOAT h text 1", "ERR hash value is not a float"),
        (
            "HINCRBYFLOAT h f",
            "ERR wrong number of arguments for 'hincrbyfloat' command",
        ),
    ];
    for (cmd, want) in cases {
        assert_eq!(err(run(&e, s, cmd)), want, "{cmd}");
    }
    run(&e, s, "HSET h big 1e308");
    assert_eq!(
        err(run(&e, s, "HINCRBYFLOAT h big 1e308")),
        "ERR increment would produce NaN or Infinity"
    );
    run(&e, s, "SET str x");
    assert!(err(run(&e, s, "HINCRBYFLOAT str f 1")).starts_with("WRONGTYPE"));
    assert_eq!(
        run(&e, s, "EXISTS nohash"),
        Reply::Integer(0),
        "a refused increment creates nothing"
    );
    assert!(err(run(&e, s, "HINCRBYFLOAT nohash f x")).contains("valid float"));
    assert_eq!(run(&e, s, "EXISTS nohash"), Reply::Integer(0));
}

#[test]
fn zrange_by_rank_score_and_lex() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    run(&e, s, "ZADD z 1 a 2 b 3 c 4 d 5 e");
    let ok = [
        ("ZRANGE z 0 -1 REV", bulks(&["e", "d", "c", "b", "a"])),
        ("ZRANGE z 1 3 BYSCORE REV", bulks(&[])),
        (
            "ZRANGE z 3 1 BYSCORE REV WITHSCORES",
            bulks(&["c", "3", "b", "2", "a", "1"]),
        ),
        ("ZRANGE z (1 +inf BYSCORE LIMIT 1 2", bulks(&["c", "d"])),
        ("ZRANGE z 0 -1 BYSCORE LIMIT -1 2", bulks(&[])),
        (
            "ZRANGE z 0 10 BYSCORE LIMIT 1 -1",
            bulks(&["b", "c", "d", "e"]),
        ),
        ("ZRANGE z -inf inf BYSCORE LIMIT 10 1", bulks(&[])),
        (
            "ZRANGE z 5 1 REV BYSCORE",
            bulks(&["e", "d", "c", "b", "a"]),
        ),
        ("ZRANGE z - + BYLEX LIMIT 1 2", bulks(&["b", "c"])),
        ("ZRANGE z [b (d BYLEX", bulks(&["b", "c"])),
        ("ZRANGE z (d [b BYLEX REV", bulks(&["c", "b"])),
        ("ZRANGE z + - BYLEX REV LIMIT 0 2", bulks(&["e", "d"])),
        ("ZRANGE z ( + BYLEX", bulks(&["a", "b", "c", "d", "e"])),
        ("ZRANGE z + - BYLEX", bulks(&[])),
        (
            "ZRANGE z 0 -1 WITHSCORES WITHSCORES",
            bulks(&["a", "1", "b", "2", "c", "3", "d", "4", "e", "5"]),
        ),
        // `LIMIT o -1` means "all": not a LIMIT, so allowed by rank (as in Redis).
        (
            "ZRANGE z 0 -1 LIMIT 0 -1",
            bulks(&["a", "b", "c", "d", "e"]),
        ),
        ("ZRANGE z 0 -1 BYSCORE LIMIT 0 1 LIMIT 1 1", bulks(&[])),
        ("ZREVRANGE z 0 1 WITHSCORES", bulks(&["e", "5", "d", "4"])),
        ("ZREVRANGE z -2 -1", bulks(&["b", "a"])),
        (
            "ZREVRANGEBYSCORE z +inf -inf LIMIT 0 2 WITHSCORES",
            bulks(&["e", "5", "d", "4"]),
        ),
        ("ZREVRANGEBYSCORE z (5 (2", bulks(&["d", "c"])),
        (
            "ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 1 1",
            bulks(&["b", "2"]),
        ),
        ("ZRANGEBYSCORE z (1 (3", bulks(&["b"])),
        ("ZRANGEBYLEX z [c +", bulks(&["c", "d", "e"])),
        ("ZREVRANGEBYLEX z + - LIMIT 1 1", bulks(&["d"])),
        ("ZRANGE nokey 0 -1 BYSCORE", bulks(&[])),
    ];
    for (cmd, want) in ok {
        assert_eq!(run(&e, s, cmd), want, "{cmd}");
    }
    let limit_error =
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
    let withscores_error = "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
    run(&e, s, "SET str x");
    let errors = [
        ("ZRANGE z 0 -1 LIMIT 0 1", limit_error),
        ("ZRANGE z x y LIMIT 0 1", limit_error),
        ("ZREVRANGE z 0 1 LIMIT 0 1", limit_error),
        ("ZRANGE z 0 -1 BYLEX WITHSCORES", withscores_error),
        ("ZRANGEBYLEX z - + WITHSCORES", withscores_error),
        ("ZRANGE z 0 -1 BYSCORE BYLEX", "ERR syntax error"),
        ("ZRANGE z 0 -1 REV REV", "ERR syntax error"),
        ("ZREVRANGE z 0 1 BYSCORE", "ERR syntax error"),
        ("ZRANGEBYSCORE z 0 1 REV", "ERR syntax error"),
        ("ZRANGE z 0 1 BYSCORE LIMIT", "ERR syntax error"),
        ("ZRANGEBYLEX z - + LIMIT 1", "ERR syntax error"),
        ("ZRANGE z 0 -1 foo", "ERR syntax error"),
        (
            "ZRANGE z 0 1 BYSCORE LIMIT a 1",
            "ERR value is not an integer or out of range",
        ),
        (
            "ZRANGE z x 1",
            "ERR value is not an integer or out of range",
        ),
        ("ZRANGE z a 1 BYSCORE", "ERR min or max is not a float"),
        ("ZRANGEBYSCORE z ((1 3", "ERR min or max is not a float"),
        (
            "ZRANGE z a b BYLEX",
            "ERR min or max not valid string range item",
        ),
        (
            "ZRANGE z -a + BYLEX",
            "ERR min or max not valid string range item",
        ),
        (
            "ZRANGE str x 1",
            "ERR value is not an integer or out of range",
        ),
        (
            "ZRANGE str 0 1",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "ZRANGE z",
            "ERR wrong number of arguments for 'zrange' command",
        ),
        (
            "ZREVRANGEBYLEX z +",
            "ERR wrong number of arguments for 'zrevrangebylex' command",
        ),
    ];
    for (cmd, want) in errors {
        assert_eq!(err(run(&e, s, cmd)), want, "{cmd}");
    }
    // -0 equals 0 (and sorts before it).
    run(&e, s, "ZADD zero -0 m 0 n");
    assert_eq!(run(&e, s, "ZRANGEBYSCORE zero 0 0"), bulks(&["m", "n"]));
    assert_eq!(run(&e, s, "ZREVRANGEBYSCORE zero 0 0"), bulks(&["n", "m"]));
    // RESP3: member and score pairs, the score a double.
    s.resp3 = true;
    assert_eq!(
        run(&e, s, "ZRANGE z 0 1 WITHSCORES"),
        Reply::Array(vec![
            Reply::Array(vec![bulk("a"), Reply::Double(1.0)]),
            Reply::Array(vec![bulk("b"), Reply::Double(2.0)]),
        ])
    );
}

#[test]
fn blocking_pops_never_block_in_the_engine() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    run(&e, s, "RPUSH l2 a b");
    assert_eq!(run(&e, s, "BLPOP l1 l2 0"), bulks(&["l2", "a"]));
    assert_eq!(run(&e, s, "BRPOP l1 l2 0.5"), bulks(&["l2", "b"]));
    assert_eq!(run(&e, s, "EXISTS l2"), Reply::Integer(0));
    assert_eq!(
        run(&e, s, "BLPOP l1 l2 0"),
        Reply::NilArray,
        "the caller waits"
    );
    run(&e, s, "SET str x");
    let errors = [
        (
            "BLPOP str 0",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        ("BLPOP l -1", "ERR timeout is negative"),
        ("BLPOP l abc", "ERR timeout is not a float or out of range"),
        ("BLPOP l nan", "ERR timeout is not a float or out of range"),
        ("BRPOP l inf", "ERR timeout is out of range"),
        (
            "BLPOP l",
            "ERR wrong number of arguments for 'blpop' command",
        ),
    ];
    for (cmd, want) in errors {
        assert_eq!(err(run(&e, s, cmd)), want, "{cmd}");
    }
    use super::engine::block_timeout;
    assert_eq!(block_timeout(b"0"), Ok(None));
    assert_eq!(
        block_timeout(b"0.0001"),
        Ok(Some(std::time::Duration::from_millis(1))),
        "rounded up, never to zero (forever)"
    );
}

#[tokio::test]
async fn a_push_wakes_a_waiter_on_that_key_only() {
    let e = std::sync::Arc::new(Engine::new(EngineConfig::default()));
    let wait = e.wait_for_lists(0, &[Bytes::from_static(b"jobs")]);
    assert_eq!(e.blocked_clients(), 1);
    let pusher = {
        let e = e.clone();
        std::thread::spawn(move || {
            let s = &mut Session::new(2);
            run(&e, s, "RPUSH other x");
            run(&e, s, "SELECT 1");
            run(&e, s, "RPUSH jobs x");
        })
    };
    pusher.join().unwrap();
    let early = tokio::time::timeout(std::time::Duration::from_millis(50), wait.ready()).await;
    assert!(
        early.is_err(),
        "pushes to other keys and databases do not wake it"
    );
    run(&e, &mut Session::new(3), "LPUSH jobs j1");
    tokio::time::timeout(std::time::Duration::from_secs(5), wait.ready())
        .await
        .expect("woken by the push");
    drop(wait);
    assert_eq!(e.blocked_clients(), 0);
}

#[test]
fn watch_counts_an_expiry_as_a_change() {
    use super::tx::Transactions;
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    let tx = Transactions::default();
    run(&e, s, "SET short v PX 40");
    run(&e, s, "SET lasting v EX 100");
    run(&e, s, "SET plain v");
    let watch = |key: &str| {
        let key = Bytes::from(key.to_string());
        let deadline = e.expires_at(0, &key).unwrap_or(0);
        tx.watch_until(0, key, deadline)
    };
    let (short, lasting, plain, missing) = (
        watch("short"),
        watch("lasting"),
        watch("plain"),
        watch("missing"),
    );
    assert!(tx.unchanged(std::slice::from_ref(&short)));
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert!(
        !tx.unchanged(std::slice::from_ref(&short)),
        "expired (not yet removed) between WATCH and EXEC"
    );
    e.sweep_expired(0, 64);
    assert!(
        !tx.unchanged(std::slice::from_ref(&short)),
        "and once swept"
    );
    assert!(tx.unchanged(&[lasting, plain, missing.clone()]));
    run(&e, s, "SET missing now");
    let args: Vec<Bytes> = ["SET", "missing", "now"]
        .iter()
        .map(|a| Bytes::from(a.to_string()))
        .collect();
    tx.record(0, &args, &Reply::ok(), &[]);
    assert!(!tx.unchanged(&[missing]));
}

#[test]
fn client_list_and_info() {
    use super::engine::Activity;
    let e = Engine::new(EngineConfig::default());
    let worker = e.register_client(5, "10.0.0.9:4000".into(), "127.0.0.1:6379".into());
    let mut other = Session::new(5);
    other.name = Some(Bytes::from_static(b"worker"));
    other.db = 2;
    let last = [Bytes::from_static(b"get"), Bytes::from_static(b"k")];
    worker.update(
        &other,
        Activity {
            last_command: &last,
            queued: Some(2),
            ..Activity::default()
        },
    );
    let s = &mut Session::new(7);
    let _me = e.register_client(7, "10.0.0.1:5000".into(), "127.0.0.1:6379".into());
    assert_eq!(run(&e, s, "CLIENT SETNAME me"), Reply::ok());
    assert_eq!(run(&e, s, "CLIENT SETINFO LIB-NAME redis-rs"), Reply::ok());
    let text = |r: Reply| match r {
        Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    let list = text(run(&e, s, "CLIENT LIST"));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with(
            "id=5 addr=10.0.0.9:4000 laddr=127.0.0.1:6379 name=worker age=0 idle=0 flags=x db=2 sub=0 psub=0 ssub=0 multi=2 cmd=get "
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("id=7 addr=10.0.0.1:5000 "),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(" name=me ")
            && lines[1].contains(" flags=N ")
            && lines[1].contains(" cmd=client|list "),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(" resp=2 lib-name=redis-rs lib-ver="),
        "{}",
        lines[1]
    );
    let info = text(run(&e, s, "CLIENT INFO"));
    assert!(
        info.starts_with("id=7 ") && info.contains(" cmd=client|info ") && info.ends_with('\n')
    );
    assert_eq!(text(run(&e, s, "CLIENT LIST ID 5 99")).lines().count(), 1);
    assert_eq!(text(run(&e, s, "CLIENT LIST TYPE pubsub")), "");
    assert_eq!(
        text(run(&e, s, "CLIENT LIST TYPE normal")).lines().count(),
        2
    );
    drop(worker);
    assert_eq!(
        text(run(&e, s, "CLIENT LIST")).lines().count(),
        1,
        "gone when dropped"
    );
    let errors = [
        ("CLIENT LIST TYPE foo", "ERR Unknown client type 'foo'"),
        ("CLIENT LIST ID abc", "ERR Invalid client ID"),
        ("CLIENT LIST foo", "ERR syntax error"),
        ("CLIENT LIST TYPE", "ERR syntax error"),
        (
            "CLIENT SETNAME a\tb",
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ),
        (
            "HELLO 3 SETNAME a\tb",
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ),
        ("CLIENT SETINFO foo x", "ERR Unrecognized option 'foo'"),
        (
            "CLIENT SETINFO LIB-VER",
            "ERR wrong number of arguments for 'client|setinfo' command",
        ),
        (
            "CLIENT ID x",
            "ERR wrong number of arguments for 'client|id' command",
        ),
        (
            "CLIENT FOO",
            "ERR unknown subcommand 'FOO'. Try CLIENT HELP.",
        ),
    ];
    for (cmd, want) in errors {
        assert_eq!(err(run(&e, s, cmd)), want, "{cmd}");
    }
}

#[test]
fn command_info_and_docs() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    let Reply::Array(infos) = run(&e, s, "COMMAND INFO get blpop nosuch") else {
        panic!()
    };
    let Reply::Array(get) = &infos[0] else {
        panic!()
    };
    assert_eq!(get[0], bulk("get"));
    assert_eq!(get[1], Reply::Integer(2));
    assert_eq!(
        get[2],
        Reply::Array(vec![Reply::Simple("readonly"), Reply::Simple("fast")])
    );
    assert_eq!(
        &get[3..6],
        &[Reply::Integer(1), Reply::Integer(1), Reply::Integer(1)]
    );
    assert_eq!(
        get[6],
        Reply::Array(vec![
            Reply::Simple("@read"),
            Reply::Simple("@string"),
            Reply::Simple("@fast")
        ])
    );
    assert_eq!(get.len(), 10);
    let Reply::Array(blpop) = &infos[1] else {
        panic!()
    };
    assert_eq!(
        (&blpop[1], &blpop[4]),
        (&Reply::Integer(-3), &Reply::Integer(-2))
    );
    assert_eq!(infos[2], Reply::Nil, "unknown commands are nil");

    let Reply::Map(docs) = run(&e, s, "COMMAND DOCS set nosuch") else {
        panic!()
    };
    assert_eq!(docs.len(), 1, "unknown commands are left out");
    assert_eq!(docs[0].0, bulk("set"));
    let Reply::Map(fields) = &docs[0].1 else {
        panic!()
    };
    let keys: Vec<&Reply> = fields.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            &bulk("summary"),
            &bulk("since"),
            &bulk("group"),
            &bulk("arguments")
        ]
    );
    assert_eq!(run(&e, s, "COMMAND DOCS nosuch"), Reply::Map(Vec::new()));

    let Reply::Integer(count) = run(&e, s, "COMMAND COUNT") else {
        panic!()
    };
    let Reply::Array(all) = run(&e, s, "COMMAND") else {
        panic!()
    };
    assert_eq!(all.len() as i64, count);
    assert_eq!(
        run(&e, s, "COMMAND LIST FILTERBY PATTERN zrev*"),
        bulks(&[
            "zrevrange",
            "zrevrangebylex",
            "zrevrangebyscore",
            "zrevrank"
        ])
    );
    assert_eq!(
        err(run(&e, s, "COMMAND FOO")),
        "ERR unknown subcommand 'FOO'. Try COMMAND HELP."
    );
}

#[test]
fn every_listed_command_is_one_the_engine_or_the_server_answers() {
    // Connection-level commands are answered by the server shell.
    let shell = [
        "auth",
        "discard",
        "exec",
        "multi",
        "psubscribe",
        "publish",
        "punsubscribe",
        "subscribe",
        "unsubscribe",
        "unwatch",
        "watch",
    ];
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    for name in super::engine::command_names() {
        if shell.contains(&name) {
            continue;
        }
        let reply = e.execute(s, &[Bytes::from(name.to_string())]);
        if let Reply::Error(text) = &reply {
            assert!(!text.starts_with("ERR unknown command"), "{name}: {text}");
        }
        s.closing = false;
    }
}

#[test]
fn memory_estimates_follow_every_kind_of_write() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    let script = [
        "SET a hello",
        "APPEND a world",
        "SETRANGE a 20 x",
        "INCR n",
        "INCRBYFLOAT f 1.5",
        "MSET m1 v1 m2 v2",
        "GETDEL m1",
        "SET a short KEEPTTL",
        "RPUSH l a bb ccc dddd",
        "LPUSH l z",
        "LPOP l",
        "LSET l 0 longer-value",
        "LINSERT l BEFORE ccc new",
        "LREM l 1 bb",
        "LTRIM l 1 -1",
        "BRPOP l 0",
        "HSET h f1 v1 f2 v2",
        "HSET h f1 a-longer-value",
        "HINCRBY h n 10",
        "HINCRBYFLOAT h x 0.5",
        "HDEL h f2",
        "HSETNX h f3 v3",
        "SADD s a b c d",
        "SREM s a",
        "SPOP s",
        "ZADD z 1 a 2 bb 3 ccc",
        "ZINCRBY z 5 a",
        "ZREM z bb",
        "ZPOPMIN z",
        "ZADD z 9 q",
        "ZREMRANGEBYSCORE z 9 9",
        "RENAME h h2",
        "EXPIRE a 100",
        "SET gone v PX 1",
        "DEL n",
        "SELECT 3",
        "SET other-db value",
        "SELECT 0",
    ];
    for line in script {
        let reply = run(&e, s, line);
        assert!(!reply.is_error(), "{line}: {reply:?}");
        assert_eq!(e.used_memory(), e.recount_memory(), "after {line}");
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    e.sweep_expired(0, 64);
    assert_eq!(e.used_memory(), e.recount_memory(), "after the sweep");
    run(&e, s, "FLUSHDB");
    assert_eq!(e.used_memory(), e.recount_memory());
    run(&e, s, "FLUSHALL");
    assert_eq!(e.used_memory(), 0);
}

fn text(reply: Reply) -> String {
    match reply {
        Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn noeviction_refuses_writes_that_grow_memory_once_over_the_limit() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    assert_eq!(
        run(&e, s, "CONFIG GET maxmemory*"),
        bulks(&["maxmemory", "0", "maxmemory-policy", "noeviction"])
    );
    assert_eq!(run(&e, s, "CONFIG SET maxmemory 2kb"), Reply::ok());
    assert_eq!(
        run(&e, s, "CONFIG GET maxmemory"),
        bulks(&["maxmemory", "2048"])
    );
    let oom = "OOM command not allowed when used memory > 'maxmemory'.";
    let mut written = 0;
    for i in 0..100 {
        match run(&e, s, &format!("SET key:{i} value")) {
            Reply::Error(text) => {
                assert_eq!(text, oom);
                break;
            }
            _ => written += 1,
        }
    }
    assert!((10..30).contains(&written), "{written} keys fit in 2 KiB");
    assert_eq!(err(run(&e, s, "RPUSH l x")), oom);
    assert_eq!(err(run(&e, s, "INCR key:0")), oom);
    assert_eq!(run(&e, s, "GET key:0"), bulk("value"), "reads still work");
    assert_eq!(run(&e, s, "EXPIRE key:0 100"), Reply::Integer(1));
    assert_eq!(
        run(&e, s, "DEL key:0 key:1 key:2"),
        Reply::Integer(3),
        "so do deletes"
    );
    assert_eq!(run(&e, s, "SET key:0 value"), Reply::ok(), "room again");
    assert_eq!(e.evicted_keys(), 0, "noeviction never evicts");
    let info = text(run(&e, s, "INFO memory"));
    assert!(info.contains("maxmemory:2048\r\n"), "{info}");
    assert!(info.contains("maxmemory_human:2.00K\r\n"), "{info}");
    assert!(info.contains("maxmemory_policy:noeviction\r\n"), "{info}");
    assert!(
        info.contains(&format!("used_memory:{}\r\n", e.used_memory())),
        "{info}"
    );
    assert_eq!(run(&e, s, "CONFIG SET maxmemory 0"), Reply::ok());
    assert_eq!(
        run(&e, s, "RPUSH l x"),
        Reply::Integer(1),
        "no limit any more"
    );
}

#[test]
fn config_set_checks_every_value_before_applying_any() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    let memory_value = "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value";
    for bad in ["abc", "-1", "1.5mb", "10xb"] {
        assert_eq!(
            err(run(&e, s, &format!("CONFIG SET maxmemory {bad}"))),
            memory_value
        );
    }
    assert_eq!(
        err(run(
            &e,
            s,
            "CONFIG SET maxmemory 1mb maxmemory-policy allkeys-random"
        )),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, allkeys-lru, noeviction"
    );
    assert_eq!(
        run(&e, s, "CONFIG GET maxmemory"),
        bulks(&["maxmemory", "0"]),
        "nothing applied"
    );
    assert_eq!(
        err(run(&e, s, "CONFIG SET maxmemory 1 maxmemory 2")),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"
    );
    assert_eq!(err(run(&e, s, "CONFIG SET maxmemory")), "ERR syntax error");
    assert_eq!(
        run(
            &e,
            s,
            "CONFIG SET maxmemory 1k maxmemory-policy VOLATILE-LRU"
        ),
        Reply::ok()
    );
    assert_eq!(
        run(&e, s, "CONFIG GET maxmemory*"),
        bulks(&["maxmemory", "1000", "maxmemory-policy", "volatile-lru"])
    );
    let stats = e.memory_stats();
    assert_eq!(
        (stats.max, stats.policy),
        (Some(1000), super::engine::EvictionPolicy::VolatileLru)
    );
}

#[test]
fn allkeys_lru_evicts_the_keys_untouched_longest() {
    use super::engine::EvictionPolicy;
    let e = Engine::new(EngineConfig {
        max_memory: Some(usize::MAX / 2),
        eviction: EvictionPolicy::AllKeysLru,
        ..EngineConfig::default()
    });
    let s = &mut Session::new(1);
    for i in 0..40 {
        run(&e, s, &format!("SET cold:{i} value"));
    }
    run(&e, s, "SELECT 1");
    run(&e, s, "SET cold:other-db value");
    run(&e, s, "SELECT 0");
    run(&e, s, "SET hot:a value");
    run(&e, s, "SET hot:b value");
    // The access clock ticks every 100 ms.
    std::thread::sleep(std::time::Duration::from_millis(250));
    run(&e, s, "GET hot:a");
    run(&e, s, "TYPE hot:b");
    std::thread::sleep(std::time::Duration::from_millis(250));
    let limit = e.used_memory() + 10;
    e.set_max_memory(Some(limit));
    let mut evicted = Vec::new();
    for i in 0..5 {
        assert_eq!(run(&e, s, &format!("SET new:{i} value")), Reply::ok());
        evicted.append(&mut s.evicted);
    }
    run(&e, s, "PING");
    evicted.append(&mut s.evicted);
    assert!(e.used_memory() <= limit, "back under the limit");
    assert_eq!(e.evicted_keys(), evicted.len() as u64);
    assert!(evicted.len() >= 4, "{evicted:?}");
    for (db, key) in &evicted {
        assert!(key.starts_with(b"cold:"), "{key:?} was evicted (db {db})");
        let mut reader = Session::new(2);
        reader.db = *db;
        let key = String::from_utf8(key.to_vec()).unwrap();
        assert_eq!(
            run(&e, &mut reader, &format!("EXISTS {key}")),
            Reply::Integer(0)
        );
    }
    assert_eq!(run(&e, s, "EXISTS hot:a hot:b"), Reply::Integer(2));
    let info = text(run(&e, s, "INFO stats"));
    assert!(
        info.contains(&format!("evicted_keys:{}\r\n", evicted.len())),
        "{info}"
    );
}

#[test]
fn volatile_lru_evicts_only_keys_with_an_expiry() {
    use super::engine::EvictionPolicy;
    let e = Engine::new(EngineConfig {
        eviction: EvictionPolicy::VolatileLru,
        ..EngineConfig::default()
    });
    let s = &mut Session::new(1);
    for i in 0..10 {
        run(&e, s, &format!("SET keep:{i} value"));
        run(&e, s, &format!("SET temp:{i} value EX 1000"));
    }
    e.set_max_memory(Some(e.used_memory() - 1));
    assert_eq!(run(&e, s, "PING"), Reply::Simple("PONG"));
    assert_eq!(s.evicted.len(), 1, "one eviction makes room");
    assert!(s.evicted[0].1.starts_with(b"temp:"));
    e.set_max_memory(Some(1000)); // less than the ten keys without an expiry
    let oom = "OOM command not allowed when used memory > 'maxmemory'.";
    assert_eq!(
        err(run(&e, s, "SET more value")),
        oom,
        "nothing volatile left to evict"
    );
    assert_eq!(e.evicted_keys(), 10);
    assert_eq!(run(&e, s, "DBSIZE"), Reply::Integer(10));
    assert_eq!(run(&e, s, "GET keep:3"), bulk("value"));
}

#[test]
fn allkeys_lru_evicts_older_keys_first_across_the_keyspace() {
    use super::engine::EvictionPolicy;
    let e = Engine::new(EngineConfig {
        max_memory: Some(450 * 1024), // about 2000 of the 3000 keys
        eviction: EvictionPolicy::AllKeysLru,
        ..EngineConfig::default()
    });
    let s = &mut Session::new(1);
    let value = "x".repeat(50);
    for i in 0..1500 {
        run(&e, s, &format!("SET old:{i} {value}"));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for i in 0..1500 {
        run(&e, s, &format!("SET new:{i} {value}"));
    }
    let mut count = |pattern: &str| match run(&e, s, &format!("KEYS {pattern}")) {
        Reply::Array(keys) => keys.len(),
        other => panic!("{other:?}"),
    };
    let (old, new) = (count("old:*"), count("new:*"));
    assert_eq!(old + new, 3000 - e.evicted_keys() as usize);
    // Sampling is approximate: most, not all, evictions hit older keys.
    assert!(new > 1350, "kept {new} new and {old} old keys");
}

/// Found by fuzzing (fuzz/ engine_commands): SPOP/SRANDMEMBER reserved
/// room for `count` members up front, and a negative SRANDMEMBER count
/// built that many replies: one command aborted the process.
#[test]
fn huge_random_member_counts_do_not_exhaust_memory() {
    let e = Engine::new(EngineConfig::default());
    let s = &mut Session::new(1);
    let len = |reply: Reply| match reply {
        Reply::Array(items) => items.len(),
        other => panic!("expected an array, got {other:?}"),
    };
    run(&e, s, "SADD s a b c");
    assert_eq!(len(run(&e, s, "SRANDMEMBER s 9223372036854775807")), 3);
    assert_eq!(len(run(&e, s, "SRANDMEMBER s -5")), 5);
    assert_eq!(
        err(run(&e, s, "SRANDMEMBER s -9223372036854775803")),
        "ERR value is out of range"
    );
    assert_eq!(len(run(&e, s, "SPOP s 92233862730547750")), 3);
    assert_eq!(run(&e, s, "EXISTS s"), Reply::Integer(0));
}

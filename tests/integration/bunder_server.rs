//! The bunder server driven by real clients: the `redis` crate, raw bytes.

use std::sync::Arc;
use std::time::Duration;

use bunbase_core::kv::aof::{Aof, FsyncPolicy};
use bunbase_core::kv::{Engine, EngineConfig};
use bunbase_shells::bunder::{self, BunderConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

async fn start(config: BunderConfig) -> (String, CancellationToken) {
    let (addr, stop, _) = start_on(Arc::new(Engine::new(EngineConfig::default())), config).await;
    (addr, stop)
}

/// Serves `engine`; also returns the server task, which ends after `stop`.
async fn start_on(
    engine: Arc<Engine>,
    config: BunderConfig,
) -> (String, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(bunder::serve(listener, engine, config, stop.clone()));
    (addr.to_string(), stop, server)
}

async fn read_reply(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_works_unchanged() {
    let (addr, _stop) = start(BunderConfig::default()).await;
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query_async(&mut conn)
        .await
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("greeting")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, "hello");
    let n: i64 = redis::cmd("INCRBY")
        .arg("counter")
        .arg(5)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 5);
    let (a, b, missing): (String, i64, Option<String>) = redis::pipe()
        .cmd("GET")
        .arg("greeting")
        .cmd("INCR")
        .arg("counter")
        .cmd("GET")
        .arg("nope")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((a.as_str(), b, missing), ("hello", 6, None));
    let err = redis::cmd("INCR")
        .arg("greeting")
        .query_async::<i64>(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
    let ttl: i64 = {
        let _: () = redis::cmd("EXPIRE")
            .arg("greeting")
            .arg(50)
            .query_async(&mut conn)
            .await
            .unwrap();
        redis::cmd("TTL")
            .arg("greeting")
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(ttl, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_an_error_and_never_hurts_others() {
    let (addr, _stop) = start(BunderConfig::default()).await;
    let mut healthy = TcpStream::connect(&addr).await.unwrap();
    for garbage in [
        &b"*1\r\n$1073741824\r\n"[..],
        b"*99999999999\r\n",
        b"*2\r\n$3\r\nGET\r\n:5\r\n",
        b"*1\r\n$3\r\nGETXX\r\n",
        b"*-x\r\n",
    ] {
        let mut bad = TcpStream::connect(&addr).await.unwrap();
        bad.write_all(garbage).await.unwrap();
        let reply = read_reply(&mut bad).await;
        assert!(
            reply.starts_with("-ERR Protocol error"),
            "{garbage:?}: {reply}"
        );
        // And the server closed that connection.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), bad.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "connection closed after a protocol error");
    }
    // A half frame that never completes, then a hang-up: nothing happens.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk").await.unwrap();
    drop(half);
    // Binary noise that happens to be an inline command gets a normal error.
    let mut noise = TcpStream::connect(&addr).await.unwrap();
    noise.write_all(b"\x00\x01\xfe\xff\r\n").await.unwrap();
    assert!(
        read_reply(&mut noise)
            .await
            .starts_with("-ERR unknown command")
    );
    // The well-behaved client was never affected.
    healthy.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
    assert_eq!(read_reply(&mut healthy).await, "+PONG\r\n");
}

#[tokio::test]
async fn requirepass_and_client_limits() {
    let (addr, _stop) = start(BunderConfig {
        password: Some("s3cret-pass".into()),
        max_clients: 2,
        ..BunderConfig::default()
    })
    .await;
    // HELLO authenticates and switches protocol in one go (what RESP3
    // clients with a password send); without AUTH it needs a session.
    {
        let mut h = TcpStream::connect(&addr).await.unwrap();
        h.write_all(b"HELLO 3\r\n").await.unwrap();
        assert!(
            read_reply(&mut h)
                .await
                .starts_with("-NOAUTH HELLO must be called")
        );
        h.write_all(b"HELLO 3 AUTH default wrong\r\n")
            .await
            .unwrap();
        assert!(read_reply(&mut h).await.starts_with("-WRONGPASS"));
        h.write_all(b"HELLO 3 AUTH default s3cret-pass\r\n")
            .await
            .unwrap();
        let hello = read_reply(&mut h).await;
        assert!(hello.starts_with('%'), "a RESP3 map: {hello}");
        h.write_all(b"PING\r\n").await.unwrap();
        assert_eq!(read_reply(&mut h).await, "+PONG\r\n");
    }
    // Before AUTH, a huge bulk claim is refused at once (and the
    // connection closed), not buffered.
    {
        let mut big = TcpStream::connect(&addr).await.unwrap();
        big.write_all(b"*2\r\n$4\r\nAUTH\r\n$100000000\r\n")
            .await
            .unwrap();
        assert!(read_reply(&mut big).await.contains("invalid bulk length"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET k\r\n").await.unwrap();
    assert!(read_reply(&mut c).await.starts_with("-NOAUTH"));
    c.write_all(b"AUTH wrong\r\n").await.unwrap();
    assert!(read_reply(&mut c).await.starts_with("-WRONGPASS"));
    c.write_all(b"AUTH s3cret-pass\r\n").await.unwrap();
    assert_eq!(read_reply(&mut c).await, "+OK\r\n");
    c.write_all(b"SET k v\r\n").await.unwrap();
    assert_eq!(read_reply(&mut c).await, "+OK\r\n");

    let _second = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(&addr).await.unwrap();
    assert!(
        read_reply(&mut third)
            .await
            .contains("max number of clients")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_with_the_redis_crate() {
    use futures_util::StreamExt;
    let (addr, _stop) = start(BunderConfig::default()).await;
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("news").await.unwrap();
    pubsub.psubscribe("chat.*").await.unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(receivers, 1);
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("chat.room")
        .arg("hi")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(receivers, 1);
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("elsewhere")
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(receivers, 0);
    let mut messages = pubsub.on_message();
    let first = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            first.get_channel_name(),
            first.get_payload::<String>().unwrap().as_str()
        ),
        ("news", "hello")
    );
    let second = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.get_channel_name(), "chat.room");
    assert_eq!(second.get_pattern::<String>().unwrap(), "chat.*");
}

#[tokio::test]
async fn multi_exec_and_watch() {
    let (addr, _stop) = start(BunderConfig::default()).await;
    let mut a = TcpStream::connect(&addr).await.unwrap();
    let mut b = TcpStream::connect(&addr).await.unwrap();
    let say = async |c: &mut TcpStream, line: &str| {
        c.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        read_reply(c).await
    };
    assert_eq!(say(&mut a, "EXEC").await, "-ERR EXEC without MULTI\r\n");
    assert_eq!(say(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(
        say(&mut a, "MULTI").await,
        "-ERR MULTI calls can not be nested\r\n"
    );
    assert_eq!(say(&mut a, "SET k 1").await, "+QUEUED\r\n");
    assert_eq!(say(&mut a, "INCR k").await, "+QUEUED\r\n");
    assert_eq!(say(&mut a, "EXEC").await, "*2\r\n+OK\r\n:2\r\n");

    // WATCH: a write by someone else aborts EXEC.
    assert_eq!(say(&mut a, "WATCH k").await, "+OK\r\n");
    assert_eq!(say(&mut b, "SET k 10").await, "+OK\r\n");
    assert_eq!(say(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(say(&mut a, "INCR k").await, "+QUEUED\r\n");
    assert_eq!(say(&mut a, "EXEC").await, "*-1\r\n");
    assert_eq!(say(&mut a, "GET k").await, "$2\r\n10\r\n", "nothing ran");

    // Unchanged watched keys let it through; DISCARD drops the queue.
    assert_eq!(say(&mut a, "WATCH k").await, "+OK\r\n");
    assert_eq!(say(&mut b, "SET other 1").await, "+OK\r\n");
    assert_eq!(say(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(
        say(&mut a, "WATCH k").await,
        "-ERR WATCH inside MULTI is not allowed\r\n"
    );
    assert_eq!(say(&mut a, "INCR k").await, "+QUEUED\r\n");
    assert_eq!(say(&mut a, "EXEC").await, "*1\r\n:11\r\n");
    assert_eq!(say(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(say(&mut a, "INCR k").await, "+QUEUED\r\n");
    assert_eq!(say(&mut a, "DISCARD").await, "+OK\r\n");
    assert_eq!(say(&mut a, "GET k").await, "$2\r\n11\r\n");

    // A command refused while queueing (unknown, wrong arity) aborts the
    // whole EXEC, as in Redis: none of the queued commands runs.
    assert_eq!(say(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(say(&mut a, "INCR k").await, "+QUEUED\r\n");
    assert!(
        say(&mut a, "NOSUCHCOMMAND x")
            .await
            .starts_with("-ERR unknown command")
    );
    assert_eq!(
        say(&mut a, "GET").await,
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        say(&mut a, "EXEC").await,
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(say(&mut a, "GET k").await, "$2\r\n11\r\n", "nothing ran");
    assert_eq!(say(&mut a, "EXEC").await, "-ERR EXEC without MULTI\r\n");
}

/// Over a noeviction maxmemory, a growing command is refused while
/// queueing and EXEC aborts, so a transaction never half-applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_over_maxmemory_abort_whole() {
    let engine = Arc::new(Engine::new(EngineConfig {
        max_memory: Some(64 * 1024),
        ..EngineConfig::default()
    }));
    let (addr, _stop, _server) = start_on(engine, BunderConfig::default()).await;
    let mut a = TcpStream::connect(&addr).await.unwrap();
    let value = "v".repeat(8 * 1024);
    let mut filled = 0;
    loop {
        let reply = say(&mut a, &format!("SET fill{filled} {value}")).await;
        if reply.starts_with("-OOM") {
            break;
        }
        assert_eq!(reply, "+OK\r\n");
        filled += 1;
        assert!(filled < 100, "maxmemory never reached");
    }
    assert_eq!(say(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(say(&mut a, "DEL fill0").await, "+QUEUED\r\n");
    assert!(say(&mut a, "SET more x").await.starts_with("-OOM"));
    assert!(say(&mut a, "EXEC").await.starts_with("-EXECABORT"));
    assert_eq!(
        say(&mut a, "EXISTS fill0").await,
        ":1\r\n",
        "the DEL did not run"
    );
    // Under the limit at EXEC, a transaction runs whole even when its own
    // writes cross the limit half-way (Redis checks memory once, at EXEC).
    assert_eq!(say(&mut a, "DEL fill0 fill1").await, ":2\r\n");
    assert_eq!(say(&mut a, "MULTI").await, "+OK\r\n");
    for key in ["a", "b", "c"] {
        assert_eq!(
            say(&mut a, &format!("SET {key} {value}")).await,
            "+QUEUED\r\n"
        );
    }
    assert_eq!(say(&mut a, "EXEC").await, "*3\r\n+OK\r\n+OK\r\n+OK\r\n");
    assert!(say(&mut a, "SET d x").await.starts_with("-OOM"));
}

async fn say(c: &mut TcpStream, line: &str) -> String {
    c.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
    read_reply(c).await
}

/// Nothing arrives on `c` within `ms`.
async fn silent(c: &mut TcpStream, ms: u64) -> bool {
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_millis(ms), c.read(&mut buf))
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blpop_waits_for_a_push_without_blocking_anyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let path = dir.path().join("bunder.aof");
    let (aof, _) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
    let config = BunderConfig {
        aof: Some(Arc::new(aof)),
        ..BunderConfig::default()
    };
    let (addr, _stop, _) = start_on(engine, config).await;
    let mut waiter = TcpStream::connect(&addr).await.unwrap();
    let mut other = TcpStream::connect(&addr).await.unwrap();
    // Replies before the BLPOP in a pipeline are sent before it waits.
    waiter
        .write_all(b"PING\r\nBLPOP jobs urgent 0\r\n")
        .await
        .unwrap();
    assert_eq!(read_reply(&mut waiter).await, "+PONG\r\n");
    assert!(silent(&mut waiter, 200).await, "blocked");
    assert_eq!(
        say(&mut other, "PING").await,
        "+PONG\r\n",
        "others are served"
    );
    let list = say(&mut other, "CLIENT LIST").await;
    assert!(
        list.contains("flags=b") && list.contains("cmd=blpop"),
        "{list}"
    );
    assert!(
        say(&mut other, "INFO clients")
            .await
            .contains("blocked_clients:1")
    );
    assert_eq!(say(&mut other, "RPUSH urgent first second").await, ":2\r\n");
    assert_eq!(
        read_reply(&mut waiter).await,
        "*2\r\n$6\r\nurgent\r\n$5\r\nfirst\r\n"
    );
    assert_eq!(
        say(&mut other, "LRANGE urgent 0 -1").await,
        "*1\r\n$6\r\nsecond\r\n"
    );
    // An immediate pop, and BRPOP from the tail.
    assert_eq!(
        say(&mut waiter, "BRPOP jobs urgent 1").await,
        "*2\r\n$6\r\nurgent\r\n$6\r\nsecond\r\n"
    );
    // The log holds the pops that happened, never a wait.
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(
        log.contains("LPOP\r\n$6\r\nurgent") && log.contains("RPOP\r\n$6\r\nurgent"),
        "{log}"
    );
    assert!(!log.contains("BLPOP") && !log.contains("BRPOP"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blpop_times_out_and_does_not_wait_inside_multi() {
    let (addr, _stop) = start(BunderConfig::default()).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(say(&mut c, "BLPOP nothing 0.2").await, "*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(say(&mut c, "MULTI").await, "+OK\r\n");
    assert_eq!(say(&mut c, "BLPOP nothing 0").await, "+QUEUED\r\n");
    assert_eq!(say(&mut c, "EXEC").await, "*1\r\n*-1\r\n");
    assert_eq!(
        say(&mut c, "BLPOP nothing -1").await,
        "-ERR timeout is negative\r\n"
    );
    say(&mut c, "HELLO 3").await;
    assert_eq!(
        say(&mut c, "BRPOP nothing 0.05").await,
        "_\r\n",
        "RESP3 null"
    );

    // The redis crate sees a timeout as None.
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let got: Option<(String, String)> = redis::cmd("BLPOP")
        .arg("nothing")
        .arg(0.05)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_clients_end_cleanly_on_hang_up_and_shutdown() {
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let (addr, stop, server) = start_on(engine.clone(), BunderConfig::default()).await;
    let mut gone = TcpStream::connect(&addr).await.unwrap();
    gone.write_all(b"BLPOP q 0\r\n").await.unwrap();
    let mut waiter = TcpStream::connect(&addr).await.unwrap();
    waiter.write_all(b"BRPOP q 0\r\n").await.unwrap();
    for _ in 0..50 {
        if engine.blocked_clients() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.blocked_clients(), 2);
    drop(gone);
    for _ in 0..50 {
        if engine.blocked_clients() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.blocked_clients(), 1, "a hang-up ends the wait");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops with a client still blocked")
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), waiter.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    assert_eq!(engine.blocked_clients(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_an_expiry_as_a_change() {
    let (addr, _stop) = start(BunderConfig::default()).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(say(&mut c, "SET k v PX 100").await, "+OK\r\n");
    assert_eq!(say(&mut c, "WATCH k").await, "+OK\r\n");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(say(&mut c, "MULTI").await, "+OK\r\n");
    assert_eq!(say(&mut c, "SET k again").await, "+QUEUED\r\n");
    assert_eq!(say(&mut c, "EXEC").await, "*-1\r\n", "aborted");
    assert_eq!(say(&mut c, "GET k").await, "$-1\r\n");
    // A key with a later expiry, or none, does not abort.
    assert_eq!(say(&mut c, "SET k v EX 100").await, "+OK\r\n");
    assert_eq!(say(&mut c, "WATCH k nokey").await, "+OK\r\n");
    assert_eq!(say(&mut c, "MULTI").await, "+OK\r\n");
    assert_eq!(say(&mut c, "GET k").await, "+QUEUED\r\n");
    assert_eq!(say(&mut c, "EXEC").await, "*1\r\n$1\r\nv\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_list_and_command_info_for_tools() {
    let (addr, _stop) = start(BunderConfig::default()).await;
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(say(&mut idle, "CLIENT SETNAME idler").await, "+OK\r\n");
    assert_eq!(say(&mut idle, "SELECT 3").await, "+OK\r\n");
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    let idler = list
        .lines()
        .find(|l| l.contains("name=idler"))
        .unwrap_or_else(|| panic!("{list}"));
    let local = idle.local_addr().unwrap().to_string();
    assert!(
        idler.contains(&format!("addr={local} laddr={addr} ")),
        "{idler}"
    );
    assert!(
        idler.contains(" db=3 ") && idler.contains(" cmd=select "),
        "{idler}"
    );
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(info.contains(" cmd=client|info "), "{info}");
    assert_eq!(list.lines().count(), 2, "{list}");

    let infos: Vec<redis::Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("get")
        .arg("nosuch")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[1], redis::Value::Nil);
    let redis::Value::Array(get) = &infos[0] else {
        panic!("{infos:?}")
    };
    assert_eq!(get[0], redis::Value::BulkString(b"get".to_vec()));
    assert_eq!(get[1], redis::Value::Int(2));
    let count: i64 = redis::cmd("COMMAND")
        .arg("COUNT")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(count > 100, "{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zrange_and_hincrbyfloat_with_the_redis_crate() {
    let (addr, _stop) = start(BunderConfig::default()).await;
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg("board")
        .arg(&[(10, "ann"), (20, "bob"), (30, "cy"), (40, "di")])
        .query_async(&mut conn)
        .await
        .unwrap();
    let top: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg("board")
        .arg("+inf")
        .arg("(10")
        .arg("BYSCORE")
        .arg("REV")
        .arg("LIMIT")
        .arg(0)
        .arg(2)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(top, [("di".to_string(), 40.0), ("cy".to_string(), 30.0)]);
    let err = redis::cmd("ZRANGE")
        .arg("board")
        .arg(0)
        .arg(-1)
        .arg("LIMIT")
        .arg(0)
        .arg(1)
        .query_async::<Vec<String>>(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("LIMIT is only supported"), "{err}");
    let total: f64 = redis::cmd("HINCRBYFLOAT")
        .arg("stats")
        .arg("load")
        .arg(0.5)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(total, 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmemory_over_the_wire() {
    use bunbase_core::kv::engine::EvictionPolicy;
    let engine = Arc::new(Engine::new(EngineConfig {
        max_memory: Some(4096),
        ..EngineConfig::default()
    }));
    let (addr, _stop, _) = start_on(engine.clone(), BunderConfig::default()).await;
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let mut refused = None;
    for i in 0..200 {
        let reply = say(&mut c, &format!("SET key:{i} some-value")).await;
        if reply != "+OK\r\n" {
            refused = Some(reply);
            break;
        }
    }
    assert_eq!(
        refused.as_deref(),
        Some("-OOM command not allowed when used memory > 'maxmemory'.\r\n")
    );
    assert_eq!(say(&mut c, "GET key:0").await, "$10\r\nsome-value\r\n");
    assert_eq!(
        say(&mut c, "CONFIG SET maxmemory-policy allkeys-lru").await,
        "+OK\r\n"
    );
    for i in 0..100 {
        assert_eq!(say(&mut c, &format!("SET more:{i} v")).await, "+OK\r\n");
    }
    assert!(engine.evicted_keys() > 0);
    assert_eq!(engine.memory_stats().policy, EvictionPolicy::AllKeysLru);
    let info = say(&mut c, "INFO").await;
    assert!(
        info.contains(&format!("evicted_keys:{}", engine.evicted_keys())),
        "{info}"
    );
    assert!(
        info.contains("maxmemory:4096") && info.contains("maxmemory_policy:allkeys-lru"),
        "{info}"
    );
}

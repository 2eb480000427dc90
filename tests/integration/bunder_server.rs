//! The bunder server driven by real clients: the `redis` crate, raw bytes.

use std::sync::Arc;
use std::time::Duration;

use bunbase_core::kv::{Engine, EngineConfig};
use bunbase_shells::bunder::{self, BunderConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

async fn start(config: BunderConfig) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    tokio::spawn(bunder::serve(listener, engine, config, stop.clone()));
    (addr.to_string(), stop)
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
}

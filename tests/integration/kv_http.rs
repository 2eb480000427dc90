//! Bunder Manager over HTTP: the typed client end to end, a table of bad
//! requests run in process (each changes and publishes nothing), isolation
//! between projects, quotas, and two instances sharing one Redis-protocol
//! server.

use std::sync::Arc;
use std::time::Duration;

use bunbase_client::{Client, Put, PutCondition, StreamItem};
use bunbase_core::kv::adapters::bunder::BunderKv;
use bunbase_core::kv::adapters::memory::MemoryKv;
use bunbase_core::kv::{Engine, EngineConfig, KvLimits, KvStore, Quota};
use bunbase_core::{Error, ErrorCode};
use bunbase_shells::bunder::{self, BunderConfig};
use bunbase_tests::harness::{self, ALPHA, ALPHA_READER, BETA, Bus, Options, RunningServer};
use bunbase_tests::scenario::{InProcess, Runner, Scenario, scenario};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{WAIT, http, unique};

fn limits(max_keys: u64, max_bytes: u64) -> KvLimits {
    KvLimits {
        max_value_bytes: 64 * 1024,
        quota: Quota {
            max_keys,
            max_bytes,
        },
        ..KvLimits::default()
    }
}

async fn start_on(store: Arc<dyn KvStore>, limits: KvLimits, bus: Bus) -> RunningServer {
    harness::start(Options {
        kv: Some((store, limits)),
        bus,
        ..Options::default()
    })
    .await
}

async fn start_memory(limits: KvLimits) -> RunningServer {
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    start_on(Arc::new(MemoryKv::new(engine)), limits, Bus::Memory).await
}

/// The next change event's data from a stream.
async fn next_change(stream: &mut bunbase_client::EventStream) -> Value {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(StreamItem::Event(event)))) => event.data.to_value(),
        other => panic!("expected a change event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trip_with_change_stream() {
    let server = start_memory(limits(1000, 1 << 20)).await;
    let kv = Client::new(server.url()).unwrap().with_token(ALPHA).kv();
    let events = Client::new(server.url())
        .unwrap()
        .with_token(ALPHA)
        .events();
    let mut changes = kv.changes("alpha").await.unwrap();
    let mut via_buncast = events.subscribe("alpha", "kv").await.unwrap();

    kv.put("alpha", "greeting", "hello").await.unwrap();
    assert_eq!(
        kv.get("alpha", "greeting").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(kv.get("alpha", "missing").await.unwrap(), None);
    // Conditional puts answer false when refused.
    let create = Put {
        condition: PutCondition::IfAbsent,
        ..Put::default()
    };
    let update = Put {
        condition: PutCondition::IfPresent,
        ..Put::default()
    };
    assert!(!kv.put_with("alpha", "greeting", "x", create).await.unwrap());
    assert!(!kv.put_with("alpha", "absent", "x", update).await.unwrap());
    assert!(
        kv.put_with("alpha", "greeting", "hi", update)
            .await
            .unwrap()
    );
    // TTLs.
    let short = Put {
        ttl: Some(Duration::from_millis(300)),
        ..Put::default()
    };
    assert!(kv.put_with("alpha", "session/1", "s", short).await.unwrap());
    let ttl = kv.ttl("alpha", "session/1").await.unwrap().unwrap();
    assert!(ttl <= Duration::from_millis(300) && ttl > Duration::ZERO);
    assert_eq!(kv.ttl("alpha", "greeting").await.unwrap(), None);
    assert_eq!(
        kv.ttl("alpha", "missing").await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    // Counters, keys with slashes and spaces.
    assert_eq!(kv.incr("alpha", "hits/a b", 2).await.unwrap(), 2);
    assert_eq!(kv.incr("alpha", "hits/a b", -5).await.unwrap(), -3);
    assert_eq!(
        kv.incr("alpha", "greeting", 1).await.unwrap_err().code(),
        ErrorCode::Conflict
    );
    // Listing by prefix over several pages.
    for i in 0..30 {
        kv.put("alpha", &format!("user:{i}"), "u").await.unwrap();
    }
    let mut users = kv.list_all("alpha", "user:").await.unwrap();
    users.sort();
    assert_eq!(users.len(), 30);
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = kv
            .list("alpha", "user:", cursor.as_deref(), 7)
            .await
            .unwrap();
        seen.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    let usage = kv.usage("alpha").await.unwrap();
    assert_eq!(usage.keys, 33);
    assert_eq!(usage.max_keys, 1000);
    assert!(kv.delete("alpha", "greeting").await.unwrap());
    assert!(!kv.delete("alpha", "greeting").await.unwrap());

    // The change stream, in order, also visible on Buncast's topic kv.
    let expected = [
        json!({"op": "put", "key": "greeting", "size": 5, "value": "hello"}),
        json!({"op": "put", "key": "greeting", "size": 2, "value": "hi"}),
        json!({"op": "put", "key": "session/1", "size": 1, "value": "s", "ttl_ms": 300}),
        json!({"op": "incr", "key": "hits/a b", "value": 2}),
        json!({"op": "incr", "key": "hits/a b", "value": -3}),
    ];
    // Each carries the project's revision at the write, rising by one.
    let mut last_rev = 0;
    let mut without_rev = |mut change: Value| {
        let rev = change["rev"].as_u64().expect("a revision");
        assert_eq!(rev, last_rev + 1, "{change}");
        last_rev = rev;
        change.as_object_mut().unwrap().remove("rev");
        change
    };
    for want in &expected {
        let on_buncast = next_change(&mut via_buncast).await;
        let change = next_change(&mut changes).await;
        assert_eq!(on_buncast, change);
        assert_eq!(&without_rev(change), want);
    }
    for i in 0..30 {
        let change = without_rev(next_change(&mut changes).await);
        assert_eq!(change["key"], format!("user:{i}"));
    }
    assert_eq!(
        without_rev(next_change(&mut changes).await),
        json!({"op": "delete", "key": "greeting"})
    );
    // Only the platform publishes the change feed.
    let forged = http()
        .post(format!(
            "{}/events/v1/projects/alpha/topics/kv",
            server.url()
        ))
        .bearer_auth(ALPHA)
        .json(&json!({"data": {"op": "delete", "key": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    server.shutdown.trigger();
}

/// A request to `/kv/v1/projects/{path}` (writes carry a small body):
/// a refusal when `code` is set, changing and publishing nothing.
fn case(name: &str, method: &str, path: &str, status: u16, code: &str) -> Scenario {
    let mut s = scenario(name, method, format!("/kv/v1/projects/{path}"));
    if matches!(method, "PUT" | "POST") {
        s = s.body("value");
    }
    if code.is_empty() {
        s.status(status)
    } else {
        s.fails(status, code)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_change_nothing() {
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    let app = harness::in_process(Options {
        kv: Some((Arc::new(MemoryKv::new(engine)), limits(3, 4096))),
        ..Options::default()
    })
    .await;
    let runner = Runner::new(app.router)
        .token(ALPHA)
        .events(app.events.clone(), &["alpha", "beta"])
        // Everything a refused request could have changed.
        .state(|app| async move {
            let mut state = serde_json::Map::new();
            for path in ["usage", "keys/text", "keys/other", "keys/x", "keys/y"] {
                let answer = app
                    .call("GET", &format!("/kv/v1/projects/alpha/{path}"), ALPHA, None)
                    .await;
                state.insert(path.into(), json!([answer.status, answer.text()]));
            }
            Value::Object(state)
        });
    let kv = runner.app();
    for (key, value) in [("text", "not a number"), ("other", "1")] {
        let answer = kv
            .send(
                "PUT",
                &format!("/kv/v1/projects/alpha/keys/{key}"),
                Some(ALPHA),
                &[],
                Some(value.into()),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let usage = |app: InProcess| async move {
        app.expect("GET", "/kv/v1/projects/alpha/usage", ALPHA, None, 200)
            .await
    };
    let before = usage(kv.clone()).await;
    let long_key = "k".repeat(1025);
    let cases = vec![
        case(
            "no credential",
            "PUT",
            "alpha/keys/x",
            401,
            "unauthenticated",
        )
        .no_token(),
        case("bad token", "PUT", "alpha/keys/x", 401, "unauthenticated")
            .token("nope-nope-nope-nope-nope"),
        case(
            "reader writes",
            "PUT",
            "alpha/keys/x",
            403,
            "permission_denied",
        )
        .token(ALPHA_READER),
        case(
            "reader deletes",
            "DELETE",
            "alpha/keys/text",
            403,
            "permission_denied",
        )
        .token(ALPHA_READER),
        case(
            "other project's token",
            "PUT",
            "alpha/keys/x",
            403,
            "permission_denied",
        )
        .token(BETA),
        case(
            "other project reads",
            "GET",
            "alpha/keys/text",
            403,
            "permission_denied",
        )
        .token(BETA),
        case(
            "other project lists",
            "GET",
            "alpha/keys",
            403,
            "permission_denied",
        )
        .token(BETA),
        case(
            "other project's changes",
            "GET",
            "alpha/changes",
            403,
            "permission_denied",
        )
        .token(BETA),
        case(
            "invalid project id",
            "PUT",
            "Not_A_Project/keys/x",
            400,
            "invalid_input",
        ),
        case(
            "key too long",
            "PUT",
            &format!("alpha/keys/{long_key}"),
            400,
            "invalid_input",
        ),
        case(
            "control character in key",
            "PUT",
            "alpha/keys/a%01b",
            400,
            "invalid_input",
        ),
        case(
            "ttl not a number",
            "PUT",
            "alpha/keys/x?ttl=soon",
            400,
            "invalid_input",
        ),
        case(
            "zero ttl",
            "PUT",
            "alpha/keys/x?ttl=0",
            400,
            "invalid_input",
        ),
        case(
            "negative ttl",
            "PUT",
            "alpha/keys/x?ttl_ms=-5",
            400,
            "invalid_input",
        ),
        case(
            "ttl beyond a year",
            "PUT",
            "alpha/keys/x?ttl=99999999999",
            400,
            "invalid_input",
        ),
        case(
            "ttl and ttl_ms",
            "PUT",
            "alpha/keys/x?ttl=1&ttl_ms=1000",
            400,
            "invalid_input",
        ),
        case(
            "unknown condition",
            "PUT",
            "alpha/keys/x?if=maybe",
            400,
            "invalid_input",
        ),
        case(
            "unknown query field",
            "PUT",
            "alpha/keys/x?expire=5",
            400,
            "invalid_input",
        ),
        case(
            "entity tag condition",
            "PUT",
            "alpha/keys/x",
            400,
            "invalid_input",
        )
        .header("if-match", "\"abc\""),
        case(
            "contradicting conditions",
            "PUT",
            "alpha/keys/x",
            400,
            "invalid_input",
        )
        .header("if-match", "*")
        .header("if-none-match", "*"),
        case(
            "value over the limit",
            "PUT",
            "alpha/keys/x",
            413,
            "payload_too_large",
        )
        .body(vec![b'v'; 64 * 1024 + 1]),
        case(
            "body over the server limit",
            "PUT",
            "alpha/keys/x",
            413,
            "payload_too_large",
        )
        .body(vec![b'v'; 300 * 1024]),
        case("key quota", "PUT", "alpha/keys/x", 200, "")
            .body("v")
            .publishes("alpha", "kv", r#""key":"x""#),
        case(
            "one key too many",
            "PUT",
            "alpha/keys/y",
            507,
            "quota_exceeded",
        )
        .body("v"),
        case(
            "bytes quota",
            "PUT",
            "alpha/keys/other",
            507,
            "quota_exceeded",
        )
        .body(vec![b'v'; 4096]),
        case(
            "increment a text",
            "POST",
            "alpha/keys/text/incr",
            409,
            "conflict",
        )
        .body("{\"by\":1}"),
        case(
            "increment overflow",
            "POST",
            "alpha/keys/other/incr",
            409,
            "conflict",
        )
        .body(format!("{{\"by\":{}}}", i64::MAX)),
        case(
            "increment by a string",
            "POST",
            "alpha/keys/other/incr",
            400,
            "invalid_input",
        )
        .body("{\"by\":\"2\"}"),
        case(
            "increment unknown field",
            "POST",
            "alpha/keys/other/incr",
            400,
            "invalid_input",
        )
        .body("{\"by\":1,\"x\":2}"),
        case(
            "increment malformed JSON",
            "POST",
            "alpha/keys/other/incr",
            400,
            "invalid_input",
        )
        .body("{\"by\":"),
        case(
            "increment a float",
            "POST",
            "alpha/keys/other/incr",
            400,
            "invalid_input",
        )
        .body("{\"by\":1.5}"),
        case(
            "cursor not ours",
            "GET",
            "alpha/keys?cursor=abc",
            400,
            "invalid_input",
        ),
        case(
            "page too large",
            "GET",
            "alpha/keys?limit=5000",
            400,
            "invalid_input",
        ),
        case(
            "page of zero",
            "GET",
            "alpha/keys?limit=0",
            400,
            "invalid_input",
        ),
        case("missing key", "GET", "alpha/keys/nothing", 404, "not_found"),
        case(
            "ttl of a missing key",
            "GET",
            "alpha/keys/nothing/ttl",
            404,
            "not_found",
        ),
        case(
            "bad resume point",
            "GET",
            "alpha/changes?after=-1",
            400,
            "invalid_input",
        ),
        case("unknown route", "GET", "alpha/nothing", 404, "not_found"),
        case(
            "wrong method",
            "PATCH",
            "alpha/keys/x",
            405,
            "invalid_input",
        ),
    ];
    runner.run(cases).await;
    // Only the one allowed write happened.
    let after = usage(kv.clone()).await;
    assert_eq!(after["keys"], before["keys"].as_u64().unwrap() + 1);
    assert_eq!(after["bytes"], before["bytes"].as_u64().unwrap() + 2);
    for (key, value) in [("text", "not a number"), ("other", "1")] {
        let answer = kv
            .call(
                "GET",
                &format!("/kv/v1/projects/alpha/keys/{key}"),
                ALPHA,
                None,
            )
            .await;
        assert_eq!(answer.text(), value);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_are_isolated() {
    let server = start_memory(limits(1000, 1 << 20)).await;
    let alpha = Client::new(server.url()).unwrap().with_token(ALPHA).kv();
    let beta = Client::new(server.url()).unwrap().with_token(BETA).kv();
    let key = unique("shared-");
    alpha.put("alpha", &key, "a").await.unwrap();
    beta.put("beta", &key, "b").await.unwrap();
    assert_eq!(
        alpha.get("alpha", &key).await.unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(
        beta.get("beta", &key).await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
    // A key that names the other project's namespace stays in one's own.
    beta.put("beta", &format!("alpha:{key}"), "sneaky")
        .await
        .unwrap();
    assert_eq!(
        alpha.get("alpha", &key).await.unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(
        beta.get("alpha", &key).await.unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let beta_keys = beta.list_all("beta", "").await.unwrap();
    assert!(
        beta_keys
            .iter()
            .all(|k| k == &key || k == &format!("alpha:{key}")),
        "{beta_keys:?}"
    );
    assert!(beta.delete("beta", &key).await.unwrap());
    assert_eq!(
        alpha.get("alpha", &key).await.unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(alpha.usage("alpha").await.unwrap().keys, 1);
    server.shutdown.trigger();
}

/// The all-in-one's engine has a maxmemory for all projects together: a
/// write over it is 507 and writes nothing (not the value, not the usage
/// counters); reads, deletes and other projects' reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_engine_refuses_writes_with_507_and_writes_nothing() {
    let engine = Arc::new(Engine::new(EngineConfig {
        max_memory: Some(64 * 1024),
        ..EngineConfig::default()
    }));
    let app = harness::in_process(Options {
        kv: Some((Arc::new(MemoryKv::new(engine)), limits(100_000, 1 << 30))),
        ..Options::default()
    })
    .await;
    let kv = InProcess::new(app.router);
    let put = |project: &'static str, token: &'static str, key: String| {
        let kv = kv.clone();
        async move {
            kv.send(
                "PUT",
                &format!("/kv/v1/projects/{project}/keys/{key}"),
                Some(token),
                &[],
                Some(vec![b'v'; 4096]),
            )
            .await
        }
    };
    assert_eq!(put("beta", BETA, "kept".into()).await.status, 200);
    let mut written = 0;
    let refused = loop {
        let answer = put("alpha", ALPHA, format!("k{written}")).await;
        if answer.status != 200 {
            break answer;
        }
        written += 1;
        assert!(written < 100, "64 KiB never filled");
    };
    assert_eq!(refused.status, 507, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "quota_exceeded");
    assert!(refused.text().contains("maxmemory"), "{}", refused.text());
    let usage = kv
        .expect("GET", "/kv/v1/projects/alpha/usage", ALPHA, None, 200)
        .await;
    assert_eq!(usage["keys"], written, "{usage}");
    kv.expect(
        "GET",
        &format!("/kv/v1/projects/alpha/keys/k{written}"),
        ALPHA,
        None,
        404,
    )
    .await;
    let kept = kv
        .send(
            "GET",
            "/kv/v1/projects/beta/keys/kept",
            Some(BETA),
            &[],
            None,
        )
        .await;
    assert_eq!(kept.status, 200);
    // Deleting makes room again.
    for n in 0..written {
        let answer = kv
            .send(
                "DELETE",
                &format!("/kv/v1/projects/alpha/keys/k{n}"),
                Some(ALPHA),
                &[],
                None,
            )
            .await;
        assert!(answer.status < 300, "{}", answer.text());
    }
    assert_eq!(put("alpha", ALPHA, "again".into()).await.status, 200);
}

/// Two managers on one of our bunder servers, as in compose: one quota,
/// one change stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_share_quota_and_changes_through_bunder() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(bunder::serve(
        listener,
        Arc::new(Engine::new(EngineConfig::default())),
        BunderConfig::default(),
        stop.clone(),
    ));
    let url = format!("redis://{addr}");
    let prefix = unique("kvtest");
    let bus = Bus::Redis(url.clone(), prefix);
    let a = start_on(
        Arc::new(BunderKv::new(&url).unwrap()),
        limits(10, 1 << 20),
        bus.clone(),
    )
    .await;
    let b = start_on(
        Arc::new(BunderKv::new(&url).unwrap()),
        limits(10, 1 << 20),
        bus,
    )
    .await;
    let kv_a = Client::new(a.url()).unwrap().with_token(ALPHA).kv();
    let kv_b = Client::new(b.url()).unwrap().with_token(ALPHA).kv();
    let mut changes_on_b = kv_b.changes("alpha").await.unwrap();
    // Both write concurrently; together they may not pass 10 keys.
    let (ra, rb) = tokio::join!(
        async {
            let mut results = Vec::new();
            for i in 0..8 {
                results.push(kv_a.put("alpha", &format!("a{i}"), "x").await);
            }
            results
        },
        async {
            let mut results = Vec::new();
            for i in 0..8 {
                results.push(kv_b.put("alpha", &format!("b{i}"), "x").await);
            }
            results
        }
    );
    let results: Vec<Result<(), Error>> = ra.into_iter().chain(rb).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 10, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.code() == ErrorCode::QuotaExceeded)
    );
    assert_eq!(kv_a.usage("alpha").await.unwrap().keys, 10);
    // Every accepted write reached the other instance's change stream.
    let mut keys = std::collections::HashSet::new();
    for _ in 0..10 {
        keys.insert(
            next_change(&mut changes_on_b).await["key"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(keys.len(), 10);
    a.shutdown.trigger();
    b.shutdown.trigger();
    stop.cancel();
}

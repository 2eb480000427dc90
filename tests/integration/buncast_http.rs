//! Buncast over HTTP: a table of request scenarios (bad input, credentials,
//! isolation; each refused one publishes nothing) run in process, plus
//! streaming behaviour over SSE on a real socket.

use bunbase_tests::harness::{self, ALPHA, ALPHA_READER, BETA, Bus, Options};
use bunbase_tests::scenario::{Runner, scenario};
use serde_json::json;

use crate::support::{SseReader, http, publish, unique};

const P: &str = "/events/v1/projects";

#[tokio::test]
async fn request_scenarios() {
    let app = harness::in_process(Options::default()).await;
    let ok = r#"{"data":{"n":1}}"#;
    let big_payload = format!(r#"{{"data":"{}"}}"#, "x".repeat(70 * 1024));
    let over_body_limit = format!(r#"{{"data":"{}"}}"#, "x".repeat(300 * 1024));
    let publish =
        |name: &str, topic: &str| scenario(name, "POST", format!("{P}/alpha/topics/{topic}"));
    let runner = Runner::new(app.router)
        .token(ALPHA)
        .events(app.events.clone(), &["alpha", "beta"]);
    runner
        .run(vec![
            publish("publish", "orders.created")
                .body(ok)
                .status(201)
                .says(r#""seq":"#)
                .says(r#""topic":"orders.created""#)
                .publishes("alpha", "orders.created", r#"{"n":1}"#),
            publish("publish any JSON value", "misc")
                .body(r#"{"data":[1,"two",null,{"three":3.5}]}"#)
                .status(201)
                .says(r#""seq":"#)
                .publishes("alpha", "misc", r#"[1,"two",null,{"three":3.5}]"#),
            publish("no credential", "t")
                .no_token()
                .body(ok)
                .fails(401, "unauthenticated")
                .says("missing credential"),
            publish("unknown token", "t")
                .token("not-a-real-token-at-all-000000")
                .body(ok)
                .fails(401, "unauthenticated"),
            publish("malformed Authorization", "t")
                .no_token()
                .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
                .body(ok)
                .fails(401, "unauthenticated")
                .says("Bearer"),
            scenario(
                "other project's credential",
                "POST",
                format!("{P}/beta/topics/t"),
            )
            .body(ok)
            .fails(403, "permission_denied")
            .says("project beta"),
            publish("read-only credential publishing", "t")
                .token(ALPHA_READER)
                .body(ok)
                .fails(403, "permission_denied")
                .says("write"),
            publish("another project's token publishing", "t")
                .token(BETA)
                .body(r#"{"data":2}"#)
                .fails(403, "permission_denied"),
            publish("malformed JSON", "t")
                .body(r#"{"data": {oops"#)
                .fails(400, "invalid_input")
                .says("invalid JSON"),
            publish("truncated JSON", "t")
                .body(r#"{"data":2"#)
                .fails(400, "invalid_input"),
            publish("empty body", "t")
                .fails(400, "invalid_input")
                .says("empty"),
            publish("unknown field", "t")
                .body(r#"{"data":1,"ttl":5}"#)
                .fails(400, "invalid_input")
                .says("unknown field"),
            publish("missing data", "t")
                .body(r#"{}"#)
                .fails(400, "invalid_input")
                .says("missing field"),
            publish("body is not an object", "t")
                .body(r#"[1,2]"#)
                .fails(400, "invalid_input"),
            publish("empty topic segment", "a..b")
                .body(ok)
                .fails(400, "invalid_input")
                .says("invalid topic"),
            publish("pattern as a publish topic", "a.*")
                .body(ok)
                .fails(400, "invalid_input"),
            publish("topic with a space", "a%20b")
                .body(ok)
                .fails(400, "invalid_input"),
            publish("topic too long", &"a".repeat(201))
                .body(ok)
                .fails(400, "invalid_input")
                .says("200 bytes"),
            publish("a reserved topic (Bunder Manager's feed)", "kv")
                .body(ok)
                .fails(403, "permission_denied"),
            publish("payload over the event limit", "t")
                .body(big_payload)
                .fails(413, "payload_too_large")
                .says("65536"),
            publish("body over the server limit", "t")
                .body(over_body_limit)
                .fails(413, "payload_too_large"),
            scenario("invalid project id", "POST", format!("{P}/Alpha/topics/t"))
                .body(ok)
                .fails(400, "invalid_input")
                .says("project id"),
            scenario("list topics", "GET", format!("{P}/alpha/topics"))
                .says(r#""topics":["#)
                .publishes_nothing(),
            scenario(
                "a token in the URL of a request that opens no stream",
                "GET",
                format!("{P}/alpha/topics?access_token={ALPHA_READER}"),
            )
            .no_token()
            .fails(401, "unauthenticated")
            .says("only for streams"),
            scenario(
                "a token in the URL of a publish",
                "POST",
                format!("{P}/alpha/topics/t?access_token={ALPHA}"),
            )
            .no_token()
            .header("accept", "text/event-stream")
            .body(ok)
            .fails(401, "unauthenticated"),
            scenario(
                "list another project's topics",
                "GET",
                format!("{P}/beta/topics"),
            )
            .fails(403, "permission_denied"),
            scenario(
                "subscribe to an invalid pattern",
                "GET",
                format!("{P}/alpha/topics/a.%3E.b/subscribe"),
            )
            .fails(400, "invalid_input")
            .says("pattern"),
            scenario(
                "subscribe with a bad resume point",
                "GET",
                format!("{P}/alpha/topics/t/subscribe?after=abc"),
            )
            .fails(400, "invalid_input")
            .says("sequence number"),
            scenario(
                "subscribe with an unknown query parameter",
                "GET",
                format!("{P}/alpha/topics/t/subscribe?since=3"),
            )
            .fails(400, "invalid_input")
            .says("unknown field"),
            scenario(
                "subscribe with a bad Last-Event-ID",
                "GET",
                format!("{P}/alpha/topics/t/subscribe"),
            )
            .header("last-event-id", "-1")
            .fails(400, "invalid_input"),
            scenario(
                "subscribe to another project",
                "GET",
                format!("{P}/beta/topics/t/subscribe"),
            )
            .fails(403, "permission_denied"),
            scenario(
                "WebSocket route without an upgrade",
                "GET",
                format!("{P}/alpha/topics/t/ws"),
            )
            .fails(400, "invalid_input")
            .says("upgrade"),
            scenario("unknown route", "GET", "/events/v1/nope").fails(404, "not_found"),
            scenario("wrong method", "DELETE", format!("{P}/alpha/topics/t"))
                .fails(405, "invalid_input")
                .says("method not allowed"),
            scenario("health", "GET", "/health")
                .no_token()
                .says(r#""status":"ok""#)
                .says("buncast"),
        ])
        .await;
}

#[tokio::test]
async fn sse_delivers_in_order_and_reports_position() {
    let server = harness::shared();
    let topic = unique("feed");
    let mut sse = SseReader::open(&server.url, ALPHA, "alpha", &format!("{topic}.*"), None).await;
    let start = sse
        .last_event_id()
        .expect("opening frame sets the position");
    let mut seqs = Vec::new();
    for n in 0..20 {
        seqs.push(
            publish(
                &server.url,
                ALPHA,
                "alpha",
                &format!("{topic}.x"),
                json!({ "n": n }),
            )
            .await,
        );
    }
    publish(
        &server.url,
        ALPHA,
        "alpha",
        &format!("{topic}.x.deeper"),
        json!("no"),
    )
    .await;
    for (n, seq) in seqs.iter().enumerate() {
        assert!(*seq > start);
        assert_eq!(sse.next_event().await, (*seq, json!({ "n": n })));
    }
}

#[tokio::test]
async fn sse_resumes_from_last_event_id() {
    let server = harness::shared();
    let topic = unique("resume");
    let mut seqs = Vec::new();
    for n in 0..5 {
        seqs.push(publish(&server.url, ALPHA, "alpha", &topic, json!(n)).await);
    }
    let mut sse = SseReader::open(&server.url, ALPHA, "alpha", &topic, Some(seqs[1])).await;
    for (n, seq) in seqs.iter().enumerate().skip(2) {
        assert_eq!(sse.next_event().await, (*seq, json!(n)));
    }
    // The ?after= form works the same.
    let response = http()
        .get(format!(
            "{}{P}/alpha/topics/{topic}/subscribe?after={}",
            server.url, seqs[3]
        ))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Browsers' EventSource can't send headers: its token rides in the URL,
/// which is accepted for the stream it opens (and only there).
#[tokio::test]
async fn an_event_source_authenticates_in_the_query_string() {
    let server = harness::shared();
    let url = format!(
        "{}{P}/alpha/topics/{}/subscribe?access_token={ALPHA_READER}",
        server.url,
        unique("browser")
    );
    let opened = http()
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let refused = http().get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401, "without Accept: text/event-stream");
}

#[tokio::test]
async fn sse_reports_gap_when_history_is_gone() {
    let server = harness::start(Options {
        bus_config: bunbase_core::events::adapters::BusConfig {
            retain_per_topic: 2,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let url = server.url();
    let mut seqs = Vec::new();
    for n in 0..5 {
        seqs.push(publish(&url, ALPHA, "alpha", "t", json!(n)).await);
    }
    let mut sse = SseReader::open(&url, ALPHA, "alpha", "t", Some(seqs[0])).await;
    let gap = sse.next().await.unwrap();
    assert_eq!(gap.event, "gap");
    assert_eq!(gap.id, None, "a gap never moves the resume point");
    let gap: serde_json::Value = serde_json::from_str(&gap.data).unwrap();
    assert_eq!(gap["reason"], "evicted");
    assert_eq!(gap["topic"], "t");
    assert_eq!(gap["next_seq"], seqs[3]);
    assert_eq!(sse.next_event().await.0, seqs[3]);
    assert_eq!(sse.next_event().await.0, seqs[4]);
}

/// A project holds at most `max_subscribers_per_project` open streams on a
/// server; the next answers 429 and other projects are not affected.
#[tokio::test]
async fn open_subscriptions_are_bounded_per_project() {
    let server = harness::start(Options {
        bus_config: bunbase_core::events::adapters::BusConfig {
            hub: bunbase_core::events::hub::HubConfig {
                max_subscribers_per_project: 2,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let url = server.url();
    let first = SseReader::open(&url, ALPHA, "alpha", "a", None).await;
    let _second = SseReader::open(&url, ALPHA, "alpha", "b", None).await;
    let refused = crate::support::http()
        .get(format!("{url}/events/v1/projects/alpha/topics/c/subscribe"))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let _beta = SseReader::open(&url, BETA, "beta", "a", None).await;
    // A closed stream frees its slot (the server notices the hang-up).
    drop(first);
    let mut reopened = false;
    for _ in 0..50 {
        let answer = crate::support::http()
            .get(format!("{url}/events/v1/projects/alpha/topics/c/subscribe"))
            .bearer_auth(ALPHA)
            .send()
            .await
            .unwrap();
        if answer.status().as_u16() == 200 {
            reopened = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(reopened, "the closed stream's slot was never freed");
    server.shutdown.trigger();
}

#[tokio::test]
async fn slow_sse_subscriber_is_disconnected_with_reason() {
    let server = harness::start(Options {
        bus_config: bunbase_core::events::adapters::BusConfig {
            retain_per_topic: 100_000,
            hub: bunbase_core::events::hub::HubConfig {
                queue_capacity: 8,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let url = server.url();
    let mut slow = SseReader::open(&url, ALPHA, "alpha", "firehose", None).await;
    let mut fast = SseReader::open(&url, ALPHA, "alpha", "firehose", None).await;
    let project = bunbase_core::ProjectId::new("alpha").unwrap();
    let principal = bunbase_core::auth::Principal {
        subject: "test".into(),
        kind: bunbase_core::auth::PrincipalKind::Service,
        project: project.clone(),
        rights: bunbase_core::auth::Rights::ALL,
    };
    // 1 KiB events until the slow reader's socket and queue are full; the
    // fast reader keeps up. Publishing never blocks.
    let payload = format!("\"{}\"", "x".repeat(1000));
    let mut last = 0;
    let mut n = 0;
    let started = std::time::Instant::now();
    while server.events.bus().topics(&project).await.unwrap()[0].subscribers == 2 {
        for _ in 0..500 {
            last = server
                .events
                .publish(&principal, &project, "firehose", &payload)
                .await
                .unwrap();
            n += 1;
            assert_eq!(fast.next_event().await.0, last);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "slow subscriber never dropped"
        );
    }
    // The slow one receives an unbroken prefix, then the reason.
    let mut expected = slow.last_event_id().expect("position") + 1;
    let closed = loop {
        let frame = slow
            .next()
            .await
            .expect("stream ends only after the closed frame");
        if frame.event == "closed" {
            break frame;
        }
        let value: serde_json::Value = serde_json::from_str(&frame.data).unwrap();
        assert_eq!(value["seq"], expected, "no event skipped");
        expected += 1;
    };
    let reason: serde_json::Value = serde_json::from_str(&closed.data).unwrap();
    assert_eq!(reason["reason"], "lagged");
    assert!(
        slow.next().await.is_none(),
        "stream ends after the closed frame"
    );
    assert!(
        expected - 1 < last,
        "the slow subscriber really fell behind ({n} published)"
    );
    // It resumes from the last event it saw and gets the rest.
    let mut resumed = SseReader::open(&url, ALPHA, "alpha", "firehose", Some(expected - 1)).await;
    assert_eq!(resumed.next_event().await.0, expected);
    let metrics = bunbase_core::metrics::render(&server.registry);
    assert!(
        metrics.contains(r#"buncast_subscribers_dropped_total{reason="lagged"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_use_route_templates() {
    let server = harness::start(Options::default()).await;
    let url = server.url();
    publish(&url, ALPHA, "alpha", "m.one", json!(1)).await;
    publish(&url, ALPHA, "alpha", "m.two", json!(2)).await;
    let text = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/events/v1/projects/{project}/topics/{topic}",status="201"} 2"#),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("buncast_events_published_total 2"));
    assert!(!text.contains("m.one"), "raw paths never become labels");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_redis_deliver_to_each_other() {
    let redis = bunbase_tests::servers::redis_url().to_string();
    let prefix = unique("bbmulti");
    let options = Options {
        bus: Bus::Redis(redis, prefix),
        ..Options::default()
    };
    let a = harness::start(options.clone()).await;
    let b = harness::start(options).await;
    let mut on_a = SseReader::open(&a.url(), ALPHA, "alpha", "chat.*", None).await;
    let s1 = publish(&b.url(), ALPHA, "alpha", "chat.room", json!("from b")).await;
    let s2 = publish(&a.url(), ALPHA, "alpha", "chat.room", json!("from a")).await;
    assert_eq!(on_a.next_event().await, (s1, json!("from b")));
    assert_eq!(on_a.next_event().await, (s2, json!("from a")));
    // Listing topics on B counts A's subscriber (shared presence).
    let subscribers_on = |server: &harness::RunningServer| {
        let url = format!("{}{P}/alpha/topics", server.url());
        async move {
            let body: serde_json::Value = http()
                .get(url)
                .bearer_auth(ALPHA)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["topics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["topic"] == "chat.room")
                .map(|t| t["subscribers"].as_u64().unwrap())
        }
    };
    let mut seen = None;
    for _ in 0..100 {
        seen = subscribers_on(&b).await;
        if seen == Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert_eq!(seen, Some(1), "B counts the subscriber connected to A");
    assert_eq!(subscribers_on(&a).await, Some(1));
    // Resuming on the other instance replays from the shared history.
    let mut on_b = SseReader::open(&b.url(), ALPHA, "alpha", "chat.room", Some(0)).await;
    assert_eq!(on_b.next_event().await.0, s1);
    assert_eq!(on_b.next_event().await.0, s2);
    // Other projects see nothing.
    let mut beta = SseReader::open(&b.url(), BETA, "beta", "chat.room", Some(0)).await;
    let s3 = publish(&a.url(), BETA, "beta", "chat.room", json!("beta only")).await;
    assert_eq!(beta.next_event().await, (s3, json!("beta only")));
}

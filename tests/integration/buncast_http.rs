//! Buncast over HTTP: a table of request scenarios (bad input, credentials,
//! isolation) plus streaming behaviour over SSE.

use bunbase_tests::harness::{self, ALPHA, ALPHA_READER, BETA, Bus, Options};
use serde_json::json;

use crate::support::{SseReader, http, publish, unique};

struct Scenario {
    name: &'static str,
    method: &'static str,
    path: String,
    token: Option<&'static str>,
    header: Option<(&'static str, &'static str)>,
    body: Option<String>,
    status: u16,
    contains: Vec<&'static str>,
}

fn scenario(name: &'static str, method: &'static str, path: impl Into<String>) -> Scenario {
    Scenario {
        name,
        method,
        path: path.into(),
        token: Some(ALPHA),
        header: None,
        body: None,
        status: 200,
        contains: Vec::new(),
    }
}

impl Scenario {
    fn token(mut self, token: Option<&'static str>) -> Self {
        self.token = token;
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }
    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }
    fn expect(mut self, status: u16, contains: &[&'static str]) -> Self {
        self.status = status;
        self.contains = contains.to_vec();
        self
    }
}

const P: &str = "/events/v1/projects";

#[tokio::test]
async fn request_scenarios() {
    let server = harness::shared();
    let ok = r#"{"data":{"n":1}}"#;
    let big_payload = format!(r#"{{"data":"{}"}}"#, "x".repeat(70 * 1024));
    let over_body_limit = format!(r#"{{"data":"{}"}}"#, "x".repeat(300 * 1024));
    let scenarios = vec![
        scenario(
            "publish",
            "POST",
            format!("{P}/alpha/topics/orders.created"),
        )
        .body(ok)
        .expect(201, &[r#""seq":"#, r#""topic":"orders.created""#]),
        scenario(
            "publish any JSON value",
            "POST",
            format!("{P}/alpha/topics/misc"),
        )
        .body(r#"{"data":[1,"two",null,{"three":3.5}]}"#)
        .expect(201, &[r#""seq":"#]),
        scenario("no credential", "POST", format!("{P}/alpha/topics/t"))
            .token(None)
            .body(ok)
            .expect(401, &[r#""code":"unauthenticated""#, "missing credential"]),
        scenario("unknown token", "POST", format!("{P}/alpha/topics/t"))
            .token(Some("not-a-real-token-at-all-000000"))
            .body(ok)
            .expect(401, &[r#""code":"unauthenticated""#]),
        scenario(
            "malformed Authorization",
            "POST",
            format!("{P}/alpha/topics/t"),
        )
        .token(None)
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .body(ok)
        .expect(401, &[r#""code":"unauthenticated""#, "Bearer"]),
        scenario(
            "other project's credential",
            "POST",
            format!("{P}/beta/topics/t"),
        )
        .body(ok)
        .expect(403, &[r#""code":"permission_denied""#, "project beta"]),
        scenario(
            "read-only credential publishing",
            "POST",
            format!("{P}/alpha/topics/t"),
        )
        .token(Some(ALPHA_READER))
        .body(ok)
        .expect(403, &[r#""code":"permission_denied""#, "write"]),
        scenario("malformed JSON", "POST", format!("{P}/alpha/topics/t"))
            .body(r#"{"data": {oops"#)
            .expect(400, &[r#""code":"invalid_input""#, "invalid JSON"]),
        scenario("empty body", "POST", format!("{P}/alpha/topics/t"))
            .expect(400, &[r#""code":"invalid_input""#, "empty"]),
        scenario("unknown field", "POST", format!("{P}/alpha/topics/t"))
            .body(r#"{"data":1,"ttl":5}"#)
            .expect(400, &[r#""code":"invalid_input""#, "unknown field"]),
        scenario("missing data", "POST", format!("{P}/alpha/topics/t"))
            .body(r#"{}"#)
            .expect(400, &[r#""code":"invalid_input""#, "missing field"]),
        scenario(
            "body is not an object",
            "POST",
            format!("{P}/alpha/topics/t"),
        )
        .body(r#"[1,2]"#)
        .expect(400, &[r#""code":"invalid_input""#]),
        scenario(
            "empty topic segment",
            "POST",
            format!("{P}/alpha/topics/a..b"),
        )
        .body(ok)
        .expect(400, &[r#""code":"invalid_input""#, "invalid topic"]),
        scenario(
            "pattern as a publish topic",
            "POST",
            format!("{P}/alpha/topics/a.*"),
        )
        .body(ok)
        .expect(400, &[r#""code":"invalid_input""#]),
        scenario(
            "topic with a space",
            "POST",
            format!("{P}/alpha/topics/a%20b"),
        )
        .body(ok)
        .expect(400, &[r#""code":"invalid_input""#]),
        scenario(
            "topic too long",
            "POST",
            format!("{P}/alpha/topics/{}", "a".repeat(201)),
        )
        .body(ok)
        .expect(400, &[r#""code":"invalid_input""#, "200 bytes"]),
        scenario(
            "payload over the event limit",
            "POST",
            format!("{P}/alpha/topics/t"),
        )
        .body(big_payload)
        .expect(413, &[r#""code":"payload_too_large""#, "65536"]),
        scenario(
            "body over the server limit",
            "POST",
            format!("{P}/alpha/topics/t"),
        )
        .body(over_body_limit)
        .expect(413, &[r#""code":"payload_too_large""#]),
        scenario("invalid project id", "POST", format!("{P}/Alpha/topics/t"))
            .body(ok)
            .expect(400, &[r#""code":"invalid_input""#, "project id"]),
        scenario("list topics", "GET", format!("{P}/alpha/topics")).expect(200, &[r#""topics":["#]),
        scenario(
            "list topics with access_token",
            "GET",
            format!("{P}/alpha/topics?access_token={ALPHA_READER}"),
        )
        .token(None)
        .expect(200, &[r#""topics":"#]),
        scenario(
            "list another project's topics",
            "GET",
            format!("{P}/beta/topics"),
        )
        .expect(403, &[r#""code":"permission_denied""#]),
        scenario(
            "subscribe to an invalid pattern",
            "GET",
            format!("{P}/alpha/topics/a.%3E.b/subscribe"),
        )
        .expect(400, &[r#""code":"invalid_input""#, "pattern"]),
        scenario(
            "subscribe with a bad resume point",
            "GET",
            format!("{P}/alpha/topics/t/subscribe?after=abc"),
        )
        .expect(400, &[r#""code":"invalid_input""#, "sequence number"]),
        scenario(
            "subscribe with a bad Last-Event-ID",
            "GET",
            format!("{P}/alpha/topics/t/subscribe"),
        )
        .header("last-event-id", "-1")
        .expect(400, &[r#""code":"invalid_input""#]),
        scenario(
            "subscribe to another project",
            "GET",
            format!("{P}/beta/topics/t/subscribe"),
        )
        .expect(403, &[r#""code":"permission_denied""#]),
        scenario(
            "WebSocket route without an upgrade",
            "GET",
            format!("{P}/alpha/topics/t/ws"),
        )
        .expect(400, &[r#""code":"invalid_input""#, "upgrade"]),
        scenario("unknown route", "GET", "/events/v1/nope").expect(404, &[r#""code":"not_found""#]),
        scenario("wrong method", "DELETE", format!("{P}/alpha/topics/t"))
            .expect(405, &[r#""code":"invalid_input""#, "method not allowed"]),
        scenario("health", "GET", "/health")
            .token(None)
            .expect(200, &[r#""status":"ok""#, "buncast"]),
    ];

    // No connection reuse: after a 413 the server closes the connection with
    // the body unread, and a pooled connection could be picked up just as it
    // closes.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for s in scenarios {
        let method = reqwest::Method::from_bytes(s.method.as_bytes()).unwrap();
        let mut request = client.request(method, format!("{}{}", server.url, s.path));
        if let Some(token) = s.token {
            request = request.bearer_auth(token);
        }
        if let Some((name, value)) = s.header {
            request = request.header(name, value);
        }
        if let Some(body) = s.body.clone() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response.text().await.unwrap_or_default();
        if status != s.status {
            failures.push(format!(
                "{}: status {status}, expected {} — {body}",
                s.name, s.status
            ));
            continue;
        }
        if status >= 400 && !content_type.starts_with("application/json") {
            failures.push(format!(
                "{}: error without a JSON body ({content_type}): {body}",
                s.name
            ));
        }
        for fragment in &s.contains {
            if !body.contains(fragment) {
                failures.push(format!("{}: body lacks {fragment:?}: {body}", s.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn rejected_publishes_change_nothing() {
    let server = harness::shared();
    let topic = unique("untouched");
    let first = publish(&server.url, ALPHA, "alpha", &topic, json!(1)).await;
    for (token, project, body) in [
        (BETA, "alpha", r#"{"data":2}"#),
        (ALPHA_READER, "alpha", r#"{"data":2}"#),
        (ALPHA, "alpha", r#"{"data":2"#),
    ] {
        let status = http()
            .post(format!("{}{P}/{project}/topics/{topic}", server.url))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_client_error());
    }
    let mut sse = SseReader::open(&server.url, ALPHA, "alpha", &topic, Some(0)).await;
    assert_eq!(sse.next_event().await, (first, json!(1)));
    let next = publish(&server.url, ALPHA, "alpha", &topic, json!(3)).await;
    assert_eq!(
        sse.next_event().await,
        (next, json!(3)),
        "nothing was published in between"
    );
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

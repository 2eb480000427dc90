//! Bundoc over HTTP: the whole life cycle (on memory and SQLite), rules
//! for end users, a table of bad requests (each answered clearly, none
//! changing anything, injection attempts refused or kept as plain data),
//! and realtime queries over SSE (with resume) and WebSocket.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use bunbase_client::sse::{SseEvent, SseParser};
use bunbase_core::docs::adapters::MemoryDocStore;
use bunbase_core::docs::adapters::sql::sqlite::SqliteDocs;
use bunbase_core::docs::{DocStore, DocsLimits};
use bunbase_core::kms::adapters::memory::MemoryKms;
use bunbase_core::kms::master::MasterKey;
use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics};
use bunbase_tests::harness::{
    self, ALPHA, ALPHA_ALICE, ALPHA_BOB, ALPHA_PUBLISHABLE, ALPHA_READER, BETA, Options,
    RunningServer,
};
use futures_util::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{SseReader, WAIT, http};
use bunbase_tests::scenario::{InProcess, Runner, Scenario, scenario};

fn kms() -> Kms {
    Kms::new(
        Arc::new(MemoryKms::new()),
        Arc::new(MasterKey::parse(&"42".repeat(32)).unwrap()),
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    )
}

async fn start(store: Arc<dyn DocStore>, limits: DocsLimits) -> RunningServer {
    harness::start(Options {
        docs: Some((store, limits)),
        kms: Some(kms()),
        ..Options::default()
    })
    .await
}

async fn sqlite() -> (Arc<dyn DocStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteDocs::open(&dir.path().join("bundoc.db"))
        .await
        .unwrap();
    (Arc::new(store), dir)
}

/// Percent-encodes a query-string value.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request to `/bundoc/v1/projects/{path}`, in process.
async fn send(
    app: &InProcess,
    token: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Answer {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let answer = app
        .send(
            method,
            &format!("/bundoc/v1/projects/{path}"),
            token,
            &headers,
            body,
        )
        .await;
    Answer {
        status: answer.status,
        body: answer.json(),
        headers: answer.headers,
    }
}

async fn call(
    base: &InProcess,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let body = body.map(|b| b.to_string().into_bytes());
    send(base, Some(token), method, path, &[], body).await
}

/// Calls and checks the status; returns the body.
async fn expect(
    base: &InProcess,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let answer = call(base, token, method, path, body).await;
    assert_eq!(
        answer.status, status,
        "{method} {path} as {token}: {}",
        answer.body
    );
    answer.body
}

fn ids(documents: &Value) -> Vec<String> {
    documents
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {documents}"))
        .iter()
        .map(|d| d["_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_cycle_over_http_on_memory() {
    life_cycle(Arc::new(MemoryDocStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn life_cycle_over_http_on_sqlite() {
    let (store, _dir) = sqlite().await;
    life_cycle(store).await;
}

async fn life_cycle(store: Arc<dyn DocStore>) {
    let server = start(store, DocsLimits::default()).await;
    let url = server.url();
    let base = &server.app();
    // Every change is also an event on Buncast topic bundoc.<collection>.
    let mut feed = SseReader::open(&url, ALPHA, "alpha", "bundoc.orders", None).await;

    // Collections.
    let definition = json!({
        "indexes": [
            {"fields": ["status", "total"]},
            {"fields": ["sku"], "unique": true, "name": "by_sku"},
        ],
        "rules": {"read": "resource.owner == auth.uid"},
        "encrypted": ["card"],
    });
    let mut create = definition.clone();
    create["name"] = json!("orders");
    let described = expect(base, ALPHA, "POST", "alpha/collections", Some(create), 201).await;
    assert_eq!(described["name"], "orders");
    assert_eq!(described["version"], 1);
    assert_eq!(described["indexes"][0]["name"], "status_total");
    assert_eq!(described["encrypted"], json!(["card"]));
    let listed = expect(base, ALPHA, "GET", "alpha/collections", None, 200).await;
    assert_eq!(listed["collections"], json!([described]));
    let got = expect(base, ALPHA, "GET", "alpha/collections/orders", None, 200).await;
    assert_eq!(got, described);
    let mut update = definition.clone();
    update["indexes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"fields": ["owner"]}));
    let updated = expect(
        base,
        ALPHA,
        "PUT",
        "alpha/collections/orders",
        Some(update),
        200,
    )
    .await;
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["indexes"][2]["name"], "owner");

    // Create: 201 with Location and ETag; the encrypted field reads back.
    let docs = "alpha/collections/orders/documents";
    let order =
        json!({"sku": "A-1", "status": "open", "total": 10, "owner": "alice", "card": "4111"});
    let created = call(base, ALPHA, "POST", docs, Some(order)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["_id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/bundoc/v1/projects/alpha/collections/orders/documents/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.body["card"], "4111");
    let doc_path = format!("{docs}/{id}");
    let read = call(base, ALPHA, "GET", &doc_path, None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(read.body, created.body);

    // Replace with If-Match; a stale tag is a conflict.
    let replacement =
        json!({"sku": "A-1", "status": "open", "total": 12, "owner": "alice", "card": "4111"});
    let body = Some(replacement.to_string().into_bytes());
    let replaced = send(
        base,
        Some(ALPHA),
        "PUT",
        &doc_path,
        &[("if-match", "\"1\"")],
        body.clone(),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.header("etag"), Some("\"2\""));
    assert_eq!(replaced.body["total"], 12);
    let stale = send(
        base,
        Some(ALPHA),
        "PUT",
        &doc_path,
        &[("if-match", "\"1\"")],
        body,
    )
    .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(stale.body["error"]["code"], "conflict");
    // PUT to a new id creates it: 201.
    let upsert = format!("{docs}/by-put");
    let made = call(base, ALPHA, "PUT", &upsert, Some(json!({"sku": "P"}))).await;
    assert_eq!(
        (made.status, made.header("etag")),
        (201, Some("\"1\"")),
        "{}",
        made.body
    );
    expect(base, ALPHA, "DELETE", &upsert, None, 200).await;

    // Merge patches, as merge-patch+json and as plain JSON.
    let patched = send(
        base,
        Some(ALPHA),
        "PATCH",
        &format!("{doc_path}?if_version=2"),
        &[("content-type", "application/merge-patch+json")],
        Some(br#"{"total": 15, "note": "rush"}"#.to_vec()),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["_version"], 3);
    assert_eq!(patched.body["note"], "rush");
    assert_eq!(patched.body["card"], "4111");
    let patched = send(
        base,
        Some(ALPHA),
        "PATCH",
        &doc_path,
        &[("content-type", "application/json")],
        Some(br#"{"note": null}"#.to_vec()),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.header("etag"), Some("\"4\""));
    assert!(patched.body.get("note").is_none(), "{}", patched.body);

    // Delete with If-Match.
    let wrong = send(
        base,
        Some(ALPHA),
        "DELETE",
        &doc_path,
        &[("if-match", "\"3\"")],
        None,
    )
    .await;
    assert_eq!(wrong.status, 409);
    let deleted = send(
        base,
        Some(ALPHA),
        "DELETE",
        &doc_path,
        &[("if-match", "\"4\"")],
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body, json!({"deleted": true}));
    expect(base, ALPHA, "GET", &doc_path, None, 404).await;

    // Batches: all or nothing, results in order (null for deletes).
    let batch = "alpha/collections/orders/batch";
    let results = expect(
        base,
        ALPHA,
        "POST",
        batch,
        Some(json!({"writes": [
            {"op": "create", "doc": {"_id": "b1", "sku": "B-1", "status": "pending", "total": 1}},
            {"op": "create", "doc": {"_id": "b2", "sku": "B-2", "status": "pending", "total": 2}},
            {"op": "replace", "id": "b3", "doc": {"sku": "B-3", "status": "pending", "total": 3}},
        ]})),
        200,
    )
    .await;
    assert_eq!(ids(&results["results"]), ["b1", "b2", "b3"]);
    let results = expect(
        base,
        ALPHA,
        "POST",
        batch,
        Some(json!({"writes": [
            {"op": "patch", "id": "b1", "patch": {"total": 5}, "if_version": 1},
            {"op": "delete", "id": "b2"},
        ]})),
        200,
    )
    .await;
    assert_eq!(results["results"][0]["total"], 5);
    assert_eq!(results["results"][1], Value::Null);

    // Query with cursor paging: 13 open orders, total descending.
    let writes: Vec<Value> = (0..25)
        .map(|i| {
            let status = if i % 2 == 0 { "open" } else { "closed" };
            json!({"op": "create", "doc": {"_id": format!("q{i:02}"), "sku": format!("Q-{i}"), "status": status, "total": i}})
        })
        .collect();
    expect(
        base,
        ALPHA,
        "POST",
        batch,
        Some(json!({ "writes": writes })),
        200,
    )
    .await;
    let mut body = json!({"filter": {"status": "open"}, "sort": [{"total": "desc"}], "limit": 4});
    let mut totals = Vec::new();
    loop {
        let page = expect(
            base,
            ALPHA,
            "POST",
            "alpha/collections/orders/query",
            Some(body.clone()),
            200,
        )
        .await;
        assert!(page["documents"].as_array().unwrap().len() <= 4);
        totals.extend(
            page["documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["total"].as_i64().unwrap()),
        );
        match &page["next_cursor"] {
            Value::Null => break,
            cursor => body["cursor"] = cursor.clone(),
        }
    }
    assert_eq!(totals, (0..25).rev().step_by(2).collect::<Vec<i64>>());
    // Explain names the index it used.
    let stats = expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections/orders/explain",
        Some(json!({"filter": {"status": "open"}, "sort": [{"total": "desc"}], "limit": 4})),
        200,
    )
    .await;
    assert_eq!(stats["plan"], "index", "{stats}");
    assert_eq!(stats["index"], "status_total", "{stats}");
    assert_eq!(stats["returned"], 4, "{stats}");

    // The same query from the query string, projected.
    let filter = encode(r#"{"status": "open"}"#);
    let list = format!("{docs}?filter={filter}&sort=-total&fields=total&limit=5");
    let page = expect(base, ALPHA, "GET", &list, None, 200).await;
    let first = page["documents"].as_array().unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(first[0]["total"], 24);
    let mut keys: Vec<&String> = first[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["_created", "_id", "_updated", "_version", "total"],
        "projected"
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = expect(
        base,
        ALPHA,
        "GET",
        &format!("{list}&cursor={}", encode(cursor)),
        None,
        200,
    )
    .await;
    assert_eq!(next["documents"][0]["total"], 14);

    // Documents near the 1 MiB limit pass (the server's body limit is
    // 256 KiB here; Bundoc's routes have their own).
    let large = json!({"_id": "large", "sku": "L-1", "blob": "x".repeat(900 * 1024)});
    expect(base, ALPHA, "POST", docs, Some(large), 201).await;
    expect(base, ALPHA, "DELETE", &format!("{docs}/large"), None, 200).await;

    // Count and usage.
    let count = expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections/orders/count",
        Some(json!({"filter": {"status": "open"}})),
        200,
    )
    .await;
    assert_eq!(count, json!({"count": 13}));
    let usage = expect(base, ALPHA, "GET", "alpha/usage", None, 200).await;
    assert_eq!(usage["documents"], 27, "{usage}");
    assert!(usage["bytes"].as_u64().unwrap() > 0);

    // The change feed: the first order's creation, its card as ciphertext.
    let (_, change) = feed.next_event().await;
    assert_eq!(change["op"], "create");
    assert_eq!(change["id"], id.as_str());
    assert_eq!(change["doc"]["sku"], "A-1");
    assert!(
        change["doc"]["card"].is_string() && change["doc"]["card"] != "4111",
        "{change}"
    );

    // Deleting the collection deletes its documents.
    let gone = expect(base, ALPHA, "DELETE", "alpha/collections/orders", None, 200).await;
    assert_eq!(gone, json!({"deleted": true}));
    expect(base, ALPHA, "GET", "alpha/collections/orders", None, 404).await;
    let usage = expect(base, ALPHA, "GET", "alpha/usage", None, 200).await;
    assert_eq!(usage["documents"], 0, "{usage}");
    server.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_decide_what_end_users_may_do() {
    let server = start(Arc::new(MemoryDocStore::new()), DocsLimits::default()).await;

    let base = &server.app();
    let rules = json!({
        "read": "resource.owner == auth.uid",
        "list": "resource.owner == auth.uid",
        "create": "request.owner == auth.uid",
        "update": "resource.owner == auth.uid && request.owner == auth.uid",
        "delete": "resource.owner == auth.uid",
    });
    expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections",
        Some(json!({"name": "notes", "rules": rules})),
        201,
    )
    .await;
    expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections",
        Some(json!({"name": "closed"})),
        201,
    )
    .await;
    let notes = "alpha/collections/notes/documents";
    let alices = json!({"_id": "n1", "owner": "alice", "text": "hi"});
    expect(base, ALPHA_ALICE, "POST", notes, Some(alices), 201).await;
    expect(
        base,
        ALPHA_BOB,
        "POST",
        notes,
        Some(json!({"_id": "n2", "owner": "bob"})),
        201,
    )
    .await;
    // Refused: writing as someone else, reading or changing others' notes.
    let refusals = [
        (
            ALPHA_ALICE,
            "POST",
            notes.to_string(),
            Some(json!({"owner": "bob"})),
        ),
        (ALPHA_BOB, "GET", format!("{notes}/n1"), None),
        (
            ALPHA_BOB,
            "PATCH",
            format!("{notes}/n1"),
            Some(json!({"text": "x"})),
        ),
        (
            ALPHA_ALICE,
            "PATCH",
            format!("{notes}/n1"),
            Some(json!({"owner": "bob"})),
        ),
        (ALPHA_BOB, "DELETE", format!("{notes}/n1"), None),
        (
            ALPHA_ALICE,
            "POST",
            "alpha/collections/closed/documents".to_string(),
            Some(json!({"owner": "alice"})),
        ),
        (
            ALPHA_ALICE,
            "POST",
            "alpha/collections".to_string(),
            Some(json!({"name": "mine"})),
        ),
        (ALPHA_ALICE, "GET", "alpha/usage".to_string(), None),
    ];
    let scenarios = refusals
        .into_iter()
        .map(|(token, method, path, body)| {
            let s = scenario(
                format!("{method} {path}"),
                method,
                format!("/bundoc/v1/projects/{path}"),
            )
            .token(token)
            .fails(403, "permission_denied");
            match body {
                Some(body) => s.json(body),
                None => s,
            }
        })
        .collect();
    Runner::on(base.clone())
        .events(server.events.clone(), &["alpha"])
        .run(scenarios)
        .await;
    // Each sees only their own notes.
    let page = expect(base, ALPHA_ALICE, "GET", notes, None, 200).await;
    assert_eq!(ids(&page["documents"]), ["n1"]);
    let page = expect(
        base,
        ALPHA_BOB,
        "POST",
        "alpha/collections/notes/query",
        Some(json!({})),
        200,
    )
    .await;
    assert_eq!(ids(&page["documents"]), ["n2"]);
    let edited = expect(
        base,
        ALPHA_ALICE,
        "PATCH",
        &format!("{notes}/n1"),
        Some(json!({"text": "edited"})),
        200,
    )
    .await;
    assert_eq!(edited["text"], "edited");
    assert_eq!(edited["_version"], 2, "the refused patches changed nothing");
    expect(
        base,
        ALPHA_ALICE,
        "DELETE",
        &format!("{notes}/n1"),
        None,
        200,
    )
    .await;
    server.shutdown.trigger();
}

/// A request to `/bundoc/v1/projects/{path}` that must be refused, with
/// nothing changed or published.
fn case(name: &str, method: &str, path: &str, status: u16, code: &str) -> Scenario {
    scenario(name, method, format!("/bundoc/v1/projects/{path}"))
        .token(ALPHA)
        .fails(status, code)
}

/// Everything a bad request could have changed.
async fn state_of(base: InProcess) -> Value {
    let base = &base;
    let mut docs = Vec::new();
    for id in ["i1", "i2", "i3", "i4", "i5", "i6", "new1", "x"] {
        let answer = call(
            base,
            ALPHA,
            "GET",
            &format!("alpha/collections/items/documents/{id}"),
            None,
        )
        .await;
        docs.push(json!([answer.status, answer.body]));
    }
    json!({
        "usage": call(base, ALPHA, "GET", "alpha/usage", None).await.body,
        "collections": call(base, ALPHA, "GET", "alpha/collections", None).await.body,
        "documents": docs,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_change_nothing() {
    let (store, _dir) = sqlite().await;
    let limits = DocsLimits {
        max_scan: 5,
        ..DocsLimits::default()
    };
    let server = start(store, limits).await;

    let base = &server.app();
    let items_definition = json!({
        "indexes": [{"fields": ["sku"], "unique": true, "name": "by_sku"}, {"fields": ["n"]}],
        "encrypted": ["secret"],
    });
    let mut create = items_definition.clone();
    create["name"] = json!("items");
    expect(base, ALPHA, "POST", "alpha/collections", Some(create), 201).await;
    let writes: Vec<Value> = (1..=6)
        .map(|i| json!({"op": "create", "doc": {"_id": format!("i{i}"), "sku": format!("S-{i}"), "n": i, "color": "red", "secret": format!("s{i}")}}))
        .collect();
    expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections/items/batch",
        Some(json!({ "writes": writes })),
        200,
    )
    .await;
    let before = state_of(base.clone()).await;

    let docs = "alpha/collections/items/documents";
    let nested = (0..40).fold(json!(1), |inner, _| json!({ "a": inner }));
    let big = json!({ "blob": "x".repeat(1024 * 1024 + 10) });
    let cases = vec![
        // Credentials.
        case("no credential", "POST", docs, 401, "unauthenticated")
            .no_token()
            .json(json!({"sku": "N"})),
        case("unknown token", "POST", docs, 401, "unauthenticated")
            .token("nope-nope-nope-nope-nope")
            .json(json!({"sku": "N"})),
        case(
            "other project writes",
            "POST",
            docs,
            403,
            "permission_denied",
        )
        .token(BETA)
        .json(json!({"sku": "N"})),
        case(
            "other project reads",
            "GET",
            &format!("{docs}/i1"),
            403,
            "permission_denied",
        )
        .token(BETA),
        case(
            "other project queries",
            "POST",
            "alpha/collections/items/query",
            403,
            "permission_denied",
        )
        .token(BETA)
        .json(json!({})),
        case(
            "other project subscribes",
            "GET",
            "alpha/collections/items/subscribe",
            403,
            "permission_denied",
        )
        .token(BETA),
        case(
            "other project deletes the collection",
            "DELETE",
            "alpha/collections/items",
            403,
            "permission_denied",
        )
        .token(BETA),
        case("reader writes", "POST", docs, 403, "permission_denied")
            .token(ALPHA_READER)
            .json(json!({"sku": "N"})),
        case(
            "reader creates a collection",
            "POST",
            "alpha/collections",
            403,
            "permission_denied",
        )
        .token(ALPHA_READER)
        .json(json!({"name": "mine"})),
        case(
            "end user on a collection without rules",
            "GET",
            &format!("{docs}/i1"),
            403,
            "permission_denied",
        )
        .token(ALPHA_ALICE),
        // Bodies.
        case("malformed JSON", "POST", docs, 400, "invalid_input").body("{\"sku\":"),
        case("empty body", "POST", docs, 400, "invalid_input").body(""),
        case("document is an array", "POST", docs, 400, "invalid_input").json(json!([1])),
        case("system field", "POST", docs, 400, "invalid_input")
            .json(json!({"sku": "N", "_version": 9})),
        case("$where as a field", "POST", docs, 400, "invalid_input")
            .json(json!({"sku": "N", "$where": "1 == 1"})),
        case("nested $ field", "POST", docs, 400, "invalid_input")
            .json(json!({"sku": "N", "a": {"$gt": ""}})),
        case("dotted field", "POST", docs, 400, "invalid_input")
            .json(json!({"sku": "N", "a.b": 1})),
        case("too deep", "POST", docs, 400, "invalid_input").json(nested),
        case(
            "document over 1 MiB",
            "POST",
            docs,
            413,
            "payload_too_large",
        )
        .json(big)
        .says("the document is"),
        case(
            "body over the limit",
            "POST",
            "alpha/collections/items/batch",
            413,
            "payload_too_large",
        )
        .body(vec![b' '; 8 * 1024 * 1024 + 100]),
        // Ids.
        case(
            "bad id in the path",
            "GET",
            &format!("{docs}/bad%20id"),
            400,
            "invalid_input",
        ),
        case(
            "SQL in the id",
            "GET",
            &format!("{docs}/x'%3B%20DROP%20TABLE%20docs%3B%20--"),
            400,
            "invalid_input",
        ),
        case("bad id in the body", "POST", docs, 400, "invalid_input")
            .json(json!({"_id": "a b", "sku": "N"})),
        case("id that exists", "POST", docs, 409, "already_exists")
            .json(json!({"_id": "i1", "sku": "N"})),
        case(
            "replace with another _id",
            "PUT",
            &format!("{docs}/i1"),
            400,
            "invalid_input",
        )
        .json(json!({"_id": "i2", "sku": "S-1"})),
        // Versions.
        case("unique index", "POST", docs, 409, "conflict")
            .json(json!({"sku": "S-1"}))
            .says("by_sku"),
        case(
            "stale If-Match",
            "PUT",
            &format!("{docs}/i1"),
            409,
            "conflict",
        )
        .header("if-match", "\"9\"")
        .json(json!({"sku": "S-1"})),
        case(
            "stale if_version",
            "DELETE",
            &format!("{docs}/i1?if_version=9"),
            409,
            "conflict",
        ),
        case(
            "weak If-Match",
            "PUT",
            &format!("{docs}/i1"),
            400,
            "invalid_input",
        )
        .header("if-match", "W/\"1\"")
        .json(json!({"sku": "S-1"})),
        case(
            "If-Match contradicts if_version",
            "PUT",
            &format!("{docs}/i1?if_version=2"),
            400,
            "invalid_input",
        )
        .header("if-match", "\"1\"")
        .json(json!({"sku": "S-1"})),
        case(
            "if_version not a number",
            "DELETE",
            &format!("{docs}/i1?if_version=abc"),
            400,
            "invalid_input",
        ),
        case(
            "patch a missing document",
            "PATCH",
            &format!("{docs}/nope"),
            404,
            "not_found",
        )
        .json(json!({"n": 1})),
        case(
            "patch with an array",
            "PATCH",
            &format!("{docs}/i1"),
            400,
            "invalid_input",
        )
        .json(json!([1])),
        case(
            "JSON Patch",
            "PATCH",
            &format!("{docs}/i1"),
            415,
            "invalid_input",
        )
        .header("content-type", "application/json-patch+json")
        .json(json!([{"op": "remove", "path": "/n"}])),
        case(
            "delete a missing document",
            "DELETE",
            &format!("{docs}/nope"),
            404,
            "not_found",
        ),
        case(
            "unknown collection",
            "GET",
            "alpha/collections/nope/documents/x",
            404,
            "not_found",
        ),
        // Collections.
        case(
            "SQL in a collection name",
            "POST",
            "alpha/collections",
            400,
            "invalid_input",
        )
        .json(json!({"name": "x'; DROP TABLE docs; --"})),
        case(
            "collection unknown field",
            "POST",
            "alpha/collections",
            400,
            "invalid_input",
        )
        .json(json!({"name": "c2", "colour": 1})),
        case(
            "indexes of the wrong type",
            "POST",
            "alpha/collections",
            400,
            "invalid_input",
        )
        .json(json!({"name": "c3", "indexes": "sku"})),
        case(
            "index on an encrypted field",
            "POST",
            "alpha/collections",
            400,
            "invalid_input",
        )
        .json(json!({"name": "c4", "encrypted": ["s"], "indexes": [{"fields": ["s"]}]})),
        case(
            "bad rule",
            "POST",
            "alpha/collections",
            400,
            "invalid_input",
        )
        .json(json!({"name": "c5", "rules": {"read": "auth.uid =="}})),
        case(
            "collection exists",
            "POST",
            "alpha/collections",
            409,
            "already_exists",
        )
        .json(json!({"name": "items"})),
        case(
            "rename",
            "PUT",
            "alpha/collections/items",
            400,
            "invalid_input",
        )
        .json(json!({"name": "other"})),
        case(
            "change encrypted fields",
            "PUT",
            "alpha/collections/items",
            400,
            "invalid_input",
        )
        .json(json!({"indexes": items_definition["indexes"], "encrypted": []})),
        // Queries.
        case(
            "query unknown field",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"select": ["n"]})),
        case(
            "unknown operator",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"filter": {"n": {"$regex": "x"}}})),
        case(
            "$where",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"filter": {"$where": "this.n > 1"}})),
        case(
            "limit of the wrong type",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"limit": "5"})),
        case(
            "limit zero",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"limit": 0})),
        case(
            "cursor not ours",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"cursor": "abc"})),
        case(
            "filter on an encrypted field",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"filter": {"secret": "s1"}}))
        .says("encrypted"),
        case(
            "sort on an encrypted field",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"sort": [{"secret": "asc"}]})),
        case(
            "missing index",
            "POST",
            "alpha/collections/items/query",
            400,
            "invalid_input",
        )
        .json(json!({"filter": {"color": "red"}}))
        .says("\"fields\":[\"color\"]"),
        case(
            "explain a bad query",
            "POST",
            "alpha/collections/items/explain",
            400,
            "invalid_input",
        )
        .json(json!({"filter": {"n": {"$near": 1}}})),
        case(
            "count unknown field",
            "POST",
            "alpha/collections/items/count",
            400,
            "invalid_input",
        )
        .json(json!({"filters": {}})),
        case(
            "list filter not JSON",
            "GET",
            &format!("{docs}?filter=%7Bnope"),
            400,
            "invalid_input",
        ),
        case(
            "list unknown parameter",
            "GET",
            &format!("{docs}?where=1"),
            400,
            "invalid_input",
        ),
        case(
            "list limit not a number",
            "GET",
            &format!("{docs}?limit=ten"),
            400,
            "invalid_input",
        ),
        case(
            "list empty sort field",
            "GET",
            &format!("{docs}?sort=n,,sku"),
            400,
            "invalid_input",
        ),
        case(
            "list sort by $",
            "GET",
            &format!("{docs}?sort=-%24where"),
            400,
            "invalid_input",
        ),
        // Batches.
        case(
            "unknown op",
            "POST",
            "alpha/collections/items/batch",
            400,
            "invalid_input",
        )
        .json(json!({"writes": [{"op": "upsert", "doc": {}}]})),
        case(
            "unknown write field",
            "POST",
            "alpha/collections/items/batch",
            400,
            "invalid_input",
        )
        .json(json!({"writes": [{"op": "create", "doc": {}, "extra": 1}]})),
        case(
            "writes not a list",
            "POST",
            "alpha/collections/items/batch",
            400,
            "invalid_input",
        )
        .json(json!({"writes": {}})),
        case(
            "empty batch",
            "POST",
            "alpha/collections/items/batch",
            400,
            "invalid_input",
        )
        .json(json!({"writes": []})),
        case(
            "same document twice",
            "POST",
            "alpha/collections/items/batch",
            400,
            "invalid_input",
        )
        .json(json!({"writes": [{"op": "delete", "id": "i1"}, {"op": "delete", "id": "i1"}]})),
        case(
            "all or nothing",
            "POST",
            "alpha/collections/items/batch",
            409,
            "conflict",
        )
        .json(json!({"writes": [
            {"op": "create", "doc": {"_id": "new1", "sku": "N-1"}},
            {"op": "create", "doc": {"sku": "S-1"}},
        ]})),
        // Subscriptions.
        case(
            "subscribe with a cursor",
            "GET",
            "alpha/collections/items/subscribe?cursor=abc",
            400,
            "invalid_input",
        ),
        case(
            "bad resume point",
            "GET",
            "alpha/collections/items/subscribe?after=-1",
            400,
            "invalid_input",
        ),
        case(
            "subscribe to a bad filter",
            "GET",
            &format!(
                "alpha/collections/items/subscribe?filter={}",
                encode(r#"{"n":{"$bad":1}}"#)
            ),
            400,
            "invalid_input",
        ),
        // Routes.
        case(
            "invalid project",
            "GET",
            "Not_A_Project/usage",
            400,
            "invalid_input",
        ),
        case(
            "unknown route",
            "GET",
            "alpha/collections/items/nothing",
            404,
            "not_found",
        ),
        case(
            "wrong method",
            "POST",
            &format!("{docs}/i1"),
            405,
            "invalid_input",
        )
        .json(json!({})),
    ];
    Runner::on(base.clone())
        .events(server.events.clone(), &["alpha", "beta"])
        .state(state_of)
        .run(cases)
        .await;
    assert_eq!(state_of(base.clone()).await, before);

    // Quotes and SQL in names and values are plain data.
    expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections",
        Some(json!({"name": "free", "allow_scans": true})),
        201,
    )
    .await;
    let odd_field = "a'; DROP TABLE x; --";
    let odd_value = "O'Brien \"); DELETE FROM docs; --";
    let free = "alpha/collections/free/documents";
    expect(
        base,
        ALPHA,
        "POST",
        free,
        Some(json!({"_id": "odd", odd_field: odd_value, "n": 1})),
        201,
    )
    .await;
    expect(
        base,
        ALPHA,
        "POST",
        free,
        Some(json!({"_id": "plain", "n": 2})),
        201,
    )
    .await;
    for filter in [
        json!({ odd_field: odd_value }),
        json!({ odd_field: {"$in": [odd_value, "x' OR '1'='1"]} }),
        json!({ odd_field: {"$exists": true} }),
    ] {
        let page = expect(
            base,
            ALPHA,
            "POST",
            "alpha/collections/free/query",
            Some(json!({ "filter": filter, "sort": [{ odd_field: "desc" }] })),
            200,
        )
        .await;
        assert_eq!(ids(&page["documents"]), ["odd"], "{filter}");
    }
    let page = expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections/free/query",
        Some(json!({"filter": {"n": "1' OR '1'='1"}})),
        200,
    )
    .await;
    assert_eq!(ids(&page["documents"]), Vec::<String>::new());
    let odd = expect(base, ALPHA, "GET", &format!("{free}/odd"), None, 200).await;
    assert_eq!(odd[odd_field], odd_value);
    // And the first collection is intact.
    assert_eq!(
        state_of(base.clone()).await["documents"],
        before["documents"]
    );
    server.shutdown.trigger();
}

/// Reads a Bundoc subscription's SSE frames.
struct Frames {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
}

impl Frames {
    async fn open(base: &str, path: &str, last_event_id: Option<&str>) -> Frames {
        Frames::open_as(ALPHA, base, path, last_event_id).await
    }

    async fn open_as(token: &str, base: &str, path: &str, last_event_id: Option<&str>) -> Frames {
        let mut request = http()
            .get(format!("{base}/bundoc/v1/projects/{path}"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Frames {
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next frame: (event name, id, data).
    async fn next(&mut self) -> (String, Option<String>, Value) {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                let data = serde_json::from_str(&frame.data).unwrap();
                return (frame.event, frame.id, data);
            }
            match tokio::time::timeout(WAIT, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.ready.extend(self.parser.feed(&chunk)),
                other => panic!("no SSE frame: {other:?}"),
            }
        }
    }

    /// The next frame's name and document id.
    async fn next_change(&mut self) -> (String, String) {
        let (name, id, data) = self.next().await;
        assert!(id.is_some(), "{name} has a position");
        let doc_id = match name.as_str() {
            "removed" => data["id"].as_str(),
            _ => data["doc"]["_id"].as_str(),
        };
        (name, doc_id.unwrap_or_default().to_string())
    }

    fn last_event_id(&self) -> Option<String> {
        self.parser.last_event_id().map(str::to_string)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(socket: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("no WebSocket frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_a_filtered_query_and_resume() {
    let server = start(Arc::new(MemoryDocStore::new()), DocsLimits::default()).await;
    let url = server.url();
    let base = &server.app();
    expect(
        base,
        ALPHA,
        "POST",
        "alpha/collections",
        Some(json!({"name": "tasks", "indexes": [{"fields": ["status"]}]})),
        201,
    )
    .await;
    let docs = "alpha/collections/tasks/documents";
    // PUT creates (201) or replaces (200).
    let put = |id: &'static str, status: &'static str| async move {
        let path = format!("{docs}/{id}");
        let answer = call(base, ALPHA, "PUT", &path, Some(json!({ "status": status }))).await;
        assert!(
            [200, 201].contains(&answer.status),
            "{path}: {}",
            answer.body
        );
    };
    let remove = |id: &'static str| async move {
        expect(base, ALPHA, "DELETE", &format!("{docs}/{id}"), None, 200).await;
    };
    put("t1", "open").await;
    put("t2", "closed").await;

    let subscribe = format!(
        "alpha/collections/tasks/subscribe?filter={}",
        encode(r#"{"status": "open"}"#)
    );
    let mut frames = Frames::open(&url, &subscribe, None).await;
    let (name, id, data) = frames.next().await;
    assert_eq!(name, "snapshot");
    assert!(id.is_some());
    assert_eq!(ids(&data["documents"]), ["t1"]);

    put("t3", "open").await;
    put("t1", "open").await;
    put("t2", "open").await;
    put("t3", "closed").await;
    remove("t1").await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(frames.next_change().await);
    }
    let expected = [
        ("added", "t3"),
        ("changed", "t1"),
        ("added", "t2"),
        ("removed", "t3"),
        ("removed", "t1"),
    ];
    assert_eq!(seen, expected.map(|(n, i)| (n.to_string(), i.to_string())),);

    // Changes made while disconnected arrive after a resume.
    let last = frames.last_event_id().unwrap();
    drop(frames);
    put("t4", "open").await;
    remove("t2").await;
    let mut frames = Frames::open(&url, &subscribe, Some(&last)).await;
    put("t5", "open").await;
    let mut resumed = Vec::new();
    while !resumed.iter().any(|(_, id): &(String, String)| id == "t5") {
        resumed.push(frames.next_change().await);
    }
    // Resumed without a snapshot, the server can't tell added from
    // changed for what was missed.
    let named = |id: &str| -> Vec<String> {
        resumed
            .iter()
            .filter(|(_, i)| i == id)
            .map(|(n, _)| n.clone())
            .collect()
    };
    assert!(
        matches!(named("t4").as_slice(), [n] if n == "added" || n == "changed"),
        "{resumed:?}"
    );
    assert_eq!(named("t2"), ["removed"], "{resumed:?}");
    assert_eq!(resumed.len(), 3, "{resumed:?}");

    // The same over WebSocket.
    let ws_base = url.replacen("http://", "ws://", 1);
    let url = format!(
        "{ws_base}/bundoc/v1/projects/alpha/collections/tasks/ws?filter={}&access_token={ALPHA}",
        encode(r#"{"status": "open"}"#)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url.into_client_request().unwrap())
        .await
        .unwrap();
    let snapshot = next_message(&mut socket).await;
    assert_eq!(snapshot["event"], "snapshot", "{snapshot}");
    assert!(snapshot["id"].is_u64());
    let mut open = ids(&snapshot["data"]["documents"]);
    open.sort();
    assert_eq!(open, ["t4", "t5"]);
    put("t6", "open").await;
    let added = next_message(&mut socket).await;
    assert_eq!(added["event"], "added", "{added}");
    assert_eq!(added["data"]["doc"]["_id"], "t6");

    // Shutdown ends subscriptions with a reason.
    server.shutdown.trigger();
    loop {
        let (name, id, data) = frames.next().await;
        if name == "closed" {
            assert_eq!(data["reason"], "shutdown");
            assert!(id.is_none(), "closed never moves the resume point");
            break;
        }
    }
}

/// A collection `c` whose rules show each end user their own documents
/// (with an encrypted `secret`), and Alice's `d1` in it.
async fn ruled_collection() -> (RunningServer, InProcess) {
    let server = start(Arc::new(MemoryDocStore::new()), DocsLimits::default()).await;
    let app = server.app();
    expect(
        &app,
        ALPHA,
        "POST",
        "alpha/collections",
        Some(json!({
            "name": "c",
            "indexes": [{"fields": ["owner"]}],
            "encrypted": ["secret"],
            "rules": {
                "read": "resource.owner == auth.uid",
                "list": "resource.owner == auth.uid",
                "create": "request.owner == auth.uid",
                "update": "auth.kind == \"end_user\" && request.owner == resource.owner",
                "delete": "resource.owner == auth.uid",
            },
        })),
        201,
    )
    .await;
    let created = expect(
        &app,
        ALPHA_ALICE,
        "POST",
        C,
        Some(json!({"_id": "d1", "owner": "alice", "secret": "s3cret", "note": "private"})),
        201,
    )
    .await;
    assert_eq!(created["secret"], "s3cret", "the writer reads its own");
    (server, app)
}

const C: &str = "alpha/collections/c/documents";

/// 1. A write answers only what the read rule shows: Bob may update Alice's
/// document (the rule lets any end user keep the owner) but not read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answers_only_what_the_read_rule_shows() {
    let (_server, app) = ruled_collection().await;
    let app = &app;
    expect(app, ALPHA_BOB, "GET", &format!("{C}/d1"), None, 403).await;
    let patched = expect(
        app,
        ALPHA_BOB,
        "PATCH",
        &format!("{C}/d1"),
        Some(json!({})),
        200,
    )
    .await;
    assert_eq!(patched["_id"], "d1");
    assert_eq!(patched["_version"], 2, "the write happened: {patched}");
    for hidden in ["secret", "note", "owner"] {
        assert!(patched.get(hidden).is_none(), "{hidden} leaked: {patched}");
    }
    let replaced = expect(
        app,
        ALPHA_BOB,
        "PUT",
        &format!("{C}/d1"),
        Some(json!({"owner": "alice", "note": "changed"})),
        200,
    )
    .await;
    assert!(replaced.get("note").is_none(), "{replaced}");
    let written = expect(
        app,
        ALPHA_BOB,
        "POST",
        "alpha/collections/c/batch",
        Some(json!({"writes": [{"op": "patch", "id": "d1", "patch": {}}]})),
        200,
    )
    .await;
    assert!(written["results"][0].get("secret").is_none(), "{written}");
}

/// 2. explain counts what the list rule hides: not for callers under
/// rules; count counts only what they may list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_is_not_for_callers_under_rules() {
    let (_server, app) = ruled_collection().await;
    let app = &app;
    for token in [ALPHA_PUBLISHABLE, ALPHA_BOB] {
        let answer = call(
            app,
            token,
            "POST",
            "alpha/collections/c/explain",
            Some(json!({"filter": {"owner": "alice"}})),
        )
        .await;
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert_eq!(answer.body["error"]["code"], "permission_denied");
        let counted = expect(
            app,
            token,
            "POST",
            "alpha/collections/c/count",
            Some(json!({"filter": {"owner": "alice"}})),
            200,
        )
        .await;
        assert_eq!(counted["count"], 0);
    }
    let explained = expect(
        app,
        ALPHA,
        "POST",
        "alpha/collections/c/explain",
        Some(json!({"filter": {"owner": "alice"}})),
        200,
    )
    .await;
    assert_eq!(
        explained["examined"], 1,
        "members still explain: {explained}"
    );
}

/// 3. `null` does not equal a missing `auth.uid`: the publishable key
/// can't create an unowned document, nor read one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_never_equals_a_missing_auth_uid() {
    let (_server, app) = ruled_collection().await;
    let app = &app;
    for (method, path, body) in [
        (
            "POST",
            C.to_string(),
            Some(json!({"_id": "z", "owner": null})),
        ),
        ("POST", C.to_string(), Some(json!({"_id": "z2"}))),
        ("PUT", format!("{C}/z3"), Some(json!({"owner": null}))),
    ] {
        let answer = call(app, ALPHA_PUBLISHABLE, method, &path, body).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
    }
    expect(
        app,
        ALPHA,
        "PUT",
        &format!("{C}/unowned"),
        Some(json!({"owner": null})),
        201,
    )
    .await;
    expect(
        app,
        ALPHA_PUBLISHABLE,
        "GET",
        &format!("{C}/unowned"),
        None,
        403,
    )
    .await;
    let listed = expect(app, ALPHA_PUBLISHABLE, "GET", C, None, 200).await;
    assert_eq!(listed["documents"], json!([]), "{listed}");
}

/// 4. A resumed subscription removes only what it showed: Bob resumes
/// after Alice's documents left and sees no trace of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_subscription_names_no_hidden_document() {
    let (server, app) = ruled_collection().await;
    let (url, app) = (server.url(), &app);
    expect(
        app,
        ALPHA_BOB,
        "POST",
        C,
        Some(json!({"_id": "b1", "owner": "bob"})),
        201,
    )
    .await;
    let subscribe = "alpha/collections/c/subscribe";
    let mut frames = Frames::open_as(ALPHA_BOB, &url, subscribe, None).await;
    let (name, _, snapshot) = frames.next().await;
    assert_eq!(name, "snapshot");
    assert_eq!(ids(&snapshot["documents"]), ["b1"]);
    let position = frames.last_event_id().unwrap();
    drop(frames);
    expect(
        app,
        ALPHA_ALICE,
        "POST",
        C,
        Some(json!({"_id": "a2", "owner": "alice"})),
        201,
    )
    .await;
    expect(app, ALPHA_ALICE, "DELETE", &format!("{C}/a2"), None, 200).await;
    expect(app, ALPHA_ALICE, "DELETE", &format!("{C}/d1"), None, 200).await;
    expect(app, ALPHA_BOB, "DELETE", &format!("{C}/b1"), None, 200).await;
    let mut frames = Frames::open_as(ALPHA_BOB, &url, subscribe, Some(&position)).await;
    // The only change Bob may know of is his own document's removal...
    assert_eq!(
        frames.next_change().await,
        ("removed".to_string(), "b1".to_string())
    );
    // ...and nothing else before his next write.
    expect(
        app,
        ALPHA_BOB,
        "POST",
        C,
        Some(json!({"_id": "b2", "owner": "bob"})),
        201,
    )
    .await;
    assert_eq!(
        frames.next_change().await,
        ("changed".to_string(), "b2".to_string())
    );
    server.shutdown.trigger();
}

/// 5. No existence oracle, no versions before rules: a document Bob may
/// not touch and one that does not exist answer alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_forbidden_documents_answer_alike() {
    let (_server, app) = ruled_collection().await;
    let app = &app;
    let refused = |method: &'static str, path: String, body: Option<Value>| async move {
        let answer = call(app, ALPHA_BOB, method, &path, body).await;
        (answer.status, answer.body["error"]["code"].clone())
    };
    let forbidden = (403, json!("permission_denied"));
    let give_away = || Some(json!({"owner": "bob"}));
    for (method, path, body) in [
        ("DELETE", format!("{C}/d1"), None),
        ("DELETE", format!("{C}/nothing"), None),
        ("DELETE", format!("{C}/d1?if_version=99"), None),
        ("PATCH", format!("{C}/d1"), give_away()),
        ("PATCH", format!("{C}/nothing"), give_away()),
        ("PATCH", format!("{C}/d1?if_version=99"), give_away()),
    ] {
        assert_eq!(
            refused(method, path.clone(), body).await,
            forbidden,
            "{method} {path}"
        );
    }
    // Past the rules, the details: a stale version of Alice's own is 409;
    // a missing document is 404 for the project's keys (for callers under
    // rules the rule decides first, with no document to read).
    expect(app, ALPHA, "DELETE", &format!("{C}/nothing"), None, 404).await;
    expect(
        app,
        ALPHA_ALICE,
        "DELETE",
        &format!("{C}/nothing"),
        None,
        403,
    )
    .await;
    expect(
        app,
        ALPHA_ALICE,
        "DELETE",
        &format!("{C}/d1?if_version=7"),
        None,
        409,
    )
    .await;
}

/// Realtime queries count against the project's open subscriptions
/// (`max_subscribers_per_project`, with its event and KV change streams):
/// the next answers 429; another project is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_subscriptions_are_bounded_per_project() {
    let server = harness::start(Options {
        docs: Some((Arc::new(MemoryDocStore::new()), DocsLimits::default())),
        kms: Some(kms()),
        bus_config: bunbase_core::events::adapters::BusConfig {
            hub: bunbase_core::events::hub::HubConfig {
                max_subscribers_per_project: 1,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let url = server.url();
    let base = &server.app();
    for (token, project) in [(ALPHA, "alpha"), (BETA, "beta")] {
        expect(
            base,
            token,
            "POST",
            &format!("{project}/collections"),
            Some(json!({"name": "live"})),
            201,
        )
        .await;
    }
    let _open = Frames::open(&url, "alpha/collections/live/subscribe", None).await;
    let refused = http()
        .get(format!(
            "{url}/bundoc/v1/projects/alpha/collections/live/subscribe"
        ))
        .bearer_auth(ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let _theirs = Frames::open_as(BETA, &url, "beta/collections/live/subscribe", None).await;
    server.shutdown.trigger();
}

//! Functions through a real socket: deploying (TypeScript, versions,
//! rollback, delete), bad input, what stops a running function (each a
//! 502 recorded with its outcome), concurrency, auth modes, warm state and
//! its isolation, the `ctx.bunbase` bindings, env and secrets, the fetch
//! gate, the web globals, the log (pages, console lines, live stream),
//! triggers (events with a dead-letter topic, documents, schedules) and
//! the metrics.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bunbase_client::sse::{SseEvent, SseParser};
use bunbase_core::docs::DocsLimits;
use bunbase_core::docs::adapters::MemoryDocStore;
use bunbase_core::kms::adapters::memory::MemoryKms;
use bunbase_core::kms::master::MasterKey;
use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics};
use bunbase_core::kv::adapters::memory::MemoryKv;
use bunbase_core::kv::{Engine, EngineConfig, KvLimits};
use bunbase_core::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
use bunbase_core::storage::{Storage, StorageLimits, StorageMetrics, StorageSecret};
use bunbase_shells::functions::FunctionsArgs;
use bunbase_tests::harness::{
    self, ALPHA, ALPHA_ALICE, ALPHA_PUBLISHABLE, ALPHA_READER, BETA, Options, RunningServer,
};
use futures_util::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{SseReader, WAIT, http, publish};

/// Event and document consumers start within the trigger runner's refresh
/// (5 s) of a deploy.
const TRIGGER_WAIT: Duration = Duration::from_secs(20);

fn kms() -> Kms {
    Kms::new(
        Arc::new(MemoryKms::new()),
        Arc::new(MasterKey::parse(&"42".repeat(32)).unwrap()),
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    )
}

/// A server with every service a function can reach, on memory stores.
struct Server {
    running: RunningServer,
    url: String,
}

async fn start() -> Server {
    start_with(|_| {}).await
}

async fn start_with(configure: impl FnOnce(&mut FunctionsArgs)) -> Server {
    let mut functions = FunctionsArgs::defaults();
    functions.functions_database_url = Some("memory".into());
    functions.functions_bundles_url = Some("memory".into());
    configure(&mut functions);
    let kv = MemoryKv::new(Arc::new(Engine::new(EngineConfig::default())));
    let storage = Storage::new(
        Arc::new(MemoryMeta::new()),
        Arc::new(MemoryBlobs::new()),
        StorageLimits::default(),
        StorageMetrics::unregistered(),
        StorageSecret::new(&[5; 32]),
    );
    let running = harness::start(Options {
        kv: Some((Arc::new(kv), KvLimits::default())),
        docs: Some((Arc::new(MemoryDocStore::new()), DocsLimits::default())),
        storage: Some(storage),
        kms: Some(kms()),
        functions: Some(functions),
        ..Options::default()
    })
    .await;
    let url = running.url();
    Server { running, url }
}

/// An HTTP answer, its body as JSON when it is JSON.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Answer {
    async fn of(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Asserts the status; answers the JSON body.
    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        &self.body
    }

    /// Asserts a refusal: its status and error code.
    #[track_caller]
    fn refused(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["error"]["code"], code, "{}", self.text);
    }
}

fn token_of(project: &str) -> &'static str {
    match project {
        "alpha" => ALPHA,
        "beta" => BETA,
        other => panic!("no token for project {other}"),
    }
}

/// A deployment of one `index.ts`, with more fields from `extra`.
fn deployment(code: &str, extra: Value) -> Value {
    let mut body = json!({ "files": [{ "path": "index.ts", "code": code }] });
    if let Value::Object(more) = extra {
        body.as_object_mut().unwrap().extend(more);
    }
    body
}

fn with_token(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

impl Server {
    /// `/api/v1/projects/{project}/functions{rest}`.
    fn manage(&self, project: &str, rest: &str) -> String {
        format!("{}/api/v1/projects/{project}/functions{rest}", self.url)
    }

    fn trigger(&self, project: &str, rest: &str) -> String {
        format!("{}/functions/v1/projects/{project}/fn/{rest}", self.url)
    }

    async fn get(&self, token: Option<&str>, url: &str) -> Answer {
        Answer::of(with_token(http().get(url), token)).await
    }

    async fn send(
        &self,
        method: &str,
        token: Option<&str>,
        url: &str,
        body: Option<Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = with_token(http().request(method, url), token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::of(request).await
    }

    async fn deploy(&self, token: &str, project: &str, name: &str, body: Value) -> Answer {
        let url = self.manage(project, &format!("/{name}/versions"));
        self.send("POST", Some(token), &url, Some(body)).await
    }

    /// Deploys with the project's token; answers the version.
    async fn deployed(&self, project: &str, name: &str, body: Value) -> Value {
        self.deploy(token_of(project), project, name, body)
            .await
            .ok(201)
            .clone()
    }

    async fn invoke(&self, token: Option<&str>, project: &str, name: &str) -> Answer {
        self.get(token, &self.trigger(project, name)).await
    }

    /// Invokes alpha's `healthy` (deployed by [`Server::deploy_healthy`]).
    async fn healthy(&self) {
        let answer = self.invoke(Some(ALPHA), "alpha", "healthy").await;
        assert_eq!(answer.status, 200, "healthy: {}", answer.text);
        assert_eq!(answer.text, "healthy");
    }

    async fn deploy_healthy(&self) {
        let code = "export default () => new Response('healthy');";
        self.deployed("alpha", "healthy", deployment(code, json!({})))
            .await;
    }

    async fn state(&self, project: &str, name: &str) -> Value {
        let token = Some(token_of(project));
        json!({
            "list": self.get(token, &self.manage(project, "")).await.body,
            "versions": self.get(token, &self.manage(project, &format!("/{name}/versions"))).await.body,
        })
    }

    async fn logs(&self, query: &str) -> Answer {
        self.get(
            Some(ALPHA),
            &self.manage("alpha", &format!("/logs?{query}")),
        )
        .await
    }

    /// Alpha's invocation records of `function` once there are at least
    /// `count` (they are written just after the answer).
    async fn records(&self, function: &str, count: usize) -> Vec<Value> {
        eventually(
            &format!("{count} records of {function}"),
            WAIT,
            async || {
                let page = self.logs(&format!("function={function}")).await;
                let records = page.ok(200)["invocations"].as_array().unwrap().clone();
                (records.len() >= count).then_some(records)
            },
        )
        .await
    }

    /// Alpha's invocation record `id`.
    async fn record(&self, function: &str, id: &str) -> Value {
        eventually(&format!("record {id}"), WAIT, async || {
            let page = self.logs(&format!("function={function}&limit=1000")).await;
            page.ok(200)["invocations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .cloned()
        })
        .await
    }

    /// A KV value through the REST API (`None`: absent).
    async fn kv(&self, project: &str, key: &str) -> Option<String> {
        let url = format!("{}/kv/v1/projects/{project}/keys/{key}", self.url);
        let answer = self.get(Some(token_of(project)), &url).await;
        match answer.status {
            200 => Some(answer.text),
            404 => None,
            other => panic!("kv get {key}: {other} {}", answer.text),
        }
    }

    /// The metrics text.
    async fn metrics(&self) -> String {
        self.get(None, &format!("{}/metrics", self.url)).await.text
    }
}

/// Polls `probe` until it answers, for at most `within`.
async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The outcome of the single record of `function` (which failed over HTTP
/// with 502 `function_failed`).
async fn failed_with(server: &Server, function: &str, answer: &Answer, outcome: &str) -> Value {
    answer.refused(502, "function_failed");
    let records = server.records(function, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = records[0].clone();
    assert_eq!(record["outcome"], outcome, "{record}");
    assert_eq!(record["status"], Value::Null, "{record}");
    assert!(
        answer.message().contains(record["id"].as_str().unwrap()),
        "the answer names the record: {}",
        answer.text
    );
    record
}

/// An SSE response read frame by frame, with a deadline per wait.
struct Sse {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
}

impl Sse {
    async fn open(url: &str, token: &str) -> Sse {
        let response = http()
            .get(url)
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Sse {
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next frame named `event` (others skipped), or `None` after `wait`.
    async fn next_named(&mut self, event: &str, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(frame) = self.ready.pop_front() {
                if frame.event == event {
                    return Some(frame);
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.ready.extend(self.parser.feed(&chunk)),
                Ok(Some(Err(e))) => panic!("stream error: {e}"),
                Ok(None) => panic!("the stream ended"),
                Err(_) => return None,
            }
        }
    }
}

// ---- 1. deploy, versions, rollback, delete ----

const UTIL_TS: &str = r#"export interface Point { x: number; y: number }
export type Label = `v${number}`;
export enum Color { Red = "red", Green = "green" }
export enum Level { Low, High }
export function twice(n: number): number {
  return n * 2;
}
"#;

fn index_ts(version: u32) -> String {
    format!(
        r#"import {{ twice, Color, Level, type Point, type Label }} from "./util.js";

interface Reply {{
  label: Label;
  doubled: number;
  color: Color;
  level: Level;
  point: Point;
  path: string;
  method: string;
}}

export default async (request: Request): Promise<Response> => {{
  const url = new URL(request.url);
  const reply: Reply = {{
    label: `v{version}` as Label,
    doubled: twice(21),
    color: Color.Green,
    level: Level.High,
    point: {{ x: 1, y: 2 }} satisfies Point,
    path: url.pathname + url.search,
    method: request.method,
  }};
  return Response.json(reply);
}};
"#
    )
}

fn two_files(version: u32) -> Value {
    json!({
        "files": [
            { "path": "index.ts", "code": index_ts(version) },
            { "path": "util.ts", "code": UTIL_TS },
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_lists_versions_rolls_back_and_deletes() {
    let s = start().await;
    let name = "shop";

    let v1 = s.deployed("alpha", name, two_files(1)).await;
    assert_eq!(v1["number"], 1, "{v1}");
    assert_eq!(v1["function"], name);
    assert_eq!(v1["entry"], "index.ts");
    assert_eq!(v1["auth"], "project");
    assert_eq!(v1["deployed_by"].as_str().map(str::is_empty), Some(false));

    let called = s.invoke(Some(ALPHA), "alpha", name).await;
    assert_eq!(
        called.ok(200),
        &json!({
            "label": "v1", "doubled": 42, "color": "green", "level": 1,
            "point": {"x": 1, "y": 2},
            "path": format!("/functions/v1/projects/alpha/fn/{name}"), "method": "GET",
        })
    );
    assert_eq!(
        called
            .header("content-type")
            .map(|c| c.starts_with("application/json")),
        Some(true)
    );
    assert!(called.header("x-bunbase-invocation").is_some());
    // Any method, with a path and query after the name.
    let deeper = s
        .send(
            "DELETE",
            Some(ALPHA),
            &s.trigger("alpha", &format!("{name}/orders/7?full=1")),
            None,
        )
        .await;
    assert_eq!(
        deeper.ok(200)["path"],
        format!("/functions/v1/projects/alpha/fn/{name}/orders/7?full=1")
    );
    assert_eq!(deeper.body["method"], "DELETE");

    let listed = s.get(Some(ALPHA), &s.manage("alpha", "")).await;
    let functions = listed.ok(200)["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 1, "{}", listed.text);
    assert_eq!(functions[0]["name"], name);
    assert_eq!(functions[0]["active"], 1);
    assert_eq!(functions[0]["latest"], 1);
    let got = s.get(Some(ALPHA), &s.manage("alpha", "/shop")).await;
    assert_eq!(got.ok(200)["active"], 1);
    assert_eq!(got.body["version"]["number"], 1);
    assert_eq!(got.body["version"]["bundle_sha256"], v1["bundle_sha256"]);

    let v2 = s.deployed("alpha", name, two_files(2)).await;
    assert_eq!(v2["number"], 2);
    let called = s.invoke(Some(ALPHA), "alpha", name).await;
    assert_eq!(called.ok(200)["label"], "v2");
    let versions = s
        .get(Some(ALPHA), &s.manage("alpha", "/shop/versions"))
        .await;
    let numbers: Vec<u64> = versions.ok(200)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1], "newest first");

    // The sources as deployed, of the serving version or the one asked.
    let source = s.get(Some(ALPHA), &s.manage("alpha", "/shop/source")).await;
    assert_eq!(source.ok(200)["version"], 2);
    assert_eq!(source.body["entry"], "index.ts");
    assert_eq!(source.body["files"], two_files(2)["files"]);
    let source = s
        .get(Some(ALPHA), &s.manage("alpha", "/shop/source?version=1"))
        .await;
    assert_eq!(source.ok(200)["files"], two_files(1)["files"]);
    s.get(Some(ALPHA), &s.manage("alpha", "/shop/source?version=9"))
        .await
        .refused(404, "not_found");

    // Roll back to 1: it serves again; nothing is lost.
    let rolled = s
        .send(
            "POST",
            Some(ALPHA),
            &s.manage("alpha", "/shop/rollback"),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(rolled.ok(200)["active"], 1);
    assert_eq!(rolled.body["latest"], 2);
    assert_eq!(
        s.invoke(Some(ALPHA), "alpha", name).await.ok(200)["label"],
        "v1"
    );
    let before = s.state("alpha", name).await;
    s.send(
        "POST",
        Some(ALPHA),
        &s.manage("alpha", "/shop/rollback"),
        Some(json!({"version": 9})),
    )
    .await
    .refused(404, "not_found");
    s.send(
        "POST",
        Some(ALPHA),
        &s.manage("alpha", "/shop/rollback"),
        Some(json!({"version": 2, "force": true})),
    )
    .await
    .refused(400, "invalid_input");
    assert_eq!(
        s.state("alpha", name).await,
        before,
        "refusals change nothing"
    );
    assert_eq!(
        s.invoke(Some(ALPHA), "alpha", name).await.ok(200)["label"],
        "v1"
    );

    // The CLI's body: the name inside.
    let named = s
        .send(
            "POST",
            Some(ALPHA),
            &s.manage("alpha", ""),
            Some(json!({
                "name": "named",
                "files": [{"path": "index.js", "code": "export default () => new Response('named');"}],
            })),
        )
        .await;
    assert_eq!(named.ok(201)["number"], 1);
    assert_eq!(named.body["entry"], "index.js");
    assert_eq!(s.invoke(Some(ALPHA), "alpha", "named").await.text, "named");
    let before = s.state("alpha", "named").await;
    for body in [
        json!({"name": "named", "files": [], "bogus": true}),
        json!({"files": [{"path": "index.js", "code": "export default 1;"}]}),
        json!({"name": "named", "files": [{"path": "index.js", "code": "export default 1;", "mode": 1}]}),
    ] {
        s.send(
            "POST",
            Some(ALPHA),
            &s.manage("alpha", ""),
            Some(body.clone()),
        )
        .await
        .refused(400, "invalid_input");
    }
    let mut unknown = two_files(3);
    unknown["colour"] = json!("red");
    s.deploy(ALPHA, "alpha", name, unknown)
        .await
        .refused(400, "invalid_input");
    assert_eq!(s.state("alpha", "named").await, before);

    // Delete: gone from everything.
    let deleted = s
        .send("DELETE", Some(ALPHA), &s.manage("alpha", "/shop"), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    s.get(Some(ALPHA), &s.manage("alpha", "/shop"))
        .await
        .refused(404, "not_found");
    s.get(Some(ALPHA), &s.manage("alpha", "/shop/versions"))
        .await
        .refused(404, "not_found");
    s.invoke(Some(ALPHA), "alpha", name)
        .await
        .refused(404, "not_found");
    s.send("DELETE", Some(ALPHA), &s.manage("alpha", "/shop"), None)
        .await
        .refused(404, "not_found");
    let listed = s.get(Some(ALPHA), &s.manage("alpha", "")).await;
    let names: Vec<&str> = listed.ok(200)["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["named"]);
    // A new deployment of the name starts over at version 1.
    let again = s.deployed("alpha", name, two_files(5)).await;
    assert_eq!(again["number"], 1);
    assert_eq!(
        s.invoke(Some(ALPHA), "alpha", name).await.ok(200)["label"],
        "v5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_responses_pass_through() {
    let s = start().await;
    let code = r#"export default async (request, ctx) => {
  const body = await request.json();
  return new Response(JSON.stringify({
    method: request.method,
    type: request.headers.get("content-type"),
    custom: request.headers.get("x-custom"),
    body,
    trigger: ctx.trigger,
    version: ctx.version,
    invocation: ctx.invocation,
  }), { status: body.status, headers: { "x-reply": "yes", "content-type": "application/json", "connection": "close-me" } });
};"#;
    s.deployed("alpha", "echo", deployment(code, json!({})))
        .await;
    for status in [201, 404, 500] {
        let answer = Answer::of(
            http()
                .put(s.trigger("alpha", "echo"))
                .bearer_auth(ALPHA)
                .header("x-custom", "hi")
                .json(&json!({"status": status, "n": [1, 2]})),
        )
        .await;
        // The function's status, whatever it is, with its headers.
        let body = answer.ok(status);
        assert_eq!(answer.header("x-reply"), Some("yes"));
        assert_ne!(answer.header("connection"), Some("close-me"));
        assert_eq!(body["method"], "PUT");
        assert_eq!(body["type"], "application/json");
        assert_eq!(body["custom"], "hi");
        assert_eq!(body["body"], json!({"status": status, "n": [1, 2]}));
        assert_eq!(body["trigger"], json!({"type": "http"}));
        assert_eq!(body["version"], 1);
        let id = answer.header("x-bunbase-invocation").unwrap();
        assert_eq!(body["invocation"], id);
        // A 5xx of its own is still an answer: outcome ok.
        let record = s.record("echo", id).await;
        assert_eq!(record["outcome"], "ok");
        assert_eq!(record["status"], status);
    }
    // A status outside 200-599 is the function's failure (a RangeError).
    let odd = deployment(
        "export default () => new Response('x', { status: 99 });",
        json!({}),
    );
    s.deployed("alpha", "odd-status", odd).await;
    let answer = s.invoke(Some(ALPHA), "alpha", "odd-status").await;
    let record = failed_with(&s, "odd-status", &answer, "error").await;
    assert!(
        record["error"].as_str().unwrap().contains("RangeError"),
        "{record}"
    );
}

/// OPTIONS (a browser's CORS preflight) reaches the function like any
/// other method, so it can answer the preflight itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_requests_reach_the_function() {
    let s = start().await;
    let code = r#"export default (request) => request.method === "OPTIONS"
  ? new Response(null, { status: 204, headers: { "access-control-allow-origin": "https://app.example", "access-control-allow-headers": "authorization" } })
  : new Response("ok");"#;
    s.deployed("alpha", "cors", deployment(code, json!({"auth": "public"})))
        .await;
    let answer = s
        .send("OPTIONS", None, &s.trigger("alpha", "cors"), None)
        .await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

// ---- 2. bad input ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deployments_are_refused_clearly_and_change_nothing() {
    let s = start().await;
    s.deploy_healthy().await;
    let target = "target";
    s.deployed(
        "alpha",
        target,
        deployment("export default () => new Response('v1');", json!({})),
    )
    .await;
    let before = s.state("alpha", target).await;

    let good = "export default () => new Response('ok');";
    // (case, function name, body, status, code, a fragment of the message)
    let cases: Vec<(&str, &str, Value, u16, &str, &str)> = vec![
        (
            "syntax error",
            target,
            deployment(
                "const a = 1;\nlet b: number = (;\nexport default () => new Response('x');\n",
                json!({}),
            ),
            400,
            "invalid_input",
            "index.ts:2:18",
        ),
        (
            "no default export",
            target,
            deployment("export const handler = () => new Response('x');", json!({})),
            400,
            "invalid_input",
            "default export",
        ),
        (
            "bare import",
            target,
            deployment(
                "import _ from 'lodash';\nexport default () => new Response(_.a);",
                json!({}),
            ),
            400,
            "invalid_input",
            "lodash",
        ),
        (
            "import of a missing file",
            target,
            deployment(
                "import { x } from './nope.js';\nexport default () => new Response(x);",
                json!({}),
            ),
            400,
            "invalid_input",
            "nope",
        ),
        (
            "no files",
            target,
            json!({"files": []}),
            400,
            "invalid_input",
            "",
        ),
        (
            "bad cron",
            target,
            deployment(
                good,
                json!({"triggers": [{"type": "schedule", "cron": "61 * * * *"}]}),
            ),
            400,
            "invalid_input",
            "",
        ),
        (
            "unknown trigger type",
            target,
            deployment(good, json!({"triggers": [{"type": "webhook", "url": "x"}]})),
            400,
            "invalid_input",
            "",
        ),
        (
            "bad topic pattern",
            target,
            deployment(
                good,
                json!({"triggers": [{"type": "event", "topic": "a..b"}]}),
            ),
            400,
            "invalid_input",
            "",
        ),
        (
            "bad name",
            "Bad_Name",
            deployment(good, json!({})),
            400,
            "invalid_input",
            "function name",
        ),
        (
            "memory over the maximum",
            target,
            deployment(good, json!({"limits": {"memory_mb": 100000}})),
            400,
            "invalid_input",
            "memory_mb",
        ),
        (
            "zero cpu",
            target,
            deployment(good, json!({"limits": {"cpu_ms": 0}})),
            400,
            "invalid_input",
            "cpu_ms",
        ),
        (
            "unknown limit",
            target,
            deployment(good, json!({"limits": {"disk_mb": 1}})),
            400,
            "invalid_input",
            "",
        ),
        (
            "bad auth mode",
            target,
            deployment(good, json!({"auth": "anyone"})),
            400,
            "invalid_input",
            "",
        ),
        (
            "allow_hosts with a scheme",
            target,
            deployment(good, json!({"allow_hosts": ["https://api.example.com"]})),
            400,
            "invalid_input",
            "allow_hosts",
        ),
        (
            "bad variable name",
            target,
            deployment(good, json!({"env": {"1BAD": "x"}})),
            400,
            "invalid_input",
            "1BAD",
        ),
    ];
    for (case, name, body, status, code, fragment) in cases {
        let answer = s.deploy(ALPHA, "alpha", name, body).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        assert_eq!(
            answer.body["error"]["code"], code,
            "{case}: {}",
            answer.text
        );
        assert!(
            answer.message().contains(fragment),
            "{case}: {fragment:?} not in {}",
            answer.text
        );
        assert_eq!(
            s.state("alpha", target).await,
            before,
            "{case} changed something"
        );
        s.healthy().await;
    }
    // The bad name through the CLI's body, too.
    s.send(
        "POST",
        Some(ALPHA),
        &s.manage("alpha", ""),
        Some(json!({"name": "no spaces", "files": [{"path": "index.ts", "code": good}]})),
    )
    .await
    .refused(400, "invalid_input");
    assert_eq!(
        s.invoke(Some(ALPHA), "alpha", target).await.text,
        "v1",
        "the serving version is still the first"
    );

    // Other projects' credentials and readers.
    let manage = |rest: &str| s.manage("alpha", rest);
    let refusals = [
        (
            BETA,
            "POST",
            manage("/target/versions"),
            Some(deployment(good, json!({}))),
        ),
        (BETA, "GET", manage(""), None),
        (BETA, "GET", manage("/target"), None),
        (BETA, "GET", manage("/target/versions"), None),
        (BETA, "GET", manage("/target/source"), None),
        (
            BETA,
            "POST",
            manage("/target/rollback"),
            Some(json!({"version": 1})),
        ),
        (BETA, "DELETE", manage("/target"), None),
        (BETA, "GET", manage("/logs"), None),
        (
            ALPHA_READER,
            "POST",
            manage("/target/versions"),
            Some(deployment(good, json!({}))),
        ),
        (
            ALPHA_READER,
            "POST",
            manage(""),
            Some(json!({"name": "r", "files": []})),
        ),
        (ALPHA_READER, "DELETE", manage("/target"), None),
        (
            ALPHA_ALICE,
            "POST",
            manage("/target/versions"),
            Some(deployment(good, json!({}))),
        ),
    ];
    for (token, method, url, body) in refusals {
        let answer = s.send(method, Some(token), &url, body).await;
        assert_eq!(answer.status, 403, "{method} {url}: {}", answer.text);
        assert_eq!(
            answer.body["error"]["code"], "permission_denied",
            "{}",
            answer.text
        );
    }
    s.send(
        "POST",
        None,
        &manage("/target/versions"),
        Some(deployment(good, json!({}))),
    )
    .await
    .refused(401, "unauthenticated");
    let betas = s.get(Some(BETA), &s.manage("beta", "")).await;
    assert_eq!(
        betas.ok(200)["functions"],
        json!([]),
        "alpha's are not beta's"
    );
    s.get(Some(BETA), &s.manage("beta", "/target"))
        .await
        .refused(404, "not_found");
    assert_eq!(s.state("alpha", target).await, before);
    s.healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_limits_on_bundles_and_function_count() {
    let s = start_with(|f| {
        f.functions_max_bundle = 64 * 1024;
        f.functions_max_per_project = 3;
    })
    .await;
    s.deploy_healthy().await;
    let before = s.state("alpha", "healthy").await;
    let padding = format!("// {}\n", "x".repeat(100 * 1024));
    let code = format!("{padding}export default () => new Response('big');");
    let answer = s
        .deploy(ALPHA, "alpha", "big", deployment(&code, json!({})))
        .await;
    answer.refused(413, "payload_too_large");
    // Files that are each small but together too large.
    let pad = format!("// {}\n", "y".repeat(40 * 1024));
    let body = json!({"files": [
        {"path": "index.ts", "code": format!("{pad}import {{ a }} from './a.js';\nexport default () => new Response(String(a));")},
        {"path": "a.ts", "code": format!("{pad}export const a = 1;\n")},
    ]});
    s.deploy(ALPHA, "alpha", "big", body.clone())
        .await
        .refused(413, "payload_too_large");
    s.get(Some(ALPHA), &s.manage("alpha", "/big"))
        .await
        .refused(404, "not_found");
    assert_eq!(s.state("alpha", "healthy").await, before);
    s.healthy().await;

    // Functions per project: the fourth is refused, a new version of an
    // existing one is not, and a deletion makes room. Other projects count
    // on their own.
    let small = deployment("export default () => new Response('s');", json!({}));
    for name in ["second", "third"] {
        s.deployed("alpha", name, small.clone()).await;
    }
    let before = s.state("alpha", "third").await;
    s.deploy(ALPHA, "alpha", "fourth", small.clone())
        .await
        .refused(507, "quota_exceeded");
    assert_eq!(s.state("alpha", "third").await, before);
    s.get(Some(ALPHA), &s.manage("alpha", "/fourth"))
        .await
        .refused(404, "not_found");
    assert_eq!(
        s.deployed("alpha", "third", small.clone()).await["number"],
        2
    );
    s.deployed("beta", "fourth", small.clone()).await;
    let deleted = s
        .send("DELETE", Some(ALPHA), &s.manage("alpha", "/second"), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    s.deployed("alpha", "fourth", small).await;
    s.healthy().await;
}

// ---- 3. what stops a running function ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_answer_502_and_are_logged_with_their_outcome() {
    let s = start().await;
    s.deploy_healthy().await;

    s.deployed(
        "alpha",
        "throws",
        deployment(
            "export default () => { throw new Error('boom-from-handler'); };",
            json!({}),
        ),
    )
    .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "throws").await;
    let record = failed_with(&s, "throws", &answer, "error").await;
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("boom-from-handler"),
        "{record}"
    );
    assert!(
        !answer.text.contains("boom-from-handler"),
        "the caller does not see the function's error: {}",
        answer.text
    );
    s.healthy().await;

    s.deployed(
        "alpha",
        "not-a-response",
        deployment("export default async () => ({ status: 200 });", json!({})),
    )
    .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "not-a-response").await;
    let record = failed_with(&s, "not-a-response", &answer, "error").await;
    assert!(
        record["error"].as_str().unwrap().contains("Response"),
        "{record}"
    );
    s.healthy().await;

    s.deployed(
        "alpha",
        "hangs",
        deployment(
            "export default async () => { await new Promise(() => {}); return new Response('never'); };",
            json!({"limits": {"wall_ms": 300}}),
        ),
    )
    .await;
    let clock = Instant::now();
    let answer = s.invoke(Some(ALPHA), "alpha", "hangs").await;
    let took = clock.elapsed();
    let record = failed_with(&s, "hangs", &answer, "timeout").await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        record["error"].as_str().unwrap().contains("300 ms"),
        "{record}"
    );
    s.healthy().await;

    s.deployed(
        "alpha",
        "spins",
        deployment(
            "export default () => { while (true) {} };",
            json!({"limits": {"cpu_ms": 100}}),
        ),
    )
    .await;
    let clock = Instant::now();
    let answer = s.invoke(Some(ALPHA), "alpha", "spins").await;
    let took = clock.elapsed();
    let record = failed_with(&s, "spins", &answer, "cpu_limit").await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        record["error"].as_str().unwrap().contains("100 ms"),
        "{record}"
    );
    s.healthy().await;
    // A stopped runtime is not reused: the next call starts cold and
    // stops the same way.
    let answer = s.invoke(Some(ALPHA), "alpha", "spins").await;
    answer.refused(502, "function_failed");
    let records = s.records("spins", 2).await;
    assert_eq!(records[0]["outcome"], "cpu_limit");
    assert_eq!(records[0]["cold"], true);

    s.deployed(
        "alpha",
        "hog",
        deployment(
            "export default () => { const keep = []; while (true) keep.push(new Array(100000).fill(keep.length)); };",
            json!({"limits": {"memory_mb": 16}}),
        ),
    )
    .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "hog").await;
    let record = failed_with(&s, "hog", &answer, "memory_limit").await;
    assert!(
        record["error"].as_str().unwrap().contains("16 MiB"),
        "{record}"
    );
    s.healthy().await;

    s.deployed(
        "alpha",
        "huge",
        deployment(
            "export default () => new Response('x'.repeat(100000));",
            json!({"limits": {"response_bytes": 1024}}),
        ),
    )
    .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "huge").await;
    failed_with(&s, "huge", &answer, "response_too_large").await;
    s.healthy().await;

    // Failures while the module loads (its top-level code) are recorded
    // the same way; each call tries again from cold.
    s.deployed(
        "alpha",
        "bad-module",
        deployment(
            "throw new Error('broken at load');\nexport default () => new Response('never');",
            json!({}),
        ),
    )
    .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "bad-module").await;
    let record = failed_with(&s, "bad-module", &answer, "error").await;
    assert!(
        record["error"].as_str().unwrap().contains("broken at load"),
        "{record}"
    );
    assert_eq!(record["cold"], true);
    s.deployed(
        "alpha",
        "spins-at-load",
        deployment(
            "while (true) {}\nexport default () => new Response('never');",
            json!({"limits": {"cpu_ms": 100}}),
        ),
    )
    .await;
    let clock = Instant::now();
    let answer = s.invoke(Some(ALPHA), "alpha", "spins-at-load").await;
    assert!(
        clock.elapsed() < Duration::from_secs(3),
        "{:?}",
        clock.elapsed()
    );
    failed_with(&s, "spins-at-load", &answer, "cpu_limit").await;
    s.healthy().await;

    // A request over the function's limit is refused before it runs.
    s.deployed(
        "alpha",
        "small-in",
        deployment(
            "export default async (request) => new Response(String((await request.text()).length));",
            json!({"limits": {"request_bytes": 100}}),
        ),
    )
    .await;
    let url = s.trigger("alpha", "small-in");
    let big = Answer::of(http().post(&url).bearer_auth(ALPHA).body(vec![b'a'; 1000])).await;
    big.refused(413, "payload_too_large");
    let fits = Answer::of(http().post(&url).bearer_auth(ALPHA).body(vec![b'a'; 100])).await;
    assert_eq!(fits.ok(200), &json!(100));
    let id = fits.header("x-bunbase-invocation").unwrap().to_string();
    s.record("small-in", &id).await;
    let records = s.records("small-in", 1).await;
    assert_eq!(
        records.len(),
        1,
        "the refused request never ran: {records:?}"
    );
    // Over the instance's maximum: refused before the function is looked up.
    let max = 32 * 1024 * 1024 + 1;
    let over = Answer::of(http().post(&url).bearer_auth(ALPHA).body(vec![b'a'; max])).await;
    over.refused(413, "payload_too_large");
    s.healthy().await;
}

// ---- 4. concurrency ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_at_its_concurrency_limit_answers_429() {
    let s = start().await;
    s.deployed(
        "alpha",
        "slow",
        deployment(
            "export default async () => { await new Promise(r => setTimeout(r, 500)); return new Response('done'); };",
            json!({"limits": {"concurrency": 1}}),
        ),
    )
    .await;
    let (a, b) = tokio::join!(
        s.invoke(Some(ALPHA), "alpha", "slow"),
        s.invoke(Some(ALPHA), "alpha", "slow")
    );
    let (done, refused) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.text, "done");
    refused.refused(429, "rate_limited");
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    // Once the first is done, the next goes through.
    assert_eq!(s.invoke(Some(ALPHA), "alpha", "slow").await.text, "done");
    // Another function of the project is not held back meanwhile.
    s.deploy_healthy().await;
    let (slow, ()) = tokio::join!(s.invoke(Some(ALPHA), "alpha", "slow"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.healthy().await
    });
    assert_eq!(slow.status, 200, "{}", slow.text);
}

// ---- 5. auth modes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_modes_decide_who_may_call() {
    let s = start().await;
    let code = "export default (request, ctx) => Response.json({ auth: ctx.auth, project: ctx.project, function: ctx.function });";
    for (name, auth) in [
        ("open", json!({"auth": "public"})),
        ("members", json!({})),
        ("users", json!({"auth": "end_users"})),
    ] {
        s.deployed("alpha", name, deployment(code, auth)).await;
    }
    let alice = json!({"kind": "end_user", "subject": "alice"});

    let open = s.invoke(None, "alpha", "open").await;
    assert_eq!(
        open.ok(200),
        &json!({"auth": null, "project": "alpha", "function": "open"})
    );
    let open = s.invoke(Some(ALPHA_ALICE), "alpha", "open").await;
    assert_eq!(open.ok(200)["auth"], alice);
    // Another project's credential is refused even by a public function
    // (it would otherwise show up in `ctx.auth` as a caller of alpha).
    s.invoke(Some(BETA), "alpha", "open")
        .await
        .refused(403, "permission_denied");

    s.invoke(None, "alpha", "members")
        .await
        .refused(401, "unauthenticated");
    s.invoke(Some("not-a-real-token-000000000000"), "alpha", "members")
        .await
        .refused(401, "unauthenticated");
    s.invoke(Some(BETA), "alpha", "members")
        .await
        .refused(403, "permission_denied");
    let key = s.invoke(Some(ALPHA_PUBLISHABLE), "alpha", "members").await;
    assert_eq!(
        key.ok(200)["auth"],
        json!({"kind": "publishable_key", "subject": "key_web"})
    );
    let user = s.invoke(Some(ALPHA_ALICE), "alpha", "members").await;
    assert_eq!(user.ok(200)["auth"], alice);
    let member = s.invoke(Some(ALPHA), "alpha", "members").await;
    assert!(
        member.ok(200)["auth"]["kind"].is_string(),
        "{}",
        member.text
    );
    assert_ne!(member.body["auth"]["kind"], "end_user");

    let user = s.invoke(Some(ALPHA_ALICE), "alpha", "users").await;
    assert_eq!(user.ok(200)["auth"], alice);
    s.invoke(Some(ALPHA), "alpha", "users")
        .await
        .refused(403, "permission_denied");
    s.invoke(Some(ALPHA_PUBLISHABLE), "alpha", "users")
        .await
        .refused(403, "permission_denied");
    s.invoke(None, "alpha", "users")
        .await
        .refused(401, "unauthenticated");

    // Whether a function exists is only told to those who may call.
    s.invoke(None, "alpha", "nothing")
        .await
        .refused(401, "unauthenticated");
    s.invoke(Some(BETA), "alpha", "nothing")
        .await
        .refused(403, "permission_denied");
    s.invoke(Some(ALPHA), "alpha", "nothing")
        .await
        .refused(404, "not_found");
    s.invoke(Some(ALPHA), "alpha", "Not_A_Name")
        .await
        .refused(400, "invalid_input");
}

// ---- 6. warm state and isolation ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_state_stays_within_one_version_of_one_project() {
    let s = start().await;
    let code = "let n = 0;\nexport default () => new Response(String(++n));";
    s.deployed("alpha", "counter", deployment(code, json!({})))
        .await;
    let mut ids = Vec::new();
    for expected in ["1", "2", "3"] {
        let answer = s.invoke(Some(ALPHA), "alpha", "counter").await;
        assert_eq!(answer.text, expected, "warm between calls");
        ids.push(answer.header("x-bunbase-invocation").unwrap().to_string());
    }
    assert_eq!(s.record("counter", &ids[0]).await["cold"], true);
    let second = s.record("counter", &ids[1]).await;
    assert_eq!(second["cold"], false);
    assert_eq!(second["outcome"], "ok");
    assert_eq!(second["status"], 200);
    assert_eq!(second["trigger"], "http");
    assert_eq!(second["version"], 1);

    // The same code in project beta counts on its own.
    s.deployed("beta", "counter", deployment(code, json!({})))
        .await;
    assert_eq!(s.invoke(Some(BETA), "beta", "counter").await.text, "1");
    assert_eq!(s.invoke(Some(BETA), "beta", "counter").await.text, "2");
    assert_eq!(s.invoke(Some(ALPHA), "alpha", "counter").await.text, "4");

    // A new version never sees the old one's state, nor does a rollback.
    s.deployed("alpha", "counter", deployment(code, json!({})))
        .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "counter").await;
    assert_eq!(answer.text, "1", "version 2 starts fresh");
    let id = answer.header("x-bunbase-invocation").unwrap().to_string();
    let record = s.record("counter", &id).await;
    assert_eq!(
        (record["version"].clone(), record["cold"].clone()),
        (json!(2), json!(true))
    );
    assert_eq!(s.invoke(Some(ALPHA), "alpha", "counter").await.text, "2");
    s.send(
        "POST",
        Some(ALPHA),
        &s.manage("alpha", "/counter/rollback"),
        Some(json!({"version": 1})),
    )
    .await
    .ok(200);
    assert_eq!(s.invoke(Some(ALPHA), "alpha", "counter").await.text, "1");
    assert_eq!(s.invoke(Some(BETA), "beta", "counter").await.text, "3");
    // Beta's log holds only beta's.
    let betas = s
        .get(Some(BETA), &s.manage("beta", "/logs?function=counter"))
        .await;
    let records = betas.ok(200)["invocations"].as_array().unwrap();
    assert!(
        records.iter().all(|r| r["project"] == "beta"),
        "{}",
        betas.text
    );
}

// ---- 7. bindings, env and secrets ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_binding_works_within_the_project() {
    let s = start().await;
    let code = r#"export default async (request, ctx) => {
  const kv = ctx.bunbase.kv;
  const before = await kv.get("greeting");
  await kv.set("greeting", "hello");
  const got = await kv.get("greeting");
  const n1 = await kv.incr("hits");
  const n2 = await kv.incr("hits", 5);
  await kv.set("temp", { a: 1 });
  const temp = await kv.get("temp");
  const deleted = await kv.delete("temp");
  const gone = await kv.get("temp");
  let bad;
  try { await kv.incr("greeting"); } catch (e) { bad = { name: e.name, code: e.code }; }
  return Response.json({ before, got, n1, n2, temp, deleted, gone, bad });
};"#;
    s.deployed("alpha", "kvfn", deployment(code, json!({})))
        .await;
    s.deployed("beta", "kvfn", deployment(code, json!({})))
        .await;
    let alpha = s.invoke(Some(ALPHA), "alpha", "kvfn").await;
    assert_eq!(
        alpha.ok(200),
        &json!({
            "before": null, "got": "hello", "n1": 1, "n2": 6, "temp": "{\"a\":1}",
            "deleted": true, "gone": null,
            "bad": {"name": "BunbaseError", "code": "conflict"},
        })
    );
    assert_eq!(s.kv("alpha", "greeting").await.as_deref(), Some("hello"));
    assert_eq!(s.kv("alpha", "hits").await.as_deref(), Some("6"));
    // Beta's function and beta's credential see none of alpha's keys.
    assert_eq!(s.kv("beta", "greeting").await, None);
    let beta = s.invoke(Some(BETA), "beta", "kvfn").await;
    assert_eq!(beta.ok(200)["before"], Value::Null);
    assert_eq!(beta.body["n1"], 1);
    // And alpha's function sees its own value from before.
    let again = s.invoke(Some(ALPHA), "alpha", "kvfn").await;
    assert_eq!(again.ok(200)["before"], "hello");
    assert_eq!(again.body["n1"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_binding_works_within_the_project() {
    let s = start().await;
    for project in ["alpha", "beta"] {
        s.send(
            "POST",
            Some(token_of(project)),
            &format!("{}/bundoc/v1/projects/{project}/collections", s.url),
            Some(json!({"name": "items"})),
        )
        .await
        .ok(201);
    }
    let code = r#"export default async (request, ctx) => {
  const docs = ctx.bunbase.docs;
  if (new URL(request.url).searchParams.has("count")) {
    const page = await docs.query("items", {});
    return Response.json({ count: page.documents.length });
  }
  const created = await docs.create("items", { name: "a", n: 1 });
  const fixed = await docs.create("items", { name: "b", n: 2 }, "fixed-id");
  const got = await docs.get("items", created._id);
  const updated = await docs.update("items", "fixed-id", { n: 3, extra: "yes" });
  const page = await docs.query("items", { filter: { name: "b" } });
  const missing = await docs.get("items", "nope");
  const removed = await docs.delete("items", created._id);
  const after = await docs.get("items", created._id);
  const removedAgain = await docs.delete("items", created._id);
  let noCollection;
  try { await docs.get("no-such", "x"); } catch (e) { noCollection = e.code; }
  return Response.json({ created, fixed, got, updated, page, missing, removed, after, removedAgain, noCollection });
};"#;
    s.deployed("alpha", "docsfn", deployment(code, json!({})))
        .await;
    s.deployed("beta", "docsfn", deployment(code, json!({})))
        .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "docsfn").await;
    let body = answer.ok(200);
    let id = body["created"]["_id"].as_str().unwrap();
    assert_eq!(body["created"]["name"], "a");
    assert_eq!(body["fixed"]["_id"], "fixed-id");
    assert_eq!(body["got"]["_id"], id);
    assert_eq!(body["got"]["n"], 1);
    assert_eq!(body["updated"]["n"], 3);
    assert_eq!(body["updated"]["extra"], "yes");
    assert_eq!(body["updated"]["name"], "b", "a merge patch");
    let found = body["page"]["documents"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!(found[0]["_id"], "fixed-id");
    assert_eq!(body["missing"], Value::Null);
    assert_eq!(body["removed"], true);
    assert_eq!(body["after"], Value::Null);
    assert_eq!(body["removedAgain"], false);
    assert_eq!(body["noCollection"], "not_found");
    // Through the REST API: what the function wrote.
    let doc = s
        .get(
            Some(ALPHA),
            &format!(
                "{}/bundoc/v1/projects/alpha/collections/items/documents/fixed-id",
                s.url
            ),
        )
        .await;
    assert_eq!(doc.ok(200)["n"], 3);
    // Beta's collection of the same name is untouched.
    let beta_count = s
        .send(
            "GET",
            Some(BETA),
            &s.trigger("beta", "docsfn?count=1"),
            None,
        )
        .await;
    assert_eq!(beta_count.ok(200)["count"], 0);
    s.get(
        Some(BETA),
        &format!(
            "{}/bundoc/v1/projects/beta/collections/items/documents/fixed-id",
            s.url
        ),
    )
    .await
    .refused(404, "not_found");
    let alpha_count = s
        .get(Some(ALPHA), &s.trigger("alpha", "docsfn?count=1"))
        .await;
    assert_eq!(alpha_count.ok(200)["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_binding_publishes_in_the_project() {
    let s = start().await;
    let code = r#"export default async (request, ctx) => {
  const sent = await ctx.bunbase.events.publish("fn.out", { hello: "world", from: ctx.function });
  return Response.json(sent);
};"#;
    s.deployed("alpha", "pub", deployment(code, json!({})))
        .await;
    let mut alpha = SseReader::open(&s.url, ALPHA, "alpha", "fn.out", None).await;
    let mut beta = SseReader::open(&s.url, BETA, "beta", "fn.out", None).await;
    let answer = s.invoke(Some(ALPHA), "alpha", "pub").await;
    assert_eq!(answer.ok(200)["topic"], "fn.out");
    let seq = answer.body["seq"].as_u64().unwrap();
    let (got_seq, data) = alpha.next_event().await;
    assert_eq!(got_seq, seq);
    assert_eq!(data, json!({"hello": "world", "from": "pub"}));
    // Beta's first event on the topic is beta's own marker, not alpha's.
    publish(&s.url, BETA, "beta", "fn.out", json!("marker")).await;
    let (_, data) = beta.next_event().await;
    assert_eq!(data, json!("marker"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_binding_puts_gets_and_signs() {
    let s = start().await;
    for project in ["alpha", "beta"] {
        s.send(
            "POST",
            Some(token_of(project)),
            &format!("{}/storage/v1/projects/{project}/buckets", s.url),
            Some(json!({"name": "files"})),
        )
        .await
        .ok(201);
    }
    let code = r#"export default async (request, ctx) => {
  const storage = ctx.bunbase.storage;
  const put = await storage.put("files", "notes/a.txt", "hello storage", { contentType: "text/plain" });
  const bytes = await storage.put("files", "bin", new Uint8Array([0, 1, 2, 255]));
  const got = await storage.get("files", "notes/a.txt");
  const bin = await storage.get("files", "bin");
  const missing = await storage.get("files", "nope");
  const signed = await storage.sign("files", "notes/a.txt", { expiresIn: 60 });
  let noBucket;
  try { await storage.get("no-bucket", "x"); } catch (e) { noBucket = e.code; }
  return Response.json({
    put, bytesSize: bytes.size, text: got.text(), type: got.contentType, size: got.size,
    bin: Array.from(bin.bytes()), missing, signed, noBucket,
  });
};"#;
    s.deployed("alpha", "files", deployment(code, json!({})))
        .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "files").await;
    let body = answer.ok(200);
    assert_eq!(body["text"], "hello storage");
    assert_eq!(body["type"], "text/plain");
    assert_eq!(body["size"], 13);
    assert_eq!(body["put"]["size"], 13);
    assert_eq!(body["bytesSize"], 4);
    assert_eq!(body["bin"], json!([0, 1, 2, 255]));
    assert_eq!(body["missing"], Value::Null);
    assert_eq!(body["noBucket"], "not_found");
    assert_eq!(body["signed"]["method"], "GET");
    // The signed URL works without a credential.
    let url = body["signed"]["url"].as_str().unwrap();
    assert!(url.starts_with("/storage/v1/projects/alpha/"), "{url}");
    let fetched = s.get(None, &format!("{}{url}", s.url)).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    assert_eq!(fetched.text, "hello storage");
    let object = "/storage/v1/projects/{p}/buckets/files/objects/notes/a.txt";
    let rest = s
        .get(
            Some(ALPHA),
            &format!("{}{}", s.url, object.replace("{p}", "alpha")),
        )
        .await;
    assert_eq!(rest.status, 200);
    assert_eq!(rest.text, "hello storage");
    s.get(
        Some(BETA),
        &format!("{}{}", s.url, object.replace("{p}", "beta")),
    )
    .await
    .refused(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_named_secrets_reach_ctx_env() {
    let s = start().await;
    s.deploy_healthy().await;
    for (name, value) in [("API_KEY", "sk-123"), ("OTHER_SECRET", "not-for-you")] {
        s.send(
            "PUT",
            Some(ALPHA),
            &format!("{}/kms/v1/projects/alpha/secrets/{name}", s.url),
            Some(json!({"value": value})),
        )
        .await
        .ok(200);
    }
    let code = r#"export default (request, ctx) => {
  let frozen = true;
  try { ctx.env.MODE = "changed"; frozen = ctx.env.MODE !== "changed"; } catch (e) { frozen = true; }
  return Response.json({ env: ctx.env, frozen });
};"#;
    s.deployed(
        "alpha",
        "envfn",
        deployment(
            code,
            json!({"env": {"MODE": "test", "EMPTY": ""}, "secrets": ["API_KEY"]}),
        ),
    )
    .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "envfn").await;
    assert_eq!(
        answer.ok(200),
        &json!({"env": {"MODE": "test", "EMPTY": "", "API_KEY": "sk-123"}, "frozen": true})
    );
    // Secrets' values never appear in the deployment's description.
    let got = s.get(Some(ALPHA), &s.manage("alpha", "/envfn")).await;
    assert!(!got.text.contains("sk-123"), "{}", got.text);
    assert_eq!(got.body["version"]["secrets"], json!(["API_KEY"]));

    // A secret that does not exist: the invocation fails clearly.
    s.deployed(
        "alpha",
        "lost-secret",
        deployment(code, json!({"secrets": ["NOT_THERE"]})),
    )
    .await;
    // A secret that does not exist: the invocation fails as the function's
    // fault (502), not as a missing function (404); it names the secret.
    let answer = s.invoke(Some(ALPHA), "alpha", "lost-secret").await;
    answer.refused(502, "function_failed");
    assert!(answer.message().contains("NOT_THERE"), "{}", answer.text);
    s.healthy().await;
    // A failure is not remembered: once the secret exists, it runs.
    s.send(
        "PUT",
        Some(ALPHA),
        &format!("{}/kms/v1/projects/alpha/secrets/NOT_THERE", s.url),
        Some(json!({"value": "here now"})),
    )
    .await
    .ok(200);
    let answer = s.invoke(Some(ALPHA), "alpha", "lost-secret").await;
    assert_eq!(answer.ok(200)["env"], json!({"NOT_THERE": "here now"}));
    // A variable and a secret of the same name is refused.
    s.deploy(
        ALPHA,
        "alpha",
        "envfn",
        deployment(
            code,
            json!({"env": {"API_KEY": "x"}, "secrets": ["API_KEY"]}),
        ),
    )
    .await
    .refused(400, "invalid_input");
}

// ---- 8. fetch ----

const FETCHER: &str = r#"export default async (request) => {
  const target = new URL(request.url).searchParams.get("target");
  try {
    const response = await fetch(target);
    return new Response(`ok ${response.status} ${await response.text()}`);
  } catch (e) {
    return new Response(`refused ${e.name}: ${e.message}`);
  }
};"#;

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

async fn fetch_through(s: &Server, name: &str, target: &str) -> String {
    let url = s.trigger("alpha", &format!("{name}?target={}", encode(target)));
    let answer = s.get(Some(ALPHA), &url).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_is_gated_by_allow_hosts_and_private_addresses() {
    let s = start().await;
    let health = format!("{}/health", s.url);
    s.deployed("alpha", "no-hosts", deployment(FETCHER, json!({})))
        .await;
    s.deployed(
        "alpha",
        "loopback",
        deployment(FETCHER, json!({"allow_hosts": ["127.0.0.1"]})),
    )
    .await;
    let refused = fetch_through(&s, "no-hosts", &health).await;
    assert!(refused.starts_with("refused TypeError"), "{refused}");
    assert!(refused.contains("allow_hosts"), "{refused}");
    let refused = fetch_through(&s, "loopback", &health).await;
    assert!(refused.starts_with("refused TypeError"), "{refused}");
    assert!(refused.contains("private"), "{refused}");
    // A name that resolves to loopback is refused too.
    s.deployed(
        "alpha",
        "by-name",
        deployment(FETCHER, json!({"allow_hosts": ["localhost"]})),
    )
    .await;
    let port = s.running.addr.port();
    let refused = fetch_through(&s, "by-name", &format!("http://localhost:{port}/health")).await;
    assert!(refused.contains("private"), "{refused}");
    let refused = fetch_through(&s, "loopback", "file:///etc/passwd").await;
    assert!(refused.starts_with("refused"), "{refused}");

    // Where the operator allows private addresses, the allow-list still decides.
    let open = start_with(|f| f.functions_allow_private_fetch = true).await;
    let health = format!("{}/health", open.url);
    open.deployed("alpha", "no-hosts", deployment(FETCHER, json!({})))
        .await;
    open.deployed(
        "alpha",
        "loopback",
        deployment(FETCHER, json!({"allow_hosts": ["127.0.0.1"]})),
    )
    .await;
    let refused = fetch_through(&open, "no-hosts", &health).await;
    assert!(refused.contains("allow_hosts"), "{refused}");
    let fetched = fetch_through(&open, "loopback", &health).await;
    assert!(fetched.starts_with("ok 200 "), "{fetched}");
    let direct = open.get(None, &health).await;
    assert_eq!(fetched, format!("ok 200 {}", direct.text));
}

// ---- 9. web globals ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_apis_are_there_and_server_runtimes_are_not() {
    let s = start().await;
    let code = r#"export default async () => {
  const u = new URL("https://example.com:8080/a/b?x=1&y=two#frag");
  const p = new URLSearchParams("a=1&b=2&a=3");
  p.append("c", "4 5");
  const bytes = new TextEncoder().encode("héllo");
  const text = new TextDecoder().decode(bytes);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc"));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const original = { a: [1, { b: 2 }], d: new Date(0), m: new Map([["k", 1]]) };
  const clone = structuredClone(original);
  const h = new Headers({ "Content-Type": "text/plain" });
  h.append("X-A", "1");
  h.append("x-a", "2");
  return Response.json({
    host: u.host, pathname: u.pathname, search: u.search, hash: u.hash, x: u.searchParams.get("x"),
    all_a: p.getAll("a"), params: p.toString(),
    bytes: bytes.length, text,
    hex, uuid: crypto.randomUUID(), another: crypto.randomUUID(),
    b64: btoa("hello"), back: atob("aGVsbG8="),
    same: JSON.stringify(clone) === JSON.stringify(original),
    deep: clone !== original && clone.a !== original.a && clone.a[1] !== original.a[1],
    date: clone.d instanceof Date && clone.d.getTime() === 0,
    map: clone.m instanceof Map && clone.m.get("k") === 1,
    type: h.get("content-type"), xa: h.get("x-a"), has: h.has("X-A"),
    process: typeof process, require: typeof require, deno: typeof Deno, bun: typeof Bun,
  });
};"#;
    s.deployed("alpha", "web", deployment(code, json!({})))
        .await;
    let answer = s.invoke(Some(ALPHA), "alpha", "web").await;
    let body = answer.ok(200).clone();
    let uuid = |v: &Value| {
        let text = v.as_str().unwrap();
        let groups: Vec<&str> = text.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        lengths == [8, 4, 4, 4, 12]
            && text
                .chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            && groups[2].starts_with('4')
            && groups[3].starts_with(['8', '9', 'a', 'b'])
    };
    assert!(uuid(&body["uuid"]), "{}", body["uuid"]);
    assert_ne!(body["uuid"], body["another"]);
    let mut rest = body.clone();
    for key in ["uuid", "another"] {
        rest.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(
        rest,
        json!({
            "host": "example.com:8080", "pathname": "/a/b", "search": "?x=1&y=two", "hash": "#frag", "x": "1",
            "all_a": ["1", "3"], "params": "a=1&b=2&a=3&c=4+5",
            "bytes": 6, "text": "héllo",
            "hex": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "b64": "aGVsbG8=", "back": "hello",
            "same": true, "deep": true, "date": true, "map": true,
            "type": "text/plain", "xa": "1, 2", "has": true,
            "process": "undefined", "require": "undefined", "deno": "undefined", "bun": "undefined",
        })
    );
}

// ---- 10. logs ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_page_newest_first_with_console_lines_and_stream_live() {
    let s = start().await;
    let chatty = r#"export default (request) => {
  const tag = new URL(request.url).searchParams.get("tag");
  console.log("line 1", tag);
  console.warn("line 2", { n: 2 });
  console.error("line 3");
  return new Response(tag);
};"#;
    s.deployed("alpha", "chatty", deployment(chatty, json!({})))
        .await;
    s.deployed(
        "alpha",
        "verbose",
        deployment(
            "export default () => { for (let i = 0; i < 150; i++) console.log('n', i); return new Response('ok'); };",
            json!({}),
        ),
    )
    .await;
    let mut ids = Vec::new();
    for tag in ["a", "b", "c"] {
        let answer = s
            .get(
                Some(ALPHA),
                &s.trigger("alpha", &format!("chatty?tag={tag}")),
            )
            .await;
        assert_eq!(answer.text, tag);
        ids.push(answer.header("x-bunbase-invocation").unwrap().to_string());
    }
    s.records("chatty", 3).await;

    let page = s.logs("function=chatty&limit=2").await;
    let records = page.ok(200)["invocations"].as_array().unwrap();
    let got: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()], "newest first");
    assert_eq!(page.body["next"], ids[1].as_str());
    let newest = &records[0];
    assert_eq!(
        newest["logs"],
        json!([
            {"level": "log", "message": "line 1 c"},
            {"level": "warn", "message": "line 2 { n: 2 }"},
            {"level": "error", "message": "line 3"},
        ])
    );
    assert_eq!(newest["logs_truncated"], false);
    assert_eq!(newest["function"], "chatty");
    assert_eq!(newest["project"], "alpha");
    let page = s
        .logs(&format!("function=chatty&limit=2&before={}", ids[1]))
        .await;
    let records = page.ok(200)["invocations"].as_array().unwrap();
    let got: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, [ids[0].as_str()]);
    assert_eq!(page.body["next"], Value::Null);

    s.invoke(Some(ALPHA), "alpha", "verbose").await.ok(200);
    let record = &s.records("verbose", 1).await[0];
    assert_eq!(record["logs"].as_array().unwrap().len(), 100);
    assert_eq!(record["logs"][99]["message"], "n 99");
    assert_eq!(record["logs_truncated"], true);

    // All functions of the project, newest first.
    let all = s.logs("limit=1000").await;
    let records = all.ok(200)["invocations"].as_array().unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(records[0]["function"], "verbose");
    s.logs("bogus=1").await.refused(400, "invalid_input");
    s.logs("function=Not_Valid")
        .await
        .refused(400, "invalid_input");

    // Live: each record as it is written, of the project (and function) asked.
    let stream = s.manage("alpha", "/logs/stream");
    let mut live = Sse::open(&stream, ALPHA).await;
    let mut only_verbose = Sse::open(&format!("{stream}?function=verbose"), ALPHA).await;
    s.get(Some(BETA), &stream)
        .await
        .refused(403, "permission_denied");
    s.deployed("beta", "chatty", deployment(chatty, json!({})))
        .await;
    s.get(Some(BETA), &s.trigger("beta", "chatty?tag=beta"))
        .await
        .ok(200);
    let answer = s
        .get(Some(ALPHA), &s.trigger("alpha", "chatty?tag=live"))
        .await;
    let id = answer.header("x-bunbase-invocation").unwrap();
    let frame = live
        .next_named("invocation", WAIT)
        .await
        .expect("an invocation frame");
    let record: Value = serde_json::from_str(&frame.data).unwrap();
    assert_eq!(
        record["id"], id,
        "beta's invocation is not in alpha's stream"
    );
    assert_eq!(record["logs"][0]["message"], "line 1 live");
    s.invoke(Some(ALPHA), "alpha", "verbose").await.ok(200);
    let frame = only_verbose
        .next_named("invocation", WAIT)
        .await
        .expect("an invocation frame");
    let record: Value = serde_json::from_str(&frame.data).unwrap();
    assert_eq!(record["function"], "verbose");
}

// ---- 11. triggers ----

async fn trigger_server() -> Server {
    start_with(|f| {
        f.functions_trigger_backoff_ms = 50;
        f.functions_trigger_attempts = 2;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_triggers_deliver_and_dead_letter() {
    let s = trigger_server().await;
    let handler = r#"export default async (request, ctx) => {
  const body = await request.json();
  await ctx.bunbase.kv.set("order-" + body.data.id, JSON.stringify({
    topic: body.topic, seq: body.seq, data: body.data,
    trigger: ctx.trigger.type, attempt: ctx.trigger.attempt, method: request.method,
  }));
  return new Response("ok");
};"#;
    s.deployed(
        "alpha",
        "on-order",
        deployment(
            handler,
            json!({"triggers": [{"type": "event", "topic": "orders.*"}]}),
        ),
    )
    .await;
    s.deployed(
        "alpha",
        "always-fails",
        deployment(
            "export default () => { throw new Error('payment handler broke'); };",
            json!({"triggers": [{"type": "event", "topic": "payments.failed"}]}),
        ),
    )
    .await;

    // The consumer starts within the runner's refresh: publish until the
    // handler has seen one.
    let mut published = Vec::new();
    let (id, seq, seen) = eventually("the event handler ran", TRIGGER_WAIT, async || {
        let id = published.len();
        let seq = publish(&s.url, ALPHA, "alpha", "orders.created", json!({"id": id})).await;
        published.push(seq);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (id, seq) in published.iter().enumerate() {
            if let Some(seen) = s.kv("alpha", &format!("order-{id}")).await {
                return Some((id, *seq, seen));
            }
        }
        None
    })
    .await;
    let seen: Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(
        seen,
        json!({
            "topic": "orders.created", "seq": seq, "data": {"id": id},
            "trigger": "event", "attempt": 1, "method": "POST",
        })
    );
    // From then on every event arrives, other topics' do not.
    let next = published.len();
    publish(&s.url, ALPHA, "alpha", "other.created", json!({"id": next})).await;
    let seq = publish(
        &s.url,
        ALPHA,
        "alpha",
        "orders.paid",
        json!({"id": next + 1}),
    )
    .await;
    let seen = eventually("the next event", WAIT, async || {
        s.kv("alpha", &format!("order-{}", next + 1)).await
    })
    .await;
    assert_eq!(serde_json::from_str::<Value>(&seen).unwrap()["seq"], seq);
    assert_eq!(s.kv("alpha", &format!("order-{next}")).await, None);
    let records = s.records("on-order", 1).await;
    assert!(
        records.iter().all(|r| r["trigger"] == "event"),
        "{records:?}"
    );

    // A new version takes over the trigger from the stored cursor: an
    // event published meanwhile is not lost, and version 2 handles events.
    let v2 = handler.replace(
        "method: request.method",
        "method: request.method, version: ctx.version",
    );
    s.deployed(
        "alpha",
        "on-order",
        deployment(
            &v2,
            json!({"triggers": [{"type": "event", "topic": "orders.*"}]}),
        ),
    )
    .await;
    let between = next + 2;
    publish(
        &s.url,
        ALPHA,
        "alpha",
        "orders.created",
        json!({"id": between}),
    )
    .await;
    let mut id = between;
    eventually("version 2 handles events", TRIGGER_WAIT, async || {
        id += 1;
        publish(&s.url, ALPHA, "alpha", "orders.created", json!({"id": id})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for id in between + 1..=id {
            if let Some(seen) = s.kv("alpha", &format!("order-{id}")).await {
                let seen: Value = serde_json::from_str(&seen).unwrap();
                if seen["version"] == 2 {
                    return Some(());
                }
            }
        }
        None
    })
    .await;
    assert!(
        s.kv("alpha", &format!("order-{between}")).await.is_some(),
        "the event published during the switch was delivered"
    );

    // A handler that always throws: two attempts, then a dead letter.
    let letters = "functions.always-fails.dead_letter";
    let mut dead = Sse::open(
        &format!(
            "{}/events/v1/projects/alpha/topics/{letters}/subscribe",
            s.url
        ),
        ALPHA,
    )
    .await;
    let mut sent = Vec::new();
    let frame = eventually("a dead letter", TRIGGER_WAIT, async || {
        let seq = publish(
            &s.url,
            ALPHA,
            "alpha",
            "payments.failed",
            json!({"n": sent.len()}),
        )
        .await;
        sent.push(seq);
        dead.next_named("message", Duration::from_millis(500)).await
    })
    .await;
    let event: Value = serde_json::from_str(&frame.data).unwrap();
    assert_eq!(event["topic"], letters);
    let letter = &event["data"];
    assert_eq!(letter["function"], "always-fails");
    assert_eq!(letter["version"], 1);
    assert_eq!(letter["attempts"], 2);
    assert_eq!(
        letter["trigger"],
        json!({"type": "event", "topic": "payments.failed"})
    );
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("payment handler broke"),
        "{letter}"
    );
    assert_eq!(letter["event"]["topic"], "payments.failed");
    let failed_seq = letter["event"]["seq"].as_u64().unwrap();
    assert!(sent.contains(&failed_seq), "{letter}");
    let n = sent.iter().position(|s| *s == failed_seq).unwrap();
    assert_eq!(letter["event"]["data"], json!({"n": n}));
    let records = s.records("always-fails", 2).await;
    assert!(
        records
            .iter()
            .all(|r| r["outcome"] == "error" && r["trigger"] == "event"),
        "{records:?}"
    );
    let metrics = s.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("fn_dead_letters_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_triggers_run_on_changes() {
    let s = trigger_server().await;
    let docs = format!("{}/bundoc/v1/projects/alpha/collections", s.url);
    s.send("POST", Some(ALPHA), &docs, Some(json!({"name": "notes"})))
        .await
        .ok(201);
    let handler = r#"export default async (request, ctx) => {
  const body = await request.json();
  await ctx.bunbase.kv.set("note-change", JSON.stringify({ body, trigger: ctx.trigger.type }));
  return new Response("ok");
};"#;
    s.deployed(
        "alpha",
        "on-note",
        deployment(
            handler,
            json!({"triggers": [{"type": "document", "collection": "notes"}]}),
        ),
    )
    .await;
    let notes = format!("{docs}/notes/documents");
    let mut created = Vec::new();
    let seen = eventually("the document handler ran", TRIGGER_WAIT, async || {
        let answer = s
            .send("POST", Some(ALPHA), &notes, Some(json!({"text": "hi"})))
            .await;
        created.push(answer.ok(201)["_id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.kv("alpha", "note-change").await
    })
    .await;
    let seen: Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["trigger"], "document");
    assert_eq!(seen["body"]["topic"], "bundoc.notes");
    let data = seen["body"]["data"].to_string();
    assert!(
        created.iter().any(|id| data.contains(id.as_str())),
        "the change names a created document: {seen}"
    );
    let records = s.records("on-note", 1).await;
    assert!(
        records.iter().all(|r| r["trigger"] == "document"),
        "{records:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_run_once_per_minute_across_holders() {
    use bunbase_core::functions::triggers::run_schedules_at;

    let s = trigger_server().await;
    let handler = r#"export default async (request, ctx) => {
  await ctx.bunbase.kv.incr("cron-runs");
  await ctx.bunbase.kv.set("cron-trigger", JSON.stringify({ trigger: ctx.trigger, body: await request.json() }));
  return new Response("ok");
};"#;
    s.deployed(
        "alpha",
        "every-minute",
        deployment(
            handler,
            json!({"triggers": [{"type": "schedule", "cron": "* * * * *"}]}),
        ),
    )
    .await;
    // Not in a minute's last seconds: the runner of this server fires the
    // next minute on its own.
    let now_secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    if now_secs() % 60 >= 55 {
        tokio::time::sleep(Duration::from_secs(60 - now_secs() % 60 + 1)).await;
    }
    let minute = now_secs() / 60 * 60;
    let functions = s.running.functions.as_ref().expect("functions run");
    let due = run_schedules_at(functions, minute, "test-holder")
        .await
        .unwrap();
    assert_eq!(due, 1);
    let runs = eventually("the scheduled run", WAIT, async || {
        s.kv("alpha", "cron-runs").await
    })
    .await;
    assert_eq!(runs, "1");
    let seen: Value = serde_json::from_str(&s.kv("alpha", "cron-trigger").await.unwrap()).unwrap();
    assert_eq!(seen["trigger"]["type"], "schedule");
    assert_eq!(seen["trigger"]["cron"], "* * * * *");
    assert_eq!(seen["trigger"]["scheduled_at"], minute * 1000);
    assert_eq!(seen["body"]["cron"], "* * * * *");
    // Another holder, the same minute: due, but it does not run again.
    let due = run_schedules_at(functions, minute, "other-holder")
        .await
        .unwrap();
    assert_eq!(due, 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.kv("alpha", "cron-runs").await.as_deref(), Some("1"));
    let records = s.records("every-minute", 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["trigger"], "schedule");
    assert_eq!(records[0]["outcome"], "ok");
}

// ---- 12. metrics ----

/// The value of the sample of `name` whose labels include all of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labelled, value) = match rest.strip_prefix('{') {
            Some(rest) => {
                let (inside, value) = rest.split_once("} ")?;
                (inside, value)
            }
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|l| labelled.split(',').any(|pair| pair == *l))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_invocations() {
    let s = start().await;
    s.deploy_healthy().await;
    s.deployed(
        "alpha",
        "fails",
        deployment("export default () => { throw new Error('x'); };", json!({})),
    )
    .await;
    for _ in 0..3 {
        s.healthy().await;
    }
    s.invoke(Some(ALPHA), "alpha", "fails")
        .await
        .refused(502, "function_failed");
    let text = s.metrics().await;
    let ok = ["project=\"alpha\"", "function=\"healthy\"", "status=\"ok\""];
    assert_eq!(
        sample(&text, "fn_invocations_total", &ok),
        Some(3.0),
        "{text}"
    );
    let error = [
        "project=\"alpha\"",
        "function=\"fails\"",
        "status=\"error\"",
    ];
    assert_eq!(
        sample(&text, "fn_invocations_total", &error),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "fn_cold_starts_total", &[]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "fn_duration_seconds_count", &["trigger=\"http\""]),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "fn_duration_seconds_bucket",
            &["trigger=\"http\"", "le=\"+Inf\""]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "fn_active_invocations", &[]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "fn_deploys_total", &["result=\"ok\""]),
        Some(2.0),
        "{text}"
    );
    s.deploy(ALPHA, "alpha", "fails", json!({"files": []}))
        .await
        .refused(400, "invalid_input");
    let text = s.metrics().await;
    assert_eq!(
        sample(&text, "fn_deploys_total", &["result=\"invalid_input\""]),
        Some(1.0),
        "{text}"
    );

    let Some(promtool) = bunbase_tests::servers::find_binary("promtool") else {
        eprintln!("promtool is not installed: the metrics text is not checked by it");
        return;
    };
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

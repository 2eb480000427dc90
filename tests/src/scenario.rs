//! API scenarios, in the style of PocketBase's: each row is a request (the
//! credential it carries, headers, body), the answer it must get (status,
//! error code, fragments the body must or must not hold), the events it
//! must publish (or that it publishes none), and whether everything must
//! be as it was afterwards. The runner drives the application router in
//! process (`tower::ServiceExt::oneshot`, no socket), so a table of a
//! hundred rows runs in milliseconds; a few end-to-end tests keep the
//! socket path honest.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request};
use bunbase_core::ProjectId;
use bunbase_core::events::{Delivery, Events, Payload, Subscription, Topic, TopicFilter};
use bunbase_core::id::random_hex;
use futures_util::StreamExt;
use serde_json::Value;
use tower::ServiceExt;

/// How long an expected event may take.
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// An answer from the router.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (a JSON string of the text when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::String(self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The application router, called in process. Requests carry a loopback
/// peer address, as if they came over a socket.
#[derive(Clone)]
pub struct InProcess {
    router: Router,
}

impl InProcess {
    pub fn new(router: Router) -> InProcess {
        InProcess { router }
    }

    /// Sends `method path` with an optional bearer token, headers and body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let method = Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("method {method}: {e}"));
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut request = request
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap_or_else(|e| panic!("request {path}: {e}"));
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap_or_else(|e| panic!("body of {path}: {e}"))
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `method path` as `token` with a JSON body.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| b.to_string().into_bytes());
        self.send(method, path, Some(token), &[], body).await
    }

    /// Like [`InProcess::call`], checking the status; the JSON answer.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let answer = self.call(method, path, token, body).await;
        assert_eq!(
            answer.status,
            status,
            "{method} {path} as {token}: {}",
            answer.text()
        );
        answer.json()
    }
}

/// One event a scenario must publish: its project, topic, and a fragment
/// of its data's JSON.
#[derive(Debug, Clone)]
pub struct ExpectedEvent {
    pub project: String,
    pub topic: String,
    pub fragment: String,
}

/// One request and what must come of it.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub method: String,
    pub path: String,
    /// `None`: the runner's default token; `Some(None)`: no credential.
    pub token: Option<Option<String>>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub status: u16,
    /// The error code an error answer must carry.
    pub code: Option<String>,
    pub says: Vec<String>,
    pub lacks: Vec<String>,
    /// `None`: not checked; `Some(list)`: exactly these, in order.
    pub events: Option<Vec<ExpectedEvent>>,
    /// The runner's state probe must read the same before and after.
    pub unchanged: bool,
}

/// A scenario for `method path`, expecting 200 with the default token.
pub fn scenario(name: impl Into<String>, method: &str, path: impl Into<String>) -> Scenario {
    Scenario {
        name: name.into(),
        method: method.to_string(),
        path: path.into(),
        token: None,
        headers: Vec::new(),
        body: None,
        status: 200,
        code: None,
        says: Vec::new(),
        lacks: Vec::new(),
        events: None,
        unchanged: false,
    }
}

impl Scenario {
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(Some(token.to_string()));
        self
    }
    pub fn no_token(mut self) -> Self {
        self.token = Some(None);
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    pub fn json(self, body: Value) -> Self {
        self.body(body.to_string())
    }
    /// The status it must answer.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    /// An error answer: its status and code; nothing published, nothing
    /// changed.
    pub fn fails(mut self, status: u16, code: &str) -> Self {
        self.status = status;
        self.code = Some(code.to_string());
        self.events.get_or_insert_with(Vec::new);
        self.unchanged = true;
        self
    }
    /// A fragment the body (or its error message) must contain.
    pub fn says(mut self, fragment: impl Into<String>) -> Self {
        self.says.push(fragment.into());
        self
    }
    /// A fragment the body must not contain.
    pub fn lacks(mut self, fragment: impl Into<String>) -> Self {
        self.lacks.push(fragment.into());
        self
    }
    /// An event it must publish (in the order given).
    pub fn publishes(mut self, project: &str, topic: &str, fragment: &str) -> Self {
        self.events
            .get_or_insert_with(Vec::new)
            .push(ExpectedEvent {
                project: project.to_string(),
                topic: topic.to_string(),
                fragment: fragment.to_string(),
            });
        self
    }
    /// It must publish nothing.
    pub fn publishes_nothing(mut self) -> Self {
        self.events = Some(Vec::new());
        self
    }
    /// Everything the state probe reads must be the same afterwards.
    pub fn changes_nothing(mut self) -> Self {
        self.unchanged = true;
        self
    }
    /// Everything may change (undoes `fails`' default).
    pub fn may_change(mut self) -> Self {
        self.unchanged = false;
        self
    }
}

type Probe = Arc<dyn Fn(InProcess) -> Pin<Box<dyn Future<Output = Value> + Send>> + Send + Sync>;

/// Runs scenarios in order against one application.
pub struct Runner {
    app: InProcess,
    default_token: Option<String>,
    events: Option<(Events, Vec<ProjectId>)>,
    probe: Option<Probe>,
}

impl Runner {
    pub fn new(router: Router) -> Runner {
        Runner::on(InProcess::new(router))
    }

    /// Runs on an app a test already calls.
    pub fn on(app: InProcess) -> Runner {
        Runner {
            app,
            default_token: None,
            events: None,
            probe: None,
        }
    }

    /// The token scenarios carry unless they say otherwise.
    pub fn token(mut self, token: &str) -> Runner {
        self.default_token = Some(token.to_string());
        self
    }

    /// Watches what is published in `projects` (for `publishes…`).
    pub fn events(mut self, events: Events, projects: &[&str]) -> Runner {
        let projects = projects
            .iter()
            .map(|p| ProjectId::new(*p).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        self.events = Some((events, projects));
        self
    }

    /// What "nothing changed" compares: `probe` reads it through the app.
    pub fn state<F, Fut>(mut self, probe: F) -> Runner
    where
        F: Fn(InProcess) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Value> + Send + 'static,
    {
        self.probe = Some(Arc::new(move |app| Box::pin(probe(app))));
        self
    }

    pub fn app(&self) -> &InProcess {
        &self.app
    }

    /// Runs every scenario; panics listing every one that failed.
    pub async fn run(&self, scenarios: Vec<Scenario>) {
        let mut failures = Vec::new();
        for s in &scenarios {
            failures.extend(
                self.run_one(s)
                    .await
                    .into_iter()
                    .map(|f| format!("{}: {f}", s.name)),
            );
        }
        assert!(
            failures.is_empty(),
            "{} of {} scenarios failed:\n{}",
            failures.len(),
            scenarios.len(),
            failures.join("\n")
        );
    }

    async fn run_one(&self, s: &Scenario) -> Vec<String> {
        let mut failures = Vec::new();
        let before = match (&self.probe, s.unchanged) {
            (Some(probe), true) => Some(probe(self.app.clone()).await),
            _ => None,
        };
        let mut watching = match (&self.events, &s.events) {
            (Some((events, projects)), Some(_)) => Some(watch(events, projects).await),
            _ => None,
        };
        let token = match &s.token {
            Some(token) => token.clone(),
            None => self.default_token.clone(),
        };
        let answer = self
            .app
            .send(
                &s.method,
                &s.path,
                token.as_deref(),
                &s.headers,
                s.body.clone(),
            )
            .await;
        let text = answer.text();
        if answer.status != s.status {
            failures.push(format!(
                "status {}, expected {}: {text}",
                answer.status, s.status
            ));
        }
        if answer.status >= 400 {
            let is_json = answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"));
            if !is_json {
                failures.push(format!("error without a JSON body: {text}"));
            }
        }
        if let Some(code) = &s.code {
            let got = answer.json()["error"]["code"].clone();
            if got != Value::String(code.clone()) {
                failures.push(format!("code {got}, expected {code:?}: {text}"));
            }
        }
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for fragment in &s.says {
            if !text.contains(fragment.as_str()) && !message.contains(fragment.as_str()) {
                failures.push(format!("body lacks {fragment:?}: {text}"));
            }
        }
        for fragment in &s.lacks {
            if text.contains(fragment.as_str()) {
                failures.push(format!("body holds {fragment:?}: {text}"));
            }
        }
        if let (Some(probe), Some(before)) = (&self.probe, before) {
            let after = probe(self.app.clone()).await;
            if after != before {
                failures.push(format!("state changed:\nbefore {before}\nafter  {after}"));
            }
        }
        if let (Some(watching), Some(expected)) = (watching.as_mut(), &s.events) {
            failures.extend(watching.check(expected).await);
        }
        failures
    }
}

/// Live subscriptions to every topic of some projects.
struct Watching {
    events: Events,
    subscriptions: Vec<(ProjectId, Subscription)>,
}

async fn watch(events: &Events, projects: &[ProjectId]) -> Watching {
    let all = TopicFilter::parse(">").unwrap_or_else(|e| panic!("{e}"));
    let mut subscriptions = Vec::new();
    for project in projects {
        let subscription = events
            .bus()
            .subscribe(project, &all, None)
            .await
            .unwrap_or_else(|e| panic!("watching {project}: {e}"));
        subscriptions.push((project.clone(), subscription));
    }
    Watching {
        events: events.clone(),
        subscriptions,
    }
}

/// The topic of the marker that ends a project's watch: every event
/// published before it has been delivered before it (one sequence per
/// project), so what came first is exactly what the request published.
const MARKER: &str = "scenario-runner.marker";

impl Watching {
    async fn check(&mut self, expected: &[ExpectedEvent]) -> Vec<String> {
        let mut failures = Vec::new();
        let marker_topic = Topic::new(MARKER).unwrap_or_else(|e| panic!("{e}"));
        for (project, subscription) in &mut self.subscriptions {
            let nonce = random_hex(8);
            self.events
                .publish_payload(
                    project,
                    &marker_topic,
                    Payload::from_value(&Value::String(nonce.clone())),
                )
                .await
                .unwrap_or_else(|e| panic!("marker: {e}"));
            let mut seen = Vec::new();
            loop {
                match tokio::time::timeout(EVENT_WAIT, subscription.next()).await {
                    Ok(Some(Delivery::Event(event))) => {
                        if event.topic.as_str() == MARKER {
                            if event.data.to_value() == Value::String(nonce.clone()) {
                                break;
                            }
                            continue; // an earlier scenario's marker
                        }
                        seen.push((
                            event.topic.as_str().to_string(),
                            event.data.to_value().to_string(),
                        ));
                    }
                    Ok(Some(other)) => {
                        failures.push(format!("{project}: unexpected delivery {other:?}"));
                        break;
                    }
                    Ok(None) | Err(_) => {
                        failures.push(format!("{project}: the marker event never came"));
                        break;
                    }
                }
            }
            let wanted: Vec<&ExpectedEvent> = expected
                .iter()
                .filter(|e| e.project == project.as_str())
                .collect();
            let matches = seen.len() == wanted.len()
                && seen.iter().zip(&wanted).all(|((topic, data), want)| {
                    *topic == want.topic && data.contains(&want.fragment)
                });
            if !matches {
                failures.push(format!(
                    "{project}: published {seen:?}, expected {:?}",
                    wanted
                        .iter()
                        .map(|e| (e.topic.as_str(), e.fragment.as_str()))
                        .collect::<Vec<_>>()
                ));
            }
        }
        failures
    }
}

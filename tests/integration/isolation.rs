//! The isolation matrix (issue 12): every route of every service, taken
//! from the routers themselves (`kit::Routes`: the list comes from the
//! function that builds each router, so a route added without a row here
//! fails this test, naming it), called with each of nine credentials:
//!
//! | credential | what it is |
//! | --- | --- |
//! | none | no credential at all |
//! | expired | the own project owner's access token, a real session, past its `exp` |
//! | revoked | a secret key of the own project, revoked |
//! | other-secret | the other project's secret key |
//! | other-user | an end user of the other project |
//! | stranger | the other project's owner: an account that is no member of the own project |
//! | publishable | the own project's publishable key |
//! | end-user | an end user of the own project |
//! | viewer | a member of the own project with the viewer role |
//!
//! The whole platform runs in process with the real identity service
//! (accounts, projects, members, keys, end users): no service tokens.
//! Each row names its route, the request, and for each credential the
//! status and error code it must get. After every call the state of both
//! projects is read again, with their owners' credentials, and must be
//! what it was — unless the row says that this credential may change the
//! own project (an end user writing its own document), in which case the
//! other project must still be untouched. No answer may carry the other
//! project's data to the own project's credentials, nor the own
//! project's private data to anyone but the viewer (a member who may read
//! it). Streams are rows too, with the credential in the header and again
//! in the `access_token` query parameter: SSE in process (a refused stream
//! answers the error; an accepted one answers 200, its first frames are
//! read, then it is dropped), WebSocket on a socket (a refused upgrade
//! answers the error; an accepted one 101, then its first frames).
//! Storage's public objects are the one exception by design: a request
//! without a credential may read them (they hold nothing private; another
//! project's credential is still refused); a signed URL needs no
//! credential, and only for the request it names. Functions are called
//! as their `auth` mode says: a `project` function by any credential of
//! its project, an `end_users` one by its end users, a `public` one by
//! anyone without a credential or with one of its project (another
//! project's is refused there too). The own project's KMS
//! audit log must name none of the other project's callers at the end,
//! and verify.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bunbase_core::ErrorCode;
use bunbase_core::auth::AuthStore;
use bunbase_core::auth::jwt::{Claims, KeyRing};
use bunbase_core::auth::ratelimit::Rate;
use bunbase_core::id::{now_millis, random_hex};
use bunbase_shells::kit::{Route, ServerConfig, Shutdown};
use bunbase_shells::{buncast, bundoc, bunkms, functions, kit, kvmanager, platform, storage};
use bunbase_tests::harness::{self, WholePlatform};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tower::ServiceExt;

/// A stream that sends nothing for this long has sent its first frames…
const IDLE: Duration = Duration::from_millis(100);
/// …unless a fragment it must send is still missing: then this long.
const PATIENCE: Duration = Duration::from_secs(5);

/// How long to wait for a stream's next frame.
fn patience(text: &str, awaited: &[&str]) -> Duration {
    if awaited.iter().all(|fragment| text.contains(fragment)) {
        IDLE
    } else {
        PATIENCE
    }
}
const PW: &str = "correct horse battery staple";
const OPEN: Rate = Rate {
    burst: 1_000_000,
    per_minute: 100_000_000,
};
/// In the own project's private data: only the viewer may ever see it.
const OWN_PRIVATE: &str = "own-private-5e1f";
/// In the other project's data: only its own credentials may see it.
const OTHER_PRIVATE: &str = "other-private-9a7c";
/// The own project's public storage object: anyone may read it.
const PUBLIC_TEXT: &str = "public-hello-3b8d";
/// The own project's private object a signed URL shares.
const SHARED_TEXT: &str = "shared-by-url-c41e";

// ---------------------------------------------------------------- credentials

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cred {
    None,
    Expired,
    Revoked,
    OtherSecret,
    OtherUser,
    Stranger,
    Publishable,
    EndUser,
    Viewer,
}

use Cred::*;

const CREDS: [Cred; 9] = [
    None,
    Expired,
    Revoked,
    OtherSecret,
    OtherUser,
    Stranger,
    Publishable,
    EndUser,
    Viewer,
];

impl Cred {
    fn index(self) -> usize {
        CREDS.iter().position(|c| *c == self).unwrap_or(0)
    }

    fn name(self) -> &'static str {
        match self {
            None => "none",
            Expired => "expired",
            Revoked => "revoked",
            OtherSecret => "other-secret",
            OtherUser => "other-user",
            Stranger => "stranger",
            Publishable => "publishable",
            EndUser => "end-user",
            Viewer => "viewer",
        }
    }

    /// The other project's credentials (they may see its data).
    fn of_other(self) -> bool {
        matches!(self, OtherSecret | OtherUser | Stranger)
    }
}

// ---------------------------------------------------------------- expectations

/// What a call must answer: a success status, or an error (its code's
/// status, and the code in the body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Success(u16),
    Error(ErrorCode),
}

impl Expect {
    fn status(self) -> u16 {
        match self {
            Expect::Success(status) => status,
            Expect::Error(code) => code.http_status(),
        }
    }
}

const OK: Expect = Expect::Success(200);
const CREATED: Expect = Expect::Success(201);
const NO_CONTENT: Expect = Expect::Success(204);
const UPGRADED: Expect = Expect::Success(101);
const UNAUTH: Expect = Expect::Error(ErrorCode::Unauthenticated);
const DENIED: Expect = Expect::Error(ErrorCode::PermissionDenied);
const MISSING: Expect = Expect::Error(ErrorCode::NotFound);

/// How a row presents the credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `Authorization: Bearer`.
    Bearer,
    /// The `apikey` header (a project's end-user sign-in routes).
    ApiKey,
    /// `Authorization: Bearer`, with the own project's publishable key in
    /// `apikey` (an end user's sign-out and `me`).
    UserOfProject,
    /// `Authorization: Bearer` on an SSE request (`Accept:
    /// text/event-stream`); an accepted stream's first frames are read.
    Sse,
    /// `Authorization: Bearer` on a WebSocket upgrade, over a socket.
    WebSocket,
}

/// One request to one route, and what each credential must get.
#[derive(Clone, Debug)]
struct Row {
    route: Route,
    label: String,
    path: String,
    body: Option<String>,
    via: Via,
    /// Session credentials are signed in afresh for this row (it ends
    /// sessions).
    fresh: bool,
    expect: [Expect; 9],
    /// Credentials whose success may change the own project.
    changes: Vec<Cred>,
    /// A stream's credential goes in the `access_token` query parameter
    /// (browsers' EventSource and WebSocket cannot set headers).
    query_token: bool,
    /// A frame an accepted WebSocket sends.
    ws_send: Option<String>,
    /// A fragment the answer (with a stream's first frames) must hold.
    says: Vec<(Cred, String)>,
    /// Headers sent besides the credential (`If-None-Match`…).
    headers: Vec<(String, String)>,
}

/// A project's data route (`Caller`): no credential, an expired token or
/// a revoked key are `401`; another project's credentials and the
/// project's keys and users without a right are `403`.
fn data(method: &str, pattern: &str, path: impl Into<String>) -> Row {
    Row {
        route: Route {
            method: method.to_string(),
            path: pattern.to_string(),
        },
        label: String::new(),
        path: path.into(),
        body: Option::None,
        via: Via::Bearer,
        fresh: false,
        expect: [
            UNAUTH, UNAUTH, UNAUTH, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED,
        ],
        changes: Vec::new(),
        query_token: false,
        ws_send: Option::None,
        says: Vec::new(),
        headers: Vec::new(),
    }
}

/// A route for developer accounts' tokens: keys are no tokens (`401`),
/// end users' tokens are refused (`403`).
fn account(method: &str, pattern: &str, path: impl Into<String>) -> Row {
    data(method, pattern, path).expect(&[OtherSecret, Publishable], UNAUTH)
}

/// A route anyone may call: the credential changes nothing.
fn public(method: &str, pattern: &str, path: impl Into<String>) -> Row {
    data(method, pattern, path).expect(&CREDS, OK)
}

impl Row {
    fn label(mut self, label: &str) -> Row {
        self.label = label.to_string();
        self
    }
    fn expect(mut self, creds: &[Cred], expect: Expect) -> Row {
        for cred in creds {
            self.expect[cred.index()] = expect;
        }
        self
    }
    fn viewer(self, expect: Expect) -> Row {
        self.expect(&[Viewer], expect)
    }
    /// What a reader gets: the viewer reads.
    fn read(self) -> Row {
        self.viewer(OK)
    }
    fn json(mut self, body: Value) -> Row {
        self.body = Some(body.to_string());
        self
    }
    fn text(mut self, body: &str) -> Row {
        self.body = Some(body.to_string());
        self
    }
    fn via(mut self, via: Via) -> Row {
        self.via = via;
        self
    }
    fn fresh(mut self) -> Row {
        self.fresh = true;
        self
    }
    /// `cred`'s success may change the own project.
    fn changes(mut self, creds: &[Cred]) -> Row {
        self.changes.extend_from_slice(creds);
        self
    }
    /// The same stream, the credential in the query string.
    fn query_token(mut self) -> Row {
        self.query_token = true;
        self.label = if self.label.is_empty() {
            "token in the query".into()
        } else {
            format!("{}, token in the query", self.label)
        };
        self
    }
    fn ws_send(mut self, frame: Value) -> Row {
        self.ws_send = Some(frame.to_string());
        self
    }
    fn header(mut self, name: &str, value: &str) -> Row {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    fn says(mut self, creds: &[Cred], fragment: &str) -> Row {
        for cred in creds {
            self.says.push((*cred, fragment.to_string()));
        }
        self
    }
    fn name(&self) -> String {
        if self.label.is_empty() {
            self.route.to_string()
        } else {
            format!("{} ({})", self.route, self.label)
        }
    }
}

// ---------------------------------------------------------------- the world

/// Two projects with accounts, members, keys, end users, and a little data
/// in every service.
struct World {
    app: axum::Router,
    /// `ws://` address of the same router on a socket.
    ws: String,
    own: String,
    other: String,
    /// The owners' tokens: the probe reads each project with them.
    owner: String,
    other_owner: String,
    /// The credential each [`Cred`] presents (none for `None`).
    creds: [Option<String>; 9],
    viewer_email: String,
    stranger_email: String,
    end_user_email: String,
    other_user_email: String,
    /// The publishable keys (end users sign in with them).
    publishable: String,
    other_publishable: String,
    end_user_id: String,
    /// Targets of refused deletions.
    developer_id: String,
    spare_key_id: String,
    spare_user_id: String,
    /// The other project's end user's refresh token.
    other_refresh: String,
    /// How the own project's audit log would name the other project's
    /// callers (none may appear there).
    foreign_callers: Vec<String>,
    /// An own end user's refresh token, spent by the publishable key's
    /// refresh row.
    own_refresh: String,
    /// KMS material made by the owner.
    ciphertext: String,
    data_key_ciphertext: String,
    signature: String,
    mac: String,
    /// Storage: the own project's multipart upload in progress (in
    /// `private`), its first part's ETag, its S3 credential, and a signed
    /// GET URL of `private/shared.txt`.
    upload_id: String,
    part_etag: String,
    s3_key: String,
    signed_url: String,
}

/// An answer: status, body text.
struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// Calls the router in process.
async fn send(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<String>,
) -> Answer {
    request(app, method, path, headers, body, &[]).await
}

/// Calls the router in process; of an accepted event stream, the first
/// frames (until it is idle with every `awaited` fragment sent).
async fn request(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<String>,
    awaited: &[&str],
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &body {
        request = request.header("content-type", "application/json");
        // A client sends the length of what it sends (Storage requires
        // it); an in-process body sets none.
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            request = request.header("content-length", body.len());
        }
    }
    let mut request = request
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if streaming && status < 300 {
        // The first frames (a backlog, a snapshot), then the stream is
        // dropped.
        let mut frames = response.into_body().into_data_stream();
        let mut text = String::new();
        while let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(patience(&text, awaited), frames.next()).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        return Answer { status, text };
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_else(|e| panic!("body of {method} {path}: {e}"));
    Answer {
        status,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Opens a WebSocket on the served router: the upgrade's status and, for a
/// refusal, its body.
async fn upgrade(
    base: &str,
    path: &str,
    token: Option<&str>,
    send: Option<&str>,
    awaited: &[&str],
) -> Answer {
    let mut request = format!("{base}{path}")
        .into_client_request()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, response)) => {
            if let Some(frame) = send {
                socket
                    .send(tungstenite::Message::text(frame))
                    .await
                    .unwrap_or_else(|e| panic!("WebSocket {path}: {e}"));
            }
            let mut text = String::new();
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(patience(&text, awaited), socket.next()).await
            {
                if let tungstenite::Message::Text(frame) = message {
                    text.push_str(&frame);
                    text.push('\n');
                }
            }
            let _ = socket.close(Option::None).await;
            Answer {
                status: response.status().as_u16(),
                text,
            }
        }
        Err(tungstenite::Error::Http(response)) => Answer {
            status: response.status().as_u16(),
            text: response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        },
        Err(e) => panic!("WebSocket {path}: {e}"),
    }
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("authorization".into(), format!("Bearer {token}"))]
}

fn apikey(key: &str) -> Vec<(String, String)> {
    vec![("apikey".into(), key.to_string())]
}

/// `method path` as `token`, which must answer `status`; the JSON answer.
async fn must(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    status: u16,
) -> Value {
    let answer = send(app, method, path, &headers, body.map(|b| b.to_string())).await;
    assert_eq!(answer.status, status, "{method} {path}: {}", answer.text);
    answer.json()
}

fn str_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {value}"))
        .to_string()
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

async fn sign_up(app: &axum::Router, email: &str) -> String {
    let tokens = must(
        app,
        "POST",
        "/api/v1/auth/signup",
        Vec::new(),
        Some(json!({ "email": email, "password": PW })),
        201,
    )
    .await;
    str_at(&tokens, "/access_token")
}

async fn sign_in(app: &axum::Router, email: &str) -> Value {
    must(
        app,
        "POST",
        "/api/v1/auth/signin",
        Vec::new(),
        Some(json!({ "email": email, "password": PW })),
        200,
    )
    .await
}

async fn user_sign_in(app: &axum::Router, project: &str, key: &str, email: &str) -> Value {
    must(
        app,
        "POST",
        &format!("/api/v1/projects/{project}/auth/signin"),
        apikey(key),
        Some(json!({ "email": email, "password": PW })),
        200,
    )
    .await
}

/// An end user of `project`: its id and tokens.
async fn user_sign_up(app: &axum::Router, project: &str, key: &str, email: &str) -> Value {
    must(
        app,
        "POST",
        &format!("/api/v1/projects/{project}/auth/signup"),
        apikey(key),
        Some(json!({ "email": email, "password": PW })),
        201,
    )
    .await
}

async fn new_key(app: &axum::Router, owner: &str, project: &str, kind: &str) -> Value {
    must(
        app,
        "POST",
        &format!("/api/v1/projects/{project}/keys"),
        bearer(owner),
        Some(json!({ "name": format!("{kind} key"), "kind": kind })),
        201,
    )
    .await
}

/// The owner's own token, expired an hour ago: signed by the instance's
/// signing key (read from identity's store, as any replica would), for the
/// owner's real, active session.
async fn expired_token(platform: &WholePlatform, owner_token: &str) -> String {
    let payload = owner_token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {owner_token}"));
    let mut claims: Claims = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys = platform
        .identity_store
        .signing_keys()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ring = KeyRing::new(platform.identity.issuer(), &keys).unwrap_or_else(|e| panic!("{e}"));
    let now = now_millis() / 1000;
    claims.iat = now - 7200;
    claims.nbf = now - 7200;
    claims.exp = now - 3600;
    claims.jti = random_hex(8);
    ring.sign(&claims).unwrap_or_else(|e| panic!("{e}"))
}

async fn build_world(platform: &WholePlatform, ws: String) -> World {
    let app = &platform.router;
    let email = |who: &str| format!("{who}-{}@example.com", random_hex(4));
    let (owner_email, viewer_email, developer_email, stranger_email) = (
        email("owner"),
        email("viewer"),
        email("dev"),
        email("stranger"),
    );
    let owner = sign_up(app, &owner_email).await;
    let viewer = sign_up(app, &viewer_email).await;
    sign_up(app, &developer_email).await;
    let other_owner = sign_up(app, &stranger_email).await;

    let create = |token: String, name: &'static str| async move {
        let project = must(
            app,
            "POST",
            "/api/v1/projects",
            bearer(&token),
            Some(json!({ "name": name })),
            201,
        )
        .await;
        str_at(&project, "/id")
    };
    let own = create(owner.clone(), "Own").await;
    let other = create(other_owner.clone(), "Other").await;
    for (address, role) in [(&viewer_email, "viewer"), (&developer_email, "developer")] {
        must(
            app,
            "PUT",
            &format!("/api/v1/projects/{own}/members"),
            bearer(&owner),
            Some(json!({ "email": address, "role": role })),
            200,
        )
        .await;
    }
    let members = must(
        app,
        "GET",
        &format!("/api/v1/projects/{own}/members"),
        bearer(&owner),
        Option::None,
        200,
    )
    .await;
    let developer_id = members["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "developer"))
        .map(|m| str_at(m, "/account_id"))
        .unwrap_or_else(|| panic!("no developer in {members}"));

    // Keys: the own project's publishable key, a spare one (the target of
    // refused revocations) and a revoked secret key; the other's secret
    // and publishable keys.
    let publishable = str_at(&new_key(app, &owner, &own, "publishable").await, "/key");
    let spare_key_id = str_at(&new_key(app, &owner, &own, "publishable").await, "/id");
    let revoked = new_key(app, &owner, &own, "secret").await;
    must(
        app,
        "DELETE",
        &format!("/api/v1/projects/{own}/keys/{}", str_at(&revoked, "/id")),
        bearer(&owner),
        Option::None,
        204,
    )
    .await;
    let revoked = str_at(&revoked, "/key");
    let other_secret = new_key(app, &other_owner, &other, "secret").await;
    let other_secret_subject = format!("key:{}", str_at(&other_secret, "/id"));
    let other_secret = str_at(&other_secret, "/key");
    let other_publishable = str_at(
        &new_key(app, &other_owner, &other, "publishable").await,
        "/key",
    );

    // End users.
    let (end_user_email, other_user_email) = (email("alice"), email("mallory"));
    let alice = user_sign_up(app, &own, &publishable, &end_user_email).await;
    let end_user_id = str_at(&alice, "/user/id");
    let spare = user_sign_up(app, &own, &publishable, &email("carol")).await;
    let spare_user_id = str_at(&spare, "/user/id");
    let mallory = user_sign_up(app, &other, &other_publishable, &other_user_email).await;
    let members_of_other = must(
        app,
        "GET",
        &format!("/api/v1/projects/{other}/members"),
        bearer(&other_owner),
        Option::None,
        200,
    )
    .await;
    let other_refresh = str_at(&mallory, "/refresh_token");
    let own_refresh = str_at(
        &user_sign_in(app, &own, &publishable, &end_user_email).await,
        "/refresh_token",
    );
    // The stranger is the other project's owner, in a session of its own.
    let stranger = str_at(&sign_in(app, &stranger_email).await, "/access_token");

    let expired = expired_token(platform, &owner).await;
    let creds = [
        Option::None,
        Some(expired),
        Some(revoked),
        Some(other_secret),
        Some(str_at(&mallory, "/access_token")),
        Some(stranger),
        Some(publishable.clone()),
        Some(str_at(&alice, "/access_token")),
        Some(viewer),
    ];

    // A little data in every service of both projects.
    let mut stored = Option::None;
    for (project, token, private) in [
        (&own, &owner, OWN_PRIVATE),
        (&other, &other_owner, OTHER_PRIVATE),
    ] {
        let h = || bearer(token);
        must(
            app,
            "POST",
            &format!("/events/v1/projects/{project}/topics/news"),
            h(),
            Some(json!({ "data": { "text": private } })),
            201,
        )
        .await;
        let answer = send(
            app,
            "PUT",
            &format!("/kv/v1/projects/{project}/keys/greeting"),
            &h(),
            Some(private.to_string()),
        )
        .await;
        assert_eq!(answer.status, 200, "KV put: {}", answer.text);
        must(
            app,
            "POST",
            &format!("/kv/v1/projects/{project}/keys/counter/incr"),
            h(),
            Option::None,
            200,
        )
        .await;
        let kms = format!("/kms/v1/projects/{project}");
        for (name, purpose) in [
            ("closed", "encrypt"),
            ("open", "encrypt"),
            ("signer", "sign"),
            ("macer", "mac"),
            ("retired", "encrypt"),
        ] {
            must(
                app,
                "POST",
                &format!("{kms}/keys"),
                h(),
                Some(json!({ "name": name, "purpose": purpose })),
                201,
            )
            .await;
        }
        for name in ["open", "signer", "macer"] {
            must(
                app,
                "POST",
                &format!("{kms}/keys/{name}/allow-end-users"),
                h(),
                Option::None,
                200,
            )
            .await;
        }
        must(
            app,
            "POST",
            &format!("{kms}/keys/retired/disable"),
            h(),
            Option::None,
            200,
        )
        .await;
        must(
            app,
            "PUT",
            &format!("{kms}/secrets/api-token"),
            h(),
            Some(json!({ "value": private })),
            200,
        )
        .await;
        let docs = format!("/bundoc/v1/projects/{project}/collections");
        must(
            app,
            "POST",
            &docs,
            h(),
            Some(json!({
                "name": "notes",
                "indexes": [{ "fields": ["owner"] }],
                "rules": {
                    "read": "resource.public == true || resource.owner == auth.uid",
                    "list": "resource.public == true || resource.owner == auth.uid",
                    "create": "request.owner == auth.uid",
                    "update": "resource.owner == auth.uid && request.owner == auth.uid",
                    "delete": "resource.owner == auth.uid",
                },
            })),
            201,
        )
        .await;
        let user = if project == &own {
            end_user_id.clone()
        } else {
            str_at(&mallory, "/user/id")
        };
        for doc in [
            json!({ "_id": "public", "owner": "the-team", "public": true, "text": "hello" }),
            json!({ "_id": "private", "owner": "the-team", "public": false, "text": private }),
            json!({ "_id": "mine", "owner": user, "public": false, "text": "my note" }),
            json!({ "_id": "doomed", "owner": user, "public": false, "text": "to delete" }),
        ] {
            must(
                app,
                "POST",
                &format!("{docs}/notes/documents"),
                h(),
                Some(doc),
                201,
            )
            .await;
        }
        // Storage: `private` (no rules: closed to end users and the
        // publishable key), `public` (anyone reads its objects) and
        // `ruled` (end users read, write and delete under
        // `users/{uid}/`); an S3 credential; a multipart upload begun.
        let st = format!("/storage/v1/projects/{project}");
        let folder = "resource.path.0 == \"users\" && resource.path.1 == auth.uid";
        for bucket in [
            json!({ "name": "private" }),
            json!({ "name": "public", "public": true }),
            json!({ "name": "ruled", "rules": {
                "read": folder,
                "write": "request.path.0 == \"users\" && request.path.1 == auth.uid",
                "delete": folder,
            } }),
        ] {
            must(
                app,
                "POST",
                &format!("{st}/buckets"),
                h(),
                Some(bucket),
                201,
            )
            .await;
        }
        let public_text = if project == &own {
            PUBLIC_TEXT
        } else {
            "public-of-the-other"
        };
        for (at, content) in [
            ("private/secret.txt".to_string(), private),
            ("private/shared.txt".to_string(), SHARED_TEXT),
            (format!("private/{private}.txt"), private),
            ("public/hello.txt".to_string(), public_text),
            (format!("ruled/users/{user}/note.txt"), "my file"),
            (format!("ruled/users/{user}/doomed.txt"), "to delete"),
            (format!("ruled/users/{user}/movable.txt"), "to move"),
            ("ruled/users/someone/secret.txt".to_string(), private),
            // A key the listings of end users must not show.
            (format!("ruled/users/someone/{private}.txt"), private),
        ] {
            let (bucket, key) = at.split_once('/').unwrap_or_default();
            let answer = send(
                app,
                "PUT",
                &format!("{st}/buckets/{bucket}/objects/{key}"),
                &h(),
                Some(content.to_string()),
            )
            .await;
            assert_eq!(answer.status, 200, "storage put {at}: {}", answer.text);
        }
        let upload = must(
            app,
            "POST",
            &format!("{st}/buckets/private/uploads"),
            h(),
            Some(json!({ "key": "big.bin" })),
            201,
        )
        .await;
        let upload_id = str_at(&upload, "/id");
        let answer = send(
            app,
            "PUT",
            &format!("{st}/buckets/private/uploads/{upload_id}/parts/1"),
            &h(),
            Some("the first part".to_string()),
        )
        .await;
        assert_eq!(answer.status, 200, "storage part: {}", answer.text);
        let credential = must(
            app,
            "POST",
            &format!("/api/v1/projects/{project}/storage/credentials"),
            h(),
            Option::None,
            201,
        )
        .await;
        // Functions: `hello` for any credential of the project (it logs the
        // project's private marker, so a leaked log would show),
        // `open` for anyone, `mine` for its end users; `hello` has run
        // once (the log has a record).
        let fns = format!("/api/v1/projects/{project}/functions");
        for (name, auth, code) in [
            (
                "hello",
                "project",
                "export default async (request, ctx) => {\n  console.log(ctx.env.MARKER);\n  return new Response(\"hi from \" + ctx.project);\n};\n",
            ),
            (
                "open",
                "public",
                "export default async (request, ctx) => new Response(\"open to \" + (ctx.auth ? ctx.auth.kind : \"anyone\"));\n",
            ),
            (
                "mine",
                "end_users",
                "export default async (request, ctx) => new Response(\"yours, \" + ctx.auth.subject);\n",
            ),
        ] {
            must(
                app,
                "POST",
                &fns,
                h(),
                Some(json!({
                    "name": name,
                    "auth": auth,
                    "env": { "MARKER": private },
                    "files": [{ "path": "index.js", "code": code }],
                })),
                201,
            )
            .await;
        }
        let ran = send(
            app,
            "GET",
            &format!("/functions/v1/projects/{project}/fn/hello"),
            &h(),
            Option::None,
        )
        .await;
        assert_eq!(ran.status, 200, "function hello: {}", ran.text);
        if project == &own {
            let signed = must(
                app,
                "POST",
                &format!("{st}/buckets/private/sign"),
                h(),
                Some(json!({ "key": "shared.txt", "expires_in": 3600 })),
                200,
            )
            .await;
            stored = Some((
                upload_id,
                str_at(&answer.json(), "/etag"),
                str_at(&credential, "/access_key_id"),
                str_at(&signed, "/url"),
            ));
        }
    }
    let (upload_id, part_etag, s3_key, signed_url) =
        stored.unwrap_or_else(|| panic!("the own project's storage was not seeded"));
    let kms = format!("/kms/v1/projects/{own}/keys");
    let sealed = must(
        app,
        "POST",
        &format!("{kms}/open/encrypt"),
        bearer(&owner),
        Some(json!({ "plaintext": b64("an end user's note") })),
        200,
    )
    .await;
    let data_key = must(
        app,
        "POST",
        &format!("{kms}/open/datakey"),
        bearer(&owner),
        Some(json!({})),
        200,
    )
    .await;
    let signed = must(
        app,
        "POST",
        &format!("{kms}/signer/sign"),
        bearer(&owner),
        Some(json!({ "message": b64("a message") })),
        200,
    )
    .await;
    let maced = must(
        app,
        "POST",
        &format!("{kms}/macer/mac"),
        bearer(&owner),
        Some(json!({ "message": b64("a message") })),
        200,
    )
    .await;

    World {
        app: app.clone(),
        ws,
        own,
        other,
        owner,
        other_owner,
        creds,
        viewer_email,
        stranger_email,
        end_user_email,
        other_user_email,
        publishable,
        other_publishable,
        end_user_id,
        developer_id,
        spare_key_id,
        spare_user_id,
        other_refresh,
        foreign_callers: vec![
            other_secret_subject,
            str_at(&mallory, "/user/id"),
            str_at(&members_of_other, "/members/0/account_id"),
        ],
        own_refresh,
        ciphertext: str_at(&sealed, "/ciphertext"),
        data_key_ciphertext: str_at(&data_key, "/ciphertext"),
        signature: str_at(&signed, "/signature"),
        mac: str_at(&maced, "/mac"),
        upload_id,
        part_etag,
        s3_key,
        signed_url,
    }
}

impl World {
    /// The token `cred` presents in `row`: session credentials are signed
    /// in afresh for rows that end sessions.
    async fn token(&self, cred: Cred, fresh: bool) -> Option<String> {
        if !fresh {
            return self.creds[cred.index()].clone();
        }
        let app = &self.app;
        let fresh = match cred {
            Viewer => sign_in(app, &self.viewer_email).await,
            Stranger => sign_in(app, &self.stranger_email).await,
            EndUser => user_sign_in(app, &self.own, &self.publishable, &self.end_user_email).await,
            OtherUser => {
                user_sign_in(
                    app,
                    &self.other,
                    &self.other_publishable,
                    &self.other_user_email,
                )
                .await
            }
            _ => return self.creds[cred.index()].clone(),
        };
        Some(str_at(&fresh, "/access_token"))
    }

    /// Everything of `project` its owner can read, through the same API.
    async fn project_state(app: axum::Router, project: String, token: String) -> Value {
        let (app, token) = (&app, token.as_str());
        let get = |path: String| async move {
            let answer = send(app, "GET", &path, &bearer(token), Option::None).await;
            assert_eq!(answer.status, 200, "probe GET {path}: {}", answer.text);
            answer.text
        };
        let json = |text: String| serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        let api = format!("/api/v1/projects/{project}");
        let mut keys = json(get(format!("{api}/keys")).await);
        for key in keys["keys"].as_array_mut().into_iter().flatten() {
            key["last_used_at"] = Value::Null; // touched on use, by design
        }
        let mut topics = json(get(format!("/events/v1/projects/{project}/topics")).await);
        for topic in topics["topics"].as_array_mut().into_iter().flatten() {
            topic["subscribers"] = Value::Null; // streams come and go
        }
        let kv = format!("/kv/v1/projects/{project}");
        let kv_keys = json(get(format!("{kv}/keys?limit=1000")).await);
        let mut values = serde_json::Map::new();
        for key in kv_keys["keys"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            values.insert(key.into(), get(format!("{kv}/keys/{key}")).await.into());
        }
        let kms = format!("/kms/v1/projects/{project}");
        let secrets = json(get(format!("{kms}/secrets")).await);
        let mut secret_values = serde_json::Map::new();
        for secret in secrets["secrets"].as_array().into_iter().flatten() {
            let name = str_at(secret, "/name");
            let value = json(get(format!("{kms}/secrets/{name}")).await);
            secret_values.insert(name, value);
        }
        let docs = format!("/bundoc/v1/projects/{project}");
        let collections = json(get(format!("{docs}/collections")).await);
        let mut documents = serde_json::Map::new();
        for collection in collections["collections"].as_array().into_iter().flatten() {
            let name = str_at(collection, "/name");
            let page = json(
                get(format!(
                    "{docs}/collections/{name}/documents?limit=1000&sort=_id"
                ))
                .await,
            );
            documents.insert(name, page);
        }
        let st = format!("/storage/v1/projects/{project}");
        let buckets = json(get(format!("{st}/buckets")).await);
        let (mut objects, mut uploads) = (serde_json::Map::new(), serde_json::Map::new());
        for bucket in buckets["buckets"].as_array().into_iter().flatten() {
            let name = str_at(bucket, "/name");
            let b = format!("{st}/buckets/{name}");
            objects.insert(
                name.clone(),
                json(get(format!("{b}/objects?limit=1000")).await),
            );
            let mut open = json(get(format!("{b}/uploads")).await);
            for upload in open["uploads"].as_array_mut().into_iter().flatten() {
                let id = str_at(upload, "/id");
                upload["parts"] = json(get(format!("{b}/uploads/{id}/parts")).await);
            }
            uploads.insert(name, open);
        }
        let fns = format!("{api}/functions");
        let functions = json(get(fns.clone()).await);
        let mut serving = serde_json::Map::new();
        for function in functions["functions"].as_array().into_iter().flatten() {
            let name = str_at(function, "/name");
            let detail = json(get(format!("{fns}/{name}")).await);
            let versions = json(get(format!("{fns}/{name}/versions")).await);
            serving.insert(name, json!({ "detail": detail, "versions": versions }));
        }
        json!({
            "project": json(get(api.clone()).await),
            "members": json(get(format!("{api}/members")).await),
            "keys": keys,
            "users": json(get(format!("{api}/users?limit=1000")).await),
            "topics": topics,
            "kv": { "keys": kv_keys, "values": values, "usage": json(get(format!("{kv}/usage")).await) },
            "kms": {
                "keys": json(get(format!("{kms}/keys")).await),
                "secrets": secrets,
                "values": secret_values,
            },
            "docs": {
                "collections": collections,
                "documents": documents,
                "usage": json(get(format!("{docs}/usage")).await),
            },
            "storage": {
                "buckets": buckets,
                "objects": objects,
                "uploads": uploads,
                "usage": json(get(format!("{st}/usage")).await),
                "credentials": json(get(format!("{api}/storage/credentials")).await),
            },
            "functions": { "list": functions, "serving": serving },
        })
    }

    /// Both projects' states, read side by side.
    async fn state(&self) -> (Value, Value) {
        let read = |project: &String, token: &String| {
            let task = World::project_state(self.app.clone(), project.clone(), token.clone());
            tokio::spawn(task)
        };
        let (own, other) = (
            read(&self.own, &self.owner),
            read(&self.other, &self.other_owner),
        );
        let (own, other) = tokio::join!(own, other);
        (
            own.unwrap_or_else(|e| panic!("probe: {e}")),
            other.unwrap_or_else(|e| panic!("probe: {e}")),
        )
    }

    /// Sends `row` as `cred`.
    async fn call(&self, row: &Row, cred: Cred) -> Answer {
        let token = self.token(cred, row.fresh).await;
        let mut path = row.path.replace("{unique}", &random_hex(6));
        let token = match (row.query_token, token) {
            (true, Some(token)) => {
                let separator = if path.contains('?') { '&' } else { '?' };
                path = format!("{path}{separator}access_token={token}");
                Option::None
            }
            (_, token) => token,
        };
        let body = row
            .body
            .as_ref()
            .map(|b| b.replace("{unique}", &random_hex(6)));
        let awaited: Vec<&str> = row
            .says
            .iter()
            .filter(|(c, _)| *c == cred)
            .map(|(_, fragment)| fragment.as_str())
            .collect();
        let mut headers = row.headers.clone();
        match (row.via, &token) {
            (Via::WebSocket, _) => {
                let frame = row.ws_send.as_deref();
                return upgrade(&self.ws, &path, token.as_deref(), frame, &awaited).await;
            }
            (Via::ApiKey, Some(token)) => headers.extend(apikey(token)),
            (Via::UserOfProject, token) => {
                headers.extend(apikey(&self.publishable));
                if let Some(token) = token {
                    headers.extend(bearer(token));
                }
            }
            (Via::Sse, token) => {
                headers.push(("accept".into(), "text/event-stream".into()));
                if let Some(token) = token {
                    headers.extend(bearer(token));
                }
            }
            (Via::Bearer, Some(token)) => headers.extend(bearer(token)),
            (_, Option::None) => {}
        }
        let method = &row.route.method;
        request(&self.app, method, &path, &headers, body, &awaited).await
    }
}

// ---------------------------------------------------------------- the rows

fn rows(w: &World) -> Vec<Row> {
    let (own, eu) = (&w.own, &w.end_user_id);
    let mut rows = Vec::new();

    // The server's own routes: public, and about no project.
    rows.push(public("GET", "/health", "/health"));
    rows.push(public("GET", "/metrics", "/metrics"));

    // ---- the Platform API ----
    rows.push(public(
        "GET",
        "/api/.well-known/jwks.json",
        "/api/.well-known/jwks.json",
    ));
    // Sign-up, sign-in and refresh of accounts: the body decides, a
    // credential grants nothing (and changes nothing in any project).
    rows.push(
        public("POST", "/api/v1/auth/signup", "/api/v1/auth/signup")
            .json(json!({ "email": "new-{unique}@example.com", "password": PW }))
            .expect(&CREDS, CREATED),
    );
    rows.push(
        public("POST", "/api/v1/auth/signin", "/api/v1/auth/signin")
            .json(json!({ "email": w.viewer_email, "password": PW })),
    );
    rows.push(
        public("POST", "/api/v1/auth/refresh", "/api/v1/auth/refresh")
            .label("an end user's refresh token is no account's")
            .json(json!({ "refresh_token": w.other_refresh }))
            .expect(&CREDS, UNAUTH),
    );
    rows.push(
        account("POST", "/api/v1/auth/signout", "/api/v1/auth/signout")
            .fresh()
            .expect(&[Viewer, Stranger], NO_CONTENT),
    );
    rows.push(account("GET", "/api/v1/auth/me", "/api/v1/auth/me").expect(&[Viewer, Stranger], OK));
    rows.push(
        account("GET", "/api/v1/projects", "/api/v1/projects").expect(&[Viewer, Stranger], OK),
    );
    rows.push(
        account("POST", "/api/v1/accounts", "/api/v1/accounts")
            .json(json!({ "email": "made@example.com", "password": "correct horse battery" }))
            .expect(&[Viewer, Stranger], DENIED),
    );
    rows.push(
        account("POST", "/api/v1/projects", "/api/v1/projects")
            .json(json!({ "name": "Mine too" }))
            .expect(&[Viewer, Stranger], CREATED),
    );
    let p = "/api/v1/projects/{project}";
    let api = format!("/api/v1/projects/{own}");
    // A project's own routes: members only; others are told it does not
    // exist.
    let project = |method: &str, pattern: &str, path: String| {
        account(method, &pattern.replace("{p}", p), path).expect(&[Stranger], MISSING)
    };
    rows.push(project("GET", "{p}", api.clone()).read());
    rows.push(
        project("PATCH", "{p}", api.clone())
            .json(json!({ "name": "Taken over" }))
            .viewer(DENIED),
    );
    rows.push(project("DELETE", "{p}", api.clone()).viewer(DENIED));
    rows.push(project("GET", "{p}/members", format!("{api}/members")).read());
    rows.push(
        project("PUT", "{p}/members", format!("{api}/members"))
            .json(json!({ "email": w.stranger_email, "role": "owner" }))
            .viewer(DENIED),
    );
    rows.push(
        project(
            "DELETE",
            "{p}/members/{account}",
            format!("{api}/members/{}", w.developer_id),
        )
        .viewer(DENIED),
    );
    rows.push(project("GET", "{p}/keys", format!("{api}/keys")).read());
    rows.push(
        project("POST", "{p}/keys", format!("{api}/keys"))
            .json(json!({ "name": "mine", "kind": "secret" }))
            .viewer(DENIED),
    );
    rows.push(
        project(
            "DELETE",
            "{p}/keys/{key}",
            format!("{api}/keys/{}", w.spare_key_id),
        )
        .viewer(DENIED),
    );
    // A project's end users sign up, in and refresh with its project key
    // (`apikey`): tokens are no keys, another project's key is refused.
    let by_key = |pattern: &str, body: Value| {
        data(
            "POST",
            &format!("{p}/{pattern}"),
            format!("{api}/{pattern}"),
        )
        .via(Via::ApiKey)
        .json(body)
        .expect(&[OtherUser, Stranger, EndUser, Viewer], UNAUTH)
    };
    rows.push(
        by_key(
            "auth/signup",
            json!({ "email": "user-{unique}@example.com", "password": PW }),
        )
        .expect(&[Publishable], CREATED)
        .changes(&[Publishable]),
    );
    rows.push(
        by_key(
            "auth/signin",
            json!({ "email": w.end_user_email, "password": PW }),
        )
        .expect(&[Publishable], OK),
    );
    rows.push(
        by_key(
            "auth/signin",
            json!({ "email": w.other_user_email, "password": PW }),
        )
        .label("another project's end user")
        .expect(&[Publishable], UNAUTH),
    );
    rows.push(
        by_key("auth/refresh", json!({ "refresh_token": w.own_refresh }))
            .expect(&[Publishable], OK),
    );
    rows.push(
        by_key("auth/refresh", json!({ "refresh_token": w.other_refresh }))
            .label("another project's refresh token")
            .expect(&[Publishable], UNAUTH),
    );
    // An end user's own session: the project key in `apikey`, its token
    // as the bearer.
    let session = |method: &str, pattern: &str| {
        data(
            method,
            &format!("{p}/{pattern}"),
            format!("{api}/{pattern}"),
        )
        .via(Via::UserOfProject)
        .expect(&[OtherSecret, Publishable], UNAUTH)
    };
    rows.push(
        session("POST", "auth/signout")
            .fresh()
            .expect(&[EndUser], NO_CONTENT),
    );
    rows.push(session("GET", "auth/me").expect(&[EndUser], OK));
    // Listing and deleting end users is for admins.
    rows.push(data("GET", &format!("{p}/users"), format!("{api}/users")));
    rows.push(data(
        "DELETE",
        &format!("{p}/users/{{user}}"),
        format!("{api}/users/{}", w.spare_user_id),
    ));

    // ---- Buncast ----
    let p = buncast::PREFIX;
    let events = format!("/events/v1/projects/{own}");
    rows.push(data("GET", &format!("{p}/topics"), format!("{events}/topics")).read());
    rows.push(
        data(
            "POST",
            &format!("{p}/topics/{{topic}}"),
            format!("{events}/topics/news"),
        )
        .json(json!({ "data": "forged" })),
    );
    rows.push(
        data(
            "GET",
            &format!("{p}/topics/{{topic}}/subscribe"),
            format!("{events}/topics/news/subscribe?after=0"),
        )
        .via(Via::Sse)
        .read()
        .says(&[Viewer], OWN_PRIVATE),
    );
    rows.push(
        data(
            "GET",
            &format!("{p}/topics/{{topic}}/ws"),
            format!("{events}/topics/news/ws?after=0"),
        )
        .via(Via::WebSocket)
        .viewer(UPGRADED)
        // A reader's socket carries no writes: its publish frame is refused.
        .ws_send(json!({ "type": "publish", "topic": "news", "data": "forged", "ref": 1 }))
        .says(&[Viewer], "permission_denied"),
    );

    // ---- Bunder Manager ----
    let p = kvmanager::PREFIX;
    let kv = format!("/kv/v1/projects/{own}");
    rows.push(data("GET", &format!("{p}/keys"), format!("{kv}/keys")).read());
    rows.push(
        data(
            "GET",
            &format!("{p}/keys/{{key}}"),
            format!("{kv}/keys/greeting"),
        )
        .read(),
    );
    rows.push(
        data(
            "PUT",
            &format!("{p}/keys/{{key}}"),
            format!("{kv}/keys/greeting"),
        )
        .text("forged"),
    );
    rows.push(data(
        "DELETE",
        &format!("{p}/keys/{{key}}"),
        format!("{kv}/keys/greeting"),
    ));
    rows.push(data(
        "POST",
        &format!("{p}/keys/{{key}}/incr"),
        format!("{kv}/keys/counter/incr"),
    ));
    rows.push(
        data(
            "GET",
            &format!("{p}/keys/{{key}}/ttl"),
            format!("{kv}/keys/greeting/ttl"),
        )
        .read(),
    );
    rows.push(data("GET", &format!("{p}/usage"), format!("{kv}/usage")).read());
    rows.push(
        data("GET", &format!("{p}/changes"), format!("{kv}/changes"))
            .via(Via::Sse)
            .read(),
    );

    // ---- BunKMS ----
    let p = bunkms::PREFIX;
    let kms = format!("/kms/v1/projects/{own}");
    rows.push(data("GET", &format!("{p}/keys"), format!("{kms}/keys")).read());
    rows.push(
        data("POST", &format!("{p}/keys"), format!("{kms}/keys"))
            .json(json!({ "name": "forged", "purpose": "encrypt" })),
    );
    rows.push(
        data(
            "GET",
            &format!("{p}/keys/{{name}}"),
            format!("{kms}/keys/closed"),
        )
        .read(),
    );
    let action = |key: &str, action: &str, body: Value| {
        data(
            "POST",
            &format!("{p}/keys/{{name}}/{{action}}"),
            format!("{kms}/keys/{key}/{action}"),
        )
        .label(&format!("{action} {key}"))
        .json(body)
    };
    // Administering keys: admins only.
    for (key, name, body) in [
        ("closed", "rotate", json!({})),
        ("closed", "disable", json!({})),
        ("closed", "enable", json!({})),
        ("closed", "allow-end-users", json!({})),
        ("open", "deny-end-users", json!({})),
        ("closed", "schedule-deletion", json!({ "days": 7 })),
        ("closed", "cancel-deletion", json!({})),
    ] {
        rows.push(action(key, name, body));
    }
    // Using keys: the `w` right, or an end user of the project on a key
    // open to end users; never a publishable key, never a viewer.
    rows.push(action(
        "closed",
        "encrypt",
        json!({ "plaintext": b64("x") }),
    ));
    // Keys closed to end users tell them nothing: not whether they
    // exist, not their state.
    rows.push(action("nope", "encrypt", json!({ "plaintext": b64("x") })).label("a missing key"));
    rows.push(
        action("retired", "encrypt", json!({ "plaintext": b64("x") }))
            .label("a disabled key closed to end users"),
    );
    rows.push(action("open", "encrypt", json!({ "plaintext": b64("x") })).expect(&[EndUser], OK));
    rows.push(
        action("open", "decrypt", json!({ "ciphertext": w.ciphertext })).expect(&[EndUser], OK),
    );
    rows.push(
        action("open", "reencrypt", json!({ "ciphertext": w.ciphertext })).expect(&[EndUser], OK),
    );
    rows.push(
        action(
            "open",
            "reencrypt",
            json!({ "ciphertext": w.ciphertext, "target": "closed" }),
        )
        .label("reencrypt open into closed"),
    );
    rows.push(action("closed", "datakey", json!({})));
    rows.push(action("open", "datakey", json!({})).expect(&[EndUser], OK));
    rows.push(
        action(
            "open",
            "decrypt-datakey",
            json!({ "ciphertext": w.data_key_ciphertext }),
        )
        .expect(&[EndUser], OK),
    );
    rows.push(
        action("signer", "sign", json!({ "message": b64("a message") })).expect(&[EndUser], OK),
    );
    rows.push(
        action(
            "signer",
            "verify",
            json!({ "message": b64("a message"), "signature": w.signature }),
        )
        .expect(&[EndUser], OK),
    );
    rows.push(
        action("macer", "mac", json!({ "message": b64("a message") })).expect(&[EndUser], OK),
    );
    rows.push(
        action(
            "macer",
            "verify-mac",
            json!({ "message": b64("a message"), "mac": w.mac }),
        )
        .expect(&[EndUser], OK),
    );
    rows.push(data("GET", &format!("{p}/secrets"), format!("{kms}/secrets")).read());
    rows.push(
        data(
            "PUT",
            &format!("{p}/secrets/{{name}}"),
            format!("{kms}/secrets/api-token"),
        )
        .json(json!({ "value": "forged" })),
    );
    // A secret's value needs `w`: a viewer sees names, not values.
    rows.push(data(
        "GET",
        &format!("{p}/secrets/{{name}}"),
        format!("{kms}/secrets/api-token"),
    ));
    rows.push(data(
        "DELETE",
        &format!("{p}/secrets/{{name}}"),
        format!("{kms}/secrets/api-token"),
    ));
    rows.push(data("GET", &format!("{p}/audit"), format!("{kms}/audit")).read());
    rows.push(
        data(
            "GET",
            &format!("{p}/audit/verify"),
            format!("{kms}/audit/verify"),
        )
        .read(),
    );

    // ---- Bundoc ----
    // `notes` lets end users and the publishable key read public notes,
    // and end users read and write their own; everything else is closed.
    let p = bundoc::PREFIX;
    let docs = format!("/bundoc/v1/projects/{own}");
    let c = format!("{p}/collections/{{collection}}");
    let notes = format!("{docs}/collections/notes");
    let ruled = [Publishable, EndUser];
    rows.push(
        data(
            "GET",
            &format!("{p}/collections"),
            format!("{docs}/collections"),
        )
        .read(),
    );
    rows.push(
        data(
            "POST",
            &format!("{p}/collections"),
            format!("{docs}/collections"),
        )
        .json(json!({ "name": "forged" })),
    );
    rows.push(data("GET", &c, notes.clone()).read());
    rows.push(
        data("PUT", &c, notes.clone()).json(json!({ "rules": { "read": "true", "list": "true" } })),
    );
    rows.push(data("DELETE", &c, notes.clone()));
    rows.push(
        data(
            "GET",
            &format!("{c}/documents"),
            format!("{notes}/documents"),
        )
        .read()
        .expect(&ruled, OK)
        .says(&ruled, "\"_id\":\"public\""),
    );
    rows.push(
        data(
            "POST",
            &format!("{c}/documents"),
            format!("{notes}/documents"),
        )
        .json(json!({ "owner": eu, "public": false, "text": "new" }))
        .expect(&[EndUser], CREATED)
        .changes(&[EndUser]),
    );
    rows.push(
        data(
            "POST",
            &format!("{c}/documents"),
            format!("{notes}/documents"),
        )
        .label("as someone else")
        .json(json!({ "owner": "the-team", "public": true, "text": "forged" })),
    );
    let doc = format!("{c}/documents/{{id}}");
    rows.push(
        data("GET", &doc, format!("{notes}/documents/public"))
            .label("public")
            .read()
            .expect(&ruled, OK),
    );
    rows.push(
        data("GET", &doc, format!("{notes}/documents/mine"))
            .label("the end user's")
            .read()
            .expect(&[EndUser], OK),
    );
    rows.push(
        data("GET", &doc, format!("{notes}/documents/private"))
            .label("private")
            .read(),
    );
    rows.push(
        data("PUT", &doc, format!("{notes}/documents/mine"))
            .json(json!({ "owner": eu, "public": false, "text": "replaced" }))
            .expect(&[EndUser], OK)
            .changes(&[EndUser]),
    );
    rows.push(
        data("PUT", &doc, format!("{notes}/documents/private"))
            .label("someone else's")
            .json(json!({ "owner": eu, "public": false, "text": "taken" })),
    );
    rows.push(
        data("PATCH", &doc, format!("{notes}/documents/mine"))
            .json(json!({ "text": "patched" }))
            .expect(&[EndUser], OK)
            .changes(&[EndUser]),
    );
    rows.push(
        data("PATCH", &doc, format!("{notes}/documents/public"))
            .label("someone else's")
            .json(json!({ "text": "defaced" })),
    );
    rows.push(data("DELETE", &doc, format!("{notes}/documents/public")).label("someone else's"));
    rows.push(
        data("DELETE", &doc, format!("{notes}/documents/doomed"))
            .expect(&[EndUser], OK)
            .changes(&[EndUser]),
    );
    rows.push(
        data("POST", &format!("{c}/batch"), format!("{notes}/batch"))
            .json(json!({ "writes": [
                { "op": "create", "doc": { "owner": eu, "public": false, "text": "batched" } },
            ] }))
            .expect(&[EndUser], OK)
            .changes(&[EndUser]),
    );
    rows.push(
        data("POST", &format!("{c}/batch"), format!("{notes}/batch"))
            .label("someone else's")
            .json(json!({ "writes": [{ "op": "delete", "id": "private" }] })),
    );
    // All or nothing: the end user's own write does not pass with another.
    rows.push(
        data("POST", &format!("{c}/batch"), format!("{notes}/batch"))
            .label("its own and someone else's")
            .json(json!({ "writes": [
                { "op": "create", "doc": { "owner": eu, "public": false, "text": "batched" } },
                { "op": "patch", "id": "public", "patch": { "text": "defaced" } },
            ] })),
    );
    rows.push(
        data("POST", &format!("{c}/query"), format!("{notes}/query"))
            .json(json!({}))
            .read()
            .expect(&ruled, OK)
            .says(&ruled, "\"_id\":\"public\"")
            .says(&[EndUser], "\"_id\":\"mine\""),
    );
    // `explain` counts what the rules hide: members and keys only.
    rows.push(
        data("POST", &format!("{c}/explain"), format!("{notes}/explain"))
            .json(json!({}))
            .read(),
    );
    rows.push(
        data("POST", &format!("{c}/count"), format!("{notes}/count"))
            .json(json!({}))
            .read()
            .expect(&ruled, OK)
            .says(&[Publishable], "{\"count\":1}"),
    );
    rows.push(
        data(
            "GET",
            &format!("{c}/subscribe"),
            format!("{notes}/subscribe"),
        )
        .via(Via::Sse)
        .read()
        .expect(&ruled, OK)
        .says(&ruled, "\"_id\":\"public\""),
    );
    rows.push(
        data("GET", &format!("{c}/ws"), format!("{notes}/ws"))
            .via(Via::WebSocket)
            .expect(&[Publishable, EndUser, Viewer], UPGRADED)
            .says(&ruled, "\"_id\":\"public\""),
    );
    rows.push(data("GET", &format!("{p}/usage"), format!("{docs}/usage")).read());

    // ---- Storage ----
    // `private` has no rules (closed to end users and the publishable key:
    // a hidden object reads as missing), `public` lets anyone read its
    // objects (they hold nothing private, by design), `ruled` lets end
    // users read, write and delete under `users/{uid}/`.
    let p = storage::PREFIX;
    let st = format!("/storage/v1/projects/{own}");
    let b = format!("{p}/buckets/{{bucket}}");
    let object = format!("{b}/objects/{{*key}}");
    let mine = format!("users/{eu}");
    // Readers of the public bucket's objects: no credential, the project's
    // own (another project's credentials are refused, as everywhere).
    let anyone = [None, Viewer];
    rows.push(data("GET", &format!("{p}/buckets"), format!("{st}/buckets")).read());
    rows.push(
        data("POST", &format!("{p}/buckets"), format!("{st}/buckets"))
            .json(json!({ "name": "forged", "public": true })),
    );
    rows.push(data("GET", &b, format!("{st}/buckets/private")).read());
    rows.push(
        data("GET", &b, format!("{st}/buckets/nope"))
            .label("a missing bucket")
            .viewer(MISSING),
    );
    rows.push(data("PATCH", &b, format!("{st}/buckets/private")).json(json!({ "public": true })));
    rows.push(data(
        "DELETE",
        &b,
        format!("{st}/buckets/private?force=true"),
    ));
    rows.push(data("DELETE", &b, format!("{st}/buckets/public?force=true")).label("public"));
    rows.push(data("GET", &format!("{p}/usage"), format!("{st}/usage")).read());

    // Signing needs the right itself (end users: the rules).
    let sign = format!("{b}/sign");
    rows.push(
        data("POST", &sign, format!("{st}/buckets/private/sign"))
            .json(json!({ "key": "secret.txt", "expires_in": 60 }))
            .read(),
    );
    rows.push(
        data("POST", &sign, format!("{st}/buckets/private/sign"))
            .label("PUT")
            .json(json!({ "key": "new.txt", "method": "PUT", "expires_in": 60 })),
    );
    rows.push(
        data("POST", &sign, format!("{st}/buckets/public/sign"))
            .label("public")
            .json(json!({ "key": "hello.txt", "expires_in": 60 }))
            .read()
            .expect(&ruled, OK),
    );
    rows.push(
        data("POST", &sign, format!("{st}/buckets/ruled/sign"))
            .label("the end user's")
            .json(json!({ "key": format!("{mine}/note.txt"), "expires_in": 60 }))
            .read()
            .expect(&[EndUser], OK),
    );
    rows.push(
        data("POST", &sign, format!("{st}/buckets/ruled/sign"))
            .label("PUT, the end user's")
            .json(json!({ "key": format!("{mine}/new.txt"), "method": "PUT", "expires_in": 60 }))
            .expect(&[EndUser], OK),
    );
    rows.push(
        data("POST", &sign, format!("{st}/buckets/ruled/sign"))
            .label("someone else's")
            .json(json!({ "key": "users/someone/secret.txt", "expires_in": 60 }))
            .read(),
    );
    // Another project's credentials learn nothing of the project's
    // buckets: a missing one is refused as an existing one.
    rows.push(
        data("POST", &sign, format!("{st}/buckets/nope/sign"))
            .label("a missing bucket")
            .json(json!({ "key": "x.txt", "expires_in": 60 }))
            .expect(&[Publishable, EndUser, Viewer], MISSING),
    );

    // Listings: end users and the publishable key see what the read rule
    // shows them (nothing, without one).
    let list = format!("{b}/objects");
    rows.push(
        data("GET", &list, format!("{st}/buckets/private/objects"))
            .read()
            .expect(&ruled, OK)
            .says(&ruled, "\"objects\":[]")
            .says(&[Viewer], "secret.txt"),
    );
    rows.push(
        data(
            "GET",
            &list,
            format!("{st}/buckets/ruled/objects?prefix=users/"),
        )
        .label("ruled")
        .read()
        .expect(&ruled, OK)
        .says(&[Publishable], "\"objects\":[]")
        .says(&[EndUser, Viewer], &format!("{mine}/note.txt")),
    );
    // A public bucket's objects are read by anyone, not listed: listing
    // needs a credential of the project (docs/storage.md); the project's
    // end users and keys see every (public) object.
    rows.push(
        data("GET", &list, format!("{st}/buckets/public/objects"))
            .label("public")
            .read()
            .expect(&ruled, OK)
            .says(&ruled, "hello.txt"),
    );
    // Nor does anyone without a credential learn which buckets exist.
    rows.push(
        data("GET", &list, format!("{st}/buckets/nope/objects"))
            .label("a missing bucket")
            .expect(&[Publishable, EndUser, Viewer], MISSING),
    );

    // Reads.
    rows.push(
        data(
            "GET",
            &object,
            format!("{st}/buckets/private/objects/secret.txt"),
        )
        .read()
        .expect(&ruled, MISSING)
        .says(&[Viewer], OWN_PRIVATE),
    );
    rows.push(
        data(
            "GET",
            &object,
            format!("{st}/buckets/private/objects/nope.txt"),
        )
        .label("a missing object")
        .expect(&[Publishable, EndUser, Viewer], MISSING),
    );
    rows.push(
        data("GET", &object, format!("{st}/buckets/nope/objects/x.txt"))
            .label("a missing bucket")
            .expect(&[Publishable, EndUser, Viewer], MISSING),
    );
    // Anyone reads a public bucket's objects without a credential, the
    // project's end users and keys too; another project's credential is
    // refused (public reads are for requests without one).
    rows.push(
        data(
            "GET",
            &object,
            format!("{st}/buckets/public/objects/hello.txt"),
        )
        .label("public")
        .expect(&anyone, OK)
        .expect(&ruled, OK)
        .says(&[None, Viewer, Publishable, EndUser], PUBLIC_TEXT),
    );
    rows.push(
        data(
            "GET",
            &object,
            format!("{st}/buckets/ruled/objects/{mine}/note.txt"),
        )
        .label("the end user's")
        .read()
        .expect(&[EndUser], OK)
        .expect(&[Publishable], MISSING)
        .says(&[EndUser, Viewer], "my file"),
    );
    rows.push(
        data(
            "GET",
            &object,
            format!("{st}/buckets/ruled/objects/users/someone/secret.txt"),
        )
        .label("someone else's")
        .read()
        .expect(&ruled, MISSING)
        .says(&[Viewer], OWN_PRIVATE),
    );
    // A signed URL needs no credential and ignores any; moved to the other
    // project it is refused.
    rows.push(
        data("GET", &object, w.signed_url.clone())
            .label("a signed URL")
            .expect(&CREDS, OK)
            .says(&CREDS, SHARED_TEXT),
    );
    rows.push(
        data(
            "GET",
            &object,
            w.signed_url.replace(
                &format!("/projects/{own}/"),
                &format!("/projects/{}/", w.other),
            ),
        )
        .label("a signed URL, the other project's id")
        .expect(&CREDS, DENIED),
    );

    // Writes.
    rows.push(
        data(
            "PUT",
            &object,
            format!("{st}/buckets/private/objects/new.txt"),
        )
        .text("forged"),
    );
    rows.push(
        data(
            "PUT",
            &object,
            format!("{st}/buckets/private/objects/secret.txt"),
        )
        .label("over an object")
        .text("forged"),
    );
    // Create-only tells the caller nothing the read rule hides: the same
    // refusal over an object as over nothing.
    rows.push(
        data(
            "PUT",
            &object,
            format!("{st}/buckets/private/objects/secret.txt"),
        )
        .label("create only, over a hidden object")
        .header("if-none-match", "*")
        .text("forged"),
    );
    rows.push(
        data(
            "PUT",
            &object,
            format!("{st}/buckets/public/objects/hello.txt"),
        )
        .label("public")
        .text("defaced"),
    );
    rows.push(
        data(
            "PUT",
            &object,
            format!("{st}/buckets/ruled/objects/{mine}/new-{{unique}}.txt"),
        )
        .label("the end user's")
        .text("mine")
        .expect(&[EndUser], OK)
        .changes(&[EndUser]),
    );
    rows.push(
        data(
            "PUT",
            &object,
            format!("{st}/buckets/ruled/objects/users/someone/secret.txt"),
        )
        .label("someone else's")
        .text("taken"),
    );
    rows.push(
        data(
            "DELETE",
            &object,
            format!("{st}/buckets/private/objects/secret.txt"),
        )
        .expect(&ruled, MISSING),
    );
    rows.push(
        data(
            "DELETE",
            &object,
            format!("{st}/buckets/public/objects/hello.txt"),
        )
        .label("public"),
    );
    rows.push(
        data(
            "DELETE",
            &object,
            format!("{st}/buckets/ruled/objects/{mine}/doomed.txt"),
        )
        .label("the end user's")
        .expect(&[EndUser], NO_CONTENT)
        .expect(&[Publishable], MISSING)
        .changes(&[EndUser]),
    );
    rows.push(
        data(
            "DELETE",
            &object,
            format!("{st}/buckets/ruled/objects/users/someone/secret.txt"),
        )
        .label("someone else's")
        .expect(&ruled, MISSING),
    );

    // Copies and moves: read the source, write the target, as the caller
    // may.
    let (copy, moved) = (format!("{b}/copy"), format!("{b}/move"));
    rows.push(
        data("POST", &copy, format!("{st}/buckets/private/copy"))
            .json(json!({ "from": "secret.txt", "to": "copied.txt" }))
            .expect(&ruled, MISSING),
    );
    rows.push(
        data("POST", &copy, format!("{st}/buckets/public/copy"))
            .label("public, into a private bucket")
            .json(json!({ "from": "hello.txt", "to": "stolen.txt", "to_bucket": "private" })),
    );
    rows.push(
        data("POST", &copy, format!("{st}/buckets/ruled/copy"))
            .label("the end user's")
            .json(json!({ "from": format!("{mine}/note.txt"), "to": format!("{mine}/copy-{{unique}}.txt") }))
            .expect(&[EndUser], OK)
            .expect(&[Publishable], MISSING)
            .changes(&[EndUser]),
    );
    rows.push(
        data("POST", &copy, format!("{st}/buckets/ruled/copy"))
            .label("someone else's")
            .json(json!({ "from": "users/someone/secret.txt", "to": format!("{mine}/stolen.txt") }))
            .expect(&ruled, MISSING),
    );
    rows.push(
        data("POST", &moved, format!("{st}/buckets/private/move"))
            .json(json!({ "from": "secret.txt", "to": "moved.txt" }))
            .expect(&ruled, MISSING),
    );
    rows.push(
        data("POST", &moved, format!("{st}/buckets/ruled/move"))
            .label("the end user's")
            .json(
                json!({ "from": format!("{mine}/movable.txt"), "to": format!("{mine}/moved.txt") }),
            )
            .expect(&[EndUser], OK)
            .expect(&[Publishable], MISSING)
            .changes(&[EndUser])
            // The end user has just moved it: the viewer reads it missing.
            .viewer(MISSING),
    );
    rows.push(
        data("POST", &moved, format!("{st}/buckets/ruled/move"))
            .label("someone else's")
            .json(json!({ "from": "users/someone/secret.txt", "to": format!("{mine}/stolen.txt") }))
            .expect(&ruled, MISSING),
    );

    // Multipart uploads: the `w` right only (end users upload in one
    // request, where the write rule sees the size).
    let up = format!("{st}/buckets/private/uploads");
    let id = &w.upload_id;
    rows.push(data("GET", &format!("{b}/uploads"), up.clone()));
    rows.push(
        data("POST", &format!("{b}/uploads"), up.clone()).json(json!({ "key": "forged.bin" })),
    );
    rows.push(data(
        "GET",
        &format!("{b}/uploads/{{upload}}/parts"),
        format!("{up}/{id}/parts"),
    ));
    rows.push(
        data(
            "PUT",
            &format!("{b}/uploads/{{upload}}/parts/{{number}}"),
            format!("{up}/{id}/parts/2"),
        )
        .text("forged"),
    );
    rows.push(
        data(
            "POST",
            &format!("{b}/uploads/{{upload}}/complete"),
            format!("{up}/{id}/complete"),
        )
        .json(json!({ "parts": [{ "number": 1, "etag": w.part_etag }] })),
    );
    rows.push(data(
        "DELETE",
        &format!("{b}/uploads/{{upload}}"),
        format!("{up}/{id}"),
    ));

    // S3 credentials: admins only.
    let c = "/api/v1/projects/{project}/storage/credentials";
    let credentials = format!("/api/v1/projects/{own}/storage/credentials");
    rows.push(data("GET", c, credentials.clone()));
    rows.push(data("POST", c, credentials.clone()));
    rows.push(data(
        "DELETE",
        &format!("{c}/{{access_key}}"),
        format!("{credentials}/{}", w.s3_key),
    ));

    // ---- Functions ----
    // Managing functions (deploy, inspect, roll back, delete, logs) needs
    // the admin right: a viewer, keys and end users are refused.
    let m = "/api/v1/projects/{project}/functions";
    let fns = format!("/api/v1/projects/{own}/functions");
    let f = format!("{m}/{{name}}");
    let hello = format!("{fns}/hello");
    let deployment = json!({
        "files": [{ "path": "index.js", "code": "export default async () => new Response(\"forged\");\n" }],
        "auth": "public",
    });
    let mut named = deployment.clone();
    named["name"] = json!("forged");
    rows.push(data("GET", m, fns.clone()));
    rows.push(data("POST", m, fns.clone()).json(named));
    rows.push(
        data("POST", m, fns.clone())
            .label("over an existing function")
            .json(json!({ "name": "hello", "files": deployment["files"], "auth": "public" })),
    );
    rows.push(data(
        "GET",
        &format!("{m}/logs"),
        format!("{fns}/logs?function=hello"),
    ));
    rows.push(
        data(
            "GET",
            &format!("{m}/logs/stream"),
            format!("{fns}/logs/stream"),
        )
        .via(Via::Sse),
    );
    rows.push(data("GET", &f, hello.clone()));
    rows.push(data("GET", &f, format!("{fns}/nope")).label("a missing function"));
    rows.push(data("DELETE", &f, hello.clone()));
    rows.push(
        data(
            "POST",
            &format!("{f}/versions"),
            format!("{hello}/versions"),
        )
        .json(deployment.clone()),
    );
    rows.push(data(
        "GET",
        &format!("{f}/versions"),
        format!("{hello}/versions"),
    ));
    rows.push(data(
        "GET",
        &format!("{f}/source"),
        format!("{hello}/source?version=1"),
    ));
    rows.push(
        data(
            "POST",
            &format!("{f}/rollback"),
            format!("{hello}/rollback"),
        )
        .json(json!({ "version": 1 })),
    );

    // Calling functions: `hello` (`project`) answers any credential of the
    // project, on every method, with or without a path; another project's
    // credentials are refused, no credential is unauthenticated.
    let p = functions::PREFIX;
    let call = format!("/functions/v1/projects/{own}/fn");
    let (base, rest) = (
        format!("{p}/fn/{{name}}"),
        format!("{p}/fn/{{name}}/{{*path}}"),
    );
    let callers = [Publishable, EndUser, Viewer];
    let greeting = format!("hi from {own}");
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        for (pattern, path) in [
            (&base, format!("{call}/hello")),
            (&rest, format!("{call}/hello/a/b?c=d")),
        ] {
            rows.push(
                data(method, pattern, path)
                    .expect(&callers, OK)
                    .says(&callers, &greeting),
            );
        }
    }
    // Only those who may call learn whether a function exists.
    rows.push(
        data("GET", &base, format!("{call}/nope"))
            .label("a missing function")
            .expect(&callers, MISSING),
    );
    // A public function: anyone, without a credential or with one of the
    // project; an invalid credential is still refused, and so is another
    // project's (the function must not take it for one of its own).
    rows.push(
        data("GET", &base, format!("{call}/open"))
            .label("public")
            .expect(&[None], OK)
            .says(&[None], "open to anyone")
            .expect(&callers, OK)
            .says(&[EndUser], "open to end_user"),
    );
    // For end users of the project only.
    rows.push(
        data("GET", &base, format!("{call}/mine"))
            .label("end users'")
            .expect(&[EndUser], OK)
            .says(&[EndUser], &format!("yours, {eu}")),
    );
    // The other project's function: its own credentials call it, the own
    // project's are refused.
    rows.push(
        data(
            "GET",
            &base,
            format!("/functions/v1/projects/{}/fn/hello", w.other),
        )
        .label("the other project's")
        .expect(&[OtherSecret, OtherUser, Stranger], OK)
        .says(
            &[OtherSecret, OtherUser, Stranger],
            &format!("hi from {}", w.other),
        ),
    );

    // Streams again, the credential in the query string as browsers send it.
    let streams: Vec<Row> = rows
        .iter()
        .filter(|r| matches!(r.via, Via::Sse | Via::WebSocket))
        .map(|r| r.clone().query_token())
        .collect();
    rows.extend(streams);
    rows
}

// ---------------------------------------------------------------- the test

/// Where `after` differs from `before`: JSON pointers and both values.
fn differences(before: &Value, after: &Value) -> Vec<String> {
    fn walk(at: String, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for key in keys {
                    let p = x.get(key).unwrap_or(&Value::Null);
                    let q = y.get(key).unwrap_or(&Value::Null);
                    walk(format!("{at}/{key}"), p, q, out);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(format!("{at}/{i}"), p, q, out);
                }
            }
            (a, b) if a != b => {
                let short = |v: &Value| v.to_string().chars().take(300).collect::<String>();
                out.push(format!("{at}: {} → {}", short(a), short(b)));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(String::new(), before, after, &mut out);
    out
}

/// Every route the platform serves, from the functions that build its
/// routers.
fn every_route() -> Vec<Route> {
    let mut routes = kit::server_routes();
    routes.extend_from_slice(platform::api().list());
    routes.extend_from_slice(buncast::api().list());
    routes.extend_from_slice(kvmanager::api().list());
    routes.extend_from_slice(bunkms::api().list());
    routes.extend_from_slice(bundoc::api().list());
    routes.extend_from_slice(storage::api().list());
    routes.extend_from_slice(functions::api().list());
    routes.extend_from_slice(functions::trigger().list());
    routes
}

/// Whether `path` is an instance of `pattern` (`{name}` matches one
/// segment, a last `{*name}` one or more).
fn instance_of(path: &str, pattern: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (a, b): (Vec<_>, Vec<_>) = (path.split('/').collect(), pattern.split('/').collect());
    let rest = b.last().is_some_and(|last| last.starts_with("{*"));
    (a.len() == b.len() || (rest && a.len() > b.len()))
        && a.iter().zip(&b).all(|(segment, want)| {
            (want.starts_with('{') && want.ends_with('}') && !segment.is_empty()) || segment == want
        })
        && (!rest || a[b.len() - 1..].iter().all(|segment| !segment.is_empty()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_credential_it_must() {
    let started = Instant::now();
    let platform = harness::whole_platform_in_process(OPEN).await;
    // The services the matrix reads routes from are the services the
    // platform assembles (a new service brings its rows).
    let services: BTreeSet<&str> = platform.services.iter().map(String::as_str).collect();
    assert_eq!(
        services,
        BTreeSet::from([
            "platform",
            "bun-kms",
            "buncast",
            "bunder-manager",
            "bundoc",
            "event-bus",
            "storage",
            "functions"
        ]),
        "a service without rows in the isolation matrix"
    );
    // And they are every service the all-in-one runs.
    let catalogue: BTreeSet<&str> = bunbase_shells::all_in_one::catalogue_prefixes()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .collect();
    let assembled: BTreeSet<&str> = platform.prefixes.iter().copied().collect();
    assert_eq!(
        assembled, catalogue,
        "the all-in-one runs a service the isolation matrix does not assemble"
    );
    // WebSocket upgrades need a socket: the same router, served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let shutdown = Shutdown::new();
    let server = tokio::spawn(kit::serve_app(
        listener,
        platform.router.clone(),
        Vec::new(),
        ServerConfig::default(),
        shutdown.clone(),
    ));
    let world = build_world(&platform, format!("ws://{address}")).await;
    let rows = rows(&world);

    // Every route has rows, every row a route, every path its pattern.
    let routes = every_route();
    let mut problems = Vec::new();
    let covered: BTreeSet<&Route> = rows.iter().map(|r| &r.route).collect();
    for route in &routes {
        if !covered.contains(route) {
            problems.push(format!(
                "route {route} has no row in the isolation matrix (tests/integration/isolation.rs)"
            ));
        }
    }
    for row in &rows {
        if !routes.contains(&row.route) {
            problems.push(format!("row {} names a route no router serves", row.name()));
        }
        if !instance_of(&row.path, &row.route.path) {
            problems.push(format!("row {}: {} is not its route", row.name(), row.path));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let mut failures = Vec::new();
    let mut calls = 0;
    let (mut own_state, mut other_state) = world.state().await;
    for row in &rows {
        for cred in CREDS {
            let want = row.expect[cred.index()];
            let answer = world.call(row, cred).await;
            calls += 1;
            let name = format!("{} as {}", row.name(), cred.name());
            let mut fail = |what: String| failures.push(format!("{name}: {what}"));
            if answer.status != want.status() {
                fail(format!(
                    "status {}, expected {}: {}",
                    answer.status,
                    want.status(),
                    answer.text
                ));
            }
            if let Expect::Error(code) = want {
                let got = answer.json()["error"]["code"].clone();
                if got != json!(code.as_str()) {
                    fail(format!("code {got}, expected {code:?}: {}", answer.text));
                }
            }
            for (_, fragment) in row.says.iter().filter(|(c, _)| *c == cred) {
                if !answer.text.contains(fragment.as_str()) {
                    fail(format!("the answer lacks {fragment:?}: {}", answer.text));
                }
            }
            if answer.text.contains(OTHER_PRIVATE) && !cred.of_other() {
                fail(format!("the other project's data: {}", answer.text));
            }
            if answer.text.contains(OWN_PRIVATE) && cred != Viewer {
                fail(format!("the own project's private data: {}", answer.text));
            }
            let (own_after, other_after) = world.state().await;
            let may_change = answer.status < 300 && row.changes.contains(&cred);
            if own_after != own_state && !may_change {
                fail(format!(
                    "the own project changed: {}",
                    differences(&own_state, &own_after).join("; ")
                ));
            }
            if other_after != other_state {
                fail(format!(
                    "the other project changed: {}",
                    differences(&other_state, &other_after).join("; ")
                ));
            }
            (own_state, other_state) = (own_after, other_after);
        }
    }
    // The other project's credentials left no trace in the own project's
    // audit log, and the log is whole.
    let kms = format!("/kms/v1/projects/{}", world.own);
    let mut after = String::new();
    let mut end_user_audited = false;
    loop {
        let page = send(
            &world.app,
            "GET",
            &format!("{kms}/audit?limit=1000{after}"),
            &bearer(&world.owner),
            Option::None,
        )
        .await
        .json();
        for record in page["records"].as_array().into_iter().flatten() {
            let caller = record["caller"].as_str().unwrap_or_default();
            end_user_audited |= caller == world.end_user_id;
            if world.foreign_callers.iter().any(|c| c == caller) {
                failures.push(format!(
                    "the own project's audit log names {caller}: {record}"
                ));
            }
        }
        match page["next_after"].as_u64() {
            Some(next) => after = format!("&after={next}"),
            Option::None => break,
        }
    }
    assert!(
        end_user_audited,
        "the own end user's calls are not in the audit log"
    );
    let verified = send(
        &world.app,
        "GET",
        &format!("{kms}/audit/verify"),
        &bearer(&world.owner),
        Option::None,
    )
    .await
    .json();
    if verified["valid"] != json!(true) {
        failures.push(format!("the own project's audit log: {verified}"));
    }
    shutdown.trigger();
    platform.shutdown.trigger();
    let _ = server.await;
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "isolation matrix: {} routes, {} rows, {calls} calls, {:?}",
        routes.len(),
        rows.len(),
        started.elapsed()
    );
}

//! The Platform API over HTTP: accounts, projects, keys, end users, and the
//! attacks that must fail (bad input, forged or replayed tokens, other
//! projects' credentials, revoked keys, deleted projects).

use bunbase_core::auth::ratelimit::Rate;
use bunbase_tests::harness;
use bunbase_tests::scenario::{InProcess, Runner, scenario};
use serde_json::{Value, json};

use crate::support::unique;

const PW: &str = "correct horse battery";
const OPEN: Rate = Rate {
    burst: 10_000,
    per_minute: 1_000_000,
};

/// The Platform API in process.
struct Api {
    /// The public URL tokens name as their issuer.
    url: String,
    app: InProcess,
}

impl Api {
    async fn start(rate: Rate) -> Api {
        let (url, app) = harness::platform_in_process(rate).await;
        Api { url, app }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        apikey: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some(key) = apikey {
            headers.push(("apikey".to_string(), key.to_string()));
        }
        if body.is_some() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        let answer = self
            .app
            .send(
                method,
                path,
                token,
                &headers,
                body.map(|b| b.as_bytes().to_vec()),
            )
            .await;
        let value = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).unwrap_or(json!({ "raw": answer.text() }))
        };
        if answer.status >= 400 {
            assert!(
                value["error"]["code"].is_string(),
                "error in the platform shape: {value}"
            );
        }
        (answer.status, value)
    }

    async fn signup(&self, email: &str) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/auth/signup",
                None,
                None,
                Some(&json!({ "email": email, "password": PW }).to_string()),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

fn email() -> String {
    format!("{}@example.com", unique("dev"))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn account_flows_and_bad_input() {
    let api = Api::start(OPEN).await;
    let address = email();
    let tokens = api.signup(&address.to_uppercase()).await;
    assert!(
        tokens["account"]["id"]
            .as_str()
            .unwrap()
            .starts_with("acc_")
    );
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();

    let (status, me) = api
        .call("GET", "/api/v1/auth/me", Some(access), None, None)
        .await;
    assert_eq!(
        (status, me["email"].as_str()),
        (200, Some(address.as_str())),
        "email stored normalised"
    );

    let long = format!("{}@example.com", "a".repeat(300));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "duplicate (other case)",
            json!({"email": address.to_uppercase(), "password": PW}).to_string(),
            409,
            "already_exists",
        ),
        (
            "not an email",
            json!({"email": "nope", "password": PW}).to_string(),
            400,
            "invalid_input",
        ),
        (
            "SQL-ish email",
            json!({"email": "'; DROP TABLE accounts; --", "password": PW}).to_string(),
            400,
            "invalid_input",
        ),
        (
            "over-long email",
            json!({"email": long, "password": PW}).to_string(),
            400,
            "invalid_input",
        ),
        (
            "short password",
            json!({"email": email(), "password": "short"}).to_string(),
            400,
            "invalid_input",
        ),
        (
            "over-long password",
            json!({"email": email(), "password": "p".repeat(5000)}).to_string(),
            400,
            "invalid_input",
        ),
        (
            "unknown field",
            json!({"email": email(), "password": PW, "admin": true}).to_string(),
            400,
            "invalid_input",
        ),
        (
            "wrong type",
            json!({"email": 42, "password": PW}).to_string(),
            400,
            "invalid_input",
        ),
        (
            "malformed JSON",
            "{\"email\":".to_string(),
            400,
            "invalid_input",
        ),
    ];
    Runner::on(api.app.clone())
        .run(
            cases
                .into_iter()
                .map(|(name, body, status, expected)| {
                    scenario(name, "POST", "/api/v1/auth/signup")
                        .header("content-type", "application/json")
                        .body(body)
                        .fails(status, expected)
                })
                .collect(),
        )
        .await;

    // Sign-in: wrong password and unknown email answer the same.
    let (s1, wrong) = api
        .call(
            "POST",
            "/api/v1/auth/signin",
            None,
            None,
            Some(&json!({"email": address, "password": "wrong password"}).to_string()),
        )
        .await;
    let (s2, unknown) = api
        .call(
            "POST",
            "/api/v1/auth/signin",
            None,
            None,
            Some(&json!({"email": email(), "password": PW}).to_string()),
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong, unknown);

    // Refresh rotates; replaying a spent token revokes the session.
    let (_, signed_in) = api
        .call(
            "POST",
            "/api/v1/auth/signin",
            None,
            None,
            Some(&json!({"email": address, "password": PW}).to_string()),
        )
        .await;
    let refresh = signed_in["refresh_token"].as_str().unwrap();
    let body = json!({ "refresh_token": refresh }).to_string();
    let (status, rotated) = api
        .call("POST", "/api/v1/auth/refresh", None, None, Some(&body))
        .await;
    assert_eq!(status, 200);
    let (status, replay) = api
        .call("POST", "/api/v1/auth/refresh", None, None, Some(&body))
        .await;
    assert_eq!((status, code(&replay)), (401, "unauthenticated"));
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            None,
            Some(&json!({"refresh_token": rotated["refresh_token"]}).to_string()),
        )
        .await;
    assert_eq!(status, 401, "the whole family is revoked");
    let (status, _) = api
        .call(
            "GET",
            "/api/v1/auth/me",
            rotated["access_token"].as_str(),
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
    for garbage in ["", "bb_rt_nope", "not a token"] {
        let (status, _) = api
            .call(
                "POST",
                "/api/v1/auth/refresh",
                None,
                None,
                Some(&json!({"refresh_token": garbage}).to_string()),
            )
            .await;
        assert_eq!(status, 401);
    }

    // Sign out ends the session; everywhere ends all.
    let (status, _) = api
        .call("POST", "/api/v1/auth/signout", Some(access), None, None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call("GET", "/api/v1/auth/me", Some(access), None, None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let api = Api::start(OPEN).await;
    let tokens = api.signup(&email()).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(claims["exp"].as_u64().unwrap() + 86_400);
    let forged_payload = B64.encode(claims.to_string());
    let none_header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let wrong_kid = B64.encode(br#"{"alg":"EdDSA","typ":"JWT","kid":"k0000000000000000"}"#);
    let foreign = Api::start(OPEN).await.signup(&email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = [
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
        ),
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "unknown kid",
            format!("{wrong_kid}.{}.{}", parts[1], parts[2]),
        ),
        ("another server's token", foreign),
        ("truncated", access[..access.len() - 5].to_string()),
        ("garbage", "x.y.z".to_string()),
    ];
    Runner::on(api.app.clone())
        .run(
            forged
                .into_iter()
                .map(|(name, token)| {
                    scenario(name, "GET", "/api/v1/auth/me")
                        .token(&token)
                        .fails(401, "unauthenticated")
                })
                .collect(),
        )
        .await;
    // The genuine token verifies with a standard JWT library and our JWKS.
    let (_, jwks) = api
        .call("GET", "/api/.well-known/jwks.json", None, None, None)
        .await;
    let header = jsonwebtoken::decode_header(&access).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header.kid.clone().unwrap().as_str())
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["bunbase"]);
    validation.set_issuer(&[format!("{}/api", api.url)]);
    assert!(jsonwebtoken::decode::<Value>(&access, &key, &validation).is_ok());
}

#[tokio::test]
async fn projects_keys_and_end_users_stay_in_their_project() {
    let api = Api::start(OPEN).await;
    let owner = api.signup(&email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let stranger = api.signup(&email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, a) = api
        .call(
            "POST",
            "/api/v1/projects",
            Some(&owner),
            None,
            Some(r#"{"name":"Alpha Shop"}"#),
        )
        .await;
    assert_eq!(status, 201);
    let a = a["id"].as_str().unwrap().to_string();
    let (_, b) = api
        .call(
            "POST",
            "/api/v1/projects",
            Some(&stranger),
            None,
            Some(r#"{"name":"Beta"}"#),
        )
        .await;
    let b = b["id"].as_str().unwrap().to_string();

    // Another account's project: not found, everywhere.
    let elsewhere = [
        ("GET", format!("/api/v1/projects/{b}"), None),
        (
            "PATCH",
            format!("/api/v1/projects/{b}"),
            Some(r#"{"name":"x"}"#),
        ),
        ("DELETE", format!("/api/v1/projects/{b}"), None),
        ("GET", format!("/api/v1/projects/{b}/members"), None),
        ("GET", format!("/api/v1/projects/{b}/keys"), None),
        (
            "POST",
            format!("/api/v1/projects/{b}/keys"),
            Some(r#"{"name":"k","kind":"secret"}"#),
        ),
    ];
    let mut scenarios: Vec<_> = elsewhere
        .into_iter()
        .map(|(method, path, body)| {
            let s = scenario(format!("{method} {path}"), method, path)
                .token(&owner)
                .fails(404, "not_found");
            match body {
                Some(body) => s.body(body),
                None => s,
            }
        })
        .collect();
    for body in [
        r#"{"name":""}"#,
        r#"{"name":"x","region":"eu"}"#,
        r#"{"title":"x"}"#,
    ] {
        scenarios.push(
            scenario(body, "POST", "/api/v1/projects")
                .token(&owner)
                .body(body)
                .fails(400, "invalid_input"),
        );
    }
    Runner::on(api.app.clone()).run(scenarios).await;
    let (status, _) = api.call("GET", "/api/v1/projects", None, None, None).await;
    assert_eq!(status, 401);

    // Keys: shown once, bound to their project.
    let (status, secret) = api
        .call(
            "POST",
            &format!("/api/v1/projects/{a}/keys"),
            Some(&owner),
            None,
            Some(r#"{"name":"server","kind":"secret"}"#),
        )
        .await;
    assert_eq!(status, 201);
    let sk = secret["key"].as_str().unwrap().to_string();
    assert!(sk.starts_with("bb_sk_"));
    let (_, publishable) = api
        .call(
            "POST",
            &format!("/api/v1/projects/{a}/keys"),
            Some(&owner),
            None,
            Some(r#"{"name":"web","kind":"publishable"}"#),
        )
        .await;
    let pk = publishable["key"].as_str().unwrap().to_string();
    let (status, bad_kind) = api
        .call(
            "POST",
            &format!("/api/v1/projects/{a}/keys"),
            Some(&owner),
            None,
            Some(r#"{"name":"x","kind":"root"}"#),
        )
        .await;
    assert_eq!((status, code(&bad_kind)), (400, "invalid_input"));
    let (_, listed) = api
        .call(
            "GET",
            &format!("/api/v1/projects/{a}/keys"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert!(
        !listed.to_string().contains(&sk),
        "keys are never listed in full"
    );

    // Data services accept the secret key for its project only.
    let publish = |project: String, credential: String| {
        let api = &api;
        async move {
            api.call(
                "POST",
                &format!("/events/v1/projects/{project}/topics/t"),
                Some(&credential),
                None,
                Some(r#"{"data":1}"#),
            )
            .await
            .0
        }
    };
    assert_eq!(publish(a.clone(), sk.clone()).await, 201);
    assert_eq!(publish(b.clone(), sk.clone()).await, 403);
    assert_eq!(
        publish(a.clone(), pk.clone()).await,
        403,
        "publishable keys grant nothing by themselves"
    );
    assert_eq!(
        publish(a.clone(), owner.clone()).await,
        201,
        "members act by role"
    );
    assert_eq!(publish(a.clone(), stranger.clone()).await, 403);

    // End users, with the publishable key.
    let user_body = json!({ "email": "user@example.com", "password": PW }).to_string();
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/projects/{a}/auth/signup"),
            None,
            None,
            Some(&user_body),
        )
        .await;
    assert_eq!(status, 401, "needs the project's key");
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/projects/{b}/auth/signup"),
            None,
            Some(&pk),
            Some(&user_body),
        )
        .await;
    assert_eq!(status, 403, "another project's key");
    let (status, user) = api
        .call(
            "POST",
            &format!("/api/v1/projects/{a}/auth/signup"),
            None,
            Some(&pk),
            Some(&user_body),
        )
        .await;
    assert_eq!(status, 201);
    let user_token = user["access_token"].as_str().unwrap().to_string();
    let (status, me) = api
        .call(
            "GET",
            &format!("/api/v1/projects/{a}/auth/me"),
            Some(&user_token),
            Some(&pk),
            None,
        )
        .await;
    assert_eq!((status, me["kind"].as_str()), (200, Some("end_user")));
    let (status, _) = api
        .call("GET", "/api/v1/auth/me", Some(&user_token), None, None)
        .await;
    assert_eq!(status, 403, "an end user is not an account");
    let (status, _) = api
        .call("GET", "/api/v1/projects", Some(&user_token), None, None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        publish(a.clone(), user_token.clone()).await,
        403,
        "end users get only what rules grant"
    );

    // Admin listing: owners and secret keys, not end users or strangers.
    let (status, users) = api
        .call(
            "GET",
            &format!("/api/v1/projects/{a}/users"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, users["users"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, _) = api
        .call(
            "GET",
            &format!("/api/v1/projects/{a}/users"),
            Some(&sk),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    for token in [&user_token, &stranger, &pk] {
        let (status, _) = api
            .call(
                "GET",
                &format!("/api/v1/projects/{a}/users"),
                Some(token),
                None,
                None,
            )
            .await;
        assert_eq!(status, 403);
    }

    // Revoked keys and deleted projects stop working.
    let key_id = secret["id"].as_str().unwrap();
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/v1/projects/{a}/keys/{key_id}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(publish(a.clone(), sk.clone()).await, 401);
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/v1/projects/{a}"),
            Some(&owner),
            None,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call(
            "GET",
            &format!("/api/v1/projects/{a}/auth/me"),
            Some(&user_token),
            Some(&pk),
            None,
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(publish(a.clone(), owner.clone()).await, 403);
}

#[tokio::test]
async fn sign_in_is_rate_limited_with_retry_after() {
    // Over a real socket: the limit keys on the peer address.
    let server = harness::start_platform(Rate {
        burst: 2,
        per_minute: 1,
    })
    .await;
    let http = reqwest::Client::new();
    let address = email();
    let body = json!({ "email": address, "password": PW }).to_string();
    let signed_up = http
        .post(format!("{}/api/v1/auth/signup", server.url))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), 201);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let response = http
            .post(format!("{}/api/v1/auth/signin", server.url))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|v| v.parse::<u64>().unwrap() >= 1));
}

/// An open stream ends (its last frame says `revoked`) soon after its
/// credential stops holding: a revoked key, a deleted project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_end_when_their_credential_is_revoked() {
    use crate::support::http;
    use futures_util::StreamExt;
    let server = harness::start_platform(OPEN).await;
    let base = server.url.clone();
    let client = http();
    let post = |path: String, token: Option<String>, body: Value| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut request = client.post(format!("{base}{path}")).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            assert!(status < 300, "POST {path}: {status} {body}");
            body
        }
    };
    let owner = post(
        "/api/v1/auth/signup".into(),
        None,
        json!({ "email": email(), "password": PW }),
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let project = |name: &'static str| {
        let post = &post;
        let owner = owner.clone();
        async move {
            let p = post(
                "/api/v1/projects".into(),
                Some(owner.clone()),
                json!({ "name": name }),
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_string();
            let key = post(
                format!("/api/v1/projects/{p}/keys"),
                Some(owner),
                json!({ "name": "server", "kind": "secret" }),
            )
            .await;
            (
                p,
                key["id"].as_str().unwrap().to_string(),
                key["key"].as_str().unwrap().to_string(),
            )
        }
    };
    let (revoked_project, key_id, key) = project("Revoked").await;
    let (deleted_project, _, deleted_key) = project("Deleted").await;
    let (kept_project, _, kept_key) = project("Kept").await;
    let open = |p: String, key: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let answer = client
                .get(format!("{base}/events/v1/projects/{p}/topics/t/subscribe"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 200);
            answer.bytes_stream()
        }
    };
    let mut revoked_stream = open(revoked_project.clone(), key.clone()).await;
    let mut deleted_stream = open(deleted_project.clone(), deleted_key).await;
    let mut kept_stream = open(kept_project, kept_key).await;
    // Reads until the stream ends; returns everything it sent.
    async fn until_end(
        stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    ) -> String {
        let mut text = String::new();
        let deadline = std::time::Duration::from_secs(15);
        let read = async {
            while let Some(Ok(chunk)) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        tokio::time::timeout(deadline, read)
            .await
            .expect("the stream ended in time");
        text
    }
    let answer = client
        .delete(format!(
            "{base}/api/v1/projects/{revoked_project}/keys/{key_id}"
        ))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let text = until_end(&mut revoked_stream).await;
    assert!(
        text.contains("event: closed") && text.contains("\"revoked\""),
        "{text}"
    );

    let answer = client
        .delete(format!("{base}/api/v1/projects/{deleted_project}"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let text = until_end(&mut deleted_stream).await;
    assert!(text.contains("\"revoked\""), "{text}");

    // A stream whose credential still holds stays open.
    let still_open = tokio::time::timeout(std::time::Duration::from_millis(2500), async {
        loop {
            match kept_stream.next().await {
                Some(Ok(chunk)) if String::from_utf8_lossy(&chunk).contains("closed") => break,
                Some(Ok(_)) => continue,
                _ => break,
            }
        }
    })
    .await;
    assert!(still_open.is_err(), "the valid stream was ended");
    server.shutdown.trigger();
}

/// The instance's administrator (the first account) makes accounts; others
/// cannot, and bad input makes nothing.
#[tokio::test]
async fn the_administrator_makes_accounts() {
    let api = Api::start(OPEN).await;
    let admin = api.signup(&email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = api.signup(&email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let made = email();
    let body = json!({ "email": made, "password": PW }).to_string();
    let (status, refused) = api
        .call("POST", "/api/v1/accounts", Some(&other), None, Some(&body))
        .await;
    assert_eq!((status, code(&refused)), (403, "permission_denied"));
    for bad in [
        json!({ "email": "not an email", "password": PW }),
        json!({ "email": made, "password": "short" }),
        json!({ "email": made, "password": PW, "role": "admin" }),
    ] {
        let (status, _) = api
            .call(
                "POST",
                "/api/v1/accounts",
                Some(&admin),
                None,
                Some(&bad.to_string()),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, created) = api
        .call("POST", "/api/v1/accounts", Some(&admin), None, Some(&body))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["id"].as_str().unwrap().starts_with("acc_"));
    let (status, _) = api
        .call("POST", "/api/v1/auth/signin", None, None, Some(&body))
        .await;
    assert_eq!(status, 200, "the new account signs in");
    let (status, taken) = api
        .call("POST", "/api/v1/accounts", Some(&admin), None, Some(&body))
        .await;
    assert_eq!((status, code(&taken)), (409, "already_exists"));
}

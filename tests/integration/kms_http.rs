//! BunKMS over HTTP: the whole key life cycle, a table of bad requests
//! (each answered clearly, none changing anything), project isolation.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bunbase_core::kms::adapters::memory::MemoryKms;
use bunbase_core::kms::master::MasterKey;
use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics};
use bunbase_tests::harness::{self, ALPHA, ALPHA_READER, BETA, Options, RunningServer};
use bunbase_tests::scenario::{Runner, Scenario, scenario};
use serde_json::{Value, json};

use crate::support::http;

fn kms() -> Kms {
    Kms::new(
        Arc::new(MemoryKms::new()),
        Arc::new(MasterKey::parse(&"42".repeat(32)).unwrap()),
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    )
}

async fn start() -> RunningServer {
    harness::start(Options {
        kms: Some(kms()),
        ..Options::default()
    })
    .await
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

async fn call(
    server: &RunningServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http()
        .request(
            method.parse().unwrap(),
            format!("{}/kms/v1/projects/{path}", server.url()),
        )
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_life_cycle_over_http() {
    let server = start().await;
    let (status, key) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys",
        Some(json!({"name": "orders", "purpose": "encrypt"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["algorithm"], "AES-256-GCM");
    let (_, sealed) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/orders/encrypt",
        Some(json!({"plaintext": b64(b"card 4242"), "context": b64(b"order=1")})),
    )
    .await;
    let ciphertext = sealed["ciphertext"].as_str().unwrap().to_string();
    let (_, rotated) = call(&server, ALPHA, "POST", "alpha/keys/orders/rotate", None).await;
    assert_eq!(rotated["primary_version"], 2);
    let (status, opened) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/orders/decrypt",
        Some(json!({"ciphertext": ciphertext, "context": b64(b"order=1")})),
    )
    .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["plaintext"], b64(b"card 4242"));
    assert_eq!(opened["version"], 1, "old versions keep decrypting");
    let (_, moved) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/orders/reencrypt",
        Some(json!({"ciphertext": ciphertext, "context": b64(b"order=1")})),
    )
    .await;
    assert_eq!(moved["version"], 2);
    let (_, dk) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/orders/datakey",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        STANDARD
            .decode(dk["plaintext"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let (_, again) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/orders/decrypt-datakey",
        Some(json!({"ciphertext": dk["ciphertext"]})),
    )
    .await;
    assert_eq!(again["plaintext"], dk["plaintext"]);

    call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys",
        Some(json!({"name": "signer", "purpose": "sign", "algorithm": "ECDSA-P256-SHA256"})),
    )
    .await;
    let (_, sig) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/signer/sign",
        Some(json!({"message": b64(b"m")})),
    )
    .await;
    let (_, ok) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/signer/verify",
        Some(json!({"message": b64(b"m"), "signature": sig["signature"]})),
    )
    .await;
    assert_eq!(ok["valid"], true);
    let (_, bad) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/signer/verify",
        Some(json!({"message": b64(b"n"), "signature": sig["signature"]})),
    )
    .await;
    assert_eq!(bad["valid"], false);
    call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys",
        Some(json!({"name": "mac", "purpose": "mac"})),
    )
    .await;
    let (_, tag) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/mac/mac",
        Some(json!({"message": b64(b"m")})),
    )
    .await;
    let (_, valid) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/mac/verify-mac",
        Some(json!({"message": b64(b"m"), "mac": tag["mac"]})),
    )
    .await;
    assert_eq!(valid["valid"], true);

    let (_, put) = call(
        &server,
        ALPHA,
        "PUT",
        "alpha/secrets/db",
        Some(json!({"value": "s3cr3t"})),
    )
    .await;
    assert_eq!(put["version"], 1);
    let (_, got) = call(&server, ALPHA, "GET", "alpha/secrets/db", None).await;
    assert_eq!(got["value"], "s3cr3t");
    let (_, list) = call(&server, ALPHA, "GET", "alpha/secrets", None).await;
    assert!(
        !list.to_string().contains("s3cr3t"),
        "lists never show values"
    );

    let (_, disabled) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/orders/schedule-deletion",
        Some(json!({"days": 7})),
    )
    .await;
    assert_eq!(disabled["state"], "pending_deletion");
    let (_, cancelled) = call(
        &server,
        ALPHA,
        "POST",
        "alpha/keys/orders/cancel-deletion",
        None,
    )
    .await;
    assert_eq!(cancelled["state"], "disabled");

    let (_, audit) = call(&server, ALPHA, "GET", "alpha/audit?limit=1000", None).await;
    let records = audit["records"].as_array().unwrap();
    assert!(records.len() >= 15, "{}", records.len());
    assert!(
        !audit.to_string().contains(&b64(b"card 4242")),
        "no plaintext in the audit"
    );
    let (_, verified) = call(&server, ALPHA, "GET", "alpha/audit/verify", None).await;
    assert_eq!(verified["valid"], true);
    assert_eq!(
        verified["records"].as_u64().unwrap() as usize,
        records.len()
    );
    server.shutdown.trigger();
}

/// A request to `/kms/v1/projects/{path}` as `token`: a refusal when
/// `code` is set, changing no key.
fn case(
    name: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
    code: &str,
) -> Scenario {
    let mut s = scenario(name, method, format!("/kms/v1/projects/{path}")).token(token);
    if let Some(body) = body {
        s = s.json(body);
    }
    if code.is_empty() {
        s.status(status)
    } else {
        s.fails(status, code)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_clearly() {
    let app = harness::in_process(Options {
        kms: Some(kms()),
        ..Options::default()
    })
    .await;
    // The keys as they are (refused operations are audited, so the audit
    // log is left out).
    let runner = Runner::new(app.router).state(|app| async move {
        let keys = app
            .expect("GET", "/kms/v1/projects/alpha/keys", ALPHA, None, 200)
            .await;
        let beta = app
            .expect("GET", "/kms/v1/projects/beta/keys", BETA, None, 200)
            .await;
        let secrets = app
            .expect("GET", "/kms/v1/projects/alpha/secrets", ALPHA, None, 200)
            .await;
        json!({ "alpha": keys, "beta": beta, "secrets": secrets })
    });
    let call =
        |token: &'static str, method: &'static str, path: &'static str, body: Option<Value>| {
            let app = runner.app().clone();
            async move {
                let answer = app
                    .call(method, &format!("/kms/v1/projects/{path}"), token, body)
                    .await;
                (answer.status, answer.json())
            }
        };
    call(
        ALPHA,
        "POST",
        "alpha/keys",
        Some(json!({"name": "enc", "purpose": "encrypt"})),
    )
    .await;
    call(
        ALPHA,
        "POST",
        "alpha/keys",
        Some(json!({"name": "sig", "purpose": "sign"})),
    )
    .await;
    call(
        ALPHA,
        "POST",
        "alpha/keys",
        Some(json!({"name": "off", "purpose": "encrypt"})),
    )
    .await;
    call(ALPHA, "POST", "alpha/keys/off/disable", None).await;
    call(
        BETA,
        "POST",
        "beta/keys",
        Some(json!({"name": "enc", "purpose": "encrypt"})),
    )
    .await;
    let (_, sealed) = call(
        ALPHA,
        "POST",
        "alpha/keys/enc/encrypt",
        Some(json!({"plaintext": b64(b"x"), "context": b64(b"c")})),
    )
    .await;
    let ct = sealed["ciphertext"].as_str().unwrap().to_string();
    let mut tampered = STANDARD.decode(&ct).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let tampered = b64(&tampered);
    let truncated = b64(&STANDARD.decode(&ct).unwrap()[..20]);
    let (_, before) = call(ALPHA, "GET", "alpha/audit/verify", None).await;
    let big = b64(&vec![0u8; 64 * 1024 + 1]);

    let cases = vec![
        case(
            "unknown purpose",
            ALPHA,
            "POST",
            "alpha/keys",
            Some(json!({"name": "k", "purpose": "hash"})),
            400,
            "invalid_input",
        ),
        case(
            "algorithm of another purpose",
            ALPHA,
            "POST",
            "alpha/keys",
            Some(json!({"name": "k", "purpose": "encrypt", "algorithm": "Ed25519"})),
            400,
            "invalid_input",
        ),
        case(
            "unknown algorithm",
            ALPHA,
            "POST",
            "alpha/keys",
            Some(json!({"name": "k", "purpose": "encrypt", "algorithm": "DES"})),
            400,
            "invalid_input",
        ),
        case(
            "bad key name",
            ALPHA,
            "POST",
            "alpha/keys",
            Some(json!({"name": "a b", "purpose": "encrypt"})),
            400,
            "invalid_input",
        ),
        case(
            "unknown field",
            ALPHA,
            "POST",
            "alpha/keys",
            Some(json!({"name": "k", "purpose": "encrypt", "x": 1})),
            400,
            "invalid_input",
        ),
        case(
            "duplicate key",
            ALPHA,
            "POST",
            "alpha/keys",
            Some(json!({"name": "enc", "purpose": "encrypt"})),
            409,
            "already_exists",
        ),
        case(
            "reader creates",
            ALPHA_READER,
            "POST",
            "alpha/keys",
            Some(json!({"name": "k", "purpose": "encrypt"})),
            403,
            "permission_denied",
        ),
        case(
            "reader encrypts",
            ALPHA_READER,
            "POST",
            "alpha/keys/enc/encrypt",
            Some(json!({"plaintext": b64(b"x")})),
            403,
            "permission_denied",
        ),
        case(
            "other project's key",
            BETA,
            "POST",
            "alpha/keys/enc/encrypt",
            Some(json!({"plaintext": b64(b"x")})),
            403,
            "permission_denied",
        ),
        case(
            "other project's ciphertext",
            BETA,
            "POST",
            "beta/keys/enc/decrypt",
            Some(json!({"ciphertext": ct, "context": b64(b"c")})),
            400,
            "invalid_input",
        ),
        case(
            "wrong context",
            ALPHA,
            "POST",
            "alpha/keys/enc/decrypt",
            Some(json!({"ciphertext": ct, "context": b64(b"d")})),
            400,
            "invalid_input",
        ),
        case(
            "missing context",
            ALPHA,
            "POST",
            "alpha/keys/enc/decrypt",
            Some(json!({"ciphertext": ct})),
            400,
            "invalid_input",
        ),
        case(
            "tampered ciphertext",
            ALPHA,
            "POST",
            "alpha/keys/enc/decrypt",
            Some(json!({"ciphertext": tampered, "context": b64(b"c")})),
            400,
            "invalid_input",
        ),
        case(
            "truncated ciphertext",
            ALPHA,
            "POST",
            "alpha/keys/enc/decrypt",
            Some(json!({"ciphertext": truncated, "context": b64(b"c")})),
            400,
            "invalid_input",
        ),
        case(
            "garbage base64",
            ALPHA,
            "POST",
            "alpha/keys/enc/decrypt",
            Some(json!({"ciphertext": "%%%"})),
            400,
            "invalid_input",
        ),
        case(
            "ciphertext of another key",
            ALPHA,
            "POST",
            "alpha/keys/sig/decrypt",
            Some(json!({"ciphertext": ct, "context": b64(b"c")})),
            400,
            "invalid_input",
        ),
        case(
            "signing key encrypts",
            ALPHA,
            "POST",
            "alpha/keys/sig/encrypt",
            Some(json!({"plaintext": b64(b"x")})),
            400,
            "invalid_input",
        ),
        case(
            "disabled key",
            ALPHA,
            "POST",
            "alpha/keys/off/encrypt",
            Some(json!({"plaintext": b64(b"x")})),
            409,
            "conflict",
        ),
        case(
            "missing key",
            ALPHA,
            "POST",
            "alpha/keys/nope/encrypt",
            Some(json!({"plaintext": b64(b"x")})),
            404,
            "not_found",
        ),
        case(
            "oversized plaintext",
            ALPHA,
            "POST",
            "alpha/keys/enc/encrypt",
            Some(json!({"plaintext": big})),
            413,
            "payload_too_large",
        ),
        case(
            "wrong field type",
            ALPHA,
            "POST",
            "alpha/keys/enc/encrypt",
            Some(json!({"plaintext": 5})),
            400,
            "invalid_input",
        ),
        case(
            "unknown action",
            ALPHA,
            "POST",
            "alpha/keys/enc/explode",
            Some(json!({})),
            404,
            "not_found",
        ),
        case(
            "deletion too soon",
            ALPHA,
            "POST",
            "alpha/keys/enc/schedule-deletion",
            Some(json!({"days": 1})),
            400,
            "invalid_input",
        ),
        case(
            "cancel what is not scheduled",
            ALPHA,
            "POST",
            "alpha/keys/enc/cancel-deletion",
            None,
            409,
            "conflict",
        ),
        case(
            "tiny data key",
            ALPHA,
            "POST",
            "alpha/keys/enc/datakey",
            Some(json!({"bytes": 4})),
            400,
            "invalid_input",
        ),
        case(
            "secret with both values",
            ALPHA,
            "PUT",
            "alpha/secrets/s",
            Some(json!({"value": "a", "value_base64": "YQ=="})),
            400,
            "invalid_input",
        ),
        case(
            "reader reads a secret value",
            ALPHA_READER,
            "GET",
            "alpha/secrets/s",
            None,
            403,
            "permission_denied",
        ),
        case(
            "missing secret",
            ALPHA,
            "GET",
            "alpha/secrets/none",
            None,
            404,
            "not_found",
        ),
        case(
            "invalid project",
            ALPHA,
            "GET",
            "Bad_Project/keys",
            None,
            400,
            "invalid_input",
        ),
    ];
    runner.run(cases).await;
    // Nothing changed: the same keys, enc still at version 1 and enabled.
    let (_, keys) = call(ALPHA, "GET", "alpha/keys", None).await;
    let names: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["enc", "off", "sig"]);
    let (_, enc) = call(ALPHA, "GET", "alpha/keys/enc", None).await;
    assert_eq!(
        (enc["primary_version"].clone(), enc["state"].clone()),
        (json!(1), json!("enabled"))
    );
    // Refused operations are audited too, and the chain still verifies.
    let (_, after) = call(ALPHA, "GET", "alpha/audit/verify", None).await;
    assert_eq!(after["valid"], true);
    assert!(after["records"].as_u64() > before["records"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typed_client() {
    let server = start().await;
    let kms = bunbase_client::Client::new(server.url())
        .unwrap()
        .with_token(ALPHA)
        .kms();
    let key = kms
        .create_key("alpha", "docs", "encrypt", None)
        .await
        .unwrap();
    assert_eq!(
        (key.algorithm.as_str(), key.primary_version),
        ("AES-256-GCM", 1)
    );
    let sealed = kms
        .encrypt("alpha", "docs", b"hello", b"ctx")
        .await
        .unwrap();
    assert_eq!(
        kms.decrypt("alpha", "docs", &sealed.ciphertext, b"ctx")
            .await
            .unwrap(),
        b"hello"
    );
    let err = kms
        .decrypt("alpha", "docs", &sealed.ciphertext, b"other")
        .await
        .unwrap_err();
    assert_eq!(err.code(), bunbase_core::ErrorCode::InvalidInput);
    assert_eq!(
        kms.manage("alpha", "docs", "rotate")
            .await
            .unwrap()
            .primary_version,
        2
    );
    let moved = kms
        .reencrypt("alpha", "docs", &sealed.ciphertext, b"ctx", None)
        .await
        .unwrap();
    assert_eq!(moved.version, 2);
    let data_key = kms.data_key("alpha", "docs", b"row 7").await.unwrap();
    assert_eq!(
        kms.decrypt("alpha", "docs", &data_key.sealed.ciphertext, b"row 7")
            .await
            .unwrap(),
        data_key.plaintext
    );
    kms.create_key("alpha", "signer", "sign", None)
        .await
        .unwrap();
    let sig = kms.sign("alpha", "signer", b"m").await.unwrap();
    assert!(kms.verify("alpha", "signer", b"m", &sig).await.unwrap());
    assert!(!kms.verify("alpha", "signer", b"x", &sig).await.unwrap());
    kms.create_key("alpha", "mac", "mac", None).await.unwrap();
    let tag = kms.mac("alpha", "mac", b"m").await.unwrap();
    assert!(kms.verify_mac("alpha", "mac", b"m", &tag).await.unwrap());
    assert_eq!(kms.put_secret("alpha", "bin", &[0, 255]).await.unwrap(), 1);
    assert_eq!(
        kms.secret("alpha", "bin", None).await.unwrap(),
        (vec![0, 255], 1)
    );
    assert_eq!(kms.secrets("alpha").await.unwrap()[0].name, "bin");
    assert!(kms.delete_secret("alpha", "bin").await.unwrap());
    assert_eq!(kms.keys("alpha").await.unwrap().len(), 3);
    assert_eq!(
        kms.schedule_deletion("alpha", "mac", Some(7))
            .await
            .unwrap()
            .state,
        bunbase_core::kms::KeyState::PendingDeletion
    );
    assert!(matches!(kms.verify_audit("alpha").await.unwrap(), Ok(n) if n >= 16));
    server.shutdown.trigger();
}

/// Core's `Keys` in-process and over HTTP with a platform token: the same
/// data keys, usable in any project, and a sealed key from one project
/// never opens in another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_local_and_remote_with_a_platform_token() {
    use bunbase_core::ProjectId;
    use bunbase_core::auth::StaticTokens;
    use bunbase_core::kms::{Keys, LocalKeys};

    use bunbase_shells::assembly::{self, Host};
    use bunbase_shells::bunkms::KmsModule;

    let kms = kms();
    let platform = "platform-token-0000000000001";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // bun-kms as deployed: only the platform token.
    let mut host = Host::new(std::env::temp_dir());
    host.accept(Arc::new(
        StaticTokens::parse(&format!("*:rwa:{platform}")).unwrap(),
    ));
    let module = KmsModule::Given(kms.clone());
    let assembly = assembly::assemble(&mut host, &[&module], &|_| true)
        .await
        .unwrap();
    let shutdown = host.shutdown.clone();
    let server = tokio::spawn(assembly::serve(
        listener,
        assembly,
        host,
        Default::default(),
    ));
    let remote = bunbase_client::RemoteKeys::new(&url, platform).unwrap();
    let local = LocalKeys::new(kms, "bundoc");
    let (alpha, beta) = (
        ProjectId::new("alpha").unwrap(),
        ProjectId::new("beta").unwrap(),
    );
    for keys in [&remote as &dyn Keys, &local as &dyn Keys] {
        for project in [&alpha, &beta] {
            keys.ensure_key(project, "fields").await.unwrap();
            keys.ensure_key(project, "fields").await.unwrap();
        }
        let made = keys
            .generate_data_key(&alpha, "fields", b"orders")
            .await
            .unwrap();
        assert_eq!(made.plaintext.len(), 32);
        let opened = keys
            .decrypt_data_key(&alpha, &made.sealed, b"orders")
            .await
            .unwrap();
        assert_eq!(opened, made.plaintext);
        assert!(
            keys.decrypt_data_key(&beta, &made.sealed, b"orders")
                .await
                .is_err()
        );
        assert!(
            keys.decrypt_data_key(&alpha, &made.sealed, b"users")
                .await
                .is_err()
        );
    }
    // What one side sealed, the other opens: they are the same KMS.
    let made = remote
        .generate_data_key(&beta, "fields", b"c")
        .await
        .unwrap();
    assert_eq!(
        local
            .decrypt_data_key(&beta, &made.sealed, b"c")
            .await
            .unwrap(),
        made.plaintext
    );
    shutdown.trigger();
    let _ = server.await;
}

//! Functions' bindings over HTTP (`RemotePlatform`, what the `functions`
//! container uses in docker compose) against real services, with the
//! platform token: every binding in project alpha answers as
//! `LocalPlatform` answers (the same shapes, `null`/`false` for what is
//! missing, `not_found` for a missing collection or bucket), and a
//! function of project beta sees none of alpha's data.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bunbase_client::{BucketSettings, Client};
use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::docs::DocsLimits;
use bunbase_core::docs::adapters::MemoryDocStore;
use bunbase_core::functions::platform::{LocalPlatform, MAX_STORAGE_READ, Platform};
use bunbase_core::kms::adapters::memory::MemoryKms;
use bunbase_core::kms::master::MasterKey;
use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics};
use bunbase_core::kv::adapters::memory::MemoryKv;
use bunbase_core::kv::{Engine, EngineConfig, KvLimits};
use bunbase_core::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
use bunbase_core::storage::{Storage, StorageLimits, StorageMetrics, StorageSecret};
use bunbase_core::{Error, ErrorCode, ProjectId};
use bunbase_shells::functions::RemotePlatform;
use bunbase_tests::harness::{self, ALPHA, BETA, Options, PLATFORM, RunningServer};
use serde_json::{Value, json};

/// A function's credential, as the runtime makes it.
fn function(project: &str) -> Principal {
    Principal {
        subject: "function:hello".into(),
        kind: PrincipalKind::SecretKey,
        project: ProjectId::new(project).unwrap(),
        rights: Rights::READ_WRITE,
    }
}

struct Setup {
    server: RunningServer,
    storage: Storage,
    remote: RemotePlatform,
    alpha: Client,
    beta: Client,
}

/// Bundoc, Bunder Manager, Storage and BunKMS on one server (Buncast is
/// always there), accepting the platform token; project alpha has a
/// collection `notes`, a bucket `files` and a secret `api_key`, project
/// beta a collection `notes`.
async fn setup() -> Setup {
    let storage = Storage::new(
        Arc::new(MemoryMeta::new()),
        Arc::new(MemoryBlobs::new()),
        StorageLimits::default(),
        StorageMetrics::unregistered(),
        StorageSecret::new(&[3; 32]),
    );
    let kms = Kms::new(
        Arc::new(MemoryKms::new()),
        Arc::new(MasterKey::parse(&"42".repeat(32)).unwrap()),
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    );
    let kv = MemoryKv::new(Arc::new(Engine::new(EngineConfig::default())));
    let server = harness::start(Options {
        kv: Some((Arc::new(kv), KvLimits::default())),
        docs: Some((Arc::new(MemoryDocStore::new()), DocsLimits::default())),
        storage: Some(storage.clone()),
        kms: Some(kms),
        ..Options::default()
    })
    .await;
    let alpha = Client::new(server.url()).unwrap().with_token(ALPHA);
    let beta = Client::new(server.url()).unwrap().with_token(BETA);
    for (client, project) in [(&alpha, "alpha"), (&beta, "beta")] {
        client
            .collections(project)
            .create(&json!({"name": "notes"}))
            .await
            .unwrap();
    }
    alpha
        .storage()
        .create_bucket("alpha", "files", &BucketSettings::default())
        .await
        .unwrap();
    alpha
        .kms()
        .put_secret("alpha", "api_key", b"s3cr3t")
        .await
        .unwrap();
    // The URL as compose gives it, with a trailing slash.
    let remote = RemotePlatform::new(&format!("{}/", server.url()), PLATFORM).unwrap();
    Setup {
        server,
        storage,
        remote,
        alpha,
        beta,
    }
}

async fn call(p: &dyn Platform, who: &Principal, method: &str, args: Value) -> Value {
    p.call(who, method, args)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

async fn refused(p: &dyn Platform, who: &Principal, method: &str, args: Value) -> Error {
    match p.call(who, method, args).await {
        Ok(v) => panic!("{method} answered {v}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binding_works_over_http_and_stays_in_its_project() {
    let Setup {
        server,
        storage,
        remote,
        alpha,
        beta,
    } = setup().await;
    let p: &dyn Platform = &remote;
    let (fa, fb) = (function("alpha"), function("beta"));

    // ---- docs ----
    let created = call(
        p,
        &fa,
        "docs.create",
        json!({"collection": "notes", "data": {"title": "hi"}, "id": "n1"}),
    )
    .await;
    assert_eq!(created["_id"], "n1");
    assert_eq!(created["_version"], 1);
    let got = call(
        p,
        &fa,
        "docs.get",
        json!({"collection": "notes", "id": "n1"}),
    )
    .await;
    assert_eq!(got, created);
    let missing = call(
        p,
        &fa,
        "docs.get",
        json!({"collection": "notes", "id": "n2"}),
    )
    .await;
    assert_eq!(missing, Value::Null);
    let err = refused(
        p,
        &fa,
        "docs.get",
        json!({"collection": "nope", "id": "n1"}),
    )
    .await;
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    let updated = call(
        p,
        &fa,
        "docs.update",
        json!({"collection": "notes", "id": "n1", "data": {"done": true}}),
    )
    .await;
    assert_eq!(
        (&updated["title"], &updated["done"], &updated["_version"]),
        (&json!("hi"), &json!(true), &json!(2))
    );
    let page = call(
        p,
        &fa,
        "docs.query",
        json!({"collection": "notes", "query": {"filter": {"done": true}}}),
    )
    .await;
    assert_eq!(page["documents"], json!([updated]));
    assert!(page.get("next_cursor").is_some(), "{page}");
    let err = refused(
        p,
        &fa,
        "docs.query",
        json!({"collection": "notes", "query": {"limit": "x"}}),
    )
    .await;
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    // Beta's own collection of that name holds none of it.
    let other = call(
        p,
        &fb,
        "docs.get",
        json!({"collection": "notes", "id": "n1"}),
    )
    .await;
    assert_eq!(other, Value::Null);
    let other = call(p, &fb, "docs.query", json!({"collection": "notes"})).await;
    assert_eq!(other["documents"], json!([]));
    let other = call(
        p,
        &fb,
        "docs.delete",
        json!({"collection": "notes", "id": "n1"}),
    )
    .await;
    assert_eq!(other, json!(false));
    assert!(
        alpha
            .docs_in("alpha", "notes")
            .get("n1")
            .await
            .unwrap()
            .is_some(),
        "beta's delete left alpha's document"
    );
    let deleted = call(
        p,
        &fa,
        "docs.delete",
        json!({"collection": "notes", "id": "n1"}),
    )
    .await;
    assert_eq!(deleted, json!(true));
    let again = call(
        p,
        &fa,
        "docs.delete",
        json!({"collection": "notes", "id": "n1"}),
    )
    .await;
    assert_eq!(again, json!(false));
    let err = refused(
        p,
        &fa,
        "docs.delete",
        json!({"collection": "nope", "id": "n1"}),
    )
    .await;
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");

    // ---- kv ----
    let set = call(
        p,
        &fa,
        "kv.set",
        json!({"key": "greeting", "value": "hi", "ttl": 60}),
    )
    .await;
    assert_eq!(set, json!(true));
    assert_eq!(
        call(p, &fa, "kv.get", json!({"key": "greeting"})).await,
        json!("hi")
    );
    let ttl = alpha.kv().ttl("alpha", "greeting").await.unwrap();
    assert!(ttl.is_some_and(|t| t.as_secs() <= 60), "{ttl:?}");
    call(p, &fa, "kv.set", json!({"key": "obj", "value": {"n": 1}})).await;
    assert_eq!(
        call(p, &fa, "kv.get", json!({"key": "obj"})).await,
        json!("{\"n\":1}")
    );
    assert_eq!(
        call(p, &fa, "kv.incr", json!({"key": "hits", "by": 5})).await,
        json!(5)
    );
    assert_eq!(
        call(p, &fa, "kv.incr", json!({"key": "hits", "by": -2})).await,
        json!(3)
    );
    assert_eq!(
        call(p, &fa, "kv.get", json!({"key": "missing"})).await,
        Value::Null
    );
    alpha
        .kv()
        .put("alpha", "binary", vec![0xff_u8, 0xfe])
        .await
        .unwrap();
    let err = refused(p, &fa, "kv.get", json!({"key": "binary"})).await;
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    assert_eq!(
        call(p, &fb, "kv.get", json!({"key": "greeting"})).await,
        Value::Null
    );
    assert_eq!(
        call(p, &fb, "kv.delete", json!({"key": "greeting"})).await,
        json!(false)
    );
    assert_eq!(
        call(p, &fa, "kv.delete", json!({"key": "greeting"})).await,
        json!(true)
    );
    assert_eq!(
        call(p, &fa, "kv.get", json!({"key": "greeting"})).await,
        Value::Null
    );

    // ---- events: over HTTP without a bus, on the bus with one ----
    let published = call(
        p,
        &fa,
        "events.publish",
        json!({"topic": "orders", "data": {"id": 7}}),
    )
    .await;
    assert!(
        published["seq"].as_u64().is_some_and(|s| s >= 1),
        "{published}"
    );
    assert_eq!(published["topic"], "orders");
    let topics = alpha.events().topics("alpha").await.unwrap();
    assert!(
        topics.iter().any(|t| t.topic.to_string() == "orders"),
        "{topics:?}"
    );
    assert!(beta.events().topics("beta").await.unwrap().is_empty());
    let err = refused(p, &fa, "events.publish", json!({"topic": "kv", "data": 1})).await;
    assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
    let on_bus = RemotePlatform::new(&server.url(), PLATFORM)
        .unwrap()
        .with_events(Some(server.events.clone()));
    let published = call(
        &on_bus,
        &fa,
        "events.publish",
        json!({"topic": "orders", "data": 2}),
    )
    .await;
    assert_eq!(published["topic"], "orders");
    assert!(
        published["seq"].as_u64().is_some_and(|s| s >= 2),
        "{published}"
    );

    // ---- storage ----
    let put = call(
        p,
        &fa,
        "storage.put",
        json!({"bucket": "files", "key": "dir/hello.txt", "body": STANDARD.encode("hello"), "content_type": "text/plain"}),
    )
    .await;
    assert_eq!(put["size"], 5);
    assert_eq!(put["key"], "dir/hello.txt");
    // The one difference from in process: the service saw the platform
    // token's principal, not function:hello.
    assert!(
        put["owner"]
            .as_str()
            .is_some_and(|o| o.starts_with("service:*:")),
        "{put}"
    );
    let etag = put["etag"].as_str().unwrap().to_string();
    let get = json!({"bucket": "files", "key": "dir/hello.txt"});
    let got = call(p, &fa, "storage.get", get.clone()).await;
    assert_eq!(
        got,
        json!({"size": 5, "content_type": "text/plain", "etag": etag, "body": STANDARD.encode("hello")})
    );
    // Exactly what the in-process platform answers.
    let local = LocalPlatform {
        storage: Some(storage.clone()),
        ..LocalPlatform::default()
    };
    assert_eq!(call(&local, &fa, "storage.get", get.clone()).await, got);
    let missing = call(
        p,
        &fa,
        "storage.get",
        json!({"bucket": "files", "key": "nope"}),
    )
    .await;
    assert_eq!(missing, Value::Null);
    let err = refused(
        p,
        &fa,
        "storage.get",
        json!({"bucket": "other", "key": "k"}),
    )
    .await;
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");

    let signed = call(
        p,
        &fa,
        "storage.sign",
        json!({"bucket": "files", "key": "dir/hello.txt", "method": "get", "expires": 60}),
    )
    .await;
    let url = signed["url"].as_str().unwrap();
    assert!(
        url.starts_with("/storage/v1/projects/alpha/buckets/files/objects/dir/hello.txt?"),
        "{url}"
    );
    assert_eq!(signed["method"], "GET");
    assert!(signed["expires_at"].as_u64().is_some(), "{signed}");
    let fetched = reqwest::get(format!("{}{url}", server.url()))
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.text().await.unwrap(), "hello");

    // Too large to read into a function.
    let big = vec![0u8; MAX_STORAGE_READ as usize + 1];
    alpha
        .storage()
        .put("alpha", "files", "big", big, &Default::default())
        .await
        .unwrap();
    let err = refused(
        p,
        &fa,
        "storage.get",
        json!({"bucket": "files", "key": "big"}),
    )
    .await;
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge, "{err}");

    // Beta: alpha's bucket is not there; its own bucket of that name is
    // empty.
    let err = refused(p, &fb, "storage.get", get.clone()).await;
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    beta.storage()
        .create_bucket("beta", "files", &BucketSettings::default())
        .await
        .unwrap();
    assert_eq!(call(p, &fb, "storage.get", get.clone()).await, Value::Null);

    // ---- secrets ----
    let values = remote.secrets(&fa, &["api_key".into()]).await.unwrap();
    assert_eq!(values.get("api_key").map(String::as_str), Some("s3cr3t"));
    let err = remote
        .secrets(&fa, &["api_key".into(), "nope".into()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.to_string().contains("nope"), "{err}");
    let err = remote.secrets(&fb, &["api_key".into()]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");

    // ---- the function's own rights hold, whatever the token's ----
    let reader = Principal {
        rights: Rights::READ,
        ..function("alpha")
    };
    let err = refused(p, &reader, "kv.set", json!({"key": "k", "value": "v"})).await;
    assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
    assert_eq!(
        alpha.kv().get("alpha", "k").await.unwrap(),
        None,
        "a refused write must not reach the service"
    );
}

#[tokio::test]
async fn a_token_the_services_refuse_is_unauthenticated() {
    let server = harness::start(Options {
        kv: Some((
            Arc::new(MemoryKv::new(Arc::new(
                Engine::new(EngineConfig::default()),
            ))),
            KvLimits::default(),
        )),
        ..Options::default()
    })
    .await;
    let remote = RemotePlatform::new(&server.url(), "not-a-configured-token-0001").unwrap();
    let err = refused(&remote, &function("alpha"), "kv.get", json!({"key": "k"})).await;
    assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
}

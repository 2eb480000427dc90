//! Deleting a project removes its data in every service of the process:
//! KV keys, retained events, collections and documents, secrets, buckets
//! and objects (their bytes too), functions with their versions and
//! invocation log; its KMS keys enter their scheduled deletion. Another
//! project keeps everything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bunbase_core::ProjectId;
use bunbase_core::auth::adapters::memory::MemoryStore;
use bunbase_core::auth::password::Passwords;
use bunbase_core::auth::ratelimit::Rate;
use bunbase_core::auth::{IdentityConfig, Principal};
use bunbase_core::docs::adapters::MemoryDocStore;
use bunbase_core::docs::{DocStore, DocsLimits};
use bunbase_core::events::Events;
use bunbase_core::functions::{FunctionName, Functions, LogQuery};
use bunbase_core::kms::adapters::memory::MemoryKms;
use bunbase_core::kms::master::MasterKey;
use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics, KmsStore};
use bunbase_core::kv::adapters::memory::MemoryKv;
use bunbase_core::kv::{Engine, EngineConfig, KvLimits, KvStore};
use bunbase_core::storage::adapters::memory::{MemoryBlobs, MemoryMeta};
use bunbase_core::storage::{MetaStore, Storage, StorageLimits, StorageMetrics, StorageSecret};
use bunbase_shells::assembly::{self, Host, ServiceModule};
use bunbase_shells::buncast::BuncastModule;
use bunbase_shells::bundoc::DocsModule;
use bunbase_shells::bunkms::KmsModule;
use bunbase_shells::functions::{FunctionsArgs, FunctionsModule};
use bunbase_shells::identity::{IdentityModule, IdentitySource, PlatformModule};
use bunbase_shells::kit::ServerConfig;
use bunbase_shells::kvmanager::KvModule;
use bunbase_shells::storage::StorageModule;
use bunbase_tests::scenario::InProcess;
use serde_json::{Value, json};

use crate::support::unique;

type Holdings = (
    usize,
    u64,
    usize,
    usize,
    usize,
    usize,
    u64,
    usize,
    usize,
    usize,
);

struct Platform {
    app: InProcess,
    kv: Arc<dyn KvStore>,
    docs: Arc<dyn DocStore>,
    kms: Arc<dyn KmsStore>,
    events: Events,
    files: Arc<MemoryMeta>,
    blobs: Arc<MemoryBlobs>,
    functions: Arc<Functions>,
}

async fn platform() -> Platform {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new(Arc::new(Engine::new(
        EngineConfig::default(),
    ))));
    let docs: Arc<dyn DocStore> = Arc::new(MemoryDocStore::new());
    let kms_store: Arc<dyn KmsStore> = Arc::new(MemoryKms::new());
    let kms = Kms::new(
        kms_store.clone(),
        Arc::new(MasterKey::parse(&"42".repeat(32)).unwrap()),
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    );
    let identity = PlatformModule(IdentityModule {
        store: IdentitySource::Given(Arc::new(MemoryStore::new())),
        passwords: Passwords::with_params(256, 1, 1).unwrap(),
        config: IdentityConfig {
            issuer: "http://cascade.test/api".into(),
            rate: Rate {
                burst: 1000,
                per_minute: 100_000,
            },
            ..IdentityConfig::default()
        },
        cache_url: None,
    });
    let kms = KmsModule::Given(kms);
    let kv_module = KvModule::on(kv.clone(), KvLimits::default());
    let docs_module = DocsModule::on(docs.clone(), DocsLimits::default());
    let (files, blobs) = (Arc::new(MemoryMeta::new()), Arc::new(MemoryBlobs::new()));
    let storage_module = StorageModule::Given(Storage::new(
        files.clone(),
        blobs.clone(),
        StorageLimits::default(),
        StorageMetrics::unregistered(),
        StorageSecret::new(&[4; 32]),
    ));
    let functions_module = FunctionsModule(FunctionsArgs {
        functions_database_url: Some("memory".into()),
        functions_bundles_url: Some("memory".into()),
        ..FunctionsArgs::defaults()
    });
    let mut host = Host::new(std::env::temp_dir());
    let modules: [&dyn ServiceModule; 7] = [
        &identity,
        &kms,
        &BuncastModule,
        &kv_module,
        &docs_module,
        &storage_module,
        &functions_module,
    ];
    let assembly = assembly::assemble(&mut host, &modules, &|_| true)
        .await
        .unwrap();
    let events = host.events().await.unwrap();
    let functions = host.provided::<Arc<Functions>>().unwrap();
    let router = assembly.app(&host, &ServerConfig::default()).unwrap();
    Platform {
        app: InProcess::new(router),
        kv,
        docs,
        kms: kms_store,
        events,
        files,
        blobs,
        functions,
    }
}

impl Platform {
    async fn call(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let body = (!body.is_null()).then(|| body.to_string().into_bytes());
        let headers = [("content-type".to_string(), "application/json".to_string())];
        let answer = self
            .app
            .send(method, path, Some(token), &headers, body)
            .await;
        assert!(
            answer.status < 300,
            "{method} {path}: {} {}",
            answer.status,
            answer.text()
        );
        answer.json()
    }

    /// A project with a secret key, and something in every service.
    async fn filled_project(&self, owner: &str, name: &str) -> (ProjectId, String) {
        let id = self
            .call("POST", "/api/v1/projects", owner, json!({ "name": name }))
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let key = self
            .call(
                "POST",
                &format!("/api/v1/projects/{id}/keys"),
                owner,
                json!({"name": "server", "kind": "secret"}),
            )
            .await["key"]
            .as_str()
            .unwrap()
            .to_string();
        let p = |path: &str| format!("/{}", path.replace("{p}", &id));
        self.call("PUT", &p("kv/v1/projects/{p}/keys/a"), &key, json!("x"))
            .await;
        self.call(
            "POST",
            &p("events/v1/projects/{p}/topics/t"),
            &key,
            json!({"data": {"n": 1}}),
        )
        .await;
        self.call(
            "POST",
            &p("bundoc/v1/projects/{p}/collections"),
            &key,
            json!({"name": "notes"}),
        )
        .await;
        self.call(
            "POST",
            &p("bundoc/v1/projects/{p}/collections/notes/documents"),
            &key,
            json!({"_id": "d1", "text": "hello"}),
        )
        .await;
        self.call(
            "POST",
            &p("kms/v1/projects/{p}/keys"),
            &key,
            json!({"name": "k", "purpose": "encrypt"}),
        )
        .await;
        self.call(
            "PUT",
            &p("kms/v1/projects/{p}/secrets/db"),
            &key,
            json!({"value": "s3cr3t"}),
        )
        .await;
        self.call(
            "POST",
            &p("storage/v1/projects/{p}/buckets"),
            &key,
            json!({"name": "files"}),
        )
        .await;
        let put = self
            .app
            .send(
                "PUT",
                &p("storage/v1/projects/{p}/buckets/files/objects/a.txt"),
                Some(&key),
                &[("content-length".to_string(), "5".to_string())],
                Some(b"hello".to_vec()),
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
        self.call(
            "POST",
            &p("api/v1/projects/{p}/functions"),
            &key,
            json!({
                "name": "hello",
                "files": [{ "path": "index.js", "code": "export default async () => new Response(\"hi\");\n" }],
            }),
        )
        .await;
        let ran = self
            .app
            .send(
                "GET",
                &p("functions/v1/projects/{p}/fn/hello"),
                Some(&key),
                &[],
                None,
            )
            .await;
        assert_eq!(ran.status, 200, "{}", ran.text());
        let project = ProjectId::new(id).unwrap();
        // The invocation's record is written after the answer.
        let started = Instant::now();
        while self.invocations(&project).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the invocation was not recorded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (project, key)
    }

    /// The project's invocation records.
    async fn invocations(&self, project: &ProjectId) -> usize {
        let query = LogQuery {
            limit: 1000,
            ..LogQuery::default()
        };
        let store = self.functions.store();
        store.invocations(project, &query).await.unwrap().len()
    }

    /// What each service holds for `project`: (kv keys, retained events —
    /// the published one and the KV and Bundoc change events —,
    /// collections, live KMS keys, secrets, buckets, objects, functions,
    /// versions of `hello`, invocation records).
    async fn holdings(&self, project: &ProjectId) -> Holdings {
        let kv = self
            .kv
            .scan(project, b"", 0, 1000)
            .await
            .unwrap()
            .keys
            .len();
        let admin = Principal {
            subject: "test".into(),
            kind: bunbase_core::auth::PrincipalKind::Service,
            project: project.clone(),
            rights: bunbase_core::auth::Rights::ALL,
        };
        let events = self
            .events
            .topics(&admin, project)
            .await
            .unwrap()
            .iter()
            .map(|t| t.retained)
            .sum();
        let collections = self.docs.collections(project).await.unwrap().len();
        let keys = self
            .kms
            .keys(project)
            .await
            .unwrap()
            .iter()
            .filter(|k| k.state != bunbase_core::kms::KeyState::PendingDeletion)
            .count();
        let secrets = self.kms.secrets(project).await.unwrap().len();
        let buckets = self.files.buckets(project).await.unwrap().len();
        let objects = self.files.usage(project).await.unwrap().objects;
        let store = self.functions.store();
        let functions = store.functions(project).await.unwrap().len();
        let hello = FunctionName::new("hello").unwrap();
        let versions = store.versions(project, &hello).await.unwrap().len();
        let invocations = self.invocations(project).await;
        (
            kv,
            events,
            collections,
            keys,
            secrets,
            buckets,
            objects,
            functions,
            versions,
            invocations,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_removes_its_data_in_every_service() {
    let platform = platform().await;
    let owner = platform
        .call(
            "POST",
            "/api/v1/auth/signup",
            "",
            json!({"email": format!("{}@example.com", unique("owner")), "password": "correct horse battery"}),
        )
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (doomed, doomed_key) = platform.filled_project(&owner, "Doomed").await;
    let (kept, _) = platform.filled_project(&owner, "Kept").await;
    assert_eq!(
        platform.holdings(&doomed).await,
        (1, 3, 1, 1, 1, 1, 1, 1, 1, 1)
    );
    platform
        .call(
            "DELETE",
            &format!("/api/v1/projects/{doomed}"),
            &owner,
            Value::Null,
        )
        .await;
    assert_eq!(
        platform.holdings(&doomed).await,
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    );
    assert_eq!(
        platform.blobs.len(),
        1,
        "only the kept project's bytes remain"
    );
    let scheduled = platform.kms.keys(&doomed).await.unwrap();
    assert_eq!(scheduled.len(), 1, "the key waits for its deletion date");
    assert!(scheduled[0].deletion_at.is_some());
    assert_eq!(
        platform.holdings(&kept).await,
        (1, 3, 1, 1, 1, 1, 1, 1, 1, 1)
    );
    // The deleted project's key no longer opens anything.
    let answer = platform
        .app
        .send(
            "GET",
            &format!("/kv/v1/projects/{doomed}/keys/a"),
            Some(&doomed_key),
            &[],
            None,
        )
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    // The kept project's function still answers its owner.
    let answer = platform
        .app
        .send(
            "GET",
            &format!("/api/v1/projects/{kept}/functions/hello"),
            Some(&owner),
            &[],
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

//! BunAuth over gRPC: the remote verifier other services use in compose,
//! its cache and stampede protection, and error codes across the wire.

use std::sync::Arc;
use std::time::Duration;

use bunbase_client::grpc::bunauth::bun_auth_client::BunAuthClient;
use bunbase_client::grpc::bunauth::{Credentials, Empty, ProjectRef, ResolveRequest};
use bunbase_client::grpc::{RemoteVerifier, RemoteVerifierConfig, error_from_status};
use bunbase_core::auth::ratelimit::Rate;
use bunbase_core::auth::{Access, PrincipalKind, TokenVerifier};
use bunbase_core::{ErrorCode, ProjectId};
use bunbase_shells::kit::Shutdown;
use bunbase_tests::harness;

async fn start_grpc(identity: Arc<bunbase_core::auth::Identity>) -> (String, Shutdown) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let registry = prometheus::Registry::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        bunbase_shells::bunauth::serve_grpc(listener, identity, &registry, s).await
    });
    (url, shutdown)
}

/// The platform, its BunAuth gRPC server, and a client of it.
async fn platform_over_grpc() -> (
    harness::PlatformServer,
    String,
    Shutdown,
    BunAuthClient<tonic::transport::Channel>,
) {
    let platform = harness::start_platform(Rate {
        burst: 1000,
        per_minute: 100_000,
    })
    .await;
    let (url, grpc) = start_grpc(platform.identity.clone()).await;
    let client = BunAuthClient::connect(url.clone()).await.unwrap();
    (platform, url, grpc, client)
}

/// A request carrying an account's access token.
fn as_account<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// An account signed up over gRPC.
async fn sign_up(
    client: &mut BunAuthClient<tonic::transport::Channel>,
    email: &str,
) -> bunbase_client::grpc::bunauth::Tokens {
    client
        .sign_up(Credentials {
            email: email.into(),
            password: "correct horse battery".into(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// A project of the account and a secret key of it, made over gRPC.
async fn project_with_key(
    client: &mut BunAuthClient<tonic::transport::Channel>,
    token: &str,
    name: &str,
) -> (
    bunbase_client::grpc::bunauth::Project,
    bunbase_client::grpc::bunauth::CreatedKey,
) {
    let project = client
        .create_project(as_account(
            token,
            bunbase_client::grpc::bunauth::CreateProjectRequest { name: name.into() },
        ))
        .await
        .unwrap()
        .into_inner();
    let key = client
        .create_key(as_account(
            token,
            bunbase_client::grpc::bunauth::CreateKeyRequest {
                project: project.id.clone(),
                name: "server".into(),
                kind: "secret".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (project, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_verifier_resolves_caches_and_shares_calls() {
    let (_platform, url, _grpc, mut client) = platform_over_grpc().await;
    // An account, a project and a secret key, made over gRPC.
    let tokens = sign_up(&mut client, "grpc@example.com").await;
    let (project, key) = project_with_key(&mut client, &tokens.access_token, "Grpc").await;
    let project_id = ProjectId::new(project.id.clone()).unwrap();

    let verifier = Arc::new(RemoteVerifier::new(&url, RemoteVerifierConfig::default()).unwrap());
    // Fifty concurrent checks of one credential: one call.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let verifier = verifier.clone();
        let secret = key.secret.clone();
        let project = project_id.clone();
        tasks.push(tokio::spawn(async move {
            verifier.verify(&secret, &project).await
        }));
    }
    for task in tasks {
        let principal = task.await.unwrap().unwrap();
        assert_eq!(principal.kind, PrincipalKind::SecretKey);
        assert!(principal.authorize(&project_id, Access::Write).is_ok());
    }
    assert_eq!(verifier.calls(), 1, "concurrent checks share one call");
    verifier.verify(&key.secret, &project_id).await.unwrap();
    assert_eq!(verifier.calls(), 1, "then the cache answers");

    // Account tokens resolve per project, by role.
    let owner = verifier
        .verify(&tokens.access_token, &project_id)
        .await
        .unwrap();
    assert_eq!(owner.kind, PrincipalKind::Account);
    assert!(owner.rights.admin);
    let elsewhere = ProjectId::new("someone-elses").unwrap();
    let denied = verifier
        .verify(&tokens.access_token, &elsewhere)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);

    // Refusals keep their codes across the wire, and are cached briefly.
    let calls = verifier.calls();
    for _ in 0..3 {
        let err = verifier
            .verify("bb_sk_not-a-real-key", &project_id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
    }
    assert_eq!(verifier.calls(), calls + 1);

    // Raw status mapping: invalid project id → invalid_input.
    let status = client
        .resolve(ResolveRequest {
            credential: key.secret.clone(),
            project: "Not A Project".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error_from_status(&status).code(), ErrorCode::InvalidInput);
    // Account calls without a token are refused.
    let status = client
        .list_keys(ProjectRef {
            project: project.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        error_from_status(&status).code(),
        ErrorCode::Unauthenticated
    );
    let jwks = client.jwks(Empty {}).await.unwrap().into_inner();
    assert!(jwks.jwks_json.contains("Ed25519"));
}

#[tokio::test]
async fn remote_verifier_reports_an_unreachable_bunauth() {
    let port = bunbase_tests::servers::free_port();
    let verifier = RemoteVerifier::new(
        &format!("http://127.0.0.1:{port}"),
        RemoteVerifierConfig {
            timeout: Duration::from_millis(500),
            ..RemoteVerifierConfig::default()
        },
    )
    .unwrap();
    let err = verifier
        .verify("bb_sk_anything", &ProjectId::new("p").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(RemoteVerifier::new("not a url", RemoteVerifierConfig::default()).is_err());
}

/// A data service in its own process (as in compose) learns of a deleted
/// project from BunAuth and removes its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_elsewhere_removes_a_deleted_projects_data() {
    use bunbase_core::kv::adapters::memory::MemoryKv;
    use bunbase_core::kv::{Engine, EngineConfig, KvLimits, KvStore};
    use bunbase_shells::assembly::{self, Host, ServiceModule};
    use bunbase_shells::kit::ServerConfig;
    use bunbase_shells::kvmanager::KvModule;
    use bunbase_tests::scenario::InProcess;

    let (platform, url, _grpc, mut client) = platform_over_grpc().await;
    let tokens = sign_up(&mut client, "elsewhere@example.com").await;
    let mut project_ids = Vec::new();
    let mut secrets = Vec::new();
    for name in ["Doomed", "Kept"] {
        let (project, key) = project_with_key(&mut client, &tokens.access_token, name).await;
        project_ids.push(ProjectId::new(project.id).unwrap());
        secrets.push(key.secret);
    }

    // Bunder Manager alone, resolving credentials at BunAuth.
    let store: Arc<dyn KvStore> = Arc::new(MemoryKv::new(Arc::new(Engine::new(
        EngineConfig::default(),
    ))));
    let mut host = Host::new(std::env::temp_dir());
    let remote = Arc::new(RemoteVerifier::new(&url, RemoteVerifierConfig::default()).unwrap());
    host.accept(remote.clone());
    host.follow_deletions_from(remote);
    host.deletion_poll = Duration::from_millis(100);
    let kv = KvModule::on(store.clone(), KvLimits::default());
    let modules: [&dyn ServiceModule; 1] = [&kv];
    let assembly = assembly::assemble(&mut host, &modules, &|_| true)
        .await
        .unwrap();
    let app = InProcess::new(assembly.app(&host, &ServerConfig::default()).unwrap());
    for (project, secret) in project_ids.iter().zip(&secrets) {
        let answer = app
            .send(
                "PUT",
                &format!("/kv/v1/projects/{project}/keys/k"),
                Some(secret),
                &[],
                Some(b"v".to_vec()),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    client
        .delete_project(as_account(
            &tokens.access_token,
            ProjectRef {
                project: project_ids[0].to_string(),
            },
        ))
        .await
        .unwrap();
    let keys = |project: ProjectId| {
        let store = store.clone();
        async move { store.scan(&project, b"", 0, 100).await.unwrap().keys.len() }
    };
    let mut removed = false;
    for _ in 0..50 {
        if keys(project_ids[0].clone()).await == 0 {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(removed, "the deleted project's keys were never removed");
    assert_eq!(
        keys(project_ids[1].clone()).await,
        1,
        "the other project keeps its keys"
    );
    host.shutdown.trigger();
    platform.shutdown.trigger();
}

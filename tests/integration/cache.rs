//! The principal cache: the Cache conformance suite on memory and a real
//! Redis, and identity resolution with the cache working, and down.

use std::sync::Arc;
use std::time::Duration;

use bunbase_core::ErrorCode;
use bunbase_core::auth::adapters::memory::MemoryStore;
use bunbase_core::auth::model::KeyKind;
use bunbase_core::auth::password::Passwords;
use bunbase_core::auth::ratelimit::Rate;
use bunbase_core::auth::{Audience, AuthMetrics, ClientInfo, Identity, IdentityConfig};
use bunbase_core::cache::{self, Cache, MemoryCache, RedisCache};
use bunbase_core::metrics::{Registry, render};
use bunbase_tests::servers;

#[tokio::test]
async fn memory_cache_conformance() {
    cache::testing::run(&MemoryCache::new(1000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cache_conformance() {
    let cache = RedisCache::new(servers::redis_url(), "bbtest", Duration::from_secs(2)).unwrap();
    cache::testing::run(&cache).await;
}

async fn identity(cache: Arc<dyn Cache>, registry: &Registry) -> Identity {
    let store = Arc::new(MemoryStore::new());
    Identity::new(
        store.clone(),
        store,
        Passwords::with_params(64, 1, 1).unwrap(),
        IdentityConfig {
            rate: Rate {
                burst: 1000,
                per_minute: 100_000,
            },
            ..IdentityConfig::default()
        },
        Arc::new(AuthMetrics::new(registry).unwrap()),
    )
    .await
    .unwrap()
    .with_cache(cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolutions_are_cached_and_revocation_clears_them() {
    let registry = Registry::new();
    let cache: Arc<dyn Cache> = Arc::new(
        RedisCache::new(
            servers::redis_url(),
            &format!("bb{}", bunbase_core::id::random_hex(4)),
            Duration::from_secs(2),
        )
        .unwrap(),
    );
    let id = identity(cache, &registry).await;
    let (_, tokens) = id
        .sign_up(
            Audience::Accounts,
            "cache@example.com",
            "correct horse battery",
            ClientInfo::default(),
        )
        .await
        .unwrap();
    let who = id.account(&tokens.access_token).await.unwrap();
    let project = id.create_project(&who, "Cached").await.unwrap().id;
    let key = id
        .create_key(&who, &project, "server", KeyKind::Secret)
        .await
        .unwrap();
    for _ in 0..3 {
        id.resolve(&key.secret, &project).await.unwrap();
        id.resolve(&tokens.access_token, &project).await.unwrap();
    }
    let text = render(&registry);
    assert!(
        text.contains(r#"bunauth_principal_cache_total{result="hit"} 4"#),
        "{text}"
    );
    // Revoking a key clears it from the cache at once.
    id.revoke_key(&who, &project, &key.key.id).await.unwrap();
    assert_eq!(
        id.resolve(&key.secret, &project).await.unwrap_err().code(),
        ErrorCode::Unauthenticated
    );
}

#[tokio::test]
async fn a_cache_that_is_down_is_bypassed() {
    let registry = Registry::new();
    let closed = format!("redis://127.0.0.1:{}", servers::free_port());
    let cache: Arc<dyn Cache> =
        Arc::new(RedisCache::new(&closed, "bb", Duration::from_millis(200)).unwrap());
    let id = identity(cache, &registry).await;
    let (_, tokens) = id
        .sign_up(
            Audience::Accounts,
            "down@example.com",
            "correct horse battery",
            ClientInfo::default(),
        )
        .await
        .unwrap();
    let who = id.account(&tokens.access_token).await.unwrap();
    let project = id.create_project(&who, "No cache").await.unwrap().id;
    let key = id
        .create_key(&who, &project, "server", KeyKind::Secret)
        .await
        .unwrap();
    let principal = id.resolve(&key.secret, &project).await.unwrap();
    assert_eq!(principal.project, project);
    let text = render(&registry);
    assert!(
        text.contains(r#"bunauth_principal_cache_total{result="error"} 1"#),
        "{text}"
    );
}

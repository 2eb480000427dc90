//! Identity benchmark: Argon2 cost, sign-ins/s, token verifications/s
//! (in-process and over gRPC), API-key resolutions/s with and without the
//! remote verifier's cache. The store is SQLite (the all-in-one default).
//!
//! Run: `cargo run --release -p bunbase-tests --features bench --bin identity-bench`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bunbase_client::grpc::{RemoteVerifier, RemoteVerifierConfig};
use bunbase_core::ProjectId;
use bunbase_core::auth::adapters::sql::sqlite::SqliteStore;
use bunbase_core::auth::model::KeyKind;
use bunbase_core::auth::password::Passwords;
use bunbase_core::auth::ratelimit::Rate;
use bunbase_core::auth::{
    Audience, AuthMetrics, ClientInfo, Identity, IdentityConfig, TokenVerifier,
};
use bunbase_core::cache::RedisCache;
use bunbase_shells::kit::Shutdown;

const RUN: Duration = Duration::from_secs(3);
const PW: &str = "correct horse battery";

/// Runs `op(worker)` from `workers` tasks for [`RUN`]; returns operations/s.
async fn rate<F, Fut>(workers: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let op = op.clone();
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < RUN {
                op(worker).await;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::cli::init_tracing();
    let dir = std::env::temp_dir().join(format!(
        "identity-bench-{}",
        bunbase_core::id::random_hex(4)
    ));
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqliteStore::open(&dir.join("identity.db")).await?);
    let config = IdentityConfig {
        rate: Rate {
            burst: u32::MAX,
            per_minute: u32::MAX,
        },
        ..IdentityConfig::default()
    };
    let passwords = Passwords::owasp();
    let identity = Arc::new(
        Identity::new(
            store.clone(),
            store.clone(),
            passwords.clone(),
            config.clone(),
            Arc::new(AuthMetrics::unregistered()),
        )
        .await?,
    );

    println!("Identity benchmark (2-core machine; SQLite store; Argon2id OWASP parameters)");
    let samples = 10;
    let started = Instant::now();
    for _ in 0..samples {
        passwords.hash(PW)?;
    }
    let hash_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(samples);
    println!("  Argon2id hash (19 MiB, t=2, p=1)      {hash_ms:>10.1} ms each");

    let (_, tokens) = identity
        .sign_up(
            Audience::Accounts,
            "bench@example.com",
            PW,
            ClientInfo::default(),
        )
        .await?;
    let who = identity.account(&tokens.access_token).await?;
    let project = identity.create_project(&who, "Bench").await?.id;
    // One credential per worker, so no two concurrent checks are of the
    // same credential (the remote verifier would merge those).
    let mut access = Vec::new();
    let mut secrets = Vec::new();
    for n in 0..16 {
        let signed_in = identity
            .sign_in(
                Audience::Accounts,
                "bench@example.com",
                PW,
                ClientInfo::default(),
            )
            .await?;
        access.push(signed_in.access_token);
        secrets.push(
            identity
                .create_key(&who, &project, &format!("bench{n}"), KeyKind::Secret)
                .await?
                .secret,
        );
    }
    let access = Arc::new(access);
    let secrets = Arc::new(secrets);

    let id = identity.clone();
    let sign_ins = rate(2, move |_| {
        let id = id.clone();
        async move {
            let _ = id
                .sign_in(
                    Audience::Accounts,
                    "bench@example.com",
                    PW,
                    ClientInfo::default(),
                )
                .await;
        }
    })
    .await;
    println!(
        "  sign-ins/s (2 concurrent)              {sign_ins:>10.1}   (bounded by Argon2: ~{:.1}/s/core)",
        1000.0 / hash_ms
    );

    let mut in_process = Vec::new();
    for credentials in [access.clone(), secrets.clone()] {
        let id = identity.clone();
        let project = project.clone();
        in_process.push(
            rate(4, move |worker| {
                let id = id.clone();
                let credential = credentials[worker].clone();
                let project = project.clone();
                async move {
                    id.resolve(&credential, &project)
                        .await
                        .expect("valid credential");
                }
            })
            .await,
        );
    }
    println!(
        "  token verifications/s, in-process      {:>10.0}   (signature + session + membership; 4 concurrent)",
        in_process[0]
    );
    println!(
        "  API-key resolutions/s, in-process      {:>10.0}   (4 concurrent)",
        in_process[1]
    );

    // The same, with the shared principal cache on a real redis-server.
    let cached_identity = Arc::new(
        Identity::new(
            store.clone(),
            store.clone(),
            passwords.clone(),
            config,
            Arc::new(AuthMetrics::unregistered()),
        )
        .await?
        .with_cache(Arc::new(RedisCache::new(
            bunbase_tests::servers::redis_url(),
            "bench",
            Duration::from_millis(250),
        )?)),
    );
    for (label, credentials) in [
        ("token verifications/s", access.clone()),
        ("API-key resolutions/s", secrets.clone()),
    ] {
        let id = cached_identity.clone();
        let project = project.clone();
        let ops = rate(4, move |worker| {
            let id = id.clone();
            let credential = credentials[worker].clone();
            let project = project.clone();
            async move {
                id.resolve(&credential, &project)
                    .await
                    .expect("valid credential");
            }
        })
        .await;
        println!("  {label}, Redis principal cache {ops:>9.0}   (4 concurrent)");
    }

    // Over gRPC, through the verifier other services use.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = Shutdown::new();
    {
        let identity = identity.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let registry = prometheus::Registry::new();
            bunbase_shells::bunauth::serve_grpc(listener, identity, &registry, shutdown).await
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let uncached = Arc::new(RemoteVerifier::new(
        &url,
        RemoteVerifierConfig {
            ttl: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            timeout: Duration::from_secs(10),
            ..RemoteVerifierConfig::default()
        },
    )?);
    let cached = Arc::new(RemoteVerifier::new(&url, RemoteVerifierConfig::default())?);
    for (label, credentials) in [
        ("token verifications/s", access.clone()),
        ("API-key resolutions/s", secrets.clone()),
    ] {
        for (mode, verifier) in [
            ("over gRPC, no cache ", uncached.clone()),
            ("over gRPC, cached   ", cached.clone()),
        ] {
            let credentials = credentials.clone();
            let project: ProjectId = project.clone();
            let ops = rate(16, move |worker| {
                let verifier = verifier.clone();
                let credential = credentials[worker].clone();
                let project = project.clone();
                async move {
                    if let Err(e) = verifier.verify(&credential, &project).await {
                        eprintln!("verification failed: {e}");
                    }
                }
            })
            .await;
            println!("  {label} {mode} {ops:>10.0}   (16 concurrent, distinct credentials)");
        }
    }
    shutdown.trigger();
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

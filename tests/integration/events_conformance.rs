//! The EventBus conformance suite on every adapter, against real servers.

use std::sync::Arc;

use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::adapters::bunder::BunderBus;
use bunbase_core::events::adapters::memory::MemoryBus;
use bunbase_core::events::testing::{self, BusFuture};
use bunbase_core::events::{EventBus, EventMetrics};
use bunbase_core::id::random_hex;
use bunbase_tests::servers;

#[tokio::test]
async fn memory_adapter() {
    let factory = |config: BusConfig| -> BusFuture {
        Box::pin(async move {
            Arc::new(MemoryBus::new(
                config,
                Arc::new(EventMetrics::unregistered()),
            )) as Arc<dyn EventBus>
        })
    };
    testing::run(&factory).await;
}

/// Buses on the Redis-protocol server at `url`, each with a fresh key
/// prefix so checks stay independent on one server.
fn buses_on(url: String) -> impl Fn(BusConfig) -> BusFuture + Send + Sync {
    move |config: BusConfig| -> BusFuture {
        let url = url.clone();
        Box::pin(async move {
            let prefix = format!("bbtest{}", random_hex(4));
            let bus = BunderBus::connect(
                &url,
                &prefix,
                config,
                Arc::new(EventMetrics::unregistered()),
            )
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
            Arc::new(bus) as Arc<dyn EventBus>
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bunder_adapter_on_real_redis() {
    testing::run(&buses_on(servers::redis_url().to_string())).await;
}

/// Buncast's Redis-protocol bus on our own bunder (WATCH/MULTI/EXEC,
/// PSUBSCRIBE, lists, hashes, sorted sets): what compose runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bunder_adapter_on_our_bunder() {
    use bunbase_core::kv::{Engine, EngineConfig};
    use bunbase_shells::bunder::{self, BunderConfig};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(bunder::serve(
        listener,
        Arc::new(Engine::new(EngineConfig::default())),
        BunderConfig::default(),
        stop.clone(),
    ));
    testing::run(&buses_on(url)).await;
    stop.cancel();
}

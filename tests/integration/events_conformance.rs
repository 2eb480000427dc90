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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bunder_adapter_on_real_redis() {
    let url = servers::redis_url().to_string();
    let factory = move |config: BusConfig| -> BusFuture {
        let url = url.clone();
        Box::pin(async move {
            // A fresh key prefix per bus keeps checks independent on one server.
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
    };
    testing::run(&factory).await;
}

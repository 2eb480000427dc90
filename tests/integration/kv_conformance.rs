//! The KvStore conformance suite on all three targets: the engine
//! in-process, our bunder over TCP, and a real redis-server.

use std::sync::Arc;

use bunbase_core::kv::adapters::bunder::BunderKv;
use bunbase_core::kv::adapters::memory::MemoryKv;
use bunbase_core::kv::{Engine, EngineConfig, testing};
use bunbase_shells::bunder::{self, BunderConfig};
use bunbase_tests::servers;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn engine_in_process() {
    let store = MemoryKv::new(Arc::new(Engine::new(EngineConfig::default())));
    testing::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bunder_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let engine = Arc::new(Engine::new(EngineConfig::default()));
    tokio::spawn(bunder::serve(
        listener,
        engine,
        BunderConfig::default(),
        stop.clone(),
    ));
    let store = BunderKv::new(&format!("redis://{addr}")).unwrap();
    testing::run(&store).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_redis_server() {
    let store = BunderKv::new(servers::redis_url()).unwrap();
    testing::run(&store).await;
}

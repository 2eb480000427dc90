//! The identity store conformance suite on every adapter.

use std::sync::Arc;

use bunbase_core::auth::adapters::memory::MemoryStore;
use bunbase_core::auth::testing::{self, IdentityStore, StoreFuture};

#[tokio::test]
async fn memory_store() {
    let make = || -> StoreFuture {
        Box::pin(async { Arc::new(MemoryStore::new()) as Arc<dyn IdentityStore> })
    };
    testing::run(&make).await;
}

//! Embedding Bunder Manager's KV service in your own Rust program: the
//! engine in-process, quotas, TTLs, counters and the change stream — no
//! server, no network.
//!
//! Run: `cargo run -p bunbase-examples --example embed_kv`

use std::sync::Arc;
use std::time::Duration;

use bunbase_core::ProjectId;
use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::adapters::memory::MemoryBus;
use bunbase_core::events::{Delivery, EventLimits, EventMetrics, Events};
use bunbase_core::kv::adapters::memory::MemoryKv;
use bunbase_core::kv::{
    Condition, Engine, EngineConfig, Kv, KvLimits, KvMetrics, PutRequest, Quota,
};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let metrics = Arc::new(EventMetrics::unregistered());
    let bus = Arc::new(MemoryBus::new(BusConfig::default(), metrics.clone()));
    let events = Events::new(bus, EventLimits::default(), metrics);
    let store = Arc::new(MemoryKv::new(Arc::new(
        Engine::new(EngineConfig::default()),
    )));
    let kv = Kv::new(
        store,
        events,
        KvLimits {
            quota: Quota {
                max_keys: 3,
                max_bytes: 1024,
            },
            ..KvLimits::default()
        },
        Arc::new(KvMetrics::unregistered()),
    );

    let project = ProjectId::new("shop")?;
    let me = Principal {
        subject: "example".into(),
        kind: PrincipalKind::Service,
        project: project.clone(),
        rights: Rights::READ_WRITE,
    };

    let mut changes = kv.changes(&me, &project, None).await?;

    kv.put(
        &me,
        &project,
        "cart/42",
        "3 apples".into(),
        PutRequest::default(),
    )
    .await?;
    let session = PutRequest {
        ttl: Some(Duration::from_secs(30)),
        condition: Condition::IfAbsent,
    };
    let created = kv
        .put(&me, &project, "session/abc", "u1".into(), session)
        .await?;
    let again = kv
        .put(&me, &project, "session/abc", "u2".into(), session)
        .await?;
    println!("session created: {created}, created again: {again}");
    println!("visits: {}", kv.incr(&me, &project, "visits", 1).await?);

    // The quota is 3 keys: a fourth is refused and nothing changes.
    let refused = kv
        .put(
            &me,
            &project,
            "one-too-many",
            "x".into(),
            PutRequest::default(),
        )
        .await
        .unwrap_err();
    println!("fourth key: {} ({})", refused, refused.code());
    let usage = kv.usage(&me, &project).await?;
    println!("usage: {} keys, {} bytes", usage.keys, usage.bytes);

    let page = kv.scan(&me, &project, "session/", None, Some(100)).await?;
    println!("sessions: {:?}", page.keys);

    for _ in 0..3 {
        if let Some(Delivery::Event(event)) = changes.next().await {
            println!("change #{}: {}", event.seq, event.data.as_json());
        }
    }
    Ok(())
}

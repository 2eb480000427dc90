//! Embedding Buncast in your own Rust program: no server, no network.
//!
//! Run: `cargo run -p bunbase-examples --example embed_events`

use std::sync::Arc;

use bunbase_core::ProjectId;
use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::adapters::memory::MemoryBus;
use bunbase_core::events::{Delivery, EventLimits, EventMetrics, Events};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let metrics = Arc::new(EventMetrics::unregistered());
    let bus = Arc::new(MemoryBus::new(BusConfig::default(), metrics.clone()));
    let events = Events::new(bus, EventLimits::default(), metrics);

    // Every call names who is calling; a principal acts in one project only.
    let project = ProjectId::new("shop")?;
    let me = Principal {
        subject: "example".into(),
        kind: PrincipalKind::Service,
        project: project.clone(),
        rights: Rights::READ_WRITE,
    };

    let mut orders = events.subscribe(&me, &project, "orders.*", None).await?;
    for (topic, data) in [
        ("orders.created", r#"{"id":1,"total":42}"#),
        ("orders.paid", r#"{"id":1}"#),
        ("invoices.sent", r#"{"id":9}"#), // not matched by orders.*
    ] {
        let seq = events.publish(&me, &project, topic, data).await?;
        println!("published #{seq} on {topic}");
    }
    for _ in 0..2 {
        if let Some(Delivery::Event(event)) = orders.next().await {
            println!(
                "received #{} {} {}",
                event.seq,
                event.topic,
                event.data.as_json()
            );
        }
    }

    // A late subscriber catches up from a sequence number.
    let mut late = events.subscribe(&me, &project, "orders.>", Some(0)).await?;
    if let Some(Delivery::Event(event)) = late.next().await {
        println!("replayed #{} {}", event.seq, event.topic);
    }

    // Another project's data is out of reach.
    let other = ProjectId::new("someone-else")?;
    let denied = events
        .publish(&me, &other, "orders.created", "{}")
        .await
        .unwrap_err();
    println!(
        "publishing to another project: {} ({})",
        denied.code(),
        denied
    );
    Ok(())
}

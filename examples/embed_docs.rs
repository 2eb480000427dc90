//! Embedding Bundoc, the document database, in your own Rust program: a
//! collection with indexes and access rules, writes, a query with its plan,
//! and a realtime query — no server, no network.
//!
//! Run: `cargo run -p bunbase-examples --example embed_docs`
//! (documents in memory), or with a file to keep them in SQLite:
//! `cargo run -p bunbase-examples --example embed_docs -- /tmp/docs.db`

use std::sync::Arc;
use std::time::Duration;

use bunbase_core::ProjectId;
use bunbase_core::auth::{Principal, PrincipalKind, Rights};
use bunbase_core::docs::adapters::MemoryDocStore;
use bunbase_core::docs::adapters::sql::sqlite::SqliteDocs;
use bunbase_core::docs::{Bundoc, DocStore, DocsLimits, DocsMetrics, WatchEvent, WriteOp};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::adapters::memory::MemoryBus;
use bunbase_core::events::{EventLimits, EventMetrics, Events};
use futures_util::StreamExt;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The store: memory, or a SQLite file (what the all-in-one uses).
    let store: Arc<dyn DocStore> = match std::env::args().nth(1) {
        Some(path) => Arc::new(SqliteDocs::open(std::path::Path::new(&path)).await?),
        None => Arc::new(MemoryDocStore::new()),
    };
    // Change events (and so realtime queries) go through Buncast's bus.
    let event_metrics = Arc::new(EventMetrics::unregistered());
    let bus = Arc::new(MemoryBus::new(BusConfig::default(), event_metrics.clone()));
    let events = Events::new(bus, EventLimits::default(), event_metrics);
    // No key service: collections with `encrypted` fields would be refused
    // (pass `Some(Arc::new(LocalKeys::new(kms, "bundoc")))` to allow them).
    let docs = Bundoc::new(
        store,
        events,
        None,
        DocsLimits::default(),
        Arc::new(DocsMetrics::unregistered()),
    );

    let project = ProjectId::new("shop")?;
    // Your backend: a principal with every right; rules don't apply to it.
    let backend = Principal {
        subject: "example".into(),
        kind: PrincipalKind::Service,
        project: project.clone(),
        rights: Rights::ALL,
    };
    // An end user of your app: no rights of its own, the rules decide.
    let alice = Principal {
        subject: "usr_alice".into(),
        kind: PrincipalKind::EndUser,
        project: project.clone(),
        rights: Rights::NONE,
    };

    docs.create_collection(
        &backend,
        &project,
        &json!({
            "name": "tasks",
            "indexes": [{"fields": ["owner"]}, {"fields": ["status"]}],
            "rules": {
                "read": "resource.owner == auth.uid",
                "list": "resource.owner == auth.uid",
                "create": "request.owner == auth.uid",
                "update": "resource.owner == auth.uid && request.owner == auth.uid",
            },
        }),
    )
    .await?;

    // Alice watches her open tasks: a snapshot, then every change.
    let open = json!({"filter": {"status": "open"}, "sort": [{"n": "asc"}]});
    let mut live = docs.watch(&alice, &project, "tasks", &open, None).await?;

    // The backend writes for everyone, all or nothing.
    let writes = [
        ("t1", "usr_alice", 1),
        ("t2", "usr_bob", 2),
        ("t3", "usr_alice", 3),
    ]
    .map(|(id, owner, n)| WriteOp::Create {
        doc: json!({"_id": id, "owner": owner, "status": "open", "n": n}),
    });
    docs.batch(&backend, &project, "tasks", writes.to_vec())
        .await?;

    // Alice may create her own tasks, not Bob's.
    let mine = json!({"owner": "usr_alice", "status": "open", "n": 4});
    let created = docs.create(&alice, &project, "tasks", mine).await?;
    println!(
        "alice created {}",
        created["_id"].as_str().unwrap_or_default()
    );
    let theirs = json!({"owner": "usr_bob", "status": "open", "n": 5});
    let refused = docs.create(&alice, &project, "tasks", theirs).await;
    println!("for bob: {}", refused.unwrap_err());

    // Closing t1 (version 1 expected) takes it out of the watched set.
    docs.patch(
        &alice,
        &project,
        "tasks",
        "t1",
        json!({"status": "done"}),
        Some(1),
    )
    .await?;

    // Queries only return what the list rule lets alice see.
    let query = json!({"filter": {"owner": "usr_alice"}, "sort": [{"n": "desc"}], "limit": 2});
    let page = docs.query(&alice, &project, "tasks", &query).await?;
    let ns: Vec<String> = page.documents.iter().map(|d| d["n"].to_string()).collect();
    println!(
        "alice's tasks, n descending: {}; next cursor {:?}",
        ns.join(", "),
        page.next_cursor
    );
    let plan = docs.explain(&backend, &project, "tasks", &query).await?;
    println!("plan: {}", serde_json::to_string(&plan)?);

    // Alice's view: an empty snapshot, then t1, t3 and her new task as they
    // are added, then t1 leaves. Bob's t2 never shows.
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_millis(500), live.next()).await
    {
        match frame {
            WatchEvent::Snapshot { documents, .. } => {
                println!("snapshot: {} open", documents.len())
            }
            WatchEvent::Added { doc, .. } => {
                println!("added {}", doc["_id"].as_str().unwrap_or_default())
            }
            WatchEvent::Changed { doc, .. } => {
                println!("changed {}", doc["_id"].as_str().unwrap_or_default())
            }
            WatchEvent::Removed { id, .. } => println!("removed {id}"),
            WatchEvent::Closed { reason } => println!("closed: {reason}"),
        }
    }
    Ok(())
}

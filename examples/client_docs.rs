//! The typed client against a running server's `/bundoc`: start the
//! all-in-one (`cargo run --bin bunbase`), then
//!
//!   BUNBASE_TOKEN=<the printed dev token> cargo run -p bunbase-examples --example client_docs

use std::time::Duration;

use bunbase_client::{Client, WatchFrame};
use bunbase_core::Error;
use futures_util::StreamExt;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BUNBASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("BUNBASE_TOKEN")
        .map_err(|_| anyhow::anyhow!("set BUNBASE_TOKEN to the dev token bunbase printed"))?;
    let client = Client::new(url)?.with_token(token).with_project("demo");

    // A collection with a compound and a unique index (kept if it exists).
    let definition = json!({
        "name": "orders",
        "indexes": [{"fields": ["city", "n"]}, {"fields": ["ref"], "unique": true}],
    });
    match client.collections("demo").create(&definition).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let orders = client.docs("orders");

    // A realtime query: the matching documents now, then their changes.
    let mut live = orders.find(json!({"city": "Oslo"})).watch().await?;

    // Writes: create (id generated), replace with an expected version,
    // merge patch, and an all-or-nothing batch.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let first = orders
        .create(&json!({"city": "Oslo", "n": 1, "ref": format!("r-{stamp}")}))
        .await?;
    let id = first["_id"].as_str().unwrap_or_default().to_string();
    let version = first["_version"].as_u64().unwrap_or(1);
    let body = json!({"city": "Oslo", "n": 2, "ref": format!("r-{stamp}")});
    orders.replace_if(&id, &body, version).await?;
    match orders.replace_if(&id, &body, version).await {
        Err(e) => println!("stale version: {e}"),
        Ok(_) => println!("unexpected: a stale version was accepted"),
    }
    orders.patch(&id, &json!({"note": "rush"})).await?;
    orders
        .batch(&[
            json!({"op": "create", "doc": {"city": "Oslo", "n": 7}}),
            json!({"op": "create", "doc": {"city": "Bergen", "n": 9}}),
        ])
        .await?;

    // A query: filter, sort (ties broken by _id), page size, cursor.
    let find = orders
        .find(json!({"city": "Oslo", "n": {"$gte": 2}}))
        .desc("n")
        .limit(20);
    let page = find.page().await?;
    let ns: Vec<String> = page.documents.iter().map(|d| d["n"].to_string()).collect();
    println!(
        "n descending: {}; more: {}",
        ns.join(", "),
        page.next_cursor.is_some()
    );
    println!("count: {}", find.count().await?);
    println!("plan: {}", find.explain().await?);
    println!("usage: {:?}", client.collections("demo").usage().await?);

    // What the realtime query saw (the snapshot, then the Oslo changes).
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(1), live.next()).await {
        match frame? {
            WatchFrame::Snapshot(docs) => println!("snapshot: {} documents", docs.len()),
            WatchFrame::Added(doc) => println!(
                "added {} n={}",
                doc["_id"].as_str().unwrap_or_default(),
                doc["n"]
            ),
            WatchFrame::Changed(doc) => println!(
                "changed {} n={}",
                doc["_id"].as_str().unwrap_or_default(),
                doc["n"]
            ),
            WatchFrame::Removed(id) => println!("removed {id}"),
        }
    }
    Ok(())
}

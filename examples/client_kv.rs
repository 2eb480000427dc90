//! The typed client against a running server's `/kv`: start the all-in-one
//! (`cargo run --bin bunbase`), then
//!
//!   BUNBASE_TOKEN=<the printed dev token> cargo run -p bunbase-examples --example client_kv

use std::time::Duration;

use bunbase_client::{Client, Put, PutCondition, StreamItem};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BUNBASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("BUNBASE_TOKEN")
        .map_err(|_| anyhow::anyhow!("set BUNBASE_TOKEN to the dev token bunbase printed"))?;
    let kv = Client::new(url)?.with_token(token).kv();

    let mut changes = kv.changes("demo").await?;
    kv.put("demo", "greeting", "hello").await?;
    let lock = Put {
        ttl: Some(Duration::from_secs(10)),
        condition: PutCondition::IfAbsent,
    };
    println!(
        "took the lock: {}",
        kv.put_with("demo", "locks/report", "me", lock).await?
    );
    println!(
        "took it twice: {}",
        kv.put_with("demo", "locks/report", "me", lock).await?
    );
    println!("counter: {}", kv.incr("demo", "visits", 1).await?);
    println!("greeting: {:?}", kv.get("demo", "greeting").await?);
    println!("keys: {:?}", kv.list_all("demo", "").await?);
    println!("usage: {:?}", kv.usage("demo").await?);
    for _ in 0..3 {
        if let Some(Ok(StreamItem::Event(event))) = changes.next().await {
            println!("change #{}: {}", event.seq, event.data.as_json());
        }
    }
    Ok(())
}

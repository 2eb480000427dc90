//! Talking to a running BunBase with the typed client.
//!
//! Start the platform (`cargo run --release --bin bunbase`), then:
//! `BUNBASE_TOKEN=<the printed token> cargo run -p bunbase-examples --example client_events`

use bunbase_client::{Client, StreamItem};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BUNBASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let token = std::env::var("BUNBASE_TOKEN")
        .map_err(|_| anyhow::anyhow!("set BUNBASE_TOKEN to the token bunbase printed"))?;
    let project = std::env::var("BUNBASE_PROJECT").unwrap_or_else(|_| "demo".into());
    let events = Client::new(url)?.with_token(token).events();

    // Replay from the start, then follow live; the stream reconnects and
    // resumes by itself if the connection drops.
    let mut stream = events.subscribe_after(&project, "chat.>", Some(0)).await?;
    for n in 0..3 {
        let seq = events
            .publish(
                &project,
                "chat.lobby",
                &serde_json::json!({ "text": format!("hello #{n}") }),
            )
            .await?;
        println!("published #{seq}");
    }
    let mut received = 0;
    while let Some(item) = stream.next().await {
        match item? {
            StreamItem::Event(event) => {
                println!("#{} {} {}", event.seq, event.topic, event.data.as_json());
                received += 1;
            }
            StreamItem::Gap(gap) => println!("gap: {gap:?}"),
        }
        if received >= 3 {
            break;
        }
    }
    for topic in events.topics(&project).await? {
        println!(
            "{}: last #{} ({} subscribers)",
            topic.topic, topic.last_seq, topic.subscribers
        );
    }
    Ok(())
}

//! `buncast`: the pub/sub event service (port 8081, prefix `/events`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::buncast::BuncastArgs>().await
}

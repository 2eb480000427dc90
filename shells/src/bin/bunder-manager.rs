//! `bunder-manager`: each project's key-value store over HTTP (port 8085,
//! prefix `/kv`), on a Redis-protocol server (bunder-sys).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::kvmanager::BunderManagerArgs>().await
}

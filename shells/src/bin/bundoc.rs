//! `bundoc`: each project's document database with realtime queries
//! (port 8082; 8080 in its container; prefix `/bundoc`), on Postgres or a
//! SQLite file.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::bundoc::BundocArgs>().await
}

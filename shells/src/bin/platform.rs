//! `platform`: the Platform API (port 3001, prefix `/api`) — accounts,
//! projects, members, API keys, end users, JWKS — on Postgres or SQLite.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::identity::PlatformArgs>().await
}

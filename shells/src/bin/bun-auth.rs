//! `bun-auth`: the identity authority over gRPC (port 50051, internal),
//! with `/health` and `/metrics` on a small HTTP port.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::identity::BunAuthArgs>().await
}

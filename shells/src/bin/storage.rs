//! `storage`: buckets and objects over HTTP and the S3 API (port 8086).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::storage::StorageBinaryArgs>().await
}

//! `bun-kms`: keys, envelope encryption, signing, secrets and the audit
//! log (port 8083; 8080 in its container; prefix `/kms`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::bunkms::BunKmsArgs>().await
}

//! `functions`: deploy and run JavaScript/TypeScript functions (port 8084).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::standalone::main::<bunbase_shells::functions::FunctionsBinaryArgs>().await
}

//! `bunbase`: every BunBase service in one process on one port, each under
//! its gateway prefix, on embedded defaults under `--data-dir`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bunbase_shells::all_in_one::main().await
}

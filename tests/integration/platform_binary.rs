//! The `platform` binary as compose runs it: on a real Postgres.

use std::process::Stdio;
use std::time::Duration;

use bunbase_client::Client;
use bunbase_tests::servers;

fn sibling_binary(name: &str) -> std::path::PathBuf {
    // Test binaries live in target/<profile>/deps; shells' binaries one up.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built (cargo test --workspace builds it)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_runs_on_postgres() {
    let database = servers::postgres_database();
    let port = servers::free_port();
    let mut child = tokio::process::Command::new(sibling_binary("platform"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("PLATFORM_DATABASE_URL", &database)
        .env("PLATFORM_PUBLIC_URL", "http://gateway.test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    servers::wait_for_port(port, "platform");
    let url = format!("http://127.0.0.1:{port}");

    let health: serde_json::Value = reqwest::get(format!("{url}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["checks"]["identity-db"]["status"], "ok", "{health}");

    let platform = Client::new(&url).unwrap().platform();
    let tokens = platform
        .sign_up("ops@example.com", "correct horse battery")
        .await
        .unwrap();
    let owner = Client::new(&url)
        .unwrap()
        .with_token(&tokens.access_token)
        .platform();
    let project = owner.create_project("On Postgres").await.unwrap();
    let key = owner
        .create_key(&project.id, "server", "secret")
        .await
        .unwrap();
    assert_eq!(owner.keys(&project.id).await.unwrap()[0].id, key.key.id);
    // Tokens name the public URL as issuer.
    let claims = tokens.access_token.split('.').nth(1).unwrap().to_string();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "http://gateway.test/api");

    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

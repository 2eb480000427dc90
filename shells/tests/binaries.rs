//! The compiled binaries, run as an operator would: flags, env, secrets,
//! start-up messages, and shutdown on SIGTERM.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BUNBASE: &str = env!("CARGO_BIN_EXE_bunbase");
const BUNCAST: &str = env!("CARGO_BIN_EXE_buncast");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bunbase-bin-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `bunbase` on a free port; returns the child, its URL and its
/// printed lines so far.
async fn start_bunbase(data_dir: &std::path::Path) -> (Child, String, Vec<String>) {
    start_bunbase_with(data_dir, &[]).await
}

async fn start_bunbase_with(
    data_dir: &std::path::Path,
    extra: &[&str],
) -> (Child, String, Vec<String>) {
    let mut child = Command::new(BUNBASE)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env_remove("BUNBASE_TOKENS")
        .env_remove("BUNBASE_TOKENS_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("bunbase printed its address")
            .unwrap()
            .expect("bunbase exited early");
        seen.push(line.clone());
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    // Read the rest of the banner (it ends with the curl hint or the metrics line).
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await
    {
        seen.push(line);
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url, seen)
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn bunbase_runs_the_platform_and_stops_on_sigterm() {
    let data = temp_dir("run");
    let (mut child, url, banner) = start_bunbase(&data).await;
    let text = banner.join("\n");
    assert!(text.contains("/events"), "{text}");
    assert!(text.contains("/bundoc"), "{text}");
    assert!(text.contains("/health"), "{text}");

    // A development token was created, private, and printed.
    let token_file = data.join("dev-tokens");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Every data file holds secrets or project data: owner only.
        for file in [
            "identity.db",
            "kms.db",
            "bundoc.db",
            "kv.aof",
            "dev-master-key",
        ] {
            let mode = std::fs::metadata(data.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    let spec = std::fs::read_to_string(&token_file).unwrap();
    let token = spec.trim().splitn(3, ':').nth(2).unwrap().to_string();
    assert!(text.contains(&token), "the token is printed");

    let http = reqwest::Client::new();
    let health = http.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let published = http
        .post(format!("{url}/events/v1/projects/demo/topics/greetings"))
        .bearer_auth(&token)
        .body(r#"{"data":{"hello":"world"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 201);
    let seq = published.json::<serde_json::Value>().await.unwrap()["seq"]
        .as_u64()
        .unwrap();
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("buncast_events_published_total 1"));
    assert!(metrics.contains("http_requests_total"));

    // An open stream is closed with a reason when the process is told to stop.
    let mut stream = http
        .get(format!(
            "{url}/events/v1/projects/demo/topics/greetings/subscribe"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let opening = stream.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&opening).contains(&format!("id: {seq}")),
        "position is the head"
    );
    sigterm(&child);
    let mut rest = String::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await
    {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        rest.contains("event: closed") && rest.contains("shutdown"),
        "{rest}"
    );
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    // A restart keeps the same development token.
    let (mut again, url, _) = start_bunbase(&data).await;
    let answer = http
        .get(format!("{url}/events/v1/projects/demo/topics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    // Bundoc, with field encryption by the in-process KMS.
    let docs = format!("{url}/bundoc/v1/projects/demo/collections");
    let created = http
        .post(&docs)
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "orders", "encrypted": ["card"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = http
        .post(format!("{docs}/orders/documents"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"_id": "o1", "card": "4111"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let got: serde_json::Value = http
        .get(format!("{docs}/orders/documents/o1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["card"], "4111");
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("bundoc_operations_total"));
    sigterm(&again);
    let _ = again.wait().await;
    std::fs::remove_dir_all(&data).ok();
}

async fn run_to_exit(mut command: Command) -> (bool, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("exits in time")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn buncast() -> Command {
    let mut command = Command::new(BUNCAST);
    command
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("BUNCAST_TOKENS")
        .env_remove("BUNCAST_TOKENS_FILE");
    command
}

#[tokio::test]
async fn buncast_refuses_to_start_without_credentials() {
    let (ok, text) = run_to_exit(buncast()).await;
    assert!(!ok);
    assert!(text.contains("BUNCAST_TOKENS"), "{text}");
}

#[tokio::test]
async fn buncast_refuses_readable_secret_files_and_bad_tokens() {
    let dir = temp_dir("secrets");
    let file = dir.join("tokens");
    std::fs::write(&file, "demo:rw:0123456789abcdef0123\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut command = buncast();
    command.env("BUNCAST_TOKENS_FILE", &file);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("chmod 600"), "{text}");

    let mut command = buncast();
    command.env("BUNCAST_TOKENS", "demo:rw:short");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("at least 16"), "{text}");

    let mut command = buncast();
    command
        .env("BUNCAST_TOKENS", "demo:rw:0123456789abcdef0123")
        .args(["--events-bus", "bunder"]);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("BUNCAST_REDIS_URL"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn flags_win_over_environment() {
    // The env asks for a bus that would fail; the flag overrides it.
    let mut command = buncast();
    command
        .env("BUNCAST_TOKENS", "demo:rw:0123456789abcdef0123")
        .env("BUNCAST_BUS", "bunder")
        .args(["--events-bus", "memory", "--events-retain", "0"]);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    // It got past the bus choice (memory, from the flag) to the retain check.
    assert!(text.contains("--events-retain"), "{text}");
}

#[tokio::test]
async fn help_lists_every_option_with_its_environment_name() {
    for (binary, names) in [
        (
            BUNCAST,
            &[
                "BUNCAST_LISTEN",
                "BUNCAST_TOKENS_FILE",
                "BUNCAST_BUS",
                "BUNCAST_REDIS_URL",
                "BUNCAST_RETAIN",
                "BUNCAST_QUEUE",
                "BUNCAST_MAX_PAYLOAD",
                "BUNBASE_BODY_LIMIT",
                "BUNBASE_REQUEST_TIMEOUT_SECS",
            ][..],
        ),
        (
            BUNBASE,
            &[
                "BUNBASE_LISTEN",
                "BUNBASE_DATA_DIR",
                "BUNBASE_TOKENS_FILE",
                "BUNCAST_BUS",
                "BUNBASE_RESP_LISTEN",
                "BUNBASE_RESP_PASSWORD_FILE",
                "BUNBASE_KV_APPENDFSYNC",
                "BUNDER_MANAGER_KV_URL",
                "BUNDER_MANAGER_MAX_KEYS",
                "BUNDOC_DATABASE_URL",
                "BUNDOC_KMS_URL",
            ][..],
        ),
        (
            BUNDOC,
            &[
                "BUNDOC_LISTEN",
                "BUNDOC_DATA_DIR",
                "BUNDOC_TOKENS_FILE",
                "BUNDOC_AUTH_URL",
                "BUNDOC_DATABASE_URL_FILE",
                "BUNDOC_MAX_SCAN",
                "BUNDOC_MAX_DOCUMENTS",
                "BUNDOC_MAX_BYTES",
                "BUNDOC_BODY_LIMIT",
                "BUNDOC_KMS_URL",
                "BUNDOC_KMS_TOKEN_FILE",
                "BUNCAST_BUS",
            ][..],
        ),
        (
            BUNDER_MANAGER,
            &[
                "BUNDER_MANAGER_LISTEN",
                "BUNDER_MANAGER_TOKENS_FILE",
                "BUNDER_MANAGER_AUTH_URL",
                "BUNDER_MANAGER_KV_URL_FILE",
                "BUNDER_MANAGER_MAX_BYTES",
                "BUNDER_MANAGER_MAX_VALUE",
                "BUNCAST_BUS",
            ][..],
        ),
    ] {
        let mut command = Command::new(binary);
        command.arg("--help");
        let (ok, text) = run_to_exit(command).await;
        assert!(ok);
        for name in names {
            assert!(text.contains(name), "{binary} --help lacks {name}");
        }
    }
}

const BUNDER: &str = env!("CARGO_BIN_EXE_bunder");

async fn resp(stream: &mut tokio::net::TcpStream, command: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn start_bunder(data: &std::path::Path, port: u16) -> Child {
    let child = Command::new(BUNDER)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--appendonly",
            "--appendfsync",
            "always",
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bunder did not start");
}

#[tokio::test]
async fn bunder_keeps_every_acknowledged_write_across_a_crash() {
    let data = temp_dir("bunder");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut first = start_bunder(&data, port).await;
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    assert_eq!(resp(&mut c, "SET a 1").await, "+OK\r\n");
    assert_eq!(resp(&mut c, "INCRBY a 9").await, ":10\r\n");
    assert_eq!(resp(&mut c, "RPUSH l x y").await, ":2\r\n");
    // A crash, not a shutdown: SIGKILL right after the replies.
    first.kill().await.unwrap();
    let _second = start_bunder(&data, port).await;
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    assert_eq!(resp(&mut c, "GET a").await, "$2\r\n10\r\n");
    assert_eq!(resp(&mut c, "LLEN l").await, ":2\r\n");
    std::fs::remove_dir_all(&data).ok();
}

const BUNDER_MANAGER: &str = env!("CARGO_BIN_EXE_bunder-manager");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn bunbase_kv_survives_a_restart_and_shares_its_engine_over_resp() {
    let data = temp_dir("kv");
    let resp_port = free_port();
    let resp_addr = format!("127.0.0.1:{resp_port}");
    let (child, url, banner) = start_bunbase_with(&data, &["--resp-listen", &resp_addr]).await;
    let text = banner.join("\n");
    assert!(text.contains("/kv"), "{text}");
    assert!(text.contains(&format!("redis://{resp_addr}")), "{text}");
    let spec = std::fs::read_to_string(data.join("dev-tokens")).unwrap();
    let token = spec.trim().splitn(3, ':').nth(2).unwrap().to_string();
    let http = reqwest::Client::new();
    let key_url = format!("{url}/kv/v1/projects/demo/keys/greeting");
    let put = http
        .put(&key_url)
        .bearer_auth(&token)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // The RESP port sees the same engine (keys live as kv:project:key).
    let mut stream = tokio::net::TcpStream::connect(&resp_addr).await.unwrap();
    assert_eq!(
        resp(&mut stream, "GET kv:demo:greeting").await,
        "$5\r\nhello\r\n"
    );
    assert_eq!(
        resp(&mut stream, "SET kv:demo:fromresp hi").await,
        "+OK\r\n"
    );
    drop(stream);
    sigterm(&child);
    let mut child = child;
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    // Everything is back after the restart (data/kv.aof).
    let (mut again, url, _) = start_bunbase(&data).await;
    for (key, value) in [("greeting", "hello"), ("fromresp", "hi")] {
        let got = http
            .get(format!("{url}/kv/v1/projects/demo/keys/{key}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{key}");
        assert_eq!(got.text().await.unwrap(), value);
    }
    let usage: serde_json::Value = http
        .get(format!("{url}/kv/v1/projects/demo/usage"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Only the write made through /kv is accounted.
    assert_eq!(usage["keys"], 1, "{usage}");
    sigterm(&again);
    let _ = again.wait().await;
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test]
async fn bunder_manager_runs_on_a_bunder_server() {
    // Refuses to start without a KV server or without credentials.
    let mut command = Command::new(BUNDER_MANAGER);
    command.env_clear().env(
        "BUNDER_MANAGER_TOKENS",
        "alpha:rw:alpha-token-0000000000000001",
    );
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("BUNDER_MANAGER_KV_URL"), "{text}");
    let mut command = Command::new(BUNDER_MANAGER);
    command
        .env_clear()
        .env("BUNDER_MANAGER_KV_URL", "redis://127.0.0.1:1");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("no credentials configured"), "{text}");

    let data = temp_dir("manager");
    let kv_port = free_port();
    let mut bunder = start_bunder(&data, kv_port).await;
    let port = free_port();
    let mut manager = Command::new(BUNDER_MANAGER)
        .env_clear()
        .env("BUNDER_MANAGER_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "BUNDER_MANAGER_KV_URL",
            format!("redis://127.0.0.1:{kv_port}"),
        )
        .env(
            "BUNDER_MANAGER_TOKENS",
            "alpha:rw:alpha-token-0000000000000001",
        )
        .env("BUNDER_MANAGER_MAX_KEYS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            healthy = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "bunder-manager is healthy");
    let put = |key: &'static str| {
        http.put(format!("{base}/kv/v1/projects/alpha/keys/{key}"))
            .bearer_auth("alpha-token-0000000000000001")
            .body("v")
            .send()
    };
    assert_eq!(put("one").await.unwrap().status(), 200);
    assert_eq!(
        put("two").await.unwrap().status(),
        507,
        "the key quota of 1"
    );
    let got = http
        .get(format!("{base}/kv/v1/projects/alpha/keys/one"))
        .bearer_auth("alpha-token-0000000000000001")
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "v");
    // The KV server going away turns health red, not the process down.
    let _ = bunder.kill().await;
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    sigterm(&manager);
    let status = tokio::time::timeout(Duration::from_secs(15), manager.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test]
async fn bunder_serves_prometheus_metrics() {
    let data = temp_dir("bunder-metrics");
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(BUNDER)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--appendonly",
            "--appendfsync",
            "everysec",
            "--maxmemory",
            "64MiB",
            "--maxmemory-policy",
            "allkeys-lru",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stream = stream.expect("bunder listens");
    assert_eq!(resp(&mut stream, "SET a 1").await, "+OK\r\n");
    assert_eq!(resp(&mut stream, "SET b 2").await, "+OK\r\n");
    assert_eq!(resp(&mut stream, "GET a").await, "$1\r\n1\r\n");
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "bunder_commands_total{command=\"set\"} 2",
        "bunder_commands_total{command=\"get\"} 1",
        "bunder_keys{db=\"0\"} 2",
        "bunder_connected_clients 1",
        "bunder_maxmemory_bytes 67108864",
        "bunder_evicted_keys_total 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    for name in [
        "bunder_used_memory_bytes",
        "bunder_process_resident_memory_bytes",
        "bunder_aof_unsynced_bytes",
        "bunder_aof_seconds_since_fsync",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    let health = reqwest::get(format!("http://127.0.0.1:{metrics_port}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    std::fs::remove_dir_all(&data).ok();
}

/// Without the append-only file, snapshots are the persistence: SAVE and
/// BGSAVE write one, shutdown writes a last one, start loads it.
#[tokio::test]
async fn bunder_snapshots_survive_a_restart() {
    let data = temp_dir("bunder-snapshot");
    let port = free_port();
    let start = || {
        Command::new(BUNDER)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--snapshot-interval",
                "3600",
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let connect = || async {
        for _ in 0..100 {
            if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("bunder did not start");
    };
    let mut child = start();
    let mut stream = connect().await;
    assert_eq!(resp(&mut stream, "RPUSH saved a b").await, ":2\r\n");
    assert_eq!(resp(&mut stream, "SAVE").await, "+OK\r\n");
    assert!(resp(&mut stream, "LASTSAVE").await.starts_with(':'));
    assert_eq!(resp(&mut stream, "SET after-save 1").await, "+OK\r\n");
    assert_eq!(
        resp(&mut stream, "BGSAVE").await,
        "+Background saving started\r\n"
    );
    assert_eq!(
        resp(&mut stream, "SAVE now").await,
        "-ERR wrong number of arguments for 'save' command\r\n"
    );
    assert_eq!(resp(&mut stream, "SET at-shutdown 1").await, "+OK\r\n");
    drop(stream);
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("bunder.snapshot"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let mut child = start();
    let mut stream = connect().await;
    assert_eq!(
        resp(&mut stream, "LRANGE saved 0 -1").await,
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        resp(&mut stream, "EXISTS after-save at-shutdown").await,
        ":2\r\n"
    );
    drop(stream);
    let _ = child.kill().await;
    let _ = child.wait().await;

    // Turning the append-only file on starts from the snapshot (not empty),
    // and from then on the file holds everything.
    let with_aof = || {
        Command::new(BUNDER)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--appendonly",
                "--appendfsync",
                "always",
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut child = with_aof();
    let mut stream = connect().await;
    assert_eq!(
        resp(&mut stream, "EXISTS saved at-shutdown").await,
        ":2\r\n"
    );
    assert_eq!(resp(&mut stream, "SET in-aof 1").await, "+OK\r\n");
    drop(stream);
    let _ = child.kill().await; // SIGKILL: only the file can bring it back
    let _ = child.wait().await;
    let mut child = with_aof();
    let mut stream = connect().await;
    assert_eq!(
        resp(&mut stream, "EXISTS saved at-shutdown in-aof").await,
        ":3\r\n"
    );
    drop(stream);
    let _ = child.kill().await;
    std::fs::remove_dir_all(&data).ok();
}

const BUN_KMS: &str = env!("CARGO_BIN_EXE_bun-kms");

fn private_file(dir: &std::path::Path, name: &str, contents: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn start_kms(data: &std::path::Path, key_file: &std::path::Path, port: u16) -> Child {
    let child = Command::new(BUN_KMS)
        .env_clear()
        .env("BUNKMS_LISTEN", format!("127.0.0.1:{port}"))
        .env("BUNKMS_DATA_DIR", data)
        .env("BUNKMS_MASTER_KEY_FILE", key_file)
        .env("BUNKMS_TOKENS", "alpha:rwa:alpha-token-0000000000000001")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bun-kms did not start");
}

#[tokio::test]
async fn bun_kms_refuses_bad_master_keys_and_rewraps_offline() {
    let data = temp_dir("kms");
    // No master key, a readable file, a short key: each refuses to start.
    let mut command = Command::new(BUN_KMS);
    command
        .env_clear()
        .env("BUNKMS_DATA_DIR", &data)
        .env("BUNKMS_TOKENS", "alpha:rwa:alpha-token-0000000000000001");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("no master key"), "{text}");
    let readable = data.join("readable");
    std::fs::write(&readable, "11".repeat(32)).unwrap();
    let mut command = Command::new(BUN_KMS);
    command
        .env_clear()
        .env("BUNKMS_DATA_DIR", &data)
        .env("BUNKMS_MASTER_KEY_FILE", &readable)
        .env("BUNKMS_TOKENS", "alpha:rwa:alpha-token-0000000000000001");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok, "{text}");
    let mut command = Command::new(BUN_KMS);
    command
        .env_clear()
        .env("BUNKMS_DATA_DIR", &data)
        .env("BUNKMS_MASTER_KEY", "00".repeat(16))
        .env("BUNKMS_TOKENS", "alpha:rwa:alpha-token-0000000000000001");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("32 bytes"), "{text}");

    // Data under key A, re-wrapped offline to key B.
    let key_a = private_file(&data, "key-a", &"aa".repeat(32));
    let key_b = private_file(&data, "key-b", &"bb".repeat(32));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/kms/v1/projects/alpha");
    let token = "alpha-token-0000000000000001";
    let http = reqwest::Client::new();
    let mut kms = start_kms(&data, &key_a, port).await;
    let created = http
        .post(format!("{base}/keys"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "k", "purpose": "encrypt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let sealed: serde_json::Value = http
        .post(format!("{base}/keys/k/encrypt"))
        .bearer_auth(token)
        .json(&serde_json::json!({"plaintext": "aGVsbG8="}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sigterm(&kms);
    let _ = kms.wait().await;

    let mut rewrap = Command::new(BUN_KMS);
    rewrap
        .env_clear()
        .env("BUNKMS_DATA_DIR", &data)
        .env("BUNKMS_MASTER_KEY_FILE", &key_a)
        .args(["rewrap", "--new-master-key-file"])
        .arg(&key_b);
    let (ok, text) = run_to_exit(rewrap).await;
    assert!(ok, "{text}");
    assert!(text.contains("re-wrapped 1 key versions"), "{text}");

    let decrypt = |port: u16| {
        let http = http.clone();
        let ciphertext = sealed["ciphertext"].clone();
        async move {
            http.post(format!(
                "http://127.0.0.1:{port}/kms/v1/projects/alpha/keys/k/decrypt"
            ))
            .bearer_auth(token)
            .json(&serde_json::json!({"ciphertext": ciphertext}))
            .send()
            .await
            .unwrap()
        }
    };
    let mut kms = start_kms(&data, &key_b, port).await;
    let opened = decrypt(port).await;
    assert_eq!(opened.status(), 200);
    let opened: serde_json::Value = opened.json().await.unwrap();
    assert_eq!(opened["plaintext"], "aGVsbG8=");
    sigterm(&kms);
    let _ = kms.wait().await;
    // The old master key is refused at start, naming the right one.
    let mut command = Command::new(BUN_KMS);
    command
        .env_clear()
        .env("BUNKMS_DATA_DIR", &data)
        .env("BUNKMS_MASTER_KEY_FILE", &key_a)
        .env("BUNKMS_TOKENS", "alpha:rwa:alpha-token-0000000000000001");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("wrapped under master key"), "{text}");
    std::fs::remove_dir_all(&data).ok();
}

const BUNDOC: &str = env!("CARGO_BIN_EXE_bundoc");

#[tokio::test]
async fn bundoc_runs_on_sqlite_and_refuses_bad_config() {
    let data = temp_dir("bundoc");
    let token = "alpha:rwa:alpha-token-0000000000000001";
    // No credentials; a KMS URL without its token; an unreadable store.
    let refusals = [
        (vec![], "no credentials configured"),
        (
            vec![
                ("BUNDOC_TOKENS", token),
                ("BUNDOC_KMS_URL", "http://127.0.0.1:1"),
            ],
            "BUNDOC_KMS_TOKEN",
        ),
        (
            vec![
                ("BUNDOC_TOKENS", token),
                ("BUNDOC_DATABASE_URL", "/nonexistent/dir/bundoc.db"),
            ],
            "document store",
        ),
    ];
    for (env, expected) in refusals {
        let mut command = Command::new(BUNDOC);
        command.env_clear().env("BUNDOC_DATA_DIR", &data).envs(env);
        let (ok, text) = run_to_exit(command).await;
        assert!(!ok, "{text}");
        assert!(text.contains(expected), "{expected}: {text}");
    }

    let port = free_port();
    let mut bundoc = Command::new(BUNDOC)
        .env_clear()
        .env("BUNDOC_LISTEN", format!("127.0.0.1:{port}"))
        .env("BUNDOC_DATABASE_URL", data.join("docs.db"))
        .env("BUNDOC_TOKENS", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            healthy = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "bundoc is healthy");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("docs.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let collections = format!("{base}/bundoc/v1/projects/alpha/collections");
    let send = |request: reqwest::RequestBuilder| {
        request.bearer_auth("alpha-token-0000000000000001").send()
    };
    let created = send(
        http.post(&collections)
            .json(&serde_json::json!({"name": "notes"})),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let created = send(
        http.post(format!("{collections}/notes/documents"))
            .json(&serde_json::json!({"_id": "n1", "text": "hello"})),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    // Without BunKMS, encrypted fields are refused clearly.
    let refused = send(
        http.post(&collections)
            .json(&serde_json::json!({"name": "secrets", "encrypted": ["s"]})),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("BunKMS"));
    sigterm(&bundoc);
    let status = tokio::time::timeout(Duration::from_secs(15), bundoc.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    // The document is still there after a restart.
    let mut again = Command::new(BUNDOC)
        .env_clear()
        .env("BUNDOC_LISTEN", format!("127.0.0.1:{port}"))
        .env("BUNDOC_DATABASE_URL", data.join("docs.db"))
        .env("BUNDOC_TOKENS", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut got = None;
    for _ in 0..100 {
        if let Ok(r) = send(http.get(format!("{collections}/notes/documents/n1"))).await {
            got = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = got.expect("bundoc restarted");
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["etag"], "\"1\"");
    let doc: serde_json::Value = got.json().await.unwrap();
    assert_eq!(doc["text"], "hello");
    sigterm(&again);
    let _ = again.wait().await;
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test]
async fn bundoc_encrypts_fields_with_a_remote_bun_kms() {
    let data = temp_dir("bundoc-kms");
    let platform = "platform-token-0000000000001";
    let key_file = private_file(&data, "master-key", &"cc".repeat(32));
    let kms_port = free_port();
    let mut kms = Command::new(BUN_KMS)
        .env_clear()
        .env("BUNKMS_LISTEN", format!("127.0.0.1:{kms_port}"))
        .env("BUNKMS_DATA_DIR", &data)
        .env("BUNKMS_MASTER_KEY_FILE", &key_file)
        .env("BUNKMS_TOKENS", format!("*:rwa:{platform}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let token_file = private_file(&data, "kms-token", platform);
    let port = free_port();
    let mut bundoc = Command::new(BUNDOC)
        .env_clear()
        .env("BUNDOC_LISTEN", format!("127.0.0.1:{port}"))
        .env("BUNDOC_DATA_DIR", &data)
        .env("BUNDOC_TOKENS", "alpha:rwa:alpha-token-0000000000000001")
        .env("BUNDOC_KMS_URL", format!("http://127.0.0.1:{kms_port}"))
        .env("BUNDOC_KMS_TOKEN_FILE", &token_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    for url in [
        format!("http://127.0.0.1:{kms_port}/health"),
        format!("http://127.0.0.1:{port}/health"),
    ] {
        let mut up = false;
        for _ in 0..100 {
            if http.get(&url).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "{url}");
    }
    let collections = format!("http://127.0.0.1:{port}/bundoc/v1/projects/alpha/collections");
    let send = |request: reqwest::RequestBuilder| {
        request.bearer_auth("alpha-token-0000000000000001").send()
    };
    let created = send(
        http.post(&collections)
            .json(&serde_json::json!({"name": "people", "encrypted": ["ssn"]})),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let created = send(
        http.post(format!("{collections}/people/documents"))
            .json(&serde_json::json!({"_id": "person-0001", "ssn": "123-45-6789"})),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let doc: serde_json::Value =
        send(http.get(format!("{collections}/people/documents/person-0001")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(doc["ssn"], "123-45-6789");
    // The plaintext never reaches the files (database and its WAL); the
    // id does, so the check can see the document at all.
    let mut stored = Vec::new();
    for suffix in ["", "-wal"] {
        stored.extend(std::fs::read(data.join(format!("bundoc.db{suffix}"))).unwrap_or_default());
    }
    assert!(stored.windows(11).any(|w| w == b"person-0001"));
    assert!(
        !stored.windows(11).any(|w| w == b"123-45-6789"),
        "the field is stored encrypted"
    );
    // Without BunKMS, health says so (and the cached data key still
    // serves reads).
    sigterm(&kms);
    let _ = kms.wait().await;
    let health = http
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    assert!(health.text().await.unwrap().contains("kms"));
    let again = send(http.get(format!("{collections}/people/documents/person-0001")))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    sigterm(&bundoc);
    let _ = bundoc.wait().await;
    std::fs::remove_dir_all(&data).ok();
}

//! The compiled binaries, run as an operator would: flags, env, secrets,
//! start-up messages, and shutdown on SIGTERM. Every server is told to
//! listen on 127.0.0.1:0 and reports where it listens, so parallel tests
//! never race for a port.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

const BUNBASE: &str = env!("CARGO_BIN_EXE_bunbase");
const BUNCAST: &str = env!("CARGO_BIN_EXE_buncast");
const BUNDER: &str = env!("CARGO_BIN_EXE_bunder");
const BUNDER_MANAGER: &str = env!("CARGO_BIN_EXE_bunder-manager");
const BUN_KMS: &str = env!("CARGO_BIN_EXE_bun-kms");
const BUNDOC: &str = env!("CARGO_BIN_EXE_bundoc");
const PLATFORM: &str = env!("CARGO_BIN_EXE_platform");
const BUN_AUTH: &str = env!("CARGO_BIN_EXE_bun-auth");
const STORAGE: &str = env!("CARGO_BIN_EXE_storage");
const FUNCTIONS: &str = env!("CARGO_BIN_EXE_functions");

const ALPHA_TOKENS: &str = "alpha:rwa:alpha-token-0000000000000001";
const ALPHA_TOKEN: &str = "alpha-token-0000000000000001";

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

fn private_file(dir: &std::path::Path, name: &str, contents: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Drops terminal colour codes (`ESC [ … letter`) from a log line.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address a log or banner line reports: `address=HOST:PORT` (the
/// services' start-up log) or `listening on http://HOST:PORT` (the
/// all-in-one's banner).
fn reported_address(line: &str) -> Option<String> {
    let rest = line
        .split("address=")
        .nth(1)
        .or_else(|| line.split("listening on http://").nth(1))?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// What a binary does once it listens.
#[derive(Clone, Copy, PartialEq)]
enum Ready {
    /// It reported its address.
    Listening,
    /// Its `/health` answers 200 too.
    Healthy,
}

/// A binary under test.
struct Running {
    child: Child,
    /// Where it listens (the first address it reported).
    address: String,
    /// Everything it printed so far, stdout and stderr, colours removed.
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn printed(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The address on the first printed line holding `marker`: its
    /// `address=`, else what follows the marker (`redis://HOST:PORT`).
    async fn address_of(&self, marker: &str) -> String {
        self.wait_for(marker).await;
        let lines = self.lines.lock().unwrap();
        let line = lines.iter().find(|l| l.contains(marker)).unwrap();
        reported_address(line)
            .or_else(|| {
                let after = line.split(marker).nth(1)?;
                Some(after.split([' ', ')']).next()?.to_string())
            })
            .unwrap_or_else(|| panic!("no address on {line:?}"))
    }

    /// Waits (up to 20 s) until it has printed `fragment`.
    async fn wait_for(&self, fragment: &str) {
        for _ in 0..400 {
            if self.printed().contains(fragment) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never printed {fragment:?}:\n{}", self.printed());
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then its exit status (within 15 s).
    async fn stop(mut self) -> ExitStatus {
        self.sigterm();
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits in time")
            .unwrap()
    }

    /// SIGKILL: a crash.
    async fn kill(mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}

/// Copies `stream`'s lines into `lines`.
fn collect(stream: impl AsyncRead + Unpin + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.lock().unwrap().push(plain(&line));
        }
    });
}

/// Starts `command` (told to listen on 127.0.0.1:0) and waits until it
/// reports its address and, for [`Ready::Healthy`], answers `/health`.
async fn launch(mut command: Command, ready: Ready) -> Running {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    collect(child.stdout.take().unwrap(), lines.clone());
    collect(child.stderr.take().unwrap(), lines.clone());
    let mut address = None;
    for _ in 0..400 {
        address = lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| reported_address(l));
        if address.is_some() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "exited ({status}) before listening:\n{}",
                lines.lock().unwrap().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let running = Running {
        child,
        address: address.unwrap_or_else(|| {
            panic!(
                "never said where it listens:\n{}",
                lines.lock().unwrap().join("\n")
            )
        }),
        lines,
    };
    if ready == Ready::Healthy {
        let health = format!("{}/health", running.url());
        let mut healthy = false;
        for _ in 0..200 {
            if let Ok(r) = reqwest::get(&health).await
                && r.status() == 200
            {
                healthy = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            healthy,
            "{health} never answered 200:\n{}",
            running.printed()
        );
    }
    running
}

/// A command for `binary` with a clean environment (tests set what they mean).
fn binary(path: &str) -> Command {
    let mut command = Command::new(path);
    command.env_clear();
    command
}

/// `bunbase` on `data` and a free port, healthy, with `extra` flags.
async fn start_bunbase(data: &std::path::Path, extra: &[&str]) -> Running {
    let mut command = binary(BUNBASE);
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra);
    let running = launch(command, Ready::Healthy).await;
    // The banner's last fixed line (the rest is printed before serving).
    running.wait_for("/metrics").await;
    running
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

/// `bunder` on `data` with `extra` flags, listening.
async fn start_bunder(data: &std::path::Path, extra: &[&str]) -> Running {
    let mut command = binary(BUNDER);
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra);
    launch(command, Ready::Listening).await
}

async fn connect(server: &Running) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(&server.address)
        .await
        .unwrap()
}

#[tokio::test]
async fn bunbase_runs_the_platform_and_stops_on_sigterm() {
    let data = temp_dir("run");
    let bunbase = start_bunbase(&data, &[]).await;
    let url = bunbase.url();
    let text = bunbase.printed();
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
    bunbase.wait_for(&token).await; // the token is printed

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
    bunbase.sigterm();
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
    let status = bunbase.stop().await;
    assert!(status.success(), "exit status {status:?}");

    // A restart keeps the same development token.
    let again = start_bunbase(&data, &[]).await;
    let url = again.url();
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
    again.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

/// `--services` runs a subset: health lists only those, the others'
/// prefixes answer 404 saying why, and nothing of theirs is created.
#[tokio::test]
async fn bunbase_runs_only_the_services_asked_for() {
    let data = temp_dir("subset");
    let bunbase = start_bunbase(&data, &["--services", "events,kv"]).await;
    let url = bunbase.url();
    let text = bunbase.printed();
    assert!(
        text.contains("not running     api, kms, bundoc, storage"),
        "{text}"
    );
    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checks: Vec<&String> = health["checks"].as_object().unwrap().keys().collect();
    checks.sort();
    assert_eq!(checks, ["buncast", "kv-store"], "{health}");
    let token = std::fs::read_to_string(data.join("dev-tokens")).unwrap();
    let token = token.trim().splitn(3, ':').nth(2).unwrap().to_string();
    let put = http
        .put(format!("{url}/kv/v1/projects/demo/keys/k"))
        .bearer_auth(&token)
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    for (path, service) in [
        ("/bundoc/v1/projects/demo/collections", "bundoc"),
        ("/kms/v1/projects/demo/keys", "kms"),
        ("/api/v1/auth/me", "api"),
        ("/api", "api"),
        ("/storage/v1/projects/demo/buckets", "storage"),
    ] {
        let answer = http
            .get(format!("{url}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("the {service} service is not enabled")),
            "{path}: {message}"
        );
    }
    for file in [
        "identity.db",
        "kms.db",
        "bundoc.db",
        "dev-master-key",
        "storage.db",
        "storage-secret",
    ] {
        assert!(
            !data.join(file).exists(),
            "{file} made by a disabled service"
        );
    }
    bunbase.stop().await;

    // Unknown names are refused, naming the services there are.
    let mut command = binary(BUNBASE);
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("BUNBASE_SERVICES", "events,files");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("unknown service \"files\""), "{text}");
    assert!(
        text.contains("api, kms, events, kv, bundoc, storage"),
        "{text}"
    );
    // The RESP port needs the kv service.
    let mut command = binary(BUNBASE);
    command
        .args(["--listen", "127.0.0.1:0", "--services", "events"])
        .args(["--resp-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("enable kv"), "{text}");
    std::fs::remove_dir_all(&data).ok();
}

fn buncast() -> Command {
    let mut command = binary(BUNCAST);
    command.args(["--listen", "127.0.0.1:0"]);
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
                "BUNCAST_AUTH_URL",
                "BUNCAST_BUS",
                "BUNCAST_REDIS_URL",
                "BUNCAST_RETAIN",
                "BUNCAST_QUEUE",
                "BUNCAST_MAX_PAYLOAD",
                "BUNCAST_MAX_RETAINED_BYTES",
                "BUNCAST_MAX_SUBSCRIBERS_PER_PROJECT",
                "BUNCAST_RECHECK_SECS",
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
                "BUNBASE_SERVICES",
                "BUNBASE_PUBLIC_URL",
                "BUNCAST_BUS",
                "BUNBASE_RESP_LISTEN",
                "BUNBASE_RESP_PASSWORD_FILE",
                "BUNBASE_KV_APPENDFSYNC",
                "BUNBASE_KV_MAXMEMORY",
                "BUNBASE_SIGNUP",
                "BUNBASE_MAX_PROJECTS_PER_ACCOUNT",
                "BUNDER_MANAGER_KV_URL",
                "BUNDER_MANAGER_MAX_KEYS",
                "BUNKMS_MASTER_KEY_FILE",
                "BUNDOC_DATABASE_URL",
                "BUNDOC_KMS_URL",
                "development token",
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
        (
            BUN_KMS,
            &[
                "BUNKMS_LISTEN",
                "BUNKMS_DATA_DIR",
                "BUNKMS_TOKENS",
                "BUNKMS_AUTH_URL",
                "BUNKMS_MASTER_KEY_FILE",
                "BUNKMS_DATABASE_URL",
                "BUNKMS_MAX_PLAINTEXT",
                "rewrap",
            ][..],
        ),
        (
            PLATFORM,
            &[
                "PLATFORM_LISTEN",
                "PLATFORM_DATABASE_URL",
                "PLATFORM_DATABASE_URL_FILE",
                "PLATFORM_PUBLIC_URL",
                "PLATFORM_ACCESS_TTL_SECS",
                "PLATFORM_KEY_ROTATION_DAYS",
                "PLATFORM_CACHE_URL",
                "PLATFORM_SIGNUP",
                "PLATFORM_MAX_PROJECTS_PER_ACCOUNT",
            ][..],
        ),
        (
            BUNDER,
            &[
                "BUNDER_LISTEN",
                "BUNDER_PASSWORD",
                "BUNDER_UNPROTECTED",
                "BUNDER_MAXMEMORY",
            ][..],
        ),
        (
            BUN_AUTH,
            &[
                "BUNAUTH_LISTEN",
                "BUNAUTH_HTTP_LISTEN",
                "BUNAUTH_DATABASE_URL",
                "BUNAUTH_PUBLIC_URL",
                "BUNAUTH_ACCESS_TTL_SECS",
                "BUNAUTH_CACHE_URL",
            ][..],
        ),
    ] {
        let mut command = Command::new(binary);
        command.arg("--help");
        let (ok, text) = run_to_exit(command).await;
        assert!(ok);
        for name in names {
            assert!(text.contains(name), "{binary} --help lacks {name}:\n{text}");
        }
    }
}

#[tokio::test]
async fn bunder_keeps_every_acknowledged_write_across_a_crash() {
    let data = temp_dir("bunder");
    let always = ["--appendonly", "--appendfsync", "always"];
    let first = start_bunder(&data, &always).await;
    let mut c = connect(&first).await;
    assert_eq!(resp(&mut c, "SET a 1").await, "+OK\r\n");
    assert_eq!(resp(&mut c, "INCRBY a 9").await, ":10\r\n");
    assert_eq!(resp(&mut c, "RPUSH l x y").await, ":2\r\n");
    // A crash, not a shutdown: SIGKILL right after the replies.
    first.kill().await;
    let second = start_bunder(&data, &always).await;
    let mut c = connect(&second).await;
    assert_eq!(resp(&mut c, "GET a").await, "$2\r\n10\r\n");
    assert_eq!(resp(&mut c, "LLEN l").await, ":2\r\n");
    second.kill().await;
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test]
async fn bunbase_kv_survives_a_restart_and_shares_its_engine_over_resp() {
    let data = temp_dir("kv");
    let bunbase = start_bunbase(&data, &["--resp-listen", "127.0.0.1:0"]).await;
    let url = bunbase.url();
    let text = bunbase.printed();
    assert!(text.contains("/kv"), "{text}");
    let resp_address = bunbase.address_of("redis://").await;
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
    let mut stream = tokio::net::TcpStream::connect(&resp_address).await.unwrap();
    assert_eq!(
        resp(&mut stream, "GET kv:demo:greeting").await,
        "$5\r\nhello\r\n"
    );
    assert_eq!(
        resp(&mut stream, "SET kv:demo:fromresp hi").await,
        "+OK\r\n"
    );
    drop(stream);
    let status = bunbase.stop().await;
    assert!(status.success(), "exit status {status:?}");

    // Everything is back after the restart (data/kv.aof).
    let again = start_bunbase(&data, &[]).await;
    let url = again.url();
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
    again.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test]
async fn bunder_manager_runs_on_a_bunder_server() {
    // Refuses to start without a KV server or without credentials.
    let mut command = binary(BUNDER_MANAGER);
    command.env(
        "BUNDER_MANAGER_TOKENS",
        "alpha:rw:alpha-token-0000000000000001",
    );
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("BUNDER_MANAGER_KV_URL"), "{text}");
    let mut command = binary(BUNDER_MANAGER);
    command.env("BUNDER_MANAGER_KV_URL", "redis://127.0.0.1:1");
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("no credentials configured"), "{text}");

    let data = temp_dir("manager");
    let bunder = start_bunder(&data, &["--appendonly"]).await;
    let mut command = binary(BUNDER_MANAGER);
    command
        .env("BUNDER_MANAGER_LISTEN", "127.0.0.1:0")
        .env(
            "BUNDER_MANAGER_KV_URL",
            format!("redis://{}", bunder.address),
        )
        .env(
            "BUNDER_MANAGER_TOKENS",
            "alpha:rw:alpha-token-0000000000000001",
        )
        .env("BUNDER_MANAGER_MAX_KEYS", "1");
    let manager = launch(command, Ready::Healthy).await;
    let http = reqwest::Client::new();
    let base = manager.url();
    let put = |key: &'static str| {
        http.put(format!("{base}/kv/v1/projects/alpha/keys/{key}"))
            .bearer_auth(ALPHA_TOKEN)
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
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "v");
    // The KV server going away turns health red, not the process down.
    bunder.kill().await;
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let status = manager.stop().await;
    assert!(status.success(), "exit status {status:?}");
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test]
async fn bunder_serves_prometheus_metrics() {
    let data = temp_dir("bunder-metrics");
    let bunder = start_bunder(
        &data,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--appendonly",
            "--appendfsync",
            "everysec",
            "--maxmemory",
            "64MiB",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
    )
    .await;
    let metrics = format!("http://{}", bunder.address_of("/metrics").await);
    let mut stream = connect(&bunder).await;
    assert_eq!(resp(&mut stream, "SET a 1").await, "+OK\r\n");
    assert_eq!(resp(&mut stream, "SET b 2").await, "+OK\r\n");
    assert_eq!(resp(&mut stream, "GET a").await, "$1\r\n1\r\n");
    let text = reqwest::get(format!("{metrics}/metrics"))
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
    let health = reqwest::get(format!("{metrics}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let status = bunder.stop().await;
    assert!(status.success(), "exit status {status:?}");
    std::fs::remove_dir_all(&data).ok();
}

/// Redis's protected mode: no password on an address other machines reach
/// is refused unless asked for; HTTP sent to the RESP port is dropped.
#[tokio::test]
async fn bunder_protects_an_open_port_and_drops_http() {
    let data = temp_dir("bunder-protected");
    let mut open = binary(BUNDER);
    open.args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data);
    let (ok, text) = run_to_exit(open).await;
    assert!(!ok, "{text}");
    assert!(text.contains("--unprotected"), "{text}");

    let mut command = binary(BUNDER);
    command
        .args(["--listen", "0.0.0.0:0", "--unprotected", "--data-dir"])
        .arg(&data);
    let bunder = launch(command, Ready::Listening).await;
    let port = bunder.address.rsplit(':').next().unwrap().to_owned();
    let local = format!("127.0.0.1:{port}");
    let mut stream = tokio::net::TcpStream::connect(&local).await.unwrap();
    assert_eq!(resp(&mut stream, "SET k HTTP/1.1").await, "+OK\r\n");
    for request in ["POST / HTTP/1.1", "GET / HTTP/1.1", "Host: 127.0.0.1"] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&local).await.unwrap();
        stream
            .write_all(format!("{request}\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "{request}: {read:?}");
    }
    bunder.wait_for("HTTP request on the RESP port").await;
    // Ordinary clients are unaffected.
    assert_eq!(resp(&mut stream, "GET k").await, "$8\r\nHTTP/1.1\r\n");
    bunder.kill().await;
    std::fs::remove_dir_all(&data).ok();
}

/// Without the append-only file, snapshots are the persistence: SAVE and
/// BGSAVE write one, shutdown writes a last one, start loads it.
#[tokio::test]
async fn bunder_snapshots_survive_a_restart() {
    let data = temp_dir("bunder-snapshot");
    let snapshots = ["--snapshot-interval", "3600"];
    let bunder = start_bunder(&data, &snapshots).await;
    let mut stream = connect(&bunder).await;
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
    assert!(bunder.stop().await.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("bunder.snapshot"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let bunder = start_bunder(&data, &snapshots).await;
    let mut stream = connect(&bunder).await;
    assert_eq!(
        resp(&mut stream, "LRANGE saved 0 -1").await,
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        resp(&mut stream, "EXISTS after-save at-shutdown").await,
        ":2\r\n"
    );
    drop(stream);
    bunder.kill().await;

    // Turning the append-only file on starts from the snapshot (not empty),
    // and from then on the file holds everything.
    let with_aof = ["--appendonly", "--appendfsync", "always"];
    let bunder = start_bunder(&data, &with_aof).await;
    let mut stream = connect(&bunder).await;
    assert_eq!(
        resp(&mut stream, "EXISTS saved at-shutdown").await,
        ":2\r\n"
    );
    assert_eq!(resp(&mut stream, "SET in-aof 1").await, "+OK\r\n");
    drop(stream);
    bunder.kill().await; // SIGKILL: only the file can bring it back
    let bunder = start_bunder(&data, &with_aof).await;
    let mut stream = connect(&bunder).await;
    assert_eq!(
        resp(&mut stream, "EXISTS saved at-shutdown in-aof").await,
        ":3\r\n"
    );
    drop(stream);
    bunder.kill().await;
    std::fs::remove_dir_all(&data).ok();
}

fn bun_kms(data: &std::path::Path) -> Command {
    let mut command = binary(BUN_KMS);
    command.env("BUNKMS_DATA_DIR", data);
    command
}

async fn start_kms(data: &std::path::Path, key_file: &std::path::Path) -> Running {
    let mut command = bun_kms(data);
    command
        .env("BUNKMS_LISTEN", "127.0.0.1:0")
        .env("BUNKMS_MASTER_KEY_FILE", key_file)
        .env("BUNKMS_TOKENS", ALPHA_TOKENS);
    launch(command, Ready::Healthy).await
}

#[tokio::test]
async fn bun_kms_refuses_bad_master_keys_and_rewraps_offline() {
    let data = temp_dir("kms");
    // No master key, a readable file, a short key: each refuses to start.
    let mut command = bun_kms(&data);
    command.env("BUNKMS_TOKENS", ALPHA_TOKENS);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("no master key"), "{text}");
    let readable = data.join("readable");
    std::fs::write(&readable, "11".repeat(32)).unwrap();
    let mut command = bun_kms(&data);
    command
        .env("BUNKMS_MASTER_KEY_FILE", &readable)
        .env("BUNKMS_TOKENS", ALPHA_TOKENS);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok, "{text}");
    let mut command = bun_kms(&data);
    command
        .env("BUNKMS_MASTER_KEY", "00".repeat(16))
        .env("BUNKMS_TOKENS", ALPHA_TOKENS);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("32 bytes"), "{text}");

    // Data under key A, re-wrapped offline to key B.
    let key_a = private_file(&data, "key-a", &"aa".repeat(32));
    let key_b = private_file(&data, "key-b", &"bb".repeat(32));
    let http = reqwest::Client::new();
    let kms = start_kms(&data, &key_a).await;
    let base = format!("{}/kms/v1/projects/alpha", kms.url());
    let created = http
        .post(format!("{base}/keys"))
        .bearer_auth(ALPHA_TOKEN)
        .json(&serde_json::json!({"name": "k", "purpose": "encrypt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let sealed: serde_json::Value = http
        .post(format!("{base}/keys/k/encrypt"))
        .bearer_auth(ALPHA_TOKEN)
        .json(&serde_json::json!({"plaintext": "aGVsbG8="}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    kms.stop().await;

    let mut rewrap = bun_kms(&data);
    rewrap
        .env("BUNKMS_MASTER_KEY_FILE", &key_a)
        .args(["rewrap", "--new-master-key-file"])
        .arg(&key_b);
    let (ok, text) = run_to_exit(rewrap).await;
    assert!(ok, "{text}");
    assert!(text.contains("re-wrapped 1 key versions"), "{text}");

    let kms = start_kms(&data, &key_b).await;
    let opened = http
        .post(format!(
            "{}/kms/v1/projects/alpha/keys/k/decrypt",
            kms.url()
        ))
        .bearer_auth(ALPHA_TOKEN)
        .json(&serde_json::json!({"ciphertext": sealed["ciphertext"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let opened: serde_json::Value = opened.json().await.unwrap();
    assert_eq!(opened["plaintext"], "aGVsbG8=");
    kms.stop().await;
    // The old master key is refused at start, naming the right one.
    let mut command = bun_kms(&data);
    command
        .env("BUNKMS_MASTER_KEY_FILE", &key_a)
        .env("BUNKMS_TOKENS", ALPHA_TOKENS);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok);
    assert!(text.contains("wrapped under master key"), "{text}");
    std::fs::remove_dir_all(&data).ok();
}

fn bundoc(data: &std::path::Path) -> Command {
    let mut command = binary(BUNDOC);
    command
        .env("BUNDOC_LISTEN", "127.0.0.1:0")
        .env("BUNDOC_DATA_DIR", data);
    command
}

#[tokio::test]
async fn bundoc_runs_on_sqlite_and_refuses_bad_config() {
    let data = temp_dir("bundoc");
    // No credentials; a KMS URL without its token; an unreadable store.
    let refusals = [
        (vec![], "no credentials configured"),
        (
            vec![
                ("BUNDOC_TOKENS", ALPHA_TOKENS),
                ("BUNDOC_KMS_URL", "http://127.0.0.1:1"),
            ],
            "BUNDOC_KMS_TOKEN",
        ),
        (
            vec![
                ("BUNDOC_TOKENS", ALPHA_TOKENS),
                ("BUNDOC_DATABASE_URL", "/nonexistent/dir/bundoc.db"),
            ],
            "document store",
        ),
    ];
    for (env, expected) in refusals {
        let mut command = bundoc(&data);
        command.envs(env);
        let (ok, text) = run_to_exit(command).await;
        assert!(!ok, "{text}");
        assert!(text.contains(expected), "{expected}: {text}");
    }

    let store = data.join("docs.db");
    let start = || {
        let mut command = bundoc(&data);
        command
            .env("BUNDOC_DATABASE_URL", &store)
            .env("BUNDOC_TOKENS", ALPHA_TOKENS);
        launch(command, Ready::Healthy)
    };
    let server = start().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&store).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let http = reqwest::Client::new();
    let collections = format!("{}/bundoc/v1/projects/alpha/collections", server.url());
    let send = |request: reqwest::RequestBuilder| request.bearer_auth(ALPHA_TOKEN).send();
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
    let status = server.stop().await;
    assert!(status.success(), "exit status {status:?}");

    // The document is still there after a restart.
    let again = start().await;
    let collections = format!("{}/bundoc/v1/projects/alpha/collections", again.url());
    let got = send(http.get(format!("{collections}/notes/documents/n1")))
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["etag"], "\"1\"");
    let doc: serde_json::Value = got.json().await.unwrap();
    assert_eq!(doc["text"], "hello");
    again.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test]
async fn bundoc_encrypts_fields_with_a_remote_bun_kms() {
    let data = temp_dir("bundoc-kms");
    let platform = "platform-token-0000000000001";
    let key_file = private_file(&data, "master-key", &"cc".repeat(32));
    let mut command = bun_kms(&data);
    command
        .env("BUNKMS_LISTEN", "127.0.0.1:0")
        .env("BUNKMS_MASTER_KEY_FILE", &key_file)
        .env("BUNKMS_TOKENS", format!("*:rwa:{platform}"));
    let kms = launch(command, Ready::Healthy).await;
    let token_file = private_file(&data, "kms-token", platform);
    let mut command = bundoc(&data);
    command
        .env("BUNDOC_TOKENS", ALPHA_TOKENS)
        .env("BUNDOC_KMS_URL", kms.url())
        .env("BUNDOC_KMS_TOKEN_FILE", &token_file);
    let server = launch(command, Ready::Healthy).await;
    let http = reqwest::Client::new();
    let collections = format!("{}/bundoc/v1/projects/alpha/collections", server.url());
    let send = |request: reqwest::RequestBuilder| request.bearer_auth(ALPHA_TOKEN).send();
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
    kms.stop().await;
    let health = http
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    assert!(health.text().await.unwrap().contains("kms"));
    let again = send(http.get(format!("{collections}/people/documents/person-0001")))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    server.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

/// The platform and bun-auth as deployed: the same identity service, from
/// the same flags they always took.
#[tokio::test]
async fn platform_and_bun_auth_start_on_one_sqlite_database() {
    let data = temp_dir("identity");
    let url = format!("sqlite://{}", data.join("identity.db").display());
    let mut command = binary(PLATFORM);
    command
        .env("PLATFORM_LISTEN", "127.0.0.1:0")
        .env("PLATFORM_DATABASE_URL", &url);
    let platform = launch(command, Ready::Healthy).await;
    let health: serde_json::Value = reqwest::get(format!("{}/health", platform.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["checks"]["identity-db"]["status"], "ok", "{health}");
    let jwks = reqwest::get(format!("{}/api/.well-known/jwks.json", platform.url()))
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);

    let mut command = binary(BUN_AUTH);
    command
        .args(["--listen", "127.0.0.1:0"])
        .env("BUNAUTH_HTTP_LISTEN", "127.0.0.1:0")
        .env("BUNAUTH_DATABASE_URL", &url);
    let bun_auth = launch(command, Ready::Listening).await;
    // Its HTTP port (health, metrics) is the one it reports serving on;
    // the gRPC address is in the summary.
    let text = bun_auth.printed();
    assert!(text.contains("BunAuth gRPC on 127.0.0.1:"), "{text}");
    let health = reqwest::get(format!("{}/health", bun_auth.url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(bun_auth.stop().await.success());
    assert!(platform.stop().await.success());

    // Without a database, each says what to set.
    for (binary_path, env) in [(PLATFORM, "PLATFORM"), (BUN_AUTH, "BUNAUTH")] {
        let mut command = binary(binary_path);
        command.args(["--listen", "127.0.0.1:0"]);
        let (ok, text) = run_to_exit(command).await;
        assert!(!ok);
        assert!(text.contains(&format!("{env}_DATABASE_URL")), "{text}");
    }
    std::fs::remove_dir_all(&data).ok();
}

fn storage(data: &std::path::Path) -> Command {
    let mut command = binary(STORAGE);
    command
        .env("STORAGE_LISTEN", "127.0.0.1:0")
        .env("STORAGE_DATA_DIR", data);
    command
}

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `size` bytes made as they are sent, never held whole.
fn generated(size: u64) -> reqwest::Body {
    const CHUNK: u64 = 256 * 1024;
    let chunks = size.div_ceil(CHUNK);
    reqwest::Body::wrap_stream(futures_util::stream::iter((0..chunks).map(move |i| {
        let len = CHUNK.min(size - i * CHUNK) as usize;
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![(i % 251) as u8; len]))
    })))
}

#[tokio::test]
async fn storage_streams_large_objects_in_flat_memory_and_keeps_them() {
    let data = temp_dir("storage");
    // The standalone binary needs a shared secret (the all-in-one makes one).
    let mut command = storage(&data);
    command.env("STORAGE_TOKENS", ALPHA_TOKENS);
    let (ok, text) = run_to_exit(command).await;
    assert!(!ok, "{text}");
    assert!(text.contains("no storage secret"), "{text}");
    let secret = private_file(&data, "secret", &"ab".repeat(32));

    let start = || {
        let mut command = storage(&data);
        command
            .env("STORAGE_TOKENS", ALPHA_TOKENS)
            .env("STORAGE_SECRET_FILE", &secret);
        launch(command, Ready::Healthy)
    };
    let server = start().await;
    let pid = server.child.id().expect("running");
    let http = reqwest::Client::new();
    let base = format!("{}/storage/v1/projects/alpha", server.url());
    let made = http
        .post(format!("{base}/buckets"))
        .bearer_auth(ALPHA_TOKEN)
        .json(&serde_json::json!({"name": "large"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);

    // 256 MiB up and down: the process's memory stays flat.
    const SIZE: u64 = 256 * 1024 * 1024;
    let idle = rss(pid);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(idle));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let object = format!("{base}/buckets/large/objects/big.bin");
    let put = http
        .put(&object)
        .bearer_auth(ALPHA_TOKEN)
        .header("content-length", SIZE)
        .body(generated(SIZE))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let got = http
        .get(&object)
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let mut body = got.bytes_stream();
    let (mut received, mut at) = (0u64, 0u64);
    use futures_util::StreamExt;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        // Spot-check the pattern: byte n belongs to chunk n / 256 KiB.
        let expected = ((at / (256 * 1024)) % 251) as u8;
        assert_eq!(chunk[0], expected, "at {at}");
        at += chunk.len() as u64;
        received += chunk.len() as u64;
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    assert_eq!(received, SIZE);
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(idle);
    assert!(
        growth < 64 * 1024 * 1024,
        "RSS grew by {} MiB moving 256 MiB",
        growth / (1024 * 1024)
    );

    // The domain metrics say what happened, in text promtool accepts.
    let metrics = http
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        format!("storage_bytes{{project=\"alpha\"}} {SIZE}"),
        "storage_objects{project=\"alpha\"} 1".to_string(),
        format!("storage_bytes_in_total {SIZE}"),
        format!("storage_bytes_out_total {SIZE}"),
        "storage_operations_total{op=\"put_object\",result=\"ok\"} 1".to_string(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    promtool_accepts(&metrics);

    // An upload cut short stores nothing; the object survives a restart.
    let cut = http
        .put(format!("{base}/buckets/large/objects/cut.bin"))
        .bearer_auth(ALPHA_TOKEN)
        .header("content-length", 1024 * 1024)
        .body(generated(1000))
        .send()
        .await;
    assert!(cut.is_err() || !cut.unwrap().status().is_success());
    server.stop().await;
    let again = start().await;
    let base = format!("{}/storage/v1/projects/alpha", again.url());
    let head = http
        .head(format!("{base}/buckets/large/objects/big.bin"))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], SIZE.to_string().as_str());
    let cut = http
        .head(format!("{base}/buckets/large/objects/cut.bin"))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cut.status(), 404);
    again.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

/// `promtool check metrics` on `text`.
fn promtool_accepts(text: &str) {
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian prometheus) is installed by .ci/run");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn functions_deploys_runs_and_keeps_its_functions_across_a_restart() {
    let data = temp_dir("functions");
    let start = || {
        let mut command = binary(FUNCTIONS);
        command
            .env("FUNCTIONS_LISTEN", "127.0.0.1:0")
            .env("FUNCTIONS_DATA_DIR", &data)
            .env("FUNCTIONS_TOKENS", ALPHA_TOKENS);
        launch(command, Ready::Healthy)
    };
    let server = start().await;
    let http = reqwest::Client::new();
    let manage = format!("{}/api/v1/projects/alpha/functions", server.url());
    let code = "interface R { n: number }\nlet n = 0;\nexport default async (request: Request) => Response.json({ n: ++n } as R);\n";
    let deployed = http
        .post(format!("{manage}/count/versions"))
        .bearer_auth(ALPHA_TOKEN)
        .json(&serde_json::json!({ "files": [{ "path": "index.ts", "code": code }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 201, "{}", deployed.text().await.unwrap());
    let call = format!("{}/functions/v1/projects/alpha/fn/count", server.url());
    for expected in 1..=2 {
        let answer = http
            .get(&call)
            .bearer_auth(ALPHA_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(answer.headers().contains_key("x-bunbase-invocation"));
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["n"], expected);
    }
    let refused = http.get(&call).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    let metrics = http
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "fn_invocations_total{function=\"count\",project=\"alpha\",status=\"ok\"} 2",
        "fn_cold_starts_total 1",
        "fn_deploys_total{result=\"ok\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    promtool_accepts(&metrics);

    // The function and its bundle are on disk: a restart serves it (cold).
    server.stop().await;
    let again = start().await;
    let call = format!("{}/functions/v1/projects/alpha/fn/count", again.url());
    let answer = http
        .get(&call)
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["n"], 1);
    // Records are written just after each answer: wait for the third.
    let mut logs = serde_json::Value::Null;
    for _ in 0..100 {
        logs = http
            .get(format!(
                "{}/api/v1/projects/alpha/functions/logs",
                again.url()
            ))
            .bearer_auth(ALPHA_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if logs["invocations"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        logs["invocations"].as_array().map(Vec::len),
        Some(3),
        "{logs}"
    );
    again.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

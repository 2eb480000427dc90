//! BunKMS benchmark: encrypt and decrypt of one plaintext size (1 KiB by
//! default), in operations per second, along four paths measured in the
//! same run:
//!
//! - raw AES-256-GCM on one thread (`crypto::seal`/`open`, as the service
//!   calls them): the limit nothing above can pass per core;
//! - the core API (`Kms::encrypt`/`decrypt`) on the memory store and on
//!   SQLite, from `--clients` concurrent tasks;
//! - HTTP through the BunKMS shell (SQLite store, the all-in-one's
//!   default) from `--clients` keep-alive clients, next to the shell's own
//!   `GET /health` on the same connections, so the HTTP figures read as a
//!   share of what the server and this client can do at all.
//!
//! The published Vault transit example is printed beside them as an anchor.
//!
//! Run: `cargo run --release -p bunbase-tests --features bench --bin kms-bench`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bunbase_core::ProjectId;
use bunbase_core::auth::{Principal, StaticTokens, TokenVerifier};
use bunbase_core::kms::adapters::memory::MemoryKms;
use bunbase_core::kms::adapters::sql::sqlite::SqliteKms;
use bunbase_core::kms::crypto::{self, Algorithm};
use bunbase_core::kms::master::MasterKey;
use bunbase_core::kms::{Kms, KmsLimits, KmsMetrics, KmsStore};
use bunbase_shells::bunkms::KmsModule;
use bunbase_shells::kit::Shutdown;
use bunbase_tests::bench::{Timing, measure};
use bunbase_tests::harness;
use bytes::Bytes;
use clap::Parser;
use reqwest::header::CONTENT_TYPE;

#[derive(Parser, Debug)]
struct Args {
    /// Seconds per measurement (each path's encrypt and decrypt are
    /// measured separately).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unmeasured load before each measurement (connections,
    /// caches, SQLite pages).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrent tasks for the core API, keep-alive clients for HTTP.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Plaintext bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Keep the SQLite files instead of removing them at exit.
    #[arg(long)]
    keep: bool,
}

const PROJECT: &str = "bench";
const KEY: &str = "bench-key";
/// A service token with every right in the project (≥ 16 characters).
const TOKEN: &str = "bench-token-000000000000000001";

/// The anchor: hashicorp/vault-benchmark, docs/tests/secret-transit.md,
/// "Example Usage" — one run mixing sign, verify, encrypt and decrypt at
/// equal weights (≈ 7.1k ops/s over the four), small payloads, hardware
/// not stated. These are its encrypt and decrypt rows.
const VAULT_ENCRYPT: f64 = 1785.4;
const VAULT_DECRYPT: f64 = 1805.9;

// ------------------------------------------------------------ measuring --

/// Runs `op` back to back on this thread for `warmup + run`; operations
/// per second over `run`.
fn spin(timing: Timing, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    const BATCH: u64 = 64; // read the clock once per batch, not per call
    let started = Instant::now();
    while started.elapsed() < timing.warmup {
        op()?;
    }
    let started = Instant::now();
    let mut done = 0;
    while started.elapsed() < timing.run {
        for _ in 0..BATCH {
            op()?;
        }
        done += BATCH;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

// ------------------------------------------------------------- raw AES --

/// `crypto::seal`/`open` exactly as the service calls them: key setup and
/// (for seal) a random nonce from the OS generator on every call.
fn raw_aes(size: usize, timing: Timing) -> anyhow::Result<(f64, f64)> {
    let key = crypto::random_bytes(32)?;
    let plaintext = crypto::random_bytes(size)?;
    let aad = b"bunkms-bench";
    let encrypt = spin(timing, || {
        std::hint::black_box(crypto::seal(&key, aad, &plaintext)?);
        Ok(())
    })?;
    let (nonce, sealed) = crypto::seal(&key, aad, &plaintext)?;
    let decrypt = spin(timing, || {
        std::hint::black_box(crypto::open(&key, &nonce, aad, &sealed)?);
        Ok(())
    })?;
    Ok((encrypt, decrypt))
}

// ------------------------------------------------------------- core API --

fn tokens() -> anyhow::Result<StaticTokens> {
    Ok(StaticTokens::parse(&format!("{PROJECT}:rwa:{TOKEN}"))?)
}

/// A fresh random master key: nothing here outlives the run.
fn master() -> anyhow::Result<Arc<MasterKey>> {
    Ok(Arc::new(MasterKey::from_bytes(&crypto::random_bytes(32)?)?))
}

/// What every core-API worker shares.
struct Core {
    kms: Kms,
    who: Principal,
    project: ProjectId,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
}

async fn core_api(
    store: Arc<dyn KmsStore>,
    args: &Args,
    timing: Timing,
) -> anyhow::Result<(f64, f64)> {
    let kms = Kms::new(
        store,
        master()?,
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    );
    let project = ProjectId::new(PROJECT)?;
    // The same principal the HTTP shell would resolve for the token.
    let who = tokens()?.verify(TOKEN, &project).await?;
    kms.create_key(&who, &project, KEY, Algorithm::Aes256Gcm, None)
        .await?;
    let plaintext = crypto::random_bytes(args.size)?.to_vec();
    let ciphertext = kms
        .encrypt(&who, &project, KEY, &plaintext, b"")
        .await?
        .ciphertext;
    let (opened, _, _) = kms.decrypt(&who, &project, &ciphertext, b"").await?;
    ensure!(opened[..] == plaintext[..], "core API round trip differs");
    let core = Arc::new(Core {
        kms,
        who,
        project,
        plaintext,
        ciphertext,
    });

    let c = core.clone();
    let encrypt = measure(args.clients, timing, move |_| {
        let c = c.clone();
        async move {
            c.kms
                .encrypt(&c.who, &c.project, KEY, &c.plaintext, b"")
                .await?;
            Ok(())
        }
    })
    .await
    .context("core API encrypt")?
    .rate;
    let c = core.clone();
    let decrypt = measure(args.clients, timing, move |_| {
        let c = c.clone();
        async move {
            c.kms
                .decrypt(&c.who, &c.project, &c.ciphertext, b"")
                .await?;
            Ok(())
        }
    })
    .await
    .context("core API decrypt")?
    .rate;
    Ok((encrypt, decrypt))
}

// ----------------------------------------------------------------- HTTP --

/// Standard padded base64 (the shell's binary fields). The bench build has
/// no base64 crate; this runs once, and the round trip below checks it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends `request`, reads the whole body (so the connection can be reused)
/// and fails on anything but 2xx.
async fn call(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Bytes> {
    let response = request.send().await.with_context(|| what.to_string())?;
    let status = response.status();
    let body = response.bytes().await.with_context(|| what.to_string())?;
    if !status.is_success() {
        bail!(
            "{what} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

/// What every HTTP worker shares: one keep-alive client per worker, so
/// each worker holds its own connection for the whole run.
struct Http {
    clients: Vec<reqwest::Client>,
    health_url: String,
    encrypt_url: String,
    decrypt_url: String,
    /// Request bodies serialized once: the client's JSON work is not what
    /// is measured.
    encrypt_body: Bytes,
    decrypt_body: Bytes,
}

impl Http {
    fn post(&self, worker: usize, url: &str, body: &Bytes) -> reqwest::RequestBuilder {
        self.clients[worker]
            .post(url)
            .bearer_auth(TOKEN)
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
    }
}

struct HttpFigures {
    health: f64,
    encrypt: f64,
    decrypt: f64,
}

/// Creates the key, checks a round trip, then measures `GET /health`,
/// encrypt and decrypt, in that order, on the same connections.
async fn http(base: &str, args: &Args, timing: Timing) -> anyhow::Result<HttpFigures> {
    let keys = format!("{base}/kms/v1/projects/{PROJECT}/keys");
    let setup = reqwest::Client::new();
    call(
        setup
            .post(&keys)
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "name": KEY, "purpose": "encrypt" })),
        "create key",
    )
    .await?;

    let plaintext = base64(&crypto::random_bytes(args.size)?);
    let encrypt_url = format!("{keys}/{KEY}/encrypt");
    let decrypt_url = format!("{keys}/{KEY}/decrypt");
    let encrypt_body = Bytes::from(serde_json::to_vec(
        &serde_json::json!({ "plaintext": plaintext }),
    )?);
    let sealed: serde_json::Value = serde_json::from_slice(
        &call(
            setup
                .post(&encrypt_url)
                .bearer_auth(TOKEN)
                .body(encrypt_body.clone()),
            "encrypt",
        )
        .await?,
    )?;
    let ciphertext = sealed["ciphertext"]
        .as_str()
        .context("encrypt answered no ciphertext")?;
    let decrypt_body = Bytes::from(serde_json::to_vec(
        &serde_json::json!({ "ciphertext": ciphertext }),
    )?);
    let opened: serde_json::Value = serde_json::from_slice(
        &call(
            setup
                .post(&decrypt_url)
                .bearer_auth(TOKEN)
                .body(decrypt_body.clone()),
            "decrypt",
        )
        .await?,
    )?;
    ensure!(
        opened["plaintext"].as_str() == Some(plaintext.as_str()),
        "HTTP round trip differs"
    );

    let clients = (0..args.clients)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(30))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let h = Arc::new(Http {
        clients,
        health_url: format!("{base}/health"),
        encrypt_url,
        decrypt_url,
        encrypt_body,
        decrypt_body,
    });

    let c = h.clone();
    let health = measure(args.clients, timing, move |worker| {
        let c = c.clone();
        async move {
            call(c.clients[worker].get(&c.health_url), "GET /health").await?;
            Ok(())
        }
    })
    .await?;
    let c = h.clone();
    let encrypt = measure(args.clients, timing, move |worker| {
        let c = c.clone();
        async move {
            call(c.post(worker, &c.encrypt_url, &c.encrypt_body), "encrypt").await?;
            Ok(())
        }
    })
    .await?;
    let c = h.clone();
    let decrypt = measure(args.clients, timing, move |worker| {
        let c = c.clone();
        async move {
            call(c.post(worker, &c.decrypt_url, &c.decrypt_body), "decrypt").await?;
            Ok(())
        }
    })
    .await?;
    Ok(HttpFigures {
        health: health.rate,
        encrypt: encrypt.rate,
        decrypt: decrypt.rate,
    })
}

/// Starts the BunKMS shell (its module, assembled as the binary assembles
/// it: /health, /metrics and every layer) on 127.0.0.1:0 in the current
/// runtime.
async fn start_shell(db: &std::path::Path) -> anyhow::Result<(String, Shutdown)> {
    let kms = Kms::new(
        Arc::new(SqliteKms::open(db).await?),
        master()?,
        KmsLimits::default(),
        Arc::new(KmsMetrics::unregistered()),
    );
    let module = KmsModule::Given(kms);
    Ok(harness::serve_modules(&[&module], Arc::new(tokens()?)).await?)
}

// ----------------------------------------------------------------- main --

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn row(path: &str, encrypt: &str, decrypt: &str, note: &str) {
    let line = format!("{path:<34} {encrypt:>15} {decrypt:>15}   {note}");
    println!("{}", line.trim_end());
}

fn rates(path: &str, (encrypt, decrypt): (f64, f64), note: &str) {
    row(path, &thousands(encrypt), &thousands(decrypt), note);
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.clients > 0, "--clients must be at least 1");
    ensure!(
        args.duration > 0.0 && args.warmup >= 0.0,
        "--duration must be positive and --warmup not negative"
    );
    let timing = Timing {
        warmup: Duration::from_secs_f64(args.warmup),
        run: Duration::from_secs_f64(args.duration),
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let dir = std::env::temp_dir().join(format!("kms-bench-{}", bunbase_core::id::random_hex(4)));
    std::fs::create_dir_all(&dir)?;
    let core_db: PathBuf = dir.join("kms-core.db");
    let http_db: PathBuf = dir.join("kms.db");

    println!(
        "BunKMS encrypt/decrypt of {} bytes: {} s per figure after {} s warm-up; {cores} CPUs; {}",
        args.size,
        args.duration,
        args.warmup,
        if cfg!(debug_assertions) {
            "DEBUG build: figures are not meaningful, use --release"
        } else {
            "release build"
        }
    );
    println!(
        "SQLite files (WAL, synchronous=NORMAL, as the all-in-one opens them): {}{}",
        dir.display(),
        if args.keep {
            ""
        } else {
            " (removed at exit; --keep keeps them)"
        }
    );
    println!();
    row("path", "encrypt ops/s", "decrypt ops/s", "");

    // Single-threaded, before any runtime exists: nothing else competes.
    rates(
        "raw AES-256-GCM (1 thread)",
        raw_aes(args.size, timing)?,
        "crypto::seal/open: key setup + random nonce per call; the per-core limit",
    );

    // The server gets its own runtime, as in its own process; the core API
    // runs there too (nothing else does at that time). One worker per CPU.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("kms-server")
        .enable_all()
        .build()?;
    let n = args.clients;
    server_runtime.block_on(async {
        rates(
            &format!("core API, memory store, {n} tasks"),
            core_api(Arc::new(MemoryKms::new()), &args, timing).await?,
            "every call appends a hash-chained audit record (in RAM)",
        );
        rates(
            &format!("core API, SQLite store, {n} tasks"),
            core_api(Arc::new(SqliteKms::open(&core_db).await?), &args, timing).await?,
            "every call reads the key and appends an audit record (a SQLite write)",
        );
        anyhow::Ok(())
    })?;

    let (base, shutdown) = server_runtime.block_on(start_shell(&http_db))?;
    // The clients run on a runtime of their own, beside the server's; on a
    // small machine they share its CPUs, which /health's figure shows.
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let figures = client_runtime
        .block_on(http(&base, &args, timing))
        .context("HTTP")?;
    rates(
        &format!("HTTP, {n} clients, SQLite store"),
        (figures.encrypt, figures.decrypt),
        "the shell on 127.0.0.1, keep-alive; server and clients share the CPUs",
    );
    row(
        &format!("HTTP GET /health, {n} clients"),
        &thousands(figures.health),
        "",
        "the ceiling: same connections, the shell's own route (runs SELECT 1)",
    );
    row(
        "  HTTP as a share of /health",
        &format!("{:.1}%", figures.encrypt / figures.health * 100.0),
        &format!("{:.1}%", figures.decrypt / figures.health * 100.0),
        "",
    );
    rates(
        "Vault transit example (published)",
        (VAULT_ENCRYPT, VAULT_DECRYPT),
        "vault-benchmark docs: ~1.8k/s each in a 4-op mixed run; other hardware",
    );
    row(
        "  HTTP vs. the Vault anchor",
        &format!("{:.1}x", figures.encrypt / VAULT_ENCRYPT),
        &format!("{:.1}x", figures.decrypt / VAULT_DECRYPT),
        "",
    );

    shutdown.trigger();
    drop(client_runtime);
    server_runtime.shutdown_timeout(Duration::from_secs(5));
    if !args.keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

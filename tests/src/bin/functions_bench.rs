//! Functions benchmark, with its peers in the same run:
//!
//! - cold start in process: a new QuickJS runtime, the web globals, the
//!   module evaluated and the first response (goal: p50 < 0.5 ms);
//! - warm hello-world invocations per second over HTTP with 50 keep-alive
//!   clients, beside the same server's `/health` on the same connections
//!   (goal: ≥ 0.5× `/health`), and beside `deno serve` and `bun` running
//!   the same handler when they are installed (`--install-peers` fetches
//!   both from npm into `--peers-dir`; CI never does);
//! - resident memory per 100 warm function versions.
//!
//! Build the server first, then run:
//! `cargo build --release -p bunbase-shells --bin bunbase && \
//!  cargo run --release -p bunbase-tests --features bench --bin functions-bench`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bunbase_core::functions::compile::{self, CompileLimits};
use bunbase_core::functions::runtime::{Bindings, Call, Engine, EngineConfig, InstanceKey, Job};
use bunbase_core::functions::web::{FetchRequest, FetchResponse, HttpRequest};
use bunbase_core::functions::{Limits, Outcome, SourceFile};
use bunbase_tests::bench::{Figure, Timing, measure, rss};
use bunbase_tests::servers::{free_port, wait_for_port};
use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
struct Args {
    /// Cold starts measured in process.
    #[arg(long, default_value_t = 2000)]
    cold: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds per HTTP measurement.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unmeasured load before each.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Function versions kept warm for the memory figure.
    #[arg(long, default_value_t = 100)]
    versions: usize,
    /// The all-in-one binary.
    #[arg(long, default_value = "target/release/bunbase")]
    bunbase: PathBuf,
    /// Where `deno` and `bun` are looked for (`node_modules/.bin`) besides PATH.
    #[arg(long, default_value = "/tmp/bunbase-fn-peers")]
    peers_dir: PathBuf,
    /// `npm install deno bun` into --peers-dir first.
    #[arg(long)]
    install_peers: bool,
}

const TOKEN: &str = "bench-token-000000000000000001";
const HELLO: &str = "export default async (request) => new Response(\"hello\");\n";

/// The benchmark's functions reach nothing.
struct NoBindings;

#[async_trait::async_trait]
impl Bindings for NoBindings {
    async fn call(
        &self,
        method: &str,
        _args: serde_json::Value,
    ) -> Result<serde_json::Value, bunbase_core::Error> {
        Err(bunbase_core::Error::invalid(format!(
            "no binding {method} here"
        )))
    }
    async fn fetch(&self, _request: FetchRequest) -> Result<FetchResponse, String> {
        Err("no fetch here".into())
    }
}

fn limits() -> Limits {
    Limits {
        memory_mb: 64,
        cpu_ms: 1000,
        wall_ms: 10_000,
        request_bytes: 1 << 20,
        response_bytes: 1 << 20,
        concurrency: 1000,
    }
}

fn job(engine_key: usize, bundle: &Arc<compile::Bundle>) -> Job {
    Job {
        key: InstanceKey {
            project: "bench".into(),
            function: "hello".into(),
            version: 1,
            bundle: format!("cold-{engine_key}"),
        },
        bundle: bundle.clone(),
        limits: limits(),
        bindings: Arc::new(NoBindings),
        call: Call {
            request: HttpRequest {
                method: "GET".into(),
                url: "http://bench/fn/hello".into(),
                headers: Vec::new(),
                body: Vec::new(),
            },
            details: "{}".into(),
        },
    }
}

/// Cold starts (every job a new version key) and warm calls, in process.
async fn in_process(count: usize) -> anyhow::Result<(Duration, Duration, Duration)> {
    let files = [SourceFile {
        path: "index.js".into(),
        code: HELLO.into(),
    }];
    let bundle = Arc::new(compile::compile(
        &files,
        None,
        CompileLimits {
            max_files: 10,
            max_source_bytes: 1 << 20,
        },
    )?);
    let engine = Engine::start(EngineConfig {
        workers: 1,
        max_idle_per_worker: 16,
        ..EngineConfig::default()
    })?;
    let mut cold = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        let output = engine.run(job(i, &bundle)).await;
        cold.push(started.elapsed());
        ensure!(
            output.outcome == Outcome::Ok && output.cold,
            "cold start {i}: {:?}",
            output.error
        );
    }
    let mut warm = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let output = engine.run(job(usize::MAX, &bundle)).await;
        warm.push(started.elapsed());
        ensure!(
            output.outcome == Outcome::Ok,
            "warm call: {:?}",
            output.error
        );
    }
    cold.sort_unstable();
    warm.sort_unstable();
    let at = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    Ok((at(&cold, 0.5), at(&cold, 0.99), at(&warm, 0.5)))
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bunbase(binary: &Path, data: &Path) -> anyhow::Result<Server> {
    ensure!(
        binary.exists(),
        "{} not found: cargo build --release -p bunbase-shells --bin bunbase",
        binary.display()
    );
    let port = free_port();
    let child = Command::new(binary)
        .args(["--services", "functions", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .args(["--tokens", &format!("bench:rwa:{TOKEN}")])
        // The memory figure deploys more functions than one project may
        // have by default.
        .args(["--functions-max-per-project", "100000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    wait_for_port(port, "bunbase");
    Ok(Server { child, port })
}

async fn deploy(http: &reqwest::Client, port: u16, name: &str, code: &str) -> anyhow::Result<()> {
    let response = http
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/projects/bench/functions/{name}/versions"
        ))
        .bearer_auth(TOKEN)
        .json(&json!({ "files": [{ "path": "index.js", "code": code }], "auth": "public" }))
        .send()
        .await?;
    ensure!(
        response.status() == 201,
        "deploy {name}: {}",
        response.text().await?
    );
    Ok(())
}

/// GETs `url` from `clients` keep-alive clients.
async fn load(url: String, clients: usize, timing: Timing) -> anyhow::Result<Figure> {
    let pool: Arc<Vec<reqwest::Client>> = Arc::new(
        (0..clients)
            .map(|_| reqwest::Client::builder().pool_max_idle_per_host(1).build())
            .collect::<Result<_, _>>()?,
    );
    let url = Arc::new(url);
    measure(clients, timing, move |worker| {
        let (pool, url) = (pool.clone(), url.clone());
        async move {
            let response = pool[worker].get(url.as_str()).send().await?;
            ensure!(response.status().is_success(), "{}", response.status());
            response.bytes().await?;
            Ok(())
        }
    })
    .await
}

fn print(name: &str, figure: &Figure) {
    println!(
        "  {name:<34} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        figure.rate,
        figure.p50.as_secs_f64() * 1000.0,
        figure.p99.as_secs_f64() * 1000.0
    );
}

/// A peer's binary: on PATH or in `peers_dir/node_modules/.bin`.
fn peer(name: &str, peers_dir: &Path) -> Option<PathBuf> {
    let local = peers_dir.join("node_modules/.bin").join(name);
    if local.exists() {
        return Some(local);
    }
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// Runs `deno serve` or `bun` on the same handler; its port.
fn start_peer(name: &str, binary: &Path, dir: &Path) -> anyhow::Result<Server> {
    let port = free_port();
    let child = match name {
        "deno" => {
            let file = dir.join("deno_hello.ts");
            std::fs::write(
                &file,
                "export default { fetch: async (request: Request) => new Response(\"hello\") };\n",
            )?;
            Command::new(binary)
                .args(["serve", "--quiet", "--port", &port.to_string()])
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?
        }
        "bun" => {
            let file = dir.join("bun_hello.js");
            std::fs::write(
                &file,
                format!(
                    "Bun.serve({{ port: {port}, hostname: \"127.0.0.1\", fetch: async (request) => new Response(\"hello\") }});\n"
                ),
            )?;
            Command::new(binary)
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?
        }
        other => bail!("unknown peer {other}"),
    };
    wait_for_port(port, name);
    Ok(Server { child, port })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let timing = Timing {
        warmup: Duration::from_secs_f64(args.warmup),
        run: Duration::from_secs_f64(args.duration),
    };
    if args.install_peers {
        std::fs::create_dir_all(&args.peers_dir)?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&args.peers_dir)
            .args(["deno", "bun"])
            .status()
            .context("npm")?;
        ensure!(status.success(), "npm install deno bun failed");
    }

    println!("Functions benchmark");
    let (cold_p50, cold_p99, warm_p50) = in_process(args.cold).await?;
    println!(
        "  cold start in process ({} starts)   p50 {:.3} ms   p99 {:.3} ms   (goal p50 < 0.5 ms)",
        args.cold,
        cold_p50.as_secs_f64() * 1000.0,
        cold_p99.as_secs_f64() * 1000.0
    );
    println!(
        "  warm call in process                p50 {:.3} ms",
        warm_p50.as_secs_f64() * 1000.0
    );

    let data = std::env::temp_dir().join(format!("fn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let server = start_bunbase(&args.bunbase, &data)?;
    let http = reqwest::Client::new();
    deploy(&http, server.port, "hello", HELLO).await?;
    let base = format!("http://127.0.0.1:{}", server.port);
    println!("HTTP, {} keep-alive clients:", args.clients);
    let health = load(format!("{base}/health"), args.clients, timing).await?;
    print("bunbase /health", &health);
    let hello = load(
        format!("{base}/functions/v1/projects/bench/fn/hello"),
        args.clients,
        timing,
    )
    .await?;
    print("bunbase function (warm)", &hello);
    println!(
        "  function / health                   {:.2}× (goal ≥ 0.5×)",
        hello.rate / health.rate
    );
    for name in ["deno", "bun"] {
        match peer(name, &args.peers_dir) {
            Some(binary) => match start_peer(name, &binary, &data) {
                Ok(peer) => {
                    let figure = load(
                        format!("http://127.0.0.1:{}/", peer.port),
                        args.clients,
                        timing,
                    )
                    .await?;
                    print(&format!("{name} (same handler)"), &figure);
                }
                Err(e) => println!("  {name}: could not start: {e}"),
            },
            None => println!("  {name}: not installed (--install-peers fetches it from npm)"),
        }
    }

    let pid = server.child.id();
    let before = rss(pid);
    for i in 0..args.versions {
        let name = format!("warm-{i}");
        let code = format!(
            "let calls = 0;\nexport default async () => new Response(\"{i}:\" + (++calls));\n"
        );
        deploy(&http, server.port, &name, &code).await?;
        let response = http
            .get(format!("{base}/functions/v1/projects/bench/fn/{name}"))
            .send()
            .await?;
        ensure!(response.status() == 200, "{name}: {}", response.status());
    }
    let after = rss(pid);
    println!(
        "Memory: {} warm function versions: RSS {:.1} → {:.1} MiB, {:.1} MiB per 100 versions",
        args.versions,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        (after.saturating_sub(before)) as f64 / 1048576.0 * 100.0 / args.versions as f64
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

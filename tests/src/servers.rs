//! Real servers for tests and benchmarks, started on free loopback ports.
//!
//! Each server runs under a small shell watchdog that kills it when this
//! process exits, so test runs never leave servers behind.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Starts `program args…` in the background, tied to this process's life.
pub fn spawn_tied(program: &str, args: &[String]) {
    let quoted: Vec<String> = std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let script = format!(
        "{} >/dev/null 2>&1 & child=$!; while kill -0 {} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; kill $child 2>/dev/null",
        quoted.join(" "),
        std::process::id()
    );
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    // Reap the watchdog when it ends (with this process, or the server).
    std::thread::spawn(move || watchdog.wait());
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not start on port {port}");
}

/// Finds a binary on PATH or in the usual sbin folders.
pub fn find_binary(name: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/bin"])
        .map(|dir| format!("{dir}/{name}"))
        .find(|p| std::path::Path::new(p).exists())
}

/// The URL of a real Redis server for this test process: `BUNBASE_TEST_REDIS_URL`
/// if set, otherwise a `redis-server` started once on a free port.
pub fn redis_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("BUNBASE_TEST_REDIS_URL") {
            return url;
        }
        let binary = find_binary("redis-server").unwrap_or_else(|| {
            panic!("redis-server not found: install Debian's redis-server (see .ci/run)")
        });
        let port = free_port();
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        spawn_tied(&binary, &args);
        wait_for_port(port, "redis-server");
        format!("redis://127.0.0.1:{port}")
    })
}

/// Starts `nats-server` on a free port; returns its URL.
pub fn start_nats() -> String {
    let binary = find_binary("nats-server")
        .unwrap_or_else(|| panic!("nats-server not found: install Debian's nats-server"));
    let port = free_port();
    spawn_tied(
        &binary,
        &[
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ],
    );
    wait_for_port(port, "nats-server");
    format!("nats://127.0.0.1:{port}")
}

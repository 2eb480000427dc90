//! Persistence: an append-only file of write commands (RESP, like Redis's
//! AOF), replayed at start.
//!
//! - Commands with relative times are logged with absolute ones (`EXPIRE`
//!   as `PEXPIREAT`, `SET … EX` as `SET … PXAT`), so a replay a day later
//!   expires the same keys.
//! - fsync policy: `always` (before the reply is sent), `everysec`, `no`.
//! - At start, a torn tail (a last command cut short by a crash) is
//!   truncated with a warning; anything else that does not parse refuses
//!   to start, naming the offset, rather than losing data silently.
//! - [`Aof::rewrite`] compacts the file to the commands that rebuild the
//!   current keyspace.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use super::engine::{Engine, Session, now_ms};
use super::reply::Reply;
use super::resp::{self, Limits};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    EverySec,
    No,
}

impl FsyncPolicy {
    pub fn parse(raw: &str) -> Result<FsyncPolicy, Error> {
        match raw {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            other => Err(Error::invalid(format!(
                "appendfsync must be always, everysec or no, not {other:?}"
            ))),
        }
    }
}

struct Writer {
    file: File,
    /// The database the last logged command ran in.
    db: Option<usize>,
    dirty: bool,
    /// Commands logged since the file was last rewritten.
    since_rewrite: u64,
    /// The file's length after the last whole append: a failed append is
    /// cut back to it, so a partial command never sits mid-file.
    len: u64,
    /// Bytes appended and not yet fsynced, and since when.
    unsynced_bytes: u64,
    unsynced_since: Option<std::time::Instant>,
}

/// How far the file on disk is behind acknowledged writes (what a power
/// loss could take).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AofLag {
    pub unsynced_bytes: u64,
    /// How long the oldest unsynced write has waited; `None` when none.
    pub pending_for: Option<std::time::Duration>,
}

pub struct Aof {
    path: PathBuf,
    policy: FsyncPolicy,
    writer: Mutex<Writer>,
    /// Executing-and-logging holds this shared; a rewrite holds it
    /// exclusively while it copies the keyspace, so no command is both in
    /// the copy and logged after it.
    gate: std::sync::RwLock<()>,
}

/// What loading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub commands: u64,
    /// Bytes of a torn last command that were cut off.
    pub truncated: u64,
}

impl std::fmt::Debug for Aof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aof")
            .field("path", &self.path)
            .field("policy", &self.policy)
            .finish()
    }
}

pub(super) fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Unavailable(format!("cannot {what} {}: {e}", path.display()))
}

impl Aof {
    /// Replays `path` into `engine` (if it exists), then opens it for appending.
    pub fn open(path: &Path, policy: FsyncPolicy, engine: &Engine) -> Result<(Aof, Loaded), Error> {
        let loaded = if path.exists() {
            replay(path, engine)?
        } else {
            Loaded {
                commands: 0,
                truncated: 0,
            }
        };
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        // Every project's data is in it: readable by its owner only.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| io(path, "open", e))?;
        let len = file.metadata().map_err(|e| io(path, "inspect", e))?.len();
        Ok((
            Aof {
                path: path.to_path_buf(),
                policy,
                writer: Mutex::new(Writer {
                    file,
                    db: None,
                    dirty: false,
                    since_rewrite: loaded.commands,
                    len,
                    unsynced_bytes: 0,
                    unsynced_since: None,
                }),
                gate: std::sync::RwLock::new(()),
            },
            loaded,
        ))
    }

    /// Logs a command that was just executed (if it changed anything).
    pub fn log(&self, db: usize, args: &[Bytes], reply: &Reply) -> Result<(), Error> {
        match propagate(args, reply) {
            Some(command) => self.append(db, &command),
            None => Ok(()),
        }
    }

    /// Appends one command, as run in `db`.
    fn append(&self, db: usize, command: &[Bytes]) -> Result<(), Error> {
        let mut out = BytesMut::new();
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.db != Some(db) {
            encode(
                &mut out,
                &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
            );
            writer.db = Some(db);
        }
        encode(&mut out, command);
        if let Err(e) = writer.file.write_all(&out) {
            // Whatever part was written goes; the next append starts clean
            // (with its own SELECT).
            let whole = writer.len;
            let _ = writer.file.set_len(whole);
            writer.db = None;
            return Err(io(&self.path, "append to", e));
        }
        writer.len += out.len() as u64;
        writer.since_rewrite += 1;
        if self.policy == FsyncPolicy::Always {
            writer
                .file
                .sync_data()
                .map_err(|e| io(&self.path, "fsync", e))?;
        } else {
            writer.dirty = true;
            writer.unsynced_bytes += out.len() as u64;
            writer
                .unsynced_since
                .get_or_insert_with(std::time::Instant::now);
        }
        Ok(())
    }

    pub fn lag(&self) -> AofLag {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        AofLag {
            unsynced_bytes: writer.unsynced_bytes,
            pending_for: writer.unsynced_since.map(|t| t.elapsed()),
        }
    }

    /// fsyncs if anything was written since the last call (`everysec`).
    pub fn flush(&self) -> Result<(), Error> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.dirty && self.policy == FsyncPolicy::EverySec {
            writer
                .file
                .sync_data()
                .map_err(|e| io(&self.path, "fsync", e))?;
            writer.unsynced_bytes = 0;
            writer.unsynced_since = None;
        }
        writer.dirty = false;
        Ok(())
    }

    /// Commands logged since the last rewrite (for deciding when to compact).
    pub fn growth(&self) -> u64 {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .since_rewrite
    }

    /// Rewrites the file as the commands that rebuild the current keyspace.
    /// Writes pause until the new file is in place (reads do not).
    pub fn rewrite(&self, engine: &Engine) -> Result<(), Error> {
        let temp = self.path.with_extension("rewrite");
        // Lock order is the gate, then the writer — as in
        // `execute_logged`, which logs while holding the gate shared (the
        // other order deadlocks with a write in flight). The gate is held
        // only for the copy; the writer until the swap, so commands that
        // run after the copy wait to be logged, then go to the new file.
        let (mut writer, snapshot) = {
            let _paused = self.gate.write().unwrap_or_else(|e| e.into_inner());
            let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            (writer, engine.snapshot())
        };
        let mut file = create_private(&temp)?;
        write_image(&mut file, &temp, snapshot)?;
        std::fs::rename(&temp, &self.path).map_err(|e| io(&self.path, "replace", e))?;
        sync_parent(&self.path);
        writer.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, "reopen", e))?;
        writer.len = writer
            .file
            .metadata()
            .map_err(|e| io(&self.path, "inspect", e))?
            .len();
        writer.db = None;
        writer.since_rewrite = 0;
        // The new file was fsynced whole.
        writer.dirty = false;
        writer.unsynced_bytes = 0;
        writer.unsynced_since = None;
        Ok(())
    }
}

fn encode(out: &mut BytesMut, args: &[Bytes]) {
    Reply::Array(args.iter().cloned().map(Reply::Bulk).collect()).encode(out, false);
}

fn replay(path: &Path, engine: &Engine) -> Result<Loaded, Error> {
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|e| io(path, "read", e))?;
    let applied = apply(&raw, engine, path, "append-only file")?;
    let torn = (raw.len() - applied.complete) as u64;
    if torn > 0 {
        // A crash cut the last command short: drop it.
        tracing::warn!(
            path = %path.display(),
            bytes = torn,
            "append-only file ends with an incomplete command; truncating it"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io(path, "open", e))?;
        file.set_len(applied.complete as u64)
            .map_err(|e| io(path, "truncate", e))?;
        file.sync_all().map_err(|e| io(path, "fsync", e))?;
    }
    Ok(Loaded {
        commands: applied.commands,
        truncated: torn,
    })
}

/// What [`apply`] ran.
pub(super) struct Applied {
    pub commands: u64,
    /// Bytes of whole commands (the rest is an incomplete last one).
    pub complete: usize,
}

/// Runs the commands in `raw` (a file of RESP commands: the append-only
/// file or a snapshot) on `engine`. A malformed or failing command is an
/// error naming its byte offset; an incomplete last one is left to the
/// caller.
pub(super) fn apply(
    raw: &[u8],
    engine: &Engine,
    path: &Path,
    what: &str,
) -> Result<Applied, Error> {
    super::engine::loading(|| apply_commands(raw, engine, path, what))
}

fn apply_commands(raw: &[u8], engine: &Engine, path: &Path, what: &str) -> Result<Applied, Error> {
    let total = raw.len();
    let mut buf = BytesMut::from(raw);
    let limits = Limits::default();
    let mut session = Session::new(0);
    session.replaying = true;
    let mut commands = 0;
    loop {
        let offset = total - buf.len();
        match resp::parse_command(&mut buf, &limits) {
            Ok(Some(args)) if !args.is_empty() => {
                // Large arguments come back as slices of `raw` (the whole
                // file): copied, so no stored value pins it.
                let args: Vec<Bytes> = args
                    .into_iter()
                    .map(|a| {
                        if a.len() >= 4096 {
                            Bytes::copy_from_slice(&a)
                        } else {
                            a
                        }
                    })
                    .collect();
                if let Reply::Error(e) = engine.execute(&mut session, &args) {
                    return Err(Error::internal(format!(
                        "{what} {} is corrupt at byte {offset}: replaying a command failed: {e}",
                        path.display()
                    )));
                }
                commands += 1;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                return Ok(Applied {
                    commands,
                    complete: offset,
                });
            }
            Err(e) => {
                return Err(Error::internal(format!(
                    "{what} {} is corrupt at byte {offset} ({e}); refusing to start rather than lose data — repair or move the file",
                    path.display()
                )));
            }
        }
    }
}

/// Writes `snapshot` (the engine's rebuilding commands) to `file`.
pub(super) fn write_image(
    file: &mut File,
    path: &Path,
    snapshot: Vec<(usize, Vec<Vec<Bytes>>)>,
) -> Result<(), Error> {
    let mut out = BytesMut::new();
    for (db, commands) in snapshot {
        encode(
            &mut out,
            &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
        );
        for command in commands {
            encode(&mut out, &command);
            if out.len() > 1 << 20 {
                file.write_all(&out).map_err(|e| io(path, "write", e))?;
                out.clear();
            }
        }
    }
    file.write_all(&out).map_err(|e| io(path, "write", e))?;
    file.sync_all().map_err(|e| io(path, "fsync", e))
}

/// Makes a rename into `path`'s directory durable (best effort: some
/// filesystems cannot sync a directory).
pub(super) fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// A new file only its owner can read (it holds every key).
pub(super) fn create_private(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| io(path, "create", e))
}

/// The command to log for `args`, whose execution answered `reply`.
fn propagate(args: &[Bytes], reply: &Reply) -> Option<Vec<Bytes>> {
    if reply.is_error() || args.is_empty() {
        return None;
    }
    let name = args[0].to_ascii_uppercase();
    let now = now_ms() as i64;
    let abs = |ms: i64| Bytes::from(ms.max(1).to_string());
    let num = |arg: &Bytes| {
        std::str::from_utf8(arg)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    match name.as_slice() {
        b"SET" => {
            let mut out = vec![args[0].clone(), args[1].clone(), args[2].clone()];
            let mut i = 3;
            while i < args.len() {
                let word = args[i].to_ascii_uppercase();
                match word.as_slice() {
                    b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                        let n = num(args.get(i + 1)?)?;
                        let at = match word.as_slice() {
                            b"EX" => now.saturating_add(n.saturating_mul(1000)),
                            b"PX" => now.saturating_add(n),
                            b"EXAT" => n.saturating_mul(1000),
                            _ => n,
                        };
                        out.push(Bytes::from_static(b"PXAT"));
                        out.push(abs(at));
                        i += 2;
                    }
                    b"GET" => i += 1,
                    _ => {
                        out.push(args[i].clone());
                        i += 1;
                    }
                }
            }
            Some(out)
        }
        b"SETEX" | b"PSETEX" => {
            let n = num(&args[2])?;
            let at = if name.as_slice() == b"SETEX" {
                now.saturating_add(n.saturating_mul(1000))
            } else {
                now.saturating_add(n)
            };
            Some(vec![
                Bytes::from_static(b"SET"),
                args[1].clone(),
                args[3].clone(),
                Bytes::from_static(b"PXAT"),
                abs(at),
            ])
        }
        b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" => {
            let n = num(&args[2])?;
            let at = match name.as_slice() {
                b"EXPIRE" => now.saturating_add(n.saturating_mul(1000)),
                b"PEXPIRE" => now.saturating_add(n),
                _ => n.saturating_mul(1000),
            };
            Some(vec![
                Bytes::from_static(b"PEXPIREAT"),
                args[1].clone(),
                abs(at),
            ])
        }
        b"GETDEL" => Some(vec![Bytes::from_static(b"DEL"), args[1].clone()]),
        b"SETNX" | b"MSET" | b"INCR" | b"DECR" | b"INCRBY" | b"DECRBY" | b"APPEND" | b"DEL"
        | b"UNLINK" | b"PEXPIREAT" | b"PERSIST" | b"FLUSHDB" | b"FLUSHALL" | b"LPUSH"
        | b"RPUSH" | b"LPOP" | b"RPOP" | b"HSET" | b"HMSET" | b"HSETNX" | b"HDEL" | b"HINCRBY"
        | b"SADD" | b"SREM" | b"ZADD" | b"ZREM" | b"LTRIM" | b"ZREMRANGEBYSCORE" | b"SETRANGE"
        | b"RENAME" | b"RENAMENX" | b"LSET" | b"LREM" | b"LINSERT" | b"ZINCRBY" | b"ZPOPMIN"
        | b"ZPOPMAX" => Some(args.to_vec()),
        // Random picks are logged as what was removed.
        b"SPOP" => {
            let mut out = vec![Bytes::from_static(b"SREM"), args[1].clone()];
            match reply {
                Reply::Bulk(m) => out.push(m.clone()),
                Reply::Array(items) => out.extend(items.iter().filter_map(|r| match r {
                    Reply::Bulk(m) => Some(m.clone()),
                    _ => None,
                })),
                _ => {}
            }
            (out.len() > 2).then_some(out)
        }
        // What was popped, from which key (not a wait: replay must not block).
        b"BLPOP" | b"BRPOP" => match reply {
            Reply::Array(items) => match items.first() {
                Some(Reply::Bulk(key)) => Some(vec![
                    Bytes::from_static(if name.as_slice() == b"BLPOP" {
                        b"LPOP"
                    } else {
                        b"RPOP"
                    }),
                    key.clone(),
                ]),
                _ => None,
            },
            _ => None,
        },
        b"HINCRBYFLOAT" => match reply {
            Reply::Bulk(v) => Some(vec![
                Bytes::from_static(b"HSET"),
                args[1].clone(),
                args[2].clone(),
                v.clone(),
            ]),
            _ => None,
        },
        // The result, not the increment: float rounding must not drift.
        b"INCRBYFLOAT" => match reply {
            Reply::Bulk(v) => Some(vec![
                Bytes::from_static(b"SET"),
                args[1].clone(),
                v.clone(),
                Bytes::from_static(b"KEEPTTL"),
            ]),
            _ => None,
        },
        b"GETEX" if matches!(reply, Reply::Bulk(_)) => {
            let word = args.get(2)?.to_ascii_uppercase();
            if word.as_slice() == b"PERSIST" {
                return Some(vec![Bytes::from_static(b"PERSIST"), args[1].clone()]);
            }
            let n = num(args.get(3)?)?;
            let at = match word.as_slice() {
                b"EX" => now.saturating_add(n.saturating_mul(1000)),
                b"PX" => now.saturating_add(n),
                b"EXAT" => n.saturating_mul(1000),
                _ => n,
            };
            Some(vec![
                Bytes::from_static(b"PEXPIREAT"),
                args[1].clone(),
                abs(at),
            ])
        }
        _ => None,
    }
}

/// Runs `args` and logs it: the one entry point servers use.
pub fn execute_logged(
    engine: &Engine,
    aof: Option<&Arc<Aof>>,
    session: &mut Session,
    args: &[Bytes],
) -> Result<Reply, Error> {
    let Some(aof) = aof else {
        return Ok(engine.execute(session, args));
    };
    let db = session.db;
    let _gate = aof.gate.read().unwrap_or_else(|e| e.into_inner());
    let reply = engine.execute(session, args);
    // Evictions made room before the command ran: log them first.
    for (evicted_db, key) in &session.evicted {
        aof.append(*evicted_db, &[Bytes::from_static(b"DEL"), key.clone()])?;
    }
    aof.log(db, args, &reply)?;
    Ok(reply)
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;
    use crate::kv::EngineConfig;
    use std::sync::Arc;

    /// Writers logging while rewrites run: none may deadlock, and every
    /// acknowledged write is in the file.
    #[test]
    fn rewrites_under_concurrent_writes_neither_hang_nor_lose_writes() {
        let path =
            std::env::temp_dir().join(format!("bunder-aof-{}.aof", crate::id::random_hex(6)));
        let engine = Arc::new(Engine::new(EngineConfig::default()));
        let aof = Arc::new(Aof::open(&path, FsyncPolicy::No, &engine).unwrap().0);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (engine, aof) = (engine.clone(), aof.clone());
                std::thread::spawn(move || {
                    let mut session = Session::new(0);
                    for i in 0..2000 {
                        let args = vec![
                            Bytes::from_static(b"SET"),
                            Bytes::from(format!("k{w}-{i}")),
                            Bytes::from_static(b"v"),
                        ];
                        execute_logged(&engine, Some(&aof), &mut session, &args).unwrap();
                    }
                })
            })
            .collect();
        let rewriter = {
            let (engine, aof) = (engine.clone(), aof.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    aof.rewrite(&engine).unwrap();
                }
            })
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for w in writers {
                w.join().unwrap();
            }
            rewriter.join().unwrap();
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("writers and rewrites finished (no deadlock)");
        aof.flush().unwrap();
        let restored = Engine::new(EngineConfig::default());
        let (_, loaded) = Aof::open(&path, FsyncPolicy::No, &restored).unwrap();
        assert_eq!(loaded.truncated, 0);
        assert_eq!(restored.dbsize(0), 8000);
        std::fs::remove_file(&path).ok();
    }
}

#[cfg(test)]
mod expiry_replay_tests {
    use super::*;
    use crate::kv::EngineConfig;

    fn exec(engine: &Engine, aof: &Aof, line: &str) -> Reply {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let mut session = Session::new(0);
        let reply = engine.execute(&mut session, &args);
        aof.log(0, &args, &reply).unwrap();
        reply
    }

    /// Commands logged while their key was alive replay the same after it
    /// expired: nothing is recreated without its expiry, nothing fails.
    #[test]
    fn keys_that_expired_since_do_not_change_replay() {
        let path =
            std::env::temp_dir().join(format!("bunder-aof-{}.aof", crate::id::random_hex(6)));
        let engine = Engine::new(EngineConfig::default());
        let (aof, _) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
        exec(&engine, &aof, "SET counter 1 PX 150");
        exec(&engine, &aof, "INCR counter");
        exec(&engine, &aof, "SET old v PX 150");
        exec(&engine, &aof, "RENAME old new");
        exec(&engine, &aof, "RPUSH list a");
        exec(&engine, &aof, "PEXPIRE list 150");
        exec(&engine, &aof, "LSET list 0 b");
        drop(aof);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let restored = Engine::new(EngineConfig::default());
        let (_, loaded) = Aof::open(&path, FsyncPolicy::Always, &restored).expect("replays");
        assert_eq!(loaded.commands, 8, "SELECT and the seven commands");
        let mut session = Session::new(0);
        for key in ["counter", "new", "list"] {
            let args = vec![Bytes::from_static(b"EXISTS"), Bytes::from(key)];
            assert_eq!(
                restored.execute(&mut session, &args),
                Reply::Integer(0),
                "{key}"
            );
        }
        std::fs::remove_file(&path).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::EngineConfig;

    fn temp_path() -> PathBuf {
        std::env::temp_dir().join(format!("bunder-aof-{}.aof", crate::id::random_hex(6)))
    }

    fn run(engine: &Engine, aof: &Arc<Aof>, session: &mut Session, line: &str) -> Reply {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        execute_logged(engine, Some(aof), session, &args).unwrap()
    }

    fn get(engine: &Engine, db: usize, line: &str) -> Reply {
        let mut session = Session::new(0);
        session.db = db;
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        engine.execute(&mut session, &args)
    }

    fn fresh() -> Engine {
        Engine::new(EngineConfig::default())
    }

    #[test]
    fn every_acknowledged_write_is_back_after_a_restart() {
        let path = temp_path();
        {
            let engine = fresh();
            let (aof, loaded) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
            assert_eq!(loaded.commands, 0);
            let aof = Arc::new(aof);
            let s = &mut Session::new(1);
            run(&engine, &aof, s, "SET a 1");
            run(&engine, &aof, s, "INCRBY a 41");
            run(&engine, &aof, s, "SET gone x EX 1000");
            run(&engine, &aof, s, "EXPIRE a 3600");
            run(&engine, &aof, s, "RPUSH l x y z");
            run(&engine, &aof, s, "LPOP l");
            run(&engine, &aof, s, "HSET h f v");
            run(&engine, &aof, s, "SADD s m");
            run(&engine, &aof, s, "ZADD z 1.5 m");
            run(&engine, &aof, s, "SELECT 3");
            run(&engine, &aof, s, "SET in3 yes");
            run(&engine, &aof, s, "GET in3"); // reads are not logged
            run(&engine, &aof, s, "INCR in3"); // errors are not logged
        }
        let engine = fresh();
        let (_aof, loaded) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
        assert_eq!(loaded.truncated, 0);
        assert_eq!(get(&engine, 0, "GET a"), Reply::bulk("42"));
        assert!(
            matches!(get(&engine, 0, "TTL a"), Reply::Integer(t) if t > 3500),
            "absolute expiry kept"
        );
        assert_eq!(
            get(&engine, 0, "LRANGE l 0 -1"),
            Reply::Array(vec![Reply::bulk("y"), Reply::bulk("z")])
        );
        assert_eq!(get(&engine, 0, "HGET h f"), Reply::bulk("v"));
        assert_eq!(get(&engine, 0, "SCARD s"), Reply::Integer(1));
        assert_eq!(get(&engine, 0, "ZSCORE z m"), Reply::bulk("1.5"));
        assert_eq!(get(&engine, 3, "GET in3"), Reply::bulk("yes"));
        assert_eq!(get(&engine, 0, "GET in3"), Reply::Nil);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_torn_tail_is_truncated_and_corruption_refuses_to_start() {
        let path = temp_path();
        {
            let engine = fresh();
            let (aof, _) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
            let aof = Arc::new(aof);
            run(&engine, &aof, &mut Session::new(1), "SET kept 1");
        }
        let intact = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of the next command.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"*3\r\n$3\r\nSET\r\n$4\r\nlost")
            .unwrap();
        let engine = fresh();
        let (_aof, loaded) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
        assert!(loaded.truncated > 0);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            intact,
            "cut back to the last whole command"
        );
        assert_eq!(get(&engine, 0, "GET kept"), Reply::bulk("1"));

        // Garbage in the middle is not a torn tail: refuse.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"*1\r\n:oops\r\n*1\r\n$4\r\nPING\r\n")
            .unwrap();
        let err = Aof::open(&path, FsyncPolicy::Always, &fresh())
            .err()
            .unwrap();
        assert!(err.to_string().contains("corrupt at byte"), "{err}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn rewrite_compacts_and_keeps_logging() {
        let path = temp_path();
        let engine = fresh();
        let (aof, _) = Aof::open(&path, FsyncPolicy::EverySec, &engine).unwrap();
        let aof = Arc::new(aof);
        let s = &mut Session::new(1);
        for _ in 0..2000 {
            run(&engine, &aof, s, "INCR counter");
        }
        run(&engine, &aof, s, "RPUSH l a b c");
        run(&engine, &aof, s, "ZADD z 0.1 x");
        run(&engine, &aof, s, "SET temp v PX 100000");
        aof.flush().unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        aof.rewrite(&engine).unwrap();
        assert_eq!(aof.growth(), 0);
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after < before / 10, "{before} → {after}");
        run(&engine, &aof, s, "INCR counter");
        aof.flush().unwrap();
        drop(aof);
        let restored = fresh();
        Aof::open(&path, FsyncPolicy::No, &restored).unwrap();
        assert_eq!(get(&restored, 0, "GET counter"), Reply::bulk("2001"));
        assert_eq!(get(&restored, 0, "LLEN l"), Reply::Integer(3));
        assert_eq!(get(&restored, 0, "ZSCORE z x"), Reply::bulk("0.1"));
        assert!(matches!(get(&restored, 0, "PTTL temp"), Reply::Integer(t) if t > 90_000));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn pops_increments_and_evictions_are_logged_as_what_they_did() {
        use crate::kv::engine::EvictionPolicy;
        let path = temp_path();
        let kept;
        {
            let engine = fresh();
            let (aof, _) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
            let aof = Arc::new(aof);
            let s = &mut Session::new(1);
            run(&engine, &aof, s, "RPUSH jobs a b c");
            run(&engine, &aof, s, "BLPOP empty jobs 0");
            run(&engine, &aof, s, "BRPOP jobs 0");
            run(&engine, &aof, s, "BLPOP empty 0"); // nothing popped, nothing logged
            run(&engine, &aof, s, "HINCRBYFLOAT h f 0.1");
            run(&engine, &aof, s, "HINCRBYFLOAT h f 0.2");
            // Only these can be evicted (volatile-lru), so the checks
            // below do not depend on which keys the sampling picks.
            for i in 0..20 {
                run(&engine, &aof, s, &format!("SET k{i} v EX 1000"));
            }
            engine.set_eviction_policy(EvictionPolicy::VolatileLru);
            engine.set_max_memory(Some(engine.used_memory() - 1));
            run(&engine, &aof, s, "SET last v");
            assert!(!s.evicted.is_empty());
            kept = Reply::Integer(engine.dbsize(0) as i64);
        }
        // Replayed under a limit nothing fits in: the log already holds the
        // evictions, so replay must not evict (or refuse) anything.
        let engine = Engine::new(EngineConfig {
            max_memory: Some(1),
            ..EngineConfig::default()
        });
        let (_aof, loaded) = Aof::open(&path, FsyncPolicy::Always, &engine).unwrap();
        assert!(loaded.commands > 0);
        assert_eq!(
            get(&engine, 0, "LRANGE jobs 0 -1"),
            Reply::Array(vec![Reply::bulk("b")])
        );
        assert!(matches!(get(&engine, 0, "HGET h f"), Reply::Bulk(v) if v.starts_with(b"0.3")));
        assert_eq!(
            get(&engine, 0, "DBSIZE"),
            kept,
            "the evicted keys stay gone"
        );
        assert_eq!(get(&engine, 0, "EXISTS last"), Reply::Integer(1));
        let log = std::fs::read_to_string(&path).unwrap();
        assert!(
            log.contains("$4\r\nLPOP\r\n$4\r\njobs") && log.contains("$4\r\nRPOP\r\n"),
            "{log}"
        );
        assert!(log.contains("$3\r\nDEL\r\n"), "{log}");
        assert!(
            !log.contains("BLPOP") && !log.contains("HINCRBYFLOAT"),
            "{log}"
        );
        std::fs::remove_file(&path).ok();
    }
}

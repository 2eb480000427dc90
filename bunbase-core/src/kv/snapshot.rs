//! Point-in-time snapshots: the whole keyspace as the commands that
//! rebuild it, written to a temporary file, fsynced and renamed into place
//! — so a snapshot on disk is always complete. Without the append-only
//! file they are Bunder's persistence (loaded at start, like Redis's RDB);
//! with it, they are consistent files to back up while the server runs.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::aof::{apply, create_private, io, sync_parent, write_image};
use super::engine::Engine;
use super::tx::Transactions;
use crate::error::Error;
use crate::id::now_millis;

/// What a save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    pub databases: usize,
    pub commands: usize,
}

/// The snapshot file of one engine.
pub struct Snapshots {
    path: PathBuf,
    engine: Arc<Engine>,
    tx: Arc<Transactions>,
    /// Seconds since the epoch of the last successful save (LASTSAVE).
    last_save: AtomicU64,
    in_progress: AtomicBool,
    /// One save at a time.
    saving: Mutex<()>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("path", &self.path)
            .finish()
    }
}

impl Snapshots {
    /// `tx` is the gate every command runs under: a save holds it
    /// exclusively while copying, so the copy is one point in time.
    pub fn new(path: PathBuf, engine: Arc<Engine>, tx: Arc<Transactions>) -> Snapshots {
        Snapshots {
            path,
            engine,
            tx,
            last_save: AtomicU64::new(now_millis() / 1000),
            in_progress: AtomicBool::new(false),
            saving: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn last_save(&self) -> u64 {
        self.last_save.load(Ordering::Relaxed)
    }

    pub fn in_progress(&self) -> bool {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Writes a snapshot now (blocking: call from a blocking thread).
    pub fn save(&self) -> Result<Saved, Error> {
        let _one = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        self.in_progress.store(true, Ordering::Relaxed);
        let result = self.write();
        self.in_progress.store(false, Ordering::Relaxed);
        if result.is_ok() {
            self.last_save.store(now_millis() / 1000, Ordering::Relaxed);
        }
        result
    }

    fn write(&self) -> Result<Saved, Error> {
        let image = {
            let _alone = self.tx.exclusive();
            self.engine.snapshot()
        };
        let saved = Saved {
            databases: image.len(),
            commands: image.iter().map(|(_, c)| c.len()).sum(),
        };
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, "create", e))?;
        }
        let temp = self.path.with_extension("snapshot-tmp");
        let mut file = create_private(&temp)?;
        write_image(&mut file, &temp, image)?;
        std::fs::rename(&temp, &self.path).map_err(|e| io(&self.path, "replace", e))?;
        // The rename itself is durable once the directory is synced.
        sync_parent(&self.path);
        Ok(saved)
    }

    /// Loads the snapshot into the (empty) engine, if there is one; how
    /// many commands it ran. An incomplete or malformed file is an error:
    /// snapshots are written whole, so either means damage.
    pub fn load(&self) -> Result<Option<u64>, Error> {
        if !self.path.exists() {
            return Ok(None);
        }
        let mut raw = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut raw))
            .map_err(|e| io(&self.path, "read", e))?;
        let applied = apply(&raw, &self.engine, &self.path, "snapshot")?;
        if applied.complete != raw.len() {
            return Err(Error::internal(format!(
                "snapshot {} is cut short at byte {} of {}; refusing to start rather than lose data — repair or move the file",
                self.path.display(),
                applied.complete,
                raw.len()
            )));
        }
        Ok(Some(applied.commands))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::EngineConfig;
    use crate::kv::engine::Session;
    use bytes::Bytes;

    fn run(engine: &Engine, line: &str) -> crate::kv::Reply {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        engine.execute(&mut Session::new(0), &args)
    }

    fn fresh(path: &Path) -> (Arc<Engine>, Snapshots) {
        let engine = Arc::new(Engine::new(EngineConfig::default()));
        let snaps = Snapshots::new(path.to_path_buf(), engine.clone(), Arc::default());
        (engine, snaps)
    }

    #[test]
    fn a_snapshot_restores_every_type_and_expiry() {
        let path = std::env::temp_dir().join(format!("snap-{}.snapshot", crate::id::random_hex(6)));
        let (engine, snaps) = fresh(&path);
        run(&engine, "SET s v");
        run(&engine, "SET t v PX 100000");
        run(&engine, "RPUSH l a b c");
        run(&engine, "HSET h f 1");
        run(&engine, "SADD set x y");
        run(&engine, "ZADD z 1.5 m");
        let saved = snaps.save().unwrap();
        assert!(saved.commands >= 6, "{saved:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        run(&engine, "SET after-save x");

        let (restored, snaps) = fresh(&path);
        assert!(snaps.load().unwrap().is_some());
        assert_eq!(run(&restored, "GET s"), crate::kv::Reply::bulk("v"));
        assert_eq!(
            run(&restored, "LRANGE l 0 -1"),
            run(&engine, "LRANGE l 0 -1")
        );
        assert_eq!(run(&restored, "HGET h f"), crate::kv::Reply::bulk("1"));
        assert_eq!(run(&restored, "SCARD set"), crate::kv::Reply::Integer(2));
        assert_eq!(run(&restored, "ZSCORE z m"), run(&engine, "ZSCORE z m"));
        match run(&restored, "PTTL t") {
            crate::kv::Reply::Integer(ms) => assert!(ms > 90_000 && ms <= 100_000),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            run(&restored, "EXISTS after-save"),
            crate::kv::Reply::Integer(0)
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_damaged_snapshot_refuses_to_load() {
        let path = std::env::temp_dir().join(format!("snap-{}.snapshot", crate::id::random_hex(6)));
        let (engine, snaps) = fresh(&path);
        run(&engine, "SET a 1");
        run(&engine, "SET b 2");
        snaps.save().unwrap();
        let raw = std::fs::read(&path).unwrap();
        std::fs::write(&path, &raw[..raw.len() - 3]).unwrap();
        let err = fresh(&path).1.load().unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        std::fs::write(&path, b"*1\r\n$3\r\nSET\r\n").unwrap();
        let err = fresh(&path).1.load().unwrap_err();
        assert!(err.to_string().contains("corrupt at byte 0"), "{err}");
        std::fs::remove_file(&path).ok();
    }
}

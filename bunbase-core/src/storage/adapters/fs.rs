//! Blobs in files, under one root directory (the all-in-one keeps them in
//! `<data-dir>/storage/`):
//!
//! ```text
//! <root>/blobs/ab/ab12…          one file per blob, fanned out by the id's
//!                                first two hex digits (256 folders)
//! <root>/tmp/<random>            writes in progress; emptied by `open`
//! <root>/parts/<handle>/<n>-<r>  multipart uploads in progress: part `n`,
//!                                receipt `r` (each upload of a part is kept
//!                                under its own receipt until the upload ends)
//! ```
//!
//! Every write goes to a temp file, which is fsynced, renamed into place,
//! and its folder fsynced: a blob is whole or absent, even across a crash.
//! A failed or abandoned write (the body stream errs, the future is
//! dropped) removes its temp file. Ids and handles are checked before they
//! become paths, so nothing can name a file outside the root. File IO runs
//! on tokio's blocking pool; reads go in 256 KiB chunks, writes in 1 MiB
//! batches (one written while the next is gathered), so memory stays flat
//! whatever the blob's size.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::Error;
use crate::id::random_hex;
use crate::storage::blob::{BlobStore, ByteRange, ByteStream, validate_blob_id};
use crate::storage::model::MAX_PART_NUMBER;

/// Bytes per read.
const CHUNK: usize = 256 * 1024;
/// Bytes per write (at least; the last may be less).
const WRITE_BATCH: usize = 1024 * 1024;

/// Blobs as files under a root directory.
pub struct FsBlobs {
    layout: Arc<Layout>,
}

impl fmt::Debug for FsBlobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBlobs")
            .field("root", &self.layout.root)
            .finish()
    }
}

/// Where everything is.
struct Layout {
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    parts: PathBuf,
}

impl Layout {
    /// The file of blob `id` (a validated id).
    fn blob(&self, id: &str) -> PathBuf {
        self.blobs.join(&id[..2]).join(id)
    }

    /// The folder of upload `handle` (a validated handle).
    fn upload(&self, handle: &str) -> PathBuf {
        self.parts.join(handle)
    }

    /// A fresh temp file name, removed when the guard drops.
    fn temp(&self) -> TempFile {
        TempFile {
            path: self.tmp.join(random_hex(16)),
            armed: true,
        }
    }
}

impl FsBlobs {
    /// Opens (creating what is missing) the blob store under `root`, and
    /// removes the temp files of writes a crash interrupted.
    pub fn open(root: &Path) -> Result<FsBlobs, Error> {
        let layout = Layout {
            root: root.to_path_buf(),
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            parts: root.join("parts"),
        };
        let failed = |path: &Path, e: io::Error| {
            io_error(
                format!("cannot prepare the blob directory {}", path.display()),
                e,
            )
        };
        for dir in [&layout.root, &layout.blobs, &layout.tmp, &layout.parts] {
            fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        }
        for fan in 0..=255u8 {
            let dir = layout.blobs.join(format!("{fan:02x}"));
            fs::create_dir_all(&dir).map_err(|e| failed(&dir, e))?;
        }
        let leftovers = fs::read_dir(&layout.tmp).map_err(|e| failed(&layout.tmp, e))?;
        for entry in leftovers {
            let path = entry.map_err(|e| failed(&layout.tmp, e))?.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| failed(&path, e))?;
        }
        for dir in [&layout.blobs, &layout.tmp, &layout.parts, &layout.root] {
            sync_dir(dir).map_err(|e| failed(dir, e))?;
        }
        Ok(FsBlobs {
            layout: Arc::new(layout),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// Writes `body` to a new temp file, fsynced; returns the guard of the
    /// file and the bytes written. On an error the file is gone.
    async fn write_temp(&self, mut body: ByteStream) -> Result<(TempFile, u64), Error> {
        let temp = self.layout.temp();
        let path = temp.path.clone();
        let file = blocking(move || {
            File::create_new(&path).map_err(|e| io_error("cannot create a blob temp file", e))
        })
        .await?;
        let mut writer = Writer::new(file);
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0;
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            batch_len += chunk.len();
            batch.push(chunk);
            if batch_len >= WRITE_BATCH {
                writer.write(std::mem::take(&mut batch)).await?;
                batch_len = 0;
            }
        }
        writer.write(batch).await?;
        writer.finish().await?;
        Ok((temp, written))
    }

    /// Checks that upload `handle` of blob `id` exists.
    async fn upload_dir(&self, id: &str, handle: &str) -> Result<PathBuf, Error> {
        validate_handle(id, handle)?;
        let dir = self.layout.upload(handle);
        let check = dir.clone();
        let handle = handle.to_string();
        blocking(move || match fs::metadata(&check) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(Error::internal(format!(
                "{} is not a directory",
                check.display()
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(upload_not_found(&handle)),
            Err(e) => Err(io_error(format!("cannot read upload {handle}"), e)),
        })
        .await?;
        Ok(dir)
    }
}

#[async_trait]
impl BlobStore for FsBlobs {
    fn describe(&self) -> String {
        format!("fs {}", self.layout.root.display())
    }

    async fn check(&self) -> Result<(), Error> {
        let layout = self.layout.clone();
        blocking(move || {
            for dir in [&layout.blobs, &layout.tmp, &layout.parts] {
                match fs::metadata(dir) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        return Err(Error::unavailable(format!(
                            "blob directory {} is not a directory",
                            dir.display()
                        )));
                    }
                    Err(e) => {
                        return Err(Error::unavailable(format!(
                            "blob directory {}: {e}",
                            dir.display()
                        )));
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn put(&self, id: &str, body: ByteStream) -> Result<u64, Error> {
        validate_blob_id(id)?;
        let (temp, len) = self.write_temp(body).await?;
        let dest = self.layout.blob(id);
        blocking(move || install(temp, &dest)).await?;
        Ok(len)
    }

    async fn get(&self, id: &str, range: Option<ByteRange>) -> Result<ByteStream, Error> {
        validate_blob_id(id)?;
        let path = self.layout.blob(id);
        let owned = id.to_string();
        let (file, left) = blocking(move || {
            let id = owned;
            let mut file = File::open(&path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => blob_not_found(&id),
                _ => io_error(format!("cannot open blob {id}"), e),
            })?;
            let len = file
                .metadata()
                .map_err(|e| io_error(format!("cannot read blob {id}"), e))?
                .len();
            match range {
                None => Ok((file, len)),
                Some(r) if r.start <= r.end && r.end < len => {
                    file.seek(SeekFrom::Start(r.start))
                        .map_err(|e| io_error(format!("cannot read blob {id}"), e))?;
                    Ok((file, r.len()))
                }
                Some(r) => Err(Error::invalid(format!(
                    "bytes {}-{} are not within blob {id} of {len} bytes",
                    r.start, r.end
                ))),
            }
        })
        .await?;
        let id = id.to_string();
        let chunks = futures_util::stream::try_unfold((file, left), move |(file, left)| {
            let id = id.clone();
            async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = left.min(CHUNK as u64) as usize;
                let (file, bytes) = blocking(move || {
                    let mut file = file;
                    let mut buf = vec![0; want];
                    let n = read_full(&mut file, &mut buf)
                        .map_err(|e| io_error(format!("cannot read blob {id}"), e))?;
                    if n == 0 {
                        return Err(Error::internal(format!(
                            "blob {id} ended {left} bytes early"
                        )));
                    }
                    buf.truncate(n);
                    Ok((file, Bytes::from(buf)))
                })
                .await?;
                let left = left - bytes.len() as u64;
                Ok(Some((bytes, (file, left))))
            }
        });
        Ok(Box::pin(chunks))
    }

    async fn delete(&self, id: &str) -> Result<(), Error> {
        validate_blob_id(id)?;
        let path = self.layout.blob(id);
        let id = id.to_string();
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("cannot delete blob {id}"), e)),
        })
        .await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), Error> {
        validate_blob_id(from)?;
        validate_blob_id(to)?;
        let source = self.layout.blob(from);
        let dest = self.layout.blob(to);
        let temp = self.layout.temp();
        let (from, same) = (from.to_string(), from == to);
        blocking(move || {
            let missing = |e: io::Error| match e.kind() {
                io::ErrorKind::NotFound => blob_not_found(&from),
                _ => io_error(format!("cannot copy blob {from}"), e),
            };
            if same {
                return fs::metadata(&source).map(|_| ()).map_err(missing);
            }
            // Blobs never change once written, so a second link is a copy
            // that costs nothing; where links are not supported, copy the
            // bytes (copy_file_range on Linux).
            if fs::hard_link(&source, &temp.path).is_err() {
                fs::copy(&source, &temp.path).map_err(missing)?;
                File::open(&temp.path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io_error(format!("cannot copy blob {from}"), e))?;
            }
            install(temp, &dest)
        })
        .await
    }

    async fn begin_parts(&self, id: &str) -> Result<String, Error> {
        validate_blob_id(id)?;
        let handle = format!("{id}-{}", random_hex(8));
        let dir = self.layout.upload(&handle);
        let parts = self.layout.parts.clone();
        blocking(move || {
            fs::create_dir(&dir)
                .and_then(|()| sync_dir(&parts))
                .map_err(|e| io_error("cannot start an upload", e))
        })
        .await?;
        Ok(handle)
    }

    async fn put_part(
        &self,
        id: &str,
        handle: &str,
        number: u32,
        body: ByteStream,
    ) -> Result<String, Error> {
        check_part_number(number)?;
        let dir = self.upload_dir(id, handle).await?;
        let (temp, _) = self.write_temp(body).await?;
        let receipt = random_hex(8);
        let dest = dir.join(part_name(number, &receipt));
        let handle = handle.to_string();
        blocking(move || {
            // The upload may have been aborted meanwhile.
            if !dir.is_dir() {
                return Err(upload_not_found(&handle));
            }
            install(temp, &dest)
        })
        .await?;
        Ok(receipt)
    }

    async fn complete_parts(
        &self,
        id: &str,
        handle: &str,
        parts: &[(u32, String)],
    ) -> Result<(), Error> {
        let mut previous = 0;
        for (number, receipt) in parts {
            check_part_number(*number)?;
            if *number <= previous {
                return Err(Error::invalid("parts must be listed in ascending order"));
            }
            previous = *number;
            if !is_hex(receipt, 16) {
                return Err(Error::invalid(format!(
                    "{receipt:?} is not a receipt of part {number}"
                )));
            }
        }
        let dir = self.upload_dir(id, handle).await?;
        let files: Vec<(u32, PathBuf)> = parts
            .iter()
            .map(|(number, receipt)| (*number, dir.join(part_name(*number, receipt))))
            .collect();
        let dest = self.layout.blob(id);
        let temp = self.layout.temp();
        let handle = handle.to_string();
        blocking(move || {
            let failed = |e: io::Error| io_error(format!("cannot assemble upload {handle}"), e);
            let mut out = File::create_new(&temp.path).map_err(failed)?;
            for (number, path) in &files {
                let mut part = File::open(path).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => Error::invalid(format!(
                        "part {number} of upload {handle} was not uploaded under that receipt"
                    )),
                    _ => failed(e),
                })?;
                io::copy(&mut part, &mut out).map_err(failed)?;
            }
            out.sync_all().map_err(failed)?;
            drop(out);
            install(temp, &dest)?;
            if let Err(e) = fs::remove_dir_all(&dir) {
                // The blob is whole; the parts are only litter.
                tracing::warn!("cannot remove the parts of upload {handle}: {e}");
            }
            Ok(())
        })
        .await
    }

    async fn abort_parts(&self, id: &str, handle: &str) -> Result<(), Error> {
        validate_handle(id, handle)?;
        let dir = self.layout.upload(handle);
        let handle = handle.to_string();
        blocking(move || match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("cannot remove upload {handle}"), e)),
        })
        .await
    }
}

/// A temp file that is removed when dropped, unless installed.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Renames the (synced) temp file to `dest` and syncs `dest`'s folder.
/// Blocking.
fn install(mut temp: TempFile, dest: &Path) -> Result<(), Error> {
    let failed = |e: io::Error| io_error(format!("cannot store {}", dest.display()), e);
    fs::rename(&temp.path, dest).map_err(failed)?;
    temp.armed = false;
    match dest.parent() {
        Some(dir) => sync_dir(dir).map_err(failed),
        None => Ok(()),
    }
}

/// Makes the entries of `dir` durable. Blocking.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A file written on the blocking pool, one batch at a time: the next
/// batch is gathered while the last one is written. Each written batch is
/// handed to the disk at once (write-behind), so the final fsync waits for
/// the last few batches, not for the whole object.
struct Writer {
    file: Option<File>,
    writing: Option<tokio::task::JoinHandle<Result<File, Error>>>,
    /// Bytes written so far: where the next batch starts.
    offset: u64,
}

/// Starts writing back `len` bytes at `offset` without waiting for them
/// (Linux `sync_file_range`); elsewhere the final fsync does it all.
fn write_behind(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules I/O
        // and its failure is harmless (the final fsync still runs).
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

impl Writer {
    fn new(file: File) -> Writer {
        Writer {
            file: Some(file),
            writing: None,
            offset: 0,
        }
    }

    /// The file, once the batch being written is.
    async fn idle(&mut self) -> Result<File, Error> {
        match (self.writing.take(), self.file.take()) {
            (Some(writing), _) => writing
                .await
                .map_err(|e| Error::internal(format!("blob file task failed: {e}")))?,
            (None, Some(file)) => Ok(file),
            (None, None) => Err(Error::internal("a blob temp file failed before")),
        }
    }

    /// Starts writing `batch` (after the previous one).
    async fn write(&mut self, batch: Vec<Bytes>) -> Result<(), Error> {
        let mut file = self.idle().await?;
        if batch.is_empty() {
            self.file = Some(file);
            return Ok(());
        }
        let offset = self.offset;
        let len: u64 = batch.iter().map(|c| c.len() as u64).sum();
        self.offset += len;
        self.writing = Some(tokio::task::spawn_blocking(move || {
            for chunk in &batch {
                file.write_all(chunk)
                    .map_err(|e| io_error("cannot write a blob temp file", e))?;
            }
            write_behind(&file, offset, len);
            Ok(file)
        }));
        Ok(())
    }

    /// Waits for the writes and makes them durable.
    async fn finish(mut self) -> Result<(), Error> {
        let file = self.idle().await?;
        blocking(move || {
            file.sync_all()
                .map_err(|e| io_error("cannot sync a blob temp file", e))
        })
        .await
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("blob file task failed: {e}")))?
}

fn io_error(doing: impl fmt::Display, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Error::unavailable(format!("{doing}: the disk is full ({e})"))
        }
        _ => Error::internal(format!("{doing}: {e}")),
    }
}

fn blob_not_found(id: &str) -> Error {
    Error::NotFound(format!("blob {id} not found"))
}

fn upload_not_found(handle: &str) -> Error {
    Error::NotFound(format!("upload {handle} not found"))
}

fn check_part_number(number: u32) -> Result<(), Error> {
    if (1..=MAX_PART_NUMBER).contains(&number) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "part numbers are 1 to {MAX_PART_NUMBER}"
        )))
    }
}

fn part_name(number: u32, receipt: &str) -> String {
    format!("{number}-{receipt}")
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Handles are `<blob id>-<16 hex digits>`, of the blob they assemble.
fn validate_handle(id: &str, handle: &str) -> Result<(), Error> {
    validate_blob_id(id)?;
    match handle.split_once('-') {
        Some((of, token)) if of == id && is_hex(token, 16) => Ok(()),
        _ => Err(Error::internal(format!(
            "{handle:?} is not an upload of blob {id}"
        ))),
    }
}

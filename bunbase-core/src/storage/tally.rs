//! Counting and hashing bytes as they stream into a blob store, with the
//! limits that refuse a body half way: longer than declared, shorter than
//! declared, or over the size limit.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::blob::ByteStream;
use crate::error::Error;

/// Past this many bytes the MD5 moves to a thread of its own, so that
/// hashing (about 500 MB/s on one core) runs beside receiving and writing
/// instead of after them; small bodies hash inline, with no thread.
const THREADED_AFTER: u64 = 1 << 20;

/// The MD5 of what went through, inline or on a blocking thread.
enum Hasher {
    Inline(Md5),
    Threaded {
        /// Dropped when the body ends, which ends the thread.
        chunks: Option<mpsc::Sender<Bytes>>,
        digest: JoinHandle<Md5>,
    },
    Taken,
}

impl Hasher {
    /// Hashes `chunk`, moving to a thread once `seen` passes the limit.
    async fn update(&mut self, chunk: &Bytes, seen: u64) {
        if let Hasher::Inline(md5) = self {
            if seen <= THREADED_AFTER {
                md5.update(chunk);
                return;
            }
            let mut md5 = std::mem::take(md5);
            let (tx, mut rx) = mpsc::channel::<Bytes>(8);
            let digest = tokio::task::spawn_blocking(move || {
                while let Some(chunk) = rx.blocking_recv() {
                    md5.update(&chunk);
                }
                md5
            });
            *self = Hasher::Threaded {
                chunks: Some(tx),
                digest,
            };
        }
        if let Hasher::Threaded {
            chunks: Some(tx), ..
        } = self
        {
            // A clone of `Bytes` shares the buffer: nothing is copied.
            let _ = tx.send(chunk.clone()).await;
        }
    }

    /// The body ended: no more chunks.
    fn close(&mut self) {
        if let Hasher::Threaded { chunks, .. } = self {
            chunks.take();
        }
    }

    async fn digest(&mut self) -> Result<String, Error> {
        let md5 = match std::mem::replace(self, Hasher::Taken) {
            Hasher::Inline(md5) => md5,
            Hasher::Threaded { chunks, digest } => {
                drop(chunks);
                digest
                    .await
                    .map_err(|e| Error::internal(format!("hashing failed: {e}")))?
            }
            Hasher::Taken => return Err(Error::internal("the digest was taken already")),
        };
        Ok(hex::encode(md5.finalize()))
    }
}

struct State {
    hasher: Hasher,
    bytes: u64,
}

/// What went through a [`tallied`] stream.
#[derive(Clone)]
pub(crate) struct Tally(Arc<tokio::sync::Mutex<State>>);

impl Tally {
    /// Bytes seen and their hex MD5, once the body has ended.
    pub(crate) async fn finish(&self) -> Result<(u64, String), Error> {
        let mut state = self.0.lock().await;
        let digest = state.hasher.digest().await?;
        Ok((state.bytes, digest))
    }
}

/// `body`, hashed and counted; it ends with an error when the body holds
/// more than `declared` or `limit` bytes, or fewer than `declared`.
pub(crate) fn tallied(body: ByteStream, declared: Option<u64>, limit: u64) -> (ByteStream, Tally) {
    let tally = Tally(Arc::new(tokio::sync::Mutex::new(State {
        hasher: Hasher::Inline(Md5::new()),
        bytes: 0,
    })));
    let state = tally.0.clone();
    let stream = futures_util::stream::unfold(body, move |mut body| {
        let state = state.clone();
        async move {
            let next = body.next().await;
            let mut s = state.lock().await;
            match next {
                Some(Ok(chunk)) => {
                    s.bytes += chunk.len() as u64;
                    if declared.is_some_and(|d| s.bytes > d) {
                        return Some((
                            Err(Error::invalid(
                                "the body is longer than its Content-Length: nothing was stored",
                            )),
                            body,
                        ));
                    }
                    if s.bytes > limit {
                        return Some((
                            Err(Error::PayloadTooLarge(format!(
                                "objects here are at most {limit} bytes: nothing was stored"
                            ))),
                            body,
                        ));
                    }
                    let seen = s.bytes;
                    s.hasher.update(&chunk, seen).await;
                    Some((Ok(chunk), body))
                }
                Some(Err(e)) => Some((Err(e), body)),
                None => match declared {
                    Some(d) if s.bytes < d => Some((
                        Err(Error::invalid(format!(
                            "the body ended after {} of its {d} declared bytes: nothing was stored",
                            s.bytes
                        ))),
                        body,
                    )),
                    _ => {
                        s.hasher.close();
                        None
                    }
                },
            }
        }
    });
    // After an error item the stream ends: a blob store that polls on
    // must not see more bytes.
    let stream = stream.scan(false, |failed, item| {
        if *failed {
            return futures_util::future::ready(None);
        }
        *failed = item.is_err();
        futures_util::future::ready(Some(item))
    });
    (Box::pin(stream), tally)
}

/// `body`, counting what it sends into `counter`.
pub(crate) fn counted(body: ByteStream, counter: prometheus::IntCounter) -> ByteStream {
    Box::pin(body.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counter.inc_by(bytes.len() as u64);
        }
        chunk
    }))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::ErrorCode;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        ))
    }

    async fn drain(mut s: ByteStream) -> Result<u64, Error> {
        let mut n = 0;
        while let Some(c) = s.next().await {
            n += c?.len() as u64;
        }
        Ok(n)
    }

    #[tokio::test]
    async fn hashes_large_bodies_on_a_thread_and_small_ones_inline() {
        let chunks: Vec<&'static [u8]> = vec![&[7u8; 300_000]; 10];
        let (s, tally) = tallied(body(&chunks), Some(3_000_000), u64::MAX);
        assert_eq!(drain(s).await.unwrap(), 3_000_000);
        let (n, md5) = tally.finish().await.unwrap();
        assert_eq!(n, 3_000_000);
        let mut whole = Md5::new();
        whole.update(vec![7u8; 3_000_000]);
        assert_eq!(md5, hex::encode(whole.finalize()));
    }

    #[tokio::test]
    async fn hashes_and_counts() {
        let (s, tally) = tallied(body(&[b"hello ", b"world"]), Some(11), 100);
        assert_eq!(drain(s).await.unwrap(), 11);
        let (n, md5) = tally.finish().await.unwrap();
        assert_eq!(n, 11);
        assert_eq!(md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
    }

    #[tokio::test]
    async fn refuses_bodies_longer_shorter_or_over_the_limit() {
        let longer = tallied(body(&[b"abc", b"def"]), Some(4), 100).0;
        assert_eq!(
            drain(longer).await.unwrap_err().code(),
            ErrorCode::InvalidInput
        );
        let shorter = tallied(body(&[b"abc"]), Some(4), 100).0;
        assert_eq!(
            drain(shorter).await.unwrap_err().code(),
            ErrorCode::InvalidInput
        );
        let over = tallied(body(&[b"abc", b"def"]), None, 5).0;
        assert_eq!(
            drain(over).await.unwrap_err().code(),
            ErrorCode::PayloadTooLarge
        );
    }
}

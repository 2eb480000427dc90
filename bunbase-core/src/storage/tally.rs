//! Counting and hashing bytes as they stream into a blob store, with the
//! limits that refuse a body half way: longer than declared, shorter than
//! declared, or over the size limit.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use md5::{Digest, Md5};

use super::blob::ByteStream;
use crate::error::Error;

#[derive(Default)]
struct State {
    md5: Md5,
    bytes: u64,
}

/// What went through a [`tallied`] stream.
#[derive(Clone)]
pub(crate) struct Tally(Arc<Mutex<State>>);

impl Tally {
    /// Bytes seen and their hex MD5.
    pub(crate) fn finish(&self) -> (u64, String) {
        match self.0.lock() {
            Ok(mut state) => {
                let md5 = std::mem::take(&mut state.md5);
                (state.bytes, hex::encode(md5.finalize()))
            }
            Err(_) => (0, String::new()),
        }
    }
}

/// `body`, hashed and counted; it ends with an error when the body holds
/// more than `declared` or `limit` bytes, or fewer than `declared`.
pub(crate) fn tallied(body: ByteStream, declared: Option<u64>, limit: u64) -> (ByteStream, Tally) {
    let tally = Tally(Arc::new(Mutex::new(State::default())));
    let state = tally.0.clone();
    let stream = futures_util::stream::unfold(body, move |mut body| {
        let state = state.clone();
        async move {
            let next = body.next().await;
            let mut s = match state.lock() {
                Ok(s) => s,
                Err(_) => return Some((Err(Error::internal("tally lock poisoned")), body)),
            };
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
                    s.md5.update(&chunk);
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
                    _ => None,
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
    async fn hashes_and_counts() {
        let (s, tally) = tallied(body(&[b"hello ", b"world"]), Some(11), 100);
        assert_eq!(drain(s).await.unwrap(), 11);
        let (n, md5) = tally.finish();
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

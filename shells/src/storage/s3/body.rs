//! Request bodies, streamed and checked on the way: the signed SHA-256
//! (`x-amz-content-sha256`), `Content-MD5`, a flexible checksum
//! (`x-amz-checksum-*`, as a header or a trailer), and aws-chunked
//! decoding with chunk and trailer signatures. A failed check ends the
//! stream with an error, so the storage service stores nothing; the S3
//! error that explains it is kept in a [`Failure`].

use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use axum::body::{Body, BodyDataStream};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bunbase_core::Error;
use bunbase_core::storage::ByteStream;
use bytes::{Buf, Bytes};
use crc::{Crc, Table};
use futures_util::StreamExt;
use md5::{Digest, Md5};

use super::error::S3Error;
use super::sigv4::{ChunkSigner, EMPTY_SHA256, Payload};

static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&crc::CRC_32_ISO_HDLC);
static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&crc::CRC_32_ISCSI);
static CRC64NVME: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&crc::CRC_64_NVME);

/// The flexible checksums of S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algo {
    pub const ALL: [Algo; 5] = [
        Algo::Crc32,
        Algo::Crc32c,
        Algo::Crc64Nvme,
        Algo::Sha1,
        Algo::Sha256,
    ];

    pub fn header(self) -> &'static str {
        match self {
            Algo::Crc32 => "x-amz-checksum-crc32",
            Algo::Crc32c => "x-amz-checksum-crc32c",
            Algo::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algo::Sha1 => "x-amz-checksum-sha1",
            Algo::Sha256 => "x-amz-checksum-sha256",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Algo::Crc32 => "CRC32",
            Algo::Crc32c => "CRC32C",
            Algo::Crc64Nvme => "CRC64NVME",
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
        }
    }

    fn of_header(name: &str) -> Option<Algo> {
        Algo::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algo::Crc32 => Hasher::Crc32(CRC32.digest()),
            Algo::Crc32c => Hasher::Crc32c(CRC32C.digest()),
            Algo::Crc64Nvme => Hasher::Crc64(CRC64NVME.digest()),
            Algo::Sha1 => Hasher::Sha(digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY)),
            Algo::Sha256 => Hasher::Sha(digest::Context::new(&digest::SHA256)),
        }
    }
}

/// A checksum being computed.
pub enum Hasher {
    Crc32(crc::Digest<'static, u32, Table<16>>),
    Crc32c(crc::Digest<'static, u32, Table<16>>),
    Crc64(crc::Digest<'static, u64, Table<16>>),
    Sha(digest::Context),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(d) | Hasher::Crc32c(d) => d.update(data),
            Hasher::Crc64(d) => d.update(data),
            Hasher::Sha(c) => c.update(data),
        }
    }

    /// The checksum as S3 writes it: base64 of the big-endian value.
    pub fn finish(self) -> String {
        match self {
            Hasher::Crc32(d) | Hasher::Crc32c(d) => B64.encode(d.finalize().to_be_bytes()),
            Hasher::Crc64(d) => B64.encode(d.finalize().to_be_bytes()),
            Hasher::Sha(c) => B64.encode(c.finish().as_ref()),
        }
    }
}

/// The S3 error that ended a body stream, if one did.
#[derive(Clone, Default)]
pub struct Failure(Arc<Mutex<Option<S3Error>>>);

impl Failure {
    pub fn take(&self) -> Option<S3Error> {
        self.0.lock().ok().and_then(|mut f| f.take())
    }

    fn set(&self, e: S3Error) {
        if let Ok(mut f) = self.0.lock() {
            *f = Some(e);
        }
    }
}

/// How to read a request's body: what the headers promise about it.
pub struct Plan {
    payload: Payload,
    /// The length of the content (decoded, for aws-chunked).
    pub length: Option<u64>,
    checksum: Option<(Algo, String)>,
    trailer: Option<Algo>,
    md5: Option<Vec<u8>>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Plan {
    pub fn new(headers: &HeaderMap, payload: Payload) -> Result<Plan, S3Error> {
        let chunked = matches!(payload, Payload::Chunked { .. });
        let number = |name: &str| -> Result<Option<u64>, S3Error> {
            header(headers, name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| S3Error::invalid_argument(format!("{name} must be a number")))
                })
                .transpose()
        };
        let length = if chunked {
            number("x-amz-decoded-content-length")?
        } else {
            number("content-length")?
        };
        let mut checksum = None;
        for algo in Algo::ALL {
            if let Some(value) = header(headers, algo.header()) {
                if checksum.is_some() {
                    return Err(S3Error::invalid_argument(
                        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                    ));
                }
                checksum = Some((algo, value.trim().to_string()));
            }
        }
        let trailer = match header(headers, "x-amz-trailer") {
            None => None,
            Some(name) => match Algo::of_header(name) {
                Some(algo) if matches!(payload, Payload::Chunked { trailer: true, .. }) => {
                    Some(algo)
                }
                Some(_) => {
                    return Err(S3Error::bad_request(
                        "InvalidRequest",
                        "x-amz-trailer needs a STREAMING-…-TRAILER x-amz-content-sha256",
                    ));
                }
                None => {
                    return Err(S3Error::bad_request(
                        "InvalidRequest",
                        "The value specified in the x-amz-trailer header is not supported",
                    ));
                }
            },
        };
        let md5 = match header(headers, "content-md5") {
            None => None,
            Some(v) => match B64.decode(v.trim()) {
                Ok(raw) if raw.len() == 16 => Some(raw),
                _ => {
                    return Err(S3Error::bad_request(
                        "InvalidDigest",
                        "The Content-MD5 you specified was invalid.",
                    ));
                }
            },
        };
        Ok(Plan {
            payload,
            length,
            checksum,
            trailer,
            md5,
        })
    }
}

/// Reads an HTTP body in pieces, without copying them.
struct Source {
    inner: BodyDataStream,
    pending: Bytes,
}

fn incomplete(message: impl Into<String>) -> S3Error {
    S3Error::bad_request("IncompleteBody", message)
}

impl Source {
    /// Whether bytes are pending (false: the body ended).
    async fn fill(&mut self) -> Result<bool, S3Error> {
        while self.pending.is_empty() {
            match self.inner.next().await {
                Some(Ok(b)) => self.pending = b,
                Some(Err(e)) => return Err(incomplete(format!("the request body failed: {e}"))),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn take(&mut self, max: u64) -> Result<Option<Bytes>, S3Error> {
        if !self.fill().await? {
            return Ok(None);
        }
        let n = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(self.pending.len());
        Ok(Some(self.pending.split_to(n)))
    }

    /// A line, without its `\r\n` (or `\n`); `None` at the end.
    async fn line(&mut self, max: usize) -> Result<Option<Vec<u8>>, S3Error> {
        let mut line = Vec::new();
        loop {
            if !self.fill().await? {
                return Ok((!line.is_empty()).then_some(line));
            }
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&self.pending[..at]);
                self.pending.advance(at + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            line.extend_from_slice(&self.pending);
            self.pending.clear();
            if line.len() > max {
                return Err(incomplete("an aws-chunked line is too long"));
            }
        }
    }
}

enum Phase {
    Header,
    Data {
        remaining: u64,
        signature: Option<String>,
        hash: Option<digest::Context>,
    },
    Done,
}

/// A body being read and checked.
pub struct Decoder {
    src: Source,
    chunked: bool,
    signer: Option<Box<ChunkSigner>>,
    trailer_expected: bool,
    phase: Phase,
    sha256: Option<(digest::Context, String)>,
    checksum: Option<(Algo, Hasher, Option<String>)>,
    md5: Option<(Md5, Vec<u8>)>,
    declared: Option<u64>,
    seen: u64,
}

fn chunk_signature_mismatch() -> S3Error {
    S3Error::forbidden(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided (a chunk's signature).",
    )
}

impl Decoder {
    pub fn new(body: Body, plan: Plan) -> Decoder {
        let (chunked, signer, trailer_expected, sha256) = match plan.payload {
            Payload::Unsigned => (false, None, false, None),
            Payload::Sha256(hash) => (
                false,
                None,
                false,
                Some((digest::Context::new(&digest::SHA256), hash)),
            ),
            Payload::Chunked { signer, trailer } => (true, signer, trailer, None),
        };
        let checksum = match (plan.checksum, plan.trailer) {
            (Some((algo, expected)), _) => Some((algo, algo.hasher(), Some(expected))),
            (None, Some(algo)) => Some((algo, algo.hasher(), None)),
            (None, None) => None,
        };
        Decoder {
            src: Source {
                inner: body.into_data_stream(),
                pending: Bytes::new(),
            },
            chunked,
            signer,
            trailer_expected,
            phase: Phase::Header,
            sha256,
            checksum,
            md5: plan.md5.map(|m| (Md5::new(), m)),
            declared: plan.length,
            seen: 0,
        }
    }

    /// The content's length as the headers declare it.
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    fn count(&mut self, data: &[u8]) -> Result<(), S3Error> {
        self.seen += data.len() as u64;
        if let Some(declared) = self.declared
            && self.seen > declared
        {
            return Err(S3Error::bad_request(
                "InvalidRequest",
                format!(
                    "the body holds more than its declared {declared} bytes: nothing was stored"
                ),
            ));
        }
        if let Some((ctx, _)) = &mut self.sha256 {
            ctx.update(data);
        }
        if let Some((_, hasher, _)) = &mut self.checksum {
            hasher.update(data);
        }
        if let Some((md5, _)) = &mut self.md5 {
            md5.update(data);
        }
        Ok(())
    }

    /// The checks made once the whole body was read.
    fn finish(&mut self, trailers: &[(String, String)]) -> Result<(), S3Error> {
        self.phase = Phase::Done;
        if let Some(declared) = self.declared
            && self.seen < declared
        {
            return Err(incomplete(format!(
                "You did not provide the number of bytes specified: {} of {declared}",
                self.seen
            )));
        }
        if let Some((ctx, expected)) = self.sha256.take() {
            let got = hex::encode(ctx.finish().as_ref());
            if got != *expected {
                return Err(S3Error::bad_request(
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        if let Some((algo, hasher, expected)) = self.checksum.take() {
            let expected = match expected {
                Some(e) => e,
                None => match trailers.iter().find(|(n, _)| n == algo.header()) {
                    Some((_, v)) => v.clone(),
                    None => {
                        return Err(S3Error::bad_request(
                            "MalformedTrailerError",
                            format!("the trailer lacks {} named by x-amz-trailer", algo.header()),
                        ));
                    }
                },
            };
            if hasher.finish() != expected {
                return Err(S3Error::bad_request(
                    "BadDigest",
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        algo.label()
                    ),
                ));
            }
        }
        if let Some((md5, expected)) = self.md5.take()
            && md5.finalize().as_slice() != expected.as_slice()
        {
            return Err(S3Error::bad_request(
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
        Ok(())
    }

    /// The next piece of content; `None` once all was read and checked.
    pub async fn next(&mut self) -> Option<Result<Bytes, S3Error>> {
        if !self.chunked {
            return self.next_plain().await;
        }
        loop {
            match self.step().await {
                Ok(Some(Some(piece))) => return Some(Ok(piece)),
                Ok(Some(None)) => continue,
                Ok(None) => return None,
                Err(e) => {
                    self.phase = Phase::Done;
                    return Some(Err(e));
                }
            }
        }
    }

    async fn next_plain(&mut self) -> Option<Result<Bytes, S3Error>> {
        if matches!(self.phase, Phase::Done) {
            return None;
        }
        let result = match self.src.take(u64::MAX).await {
            Ok(Some(piece)) => self.count(&piece).map(|()| Some(piece)),
            Ok(None) => self.finish(&[]).map(|()| None),
            Err(e) => Err(e),
        };
        match result {
            Ok(piece) => piece.map(Ok),
            Err(e) => {
                self.phase = Phase::Done;
                Some(Err(e))
            }
        }
    }

    /// One step of aws-chunked decoding: `Some(Some(piece))` content,
    /// `Some(None)` nothing yet, `None` the end.
    async fn step(&mut self) -> Result<Option<Option<Bytes>>, S3Error> {
        match &mut self.phase {
            Phase::Done => Ok(None),
            Phase::Header => {
                let Some(line) = self.src.line(4096).await? else {
                    return Err(incomplete(
                        "the aws-chunked body ended before its last chunk",
                    ));
                };
                let line = String::from_utf8(line)
                    .map_err(|_| incomplete("an aws-chunked chunk header is not text"))?;
                let mut fields = line.split(';');
                let size_text = fields.next().unwrap_or("").trim();
                let size = if size_text.is_empty() || size_text.len() > 15 {
                    None
                } else {
                    u64::from_str_radix(size_text, 16).ok()
                };
                let Some(size) = size else {
                    return Err(S3Error::bad_request(
                        "InvalidChunkSizeError",
                        format!("the aws-chunked chunk header {line:?} has no size"),
                    ));
                };
                let signature = fields
                    .filter_map(|f| f.trim().strip_prefix("chunk-signature="))
                    .map(str::to_string)
                    .next();
                if self.signer.is_some() && signature.is_none() {
                    return Err(chunk_signature_mismatch());
                }
                if size == 0 {
                    if let (Some(signer), Some(sent)) = (&mut self.signer, &signature) {
                        let expected = signer.chunk(EMPTY_SHA256);
                        if !signer.accept(&expected, sent) {
                            return Err(chunk_signature_mismatch());
                        }
                    }
                    let trailers = self.trailers().await?;
                    self.finish(&trailers)?;
                    return Ok(None);
                }
                self.phase = Phase::Data {
                    remaining: size,
                    hash: self
                        .signer
                        .as_ref()
                        .map(|_| digest::Context::new(&digest::SHA256)),
                    signature,
                };
                Ok(Some(None))
            }
            Phase::Data {
                remaining,
                signature,
                hash,
            } => {
                if *remaining > 0 {
                    let Some(piece) = self.src.take(*remaining).await? else {
                        return Err(incomplete("the aws-chunked body ended inside a chunk"));
                    };
                    *remaining -= piece.len() as u64;
                    if let Some(h) = hash {
                        h.update(&piece);
                    }
                    self.count(&piece)?;
                    return Ok(Some(Some(piece)));
                }
                let sent = signature.take();
                let hash = hash.take();
                match self.src.line(2).await? {
                    Some(l) if l.is_empty() => {}
                    _ => {
                        return Err(S3Error::bad_request(
                            "InvalidChunkSizeError",
                            "an aws-chunked chunk is longer than its size",
                        ));
                    }
                }
                if let (Some(signer), Some(sent), Some(hash)) = (&mut self.signer, sent, hash) {
                    let expected = signer.chunk(&hex::encode(hash.finish().as_ref()));
                    if !signer.accept(&expected, &sent) {
                        return Err(chunk_signature_mismatch());
                    }
                }
                self.phase = Phase::Header;
                Ok(Some(None))
            }
        }
    }

    /// The trailing headers after the last chunk (their signature checked).
    async fn trailers(&mut self) -> Result<Vec<(String, String)>, S3Error> {
        let mut trailers = Vec::new();
        let mut signature = None;
        let mut size = 0;
        while let Some(line) = self.src.line(4096).await? {
            if line.is_empty() {
                break;
            }
            size += line.len();
            if size > 16 * 1024 || trailers.len() > 16 {
                return Err(S3Error::bad_request(
                    "MalformedTrailerError",
                    "the trailer is too long",
                ));
            }
            let line = String::from_utf8(line).map_err(|_| {
                S3Error::bad_request("MalformedTrailerError", "the trailer is not text")
            })?;
            let Some((name, value)) = line.split_once(':') else {
                return Err(S3Error::bad_request(
                    "MalformedTrailerError",
                    format!("the trailer line {line:?} is not name:value"),
                ));
            };
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            if name == "x-amz-trailer-signature" {
                signature = Some(value);
            } else {
                trailers.push((name, value));
            }
        }
        if self.trailer_expected
            && let Some(signer) = &mut self.signer
        {
            let canonical: String = trailers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
            let expected = signer.trailer(&canonical);
            match signature {
                Some(sent) if signer.accept(&expected, &sent) => {}
                _ => {
                    return Err(S3Error::forbidden(
                        "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided (the trailer's signature).",
                    ));
                }
            }
        }
        Ok(trailers)
    }

    /// All of a small body (an XML document), at most `limit` bytes.
    pub async fn read_all(mut self, limit: usize) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        while let Some(piece) = self.next().await {
            let piece = piece?;
            if out.len() + piece.len() > limit {
                return Err(S3Error::bad_request(
                    "MaxMessageLengthExceeded",
                    format!(
                        "Your request was too big: this request body takes at most {limit} bytes."
                    ),
                ));
            }
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    /// The body as the storage service takes it; a failed check ends it
    /// with an error whose S3 form is kept in the [`Failure`].
    pub fn into_stream(self) -> (ByteStream, Failure) {
        let failure = Failure::default();
        let kept = failure.clone();
        let stream = futures_util::stream::unfold(Some(self), move |decoder| {
            let kept = kept.clone();
            async move {
                let mut decoder = decoder?;
                match decoder.next().await {
                    None => None,
                    Some(Ok(piece)) => Some((Ok(piece), Some(decoder))),
                    Some(Err(e)) => {
                        let core = Error::invalid(format!("{}: nothing was stored", e.message));
                        kept.set(e);
                        Some((Err(core), None))
                    }
                }
            }
        });
        (Box::pin(stream), failure)
    }
}

/// An error of the storage service after a streamed body: the body's own
/// failure when it had one.
pub fn explain(e: Error, failure: &Failure, ctx: super::error::Ctx) -> S3Error {
    failure.take().unwrap_or_else(|| S3Error::from_core(e, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::s3::sigv4::sha256_hex;

    #[test]
    fn checksums_match_s3() {
        let check = |algo: Algo, data: &[u8]| {
            let mut h = algo.hasher();
            h.update(data);
            h.finish()
        };
        // The standard check values of "123456789".
        assert_eq!(
            check(Algo::Crc32, b"123456789"),
            B64.encode(0xcbf4_3926_u32.to_be_bytes())
        );
        assert_eq!(
            check(Algo::Crc32c, b"123456789"),
            B64.encode(0xe306_9283_u32.to_be_bytes())
        );
        assert_eq!(
            check(Algo::Crc64Nvme, b"123456789"),
            B64.encode(0xae8b_1486_0a79_9888_u64.to_be_bytes())
        );
        assert_eq!(
            check(Algo::Sha256, b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    fn decoder(headers: &[(&str, &str)], payload: Payload, body: &'static [u8]) -> Decoder {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        // Split the body into odd pieces, as a network would.
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(7).map(|c| Ok(Bytes::from_static(c))).collect();
        let body = Body::from_stream(futures_util::stream::iter(pieces));
        Decoder::new(body, Plan::new(&map, payload).unwrap())
    }

    #[tokio::test]
    async fn decodes_unsigned_chunks_with_a_trailer() {
        let mut h = Algo::Crc32.hasher();
        h.update(b"hello world");
        let body: &'static [u8] = Box::leak(
            format!(
                "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:{}\r\n\r\n",
                h.finish()
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let headers = [
            ("x-amz-decoded-content-length", "11"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ];
        let payload = || Payload::Chunked {
            signer: None,
            trailer: true,
        };
        let got = decoder(&headers, payload(), body)
            .read_all(100)
            .await
            .unwrap();
        assert_eq!(got, b"hello world");
        let bad: &'static [u8] =
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let e = decoder(&headers, payload(), bad)
            .read_all(100)
            .await
            .unwrap_err();
        assert_eq!(e.code, "BadDigest");
        let short: &'static [u8] = b"5\r\nhello\r\n0\r\n\r\n";
        let e = decoder(&[("x-amz-decoded-content-length", "11")], payload(), short)
            .read_all(100)
            .await
            .unwrap_err();
        assert_eq!(e.code, "IncompleteBody");
    }

    #[tokio::test]
    async fn plain_bodies_match_their_hash() {
        let good = Payload::Sha256(sha256_hex(b"abc"));
        let got = decoder(&[("content-length", "3")], good, b"abc")
            .read_all(10)
            .await
            .unwrap();
        assert_eq!(got, b"abc");
        let bad = Payload::Sha256(sha256_hex(b"abd"));
        let e = decoder(&[], bad, b"abc").read_all(10).await.unwrap_err();
        assert_eq!(e.code, "XAmzContentSHA256Mismatch");
        let md5 = B64.encode(Md5::digest(b"abc"));
        decoder(&[("content-md5", &md5)], Payload::Unsigned, b"abc")
            .read_all(10)
            .await
            .unwrap();
        let e = decoder(&[("content-md5", &md5)], Payload::Unsigned, b"abd")
            .read_all(10)
            .await
            .unwrap_err();
        assert_eq!(e.code, "BadDigest");
    }
}

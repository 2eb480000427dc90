//! AWS Signature Version 4 as S3 has it: the `Authorization` header form
//! and presigned URLs, checked against the request as the client sent it
//! (the full path, `/storage/s3` included), and the signing of aws-chunked
//! bodies' chunks and trailers. The signing functions are public for
//! tools and tests that sign requests themselves.

use aws_lc_rs::{digest, hmac};
use axum::http::HeaderMap;
use base64::Engine;
use bunbase_core::ProjectId;
use subtle::ConstantTimeEq;

use super::error::S3Error;
use super::time;
use bunbase_core::storage::Storage;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// SHA-256 of nothing.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Requests dated further from the server's clock are refused.
pub const MAX_SKEW_SECS: u64 = 15 * 60;
/// Longest validity of a presigned URL (7 days).
pub const MAX_PRESIGNED_SECS: u64 = 7 * 24 * 3600;

/// How the request's body is to be read and checked.
pub enum Payload {
    /// Not covered by the signature.
    Unsigned,
    /// Its SHA-256 (hex) was signed: the body must hash to it.
    Sha256(String),
    /// aws-chunked: each chunk signed (`signer`) or not, with trailing
    /// headers (a checksum) or not.
    Chunked {
        signer: Option<Box<ChunkSigner>>,
        trailer: bool,
    },
}

/// A request whose signature holds.
pub struct Authed {
    pub access_key_id: String,
    pub project: ProjectId,
    pub payload: Payload,
}

/// What of the request the signature covers.
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The path as sent, still percent-encoded.
    pub raw_path: &'a str,
    /// The query's pairs, decoded.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    /// The URI's authority, for `host` when no Host header came (HTTP/2).
    pub authority: Option<&'a str>,
}

/// Signs the chunks of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD*` body, each
/// chained to the previous signature (the first to the request's).
pub struct ChunkSigner {
    key: hmac::Key,
    timestamp: String,
    scope: String,
    previous: String,
}

impl ChunkSigner {
    pub fn new(key: hmac::Key, timestamp: &str, scope: &str, seed: &str) -> ChunkSigner {
        ChunkSigner {
            key,
            timestamp: timestamp.to_string(),
            scope: scope.to_string(),
            previous: seed.to_string(),
        }
    }

    /// The signature the chunk whose SHA-256 is `chunk_hash` must carry.
    pub fn chunk(&self, chunk_hash: &str) -> String {
        let text = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{chunk_hash}",
            self.timestamp, self.scope, self.previous
        );
        hex::encode(hmac::sign(&self.key, text.as_bytes()).as_ref())
    }

    /// The signature of the trailing headers, canonical as
    /// `name:value\n` each.
    pub fn trailer(&self, canonical_trailers: &str) -> String {
        let text = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.timestamp,
            self.scope,
            self.previous,
            sha256_hex(canonical_trailers.as_bytes())
        );
        hex::encode(hmac::sign(&self.key, text.as_bytes()).as_ref())
    }

    /// Signs a chunk (client side) and chains to it.
    pub fn sign_chunk(&mut self, data: &[u8]) -> String {
        let signature = self.chunk(&sha256_hex(data));
        self.previous = signature.clone();
        signature
    }

    /// Signs the trailing headers (client side), canonical as
    /// `name:value\n` each.
    pub fn sign_trailer(&mut self, canonical_trailers: &str) -> String {
        let signature = self.trailer(canonical_trailers);
        self.previous = signature.clone();
        signature
    }

    /// Checks a chunk's (or the trailer's) signature and chains to it.
    pub fn accept(&mut self, expected: &str, sent: &str) -> bool {
        let ok = bool::from(expected.as_bytes().ct_eq(sent.as_bytes()));
        if ok {
            self.previous = sent.to_string();
        }
        ok
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// The key that signs requests of `date` (`yyyymmdd`) in `region`.
pub fn signing_key(secret: &str, date: &str, region: &str) -> hmac::Key {
    let step = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
    };
    let k_date = step(format!("AWS4{secret}").as_bytes(), date);
    let k_region = step(k_date.as_ref(), region);
    let k_service = step(k_region.as_ref(), "s3");
    let k_signing = step(k_service.as_ref(), "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// `uri-encode` of SigV4: everything but `A-Za-z0-9-._~` (and `/` when
/// `keep_slash`) as `%XX`.
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` decoded (and `+` as a space when `plus`); `None` for a broken
/// escape.
pub fn percent_decode(text: &str, plus: bool) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex_value(*b.get(i + 1)?)?;
                let lo = hex_value(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// A raw query string's pairs, decoded (`uploads` → `("uploads", "")`).
pub fn parse_query(raw: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = String::from_utf8(percent_decode(name, true)?).ok()?;
        let value = String::from_utf8(percent_decode(value, true)?).ok()?;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// The canonical query string: names and values encoded, sorted.
pub fn canonical_query(pairs: &[(String, String)], skip_signature: bool) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| !(skip_signature && name == "X-Amz-Signature"))
        .map(|(n, v)| {
            (
                uri_encode(n.as_bytes(), false),
                uri_encode(v.as_bytes(), false),
            )
        })
        .collect();
    encoded.sort();
    let joined: Vec<String> = encoded
        .into_iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    joined.join("&")
}

/// A header value as signed: trimmed, runs of spaces as one.
fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    let value = value.trim_ascii();
    let mut space = false;
    for &b in value {
        if b == b' ' || b == b'\t' {
            if !space {
                out.push(b' ');
            }
            space = true;
        } else {
            out.push(b);
            space = false;
        }
    }
}

fn canonical_headers(req: &Incoming<'_>, signed: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for value in req.headers.get_all(*name) {
            if !first {
                out.push(b',');
            }
            first = false;
            trim_all(value.as_bytes(), &mut out);
        }
        if first && *name == "host" {
            out.extend_from_slice(req.authority.unwrap_or("").as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// The canonical request's SHA-256 (hex).
fn canonical_request_hash(
    req: &Incoming<'_>,
    path: &str,
    query: &str,
    signed: &[&str],
    signed_list: &str,
    payload_hash: &str,
) -> String {
    let mut text = Vec::with_capacity(512);
    text.extend_from_slice(req.method.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(path.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(query.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(&canonical_headers(req, signed));
    text.push(b'\n');
    text.extend_from_slice(signed_list.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(payload_hash.as_bytes());
    sha256_hex(&text)
}

/// The paths a client may have signed: as sent, and re-encoded the SigV4
/// way (clients differ in what they leave unescaped).
fn path_candidates(raw: &str) -> Vec<String> {
    let mut out = vec![raw.to_string()];
    if let Some(decoded) = percent_decode(raw, false) {
        let normalized = uri_encode(&decoded, true);
        if normalized != raw {
            out.push(normalized);
        }
    }
    out
}

/// `AKID/20130524/us-east-1/s3/aws4_request`.
struct Credential {
    access_key_id: String,
    date: String,
    region: String,
}

impl Credential {
    fn scope(&self) -> String {
        format!("{}/{}/s3/aws4_request", self.date, self.region)
    }
}

fn parse_credential(text: &str, malformed: fn(String) -> S3Error) -> Result<Credential, S3Error> {
    let parts: Vec<&str> = text.split('/').collect();
    let [akid, date, region, service, terminator] = parts[..] else {
        return Err(malformed(format!(
            "the credential {text:?} is not AKID/date/region/s3/aws4_request"
        )));
    };
    if akid.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("the credential {text:?} is malformed")));
    }
    if service != "s3" {
        return Err(malformed(format!(
            "the credential names service {service:?}: this is s3"
        )));
    }
    if terminator != "aws4_request" {
        return Err(malformed(
            "the credential does not end with aws4_request".into(),
        ));
    }
    Ok(Credential {
        access_key_id: akid.to_string(),
        date: date.to_string(),
        region: region.to_string(),
    })
}

fn header_malformed(message: String) -> S3Error {
    S3Error::bad_request(
        "AuthorizationHeaderMalformed",
        format!("The authorization header is malformed; {message}"),
    )
}

fn query_malformed(message: String) -> S3Error {
    S3Error::bad_request(
        "AuthorizationQueryParametersError",
        format!("Error parsing the X-Amz-Credential parameter; {message}"),
    )
}

fn signature_mismatch() -> S3Error {
    S3Error::forbidden(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

/// The project and secret of a credential lookup, or S3's refusal.
fn known<T>(found: Result<Option<T>, bunbase_core::Error>) -> Result<T, S3Error> {
    match found {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(S3Error::forbidden(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )),
        Err(e) => Err(S3Error::from_core(e, super::error::Ctx::Bucket)),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks the request's signature; the project it acts for and how to
/// read its body.
pub async fn authenticate(storage: &Storage, req: &Incoming<'_>) -> Result<Authed, S3Error> {
    let header = req.headers.get("authorization");
    let has = |name: &str| req.query.iter().any(|(n, _)| n == name);
    if header.is_none() && !has("X-Amz-Algorithm") && has("AWSAccessKeyId") && has("Signature") {
        return by_query_v2(storage, req).await;
    }
    let presigned = has("X-Amz-Algorithm");
    match (header, presigned) {
        (Some(_), true) => Err(S3Error::invalid_argument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified",
        )),
        (None, false) => Err(S3Error::access_denied(
            "Anonymous access is not supported: sign the request (AWS Signature Version 4) with an S3 credential of the project",
        )),
        (Some(value), false) => {
            let value = value
                .to_str()
                .map_err(|_| header_malformed("it is not ASCII".into()))?;
            by_header(storage, req, value).await
        }
        (None, true) => by_query(storage, req).await,
    }
}

async fn by_header(storage: &Storage, req: &Incoming<'_>, value: &str) -> Result<Authed, S3Error> {
    let Some(rest) = value.strip_prefix(ALGORITHM).filter(|r| r.starts_with(' ')) else {
        return Err(S3Error::bad_request(
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        ));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((name, val)) = part.trim().split_once('=') else {
            continue;
        };
        match name.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(header_malformed(
            "it needs Credential, SignedHeaders and Signature".into(),
        ));
    };
    let credential = parse_credential(credential, header_malformed)?;
    let timestamp = match header_str(req.headers, "x-amz-date") {
        Some(t) => t.to_string(),
        None => header_str(req.headers, "date")
            .and_then(time::parse_http_date)
            .map(time::format_amz)
            .unwrap_or_default(),
    };
    let Some(at) = time::parse_amz(&timestamp) else {
        return Err(S3Error::access_denied(
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    };
    if !timestamp.starts_with(&credential.date) {
        return Err(header_malformed(
            "Invalid credential date. Date is not the same as X-Amz-Date.".into(),
        ));
    }
    let (project, secret) = known(storage.s3_secret(&credential.access_key_id).await)?;
    if time::now_secs().abs_diff(at) > MAX_SKEW_SECS {
        return Err(S3Error::forbidden(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    let Some(payload_hash) = header_str(req.headers, "x-amz-content-sha256") else {
        return Err(S3Error::bad_request(
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        ));
    };
    let payload_kind = classify(payload_hash)?;
    let signed = Signed {
        headers: signed_headers,
        timestamp: &timestamp,
        payload_hash,
        signature,
    };
    let (key, scope) = check_signature(req, &credential, &secret, &signed, false)?;
    let payload = match payload_kind {
        Kind::Unsigned => Payload::Unsigned,
        Kind::Sha256 => Payload::Sha256(payload_hash.to_ascii_lowercase()),
        Kind::Chunked { signed, trailer } => Payload::Chunked {
            signer: signed.then(|| Box::new(ChunkSigner::new(key, &timestamp, &scope, signature))),
            trailer,
        },
    };
    Ok(Authed {
        access_key_id: credential.access_key_id,
        project,
        payload,
    })
}

/// What a request's signature covers, as it says.
struct Signed<'a> {
    headers: &'a str,
    timestamp: &'a str,
    payload_hash: &'a str,
    signature: &'a str,
}

/// Checks the signature over the request (each way its path may be
/// spelled); the signing key and scope, which sign the chunks that follow.
fn check_signature(
    req: &Incoming<'_>,
    credential: &Credential,
    secret: &str,
    signed: &Signed<'_>,
    presigned: bool,
) -> Result<(hmac::Key, String), S3Error> {
    let names: Vec<&str> = signed
        .headers
        .split(';')
        .filter(|h| !h.is_empty())
        .collect();
    let key = signing_key(secret, &credential.date, &credential.region);
    let scope = credential.scope();
    let query = canonical_query(req.query, presigned);
    let matched = path_candidates(req.raw_path).iter().any(|path| {
        let hash = canonical_request_hash(
            req,
            path,
            &query,
            &names,
            signed.headers,
            signed.payload_hash,
        );
        let text = format!("{ALGORITHM}\n{}\n{scope}\n{hash}", signed.timestamp);
        let expected = hex::encode(hmac::sign(&key, text.as_bytes()).as_ref());
        bool::from(expected.as_bytes().ct_eq(signed.signature.as_bytes()))
    });
    if !matched {
        return Err(signature_mismatch());
    }
    Ok((key, scope))
}

enum Kind {
    Unsigned,
    Sha256,
    Chunked { signed: bool, trailer: bool },
}

fn classify(payload_hash: &str) -> Result<Kind, S3Error> {
    Ok(match payload_hash {
        UNSIGNED_PAYLOAD => Kind::Unsigned,
        STREAMING_SIGNED => Kind::Chunked {
            signed: true,
            trailer: false,
        },
        STREAMING_SIGNED_TRAILER => Kind::Chunked {
            signed: true,
            trailer: true,
        },
        STREAMING_UNSIGNED_TRAILER => Kind::Chunked {
            signed: false,
            trailer: true,
        },
        h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Kind::Sha256,
        h if h.starts_with("STREAMING-AWS4-ECDSA") => {
            return Err(S3Error::not_implemented("Signature Version 4A (ECDSA)"));
        }
        _ => {
            return Err(S3Error::bad_request(
                "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER) or a SHA-256 in hex",
            ));
        }
    })
}

async fn by_query(storage: &Storage, req: &Incoming<'_>) -> Result<Authed, S3Error> {
    let param = |name: &str| {
        req.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let missing = |name: &str| {
        S3Error::bad_request(
            "AuthorizationQueryParametersError",
            format!(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters: {name} is missing"
            ),
        )
    };
    if param("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(S3Error::bad_request(
            "AuthorizationQueryParametersError",
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let credential = param("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?;
    let timestamp = param("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?;
    let expires = param("X-Amz-Expires").ok_or_else(|| missing("X-Amz-Expires"))?;
    let signed_headers =
        param("X-Amz-SignedHeaders").ok_or_else(|| missing("X-Amz-SignedHeaders"))?;
    let signature = param("X-Amz-Signature").ok_or_else(|| missing("X-Amz-Signature"))?;
    let credential = parse_credential(credential, query_malformed)?;
    let Some(at) = time::parse_amz(timestamp) else {
        return Err(S3Error::bad_request(
            "AuthorizationQueryParametersError",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        ));
    };
    if !timestamp.starts_with(&credential.date) {
        return Err(query_malformed(
            "the credential's date is not X-Amz-Date's".into(),
        ));
    }
    let expires: u64 = match expires.parse() {
        Ok(n) if (1..=MAX_PRESIGNED_SECS).contains(&n) => n,
        Ok(_) => {
            return Err(S3Error::bad_request(
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            ));
        }
        Err(_) => {
            return Err(S3Error::bad_request(
                "AuthorizationQueryParametersError",
                "X-Amz-Expires should be a number",
            ));
        }
    };
    let (project, secret) = known(storage.s3_secret(&credential.access_key_id).await)?;
    let now = time::now_secs();
    if at > now + MAX_SKEW_SECS {
        return Err(S3Error::access_denied("Request is not valid yet"));
    }
    if now > at + expires {
        return Err(S3Error::access_denied("Request has expired"));
    }
    let payload_hash = param("X-Amz-Content-Sha256").unwrap_or(UNSIGNED_PAYLOAD);
    let payload = match classify(payload_hash)? {
        Kind::Unsigned => Payload::Unsigned,
        Kind::Sha256 => Payload::Sha256(payload_hash.to_ascii_lowercase()),
        Kind::Chunked { .. } => {
            return Err(S3Error::invalid_argument(
                "a presigned URL does not take an aws-chunked body",
            ));
        }
    };
    let signed = Signed {
        headers: signed_headers,
        timestamp,
        payload_hash,
        signature,
    };
    check_signature(req, &credential, &secret, &signed, true)?;
    Ok(Authed {
        access_key_id: credential.access_key_id,
        project,
        payload,
    })
}

/// Query parameters a version 2 signature covers (as botocore lists them).
const V2_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A presigned URL of signature version 2 (`AWSAccessKeyId`, `Expires`,
/// `Signature`): what boto3's `generate_presigned_url` makes unless told
/// `signature_version="s3v4"`. Held to the same 7 days.
async fn by_query_v2(storage: &Storage, req: &Incoming<'_>) -> Result<Authed, S3Error> {
    let param = |name: &str| {
        req.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let akid = param("AWSAccessKeyId").unwrap_or("");
    let signature = param("Signature").unwrap_or("");
    let Some(expires) = param("Expires").and_then(|e| e.parse::<u64>().ok()) else {
        return Err(S3Error::access_denied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ));
    };
    let (project, secret) = known(storage.s3_secret(akid).await)?;
    let now = time::now_secs();
    if now > expires {
        return Err(S3Error::access_denied("Request has expired"));
    }
    if expires > now + MAX_PRESIGNED_SECS {
        return Err(S3Error::bad_request(
            "AuthorizationQueryParametersError",
            "a presigned URL is valid for at most a week (604800 seconds)",
        ));
    }
    let header = |name: &str| {
        req.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .unwrap_or_default()
    };
    let mut amz: Vec<(String, String)> = Vec::new();
    for name in req.headers.keys() {
        if name.as_str().starts_with("x-amz-") {
            let values: Vec<String> = req
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
                .collect();
            amz.push((name.as_str().to_string(), values.join(",")));
        }
    }
    amz.sort();
    let mut sub: Vec<(&str, &str)> = req
        .query
        .iter()
        .filter(|(n, _)| V2_SUBRESOURCES.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    sub.sort();
    let sub: Vec<String> = sub
        .into_iter()
        .map(|(n, v)| {
            if v.is_empty() {
                n.to_string()
            } else {
                format!("{n}={v}")
            }
        })
        .collect();
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    // botocore signs version 2 with the path below the endpoint's own
    // (`/bucket/key`, without `/storage/s3`); others sign the full path.
    let mut paths = path_candidates(req.raw_path);
    if let Some(below) = req.raw_path.strip_prefix(super::PREFIX) {
        paths.extend(path_candidates(below));
    }
    let matched = paths.iter().any(|path| {
        let mut text = format!(
            "{}\n{}\n{}\n{expires}\n",
            req.method,
            header("content-md5"),
            header("content-type")
        );
        for (n, v) in &amz {
            text.push_str(&format!("{n}:{v}\n"));
        }
        text.push_str(path);
        if !sub.is_empty() {
            text.push('?');
            text.push_str(&sub.join("&"));
        }
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac::sign(&key, text.as_bytes()).as_ref());
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    });
    if !matched {
        return Err(signature_mismatch());
    }
    Ok(Authed {
        access_key_id: akid.to_string(),
        project,
        payload: Payload::Unsigned,
    })
}

/// A request to sign (client side: tools and tests).
pub struct ToSign<'a> {
    pub method: &'a str,
    /// The path as it will be sent (percent-encoded).
    pub path: &'a str,
    /// The query as it will be sent (without the presigning parameters).
    pub query: &'a str,
    /// Headers to sign, `host` included (names in any case).
    pub headers: &'a [(&'a str, &'a str)],
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    /// Seconds since the epoch.
    pub at: u64,
}

impl ToSign<'_> {
    fn parts(&self, payload_hash: &str, presign: Option<u64>) -> (String, String, String, String) {
        let timestamp = time::format_amz(self.at);
        let date = &timestamp[..8];
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        headers.sort();
        let signed_list: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let signed_list = signed_list.join(";");
        let mut pairs = parse_query(self.query).unwrap_or_default();
        if let Some(expires) = presign {
            pairs.push(("X-Amz-Algorithm".into(), ALGORITHM.into()));
            pairs.push((
                "X-Amz-Credential".into(),
                format!("{}/{scope}", self.access_key_id),
            ));
            pairs.push(("X-Amz-Date".into(), timestamp.clone()));
            pairs.push(("X-Amz-Expires".into(), expires.to_string()));
            pairs.push(("X-Amz-SignedHeaders".into(), signed_list.clone()));
        }
        let query = canonical_query(&pairs, false);
        let mut canonical = format!("{}\n{}\n{query}\n", self.method, self.path);
        for (n, v) in &headers {
            canonical.push_str(&format!("{n}:{v}\n"));
        }
        canonical.push_str(&format!("\n{signed_list}\n{payload_hash}"));
        let text = format!(
            "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let key = signing_key(self.secret, date, self.region);
        let signature = hex::encode(hmac::sign(&key, text.as_bytes()).as_ref());
        (signature, scope, signed_list, query)
    }

    /// The `Authorization` header and the signature (the seed of signed
    /// chunks). Send `x-amz-date` = [`time::format_amz`] of `at` and
    /// `x-amz-content-sha256` = `payload_hash`, both among `headers`.
    pub fn authorization(&self, payload_hash: &str) -> (String, String) {
        let (signature, scope, signed_list, _) = self.parts(payload_hash, None);
        (
            format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_list}, Signature={signature}",
                self.access_key_id
            ),
            signature,
        )
    }

    /// The query string of a presigned URL valid `expires` seconds.
    pub fn presigned_query(&self, expires: u64) -> String {
        let (signature, _, _, query) = self.parts(UNSIGNED_PAYLOAD, Some(expires));
        format!("{query}&X-Amz-Signature={signature}")
    }

    /// The signer of this request's chunks, seeded with `signature`.
    pub fn chunk_signer(&self, signature: &str) -> ChunkSigner {
        let timestamp = time::format_amz(self.at);
        let scope = format!("{}/{}/s3/aws4_request", &timestamp[..8], self.region);
        ChunkSigner::new(
            signing_key(self.secret, &timestamp[..8], self.region),
            &timestamp,
            &scope,
            signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's "Signature Calculations for the Authorization
    /// Header: Transferring Payload in a Single Chunk" (GET Object).
    #[test]
    fn matches_the_aws_example() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
        );
        let mut headers = HeaderMap::new();
        headers.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        headers.insert("range", "bytes=0-9".parse().unwrap());
        headers.insert("x-amz-content-sha256", EMPTY_SHA256.parse().unwrap());
        headers.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        let req = Incoming {
            method: "GET",
            raw_path: "/test.txt",
            query: &[],
            headers: &headers,
            authority: None,
        };
        let signed = ["host", "range", "x-amz-content-sha256", "x-amz-date"];
        let hash = canonical_request_hash(
            &req,
            "/test.txt",
            "",
            &signed,
            &signed.join(";"),
            EMPTY_SHA256,
        );
        let text =
            format!("{ALGORITHM}\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{hash}");
        assert_eq!(
            hex::encode(hmac::sign(&key, text.as_bytes()).as_ref()),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS's chunked upload example: the seed and the first chunk's
    /// signature.
    #[test]
    fn matches_the_aws_chunk_example() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
        );
        let signer = ChunkSigner::new(
            key,
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        );
        let chunk = vec![b'a'; 65536];
        assert_eq!(
            signer.chunk(&sha256_hex(&chunk)),
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
    }

    #[test]
    fn canonical_queries_sort_and_encode() {
        let pairs = parse_query("prefix=a%20b+c&list-type=2&uploads&x=%2F~").unwrap();
        assert_eq!(
            canonical_query(&pairs, false),
            "list-type=2&prefix=a%20b%20c&uploads=&x=%2F~"
        );
    }
}

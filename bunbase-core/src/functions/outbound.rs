//! The host side of a function's `fetch`: HTTP(S) to the hosts its
//! deployment allows, never into the platform's own network.
//!
//! Checks, in order: the method and URL (http and https only, no
//! credentials in it), the host against the deployment's `allow_hosts`
//! (none by default, so nothing is reachable until a deployment names its
//! hosts), the address (unless `allow_private`: no loopback, private,
//! link-local, CGNAT, reserved, multicast or documentation address, v4 or
//! v6, however spelled), the request's size. Redirects are not followed
//! (the function sees the 3xx, as with `redirect: "manual"`); the response
//! body is read up to a limit; the whole exchange has one deadline.
//!
//! DNS rebinding: the client is built once with its own resolver
//! ([`VettingResolver`]), which resolves each name and refuses it when any
//! of its addresses is internal. The connector connects only to the
//! addresses that resolver returned, so the addresses checked are exactly
//! the addresses used: there is no second lookup an attacker's DNS could
//! answer differently. (Pinning with `ClientBuilder::resolve` would need a
//! client, and its TLS setup, per request.) IP literals never reach a
//! resolver, so [`Outbound::fetch`] checks them itself. Proxies are off,
//! or the resolver would vet the proxy instead of the target.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::web::{FetchRequest, FetchResponse};
use crate::error::Error;

/// Most entries in a deployment's `allow_hosts`.
pub const MAX_ALLOW_HOSTS: usize = 50;

/// Headers that describe one connection, not the message (RFC 9110
/// §7.6.1), plus those the client computes itself.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Let functions reach internal addresses (development, tests, a
    /// platform whose functions call services beside it).
    pub allow_private: bool,
    /// The whole exchange: resolving, connecting, sending, reading.
    pub timeout: Duration,
    pub max_response_bytes: usize,
    pub max_request_bytes: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow_private: false,
            timeout: Duration::from_secs(30),
            max_response_bytes: 10 * 1024 * 1024,
            max_request_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Performs the requests functions make: one client (its connection pool
/// and TLS setup shared), redirects off, proxies off, names resolved by
/// [`VettingResolver`].
pub struct Outbound {
    /// Built on the first fetch: making a TLS client loads the system's
    /// root certificates, which would cost every start-up tens of
    /// milliseconds for functions that may never fetch.
    client: std::sync::OnceLock<reqwest::Client>,
    config: OutboundConfig,
}

impl Outbound {
    pub fn new(config: OutboundConfig) -> Result<Outbound, Error> {
        Ok(Outbound {
            client: std::sync::OnceLock::new(),
            config,
        })
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(VettingResolver {
                allow_private: self.config.allow_private,
            })
            .build()
            .map_err(|e| format!("fetch: the outbound HTTP client cannot start: {e}"))?;
        Ok(self.client.get_or_init(|| client))
    }

    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// Performs a request a function made. `allow_hosts`: exact hostnames
    /// or `*.example.com` (any subdomain, not the apex). `Err(message)`
    /// becomes the TypeError `fetch` rejects with.
    pub async fn fetch(
        &self,
        allow_hosts: &[String],
        request: FetchRequest,
    ) -> Result<FetchResponse, String> {
        let method = method_of(&request.method)?;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| format!("fetch: invalid URL {:?}: {e}", request.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "fetch: only http and https URLs may be fetched, not {}:",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("fetch: URLs with credentials (user:password@) are not allowed: send an Authorization header".into());
        }
        let (host, literal) = match url.host() {
            Some(url::Host::Domain(name)) => {
                (name.trim_end_matches('.').to_ascii_lowercase(), None)
            }
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            None => return Err(format!("fetch: the URL {url} has no host")),
        };
        if !host_allowed(allow_hosts, &host) {
            return Err(format!(
                "fetch to {host} refused: the host is not in this deployment's allow_hosts \
                 (add \"{host}\" to allow_hosts when deploying to let the function call it)"
            ));
        }
        if let Some(ip) = literal
            && !self.config.allow_private
            && is_internal(ip)
        {
            return Err(refused_address(&host, ip));
        }
        if request.body.len() > self.config.max_request_bytes {
            return Err(format!(
                "fetch to {host}: the request body is {} bytes; the limit is {}",
                request.body.len(),
                self.config.max_request_bytes
            ));
        }
        let headers = request_headers(&request.headers)?;
        let mut builder = self.client()?.request(method, url).headers(headers);
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.exchange(&host, builder)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "fetch to {host} timed out after {} ms",
                timeout.as_millis()
            )),
        }
    }

    /// Sends the request and reads the response, up to the limit.
    async fn exchange(
        &self,
        host: &str,
        builder: reqwest::RequestBuilder,
    ) -> Result<FetchResponse, String> {
        let mut response = builder.send().await.map_err(|e| failed(host, &e))?;
        let limit = self.config.max_response_bytes;
        let too_large = || format!("fetch to {host}: the response body exceeds {limit} bytes");
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let status = response.status().as_u16();
        let url = response.url().to_string();
        let headers = response_headers(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(host, &e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchResponse {
            status,
            headers,
            body,
            url,
        })
    }
}

/// The method, with fetch's normalization (the six common ones in any
/// case); fetch's forbidden methods refused.
fn method_of(raw: &str) -> Result<reqwest::Method, String> {
    let upper = raw.to_ascii_uppercase();
    if matches!(upper.as_str(), "CONNECT" | "TRACE" | "TRACK") {
        return Err(format!("fetch: the method {raw} is not allowed"));
    }
    let normal = match upper.as_str() {
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT" => upper.as_str(),
        _ => raw,
    };
    reqwest::Method::from_bytes(normal.as_bytes())
        .map_err(|_| format!("fetch: {raw:?} is not a valid HTTP method"))
}

/// Names a `Connection` header lists are hop-by-hop too.
fn connection_listed<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    values
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

fn request_headers(pairs: &[(String, String)]) -> Result<HeaderMap, String> {
    let listed = connection_listed(
        pairs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .map(|(_, v)| v.as_str()),
    );
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("fetch: {name:?} is not a valid header name"))?;
        // The client sets Content-Length from the body.
        if HOP_BY_HOP.contains(&name.as_str())
            || name == reqwest::header::CONTENT_LENGTH
            || listed.iter().any(|l| l == name.as_str())
        {
            continue;
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("fetch: the value of header {name} is not valid"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn response_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let listed = connection_listed(
        headers
            .get_all(reqwest::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    headers
        .iter()
        .filter(|(name, _)| {
            !HOP_BY_HOP.contains(&name.as_str()) && !listed.iter().any(|l| l == name.as_str())
        })
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// What a failed exchange tells the function: our resolver's refusal as
/// it said it, else what went wrong.
fn failed(host: &str, err: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(ours) = e.downcast_ref::<ResolveError>() {
            return ours.0.clone();
        }
        source = e.source();
    }
    let what = if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the response was cut off"
    } else {
        "the request failed"
    };
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        detail.push_str(&format!(": {e}"));
        source = e.source();
    }
    format!("fetch to {host} failed: {what} ({detail})")
}

fn refused_address(host: &str, ip: IpAddr) -> String {
    format!(
        "fetch to {host} refused: {ip} is a private, loopback, link-local or reserved address, \
         which functions may not reach"
    )
}

/// Whether `host` (lowercase, no trailing dot) is on the list: an entry
/// equal to it, or `*.suffix` with `host` a subdomain of `suffix` (never
/// `suffix` itself).
pub fn host_allowed(allow_hosts: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.');
    allow_hosts
        .iter()
        .any(|entry| match entry.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
            None => entry.eq_ignore_ascii_case(host),
        })
}

/// Checks a deployment's `allow_hosts`: at most [`MAX_ALLOW_HOSTS`]
/// lowercase DNS names, each exact or `*.` + a name of two labels or more
/// (`*.example.com`; not `*`, not `*.com`); no schemes, ports or paths.
pub fn validate_allow_hosts(hosts: &[String]) -> Result<(), Error> {
    if hosts.len() > MAX_ALLOW_HOSTS {
        return Err(Error::invalid(format!(
            "allow_hosts has {} entries; the limit is {MAX_ALLOW_HOSTS}",
            hosts.len()
        )));
    }
    for entry in hosts {
        let bad = |why: &str| {
            Err(Error::invalid(format!(
                "allow_hosts entry {entry:?} {why}: give a host name such as api.example.com, \
                 or *.example.com for its subdomains"
            )))
        };
        if entry.contains("://") {
            return bad("has a scheme");
        }
        if entry.contains('/') {
            return bad("has a path");
        }
        if entry.contains(':') {
            return bad("has a port (any port of an allowed host may be called)");
        }
        if entry.bytes().any(|b| b.is_ascii_uppercase()) {
            return bad("must be lowercase");
        }
        let (name, wildcard) = match entry.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (entry.as_str(), false),
        };
        if name.contains('*') || (!wildcard && entry.starts_with('*')) {
            return bad("has a * other than a leading *.");
        }
        if !is_dns_name(name) {
            return bad("is not a DNS name");
        }
        if wildcard && !name.contains('.') {
            return bad("would match every name under a top-level domain");
        }
    }
    Ok(())
}

/// Lowercase letters, digits and inner hyphens; labels of 1 to 63; 253 in
/// all; no trailing dot.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Whether a function must not reach `ip`: anything but a global unicast
/// address. IPv6 forms that carry an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are judged by that address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", unspecified
        || a == 10 // private
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224 // multicast, reserved, broadcast
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        is_internal_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    match s {
        // ::/96: unspecified, loopback and the deprecated IPv4-compatible
        // addresses; nothing routes them.
        [0, 0, 0, 0, 0, 0, _, _] => true,
        // NAT64 well-known prefix: judged by the IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        // Local-use NAT64.
        [0x64, 0xff9b, 1, ..] => true,
        // Discard-only.
        [0x100, 0, 0, 0, ..] => true,
        // 6to4: judged by the IPv4 address.
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        // 2001::/23 IETF assignments (Teredo, benchmarking, ORCHID);
        // 2001:db8::/32 documentation.
        [0x2001, second, ..] => second < 0x200 || second == 0xdb8,
        _ => {
            let first = s[0];
            (first & 0xfff0) == 0x3ff0 // documentation 3fff::/20
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first & 0xff00) == 0xff00 // multicast
        }
    }
}

/// Why a name was not resolved, or was refused: said to the function as
/// is.
#[derive(Debug)]
struct ResolveError(String);

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResolveError {}

/// Resolves names for the client and, unless private addresses are
/// allowed, refuses a name any of whose addresses is internal. The
/// connector connects to exactly the addresses returned here.
struct VettingResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| {
                    ResolveError(format!(
                        "fetch to {host} failed: the name does not resolve ({e})"
                    ))
                })?
                .collect();
            if !allow_private && let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
                return Err(Box::new(ResolveError(refused_address(&host, bad.ip())))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn allow_list_matching() {
        let list = hosts(&["api.example.com", "*.cdn.example.net", "127.0.0.1"]);
        let cases = [
            ("api.example.com", true),
            ("API.Example.COM", true),
            ("api.example.com.", true),
            ("example.com", false),
            ("x.api.example.com", false),
            ("a.cdn.example.net", true),
            ("a.b.cdn.example.net", true),
            ("A.CDN.example.net", true),
            ("cdn.example.net", false),
            ("evilcdn.example.net", false),
            ("cdn.example.net.evil.com", false),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
        ];
        for (host, allowed) in cases {
            assert_eq!(host_allowed(&list, host), allowed, "{host}");
        }
        assert!(!host_allowed(&[], "api.example.com"));
    }

    #[test]
    fn private_addresses_are_classified() {
        let table = [
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("10.1.2.3", true),
            ("100.64.0.1", true),
            ("100.127.255.255", true),
            ("100.128.0.1", false),
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("169.254.169.254", true),
            ("172.15.255.255", false),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.0.0.8", true),
            ("192.0.2.10", true),
            ("192.168.1.1", true),
            ("198.18.0.1", true),
            ("198.51.100.7", true),
            ("203.0.113.9", true),
            ("224.0.0.1", true),
            ("239.255.255.250", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("1.1.1.1", false),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("::", true),
            ("::1", true),
            ("::127.0.0.1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            ("64:ff9b::a00:1", true),
            ("64:ff9b::808:808", false),
            ("2002:7f00:1::", true),
            ("2002:808:808::", false),
            ("2001::1", true),
            ("2001:db8::1", true),
            ("3fff::1", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("2606:4700:4700::1111", false),
            ("2a00:1450:4001::200e", false),
        ];
        for (ip, internal) in table {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(is_internal(parsed), internal, "{ip}");
        }
    }

    #[test]
    fn allow_hosts_are_validated() {
        let ok = [
            "api.example.com",
            "*.example.com",
            "localhost",
            "127.0.0.1",
            "a-b.c9.io",
        ];
        for entry in ok {
            assert!(validate_allow_hosts(&hosts(&[entry])).is_ok(), "{entry}");
        }
        let bad = [
            "",
            "*",
            "*.",
            "*.com",
            "https://api.example.com",
            "api.example.com/v1",
            "api.example.com:443",
            "API.example.com",
            "a.*.example.com",
            "*example.com",
            "**.example.com",
            "-a.example.com",
            "a-.example.com",
            "a..example.com",
            "example.com.",
            "a_b.example.com",
            "user@example.com",
            "[::1]",
        ];
        for entry in bad {
            let err = validate_allow_hosts(&hosts(&[entry])).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{entry}");
        }
        let many: Vec<String> = (0..=MAX_ALLOW_HOSTS).map(|i| format!("h{i}.io")).collect();
        assert!(validate_allow_hosts(&many).is_err());
        assert!(validate_allow_hosts(&many[..MAX_ALLOW_HOSTS]).is_ok());
    }

    /// A server on 127.0.0.1 answering every connection with `response`
    /// (after reading the request head); each request head is sent on the
    /// channel.
    async fn serve(response: Vec<u8>) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let response = response.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                    if response.is_empty() {
                        // Never answer.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (addr, rx)
    }

    fn outbound(allow_private: bool) -> Outbound {
        Outbound::new(OutboundConfig {
            allow_private,
            timeout: Duration::from_secs(5),
            max_response_bytes: 1024,
            max_request_bytes: 64,
        })
        .unwrap()
    }

    fn get(url: String) -> FetchRequest {
        FetchRequest {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Answer: 42\r\n\
        Connection: close\r\nContent-Length: 5\r\n\r\nhello";

    #[tokio::test]
    async fn fetches_from_a_local_server_when_private_addresses_are_allowed() {
        let (addr, mut heads) = serve(OK.to_vec()).await;
        let request = FetchRequest {
            method: "post".into(),
            url: format!("http://127.0.0.1:{}/path?q=1", addr.port()),
            headers: vec![
                ("X-Custom".into(), "yes".into()),
                ("Host".into(), "evil.internal".into()),
                ("Connection".into(), "keep-alive, X-Secret-Hop".into()),
                ("X-Secret-Hop".into(), "drop me".into()),
                ("Transfer-Encoding".into(), "chunked".into()),
            ],
            body: b"ping".to_vec(),
        };
        let response = outbound(true)
            .fetch(&hosts(&["127.0.0.1"]), request)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello");
        assert_eq!(
            response.url,
            format!("http://127.0.0.1:{}/path?q=1", addr.port())
        );
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("content-type"), Some("text/plain"));
        assert_eq!(header("x-answer"), Some("42"));
        assert_eq!(header("connection"), None, "hop-by-hop headers are dropped");

        let head = heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post /path?q=1 http/1.1\r\n"), "{head}");
        assert!(head.contains("x-custom: yes\r\n"), "{head}");
        assert!(
            head.contains(&format!("host: 127.0.0.1:{}\r\n", addr.port())),
            "{head}"
        );
        assert!(!head.contains("evil.internal"), "{head}");
        assert!(!head.contains("x-secret-hop"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.contains("content-length: 4\r\n"), "{head}");
    }

    #[tokio::test]
    async fn private_addresses_are_refused_by_default() {
        let (addr, _heads) = serve(OK.to_vec()).await;
        let out = outbound(false);
        // An IP literal.
        let err = out
            .fetch(
                &hosts(&["127.0.0.1"]),
                get(format!("http://127.0.0.1:{}/", addr.port())),
            )
            .await
            .unwrap_err();
        assert!(err.contains("127.0.0.1 is a private"), "{err}");
        // A name that resolves to loopback: refused by the resolver.
        let err = out
            .fetch(
                &hosts(&["localhost"]),
                get(format!("http://localhost:{}/", addr.port())),
            )
            .await
            .unwrap_err();
        assert!(err.starts_with("fetch to localhost refused:"), "{err}");
        // Spellings of internal addresses.
        for url in [
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0x7f000001/",
        ] {
            let allow = hosts(&["127.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"]);
            let err = out.fetch(&allow, get(url.into())).await.unwrap_err();
            assert!(err.contains("is a private"), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn hosts_off_the_list_are_refused() {
        let err = outbound(true)
            .fetch(&[], get("https://api.example.com/x".into()))
            .await
            .unwrap_err();
        assert!(err.contains("api.example.com"), "{err}");
        assert!(err.contains("allow_hosts"), "{err}");
        let err = outbound(true)
            .fetch(
                &hosts(&["*.example.com"]),
                get("https://example.com/".into()),
            )
            .await
            .unwrap_err();
        assert!(err.contains("allow_hosts"), "{err}");
    }

    #[tokio::test]
    async fn bad_requests_are_refused() {
        let out = outbound(true);
        let allow = hosts(&["127.0.0.1"]);
        for (url, says) in [
            ("ftp://127.0.0.1/", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
            ("http://user:pw@127.0.0.1/", "credentials"),
            ("not a url", "invalid URL"),
        ] {
            let err = out.fetch(&allow, get(url.into())).await.unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
        let mut trace = get("http://127.0.0.1/".into());
        trace.method = "TRACE".into();
        assert!(out.fetch(&allow, trace).await.is_err());
        let mut big = get("http://127.0.0.1/".into());
        big.method = "POST".into();
        big.body = vec![b'x'; 65];
        let err = out.fetch(&allow, big).await.unwrap_err();
        assert!(err.contains("request body"), "{err}");
    }

    #[tokio::test]
    async fn oversized_responses_are_refused() {
        let allow = hosts(&["127.0.0.1"]);
        // Announced by Content-Length.
        let mut declared =
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2000\r\n\r\n".to_vec();
        declared.extend(vec![b'x'; 2000]);
        let (addr, _h) = serve(declared).await;
        let err = outbound(true)
            .fetch(&allow, get(format!("http://127.0.0.1:{}/", addr.port())))
            .await
            .unwrap_err();
        assert!(err.contains("exceeds 1024 bytes"), "{err}");
        // Streamed until the connection closes, with no length.
        let mut streamed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        streamed.extend(vec![b'x'; 5000]);
        let (addr, _h) = serve(streamed).await;
        let err = outbound(true)
            .fetch(&allow, get(format!("http://127.0.0.1:{}/", addr.port())))
            .await
            .unwrap_err();
        assert!(err.contains("exceeds 1024 bytes"), "{err}");
    }

    #[tokio::test]
    async fn slow_servers_time_out() {
        let (addr, _h) = serve(Vec::new()).await;
        let out = Outbound::new(OutboundConfig {
            allow_private: true,
            timeout: Duration::from_millis(300),
            ..OutboundConfig::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let err = out
            .fetch(
                &hosts(&["127.0.0.1"]),
                get(format!("http://127.0.0.1:{}/", addr.port())),
            )
            .await
            .unwrap_err();
        assert!(err.contains("timed out after 300 ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let (addr, mut heads) = serve(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n\
              Connection: close\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
        .await;
        let response = outbound(true)
            .fetch(
                &hosts(&["127.0.0.1"]),
                get(format!("http://127.0.0.1:{}/go", addr.port())),
            )
            .await
            .unwrap();
        assert_eq!(response.status, 302);
        assert!(
            response
                .headers
                .iter()
                .any(|(n, v)| n == "location" && v == "http://169.254.169.254/")
        );
        assert!(response.body.is_empty());
        assert!(heads.recv().await.is_some());
        assert!(heads.try_recv().is_err(), "one request only");
    }
}

//! The client's address, for abuse limits: the peer address, or — behind a
//! trusted proxy (Traefik) — the address it appended to X-Forwarded-For.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Inserted into every request's extensions by the kit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIp(pub Option<IpAddr>);

pub async fn client_ip(trust_proxy: bool, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let forwarded = trust_proxy
        .then(|| {
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back()
        })
        .flatten();
    req.extensions_mut().insert(ClientIp(forwarded.or(peer)));
    next.run(req).await
}

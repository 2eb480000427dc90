//! Bunder Manager's HTTP shell: each project's KV store under
//! `/kv/v1/projects/{project}/…`.
//!
//! - `GET    …/keys/{key}`          the value (raw bytes)
//! - `PUT    …/keys/{key}`          write the body; `?ttl=` seconds or `?ttl_ms=`;
//!   `If-None-Match: *` / `?if=absent` creates only, `If-Match: *` /
//!   `?if=present` updates only (412 when refused)
//! - `DELETE …/keys/{key}`          `{"deleted": bool}`
//! - `POST   …/keys/{key}/incr`     `{"by": n}` → `{"value": n}`
//! - `GET    …/keys/{key}/ttl`      `{"ttl_ms": n | null}`
//! - `GET    …/keys?prefix=&cursor=&limit=`  a page of key names
//! - `GET    …/usage`               keys and bytes stored, with the quota
//! - `GET    …/changes`             Server-Sent Events of every change
//!   (Buncast topic `kv`; `Last-Event-ID` / `?after=` resume)
//!
//! Keys are percent-encoded path segments (`a%2Fb` is the key `a/b`).

mod binary;
mod config;
mod module;
mod routes;

pub use binary::BunderManagerArgs;
pub use config::{EmbeddedKvArgs, KvArgs};
pub use module::{EmbeddedKv, KvBackend, KvModule};

use axum::Router;
use axum::routing::{get, post};
use bunbase_core::kv::Kv;

use crate::kit::ShellState;

/// What a Bunder Manager handler has: the KV service.
pub type KvState = ShellState<Kv>;

pub const PREFIX: &str = "/kv/v1/projects/{project}";

pub fn router(state: KvState) -> Router {
    Router::new()
        .route(&format!("{PREFIX}/keys"), get(routes::list))
        .route(
            &format!("{PREFIX}/keys/{{key}}"),
            get(routes::get).put(routes::put).delete(routes::delete),
        )
        .route(&format!("{PREFIX}/keys/{{key}}/incr"), post(routes::incr))
        .route(&format!("{PREFIX}/keys/{{key}}/ttl"), get(routes::ttl))
        .route(&format!("{PREFIX}/usage"), get(routes::usage))
        .route(&format!("{PREFIX}/changes"), get(routes::changes))
        .with_state(state)
}

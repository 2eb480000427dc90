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
use bunbase_core::kv::Kv;

use crate::kit::{Routes, ShellState};

/// What a Bunder Manager handler has: the KV service.
pub type KvState = ShellState<Kv>;

pub const PREFIX: &str = "/kv/v1/projects/{project}";

/// Bunder Manager's routes, listed (the isolation matrix reads them) and
/// handled.
pub fn api() -> Routes<KvState> {
    Routes::new()
        .get(&format!("{PREFIX}/keys"), routes::list)
        .get(&format!("{PREFIX}/keys/{{key}}"), routes::get)
        .put(&format!("{PREFIX}/keys/{{key}}"), routes::put)
        .delete(&format!("{PREFIX}/keys/{{key}}"), routes::delete)
        .post(&format!("{PREFIX}/keys/{{key}}/incr"), routes::incr)
        .get(&format!("{PREFIX}/keys/{{key}}/ttl"), routes::ttl)
        .get(&format!("{PREFIX}/usage"), routes::usage)
        .get(&format!("{PREFIX}/changes"), routes::changes)
}

pub fn router(state: KvState) -> Router {
    api().with_state(state)
}

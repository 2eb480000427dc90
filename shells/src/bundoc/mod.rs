//! Bundoc's HTTP shell: each project's document database under
//! `/bundoc/v1/projects/{project}/…`. Bodies are JSON; core refuses
//! unknown fields.
//!
//! - `POST   collections`                 create `{"name","indexes"?,"schema"?,"rules"?,"encrypted"?,"allow_scans"?}` → 201
//! - `GET    collections`                 `{"collections": […]}`
//! - `GET    collections/{c}`             its description
//! - `PUT    collections/{c}`             replace indexes, schema, rules, scan policy
//! - `DELETE collections/{c}`             with its documents → `{"deleted": true}`
//! - `POST   collections/{c}/documents`   create → 201, `Location`, `ETag`
//! - `GET    collections/{c}/documents?filter=<JSON>&sort=a,-b&fields=a,b&limit=&cursor=`
//!   a page `{"documents": […], "next_cursor": …|null}`
//! - `GET    collections/{c}/documents/{id}`  the document, `ETag: "<version>"`
//! - `PUT    collections/{c}/documents/{id}`  replace (200), or create with that id (201)
//! - `PATCH  collections/{c}/documents/{id}`  JSON Merge Patch (RFC 7396;
//!   `application/merge-patch+json` or `application/json`)
//! - `DELETE collections/{c}/documents/{id}`  `{"deleted": true}`
//! - `POST   collections/{c}/batch`       `{"writes": [{"op": "create"|"replace"|"patch"|"delete", …}]}`,
//!   all or nothing → `{"results": […]}`
//! - `POST   collections/{c}/query`       `{"filter","sort","limit","cursor","fields"}` → a page
//! - `POST   collections/{c}/explain`     the same body → how it ran (plan, index, examined)
//! - `POST   collections/{c}/count`       `{"filter"}` → `{"count": n}`
//! - `GET    collections/{c}/subscribe?filter=&sort=&fields=`  Server-Sent Events:
//!   `snapshot`, then `added` / `changed` / `removed`, each with `id:`
//!   (resume with `Last-Event-ID` or `?after=`), and a last `closed`
//! - `GET    collections/{c}/ws?…`        the same frames over WebSocket, as
//!   `{"event": name, "id": position|null, "data": …}`
//! - `GET    usage`                       documents and bytes stored
//!
//! Optimistic concurrency: `If-Match: "<version>"` (the `ETag`) or
//! `?if_version=<n>` on PUT, PATCH and DELETE. A document at another
//! version answers **409 `conflict`** — the same answer as any write that
//! lost a race, so clients handle one status (re-read, then retry).

mod config;
mod realtime;
mod routes;

pub use config::DocsArgs;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use bunbase_core::auth::TokenVerifier;
use bunbase_core::docs::Bundoc;

use crate::kit::{self, AuthState, Shutdown};

#[derive(Clone)]
pub struct DocsState {
    pub docs: Bundoc,
    pub verifier: Arc<dyn TokenVerifier>,
    /// Comment frames on idle subscriptions, so proxies keep them open.
    pub keepalive: Duration,
    /// Tracks upgraded WebSockets so shutdown waits for them.
    pub shutdown: Shutdown,
    /// Largest request body on these routes (batches carry several
    /// documents of up to 1 MiB).
    pub body_limit: usize,
}

impl AuthState for DocsState {
    fn verifier(&self) -> &Arc<dyn TokenVerifier> {
        &self.verifier
    }
}

pub const PREFIX: &str = "/bundoc/v1/projects/{project}";

pub fn router(state: DocsState) -> Router {
    let collection = format!("{PREFIX}/collections/{{collection}}");
    Router::new()
        .route(
            &format!("{PREFIX}/collections"),
            get(routes::list_collections).post(routes::create_collection),
        )
        .route(
            &collection,
            get(routes::get_collection)
                .put(routes::update_collection)
                .delete(routes::delete_collection),
        )
        .route(
            &format!("{collection}/documents"),
            get(routes::list).post(routes::create),
        )
        .route(
            &format!("{collection}/documents/{{id}}"),
            get(routes::get)
                .put(routes::replace)
                .patch(routes::patch)
                .delete(routes::delete),
        )
        .route(&format!("{collection}/batch"), post(routes::batch))
        .route(&format!("{collection}/query"), post(routes::query))
        .route(&format!("{collection}/explain"), post(routes::explain))
        .route(&format!("{collection}/count"), post(routes::count))
        .route(&format!("{collection}/subscribe"), get(realtime::subscribe))
        .route(&format!("{collection}/ws"), get(realtime::websocket))
        .route(&format!("{PREFIX}/usage"), get(routes::usage))
        // Inside the kit's limit, so this one wins for Bundoc's routes.
        .layer(DefaultBodyLimit::max(state.body_limit))
        .with_state(state)
}

/// Bundoc as a mountable service for the shell kit.
pub fn service(state: DocsState) -> kit::Service {
    let (docs, keys) = (state.docs.clone(), state.docs.clone());
    kit::Service {
        name: "bundoc".into(),
        router: router(state),
        health: vec![
            kit::health_check_fn("docs-store", move || {
                let docs = docs.clone();
                async move { docs.check().await }
            }),
            kit::health_check_fn("kms", move || {
                let keys = keys.clone();
                async move { keys.check_keys().await }
            }),
        ],
        on_shutdown: None,
    }
}

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

mod binary;
mod config;
mod realtime;
mod routes;

pub use binary::BundocArgs;
pub use config::DocsArgs;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use bunbase_core::Error;
use bunbase_core::config::StoreUrl;
use bunbase_core::docs::{Bundoc, DocStore, DocsLimits, DocsMetrics};
use bunbase_core::kms::{Keys, LocalKeys};

use crate::assembly::{About, Host, ServiceModule, Started};
use crate::kit::{self, Routes, ShellState};

/// What a Bundoc handler has: the document service.
pub type DocsState = ShellState<Bundoc>;

pub const PREFIX: &str = "/bundoc/v1/projects/{project}";

/// Bundoc's routes, listed (the isolation matrix reads them) and handled.
pub fn api() -> Routes<DocsState> {
    let collection = format!("{PREFIX}/collections/{{collection}}");
    let document = format!("{collection}/documents/{{id}}");
    Routes::new()
        .get(&format!("{PREFIX}/collections"), routes::list_collections)
        .post(&format!("{PREFIX}/collections"), routes::create_collection)
        .get(&collection, routes::get_collection)
        .put(&collection, routes::update_collection)
        .delete(&collection, routes::delete_collection)
        .get(&format!("{collection}/documents"), routes::list)
        .post(&format!("{collection}/documents"), routes::create)
        .get(&document, routes::get)
        .put(&document, routes::replace)
        .patch(&document, routes::patch)
        .delete(&document, routes::delete)
        .post(&format!("{collection}/batch"), routes::batch)
        .post(&format!("{collection}/query"), routes::query)
        .post(&format!("{collection}/explain"), routes::explain)
        .post(&format!("{collection}/count"), routes::count)
        .get(&format!("{collection}/subscribe"), realtime::subscribe)
        .get(&format!("{collection}/ws"), realtime::websocket)
        .get(&format!("{PREFIX}/usage"), routes::usage)
}

/// Bundoc's router; `body_limit` bounds its request bodies (batches carry
/// several documents of up to 1 MiB).
pub fn router(state: DocsState, body_limit: usize) -> Router {
    api()
        .with_state(state)
        // Inside the kit's limit, so this one wins for Bundoc's routes.
        .layer(DefaultBodyLimit::max(body_limit))
}

/// Where Bundoc keeps documents.
pub enum DocsSource {
    /// A store URL; `None` is bundoc.db in the data directory.
    Url(Option<StoreUrl>),
    /// A store an embedder or a test opened.
    Given(Arc<dyn DocStore>),
}

/// Bundoc in an assembly: its store, its change feed on the host's bus,
/// field encryption by a remote BunKMS or the process's own, its routes
/// under `/bundoc`.
pub struct DocsModule {
    pub store: DocsSource,
    pub limits: DocsLimits,
    /// Largest request body on Bundoc's routes.
    pub body_limit: usize,
    /// A remote BunKMS; without one, the host's in-process KMS if any.
    pub keys: Option<Arc<dyn Keys>>,
}

impl DocsModule {
    pub fn on(store: Arc<dyn DocStore>, limits: DocsLimits) -> DocsModule {
        DocsModule {
            store: DocsSource::Given(store),
            limits,
            body_limit: 8 * 1024 * 1024,
            keys: None,
        }
    }
}

static ABOUT: About = About::new("bundoc", &["docs"], "/bundoc");

#[async_trait]
impl ServiceModule for DocsModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let (store, kind): (Arc<dyn DocStore>, &str) = match &self.store {
            DocsSource::Given(store) => (store.clone(), "given store"),
            DocsSource::Url(url) => {
                let url = match url {
                    Some(url) => url.clone(),
                    None => StoreUrl::in_dir(&host.data_dir, "bundoc.db")?,
                };
                let store = bunbase_core::docs::adapters::open(&url)
                    .await
                    .map_err(|e| e.context("opening the document store"))?;
                (store, url.kind())
            }
        };
        let mut warnings = Vec::new();
        let (keys, encryption) = match (&self.keys, host.kms()) {
            (Some(remote), _) => (Some(remote.clone()), "remote BunKMS"),
            (None, Some(kms)) => (
                Some(Arc::new(LocalKeys::new(kms.clone(), "bundoc")) as Arc<dyn Keys>),
                "in-process BunKMS",
            ),
            (None, None) => {
                warnings.push(
                    "no BUNDOC_KMS_URL: collections with encrypted fields will be refused".into(),
                );
                (None, "none")
            }
        };
        let docs = Bundoc::new(
            store,
            host.events().await?,
            keys,
            self.limits,
            Arc::new(DocsMetrics::new(&host.registry)?),
        );
        host.purge_on_project_deletion(Arc::new(docs.clone()));
        host.provide(docs.clone());
        let router = router(host.shell(docs.clone())?, self.body_limit);
        let service = kit::Service::new("bundoc", router)
            .check("docs-store", docs.clone(), |docs| async move {
                docs.check().await
            })
            .check("kms", docs, |docs| async move { docs.check_keys().await });
        Ok(Started {
            service,
            summary: format!(
                "Bundoc: documents, queries, realtime ({kind}, field encryption by {encryption})"
            ),
            warnings,
        })
    }

    fn about(&self) -> &'static About {
        &ABOUT
    }
}

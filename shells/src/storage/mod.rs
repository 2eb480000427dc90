//! Storage's shells: the HTTP API under `/storage/v1/projects/{project}/…`,
//! the S3 API under `/storage/s3` ([`s3`]), and the Platform API's S3
//! credentials under `/api/v1/projects/{project}/storage/credentials`.
//!
//! - `GET|POST buckets`, `GET|PATCH|DELETE buckets/{bucket}` (`?force=true`)
//! - `POST buckets/{bucket}/sign` → a signed URL
//! - `GET buckets/{bucket}/objects?prefix=&delimiter=&cursor=&limit=`
//! - `PUT|GET|HEAD|DELETE buckets/{bucket}/objects/{key…}`
//! - `POST buckets/{bucket}/copy|move` `{"from","to","to_bucket"?}`
//! - `GET|POST buckets/{bucket}/uploads`, `GET uploads/{id}/parts`,
//!   `PUT uploads/{id}/parts/{n}`, `POST uploads/{id}/complete`,
//!   `DELETE uploads/{id}`
//! - `GET usage`

mod binary;
mod buckets;
mod config;
mod http_date;
mod objects;
pub mod s3;
mod uploads;

pub use binary::StorageBinaryArgs;
pub use config::StorageArgs;

use async_trait::async_trait;
use axum::Router;
use bunbase_core::Error;
use bunbase_core::storage::Storage;

use crate::assembly::{About, Host, ServiceModule, Started};
use crate::kit::{self, Routes, ShellState};

pub type StorageState = ShellState<Storage>;

pub const PREFIX: &str = "/storage/v1/projects/{project}";
const CREDENTIALS: &str = "/api/v1/projects/{project}/storage/credentials";

/// The HTTP API's routes, listed (the isolation matrix reads them).
pub fn api() -> Routes<StorageState> {
    let b = format!("{PREFIX}/buckets/{{bucket}}");
    Routes::new()
        .get(&format!("{PREFIX}/buckets"), buckets::list)
        .post(&format!("{PREFIX}/buckets"), buckets::create)
        .get(&b, buckets::get)
        .patch(&b, buckets::update)
        .delete(&b, buckets::delete)
        .post(&format!("{b}/sign"), buckets::sign)
        .get(&format!("{PREFIX}/usage"), buckets::usage)
        .get(&format!("{b}/objects"), objects::list)
        .post(&format!("{b}/copy"), objects::copy)
        .post(&format!("{b}/move"), objects::rename)
        .get(&format!("{b}/objects/{{*key}}"), objects::get)
        .put(&format!("{b}/objects/{{*key}}"), objects::put)
        .delete(&format!("{b}/objects/{{*key}}"), objects::delete)
        .get(&format!("{b}/uploads"), uploads::list)
        .post(&format!("{b}/uploads"), uploads::create)
        .get(&format!("{b}/uploads/{{upload}}/parts"), uploads::parts)
        .put(
            &format!("{b}/uploads/{{upload}}/parts/{{number}}"),
            uploads::put_part,
        )
        .post(
            &format!("{b}/uploads/{{upload}}/complete"),
            uploads::complete,
        )
        .delete(&format!("{b}/uploads/{{upload}}"), uploads::abort)
        .get(CREDENTIALS, buckets::credentials)
        .post(CREDENTIALS, buckets::create_credential)
        .delete(
            &format!("{CREDENTIALS}/{{access_key}}"),
            buckets::revoke_credential,
        )
}

/// Routes that take large bodies: no request timeout applies to them.
pub fn router(state: StorageState) -> Router {
    let storage = state.service.clone();
    api().with_state(state).merge(s3::router(storage))
}

/// Storage in an assembly: its stores, the expiry of abandoned uploads,
/// its routes under `/storage` (and the S3 credentials under `/api`).
pub enum StorageModule {
    Configured(StorageArgs),
    /// A service an embedder or a test built.
    Given(Storage),
}

static ABOUT: About = About::new("storage", &[], "/storage");

#[async_trait]
impl ServiceModule for StorageModule {
    async fn start(&self, host: &mut Host) -> Result<Started, Error> {
        let (storage, warnings) = match self {
            StorageModule::Given(storage) => (storage.clone(), Vec::new()),
            StorageModule::Configured(args) => {
                let data_dir = host.data_dir.clone();
                let registry = host.registry.clone();
                let built = args.build(&data_dir, host.embedded, &registry).await?;
                (built.storage, built.warnings)
            }
        };
        let expiry = config::spawn_upload_expiry(storage.clone(), host.shutdown.token.clone());
        host.finish_with(async move {
            let _ = expiry.await;
        });
        host.purge_on_project_deletion(std::sync::Arc::new(storage.clone()));
        host.provide(storage.clone());
        let service = kit::Service::new("storage", Router::new())
            .untimed(router(host.shell(storage.clone())?))
            .check("storage-stores", storage.clone(), |s| async move {
                s.check().await
            });
        Ok(Started {
            service,
            summary: format!(
                "Storage: buckets, objects, signed URLs, S3 API ({})",
                storage.describe()
            ),
            warnings,
        })
    }

    fn about(&self) -> &'static About {
        &ABOUT
    }
}

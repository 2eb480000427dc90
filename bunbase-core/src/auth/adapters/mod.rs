//! Identity stores: `memory`, and SQL (`sqlite` for the all-in-one,
//! `postgres` beyond one machine). Each implements both
//! [`super::AuthStore`] and [`crate::platform::ProjectStore`].

pub mod memory;
#[cfg(feature = "sql")]
pub mod sql;

/// Opens the store `url` names (SQL schemas are migrated).
#[cfg(feature = "sql")]
pub async fn open(
    url: &crate::config::StoreUrl,
) -> Result<std::sync::Arc<dyn crate::auth::IdentityStore>, crate::Error> {
    use crate::config::StoreUrl;
    Ok(match url {
        StoreUrl::Memory => std::sync::Arc::new(memory::MemoryStore::new()),
        StoreUrl::Sqlite(path) => std::sync::Arc::new(sql::sqlite::SqliteStore::open(path).await?),
        StoreUrl::Postgres(url) => {
            std::sync::Arc::new(sql::postgres::PostgresStore::connect(url.expose()).await?)
        }
    })
}

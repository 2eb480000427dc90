//! `DocStore` adapters: memory, and SQL (SQLite for the all-in-one,
//! Postgres for compose).

pub mod memory;
#[cfg(feature = "sql")]
pub mod sql;

pub use memory::MemoryDocStore;

/// Opens the store `url` names (SQL schemas are migrated).
#[cfg(feature = "sql")]
pub async fn open(
    url: &crate::config::StoreUrl,
) -> Result<std::sync::Arc<dyn crate::docs::DocStore>, crate::Error> {
    use crate::config::StoreUrl;
    Ok(match url {
        StoreUrl::Memory => std::sync::Arc::new(memory::MemoryDocStore::new()),
        StoreUrl::Sqlite(path) => std::sync::Arc::new(sql::sqlite::SqliteDocs::open(path).await?),
        StoreUrl::Postgres(url) => {
            std::sync::Arc::new(sql::postgres::PostgresDocs::connect(url.expose()).await?)
        }
    })
}

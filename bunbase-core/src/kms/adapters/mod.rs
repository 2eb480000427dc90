//! KmsStore adapters: `memory` (tests, embedders), and SQL (SQLite for
//! the all-in-one, Postgres for compose).

pub mod memory;
#[cfg(feature = "sql")]
pub mod sql;

/// Opens the store `url` names (SQL schemas are migrated).
#[cfg(feature = "sql")]
pub async fn open(
    url: &crate::config::StoreUrl,
) -> Result<std::sync::Arc<dyn crate::kms::KmsStore>, crate::Error> {
    use crate::config::StoreUrl;
    Ok(match url {
        StoreUrl::Memory => std::sync::Arc::new(memory::MemoryKms::new()),
        StoreUrl::Sqlite(path) => std::sync::Arc::new(sql::sqlite::SqliteKms::open(path).await?),
        StoreUrl::Postgres(url) => {
            std::sync::Arc::new(sql::postgres::PostgresKms::connect(url.expose()).await?)
        }
    })
}

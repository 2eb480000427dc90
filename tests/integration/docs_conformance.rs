//! The document store conformance suite on every adapter, the SQL ones on
//! real databases (a SQLite file; a Postgres server).

use std::sync::Arc;

use bunbase_core::docs::adapters::memory::MemoryDocStore;
use bunbase_core::docs::adapters::sql::postgres::PostgresDocs;
use bunbase_core::docs::adapters::sql::sqlite::SqliteDocs;
use bunbase_core::docs::testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    testing::run(Arc::new(MemoryDocStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.db");
    // Opened twice: the second start finds the migrations applied.
    SqliteDocs::open(&path).await.unwrap();
    testing::run(Arc::new(SqliteDocs::open(&path).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let url = bunbase_tests::servers::postgres_database();
    PostgresDocs::connect(&url).await.unwrap();
    testing::run(Arc::new(PostgresDocs::connect(&url).await.unwrap())).await;
}

/// Random documents and queries: every page on the SQL stores equals the
/// reference evaluator's (the memory store runs it in core's unit tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_stores_agree_with_the_reference_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteDocs::open(&dir.path().join("prop.db")).await.unwrap();
    bunbase_core::docs::property::run(Arc::new(sqlite), 7, 250, 80).await;
    let url = bunbase_tests::servers::postgres_database();
    let postgres = PostgresDocs::connect(&url).await.unwrap();
    bunbase_core::docs::property::run(Arc::new(postgres), 8, 250, 80).await;
}

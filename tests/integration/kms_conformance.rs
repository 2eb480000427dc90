//! The KMS store conformance suite on every adapter, the SQL ones on real
//! databases (a SQLite file; a Postgres server).

use std::sync::Arc;

use bunbase_core::kms::adapters::memory::MemoryKms;
use bunbase_core::kms::adapters::sql::postgres::PostgresKms;
use bunbase_core::kms::adapters::sql::sqlite::SqliteKms;
use bunbase_core::kms::testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    testing::run(Arc::new(MemoryKms::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.db");
    // Opened twice: the second start finds the migrations applied.
    SqliteKms::open(&path).await.unwrap();
    testing::run(Arc::new(SqliteKms::open(&path).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let url = bunbase_tests::servers::postgres_database();
    PostgresKms::connect(&url).await.unwrap();
    testing::run(Arc::new(PostgresKms::connect(&url).await.unwrap())).await;
}

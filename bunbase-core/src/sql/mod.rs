//! Shared SQL plumbing: connecting (SQLite, Postgres), migrations as code,
//! and error mapping. Domain adapters write one SQL text that both dialects
//! accept (`$1` placeholders, BIGINT, TEXT) and instantiate their store for
//! each pool type with a macro. The few column types the dialects spell
//! differently are written as placeholders in migrations ([`Migration`]).

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::Error;

/// One migration: a version and the statements that bring a domain to it.
///
/// `sql` may use these column types, replaced per dialect:
/// - `{bytes}`: binary compared bytewise (`BYTEA`; SQLite `BLOB`);
/// - `{bytewise_text}`: text ordered by bytes whatever the database's
///   locale (`TEXT COLLATE "C"`; SQLite's `TEXT` already is).
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// Opens (creating if missing) a SQLite database file in WAL mode with
/// foreign keys enforced.
pub async fn connect_sqlite(path: &std::path::Path) -> Result<SqlitePool, Error> {
    connect_sqlite_with(path, 8).await
}

/// A domain's SQLite database, migrated: a pool of readers and one writer
/// connection (SQLite has one writer at a time; queueing in the pool beats
/// spinning on the file lock). Answers `(readers, writer)`.
pub async fn open_sqlite(
    path: &std::path::Path,
    domain: &str,
    migrations: &[Migration],
) -> Result<(SqlitePool, SqlitePool), Error> {
    let writer = connect_sqlite_with(path, 1).await?;
    migrate_sqlite(&writer, domain, migrations).await?;
    let readers = connect_sqlite_with(path, 8).await?;
    Ok((readers, writer))
}

/// Like [`connect_sqlite`], with `max_connections` connections.
pub async fn connect_sqlite_with(
    path: &std::path::Path,
    max_connections: u32,
) -> Result<SqlitePool, Error> {
    create_private(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot open SQLite database {}: {e}",
                path.display()
            ))
        })
}

/// Creates the database file readable by its owner only (SQLite gives its
/// -wal and -shm files the same mode), unless it exists already.
fn create_private(path: &std::path::Path) -> Result<(), Error> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another connection created it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Unavailable(format!(
            "cannot create SQLite database {}: {e}",
            path.display()
        ))),
    }
}

/// An in-memory SQLite database (tests): one shared connection.
pub async fn connect_sqlite_memory() -> Result<SqlitePool, Error> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .map_err(db)?
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(db)
}

/// Connects to Postgres (`postgres://user[:password]@host:port/db`).
pub async fn connect_postgres(url: &str, max_connections: u32) -> Result<PgPool, Error> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| Error::invalid(format!("invalid Postgres URL: {e}")))?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot connect to Postgres: {e}")))
}

const POSTGRES_TYPES: &[(&str, &str)] = &[
    ("{bytes}", "BYTEA"),
    ("{bytewise_text}", "TEXT COLLATE \"C\""),
];
const SQLITE_TYPES: &[(&str, &str)] = &[("{bytes}", "BLOB"), ("{bytewise_text}", "TEXT")];

/// A migration's SQL with the dialect's column types in place of the
/// placeholders (untouched, and not copied, when it has none).
fn dialect_sql(sql: &'static str, types: &[(&str, &str)]) -> Cow<'static, str> {
    let mut out = Cow::Borrowed(sql);
    for (placeholder, ty) in types {
        if out.contains(placeholder) {
            out = Cow::Owned(out.replace(placeholder, ty));
        }
    }
    out
}

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS bunbase_migrations (
    domain TEXT NOT NULL,
    version BIGINT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (domain, version)
)";

macro_rules! migrate_fn {
    ($name:ident, $pool:ty, $types:expr, $lock:expr) => {
        /// Applies the domain's pending migrations, each in a transaction.
        pub async fn $name(pool: &$pool, domain: &str, migrations: &[Migration]) -> Result<(), Error> {
            sqlx::raw_sql(MIGRATIONS_TABLE).execute(pool).await.map_err(db)?;
            for migration in migrations {
                let mut tx = pool.begin().await.map_err(db)?;
                let lock: Option<&str> = $lock;
                if let Some(lock) = lock {
                    // Several instances may start at once: one migrates.
                    sqlx::raw_sql(lock).execute(&mut *tx).await.map_err(db)?;
                }
                let applied: Option<i64> = sqlx::query_scalar(
                    "SELECT version FROM bunbase_migrations WHERE domain = $1 AND version = $2",
                )
                .bind(domain)
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if applied.is_some() {
                    continue;
                }
                // Only our own constant SQL, with constant type names put in.
                let sql = sqlx::AssertSqlSafe(dialect_sql(migration.sql, $types));
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| {
                    Error::internal(format!("migration {domain} v{} failed: {e}", migration.version))
                })?;
                sqlx::query("INSERT INTO bunbase_migrations (domain, version, applied_at) VALUES ($1, $2, $3)")
                    .bind(domain)
                    .bind(migration.version)
                    .bind(crate::id::now_millis() as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
            }
            Ok(())
        }
    };
}

migrate_fn!(migrate_sqlite, SqlitePool, SQLITE_TYPES, None);
migrate_fn!(
    migrate_postgres,
    PgPool,
    POSTGRES_TYPES,
    Some("SELECT pg_advisory_xact_lock(4242424242)")
);

/// Maps a database error: unique violations become `already_exists`,
/// foreign-key violations `not_found`, lost connections `unavailable`.
pub fn db(e: sqlx::Error) -> Error {
    if let Some(d) = e.as_database_error() {
        if d.is_unique_violation() {
            return Error::AlreadyExists("already exists".into());
        }
        if d.is_foreign_key_violation() {
            return Error::NotFound("referenced record not found".into());
        }
    }
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            Error::Unavailable(format!("database unavailable: {e}"))
        }
        other => Error::internal(format!("database error: {other}")),
    }
}

/// u64 ↔ BIGINT (timestamps in milliseconds fit easily).
pub fn to_db(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

pub fn from_db(v: i64) -> u64 {
    v.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_types_replace_placeholders_only() {
        let sql = "CREATE TABLE t (k {bytes}, n {bytewise_text}, v TEXT)";
        assert_eq!(
            dialect_sql(sql, POSTGRES_TYPES),
            "CREATE TABLE t (k BYTEA, n TEXT COLLATE \"C\", v TEXT)"
        );
        assert_eq!(
            dialect_sql(sql, SQLITE_TYPES),
            "CREATE TABLE t (k BLOB, n TEXT, v TEXT)"
        );
        // Migrations without placeholders run as written, uncopied.
        assert!(matches!(
            dialect_sql("CREATE TABLE u (v TEXT)", POSTGRES_TYPES),
            Cow::Borrowed(_)
        ));
    }
}

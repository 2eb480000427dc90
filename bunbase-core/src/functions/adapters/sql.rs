//! Functions in SQLite (the all-in-one) or Postgres (compose): one SQL text
//! for both dialects (`$n` placeholders, TEXT, BIGINT; a version's env,
//! secrets, triggers, limits and allowed hosts and an invocation's logs as
//! JSON TEXT), one macro for both pool types.
//!
//! Deploying upserts the function's row, which takes its row lock, and
//! reads the new number from it: concurrent deploys of one function run one
//! after another and get consecutive numbers. Deleting a function (or
//! forgetting a project) first touches its row(s), so a deploy racing it
//! either lands before and is returned, or after and starts again at 1.
//! Versions and cursors reference their function (`ON DELETE CASCADE`), so
//! neither outlives it. Names and invocation ids are `{bytewise_text}`, so
//! `ORDER BY` is byte order on both databases, as in the memory store.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Error;
use crate::functions::adapters::memory::{
    MAX_LOG_PAGE, MemoryFunctions, function_not_found, version_not_found,
};
use crate::functions::model::{
    AuthMode, FunctionInfo, FunctionName, Invocation, LogQuery, Outcome, TriggerKind, Version,
};
use crate::functions::store::FunctionStore;
use crate::id::ProjectId;
use crate::sql::{Migration, db, from_db, to_db};

pub use postgres::PostgresFunctions;
pub use sqlite::SqliteFunctions;

pub const DOMAIN: &str = "functions";

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
CREATE TABLE fn_functions (
    project TEXT NOT NULL,
    name {bytewise_text} NOT NULL,
    active BIGINT NOT NULL,
    latest BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE fn_versions (
    project TEXT NOT NULL,
    function {bytewise_text} NOT NULL,
    number BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    deployed_by TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    bundle_bytes BIGINT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    entry TEXT NOT NULL,
    env TEXT NOT NULL,
    secrets TEXT NOT NULL,
    triggers TEXT NOT NULL,
    auth TEXT NOT NULL,
    limits TEXT NOT NULL,
    allow_hosts TEXT NOT NULL,
    PRIMARY KEY (project, function, number),
    FOREIGN KEY (project, function) REFERENCES fn_functions (project, name) ON DELETE CASCADE
);
CREATE TABLE fn_invocations (
    project TEXT NOT NULL,
    id {bytewise_text} NOT NULL,
    function {bytewise_text} NOT NULL,
    version BIGINT NOT NULL,
    trigger_kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status BIGINT,
    started_at BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    cold BIGINT NOT NULL,
    error TEXT,
    logs TEXT NOT NULL,
    logs_truncated BIGINT NOT NULL,
    PRIMARY KEY (project, id)
);
CREATE INDEX fn_invocations_function ON fn_invocations (project, function, id);
CREATE INDEX fn_invocations_started ON fn_invocations (started_at);
CREATE TABLE fn_cursors (
    project TEXT NOT NULL,
    function {bytewise_text} NOT NULL,
    key TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (project, function, key),
    FOREIGN KEY (project, function) REFERENCES fn_functions (project, name) ON DELETE CASCADE
);
CREATE TABLE fn_leases (
    name {bytewise_text} PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
",
}];

/// Creates the function on its first deploy, else counts one more version
/// (the upsert takes the row lock until the transaction ends): the new
/// number.
const NEXT_VERSION: &str =
    "INSERT INTO fn_functions (project, name, active, latest, created_at, updated_at)
    VALUES ($1, $2, 1, 1, $3, $3)
    ON CONFLICT (project, name) DO UPDATE SET latest = fn_functions.latest + 1,
        active = fn_functions.latest + 1, updated_at = excluded.updated_at
    RETURNING latest";

const INSERT_VERSION: &str = "INSERT INTO fn_versions (project, function, number, created_at,
        deployed_by, bundle_id, bundle_bytes, bundle_sha256, entry, env, secrets, triggers, auth,
        limits, allow_hosts)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// Points the function at an existing version, in one statement.
const ACTIVATE: &str = "UPDATE fn_functions SET active = $3, updated_at = $4
    WHERE project = $1 AND name = $2 AND EXISTS (
        SELECT 1 FROM fn_versions WHERE project = $1 AND function = $2 AND number = $3)
    RETURNING *";

/// Takes the lease if free, expired or the holder's own, in one statement:
/// a row comes back only if `$2` holds it now.
const LEASE: &str = "INSERT INTO fn_leases (name, holder, until_ms) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
    WHERE fn_leases.holder = excluded.holder OR fn_leases.until_ms <= $4
    RETURNING holder";

/// A log page's four statements: all of the project's invocations or one
/// function's (`$3`), from the newest or from below a cursor (the last
/// placeholder).
macro_rules! log_statement {
    ($filter:literal) => {
        concat!(
            "SELECT * FROM fn_invocations WHERE project = $1",
            $filter,
            " ORDER BY id DESC LIMIT $2"
        )
    };
}
const LOG_ALL: &str = log_statement!("");
const LOG_FUNCTION: &str = log_statement!(" AND function = $3");
const LOG_BEFORE: &str = log_statement!(" AND id < $3");
const LOG_FUNCTION_BEFORE: &str = log_statement!(" AND function = $3 AND id < $4");

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(Error::internal)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("stored {what} is not valid JSON: {e}")))
}

fn number_from(v: i64, what: &str) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| Error::internal(format!("stored {what} {v} out of range")))
}

fn auth_from(raw: &str) -> Result<AuthMode, Error> {
    [AuthMode::Public, AuthMode::Project, AuthMode::EndUsers]
        .into_iter()
        .find(|a| a.as_str() == raw)
        .ok_or_else(|| Error::internal(format!("stored auth mode {raw:?} unknown")))
}

fn outcome_from(raw: &str) -> Result<Outcome, Error> {
    [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::CpuLimit,
        Outcome::MemoryLimit,
        Outcome::ResponseTooLarge,
        Outcome::Throttled,
    ]
    .into_iter()
    .find(|o| o.as_str() == raw)
    .ok_or_else(|| Error::internal(format!("stored outcome {raw:?} unknown")))
}

/// Versions as a caller wants them back: by function, newest first.
fn sorted(mut versions: Vec<Version>) -> Vec<Version> {
    versions.sort_by(|a, b| {
        (&a.project, &a.function, b.number).cmp(&(&b.project, &b.function, a.number))
    });
    versions
}

/// Inserts one invocation record through `$executor`.
macro_rules! insert_invocation {
    ($executor:expr, $invocation:expr) => {{
        let invocation: &Invocation = $invocation;
        sqlx::query(
            "INSERT INTO fn_invocations (project, id, function, version, trigger_kind,
                outcome, status, started_at, duration_us, cold, error, logs, logs_truncated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(invocation.project.as_str())
        .bind(&invocation.id)
        .bind(invocation.function.as_str())
        .bind(i64::from(invocation.version))
        .bind(invocation.trigger.as_str())
        .bind(invocation.outcome.as_str())
        .bind(invocation.status.map(i64::from))
        .bind(to_db(invocation.started_at))
        .bind(to_db(invocation.duration_us))
        .bind(i64::from(invocation.cold))
        .bind(&invocation.error)
        .bind(to_json(&invocation.logs)?)
        .bind(i64::from(invocation.logs_truncated))
        .execute($executor)
        .await
        .map_err(|e| match db(e) {
            Error::AlreadyExists(_) => {
                Error::AlreadyExists(format!("invocation {} is recorded already", invocation.id))
            }
            other => other,
        })
        .map(|_| ())
    }};
}

macro_rules! function_store {
    ($store:ident, $row:ty, $db:ty, $kind:literal) => {
        fn info_from(r: &$row) -> Result<FunctionInfo, Error> {
            let project: String = r.try_get("project").map_err(db)?;
            let name: String = r.try_get("name").map_err(db)?;
            Ok(FunctionInfo {
                project: ProjectId::new(project)?,
                name: FunctionName::new(&name)?,
                active: number_from(r.try_get("active").map_err(db)?, "active version")?,
                latest: number_from(r.try_get("latest").map_err(db)?, "latest version")?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                updated_at: from_db(r.try_get("updated_at").map_err(db)?),
            })
        }

        fn version_from(r: &$row) -> Result<Version, Error> {
            let project: String = r.try_get("project").map_err(db)?;
            let function: String = r.try_get("function").map_err(db)?;
            let env: String = r.try_get("env").map_err(db)?;
            let secrets: String = r.try_get("secrets").map_err(db)?;
            let triggers: String = r.try_get("triggers").map_err(db)?;
            let auth: String = r.try_get("auth").map_err(db)?;
            let limits: String = r.try_get("limits").map_err(db)?;
            let allow_hosts: String = r.try_get("allow_hosts").map_err(db)?;
            Ok(Version {
                project: ProjectId::new(project)?,
                function: FunctionName::new(&function)?,
                number: number_from(r.try_get("number").map_err(db)?, "version number")?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                deployed_by: r.try_get("deployed_by").map_err(db)?,
                bundle_id: r.try_get("bundle_id").map_err(db)?,
                bundle_bytes: from_db(r.try_get("bundle_bytes").map_err(db)?),
                bundle_sha256: r.try_get("bundle_sha256").map_err(db)?,
                entry: r.try_get("entry").map_err(db)?,
                env: from_json(&env, "version env")?,
                secrets: from_json(&secrets, "version secrets")?,
                triggers: from_json(&triggers, "version triggers")?,
                auth: auth_from(&auth)?,
                limits: from_json(&limits, "version limits")?,
                allow_hosts: from_json(&allow_hosts, "version allowed hosts")?,
            })
        }

        fn invocation_from(r: &$row) -> Result<Invocation, Error> {
            let project: String = r.try_get("project").map_err(db)?;
            let function: String = r.try_get("function").map_err(db)?;
            let trigger: String = r.try_get("trigger_kind").map_err(db)?;
            let outcome: String = r.try_get("outcome").map_err(db)?;
            let status: Option<i64> = r.try_get("status").map_err(db)?;
            let logs: String = r.try_get("logs").map_err(db)?;
            Ok(Invocation {
                id: r.try_get("id").map_err(db)?,
                project: ProjectId::new(project)?,
                function: FunctionName::new(&function)?,
                version: number_from(r.try_get("version").map_err(db)?, "invocation version")?,
                trigger: TriggerKind::parse(&trigger).map_err(Error::internal)?,
                outcome: outcome_from(&outcome)?,
                status: status
                    .map(|s| {
                        u16::try_from(s).map_err(|_| {
                            Error::internal(format!("stored status {s} out of range"))
                        })
                    })
                    .transpose()?,
                started_at: from_db(r.try_get("started_at").map_err(db)?),
                duration_us: from_db(r.try_get("duration_us").map_err(db)?),
                cold: r.try_get::<i64, _>("cold").map_err(db)? != 0,
                error: r.try_get("error").map_err(db)?,
                logs: from_json(&logs, "invocation logs")?,
                logs_truncated: r.try_get::<i64, _>("logs_truncated").map_err(db)? != 0,
            })
        }

        #[async_trait]
        impl FunctionStore for $store {
            fn kind(&self) -> &'static str {
                $kind
            }

            async fn check(&self) -> Result<(), Error> {
                sqlx::query("SELECT 1").execute(self.reader()).await.map_err(db)?;
                Ok(())
            }

            async fn add_version(&self, mut version: Version) -> Result<Version, Error> {
                let mut tx = self.begin().await?;
                let number: i64 = sqlx::query_scalar(NEXT_VERSION)
                    .bind(version.project.as_str())
                    .bind(version.function.as_str())
                    .bind(to_db(version.created_at))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                version.number = number_from(number, "latest version")?;
                sqlx::query(INSERT_VERSION)
                    .bind(version.project.as_str())
                    .bind(version.function.as_str())
                    .bind(number)
                    .bind(to_db(version.created_at))
                    .bind(&version.deployed_by)
                    .bind(&version.bundle_id)
                    .bind(to_db(version.bundle_bytes))
                    .bind(&version.bundle_sha256)
                    .bind(&version.entry)
                    .bind(to_json(&version.env)?)
                    .bind(to_json(&version.secrets)?)
                    .bind(to_json(&version.triggers)?)
                    .bind(version.auth.as_str())
                    .bind(to_json(&version.limits)?)
                    .bind(to_json(&version.allow_hosts)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(version)
            }

            async fn function(
                &self,
                project: &ProjectId,
                name: &FunctionName,
            ) -> Result<Option<FunctionInfo>, Error> {
                let row = sqlx::query("SELECT * FROM fn_functions WHERE project = $1 AND name = $2")
                    .bind(project.as_str())
                    .bind(name.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db)?;
                row.as_ref().map(info_from).transpose()
            }

            async fn functions(&self, project: &ProjectId) -> Result<Vec<FunctionInfo>, Error> {
                let rows = sqlx::query("SELECT * FROM fn_functions WHERE project = $1 ORDER BY name")
                    .bind(project.as_str())
                    .fetch_all(self.reader())
                    .await
                    .map_err(db)?;
                rows.iter().map(info_from).collect()
            }

            async fn version(
                &self,
                project: &ProjectId,
                name: &FunctionName,
                number: u32,
            ) -> Result<Option<Version>, Error> {
                let row = sqlx::query(
                    "SELECT * FROM fn_versions WHERE project = $1 AND function = $2 AND number = $3",
                )
                .bind(project.as_str())
                .bind(name.as_str())
                .bind(i64::from(number))
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
                row.as_ref().map(version_from).transpose()
            }

            async fn versions(
                &self,
                project: &ProjectId,
                name: &FunctionName,
            ) -> Result<Vec<Version>, Error> {
                let rows = sqlx::query(
                    "SELECT * FROM fn_versions WHERE project = $1 AND function = $2
                     ORDER BY number DESC",
                )
                .bind(project.as_str())
                .bind(name.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
                rows.iter().map(version_from).collect()
            }

            async fn activate(
                &self,
                project: &ProjectId,
                name: &FunctionName,
                number: u32,
            ) -> Result<FunctionInfo, Error> {
                let row = sqlx::query(ACTIVATE)
                    .bind(project.as_str())
                    .bind(name.as_str())
                    .bind(i64::from(number))
                    .bind(to_db(crate::id::now_millis()))
                    .fetch_optional(self.writer())
                    .await
                    .map_err(db)?;
                match row {
                    Some(row) => info_from(&row),
                    // Nothing changed: say which one is missing.
                    None => Err(match self.function(project, name).await? {
                        Some(_) => version_not_found(name, number),
                        None => function_not_found(name),
                    }),
                }
            }

            async fn delete_function(
                &self,
                project: &ProjectId,
                name: &FunctionName,
            ) -> Result<Vec<Version>, Error> {
                let mut tx = self.begin().await?;
                // Lock the row first: a deploy racing this one waits, then
                // starts again at 1.
                sqlx::query(
                    "UPDATE fn_functions SET latest = latest WHERE project = $1 AND name = $2",
                )
                .bind(project.as_str())
                .bind(name.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                let rows = sqlx::query(
                    "DELETE FROM fn_versions WHERE project = $1 AND function = $2 RETURNING *",
                )
                .bind(project.as_str())
                .bind(name.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                let removed = rows.iter().map(version_from).collect::<Result<Vec<_>, _>>()?;
                // Its cursors go with it (ON DELETE CASCADE).
                sqlx::query("DELETE FROM fn_functions WHERE project = $1 AND name = $2")
                    .bind(project.as_str())
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(sorted(removed))
            }

            async fn triggered(&self) -> Result<Vec<Version>, Error> {
                let rows = sqlx::query(
                    "SELECT v.* FROM fn_versions v JOIN fn_functions f
                        ON f.project = v.project AND f.name = v.function AND f.active = v.number
                     WHERE v.triggers <> '[]'",
                )
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let version = version_from(r)?;
                    if !version.triggers.is_empty() {
                        out.push(version);
                    }
                }
                out.sort_by(|a, b| (&a.project, &a.function).cmp(&(&b.project, &b.function)));
                Ok(out)
            }

            async fn record(&self, invocation: &Invocation) -> Result<(), Error> {
                insert_invocation!(self.writer(), invocation)
            }

            async fn record_all(&self, invocations: &[Invocation]) -> Result<(), Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                for invocation in invocations {
                    insert_invocation!(&mut *tx, invocation)?;
                }
                tx.commit().await.map_err(db)
            }

            async fn invocations(
                &self,
                project: &ProjectId,
                query: &LogQuery,
            ) -> Result<Vec<Invocation>, Error> {
                let limit = query.limit.clamp(1, MAX_LOG_PAGE) as i64;
                let sql = match (&query.function, &query.before) {
                    (None, None) => LOG_ALL,
                    (Some(_), None) => LOG_FUNCTION,
                    (None, Some(_)) => LOG_BEFORE,
                    (Some(_), Some(_)) => LOG_FUNCTION_BEFORE,
                };
                let mut q = sqlx::query(sql).bind(project.as_str()).bind(limit);
                if let Some(function) = &query.function {
                    q = q.bind(function.as_str());
                }
                if let Some(before) = &query.before {
                    q = q.bind(before.as_str());
                }
                let rows = q.fetch_all(self.reader()).await.map_err(db)?;
                rows.iter().map(invocation_from).collect()
            }

            async fn prune_invocations(&self, before_ms: u64) -> Result<u64, Error> {
                let pruned = sqlx::query("DELETE FROM fn_invocations WHERE started_at < $1")
                    .bind(to_db(before_ms))
                    .execute(self.writer())
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(pruned)
            }

            async fn cursor(
                &self,
                project: &ProjectId,
                name: &FunctionName,
                key: &str,
            ) -> Result<Option<u64>, Error> {
                let seq: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM fn_cursors WHERE project = $1 AND function = $2 AND key = $3",
                )
                .bind(project.as_str())
                .bind(name.as_str())
                .bind(key)
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
                Ok(seq.map(from_db))
            }

            async fn set_cursor(
                &self,
                project: &ProjectId,
                name: &FunctionName,
                key: &str,
                seq: u64,
            ) -> Result<(), Error> {
                // The foreign key refuses a cursor of a missing function,
                // even one deleted meanwhile.
                sqlx::query(
                    "INSERT INTO fn_cursors (project, function, key, seq) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (project, function, key) DO UPDATE SET seq = excluded.seq",
                )
                .bind(project.as_str())
                .bind(name.as_str())
                .bind(key)
                .bind(to_db(seq))
                .execute(self.writer())
                .await
                .map_err(|e| match db(e) {
                    Error::NotFound(_) => function_not_found(name),
                    other => other,
                })?;
                Ok(())
            }

            async fn lease(
                &self,
                name: &str,
                holder: &str,
                now_ms: u64,
                until_ms: u64,
            ) -> Result<bool, Error> {
                let held: Option<String> = sqlx::query_scalar(LEASE)
                    .bind(name)
                    .bind(holder)
                    .bind(to_db(until_ms))
                    .bind(to_db(now_ms))
                    .fetch_optional(self.writer())
                    .await
                    .map_err(db)?;
                Ok(held.is_some())
            }

            async fn forget_project(&self, project: &ProjectId) -> Result<Vec<Version>, Error> {
                let mut tx = self.begin().await?;
                // Lock the project's functions first, as delete_function.
                sqlx::query("UPDATE fn_functions SET latest = latest WHERE project = $1")
                    .bind(project.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                let rows = sqlx::query("DELETE FROM fn_versions WHERE project = $1 RETURNING *")
                    .bind(project.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                let removed = rows.iter().map(version_from).collect::<Result<Vec<_>, _>>()?;
                sqlx::query("DELETE FROM fn_invocations WHERE project = $1")
                    .bind(project.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                // Cursors go with their functions (ON DELETE CASCADE).
                sqlx::query("DELETE FROM fn_functions WHERE project = $1")
                    .bind(project.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(sorted(removed))
            }
        }
    };
}

pub mod sqlite {
    //! SQLite: the all-in-one's functions metadata (a file in the data
    //! directory).
    use super::*;

    /// Reads use a pool; writes go through one connection (SQLite has one
    /// writer at a time anyway), which also serializes deploys and leases.
    pub struct SqliteFunctions {
        pool: sqlx::SqlitePool,
        writer: sqlx::SqlitePool,
    }

    impl SqliteFunctions {
        /// Opens (creating if missing) and migrates the database at `path`.
        pub async fn open(path: &std::path::Path) -> Result<SqliteFunctions, Error> {
            let (pool, writer) = crate::sql::open_sqlite(path, DOMAIN, MIGRATIONS).await?;
            Ok(SqliteFunctions { pool, writer })
        }

        fn reader(&self) -> &sqlx::SqlitePool {
            &self.pool
        }

        fn writer(&self) -> &sqlx::SqlitePool {
            &self.writer
        }

        /// Takes the write lock at BEGIN: another process on the file makes
        /// it wait (busy timeout) instead of failing a deferred upgrade.
        async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, Error> {
            self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
        }
    }

    function_store!(
        SqliteFunctions,
        sqlx::sqlite::SqliteRow,
        sqlx::Sqlite,
        "sqlite"
    );
}

pub mod postgres {
    //! Postgres: the functions metadata in compose.
    use super::*;

    pub struct PostgresFunctions {
        pool: sqlx::PgPool,
    }

    impl PostgresFunctions {
        /// Connects and migrates (several instances may start at once).
        pub async fn connect(url: &str) -> Result<PostgresFunctions, Error> {
            let pool = crate::sql::connect_postgres(url, 20).await?;
            crate::sql::migrate_postgres(&pool, DOMAIN, MIGRATIONS).await?;
            Ok(PostgresFunctions { pool })
        }

        fn reader(&self) -> &sqlx::PgPool {
            &self.pool
        }

        fn writer(&self) -> &sqlx::PgPool {
            &self.pool
        }

        async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, Error> {
            self.pool.begin().await.map_err(db)
        }
    }

    function_store!(
        PostgresFunctions,
        sqlx::postgres::PgRow,
        sqlx::Postgres,
        "postgres"
    );
}

/// Opens the functions store `url` names (SQL schemas are migrated).
pub async fn open(url: &crate::config::StoreUrl) -> Result<Arc<dyn FunctionStore>, Error> {
    use crate::config::StoreUrl;
    Ok(match url {
        StoreUrl::Memory => Arc::new(MemoryFunctions::new()),
        StoreUrl::Sqlite(path) => Arc::new(SqliteFunctions::open(path).await?),
        StoreUrl::Postgres(url) => Arc::new(PostgresFunctions::connect(url.expose()).await?),
    })
}

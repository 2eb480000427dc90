//! KMS stores on SQLite (the all-in-one) and Postgres: one SQL text for
//! both dialects (`$n` placeholders, TEXT, BIGINT; wrapped material as
//! base64 TEXT), one macro for both pool types.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sqlx::Row;

use crate::error::Error;
use crate::id::ProjectId;
use crate::kms::audit::{self, AuditEntry, AuditRecord};
use crate::kms::crypto::Algorithm;
use crate::kms::model::{AuditQuery, Key, KeyState, KeyVersion, SecretInfo, SecretVersion};
use crate::kms::store::KmsStore;
use crate::sql::{Migration, db, from_db, to_db};

pub const DOMAIN: &str = "kms";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE kms_keys (
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    state TEXT NOT NULL,
    primary_version BIGINT NOT NULL,
    rotation_period BIGINT,
    last_rotated_at BIGINT NOT NULL,
    deletion_at BIGINT,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);
CREATE TABLE kms_key_versions (
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    wrapped TEXT NOT NULL,
    public_key TEXT,
    PRIMARY KEY (project_id, name, version),
    FOREIGN KEY (project_id, name) REFERENCES kms_keys (project_id, name) ON DELETE CASCADE
);
CREATE TABLE kms_secrets (
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    wrapped TEXT NOT NULL,
    PRIMARY KEY (project_id, name, version)
);
CREATE TABLE kms_audit (
    project_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    caller TEXT NOT NULL,
    key_name TEXT,
    operation TEXT NOT NULL,
    result TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (project_id, seq)
);
CREATE INDEX kms_audit_at ON kms_audit (project_id, at);
",
    },
    Migration {
        version: 2,
        sql: "
CREATE TABLE kms_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
",
    },
    Migration {
        version: 3,
        sql: "ALTER TABLE kms_keys ADD COLUMN end_users BIGINT NOT NULL DEFAULT 0;",
    },
];

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, Error> {
    STANDARD
        .decode(text)
        .map_err(|_| Error::internal("stored key material is not base64"))
}

fn state_from(text: &str) -> Result<KeyState, Error> {
    match text {
        "enabled" => Ok(KeyState::Enabled),
        "disabled" => Ok(KeyState::Disabled),
        "pending_deletion" => Ok(KeyState::PendingDeletion),
        other => Err(Error::internal(format!(
            "unknown stored key state {other:?}"
        ))),
    }
}

/// Appending audit records can lose a race for a sequence number to
/// another instance: a batch retries this often.
const AUDIT_ATTEMPTS: usize = 20;
const REWRAP_KEY: &str = "UPDATE kms_key_versions SET wrapped = $1
    WHERE project_id = $2 AND name = $3 AND version = $4";
const REWRAP_SECRET: &str = "UPDATE kms_secrets SET wrapped = $1
    WHERE project_id = $2 AND name = $3 AND version = $4";

/// Most audit records committed together.
const AUDIT_BATCH: usize = 256;

type PendingAudit = (
    AuditEntry,
    tokio::sync::oneshot::Sender<Result<AuditRecord, Error>>,
);

macro_rules! kms_store {
    ($store:ident, $row:ty, $db:ty) => {
        /// Inserts a key version unless it is stored already (versions
        /// never change once written).
        async fn insert_version(
            tx: &mut sqlx::Transaction<'_, $db>,
            key: &Key,
            v: &KeyVersion,
        ) -> Result<(), Error> {
            sqlx::query(
                "INSERT INTO kms_key_versions (project_id, name, version, created_at, wrapped, public_key)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(key.project.as_str())
            .bind(key.name.as_str())
            .bind(i64::from(v.version))
            .bind(to_db(v.created_at))
            .bind(b64(&v.wrapped))
            .bind(v.public_key.as_deref().map(b64))
            .execute(&mut **tx)
            .await
            .map_err(db)?;
            Ok(())
        }

        fn key_from(r: &$row, versions: Vec<KeyVersion>) -> Result<Key, Error> {
            let project: String = r.try_get("project_id").map_err(db)?;
            let algorithm: String = r.try_get("algorithm").map_err(db)?;
            let state: String = r.try_get("state").map_err(db)?;
            Ok(Key {
                project: ProjectId::new(project)?,
                name: r.try_get("name").map_err(db)?,
                algorithm: Algorithm::parse(&algorithm)?,
                state: state_from(&state)?,
                primary: from_db(r.try_get("primary_version").map_err(db)?) as u32,
                versions,
                rotation_period: r
                    .try_get::<Option<i64>, _>("rotation_period")
                    .map_err(db)?
                    .map(from_db),
                last_rotated_at: from_db(r.try_get("last_rotated_at").map_err(db)?),
                deletion_at: r
                    .try_get::<Option<i64>, _>("deletion_at")
                    .map_err(db)?
                    .map(from_db),
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                revision: from_db(r.try_get("revision").map_err(db)?),
                end_users: r.try_get::<i64, _>("end_users").map_err(db)? != 0,
            })
        }

        fn version_from(r: &$row) -> Result<KeyVersion, Error> {
            let wrapped: String = r.try_get("wrapped").map_err(db)?;
            let public: Option<String> = r.try_get("public_key").map_err(db)?;
            Ok(KeyVersion {
                version: from_db(r.try_get("version").map_err(db)?) as u32,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                wrapped: unb64(&wrapped)?,
                public_key: public.as_deref().map(unb64).transpose()?,
            })
        }

        fn record_from(r: &$row) -> Result<AuditRecord, Error> {
            Ok(AuditRecord {
                seq: from_db(r.try_get("seq").map_err(db)?),
                entry: AuditEntry {
                    at: from_db(r.try_get("at").map_err(db)?),
                    project: r.try_get("project_id").map_err(db)?,
                    caller: r.try_get("caller").map_err(db)?,
                    key: r.try_get("key_name").map_err(db)?,
                    operation: r.try_get("operation").map_err(db)?,
                    result: r.try_get("result").map_err(db)?,
                },
                prev_hash: r.try_get("prev_hash").map_err(db)?,
                hash: r.try_get("hash").map_err(db)?,
            })
        }

        /// Writes queued audit records in batches, one transaction (one
        /// fsync) per batch: every caller still waits for its own record to
        /// be committed, but concurrent callers share the commit.
        async fn audit_writer(pool: sqlx::Pool<$db>, mut queue: tokio::sync::mpsc::Receiver<PendingAudit>) {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < AUDIT_BATCH {
                    match queue.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let entries: Vec<AuditEntry> = batch.iter().map(|(e, _)| e.clone()).collect();
                match write_audit_batch(&pool, &entries).await {
                    Ok(records) => {
                        for ((_, reply), record) in batch.into_iter().zip(records) {
                            let _ = reply.send(Ok(record));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in batch {
                            let _ = reply.send(Err(Error::from_code(e.code(), e.to_string())));
                        }
                    }
                }
            }
        }

        /// Chains and inserts `entries` in one transaction; retried when
        /// another instance took a sequence number first.
        async fn write_audit_batch(
            pool: &sqlx::Pool<$db>,
            entries: &[AuditEntry],
        ) -> Result<Vec<AuditRecord>, Error> {
            'attempt: for _ in 0..AUDIT_ATTEMPTS {
                let mut tx = pool.begin().await.map_err(db)?;
                let mut heads: std::collections::HashMap<String, Option<AuditRecord>> =
                    std::collections::HashMap::new();
                let mut records = Vec::with_capacity(entries.len());
                for entry in entries {
                    let head = match heads.get(&entry.project) {
                        Some(head) => head.clone(),
                        None => {
                            let last = sqlx::query(
                                "SELECT * FROM kms_audit WHERE project_id = $1 ORDER BY seq DESC LIMIT 1",
                            )
                            .bind(&entry.project)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db)?;
                            last.as_ref().map(record_from).transpose()?
                        }
                    };
                    let record = audit::chain(head.as_ref(), entry.clone());
                    let inserted = sqlx::query(
                        "INSERT INTO kms_audit (project_id, seq, at, caller, key_name, operation,
                            result, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&record.entry.project)
                    .bind(to_db(record.seq))
                    .bind(to_db(record.entry.at))
                    .bind(&record.entry.caller)
                    .bind(&record.entry.key)
                    .bind(&record.entry.operation)
                    .bind(&record.entry.result)
                    .bind(&record.prev_hash)
                    .bind(&record.hash)
                    .execute(&mut *tx)
                    .await;
                    match inserted.map_err(db) {
                        Ok(_) => {}
                        // Another instance took this sequence number.
                        Err(Error::AlreadyExists(_)) => continue 'attempt,
                        Err(e) => return Err(e),
                    }
                    heads.insert(entry.project.clone(), Some(record.clone()));
                    records.push(record);
                }
                tx.commit().await.map_err(db)?;
                return Ok(records);
            }
            Err(Error::Unavailable("the audit log is too busy; try again".into()))
        }

        /// Replaces one version's wrapped material (`sql`: one of the
        /// `REWRAP_*` statements).
        async fn rewrap_row(
            pool: &sqlx::Pool<$db>,
            sql: &'static str,
            what: &str,
            project: &ProjectId,
            name: &str,
            version: u32,
            wrapped: &[u8],
        ) -> Result<(), Error> {
            let updated = sqlx::query(sql)
                .bind(b64(wrapped))
                .bind(project.as_str())
                .bind(name)
                .bind(i64::from(version))
                .execute(pool)
                .await
                .map_err(db)?
                .rows_affected();
            if updated == 0 {
                return Err(Error::not_found(format!("{what} {name} version {version}")));
            }
            Ok(())
        }

        impl $store {
            async fn versions(&self, project: &str, name: &str) -> Result<Vec<KeyVersion>, Error> {
                let rows = sqlx::query(
                    "SELECT version, created_at, wrapped, public_key FROM kms_key_versions
                     WHERE project_id = $1 AND name = $2 ORDER BY version",
                )
                .bind(project)
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter().map(version_from).collect()
            }

            async fn with_versions(&self, rows: Vec<$row>) -> Result<Vec<Key>, Error> {
                let mut keys = Vec::with_capacity(rows.len());
                for r in &rows {
                    let project: String = r.try_get("project_id").map_err(db)?;
                    let name: String = r.try_get("name").map_err(db)?;
                    let versions = self.versions(&project, &name).await?;
                    keys.push(key_from(r, versions)?);
                }
                Ok(keys)
            }
        }

        #[async_trait]
        impl KmsStore for $store {
            async fn check(&self) -> Result<(), Error> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db)?;
                Ok(())
            }

            async fn master_key_id(&self) -> Result<Option<String>, Error> {
                sqlx::query_scalar("SELECT value FROM kms_meta WHERE name = 'master_key_id'")
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)
            }

            async fn set_master_key_id(&self, id: &str) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO kms_meta (name, value) VALUES ('master_key_id', $1)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn create_key(&self, key: &Key) -> Result<(), Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                sqlx::query(
                    "INSERT INTO kms_keys (project_id, name, algorithm, state, primary_version,
                        rotation_period, last_rotated_at, deletion_at, created_at, revision, end_users)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(key.project.as_str())
                .bind(&key.name)
                .bind(key.algorithm.name())
                .bind(key.state.as_str())
                .bind(i64::from(key.primary))
                .bind(key.rotation_period.map(to_db))
                .bind(to_db(key.last_rotated_at))
                .bind(key.deletion_at.map(to_db))
                .bind(to_db(key.created_at))
                .bind(to_db(key.revision))
                .bind(i64::from(key.end_users))
                .execute(&mut *tx)
                .await
                .map_err(|e| match db(e) {
                    Error::AlreadyExists(_) => {
                        Error::AlreadyExists(format!("key {} already exists", key.name))
                    }
                    other => other,
                })?;
                for v in &key.versions {
                    insert_version(&mut tx, key, v).await?;
                }
                tx.commit().await.map_err(db)
            }

            async fn key(&self, project: &ProjectId, name: &str) -> Result<Option<Key>, Error> {
                let row = sqlx::query("SELECT * FROM kms_keys WHERE project_id = $1 AND name = $2")
                    .bind(project.as_str())
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(self.with_versions(row.into_iter().collect()).await?.pop())
            }

            async fn keys(&self, project: &ProjectId) -> Result<Vec<Key>, Error> {
                let rows = sqlx::query("SELECT * FROM kms_keys WHERE project_id = $1 ORDER BY name")
                    .bind(project.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                self.with_versions(rows).await
            }

            async fn update_key(&self, key: &Key) -> Result<(), Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                let updated = sqlx::query(
                    "UPDATE kms_keys SET state = $1, primary_version = $2, rotation_period = $3,
                        last_rotated_at = $4, deletion_at = $5, revision = $6, end_users = $10
                     WHERE project_id = $7 AND name = $8 AND revision = $9",
                )
                .bind(key.state.as_str())
                .bind(i64::from(key.primary))
                .bind(key.rotation_period.map(to_db))
                .bind(to_db(key.last_rotated_at))
                .bind(key.deletion_at.map(to_db))
                .bind(to_db(key.revision))
                .bind(key.project.as_str())
                .bind(&key.name)
                .bind(to_db(key.revision.saturating_sub(1)))
                .bind(i64::from(key.end_users))
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
                if updated == 0 {
                    return Err(Error::Conflict(format!(
                        "key {} was changed or deleted meanwhile; try again",
                        key.name
                    )));
                }
                for v in &key.versions {
                    insert_version(&mut tx, key, v).await?;
                }
                tx.commit().await.map_err(db)
            }

            async fn delete_key(
                &self,
                project: &ProjectId,
                name: &str,
                revision: u64,
            ) -> Result<bool, Error> {
                // Versions go with the key (ON DELETE CASCADE).
                let deleted = sqlx::query(
                    "DELETE FROM kms_keys WHERE project_id = $1 AND name = $2 AND revision = $3",
                )
                .bind(project.as_str())
                .bind(name)
                .bind(to_db(revision))
                .execute(self.writer())
                .await
                .map_err(db)?
                .rows_affected();
                Ok(deleted > 0)
            }

            async fn keys_due(&self, now: u64) -> Result<Vec<Key>, Error> {
                let rows = sqlx::query(
                    "SELECT * FROM kms_keys
                     WHERE (state = 'pending_deletion' AND deletion_at <= $1)
                        OR (state = 'enabled' AND rotation_period IS NOT NULL
                            AND last_rotated_at + rotation_period * 1000 <= $1)",
                )
                .bind(to_db(now))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                self.with_versions(rows).await
            }

            async fn put_secret(
                &self,
                project: &ProjectId,
                name: &str,
                version: u32,
                wrapped: Vec<u8>,
                at: u64,
            ) -> Result<(), Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                let latest: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(version) FROM kms_secrets WHERE project_id = $1 AND name = $2",
                )
                .bind(project.as_str())
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                let next = latest.map_or(1, |v| from_db(v) as u32 + 1);
                if version != next {
                    return Err(Error::Conflict(format!(
                        "secret {name} got version {} meanwhile; try again",
                        next - 1
                    )));
                }
                sqlx::query(
                    "INSERT INTO kms_secrets (project_id, name, version, created_at, wrapped)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(project.as_str())
                .bind(name)
                .bind(i64::from(version))
                .bind(to_db(at))
                .bind(b64(&wrapped))
                .execute(&mut *tx)
                .await
                .map_err(|e| match db(e) {
                    // Another instance inserted this version first.
                    Error::AlreadyExists(_) => {
                        Error::Conflict(format!("secret {name} was written meanwhile; try again"))
                    }
                    other => other,
                })?;
                tx.commit().await.map_err(db)
            }

            async fn secret(
                &self,
                project: &ProjectId,
                name: &str,
                version: Option<u32>,
            ) -> Result<Option<SecretVersion>, Error> {
                let row = match version {
                    Some(v) => sqlx::query(
                        "SELECT version, created_at, wrapped FROM kms_secrets
                         WHERE project_id = $1 AND name = $2 AND version = $3",
                    )
                    .bind(project.as_str())
                    .bind(name)
                    .bind(i64::from(v))
                    .fetch_optional(&self.pool)
                    .await,
                    None => sqlx::query(
                        "SELECT version, created_at, wrapped FROM kms_secrets
                         WHERE project_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
                    )
                    .bind(project.as_str())
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await,
                }
                .map_err(db)?;
                row.map(|r| {
                    let wrapped: String = r.try_get("wrapped").map_err(db)?;
                    Ok(SecretVersion {
                        version: from_db(r.try_get("version").map_err(db)?) as u32,
                        created_at: from_db(r.try_get("created_at").map_err(db)?),
                        wrapped: unb64(&wrapped)?,
                    })
                })
                .transpose()
            }

            async fn secrets(&self, project: &ProjectId) -> Result<Vec<SecretInfo>, Error> {
                let rows = sqlx::query(
                    "SELECT name, MAX(version) AS latest, MIN(created_at) AS created,
                            MAX(created_at) AS updated
                     FROM kms_secrets WHERE project_id = $1 GROUP BY name ORDER BY name",
                )
                .bind(project.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        Ok(SecretInfo {
                            name: r.try_get("name").map_err(db)?,
                            latest_version: from_db(r.try_get("latest").map_err(db)?) as u32,
                            created_at: from_db(r.try_get("created").map_err(db)?),
                            updated_at: from_db(r.try_get("updated").map_err(db)?),
                        })
                    })
                    .collect()
            }

            async fn delete_secret(&self, project: &ProjectId, name: &str) -> Result<bool, Error> {
                let deleted = sqlx::query("DELETE FROM kms_secrets WHERE project_id = $1 AND name = $2")
                    .bind(project.as_str())
                    .bind(name)
                    .execute(self.writer())
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn all_keys(&self) -> Result<Vec<Key>, Error> {
                let rows = sqlx::query("SELECT * FROM kms_keys ORDER BY project_id, name")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                self.with_versions(rows).await
            }

            async fn all_secrets(&self) -> Result<Vec<(ProjectId, String, SecretVersion)>, Error> {
                let rows = sqlx::query(
                    "SELECT project_id, name, version, created_at, wrapped FROM kms_secrets
                     ORDER BY project_id, name, version",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        let project: String = r.try_get("project_id").map_err(db)?;
                        let wrapped: String = r.try_get("wrapped").map_err(db)?;
                        Ok((
                            ProjectId::new(project)?,
                            r.try_get("name").map_err(db)?,
                            SecretVersion {
                                version: from_db(r.try_get("version").map_err(db)?) as u32,
                                created_at: from_db(r.try_get("created_at").map_err(db)?),
                                wrapped: unb64(&wrapped)?,
                            },
                        ))
                    })
                    .collect()
            }

            async fn rewrap_key_version(
                &self,
                project: &ProjectId,
                name: &str,
                version: u32,
                wrapped: Vec<u8>,
            ) -> Result<(), Error> {
                rewrap_row(self.writer(), REWRAP_KEY, "key", project, name, version, &wrapped)
                    .await
            }

            async fn rewrap_secret_version(
                &self,
                project: &ProjectId,
                name: &str,
                version: u32,
                wrapped: Vec<u8>,
            ) -> Result<(), Error> {
                rewrap_row(self.writer(), REWRAP_SECRET, "secret", project, name, version, &wrapped)
                    .await
            }

            async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, Error> {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let closed = || Error::Unavailable("the audit writer has stopped".into());
                self.audit.send((entry, reply)).await.map_err(|_| closed())?;
                answer.await.map_err(|_| closed())?
            }

            async fn audit(
                &self,
                project: &ProjectId,
                query: &AuditQuery,
            ) -> Result<Vec<AuditRecord>, Error> {
                let rows = sqlx::query(
                    "SELECT * FROM kms_audit
                     WHERE project_id = $1 AND seq > $2 AND at >= $3 AND at < $4
                       AND ($5 IS NULL OR key_name = $5)
                     ORDER BY seq LIMIT $6",
                )
                .bind(project.as_str())
                .bind(to_db(query.after.unwrap_or(0)))
                .bind(to_db(query.from.unwrap_or(0)))
                .bind(to_db(query.to.unwrap_or(u64::MAX)))
                .bind(&query.key)
                .bind(to_db(query.limit.max(1) as u64))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter().map(record_from).collect()
            }
        }
    };
}

pub mod sqlite {
    //! SQLite: the all-in-one's KMS store (a file in the data directory).
    use super::*;

    /// Reads use a pool; writes go through one connection (SQLite has one
    /// writer at a time anyway).
    pub struct SqliteKms {
        pool: sqlx::SqlitePool,
        writer: sqlx::SqlitePool,
        audit: tokio::sync::mpsc::Sender<PendingAudit>,
    }

    impl SqliteKms {
        pub async fn open(path: &std::path::Path) -> Result<SqliteKms, Error> {
            let (pool, writer) = crate::sql::open_sqlite(path, DOMAIN, MIGRATIONS).await?;
            let (audit, queue) = tokio::sync::mpsc::channel(4 * AUDIT_BATCH);
            tokio::spawn(audit_writer(writer.clone(), queue));
            Ok(SqliteKms {
                pool,
                writer,
                audit,
            })
        }

        fn writer(&self) -> &sqlx::SqlitePool {
            &self.writer
        }
    }

    kms_store!(SqliteKms, sqlx::sqlite::SqliteRow, sqlx::Sqlite);
}

pub mod postgres {
    //! Postgres: the KMS store in compose.
    use super::*;

    pub struct PostgresKms {
        pool: sqlx::PgPool,
        audit: tokio::sync::mpsc::Sender<PendingAudit>,
    }

    impl PostgresKms {
        /// Connects and migrates (several instances may start at once).
        pub async fn connect(url: &str) -> Result<PostgresKms, Error> {
            let pool = crate::sql::connect_postgres(url, 20).await?;
            crate::sql::migrate_postgres(&pool, DOMAIN, MIGRATIONS).await?;
            let (audit, queue) = tokio::sync::mpsc::channel(4 * AUDIT_BATCH);
            tokio::spawn(audit_writer(pool.clone(), queue));
            Ok(PostgresKms { pool, audit })
        }

        fn writer(&self) -> &sqlx::PgPool {
            &self.pool
        }
    }

    kms_store!(PostgresKms, sqlx::postgres::PgRow, sqlx::Postgres);
}

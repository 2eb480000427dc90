//! Metadata in SQLite (the all-in-one) or Postgres (compose): one SQL text
//! for both dialects (`$n` placeholders, TEXT, BIGINT; settings and user
//! metadata as JSON TEXT), one macro for both pool types.
//!
//! Every write that counts against a project's usage, or that must see the
//! project's objects and uploads as they are (deleting a bucket, opening an
//! upload), first locks the project's usage row: such transactions of one
//! project run one at a time, so quotas hold exactly and `IfAbsent` puts
//! cannot both win. Keys, bucket names and ids are `{bytewise_text}`, so
//! `ORDER BY` is byte order on both databases, as in the memory store.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Error;
use crate::id::ProjectId;
use crate::sql::{Migration, db, from_db, to_db};
use crate::storage::adapters::memory::{MemoryMeta, usage_after};
use crate::storage::meta::MetaStore;
use crate::storage::model::{
    Bucket, BucketSettings, ObjectInfo, Part, PutCondition, Quota, S3Credential, Upload, Usage,
};

pub use postgres::PostgresMeta;
pub use sqlite::SqliteMeta;

pub const DOMAIN: &str = "storage";

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
CREATE TABLE storage_buckets (
    project TEXT NOT NULL,
    name {bytewise_text} NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE storage_objects (
    project TEXT NOT NULL,
    bucket {bytewise_text} NOT NULL,
    key {bytewise_text} NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    owner TEXT,
    last_modified BIGINT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (project, bucket, key),
    FOREIGN KEY (project, bucket) REFERENCES storage_buckets (project, name)
);
CREATE TABLE storage_usage (
    project TEXT PRIMARY KEY,
    bytes BIGINT NOT NULL,
    objects BIGINT NOT NULL
);
CREATE TABLE storage_uploads (
    project TEXT NOT NULL,
    id {bytewise_text} NOT NULL,
    bucket {bytewise_text} NOT NULL,
    key {bytewise_text} NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    owner TEXT,
    created_at BIGINT NOT NULL,
    blob TEXT NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (project, id)
);
CREATE INDEX storage_uploads_bucket ON storage_uploads (project, bucket, created_at);
CREATE INDEX storage_uploads_created ON storage_uploads (created_at);
CREATE TABLE storage_parts (
    project TEXT NOT NULL,
    upload {bytewise_text} NOT NULL,
    number BIGINT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    receipt TEXT NOT NULL,
    PRIMARY KEY (project, upload, number),
    FOREIGN KEY (project, upload) REFERENCES storage_uploads (project, id) ON DELETE CASCADE
);
CREATE TABLE storage_credentials (
    access_key_id {bytewise_text} PRIMARY KEY,
    project TEXT NOT NULL,
    sealed_secret {bytes} NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX storage_credentials_project ON storage_credentials (project, created_at);
",
}];

/// Creates the project's usage row if missing and locks it (the upsert
/// takes the row lock) for the rest of the transaction.
const LOCK_USAGE: &str = "INSERT INTO storage_usage (project, bytes, objects) VALUES ($1, 0, 0)
    ON CONFLICT (project) DO UPDATE SET bytes = storage_usage.bytes
    RETURNING bytes, objects";
const WRITE_USAGE: &str = "UPDATE storage_usage SET bytes = $2, objects = $3 WHERE project = $1";

/// A listing's four statements: the lower bound (`$3`) inclusive (the
/// prefix) or exclusive (the cursor), with or without an upper bound (`$5`,
/// the first string above every key that starts with the prefix).
macro_rules! list_statement {
    ($lower:literal, $upper:literal) => {
        concat!(
            "SELECT bucket, key, size, etag, content_type, metadata, owner, last_modified, blob
             FROM storage_objects WHERE project = $1 AND bucket = $2 AND key ",
            $lower,
            " $3",
            $upper,
            " ORDER BY key LIMIT $4"
        )
    };
}
const LIST_FROM: &str = list_statement!(">=", "");
const LIST_AFTER: &str = list_statement!(">", "");
const LIST_FROM_BELOW: &str = list_statement!(">=", " AND key < $5");
const LIST_AFTER_BELOW: &str = list_statement!(">", " AND key < $5");

/// The least string above every string that starts with `prefix` (in byte
/// order, which for UTF-8 is code point order): the prefix with its last
/// character incremented, dropping trailing U+10FFFF. `None` when no string
/// is above them all (an empty prefix, or only U+10FFFF).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(Error::internal)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("stored {what} is not valid JSON: {e}")))
}

fn bucket_not_found(name: &str) -> Error {
    Error::NotFound(format!("bucket {name} not found"))
}

macro_rules! meta_store {
    ($store:ident, $row:ty, $db:ty, $kind:literal) => {
        fn bucket_from(r: &$row) -> Result<Bucket, Error> {
            let project: String = r.try_get("project").map_err(db)?;
            let settings: String = r.try_get("settings").map_err(db)?;
            Ok(Bucket {
                project: ProjectId::new(project)?,
                name: r.try_get("name").map_err(db)?,
                settings: from_json::<BucketSettings>(&settings, "bucket settings")?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                updated_at: from_db(r.try_get("updated_at").map_err(db)?),
            })
        }

        fn object_from(r: &$row) -> Result<ObjectInfo, Error> {
            let metadata: String = r.try_get("metadata").map_err(db)?;
            Ok(ObjectInfo {
                bucket: r.try_get("bucket").map_err(db)?,
                key: r.try_get("key").map_err(db)?,
                size: from_db(r.try_get("size").map_err(db)?),
                etag: r.try_get("etag").map_err(db)?,
                content_type: r.try_get("content_type").map_err(db)?,
                metadata: from_json::<BTreeMap<String, String>>(&metadata, "object metadata")?,
                owner: r.try_get("owner").map_err(db)?,
                last_modified: from_db(r.try_get("last_modified").map_err(db)?),
                blob: r.try_get("blob").map_err(db)?,
            })
        }

        fn upload_from(r: &$row) -> Result<Upload, Error> {
            let metadata: String = r.try_get("metadata").map_err(db)?;
            Ok(Upload {
                id: r.try_get("id").map_err(db)?,
                bucket: r.try_get("bucket").map_err(db)?,
                key: r.try_get("key").map_err(db)?,
                content_type: r.try_get("content_type").map_err(db)?,
                metadata: from_json::<BTreeMap<String, String>>(&metadata, "upload metadata")?,
                owner: r.try_get("owner").map_err(db)?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                blob: r.try_get("blob").map_err(db)?,
                token: r.try_get("token").map_err(db)?,
            })
        }

        fn part_from(r: &$row) -> Result<Part, Error> {
            Ok(Part {
                number: u32::try_from(r.try_get::<i64, _>("number").map_err(db)?)
                    .map_err(|_| Error::internal("stored part number out of range"))?,
                size: from_db(r.try_get("size").map_err(db)?),
                etag: r.try_get("etag").map_err(db)?,
                receipt: r.try_get("receipt").map_err(db)?,
            })
        }

        fn credential_from(r: &$row) -> Result<S3Credential, Error> {
            let project: String = r.try_get("project").map_err(db)?;
            Ok(S3Credential {
                access_key_id: r.try_get("access_key_id").map_err(db)?,
                project: ProjectId::new(project)?,
                sealed_secret: r.try_get("sealed_secret").map_err(db)?,
                created_by: r.try_get("created_by").map_err(db)?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
            })
        }

        /// Locks the project's usage row (see [`LOCK_USAGE`]): its usage.
        async fn lock_usage(
            tx: &mut sqlx::Transaction<'static, $db>,
            project: &ProjectId,
        ) -> Result<Usage, Error> {
            let (bytes, objects): (i64, i64) = sqlx::query_as(LOCK_USAGE)
                .bind(project.as_str())
                .fetch_one(&mut **tx)
                .await
                .map_err(db)?;
            Ok(Usage {
                bytes: from_db(bytes),
                objects: from_db(objects),
            })
        }

        async fn write_usage(
            tx: &mut sqlx::Transaction<'static, $db>,
            project: &ProjectId,
            usage: Usage,
        ) -> Result<(), Error> {
            sqlx::query(WRITE_USAGE)
                .bind(project.as_str())
                .bind(to_db(usage.bytes))
                .bind(to_db(usage.objects))
                .execute(&mut **tx)
                .await
                .map_err(db)?;
            Ok(())
        }

        async fn holds_bucket(
            tx: &mut sqlx::Transaction<'static, $db>,
            project: &ProjectId,
            name: &str,
        ) -> Result<bool, Error> {
            let found = sqlx::query("SELECT name FROM storage_buckets WHERE project = $1 AND name = $2")
                .bind(project.as_str())
                .bind(name)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db)?;
            Ok(found.is_some())
        }

        #[async_trait]
        impl MetaStore for $store {
            fn kind(&self) -> &'static str {
                $kind
            }

            async fn check(&self) -> Result<(), Error> {
                sqlx::query("SELECT 1").execute(self.reader()).await.map_err(db)?;
                Ok(())
            }

            async fn create_bucket(&self, bucket: &Bucket) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO storage_buckets (project, name, settings, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(bucket.project.as_str())
                .bind(&bucket.name)
                .bind(to_json(&bucket.settings)?)
                .bind(to_db(bucket.created_at))
                .bind(to_db(bucket.updated_at))
                .execute(self.writer())
                .await
                .map_err(|e| match db(e) {
                    Error::AlreadyExists(_) => {
                        Error::AlreadyExists(format!("bucket {} already exists", bucket.name))
                    }
                    other => other,
                })?;
                Ok(())
            }

            async fn bucket(&self, project: &ProjectId, name: &str) -> Result<Option<Bucket>, Error> {
                let row = sqlx::query("SELECT * FROM storage_buckets WHERE project = $1 AND name = $2")
                    .bind(project.as_str())
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db)?;
                row.as_ref().map(bucket_from).transpose()
            }

            async fn buckets(&self, project: &ProjectId) -> Result<Vec<Bucket>, Error> {
                let rows = sqlx::query("SELECT * FROM storage_buckets WHERE project = $1 ORDER BY name")
                    .bind(project.as_str())
                    .fetch_all(self.reader())
                    .await
                    .map_err(db)?;
                rows.iter().map(bucket_from).collect()
            }

            async fn update_bucket(&self, bucket: &Bucket) -> Result<(), Error> {
                let updated = sqlx::query(
                    "UPDATE storage_buckets SET settings = $3, created_at = $4, updated_at = $5
                     WHERE project = $1 AND name = $2",
                )
                .bind(bucket.project.as_str())
                .bind(&bucket.name)
                .bind(to_json(&bucket.settings)?)
                .bind(to_db(bucket.created_at))
                .bind(to_db(bucket.updated_at))
                .execute(self.writer())
                .await
                .map_err(db)?
                .rows_affected();
                if updated == 0 {
                    return Err(bucket_not_found(&bucket.name));
                }
                Ok(())
            }

            async fn delete_bucket(&self, project: &ProjectId, name: &str) -> Result<bool, Error> {
                let mut tx = self.begin().await?;
                lock_usage(&mut tx, project).await?;
                let object = sqlx::query(
                    "SELECT key FROM storage_objects WHERE project = $1 AND bucket = $2 LIMIT 1",
                )
                .bind(project.as_str())
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let upload = sqlx::query(
                    "SELECT id FROM storage_uploads WHERE project = $1 AND bucket = $2 LIMIT 1",
                )
                .bind(project.as_str())
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if object.is_some() || upload.is_some() {
                    return Err(Error::Conflict(format!(
                        "bucket {name} is not empty: delete its objects first, or pass force=true"
                    )));
                }
                let deleted = sqlx::query("DELETE FROM storage_buckets WHERE project = $1 AND name = $2")
                    .bind(project.as_str())
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                tx.commit().await.map_err(db)?;
                Ok(deleted > 0)
            }

            async fn object(
                &self,
                project: &ProjectId,
                bucket: &str,
                key: &str,
            ) -> Result<Option<ObjectInfo>, Error> {
                let row = sqlx::query(
                    "SELECT * FROM storage_objects WHERE project = $1 AND bucket = $2 AND key = $3",
                )
                .bind(project.as_str())
                .bind(bucket)
                .bind(key)
                .fetch_optional(self.reader())
                .await
                .map_err(db)?;
                row.as_ref().map(object_from).transpose()
            }

            async fn put_object(
                &self,
                project: &ProjectId,
                object: &ObjectInfo,
                condition: PutCondition,
                quota: Quota,
            ) -> Result<Option<ObjectInfo>, Error> {
                let mut tx = self.begin().await?;
                let usage = lock_usage(&mut tx, project).await?;
                if !holds_bucket(&mut tx, project, &object.bucket).await? {
                    return Err(bucket_not_found(&object.bucket));
                }
                let old = sqlx::query(
                    "SELECT * FROM storage_objects WHERE project = $1 AND bucket = $2 AND key = $3",
                )
                .bind(project.as_str())
                .bind(&object.bucket)
                .bind(&object.key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let old = old.as_ref().map(object_from).transpose()?;
                if old.is_some() && condition == PutCondition::IfAbsent {
                    return Err(Error::Conflict(format!(
                        "an object exists at {}: nothing was stored",
                        object.key
                    )));
                }
                let next = usage_after(usage, old.as_ref(), object, quota)?;
                sqlx::query(
                    "INSERT INTO storage_objects (project, bucket, key, size, etag, content_type,
                        metadata, owner, last_modified, blob)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (project, bucket, key) DO UPDATE SET size = excluded.size,
                        etag = excluded.etag, content_type = excluded.content_type,
                        metadata = excluded.metadata, owner = excluded.owner,
                        last_modified = excluded.last_modified, blob = excluded.blob",
                )
                .bind(project.as_str())
                .bind(&object.bucket)
                .bind(&object.key)
                .bind(to_db(object.size))
                .bind(&object.etag)
                .bind(&object.content_type)
                .bind(to_json(&object.metadata)?)
                .bind(&object.owner)
                .bind(to_db(object.last_modified))
                .bind(&object.blob)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                write_usage(&mut tx, project, next).await?;
                tx.commit().await.map_err(db)?;
                Ok(old)
            }

            async fn delete_object(
                &self,
                project: &ProjectId,
                bucket: &str,
                key: &str,
            ) -> Result<Option<ObjectInfo>, Error> {
                let mut tx = self.begin().await?;
                let usage = lock_usage(&mut tx, project).await?;
                let removed = sqlx::query(
                    "DELETE FROM storage_objects WHERE project = $1 AND bucket = $2 AND key = $3
                     RETURNING *",
                )
                .bind(project.as_str())
                .bind(bucket)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let removed = removed.as_ref().map(object_from).transpose()?;
                if let Some(o) = &removed {
                    let next = Usage {
                        bytes: usage.bytes.saturating_sub(o.size),
                        objects: usage.objects.saturating_sub(1),
                    };
                    write_usage(&mut tx, project, next).await?;
                }
                tx.commit().await.map_err(db)?;
                Ok(removed)
            }

            async fn list_objects(
                &self,
                project: &ProjectId,
                bucket: &str,
                prefix: &str,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<ObjectInfo>, Error> {
                // Keys at or above the prefix and above the cursor: from
                // whichever bound is higher.
                let (lower, exclusive) = match after {
                    Some(after) if after >= prefix => (after, true),
                    _ => (prefix, false),
                };
                let upper = prefix_upper_bound(prefix);
                let sql = match (exclusive, upper.is_some()) {
                    (false, false) => LIST_FROM,
                    (true, false) => LIST_AFTER,
                    (false, true) => LIST_FROM_BELOW,
                    (true, true) => LIST_AFTER_BELOW,
                };
                let mut query = sqlx::query(sql)
                    .bind(project.as_str())
                    .bind(bucket)
                    .bind(lower)
                    .bind(to_db(limit as u64));
                if let Some(upper) = &upper {
                    query = query.bind(upper.as_str());
                }
                let rows = query.fetch_all(self.reader()).await.map_err(db)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let object = object_from(r)?;
                    // The bounds already select exactly these; kept as a
                    // guard against a database comparing otherwise.
                    if !object.key.starts_with(prefix) {
                        break;
                    }
                    out.push(object);
                }
                Ok(out)
            }

            async fn usage(&self, project: &ProjectId) -> Result<Usage, Error> {
                let row: Option<(i64, i64)> =
                    sqlx::query_as("SELECT bytes, objects FROM storage_usage WHERE project = $1")
                        .bind(project.as_str())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(db)?;
                Ok(row.map_or_else(Usage::default, |(bytes, objects)| Usage {
                    bytes: from_db(bytes),
                    objects: from_db(objects),
                }))
            }

            async fn create_upload(&self, project: &ProjectId, upload: &Upload) -> Result<(), Error> {
                // Under the usage lock, so a bucket being deleted sees it.
                let mut tx = self.begin().await?;
                lock_usage(&mut tx, project).await?;
                sqlx::query(
                    "INSERT INTO storage_uploads (project, id, bucket, key, content_type, metadata,
                        owner, created_at, blob, token)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(project.as_str())
                .bind(&upload.id)
                .bind(&upload.bucket)
                .bind(&upload.key)
                .bind(&upload.content_type)
                .bind(to_json(&upload.metadata)?)
                .bind(&upload.owner)
                .bind(to_db(upload.created_at))
                .bind(&upload.blob)
                .bind(&upload.token)
                .execute(&mut *tx)
                .await
                .map_err(|e| match db(e) {
                    Error::AlreadyExists(_) => {
                        Error::AlreadyExists(format!("upload {} exists", upload.id))
                    }
                    other => other,
                })?;
                tx.commit().await.map_err(db)
            }

            async fn upload(&self, project: &ProjectId, id: &str) -> Result<Option<Upload>, Error> {
                let row = sqlx::query("SELECT * FROM storage_uploads WHERE project = $1 AND id = $2")
                    .bind(project.as_str())
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db)?;
                row.as_ref().map(upload_from).transpose()
            }

            async fn uploads(&self, project: &ProjectId, bucket: &str) -> Result<Vec<Upload>, Error> {
                let rows = sqlx::query(
                    "SELECT * FROM storage_uploads WHERE project = $1 AND bucket = $2
                     ORDER BY created_at, id",
                )
                .bind(project.as_str())
                .bind(bucket)
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
                rows.iter().map(upload_from).collect()
            }

            async fn put_part(&self, project: &ProjectId, upload: &str, part: &Part) -> Result<(), Error> {
                // The foreign key refuses a part of an upload that is gone,
                // even one deleted meanwhile.
                sqlx::query(
                    "INSERT INTO storage_parts (project, upload, number, size, etag, receipt)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (project, upload, number) DO UPDATE SET size = excluded.size,
                        etag = excluded.etag, receipt = excluded.receipt",
                )
                .bind(project.as_str())
                .bind(upload)
                .bind(i64::from(part.number))
                .bind(to_db(part.size))
                .bind(&part.etag)
                .bind(&part.receipt)
                .execute(self.writer())
                .await
                .map_err(|e| match db(e) {
                    Error::NotFound(_) => Error::NotFound(format!("upload {upload} not found")),
                    other => other,
                })?;
                Ok(())
            }

            async fn parts(&self, project: &ProjectId, upload: &str) -> Result<Vec<Part>, Error> {
                let rows = sqlx::query(
                    "SELECT number, size, etag, receipt FROM storage_parts
                     WHERE project = $1 AND upload = $2 ORDER BY number",
                )
                .bind(project.as_str())
                .bind(upload)
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
                rows.iter().map(part_from).collect()
            }

            async fn delete_upload(&self, project: &ProjectId, id: &str) -> Result<bool, Error> {
                // Its parts go with it (ON DELETE CASCADE).
                let deleted = sqlx::query("DELETE FROM storage_uploads WHERE project = $1 AND id = $2")
                    .bind(project.as_str())
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn uploads_started_before(
                &self,
                before: u64,
                limit: usize,
            ) -> Result<Vec<(ProjectId, Upload)>, Error> {
                let rows = sqlx::query(
                    "SELECT * FROM storage_uploads WHERE created_at < $1
                     ORDER BY created_at, project, id LIMIT $2",
                )
                .bind(to_db(before))
                .bind(to_db(limit as u64))
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        let project: String = r.try_get("project").map_err(db)?;
                        Ok((ProjectId::new(project)?, upload_from(r)?))
                    })
                    .collect()
            }

            async fn create_credential(&self, credential: &S3Credential) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO storage_credentials (access_key_id, project, sealed_secret,
                        created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&credential.access_key_id)
                .bind(credential.project.as_str())
                .bind(&credential.sealed_secret)
                .bind(&credential.created_by)
                .bind(to_db(credential.created_at))
                .execute(self.writer())
                .await
                .map_err(|e| match db(e) {
                    Error::AlreadyExists(_) => Error::AlreadyExists("access key id taken".into()),
                    other => other,
                })?;
                Ok(())
            }

            async fn credential(&self, access_key_id: &str) -> Result<Option<S3Credential>, Error> {
                let row = sqlx::query("SELECT * FROM storage_credentials WHERE access_key_id = $1")
                    .bind(access_key_id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(db)?;
                row.as_ref().map(credential_from).transpose()
            }

            async fn credentials(&self, project: &ProjectId) -> Result<Vec<S3Credential>, Error> {
                let rows = sqlx::query(
                    "SELECT * FROM storage_credentials WHERE project = $1
                     ORDER BY created_at, access_key_id",
                )
                .bind(project.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(db)?;
                rows.iter().map(credential_from).collect()
            }

            async fn delete_credential(
                &self,
                project: &ProjectId,
                access_key_id: &str,
            ) -> Result<bool, Error> {
                let deleted = sqlx::query(
                    "DELETE FROM storage_credentials WHERE access_key_id = $1 AND project = $2",
                )
                .bind(access_key_id)
                .bind(project.as_str())
                .execute(self.writer())
                .await
                .map_err(db)?
                .rows_affected();
                Ok(deleted > 0)
            }
        }
    };
}

pub mod sqlite {
    //! SQLite: the all-in-one's storage metadata (a file in the data
    //! directory).
    use super::*;

    /// Reads use a pool; writes go through one connection (SQLite has one
    /// writer at a time anyway).
    pub struct SqliteMeta {
        pool: sqlx::SqlitePool,
        writer: sqlx::SqlitePool,
    }

    impl SqliteMeta {
        /// Opens (creating if missing) and migrates the database at `path`.
        pub async fn open(path: &std::path::Path) -> Result<SqliteMeta, Error> {
            let (pool, writer) = crate::sql::open_sqlite(path, DOMAIN, MIGRATIONS).await?;
            Ok(SqliteMeta { pool, writer })
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

    meta_store!(SqliteMeta, sqlx::sqlite::SqliteRow, sqlx::Sqlite, "sqlite");
}

pub mod postgres {
    //! Postgres: the storage metadata in compose.
    use super::*;

    pub struct PostgresMeta {
        pool: sqlx::PgPool,
    }

    impl PostgresMeta {
        /// Connects and migrates (several instances may start at once).
        pub async fn connect(url: &str) -> Result<PostgresMeta, Error> {
            let pool = crate::sql::connect_postgres(url, 20).await?;
            crate::sql::migrate_postgres(&pool, DOMAIN, MIGRATIONS).await?;
            Ok(PostgresMeta { pool })
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

    meta_store!(
        PostgresMeta,
        sqlx::postgres::PgRow,
        sqlx::Postgres,
        "postgres"
    );
}

/// Opens the metadata store `url` names (SQL schemas are migrated).
pub async fn open(url: &crate::config::StoreUrl) -> Result<Arc<dyn MetaStore>, Error> {
    use crate::config::StoreUrl;
    Ok(match url {
        StoreUrl::Memory => Arc::new(MemoryMeta::new()),
        StoreUrl::Sqlite(path) => Arc::new(SqliteMeta::open(path).await?),
        StoreUrl::Postgres(url) => Arc::new(PostgresMeta::connect(url.expose()).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bounds_follow_byte_order() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a"), Some("b".into()));
        assert_eq!(prefix_upper_bound("a%"), Some("a&".into()));
        assert_eq!(prefix_upper_bound("a_"), Some("a`".into()));
        assert_eq!(prefix_upper_bound("日本"), Some("日\u{672D}".into()));
        assert_eq!(prefix_upper_bound("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        // Every key under a prefix sorts below its bound, bytewise.
        for prefix in ["a", "é", "a\u{7F}", "x\u{FFFF}"] {
            let upper = prefix_upper_bound(prefix).unwrap();
            for tail in ["", "\u{10FFFF}\u{10FFFF}", "zzz"] {
                let key = format!("{prefix}{tail}");
                assert!(key.as_bytes() < upper.as_bytes(), "{key:?} < {upper:?}");
            }
            assert!(prefix.as_bytes() < upper.as_bytes());
        }
    }
}

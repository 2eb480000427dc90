//! Identity stores on SQL: [`SqliteStore`] (the all-in-one) and
//! [`PostgresStore`] (compose). One schema and one set of queries serve both
//! dialects; a macro instantiates the store for each pool type.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sqlx::Row;

use crate::auth::AuthStore;
use crate::auth::model::{
    Account, ApiKey, Email, EndUser, KeyKind, Rotation, Session, SigningKey, SubjectKind,
};
use crate::error::Error;
use crate::id::ProjectId;
use crate::platform::{Member, Project, ProjectStore, Role};
use crate::sql::{Migration, db, from_db, to_db};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE members (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, account_id)
);
CREATE INDEX members_by_account ON members (account_id);
CREATE TABLE end_users (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, email)
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_by_subject ON sessions (kind, subject);
CREATE TABLE refresh_tokens (
    hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    spent_at BIGINT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_project ON api_keys (project_id);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_pkcs8 TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
",
    },
    Migration {
        version: 2,
        sql: "
CREATE TABLE deleted_projects (
    id TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);
CREATE INDEX deleted_projects_by_time ON deleted_projects (deleted_at, id);
",
    },
];

/// The migration domain name in `bunbase_migrations`.
pub const DOMAIN: &str = "identity";

fn project_id(raw: String) -> Result<ProjectId, Error> {
    ProjectId::new(raw).map_err(|e| Error::internal(format!("stored project id is invalid: {e}")))
}

fn email(raw: String) -> Result<Email, Error> {
    Email::parse(&raw).map_err(|e| Error::internal(format!("stored email is invalid: {e}")))
}

fn role(raw: &str) -> Result<Role, Error> {
    raw.parse()
        .map_err(|e| Error::internal(format!("stored role is invalid: {e}")))
}

fn b64(raw: &str) -> Result<Vec<u8>, Error> {
    STANDARD
        .decode(raw)
        .map_err(|e| Error::internal(format!("stored key is corrupt: {e}")))
}

macro_rules! row_fns {
    ($row:ty) => {
        fn account_from(r: &$row) -> Result<Account, Error> {
            Ok(Account {
                id: r.try_get("id").map_err(db)?,
                email: email(r.try_get("email").map_err(db)?)?,
                password_hash: r.try_get("password_hash").map_err(db)?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
            })
        }

        fn user_from(r: &$row) -> Result<EndUser, Error> {
            Ok(EndUser {
                id: r.try_get("id").map_err(db)?,
                project: project_id(r.try_get("project_id").map_err(db)?)?,
                email: email(r.try_get("email").map_err(db)?)?,
                password_hash: r.try_get("password_hash").map_err(db)?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
            })
        }

        fn session_from(r: &$row) -> Result<Session, Error> {
            let kind: String = r.try_get("kind").map_err(db)?;
            let project: Option<String> = r.try_get("project_id").map_err(db)?;
            let revoked: Option<i64> = r.try_get("revoked_at").map_err(db)?;
            Ok(Session {
                id: r.try_get("id").map_err(db)?,
                kind: SubjectKind::parse(&kind)?,
                subject: r.try_get("subject").map_err(db)?,
                project: project.map(project_id).transpose()?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                expires_at: from_db(r.try_get("expires_at").map_err(db)?),
                revoked_at: revoked.map(from_db),
            })
        }

        fn key_from(r: &$row) -> Result<ApiKey, Error> {
            let kind: String = r.try_get("kind").map_err(db)?;
            let last: Option<i64> = r.try_get("last_used_at").map_err(db)?;
            let revoked: Option<i64> = r.try_get("revoked_at").map_err(db)?;
            Ok(ApiKey {
                id: r.try_get("id").map_err(db)?,
                project: project_id(r.try_get("project_id").map_err(db)?)?,
                name: r.try_get("name").map_err(db)?,
                kind: KeyKind::parse(&kind).map_err(|e| Error::internal(e.to_string()))?,
                hash: r.try_get("hash").map_err(db)?,
                hint: r.try_get("hint").map_err(db)?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
                last_used_at: last.map(from_db),
                revoked_at: revoked.map(from_db),
            })
        }

        fn project_from(r: &$row) -> Result<Project, Error> {
            Ok(Project {
                id: project_id(r.try_get("id").map_err(db)?)?,
                name: r.try_get("name").map_err(db)?,
                created_at: from_db(r.try_get("created_at").map_err(db)?),
            })
        }

        fn member_from(r: &$row) -> Result<Member, Error> {
            let role_name: String = r.try_get("role").map_err(db)?;
            Ok(Member {
                project: project_id(r.try_get("project_id").map_err(db)?)?,
                account_id: r.try_get("account_id").map_err(db)?,
                email: r.try_get("email").map_err(db)?,
                role: role(&role_name)?,
                added_at: from_db(r.try_get("added_at").map_err(db)?),
            })
        }
    };
}

// Column lists as macros: queries must be literal strings (`concat!`).
macro_rules! session_columns {
    () => {
        "id, kind, subject, project_id, created_at, expires_at, revoked_at"
    };
}
macro_rules! key_columns {
    () => {
        "id, project_id, name, kind, hash, hint, created_at, last_used_at, revoked_at"
    };
}

macro_rules! identity_store {
    ($store:ident, $pool:ty, $row:ty) => {
        row_fns!($row);

        #[async_trait]
        impl AuthStore for $store {
            async fn check(&self) -> Result<(), Error> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db)?;
                Ok(())
            }

            async fn create_account(&self, a: &Account) -> Result<(), Error> {
                sqlx::query("INSERT INTO accounts (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&a.id)
                    .bind(a.email.as_str())
                    .bind(&a.password_hash)
                    .bind(to_db(a.created_at))
                    .execute(self.writer())
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn account(&self, id: &str) -> Result<Option<Account>, Error> {
                let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(account_from).transpose()
            }

            async fn account_by_email(&self, email: &Email) -> Result<Option<Account>, Error> {
                let row = sqlx::query("SELECT * FROM accounts WHERE email = $1")
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(account_from).transpose()
            }

            async fn first_account(&self) -> Result<Option<String>, Error> {
                let row = sqlx::query("SELECT id FROM accounts ORDER BY created_at, id LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.map(|r| r.try_get::<String, _>("id").map_err(db)).transpose()
            }

            async fn set_account_password(&self, id: &str, hash: &str) -> Result<(), Error> {
                sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
                    .bind(hash)
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn create_user(&self, u: &EndUser) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO end_users (project_id, id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(u.project.as_str())
                .bind(&u.id)
                .bind(u.email.as_str())
                .bind(&u.password_hash)
                .bind(to_db(u.created_at))
                .execute(self.writer())
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn user(&self, project: &ProjectId, id: &str) -> Result<Option<EndUser>, Error> {
                let row = sqlx::query("SELECT * FROM end_users WHERE project_id = $1 AND id = $2")
                    .bind(project.as_str())
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(user_from).transpose()
            }

            async fn user_by_email(&self, project: &ProjectId, email: &Email) -> Result<Option<EndUser>, Error> {
                let row = sqlx::query("SELECT * FROM end_users WHERE project_id = $1 AND email = $2")
                    .bind(project.as_str())
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(user_from).transpose()
            }

            async fn users(&self, project: &ProjectId, after: Option<&str>, limit: usize) -> Result<Vec<EndUser>, Error> {
                let rows = sqlx::query(
                    "SELECT * FROM end_users WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(project.as_str())
                .bind(after.unwrap_or(""))
                .bind(limit.min(10_000) as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter().map(user_from).collect()
            }

            async fn set_user_password(&self, project: &ProjectId, id: &str, hash: &str) -> Result<(), Error> {
                sqlx::query("UPDATE end_users SET password_hash = $1 WHERE project_id = $2 AND id = $3")
                    .bind(hash)
                    .bind(project.as_str())
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn delete_user(&self, project: &ProjectId, id: &str) -> Result<bool, Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                let deleted = sqlx::query("DELETE FROM end_users WHERE project_id = $1 AND id = $2")
                    .bind(project.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                if deleted > 0 {
                    sqlx::query("DELETE FROM sessions WHERE kind = 'end_user' AND project_id = $1 AND subject = $2")
                        .bind(project.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                tx.commit().await.map_err(db)?;
                Ok(deleted > 0)
            }

            async fn create_session(&self, s: &Session, refresh_hash: &str) -> Result<(), Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                sqlx::query(concat!("INSERT INTO sessions (", session_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                .bind(&s.id)
                .bind(s.kind.as_str())
                .bind(&s.subject)
                .bind(s.project.as_ref().map(|p| p.as_str()))
                .bind(to_db(s.created_at))
                .bind(to_db(s.expires_at))
                .bind(s.revoked_at.map(to_db))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query("INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)")
                    .bind(refresh_hash)
                    .bind(&s.id)
                    .bind(to_db(s.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(())
            }

            async fn session(&self, id: &str) -> Result<Option<Session>, Error> {
                let row = sqlx::query(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(session_from).transpose()
            }

            async fn session_by_refresh(&self, hash: &str) -> Result<Option<Session>, Error> {
                let row = sqlx::query(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = $1)"))
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
                row.as_ref().map(session_from).transpose()
            }

            async fn rotate_refresh(&self, old_hash: &str, new_hash: &str, now: u64) -> Result<Rotation, Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                // Write first: the row lock (Postgres) or the write lock
                // (SQLite) makes concurrent spends of one token take turns.
                let spent = sqlx::query(
                    "UPDATE refresh_tokens SET spent_at = $1 WHERE hash = $2 AND spent_at IS NULL
                     AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > $1)",
                )
                .bind(to_db(now))
                .bind(old_hash)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
                let token = sqlx::query("SELECT session_id, spent_at FROM refresh_tokens WHERE hash = $1")
                    .bind(old_hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                let Some(token) = token else {
                    tx.commit().await.map_err(db)?;
                    return Ok(Rotation::Unknown);
                };
                let session_id: String = token.try_get("session_id").map_err(db)?;
                if spent == 1 {
                    sqlx::query("INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ($1, $2, $3)")
                        .bind(new_hash)
                        .bind(&session_id)
                        .bind(to_db(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    let row = sqlx::query(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1"))
                        .bind(&session_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                    let session = session_from(&row)?;
                    tx.commit().await.map_err(db)?;
                    return Ok(Rotation::Rotated(session));
                }
                let was_spent: Option<i64> = token.try_get("spent_at").map_err(db)?;
                if was_spent.is_some() {
                    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                        .bind(to_db(now))
                        .bind(&session_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    tx.commit().await.map_err(db)?;
                    return Ok(Rotation::Reused { session_id });
                }
                // Not spent but not rotated: its session has ended.
                tx.commit().await.map_err(db)?;
                Ok(Rotation::Unknown)
            }

            async fn revoke_session(&self, id: &str, now: u64) -> Result<bool, Error> {
                let n = sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(to_db(now))
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn revoke_sessions(&self, kind: SubjectKind, subject: &str, now: u64) -> Result<u64, Error> {
                let n = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE kind = $2 AND subject = $3 AND revoked_at IS NULL",
                )
                .bind(to_db(now))
                .bind(kind.as_str())
                .bind(subject)
                .execute(self.writer())
                .await
                .map_err(db)?
                .rows_affected();
                Ok(n)
            }

            async fn create_key(&self, k: &ApiKey) -> Result<(), Error> {
                sqlx::query(concat!("INSERT INTO api_keys (", key_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                .bind(&k.id)
                .bind(k.project.as_str())
                .bind(&k.name)
                .bind(k.kind.as_str())
                .bind(&k.hash)
                .bind(&k.hint)
                .bind(to_db(k.created_at))
                .bind(k.last_used_at.map(to_db))
                .bind(k.revoked_at.map(to_db))
                .execute(self.writer())
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, Error> {
                let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE hash = $1"))
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(key_from).transpose()
            }

            async fn keys(&self, project: &ProjectId) -> Result<Vec<ApiKey>, Error> {
                let rows = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE project_id = $1 ORDER BY created_at, id"))
                .bind(project.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter().map(key_from).collect()
            }

            async fn revoke_key(&self, project: &ProjectId, id: &str, now: u64) -> Result<bool, Error> {
                let n = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $1 WHERE project_id = $2 AND id = $3 AND revoked_at IS NULL",
                )
                .bind(to_db(now))
                .bind(project.as_str())
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(db)?
                .rows_affected();
                Ok(n > 0)
            }

            async fn touch_key(&self, id: &str, now: u64) -> Result<(), Error> {
                sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(to_db(now))
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKey>, Error> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        let private: String = r.try_get("private_pkcs8").map_err(db)?;
                        let public: String = r.try_get("public_key").map_err(db)?;
                        Ok(SigningKey {
                            kid: r.try_get("kid").map_err(db)?,
                            private_pkcs8: b64(&private)?,
                            public_key: b64(&public)?,
                            created_at: from_db(r.try_get("created_at").map_err(db)?),
                        })
                    })
                    .collect()
            }

            async fn add_signing_key(&self, k: &SigningKey) -> Result<(), Error> {
                sqlx::query("INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&k.kid)
                    .bind(STANDARD.encode(&k.private_pkcs8))
                    .bind(STANDARD.encode(&k.public_key))
                    .bind(to_db(k.created_at))
                    .execute(self.writer())
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn remove_signing_key(&self, kid: &str) -> Result<bool, Error> {
                let n = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                    .bind(kid)
                    .execute(self.writer())
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(n > 0)
            }
        }

        #[async_trait]
        impl ProjectStore for $store {
            async fn create_project(&self, p: &Project, owner: &Member) -> Result<(), Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(p.id.as_str())
                    .bind(&p.name)
                    .bind(to_db(p.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                sqlx::query(
                    "INSERT INTO members (project_id, account_id, email, role, added_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(owner.project.as_str())
                .bind(&owner.account_id)
                .bind(&owner.email)
                .bind(owner.role.as_str())
                .bind(to_db(owner.added_at))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(())
            }

            async fn project(&self, id: &ProjectId) -> Result<Option<Project>, Error> {
                let row = sqlx::query("SELECT * FROM projects WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(project_from).transpose()
            }

            async fn projects_of(&self, account_id: &str) -> Result<Vec<(Project, Role)>, Error> {
                let rows = sqlx::query(
                    "SELECT p.id, p.name, p.created_at, m.role FROM projects p
                     JOIN members m ON m.project_id = p.id
                     WHERE m.account_id = $1 ORDER BY p.created_at, p.id",
                )
                .bind(account_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        let role_name: String = r.try_get("role").map_err(db)?;
                        Ok((project_from(r)?, role(&role_name)?))
                    })
                    .collect()
            }

            async fn rename_project(&self, id: &ProjectId, name: &str) -> Result<bool, Error> {
                let n = sqlx::query("UPDATE projects SET name = $1 WHERE id = $2")
                    .bind(name)
                    .bind(id.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn delete_project(&self, id: &ProjectId, deleted_at: u64) -> Result<bool, Error> {
                let mut tx = self.writer().begin().await.map_err(db)?;
                // Foreign keys cascade to members, keys, end users, sessions
                // (and their refresh tokens).
                let n = sqlx::query("DELETE FROM projects WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
                if n > 0 {
                    sqlx::query("INSERT INTO deleted_projects (id, deleted_at) VALUES ($1, $2)")
                        .bind(id.as_str())
                        .bind(to_db(deleted_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
                tx.commit().await.map_err(db)?;
                Ok(n > 0)
            }

            async fn deleted_projects(
                &self,
                since: u64,
                limit: usize,
            ) -> Result<Vec<(ProjectId, u64)>, Error> {
                let rows = sqlx::query(
                    "SELECT id, deleted_at FROM deleted_projects WHERE deleted_at >= $1
                     ORDER BY deleted_at, id LIMIT $2",
                )
                .bind(to_db(since))
                .bind(limit.min(10_000) as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            project_id(r.try_get("id").map_err(db)?)?,
                            from_db(r.try_get("deleted_at").map_err(db)?),
                        ))
                    })
                    .collect()
            }

            async fn put_member(&self, m: &Member) -> Result<(), Error> {
                sqlx::query(
                    "INSERT INTO members (project_id, account_id, email, role, added_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (project_id, account_id) DO UPDATE SET role = excluded.role, email = excluded.email",
                )
                .bind(m.project.as_str())
                .bind(&m.account_id)
                .bind(&m.email)
                .bind(m.role.as_str())
                .bind(to_db(m.added_at))
                .execute(self.writer())
                .await
                .map_err(|e| match db(e) {
                    Error::NotFound(_) => Error::not_found(format!("project {}", m.project)),
                    other => other,
                })?;
                Ok(())
            }

            async fn member(&self, project: &ProjectId, account_id: &str) -> Result<Option<Member>, Error> {
                let row = sqlx::query("SELECT * FROM members WHERE project_id = $1 AND account_id = $2")
                    .bind(project.as_str())
                    .bind(account_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.as_ref().map(member_from).transpose()
            }

            async fn members(&self, project: &ProjectId) -> Result<Vec<Member>, Error> {
                let rows = sqlx::query("SELECT * FROM members WHERE project_id = $1 ORDER BY added_at, account_id")
                    .bind(project.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                rows.iter().map(member_from).collect()
            }

            async fn remove_member(&self, project: &ProjectId, account_id: &str) -> Result<bool, Error> {
                let n = sqlx::query("DELETE FROM members WHERE project_id = $1 AND account_id = $2")
                    .bind(project.as_str())
                    .bind(account_id)
                    .execute(self.writer())
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(n > 0)
            }
        }
    };
}

pub mod sqlite {
    //! SQLite: the all-in-one's identity store (a file in the data directory).
    use super::*;

    /// Reads use a pool of connections; writes go through one connection,
    /// so concurrent writers queue in the pool instead of spinning on
    /// SQLite's file lock.
    pub struct SqliteStore {
        pool: sqlx::SqlitePool,
        writer: sqlx::SqlitePool,
    }

    impl SqliteStore {
        /// Opens (creating) the database file and migrates it.
        pub async fn open(path: &std::path::Path) -> Result<SqliteStore, Error> {
            let (pool, writer) = crate::sql::open_sqlite(path, DOMAIN, MIGRATIONS).await?;
            Ok(SqliteStore { pool, writer })
        }

        fn writer(&self) -> &sqlx::SqlitePool {
            &self.writer
        }
    }

    identity_store!(SqliteStore, sqlx::SqlitePool, sqlx::sqlite::SqliteRow);
}

pub mod postgres {
    //! Postgres: the identity store beyond one machine.
    use super::*;

    pub struct PostgresStore {
        pool: sqlx::PgPool,
    }

    impl PostgresStore {
        /// Connects and migrates (several instances may start at once).
        pub async fn connect(url: &str) -> Result<PostgresStore, Error> {
            Self::with_pool(crate::sql::connect_postgres(url, 20).await?).await
        }

        pub async fn with_pool(pool: sqlx::PgPool) -> Result<PostgresStore, Error> {
            crate::sql::migrate_postgres(&pool, DOMAIN, MIGRATIONS).await?;
            Ok(PostgresStore { pool })
        }

        fn writer(&self) -> &sqlx::PgPool {
            &self.pool
        }
    }

    identity_store!(PostgresStore, sqlx::PgPool, sqlx::postgres::PgRow);
}

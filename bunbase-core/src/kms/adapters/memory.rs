//! Keys, secrets and audit chains in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::Error;
use crate::id::ProjectId;
use crate::kms::audit::{self, AuditEntry, AuditRecord};
use crate::kms::model::{AuditQuery, Key, KeyState, SecretInfo, SecretVersion};
use crate::kms::store::KmsStore;

type Name = (ProjectId, String);

#[derive(Default)]
struct State {
    master_key_id: Option<String>,
    keys: HashMap<Name, Key>,
    secrets: HashMap<Name, Vec<SecretVersion>>,
    audit: HashMap<ProjectId, Vec<AuditRecord>>,
}

#[derive(Default)]
pub struct MemoryKms {
    state: Mutex<State>,
}

impl MemoryKms {
    pub fn new() -> MemoryKms {
        MemoryKms::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn name(project: &ProjectId, name: &str) -> Name {
    (project.clone(), name.to_string())
}

/// Whether a key has a deletion or a rotation due by `now`.
pub fn due(key: &Key, now: u64) -> bool {
    match key.state {
        KeyState::PendingDeletion => key.deletion_at.is_some_and(|at| at <= now),
        KeyState::Enabled => key
            .rotation_period
            .is_some_and(|secs| key.last_rotated_at.saturating_add(secs * 1000) <= now),
        KeyState::Disabled => false,
    }
}

#[async_trait]
impl KmsStore for MemoryKms {
    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn master_key_id(&self) -> Result<Option<String>, Error> {
        Ok(self.state().master_key_id.clone())
    }

    async fn set_master_key_id(&self, id: &str) -> Result<(), Error> {
        self.state().master_key_id = Some(id.to_string());
        Ok(())
    }

    async fn create_key(&self, key: &Key) -> Result<(), Error> {
        let mut state = self.state();
        let slot = name(&key.project, &key.name);
        if state.keys.contains_key(&slot) {
            return Err(Error::AlreadyExists(format!(
                "key {} already exists",
                key.name
            )));
        }
        state.keys.insert(slot, key.clone());
        Ok(())
    }

    async fn key(&self, project: &ProjectId, key: &str) -> Result<Option<Key>, Error> {
        Ok(self.state().keys.get(&name(project, key)).cloned())
    }

    async fn keys(&self, project: &ProjectId) -> Result<Vec<Key>, Error> {
        let mut keys: Vec<Key> = self
            .state()
            .keys
            .values()
            .filter(|k| &k.project == project)
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    async fn update_key(&self, key: &Key) -> Result<(), Error> {
        let mut state = self.state();
        match state.keys.get_mut(&name(&key.project, &key.name)) {
            None => Err(Error::not_found(format!("key {}", key.name))),
            Some(stored) if stored.revision + 1 != key.revision => Err(Error::Conflict(format!(
                "key {} was changed meanwhile; try again",
                key.name
            ))),
            Some(stored) => {
                *stored = key.clone();
                Ok(())
            }
        }
    }

    async fn delete_key(
        &self,
        project: &ProjectId,
        key: &str,
        revision: u64,
    ) -> Result<bool, Error> {
        let mut state = self.state();
        let slot = name(project, key);
        if state
            .keys
            .get(&slot)
            .is_some_and(|k| k.revision == revision)
        {
            state.keys.remove(&slot);
            return Ok(true);
        }
        Ok(false)
    }

    async fn keys_due(&self, now: u64) -> Result<Vec<Key>, Error> {
        Ok(self
            .state()
            .keys
            .values()
            .filter(|k| due(k, now))
            .cloned()
            .collect())
    }

    async fn put_secret(
        &self,
        project: &ProjectId,
        secret: &str,
        version: u32,
        wrapped: Vec<u8>,
        at: u64,
    ) -> Result<(), Error> {
        let mut state = self.state();
        let versions = state.secrets.entry(name(project, secret)).or_default();
        let next = versions.last().map_or(1, |v| v.version + 1);
        if version != next {
            return Err(Error::Conflict(format!(
                "secret {secret} got version {} meanwhile; try again",
                next - 1
            )));
        }
        versions.push(SecretVersion {
            version,
            created_at: at,
            wrapped,
        });
        Ok(())
    }

    async fn secret(
        &self,
        project: &ProjectId,
        secret: &str,
        version: Option<u32>,
    ) -> Result<Option<SecretVersion>, Error> {
        let state = self.state();
        let Some(versions) = state.secrets.get(&name(project, secret)) else {
            return Ok(None);
        };
        Ok(match version {
            None => versions.last().cloned(),
            Some(v) => versions.iter().find(|s| s.version == v).cloned(),
        })
    }

    async fn secrets(&self, project: &ProjectId) -> Result<Vec<SecretInfo>, Error> {
        let mut out: Vec<SecretInfo> = self
            .state()
            .secrets
            .iter()
            .filter(|((p, _), v)| p == project && !v.is_empty())
            .map(|((_, n), versions)| SecretInfo {
                name: n.clone(),
                latest_version: versions.last().map_or(0, |v| v.version),
                created_at: versions.first().map_or(0, |v| v.created_at),
                updated_at: versions.last().map_or(0, |v| v.created_at),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn delete_secret(&self, project: &ProjectId, secret: &str) -> Result<bool, Error> {
        Ok(self
            .state()
            .secrets
            .remove(&name(project, secret))
            .is_some())
    }

    async fn all_keys(&self) -> Result<Vec<Key>, Error> {
        Ok(self.state().keys.values().cloned().collect())
    }

    async fn all_secrets(&self) -> Result<Vec<(ProjectId, String, SecretVersion)>, Error> {
        Ok(self
            .state()
            .secrets
            .iter()
            .flat_map(|((p, n), versions)| {
                versions.iter().map(|v| (p.clone(), n.clone(), v.clone()))
            })
            .collect())
    }

    async fn rewrap_key_version(
        &self,
        project: &ProjectId,
        key: &str,
        version: u32,
        wrapped: Vec<u8>,
    ) -> Result<(), Error> {
        let mut state = self.state();
        let stored = state
            .keys
            .get_mut(&name(project, key))
            .and_then(|k| k.versions.iter_mut().find(|v| v.version == version))
            .ok_or_else(|| Error::not_found(format!("key {key} version {version}")))?;
        stored.wrapped = wrapped;
        Ok(())
    }

    async fn rewrap_secret_version(
        &self,
        project: &ProjectId,
        secret: &str,
        version: u32,
        wrapped: Vec<u8>,
    ) -> Result<(), Error> {
        let mut state = self.state();
        let stored = state
            .secrets
            .get_mut(&name(project, secret))
            .and_then(|v| v.iter_mut().find(|s| s.version == version))
            .ok_or_else(|| Error::not_found(format!("secret {secret} version {version}")))?;
        stored.wrapped = wrapped;
        Ok(())
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, Error> {
        let project = ProjectId::new(entry.project.clone())?;
        let mut state = self.state();
        let chain = state.audit.entry(project).or_default();
        let record = audit::chain(chain.last(), entry);
        chain.push(record.clone());
        Ok(record)
    }

    async fn audit(
        &self,
        project: &ProjectId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, Error> {
        let state = self.state();
        let Some(chain) = state.audit.get(project) else {
            return Ok(Vec::new());
        };
        Ok(chain
            .iter()
            .filter(|r| query.after.is_none_or(|after| r.seq > after))
            .filter(|r| query.from.is_none_or(|from| r.entry.at >= from))
            .filter(|r| query.to.is_none_or(|to| r.entry.at < to))
            .filter(|r| {
                query
                    .key
                    .as_ref()
                    .is_none_or(|k| r.entry.key.as_deref() == Some(k))
            })
            .take(query.limit.max(1))
            .cloned()
            .collect())
    }
}

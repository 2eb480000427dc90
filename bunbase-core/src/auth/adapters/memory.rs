//! In-process identity store (tests, embedding). One lock: simple and
//! consistent; not for large user bases.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::auth::AuthStore;
use crate::auth::model::{
    Account, ApiKey, Email, EndUser, Rotation, Session, SigningKey, SubjectKind,
};
use crate::error::Error;
use crate::id::ProjectId;
use crate::platform::{Member, Project, ProjectStore, Role};

#[derive(Default)]
struct Refresh {
    session_id: String,
    spent: bool,
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, Account>,
    users: HashMap<(ProjectId, String), EndUser>,
    sessions: HashMap<String, Session>,
    refresh: HashMap<String, Refresh>,
    keys: HashMap<String, ApiKey>,
    signing: Vec<SigningKey>,
    projects: HashMap<ProjectId, Project>,
    members: HashMap<(ProjectId, String), Member>,
    deleted: Vec<(ProjectId, u64)>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn revoke_where(state: &mut State, now: u64, matches: impl Fn(&Session) -> bool) -> u64 {
    let mut n = 0;
    for session in state.sessions.values_mut() {
        if session.revoked_at.is_none() && matches(session) {
            session.revoked_at = Some(now);
            n += 1;
        }
    }
    n
}

#[async_trait]
impl AuthStore for MemoryStore {
    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn create_account(&self, account: &Account) -> Result<(), Error> {
        let mut s = self.state();
        if s.accounts.values().any(|a| a.email == account.email) {
            return Err(Error::AlreadyExists("email already registered".into()));
        }
        s.accounts.insert(account.id.clone(), account.clone());
        Ok(())
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, Error> {
        Ok(self.state().accounts.get(id).cloned())
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>, Error> {
        Ok(self
            .state()
            .accounts
            .values()
            .find(|a| &a.email == email)
            .cloned())
    }

    async fn first_account(&self) -> Result<Option<String>, Error> {
        Ok(self
            .state()
            .accounts
            .values()
            .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            .map(|a| a.id.clone()))
    }

    async fn set_account_password(&self, id: &str, password_hash: &str) -> Result<(), Error> {
        if let Some(a) = self.state().accounts.get_mut(id) {
            a.password_hash = password_hash.to_string();
        }
        Ok(())
    }

    async fn create_user(&self, user: &EndUser) -> Result<(), Error> {
        let mut s = self.state();
        if s.users
            .values()
            .any(|u| u.project == user.project && u.email == user.email)
        {
            return Err(Error::AlreadyExists("email already registered".into()));
        }
        s.users
            .insert((user.project.clone(), user.id.clone()), user.clone());
        Ok(())
    }

    async fn user(&self, project: &ProjectId, id: &str) -> Result<Option<EndUser>, Error> {
        Ok(self
            .state()
            .users
            .get(&(project.clone(), id.to_string()))
            .cloned())
    }

    async fn user_by_email(
        &self,
        project: &ProjectId,
        email: &Email,
    ) -> Result<Option<EndUser>, Error> {
        Ok(self
            .state()
            .users
            .values()
            .find(|u| &u.project == project && &u.email == email)
            .cloned())
    }

    async fn users(
        &self,
        project: &ProjectId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EndUser>, Error> {
        let s = self.state();
        let mut users: Vec<EndUser> = s
            .users
            .values()
            .filter(|u| &u.project == project && after.is_none_or(|a| u.id.as_str() > a))
            .cloned()
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.truncate(limit);
        Ok(users)
    }

    async fn set_user_password(
        &self,
        project: &ProjectId,
        id: &str,
        password_hash: &str,
    ) -> Result<(), Error> {
        if let Some(u) = self
            .state()
            .users
            .get_mut(&(project.clone(), id.to_string()))
        {
            u.password_hash = password_hash.to_string();
        }
        Ok(())
    }

    async fn delete_user(&self, project: &ProjectId, id: &str) -> Result<bool, Error> {
        let mut s = self.state();
        let removed = s.users.remove(&(project.clone(), id.to_string())).is_some();
        if removed {
            s.sessions
                .retain(|_, ses| !(ses.kind == SubjectKind::EndUser && ses.subject == id));
        }
        Ok(removed)
    }

    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<(), Error> {
        let mut s = self.state();
        s.sessions.insert(session.id.clone(), session.clone());
        s.refresh.insert(
            refresh_hash.to_string(),
            Refresh {
                session_id: session.id.clone(),
                spent: false,
            },
        );
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, Error> {
        Ok(self.state().sessions.get(id).cloned())
    }

    async fn session_by_refresh(&self, hash: &str) -> Result<Option<Session>, Error> {
        let s = self.state();
        Ok(s.refresh
            .get(hash)
            .and_then(|r| s.sessions.get(&r.session_id))
            .cloned())
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: u64,
    ) -> Result<Rotation, Error> {
        let mut s = self.state();
        let Some(token) = s.refresh.get(old_hash) else {
            return Ok(Rotation::Unknown);
        };
        let session_id = token.session_id.clone();
        if token.spent {
            if let Some(session) = s.sessions.get_mut(&session_id)
                && session.revoked_at.is_none()
            {
                session.revoked_at = Some(now);
            }
            return Ok(Rotation::Reused { session_id });
        }
        let Some(session) = s
            .sessions
            .get(&session_id)
            .filter(|ses| ses.is_active(now))
            .cloned()
        else {
            return Ok(Rotation::Unknown);
        };
        if let Some(token) = s.refresh.get_mut(old_hash) {
            token.spent = true;
        }
        s.refresh.insert(
            new_hash.to_string(),
            Refresh {
                session_id,
                spent: false,
            },
        );
        Ok(Rotation::Rotated(session))
    }

    async fn revoke_session(&self, id: &str, now: u64) -> Result<bool, Error> {
        Ok(revoke_where(&mut self.state(), now, |s| s.id == id) > 0)
    }

    async fn revoke_sessions(
        &self,
        kind: SubjectKind,
        subject: &str,
        now: u64,
    ) -> Result<u64, Error> {
        Ok(revoke_where(&mut self.state(), now, |s| {
            s.kind == kind && s.subject == subject
        }))
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), Error> {
        self.state().keys.insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, Error> {
        Ok(self.state().keys.values().find(|k| k.hash == hash).cloned())
    }

    async fn keys(&self, project: &ProjectId) -> Result<Vec<ApiKey>, Error> {
        let mut keys: Vec<ApiKey> = self
            .state()
            .keys
            .values()
            .filter(|k| &k.project == project)
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    async fn revoke_key(&self, project: &ProjectId, id: &str, now: u64) -> Result<bool, Error> {
        let mut s = self.state();
        match s.keys.get_mut(id) {
            Some(k) if &k.project == project && k.revoked_at.is_none() => {
                k.revoked_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_key(&self, id: &str, now: u64) -> Result<(), Error> {
        if let Some(k) = self.state().keys.get_mut(id) {
            k.last_used_at = Some(now);
        }
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKey>, Error> {
        let mut keys = self.state().signing.clone();
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(keys)
    }

    async fn add_signing_key(&self, key: &SigningKey) -> Result<(), Error> {
        self.state().signing.push(key.clone());
        Ok(())
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<bool, Error> {
        let mut s = self.state();
        let before = s.signing.len();
        s.signing.retain(|k| k.kid != kid);
        Ok(s.signing.len() < before)
    }
}

#[async_trait]
impl ProjectStore for MemoryStore {
    async fn create_project(&self, project: &Project, owner: &Member) -> Result<(), Error> {
        let mut s = self.state();
        if s.projects.contains_key(&project.id) {
            return Err(Error::AlreadyExists(format!(
                "project {} exists",
                project.id
            )));
        }
        s.projects.insert(project.id.clone(), project.clone());
        s.members.insert(
            (project.id.clone(), owner.account_id.clone()),
            owner.clone(),
        );
        Ok(())
    }

    async fn project(&self, id: &ProjectId) -> Result<Option<Project>, Error> {
        Ok(self.state().projects.get(id).cloned())
    }

    async fn projects_of(&self, account_id: &str) -> Result<Vec<(Project, Role)>, Error> {
        let s = self.state();
        let mut out: Vec<(Project, Role)> = s
            .members
            .values()
            .filter(|m| m.account_id == account_id)
            .filter_map(|m| s.projects.get(&m.project).map(|p| (p.clone(), m.role)))
            .collect();
        out.sort_by(|a, b| {
            a.0.created_at
                .cmp(&b.0.created_at)
                .then(a.0.id.cmp(&b.0.id))
        });
        Ok(out)
    }

    async fn rename_project(&self, id: &ProjectId, name: &str) -> Result<bool, Error> {
        Ok(match self.state().projects.get_mut(id) {
            Some(p) => {
                p.name = name.to_string();
                true
            }
            None => false,
        })
    }

    async fn delete_project(&self, id: &ProjectId, deleted_at: u64) -> Result<bool, Error> {
        let mut s = self.state();
        if s.projects.remove(id).is_none() {
            return Ok(false);
        }
        s.deleted.push((id.clone(), deleted_at));
        s.members.retain(|(p, _), _| p != id);
        s.keys.retain(|_, k| &k.project != id);
        s.users.retain(|(p, _), _| p != id);
        s.sessions.retain(|_, ses| ses.project.as_ref() != Some(id));
        Ok(true)
    }

    async fn deleted_projects(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(ProjectId, u64)>, Error> {
        let mut found: Vec<(ProjectId, u64)> = self
            .state()
            .deleted
            .iter()
            .filter(|(_, at)| *at >= since)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        found.truncate(limit);
        Ok(found)
    }

    async fn put_member(&self, member: &Member) -> Result<(), Error> {
        let mut s = self.state();
        if !s.projects.contains_key(&member.project) {
            return Err(Error::not_found(format!("project {}", member.project)));
        }
        s.members.insert(
            (member.project.clone(), member.account_id.clone()),
            member.clone(),
        );
        Ok(())
    }

    async fn member(&self, project: &ProjectId, account_id: &str) -> Result<Option<Member>, Error> {
        Ok(self
            .state()
            .members
            .get(&(project.clone(), account_id.to_string()))
            .cloned())
    }

    async fn members(&self, project: &ProjectId) -> Result<Vec<Member>, Error> {
        let mut out: Vec<Member> = self
            .state()
            .members
            .values()
            .filter(|m| &m.project == project)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            a.added_at
                .cmp(&b.added_at)
                .then(a.account_id.cmp(&b.account_id))
        });
        Ok(out)
    }

    async fn remove_member(&self, project: &ProjectId, account_id: &str) -> Result<bool, Error> {
        Ok(self
            .state()
            .members
            .remove(&(project.clone(), account_id.to_string()))
            .is_some())
    }
}

//! The identity service: accounts and end users, sessions, projects and
//! members, API keys, and resolving any credential to a [`Principal`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::jwt::{self, Claims, KeyRing};
use super::metrics::AuthMetrics;
use super::model::{Account, ApiKey, Email, EndUser, KeyKind, Rotation, Session, SubjectKind};
use super::password::{Passwords, Verified};
use super::ratelimit::{Rate, RateLimiter};
use super::secrets;
use super::{AuthStore, Principal, PrincipalKind, Rights, TokenVerifier};
use crate::ErrorCode;
use crate::cache::Cache;
use crate::error::Error;
use crate::id::{ProjectId, now_millis, random_hex};
use crate::platform::{Member, Project, ProjectData, ProjectStore, Role, purge_everywhere};

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// `iss` of our tokens: the platform's public URL + `/api`.
    pub issuer: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// A new signing key is made when the newest is this old.
    pub key_rotation: Duration,
    /// Sign-up and sign-in, per IP and per email.
    pub rate: Rate,
    /// Who may make an account, and how many projects one may own.
    pub accounts: AccountPolicy,
}

/// Whether anyone may sign up for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignUp {
    #[default]
    Open,
    /// Only the first account (the instance's administrator) signs up;
    /// the others are refused.
    Closed,
}

/// Limits on accounts, so that one account cannot starve the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountPolicy {
    pub sign_up: SignUp,
    /// Projects an account may own at once; `0` = no limit. The instance
    /// administrator (the first account) has none.
    pub max_projects: u32,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        AccountPolicy {
            sign_up: SignUp::Open,
            max_projects: 10,
        }
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            issuer: "http://127.0.0.1:8080/api".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            key_rotation: Duration::from_secs(7 * 24 * 3600),
            rate: Rate {
                burst: 10,
                per_minute: 30,
            },
            accounts: AccountPolicy::default(),
        }
    }
}

/// Tokens handed out by sign-up, sign-in and refresh (the client reads
/// them back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// A freshly created API key: the only time `secret` is visible.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewKey {
    #[serde(flatten)]
    pub key: ApiKey,
    #[serde(rename = "key")]
    pub secret: String,
}

/// What an admin sees of an end user: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    pub email: String,
    pub created_at: u64,
}

impl UserInfo {
    fn of(user: &EndUser) -> UserInfo {
        UserInfo {
            id: user.id.clone(),
            email: user.email.to_string(),
            created_at: user.created_at,
        }
    }
}

/// One page of a project's end users; pass `next` as `after` for the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    pub users: Vec<UserInfo>,
    pub next: Option<String>,
}

/// Who a sign-up/in is for: the platform's accounts, or one project's users.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    Accounts,
    Users(&'a ProjectId),
}

/// Where a request came from (for abuse limits).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
}

/// An authenticated account (from an account access token).
#[derive(Debug, Clone)]
pub struct AccountSession {
    pub account_id: String,
    pub session_id: String,
}

pub struct Identity {
    auth: Arc<dyn AuthStore>,
    projects: Arc<dyn ProjectStore>,
    passwords: Passwords,
    ring: KeyRing,
    config: IdentityConfig,
    limiter: RateLimiter,
    metrics: Arc<AuthMetrics>,
    /// Principal resolutions, shared by every instance (optional).
    cache: Option<Arc<dyn Cache>>,
    /// Serializes key rotation and reloads; holds the last reload time (ms).
    rotation: tokio::sync::Mutex<u64>,
    /// Serializes project creation (for the per-account limit).
    project_creation: tokio::sync::Mutex<()>,
    /// The services' data of each project, removed when one is deleted.
    cascade: std::sync::RwLock<Vec<Arc<dyn ProjectData>>>,
}

const KEY_TOUCH_EVERY_MS: u64 = 60_000;
/// How long a cached principal is reused. Revoking a key clears its entry
/// at once; sign-outs and membership changes take effect within this time.
pub const PRINCIPAL_CACHE_TTL: Duration = Duration::from_secs(10);
const KEY_RELOAD_EVERY_MS: u64 = 1_000;
const MAX_KEY_NAME_CHARS: usize = 100;

impl Identity {
    /// Loads the signing keys (making the first one if there is none).
    pub async fn new(
        auth: Arc<dyn AuthStore>,
        projects: Arc<dyn ProjectStore>,
        passwords: Passwords,
        config: IdentityConfig,
        metrics: Arc<AuthMetrics>,
    ) -> Result<Identity, Error> {
        let mut keys = auth.signing_keys().await?;
        if keys.is_empty() {
            let key = jwt::generate_key(now_millis())?;
            auth.add_signing_key(&key).await?;
            keys = auth.signing_keys().await?;
        }
        let ring = KeyRing::new(&config.issuer, &keys)?;
        Ok(Identity {
            auth,
            projects,
            passwords,
            ring,
            limiter: RateLimiter::new(config.rate),
            config,
            metrics,
            cache: None,
            rotation: tokio::sync::Mutex::new(0),
            project_creation: tokio::sync::Mutex::new(()),
            cascade: std::sync::RwLock::new(Vec::new()),
        })
    }

    /// Caches principal resolutions (for [`PRINCIPAL_CACHE_TTL`]) in `cache`.
    /// A cache that fails is bypassed: resolution gets slower, not wrong.
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Identity {
        self.cache = Some(cache);
        self
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.ring.jwks()
    }

    pub fn issuer(&self) -> &str {
        self.ring.issuer()
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    // ------------------------------------------------------------ sign-up/in

    /// Creates an account or an end user, and signs it in.
    pub async fn sign_up(
        &self,
        audience: Audience<'_>,
        email: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<(String, IssuedTokens), Error> {
        let email = Email::parse(email)?;
        Passwords::check_policy(password)?;
        self.limit(audience, &email, client, "sign_up")?;
        match audience {
            Audience::Users(project) => {
                self.existing_project(project).await?;
            }
            Audience::Accounts => self.sign_up_allowed().await?,
        }
        let id = match audience {
            Audience::Accounts => self.insert_account(email, password).await?,
            Audience::Users(project) => {
                let user = EndUser {
                    id: format!("usr_{}", random_hex(12)),
                    project: project.clone(),
                    email,
                    password_hash: self.hash_password(password).await?,
                    created_at: now_millis(),
                };
                self.auth.create_user(&user).await.map_err(taken)?;
                user.id
            }
        };
        let tokens = self.start_session(audience, &id).await?;
        Ok((id, tokens))
    }

    /// Signs in with email and password. An unknown email takes as long as
    /// a wrong password, and both get the same answer.
    pub async fn sign_in(
        &self,
        audience: Audience<'_>,
        email: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<IssuedTokens, Error> {
        let kind = audience_kind(audience).as_str();
        let email = Email::parse(email)?;
        if let Err(e) = self.limit(audience, &email, client, "sign_in") {
            self.metrics
                .sign_ins
                .with_label_values(&[kind, "rate_limited"])
                .inc();
            return Err(e);
        }
        let found: Option<(String, String)> = match audience {
            Audience::Accounts => self
                .auth
                .account_by_email(&email)
                .await?
                .map(|a| (a.id, a.password_hash)),
            Audience::Users(project) => self
                .auth
                .user_by_email(project, &email)
                .await?
                .map(|u| (u.id, u.password_hash)),
        };
        let password_again = password;
        let password = password.to_string();
        let passwords = self.passwords.clone();
        let stored = found.as_ref().map(|(_, h)| h.clone());
        let verified: Verified = tokio::task::spawn_blocking(move || match stored {
            Some(hash) => passwords.verify(&password, &hash),
            None => passwords.verify_decoy(&password),
        })
        .await
        .map_err(Error::internal)?;
        let failure_key = limit_key(audience, &email);
        let Some((id, _)) = found.filter(|_| verified.matches) else {
            self.limiter.failed(&failure_key);
            self.metrics
                .sign_ins
                .with_label_values(&[kind, "invalid"])
                .inc();
            return Err(Error::Unauthenticated("invalid email or password".into()));
        };
        if verified.needs_rehash {
            // Parameters changed since this hash was made: upgrade it now
            // that we know the password.
            let hash = self.hash_password(password_again).await?;
            match audience {
                Audience::Accounts => self.auth.set_account_password(&id, &hash).await?,
                Audience::Users(project) => {
                    self.auth.set_user_password(project, &id, &hash).await?
                }
            }
        }
        self.limiter.succeeded(&failure_key);
        self.metrics.sign_ins.with_label_values(&[kind, "ok"]).inc();
        self.start_session(audience, &id).await
    }

    /// Closed sign-up lets only the first account in.
    async fn sign_up_allowed(&self) -> Result<(), Error> {
        if self.config.accounts.sign_up == SignUp::Closed
            && self.auth.first_account().await?.is_some()
        {
            return Err(Error::PermissionDenied(
                "sign-up is closed on this instance: ask its administrator".into(),
            ));
        }
        Ok(())
    }

    /// The instance's administrator makes an account for someone (how
    /// people get one when sign-up is closed): the new account's id.
    pub async fn create_account(
        &self,
        who: &AccountSession,
        email: &str,
        password: &str,
    ) -> Result<String, Error> {
        if !self.is_instance_admin(&who.account_id).await? {
            return Err(Error::PermissionDenied(
                "only the instance's administrator (its first account) makes accounts".into(),
            ));
        }
        let email = Email::parse(email)?;
        Passwords::check_policy(password)?;
        self.insert_account(email, password).await
    }

    /// Stores a new account (email and password already checked): its id.
    async fn insert_account(&self, email: Email, password: &str) -> Result<String, Error> {
        let account = Account {
            id: format!("acc_{}", random_hex(12)),
            email,
            password_hash: self.hash_password(password).await?,
            created_at: now_millis(),
        };
        self.auth.create_account(&account).await.map_err(taken)?;
        Ok(account.id)
    }

    /// Whether the account is the instance's administrator (the first one).
    pub async fn is_instance_admin(&self, account_id: &str) -> Result<bool, Error> {
        Ok(self.auth.first_account().await?.as_deref() == Some(account_id))
    }

    fn limit(
        &self,
        audience: Audience<'_>,
        email: &Email,
        client: ClientInfo,
        what: &str,
    ) -> Result<(), Error> {
        let ip_key = client.ip.map(|ip| format!("{what}:ip:{ip}"));
        let email_key = format!("{what}:{}", limit_key(audience, email));
        let failure_key = limit_key(audience, email);
        let mut keys: Vec<&str> = vec![&email_key, &failure_key];
        if let Some(ip) = &ip_key {
            keys.push(ip);
        }
        self.limiter
            .check(&keys)
            .inspect_err(|_| self.metrics.rate_limited.inc())
    }

    async fn hash_password(&self, password: &str) -> Result<String, Error> {
        let passwords = self.passwords.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || passwords.hash(&password))
            .await
            .map_err(Error::internal)?
    }

    async fn start_session(
        &self,
        audience: Audience<'_>,
        subject: &str,
    ) -> Result<IssuedTokens, Error> {
        let now = now_millis();
        let session = Session {
            id: format!("ses_{}", random_hex(12)),
            kind: audience_kind(audience),
            subject: subject.to_string(),
            project: match audience {
                Audience::Accounts => None,
                Audience::Users(p) => Some(p.clone()),
            },
            created_at: now,
            expires_at: now + self.config.refresh_ttl.as_millis() as u64,
            revoked_at: None,
        };
        let refresh = format!("{}{}", secrets::REFRESH_PREFIX, secrets::random_token());
        self.auth
            .create_session(&session, &secrets::hash(&refresh))
            .await?;
        self.issue(&session, refresh).await
    }

    async fn issue(&self, session: &Session, refresh_token: String) -> Result<IssuedTokens, Error> {
        self.rotate_keys_if_due().await?;
        let now = now_millis() / 1000;
        let ttl = self.config.access_ttl.as_secs();
        let claims = Claims {
            iss: self.ring.issuer().to_string(),
            aud: jwt::AUDIENCE.to_string(),
            sub: session.subject.clone(),
            sid: session.id.clone(),
            kind: session.kind,
            prj: session.project.as_ref().map(|p| p.to_string()),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: random_hex(8),
        };
        let access_token = self.ring.sign(&claims)?;
        self.metrics
            .tokens_issued
            .with_label_values(&[session.kind.as_str()])
            .inc();
        Ok(IssuedTokens {
            access_token,
            refresh_token,
            token_type: "Bearer".to_string(),
            expires_in: ttl,
        })
    }

    /// Spends a refresh token for new tokens. Re-using a spent token
    /// revokes its session. `project` scopes end-user refreshes: a token of
    /// another project (or an account's) is refused and nothing changes.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        project: Option<&ProjectId>,
    ) -> Result<IssuedTokens, Error> {
        let invalid = || Error::Unauthenticated("invalid refresh token".into());
        if !refresh_token.starts_with(secrets::REFRESH_PREFIX) || refresh_token.len() > 200 {
            return Err(invalid());
        }
        let old_hash = secrets::hash(refresh_token);
        let session = self
            .auth
            .session_by_refresh(&old_hash)
            .await?
            .ok_or_else(invalid)?;
        if session.project.as_ref() != project {
            return Err(invalid());
        }
        let new_token = format!("{}{}", secrets::REFRESH_PREFIX, secrets::random_token());
        match self
            .auth
            .rotate_refresh(&old_hash, &secrets::hash(&new_token), now_millis())
            .await?
        {
            Rotation::Rotated(session) => self.issue(&session, new_token).await,
            Rotation::Reused { .. } => Err(Error::Unauthenticated(
                "refresh token was already used: the session has been revoked; sign in again"
                    .into(),
            )),
            Rotation::Unknown => Err(invalid()),
        }
    }

    /// Verifies an access token and its session (any subject kind).
    pub async fn access(&self, token: &str) -> Result<Claims, Error> {
        let claims = self.verify_jwt(token).await?;
        let session = self
            .auth
            .session(&claims.sid)
            .await?
            .filter(|s| s.is_active(now_millis()) && s.subject == claims.sub);
        if session.is_none() {
            return Err(Error::Unauthenticated(
                "session ended; sign in again".into(),
            ));
        }
        Ok(claims)
    }

    /// An account's access token (end-user tokens are refused).
    pub async fn account(&self, token: &str) -> Result<AccountSession, Error> {
        let claims = self.access(token).await?;
        if claims.kind != SubjectKind::Account {
            return Err(Error::PermissionDenied(
                "this needs an account token, not an end user's".into(),
            ));
        }
        Ok(AccountSession {
            account_id: claims.sub,
            session_id: claims.sid,
        })
    }

    /// Ends the session of an access token.
    pub async fn sign_out(&self, token: &str) -> Result<(), Error> {
        let claims = self.access(token).await?;
        self.auth.revoke_session(&claims.sid, now_millis()).await?;
        Ok(())
    }

    /// Ends every session of the token's subject.
    pub async fn sign_out_everywhere(&self, token: &str) -> Result<u64, Error> {
        let claims = self.access(token).await?;
        self.auth
            .revoke_sessions(claims.kind, &claims.sub, now_millis())
            .await
    }

    /// Signs out the access token `token` of `project`'s end users (with
    /// `None`, of an account): its session, or with `everywhere` every
    /// session of its subject.
    pub async fn sign_out_token(
        &self,
        token: &str,
        project: Option<&ProjectId>,
        everywhere: bool,
    ) -> Result<(), Error> {
        self.me(token, project).await?;
        if everywhere {
            self.sign_out_everywhere(token).await?;
        } else {
            self.sign_out(token).await?;
        }
        Ok(())
    }

    /// Who an access token belongs to: `{id, email, created_at, kind, project?}`.
    pub async fn me(
        &self,
        token: &str,
        project: Option<&ProjectId>,
    ) -> Result<serde_json::Value, Error> {
        let claims = self.access(token).await?;
        match claims.kind {
            SubjectKind::Account if project.is_none() => {
                let account = self
                    .auth
                    .account(&claims.sub)
                    .await?
                    .ok_or_else(|| Error::not_found("account"))?;
                let admin = self.is_instance_admin(&account.id).await?;
                Ok(serde_json::json!({
                    "kind": "account", "id": account.id, "email": account.email, "created_at": account.created_at,
                    "instance_admin": admin,
                }))
            }
            SubjectKind::EndUser => {
                let own = claims.prj.as_deref().map(ProjectId::new).transpose()?;
                if own.as_ref() != project {
                    return Err(Error::PermissionDenied(
                        "token is for another project".into(),
                    ));
                }
                let project = own.ok_or_else(|| Error::Unauthenticated("invalid token".into()))?;
                let user = self
                    .auth
                    .user(&project, &claims.sub)
                    .await?
                    .ok_or_else(|| Error::not_found("user"))?;
                Ok(serde_json::json!({
                    "kind": "end_user", "id": user.id, "project": user.project, "email": user.email, "created_at": user.created_at,
                }))
            }
            SubjectKind::Account => Err(Error::PermissionDenied(
                "an account token is not an end user's".into(),
            )),
        }
    }

    async fn verify_jwt(&self, token: &str) -> Result<Claims, Error> {
        if token.len() > 4096 {
            return Err(Error::Unauthenticated("malformed token".into()));
        }
        let kid = KeyRing::kid_of(token)?;
        if !self.ring.has_kid(&kid) {
            // Another instance may have rotated: reload once.
            self.reload_keys().await?;
        }
        self.ring.verify(token)
    }

    /// Reloads the ring from the store, at most once a second: tokens with
    /// made-up `kid`s must not turn into a database read each.
    async fn reload_keys(&self) -> Result<(), Error> {
        let mut last_reload = self.rotation.lock().await;
        let now = now_millis();
        if now.saturating_sub(*last_reload) < KEY_RELOAD_EVERY_MS {
            return Ok(());
        }
        *last_reload = now;
        let keys = self.auth.signing_keys().await?;
        self.ring.replace(&keys)
    }

    /// Makes a new signing key now (old ones keep verifying).
    pub async fn rotate_signing_key(&self) -> Result<String, Error> {
        let _guard = self.rotation.lock().await;
        self.rotate_locked().await
    }

    async fn rotate_locked(&self) -> Result<String, Error> {
        let now = now_millis();
        let key = jwt::generate_key(now)?;
        self.auth.add_signing_key(&key).await?;
        let mut keys = self.auth.signing_keys().await?;
        // A key is needed until the tokens it signed have expired: until its
        // successor is older than one access-token lifetime (plus leeway).
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        let grace = (self.config.access_ttl.as_secs() + jwt::LEEWAY_SECS) * 1000;
        let mut retired = Vec::new();
        for pair in keys.windows(2) {
            let (successor, older) = (&pair[0], &pair[1]);
            if successor.created_at + grace < now {
                retired.push(older.kid.clone());
            }
        }
        for kid in &retired {
            self.auth.remove_signing_key(kid).await?;
        }
        keys.retain(|k| !retired.contains(&k.kid));
        self.ring.replace(&keys)?;
        Ok(key.kid)
    }

    async fn rotate_keys_if_due(&self) -> Result<(), Error> {
        let due = self.ring.newest_created_at() + self.config.key_rotation.as_millis() as u64;
        if now_millis() < due {
            return Ok(());
        }
        let _guard = self.rotation.lock().await;
        // Another task or instance may have rotated meanwhile.
        let keys = self.auth.signing_keys().await?;
        self.ring.replace(&keys)?;
        if now_millis()
            >= self.ring.newest_created_at() + self.config.key_rotation.as_millis() as u64
        {
            self.rotate_locked().await?;
        }
        Ok(())
    }

    // -------------------------------------------------------------- resolve

    /// Any credential → the principal it stands for in `project`: an
    /// account token (rights from its role there), an end-user token, a
    /// secret or publishable key. Project-bound credentials resolve to their
    /// own project; [`Principal::authorize`] refuses any other.
    pub async fn resolve(&self, credential: &str, project: &ProjectId) -> Result<Principal, Error> {
        let cache_key = principal_cache_key(credential, project);
        if let Some(principal) = self.cached_principal(&cache_key).await {
            self.metrics
                .verifications
                .with_label_values(&["cache", "ok"])
                .inc();
            return Ok(principal);
        }
        let result = self.resolve_uncached(credential, project).await;
        if let (Ok(principal), Some(cache)) = (&result, &self.cache)
            && let Ok(bytes) = serde_json::to_vec(principal)
            && let Err(e) = cache.set(&cache_key, &bytes, PRINCIPAL_CACHE_TTL).await
        {
            tracing::debug!(error = %e, "principal cache write failed");
        }
        result
    }

    async fn cached_principal(&self, key: &str) -> Option<Principal> {
        let cache = self.cache.as_ref()?;
        match cache.get(key).await {
            Ok(Some(bytes)) => {
                self.metrics.cache.with_label_values(&["hit"]).inc();
                serde_json::from_slice(&bytes).ok()
            }
            Ok(None) => {
                self.metrics.cache.with_label_values(&["miss"]).inc();
                None
            }
            Err(e) => {
                self.metrics.cache.with_label_values(&["error"]).inc();
                tracing::debug!(error = %e, "principal cache unavailable; resolving directly");
                None
            }
        }
    }

    async fn forget_key(&self, hash: &str) {
        if let Some(cache) = &self.cache
            && let Err(e) = cache.delete(&format!("principal:key:{hash}")).await
        {
            tracing::warn!(error = %e, "could not clear a revoked key from the principal cache");
        }
    }

    async fn resolve_uncached(
        &self,
        credential: &str,
        project: &ProjectId,
    ) -> Result<Principal, Error> {
        let (label, result) = if let Some(kind) = key_kind(credential) {
            (kind.as_str(), self.resolve_key(credential).await)
        } else {
            ("token", self.resolve_token(credential, project).await)
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.code() == ErrorCode::Unauthenticated => "invalid",
            Err(e) if e.code() == ErrorCode::PermissionDenied => "denied",
            Err(_) => "error",
        };
        self.metrics
            .verifications
            .with_label_values(&[label, outcome])
            .inc();
        result
    }

    async fn resolve_key(&self, credential: &str) -> Result<Principal, Error> {
        let key = self
            .auth
            .key_by_hash(&secrets::hash(credential))
            .await?
            .filter(|k| k.revoked_at.is_none())
            .ok_or_else(|| Error::Unauthenticated("invalid or revoked API key".into()))?;
        let now = now_millis();
        if key
            .last_used_at
            .is_none_or(|t| t + KEY_TOUCH_EVERY_MS < now)
        {
            self.auth.touch_key(&key.id, now).await?;
        }
        Ok(Principal {
            subject: format!("key:{}", key.id),
            kind: match key.kind {
                KeyKind::Secret => PrincipalKind::SecretKey,
                KeyKind::Publishable => PrincipalKind::PublishableKey,
            },
            project: key.project,
            rights: match key.kind {
                KeyKind::Secret => Rights::ALL,
                KeyKind::Publishable => Rights::NONE,
            },
        })
    }

    async fn resolve_token(&self, token: &str, project: &ProjectId) -> Result<Principal, Error> {
        let claims = self.access(token).await?;
        match claims.kind {
            SubjectKind::Account => {
                let member = self
                    .projects
                    .member(project, &claims.sub)
                    .await?
                    .ok_or_else(|| {
                        Error::PermissionDenied(format!("not a member of project {project}"))
                    })?;
                Ok(Principal {
                    subject: claims.sub,
                    kind: PrincipalKind::Account,
                    project: project.clone(),
                    rights: member.role.rights(),
                })
            }
            SubjectKind::EndUser => {
                let own = claims
                    .prj
                    .as_deref()
                    .map(ProjectId::new)
                    .transpose()?
                    .ok_or_else(|| Error::Unauthenticated("invalid token".into()))?;
                Ok(Principal {
                    subject: claims.sub,
                    kind: PrincipalKind::EndUser,
                    project: own,
                    rights: Rights::NONE,
                })
            }
        }
    }

    // ------------------------------------------------------------- projects

    async fn existing_project(&self, project: &ProjectId) -> Result<Project, Error> {
        self.projects
            .project(project)
            .await?
            .ok_or_else(|| Error::not_found(format!("project {project}")))
    }

    /// The caller's membership; non-members are told the project does not
    /// exist (ids of others' projects are not confirmed).
    async fn membership(&self, who: &AccountSession, project: &ProjectId) -> Result<Member, Error> {
        self.projects
            .member(project, &who.account_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("project {project}")))
    }

    async fn manager(&self, who: &AccountSession, project: &ProjectId) -> Result<Member, Error> {
        let member = self.membership(who, project).await?;
        if !member.role.can_manage() {
            return Err(Error::PermissionDenied(format!(
                "a {} may not do this; owners and admins may",
                member.role
            )));
        }
        Ok(member)
    }

    pub async fn create_project(&self, who: &AccountSession, name: &str) -> Result<Project, Error> {
        let name = Project::validate_name(name)?;
        let account = self
            .auth
            .account(&who.account_id)
            .await?
            .ok_or_else(|| Error::Unauthenticated("account no longer exists".into()))?;
        // One creation at a time, so two concurrent requests cannot both
        // pass the count (per process; see docs/identity.md).
        let _serial = self.project_creation.lock().await;
        self.check_project_limit(&account.id).await?;
        let now = now_millis();
        let project = Project {
            id: Project::id_from_name(&name)?,
            name,
            created_at: now,
        };
        let owner = Member {
            project: project.id.clone(),
            account_id: account.id,
            email: account.email.to_string(),
            role: Role::Owner,
            added_at: now,
        };
        self.projects.create_project(&project, &owner).await?;
        Ok(project)
    }

    async fn check_project_limit(&self, account_id: &str) -> Result<(), Error> {
        let max = self.config.accounts.max_projects;
        if max == 0 || self.is_instance_admin(account_id).await? {
            return Ok(());
        }
        let owned = self
            .projects
            .projects_of(account_id)
            .await?
            .iter()
            .filter(|(_, role)| *role == Role::Owner)
            .count();
        if owned >= max as usize {
            return Err(Error::QuotaExceeded(format!(
                "an account may own at most {max} projects: delete one, or ask the instance's administrator to raise the limit"
            )));
        }
        Ok(())
    }

    pub async fn my_projects(&self, who: &AccountSession) -> Result<Vec<(Project, Role)>, Error> {
        self.projects.projects_of(&who.account_id).await
    }

    pub async fn project(
        &self,
        who: &AccountSession,
        project: &ProjectId,
    ) -> Result<(Project, Role), Error> {
        let member = self.membership(who, project).await?;
        Ok((self.existing_project(project).await?, member.role))
    }

    pub async fn rename_project(
        &self,
        who: &AccountSession,
        project: &ProjectId,
        name: &str,
    ) -> Result<Project, Error> {
        let name = Project::validate_name(name)?;
        self.manager(who, project).await?;
        self.projects.rename_project(project, &name).await?;
        self.existing_project(project).await
    }

    /// Owners only. Removes members, keys, end users and their sessions.
    pub async fn delete_project(
        &self,
        who: &AccountSession,
        project: &ProjectId,
    ) -> Result<(), Error> {
        let member = self.membership(who, project).await?;
        if member.role != Role::Owner {
            return Err(Error::PermissionDenied(
                "only owners may delete a project".into(),
            ));
        }
        let keys = self.auth.keys(project).await?;
        self.projects.delete_project(project, now_millis()).await?;
        for key in keys {
            self.forget_key(&key.hash).await;
        }
        let cascade = self.cascade();
        let _ = purge_everywhere(&cascade, project).await;
        // A write under a credential resolved (and cached) before the
        // deletion may still land; a second pass once every cached
        // resolution has expired removes it.
        let project = project.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PRINCIPAL_CACHE_TTL + Duration::from_secs(5)).await;
            let _ = purge_everywhere(&cascade, &project).await;
        });
        Ok(())
    }

    /// `data` is removed for each project deleted from now on.
    pub fn on_project_deleted(&self, data: Arc<dyn ProjectData>) {
        self.cascade
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(data);
    }

    fn cascade(&self) -> Vec<Arc<dyn ProjectData>> {
        self.cascade
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn members(
        &self,
        who: &AccountSession,
        project: &ProjectId,
    ) -> Result<Vec<Member>, Error> {
        self.membership(who, project).await?;
        self.projects.members(project).await
    }

    /// Adds an account (by email) or changes its role. Only owners grant or
    /// take away ownership; a project always keeps an owner.
    pub async fn put_member(
        &self,
        who: &AccountSession,
        project: &ProjectId,
        email: &str,
        role: Role,
    ) -> Result<Member, Error> {
        let me = self.manager(who, project).await?;
        let email = Email::parse(email)?;
        let account = self
            .auth
            .account_by_email(&email)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no account with email {email}")))?;
        let current = self.projects.member(project, &account.id).await?;
        let touches_owner =
            role == Role::Owner || current.as_ref().is_some_and(|m| m.role == Role::Owner);
        if touches_owner && me.role != Role::Owner {
            return Err(Error::PermissionDenied(
                "only owners grant or change ownership".into(),
            ));
        }
        if current.as_ref().is_some_and(|m| m.role == Role::Owner) && role != Role::Owner {
            self.ensure_another_owner(project, &account.id).await?;
        }
        let member = Member {
            project: project.clone(),
            account_id: account.id,
            email: email.to_string(),
            role,
            added_at: current.map_or_else(now_millis, |m| m.added_at),
        };
        self.projects.put_member(&member).await?;
        Ok(member)
    }

    pub async fn remove_member(
        &self,
        who: &AccountSession,
        project: &ProjectId,
        account_id: &str,
    ) -> Result<(), Error> {
        let me = if account_id == who.account_id {
            self.membership(who, project).await? // anyone may leave
        } else {
            self.manager(who, project).await?
        };
        let target = self
            .projects
            .member(project, account_id)
            .await?
            .ok_or_else(|| Error::not_found("member"))?;
        if target.role == Role::Owner {
            if me.role != Role::Owner {
                return Err(Error::PermissionDenied("only owners remove owners".into()));
            }
            self.ensure_another_owner(project, account_id).await?;
        }
        self.projects.remove_member(project, account_id).await?;
        Ok(())
    }

    async fn ensure_another_owner(&self, project: &ProjectId, leaving: &str) -> Result<(), Error> {
        let owners = self
            .projects
            .members(project)
            .await?
            .into_iter()
            .filter(|m| m.role == Role::Owner && m.account_id != leaving)
            .count();
        if owners == 0 {
            return Err(Error::Conflict(
                "a project must keep at least one owner".into(),
            ));
        }
        Ok(())
    }

    // ------------------------------------------------------------- API keys

    pub async fn create_key(
        &self,
        who: &AccountSession,
        project: &ProjectId,
        name: &str,
        kind: KeyKind,
    ) -> Result<NewKey, Error> {
        self.manager(who, project).await?;
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_KEY_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid(format!(
                "key name must be 1 to {MAX_KEY_NAME_CHARS} printable characters"
            )));
        }
        let secret = format!("{}{}", kind.prefix(), secrets::random_token());
        let key = ApiKey {
            id: format!("key_{}", random_hex(12)),
            project: project.clone(),
            name: name.to_string(),
            kind,
            hash: secrets::hash(&secret),
            hint: format!("{}…", &secret[..kind.prefix().len() + 4]),
            created_at: now_millis(),
            last_used_at: None,
            revoked_at: None,
        };
        self.auth.create_key(&key).await?;
        Ok(NewKey { key, secret })
    }

    pub async fn keys(
        &self,
        who: &AccountSession,
        project: &ProjectId,
    ) -> Result<Vec<ApiKey>, Error> {
        self.membership(who, project).await?;
        self.auth.keys(project).await
    }

    pub async fn revoke_key(
        &self,
        who: &AccountSession,
        project: &ProjectId,
        key_id: &str,
    ) -> Result<(), Error> {
        self.manager(who, project).await?;
        if !self.auth.revoke_key(project, key_id, now_millis()).await? {
            return Err(Error::not_found("key"));
        }
        if let Some(key) = self
            .auth
            .keys(project)
            .await?
            .into_iter()
            .find(|k| k.id == key_id)
        {
            self.forget_key(&key.hash).await;
        }
        Ok(())
    }

    // ---------------------------------------------------------- end users

    /// The project an end user's call is for, from the project key it
    /// carries (the `apikey` header): a publishable or secret key of that
    /// very project. Account and end-user tokens are refused before they
    /// are resolved (they would otherwise answer 403 for non-members).
    pub async fn project_key(&self, key: &str, project: &ProjectId) -> Result<ProjectId, Error> {
        let not_a_key =
            || Error::Unauthenticated("the apikey header must hold a project key".into());
        if !(key.starts_with("bb_pk_") || key.starts_with("bb_sk_")) {
            return Err(not_a_key());
        }
        let principal = self.resolve(key, project).await?;
        if !matches!(
            principal.kind,
            PrincipalKind::PublishableKey | PrincipalKind::SecretKey
        ) {
            return Err(not_a_key());
        }
        if &principal.project != project {
            return Err(Error::PermissionDenied(format!(
                "this key is not for project {project}"
            )));
        }
        Ok(principal.project)
    }

    /// A page of a project's users by id, after `after`, for its admins
    /// (accounts with the admin right or secret keys). `limit` is kept to
    /// 1..=1000; `next` is set when the page is full.
    pub async fn users(
        &self,
        who: &Principal,
        project: &ProjectId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<UsersPage, Error> {
        who.authorize(project, super::Access::Admin)?;
        let limit = limit.clamp(1, 1000);
        let users = self.auth.users(project, after, limit).await?;
        let next = (users.len() == limit)
            .then(|| users.last().map(|u| u.id.clone()))
            .flatten();
        Ok(UsersPage {
            users: users.iter().map(UserInfo::of).collect(),
            next,
        })
    }

    pub async fn delete_user(
        &self,
        who: &Principal,
        project: &ProjectId,
        user_id: &str,
    ) -> Result<(), Error> {
        who.authorize(project, super::Access::Admin)?;
        if !self.auth.delete_user(project, user_id).await? {
            return Err(Error::not_found("user"));
        }
        Ok(())
    }
}

#[async_trait]
impl TokenVerifier for Identity {
    async fn verify(&self, token: &str, project: &ProjectId) -> Result<Principal, Error> {
        self.resolve(token, project).await
    }
}

/// Keys resolve the same whatever project is asked; tokens per project.
fn principal_cache_key(credential: &str, project: &ProjectId) -> String {
    let hash = secrets::hash(credential);
    match key_kind(credential) {
        Some(_) => format!("principal:key:{hash}"),
        None => format!("principal:token:{hash}:{project}"),
    }
}

fn key_kind(credential: &str) -> Option<KeyKind> {
    if credential.starts_with(KeyKind::Secret.prefix()) {
        Some(KeyKind::Secret)
    } else if credential.starts_with(KeyKind::Publishable.prefix()) {
        Some(KeyKind::Publishable)
    } else {
        None
    }
}

fn audience_kind(audience: Audience<'_>) -> SubjectKind {
    match audience {
        Audience::Accounts => SubjectKind::Account,
        Audience::Users(_) => SubjectKind::EndUser,
    }
}

fn limit_key(audience: Audience<'_>, email: &Email) -> String {
    match audience {
        Audience::Accounts => format!("acct:{email}"),
        Audience::Users(project) => format!("user:{project}:{email}"),
    }
}

fn taken(e: Error) -> Error {
    match e {
        Error::AlreadyExists(_) => Error::AlreadyExists("this email is already registered".into()),
        other => other,
    }
}

/// Projects deleted at or after `since`: services in other processes (or
/// BunAuth's `DeletedProjects`) remove their data with this.
#[async_trait]
impl crate::platform::DeletionFeed for Identity {
    async fn deleted_projects(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(ProjectId, u64)>, Error> {
        self.projects
            .deleted_projects(since, limit.clamp(1, 1000))
            .await
    }
}

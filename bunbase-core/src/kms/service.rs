//! The BunKMS service: what shells and embedders call. It authorizes
//! (metadata = read, using a key = write, administering = admin; end users
//! hold none of these), checks purpose and state, does the cryptography
//! with material unwrapped only for the call, and audits every operation.

use std::future::Future;
use std::sync::Arc;

use super::audit::{self, AuditEntry, AuditRecord, ChainBreak};
use super::ciphertext::Ciphertext;
use super::crypto::{self, Algorithm, Material, Purpose};
use super::master::MasterKey;
use super::metrics::KmsMetrics;
use super::model::{AuditQuery, Key, KeyInfo, KeyState, KeyVersion, SecretInfo, check_name};
use super::refusals::{Record, RefusalBudget};
use super::store::KmsStore;
use crate::auth::ratelimit::Rate;
use crate::auth::{Access, Principal, PrincipalKind, Rights};
use crate::error::Error;
use crate::id::{ProjectId, now_millis};

#[derive(Debug, Clone, Copy)]
pub struct KmsLimits {
    /// Largest plaintext, message or secret value.
    pub max_plaintext: usize,
    /// Largest encryption context.
    pub max_context: usize,
    /// Scheduled deletion waits this many days at least / at most.
    pub min_deletion_days: u32,
    pub max_deletion_days: u32,
    /// Shortest automatic rotation period, in seconds.
    pub min_rotation_secs: u64,
    /// Largest data key, in bytes.
    pub max_data_key: usize,
    /// Refused calls one credential may record in its project's audit log
    /// (see [`super::refusals`]).
    pub refused_audit: Rate,
}

impl Default for KmsLimits {
    fn default() -> Self {
        KmsLimits {
            max_plaintext: 64 * 1024,
            max_context: 4 * 1024,
            min_deletion_days: 7,
            max_deletion_days: 30,
            min_rotation_secs: 24 * 3600,
            max_data_key: 64,
            refused_audit: Rate {
                burst: 100,
                per_minute: 60,
            },
        }
    }
}

/// One page of an audit log; pass `next_after` as `after` for the next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub next_after: Option<u64>,
}

/// An encryption's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub key: String,
    pub version: u32,
}

#[derive(Clone)]
pub struct Kms {
    store: Arc<dyn KmsStore>,
    master: Arc<MasterKey>,
    limits: KmsLimits,
    metrics: Arc<KmsMetrics>,
    refusals: Arc<RefusalBudget>,
}

/// Who the audit names for scheduled rotations and deletions.
fn scheduler(project: &ProjectId) -> Principal {
    Principal {
        subject: "bunkms-scheduler".into(),
        kind: PrincipalKind::Service,
        project: project.clone(),
        rights: Rights::ALL,
    }
}

/// Binds a key version's wrapped material to its project, name and
/// version: moved anywhere else, it does not unwrap.
pub(crate) fn key_aad(project: &ProjectId, name: &str, version: u32) -> Vec<u8> {
    format!("bunkms/key/{project}/{name}/{version}").into_bytes()
}

pub(crate) fn secret_aad(project: &ProjectId, name: &str, version: u32) -> Vec<u8> {
    format!("bunkms/secret/{project}/{name}/{version}").into_bytes()
}

impl Kms {
    pub fn new(
        store: Arc<dyn KmsStore>,
        master: Arc<MasterKey>,
        limits: KmsLimits,
        metrics: Arc<KmsMetrics>,
    ) -> Kms {
        Kms {
            store,
            master,
            refusals: Arc::new(RefusalBudget::new(limits.refused_audit)),
            limits,
            metrics,
        }
    }

    /// The master key's id (never the key).
    pub fn master_key_id(&self) -> &str {
        self.master.id()
    }

    pub async fn check(&self) -> Result<(), Error> {
        self.store.check().await
    }

    pub fn limits(&self) -> KmsLimits {
        self.limits
    }

    /// Runs `op` and audits it (result `ok` or the error code). An audit
    /// that cannot be written fails the call: nothing goes unrecorded.
    async fn audited<T>(
        &self,
        who: &Principal,
        project: &ProjectId,
        key: Option<&str>,
        operation: &str,
        op: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = std::time::Instant::now();
        let result = op.await;
        self.metrics
            .duration
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.metrics
            .operations
            .with_label_values(&[operation, label])
            .inc();
        // Only a project's own callers write to its log: a credential of
        // another project is refused without leaving a trace there (else
        // anyone could grow any project's log).
        if &who.project != project {
            return result;
        }
        if result.is_err() {
            // A name that is not a name is not worth a record (and would
            // let a caller write what it likes into the log).
            if key.is_some_and(|name| check_name("key", name).is_err()) {
                return result;
            }
            let credential = format!("{project}/{}", who.subject);
            match self.refusals.record(&credential) {
                Record::Suppress => {
                    self.metrics.audit_suppressed.inc();
                    return result;
                }
                Record::Write { suppressed_before } if suppressed_before > 0 => {
                    self.store
                        .append_audit(AuditEntry {
                            at: now_millis(),
                            project: project.to_string(),
                            caller: who.subject.clone(),
                            key: None,
                            operation: "suppressed".into(),
                            result: format!("{suppressed_before} refused calls not recorded"),
                        })
                        .await?;
                }
                Record::Write { .. } => {}
            }
        }
        let entry = AuditEntry {
            at: now_millis(),
            project: project.to_string(),
            caller: who.subject.clone(),
            key: key.map(str::to_string),
            operation: operation.to_string(),
            result: match &result {
                Ok(_) => "ok".to_string(),
                Err(e) => e.code().as_str().to_string(),
            },
        };
        self.store.append_audit(entry).await?;
        result
    }

    async fn load(&self, project: &ProjectId, name: &str) -> Result<Key, Error> {
        check_name("key", name)?;
        self.store
            .key(project, name)
            .await?
            .ok_or_else(|| Error::not_found(format!("key {name}")))
    }

    /// A key that may be used now, for `purpose`. A caller without the
    /// `w` right (an end user) learns nothing of a key not open to end
    /// users — not whether it exists, not its state.
    async fn usable(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        purpose: Purpose,
    ) -> Result<Key, Error> {
        let closed = || {
            Error::PermissionDenied(format!(
                "key {name} is not open to end users (an admin can allow them)"
            ))
        };
        let privileged = who.authorize(project, Access::Write).is_ok();
        let key = match self.load(project, name).await {
            Err(e) if !privileged && e.code() == crate::ErrorCode::NotFound => return Err(closed()),
            loaded => loaded?,
        };
        if !privileged && !key.end_users {
            return Err(closed());
        }
        match key.state {
            KeyState::Enabled => {}
            KeyState::Disabled => {
                return Err(Error::Conflict(format!("key {name} is disabled")));
            }
            KeyState::PendingDeletion => {
                return Err(Error::Conflict(format!(
                    "key {name} is scheduled for deletion; cancel the deletion to use it"
                )));
            }
        }
        if key.purpose() != purpose {
            return Err(Error::invalid(format!(
                "key {name} is a {:?} key ({}); this needs a {purpose:?} key",
                key.purpose(),
                key.algorithm.name()
            )));
        }
        Ok(key)
    }

    /// Whether `who` may use keys of `project` at all: the `w` right, or an
    /// end user of the project (each key then says whether it allows them).
    fn may_use(who: &Principal, project: &ProjectId) -> Result<(), Error> {
        match who.authorize(project, Access::Write) {
            Ok(()) => Ok(()),
            Err(_) if who.kind == PrincipalKind::EndUser && &who.project == project => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn material(&self, key: &Key, version: u32) -> Result<Material, Error> {
        let stored = key
            .version(version)
            .ok_or_else(|| Error::invalid(format!("key {} has no version {version}", key.name)))?;
        self.master
            .unwrap(&key_aad(&key.project, &key.name, version), &stored.wrapped)
    }

    fn new_version(
        &self,
        project: &ProjectId,
        name: &str,
        algorithm: Algorithm,
        version: u32,
    ) -> Result<KeyVersion, Error> {
        let material = crypto::generate(algorithm)?;
        let public_key = match algorithm.purpose() {
            Purpose::Sign => Some(crypto::public_key(algorithm, &material)?),
            _ => None,
        };
        Ok(KeyVersion {
            version,
            created_at: now_millis(),
            wrapped: self
                .master
                .wrap(&key_aad(project, name, version), &material)?,
            public_key,
        })
    }

    fn check_size(&self, what: &str, len: usize, max: usize) -> Result<(), Error> {
        if len > max {
            return Err(Error::PayloadTooLarge(format!(
                "the {what} is {len} bytes; the limit is {max}"
            )));
        }
        Ok(())
    }

    // ---- administering keys ----

    pub async fn create_key(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        algorithm: Algorithm,
        rotation_period: Option<u64>,
    ) -> Result<KeyInfo, Error> {
        self.audited(who, project, Some(name), "create_key", async {
            who.authorize(project, Access::Admin)?;
            check_name("key", name)?;
            if let Some(secs) = rotation_period
                && (secs < self.limits.min_rotation_secs || secs > 10 * 365 * 24 * 3600)
            {
                return Err(Error::invalid(format!(
                    "rotation periods are {} s to 10 years",
                    self.limits.min_rotation_secs
                )));
            }
            let now = now_millis();
            let key = Key {
                project: project.clone(),
                name: name.to_string(),
                algorithm,
                state: KeyState::Enabled,
                primary: 1,
                versions: vec![self.new_version(project, name, algorithm, 1)?],
                rotation_period,
                last_rotated_at: now,
                deletion_at: None,
                created_at: now,
                revision: 1,
                end_users: false,
            };
            self.store.create_key(&key).await?;
            Ok(key.info())
        })
        .await
    }

    pub async fn key(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<KeyInfo, Error> {
        self.audited(who, project, Some(name), "describe_key", async {
            who.authorize(project, Access::Read)?;
            Ok(self.load(project, name).await?.info())
        })
        .await
    }

    pub async fn keys(&self, who: &Principal, project: &ProjectId) -> Result<Vec<KeyInfo>, Error> {
        self.audited(who, project, None, "list_keys", async {
            who.authorize(project, Access::Read)?;
            Ok(self
                .store
                .keys(project)
                .await?
                .iter()
                .map(Key::info)
                .collect())
        })
        .await
    }

    /// Applies `change` to a key and saves it (compare-and-set).
    async fn change(
        &self,
        project: &ProjectId,
        name: &str,
        change: impl FnOnce(&mut Key) -> Result<(), Error>,
    ) -> Result<KeyInfo, Error> {
        let mut key = self.load(project, name).await?;
        change(&mut key)?;
        key.revision += 1;
        self.store.update_key(&key).await?;
        Ok(key.info())
    }

    fn rotate_now(&self, key: &mut Key) -> Result<(), Error> {
        let next = key.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        key.versions
            .push(self.new_version(&key.project, &key.name, key.algorithm, next)?);
        key.primary = next;
        key.last_rotated_at = now_millis();
        Ok(())
    }

    pub async fn rotate(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<KeyInfo, Error> {
        self.audited(who, project, Some(name), "rotate", async {
            who.authorize(project, Access::Admin)?;
            self.change(project, name, |key| {
                if key.state == KeyState::PendingDeletion {
                    return Err(Error::Conflict(format!(
                        "key {name} is scheduled for deletion; cancel the deletion first"
                    )));
                }
                self.rotate_now(key)
            })
            .await
        })
        .await
    }

    pub async fn set_enabled(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        enabled: bool,
    ) -> Result<KeyInfo, Error> {
        let op = if enabled { "enable" } else { "disable" };
        self.audited(who, project, Some(name), op, async {
            who.authorize(project, Access::Admin)?;
            self.change(project, name, |key| {
                if key.state == KeyState::PendingDeletion {
                    return Err(Error::Conflict(format!(
                        "key {name} is scheduled for deletion; cancel the deletion first"
                    )));
                }
                key.state = if enabled {
                    KeyState::Enabled
                } else {
                    KeyState::Disabled
                };
                Ok(())
            })
            .await
        })
        .await
    }

    /// Allows (or stops) the project's end users using the key.
    pub async fn set_end_user_access(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        allowed: bool,
    ) -> Result<KeyInfo, Error> {
        let op = if allowed {
            "allow_end_users"
        } else {
            "deny_end_users"
        };
        self.audited(who, project, Some(name), op, async {
            who.authorize(project, Access::Admin)?;
            self.change(project, name, |key| {
                key.end_users = allowed;
                Ok(())
            })
            .await
        })
        .await
    }

    /// Deletion happens after a waiting period (`days`, default the
    /// longest), and can be cancelled until then.
    pub async fn schedule_deletion(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        days: Option<u32>,
    ) -> Result<KeyInfo, Error> {
        self.audited(who, project, Some(name), "schedule_deletion", async {
            who.authorize(project, Access::Admin)?;
            let days = days.unwrap_or(self.limits.max_deletion_days);
            if days < self.limits.min_deletion_days || days > self.limits.max_deletion_days {
                return Err(Error::invalid(format!(
                    "the waiting period is {} to {} days",
                    self.limits.min_deletion_days, self.limits.max_deletion_days
                )));
            }
            self.change(project, name, |key| {
                if key.state == KeyState::PendingDeletion {
                    return Err(Error::Conflict(format!(
                        "key {name} is already scheduled for deletion"
                    )));
                }
                key.state = KeyState::PendingDeletion;
                key.deletion_at = Some(now_millis() + u64::from(days) * 24 * 3600 * 1000);
                Ok(())
            })
            .await
        })
        .await
    }

    /// Cancels a scheduled deletion; the key comes back disabled.
    pub async fn cancel_deletion(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<KeyInfo, Error> {
        self.audited(who, project, Some(name), "cancel_deletion", async {
            who.authorize(project, Access::Admin)?;
            self.change(project, name, |key| {
                if key.state != KeyState::PendingDeletion {
                    return Err(Error::Conflict(format!(
                        "key {name} is not scheduled for deletion"
                    )));
                }
                key.state = KeyState::Disabled;
                key.deletion_at = None;
                Ok(())
            })
            .await
        })
        .await
    }

    /// Rotates keys whose period has passed and deletes keys whose
    /// waiting period is over (a background task calls this, possibly in
    /// several replicas): how many of each. Each key is re-read and
    /// changed compare-and-set, so a deletion cancelled meanwhile stands
    /// and two replicas never rotate twice; one key's failure is logged
    /// and the others go on.
    pub async fn run_due(&self, now: u64) -> Result<(usize, usize), Error> {
        let (mut rotated, mut deleted) = (0, 0);
        for due in self.store.keys_due(now).await? {
            let Some(key) = self.store.key(&due.project, &due.name).await? else {
                continue;
            };
            if !super::adapters::memory::due(&key, now) {
                continue;
            }
            let system = scheduler(&key.project);
            let deleting = key.state == KeyState::PendingDeletion;
            let op = if deleting {
                "delete_key"
            } else {
                "auto_rotate"
            };
            let outcome = self
                .audited(&system, &key.project, Some(&key.name), op, async {
                    if deleting {
                        return self
                            .store
                            .delete_key(&key.project, &key.name, key.revision)
                            .await;
                    }
                    let mut next = key.clone();
                    self.rotate_now(&mut next)?;
                    next.revision += 1;
                    match self.store.update_key(&next).await {
                        Ok(()) => Ok(true),
                        // Changed meanwhile (another replica, an admin).
                        Err(Error::Conflict(_)) => Ok(false),
                        Err(e) => Err(e),
                    }
                })
                .await;
            match outcome {
                Ok(true) if deleting => deleted += 1,
                Ok(true) => rotated += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(project = %key.project, key = %key.name, error = %e, "scheduled {op} failed")
                }
            }
        }
        Ok((rotated, deleted))
    }

    /// Checks that the store's material is wrapped under this master key
    /// (recording it on first use), so a wrong key fails at start, not on
    /// every call.
    pub async fn check_master(&self) -> Result<(), Error> {
        match self.store.master_key_id().await? {
            None => self.store.set_master_key_id(self.master.id()).await,
            Some(id) if id == self.master.id() => Ok(()),
            Some(id) => Err(Error::invalid(format!(
                "this store's keys are wrapped under master key {id}, but the configured master key is {}: start with the right key, or re-wrap (bun-kms rewrap)",
                self.master.id()
            ))),
        }
    }

    // ---- using keys ----

    fn seal_with(&self, key: &Key, context: &[u8], plaintext: &[u8]) -> Result<Sealed, Error> {
        let material = self.material(key, key.primary)?;
        let header = Ciphertext::header(&key.name, key.primary)?;
        let aad = Ciphertext::aad(&header, key.project.as_str(), context);
        let (nonce, sealed) = crypto::seal(&material, &aad, plaintext)?;
        let ciphertext = Ciphertext {
            key: key.name.clone(),
            version: key.primary,
            nonce,
            sealed,
        }
        .encode()?;
        Ok(Sealed {
            ciphertext,
            key: key.name.clone(),
            version: key.primary,
        })
    }

    /// Opens a ciphertext of this project; the key named in it must be
    /// usable.
    async fn open_in(
        &self,
        who: &Principal,
        project: &ProjectId,
        ciphertext: &[u8],
        context: &[u8],
    ) -> Result<(Material, String, u32), Error> {
        let parsed = Ciphertext::decode(ciphertext)?;
        let key = self
            .usable(who, project, &parsed.key, Purpose::Encrypt)
            .await?;
        let material = self.material(&key, parsed.version)?;
        let header = Ciphertext::header(&parsed.key, parsed.version)?;
        let aad = Ciphertext::aad(&header, project.as_str(), context);
        let plaintext = crypto::open(&material, &parsed.nonce, &aad, &parsed.sealed)?;
        Ok((plaintext, parsed.key, parsed.version))
    }

    pub async fn encrypt(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<Sealed, Error> {
        self.audited(who, project, Some(name), "encrypt", async {
            Self::may_use(who, project)?;
            self.check_size("plaintext", plaintext.len(), self.limits.max_plaintext)?;
            self.check_size("context", context.len(), self.limits.max_context)?;
            let key = self.usable(who, project, name, Purpose::Encrypt).await?;
            self.seal_with(&key, context, plaintext)
        })
        .await
    }

    /// The plaintext, with the key name and version that sealed it.
    pub async fn decrypt(
        &self,
        who: &Principal,
        project: &ProjectId,
        ciphertext: &[u8],
        context: &[u8],
    ) -> Result<(Material, String, u32), Error> {
        let named = Ciphertext::decode(ciphertext).ok().map(|c| c.key);
        self.audited(who, project, named.as_deref(), "decrypt", async {
            Self::may_use(who, project)?;
            self.check_size("context", context.len(), self.limits.max_context)?;
            self.open_in(who, project, ciphertext, context).await
        })
        .await
    }

    /// Decrypts and encrypts again under the newest version of `target`
    /// (default: the same key) — the plaintext never leaves the service.
    pub async fn reencrypt(
        &self,
        who: &Principal,
        project: &ProjectId,
        ciphertext: &[u8],
        context: &[u8],
        target: Option<&str>,
    ) -> Result<Sealed, Error> {
        let named = Ciphertext::decode(ciphertext).ok().map(|c| c.key);
        self.audited(who, project, named.as_deref(), "reencrypt", async {
            Self::may_use(who, project)?;
            let (plaintext, source, _) = self.open_in(who, project, ciphertext, context).await?;
            let key = self
                .usable(who, project, target.unwrap_or(&source), Purpose::Encrypt)
                .await?;
            self.seal_with(&key, context, &plaintext)
        })
        .await
    }

    /// A new data key (envelope encryption): its plaintext for immediate
    /// use, and the same sealed under `name` to store beside the data.
    pub async fn data_key(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        context: &[u8],
        bytes: usize,
    ) -> Result<(Material, Sealed), Error> {
        self.audited(who, project, Some(name), "generate_data_key", async {
            Self::may_use(who, project)?;
            if bytes < 16 || bytes > self.limits.max_data_key {
                return Err(Error::invalid(format!(
                    "data keys are 16 to {} bytes",
                    self.limits.max_data_key
                )));
            }
            self.check_size("context", context.len(), self.limits.max_context)?;
            let key = self.usable(who, project, name, Purpose::Encrypt).await?;
            let plaintext = crypto::random_bytes(bytes)?;
            let sealed = self.seal_with(&key, context, &plaintext)?;
            Ok((plaintext, sealed))
        })
        .await
    }

    /// The key `name` to sign or MAC `message` with, once the caller may
    /// use keys and the message is within the limit.
    async fn message_key(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        message: &[u8],
        purpose: Purpose,
    ) -> Result<Key, Error> {
        Self::may_use(who, project)?;
        self.check_size("message", message.len(), self.limits.max_plaintext)?;
        self.usable(who, project, name, purpose).await
    }

    /// Signs with the primary version: the signature and that version.
    pub async fn sign(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        message: &[u8],
    ) -> Result<(Vec<u8>, u32), Error> {
        self.audited(who, project, Some(name), "sign", async {
            let key = self
                .message_key(who, project, name, message, Purpose::Sign)
                .await?;
            let material = self.material(&key, key.primary)?;
            Ok((
                crypto::sign(key.algorithm, &material, message)?,
                key.primary,
            ))
        })
        .await
    }

    /// Checks a signature against `version` (default: the primary).
    pub async fn verify(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        message: &[u8],
        signature: &[u8],
        version: Option<u32>,
    ) -> Result<bool, Error> {
        self.audited(who, project, Some(name), "verify", async {
            let key = self
                .message_key(who, project, name, message, Purpose::Sign)
                .await?;
            let version = version.unwrap_or(key.primary);
            let public = key
                .version(version)
                .and_then(|v| v.public_key.clone())
                .ok_or_else(|| Error::invalid(format!("key {name} has no version {version}")))?;
            crypto::verify(key.algorithm, &public, message, signature)
        })
        .await
    }

    /// HMAC-SHA256 with the primary version: the tag and that version.
    pub async fn mac(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        message: &[u8],
    ) -> Result<(Vec<u8>, u32), Error> {
        self.audited(who, project, Some(name), "mac", async {
            let key = self
                .message_key(who, project, name, message, Purpose::Mac)
                .await?;
            let material = self.material(&key, key.primary)?;
            Ok((crypto::mac(&material, message), key.primary))
        })
        .await
    }

    pub async fn verify_mac(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        message: &[u8],
        tag: &[u8],
        version: Option<u32>,
    ) -> Result<bool, Error> {
        self.audited(who, project, Some(name), "verify_mac", async {
            let key = self
                .message_key(who, project, name, message, Purpose::Mac)
                .await?;
            let material = self.material(&key, version.unwrap_or(key.primary))?;
            Ok(crypto::verify_mac(&material, message, tag))
        })
        .await
    }

    // ---- secrets ----

    /// Stores a new version of a secret; its number.
    pub async fn put_secret(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        value: &[u8],
    ) -> Result<u32, Error> {
        self.audited(who, project, Some(name), "put_secret", async {
            who.authorize(project, Access::Admin)?;
            check_name("secret", name)?;
            self.check_size("secret value", value.len(), self.limits.max_plaintext)?;
            // Versions are compare-and-set: retry if another put won.
            for _ in 0..5 {
                let latest = self.store.secret(project, name, None).await?;
                let version = latest.map_or(1, |s| s.version + 1);
                let wrapped = self
                    .master
                    .wrap(&secret_aad(project, name, version), value)?;
                match self
                    .store
                    .put_secret(project, name, version, wrapped, now_millis())
                    .await
                {
                    Ok(()) => return Ok(version),
                    Err(Error::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::Conflict(format!(
                "secret {name} is being written by others; try again"
            )))
        })
        .await
    }

    /// A secret's value (the latest version, or the one asked for).
    pub async fn secret(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
        version: Option<u32>,
    ) -> Result<(Material, u32), Error> {
        self.audited(who, project, Some(name), "get_secret", async {
            who.authorize(project, Access::Write)?;
            check_name("secret", name)?;
            let stored = self
                .store
                .secret(project, name, version)
                .await?
                .ok_or_else(|| Error::not_found(format!("secret {name}")))?;
            let value = self
                .master
                .unwrap(&secret_aad(project, name, stored.version), &stored.wrapped)?;
            Ok((value, stored.version))
        })
        .await
    }

    /// Names and versions only — never values.
    pub async fn secrets(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Vec<SecretInfo>, Error> {
        self.audited(who, project, None, "list_secrets", async {
            who.authorize(project, Access::Read)?;
            self.store.secrets(project).await
        })
        .await
    }

    pub async fn delete_secret(
        &self,
        who: &Principal,
        project: &ProjectId,
        name: &str,
    ) -> Result<bool, Error> {
        self.audited(who, project, Some(name), "delete_secret", async {
            who.authorize(project, Access::Admin)?;
            check_name("secret", name)?;
            self.store.delete_secret(project, name).await
        })
        .await
    }

    // ---- audit ----

    /// A page of the project's audit log (`limit` kept to 1..=1000);
    /// `next_after` is set when the page is full.
    pub async fn audit(
        &self,
        who: &Principal,
        project: &ProjectId,
        query: &AuditQuery,
    ) -> Result<AuditPage, Error> {
        who.authorize(project, Access::Read)?;
        let mut query = query.clone();
        query.limit = query.limit.clamp(1, 1000);
        let records = self.store.audit(project, &query).await?;
        let next_after = (records.len() == query.limit)
            .then(|| records.last().map(|r| r.seq))
            .flatten();
        Ok(AuditPage {
            records,
            next_after,
        })
    }

    /// Checks the project's whole audit chain: how many records, or where
    /// it breaks.
    pub async fn verify_audit(
        &self,
        who: &Principal,
        project: &ProjectId,
    ) -> Result<Result<u64, ChainBreak>, Error> {
        who.authorize(project, Access::Read)?;
        let (mut seq, mut prev) = (0u64, audit::GENESIS.to_string());
        loop {
            let page = self
                .store
                .audit(
                    project,
                    &AuditQuery {
                        after: Some(seq),
                        limit: 1000,
                        ..AuditQuery::default()
                    },
                )
                .await?;
            let Some(last) = page.last() else {
                return Ok(Ok(seq));
            };
            if let Err(broken) = audit::verify(&page, (seq, &prev)) {
                return Ok(Err(broken));
            }
            seq = last.seq;
            prev = last.hash.clone();
        }
    }
}

#[async_trait::async_trait]
impl crate::platform::ProjectData for Kms {
    fn service(&self) -> &'static str {
        "kms"
    }

    /// A deleted project's keys enter their scheduled deletion (the
    /// shortest waiting period; the scheduler deletes them when it ends)
    /// and its secrets are deleted, each in the audit log as the
    /// scheduler's.
    async fn purge_project(&self, project: &ProjectId) -> Result<u64, Error> {
        let system = scheduler(project);
        let mut removed = 0;
        for key in self.store.keys(project).await? {
            if key.state != KeyState::PendingDeletion {
                self.schedule_deletion(
                    &system,
                    project,
                    &key.name,
                    Some(self.limits.min_deletion_days),
                )
                .await?;
                removed += 1;
            }
        }
        for secret in self.store.secrets(project).await? {
            if self.delete_secret(&system, project, &secret.name).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

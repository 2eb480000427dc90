//! What BunKMS stores: keys with their versions (material wrapped by the
//! master key), secrets with their versions, and audit records.

use serde::{Deserialize, Serialize};

use super::crypto::{Algorithm, Purpose};
use crate::error::Error;
use crate::id::ProjectId;

/// Longest key or secret name.
pub const MAX_NAME: usize = 128;

/// Names are 1–128 of `A-Z a-z 0-9 - _ .`, so they are safe in URLs, logs
/// and the ciphertext header.
pub fn check_name(what: &str, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} names are 1 to {MAX_NAME} of A-Z a-z 0-9 - _ ."
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Enabled,
    Disabled,
    /// Deleted at `deletion_at` unless cancelled; unusable meanwhile.
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending_deletion",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct KeyVersion {
    pub version: u32,
    pub created_at: u64,
    /// The material, wrapped by the master key (see `Kms::wrap_aad`).
    pub wrapped: Vec<u8>,
    /// Signing keys' public half (not secret).
    pub public_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub project: ProjectId,
    pub name: String,
    pub algorithm: Algorithm,
    pub state: KeyState,
    /// The version new encryptions and signatures use.
    pub primary: u32,
    pub versions: Vec<KeyVersion>,
    /// Rotate automatically this often (seconds), if set.
    pub rotation_period: Option<u64>,
    pub last_rotated_at: u64,
    /// When a pending deletion happens (ms since the epoch).
    pub deletion_at: Option<u64>,
    pub created_at: u64,
    /// Bumped by every change: updates are compare-and-set on it.
    pub revision: u64,
    /// End users of the project may use the key (granted by an admin);
    /// by default only credentials with the `w` right may.
    pub end_users: bool,
}

impl Key {
    pub fn purpose(&self) -> Purpose {
        self.algorithm.purpose()
    }

    pub fn version(&self, version: u32) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// What may be shown about the key: never material.
    pub fn info(&self) -> KeyInfo {
        use base64::Engine as _;
        KeyInfo {
            name: self.name.clone(),
            purpose: self.purpose(),
            algorithm: self.algorithm.name().to_string(),
            state: self.state,
            primary_version: self.primary,
            versions: self
                .versions
                .iter()
                .map(|v| VersionInfo {
                    version: v.version,
                    created_at: v.created_at,
                    public_key: v
                        .public_key
                        .as_ref()
                        .map(|k| base64::engine::general_purpose::STANDARD.encode(k)),
                })
                .collect(),
            rotation_period_secs: self.rotation_period,
            last_rotated_at: self.last_rotated_at,
            deletion_at: self.deletion_at,
            created_at: self.created_at,
            end_users: self.end_users,
        }
    }
}

/// One version of a key as the API shows it (the client reads it back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: u32,
    pub created_at: u64,
    /// Signing keys' public key, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// A key as the API shows it: never its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub name: String,
    pub purpose: Purpose,
    pub algorithm: String,
    pub state: KeyState,
    pub primary_version: u32,
    pub versions: Vec<VersionInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_secs: Option<u64>,
    pub last_rotated_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_at: Option<u64>,
    pub created_at: u64,
    /// End users of the project may use it.
    pub end_users: bool,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SecretVersion {
    pub version: u32,
    pub created_at: u64,
    /// The value, wrapped by the master key.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersion")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A secret's name and history, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    pub latest_version: u32,
    pub created_at: u64,
    pub updated_at: u64,
}

/// Which audit records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// From this time on (ms since the epoch), inclusive.
    pub from: Option<u64>,
    /// Up to this time, exclusive.
    pub to: Option<u64>,
    pub key: Option<String>,
    /// Records after this sequence number (paging).
    pub after: Option<u64>,
    pub limit: usize,
}

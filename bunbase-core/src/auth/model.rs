//! Identity records: accounts, end users, sessions, API keys, signing keys.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::Error;
use crate::id::ProjectId;

/// An email address, normalised once (trimmed, Unicode NFC, lower-cased) so
/// the same address always finds the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, Error> {
        let normalized: String = raw.trim().nfc().flat_map(char::to_lowercase).collect();
        if normalized.is_empty() || normalized.len() > Self::MAX_LEN {
            return Err(Error::invalid(format!(
                "email must be 1 to {} bytes",
                Self::MAX_LEN
            )));
        }
        if normalized
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(
                "email may not contain spaces or control characters",
            ));
        }
        let Some((local, domain)) = normalized.rsplit_once('@') else {
            return Err(Error::invalid("email must look like name@example.com"));
        };
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(Error::invalid("email must look like name@example.com"));
        }
        Ok(Email(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A developer account: owns and joins projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub email: Email,
    pub password_hash: String,
    pub created_at: u64,
}

/// An end user of an app built on BunBase, inside exactly one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub id: String,
    pub project: ProjectId,
    pub email: Email,
    pub password_hash: String,
    pub created_at: u64,
}

/// Whose session or token it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Account,
    EndUser,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Account => "account",
            SubjectKind::EndUser => "end_user",
        }
    }

    pub fn parse(raw: &str) -> Result<SubjectKind, Error> {
        match raw {
            "account" => Ok(SubjectKind::Account),
            "end_user" => Ok(SubjectKind::EndUser),
            other => Err(Error::internal(format!("unknown subject kind {other:?}"))),
        }
    }
}

/// A sign-in: one refresh-token family. Rotating a refresh token keeps the
/// session; re-using a spent one revokes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub kind: SubjectKind,
    pub subject: String,
    /// The end user's project (`None` for accounts).
    pub project: Option<ProjectId>,
    pub created_at: u64,
    pub expires_at: u64,
    pub revoked_at: Option<u64>,
}

impl Session {
    pub fn is_active(&self, now: u64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What rotating a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current; it is now spent and the new one is current.
    Rotated(Session),
    /// The token was already spent: its session has been revoked.
    Reused { session_id: String },
    /// No such token.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `bb_sk_…`: full access to the project's data, for servers.
    Secret,
    /// `bb_pk_…`: identifies the project in client apps; grants nothing by
    /// itself.
    Publishable,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Publishable => "publishable",
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "bb_sk_",
            KeyKind::Publishable => "bb_pk_",
        }
    }

    pub fn parse(raw: &str) -> Result<KeyKind, Error> {
        match raw {
            "secret" => Ok(KeyKind::Secret),
            "publishable" => Ok(KeyKind::Publishable),
            other => Err(Error::invalid(format!(
                "unknown key kind {other:?} (secret, publishable)"
            ))),
        }
    }
}

/// A project API key. The key itself is shown once; only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub project: ProjectId,
    pub name: String,
    pub kind: KeyKind,
    /// SHA-256 of the key, hex. Never serialized.
    #[serde(skip)]
    pub hash: String,
    /// The first characters of the key, to recognise it in a list.
    pub hint: String,
    pub created_at: u64,
    pub last_used_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

/// An Ed25519 key that signs access tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 document (private). Never logged.
    pub private_pkcs8: Vec<u8>,
    /// Raw 32-byte public key.
    pub public_key: Vec<u8>,
    pub created_at: u64,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_once() {
        let a = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "alice@example.com");
        // Composed and decomposed forms are the same address.
        let composed = Email::parse("jos\u{e9}@example.com").unwrap();
        let decomposed = Email::parse("jose\u{301}@example.com").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(
            Email::parse("ÉLODIE@EXAMPLE.COM").unwrap().as_str(),
            "élodie@example.com"
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@.com",
            "a@example.",
            "a@exa..mple.com",
            "a\u{0}@example.com",
            "'; DROP TABLE accounts; --@x.com",
            &long,
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! Typed, validated identifiers and time helpers.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// A project id: 1–63 characters of `a-z`, `0-9` and `-`, starting and ending
/// with a letter or digit (it is safe in URLs, DNS labels, file names and
/// Redis keys without escaping).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProjectId(String);

impl ProjectId {
    pub const MAX_LEN: usize = 63;

    pub fn new(value: impl Into<String>) -> Result<Self, Error> {
        let value = value.into();
        validate_slug("project id", &value, Self::MAX_LEN)?;
        Ok(ProjectId(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shared rule for slug-like ids (`a-z0-9-`, no leading/trailing `-`).
pub fn validate_slug(what: &str, value: &str, max_len: usize) -> Result<(), Error> {
    if value.is_empty() || value.len() > max_len {
        return Err(Error::invalid(format!(
            "{what} must be 1 to {max_len} characters"
        )));
    }
    let valid_chars = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_chars || value.starts_with('-') || value.ends_with('-') {
        return Err(Error::invalid(format!(
            "{what} may contain only a-z, 0-9 and '-', and may not start or end with '-'"
        )));
    }
    Ok(())
}

/// A project id reads as the text it is (`&project.id` where a `&str` is
/// wanted).
impl std::ops::Deref for ProjectId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ProjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ProjectId::new(s)
    }
}

impl<'de> Deserialize<'de> for ProjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        ProjectId::new(raw).map_err(serde::de::Error::custom)
    }
}

/// A random id of `bytes` bytes, hex encoded (from the OS CSPRNG).
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs() {
        for ok in ["a", "demo", "my-app-2", "0abc", &"x".repeat(63)] {
            assert!(ProjectId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "-a",
            "a-",
            "UPPER",
            "a b",
            "a/b",
            "a.b",
            "é",
            "a\0",
            &"x".repeat(64),
        ] {
            let err = ProjectId::new(bad).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn deserialization_validates() {
        assert!(serde_json::from_str::<ProjectId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<ProjectId>("\"../etc\"").is_err());
    }

    #[test]
    fn random_ids_are_distinct() {
        assert_eq!(random_hex(16).len(), 32);
        assert_ne!(random_hex(16), random_hex(16));
    }
}

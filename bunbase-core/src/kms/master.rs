//! The master key: 32 bytes that wrap every key version and secret value
//! at rest. It comes from `BUNKMS_MASTER_KEY` or `BUNKMS_MASTER_KEY_FILE`
//! (64 hex digits or base64 of 32 bytes; the file must be chmod 600), or —
//! only in explicit development mode — is generated into the data
//! directory. It is never logged, and zeroized when dropped.

use std::path::Path;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::crypto::{self, Material};
use crate::config::{read_secret_file, resolve_secret};
use crate::error::Error;

pub const ENV: &str = "BUNKMS_MASTER_KEY";
/// The development key's file name inside the data directory.
pub const DEV_FILE: &str = "dev-master-key";

pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    /// The first bytes of SHA-256 of the key: names it in stored rows (so
    /// starting with another master key fails clearly), reveals nothing.
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

/// Where the master key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Configured,
    /// Generated (or reused) in the data directory: development only.
    Development,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, Error> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::invalid(format!(
                "{ENV} must be 32 bytes (64 hex digits or base64); this one is {} bytes",
                bytes.len()
            ))
        })?;
        let digest = crypto::sha256(&key);
        Ok(MasterKey {
            key: Zeroizing::new(key),
            id: hex::encode(&digest[..8]),
        })
    }

    /// Parses 64 hex digits or the base64 of 32 bytes (whitespace around
    /// is ignored).
    pub fn parse(text: &str) -> Result<MasterKey, Error> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Zeroizing::new(
                hex::decode(text).map_err(|_| Error::invalid(format!("{ENV} is not valid hex")))?,
            )
        } else {
            Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| {
                        Error::invalid(format!("{ENV} must be 64 hex digits or base64 of 32 bytes"))
                    })?,
            )
        };
        MasterKey::from_bytes(&bytes)
    }

    /// The configured key (`value` or `file`, not both); else, when
    /// `dev_dir` is given, the development key in it (created on first
    /// use, mode 600). No key and no development mode is an error.
    pub fn load(
        value: Option<String>,
        file: Option<&Path>,
        dev_dir: Option<&Path>,
    ) -> Result<(MasterKey, Origin), Error> {
        if let Some(secret) = resolve_secret(ENV, value, file)? {
            return Ok((MasterKey::parse(secret.expose())?, Origin::Configured));
        }
        let Some(dir) = dev_dir else {
            return Err(Error::invalid(format!(
                "no master key: set {ENV} or {ENV}_FILE (32 bytes: `openssl rand -hex 32`), or start in development mode"
            )));
        };
        let path = dir.join(DEV_FILE);
        if !path.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::invalid(format!("cannot create {}: {e}", dir.display())))?;
            let fresh = crypto::random_bytes(32)?;
            crate::config::write_private_file(&path, hex::encode(&fresh[..]).as_bytes())?;
        }
        let secret = read_secret_file(&path)?;
        Ok((MasterKey::parse(secret.expose())?, Origin::Development))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wraps `plaintext` (nonce ‖ ciphertext ‖ tag), bound to `aad`.
    pub fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let (nonce, sealed) = crypto::seal(&self.key[..], aad, plaintext)?;
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Unwraps what [`MasterKey::wrap`] made with the same `aad`.
    pub fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Material, Error> {
        if wrapped.len() < 12 + 16 {
            return Err(Error::internal("wrapped key material is truncated"));
        }
        let (nonce, sealed) = wrapped.split_at(12);
        crypto::open(&self.key[..], nonce, aad, sealed).map_err(|_| {
            Error::internal(format!(
                "stored key material does not unwrap under master key {}: wrong master key, or the row was altered or moved",
                self.id
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bunkms-{}", crate::id::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_nothing_else() {
        let hex_key = "00".repeat(32);
        let b64 = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        assert_eq!(
            MasterKey::parse(&hex_key).unwrap().id(),
            MasterKey::parse(&b64).unwrap().id()
        );
        for bad in ["", "abc", &"00".repeat(31), &"00".repeat(33), "zz"] {
            assert!(MasterKey::parse(bad).is_err(), "{bad:?}");
        }
        let err = MasterKey::parse(&"00".repeat(16)).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn wrapping_is_bound_to_its_context_and_key() {
        let key = MasterKey::parse(&"11".repeat(32)).unwrap();
        let wrapped = key.wrap(b"p/k/1", b"material").unwrap();
        assert_eq!(&key.unwrap(b"p/k/1", &wrapped).unwrap()[..], b"material");
        assert!(
            key.unwrap(b"p/k/2", &wrapped).is_err(),
            "moved to another key"
        );
        let other = MasterKey::parse(&"22".repeat(32)).unwrap();
        let err = other.unwrap(b"p/k/1", &wrapped).unwrap_err();
        assert!(err.to_string().contains("wrong master key"));
        assert!(key.unwrap(b"p/k/1", &wrapped[..20]).is_err());
        assert!(
            !format!("{key:?}").contains("11"),
            "Debug shows the id only"
        );
    }

    #[test]
    fn no_key_refuses_unless_in_development_mode() {
        let err = MasterKey::load(None, None, None).unwrap_err();
        assert!(err.to_string().contains("no master key"), "{err}");
        let dir = temp_dir();
        let (first, origin) = MasterKey::load(None, None, Some(&dir)).unwrap();
        assert_eq!(origin, Origin::Development);
        let (again, _) = MasterKey::load(None, None, Some(&dir)).unwrap();
        assert_eq!(first.id(), again.id(), "the development key is reused");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(DEV_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A configured key wins over development mode.
        let (configured, origin) =
            MasterKey::load(Some("33".repeat(32)), None, Some(&dir)).unwrap();
        assert_eq!(origin, Origin::Configured);
        assert_ne!(configured.id(), first.id());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn key_files_must_be_private() {
        let dir = temp_dir();
        let path = dir.join("master");
        std::fs::write(&path, "44".repeat(32)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(
                MasterKey::load(None, Some(&path), None).is_err(),
                "world-readable"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(MasterKey::load(None, Some(&path), None).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }
}

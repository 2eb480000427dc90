//! The ciphertext format: self-describing and versioned, so rotation and
//! future formats never strand data.
//!
//! ```text
//! "BK" | format (1) | name length (1..=128) | key name | key version (u32 BE)
//!      | nonce (12) | ciphertext ‖ GCM tag (16)
//! ```
//!
//! Everything before the nonce (the header), the project id and the
//! caller's encryption context are the AEAD's associated data: a
//! ciphertext moved to another project, key or version, or decrypted with
//! another context, fails authentication.

use crate::error::Error;

const MAGIC: &[u8; 2] = b"BK";
pub const FORMAT: u8 = 1;
pub const MAX_NAME: usize = 128;
const NONCE: usize = 12;
const TAG: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphertext {
    pub key: String,
    pub version: u32,
    pub nonce: [u8; NONCE],
    /// Ciphertext with its tag.
    pub sealed: Vec<u8>,
}

impl Ciphertext {
    /// The header bytes (bound into the associated data).
    pub fn header(key: &str, version: u32) -> Result<Vec<u8>, Error> {
        if key.is_empty() || key.len() > MAX_NAME {
            return Err(Error::invalid(format!(
                "key names are 1 to {MAX_NAME} bytes"
            )));
        }
        let mut out = Vec::with_capacity(4 + key.len() + 4);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.push(key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&version.to_be_bytes());
        Ok(out)
    }

    /// The associated data for this header in `project` with `context`.
    pub fn aad(header: &[u8], project: &str, context: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(header.len() + project.len() + context.len() + 9);
        out.extend_from_slice(header);
        out.extend_from_slice(&(project.len() as u32).to_be_bytes());
        out.extend_from_slice(project.as_bytes());
        out.extend_from_slice(&(context.len() as u32).to_be_bytes());
        out.extend_from_slice(context);
        out
    }

    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Ciphertext::header(&self.key, self.version)?;
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
        Ok(out)
    }

    /// Refuses a ciphertext of another key than `name` (a request names
    /// the key it means; the ciphertext names the key that sealed it).
    pub fn expect_key(bytes: &[u8], name: &str) -> Result<(), Error> {
        let parsed = Ciphertext::decode(bytes)?;
        if parsed.key != name {
            return Err(Error::invalid(format!(
                "this ciphertext belongs to key {}, not {name}",
                parsed.key
            )));
        }
        Ok(())
    }

    /// Parses a ciphertext, with an error that says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Ciphertext, Error> {
        let bad = |what: &str| Error::invalid(format!("not a BunKMS ciphertext: {what}"));
        if bytes.len() < 4 || &bytes[..2] != MAGIC {
            return Err(bad("it does not start with the BunKMS marker"));
        }
        if bytes[2] != FORMAT {
            return Err(bad(&format!("unknown format version {}", bytes[2])));
        }
        let name_len = bytes[3] as usize;
        if name_len == 0 || name_len > MAX_NAME {
            return Err(bad("invalid key name length"));
        }
        let rest = &bytes[4..];
        if rest.len() < name_len + 4 + NONCE + TAG {
            return Err(bad("it is truncated"));
        }
        let key = std::str::from_utf8(&rest[..name_len])
            .map_err(|_| bad("the key name is not UTF-8"))?
            .to_string();
        let rest = &rest[name_len..];
        let version = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&rest[4..4 + NONCE]);
        Ok(Ciphertext {
            key,
            version,
            nonce,
            sealed: rest[4 + NONCE..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ciphertext {
        Ciphertext {
            key: "orders".into(),
            version: 7,
            nonce: [9; 12],
            sealed: vec![1; 20],
        }
    }

    #[test]
    fn round_trips() {
        let encoded = sample().encode().unwrap();
        assert_eq!(Ciphertext::decode(&encoded).unwrap(), sample());
    }

    #[test]
    fn garbage_gets_a_clear_error() {
        let encoded = sample().encode().unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("wrong marker", b"XX\x01\x06orders".to_vec()),
            ("future format", {
                let mut e = encoded.clone();
                e[2] = 9;
                e
            }),
            ("zero name length", {
                let mut e = encoded.clone();
                e[3] = 0;
                e
            }),
            ("truncated", encoded[..encoded.len() - 10].to_vec()),
            ("name not UTF-8", {
                let mut e = encoded.clone();
                e[4] = 0xff;
                e
            }),
        ];
        for (name, bytes) in cases {
            let err = Ciphertext::decode(&bytes).unwrap_err();
            assert!(
                err.to_string().starts_with("not a BunKMS ciphertext"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn associated_data_separates_projects_and_contexts() {
        let header = Ciphertext::header("k", 1).unwrap();
        let a = Ciphertext::aad(&header, "alpha", b"ctx");
        assert_ne!(a, Ciphertext::aad(&header, "beta", b"ctx"));
        assert_ne!(a, Ciphertext::aad(&header, "alpha", b"ctX"));
        // Length prefixes: moving bytes between project and context differs.
        assert_ne!(
            Ciphertext::aad(&header, "ab", b"c"),
            Ciphertext::aad(&header, "a", b"bc")
        );
        assert!(Ciphertext::header("", 1).is_err());
        assert!(Ciphertext::header(&"k".repeat(129), 1).is_err());
    }
}

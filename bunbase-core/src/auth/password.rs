//! Password hashing with Argon2id (OWASP parameters by default).

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::error::Error;

/// Shortest and longest accepted passwords, in characters / bytes.
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a random password, verified against when an email is
    /// unknown so that answer takes as long as a wrong password.
    decoy: String,
}

/// What verifying a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash uses other parameters than the current ones:
    /// re-hash and store it on this successful sign-in.
    pub needs_rehash: bool,
}

impl Passwords {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub fn owasp() -> Passwords {
        Self::with_params(
            Params::DEFAULT_M_COST,
            Params::DEFAULT_T_COST,
            Params::DEFAULT_P_COST,
        )
        .unwrap_or_else(|e| panic!("OWASP parameters are valid: {e}"))
    }

    /// Custom cost (tests use a cheap one).
    pub fn with_params(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Passwords, Error> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| Error::invalid(format!("invalid Argon2 parameters: {e}")))?;
        let mut passwords = Passwords {
            params,
            decoy: String::new(),
        };
        passwords.decoy = passwords.hash(&crate::id::random_hex(16))?;
        Ok(passwords)
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Checks a new password against the policy.
    pub fn check_policy(password: &str) -> Result<(), Error> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::invalid(format!(
                "password must be at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(Error::invalid(format!(
                "password must be at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, Error> {
        use rand::RngCore;
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        self.argon()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
    }

    /// Verifies `password` against a stored hash (constant time inside
    /// Argon2). An unparseable stored hash never matches.
    pub fn verify(&self, password: &str, stored: &str) -> Verified {
        let Ok(hash) = PasswordHash::new(stored) else {
            return Verified {
                matches: false,
                needs_rehash: false,
            };
        };
        let matches = self
            .argon()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        let same_cost = Params::try_from(&hash).is_ok_and(|p| {
            (p.m_cost(), p.t_cost(), p.p_cost())
                == (
                    self.params.m_cost(),
                    self.params.t_cost(),
                    self.params.p_cost(),
                )
        });
        let needs_rehash = matches && (hash.algorithm.as_str() != "argon2id" || !same_cost);
        Verified {
            matches,
            needs_rehash,
        }
    }

    /// Spends the same time as [`Passwords::verify`] and never matches (for
    /// unknown emails: no early return that timing could reveal).
    pub fn verify_decoy(&self, password: &str) -> Verified {
        let _ = self.verify(password, &self.decoy.clone());
        Verified {
            matches: false,
            needs_rehash: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::with_params(64, 1, 1).unwrap()
    }

    #[test]
    fn hashes_verify_and_differ() {
        let p = cheap();
        let a = p.hash("correct horse").unwrap();
        let b = p.hash("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
        assert!(p.verify("correct horse", &a).matches);
        assert!(!p.verify("correct horsE", &a).matches);
        assert!(!p.verify("x", "not a hash").matches);
        assert!(!p.verify_decoy("correct horse").matches);
    }

    #[test]
    fn changed_parameters_ask_for_a_rehash() {
        let old = Passwords::with_params(64, 1, 1).unwrap();
        let new = Passwords::with_params(128, 1, 1).unwrap();
        let stored = old.hash("correct horse").unwrap();
        let v = new.verify("correct horse", &stored);
        assert!(v.matches && v.needs_rehash);
        assert!(!old.verify("correct horse", &stored).needs_rehash);
        assert!(!new.verify("wrong password", &stored).needs_rehash);
    }

    #[test]
    fn policy() {
        assert!(Passwords::check_policy("short").is_err());
        assert!(Passwords::check_policy("long enough").is_ok());
        assert!(Passwords::check_policy(&"x".repeat(2000)).is_err());
    }
}

//! Access tokens: Ed25519-signed JWTs (`alg: EdDSA`) with a `kid`, from a
//! ring of signing keys. The newest key signs; every key in the ring
//! verifies, so rotation never breaks tokens already issued. The ring is
//! published as a JWKS so any standard JWT library can verify our tokens.

use std::collections::HashMap;
use std::sync::RwLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::model::{SigningKey, SubjectKind};
use crate::error::Error;

/// The audience of every access token we issue.
pub const AUDIENCE: &str = "bunbase";
/// Clock skew tolerated when checking `exp`/`nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Account id or end-user id.
    pub sub: String,
    /// Session id (revoked sessions' tokens stop resolving).
    pub sid: String,
    pub kind: SubjectKind,
    /// The end user's project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prj: Option<String>,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
}

struct Loaded {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_key: Vec<u8>,
    created_at: u64,
}

/// The signing keys in memory.
pub struct KeyRing {
    issuer: String,
    keys: RwLock<Vec<Loaded>>,
}

/// A new Ed25519 signing key (from the OS CSPRNG).
pub fn generate_key(now: u64) -> Result<SigningKey, Error> {
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| Error::internal("Ed25519 key generation failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())
        .map_err(|e| Error::internal(format!("Ed25519 key rejected: {e}")))?;
    Ok(SigningKey {
        kid: format!("k{}", crate::id::random_hex(8)),
        private_pkcs8: document.as_ref().to_vec(),
        public_key: pair.public_key().as_ref().to_vec(),
        created_at: now,
    })
}

impl KeyRing {
    pub fn new(issuer: &str, keys: &[SigningKey]) -> Result<KeyRing, Error> {
        let ring = KeyRing {
            issuer: issuer.to_string(),
            keys: RwLock::new(Vec::new()),
        };
        ring.replace(keys)?;
        Ok(ring)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Replaces the ring with `keys` (any order; the newest signs).
    pub fn replace(&self, keys: &[SigningKey]) -> Result<(), Error> {
        let mut loaded = keys
            .iter()
            .map(|k| {
                Ed25519KeyPair::from_pkcs8(&k.private_pkcs8).map_err(|e| {
                    Error::internal(format!("signing key {} is corrupt: {e}", k.kid))
                })?;
                Ok(Loaded {
                    kid: k.kid.clone(),
                    encoding: EncodingKey::from_ed_der(&k.private_pkcs8),
                    decoding: DecodingKey::from_ed_der(&k.public_key),
                    public_key: k.public_key.clone(),
                    created_at: k.created_at,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        loaded.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.kid.cmp(&a.kid)));
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// When the signing key was created (0 with no keys).
    pub fn newest_created_at(&self) -> u64 {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .map_or(0, |k| k.created_at)
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|k| k.kid == kid)
    }

    /// Signs `claims` with the newest key.
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys
            .first()
            .ok_or_else(|| Error::unavailable("no signing key loaded"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| Error::internal(format!("signing failed: {e}")))
    }

    /// The `kid` of a token, if it is a well-formed JWT for our algorithm.
    pub fn kid_of(token: &str) -> Result<String, Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::Unauthenticated("malformed token".into()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(Error::Unauthenticated(
                "token algorithm not accepted".into(),
            ));
        }
        header
            .kid
            .ok_or_else(|| Error::Unauthenticated("token has no key id".into()))
    }

    /// Verifies signature (by `kid`), algorithm, issuer, audience and times.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let kid = Self::kid_of(token)?;
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| Error::Unauthenticated("token signed by an unknown key".into()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let message = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not valid yet",
                    ErrorKind::InvalidIssuer => "token from another issuer",
                    ErrorKind::InvalidAudience => "token for another audience",
                    ErrorKind::InvalidSignature => "token signature invalid",
                    _ => "invalid token",
                };
                Error::Unauthenticated(message.into())
            })
    }

    /// The public keys as a JWKS document (RFC 7517, OKP keys of RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let list: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(&k.public_key),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": list })
    }

    /// kid → creation time, for pruning.
    pub fn ages(&self) -> HashMap<String, u64> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|k| (k.kid.clone(), k.created_at))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(issuer: &str, exp_offset: i64) -> Claims {
        let now = crate::id::now_millis() / 1000;
        Claims {
            iss: issuer.into(),
            aud: AUDIENCE.into(),
            sub: "acc_1".into(),
            sid: "ses_1".into(),
            kind: SubjectKind::Account,
            prj: None,
            iat: now,
            nbf: now,
            exp: (now as i64 + exp_offset) as u64,
            jti: "j".into(),
        }
    }

    #[test]
    fn signs_verifies_and_rotates() {
        let old = generate_key(1).unwrap();
        let ring = KeyRing::new("https://x/api", std::slice::from_ref(&old)).unwrap();
        let token = ring.sign(&claims("https://x/api", 900)).unwrap();
        assert_eq!(ring.verify(&token).unwrap().sub, "acc_1");
        // Rotate: the new key signs, the old one still verifies.
        let new = generate_key(2).unwrap();
        ring.replace(&[old.clone(), new.clone()]).unwrap();
        let fresh = ring.sign(&claims("https://x/api", 900)).unwrap();
        assert_eq!(KeyRing::kid_of(&fresh).unwrap(), new.kid);
        assert!(ring.verify(&token).is_ok());
        // Once the old key is gone, its tokens no longer verify.
        ring.replace(&[new]).unwrap();
        assert!(ring.verify(&token).is_err());
        assert!(ring.verify(&fresh).is_ok());
    }

    #[test]
    fn refuses_bad_tokens() {
        let ring = KeyRing::new("iss", &[generate_key(1).unwrap()]).unwrap();
        let good = ring.sign(&claims("iss", 900)).unwrap();
        let expired = ring.sign(&claims("iss", -3600)).unwrap();
        let other_issuer = ring.sign(&claims("evil", 900)).unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let tampered_payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("iss", 90000)).unwrap());
        parts[1] = &tampered_payload;
        let tampered = parts.join(".");
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let alg_none = format!("{none_header}.{}.", good.split('.').nth(1).unwrap());
        let hs_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"x"}"#);
        let alg_hs = format!("{hs_header}.{}.sig", good.split('.').nth(1).unwrap());
        let other_ring = KeyRing::new("iss", &[generate_key(1).unwrap()]).unwrap();
        let wrong_kid = other_ring.sign(&claims("iss", 900)).unwrap();
        for (name, token) in [
            ("expired", expired.as_str()),
            ("other issuer", other_issuer.as_str()),
            ("tampered", tampered.as_str()),
            ("alg none", alg_none.as_str()),
            ("alg HS256", alg_hs.as_str()),
            ("unknown kid", wrong_kid.as_str()),
            ("garbage", "not.a.jwt"),
            ("empty", ""),
        ] {
            let err = ring.verify(token).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::Unauthenticated, "{name}");
        }
        assert!(ring.verify(&good).is_ok());
    }

    #[test]
    fn jwks_lists_public_keys_only() {
        let key = generate_key(1).unwrap();
        let ring = KeyRing::new("iss", std::slice::from_ref(&key)).unwrap();
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"][0]["kid"], key.kid.as_str());
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        let x = jwks["keys"][0]["x"].as_str().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(x).unwrap(), key.public_key);
        // A standard library verifies our token from the JWKS alone.
        let token = ring.sign(&claims("iss", 900)).unwrap();
        let decoding = DecodingKey::from_ed_components(x).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).is_ok());
    }
}

//! The primitives BunKMS uses, all from aws-lc-rs (never hand-rolled):
//! AES-256-GCM with random 96-bit nonces, Ed25519, ECDSA P-256 (SHA-256,
//! ASN.1 signatures) and HMAC-SHA256. Key material is zeroized on drop.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, UnparsedPublicKey,
};
use aws_lc_rs::{hmac, signature};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;

/// Bytes that must not outlive their use: zeroized when dropped.
pub type Material = Zeroizing<Vec<u8>>;

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Encrypt,
    Sign,
    Mac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "AES-256-GCM")]
    Aes256Gcm,
    #[serde(rename = "Ed25519")]
    Ed25519,
    #[serde(rename = "ECDSA-P256-SHA256")]
    EcdsaP256,
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Aes256Gcm,
        Algorithm::Ed25519,
        Algorithm::EcdsaP256,
        Algorithm::HmacSha256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "AES-256-GCM",
            Algorithm::Ed25519 => "Ed25519",
            Algorithm::EcdsaP256 => "ECDSA-P256-SHA256",
            Algorithm::HmacSha256 => "HMAC-SHA256",
        }
    }

    pub fn parse(name: &str) -> Result<Algorithm, Error> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown algorithm {name:?}; one of AES-256-GCM, Ed25519, ECDSA-P256-SHA256, HMAC-SHA256"
                ))
            })
    }

    pub fn purpose(self) -> Purpose {
        match self {
            Algorithm::Aes256Gcm => Purpose::Encrypt,
            Algorithm::Ed25519 | Algorithm::EcdsaP256 => Purpose::Sign,
            Algorithm::HmacSha256 => Purpose::Mac,
        }
    }

    /// The algorithm a new key of `purpose` gets: the one named, which must
    /// serve that purpose, else the purpose's default.
    pub fn for_purpose(purpose: Purpose, named: Option<&str>) -> Result<Algorithm, Error> {
        let Some(name) = named else {
            return Ok(Algorithm::default_for(purpose));
        };
        let algorithm = Algorithm::parse(name)?;
        if algorithm.purpose() != purpose {
            return Err(Error::invalid(format!(
                "{} is not a {purpose:?} algorithm",
                algorithm.name()
            )));
        }
        Ok(algorithm)
    }

    /// The algorithm a purpose gets when none is named.
    pub fn default_for(purpose: Purpose) -> Algorithm {
        match purpose {
            Purpose::Encrypt => Algorithm::Aes256Gcm,
            Purpose::Sign => Algorithm::Ed25519,
            Purpose::Mac => Algorithm::HmacSha256,
        }
    }
}

fn rng() -> SystemRandom {
    SystemRandom::new()
}

fn crypto_failure(what: &str) -> Error {
    Error::internal(format!("crypto failure: {what}"))
}

/// Random bytes from the operating system's CSPRNG.
pub fn random_bytes(len: usize) -> Result<Material, Error> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    rng()
        .fill(&mut out)
        .map_err(|_| crypto_failure("random generator"))?;
    Ok(out)
}

/// New key material for `algorithm`: raw 32 bytes for AES and HMAC, a
/// PKCS#8 document for the signing algorithms.
pub fn generate(algorithm: Algorithm) -> Result<Material, Error> {
    match algorithm {
        Algorithm::Aes256Gcm | Algorithm::HmacSha256 => random_bytes(32),
        Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng())
            .map(|doc| Zeroizing::new(doc.as_ref().to_vec()))
            .map_err(|_| crypto_failure("Ed25519 key generation")),
        Algorithm::EcdsaP256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng())
                .map(|doc| Zeroizing::new(doc.as_ref().to_vec()))
                .map_err(|_| crypto_failure("ECDSA key generation"))
        }
    }
}

fn aes_key(key: &[u8]) -> Result<LessSafeKey, Error> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| crypto_failure("AES key of the wrong length"))
}

/// AES-256-GCM with a fresh random nonce: `(nonce, ciphertext ‖ tag)`.
pub fn seal(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>), Error> {
    let key = aes_key(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng()
        .fill(&mut nonce)
        .map_err(|_| crypto_failure("random generator"))?;
    let mut in_out = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut in_out,
    )
    .map_err(|_| crypto_failure("seal"))?;
    Ok((nonce, in_out))
}

/// Opens what [`seal`] made. Any change to the key, nonce, AAD or bytes is
/// the same error (the caller says which input to suspect).
pub fn open(key: &[u8], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Material, Error> {
    let key = aes_key(key)?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| Error::invalid("the ciphertext's nonce has the wrong length"))?;
    let mut in_out = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut in_out)
        .map_err(|_| {
            Error::invalid(
                "decryption failed: the ciphertext was altered, or the key or context does not match",
            )
        })?
        .len();
    in_out.truncate(len);
    Ok(in_out)
}

/// Signs `message` with a signing key's PKCS#8 material.
pub fn sign(algorithm: Algorithm, material: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
    match algorithm {
        Algorithm::Ed25519 => Ed25519KeyPair::from_pkcs8(material)
            .map(|pair| pair.sign(message).as_ref().to_vec())
            .map_err(|_| crypto_failure("Ed25519 key material")),
        Algorithm::EcdsaP256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, material)
                .map_err(|_| crypto_failure("ECDSA key material"))?;
            pair.sign(&rng(), message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| crypto_failure("ECDSA signing"))
        }
        other => Err(Error::invalid(format!("{} keys do not sign", other.name()))),
    }
}

/// The public key of a signing key (raw Ed25519, or an uncompressed
/// SEC1 point for P-256).
pub fn public_key(algorithm: Algorithm, material: &[u8]) -> Result<Vec<u8>, Error> {
    match algorithm {
        Algorithm::Ed25519 => Ed25519KeyPair::from_pkcs8(material)
            .map(|pair| pair.public_key().as_ref().to_vec())
            .map_err(|_| crypto_failure("Ed25519 key material")),
        Algorithm::EcdsaP256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, material)
            .map(|pair| pair.public_key().as_ref().to_vec())
            .map_err(|_| crypto_failure("ECDSA key material")),
        other => Err(Error::invalid(format!(
            "{} keys have no public key",
            other.name()
        ))),
    }
}

/// Whether `sig` is a valid signature of `message` by `public`.
pub fn verify(
    algorithm: Algorithm,
    public: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<bool, Error> {
    let alg: &'static dyn signature::VerificationAlgorithm = match algorithm {
        Algorithm::Ed25519 => &ED25519,
        Algorithm::EcdsaP256 => &ECDSA_P256_SHA256_ASN1,
        other => {
            return Err(Error::invalid(format!(
                "{} keys do not verify signatures",
                other.name()
            )));
        }
    };
    Ok(UnparsedPublicKey::new(alg, public)
        .verify(message, sig)
        .is_ok())
}

/// HMAC-SHA256 of `message`.
pub fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

/// Checks a MAC in constant time.
pub fn verify_mac(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), message, tag).is_ok()
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_algorithm_must_serve_the_purpose() {
        assert_eq!(
            Algorithm::for_purpose(Purpose::Sign, None).unwrap(),
            Algorithm::Ed25519
        );
        assert_eq!(
            Algorithm::for_purpose(Purpose::Sign, Some("ecdsa-p256-sha256")).unwrap(),
            Algorithm::EcdsaP256
        );
        let err = Algorithm::for_purpose(Purpose::Encrypt, Some("HMAC-SHA256")).unwrap_err();
        assert!(err.to_string().contains("not a Encrypt algorithm"), "{err}");
        assert!(Algorithm::for_purpose(Purpose::Mac, Some("rot13")).is_err());
    }

    #[test]
    fn aes_gcm_round_trips_and_detects_every_change() {
        let key = generate(Algorithm::Aes256Gcm).unwrap();
        let (nonce, sealed) = seal(&key, b"ctx", b"hello").unwrap();
        assert_eq!(&open(&key, &nonce, b"ctx", &sealed).unwrap()[..], b"hello");
        let (nonce2, _) = seal(&key, b"ctx", b"hello").unwrap();
        assert_ne!(nonce, nonce2, "nonces are random");
        assert!(open(&key, &nonce, b"other", &sealed).is_err(), "wrong AAD");
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(
            open(&key, &nonce, b"ctx", &tampered).is_err(),
            "altered bytes"
        );
        let other = generate(Algorithm::Aes256Gcm).unwrap();
        assert!(open(&other, &nonce, b"ctx", &sealed).is_err(), "wrong key");
        assert!(
            open(&key, &nonce[..11], b"ctx", &sealed).is_err(),
            "short nonce"
        );
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
            let material = generate(alg).unwrap();
            let public = public_key(alg, &material).unwrap();
            let sig = sign(alg, &material, b"message").unwrap();
            assert!(verify(alg, &public, b"message", &sig).unwrap(), "{alg:?}");
            assert!(!verify(alg, &public, b"messagE", &sig).unwrap(), "{alg:?}");
            let other = public_key(alg, &generate(alg).unwrap()).unwrap();
            assert!(!verify(alg, &other, b"message", &sig).unwrap(), "{alg:?}");
        }
        assert!(sign(Algorithm::Aes256Gcm, &[0; 32], b"m").is_err());
    }

    #[test]
    fn macs_verify_in_constant_time() {
        let key = generate(Algorithm::HmacSha256).unwrap();
        let tag = mac(&key, b"m");
        assert_eq!(tag.len(), 32);
        assert!(verify_mac(&key, b"m", &tag));
        assert!(!verify_mac(&key, b"n", &tag));
        assert!(!verify_mac(&key, b"m", &tag[..31]));
    }

    #[test]
    fn algorithms_parse_by_name_and_know_their_purpose() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.name()).unwrap(), alg);
            assert_eq!(
                Algorithm::default_for(alg.purpose()).purpose(),
                alg.purpose()
            );
        }
        assert!(Algorithm::parse("DES").is_err());
    }
}

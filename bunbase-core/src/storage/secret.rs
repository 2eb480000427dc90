//! The storage secret: 32 bytes an instance (and its replicas) share. It
//! signs URLs and seals the S3 credentials' secrets at rest; changing it
//! voids every signed URL and S3 credential.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::Error;

pub struct StorageSecret {
    signing: hmac::Key,
    sealing: LessSafeKey,
}

impl StorageSecret {
    /// From 32 raw bytes: one key signs, a key derived from it seals.
    pub fn new(bytes: &[u8; 32]) -> StorageSecret {
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let derive = |label: &[u8]| Zeroizing::new(hmac::sign(&root, label).as_ref().to_vec());
        let signing = hmac::Key::new(
            hmac::HMAC_SHA256,
            &derive(b"bunbase storage signed urls v1"),
        );
        let sealing_key = derive(b"bunbase storage s3 credentials v1");
        let sealing = UnboundKey::new(&AES_256_GCM, &sealing_key)
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("AES-256 takes a 32-byte key"));
        StorageSecret { signing, sealing }
    }

    /// Parses 64 hex digits or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<StorageSecret, Error> {
        use base64::Engine;
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                Error::invalid(
                    "the storage secret must be 64 hex digits or base64 of 32 bytes (openssl rand -hex 32)",
                )
            })?;
        let mut raw = Zeroizing::new([0u8; 32]);
        raw.copy_from_slice(&bytes);
        Ok(StorageSecret::new(&raw))
    }

    /// A fresh random secret, as text for a file.
    pub fn generate_text() -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(raw.as_mut());
        Zeroizing::new(hex::encode(raw.as_ref()))
    }

    pub(crate) fn sign(&self, message: &[u8]) -> String {
        hex::encode(hmac::sign(&self.signing, message).as_ref())
    }

    /// Whether `signature` (hex) signs `message`, in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &str) -> bool {
        hex::decode(signature).is_ok_and(|tag| hmac::verify(&self.signing, message, &tag).is_ok())
    }

    /// Seals `plain` bound to `context` (nonce ‖ ciphertext ‖ tag).
    pub(crate) fn seal(&self, plain: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = plain.to_vec();
        self.sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut data,
            )
            .map_err(|_| Error::internal("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    pub(crate) fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::internal("sealed value too short"));
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::internal("sealed value has a bad nonce"))?;
        let mut data = Zeroizing::new(data.to_vec());
        let plain = self
            .sealing
            .open_in_place(nonce, Aad::from(context), &mut data)
            .map_err(|_| {
                Error::internal("a sealed S3 secret does not open: was the storage secret changed?")
            })?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_bound_to_context_and_signs() {
        let secret = StorageSecret::new(&[7; 32]);
        let sealed = secret.seal(b"s3cr3t", b"AK1").unwrap();
        assert_eq!(secret.open(&sealed, b"AK1").unwrap().as_slice(), b"s3cr3t");
        assert!(secret.open(&sealed, b"AK2").is_err());
        let other = StorageSecret::new(&[8; 32]);
        assert!(other.open(&sealed, b"AK1").is_err());
        let sig = secret.sign(b"m");
        assert!(secret.verify(b"m", &sig));
        assert!(!secret.verify(b"n", &sig));
        assert!(!other.verify(b"m", &sig));
        assert!(!secret.verify(b"m", "zz"));
        assert!(StorageSecret::parse(&StorageSecret::generate_text()).is_ok());
        assert!(StorageSecret::parse("short").is_err());
    }
}

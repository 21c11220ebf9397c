//! Secret generation, digests, constant-time comparison and sealing of
//! secrets that must be shown again later.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{DomainError, DomainResult};

/// Prefixes make leaked secrets recognisable to scanners.
pub mod prefix {
    pub const API_KEY: &str = "kwapi_";
    pub const SETUP_TOKEN: &str = "kwsetup_";
}

/// 192 random bits from the OS CSPRNG, URL-safe, behind a prefix.
pub fn generate(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 24];
    OsRng.fill_bytes(&mut bytes);
    SecretString::from(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The key that encrypts secrets at rest. Zeroized on drop, never printed.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    pub const ENCODED_LEN: usize = 43;

    pub fn generate() -> (MasterKey, SecretString) {
        let mut bytes = Box::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        let encoded = SecretString::from(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
        (MasterKey(SecretBox::new(bytes)), encoded)
    }

    /// Parses the file format: the key as unpadded URL-safe base64.
    pub fn from_encoded(text: &str) -> Result<MasterKey, String> {
        let decoded = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| "is not base64 (URL-safe, unpadded)".to_string())?;
        let bytes: [u8; 32] = decoded
            .try_into()
            .map_err(|_| "must hold exactly 32 bytes".to_string())?;
        Ok(MasterKey(SecretBox::new(Box::new(bytes))))
    }

    /// A key for one purpose, derived from this one (HMAC-SHA256 of the
    /// purpose): the audit chain's MAC, the sign-in throttle's digests.
    pub fn derive(&self, purpose: &str) -> SubKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret()).expect("any key length");
        mac.update(b"keyward/");
        mac.update(purpose.as_bytes());
        SubKey(SecretBox::new(Box::new(mac.finalize().into_bytes().into())))
    }

    /// Whether `other` is this same key (constant time).
    pub fn same_as(&self, other: &MasterKey) -> bool {
        ct_eq(self.0.expose_secret(), other.0.expose_secret())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.expose_secret().into())
    }

    /// Encrypts with a fresh nonce; `context` binds the ciphertext to its
    /// purpose and row, so it cannot be swapped into another place.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> DomainResult<Vec<u8>> {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| DomainError::Internal("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens `sealed` with this key and seals it again with `new`, for the
    /// same context (a master-key rotation).
    pub(crate) fn reseal(&self, new: &MasterKey, sealed: &[u8], context: &str) -> DomainResult<Vec<u8>> {
        let plain = zeroize::Zeroizing::new(self.open(sealed, context)?);
        new.seal(&plain, context)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> DomainResult<Vec<u8>> {
        if sealed.len() < 24 {
            return Err(DomainError::Internal("sealed value too short".into()));
        }
        let (nonce, ct) = sealed.split_at(24);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| DomainError::Internal("decryption failed: wrong master key or tampered data".into()))
    }
}

/// A derived key ([`MasterKey::derive`]). Zeroized on drop, never printed.
pub struct SubKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for SubKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubKey([REDACTED])")
    }
}

impl SubKey {
    /// A fresh random key.
    pub(crate) fn generate() -> SubKey {
        let mut bytes = Box::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        SubKey(SecretBox::new(bytes))
    }

    /// A key from its 32 bytes (as unsealed from the database).
    pub(crate) fn from_bytes(bytes: &[u8]) -> DomainResult<SubKey> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| DomainError::Internal("a sealed key is not 32 bytes".into()))?;
        Ok(SubKey(SecretBox::new(Box::new(bytes))))
    }

    /// The key's bytes, to seal them.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    /// A second copy, for a second owner.
    pub(crate) fn duplicate(&self) -> SubKey {
        SubKey(SecretBox::new(Box::new(*self.0.expose_secret())))
    }

    /// HMAC-SHA256 over `parts`, each length-prefixed so that no two
    /// different lists give the same input.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret()).expect("any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    #[cfg(test)]
    pub fn for_tests() -> SubKey {
        SubKey(SecretBox::new(Box::new([7; 32])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_master() {
        let (a, _) = MasterKey::generate();
        let (b, _) = MasterKey::generate();
        let m = |k: &MasterKey, p: &str| k.derive(p).mac(&[b"x"]);
        assert_eq!(m(&a, "audit"), m(&a, "audit"));
        assert_ne!(m(&a, "audit"), m(&a, "throttle"));
        assert_ne!(m(&a, "audit"), m(&b, "audit"));
        assert_ne!(
            a.derive("audit").mac(&[b"ab", b"c"]),
            a.derive("audit").mac(&[b"a", b"bc"])
        );
        assert_eq!(format!("{:?}", a.derive("audit")), "SubKey([REDACTED])");
    }

    #[test]
    fn generated_secrets_are_prefixed_and_distinct() {
        let a = generate(prefix::API_KEY);
        let b = generate(prefix::API_KEY);
        assert!(a.expose_secret().starts_with("kwapi_"));
        assert_eq!(a.expose_secret().len(), "kwapi_".len() + 32);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn seal_round_trips_and_rejects_other_context_or_key() {
        let (key, encoded) = MasterKey::generate();
        let sealed = key.seal(b"secret", "admin-token:1").unwrap();
        assert_eq!(key.open(&sealed, "admin-token:1").unwrap(), b"secret");
        assert!(key.open(&sealed, "admin-token:2").is_err());
        let (other, _) = MasterKey::generate();
        assert!(other.open(&sealed, "admin-token:1").is_err());
        let same = MasterKey::from_encoded(encoded.expose_secret()).unwrap();
        assert_eq!(same.open(&sealed, "admin-token:1").unwrap(), b"secret");
    }

    #[test]
    fn master_key_file_format_is_checked_and_debug_is_redacted() {
        assert!(MasterKey::from_encoded("not base64!").is_err());
        assert!(MasterKey::from_encoded("AAAA").is_err());
        let (key, _) = MasterKey::generate();
        assert_eq!(format!("{key:?}"), "MasterKey([REDACTED])");
    }
}

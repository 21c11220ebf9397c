//! Access tokens and auth tokens: signed, so verifying one costs an HMAC
//! and a look at the in-memory revocation view, never a database query.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};

use crate::domain::credentials::signing::SigningKeys;

pub const ACCESS_PREFIX: &str = "kwat_";
pub const AUTH_PREFIX: &str = "kwauth_";

/// What an access token says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Session id: revoking it kills this one token.
    pub sid: String,
    /// Keyward's id of the end user.
    pub uid: String,
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "d")]
    pub device_id: String,
    pub iat: i64,
    pub exp: i64,
}

pub fn sign_access(keys: &SigningKeys, claims: &AccessClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let mut mac = keys.mac_access();
    mac.update(payload.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{ACCESS_PREFIX}{payload}.{sig}")
}

/// Checks the signature (in constant time) and decodes. Expiry and
/// revocation are the caller's next checks.
pub fn verify_access(keys: &SigningKeys, token: &str) -> Option<AccessClaims> {
    let body = token.strip_prefix(ACCESS_PREFIX)?;
    let (payload, sig) = body.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let mut mac = keys.mac_access();
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 16;

fn auth_mac(keys: &SigningKeys, user_id: &str, nonce: &[u8], exp: i64) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = keys.mac_auth();
    mac.update(&(user_id.len() as u64).to_be_bytes());
    mac.update(user_id.as_bytes());
    mac.update(nonce);
    mac.update(&exp.to_be_bytes());
    mac
}

/// An auth token for `user_id`, valid until `exp` (ms). 61 characters.
pub fn mint_auth(keys: &SigningKeys, user_id: &str, exp: i64) -> String {
    // 80 random bits after the time: the redemption log appends in order.
    let nonce: [u8; NONCE_LEN] = crate::domain::ids::time_ordered();
    let tag = auth_mac(keys, user_id, &nonce, exp).finalize().into_bytes();
    let mut raw = Vec::with_capacity(NONCE_LEN + 8 + MAC_LEN);
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&exp.to_be_bytes());
    raw.extend_from_slice(&tag[..MAC_LEN]);
    format!("{AUTH_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// A verified auth token: its nonce (to record the redemption) and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthGrant {
    pub nonce: Vec<u8>,
    pub exp: i64,
}

/// Verifies that `token` was minted for `user_id`. Expiry is checked by the caller.
pub fn verify_auth(keys: &SigningKeys, user_id: &str, token: &str) -> Option<AuthGrant> {
    let raw = URL_SAFE_NO_PAD.decode(token.strip_prefix(AUTH_PREFIX)?).ok()?;
    if raw.len() != NONCE_LEN + 8 + MAC_LEN {
        return None;
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let (exp, tag) = rest.split_at(8);
    let exp = i64::from_be_bytes(exp.try_into().ok()?);
    auth_mac(keys, user_id, nonce, exp).verify_truncated_left(tag).ok()?;
    Some(AuthGrant {
        nonce: nonce.to_vec(),
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            sid: crate::domain::ids::random_id(),
            uid: "u1".into(),
            user_id: "alice".into(),
            device_id: "phone".into(),
            iat: 1,
            exp: 2,
        }
    }

    #[test]
    fn access_tokens_verify_and_reject_tampering() {
        let keys = SigningKeys::for_tests();
        let c = claims();
        let token = sign_access(&keys, &c);
        assert!(token.starts_with(ACCESS_PREFIX));
        assert_eq!(verify_access(&keys, &token), Some(c));
        let mut forged = token.clone();
        forged.replace_range(10..11, if &token[10..11] == "A" { "B" } else { "A" });
        assert_eq!(verify_access(&keys, &forged), None);
        assert_eq!(verify_access(&keys, "kwat_abc"), None);
        assert_eq!(verify_access(&keys, &token.replace(ACCESS_PREFIX, "")), None);
    }

    #[test]
    fn auth_tokens_are_bound_to_their_user_and_short() {
        let keys = SigningKeys::for_tests();
        let token = mint_auth(&keys, "alice", 99);
        assert!(token.len() <= 100, "fits the session API's authToken limit");
        let grant = verify_auth(&keys, "alice", &token).unwrap();
        assert_eq!(grant.exp, 99);
        assert_eq!(verify_auth(&keys, "bob", &token), None);
        assert_eq!(verify_auth(&keys, "alice", &token[..token.len() - 1]), None);
        assert_ne!(mint_auth(&keys, "alice", 99), token, "a fresh nonce each time");
    }
}

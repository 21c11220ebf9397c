//! The signing key behind access tokens and auth tokens. One random key,
//! sealed with the master key in the database, from which a sub-key per
//! token kind is derived, so one kind can never pass for the other.

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use sqlx::AnyConnection;

use crate::domain::secrets::MasterKey;
use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult};

type HmacSha256 = Hmac<Sha256>;

const KEY_ID: &str = "primary";
const CONTEXT: &str = "signing-key:primary";

pub struct SigningKeys {
    access: SecretBox<[u8; 32]>,
    auth: SecretBox<[u8; 32]>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys([REDACTED])")
    }
}

fn derive(root: &[u8], label: &str) -> SecretBox<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(root).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    SecretBox::new(Box::new(mac.finalize().into_bytes().into()))
}

impl SigningKeys {
    /// Derives the subkeys from a root key (public for the benchmarks).
    pub fn from_root(root: &[u8]) -> SigningKeys {
        SigningKeys {
            access: derive(root, "keyward access token v1"),
            auth: derive(root, "keyward auth token v1"),
        }
    }

    pub fn mac_access(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.access.expose_secret()).expect("HMAC takes any key length")
    }

    pub fn mac_auth(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.auth.expose_secret()).expect("HMAC takes any key length")
    }

    #[cfg(test)]
    pub fn for_tests() -> SigningKeys {
        SigningKeys::from_root(&[7u8; 32])
    }
}

/// Loads the signing key, creating it on first start. Creation is an
/// audited change, so two instances starting at once cannot both make one.
pub async fn load_or_create(db: &Db, master: &MasterKey) -> DomainResult<SigningKeys> {
    if let Some(keys) = load(db, master).await? {
        return Ok(keys);
    }
    let mut change = db.change().await?;
    let existing: Option<(Vec<u8>,)> = sqlx::query_as("SELECT sealed FROM signing_keys WHERE id = $1")
        .bind(KEY_ID)
        .fetch_optional(change.conn())
        .await?;
    if existing.is_some() {
        drop(change);
        return load(db, master)
            .await?
            .ok_or_else(|| DomainError::Internal("signing key vanished".into()));
    }
    let mut root = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut root);
    let sealed = master.seal(&root, CONTEXT)?;
    sqlx::query("INSERT INTO signing_keys (id, sealed, created_at) VALUES ($1, $2, $3)")
        .bind(KEY_ID)
        .bind(sealed)
        .bind(now_ms())
        .execute(change.conn())
        .await?;
    change
        .commit(AuditEvent::new("system", "signing_key.create", KEY_ID))
        .await?;
    Ok(SigningKeys::from_root(&root))
}

/// Re-seals the signing keys with `new` (a master-key rotation).
pub(in crate::domain) async fn reseal(
    conn: &mut AnyConnection,
    old: &MasterKey,
    new: &MasterKey,
) -> DomainResult<usize> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT id, sealed FROM signing_keys")
        .fetch_all(&mut *conn)
        .await?;
    for (id, sealed) in &rows {
        sqlx::query("UPDATE signing_keys SET sealed = $1 WHERE id = $2")
            .bind(old.reseal(new, sealed, CONTEXT)?)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

async fn load(db: &Db, master: &MasterKey) -> DomainResult<Option<SigningKeys>> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT sealed FROM signing_keys WHERE id = $1")
        .bind(KEY_ID)
        .fetch_optional(db.read())
        .await?;
    match row {
        Some((sealed,)) => Ok(Some(SigningKeys::from_root(&master.open(&sealed, CONTEXT)?))),
        None => Ok(None),
    }
}

//! The data's own keys, and the master key's rotation.
//!
//! The audit chain's MAC key and the sign-in throttle's digest key live in
//! the database (`sealed_keys`), sealed with the master key as one value,
//! so rotating the master key re-seals them instead of changing what they
//! sign. The audit chain also gets a fresh key at each rotation, used from
//! the rotating event on (an epoch): whoever held the old master key can
//! forge no later event, nor change an earlier one, since every event's
//! MAC covers the one before it. The epochs and where each begins are
//! sealed together with the keys, so they cannot be moved or dropped
//! without the current master key either.
//!
//! A database from before the table (and a new one) starts at epoch 0 with
//! the keys that were derived from the master key, sealed here by the
//! first server to start on it.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::domain::audit::{self, AuditEvent};
use crate::domain::principal::{Credential, Principal};
use crate::domain::secrets::{MasterKey, SubKey};
use crate::domain::storage::db::{Backend, Db};
use crate::domain::{DomainError, DomainResult};

/// Binds the sealed value to its purpose and format.
const CONTEXT: &str = "sealed-keys:v1";

fn wrong_master_key() -> DomainError {
    DomainError::invalid(
        "this master key does not open this database: use the server's key file (KEYWARD_MASTER_KEY_FILE); \
         after `keyward master-key rotate`, that is the new key",
    )
}

/// The audit chain's key of one epoch: it MACs events from `from_seq` on.
pub(crate) struct EpochKey {
    pub(crate) epoch: i64,
    pub(crate) from_seq: i64,
    pub(crate) key: SubKey,
}

/// The keys of the data, opened.
pub struct KeyRing {
    /// Ascending by epoch, from 0 without a gap; never empty.
    audit: Vec<EpochKey>,
    throttle: SubKey,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("audit_epochs", &self.audit.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The epoch new events are written under.
    pub(crate) fn current(&self) -> &EpochKey {
        self.audit.last().expect("a key ring has an audit key")
    }

    /// Every epoch, oldest first.
    pub(crate) fn epochs(&self) -> &[EpochKey] {
        &self.audit
    }

    /// The key that MACs event `seq`.
    pub(crate) fn audit_key_for(&self, seq: i64) -> &SubKey {
        self.audit
            .iter()
            .rev()
            .find(|k| k.from_seq <= seq)
            .map_or(&self.audit[0].key, |k| &k.key)
    }

    pub(crate) fn throttle_key(&self) -> SubKey {
        self.throttle.duplicate()
    }

    /// The keys a database had before they were sealed: derived from the
    /// master key (epoch 0).
    fn legacy(master: &MasterKey) -> KeyRing {
        KeyRing {
            audit: vec![EpochKey {
                epoch: 0,
                from_seq: 1,
                key: master.derive(audit::KEY_PURPOSE),
            }],
            throttle: master.derive(crate::domain::admins::throttle::KEY_PURPOSE),
        }
    }

    /// The sealed form's plaintext: the throttle key, then each epoch as
    /// (epoch, first event, key), integers big-endian.
    fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(32 + self.audit.len() * 48));
        out.extend_from_slice(self.throttle.expose());
        for k in &self.audit {
            out.extend_from_slice(&k.epoch.to_be_bytes());
            out.extend_from_slice(&k.from_seq.to_be_bytes());
            out.extend_from_slice(k.key.expose());
        }
        out
    }

    fn decode(plain: &[u8]) -> DomainResult<KeyRing> {
        let bad = || DomainError::Internal("the sealed keys are malformed".into());
        let (throttle, mut rest) = plain.split_at_checked(32).ok_or_else(bad)?;
        let mut audit: Vec<EpochKey> = Vec::new();
        while !rest.is_empty() {
            let (entry, tail) = rest.split_at_checked(48).ok_or_else(bad)?;
            let int = |b: &[u8]| i64::from_be_bytes(b.try_into().expect("8 bytes"));
            let (epoch, from_seq) = (int(&entry[..8]), int(&entry[8..16]));
            // Epochs count up from 0, each starting after the last.
            let follows = match audit.last() {
                None => epoch == 0,
                Some(prev) => epoch == prev.epoch + 1 && from_seq > prev.from_seq,
            };
            if !follows {
                return Err(bad());
            }
            audit.push(EpochKey {
                epoch,
                from_seq,
                key: SubKey::from_bytes(&entry[16..])?,
            });
            rest = tail;
        }
        if audit.is_empty() {
            return Err(bad());
        }
        Ok(KeyRing {
            audit,
            throttle: SubKey::from_bytes(throttle)?,
        })
    }

    fn seal(&self, master: &MasterKey) -> DomainResult<Vec<u8>> {
        master.seal(&self.encode(), CONTEXT)
    }

    fn unseal(sealed: &[u8], master: &MasterKey) -> DomainResult<KeyRing> {
        let plain = zeroize::Zeroizing::new(master.open(sealed, CONTEXT).map_err(|_| wrong_master_key())?);
        KeyRing::decode(&plain)
    }
}

async fn sealed(conn: &mut AnyConnection) -> DomainResult<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT sealed FROM sealed_keys WHERE id = 1")
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(s,)| s))
}

/// Opens the data's keys with `master`; another master key is refused.
/// On a database whose keys were never sealed, the key is checked against
/// the one the audit chain was written with and, when it is the server's
/// own (`record`), the keys are sealed for good.
pub async fn open(db: &Db, master: &MasterKey, record: bool) -> DomainResult<KeyRing> {
    if let Some(found) = sealed(&mut *db.read().acquire().await?).await? {
        return KeyRing::unseal(&found, master);
    }
    let legacy = KeyRing::legacy(master);
    audit::check_legacy_key(db, &legacy.current().key, record).await?;
    if !record {
        return Ok(legacy);
    }
    // Two first starts at once: one inserts, both hold the same keys. What
    // is stored is read back: had a rotation sealed the keys meanwhile,
    // this key would not open them, and the start is refused.
    sqlx::query("INSERT INTO sealed_keys (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(legacy.seal(master)?)
        .execute(db.write())
        .await?;
    let stored = sealed(&mut *db.write().acquire().await?)
        .await?
        .ok_or_else(|| DomainError::Internal("the sealed keys vanished".into()))?;
    KeyRing::unseal(&stored, master)
}

/// What a master-key rotation re-sealed, by kind.
#[derive(Debug, Clone, Serialize)]
pub struct Resealed {
    pub signing_keys: usize,
    pub admin_tokens: usize,
    pub ca_keys: usize,
    pub one_time_reveals: usize,
    /// Admins' authenticator-app secrets.
    pub totp_secrets: usize,
    /// Webhook endpoints' signing secrets.
    pub webhook_secrets: usize,
    /// The audit chain's new epoch.
    pub audit_epoch: i64,
}

impl crate::domain::Keyward {
    /// Re-seals every sealed secret with `new` in one transaction, and
    /// starts a new audit-key epoch with the rotation's own event; from
    /// then on the current master key opens nothing. The operator's alone
    /// (it holds both keys). Instances still running with the old key
    /// refuse changes (see [`Db::change`]) until restarted with the new.
    pub async fn rotate_master_key(&self, who: &Principal, new: &MasterKey) -> DomainResult<Resealed> {
        if who.credential != Credential::Operator {
            return Err(DomainError::Forbidden);
        }
        let old = &self.master_key;
        if old.same_as(new) {
            return Err(DomainError::Conflict("that key is already the master key".into()));
        }
        let mut change = self.db.change().await?;
        if audit::chain_state_in(change.conn()).await? != audit::ChainState::Keyed {
            return Err(DomainError::Conflict(
                "the audit chain is not keyed yet: run `keyward audit rekey` first".into(),
            ));
        }
        let backend = self.db.backend();
        let conn = change.conn();
        // The keys as sealed (or, never sealed yet, as derived), with a
        // new epoch whose key MACs this very event.
        let mut ring = match sealed(conn).await? {
            Some(found) => KeyRing::unseal(&found, old)?,
            None => KeyRing::legacy(old),
        };
        let (epoch,): (i64,) = sqlx::query_as("SELECT key_epoch FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        if epoch != ring.current().epoch {
            return Err(DomainError::Internal(format!(
                "the audit head's key epoch {epoch} is not the sealed keys' {}",
                ring.current().epoch
            )));
        }
        let audit_epoch = epoch + 1;
        let key = SubKey::generate();
        ring.audit.push(EpochKey {
            epoch: audit_epoch,
            from_seq: change.seq(),
            key: key.duplicate(),
        });
        let conn = change.conn();
        sqlx::query(
            "INSERT INTO sealed_keys (id, sealed) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed",
        )
        .bind(ring.seal(new)?)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE audit_head SET key_epoch = $1 WHERE id = 1")
            .bind(audit_epoch)
            .execute(&mut *conn)
            .await?;
        let signing_keys = crate::domain::credentials::signing::reseal(conn, old, new).await?;
        let admin_tokens = crate::domain::credentials::admin_tokens::reseal(conn, old, new).await?;
        let ca_keys = crate::domain::pki::ca::reseal(conn, old, new).await?;
        let one_time_reveals =
            crate::domain::admins::console_sessions::reseal(conn, backend == Backend::Postgres, old, new).await?;
        let totp_secrets = crate::domain::admins::second_factor::reseal(conn, old, new).await?;
        let webhook_secrets = crate::domain::webhooks::reseal(conn, old, new).await?;
        change.use_key(key);
        let resealed = Resealed {
            signing_keys,
            admin_tokens,
            ca_keys,
            one_time_reveals,
            totp_secrets,
            webhook_secrets,
            audit_epoch,
        };
        let detail = serde_json::to_value(&resealed).map_err(|e| DomainError::Internal(e.to_string()))?;
        change
            .commit(
                AuditEvent::new(who.name(), "master_key.rotated", "master key")
                    .detail(detail)
                    .source(who.source()),
            )
            .await?;
        Ok(resealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_epoch(mut ring: KeyRing, from_seq: i64) -> KeyRing {
        let epoch = ring.current().epoch + 1;
        ring.audit.push(EpochKey {
            epoch,
            from_seq,
            key: SubKey::generate(),
        });
        ring
    }

    #[test]
    fn each_event_is_checked_with_the_key_of_its_epoch() {
        let (master, _) = MasterKey::generate();
        let ring = with_epoch(KeyRing::legacy(&master), 10);
        let mac = |k: &SubKey| k.mac(&[b"x"]);
        let (zero, one) = (mac(&ring.audit[0].key), mac(&ring.audit[1].key));
        assert_ne!(zero, one);
        assert_eq!(mac(ring.audit_key_for(1)), zero);
        assert_eq!(mac(ring.audit_key_for(9)), zero);
        assert_eq!(mac(ring.audit_key_for(10)), one);
        assert_eq!(mac(ring.audit_key_for(11)), one);
        assert_eq!(ring.current().epoch, 1);
    }

    #[test]
    fn the_keys_and_their_epochs_open_with_their_master_key_only() {
        let (master, _) = MasterKey::generate();
        let (other, _) = MasterKey::generate();
        let ring = with_epoch(with_epoch(KeyRing::legacy(&master), 10), 25);
        let sealed = ring.seal(&master).unwrap();
        let opened = KeyRing::unseal(&sealed, &master).unwrap();
        assert_eq!(opened.encode().as_slice(), ring.encode().as_slice());
        assert_eq!(
            opened.epochs().iter().map(|k| k.from_seq).collect::<Vec<_>>(),
            [1, 10, 25]
        );
        let refused = KeyRing::unseal(&sealed, &other).unwrap_err();
        assert!(refused.to_string().contains("does not open"), "{refused}");
    }

    #[test]
    fn epochs_must_count_up_from_zero() {
        let (master, _) = MasterKey::generate();
        let ring = with_epoch(KeyRing::legacy(&master), 10);
        let good = ring.encode();
        assert!(KeyRing::decode(&good).is_ok());
        let mut skipped = good.to_vec();
        skipped[32 + 48 + 7] = 2; // the second epoch numbered 2
        assert!(KeyRing::decode(&skipped).is_err());
        let mut backwards = good.to_vec();
        backwards[32 + 48 + 15] = 1; // the second epoch starting at event 1
        assert!(KeyRing::decode(&backwards).is_err());
        assert!(KeyRing::decode(&good[..good.len() - 1]).is_err(), "a truncated entry");
        assert!(KeyRing::decode(&good[..32]).is_err(), "no audit key");
    }
}

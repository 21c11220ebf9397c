//! tower-sessions storage in Keyward's own database, on either backend.
//! (The sqlx store crate needs a backend-specific pool; this one rides the
//! same `Any` pools as everything else.) Rows are keyed by a SHA-256 of the
//! session id, so a copy of the table holds no usable cookie.

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::SessionStore;

use crate::domain::clock::now_ms;
use crate::domain::secrets::sha256;
use crate::domain::storage::db::Db;

/// Session entries under this prefix hold a secret sealed with the master
/// key ([`Keyward::seal_for_session`]), waiting to be shown once.
///
/// [`Keyward::seal_for_session`]: crate::domain::Keyward::seal_for_session
pub const SEALED_PREFIX: &str = "keyward.reveal.";

/// Binds a sealed entry to its session slot.
pub(in crate::domain) fn sealed_context(entry: &str) -> String {
    format!("console-reveal:{entry}")
}

/// Re-seals the secrets waiting in live console sessions with `new` (a
/// master-key rotation), the rows locked (`lock_rows`, PostgreSQL; SQLite's
/// write transaction holds them already) so a concurrent save cannot put
/// back what it read before. An entry that does not open is dropped: it
/// is a one-time reveal nobody could see, and the secret can be asked for
/// again. A row whose data is not a session (nothing can load it) is left.
pub(in crate::domain) async fn reseal(
    conn: &mut sqlx::AnyConnection,
    lock_rows: bool,
    old: &crate::domain::secrets::MasterKey,
    new: &crate::domain::secrets::MasterKey,
) -> crate::domain::DomainResult<usize> {
    use serde_json::{Map, Value};
    let query = format!(
        "SELECT id_digest, data FROM console_sessions WHERE expires_at > $1 AND data LIKE $2{}",
        if lock_rows { " FOR UPDATE" } else { "" }
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&query)
        .bind(now_ms())
        .bind(format!("%{SEALED_PREFIX}%"))
        .fetch_all(&mut *conn)
        .await?;
    let mut resealed = 0;
    for (id, data) in rows {
        let Ok(mut entries) = serde_json::from_str::<Map<String, Value>>(&data) else {
            continue;
        };
        let sealed_entries: Vec<String> = entries
            .keys()
            .filter(|k| k.starts_with(SEALED_PREFIX))
            .cloned()
            .collect();
        for entry in sealed_entries {
            let again = serde_json::from_value::<Vec<u8>>(entries[&entry].clone())
                .ok()
                .and_then(|sealed| old.reseal(new, &sealed, &sealed_context(&entry)).ok());
            match again {
                Some(sealed) => {
                    entries.insert(entry, Value::from(sealed));
                    resealed += 1;
                }
                None => {
                    entries.remove(&entry);
                }
            }
        }
        let data = serde_json::to_string(&entries)
            .map_err(|e| crate::domain::DomainError::Internal(format!("a console session: {e}")))?;
        sqlx::query("UPDATE console_sessions SET data = $1 WHERE id_digest = $2")
            .bind(data)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(resealed)
}

#[derive(Debug, Clone)]
pub struct SqlSessionStore {
    db: Db,
}

impl SqlSessionStore {
    pub fn new(db: Db) -> Self {
        SqlSessionStore { db }
    }

    /// Deletes expired sessions; run periodically in the background.
    pub async fn delete_expired(&self) -> std::result::Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(self.db.write())
            .await?;
        Ok(done.rows_affected())
    }
}

fn key(id: &Id) -> String {
    hex::encode(sha256(id.to_string().as_bytes()))
}

fn expiry_ms(record: &Record) -> i64 {
    (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        // A collision of 128-bit ids is unlikely, but never overwrite one.
        loop {
            let done = sqlx::query(
                "INSERT INTO console_sessions (id_digest, data, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id_digest) DO NOTHING",
            )
            .bind(key(&record.id))
            .bind(&data)
            .bind(expiry_ms(record))
            .execute(self.db.write())
            .await
            .map_err(backend)?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates only: a request still in flight must not bring back a
    /// session that sign-out (or a new sign-in) has just deleted.
    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        sqlx::query("UPDATE console_sessions SET data = $1, expires_at = $2 WHERE id_digest = $3")
            .bind(&data)
            .bind(expiry_ms(record))
            .bind(key(&record.id))
            .execute(self.db.write())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT data, expires_at FROM console_sessions WHERE id_digest = $1 AND expires_at > $2")
                .bind(key(id))
                .bind(now_ms())
                .fetch_optional(self.db.read())
                .await
                .map_err(backend)?;
        let Some((data, expires_at)) = row else { return Ok(None) };
        let data = serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_digest = $1")
            .bind(key(id))
            .execute(self.db.write())
            .await
            .map_err(backend)?;
        Ok(())
    }
}

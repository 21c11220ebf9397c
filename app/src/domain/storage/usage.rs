//! Bookkeeping that must not slow a request down: last-used times of keys
//! and tokens, and the count of sessions opened without an auth token.
//! Requests note them in memory; a background task writes them in batches
//! (and once more at shutdown).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::storage::db::Db;
use crate::domain::DomainResult;

#[derive(Debug, Default)]
struct Pending {
    server_keys: HashMap<String, i64>,
    admin_tokens: HashMap<String, i64>,
    /// By the 16 bytes of the row id: a session of a user seen in the last
    /// seconds costs no allocation, and a million of them under half the
    /// memory they took as strings.
    end_users: HashMap<[u8; 16], i64>,
    /// Users whose row id is not Keyward's 32 lowercase hex digits.
    other_end_users: HashMap<String, i64>,
    unsecured_by_hour: HashMap<i64, i64>,
}

#[derive(Debug, Default)]
pub struct Usage {
    pending: Mutex<Pending>,
    /// One flush at a time: a flush that returns has waited for any flush
    /// already under way (the background task's), so what that one had
    /// taken is written too, unless its write failed (then it is logged).
    flushing: tokio::sync::Mutex<()>,
}

const HOUR_MS: i64 = 3_600_000;

impl Usage {
    pub fn server_key_used(&self, id: &str, at: i64) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .server_keys
            .insert(id.to_string(), at);
    }

    pub fn admin_token_used(&self, id: &str, at: i64) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admin_tokens
            .insert(id.to_string(), at);
    }

    /// An end user used an access token (or opened a session).
    pub fn end_user_seen(&self, id: &str, at: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match crate::domain::ids::id_bytes(id) {
            Some(bytes) => pending.end_users.insert(bytes, at),
            None => pending.other_end_users.insert(id.to_string(), at),
        };
    }

    pub fn unsecured_session(&self, at: i64) {
        *self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unsecured_by_hour
            .entry(at / HOUR_MS)
            .or_default() += 1;
    }

    /// Writes what accumulated, in one transaction.
    pub async fn flush(&self, db: &Db) -> DomainResult<()> {
        let _one_at_a_time = self.flushing.lock().await;
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.server_keys.is_empty()
            && batch.admin_tokens.is_empty()
            && batch.end_users.is_empty()
            && batch.other_end_users.is_empty()
            && batch.unsecured_by_hour.is_empty()
        {
            return Ok(());
        }
        // Rows in one order, whoever flushes (another instance too): two
        // flushes never lock the same rows in opposite orders.
        let sorted = |m: &HashMap<String, i64>| {
            let mut v: Vec<(String, i64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
            v.sort();
            v
        };
        let mut tx = db.write().begin().await?;
        for (id, at) in &sorted(&batch.server_keys) {
            sqlx::query("UPDATE server_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for (id, at) in &sorted(&batch.admin_tokens) {
            sqlx::query("UPDATE admin_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let mut hours: Vec<(i64, i64)> = batch.unsecured_by_hour.iter().map(|(h, n)| (*h, *n)).collect();
        hours.sort();
        for (hour, n) in &hours {
            sqlx::query(
                "INSERT INTO unsecured_session_counts (hour, count) VALUES ($1, $2) \
                 ON CONFLICT (hour) DO UPDATE SET count = unsecured_session_counts.count + excluded.count",
            )
            .bind(hour)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // End users can be many (one per session): one statement per chunk,
        // and a transaction per chunk, so the batching writer, which shares
        // SQLite's one write connection, never waits long behind this.
        // Ids as text only a chunk at a time (bytes sort as their
        // lowercase hex does): a flush holds no second copy of them all.
        let mut other: Vec<(String, i64)> = batch.other_end_users.into_iter().collect();
        other.sort_unstable();
        for chunk in other.chunks(LAST_SEEN_ROWS) {
            write_last_seen(db, chunk).await?;
        }
        let mut seen: Vec<([u8; 16], i64)> = batch.end_users.into_iter().collect();
        seen.sort_unstable();
        for chunk in seen.chunks(LAST_SEEN_ROWS) {
            let chunk: Vec<(String, i64)> = chunk.iter().map(|(id, at)| (hex::encode(id), *at)).collect();
            write_last_seen(db, &chunk).await?;
        }
        Ok(())
    }
}

/// One statement for a chunk of end users' last-seen times.
async fn write_last_seen(db: &Db, chunk: &[(String, i64)]) -> DomainResult<()> {
    let sql = format!(
        "UPDATE end_users SET last_seen_at = v.column2 FROM (VALUES {}) AS v \
         WHERE end_users.id = v.column1 AND (end_users.last_seen_at IS NULL OR end_users.last_seen_at < v.column2)",
        db.param_rows(chunk.len(), 2)
    );
    let mut q = sqlx::query(&sql);
    for (id, at) in chunk {
        q = q.bind(id).bind(*at);
    }
    q.execute(db.write()).await?;
    Ok(())
}

/// Rows per last-seen statement (two parameters each).
const LAST_SEEN_ROWS: usize = 500;

/// Sessions opened without an auth token in the last 24 hours (as flushed).
pub async fn unsecured_sessions_last_day(db: &Db, now: i64) -> DomainResult<i64> {
    let (n,): (Option<i64>,) =
        sqlx::query_as("SELECT CAST(SUM(count) AS BIGINT) FROM unsecured_session_counts WHERE hour >= $1")
            .bind(now / HOUR_MS - 23)
            .fetch_one(db.read())
            .await?;
    Ok(n.unwrap_or(0))
}

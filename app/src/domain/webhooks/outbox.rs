//! The outbox: one row per event and endpoint, written inside the change
//! that makes the audit event, claimed by one instance at a time (a lease,
//! taken with `FOR UPDATE SKIP LOCKED` on PostgreSQL), and marked with
//! what its last attempt got, by the holder of that lease only.

use sqlx::AnyConnection;

use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::ids::ordered_id;
use crate::domain::storage::db::{Backend, Db};
use crate::domain::DomainResult;

use super::events;

/// Deliveries are given up this long after their event.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 3600 * 1000;
/// An instance holds a claimed delivery this long: more than a send can
/// take (its timeout), so only a dead instance's claim runs out.
pub const LEASE_MS: i64 = 30_000;
/// The first retry's delay; each next one doubles, up to [`MAX_DELAY_MS`].
pub const FIRST_DELAY_MS: i64 = 5_000;
pub const MAX_DELAY_MS: i64 = 3600 * 1000;

/// Writes the deliveries `event` (audit event `seq`) raises, inside its
/// change; says whether there are any. A test event goes to the one
/// endpoint it names.
pub(crate) async fn enqueue(conn: &mut AnyConnection, seq: i64, event: &AuditEvent) -> DomainResult<bool> {
    let raised = events::raised_by(event.action, &event.detail);
    if raised.is_empty() {
        return Ok(false);
    }
    let endpoints: Vec<(String, String)> = sqlx::query_as("SELECT id, events FROM webhook_endpoints WHERE enabled = 1")
        .fetch_all(&mut *conn)
        .await?;
    let now = now_ms();
    let mut any = false;
    for (endpoint, subscribed) in &endpoints {
        for name in &raised {
            // A test goes to its endpoint alone; an endpoint is not told
            // of its own creation or enabling (the answer says so).
            let wanted = if *name == "webhook.test" {
                *endpoint == event.target
            } else if name.starts_with("webhook.") && *endpoint == event.target {
                false
            } else {
                subscribed.split(',').any(|s| s == events::ALL || s == *name)
            };
            if !wanted {
                continue;
            }
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, endpoint_id, seq, event, state, attempts, next_at, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
            )
            .bind(ordered_id())
            .bind(endpoint)
            .bind(seq)
            .bind(*name)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            any = true;
        }
    }
    Ok(any)
}

/// A delivery this instance holds, to send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub endpoint_id: String,
    pub seq: i64,
    pub event: String,
    /// Counting this one.
    pub attempts: i64,
    pub created_at: i64,
    /// The lease taken: what this instance records is kept only while
    /// the row still holds it (not cancelled, not claimed again).
    pub lease_until: i64,
}

/// Takes up to `n` due deliveries of enabled endpoints for this instance,
/// the oldest due one of each endpoint and none of the endpoints in
/// `busy` (being sent to already): an endpoint that answers slowly, or
/// never, holds up its own deliveries only.
pub async fn claim(db: &Db, n: i64, busy: &[String]) -> DomainResult<Vec<Claimed>> {
    let now = now_ms();
    // Looked for from a reader first: most polls find nothing, and on
    // SQLite an UPDATE, even of no row, takes the one writer the hot path
    // batches its writes through.
    let due: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_at <= $1 AND lease_until <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(db.read())
    .await?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    let lease_until = now + LEASE_MS;
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let not_busy = if busy.is_empty() {
        String::new()
    } else {
        let params: Vec<String> = (4..4 + busy.len()).map(|i| format!("${i}")).collect();
        format!("AND d.endpoint_id NOT IN ({})", params.join(", "))
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until = $1, attempts = attempts + 1 WHERE id IN ( \
           SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
           WHERE d.state = 'pending' AND d.next_at <= $2 AND d.lease_until <= $2 AND e.enabled = 1 {not_busy} \
             AND d.id = (SELECT f.id FROM webhook_deliveries f WHERE f.endpoint_id = d.endpoint_id \
                           AND f.state = 'pending' AND f.next_at <= $2 AND f.lease_until <= $2 \
                           ORDER BY f.next_at, f.id LIMIT 1) \
           ORDER BY d.next_at LIMIT $3 {lock}) \
         RETURNING id, endpoint_id, seq, event, attempts, created_at"
    );
    let mut query = sqlx::query_as(&sql).bind(lease_until).bind(now).bind(n);
    for endpoint in busy {
        query = query.bind(endpoint);
    }
    let rows: Vec<(String, String, i64, String, i64, i64)> = query.fetch_all(db.write()).await?;
    Ok(rows
        .into_iter()
        .map(|(id, endpoint_id, seq, event, attempts, created_at)| Claimed {
            id,
            endpoint_id,
            seq,
            event,
            attempts,
            created_at,
            lease_until,
        })
        .collect())
}

/// What an attempt got.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The receiver's status code, if it answered.
    pub status: Option<u16>,
    /// Why it failed, in words; `None` when it succeeded.
    pub error: Option<String>,
}

/// The delay before attempt `attempts + 1`: 5 s, 10 s, 20 s… up to an
/// hour, with up to a tenth more at random so failed endpoints' retries
/// spread out.
pub fn backoff_ms(attempts: i64) -> i64 {
    use rand::Rng;
    let doublings = attempts.clamp(1, 20) - 1;
    let base = FIRST_DELAY_MS.saturating_mul(1 << doublings).min(MAX_DELAY_MS);
    base + rand::thread_rng().gen_range(0..=base / 10)
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Delivered,
    /// Tried again later.
    Retry,
    /// Given up: 24 hours of failures.
    Failed,
    /// No longer this instance's to record: cancelled (its endpoint was
    /// disabled) or claimed again after this lease ran out.
    Lost,
}

/// Records an attempt's outcome, if the delivery is still this lease's;
/// a delivery failing for 24 hours is given up. Then keeps the endpoint's
/// `failing_since`. Each statement commits on its own: a transaction held
/// open across awaits would keep SQLite's write lock while this task
/// waits, and the endpoint's mark need not move with the delivery.
pub async fn record(db: &Db, d: &Claimed, outcome: &Outcome) -> DomainResult<After> {
    let now = now_ms();
    let code = outcome.status.map(i64::from);
    let give_up = now - d.created_at >= GIVE_UP_AFTER_MS;
    let (state, after) = match (&outcome.error, give_up) {
        (None, _) => ("delivered", After::Delivered),
        (Some(_), false) => ("pending", After::Retry),
        (Some(_), true) => ("failed", After::Failed),
    };
    let kept = sqlx::query(
        "UPDATE webhook_deliveries SET state = $1, last_at = $2, response_code = $3, last_error = $4, \
         next_at = $5, lease_until = 0 WHERE id = $6 AND state = 'pending' AND lease_until = $7",
    )
    .bind(state)
    .bind(now)
    .bind(code)
    .bind(outcome.error.as_deref())
    .bind(now + backoff_ms(d.attempts))
    .bind(&d.id)
    .bind(d.lease_until)
    .execute(db.write())
    .await?
    .rows_affected();
    // The receiver answered: it works, whatever became of this row.
    if after == After::Delivered {
        sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
            .bind(&d.endpoint_id)
            .execute(db.write())
            .await?;
    }
    if kept == 0 {
        return Ok(After::Lost);
    }
    if after != After::Delivered {
        sqlx::query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL")
            .bind(now)
            .bind(&d.endpoint_id)
            .execute(db.write())
            .await?;
    }
    Ok(after)
}

/// Forgets finished deliveries older than `keep_ms`.
pub async fn forget_old(db: &Db, keep_ms: i64) -> DomainResult<u64> {
    Ok(
        sqlx::query("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1")
            .bind(now_ms() - keep_ms)
            .execute(db.write())
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::storage::db::test_support::temp_sqlite;

    /// A failure of a delivery a day old gives it up; a younger one is
    /// tried again later; a row no longer holding the lease is left alone.
    #[tokio::test]
    async fn a_delivery_failing_for_a_day_is_given_up() {
        let (db, dir) = temp_sqlite("outbox").await;
        db.migrate().await.unwrap();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, description, events, secret_sealed, enabled, created_at, \
             created_by, updated_at) VALUES ('e', 'https://example.com/', '', '*', $1, 1, $2, 'ops', $2)",
        )
        .bind(vec![0u8; 4])
        .bind(now)
        .execute(db.write())
        .await
        .unwrap();
        let failed = Outcome {
            status: Some(500),
            error: Some("answered 500".into()),
        };
        let mut outcomes = Vec::new();
        for (id, age) in [("old", GIVE_UP_AFTER_MS + 1), ("young", 60_000)] {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, endpoint_id, seq, event, state, attempts, next_at, lease_until, \
                 created_at) VALUES ($1, 'e', 1, 'webhook.test', 'pending', 1, 0, 7, $2)",
            )
            .bind(id)
            .bind(now - age)
            .execute(db.write())
            .await
            .unwrap();
            let claimed = Claimed {
                id: id.into(),
                endpoint_id: "e".into(),
                seq: 1,
                event: "webhook.test".into(),
                attempts: 1,
                created_at: now - age,
                lease_until: 7,
            };
            outcomes.push(record(&db, &claimed, &failed).await.unwrap());
            // Recorded once: the lease is no longer this claim's.
            outcomes.push(record(&db, &claimed, &failed).await.unwrap());
        }
        let states: Vec<(String, String)> = sqlx::query_as("SELECT id, state FROM webhook_deliveries ORDER BY id")
            .fetch_all(db.read())
            .await
            .unwrap();
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(outcomes, [After::Failed, After::Lost, After::Retry, After::Lost]);
        assert_eq!(
            states,
            [
                ("old".to_string(), "failed".to_string()),
                ("young".to_string(), "pending".to_string())
            ]
        );
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let within = |attempts, base: i64| {
            let d = backoff_ms(attempts);
            assert!((base..=base + base / 10).contains(&d), "attempt {attempts}: {d}");
        };
        within(1, 5_000);
        within(2, 10_000);
        within(3, 20_000);
        within(10, 2_560_000);
        within(11, MAX_DELAY_MS);
        within(1000, MAX_DELAY_MS);
        within(0, 5_000);
    }
}

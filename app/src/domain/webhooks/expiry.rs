//! Expiry announcements: an admin token or client certificate about to
//! expire (30, 7 and 1 days ahead) or expired is announced once per stage
//! as an audit event, which raises its webhook event. Looked for at start
//! and hourly; a stage passed while Keyward was down is announced late,
//! and only the latest stage reached (no burst of stale ones). A stage
//! that began before the credential was issued is not announced (a
//! certificate valid for a week is not "expiring" when it is issued), nor
//! the expiry of one that lived a day or less.

use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use crate::domain::audit::AuditEvent;
use crate::domain::clock::{iso, now_ms};
use crate::domain::{DomainResult, Keyward};

const DAY_MS: i64 = 24 * 3600 * 1000;
const EVERY: Duration = Duration::from_secs(3600);
/// What expired longer ago than this is not announced (a first start on
/// an old database does not announce history).
const EXPIRED_WITHIN_MS: i64 = 7 * DAY_MS;

/// Announcements made are forgotten after this long (the credential is
/// long gone by then).
const FORGET_AFTER_MS: i64 = 90 * DAY_MS;

/// The stage a credential issued at `issued_at` and expiring at
/// `expires_at` has reached at `now`, if any worth announcing.
fn stage(issued_at: i64, expires_at: i64, now: i64) -> Option<(&'static str, Option<i64>)> {
    let left = expires_at - now;
    let (stage, days) = match left {
        _ if left <= 0 => ("expired", None),
        _ if left <= DAY_MS => ("1d", Some(1)),
        _ if left <= 7 * DAY_MS => ("7d", Some(7)),
        _ if left <= 30 * DAY_MS => ("30d", Some(30)),
        _ => return None,
    };
    let opened = expires_at - days.unwrap_or(1) * DAY_MS;
    (issued_at <= opened).then_some((stage, days))
}

pub(in crate::domain) async fn watch(kw: Keyward, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = announce(&kw).await {
            tracing::warn!(error = %e, "could not announce expiring credentials");
        }
        if let Err(e) = sqlx::query("DELETE FROM expiry_notices WHERE at < $1")
            .bind(now_ms() - FORGET_AFTER_MS)
            .execute(kw.db.write())
            .await
        {
            tracing::warn!(error = %e, "could not forget old expiry announcements");
        }
    }
}

/// One subject and what to say of it.
struct Due {
    /// `admin_token:<id>` or `certificate:<id>`: the notice's key.
    subject: String,
    kind: &'static str,
    target: String,
    id: String,
    issued_at: i64,
    expires_at: i64,
}

/// Announces every stage reached and not yet announced; says how many.
pub(in crate::domain) async fn announce(kw: &Keyward) -> DomainResult<usize> {
    let now = now_ms();
    let (soonest, latest) = (now - EXPIRED_WITHIN_MS, now + 30 * DAY_MS);
    let tokens: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT t.id, u.username, t.issued_at, t.expires_at FROM admin_tokens t JOIN admin_users u ON u.id = t.admin_id \
         WHERE t.state = 'current' AND t.expires_at > $1 AND t.expires_at <= $2",
    )
    .bind(soonest)
    .bind(latest)
    .fetch_all(kw.db.read())
    .await?;
    let certificates: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, name, not_before, not_after FROM certificates \
         WHERE revoked_at IS NULL AND renewed_as IS NULL AND not_after > $1 AND not_after <= $2",
    )
    .bind(soonest)
    .bind(latest)
    .fetch_all(kw.db.read())
    .await?;
    let due = tokens
        .into_iter()
        .map(|(id, username, issued_at, expires_at)| Due {
            subject: format!("admin_token:{id}"),
            kind: "admin_token",
            target: username,
            id,
            issued_at,
            expires_at,
        })
        .chain(certificates.into_iter().map(|(id, name, not_before, not_after)| Due {
            subject: format!("certificate:{id}"),
            kind: "certificate",
            target: name,
            id,
            issued_at: not_before,
            expires_at: not_after,
        }));
    let mut made = 0;
    for d in due {
        let Some((stage, days)) = stage(d.issued_at, d.expires_at, now) else {
            continue;
        };
        let seen: Option<(String,)> =
            sqlx::query_as("SELECT stage FROM expiry_notices WHERE subject = $1 AND stage = $2")
                .bind(&d.subject)
                .bind(stage)
                .fetch_optional(kw.db.read())
                .await?;
        if seen.is_some() {
            continue;
        }
        let mut change = kw.db.change().await?;
        // Another instance may have announced it meanwhile: the change
        // lock orders them, and the notice's key keeps it to one.
        let fresh =
            sqlx::query("INSERT INTO expiry_notices (subject, stage, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(&d.subject)
                .bind(stage)
                .bind(now)
                .execute(change.conn())
                .await?
                .rows_affected();
        if fresh == 0 {
            continue;
        }
        let (action, detail) = match days {
            Some(days) => (
                if d.kind == "admin_token" {
                    "admin_token.expiring"
                } else {
                    "certificate.expiring"
                },
                json!({ "id": d.id, "expires_at": iso(d.expires_at), "days_left": days }),
            ),
            None => (
                if d.kind == "admin_token" {
                    "admin_token.expired"
                } else {
                    "certificate.expired"
                },
                json!({ "id": d.id, "expired_at": iso(d.expires_at) }),
            ),
        };
        change
            .commit(AuditEvent::new("keyward", action, &d.target).detail(detail))
            .await?;
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_starts_where_it_should() {
        let now = 1_000 * DAY_MS;
        let long_ago = now - 365 * DAY_MS;
        assert_eq!(stage(long_ago, now + 31 * DAY_MS, now), None);
        assert_eq!(stage(long_ago, now + 30 * DAY_MS, now), Some(("30d", Some(30))));
        assert_eq!(stage(long_ago, now + 8 * DAY_MS, now), Some(("30d", Some(30))));
        assert_eq!(stage(long_ago, now + 7 * DAY_MS, now), Some(("7d", Some(7))));
        assert_eq!(stage(long_ago, now + DAY_MS, now), Some(("1d", Some(1))));
        assert_eq!(stage(long_ago, now + 1, now), Some(("1d", Some(1))));
        assert_eq!(stage(long_ago, now, now), Some(("expired", None)));
    }

    #[test]
    fn a_short_lived_credential_is_not_announced_from_its_start() {
        let now = 1_000 * DAY_MS;
        // Valid for six days, issued now: not "expiring in 7 days" at once…
        assert_eq!(stage(now, now + 6 * DAY_MS, now), None);
        // …but a day before its end, yes.
        assert_eq!(stage(now - 6 * DAY_MS, now + DAY_MS, now), Some(("1d", Some(1))));
        // A credential that lived an hour: its expiry is not news.
        assert_eq!(stage(now - 3_600_000, now, now), None);
        assert_eq!(stage(now - 2 * DAY_MS, now, now), Some(("expired", None)));
    }
}

//! Login throttling: too many failures for one username, or from one client
//! address, within a window lock further attempts out until the window
//! moves on. Keys are counted whether or not the username exists, so the
//! throttle itself reveals nothing about which admins exist.
//!
//! The failures are rows in the database: every instance sharing it counts
//! the same attempts (N instances do not give N times the allowance), and a
//! restart forgets nothing.

use std::time::Duration;

use super::clock::now_ms;
use super::db::{Backend, Db};
use super::{DomainError, DomainResult};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub window: Duration,
    pub per_username: usize,
    pub per_client: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            window: Duration::from_secs(15 * 60),
            per_username: 5,
            per_client: 20,
        }
    }
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
}

fn username_subject(username: &str) -> String {
    format!("u:{username}")
}

fn client_subject(client: &str) -> String {
    format!("c:{client}")
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle { policy }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.policy.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Refuses while locked out; otherwise counts this attempt as a failure
    /// at once, in the same transaction, so parallel guesses (on any
    /// instance) cannot all slip past the check before any of them is
    /// counted. `success` takes it back.
    pub async fn attempt(&self, db: &Db, username: &str, client: &str) -> DomainResult<()> {
        let now = now_ms();
        let window = self.window_ms();
        let mut subjects = [
            (username_subject(username), self.policy.per_username),
            (client_subject(client), self.policy.per_client),
        ];
        // One lock order for every attempt, so two cannot deadlock.
        subjects.sort();
        let mut tx = db.write().begin().await?;
        // Check-then-count must be one step for every instance. PostgreSQL
        // runs other connections' transactions at once: a lock per subject.
        // SQLite: the first statement writes, which takes the database's
        // write lock before anything is read.
        for (subject, _) in &subjects {
            if db.backend() == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM login_failures WHERE subject = $1 AND at <= $2")
                .bind(subject)
                .bind(now - window)
                .execute(&mut *tx)
                .await?;
        }
        let mut wait: Option<i64> = None;
        for (subject, limit) in &subjects {
            // The limit-th newest failure inside the window, if there are
            // that many: locked until it leaves the window.
            let nth: Option<(i64,)> = sqlx::query_as(
                "SELECT at FROM login_failures WHERE subject = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3",
            )
            .bind(subject)
            .bind(now - window)
            .bind(i64::try_from(*limit).unwrap_or(i64::MAX) - 1)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((at,)) = nth {
                let left_secs = (at + window - now + 999) / 1000;
                wait = wait.max(Some(left_secs.max(1)));
            }
        }
        if let Some(secs) = wait {
            // Dropping the transaction rolls it back: nothing counted.
            return Err(DomainError::RateLimited(secs as u64));
        }
        for (subject, _) in &subjects {
            sqlx::query("INSERT INTO login_failures (subject, at) VALUES ($1, $2)")
                .bind(subject)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The attempt succeeded: the username starts afresh, and the client's
    /// count loses the attempt `attempt` recorded.
    pub async fn success(&self, db: &Db, username: &str, client: &str) -> DomainResult<()> {
        let mut tx = db.write().begin().await?;
        sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(username_subject(username))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM login_failures WHERE id = \
             (SELECT id FROM login_failures WHERE subject = $1 ORDER BY at DESC, id DESC LIMIT 1)",
        )
        .bind(client_subject(client))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes failures that have left the window (housekeeping).
    pub async fn forget_old(&self, db: &Db) -> DomainResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE at <= $1")
            .bind(now_ms() - self.window_ms())
            .execute(db.write())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::db::test_support::temp_sqlite;

    async fn migrated(tag: &str) -> (Db, std::path::PathBuf) {
        let (db, dir) = temp_sqlite(tag).await;
        db.migrate().await.unwrap();
        (db, dir)
    }

    #[tokio::test]
    async fn locks_a_username_after_its_limit_and_success_resets() {
        let (db, dir) = migrated("throttle-user").await;
        let t = LoginThrottle::new(ThrottlePolicy {
            window: Duration::from_secs(60),
            per_username: 3,
            per_client: 100,
        });
        for _ in 0..3 {
            assert!(t.attempt(&db, "alice", "1.1.1.1").await.is_ok());
        }
        let locked = t.attempt(&db, "alice", "2.2.2.2").await;
        assert!(
            matches!(locked, Err(DomainError::RateLimited(s)) if s > 0 && s <= 60),
            "{locked:?}"
        );
        assert!(t.attempt(&db, "bob", "1.1.1.1").await.is_ok());
        t.success(&db, "bob", "1.1.1.1").await.unwrap();
        assert!(t.attempt(&db, "bob", "1.1.1.1").await.is_ok());
        // A second throttle on the same database (another instance, or
        // this one restarted) sees the same count.
        let other = LoginThrottle::new(t.policy);
        assert!(other.attempt(&db, "alice", "3.3.3.3").await.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn locks_a_client_across_usernames_and_forgets_old_failures() {
        let (db, dir) = migrated("throttle-client").await;
        let t = LoginThrottle::new(ThrottlePolicy {
            window: Duration::from_secs(60),
            per_username: 100,
            per_client: 2,
        });
        assert!(t.attempt(&db, "a", "9.9.9.9").await.is_ok());
        assert!(t.attempt(&db, "b", "9.9.9.9").await.is_ok());
        assert!(t.attempt(&db, "c", "9.9.9.9").await.is_err());
        assert!(t.attempt(&db, "c", "8.8.8.8").await.is_ok());
        // Failures older than the window no longer count, and are deleted.
        sqlx::query("UPDATE login_failures SET at = at - 61000")
            .execute(db.write())
            .await
            .unwrap();
        assert!(t.attempt(&db, "d", "9.9.9.9").await.is_ok());
        t.forget_old(&db).await.unwrap();
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM login_failures")
            .fetch_one(db.read())
            .await
            .unwrap();
        assert_eq!(left, 2, "only the newest attempt's two rows stay");
        let _ = std::fs::remove_dir_all(dir);
    }
}

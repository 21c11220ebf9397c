//! Sign-in throttling, counted in the database so every instance sharing
//! it sees the same counts and a restart forgets nothing.
//!
//! - **Lockout per (username, client address)**: after `per_pair` failures
//!   within the window, that address may not try that username again until
//!   the window moves on (or a super admin unlocks it). Someone failing
//!   from elsewhere cannot lock the admin out of their own address.
//! - **Lockout per client address**, across usernames (`per_client`).
//! - **Backoff per username** against guessing spread over many addresses:
//!   past `free_per_username` failures, each attempt waits 1, 2, 4 … up to
//!   `max_backoff` seconds after the newest failure. Seconds, not minutes:
//!   the admin can still get in while someone else is guessing.
//!
//! Usernames are stored as a keyed digest, never as typed: people type
//! their password into the username field. Failures are counted whether or
//! not the username exists, so the throttle reveals nothing about which do.

use std::time::Duration;

use sqlx::AnyConnection;

use crate::domain::clock::now_ms;
use crate::domain::secrets::SubKey;
use crate::domain::storage::db::{Backend, Db};
use crate::domain::{DomainError, DomainResult};

/// The purpose the digest key is derived for.
pub const KEY_PURPOSE: &str = "login-throttle";

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub window: Duration,
    pub per_pair: usize,
    pub per_client: usize,
    pub free_per_username: usize,
    pub max_backoff: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            window: Duration::from_secs(15 * 60),
            per_pair: 5,
            per_client: 20,
            free_per_username: 5,
            max_backoff: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    key: SubKey,
}

/// An (username, address) pair that is locked out, or (no address) the
/// username backing off for addresses it has not signed in from, and
/// until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub client: Option<String>,
    pub until: i64,
}

/// The failures one attempt counted (one per subject), so that exactly
/// they can be taken back.
#[derive(Debug)]
pub struct Attempt {
    counted: Vec<i64>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy, key: SubKey) -> Self {
        LoginThrottle { policy, key }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.policy.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// The username as stored: a keyed digest (128 bits, hex).
    fn user(&self, username: &str) -> String {
        hex::encode(&self.key.mac(&[username.as_bytes()])[..16])
    }

    fn pair_subject(&self, username: &str, client: &str) -> String {
        format!("p:{}:{client}", self.user(username))
    }

    fn user_subject(&self, username: &str) -> String {
        format!("u:{}", self.user(username))
    }

    fn client_subject(client: &str) -> String {
        format!("c:{client}")
    }

    /// Refuses while locked out or backing off; otherwise counts this
    /// attempt as a failure at once, in the same transaction, so parallel
    /// guesses (on any instance) cannot all slip past the check before any
    /// of them is counted. `success` takes it back.
    pub async fn attempt(&self, db: &Db, username: &str, client: &str) -> DomainResult<Attempt> {
        let now = now_ms();
        let pair = self.pair_subject(username, client);
        let user = self.user_subject(username);
        let client_subject = Self::client_subject(client);
        // A refusal is decided from a read first: hammering a locked-out
        // username must not queue for the database's write lock.
        if let Some(until) = self
            .wait_until(&mut *db.read().acquire().await?, &pair, &user, &client_subject, now)
            .await?
        {
            return Err(rate_limited(until, now));
        }
        let mut subjects = [pair.clone(), user.clone(), client_subject.clone()];
        // One lock order for every attempt, so two cannot deadlock.
        subjects.sort();
        let mut tx = db.write().begin().await?;
        // Check-then-count must be one step for every instance. PostgreSQL
        // runs other connections' transactions at once: a lock per subject.
        // SQLite: the first statement writes, which takes the database's
        // write lock before anything is read.
        for subject in &subjects {
            if db.backend() == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM login_failures WHERE subject = $1 AND at <= $2")
                .bind(subject)
                .bind(now - self.window_ms())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(until) = self.wait_until(&mut tx, &pair, &user, &client_subject, now).await? {
            // Dropping the transaction rolls it back: nothing counted.
            return Err(rate_limited(until, now));
        }
        let mut counted = Vec::with_capacity(subjects.len());
        for subject in &subjects {
            let (id,): (i64,) = sqlx::query_as("INSERT INTO login_failures (subject, at) VALUES ($1, $2) RETURNING id")
                .bind(subject)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            counted.push(id);
        }
        tx.commit().await?;
        Ok(Attempt { counted })
    }

    /// Until when an attempt for `pair` must wait, if it must.
    async fn wait_until(
        &self,
        conn: &mut AnyConnection,
        pair: &str,
        user: &str,
        client: &str,
        now: i64,
    ) -> DomainResult<Option<i64>> {
        let window = self.window_ms();
        let mut wait_until: Option<i64> = None;
        for (subject, limit) in [(pair, self.policy.per_pair), (client, self.policy.per_client)] {
            // The limit-th newest failure inside the window, if there are
            // that many: locked until it leaves the window.
            if let Some(at) = nth_newest(conn, subject, now - window, limit).await? {
                wait_until = wait_until.max(Some(at + window));
            }
        }
        // The username's backoff spares an address this admin signed in
        // from before: guessing elsewhere cannot keep them out of their own.
        let known: Option<(i64,)> = sqlx::query_as("SELECT seen_at FROM login_known_addresses WHERE subject = $1")
            .bind(pair)
            .fetch_optional(&mut *conn)
            .await?;
        if known.is_none() {
            wait_until = wait_until.max(self.backoff_until(conn, user, now).await?);
        }
        Ok(wait_until.filter(|u| *u > now))
    }

    /// The end of the username's backoff, if it has failed often enough.
    async fn backoff_until(&self, conn: &mut AnyConnection, user: &str, now: i64) -> DomainResult<Option<i64>> {
        let (count, newest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MAX(at) FROM login_failures WHERE subject = $1 AND at > $2")
                .bind(user)
                .bind(now - self.window_ms())
                .fetch_one(&mut *conn)
                .await?;
        let excess = (count as usize).checked_sub(self.policy.free_per_username);
        Ok(newest.zip(excess).map(|(newest, excess)| {
            let backoff = (1000i64 << excess.min(20)).min(self.policy.max_backoff.as_millis() as i64);
            newest + backoff
        }))
    }

    /// After a failed attempt: did it just lock this (username, address)
    /// pair out? Then until when (for the audit log, once per lockout).
    pub async fn just_locked(&self, db: &Db, username: &str, client: &str) -> DomainResult<Option<i64>> {
        let now = now_ms();
        let since = now - self.window_ms();
        let pair = self.pair_subject(username, client);
        let mut conn = db.read().acquire().await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE subject = $1 AND at > $2")
            .bind(&pair)
            .bind(since)
            .fetch_one(&mut *conn)
            .await?;
        if count as usize != self.policy.per_pair {
            return Ok(None);
        }
        // Locked until the oldest of the counted failures leaves the window.
        let oldest = nth_newest(&mut conn, &pair, since, self.policy.per_pair).await?;
        Ok(oldest.map(|at| at + self.window_ms()))
    }

    /// The attempt succeeded: the username and its pair start afresh, the
    /// client's count loses the attempt `attempt` recorded, and the address
    /// is known for this username (spared its backoff) for a while.
    pub async fn success(&self, db: &Db, username: &str, client: &str) -> DomainResult<()> {
        let mut tx = db.write().begin().await?;
        sqlx::query(
            "INSERT INTO login_known_addresses (subject, seen_at) VALUES ($1, $2) \
             ON CONFLICT (subject) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(self.pair_subject(username, client))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        for subject in [self.user_subject(username), self.pair_subject(username, client)] {
            sqlx::query("DELETE FROM login_failures WHERE subject = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "DELETE FROM login_failures WHERE id = \
             (SELECT id FROM login_failures WHERE subject = $1 ORDER BY at DESC, id DESC LIMIT 1)",
        )
        .bind(Self::client_subject(client))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes back exactly the failures `attempt` counted, and nothing
    /// else: a right password that still waits for its second factor.
    /// Earlier failures stay, and the address is not known for it.
    pub async fn take_back(&self, db: &Db, attempt: Attempt) -> DomainResult<()> {
        let mut tx = db.write().begin().await?;
        for id in attempt.counted {
            sqlx::query("DELETE FROM login_failures WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which addresses are locked out of `username` now; a backoff of the
    /// username itself shows as `client: None`.
    pub async fn lockouts(&self, db: &Db, username: &str) -> DomainResult<Vec<Lockout>> {
        let now = now_ms();
        let prefix = format!("p:{}:", self.user(username));
        let mut conn = db.read().acquire().await?;
        let subjects: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT subject FROM login_failures WHERE substr(subject, 1, length($1)) = $1 AND at > $2",
        )
        .bind(&prefix)
        .bind(now - self.window_ms())
        .fetch_all(&mut *conn)
        .await?;
        let mut locked = Vec::new();
        for (subject,) in subjects {
            if let Some(at) = nth_newest(&mut conn, &subject, now - self.window_ms(), self.policy.per_pair).await? {
                locked.push(Lockout {
                    client: Some(subject[prefix.len()..].to_string()),
                    until: at + self.window_ms(),
                });
            }
        }
        if let Some(until) = self.backoff_until(&mut conn, &self.user_subject(username), now).await? {
            if until > now {
                locked.push(Lockout { client: None, until });
            }
        }
        Ok(locked)
    }

    /// Forgets every failure counted against `username` (its lockouts, its
    /// backoff, and the per-address counts of the addresses that failed
    /// for it), inside the caller's change.
    pub async fn unlock(&self, conn: &mut AnyConnection, username: &str) -> DomainResult<u64> {
        let prefix = format!("p:{}:", self.user(username));
        let pairs: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT subject FROM login_failures WHERE substr(subject, 1, length($1)) = $1")
                .bind(&prefix)
                .fetch_all(&mut *conn)
                .await?;
        let mut n = 0;
        for (pair,) in &pairs {
            n += sqlx::query("DELETE FROM login_failures WHERE subject = $1")
                .bind(Self::client_subject(&pair[prefix.len()..]))
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        n += sqlx::query("DELETE FROM login_failures WHERE substr(subject, 1, length($1)) = $1 OR subject = $2")
            .bind(&prefix)
            .bind(self.user_subject(username))
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(n)
    }

    /// Deletes failures that have left the window, and addresses not
    /// signed in from for KNOWN_FOR (housekeeping).
    pub async fn forget_old(&self, db: &Db) -> DomainResult<()> {
        let now = now_ms();
        sqlx::query("DELETE FROM login_failures WHERE at <= $1")
            .bind(now - self.window_ms())
            .execute(db.write())
            .await?;
        sqlx::query("DELETE FROM login_known_addresses WHERE seen_at <= $1")
            .bind(now - KNOWN_FOR_MS)
            .execute(db.write())
            .await?;
        Ok(())
    }
}

/// How long an address an admin signed in from stays spared the backoff.
const KNOWN_FOR_MS: i64 = 30 * 24 * 3600 * 1000;

fn rate_limited(until: i64, now: i64) -> DomainError {
    DomainError::RateLimited(((until - now + 999) / 1000).max(1) as u64)
}

/// The time of the `n`-th newest failure of `subject` after `since`.
async fn nth_newest(conn: &mut AnyConnection, subject: &str, since: i64, n: usize) -> DomainResult<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT at FROM login_failures WHERE subject = $1 AND at > $2 ORDER BY at DESC LIMIT 1 OFFSET $3",
    )
    .bind(subject)
    .bind(since)
    .bind(i64::try_from(n).unwrap_or(i64::MAX) - 1)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(at,)| at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::storage::db::test_support::temp_sqlite;

    async fn migrated(tag: &str) -> (Db, std::path::PathBuf) {
        let (db, dir) = temp_sqlite(tag).await;
        db.migrate().await.unwrap();
        (db, dir)
    }

    fn throttle(policy: ThrottlePolicy) -> LoginThrottle {
        LoginThrottle::new(policy, SubKey::for_tests())
    }

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            window: Duration::from_secs(60),
            per_pair: 3,
            per_client: 100,
            free_per_username: 100,
            max_backoff: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn locks_a_pair_after_its_limit_and_success_resets_it() {
        let (db, dir) = migrated("throttle-pair").await;
        let t = throttle(policy());
        for _ in 0..3 {
            assert!(t.attempt(&db, "alice", "1.1.1.1").await.is_ok());
        }
        let locked = t.attempt(&db, "alice", "1.1.1.1").await;
        assert!(
            matches!(locked, Err(DomainError::RateLimited(s)) if s > 0 && s <= 60),
            "{locked:?}"
        );
        assert_eq!(t.lockouts(&db, "alice").await.unwrap().len(), 1);
        // From elsewhere alice is not locked out.
        assert!(t.attempt(&db, "alice", "2.2.2.2").await.is_ok());
        // A success for a pair below its limit starts it afresh.
        for _ in 0..2 {
            assert!(t.attempt(&db, "bob", "1.1.1.1").await.is_ok());
        }
        t.success(&db, "bob", "1.1.1.1").await.unwrap();
        for _ in 0..3 {
            assert!(t.attempt(&db, "bob", "1.1.1.1").await.is_ok(), "reset by the success");
        }
        // A second throttle on the same database (another instance, or
        // this one restarted) sees the same count.
        let other = throttle(t.policy);
        assert!(other.attempt(&db, "alice", "1.1.1.1").await.is_err());
        let mut conn = db.write().acquire().await.unwrap();
        assert!(t.unlock(&mut conn, "alice").await.unwrap() > 0);
        drop(conn);
        assert!(t.attempt(&db, "alice", "1.1.1.1").await.is_ok(), "unlocked");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_username_backs_off_for_seconds_whatever_the_address() {
        let (db, dir) = migrated("throttle-backoff").await;
        let t = throttle(ThrottlePolicy {
            free_per_username: 2,
            ..policy()
        });
        assert!(t.attempt(&db, "carol", "1.0.0.1").await.is_ok());
        assert!(t.attempt(&db, "carol", "1.0.0.2").await.is_ok());
        let backing_off = t.attempt(&db, "carol", "1.0.0.3").await;
        assert!(
            matches!(backing_off, Err(DomainError::RateLimited(1))),
            "{backing_off:?}"
        );
        // Refused attempts are not counted: after the second, it may go on.
        sqlx::query("UPDATE login_failures SET at = at - 1500")
            .execute(db.write())
            .await
            .unwrap();
        assert!(t.attempt(&db, "carol", "1.0.0.3").await.is_ok());
        let longer = t.attempt(&db, "carol", "1.0.0.4").await;
        assert!(matches!(longer, Err(DomainError::RateLimited(2))), "{longer:?}");
        // An address carol signed in from before is spared the backoff.
        t.success(&db, "carol", "1.0.0.9").await.unwrap();
        assert!(t.attempt(&db, "carol", "1.0.0.5").await.is_ok());
        assert!(t.attempt(&db, "carol", "1.0.0.6").await.is_ok());
        assert!(
            t.attempt(&db, "carol", "1.0.0.7").await.is_err(),
            "backing off elsewhere"
        );
        assert!(
            t.attempt(&db, "carol", "1.0.0.9").await.is_ok(),
            "not from her own address"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn locks_a_client_across_usernames_and_forgets_old_failures() {
        let (db, dir) = migrated("throttle-client").await;
        let t = throttle(ThrottlePolicy {
            per_pair: 100,
            per_client: 2,
            ..policy()
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
        assert_eq!(left, 3, "only the newest attempt's three rows stay");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// What the console shows and the audit log records: the lockout
    /// starts once, at the limit, until the oldest counted failure leaves
    /// the window; unlocking clears the pair, the username's backoff and
    /// the per-address counts of the addresses that failed for it.
    #[tokio::test]
    async fn lockouts_are_reported_once_listed_and_cleared() {
        let (db, dir) = migrated("throttle-lockouts").await;
        let t = throttle(ThrottlePolicy {
            free_per_username: 2,
            ..policy()
        });
        let mut started = Vec::new();
        for _ in 0..3 {
            t.attempt(&db, "erin", "5.5.5.5").await.unwrap();
            started.push(t.just_locked(&db, "erin", "5.5.5.5").await.unwrap());
            // Spaced past the backoff, which would refuse the next at once.
            sqlx::query("UPDATE login_failures SET at = at - 5000")
                .execute(db.write())
                .await
                .unwrap();
        }
        assert_eq!(started[..2], [None, None]);
        let (oldest,): (i64,) = sqlx::query_as("SELECT MIN(at) FROM login_failures")
            .fetch_one(db.read())
            .await
            .unwrap();
        // The third failure locked the pair, until the first leaves the
        // window (reported before the last shift of 5 s).
        let until = started[2].expect("locked at the third");
        assert_eq!(until, oldest + 5000 + 60_000);
        // Others are not reported as locked, and it is not reported again.
        assert_eq!(t.just_locked(&db, "frank", "5.5.5.5").await.unwrap(), None);
        let listed = t.lockouts(&db, "erin").await.unwrap();
        assert!(
            listed.contains(&Lockout {
                client: Some("5.5.5.5".into()),
                until: oldest + 60_000,
            }),
            "{listed:?}"
        );
        assert!(t.lockouts(&db, "frank").await.unwrap().is_empty());
        // A fourth failure, from elsewhere: past the two free ones, erin
        // now backs off (4 s) for every address she has not signed in from.
        t.attempt(&db, "erin", "5.5.5.6").await.unwrap();
        let listed = t.lockouts(&db, "erin").await.unwrap();
        assert!(
            listed.iter().any(|l| l.client.is_none() && l.until > now_ms() + 3000),
            "{listed:?}"
        );

        let mut conn = db.write().acquire().await.unwrap();
        let cleared = t.unlock(&mut conn, "erin").await.unwrap();
        drop(conn);
        assert_eq!(cleared, 12, "4 pair, 4 username and 4 address rows");
        assert!(t.lockouts(&db, "erin").await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn usernames_back_off_apart_and_known_addresses_are_forgotten_after_30_days() {
        let (db, dir) = migrated("throttle-apart").await;
        let t = throttle(ThrottlePolicy {
            free_per_username: 1,
            ..policy()
        });
        assert!(t.attempt(&db, "gina", "6.0.0.1").await.is_ok());
        assert!(t.attempt(&db, "gina", "6.0.0.2").await.is_err(), "gina backs off");
        assert!(t.attempt(&db, "hank", "6.0.0.2").await.is_ok(), "hank does not");

        t.success(&db, "hank", "6.0.0.9").await.unwrap();
        sqlx::query("INSERT INTO login_known_addresses (subject, seen_at) VALUES ('old', $1), ('recent', $2)")
            .bind(now_ms() - KNOWN_FOR_MS - 1000)
            .bind(now_ms() - KNOWN_FOR_MS + 60_000)
            .execute(db.write())
            .await
            .unwrap();
        t.forget_old(&db).await.unwrap();
        let mut left: Vec<(String,)> = sqlx::query_as("SELECT subject FROM login_known_addresses")
            .fetch_all(db.read())
            .await
            .unwrap();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().any(|(s,)| s == "recent") && !left.iter().any(|(s,)| s == "old"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn no_typed_username_is_stored() {
        let (db, dir) = migrated("throttle-digest").await;
        let t = throttle(policy());
        t.attempt(&db, "hunter2-typed-here", "1.1.1.1").await.unwrap();
        let rows: Vec<(String,)> = sqlx::query_as("SELECT subject FROM login_failures")
            .fetch_all(db.read())
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|(s,)| !s.contains("hunter2")), "{rows:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

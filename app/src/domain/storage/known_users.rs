//! Known end users, in memory: a session for a known user with an
//! unchanged display name reads and writes nothing (SPEC §8).
//!
//! The cache is bounded by memory and keeps the users that come back:
//! `quick_cache`'s S3-FIFO policy admits a user to its main part only when
//! seen again, so a burst of one-time users (or a scan over all of them)
//! does not push the regulars out. A miss is one indexed read.
//!
//! An entry is dropped when this instance changes the user, and when a
//! poll (or, on PostgreSQL, a notification) finds the user changed by
//! another instance, so a display name is never stale for long.

use std::sync::Mutex;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::domain::clock::now_ms;
use crate::domain::credentials::end_users::EndUser;
use crate::domain::metrics::{CacheLookup, Metrics};
use crate::domain::storage::db::Db;
use crate::domain::DomainResult;

/// How far back each poll looks, so a change committed late by a slower
/// instance (with an earlier timestamp), or on a clock that lags, is seen.
const LATE_WINDOW_MS: i64 = 10_000;

/// What an entry costs beyond its strings: the key's and the fields'
/// headers, the two times, and the cache's own slot and index.
const ENTRY_OVERHEAD: u64 = 160;

/// An entry's weight is an estimate of its bytes, so the capacity is memory.
#[derive(Clone)]
struct Bytes;

impl Weighter<String, EndUser> for Bytes {
    fn weight(&self, key: &String, user: &EndUser) -> u64 {
        let strings =
            key.len() + user.id.len() + user.user_id.len() + user.display_name.as_ref().map_or(0, String::len);
        ENTRY_OVERHEAD + strings as u64
    }
}

pub struct KnownUsers {
    users: Cache<String, EndUser, Bytes>,
    polled_at: Mutex<Option<i64>>,
}

impl std::fmt::Debug for KnownUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownUsers")
            .field("users", &self.users.len())
            .field("bytes", &self.users.weight())
            .finish_non_exhaustive()
    }
}

impl KnownUsers {
    /// A cache holding at most about `bytes` of users.
    pub fn with_bytes(bytes: usize) -> KnownUsers {
        let bytes = bytes.max(1) as u64;
        // The estimate sizes the index up front; a typical entry is ~220 B.
        let estimated = usize::try_from(bytes / 220).unwrap_or(usize::MAX).max(16);
        KnownUsers {
            users: Cache::with_weighter(estimated, bytes, Bytes),
            polled_at: Mutex::new(None),
        }
    }

    /// The user, from memory or else from the database (one read through
    /// the read pool, never the writer); `None` if it is not stored.
    pub async fn find(&self, db: &Db, metrics: &Metrics, user_id: &str) -> DomainResult<Option<EndUser>> {
        if let Some(user) = self.get(user_id) {
            metrics.cache_lookup(CacheLookup::Hit);
            return Ok(Some(user));
        }
        metrics.cache_lookup(CacheLookup::Miss);
        let user = crate::domain::credentials::end_users::find_user(db, user_id).await?;
        if let Some(user) = &user {
            self.put(user.clone());
        }
        Ok(user)
    }

    fn get(&self, user_id: &str) -> Option<EndUser> {
        self.users.get(user_id)
    }

    pub fn put(&self, user: EndUser) {
        self.users.insert(user.user_id.clone(), user);
    }

    /// Users held, and their estimated bytes (sampled for `/metrics`).
    pub fn size(&self) -> (usize, u64) {
        (self.users.len(), self.users.weight())
    }

    /// Forgets users that any instance changed recently.
    pub async fn refresh(&self, db: &Db) -> DomainResult<()> {
        let now = now_ms();
        let since = self
            .polled_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(now, |t| t - LATE_WINDOW_MS);
        // Renames only (a partial index holds them): a user created
        // elsewhere was never cached here under another row.
        let changed: Vec<(String,)> =
            sqlx::query_as("SELECT user_id FROM end_users WHERE updated_at > $1 AND updated_at > created_at")
                .bind(since)
                .fetch_all(db.read())
                .await?;
        for (user_id,) in changed {
            self.users.remove(&user_id);
        }
        *self.polled_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: usize) -> EndUser {
        EndUser {
            id: format!("{n:032x}"),
            user_id: format!("user-{n}"),
            display_name: Some(format!("user-{n}")),
            created_at: 0,
            updated_at: 0,
        }
    }

    /// A session's use of the cache: a hit, or the user put after a miss.
    fn visit(cache: &KnownUsers, n: usize) -> bool {
        let hit = cache.get(&format!("user-{n}")).is_some();
        if !hit {
            cache.put(user(n));
        }
        hit
    }

    #[test]
    fn the_memory_is_bounded_whatever_the_number_of_users() {
        let cache = KnownUsers::with_bytes(64 << 10);
        for n in 0..10_000 {
            cache.put(user(n));
        }
        let (users, bytes) = cache.size();
        assert!(bytes <= 64 << 10, "{bytes} bytes held");
        assert!(users > 100 && users < 1_000, "{users} users held");
    }

    #[test]
    fn users_who_come_back_stay_through_a_flood_of_one_time_users() {
        // Room for about 1,100 users: 200 regulars, then 20,000 users seen
        // once each, a regular between every five of them.
        let cache = KnownUsers::with_bytes(256 << 10);
        for _ in 0..3 {
            for n in 0..200 {
                visit(&cache, n);
            }
        }
        let mut regular_hits = 0;
        for i in 0..20_000 {
            visit(&cache, 1_000_000 + i);
            if i % 5 == 0 {
                regular_hits += usize::from(visit(&cache, (i / 5) % 200));
            }
        }
        assert!(
            regular_hits >= 3_800,
            "{regular_hits} of 4,000 regulars found in memory"
        );
        let kept = (0..200).filter(|n| cache.get(&format!("user-{n}")).is_some()).count();
        assert!(kept >= 190, "{kept} of 200 regulars still held");
    }
}

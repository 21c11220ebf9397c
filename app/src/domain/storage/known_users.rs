//! Known end users, in memory: a session for a known user with an
//! unchanged display name reads and writes nothing (SPEC §8).
//!
//! The cache is bounded by memory and keeps the users that come back:
//! `quick_cache`'s S3-FIFO policy admits a user to its main part only when
//! seen again, so a burst of one-time users (or a scan over all of them)
//! does not push the regulars out. A miss is one indexed read (by the
//! caller, `sessions`).
//!
//! An entry is replaced when this instance renames the user, and dropped
//! when a refresh (on PostgreSQL woken by a notification) finds the user
//! renamed by another instance, so a display name is never stale for long.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::domain::clock::now_ms;
use crate::domain::credentials::end_users::EndUser;
use crate::domain::storage::db::Db;
use crate::domain::DomainResult;

/// How far back each poll looks, so a change committed late by a slower
/// instance (with an earlier timestamp), or on a clock that lags, is seen.
const LATE_WINDOW_MS: i64 = 10_000;

/// What an entry costs beyond its strings: the fields' headers and the
/// two times, the allocator's rounding, and the cache's own slot, index
/// and share of remembered evicted keys.
const ENTRY_OVERHEAD: u64 = 150;
/// A typical entry's weight (a 32-character id, a user id and a display
/// name of about 10 characters each).
const TYPICAL_ENTRY: u64 = ENTRY_OVERHEAD + 32 + 2 * 10;

/// An entry's weight is an estimate of its bytes, so the capacity is memory.
#[derive(Clone)]
struct Bytes;

impl Weighter<u64, EndUser> for Bytes {
    fn weight(&self, _key: &u64, user: &EndUser) -> u64 {
        let strings = user.id.len() + user.user_id.len() + user.display_name.as_ref().map_or(0, String::len);
        ENTRY_OVERHEAD + strings as u64
    }
}

/// Entries are keyed by a keyed hash of the user id, not the id itself:
/// a second copy of every id would take a fifth of the memory. The entry
/// holds the id, so a collision is a miss, never another user.
pub struct KnownUsers {
    users: Cache<u64, EndUser, Bytes>,
    hasher: RandomState,
    /// Bumped by every rename seen: a row read before it may be stale.
    renames: AtomicU64,
    polled_at: Mutex<Option<i64>>,
}

/// Taken before a user is read from the database after a miss, so the row
/// read is kept only if no rename was seen meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

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
        // quick_cache derives its shards and the memory of recently
        // evicted keys (its "ghosts") from the expected number of entries.
        let estimated = usize::try_from(bytes / TYPICAL_ENTRY).unwrap_or(usize::MAX).max(16);
        KnownUsers {
            users: Cache::with_weighter(estimated, bytes, Bytes),
            hasher: RandomState::new(),
            renames: AtomicU64::new(0),
            polled_at: Mutex::new(None),
        }
    }

    pub fn get(&self, user_id: &str) -> Option<EndUser> {
        self.users
            .get(&self.key(user_id))
            .filter(|user| user.user_id == user_id)
    }

    fn key(&self, user_id: &str) -> u64 {
        self.hasher.hash_one(user_id)
    }

    /// Take before reading a user missed; give to [`KnownUsers::put_read`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.renames.load(Ordering::Acquire))
    }

    /// Keeps a user read from the database, unless a rename was seen since
    /// the ticket was taken (the row read may predate it).
    pub fn put_read(&self, user: EndUser, ticket: Ticket) {
        if self.renames.load(Ordering::Acquire) == ticket.0 {
            self.put(user);
        }
    }

    /// Keeps a user this instance has just stored.
    pub fn put(&self, user: EndUser) {
        self.users.insert(self.key(&user.user_id), user);
    }

    /// Keeps a user this instance has just renamed.
    pub fn renamed(&self, user: EndUser) {
        self.renames.fetch_add(1, Ordering::AcqRel);
        self.put(user);
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
        if !changed.is_empty() {
            self.renames.fetch_add(1, Ordering::AcqRel);
        }
        for (user_id,) in changed {
            self.users.remove(&self.key(&user_id));
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

    #[test]
    fn a_row_read_before_a_rename_was_seen_is_not_kept() {
        let cache = KnownUsers::with_bytes(64 << 10);
        let ticket = cache.ticket();
        // Meanwhile, this instance renames the user (or a refresh finds
        // another instance did).
        cache.renamed(EndUser {
            display_name: Some("New".into()),
            ..user(1)
        });
        cache.put_read(user(1), ticket);
        assert_eq!(cache.get("user-1").unwrap().display_name.as_deref(), Some("New"));
        // With no rename since, a row read is kept.
        let ticket = cache.ticket();
        cache.put_read(user(2), ticket);
        assert!(cache.get("user-2").is_some());
    }
}

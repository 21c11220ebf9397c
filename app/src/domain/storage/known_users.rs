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

use futures_util::TryStreamExt;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::domain::clock::now_ms;
use crate::domain::credentials::end_users::{EndUser, UserRow, USER_COLUMNS};
use crate::domain::storage::db::Db;
use crate::domain::DomainResult;

/// How far back each poll looks, so a change committed late by a slower
/// instance (with an earlier timestamp), or on a clock that lags, is seen.
const LATE_WINDOW_MS: i64 = 10_000;

/// What an entry costs beyond its bytes: its slot in the cache (shared by
/// the resident entry and, once the cache is full, the evicted keys it
/// remembers, its "ghosts"), its share of the index, and the allocator's
/// rounding of its bytes. Measured over a million users churning through
/// a full cache: see the README's Benchmark section.
const ENTRY_OVERHEAD: u64 = 84;
/// A typical entry's weight (a user id and a display name of about 10
/// characters each, both timestamps implied).
const TYPICAL_ENTRY: u64 = ENTRY_OVERHEAD + FIXED as u64 + 2 * 10;

/// A user as held in memory: one allocation, and a 16-byte slot in the
/// cache. A million of them must fit beside everything else, and every
/// slot of the cache (a ghost's too) is as large as its value, so the value
/// is only a pointer.
///
/// Layout: flags, the user id's length, the row id as its 16 bytes (every
/// id Keyward makes is 32 lowercase hex digits; a user with any other id,
/// or a user id over 255 bytes, is simply not held), `created_at` unless
/// it is the time at the head of the id (as it is for every user Keyward
/// creates: `Writer::new_user`), `updated_at` unless it equals
/// `created_at` (a user never renamed), then the user id and the display
/// name.
#[derive(Clone)]
struct Held(Box<[u8]>);

/// Flags: `created_at` is the id's leading 48-bit millisecond time.
const CREATED_IN_ID: u8 = 1;
/// `updated_at` equals `created_at`.
const NEVER_UPDATED: u8 = 2;
/// The user has no display name.
const NO_NAME: u8 = 4;
/// Flags, the user id's length, the row id.
const FIXED: usize = 2 + 16;

impl Held {
    fn new(user: &EndUser) -> Option<Held> {
        let id = crate::domain::ids::id_bytes(&user.id)?;
        let user_id_len = u8::try_from(user.user_id.len()).ok()?;
        let mut flags = 0;
        if id_time(&id) == user.created_at {
            flags |= CREATED_IN_ID;
        }
        if user.updated_at == user.created_at {
            flags |= NEVER_UPDATED;
        }
        if user.display_name.is_none() {
            flags |= NO_NAME;
        }
        let name = user.display_name.as_deref().unwrap_or("");
        let times = 8 * (usize::from(flags & CREATED_IN_ID == 0) + usize::from(flags & NEVER_UPDATED == 0));
        let mut b = Vec::with_capacity(FIXED + times + user.user_id.len() + name.len());
        b.push(flags);
        b.push(user_id_len);
        b.extend_from_slice(&id);
        if flags & CREATED_IN_ID == 0 {
            b.extend_from_slice(&user.created_at.to_le_bytes());
        }
        if flags & NEVER_UPDATED == 0 {
            b.extend_from_slice(&user.updated_at.to_le_bytes());
        }
        b.extend_from_slice(user.user_id.as_bytes());
        b.extend_from_slice(name.as_bytes());
        Some(Held(b.into_boxed_slice()))
    }

    fn flags(&self) -> u8 {
        self.0[0]
    }

    fn id(&self) -> &[u8; 16] {
        self.0[2..FIXED].try_into().expect("16 bytes")
    }

    /// Where the user id starts, and the timestamps stored before it.
    fn times(&self) -> (i64, i64, usize) {
        let flags = self.flags();
        let mut at = FIXED;
        let mut next = || {
            let v = i64::from_le_bytes(self.0[at..at + 8].try_into().expect("8 bytes"));
            at += 8;
            v
        };
        let created = if flags & CREATED_IN_ID != 0 {
            id_time(self.id())
        } else {
            next()
        };
        let updated = if flags & NEVER_UPDATED != 0 { created } else { next() };
        (created, updated, at)
    }

    /// The user id and the display name (`None` for no name).
    fn text(&self) -> (&str, Option<&str>) {
        let (.., at) = self.times();
        let split = at + usize::from(self.0[1]);
        // Both were whole strings when put; the split is on their border.
        let user_id = std::str::from_utf8(&self.0[at..split]).unwrap_or_default();
        let name = std::str::from_utf8(&self.0[split..]).unwrap_or_default();
        (user_id, (self.flags() & NO_NAME == 0).then_some(name))
    }

    fn user(&self) -> EndUser {
        let (created_at, updated_at, _) = self.times();
        let (user_id, name) = self.text();
        EndUser {
            id: hex::encode(self.id()),
            user_id: user_id.to_string(),
            display_name: name.map(str::to_string),
            created_at,
            updated_at,
        }
    }
}

/// The millisecond time at the head of an id Keyward made
/// (`ids::time_ordered`).
fn id_time(id: &[u8; 16]) -> i64 {
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&id[..6]);
    i64::from_be_bytes(ms)
}

/// An entry's weight is an estimate of its bytes, so the capacity is memory.
#[derive(Clone)]
struct Bytes;

impl Weighter<u64, Held> for Bytes {
    fn weight(&self, _key: &u64, held: &Held) -> u64 {
        ENTRY_OVERHEAD + held.0.len() as u64
    }
}

/// Entries are keyed by a keyed hash of the user id, not the id itself:
/// a second copy of every id would take a fifth of the memory. The entry
/// holds the id, so a collision is a miss, never another user.
pub struct KnownUsers {
    users: Cache<u64, Held, Bytes>,
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
            .filter(|held| held.text().0 == user_id)
            .map(|held| held.user())
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
    pub fn put_read(&self, user: &EndUser, ticket: Ticket) {
        if self.renames.load(Ordering::Acquire) == ticket.0 {
            self.put(user);
        }
    }

    /// Keeps a user this instance has just stored.
    pub fn put(&self, user: &EndUser) {
        let key = self.key(&user.user_id);
        match Held::new(user) {
            Some(held) => self.users.insert(key, held),
            // Not held, so a later read finds the row, never an old entry.
            None => {
                self.users.remove(&key);
            }
        }
    }

    /// Keeps a user this instance has just renamed.
    pub fn renamed(&self, user: &EndUser) {
        self.renames.fetch_add(1, Ordering::AcqRel);
        self.put(user);
    }

    /// Users held, and their estimated bytes (sampled for `/metrics`).
    pub fn size(&self) -> (usize, u64) {
        (self.users.len(), self.users.weight())
    }

    /// Fills the cache with the users seen most recently, up to nine
    /// tenths of its memory (the rest is left to the traffic), so that a
    /// restarted or new instance answers its regulars from memory at once
    /// instead of reading each on their first session. Users already held
    /// (put by the traffic meanwhile) are left as they are, and users
    /// renamed while the rows streamed are dropped after (a row read may
    /// predate the rename): they are read again when they come. A million
    /// users take about a second. How many were put.
    pub async fn warm(&self, db: &Db) -> DomainResult<usize> {
        let started = now_ms();
        let room = self.users.capacity() / 10 * 9;
        // No entry weighs less than this: no more rows than this can fit.
        let most = i64::try_from(self.users.capacity() / (ENTRY_OVERHEAD + FIXED as u64 + 1)).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM end_users \
             ORDER BY last_seen_at DESC NULLS LAST, created_at DESC LIMIT $1"
        );
        let mut rows = sqlx::query_as::<_, UserRow>(&sql).bind(most).fetch(db.read());
        let mut put = 0;
        while let Some(row) = rows.try_next().await? {
            // The weight is summed over the shards: checked now and then.
            if put % 256 == 0 && self.users.weight() >= room {
                break;
            }
            let user = EndUser::from(row);
            if self.users.contains_key(&self.key(&user.user_id)) {
                continue;
            }
            self.put(&user);
            put += 1;
        }
        drop(rows);
        self.forget_renamed_since(db, started - LATE_WINDOW_MS).await?;
        Ok(put)
    }

    /// Forgets users renamed (by any instance) after `since`.
    async fn forget_renamed_since(&self, db: &Db, since: i64) -> DomainResult<()> {
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
        Ok(())
    }

    /// Forgets users that any instance changed recently.
    pub async fn refresh(&self, db: &Db) -> DomainResult<()> {
        let now = now_ms();
        let since = self
            .polled_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(now, |t| t - LATE_WINDOW_MS);
        self.forget_renamed_since(db, since).await?;
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
            cache.put(&user(n));
        }
        hit
    }

    #[test]
    fn the_memory_is_bounded_whatever_the_number_of_users() {
        let cache = KnownUsers::with_bytes(64 << 10);
        for n in 0..10_000 {
            cache.put(&user(n));
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
        cache.renamed(&EndUser {
            display_name: Some("New".into()),
            ..user(1)
        });
        cache.put_read(&user(1), ticket);
        assert_eq!(cache.get("user-1").unwrap().display_name.as_deref(), Some("New"));
        // With no rename since, a row read is kept.
        let ticket = cache.ticket();
        cache.put_read(&user(2), ticket);
        assert!(cache.get("user-2").is_some());
    }

    #[test]
    fn a_user_comes_back_from_memory_as_it_went_in() {
        let cache = KnownUsers::with_bytes(64 << 10);
        let named = EndUser {
            display_name: Some("Zoë 東京".into()),
            created_at: 1,
            updated_at: 2,
            ..user(7)
        };
        let unnamed = EndUser {
            display_name: None,
            ..user(8)
        };
        let empty_name = EndUser {
            display_name: Some(String::new()),
            ..user(9)
        };
        // Made as a session makes them: the id's head is the creation time.
        let id = crate::domain::ids::ordered_id();
        let created = id_time(&hex::decode(&id).unwrap().try_into().unwrap());
        let fresh = EndUser {
            id: id.clone(),
            created_at: created,
            updated_at: created,
            ..user(10)
        };
        let renamed = EndUser {
            id,
            created_at: created,
            updated_at: created + 1,
            display_name: Some("x".repeat(100)),
            ..user(11)
        };
        let from_elsewhere = EndUser {
            created_at: created,
            updated_at: 0,
            ..user(12)
        };
        for u in [&named, &unnamed, &empty_name, &fresh, &renamed, &from_elsewhere] {
            cache.put(u);
            let back = cache.get(&u.user_id).expect("held");
            assert_eq!(
                (
                    &back.id,
                    &back.user_id,
                    &back.display_name,
                    back.created_at,
                    back.updated_at
                ),
                (&u.id, &u.user_id, &u.display_name, u.created_at, u.updated_at)
            );
        }
    }

    #[test]
    fn a_user_held_takes_one_small_allocation() {
        let id = crate::domain::ids::ordered_id();
        let now = id_time(&hex::decode(&id).unwrap().try_into().unwrap());
        assert!(
            (now - now_ms()).abs() < 60_000,
            "the id's head is a time in milliseconds"
        );
        let fresh = Held::new(&EndUser {
            id,
            user_id: "user-123456".into(),
            display_name: Some("user-123456".into()),
            created_at: now,
            updated_at: now,
        })
        .unwrap();
        assert_eq!(fresh.times().0, now);
        assert_eq!(fresh.times().1, now);
        assert_eq!(fresh.0.len(), FIXED + 22, "no timestamp stored when both are implied");
        // A user id longer than its length byte can say is not held; one
        // of 255 bytes is, as are times before 1970 and far ahead.
        assert!(Held::new(&EndUser {
            user_id: "é".repeat(128),
            ..user(1)
        })
        .is_none());
        let longest = EndUser {
            user_id: format!("{}x", "é".repeat(127)),
            created_at: -1,
            updated_at: i64::MAX,
            ..user(1)
        };
        let held = Held::new(&longest).unwrap();
        let back = held.user();
        assert_eq!(
            (back.user_id, back.created_at, back.updated_at),
            (longest.user_id, -1, i64::MAX)
        );
    }

    #[test]
    fn a_user_whose_id_is_not_lowercase_hex_is_not_held_and_drops_an_old_entry() {
        let cache = KnownUsers::with_bytes(64 << 10);
        cache.put(&user(3));
        assert!(cache.get("user-3").is_some());
        for id in [
            "ABCDEF0123456789ABCDEF0123456789".to_string(),
            "imported-1".into(),
            format!("{:034x}", 3),
        ] {
            cache.put(&EndUser { id, ..user(3) });
            assert!(cache.get("user-3").is_none());
            cache.put(&user(3));
        }
    }
}

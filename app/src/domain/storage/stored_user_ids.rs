//! Which user ids are certainly not stored, so that a new user's session
//! goes straight to the batching writer instead of first reading that the
//! user is not there (a read through the read pool and two thread
//! hand-offs, on the path that already waits for a durable commit).
//!
//! A Bloom filter of every user id stored, loaded at start a page at a
//! time beside the traffic and added to as this instance stores users.
//! Nothing depends on it being right: "not in the filter" sends the
//! session to the writer, which inserts the user unless it exists and
//! answers the stored row either way (so a user another instance created
//! after the load, or during it behind the scan, costs a write that does
//! nothing and a read of the row, once: it is added then); "maybe in it"
//! reads first, as without the filter. Until loaded, every user is
//! "maybe".
//!
//! Ten bits of room a user (1.25 bytes): at start twice the users stored,
//! then further layers, each twice the room of the last. A full layer
//! takes about one new user in a hundred for stored (a read, as without
//! the filter), and the layers' false "maybe"s add up. The layers stop at
//! `MOST_BYTES`: past that (about 50 million users) the last one fills up
//! and says "maybe" more and more often, never "new" wrongly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use crate::domain::storage::bloom::Bloom;
use crate::domain::storage::db::Db;
use crate::domain::DomainResult;

/// Bits a user, and so the filter's size for the users it has room for.
const BITS_PER_USER: u64 = 10;
/// The first layer's room when few users are stored.
const LEAST_ROOM: u64 = 65_536;
/// No more memory than this for the filter, however many users there are.
const MOST_BYTES: u64 = 64 << 20;
/// Rows read per query while loading: short read transactions (a long one
/// would hold back SQLite's checkpoints) and bounded memory.
const LOAD_PAGE: i64 = 10_000;

struct Layer {
    bloom: Bloom,
    room: u64,
}

impl Layer {
    fn with_room(room: u64) -> Layer {
        let bytes = usize::try_from(room.saturating_mul(BITS_PER_USER) / 8).unwrap_or(usize::MAX);
        Layer {
            bloom: Bloom::with_bytes(bytes, room),
            room,
        }
    }

    fn full(&self) -> bool {
        self.bloom.inserted() >= self.room
    }
}

#[derive(Default)]
pub struct StoredUserIds {
    /// Empty until the load begins; the last one takes what is added.
    layers: RwLock<Vec<Layer>>,
    loaded: AtomicBool,
}

impl std::fmt::Debug for StoredUserIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUserIds")
            .field("bytes", &self.bytes())
            .field("loaded", &self.loaded.load(Ordering::Relaxed))
            .finish()
    }
}

impl StoredUserIds {
    /// True only when no user with this id is stored, as far as this
    /// instance knows: the filter is loaded and has never seen the id.
    pub fn certainly_new(&self, user_id: &str) -> bool {
        self.loaded.load(Ordering::Acquire) && !self.read().iter().any(|l| l.bloom.may_contain(user_id))
    }

    /// Notes a user id stored (by this instance, or found stored by it).
    pub fn add(&self, user_id: &str) {
        let layers = self.read();
        // No layer yet: the load has not begun, and its scan will see the
        // row, committed before this call.
        let Some(last) = layers.last() else {
            return;
        };
        last.bloom.insert(user_id);
        if !last.full() {
            return;
        }
        let room = last.room.saturating_mul(2);
        let held: u64 = layers.iter().map(|l| l.bloom.bytes() as u64).sum();
        drop(layers);
        if held + room * BITS_PER_USER / 8 > MOST_BYTES {
            return;
        }
        // Made (and its memory zeroed) outside the lock: the hot path only
        // waits for the push. Several may be made at once; one is kept.
        let next = Layer::with_room(room);
        let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
        if layers.last().is_some_and(|l| l.full() && l.room * 2 == room) {
            layers.push(next);
        }
    }

    /// The filter's memory (0 until the load begins).
    pub fn bytes(&self) -> usize {
        self.read().iter().map(|l| l.bloom.bytes()).sum()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Layer>> {
        self.layers.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts every stored user id in the filter, then trusts it. Runs at
    /// start (again after a failure: the ids added meanwhile stay). How
    /// many ids were read.
    pub async fn load(&self, db: &Db) -> DomainResult<u64> {
        let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM end_users")
            .fetch_one(db.read())
            .await?;
        let room = u64::try_from(stored)
            .unwrap_or(0)
            .saturating_mul(2)
            .clamp(LEAST_ROOM, MOST_BYTES * 8 / BITS_PER_USER);
        // Made outside the lock, as in `add`: sessions add meanwhile.
        let first = Layer::with_room(room);
        {
            let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
            if layers.is_empty() {
                layers.push(first);
            }
        }
        // From here on, what this instance stores is added as it goes; the
        // pages, each read after the layer was in place, hold the rest.
        let mut read = 0u64;
        let mut after = String::new();
        loop {
            let page: Vec<(String,)> =
                sqlx::query_as("SELECT user_id FROM end_users WHERE user_id > $1 ORDER BY user_id LIMIT $2")
                    .bind(&after)
                    .bind(LOAD_PAGE)
                    .fetch_all(db.read())
                    .await?;
            for (user_id,) in &page {
                self.add(user_id);
            }
            read += page.len() as u64;
            let more = page.len() as i64 == LOAD_PAGE;
            match page.into_iter().last() {
                Some((last,)) if more => after = last,
                _ => break,
            }
        }
        self.loaded.store(true, Ordering::Release);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded_with_room(room: u64) -> StoredUserIds {
        let ids = StoredUserIds::default();
        ids.layers.write().unwrap().push(Layer::with_room(room));
        ids.loaded.store(true, Ordering::Release);
        ids
    }

    #[test]
    fn nothing_is_certainly_new_before_the_load() {
        let ids = StoredUserIds::default();
        ids.add("dora");
        assert!(!ids.certainly_new("dora"));
        assert!(!ids.certainly_new("eve"));
        assert_eq!(ids.bytes(), 0);
    }

    #[test]
    fn a_user_added_is_never_new_and_others_mostly_are() {
        let ids = loaded_with_room(10_000);
        for n in 0..10_000 {
            ids.add(&format!("user-{n}"));
        }
        assert!((0..10_000).all(|n| !ids.certainly_new(&format!("user-{n}"))));
        let new = (0..10_000).filter(|n| ids.certainly_new(&format!("other-{n}"))).count();
        // Full at ten bits a user: about 1 % are taken for stored.
        assert!(new > 9_700, "{new} of 10,000 new users certainly new");
    }

    #[test]
    fn a_full_layer_gets_a_larger_one_beside_it_and_nothing_is_forgotten() {
        let ids = loaded_with_room(1_000);
        for n in 0..5_000 {
            ids.add(&format!("user-{n}"));
        }
        let rooms: Vec<u64> = ids.read().iter().map(|l| l.room).collect();
        assert_eq!(rooms, [1_000, 2_000, 4_000]);
        // Ten bits a user, to the 64-bit word.
        let bytes = ids.bytes();
        assert!((8_740..=8_750).contains(&bytes), "{bytes} bytes");
        assert!((0..5_000).all(|n| !ids.certainly_new(&format!("user-{n}"))));
        let new = (0..10_000).filter(|n| ids.certainly_new(&format!("other-{n}"))).count();
        assert!(new > 9_500, "{new} of 10,000 new users certainly new");
    }
}

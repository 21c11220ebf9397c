//! How many logouts an end user may make a minute, on this instance.
//!
//! Every logout is a row kept as long as its token lives (30 days), so a
//! client logging out in a loop would grow the database without bound.
//! Counted in a fixed table of slots (users hashed into them, 512 KiB),
//! not a map: the memory stays the same whatever the number of users. Two
//! users sharing a slot share its allowance, which at these numbers stays
//! far above what a person does.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Logouts a user may make in one minute.
pub const PER_MINUTE: u32 = 20;
const SLOTS: usize = 1 << 16;

pub struct LogoutLimit {
    /// Each slot: the minute (high 32 bits) and the count in it (low 32).
    slots: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl std::fmt::Debug for LogoutLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutLimit").finish_non_exhaustive()
    }
}

impl Default for LogoutLimit {
    fn default() -> Self {
        LogoutLimit {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl LogoutLimit {
    /// Counts a logout of `uid` at `now_ms`; false once past the limit.
    pub fn allow(&self, uid: &str, now_ms: i64) -> bool {
        let slot = &self.slots[(self.hasher.hash_one(uid) as usize) % SLOTS];
        let minute = (now_ms / 60_000) as u64 & 0xffff_ffff;
        let mut current = slot.load(Relaxed);
        loop {
            let (m, n) = (current >> 32, (current & 0xffff_ffff) as u32);
            let next = if m == minute {
                if n >= PER_MINUTE {
                    return false;
                }
                current + 1
            } else {
                (minute << 32) | 1
            };
            match slot.compare_exchange_weak(current, next, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_the_allowance_each_minute_and_others_their_own() {
        let limit = LogoutLimit::default();
        let t = 1_700_000_000_000;
        for _ in 0..PER_MINUTE {
            assert!(limit.allow("busy", t));
        }
        assert!(!limit.allow("busy", t + 1000));
        assert!(limit.allow("calm", t + 1000));
        assert!(limit.allow("busy", t + 60_000), "a new minute");
    }
}

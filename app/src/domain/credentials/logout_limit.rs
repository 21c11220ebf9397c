//! How many logouts an end user may make a minute, on this instance.
//!
//! Every logout is a row kept as long as its token lives (30 days), so a
//! client logging out in a loop would grow the database without bound.
//! Counted in a count-min sketch (four rows of 2^18 slots, 4 MiB), not a
//! map: the memory stays the same whatever the number of users. A user's
//! count is the smallest of its four slots, each shared with the users
//! hashed there too; with independent rows, busy neighbours in all four
//! at once are vanishingly rare, so at ten thousand logouts a second a user
//! who logs out a few times a minute is not refused (two rows refused a
//! few users in 100,000 at that rate).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Logouts a user may make in one minute.
pub const PER_MINUTE: u32 = 20;
const SLOTS: usize = 1 << 18;
const ROWS: usize = 4;

pub struct LogoutLimit {
    /// Each slot: the minute (high 16 bits, wrapping) and its count (low 16).
    rows: [Box<[AtomicU32]>; ROWS],
    hashers: [RandomState; ROWS],
}

impl std::fmt::Debug for LogoutLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutLimit").finish_non_exhaustive()
    }
}

impl Default for LogoutLimit {
    fn default() -> Self {
        LogoutLimit {
            rows: std::array::from_fn(|_| (0..SLOTS).map(|_| AtomicU32::new(0)).collect()),
            hashers: std::array::from_fn(|_| RandomState::new()),
        }
    }
}

/// A slot's count in `minute` (zero if it last counted another minute).
fn count_in(slot: u32, minute: u32) -> u32 {
    if slot >> 16 == minute {
        slot & 0xffff
    } else {
        0
    }
}

impl LogoutLimit {
    /// Counts a logout of `uid` at `now_ms`; false once past the limit.
    pub fn allow(&self, uid: &str, now_ms: i64) -> bool {
        let minute = ((now_ms / 60_000) & 0xffff) as u32;
        let slots: [&AtomicU32; ROWS] =
            std::array::from_fn(|i| &self.rows[i][(self.hashers[i].hash_one(uid) as usize) % SLOTS]);
        let least = slots
            .iter()
            .map(|s| count_in(s.load(Relaxed), minute))
            .min()
            .unwrap_or(0);
        if least >= PER_MINUTE {
            return false;
        }
        for slot in slots {
            let _ = slot.fetch_update(Relaxed, Relaxed, |v| {
                // A slot already counting the next minute (this call is
                // late, across the boundary) is left as it is. (Minutes
                // wrap at 2^16: only "just ahead" can mean later.)
                let ahead = (v >> 16).wrapping_sub(minute) & 0xffff;
                if v != 0 && (1..=2).contains(&ahead) {
                    return None;
                }
                Some((minute << 16) | (count_in(v, minute) + 1).min(0xffff))
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_the_allowance_each_minute_and_others_their_own() {
        let limit = LogoutLimit::default();
        // The start of a minute.
        let t = 1_699_999_980_000;
        for _ in 0..PER_MINUTE {
            assert!(limit.allow("busy", t));
        }
        assert!(!limit.allow("busy", t + 1000));
        assert!(limit.allow("calm", t + 1000));
        assert!(limit.allow("busy", t + 60_000), "a new minute");
        // A late call from the minute before does not reset the new count.
        for _ in 1..PER_MINUTE {
            assert!(limit.allow("busy", t + 60_000));
        }
        assert!(
            limit.allow("busy", t + 59_999),
            "counted in its own (old) minute's slot state"
        );
        assert!(!limit.allow("busy", t + 60_001), "the new minute's count survived");
    }

    #[test]
    fn heavy_traffic_spread_over_many_users_refuses_none_of_them() {
        // 600,000 logouts in one minute (10,000 a second), 6 per user.
        let limit = LogoutLimit::default();
        let t = 1_700_000_000_000;
        let refused = (0..600_000u32)
            .filter(|n| !limit.allow(&format!("user-{}", n % 100_000), t))
            .count();
        assert_eq!(refused, 0);
    }
}

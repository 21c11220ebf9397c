//! A Bloom filter of strings, at a fixed size: "not in the filter" is
//! certain, "in the filter" only likely. Two hold what would otherwise be
//! read from the database on a hot path: the logged-out access tokens
//! (`views`), and the user ids stored (`stored_user_ids`).
//!
//! Bits are set and read with relaxed atomics: no lock on the hot path.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Bloom {
    words: Box<[AtomicU64]>,
    bits: u64,
    hashes: u32,
    /// Two independent keyed hashers (SipHash with per-process random
    /// keys): nobody outside can aim ids at the same bits.
    h1: std::collections::hash_map::RandomState,
    h2: std::collections::hash_map::RandomState,
    inserted: AtomicU64,
}

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bloom")
            .field("bytes", &self.bytes())
            .field("hashes", &self.hashes)
            .field("inserted", &self.inserted.load(Relaxed))
            .finish()
    }
}

impl Bloom {
    /// A filter of `bytes` (rounded down to whole 64-bit words, at least
    /// one), with the number of hashes best for `tuned_for` entries.
    pub fn with_bytes(bytes: usize, tuned_for: u64) -> Bloom {
        let words = (bytes / 8).max(1);
        let bits = words as u64 * 64;
        // The optimum: (m / n) ln 2.
        let k = ((bits as f64 / tuned_for.max(1) as f64) * std::f64::consts::LN_2).round();
        Bloom {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            bits,
            hashes: (k as u32).clamp(1, 16),
            h1: Default::default(),
            h2: Default::default(),
            inserted: AtomicU64::new(0),
        }
    }

    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// How many ids were inserted, repeats not counted (an id is counted
    /// when it set a bit): the same logout, say, can arrive twice, from
    /// this instance and from a refresh that reads it back.
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Relaxed)
    }

    fn positions(&self, id: &str) -> impl Iterator<Item = u64> + '_ {
        let hash = |s: &std::collections::hash_map::RandomState| {
            let mut h = s.build_hasher();
            h.write(id.as_bytes());
            h.finish()
        };
        let (a, b) = (hash(&self.h1), hash(&self.h2) | 1);
        // Double hashing: k positions from two hashes.
        (0..u64::from(self.hashes)).map(move |i| a.wrapping_add(i.wrapping_mul(b)) % self.bits)
    }

    pub fn insert(&self, id: &str) {
        let mut new = false;
        for bit in self.positions(id) {
            let mask = 1 << (bit % 64);
            new |= self.words[(bit / 64) as usize].fetch_or(mask, Relaxed) & mask == 0;
        }
        if new {
            self.inserted.fetch_add(1, Relaxed);
        }
    }

    /// False: surely never inserted. True: probably inserted.
    pub fn may_contain(&self, id: &str) -> bool {
        self.positions(id)
            .all(|bit| self.words[(bit / 64) as usize].load(Relaxed) & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_MILLION: u64 = 10_000_000;

    #[test]
    fn never_misses_what_was_inserted_and_rarely_claims_the_rest() {
        let f = Bloom::with_bytes(64 * 1024, TEN_MILLION);
        let ids: Vec<String> = (0..20_000).map(|i| format!("sid-{i}")).collect();
        for id in &ids {
            f.insert(id);
        }
        assert!(ids.iter().all(|id| f.may_contain(id)), "no false negatives");
        let false_hits = (0..20_000).filter(|i| f.may_contain(&format!("other-{i}"))).count();
        // 524,288 bits for 20,000 ids with one hash: about 4 %.
        assert!(false_hits < 20_000 / 10, "{false_hits} false hits");
        // Each new id counts, but for the few whose one bit was set
        // already; the same ids again add nothing.
        let counted = f.inserted();
        assert!((19_000..=20_000).contains(&counted), "{counted} counted");
        for id in &ids {
            f.insert(id);
        }
        assert_eq!(f.inserted(), counted, "repeats are not counted");
    }

    #[test]
    fn a_tiny_filter_still_never_misses() {
        let f = Bloom::with_bytes(3, TEN_MILLION);
        assert_eq!(f.bytes(), 8);
        for i in 0..1000 {
            f.insert(&i.to_string());
        }
        assert!((0..1000).all(|i| f.may_contain(&i.to_string())));
    }

    /// With several hashes (the default size: nine), the positions must
    /// spread: a step that collapses them (all the same bit, or adjacent
    /// ones) would make the filter little better than one hash.
    #[test]
    fn several_hashes_keep_false_hits_rare() {
        let f = Bloom::with_bytes(16 * 1024 * 1024, TEN_MILLION);
        for i in 0..200_000 {
            f.insert(&format!("sid-{i}"));
        }
        let false_hits = (0..200_000).filter(|i| f.may_contain(&format!("other-{i}"))).count();
        // (1 - e^(-9 × 200,000 / 134,217,728))^9 ≈ 4e-17: none expected.
        assert!(false_hits < 5, "{false_hits} false hits in 200,000");
    }

    #[test]
    fn the_hash_count_follows_the_entries_it_is_tuned_for() {
        let f = Bloom::with_bytes(16 * 1024 * 1024, TEN_MILLION);
        // (134,217,728 / 10,000,000) × ln 2 ≈ 9.3
        assert_eq!(f.hashes, 9);
        assert!(!f.may_contain("anything"));
        // Ten bits an entry: seven hashes, about 1 % false hits when full.
        assert_eq!(Bloom::with_bytes(1_250_000, 1_000_000).hashes, 7);
    }
}

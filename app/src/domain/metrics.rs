//! Operational counters for `/metrics` (SPEC §9): plain atomics, so
//! recording on the hot path takes no lock. Aggregates only: nothing here
//! names a user, a key or a token.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (0.5 ms … 2.5 s):
/// fine where the targets are (SPEC §8: p99 under 10 ms), coarse beyond.
const BOUNDS_MICROS: [u64; 12] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last one is everything above.
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations at or below it), ascending;
    /// the count of all observations follows as `count`.
    pub cumulative: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_MICROS
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(BOUNDS_MICROS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(BOUNDS_MICROS.len());
        for (bound, bucket) in BOUNDS_MICROS.iter().zip(&self.buckets) {
            running += bucket.load(Relaxed);
            cumulative.push((*bound as f64 / 1e6, running));
        }
        // The count is the buckets' total, so it always equals the `+Inf`
        // bucket even while observations land during the read.
        let count = running + self.buckets[BOUNDS_MICROS.len()].load(Relaxed);
        HistogramSnapshot {
            cumulative,
            count,
            sum_seconds: self.sum_micros.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// What the batching writer did.
#[derive(Debug, Default)]
pub struct WriterMetrics {
    /// Time to write and commit one batch: what every waiter in it waited
    /// on the database.
    pub commit: Histogram,
    pub new_users: AtomicU64,
    pub redemptions: AtomicU64,
    /// Statements that failed (their waiters got an error).
    pub failures: AtomicU64,
}

/// Responses by status class, and how long requests took to answer.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// 1xx … 5xx, at index class - 1.
    classes: [AtomicU64; 5],
    pub duration: Histogram,
}

impl HttpMetrics {
    pub fn record(&self, status: u16, took: Duration) {
        if let Some(class) = self.classes.get(usize::from(status / 100).wrapping_sub(1)) {
            class.fetch_add(1, Relaxed);
        }
        self.duration.observe(took);
    }

    /// ("2xx", count) for each class.
    pub fn responses(&self) -> Vec<(String, u64)> {
        (1..=5)
            .zip(&self.classes)
            .map(|(c, n)| (format!("{c}xx"), n.load(Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_count_matches_the_last() {
        let h = Histogram::default();
        for ms in [0, 1, 3, 3, 40, 5_000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        let at = |bound: f64| s.cumulative.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.0005), 1);
        assert_eq!(at(0.001), 2);
        assert_eq!(at(0.005), 4);
        assert_eq!(at(0.05), 5);
        assert_eq!(at(2.5), 5, "5 s is above every bound");
        assert_eq!(s.count, 6);
        assert!((s.sum_seconds - 5.047).abs() < 1e-9, "{}", s.sum_seconds);
    }

    #[test]
    fn responses_are_counted_by_class() {
        let m = HttpMetrics::default();
        for status in [200, 204, 302, 404, 429, 500, 99, 600] {
            m.record(status, Duration::ZERO);
        }
        let by: std::collections::HashMap<_, _> = m.responses().into_iter().collect();
        assert_eq!(by["2xx"], 2);
        assert_eq!(by["3xx"], 1);
        assert_eq!(by["4xx"], 2);
        assert_eq!(by["5xx"], 1);
        assert_eq!(by["1xx"], 0, "99 is no status class");
        assert_eq!(m.duration.snapshot().count, 8);
    }
}

//! Login throttling: too many failures for one username, or from one client
//! address, within a window lock further attempts out until the window
//! moves on. Keys are counted whether or not the username exists, so the
//! throttle itself reveals nothing about which admins exist.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

#[derive(Debug, Default)]
struct Failures {
    by_username: HashMap<String, VecDeque<Instant>>,
    by_client: HashMap<String, VecDeque<Instant>>,
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    failures: Mutex<Failures>,
}

/// Above this many tracked keys, stale ones are swept on the next failure.
const SWEEP_AT: usize = 10_000;

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            policy,
            failures: Mutex::new(Failures::default()),
        }
    }

    fn retry_after(&self, list: Option<&VecDeque<Instant>>, limit: usize, now: Instant) -> Option<u64> {
        let list = list?;
        let recent: Vec<&Instant> = list
            .iter()
            .filter(|t| now.duration_since(**t) < self.policy.window)
            .collect();
        if recent.len() < limit {
            return None;
        }
        // Locked until the oldest counted failure leaves the window.
        let oldest = recent[recent.len() - limit];
        let left = self.policy.window.saturating_sub(now.duration_since(*oldest));
        Some(left.as_secs().max(1))
    }

    /// Refuses while locked out; otherwise counts this attempt as a failure
    /// at once, in the same step, so parallel guesses cannot all slip past
    /// the check before any of them is counted. `success` takes it back.
    pub fn attempt(&self, username: &str, client: &str) -> DomainResult<()> {
        let now = Instant::now();
        let window = self.policy.window;
        let mut guard = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = self
            .retry_after(guard.by_username.get(username), self.policy.per_username, now)
            .into_iter()
            .chain(self.retry_after(guard.by_client.get(client), self.policy.per_client, now))
            .max();
        if let Some(secs) = wait {
            return Err(DomainError::RateLimited(secs));
        }
        let Failures { by_username, by_client } = &mut *guard;
        for (map, key, cap) in [
            (by_username, username, self.policy.per_username),
            (by_client, client, self.policy.per_client),
        ] {
            let list = map.entry(key.to_string()).or_default();
            list.push_back(now);
            while list.len() > cap {
                list.pop_front();
            }
            if map.len() > SWEEP_AT {
                map.retain(|_, l| l.back().is_some_and(|t| now.duration_since(*t) < window));
            }
        }
        Ok(())
    }

    /// The attempt succeeded: the username starts afresh, and the client's
    /// count loses the attempt `attempt` recorded.
    pub fn success(&self, username: &str, client: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.by_username.remove(username);
        if let Some(list) = f.by_client.get_mut(client) {
            list.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_a_username_after_its_limit_and_success_resets() {
        let t = LoginThrottle::new(ThrottlePolicy {
            window: Duration::from_secs(60),
            per_username: 3,
            per_client: 100,
        });
        for _ in 0..3 {
            assert!(t.attempt("alice", "1.1.1.1").is_ok());
        }
        assert!(matches!(t.attempt("alice", "2.2.2.2"), Err(DomainError::RateLimited(s)) if s > 0 && s <= 60));
        assert!(t.attempt("bob", "1.1.1.1").is_ok());
        t.success("bob", "1.1.1.1");
        assert!(t.attempt("bob", "1.1.1.1").is_ok());
    }

    #[test]
    fn locks_a_client_across_usernames() {
        let t = LoginThrottle::new(ThrottlePolicy {
            window: Duration::from_secs(60),
            per_username: 100,
            per_client: 2,
        });
        assert!(t.attempt("a", "9.9.9.9").is_ok());
        assert!(t.attempt("b", "9.9.9.9").is_ok());
        assert!(t.attempt("c", "9.9.9.9").is_err());
        assert!(t.attempt("c", "8.8.8.8").is_ok());
    }
}

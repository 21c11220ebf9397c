//! Known end users, in memory: a session for a known user with an
//! unchanged display name reads and writes nothing (SPEC §8).
//!
//! An entry is dropped when this instance changes the user, and when a
//! poll (a few times a second, like the other views) finds the user changed
//! by another instance, so a display name is never stale for long.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use crate::domain::clock::now_ms;
use crate::domain::credentials::end_users::EndUser;
use crate::domain::storage::db::Db;
use crate::domain::DomainResult;

/// Beyond this many, the cache starts over (bounds memory; misses refill it).
const MAX_USERS: usize = 50_000;
/// How far back each poll looks, so a change committed late by a slower
/// instance (with an earlier timestamp), or on a clock that lags, is seen.
const LATE_WINDOW_MS: i64 = 10_000;

#[derive(Debug, Default)]
pub struct KnownUsers {
    users: RwLock<HashMap<String, EndUser>>,
    polled_at: Mutex<Option<i64>>,
}

impl KnownUsers {
    pub fn get(&self, user_id: &str) -> Option<EndUser> {
        self.users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            .cloned()
    }

    pub fn put(&self, user: EndUser) {
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        if users.len() >= MAX_USERS && !users.contains_key(&user.user_id) {
            users.clear();
        }
        users.insert(user.user_id.clone(), user);
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
            let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
            for (user_id,) in changed {
                users.remove(&user_id);
            }
        }
        *self.polled_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        Ok(())
    }
}

//! The domain's background work, started and stopped with a server's
//! [`Keyward`]: the in-memory views kept fresh, SQLite's log checkpointed,
//! bookkeeping written in batches, and what has expired deleted.

use std::time::Duration;
use tokio::sync::watch;

use crate::domain::Keyward;

/// The logout filter is built afresh this often, so logouts of expired
/// tokens leave it and it never fills up.
const REBUILD_FILTER_EVERY_MINUTES: u64 = 60;

/// Housekeeping beside the refresh runs on this clock, whatever the
/// refresh interval: SQLite's log checkpointed every half second, usage
/// bookkeeping written every five.
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(250);
/// Refreshes woken by notifications are at least this far apart: a storm
/// of changes (logouts) costs each instance a refresh per interval, not
/// one per change, and a change still arrives within it.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(10);

/// Keeps the in-memory views fresh (changes made by other instances show
/// at the next refresh, or at once when the database announces them),
/// checkpoints SQLite's log beside the writer, and writes usage
/// bookkeeping in batches.
pub(in crate::domain) async fn keep_fresh(kw: Keyward, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh = tokio::time::interval(kw.refresh_interval.max(MIN_REFRESH_GAP));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = refresh.tick() => {}
            _ = kw.changed_elsewhere.notified() => {
                tokio::select! {
                    _ = tokio::time::sleep_until(last + MIN_REFRESH_GAP) => {}
                    _ = stop.changed() => break,
                }
                refresh.reset();
            }
            _ = tick.tick() => {
                n += 1;
                housekeeping(&kw, n).await;
                continue;
            }
            _ = stop.changed() => break,
        }
        last = tokio::time::Instant::now();
        if let Err(e) = kw.poll().await {
            tracing::warn!(error = %e, "could not refresh the in-memory views");
        }
    }
}

/// Fills the known-user cache from the database once, at start (see
/// `KnownUsers::warm`), then the filter of stored user ids
/// (`StoredUserIds::load`), beside the traffic: one after the other, so
/// the regulars are served from memory first.
pub(in crate::domain) async fn warm_users(kw: Keyward, mut stop: watch::Receiver<bool>) {
    let started = std::time::Instant::now();
    tokio::select! {
        warmed = kw.users.warm(&kw.db) => match warmed {
            Ok(users) => tracing::info!(users, ms = started.elapsed().as_millis() as u64, "known users loaded into memory"),
            Err(e) => tracing::warn!(error = %e, "could not load known users into memory"),
        },
        _ = stop.changed() => return,
    }
    loop {
        let started = std::time::Instant::now();
        tokio::select! {
            loaded = kw.stored_ids.load(&kw.db) => match loaded {
                Ok(users) => {
                    tracing::info!(users, ms = started.elapsed().as_millis() as u64, "stored user ids loaded into their filter");
                    return;
                }
                // Until it loads, new users are read first, as all are.
                Err(e) => tracing::warn!(error = %e, "could not load the stored user ids; trying again in 30 s"),
            },
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn housekeeping(kw: &Keyward, n: u64) {
    if n.is_multiple_of(2) {
        if let Err(e) = kw.db.checkpoint().await {
            tracing::warn!(error = %e, "could not checkpoint the write-ahead log");
        }
    }
    if n.is_multiple_of(20) {
        if let Err(e) = kw.usage.flush(&kw.db).await {
            tracing::warn!(error = %e, "could not write usage bookkeeping");
        }
    }
}

/// Deletes what has expired: console sessions, token records, old
/// sign-in failures; and rebuilds the logout filter now and then.
pub(in crate::domain) async fn clean_up(kw: Keyward, mut stop: watch::Receiver<bool>) {
    let store = kw.console_session_store();
    let mut minutes: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "could not delete expired console sessions");
        }
        if let Err(e) = kw.delete_expired_token_records().await {
            tracing::warn!(error = %e, "could not delete expired token records");
        }
        if let Err(e) = kw.throttle.forget_old(&kw.db).await {
            tracing::warn!(error = %e, "could not delete old sign-in failures");
        }
        minutes += 1;
        if minutes.is_multiple_of(REBUILD_FILTER_EVERY_MINUTES) {
            if let Err(e) = kw.views.rebuild_revocations(&kw.db).await {
                tracing::warn!(error = %e, "could not rebuild the logout filter");
            }
        }
    }
}

//! Changes pushed between instances on PostgreSQL (`LISTEN`/`NOTIFY`).
//!
//! Every instance re-reads what others changed on a short interval; on
//! PostgreSQL it also listens on one channel, so a change is in force on
//! every instance within milliseconds instead of at the next refresh. The
//! database announces audited changes and renames itself (triggers in the
//! migrations, in the transaction that makes them, so no code path can
//! forget); the batching writer announces the logouts it commits, after
//! the commit, because a notifying transaction holds a cluster-wide lock
//! through its commit and logouts are many. A notification carries
//! nothing and proves nothing (any role may notify): it only wakes the
//! refresh, which reads what changed. One missed, with a dropped
//! connection, costs at most one refresh interval.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::{watch, Notify};

use crate::domain::storage::db::{Backend, Db};

/// The channel the triggers and the writer notify (see the migrations).
pub const CHANNEL: &str = "keyward_changes";

/// With nothing heard for this long, the connection is checked: one cut
/// without a reset (a NAT's or a proxy's idle timeout) would otherwise
/// leave the instance deaf without knowing.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long the check may take before the connection counts as dead.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits between attempts to connect again, doubling up to the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Tells the other instances that something changed. On SQLite it does
/// nothing (instances there find changes by their refresh); a failure is
/// logged, never the caller's: the refresh still carries the change.
pub async fn announce(db: &Db) {
    if db.backend() != Backend::Postgres {
        return;
    }
    if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(db.write())
        .await
    {
        tracing::warn!(error = %e, "could not notify the other instances of a change");
    }
}

/// Listens for changes until `stop`, waking `wake` on each, and once each
/// time it (re)connects, for what was missed meanwhile. Returns at once on
/// SQLite.
pub async fn listen(db: Db, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let Some(pool) = db.listener_pool() else {
        return;
    };
    let mut retry = RETRY_FIRST;
    loop {
        let connected = tokio::select! {
            r = connect(&pool) => r,
            _ = stop.changed() => break,
        };
        match connected {
            Ok(mut listener) => {
                wake.notify_one();
                let lasted = tokio::time::Instant::now();
                tokio::select! {
                    e = serve(&mut listener, &wake) => {
                        tracing::warn!(error = %e, "lost the connection that listens for other instances' changes; connecting again");
                    }
                    _ = stop.changed() => break,
                }
                // A connection that lived a while starts the back-off over;
                // one cut at once (a proxy that ends it) does not.
                if lasted.elapsed() > RETRY_MAX * 2 {
                    retry = RETRY_FIRST;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not listen for changes made by other instances; refreshing on the interval meanwhile");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = stop.changed() => break,
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
    pool.close().await;
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Wakes the refresh on each notification; returns why the connection is
/// no longer to be trusted. (`try_recv` is cancel-safe since sqlx 0.8.1.)
async fn serve(listener: &mut PgListener, wake: &Notify) -> sqlx::Error {
    loop {
        match tokio::time::timeout(HEARTBEAT, listener.try_recv()).await {
            // A notification; or (`None`) sqlx lost the connection and made
            // a new one, listening again, before saying so: what was sent
            // meanwhile is lost, and the refresh reads it anyway.
            Ok(Ok(_)) => wake.notify_one(),
            Ok(Err(e)) => return e,
            Err(_quiet) => {
                let check = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e,
                    Err(_) => return sqlx::Error::PoolTimedOut,
                }
            }
        }
    }
}

/// A pool of one connection, named so an operator (and the tests) can see
/// it in `pg_stat_activity`.
pub(crate) fn listener_pool(options: &sqlx::postgres::PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options.clone().application_name("keyward-listener"))
}

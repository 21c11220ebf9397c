//! Changes pushed between instances on PostgreSQL (`LISTEN`/`NOTIFY`).
//!
//! Every instance polls for what others changed a few times a second; on
//! PostgreSQL it also listens on one channel, so a change is in force on
//! every instance within milliseconds instead of at the next poll. The
//! database announces audited changes and renames itself (triggers in the
//! migrations, in the transaction that makes them, so no code path can
//! forget); the batching writer announces the logouts it commits, after
//! the commit, because a notifying transaction holds a cluster-wide lock
//! through its commit and logouts are many. A notification carries
//! nothing: it wakes the poll, which reads what changed. One missed (the
//! connection dropped) costs at most one poll interval.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{watch, Notify};

use crate::domain::storage::db::Db;

/// The channel the triggers and the writer notify (see the migrations).
pub const CHANNEL: &str = "keyward_changes";

/// Tells the other instances that something changed. On SQLite (one
/// instance per file in practice, and the poll for the rest) it does
/// nothing; a failure is logged, never the caller's: the poll still
/// carries the change.
pub async fn announce(db: &Db) {
    if db.listen_options().is_none() {
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

/// Listens for changes until `stop`, waking `wake` on each (and once after
/// every reconnection, for what was missed meanwhile). Returns at once on
/// SQLite.
pub async fn listen(db: Db, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let Some(options) = db.listen_options() else {
        return;
    };
    // A pool of one, so the listener can connect again by itself.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options.clone().application_name("keyward-listener"));
    let mut listener: Option<PgListener> = None;
    let mut retry = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(l) = listener.as_mut() else {
            let attempt = async {
                let mut l = PgListener::connect_with(&pool).await?;
                l.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            tokio::select! {
                r = attempt => match r {
                    Ok(l) => {
                        listener = Some(l);
                        retry = Duration::from_millis(100);
                        // Whatever changed while not listening.
                        wake.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not listen for changes made by other instances; polling meanwhile");
                        tokio::select! {
                            _ = tokio::time::sleep(retry) => {}
                            _ = stop.changed() => return,
                        }
                        retry = (retry * 2).min(Duration::from_secs(5));
                    }
                },
                _ = stop.changed() => return,
            }
            continue;
        };
        tokio::select! {
            r = l.try_recv() => match r {
                Ok(Some(_)) => wake.notify_one(),
                // The connection was lost: connect again (and catch up).
                Ok(None) | Err(_) => {
                    tracing::warn!("lost the connection that listens for other instances' changes; reconnecting");
                    listener = None;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

//! The database handle: SQLite (embedded default) or PostgreSQL, through
//! sqlx's `Any` driver so every query is written once.
//!
//! Every change to keys, tokens, certificates, admins and settings goes
//! through [`Change`]: a write transaction that first takes the audit-chain
//! head (serialising such changes across instances) and can only be
//! committed together with its audit event.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::Notify;

use crate::domain::audit::{self, AuditEvent};
use crate::domain::keyring::KeyRing;
use crate::domain::principal::{credential_holds, Principal};
use crate::domain::secrets::SubKey;
use crate::domain::{DomainError, DomainResult};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The name OpenTelemetry's conventions give it (`db.system.name`).
    pub fn system_name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

/// Connection settings that may hold the database's password: no Debug
/// (sqlx's own prints it), shared rather than copied with each `Db`.
#[derive(Clone)]
struct ListenOptions(Arc<PgConnectOptions>);

#[derive(Clone)]
pub struct Db {
    /// Reads: many connections.
    read: AnyPool,
    /// Writes: on SQLite a single connection, so write transactions queue
    /// in the pool instead of failing with SQLITE_BUSY; on PostgreSQL the
    /// same pool as reads.
    write: AnyPool,
    backend: Backend,
    /// PostgreSQL's connection settings, for the connection that listens
    /// for other instances' changes (`changes`).
    listen: Option<ListenOptions>,
    /// The data's keys (the audit chain's among them), opened with the
    /// master key.
    keys: Option<Arc<KeyRing>>,
    /// Woken when a commit wrote webhook deliveries (the worker sends them).
    outbox: Arc<Notify>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    pub async fn connect(url: &str) -> DomainResult<Db> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DomainError::invalid(
                "the database URL must start with sqlite: or postgres:",
            ));
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| DomainError::invalid(format!("the database URL is not valid: {e}")))?;
        match backend {
            Backend::Sqlite => {
                let read = sqlite_pool(8, READ_CACHE_KIB, "").connect_with(options.clone()).await?;
                // The writer never checkpoints (an fsync in the middle of a
                // batch); `checkpoint` does it beside it, from a reader.
                // Its commits are flushed to disk before they return
                // (synchronous FULL): an answered write, such as a redeemed
                // auth token, survives a power failure too, not only a
                // restart. Group commit pays one flush per batch.
                let write = sqlite_pool(
                    1,
                    WRITE_CACHE_KIB,
                    "PRAGMA wal_autocheckpoint = 0; PRAGMA synchronous = FULL;",
                )
                .connect_with(options)
                .await?;
                Ok(Db {
                    read,
                    write,
                    backend,
                    listen: None,
                    keys: None,
                    outbox: Arc::new(Notify::new()),
                })
            }
            Backend::Postgres => {
                let listen = PgConnectOptions::from_str(url)
                    .map_err(|e| DomainError::invalid(format!("the database URL is not valid: {e}")))?;
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Ok(Db {
                    read: pool.clone(),
                    write: pool,
                    backend,
                    listen: Some(ListenOptions(Arc::new(listen))),
                    keys: None,
                    outbox: Arc::new(Notify::new()),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pool of one for listening to other instances' changes:
    /// PostgreSQL only.
    pub(crate) fn listener_pool(&self) -> Option<sqlx::PgPool> {
        self.listen
            .as_ref()
            .map(|o| crate::domain::storage::changes::listener_pool(&o.0))
    }

    /// Notified when a change on this instance wrote webhook deliveries.
    pub(crate) fn outbox_ready(&self) -> &Notify {
        &self.outbox
    }

    /// Audited changes need the chain's key: a handle without the keys
    /// (`keyring::open`) can read but not change.
    pub fn with_keys(mut self, keys: KeyRing) -> Db {
        self.keys = Some(Arc::new(keys));
        self
    }

    pub(crate) fn keys(&self) -> DomainResult<&KeyRing> {
        self.keys
            .as_deref()
            .ok_or_else(|| DomainError::Internal("no keys: the master key was not loaded".into()))
    }

    pub fn read(&self) -> &AnyPool {
        &self.read
    }

    pub fn write(&self) -> &AnyPool {
        &self.write
    }

    /// Parameters for a multi-row statement, `rows` groups of `per_row`:
    /// `(?, ?), (?, ?)` on SQLite, `($1, $2), ($3, $4)` on PostgreSQL.
    /// SQLite gets anonymous ones because it finds a numbered parameter's
    /// name by a linear scan at every bind: binding a batch was quadratic.
    pub fn param_rows(&self, rows: usize, per_row: usize) -> String {
        (0..rows)
            .map(|r| format!("({})", self.params_from(r * per_row + 1, per_row)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `n` parameters in a list, for `IN (…)`.
    pub fn param_list(&self, n: usize) -> String {
        self.params_from(1, n)
    }

    fn params_from(&self, first: usize, n: usize) -> String {
        let one = |i: usize| match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${i}"),
        };
        (first..first + n).map(one).collect::<Vec<_>>().join(", ")
    }

    pub async fn migrate(&self) -> DomainResult<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.write).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.write).await?,
        }
        Ok(())
    }

    /// Copies SQLite's write-ahead log into the database file without
    /// blocking the writer; called a few times a second. PostgreSQL: nothing.
    pub async fn checkpoint(&self) -> DomainResult<()> {
        if self.backend == Backend::Sqlite {
            let (log, _) = passive_checkpoint(&self.read).await?;
            if log >= CATCH_UP_FRAMES {
                let started = std::time::Instant::now();
                let (log, copied) = passive_checkpoint(&self.write).await?;
                tracing::trace!(
                    log,
                    copied,
                    micros = started.elapsed().as_micros() as u64,
                    "the writer caught up"
                );
            }
        }
        Ok(())
    }

    /// A consistent copy of the whole SQLite database into `path` (an empty
    /// file), taken while others read and write: `VACUUM INTO` reads one
    /// snapshot. PostgreSQL has its own tools (`pg_dump`).
    pub async fn backup_into(&self, path: &str) -> DomainResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(DomainError::invalid(
                "only the embedded SQLite database is backed up by Keyward",
            ));
        }
        sqlx::query("VACUUM INTO $1").bind(path).execute(&self.read).await?;
        Ok(())
    }

    /// Is the database answering? For `/readyz`.
    pub async fn ping(&self) -> DomainResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Starts an audited change. Dropping it without `commit` rolls back.
    ///
    /// Refused when the master key was rotated after this process opened
    /// the keys: it would seal secrets with, and write events under, keys
    /// no longer in use.
    pub async fn change(&self) -> DomainResult<Change> {
        self.keys()?;
        let keys = self.keys.clone().expect("checked above");
        let mut tx = self.write.begin().await?;
        // Taking the head row first locks it (PostgreSQL) or takes the
        // write lock (SQLite) before anything is read, so concurrent
        // changes serialise instead of interleaving.
        let (seq, prev_hash, epoch): (i64, Vec<u8>, i64) =
            sqlx::query_as("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash, key_epoch")
                .fetch_one(&mut *tx)
                .await?;
        if epoch != keys.current().epoch {
            return Err(DomainError::Conflict(
                "Keyward's master key was rotated: restart this instance with the new key".into(),
            ));
        }
        Ok(Change {
            tx,
            seq,
            prev_hash,
            keys,
            key: None,
            outbox: self.outbox.clone(),
        })
    }

    /// Starts a change on behalf of `actor`, whose credential must still
    /// hold once the change lock is taken: a request admitted before a
    /// revoke, and waiting for the lock meanwhile, is refused here.
    pub async fn change_as(&self, actor: &Principal) -> DomainResult<Change> {
        let mut change = self.change().await?;
        credential_holds(change.conn(), &actor.credential).await?;
        Ok(change)
    }
}

/// SQLite's passive checkpoint through `pool`: (frames in the log, frames
/// copied into the database file).
async fn passive_checkpoint(pool: &AnyPool) -> DomainResult<(i64, i64)> {
    let (_busy, log, copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await?;
    Ok((log, copied))
}

/// Under a steady stream of writes a passive checkpoint from a reader never
/// catches up with the writer, so the log was never started over: it grew
/// to hundreds of megabytes and every page lookup got slower. Past this
/// many frames the write connection itself, between two statements,
/// copies the few frames written meanwhile; it waits for no lock, and its
/// next write starts the log over.
const CATCH_UP_FRAMES: i64 = 1024;

/// Page cache per connection. The one writer gets a large one: inserts
/// touch index pages all over the file, and a miss is a read syscall while
/// every other write waits.
const WRITE_CACHE_KIB: u32 = 16 * 1024;
const READ_CACHE_KIB: u32 = 2 * 1024;

fn sqlite_pool(max: u32, cache_kib: u32, extra: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(
                    format!(
                        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                         PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
                         PRAGMA cache_size = -{cache_kib}; {extra}"
                    )
                    .as_str(),
                )
                .await?;
                Ok(())
            })
        })
}

/// A write transaction that must end with an audit event.
pub struct Change {
    tx: Transaction<'static, Any>,
    seq: i64,
    prev_hash: Vec<u8>,
    keys: Arc<KeyRing>,
    /// The key of an epoch this change starts (a master-key rotation).
    key: Option<SubKey>,
    outbox: Arc<Notify>,
}

impl Change {
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The sequence number this change's event will have.
    pub(crate) fn seq(&self) -> i64 {
        self.seq
    }

    /// The chain was re-hashed inside this change (`audit::key_chain`).
    pub(crate) fn set_prev_hash(&mut self, hash: Vec<u8>) {
        self.prev_hash = hash;
    }

    /// This change starts a new audit-key epoch: its event is the first
    /// MACed with `key`.
    pub(crate) fn use_key(&mut self, key: SubKey) {
        self.key = Some(key);
    }

    /// Appends the event to the hash chain and commits it with the change,
    /// together with the webhook deliveries it raises (the outbox).
    pub async fn commit(mut self, event: AuditEvent) -> DomainResult<()> {
        let key = self.key.as_ref().unwrap_or(&self.keys.current().key);
        audit::append(&mut self.tx, key, self.seq, &self.prev_hash, &event).await?;
        let queued = crate::domain::webhooks::outbox::enqueue(&mut self.tx, self.seq, &event).await?;
        self.tx.commit().await?;
        if queued {
            self.outbox.notify_one();
        }
        Ok(())
    }
}

/// Maps a unique-constraint violation to a readable conflict.
pub fn on_unique(e: sqlx::Error, message: &str) -> DomainError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => DomainError::Conflict(message.into()),
        _ => e.into(),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Db;

    /// A fresh SQLite database `t.db` in a directory of its own.
    pub async fn temp_sqlite(tag: &str) -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("keyward-{tag}-{}", crate::domain::ids::ordered_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        (Db::connect(&url).await.unwrap(), dir)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::temp_sqlite;
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    /// What the writer answers must survive a power failure: its commits
    /// are flushed (FULL), while readers, which commit nothing, need not.
    #[tokio::test]
    async fn sqlite_writes_are_flushed_before_they_return() {
        let (db, dir) = temp_sqlite("sync").await;
        let (write,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(db.write())
            .await
            .unwrap();
        let (read,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(db.read()).await.unwrap();
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(write, 2, "the write connection runs with synchronous = FULL");
        assert_eq!(read, 1, "readers keep NORMAL");
    }

    /// The log must start over while writes never pause, or it grows
    /// without bound (it did: to hundreds of megabytes under load).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_over_under_a_steady_stream_of_writes() {
        let (db, dir) = temp_sqlite("wal").await;
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(db.write())
            .await
            .unwrap();

        // A page-sized row per statement, each its own commit, nonstop.
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writes = tokio::spawn({
            let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    sqlx::query("INSERT INTO t (b) VALUES (randomblob(4000))")
                        .execute(db.write())
                        .await
                        .unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let wal = dir.join("t.db-wal");
        let frames = |bytes: u64| bytes / 4096;
        // Checkpoint as the server does, each time a commit per frame that
        // calls for a catch-up has been written (each commit is ≥ 1 frame).
        let every = CATCH_UP_FRAMES as u64;
        for round in 1..=10 {
            while written.load(Ordering::Relaxed) < round * every {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            db.checkpoint().await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        writes.await.unwrap();
        let rows = written.load(Ordering::Relaxed);
        let size = std::fs::metadata(&wal).unwrap().len();
        db.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            frames(size) < 4 * CATCH_UP_FRAMES as u64,
            "the log grew to {} frames over {rows} rows",
            frames(size)
        );
    }
}

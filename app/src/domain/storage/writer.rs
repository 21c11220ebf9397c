//! The one batching writer (group commit) for the durable writes on the
//! session hot path: creating a new end user (the reader, `reader.rs`,
//! has found it not stored), redeeming an auth token, and recording a
//! logout.
//! Requests queue their write and wait; the writer takes everything queued,
//! writes it with one multi-row statement per kind (each statement its own
//! transaction: one round trip commits the lot), and answers each request
//! only after that commit. Throughput follows the batch, not the
//! database's rate of single transactions (SPEC §8). On PostgreSQL a few
//! batches overlap, so one waiting for its flush does not stall the rest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::domain::credentials::end_users::EndUser;
use crate::domain::metrics::{Metrics, WriteKind};
use crate::domain::storage::batching::next_batch;
use crate::domain::storage::db::{Backend, Db};
use crate::domain::traces::{Finished, Traces};
use crate::domain::{DomainError, DomainResult};

/// At most this many writes share a transaction.
const MAX_BATCH: usize = 512;
/// Rows per statement: on SQLite well under its parameter limit; on
/// PostgreSQL a batch is one parameter (JSON), so one statement.
fn rows_per_statement(db: &Db) -> usize {
    match db.backend() {
        Backend::Sqlite => 128,
        Backend::Postgres => MAX_BATCH,
    }
}
/// Requests waiting beyond this many apply back-pressure.
const QUEUE: usize = 4096;

enum Msg {
    NewUser(NewUser),
    Redeem(Redeem),
    Logout(Logout),
    Close,
}

pub struct Writer {
    tx: mpsc::Sender<Msg>,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn stopped() -> DomainError {
    DomainError::Internal("the batching writer has stopped".into())
}

impl Writer {
    /// Starts the writer's task; it records its batches into `metrics`
    /// and, when spans are exported, one span per batch.
    pub fn start(db: Db, metrics: Arc<Metrics>, traces: Traces) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(db, rx, Observe { metrics, traces }));
        Writer {
            tx,
            task: Mutex::new(Some(task)),
        }
    }

    /// Writes waiting for a batch.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Creates the end user unless it exists; the stored row either way,
    /// and whether this call created it. Its id begins with `now`, its
    /// creation time, which memory then need not hold twice (`known_users`).
    pub async fn new_user(&self, user_id: &str, display_name: &str, now: i64) -> DomainResult<(EndUser, bool)> {
        let (reply, answer) = oneshot::channel();
        let id = crate::domain::ids::ordered_id_at(now);
        let msg = Msg::NewUser(NewUser {
            id: id.clone(),
            user_id: user_id.to_string(),
            display_name: display_name.to_string(),
            now,
            reply,
        });
        self.tx.send(msg).await.map_err(|_| stopped())?;
        let user = answer.await.map_err(|_| stopped())??;
        let created = user.id == id;
        Ok((user, created))
    }

    /// Records an auth token's nonce as redeemed. `Ok(true)` the first time
    /// (durably, before returning), `Ok(false)` if it already was.
    pub async fn redeem(&self, nonce: &[u8], expires_at: i64) -> DomainResult<bool> {
        let (reply, answer) = oneshot::channel();
        let msg = Msg::Redeem(Redeem {
            nonce: nonce.to_vec(),
            expires_at,
            reply,
        });
        self.tx.send(msg).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Records the logout of session `sid` (durably, before returning).
    pub async fn logout(&self, sid: &str, at: i64, expires_at: i64) -> DomainResult<()> {
        let (reply, answer) = oneshot::channel();
        let msg = Msg::Logout(Logout {
            sid: sid.to_string(),
            at,
            expires_at,
            reply,
        });
        self.tx.send(msg).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Writes everything queued, then stops. For graceful shutdown, after
    /// the listeners have stopped taking requests.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the batching writer failed");
            }
        }
    }
}

/// Batches committing at once. SQLite has one writer, so one; PostgreSQL
/// commits concurrent transactions and each waits for its own flush, so a
/// few overlap (conflicts stay correct: a second insert of the same user or
/// nonce waits for the first and then does nothing).
fn in_flight(db: &Db) -> u32 {
    match db.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    }
}

/// Where the writer reports what it did.
#[derive(Clone)]
struct Observe {
    metrics: Arc<Metrics>,
    traces: Traces,
}

async fn run(db: Db, mut rx: mpsc::Receiver<Msg>, observe: Observe) {
    let slots = in_flight(&db);
    let permits = Arc::new(Semaphore::new(slots as usize));
    let mut buf = Vec::with_capacity(MAX_BATCH);
    loop {
        // A free slot first: what queues meanwhile joins the next batch.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        if !next_batch(&mut rx, &mut buf, MAX_BATCH).await {
            drop(permit);
            let _ = permits.acquire_many(slots).await;
            return;
        }
        let closing = buf.iter().any(|m| matches!(m, Msg::Close));
        if closing {
            // Take what is still queued; nothing new can arrive after this.
            rx.close();
            while let Ok(m) = rx.try_recv() {
                buf.push(m);
            }
        }
        let batch = std::mem::take(&mut buf);
        let db_for_batch = db.clone();
        let observe = observe.clone();
        tokio::spawn(async move {
            commit(&db_for_batch, batch, &observe).await;
            drop(permit);
        });
        if closing {
            // Every batch still committing has finished once all slots are free.
            let _ = permits.acquire_many(slots).await;
            return;
        }
    }
}

struct NewUser {
    id: String,
    user_id: String,
    display_name: String,
    now: i64,
    reply: oneshot::Sender<DomainResult<EndUser>>,
}

struct Redeem {
    nonce: Vec<u8>,
    expires_at: i64,
    reply: oneshot::Sender<DomainResult<bool>>,
}

struct Logout {
    sid: String,
    at: i64,
    expires_at: i64,
    reply: oneshot::Sender<DomainResult<()>>,
}

/// Writes a batch: one multi-row statement per chunk of each kind. A
/// single statement is its own transaction, so a chunk commits in one
/// round trip to the database; each waiter hears its chunk's outcome.
async fn commit(db: &Db, batch: Vec<Msg>, observe: &Observe) {
    let metrics = &*observe.metrics;
    let started = std::time::Instant::now();
    let mut users = Vec::new();
    let mut redeems = Vec::new();
    let mut logouts = Vec::new();
    for msg in batch {
        match msg {
            Msg::NewUser(u) => users.push(u),
            Msg::Redeem(r) => redeems.push(r),
            Msg::Logout(l) => logouts.push(l),
            Msg::Close => {}
        }
    }
    let (n_users, n_redeems, n_logouts) = (users.len(), redeems.len(), logouts.len());
    let mut all_ok = true;
    if !logouts.is_empty() {
        let written = insert_logouts(db, logouts, metrics).await;
        all_ok &= written;
        // Other instances hear of the logouts at once (after the commit
        // and the answers: see `changes` for why not in the transaction).
        if written {
            let db = db.clone();
            tokio::spawn(async move { crate::domain::storage::changes::announce(&db).await });
        }
    }
    if !redeems.is_empty() {
        all_ok &= redeem_all(db, redeems, metrics).await;
    }
    if !users.is_empty() {
        all_ok &= insert_users(db, users, metrics).await;
    }
    if n_users + n_redeems + n_logouts == 0 {
        // The closing message alone: nothing was written.
        return;
    }
    let took = started.elapsed();
    metrics.commit_took(took);
    metrics.writes(WriteKind::User, n_users);
    metrics.writes(WriteKind::Redemption, n_redeems);
    metrics.writes(WriteKind::Logout, n_logouts);
    observe.traces.record(|| Finished {
        name: "keyward.writer.commit".into(),
        kind: opentelemetry::trace::SpanKind::Internal,
        took,
        attributes: vec![
            opentelemetry::KeyValue::new("db.system.name", db.backend().system_name()),
            opentelemetry::KeyValue::new("keyward.batch.users", n_users as i64),
            opentelemetry::KeyValue::new("keyward.batch.redemptions", n_redeems as i64),
            opentelemetry::KeyValue::new("keyward.batch.logouts", n_logouts as i64),
        ],
        failed: !all_ok,
    });
    tracing::trace!(
        users = n_users,
        redeems = n_redeems,
        micros = took.as_micros() as u64,
        "batch written"
    );
}

fn failed(e: DomainError, metrics: &Metrics) -> String {
    metrics.statement_failed();
    let detail = e.to_string();
    tracing::error!(error = %detail, "a batch of writes failed");
    detail
}

/// Says whether every statement succeeded.
async fn redeem_all(db: &Db, redeems: Vec<Redeem>, metrics: &Metrics) -> bool {
    let mut all_ok = true;
    // The first request for a nonce is the one that can redeem it; any
    // later one in the same batch finds it used.
    let mut seen = HashSet::new();
    let (mut firsts, repeats): (Vec<Redeem>, Vec<Redeem>) =
        redeems.into_iter().partition(|r| seen.insert(r.nonce.clone()));
    // The same lock order in every batch (see `insert_chunk`).
    firsts.sort_unstable_by(|a, b| a.nonce.cmp(&b.nonce));
    for r in repeats {
        let _ = r.reply.send(Ok(false));
    }
    let mut firsts = firsts.into_iter().peekable();
    while firsts.peek().is_some() {
        let chunk: Vec<Redeem> = firsts.by_ref().take(rows_per_statement(db)).collect();
        match redeem_chunk(db, &chunk).await {
            Ok(rows) => {
                let fresh: HashSet<Vec<u8>> = rows.into_iter().map(|(n,)| n).collect();
                for r in chunk {
                    let _ = r.reply.send(Ok(fresh.contains(&r.nonce)));
                }
            }
            Err(e) => {
                all_ok = false;
                let detail = failed(e.into(), metrics);
                for r in chunk {
                    let _ = r.reply.send(Err(DomainError::Internal(detail.clone())));
                }
            }
        }
    }
    all_ok
}

/// The nonces of `chunk` that were not redeemed before.
async fn redeem_chunk(db: &Db, chunk: &[Redeem]) -> Result<Vec<(Vec<u8>,)>, sqlx::Error> {
    match db.backend() {
        Backend::Postgres => {
            #[derive(Serialize)]
            struct Row {
                nonce: String,
                expires_at: i64,
            }
            let rows: Vec<Row> = chunk
                .iter()
                .map(|r| Row {
                    nonce: hex::encode(&r.nonce),
                    expires_at: r.expires_at,
                })
                .collect();
            sqlx::query_as(PG_REDEEM)
                .bind(as_json(&rows))
                .fetch_all(db.write())
                .await
        }
        Backend::Sqlite => {
            let sql = format!(
                "INSERT INTO redeemed_auth_tokens (nonce, expires_at) VALUES {} ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                db.param_rows(chunk.len(), 2)
            );
            let mut q = sqlx::query_as(&sql);
            for r in chunk {
                q = q.bind(r.nonce.clone()).bind(r.expires_at);
            }
            q.fetch_all(db.write()).await
        }
    }
}

// PostgreSQL: a batch travels as one JSON array, so batches of every size
// share one prepared statement and its plan. (A VALUES list per size was
// parsed, described and planned afresh for most sizes: a round trip more
// per batch and CPU on the database's side.) SQLite prepares in-process,
// so it keeps VALUES lists.
const PG_REDEEM: &str = "INSERT INTO redeemed_auth_tokens (nonce, expires_at) \
     SELECT decode(r.nonce, 'hex'), r.expires_at FROM json_to_recordset($1::json) AS r(nonce text, expires_at bigint) \
     ON CONFLICT (nonce) DO NOTHING RETURNING nonce";
const PG_INSERT_USERS: &str =
    "INSERT INTO end_users (id, user_id, display_name, created_at, updated_at, last_seen_at) \
     SELECT r.id, r.user_id, r.display_name, r.at, r.at, r.at \
     FROM json_to_recordset($1::json) AS r(id text, user_id text, display_name text, at bigint) \
     ON CONFLICT (user_id) DO NOTHING";

const PG_INSERT_LOGOUTS: &str = "INSERT INTO revocations (kind, subject, at, expires_at) \
     SELECT 'session', r.sid, r.at, r.expires_at FROM json_to_recordset($1::json) AS r(sid text, at bigint, expires_at bigint)";

/// Says whether every statement succeeded.
async fn insert_logouts(db: &Db, logouts: Vec<Logout>, metrics: &Metrics) -> bool {
    let mut all_ok = true;
    let mut logouts = logouts.into_iter().peekable();
    while logouts.peek().is_some() {
        let chunk: Vec<Logout> = logouts.by_ref().take(rows_per_statement(db)).collect();
        let done = match db.backend() {
            Backend::Postgres => {
                #[derive(Serialize)]
                struct Row<'a> {
                    sid: &'a str,
                    at: i64,
                    expires_at: i64,
                }
                let rows: Vec<Row> = chunk
                    .iter()
                    .map(|l| Row {
                        sid: &l.sid,
                        at: l.at,
                        expires_at: l.expires_at,
                    })
                    .collect();
                sqlx::query(PG_INSERT_LOGOUTS)
                    .bind(as_json(&rows))
                    .execute(db.write())
                    .await
            }
            Backend::Sqlite => {
                let sql = format!(
                    "INSERT INTO revocations (kind, subject, at, expires_at) VALUES {}",
                    db.param_rows(chunk.len(), 4)
                );
                let mut q = sqlx::query(&sql);
                for l in &chunk {
                    q = q.bind("session").bind(&l.sid).bind(l.at).bind(l.expires_at);
                }
                q.execute(db.write()).await
            }
        };
        match done {
            Ok(_) => {
                for l in chunk {
                    let _ = l.reply.send(Ok(()));
                }
            }
            Err(e) => {
                all_ok = false;
                let detail = failed(e.into(), metrics);
                for l in chunk {
                    let _ = l.reply.send(Err(DomainError::Internal(detail.clone())));
                }
            }
        }
    }
    all_ok
}

fn as_json(rows: &impl Serialize) -> String {
    // Plain strings and integers: serialising them cannot fail.
    serde_json::to_string(rows).unwrap_or_default()
}

/// Says whether every statement succeeded.
async fn insert_users(db: &Db, users: Vec<NewUser>, metrics: &Metrics) -> bool {
    let mut all_ok = true;
    let mut users = users.into_iter().peekable();
    while users.peek().is_some() {
        let chunk: Vec<NewUser> = users.by_ref().take(rows_per_statement(db)).collect();
        match insert_chunk(db, &chunk).await {
            Ok(stored) => {
                for u in chunk {
                    let row = match stored.get(&u.user_id) {
                        Some(row) => Ok(row.clone()),
                        None => {
                            all_ok = false;
                            Err(DomainError::Internal(failed(
                                DomainError::Internal("user missing after the batch".into()),
                                metrics,
                            )))
                        }
                    };
                    let _ = u.reply.send(row);
                }
            }
            Err(e) => {
                all_ok = false;
                let detail = failed(e, metrics);
                for u in chunk {
                    let _ = u.reply.send(Err(DomainError::Internal(detail.clone())));
                }
            }
        }
    }
    all_ok
}

/// Inserts the users that do not exist yet and reads those that do.
async fn insert_chunk(db: &Db, chunk: &[NewUser]) -> DomainResult<HashMap<String, EndUser>> {
    let mut seen = HashSet::new();
    let mut unique: Vec<&NewUser> = chunk.iter().filter(|u| seen.insert(u.user_id.as_str())).collect();
    // One order for every batch, so two overlapping ones (PostgreSQL) take
    // their row locks in the same order and cannot deadlock.
    unique.sort_unstable_by(|a, b| a.user_id.cmp(&b.user_id));
    let inserted = insert_new(db, &unique).await?;
    let mut stored: HashMap<String, EndUser> = HashMap::new();
    if inserted == unique.len() as u64 {
        // The usual case: every one is new, and is what we wrote.
        for u in &unique {
            let user = EndUser {
                id: u.id.clone(),
                user_id: u.user_id.clone(),
                display_name: Some(u.display_name.clone()),
                created_at: u.now,
                updated_at: u.now,
            };
            stored.insert(u.user_id.clone(), user);
        }
        return Ok(stored);
    }
    // Some existed already (created meanwhile by another request or
    // instance): read the whole chunk back, as stored.
    let user_ids: Vec<&str> = unique.iter().map(|u| u.user_id.as_str()).collect();
    Ok(crate::domain::storage::reader::stored_users(db, &user_ids).await?)
}

/// Inserts those of `users` not stored yet (each is created by a session,
/// which is its first use); how many were.
async fn insert_new(db: &Db, users: &[&NewUser]) -> DomainResult<u64> {
    let done = match db.backend() {
        Backend::Postgres => {
            #[derive(Serialize)]
            struct Row<'a> {
                id: &'a str,
                user_id: &'a str,
                display_name: &'a str,
                at: i64,
            }
            let rows: Vec<Row> = users
                .iter()
                .map(|u| Row {
                    id: &u.id,
                    user_id: &u.user_id,
                    display_name: &u.display_name,
                    at: u.now,
                })
                .collect();
            sqlx::query(PG_INSERT_USERS)
                .bind(as_json(&rows))
                .execute(db.write())
                .await?
        }
        Backend::Sqlite => {
            let sql = format!(
                "INSERT INTO end_users (id, user_id, display_name, created_at, updated_at, last_seen_at) VALUES {} \
                 ON CONFLICT (user_id) DO NOTHING",
                db.param_rows(users.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for u in users {
                q = q
                    .bind(&u.id)
                    .bind(&u.user_id)
                    .bind(&u.display_name)
                    .bind(u.now)
                    .bind(u.now)
                    .bind(u.now);
            }
            q.execute(db.write()).await?
        }
    };
    Ok(done.rows_affected())
}

//! The batching reader of end users the known-user cache does not hold.
//!
//! A lone read costs little in the database and a lot around it: sqlx runs
//! each SQLite connection on a thread of its own, so every query is two
//! thread hand-offs (measured: with most of a million users missing from
//! memory, waking those threads took more time than anything else). Misses
//! queue here instead, and each batch is one `IN (…)` read through the
//! read pool (never the writer): under load the hand-offs are paid once
//! per batch; alone, a miss is read at once.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::domain::credentials::end_users::{EndUser, UserRow, USER_COLUMNS};
use crate::domain::storage::batching::next_batch;
use crate::domain::storage::db::{Backend, Db};
use crate::domain::{DomainError, DomainResult};

/// At most this many users per read.
const MAX_BATCH: usize = 128;
/// Requests waiting beyond this many apply back-pressure.
const QUEUE: usize = 4096;

struct Lookup {
    user_id: String,
    reply: oneshot::Sender<DomainResult<Option<EndUser>>>,
}

pub struct Reader {
    tx: mpsc::Sender<Lookup>,
}

fn stopped() -> DomainError {
    DomainError::Internal("the batching reader has stopped".into())
}

/// Reads at once: a few, so a batch waiting on the database does not hold
/// the next one, and few enough to leave the read pool to the rest.
fn in_flight(db: &Db) -> usize {
    match db.backend() {
        Backend::Sqlite => 2,
        Backend::Postgres => 4,
    }
}

impl Reader {
    /// Starts the reader's task; it ends when the reader is dropped.
    pub fn start(db: Db) -> Reader {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, rx));
        Reader { tx }
    }

    /// The stored user, or `None`.
    pub async fn find(&self, user_id: &str) -> DomainResult<Option<EndUser>> {
        let (reply, answer) = oneshot::channel();
        let lookup = Lookup {
            user_id: user_id.to_string(),
            reply,
        };
        self.tx.send(lookup).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Lookup>) {
    let permits = Arc::new(Semaphore::new(in_flight(&db)));
    loop {
        // A free slot first: what queues meanwhile joins the next batch.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if !next_batch(&mut rx, &mut batch, MAX_BATCH).await {
            return;
        }
        let db = db.clone();
        tokio::spawn(async move {
            read(&db, batch).await;
            drop(permit);
        });
    }
}

/// Rounds a batch's size up, so that a connection prepares a handful of
/// statements (one per size), not one per number of users.
fn padded(n: usize) -> usize {
    n.next_power_of_two()
}

/// The stored users among `user_ids` (a batch's worth: each is a
/// parameter), by user id: one read through the read pool. The writer reads back a batch
/// whose users partly existed with it too.
pub(crate) async fn stored_users(db: &Db, user_ids: &[&str]) -> Result<HashMap<String, EndUser>, sqlx::Error> {
    let mut wanted = user_ids.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let Some(&last) = wanted.last() else {
        return Ok(HashMap::new());
    };
    let n = padded(wanted.len());
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM end_users WHERE user_id IN ({})",
        db.param_list(n)
    );
    let mut q = sqlx::query_as::<_, UserRow>(&sql);
    // The padding repeats the last user: the same row, found once.
    for user_id in wanted.iter().chain(std::iter::repeat(&last)).take(n) {
        q = q.bind(*user_id);
    }
    let rows = q.fetch_all(db.read()).await?;
    Ok(rows.into_iter().map(|r| (r.1.clone(), EndUser::from(r))).collect())
}

async fn read(db: &Db, batch: Vec<Lookup>) {
    let wanted: Vec<&str> = batch.iter().map(|l| l.user_id.as_str()).collect();
    match stored_users(db, &wanted).await {
        Ok(found) => {
            for l in batch {
                let _ = l.reply.send(Ok(found.get(&l.user_id).cloned()));
            }
        }
        Err(e) => {
            let e = DomainError::from(e);
            tracing::error!(error = %e, "a batch of user reads failed");
            let detail = e.to_string();
            for l in batch {
                let _ = l.reply.send(Err(DomainError::Internal(detail.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_round_up_to_a_few_statements() {
        assert_eq!(padded(1), 1);
        assert_eq!(padded(3), 4);
        assert_eq!(padded(64), 64);
        assert_eq!(padded(65), 128);
        assert_eq!(padded(128), 128);
        // The writer reads back chunks of up to 512 (PostgreSQL).
        assert_eq!(padded(300), 512);
    }
}

//! Reads of the audit-chain head, shared by the requests that wait on them.
//!
//! A request that must see every change committed before it arrived (on
//! any instance) is answered by a read that began after it arrived; one
//! read serves every request that arrived while the previous read was
//! under way, as one commit of the batching writer serves a batch. So the
//! mTLS gate can be exact without a database round trip per request.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult};

/// How long a shared read may take before its waiters give up on it.
const READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Default)]
struct State {
    /// A read is under way.
    reading: bool,
    /// Reads begun, and completed (or abandoned), counted from 1.
    started: u64,
    done: u64,
    /// What the last completed read found; `None` if it failed.
    seq: Option<i64>,
}

#[derive(Debug, Default)]
pub struct HeadReads {
    state: Mutex<State>,
    finished: Notify,
}

/// The audit-chain head: every change bumps it.
pub(crate) async fn head_seq(db: &Db) -> DomainResult<i64> {
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(db.read())
        .await?;
    Ok(seq)
}

/// Ends the read it guards: on drop (the request gone mid-read too), so
/// the next waiter can begin another.
struct Reading<'a> {
    reads: &'a HeadReads,
    number: u64,
    found: Option<Option<i64>>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut s = self.reads.state.lock().unwrap_or_else(|p| p.into_inner());
        s.reading = false;
        if let Some(seq) = self.found {
            s.done = self.number;
            s.seq = seq;
        }
        drop(s);
        self.reads.finished.notify_waiters();
    }
}

impl HeadReads {
    /// The head as a read begun after this call found it.
    pub async fn read(&self, db: &Db) -> DomainResult<i64> {
        // The number of the first read that began after this call.
        let mut need: Option<u64> = None;
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            match self.next_step(&mut need, finished.as_mut()) {
                Step::Answered(seq) => {
                    return seq.ok_or_else(|| DomainError::Internal("reading the audit head failed".into()))
                }
                Step::Read(number) => {
                    let mut reading = Reading {
                        reads: self,
                        number,
                        found: None,
                    };
                    // Bounded: a stuck read would hold up every request
                    // waiting on it (the gate then decides from memory).
                    let result = match tokio::time::timeout(READ_LIMIT, head_seq(db)).await {
                        Ok(result) => result,
                        Err(_) => Err(DomainError::Internal("reading the audit head timed out".into())),
                    };
                    reading.found = Some(result.as_ref().ok().copied());
                    return result;
                }
                Step::Wait => finished.await,
            }
        }
    }

    /// Under the lock: answered by a read that began after the call, or
    /// this call begins the next read, or it waits for one under way.
    fn next_step(
        &self,
        need: &mut Option<u64>,
        finished: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) -> Step {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if need.is_some_and(|n| s.done >= n) {
            return Step::Answered(s.seq);
        }
        if !s.reading {
            s.reading = true;
            s.started += 1;
            return Step::Read(s.started);
        }
        // A read is under way that began before this call: the next one is
        // this call's.
        need.get_or_insert(s.started + 1);
        // Registered before the lock is let go: no wake-up is lost.
        finished.enable();
        Step::Wait
    }
}

enum Step {
    Answered(Option<i64>),
    Read(u64),
    Wait,
}

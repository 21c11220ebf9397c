//! What the batching writer and the batching reader share: taking the next
//! batch from their queue.

use tokio::sync::mpsc;

/// A batch smaller than this waits up to this many scheduler turns for
/// more; alone, a request goes at once.
const GATHER_BELOW: usize = 48;
const GATHER_YIELDS: usize = 8;

/// Waits for a request and takes every one queued, up to `max`. While the
/// batch is small and requests are arriving, the tasks that are ready run
/// first, so the requests they carry join it. `false` once the queue is
/// closed and empty.
pub(crate) async fn next_batch<T>(rx: &mut mpsc::Receiver<T>, buf: &mut Vec<T>, max: usize) -> bool {
    if rx.recv_many(buf, max).await == 0 {
        return false;
    }
    for _ in 0..GATHER_YIELDS {
        if buf.len() >= GATHER_BELOW {
            break;
        }
        tokio::task::yield_now().await;
        while buf.len() < max {
            match rx.try_recv() {
                Ok(m) => buf.push(m),
                Err(_) => break,
            }
        }
    }
    true
}

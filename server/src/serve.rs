//! Serving connections, for both listeners, with the limits a server
//! facing the internet needs (axum's `serve` has none of them):
//!
//! - a request whose headers have not all arrived within
//!   `header_read_timeout` of its first byte (or of the connection's
//!   start) is dropped: a client cannot hold a connection open by sending
//!   half a request;
//! - a keep-alive connection with no request for `idle_timeout` is closed;
//! - a request not answered within `request_timeout` of its start (a body
//!   trickled in a byte at a time, say) has its connection dropped;
//! - at most `max_per_listener` connections are open per listener; beyond
//!   that a connection is answered `503` with `Retry-After` and closed.
//!
//! Shutdown is graceful: stop accepting, let requests in flight finish
//! (each still bound by `request_timeout`), then return.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use app::domain::pki::mtls::Transport;

use crate::config::ConnectionLimits;
use crate::tls::Peer;

/// An accepted connection, holding its place under the listener's cap.
pub struct Conn<I> {
    pub io: I,
    pub peer: Peer,
    pub permit: OwnedSemaphorePermit,
}

/// A source of connections that already hold a permit.
pub trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = Conn<Self::Io>> + Send;
}

/// The places of one listener: open connections, and refusals in progress
/// (refusing costs a little too, so it is bounded as well).
#[derive(Clone)]
pub struct Places {
    pub open: Arc<Semaphore>,
    pub refusing: Arc<Semaphore>,
    pub max: usize,
}

impl Places {
    pub fn new(max: usize) -> Places {
        Places {
            open: Arc::new(Semaphore::new(max)),
            refusing: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
            max,
        }
    }
}

const REFUSALS_AT_ONCE: usize = 256;

/// The plain-HTTP listener.
pub struct PlainListener {
    tcp: TcpListener,
    places: Places,
}

impl PlainListener {
    pub fn new(tcp: TcpListener, places: Places) -> PlainListener {
        PlainListener { tcp, places }
    }
}

impl Accept for PlainListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> Conn<TcpStream> {
        loop {
            let (stream, addr) = match self.tcp.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            match self.places.open.clone().try_acquire_owned() {
                Ok(permit) => {
                    let peer = Peer {
                        addr,
                        transport: Transport::PlainHttp,
                    };
                    return Conn {
                        io: stream,
                        peer,
                        permit,
                    };
                }
                Err(_) => refuse(stream, &self.places),
            }
        }
    }
}

/// Over the cap: `503` and close, within the refusal budget; past that,
/// close at once.
pub fn refuse<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: I, places: &Places) {
    let Ok(permit) = places.refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        answer_busy(io).await;
        drop(permit);
    });
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 38\r\n\r\nToo many connections; try again soon.\n";

pub async fn answer_busy<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let mut buf = [0u8; 2048];
    // Read what the client sent first, so closing does not reset the
    // connection and lose the answer.
    let _ = tokio::time::timeout(Duration::from_millis(200), io.read(&mut buf)).await;
    let _ = io.write_all(BUSY).await;
    let _ = io.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Serves `listener` until `stop` turns true, then waits for every
/// connection to finish its requests.
pub async fn serve<L: Accept>(
    mut listener: L,
    router: Router,
    limits: ConnectionLimits,
    places: Places,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut stopped = stop.clone();
    loop {
        tokio::select! {
            conn = listener.accept() => {
                tokio::spawn(connection(conn, router.clone(), limits, stop.clone()));
            }
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    // Every connection gives its place back when it ends.
    let _ = places
        .open
        .acquire_many(u32::try_from(places.max).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

async fn connection<I>(conn: Conn<I>, router: Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Conn { io, peer, permit } = conn;
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: io,
        activity: activity.clone(),
    };
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let router = router.clone();
            let peer = peer.clone();
            let busy = Busy::begin(activity.clone());
            async move {
                let mut req = req;
                req.extensions_mut().insert(ConnectInfo(peer));
                let res = tower::ServiceExt::oneshot(router, req).await;
                drop(busy);
                res
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if activity.expired(&limits) {
                    // Half a request, idle, or a request past its time:
                    // dropping the connection closes it.
                    tracing::debug!("closed a connection past its time limit");
                    break;
                }
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(permit);
}

/// What a connection is doing, for its timeouts.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's headers, since the connection opened or the
    /// request's first byte arrived.
    Headers(Instant),
    /// Requests are being answered (how many, and since when).
    Busy(usize, Instant),
    /// Nothing to do since this moment (keep-alive).
    Idle(Instant),
}

struct Activity(Mutex<Phase>);

impl Activity {
    fn new() -> Activity {
        Activity(Mutex::new(Phase::Headers(Instant::now())))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Phase) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn read_some(&self) {
        self.with(|p| {
            if let Phase::Idle(_) = p {
                *p = Phase::Headers(Instant::now());
            }
        })
    }

    fn wrote_some(&self) {
        // A response body still streaming after its handler returned.
        self.with(|p| {
            if let Phase::Idle(_) = p {
                *p = Phase::Idle(Instant::now());
            }
        })
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        match self.with(|p| *p) {
            Phase::Headers(since) => since + limits.header_read_timeout,
            Phase::Idle(since) => since + limits.idle_timeout,
            Phase::Busy(_, since) => since + limits.request_timeout,
        }
    }

    fn expired(&self, limits: &ConnectionLimits) -> bool {
        let now = Instant::now();
        match self.with(|p| *p) {
            Phase::Headers(since) => now >= since + limits.header_read_timeout,
            Phase::Idle(since) => now >= since + limits.idle_timeout,
            Phase::Busy(_, since) => now >= since + limits.request_timeout,
        }
    }
}

/// A request being answered; when the last one ends, the connection idles.
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: Arc<Activity>) -> Busy {
        activity.with(|p| {
            *p = match *p {
                Phase::Busy(n, since) => Phase::Busy(n + 1, since),
                _ => Phase::Busy(1, Instant::now()),
            }
        });
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.with(|p| {
            *p = match *p {
                Phase::Busy(n, since) if n > 1 => Phase::Busy(n - 1, since),
                _ => Phase::Idle(Instant::now()),
            }
        });
    }
}

/// The connection's I/O, telling [`Activity`] when bytes come and go.
struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote_some();
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

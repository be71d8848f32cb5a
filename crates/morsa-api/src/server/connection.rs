//! One served connection: what its watchdog knows of it (requests in flight, when bytes last
//! moved, since when a request's headers or a write are awaited), the byte stream that keeps
//! that up to date, the service that counts requests, and the registry evictions pick from.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tower::ServiceExt as _;

use super::body::Guarded;
use super::{Closed, ServeLimits};

/// A connection's state, shared by its byte stream, its service and its watchdog. Times are
/// milliseconds since the connection opened; in the `…_since` fields 0 means "not now" and a
/// time is stored plus one.
pub(super) struct Connection {
    opened: Instant,
    in_flight: AtomicUsize,
    last_activity: AtomicU64,
    request_since: AtomicU64,
    write_blocked_since: AtomicU64,
    evicted: AtomicBool,
    closed: AtomicBool,
    evict: Notify,
}

impl Connection {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_activity: AtomicU64::new(0),
            request_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        morsa_core::convert::saturating_u64_from_u128(self.opened.elapsed().as_millis()).min(u64::MAX - 1)
    }

    fn read_some(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            // The first byte of the next request: its headers are due.
            let _ = self.request_since.compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote_some(&self) {
        self.write_blocked_since.store(0, Ordering::Relaxed);
        self.last_activity.store(self.now(), Ordering::Relaxed);
    }

    fn write_blocked(&self) {
        let _ =
            self.write_blocked_since.compare_exchange(0, self.now() + 1, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Marks the connection closed (its task ended), for the registry.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Why the connection must be closed now, if it must.
    fn overdue(&self, limits: &ServeLimits) -> Option<Closed> {
        let now = self.now();
        let older_than = |since: u64, limit: Duration| {
            since != 0 && u128::from(now.saturating_sub(since - 1)) >= limit.as_millis()
        };
        if older_than(self.write_blocked_since.load(Ordering::Acquire), limits.write_timeout) {
            return Some(Closed::WriteTimeout);
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if older_than(self.request_since.load(Ordering::Acquire), limits.header_read_timeout) {
            return Some(Closed::HeaderTimeout);
        }
        if older_than(self.last_activity.load(Ordering::Acquire) + 1, limits.idle_timeout) {
            return Some(Closed::IdleTimeout);
        }
        None
    }

    /// Resolves with the reason once the connection is overdue or evicted.
    pub(super) async fn expired(&self, limits: &ServeLimits) -> Closed {
        let shortest = limits.header_read_timeout.min(limits.idle_timeout).min(limits.write_timeout);
        let tick = (shortest / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
        loop {
            tokio::select! {
                () = self.evict.notified() => return Closed::Evicted,
                () = tokio::time::sleep(tick) => {}
            }
            if let Some(reason) = self.overdue(limits) {
                return reason;
            }
        }
    }
}

/// The open connections in the order they were accepted, to pick one to evict.
pub(super) struct Registry {
    connections: Mutex<VecDeque<Weak<Connection>>>,
    max: usize,
}

impl Registry {
    pub(super) fn new(max: usize) -> Self {
        Self { connections: Mutex::new(VecDeque::new()), max }
    }

    /// Registers a new connection.
    pub(super) fn open(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection::new());
        let mut connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
        // Closed connections are dropped from the list here, once it outgrows the cap twice:
        // amortised constant time per connection.
        if connections.len() >= 2 * self.max {
            connections
                .retain(|connection| connection.upgrade().is_some_and(|c| !c.closed.load(Ordering::Acquire)));
        }
        connections.push_back(Arc::downgrade(&connection));
        connection
    }

    /// Asks the oldest connection without a request in flight to close; false if every open
    /// connection is busy (or already asked).
    pub(super) fn evict_oldest_idle(&self) -> bool {
        let mut connections = self.connections.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..connections.len() {
            let Some(weak) = connections.pop_front() else { break };
            let Some(connection) = weak.upgrade() else { continue };
            if connection.closed.load(Ordering::Acquire) {
                continue;
            }
            let idle = connection.in_flight.load(Ordering::Acquire) == 0;
            connections.push_back(weak);
            if idle && !connection.evicted.swap(true, Ordering::AcqRel) {
                connection.evict.notify_one();
                return true;
            }
        }
        false
    }
}

/// The connection's byte stream, reporting progress to its [`Connection`].
pub(super) struct Watched<S> {
    stream: S,
    connection: Arc<Connection>,
}

impl<S> Watched<S> {
    pub(super) fn new(stream: S, connection: Arc<Connection>) -> Self {
        Self { stream, connection }
    }

    fn wrote(&self, result: &Poll<std::io::Result<usize>>) {
        match result {
            Poll::Ready(Ok(written)) if *written > 0 => self.connection.wrote_some(),
            Poll::Pending => self.connection.write_blocked(),
            _ => {}
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.read_some();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts a request in flight from its headers until its answer's body is done with.
struct InFlight(Arc<Connection>);

impl InFlight {
    fn enter(connection: Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        connection.request_since.store(0, Ordering::Release);
        connection.last_activity.store(connection.now(), Ordering::Relaxed);
        Self(connection)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_activity.store(self.0.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router as a hyper service of one connection.
#[derive(Clone)]
pub(super) struct Service {
    router: Router,
    peer: SocketAddr,
    connection: Arc<Connection>,
}

impl Service {
    pub(super) fn new(router: Router, peer: SocketAddr, connection: Arc<Connection>) -> Self {
        Self { router, peer, connection }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<hyper::body::Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let in_flight = InFlight::enter(Arc::clone(&self.connection));
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(response.map(|body| Body::new(Guarded::new(body, in_flight))))
        })
    }
}

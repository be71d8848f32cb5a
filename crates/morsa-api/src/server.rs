//! Serving HTTP within bounds (feature `server`): one accept loop for every Morsa server (the
//! storage node and the coordinator), so that none can be taken down by connections alone.
//!
//! - **Connection cap** ([`ServeLimits::max_connections`]): a semaphore of connections. When
//!   it is full, a new connection takes the place of the oldest connection that has no request
//!   in flight (a slow-header or idle keep-alive connection); when every connection is busy, the
//!   new one is closed at once. So a flood of silent or slow-header connections can never keep
//!   a health probe out, and file descriptors stay bounded.
//! - **Header-read timeout** ([`ServeLimits::header_read_timeout`]): once a request's first byte
//!   has arrived, its headers must be in within this time.
//! - **Idle timeout** ([`ServeLimits::idle_timeout`]): a connection with no request in flight
//!   and no bytes moving either way for this long is closed.
//! - **Write timeout** ([`ServeLimits::write_timeout`]): a connection whose peer has read none of
//!   the answer for this long (a write waiting the whole time) is closed, which frees the
//!   answer's memory. This is a stall timeout, like nginx's `send_timeout`: a slow reader that
//!   keeps reading is not cut.
//!
//! Handlers see the peer's address as axum's `ConnectInfo<SocketAddr>`. Answers whose memory
//! must be accounted until it is written are built with [`owned_bytes`]. Every refusal is an
//! [`ErrorBody`](crate::ErrorBody) in JSON ([`refusal`]).

mod body;
mod connection;
pub mod refusal;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use body::owned_bytes;
use connection::{Connection, Registry};

/// Connections closed by the limits, since the process started (all servers of the process
/// together): for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Closed to make room for a new connection at the cap.
    pub evicted: u64,
    /// New connections closed at once: the cap was reached and every connection was busy.
    pub refused: u64,
    /// Closed because a request's headers were late.
    pub header_timeouts: u64,
    /// Closed because they were idle.
    pub idle_timeouts: u64,
    /// Closed because their peer read none of an answer for the write timeout.
    pub write_timeouts: u64,
}

static STATS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Why a connection was closed by the limits.
#[derive(Debug, Clone, Copy)]
enum Closed {
    Evicted,
    Refused,
    HeaderTimeout,
    IdleTimeout,
    WriteTimeout,
}

impl Closed {
    fn count(self) {
        STATS[self as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Evicted => "the connection cap was reached and it had no request in flight",
            Self::Refused => "the connection cap was reached and every connection was busy",
            Self::HeaderTimeout => "a request's headers did not arrive within the header-read timeout",
            Self::IdleTimeout => "it was idle for the idle timeout",
            Self::WriteTimeout => "its peer read none of the answer within the write timeout",
        }
    }
}

/// What the limits have closed so far in this process.
pub fn stats() -> ServeStats {
    let get = |closed: Closed| STATS[closed as usize].load(Ordering::Relaxed);
    ServeStats {
        evicted: get(Closed::Evicted),
        refused: get(Closed::Refused),
        header_timeouts: get(Closed::HeaderTimeout),
        idle_timeouts: get(Closed::IdleTimeout),
        write_timeouts: get(Closed::WriteTimeout),
    }
}

/// The bounds of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections held open at once.
    pub max_connections: usize,
    /// From a request's first byte to the end of its headers.
    pub header_read_timeout: Duration,
    /// Longest a connection may sit with no request in flight and no bytes moving.
    pub idle_timeout: Duration,
    /// Longest an answer may wait for its peer to read any of it.
    pub write_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            // Above reqwest's 90 s pool idle timeout, so that clients close idle connections
            // first and never send a request on one the server is closing.
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// How long to wait after an accept error (e.g. out of file descriptors) before the next
/// accept, so that the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` (HTTP/1.1) within `limits` until `shutdown` resolves; then
/// stops accepting, lets the requests in flight finish, and returns once every connection is
/// closed (idle ones at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let registry = Arc::new(Registry::new(max));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: make room by closing the oldest connection without a request in flight,
                // and wait for its slot (it is given back as soon as its task sees the eviction).
                if !registry.evict_oldest_idle() {
                    tracing::debug!(%peer, reason = Closed::Refused.reason(), "closing a new connection");
                    Closed::Refused.count();
                    drop(stream);
                    continue;
                }
                match Arc::clone(&slots).acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => break,
                }
            }
        };
        let connection = registry.open();
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            limits,
            connection,
            stopping.clone(),
            slot,
        ));
    }
    drop(listener);
    stop.send_replace(true);
    // Every connection task holds a slot until it ends.
    let _all = slots.acquire_many(morsa_core::convert::saturating_u32(max)).await;
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServeLimits,
    connection: Arc<Connection>,
    mut stopping: watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let io = hyper_util::rt::TokioIo::new(connection::Watched::new(stream, Arc::clone(&connection)));
    let service = connection::Service::new(router, peer, Arc::clone(&connection));
    let served = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(served);
    let mut draining = *stopping.borrow();
    if draining {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "a connection ended with an error");
                }
                break;
            }
            // A shutdown, or the accept loop dropped (its task aborted): finish what is in
            // flight and close.
            _ = stopping.changed(), if !draining => {
                draining = true;
                served.as_mut().graceful_shutdown();
            }
            closed = connection.expired(&limits) => {
                tracing::debug!(%peer, reason = closed.reason(), "closing a connection");
                closed.count();
                break;
            }
        }
    }
    connection.close();
}

#[cfg(test)]
mod tests;

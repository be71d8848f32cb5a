//! A network with real delays on loopback: a small TCP proxy of ours in front of a node, which
//! holds every chunk of bytes for a one-way delay (plus jitter) in each direction and paces
//! them through a token bucket, so that a local cluster looks like nodes across a WAN or
//! behind a thin link. The machines this runs on have no netem in their kernel.
//!
//! The node listens on its own loopback address; the proxy listens on the address the genesis
//! advertises, so every client, node and test reaches the node through it. Its shape can be
//! changed while it runs ([`LinkShaper::set`], `morsa cluster slow`): the new delay applies to
//! the bytes read from then on.
//!
//! Bytes are never reordered: a chunk is delivered no earlier than the one before it. Memory
//! is bounded: each direction of a connection holds at most 256 chunks of 16 KiB, then stops
//! reading (TCP's own flow control pushes back on the sender).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::ClusterError;
pub use crate::link_shape::LinkShape;

/// Largest chunk read and delayed at once.
const CHUNK: usize = 16 * 1024;
/// Chunks one direction of a connection holds before it stops reading.
const QUEUED_CHUNKS: usize = 256;
/// A token bucket holds at most this long's worth of bytes (the burst a link lets through).
const BURST: Duration = Duration::from_millis(20);

/// A token bucket shared by every connection of one direction of a link.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// One shaped link: its shape (changeable) and its two buckets.
#[derive(Debug)]
struct Link {
    shape: Mutex<LinkShape>,
    buckets: [Mutex<Bucket>; 2],
}

impl Link {
    fn shape(&self) -> LinkShape {
        *self.shape.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `bytes` may pass in `direction` at the link's rate.
    async fn pace(&self, direction: usize, bytes: usize) {
        let Some(rate) = self.shape().rate_bytes_per_second.filter(|rate| *rate > 0) else { return };
        let rate = f64::from(u32::try_from(rate).unwrap_or(u32::MAX));
        let wanted = f64::from(u32::try_from(bytes).unwrap_or(u32::MAX));
        let wait = {
            let mut bucket = self.buckets[direction].lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let burst = (rate * BURST.as_secs_f64()).max(wanted);
            let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
            bucket.refilled = now;
            bucket.tokens -= wanted;
            // A negative balance is the time this chunk must wait for its bytes.
            (bucket.tokens < 0.0).then(|| Duration::from_secs_f64(-bucket.tokens / rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The proxies of a cluster, each on its own listening address, run on a thread of their own
/// (the cluster's API is blocking and may be called inside or outside a runtime). Dropping it
/// stops them and closes their connections.
#[derive(Debug)]
pub struct LinkShaper {
    links: Vec<(usize, Arc<Link>)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LinkShaper {
    /// Starts a proxy per `(node index, listen, target, shape)`: it accepts on `listen` and
    /// forwards to `target`.
    pub fn start(proxies: Vec<(usize, SocketAddr, SocketAddr, LinkShape)>) -> Result<Self, ClusterError> {
        let listeners = proxies
            .iter()
            .map(|(_, listen, _, _)| std::net::TcpListener::bind(listen))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ClusterError::io("cannot listen for a node's shaped link"))?;
        for listener in &listeners {
            listener.set_nonblocking(true).map_err(ClusterError::io("cannot set up a shaped link"))?;
        }
        let now = Instant::now();
        let links: Vec<(usize, Arc<Link>)> = proxies
            .iter()
            .map(|(index, _, _, shape)| {
                let bucket = || Mutex::new(Bucket { tokens: 0.0, refilled: now });
                (*index, Arc::new(Link { shape: Mutex::new(*shape), buckets: [bucket(), bucket()] }))
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClusterError::io("cannot start the shaped links' runtime"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served: Vec<(std::net::TcpListener, SocketAddr, Arc<Link>)> = listeners
            .into_iter()
            .zip(&proxies)
            .zip(&links)
            .map(|((listener, (_, _, target, _)), (_, link))| (listener, *target, Arc::clone(link)))
            .collect();
        let thread = std::thread::Builder::new()
            .name("shaped-links".into())
            .spawn(move || {
                runtime.block_on(async move {
                    for (listener, target, link) in served {
                        match TcpListener::from_std(listener) {
                            Ok(listener) => {
                                tokio::spawn(accept_loop(listener, target, link));
                            }
                            Err(error) => eprintln!("a shaped link cannot listen: {error}"),
                        }
                    }
                    // Ends (and drops every connection task with the runtime) on stop.
                    let _ = stopped.await;
                });
            })
            .map_err(ClusterError::io("cannot start the shaped links' thread"))?;
        Ok(Self { links, stop: Some(stop), thread: Some(thread) })
    }

    /// Changes the shape of node `index`'s link; false if it has none.
    pub fn set(&self, index: usize, shape: LinkShape) -> bool {
        let Some((_, link)) = self.links.iter().find(|(node, _)| *node == index) else { return false };
        *link.shape.lock().unwrap_or_else(PoisonError::into_inner) = shape;
        true
    }

    /// The shape of node `index`'s link, if it has one.
    pub fn get(&self, index: usize) -> Option<LinkShape> {
        self.links.iter().find(|(node, _)| *node == index).map(|(_, link)| link.shape())
    }
}

impl Drop for LinkShaper {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, link: Arc<Link>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else { continue };
        let link = Arc::clone(&link);
        tokio::spawn(async move {
            // A node that is down refuses its proxy's connection: the caller sees the close.
            let Ok(outbound) = TcpStream::connect(target).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (inbound_read, inbound_write) = inbound.into_split();
            let (outbound_read, outbound_write) = outbound.into_split();
            tokio::join!(
                pump(inbound_read, outbound_write, Arc::clone(&link), 0),
                pump(outbound_read, inbound_write, link, 1),
            );
        });
    }
}

/// Moves bytes from `from` to `to`, each chunk held until its delivery time and paced by the
/// link's bucket for `direction`; half-closes `to` when `from` ends.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Arc<Link>,
    direction: usize,
) {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUED_CHUNKS);
    let reader = async move {
        let mut last_due = Instant::now();
        loop {
            let mut chunk = vec![0; CHUNK];
            let read = match from.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            chunk.truncate(read);
            // Bytes wait for the wire first (the bucket), then travel (the delay).
            link.pace(direction, read).await;
            let shape = link.shape();
            let jitter = if shape.jitter_ms > 0 { rand::random_range(0..=shape.jitter_ms) } else { 0 };
            let delay = Duration::from_millis(shape.delay_ms.saturating_add(jitter));
            // Never before the previous chunk: a link does not reorder bytes.
            last_due = last_due.max(Instant::now() + delay);
            if queue.send((last_due, chunk)).await.is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// An echo server on loopback; answers its address.
    fn echo_server() -> SocketAddr {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buffer = vec![0; 4096];
                    while let Ok(read) = stream.read(&mut buffer) {
                        if read == 0 || stream.write_all(&buffer[..read]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    #[test]
    fn bytes_pass_whole_and_in_order_through_a_delayed_jittery_thin_link() {
        let target = echo_server();
        let reserved = crate::ports::reserve_loopback_addresses(1).unwrap().remove(0);
        let listen = reserved.address();
        let shape = LinkShape { delay_ms: 2, jitter_ms: 3, rate_bytes_per_second: Some(4_000_000) };
        let shaper = LinkShaper::start(vec![(3, listen, target, shape)]).unwrap();
        assert_eq!(shaper.get(3), Some(shape));
        let mut stream = std::net::TcpStream::connect(listen).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let sent: Vec<u8> = (0..300_000u32).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let writer = {
            let mut stream = stream.try_clone().unwrap();
            let sent = sent.clone();
            std::thread::spawn(move || stream.write_all(&sent).unwrap())
        };
        let mut received = vec![0; sent.len()];
        stream.read_exact(&mut received).unwrap();
        writer.join().unwrap();
        assert!(received == sent, "the echo came back byte for byte, in order");
        let slower = LinkShape { delay_ms: 5, ..LinkShape::default() };
        assert!(shaper.set(3, slower));
        assert_eq!(shaper.get(3), Some(slower));
        assert!(!shaper.set(4, slower), "node 4 has no shaped link");
        stream.write_all(b"again").unwrap();
        let mut again = [0; 5];
        stream.read_exact(&mut again).unwrap();
        assert_eq!(&again, b"again");
    }
}

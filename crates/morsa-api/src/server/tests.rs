use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// Starts `router` under `limits` on a loopback port; stops when the returned sender drops.
async fn start(router: Router, limits: ServeLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, router, limits, async move {
        let _ = stopped.await;
    }));
    (address, stop)
}

fn limits() -> ServeLimits {
    ServeLimits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(60),
    }
}

fn hello() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

/// Whether the server closed `stream` within `within` (it reads EOF or a reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn get_hello(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("the request was answered in time")
        .unwrap();
    answer
}

#[tokio::test]
async fn slow_header_connections_beyond_the_cap_neither_pile_up_nor_keep_a_request_out() {
    let (address, _stop) = start(hello(), limits()).await;
    // Three times the cap of connections that never finish their headers.
    let mut slow = Vec::new();
    for _ in 0..24 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /hello HTTP/1.1\r\nx-slow: ").await.unwrap();
        slow.push(stream);
    }
    let answer = get_hello(address).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"), "{answer}");
    // At most the cap is held open: the oldest were closed to make room.
    let mut closed = 0;
    for stream in &mut slow {
        if closed_within(stream, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert!(closed > 24 - 8, "only {closed} of 24 slow connections were closed with a cap of 8");
}

#[tokio::test]
async fn late_headers_and_idle_connections_are_closed_but_slow_handlers_are_not() {
    let router = hello().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "done"
        }),
    );
    let short = ServeLimits {
        header_read_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(300),
        ..limits()
    };
    let (address, _stop) = start(router, short).await;
    let mut late = TcpStream::connect(address).await.unwrap();
    late.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
    let mut silent = TcpStream::connect(address).await.unwrap();
    assert!(closed_within(&mut late, Duration::from_secs(10)).await, "late headers are cut");
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await, "a silent connection is cut");
    // A handler slower than both timeouts still answers: a request in flight is not idle.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("done"), "{answer}");
}

/// Sets its flag when dropped.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_answer_nobody_reads_is_dropped_after_the_write_timeout() {
    let freed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&freed);
    let router = Router::new().route(
        "/big",
        get(move || {
            let flag = Arc::clone(&flag);
            async move { owned_bytes(vec![7; 64 << 20], Dropped(flag)) }
        }),
    );
    let short = ServeLimits { write_timeout: Duration::from_millis(300), ..limits() };
    let (address, _stop) = start(router, short).await;
    let mut reader = TcpStream::connect(address).await.unwrap();
    reader.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    // Never read: the answer's memory must be given back, and the connection closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !freed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the unread answer is still held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed_within(&mut reader, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn shutdown_waits_for_requests_in_flight_and_returns() {
    let (started, mut handling) = tokio::sync::mpsc::channel::<()>(1);
    let router = hello().route(
        "/slow",
        get(move || {
            let started = started.clone();
            async move {
                let _ = started.send(()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                "done"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, limits(), async move {
        let _ = stopped.await;
    }));
    let mut idle = TcpStream::connect(address).await.unwrap();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    handling.recv().await.unwrap();
    stop.send(()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("done"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("serve returns").unwrap().unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn an_aborted_server_closes_its_idle_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, hello(), limits(), std::future::pending()));
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 1024];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).ends_with("hello"));
    // The connection is kept alive; the server task goes away.
    server.abort();
    let _ = server.await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(10)).await,
        "a kept-alive connection outlived its server"
    );
}

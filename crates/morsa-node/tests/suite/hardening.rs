//! What a stranger on the network can send a node, on a real socket: connections that never
//! finish their headers, bodies the node must not read, uploads it must not hold or rewrite,
//! and admin requests without the token.

use crate::hardened;

use std::time::Duration;

use hardened::{Running, closed_within, exchange, metadata_bytes, start};
use morsa_api::node as api;
use morsa_node::Limits;
use redstuff::BlobId;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn put(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "PUT {path} HTTP/1.1\r\nhost: node\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn status(answer: &str) -> u16 {
    answer.get(9..12).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_beyond_the_cap_do_not_stop_health_probes() {
    let limits = Limits { max_connections: 16, header_read_timeout_ms: 60_000, ..Limits::default() };
    let Running { address, client, .. } = start(limits, 2000).await;
    // Three times the cap, each stuck in the middle of its headers.
    let mut slow = Vec::new();
    for _ in 0..48 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /v1/health HTTP/1.1\r\nx-slow: ").await.unwrap();
        slow.push(stream);
    }
    for _ in 0..3 {
        let health = tokio::time::timeout(Duration::from_secs(10), client.health()).await;
        assert!(matches!(health, Ok(Ok(_))), "a health probe failed: {health:?}");
    }
    let mut closed = 0;
    for stream in &mut slow {
        if closed_within(stream, Duration::from_millis(100)).await {
            closed += 1;
        }
    }
    assert!(closed > 48 - 16, "only {closed} of 48 slow connections were closed with a cap of 16");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_header_connection_is_closed_after_the_header_read_timeout() {
    let limits = Limits { header_read_timeout_ms: 300, ..Limits::default() };
    let Running { address, .. } = start(limits, 2000).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /v1/health HTTP/1.1\r\nx-slow: ").await.unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_and_proofs_need_no_upload_permit() {
    let limits = Limits { max_concurrent_uploads: 1, ..Limits::default() };
    let Running { address, served, encoded, .. } = start(limits, 2000).await;
    // A sliver upload of the registered blob whose body trickles in holds the only permit.
    let mut slow = TcpStream::connect(address).await.unwrap();
    let path = api::sliver_path(encoded.metadata.blob_id(), 0, redstuff::SliverType::Primary);
    let sliver_len = redstuff::wire::to_bcs(&encoded.pairs[0].primary).len();
    let head = format!("PUT {path} HTTP/1.1\r\nhost: node\r\ncontent-length: {sliver_len}\r\n\r\nabc");
    slow.write_all(head.as_bytes()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while served.upload_permits_available() > 0 {
        assert!(std::time::Instant::now() < deadline, "the slow upload never took its permit");
        tokio::task::yield_now().await;
    }
    // Uploads of an unregistered blob and a proof of an unknown one are refused (bodies sent
    // in full and dropped unkept) without waiting for that permit.
    let unknown = BlobId([7; 32]);
    let body = vec![0u8; 300_000];
    for (method, path) in [
        ("PUT", api::sliver_path(&unknown, 0, redstuff::SliverType::Primary)),
        ("PUT", api::metadata_path(&unknown)),
        ("POST", api::inconsistency_proof_path(&unknown, redstuff::SliverType::Primary)),
    ] {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nhost: node\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let answer = exchange(address, &request).await;
        let code = status(&answer);
        assert!(code == 409 || code == 404, "{method} {path}: {answer}");
    }
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_metadata_must_hash_to_its_blob_id_and_empty_uploads_count() {
    let other = hardened::blob(3000, 9);
    let room = u64::try_from(metadata_bytes(&other).len()).unwrap() + 3 * Limits::PENDING_ENTRY_OVERHEAD;
    let limits = Limits { pending_buffer_bytes: room, ..Limits::default() };
    let Running { address, served, .. } = start(limits, 2000).await;
    let blob_id = *other.metadata.blob_id();
    // Metadata of another blob, or damaged, sent for an unregistered blob: refused, not held.
    let mut damaged = metadata_bytes(&other);
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let foreign = BlobId([3; 32]);
    for (target, body) in [(blob_id, damaged), (foreign, metadata_bytes(&other))] {
        let path = format!("{}?pending=true", api::metadata_path(&target));
        let answer = exchange(address, &put(&path, &body)).await;
        assert_eq!(status(&answer), 422, "{answer}");
    }
    assert_eq!(served.pending_uploads(), 0);
    // Genuine metadata is held.
    let path = format!("{}?pending=true", api::metadata_path(&blob_id));
    assert_eq!(status(&exchange(address, &put(&path, &metadata_bytes(&other))).await), 202);
    // Empty sliver bodies count too: the buffer of four entries' worth fills up.
    let mut held = 1;
    for blob in 10..20u8 {
        let path = format!(
            "{}?pending=true",
            api::sliver_path(&BlobId([blob; 32]), 0, redstuff::SliverType::Primary)
        );
        match status(&exchange(address, &put(&path, b"")).await) {
            202 => held += 1,
            503 => {}
            other => panic!("an empty pending upload got {other}"),
        }
    }
    assert_eq!((held, served.pending_uploads()), (3, 3), "metadata plus two empty uploads fill it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_metadata_uploaded_again_is_not_written_again() {
    let Running { node, encoded, address, .. } = start(Limits::default(), 2000).await;
    let written = node.metadata_writes();
    let path = api::metadata_path(encoded.metadata.blob_id());
    for _ in 0..3 {
        assert_eq!(status(&exchange(address, &put(&path, &metadata_bytes(&encoded))).await), 200);
    }
    assert_eq!(node.metadata_writes(), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_have_their_own_bound_and_recovery_answers_go_on() {
    let limits = Limits { max_concurrent_proofs: 1, ..Limits::default() };
    let Running { address, client, encoded, .. } = start(limits, 2000).await;
    let blob_id = *encoded.metadata.blob_id();
    let path = api::inconsistency_proof_path(&blob_id, redstuff::SliverType::Primary);
    // One proof whose body trickles in holds the only proof slot.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut slow = TcpStream::connect(address).await.unwrap();
    let slow_head = format!("POST {path} HTTP/1.1\r\nhost: node\r\ncontent-length: 1000\r\n\r\nabc");
    slow.write_all(slow_head.as_bytes()).await.unwrap();
    loop {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: node\r\nconnection: close\r\ncontent-length: 3\r\n\r\nabc"
        );
        let answer = exchange(address, head.as_bytes()).await;
        if status(&answer) == 503 {
            break;
        }
        // The slow proof had not taken its slot yet (its headers were still on the way), and
        // this probe took it: the slow one may then have been refused, and drains its body
        // (which never comes). Start it again.
        assert!(std::time::Instant::now() < deadline, "a second proof was not refused: {answer}");
        slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(slow_head.as_bytes()).await.unwrap();
    }
    let symbols =
        client.recovery_symbols(&blob_id, 0, redstuff::SliverType::Primary, encoded.metadata.symbol_size());
    let symbols = tokio::time::timeout(Duration::from_secs(10), symbols).await.unwrap().unwrap();
    assert_eq!(symbols.len(), usize::from(hardened::N));
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_token_and_refuse_web_pages() {
    let Running { address, served, client, dir, .. } = start(Limits::default(), 2000).await;
    let token = morsa_node::AdminToken::create(dir.path()).unwrap();
    served.set_admin_token(token.clone());
    let pause = api::routes::ADMIN_REPAIR_PAUSE;
    // What a web page can send without a preflight: a text/plain POST, with its Origin.
    let simple = format!(
        "POST {pause} HTTP/1.1\r\nhost: node\r\nconnection: close\r\norigin: http://evil.example\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n"
    );
    assert_eq!(status(&exchange(address, simple.as_bytes()).await), 403);
    let with_origin = format!(
        "POST {pause} HTTP/1.1\r\nhost: node\r\nconnection: close\r\norigin: http://evil.example\r\nauthorization: Bearer {}\r\ncontent-length: 0\r\n\r\n",
        token.as_str()
    );
    assert_eq!(status(&exchange(address, with_origin.as_bytes()).await), 403);
    let bare =
        format!("POST {pause} HTTP/1.1\r\nhost: node\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(status(&exchange(address, bare.as_bytes()).await), 403);
    let wrong = client.set_repair_paused(true, "wrong").await.unwrap_err();
    assert_eq!(wrong.node_code(), Some(api::NodeErrorCode::Forbidden), "{wrong}");
    assert!(!client.health().await.unwrap().repair.paused);
    client.set_repair_paused(true, token.as_str()).await.unwrap();
    assert!(client.health().await.unwrap().repair.paused);
}

//! A coordinator client with several URLs: it fails over on unreachable, hung and 503 replicas,
//! remembers the one that answered, follows redirects, and never resends a write whose outcome
//! is unknown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Json, Router};
use morsa_core::{AccountKey, Epoch};

use super::coord::system;
use super::{serve, short};
use crate::client::{ClientError, CoordClient};
use crate::coord::{Command, SignedTransaction, SubmitResponse, Transaction, routes};

/// A URL nothing listens on, kept so (a socket bound there, never listening: connections are
/// refused, and no other process can come to listen there) until the socket is dropped.
fn closed_port() -> (tokio::net::TcpSocket, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    (socket, url)
}

/// A replica that answers the system route (counting calls) and accepts transactions
/// (counting them), or answers 503 to everything when `unavailable`.
fn replica(calls: Arc<AtomicUsize>, unavailable: bool) -> Router {
    let transactions = Arc::clone(&calls);
    Router::new()
        .route(
            routes::SYSTEM,
            get(move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                if unavailable { Err(StatusCode::SERVICE_UNAVAILABLE) } else { Ok(Json(system())) }
            }),
        )
        .route(
            routes::TRANSACTIONS,
            post(move |Json(_): Json<SignedTransaction>| async move {
                transactions.fetch_add(1000, Ordering::SeqCst);
                Json(SubmitResponse::default())
            }),
        )
}

fn transfer() -> SignedTransaction {
    let key = AccountKey::from_seed([9; 32]);
    Transaction { sender: key.id(), nonce: 0, command: Command::Transfer { to: key.id(), amount: 1 } }
        .sign(&key, "test")
}

#[tokio::test]
async fn a_dead_or_unavailable_first_url_is_skipped_and_the_answering_one_is_tried_first_after() {
    let busy_calls = Arc::new(AtomicUsize::new(0));
    let good_calls = Arc::new(AtomicUsize::new(0));
    let busy = serve(replica(Arc::clone(&busy_calls), true)).await;
    let good = serve(replica(Arc::clone(&good_calls), false)).await;
    let (_closed, dead) = closed_port();
    let urls = [dead, busy.clone(), good.clone()];
    let client = CoordClient::with_urls(&urls, short(5_000)).unwrap();

    assert_eq!(client.system().await.unwrap().epoch, Epoch(3));
    assert_eq!((busy_calls.load(Ordering::SeqCst), good_calls.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(client.base_url(), good);
    // The next calls, reads and writes, go straight to the replica that answered.
    client.system().await.unwrap();
    client.submit_transaction(&transfer()).await.unwrap();
    assert_eq!((busy_calls.load(Ordering::SeqCst), good_calls.load(Ordering::SeqCst)), (1, 1002));
}

#[tokio::test]
async fn when_every_url_fails_the_error_names_each_once() {
    let busy = serve(replica(Arc::new(AtomicUsize::new(0)), true)).await;
    let (_closed, dead) = closed_port();
    let client = CoordClient::with_urls(&[dead.clone(), busy.clone()], short(5_000)).unwrap();
    let error = client.system().await.unwrap_err();
    let ClientError::NoAnswer { attempts } = &error else { panic!("expected NoAnswer, got {error:?}") };
    let tried: Vec<&str> = attempts.iter().map(|attempt| attempt.url.as_str()).collect();
    assert_eq!(tried, [dead.as_str(), busy.as_str()]);
    assert!(matches!(attempts[0].error, ClientError::Connect(_)), "{error}");
    let text = error.to_string();
    assert!(text.contains(&dead) && text.contains(&busy) && text.contains("503"), "{text}");
}

#[tokio::test]
async fn a_hung_replica_times_out_reads_move_on_and_a_write_is_not_sent_twice() {
    // Accepts connections (the kernel does) and never answers: a stopped process.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let good_calls = Arc::new(AtomicUsize::new(0));
    let good = serve(replica(Arc::clone(&good_calls), false)).await;
    let client = CoordClient::with_urls(&[hung_url.clone(), good.clone()], short(300)).unwrap();

    // A write that timed out may have been applied: it is not resent elsewhere, but the
    // next call starts with the next replica.
    assert_eq!(client.submit_transaction(&transfer()).await.unwrap_err(), ClientError::Timeout);
    assert_eq!(good_calls.load(Ordering::SeqCst), 0);
    assert_eq!(client.base_url(), good);

    let reads = CoordClient::with_urls(&[hung_url, good], short(300)).unwrap();
    assert_eq!(reads.system().await.unwrap().epoch, Epoch(3));
    assert_eq!(good_calls.load(Ordering::SeqCst), 1);
    drop(hung);
}

#[tokio::test]
async fn a_write_redirected_to_the_leader_arrives_there() {
    let leader_calls = Arc::new(AtomicUsize::new(0));
    let leader = serve(replica(Arc::clone(&leader_calls), false)).await;
    let target = format!("{leader}{}", routes::TRANSACTIONS);
    let follower = serve(
        Router::new().route(routes::TRANSACTIONS, post(move || async move { Redirect::temporary(&target) })),
    )
    .await;
    let client = CoordClient::with_urls(&[follower], short(5_000)).unwrap();
    client.submit_transaction(&transfer()).await.unwrap();
    assert_eq!(leader_calls.load(Ordering::SeqCst), 1000);
}

/// A replica whose transaction route answers `status` with `code`, counting the calls.
fn refusing_writes(calls: Arc<AtomicUsize>, status: StatusCode, code: &'static str) -> Router {
    Router::new().route(
        routes::TRANSACTIONS,
        post(move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            (status, Json(crate::ErrorBody::new(code, "test")))
        }),
    )
}

#[tokio::test]
async fn a_write_goes_to_the_next_replica_after_a_503_but_never_after_a_504_commit_unknown() {
    let good_calls = Arc::new(AtomicUsize::new(0));
    let good = serve(replica(Arc::clone(&good_calls), false)).await;

    // 503: the replica did not propose it (no leader reachable); the next one may.
    let no_quorum_calls = Arc::new(AtomicUsize::new(0));
    let no_quorum =
        serve(refusing_writes(Arc::clone(&no_quorum_calls), StatusCode::SERVICE_UNAVAILABLE, "no_quorum"))
            .await;
    let client = CoordClient::with_urls(&[no_quorum, good.clone()], short(5_000)).unwrap();
    client.submit_transaction(&transfer()).await.unwrap();
    assert_eq!((no_quorum_calls.load(Ordering::SeqCst), good_calls.load(Ordering::SeqCst)), (1, 1000));

    // 504: proposed but not confirmed; resending it elsewhere could apply it twice.
    let unknown_calls = Arc::new(AtomicUsize::new(0));
    let unknown =
        serve(refusing_writes(Arc::clone(&unknown_calls), StatusCode::GATEWAY_TIMEOUT, "commit_unknown"))
            .await;
    let client = CoordClient::with_urls(&[unknown, good], short(5_000)).unwrap();
    let error = client.submit_transaction(&transfer()).await.unwrap_err();
    assert_eq!(error.code(), Some("commit_unknown"), "{error}");
    assert_eq!((unknown_calls.load(Ordering::SeqCst), good_calls.load(Ordering::SeqCst)), (1, 1000));
}

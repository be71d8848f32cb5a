//! The coordinator client against a fake coordinator.

use std::time::{Duration, Instant};

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use morsa_core::{AccountId, AccountKey, Epoch};

use super::{serve, short};
use crate::ErrorBody;
use crate::client::{ClientError, CoordClient};
use crate::coord::{
    AccountInfo, Command, EventsPage, EventsQuery, MAX_WAIT_MS, SubmitResponse, SystemInfo, Transaction,
    routes,
};

pub(super) fn system() -> SystemInfo {
    SystemInfo {
        chain_id: "test".into(),
        epoch: Epoch(3),
        n_shards: 10,
        epoch_duration_ms: 60_000,
        epoch_start_ms: 1,
        storage_price_per_mib_epoch: 5,
        write_price_per_mib: 2,
        max_epochs_ahead: 52,
        capacity: 1 << 40,
        used: 0,
        time_ms: 2,
        event_count: 0,
        state_hash: "00".repeat(32),
        replica: None,
        domains: None,
        nodes: Vec::new(),
    }
}

/// Echoes the query in `count` (`after·10⁶ + wait_ms·10³ + limit`), after holding the call
/// for `wait_ms` (at most 600 ms).
async fn events(Query(query): Query<EventsQuery>) -> Json<EventsPage> {
    let wait = query.wait_ms.unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait.min(600))).await;
    let count = query.after.unwrap_or(1000) * 1_000_000
        + wait * 1000
        + u64::try_from(query.limit.unwrap_or(999)).unwrap();
    Json(EventsPage { events: Vec::new(), count })
}

fn fake_coordinator() -> Router {
    Router::new()
        .route(routes::SYSTEM, get(|| async { Json(system()) }))
        .route(routes::EVENTS, get(events))
        .route(
            routes::ACCOUNT,
            get(|Path(id): Path<String>| async move {
                let id: AccountId = id.parse().unwrap();
                Json(AccountInfo { id, balance: 7, nonce: 1, stakes: Vec::new(), withdrawals: Vec::new() })
            }),
        )
        .route(
            routes::TRANSACTIONS,
            post(|Json(transaction): Json<crate::coord::SignedTransaction>| async move {
                if transaction.transaction.nonce == 0 {
                    Ok(Json(SubmitResponse::default()))
                } else {
                    let body = ErrorBody::new("bad_nonce", "use nonce 0");
                    Err((StatusCode::CONFLICT, Json(body)))
                }
            }),
        )
}

#[tokio::test]
async fn coordinator_calls_round_trip_and_errors_keep_their_code() {
    let base = serve(fake_coordinator()).await;
    let client = CoordClient::with_http(reqwest::Client::new(), &base, short(5_000)).unwrap();
    assert_eq!(client.system().await.unwrap(), system());
    let key = AccountKey::from_seed([4; 32]);
    assert_eq!(client.account(&key.id()).await.unwrap().id, key.id());

    let transfer = |nonce| {
        Transaction { sender: key.id(), nonce, command: Command::Transfer { to: key.id(), amount: 1 } }
            .sign(&key, "test")
    };
    assert_eq!(client.submit_transaction(&transfer(0)).await.unwrap().created, Vec::new());
    match client.submit_transaction(&transfer(1)).await {
        Err(ClientError::Http { status, body }) => {
            assert_eq!(status, StatusCode::CONFLICT);
            assert_eq!(body.code, "bad_nonce");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    // The committee route is not served: a 404 without an error body.
    assert_eq!(client.committee().await.unwrap_err().code(), Some(crate::client::UNKNOWN_ERROR_CODE));
}

#[tokio::test]
async fn event_queries_are_passed_and_the_wait_extends_the_timeout() {
    let base = serve(fake_coordinator()).await;
    let client = CoordClient::with_http(reqwest::Client::new(), &base, short(300)).unwrap();
    assert_eq!(client.events(Some(5), 0, 20).await.unwrap().count, 5_000_020);
    assert_eq!(client.events(None, 0, 7).await.unwrap().count, 1_000_000_007);
    // The server holds the call 600 ms: past the 300 ms timeout, within timeout + wait.
    let started = Instant::now();
    assert_eq!(client.events(Some(1), 1000, 1).await.unwrap().count, 2_000_001);
    assert!(started.elapsed() >= Duration::from_millis(600));
    // The wait asked for is capped at the server's maximum.
    let capped = client.events(Some(0), MAX_WAIT_MS * 10, 1).await.unwrap().count;
    assert_eq!(capped, MAX_WAIT_MS * 1000 + 1);
}

//! The coordinator's routes, through the router (no socket).

use crate::common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{CHAIN, World};
use morsa_api::ErrorBody;
use morsa_api::coord::{AccountInfo, EventsPage, SubmitResponse, SystemInfo, routes};
use morsa_coord::server::{Clock, Shared, router};
use morsa_coord::{Command, Coordinator, EpochPhase, Event, Transaction};
use tower::ServiceExt;

struct Fixture {
    shared: Arc<Shared>,
    world: World,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_on(Clock::wall())
}

fn fixture_on(clock: Clock) -> Fixture {
    let mut world = World::new(4, 10);
    // Real time runs here: start the deployment now, with epochs longer than any test.
    world.genesis.genesis_time_ms = morsa_coord::server::now_ms();
    world.genesis.epoch_duration_ms = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&world.genesis, &dir.path().join("log.redb")).unwrap();
    Fixture { shared: Shared::with_clock(coordinator, clock), world, _dir: dir }
}

async fn call(shared: &Arc<Shared>, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router(Arc::clone(shared)).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, body.to_vec())
}

fn post_json(path: &str, body: &impl serde::Serialize) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn transfer(world: &World, user: usize, nonce: u64, amount: u64) -> morsa_coord::SignedTransaction {
    let command = Command::Transfer { to: world.users[2].id(), amount };
    Transaction { sender: world.users[user].id(), nonce, command }.sign(&world.users[user], CHAIN)
}

#[tokio::test]
async fn an_accepted_transaction_changes_the_account_and_is_reported() {
    let Fixture { shared, world, _dir } = fixture();
    let (status, body) = call(&shared, post_json(routes::TRANSACTIONS, &transfer(&world, 0, 0, 25))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let _: SubmitResponse = serde_json::from_slice(&body).unwrap();
    let path = morsa_api::coord::account_path(&world.users[0].id());
    let (status, body) = call(&shared, get(&path)).await;
    assert_eq!(status, StatusCode::OK);
    let account: AccountInfo = serde_json::from_slice(&body).unwrap();
    assert_eq!((account.balance, account.nonce), (1_000_000 - 25, 1));
}

#[tokio::test]
async fn refusals_carry_a_status_and_a_stable_code() {
    let Fixture { shared, world, _dir } = fixture();
    // Signed by the wrong key.
    let mut forged = transfer(&world, 0, 0, 5);
    forged.signature = world.users[1].sign(b"something else");
    let (status, body) = call(&shared, post_json(routes::TRANSACTIONS, &forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().code, "bad_signature");
    // A replayed nonce.
    let first = transfer(&world, 0, 0, 5);
    assert_eq!(call(&shared, post_json(routes::TRANSACTIONS, &first)).await.0, StatusCode::OK);
    let (status, body) = call(&shared, post_json(routes::TRANSACTIONS, &first)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().code, "bad_nonce");
    // More than the balance.
    let (status, body) =
        call(&shared, post_json(routes::TRANSACTIONS, &transfer(&world, 0, 1, 10_000_000))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().code, "insufficient_balance");
}

#[tokio::test]
async fn malformed_input_is_refused_with_a_clear_error() {
    let Fixture { shared, _dir, .. } = fixture();
    let (status, body) = call(&shared, get("/v1/blobs/not-a-blob-id")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().code, "bad_blob_id");
    let (status, _) = call(&shared, get("/v1/accounts/zz")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let garbage = Request::post(routes::TRANSACTIONS)
        .header("content-type", "application/json")
        .body(Body::from("{\"transaction\": 3}"))
        .unwrap();
    assert_eq!(call(&shared, garbage).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let huge = Request::post(routes::TRANSACTIONS)
        .header("content-type", "application/json")
        .body(Body::from(vec![b' '; morsa_api::coord::MAX_BODY_BYTES + 1]))
        .unwrap();
    assert_eq!(call(&shared, huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_unknown_blob_is_nonexistent_and_the_system_reports_its_state_hash() {
    let Fixture { shared, _dir, .. } = fixture();
    let (status, body) = call(&shared, get(&morsa_api::coord::blob_path(&redstuff::BlobId([5; 32])))).await;
    assert_eq!(status, StatusCode::OK);
    let blob: morsa_api::coord::BlobStatus = serde_json::from_slice(&body).unwrap();
    assert_eq!(blob.status, morsa_api::coord::BlobStatusKind::Nonexistent);
    let (_, body) = call(&shared, get(routes::SYSTEM)).await;
    let system: SystemInfo = serde_json::from_slice(&body).unwrap();
    assert_eq!(system.n_shards, 10);
    assert_eq!(system.state_hash.len(), 64);
    let (status, body) = call(&shared, get(routes::METRICS)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("morsa_coord_epoch 1"));
}

#[tokio::test]
async fn a_long_poll_returns_when_an_event_arrives() {
    let Fixture { shared, world, _dir } = fixture();
    let encoded = redstuff::EncodingConfig::new(10).unwrap().encoded_size(10).unwrap();
    let command = Command::ReserveStorage { size: encoded, epochs: 1 };
    let reserve = Transaction { sender: world.users[0].id(), nonce: 0, command }.sign(&world.users[0], CHAIN);
    let response: SubmitResponse = {
        let (_, body) = call(&shared, post_json(routes::TRANSACTIONS, &reserve)).await;
        serde_json::from_slice(&body).unwrap()
    };
    let storage = response.created[0];
    // A poll that is waiting (up to 20 s) before the registration commits is woken by it.
    assert_eq!(shared.event_waiters(), 0);
    let poller = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move { call(&shared, get("/v1/events?wait_ms=20000")).await })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while shared.event_waiters() == 0 {
        assert!(std::time::Instant::now() < deadline, "the poll never started waiting");
        tokio::task::yield_now().await;
    }
    let root = [4; 32];
    let command = Command::RegisterBlob {
        storage,
        blob_id: redstuff::BlobId::from_root(10, &root),
        root_hash: root,
        size: 10,
        encoding_type: 1,
        deletable: false,
    };
    let register =
        Transaction { sender: world.users[0].id(), nonce: 1, command }.sign(&world.users[0], CHAIN);
    assert_eq!(call(&shared, post_json(routes::TRANSACTIONS, &register)).await.0, StatusCode::OK);
    let (status, body) =
        tokio::time::timeout(std::time::Duration::from_secs(15), poller).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    let page: EventsPage = serde_json::from_slice(&body).unwrap();
    assert_eq!(page.count, 1);
    assert!(matches!(page.events[0].event, morsa_coord::Event::BlobRegistered { .. }));
    // Nothing after the last event: a short wait returns an empty page.
    let (_, body) = call(&shared, get("/v1/events?after=0&wait_ms=50")).await;
    let page: EventsPage = serde_json::from_slice(&body).unwrap();
    assert!(page.events.is_empty());
}

#[tokio::test]
async fn account_blobs_are_listed_and_a_bad_cursor_is_refused() {
    let Fixture { shared, world, _dir } = fixture();
    let path = morsa_api::coord::account_blobs_path(&world.users[0].id());
    let (status, body) = call(&shared, get(&format!("{path}?limit=5"))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let page: morsa_api::coord::AccountBlobs = serde_json::from_slice(&body).unwrap();
    assert!(page.blobs.is_empty() && !page.more);
    let (status, _) = call(&shared, get(&format!("{path}?after=nothex"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_next_epoch_route_is_refused_unless_manual_epochs_are_on() {
    let Fixture { shared, _dir, .. } = fixture();
    let (status, body) = call(&shared, post_json(routes::NEXT_EPOCH, &())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().code, "manual_epochs_off");
    let (_, body) = call(&shared, get(routes::COMMITTEE)).await;
    let committee: morsa_api::coord::CommitteeInfo = serde_json::from_slice(&body).unwrap();
    assert_eq!(committee.epoch.0, 1);
    assert_eq!(shared.log_len().unwrap(), 0);
}

#[tokio::test]
async fn with_manual_epochs_the_next_epoch_starts_on_demand_through_a_logged_tick() {
    let Fixture { shared, world, _dir } = fixture_on(Clock::with_manual_epochs(true));
    // Epoch 1 has an hour to go: only the route can end it.
    let (status, body) = call(&shared, post_json(routes::NEXT_EPOCH, &())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let response: SubmitResponse = serde_json::from_slice(&body).unwrap();
    let events: Vec<_> = response.events.iter().map(|record| &record.event).collect();
    assert!(matches!(events.first(), Some(Event::CommitteeSelected { .. })), "{events:?}");
    assert!(matches!(events.last(), Some(Event::EpochChangeStart { epoch }) if epoch.0 == 2), "{events:?}");
    // The next one waits for this epoch change to be done.
    let (status, body) = call(&shared, post_json(routes::NEXT_EPOCH, &())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().code, "epoch_change_pending");
    // Inputs go on at the clock's new time.
    let (status, body) = call(&shared, post_json(routes::TRANSACTIONS, &transfer(&world, 0, 0, 25))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(shared.log_len().unwrap(), 2);
    // The log holds the time the tick was applied at: a replay reaches the same state.
    let before = {
        let (_, body) = call(&shared, get(routes::SYSTEM)).await;
        serde_json::from_slice::<SystemInfo>(&body).unwrap().state_hash
    };
    drop(shared);
    let replayed = Coordinator::open(&world.genesis, &_dir.path().join("log.redb")).unwrap();
    let state = replayed.state();
    assert_eq!((state.epoch.0, state.phase != EpochPhase::Done), (2, true));
    assert!(state.time_ms >= state.epoch_start_ms(state.epoch));
    assert_eq!(hex::encode(state.hash()), before);
}

//! What must not wait for the coordinator's lock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use morsa_api::coord::{SystemInfo, routes};
use morsa_core::{AccountKey, BlsSecretKey};
use tower::ServiceExt;

use super::{Shared, router};
use crate::{Coordinator, Genesis, GenesisAccount, GenesisNode, NodeRules};

pub(super) fn genesis() -> Genesis {
    let user = AccountKey::from_seed([9; 32]);
    let nodes = (1..=4u8)
        .map(|seed| {
            let key = BlsSecretKey::from_seed([seed; 32]);
            GenesisNode {
                public_key: key.public_key(),
                proof_of_possession: key.proof_of_possession(),
                address: format!("127.0.0.1:{}", 9000 + u16::from(seed)),
                stake: 100,
                capacity: 1 << 30,
                operator: user.id(),
                zone: String::new(),
            }
        })
        .collect();
    Genesis {
        chain_id: "server-test".into(),
        n_shards: 10,
        epoch_duration_ms: 3_600_000,
        genesis_time_ms: super::now_ms(),
        storage_price_per_mib_epoch: 1,
        write_price_per_mib: 1,
        max_epochs_ahead: 5,
        max_shards_per_node: 10,
        nodes,
        accounts: vec![GenesisAccount { id: user.id(), balance: 1000 }],
        node_rules: NodeRules::local(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // holding the coordinator's lock over the request is the test
async fn the_system_is_answered_while_the_coordinator_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis();
    let coordinator = Coordinator::open(&genesis, &dir.path().join("log.redb")).unwrap();
    let expected = genesis.initial_state().unwrap().hash();
    let shared = Shared::new(coordinator);
    // A long commit holds the lock: the system answer must not wait for it.
    let busy = shared.lock();
    let request = Request::get(routes::SYSTEM).body(Body::empty()).unwrap();
    // On a worker thread: this thread holds the lock.
    let call = tokio::spawn(router(Arc::clone(&shared)).oneshot(request));
    let answer = tokio::time::timeout(Duration::from_secs(20), call).await;
    drop(busy);
    let response =
        answer.expect("the system was answered while the coordinator's lock was held").unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let system: SystemInfo = serde_json::from_slice(&body).unwrap();
    assert_eq!(system.state_hash, hex::encode(expected));
}

#[tokio::test]
async fn metrics_keep_their_names_types_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&genesis(), &dir.path().join("log.redb")).unwrap();
    let shared = Shared::new(coordinator);
    shared.metrics.accepted();
    shared.metrics.refused("bad_nonce");
    shared.metrics.refused("bad_nonce");
    shared.metrics.refused("busy");
    let request = Request::get(routes::METRICS).body(Body::empty()).unwrap();
    let response = router(Arc::clone(&shared)).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    for line in [
        "# TYPE morsa_coord_submissions_total counter",
        "morsa_coord_submissions_total{outcome=\"accepted\"} 1",
        "morsa_coord_submissions_total{outcome=\"refused\",code=\"bad_nonce\"} 2",
        "morsa_coord_submissions_total{outcome=\"refused\",code=\"busy\"} 1",
        "# HELP morsa_coord_epoch Current epoch.",
        "# TYPE morsa_coord_epoch gauge",
        "morsa_coord_epoch 1",
        "# TYPE morsa_coord_events_total counter",
        "morsa_coord_events_total 0",
        "morsa_coord_blob_objects 0",
        "morsa_coord_invalid_blobs 0",
        "morsa_coord_capacity_bytes 4294967296",
        "morsa_coord_used_bytes 0",
        "morsa_coord_parked_polls 0",
    ] {
        assert!(text.lines().any(|got| got == line), "{line:?} missing from:\n{text}");
    }
}

#[test]
fn the_coordinators_own_failures_are_server_errors_with_their_own_codes() {
    let answer = |error: crate::CoordinatorError| {
        let super::ApiError(status, body) = super::ApiError::from(crate::SubmitError::Fatal(error));
        (status, body.code)
    };
    let corrupt = crate::CoordinatorError::Replay { seq: 7, reason: "does not decode".into() };
    assert_eq!(answer(corrupt), (StatusCode::INTERNAL_SERVER_ERROR, "corrupt_log".to_string()));
    assert_eq!(answer(crate::CoordinatorError::GenesisMismatch).1, "corrupt_log");
    assert_eq!(
        answer(crate::CoordinatorError::Poisoned),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_string())
    );
}

/// Posts `summary` signed by `key` to the router; answers the status and body.
async fn post_summary(
    shared: &Arc<Shared>,
    summary: &morsa_api::coord::AvailabilitySummary,
    key: &BlsSecretKey,
) -> (StatusCode, serde_json::Value) {
    let signed = morsa_api::coord::SignedAvailability {
        summary: summary.clone(),
        signature: key.sign(&summary.message()),
    };
    let request = Request::post(routes::AVAILABILITY)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&signed).unwrap()))
        .unwrap();
    let response = router(Arc::clone(shared)).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn availability_summaries_are_taken_only_signed_by_their_node_and_newer() {
    use morsa_api::coord::{AvailabilitySummary, ShardAvailability};
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&genesis(), &dir.path().join("log.redb")).unwrap();
    let shared = Shared::new(coordinator);
    let committee = shared.lock().state().committee.clone();
    let member = &committee.members[0];
    let key = (1..=4u8)
        .map(|seed| BlsSecretKey::from_seed([seed; 32]))
        .find(|key| key.public_key() == member.public_key)
        .unwrap();
    let blob = redstuff::BlobId([5; 32]);
    let shard = member.shards[0].0;
    let summary = |time_ms| AvailabilitySummary {
        node: member.node_id,
        epoch: committee.epoch,
        time_ms,
        shards: vec![ShardAvailability { shard, missing_blobs: 1, blobs: vec![blob] }],
    };
    // Signed by another node's key: refused, and not counted.
    let (status, body) = post_summary(&shared, &summary(10), &BlsSecretKey::from_seed([99; 32])).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_node_signature")));
    // Signed by the node: the blob lacks one shard of the full margin n − kp = 10 − 4.
    let (status, body) = post_summary(&shared, &summary(10), &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["margins"][0]["margin_shards"], 5, "{body}");
    // A replay of an older summary is refused.
    let (status, body) = post_summary(&shared, &summary(9), &key).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("stale_summary")));
    // The view and the metrics say the same.
    let view = super::availability::view(&shared).unwrap();
    assert_eq!(view.nodes.iter().filter(|node| node.reporting).count(), 1);
    let request = Request::get(routes::METRICS).body(Body::empty()).unwrap();
    let response = router(Arc::clone(&shared)).oneshot(request).await.unwrap();
    let text =
        String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
            .unwrap();
    assert!(text.contains("morsa_availability_reporting_nodes 1"), "{text}");
    assert!(text.contains("# TYPE morsa_availability_blob_margin_shards histogram"), "{text}");
}

/// The answer to `request` through the coordinator's router: status, `Allow` header and error
/// body; fails the test if the body is not an [`ErrorBody`](morsa_api::ErrorBody) in JSON.
async fn refusal(
    shared: &Arc<Shared>,
    request: Request<Body>,
) -> (StatusCode, Option<String>, morsa_api::ErrorBody) {
    let what = format!("{} {}", request.method(), request.uri());
    let response = router(Arc::clone(shared)).oneshot(request).await.unwrap();
    let (morsa_api::server::refusal::Refusal(status, error), allow) =
        morsa_api::server::refusal::read_refusal(response)
            .await
            .unwrap_or_else(|why| panic!("{what}: {why}"));
    (status, allow, error)
}

#[tokio::test]
async fn malformed_queries_bodies_unknown_routes_and_methods_are_refused_in_json_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::open(&genesis(), &dir.path().join("log.redb")).unwrap();
    let shared = Shared::new(coordinator);
    let account = AccountKey::from_seed([9; 32]).id();
    let get = |uri: String| Request::get(uri).body(Body::empty()).unwrap();
    for uri in [
        format!("{}?after=x", routes::EVENTS),
        format!("{}?limit=-1", routes::EVENTS),
        format!("{}?limit=x", routes::ACCOUNT_BLOBS.replace("{account_id}", &account.to_string())),
        format!("{}?targets=maybe", routes::CHALLENGES),
    ] {
        let (status, _, error) = refusal(&shared, get(uri.clone())).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{uri}: {error}");
    }
    for route in [routes::TRANSACTIONS, routes::NODE_REPORTS, routes::AVAILABILITY] {
        let json = |body: &'static str| {
            Request::post(route).header("content-type", "application/json").body(Body::from(body)).unwrap()
        };
        let (status, _, error) = refusal(&shared, json("{not json")).await;
        assert_eq!((status, error.code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{route}");
        let (status, _, error) = refusal(&shared, json(r#"{"unexpected": true}"#)).await;
        assert_eq!(
            (status, error.code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "bad_request"),
            "{route}"
        );
        let untyped = Request::post(route).body(Body::from("{}")).unwrap();
        let (status, _, error) = refusal(&shared, untyped).await;
        assert_eq!(
            (status, error.code.as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_request"),
            "{route}"
        );
    }
    let (status, _, error) = refusal(&shared, get("/v1/nothing/here".into())).await;
    assert_eq!((status, error.code.as_str()), (StatusCode::NOT_FOUND, "unknown_route"));
    let delete = Request::delete(routes::SYSTEM).body(Body::empty()).unwrap();
    let (status, allow, error) = refusal(&shared, delete).await;
    assert_eq!((status, error.code.as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    assert!(allow.is_some_and(|allow| allow.contains("GET")));
}

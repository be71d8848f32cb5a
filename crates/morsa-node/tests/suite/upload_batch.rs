//! The batch upload route: a blob's metadata and slivers in one request, each item checked as
//! its single route checks it.

use axum::http::StatusCode;
use morsa_api::node::{self as api, MAX_UPLOAD_BATCH_BYTES, StoredStatus, UploadBatch, UploadBatchAnswer};
use redstuff::{BlobId, MetadataWithId, SliverType};

use crate::common::*;

fn metadata(fixture: &Fixture) -> MetadataWithId {
    let encoded = &fixture.encoded;
    MetadataWithId { blob_id: *encoded.metadata.blob_id(), metadata: encoded.metadata.metadata().clone() }
}

/// The metadata (if `with_metadata`) and both slivers of every pair the node owns.
fn everything(fixture: &Fixture, with_metadata: bool) -> UploadBatch {
    let mut batch = UploadBatch::new();
    if with_metadata {
        batch.push_metadata(&metadata(fixture));
    }
    for pair in owned_pairs(fixture) {
        let slivers = &fixture.encoded.pairs[usize::from(pair)];
        batch.push_sliver(pair, SliverType::Primary, &slivers.primary);
        batch.push_sliver(pair, SliverType::Secondary, &slivers.secondary);
    }
    batch
}

async fn put_batch(fixture: &Fixture, blob_id: &BlobId, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    call(&fixture.served, put(&api::sliver_batch_path(blob_id), body)).await
}

async fn stored(fixture: &Fixture, pair: u16, kind: SliverType) -> bool {
    let blob_id = fixture.encoded.metadata.blob_id();
    let (status, body) = call(&fixture.served, get(&api::sliver_status_path(blob_id, pair, kind))).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice::<StoredStatus>(&body).unwrap().stored
}

#[tokio::test]
async fn a_batch_with_the_metadata_stores_everything_and_the_node_confirms() {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let (body, targets) = everything(&fixture, true).into_parts();
    let (status, answer) = put_batch(&fixture, &blob_id, body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let answer: UploadBatchAnswer = serde_json::from_slice(&answer).unwrap();
    assert!(answer.answers(&targets));
    assert!(answer.items.iter().all(|item| item.refused.is_none()), "{answer:?}");
    for pair in owned_pairs(&fixture) {
        assert!(stored(&fixture, pair, SliverType::Primary).await);
        assert!(stored(&fixture, pair, SliverType::Secondary).await);
    }
    let (status, body) = call(&fixture.served, get(&api::permanent_confirmation_path(&blob_id))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (_, metrics) = call(&fixture.served, get(api::routes::METRICS)).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.lines().any(|line| line.starts_with("morsa_node_requests_total")
            && line.contains(api::routes::SLIVER_BATCH)
            && line.contains("\"200\"")),
        "the batch route is counted:\n{metrics}"
    );
}

#[tokio::test]
async fn a_bad_sliver_is_refused_with_its_reason_and_the_good_ones_are_stored() {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let pairs = owned_pairs(&fixture);
    let (bad, good) = (pairs[0], pairs[1]);
    let foreign = (0..N).find(|pair| !pairs.contains(pair)).unwrap();
    let mut tampered = fixture.encoded.pairs[usize::from(bad)].primary.clone();
    tampered.symbols[3] ^= 1;
    let mut batch = UploadBatch::new();
    batch.push_metadata(&metadata(&fixture));
    batch.push_sliver(bad, SliverType::Primary, &tampered);
    batch.push_sliver(good, SliverType::Primary, &fixture.encoded.pairs[usize::from(good)].primary);
    batch.push_sliver(foreign, SliverType::Primary, &fixture.encoded.pairs[usize::from(foreign)].primary);
    batch.push_sliver(bad, SliverType::Secondary, &fixture.encoded.pairs[usize::from(bad)].secondary);
    let (body, targets) = batch.into_parts();
    let (status, answer) = put_batch(&fixture, &blob_id, body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let answer: UploadBatchAnswer = serde_json::from_slice(&answer).unwrap();
    assert!(answer.answers(&targets));
    let refused: Vec<Option<&str>> =
        answer.items.iter().map(|item| item.refused.as_ref().map(|body| body.code.as_str())).collect();
    assert_eq!(refused, [None, Some("hash_mismatch"), None, Some("wrong_shard"), None]);
    assert!(!stored(&fixture, bad, SliverType::Primary).await);
    assert!(stored(&fixture, bad, SliverType::Secondary).await);
    assert!(stored(&fixture, good, SliverType::Primary).await);
}

#[tokio::test]
async fn oversized_and_malformed_batches_are_refused_whole() {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let (status, body) = put_batch(&fixture, &blob_id, vec![0; MAX_UPLOAD_BATCH_BYTES + 1]).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    // Within the route's limit but over what this blob's slivers for this node can take.
    let mut repeated = Vec::new();
    for _ in 0..4 {
        repeated.extend(everything(&fixture, false).into_parts().0);
    }
    assert!(repeated.len() < MAX_UPLOAD_BATCH_BYTES);
    let (status, body) = put_batch(&fixture, &blob_id, repeated).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let (status, body) = put_batch(&fixture, &blob_id, vec![1, 0, 0, 200, 0, 0, 0, 1]).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(!stored(&fixture, owned_pairs(&fixture)[0], SliverType::Primary).await);
}

#[tokio::test]
async fn a_batch_for_an_unregistered_blob_is_refused_as_a_single_upload_is() {
    let fixture = fixture(false);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let (status, body) = put_batch(&fixture, &blob_id, everything(&fixture, true).into_parts().0).await;
    let single = fixture.encoded.pairs[usize::from(owned_pairs(&fixture)[0])].primary.clone();
    let path = api::sliver_path(&blob_id, owned_pairs(&fixture)[0], SliverType::Primary);
    let (single_status, single_body) =
        call(&fixture.served, put(&path, redstuff::wire::to_bcs(&single))).await;
    assert_eq!((status, code(&body)), (single_status, code(&single_body)));
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "not_registered"));
}

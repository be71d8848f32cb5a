//! Records the node itself stored that fail their check are the node's fault, not the caller's:
//! they are answered `corrupt_data` (500), never a 4xx that tells the caller to fix its request.

use axum::http::StatusCode;
use morsa_api::node as api;
use redstuff::SliverType;
use redstuff::wire::to_bcs;

use crate::common;

use common::*;

#[tokio::test]
async fn a_damaged_blob_record_is_a_server_error_with_its_own_code() {
    let fixture = fixture(true);
    upload_everything(&fixture).await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    let (status, _) = call(&fixture.served, get(&api::blob_status_path(&blob_id))).await;
    assert_eq!(status, StatusCode::OK);

    // The record of what the events said of the blob, damaged on disk.
    fixture.node.store().put_blob_info(&blob_id.0, &[0xff; 7]).unwrap();
    for path in [api::blob_status_path(&blob_id), api::permanent_confirmation_path(&blob_id)] {
        let (status, body) = call(&fixture.served, get(&path)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(code(&body), "corrupt_data", "{path}");
    }
}

#[tokio::test]
async fn damaged_stored_metadata_is_a_server_error_with_its_own_code() {
    let other = redstuff::encode(config(), &[7; 3000]).unwrap();
    for damaged in [vec![0xff; 40], metadata_bytes(&other)] {
        // Registered, its metadata on disk damaged (undecodable, or another blob's), before
        // anything cached a verified copy.
        let fixture = fixture(true);
        let blob_id = *fixture.encoded.metadata.blob_id();
        fixture.node.store().put_metadata(&blob_id.0, &damaged).unwrap();
        let pair = owned_pairs(&fixture)[0];
        let sliver = to_bcs(&fixture.encoded.pairs[usize::from(pair)].primary);
        let (status, body) =
            call(&fixture.served, put(&api::sliver_path(&blob_id, pair, SliverType::Primary), sliver)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{}", String::from_utf8_lossy(&body));
        assert_eq!(code(&body), "corrupt_data");
    }
}

//! The free space a node keeps on its database's filesystem: while less is free, every upload
//! route refuses with `insufficient_storage` (507) before reading the body, the refusal says
//! what to do, reads go on, and the health answer shows the figures.

use std::sync::Arc;

use axum::http::StatusCode;
use morsa_api::node::{self as api, NodeHealth, UploadBatch};
use morsa_node::{Limits, Served};
use redstuff::SliverType;
use redstuff::wire::to_bcs;

use crate::common::*;

/// `fixture`'s node served with a reserve no filesystem has free.
fn starved(fixture: &Fixture) -> Arc<Served> {
    let limits = Limits { min_free_disk_bytes: Some(u64::MAX), ..Limits::default() };
    Served::new(Arc::clone(&fixture.node), &limits)
}

fn refused(status: StatusCode, body: &[u8], what: &str) {
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{what}: {}", String::from_utf8_lossy(body));
    assert_eq!(code(body), "insufficient_storage", "{what}");
    let message = String::from_utf8_lossy(body);
    assert!(message.contains("min_free_disk_bytes") && message.contains("bytes free"), "{what}: {message}");
}

#[tokio::test]
async fn a_node_short_of_disk_refuses_every_upload_clearly_and_still_serves_reads() {
    let fixture = fixture(true);
    let blob_id = *fixture.encoded.metadata.blob_id();
    let full = starved(&fixture);
    let pair = owned_pairs(&fixture)[0];
    let sliver = to_bcs(&fixture.encoded.pairs[usize::from(pair)].primary);

    let (status, body) =
        call(&full, put(&api::metadata_path(&blob_id), metadata_bytes(&fixture.encoded))).await;
    refused(status, &body, "metadata");
    let path = api::sliver_path(&blob_id, pair, SliverType::Primary);
    let (status, body) = call(&full, put(&path, sliver.clone())).await;
    refused(status, &body, "a sliver");
    let mut batch = UploadBatch::new();
    batch.push_sliver(pair, SliverType::Primary, &fixture.encoded.pairs[usize::from(pair)].primary);
    let (status, body) = call(&full, put(&api::sliver_batch_path(&blob_id), batch.into_parts().0)).await;
    refused(status, &body, "a batch");
    // Uploads held for a blob not registered yet would be written too.
    let other = redstuff::encode(config(), &[9; 4000]).unwrap();
    let other_id = *other.metadata.blob_id();
    let other_pair = pairs_owned(&fixture.node, &other_id)[0];
    let held = format!("{}?pending=true", api::sliver_path(&other_id, other_pair, SliverType::Primary));
    let (status, body) = call(&full, put(&held, to_bcs(&other.pairs[usize::from(other_pair)].primary))).await;
    refused(status, &body, "a pending sliver");
    assert!(!fixture.node.store().has_metadata(&blob_id.0).unwrap(), "nothing was stored");

    // The same node with room takes them; the starved server still answers reads.
    upload_everything(&fixture).await;
    let (status, body) = call(&full, get(&path)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, sliver);

    let (status, body) = call(&full, get(api::routes::HEALTH)).await;
    assert_eq!(status, StatusCode::OK);
    let disk = serde_json::from_slice::<NodeHealth>(&body).unwrap().disk.expect("the disk's figures");
    assert_eq!(disk.reserve_bytes, u64::MAX);
    assert!(disk.free_bytes > 0 && disk.free_bytes <= disk.total_bytes, "{disk:?}");
    let (_, body) = call(&fixture.served, get(api::routes::HEALTH)).await;
    let disk = serde_json::from_slice::<NodeHealth>(&body).unwrap().disk.unwrap();
    assert_eq!(disk.reserve_bytes, (disk.total_bytes / 100).min(1 << 30), "the default reserve");
    let (_, body) = call(&full, get(api::routes::METRICS)).await;
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains(&format!("morsa_node_disk_reserve_bytes {}", u64::MAX as f64)), "{text}");
}

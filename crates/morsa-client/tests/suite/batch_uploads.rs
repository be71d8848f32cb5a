//! Uploads in batches: each node gets its share of a small blob in one request (metadata
//! included), and a node
//! without the batch route (an older node) gets one request per sliver.

use std::time::Duration;

use morsa_client::{StoreOptions, StoredHow};

use crate::common::proxy::{Lie, Route};
use crate::common::{System, data};

const N: u16 = 13;

/// Slivers node `index` holds of a blob: both of each of its shards' pairs.
async fn slivers_of(system: &System, index: usize) -> usize {
    let address = &system.nodes[index].address;
    let committee = system.committee().await;
    2 * committee.members.iter().find(|member| &member.address == address).unwrap().shards.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_gets_a_small_blob_in_one_request() {
    let system = System::start_behind_proxies(4, N).await;
    let client = system.client().await;
    let blob = data(1000, 21);
    let stored = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    assert!(matches!(stored.how, StoredHow::NewlyCertified { .. }), "{stored:?}");
    assert!(client.finish_uploads(Duration::from_secs(30)).await.is_empty());
    for index in 0..system.nodes.len() {
        let proxy = system.proxy(index);
        // (Asked again only if the node had not yet seen the registration.)
        assert!(!proxy.seen(Route::PutSliverBatch).is_empty(), "node {index}: a batch");
        assert!(proxy.seen(Route::PutSliver).is_empty(), "node {index}: no single sliver");
    }
    assert!(client.read_blob(&stored.blob_id).await.unwrap().data == blob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_batch_route_gets_one_request_per_sliver() {
    let system = System::start_behind_proxies(4, N).await;
    let old = 1;
    system.proxy(old).lie(Route::PutSliverBatch, Lie::NoRoute);
    let client = system.client().await;
    let blob = data(3000, 22);
    let stored = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    assert!(matches!(stored.how, StoredHow::NewlyCertified { .. }), "{stored:?}");
    let left = client.finish_uploads(Duration::from_secs(30)).await;
    assert!(left.is_empty() && stored.left_behind.is_empty(), "every node confirmed: {left:?}");
    let proxy = system.proxy(old);
    assert_eq!(proxy.seen(Route::PutSliverBatch).len(), 1, "asked once, then not again");
    assert_eq!(proxy.seen(Route::PutSliver).len(), slivers_of(&system, old).await);
    for index in (0..system.nodes.len()).filter(|index| *index != old) {
        assert!(system.proxy(index).seen(Route::PutSliver).is_empty(), "node {index}");
    }
    assert!(client.read_blob(&stored.blob_id).await.unwrap().data == blob);
}

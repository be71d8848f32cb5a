//! Reads in batches: a node's slivers come in one request, each verified as a sliver fetched
//! alone is; a wrong sliver inside a batch is read around and its node named; a node without
//! the batched route (an older node) is asked one sliver per request.

use morsa_client::ReadOutcome;

use crate::common::System;
use crate::common::proxy::{Lie, Route};
use crate::lying_node::{fresh_read, primary_slivers_asked, system_with_blob};

/// Asserts that every node was asked for slivers in batches only.
fn only_batches(system: &System) {
    for index in 0..system.nodes.len() {
        assert!(system.proxy(index).seen(Route::GetSliver).is_empty(), "node {index}: no single sliver read");
    }
    let batched =
        (0..system.nodes.len()).filter(|index| !system.proxy(*index).seen(Route::GetSliverBatch).is_empty());
    assert!(batched.count() > 0, "slivers are read in batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_read_past_one_wrong_sliver_in_a_batch_names_its_node() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    let liar = system.owner_of_pair(&blob_id, 0).await;
    system.proxy(liar).lie(Route::GetSliverBatch, Lie::OneWrongSliver);
    let read = fresh_read(&system, &blob_id).await;
    assert!(read.data == blob, "the read is byte-identical");
    assert!(!read.bad_slivers.is_empty(), "the wrong sliver is reported");
    for bad in &read.bad_slivers {
        assert_eq!(bad.node, system.nodes[liar].address, "only the lying node is named: {bad:?}");
        assert!(primary_slivers_asked(&system, liar).contains(&bad.index), "{bad:?}");
    }
    assert!(read.failures.is_empty(), "{:?}", read.failures);
    only_batches(&system);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_read_past_one_wrong_sliver_in_a_batch_names_its_node() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    let liar = system.owner_of_pair(&blob_id, 0).await;
    system.proxy(liar).lie(Route::GetSliverBatch, Lie::OneWrongSliver);
    let client = system.client().await;
    let range = 10..u64::try_from(blob.len()).unwrap() - 10;
    let read: ReadOutcome = client.read_blob_range(&blob_id, range.clone()).await.unwrap();
    assert!(read.data[..] == blob[10..blob.len() - 10], "the range is byte-identical");
    assert_eq!(read.bad_slivers.len(), 1, "one wrong sliver: {:?}", read.bad_slivers);
    assert_eq!(read.bad_slivers[0].node, system.nodes[liar].address, "its node is named");
    only_batches(&system);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_batched_route_is_asked_one_sliver_per_request() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    let old = system.owner_of_pair(&blob_id, 0).await;
    system.proxy(old).lie(Route::GetSliverBatch, Lie::NoRoute);
    let client = system.client().await;
    let whole = client.read_blob(&blob_id).await.unwrap();
    assert!(whole.data == blob, "the read is byte-identical");
    assert!(whole.failures.is_empty() && whole.bad_slivers.is_empty(), "{whole:?}");
    let range = client.read_blob_range(&blob_id, 0..u64::try_from(blob.len()).unwrap()).await.unwrap();
    assert!(range.data == blob, "the range read is byte-identical");
    assert!(range.failures.is_empty() && range.bad_slivers.is_empty(), "{range:?}");
    let proxy = system.proxy(old);
    let tried = proxy.seen(Route::GetSliverBatch).len();
    assert!(tried >= 1, "the route was tried");
    assert!(!proxy.seen(Route::GetSliver).is_empty(), "the slivers came one per request");
    client.read_blob_range(&blob_id, 0..1000).await.unwrap();
    client.read_blob(&blob_id).await.unwrap();
    assert_eq!(proxy.seen(Route::GetSliverBatch).len(), tried, "the route is not tried again");
    for index in (0..system.nodes.len()).filter(|index| *index != old) {
        assert!(system.proxy(index).seen(Route::GetSliver).is_empty(), "node {index}: batches only");
    }
}

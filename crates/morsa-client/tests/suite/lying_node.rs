//! The client against storage nodes that lie or stall. Each node of the system sits behind a
//! proxy whose address is the one the committee lists; a test tells one proxy to serve wrong
//! metadata, a wrong sliver, a sliver of another blob, a truncated answer, or nothing at all.
//! Reads must come back byte-identical, name the node that misbehaved, and get what they need
//! from other nodes; stores must certify without the stalled node and name nodes that fail.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::proxy::{Lie, Route, sliver_of_path, slivers_of_batch_path};
use common::{System, data};
use morsa_client::{Client, Error, ReadOutcome, StoreOptions, StoredHow};
use redstuff::BlobId;

const N: u16 = 13;
const BLOB_LEN: usize = 200_000;

/// A system of `nodes` nodes behind proxies, with one blob stored.
pub(crate) async fn system_with_blob(nodes: usize) -> (System, BlobId, Vec<u8>) {
    let system = System::start_behind_proxies(nodes, N).await;
    let blob = data(BLOB_LEN, 11);
    let client = system.client().await;
    let stored = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    assert!(client.finish_uploads(Duration::from_secs(30)).await.is_empty());
    (system, stored.blob_id, blob)
}

/// Reads with a client that has no history of the nodes' speed, so it asks them in
/// committee order.
pub(crate) async fn fresh_read(system: &System, blob_id: &BlobId) -> ReadOutcome {
    let client: Client = system.client().await;
    client.read_blob(blob_id).await.unwrap()
}

/// Primary sliver indices node `index` was asked for, alone or in batches.
pub(crate) fn primary_slivers_asked(system: &System, index: usize) -> Vec<usize> {
    let proxy = system.proxy(index);
    let batched =
        proxy.seen(Route::GetSliverBatch).iter().map(|path| slivers_of_batch_path(path)).collect::<Vec<_>>();
    proxy
        .seen(Route::GetSliver)
        .iter()
        .map(|path| sliver_of_path(path))
        .map(|(pair, kind)| (vec![pair], kind))
        .chain(batched)
        .filter(|(_, kind)| kind == "primary")
        .flat_map(|(pairs, _)| pairs)
        .collect()
}

/// Asserts that a read past the node `liar` that served bad slivers is intact, names `liar`
/// (and only it) for every bad sliver, and fetched primary slivers from the other nodes
/// beyond the systematic ones it first asks for.
async fn assert_bad_slivers_read_around(system: &System, liar: usize, read: &ReadOutcome, blob: &[u8]) {
    assert!(read.data == blob, "the read is byte-identical");
    let liar_address = &system.nodes[liar].address;
    assert!(!read.bad_slivers.is_empty(), "the bad slivers are reported");
    for bad in &read.bad_slivers {
        assert_eq!(&bad.node, liar_address, "only the lying node is named: {bad:?}");
        assert!(primary_slivers_asked(system, liar).contains(&bad.index), "{bad:?}");
    }
    let kp = redstuff::EncodingConfig::new(N).unwrap().kp();
    let fallback = (0..system.nodes.len())
        .filter(|node| *node != liar)
        .flat_map(|node| primary_slivers_asked(system, node))
        .filter(|index| *index >= kp)
        .count();
    assert!(fallback > 0, "other nodes are asked for slivers beyond the systematic ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serving_wrong_or_truncated_metadata_are_named_and_others_asked() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    // A fresh client asks member 0 first, then member 1 (on failure or when slow); member 2
    // is asked only after both.
    let truncating = system.node_of_member(0).await;
    let lying = system.node_of_member(1).await;
    system.proxy(truncating).lie(Route::GetMetadata, Lie::Truncated);
    system.proxy(lying).lie(Route::GetMetadata, Lie::WrongMetadata);

    let read = fresh_read(&system, &blob_id).await;
    assert!(read.data == blob, "the read is byte-identical");
    for (node, what) in [(truncating, "truncated"), (lying, "wrong")] {
        let address = &system.nodes[node].address;
        assert!(
            read.failures.iter().any(|failure| &failure.node == address),
            "the node serving {what} metadata is named: {:?}",
            read.failures
        );
    }
    let wrong = read.failures.iter().find(|failure| failure.node == system.nodes[lying].address).unwrap();
    assert!(wrong.reason.contains("bad metadata"), "{wrong}");
    assert_eq!(read.failures.len(), 2, "no honest node is named: {:?}", read.failures);
    let honest_asked = (0..system.nodes.len())
        .filter(|node| ![truncating, lying].contains(node))
        .any(|node| !system.proxy(node).seen(Route::GetMetadata).is_empty());
    assert!(honest_asked, "an honest node is asked for the metadata");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serving_a_wrong_sliver_is_named_and_read_around() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    // The holder of primary sliver 0, a systematic one that every read asks for first.
    let liar = system.owner_of_pair(&blob_id, 0).await;
    system.proxy(liar).lie_on_sliver_reads(Lie::WrongSliver);
    let read = fresh_read(&system, &blob_id).await;
    assert_bad_slivers_read_around(&system, liar, &read, &blob).await;
    assert!(read.failures.is_empty(), "{:?}", read.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serving_a_sliver_of_another_blob_is_named_and_read_around() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    // Another blob of the same size: its slivers have the same shape and indices.
    let other = redstuff::encode(redstuff::EncodingConfig::new(N).unwrap(), &data(BLOB_LEN, 12)).unwrap();
    let liar = system.owner_of_pair(&blob_id, 0).await;
    system.proxy(liar).lie_on_sliver_reads(Lie::SliverOf(Arc::new(other)));
    let read = fresh_read(&system, &blob_id).await;
    assert_bad_slivers_read_around(&system, liar, &read, &blob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_sending_truncated_slivers_is_named_and_read_around() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    let liar = system.owner_of_pair(&blob_id, 0).await;
    system.proxy(liar).lie_on_sliver_reads(Lie::Truncated);
    let read = fresh_read(&system, &blob_id).await;
    assert!(read.data == blob, "the read is byte-identical");
    assert_eq!(read.failures.len(), 1, "{:?}", read.failures);
    assert_eq!(read.failures[0].node, system.nodes[liar].address);
    let kp = redstuff::EncodingConfig::new(N).unwrap().kp();
    let fallback = (0..system.nodes.len())
        .filter(|node| *node != liar)
        .flat_map(|node| primary_slivers_asked(&system, node))
        .any(|index| index >= kp);
    assert!(fallback, "other nodes are asked for slivers beyond the systematic ones");
}

/// A node that never answers is not waited for: the read asks other nodes and finishes while
/// the stalled requests are still open. (Were it waited for, the request would time out and
/// the node would be named as failed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_ask_other_nodes_when_one_stalls() {
    let (system, blob_id, blob) = system_with_blob(4).await;
    let stalls_metadata = system.node_of_member(0).await;
    let stalls_slivers = system.owner_of_pair(&blob_id, 0).await;
    system.proxy(stalls_metadata).lie(Route::GetMetadata, Lie::Stall);
    system.proxy(stalls_slivers).lie_on_sliver_reads(Lie::Stall);

    let read = fresh_read(&system, &blob_id).await;
    assert!(read.data == blob, "the read is byte-identical");
    assert!(system.proxy(stalls_metadata).stalled() >= 1, "the metadata request to the first node was held");
    assert!(system.proxy(stalls_slivers).stalled() >= 1, "a sliver request was held");
    assert!(read.failures.is_empty(), "nothing timed out, so nothing failed: {:?}", read.failures);
    let metadata_elsewhere = (0..system.nodes.len())
        .filter(|node| *node != stalls_metadata)
        .any(|node| !system.proxy(node).seen(Route::GetMetadata).is_empty());
    assert!(metadata_elsewhere, "another node was asked for the metadata");
    let kp = redstuff::EncodingConfig::new(N).unwrap().kp();
    let fallback = (0..system.nodes.len())
        .filter(|node| *node != stalls_slivers)
        .flat_map(|node| primary_slivers_asked(&system, node))
        .any(|index| index >= kp);
    assert!(fallback, "other nodes are asked for slivers beyond the systematic ones");
}

/// The first wave of uploads (the nodes that make a quorum) includes a node that never
/// acknowledges an upload of slivers (a small blob's metadata goes with them): the store starts the other nodes and certifies
/// without waiting for it to time out, and the stalled node is left uploading in the
/// background. (Had the store waited, its uploads would have failed and been named in
/// `left_behind`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_switches_away_from_a_stalled_first_wave() {
    let system = System::start_behind_proxies(7, N).await;
    // A fresh client's first wave starts with committee member 0.
    let stalled = system.node_of_member(0).await;
    system.proxy(stalled).stall_sliver_uploads();
    let client = system.client().await;
    let blob = data(BLOB_LEN, 13);
    let stored = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    assert!(matches!(stored.how, StoredHow::NewlyCertified { .. }), "{stored:?}");
    assert!(system.proxy(stalled).stalled() >= 1, "the node was in the first wave and stalled");
    let address = &system.nodes[stalled].address;
    assert!(
        stored.left_behind.iter().all(|failure| &failure.node != address),
        "certified before the stalled node's uploads failed: {:?}",
        stored.left_behind
    );
    let cut = client.finish_uploads(Duration::ZERO).await;
    let named = cut.iter().find(|failure| &failure.node == address);
    assert!(named.is_some_and(|failure| failure.reason.contains("still uploading")), "{cut:?}");
    assert!(fresh_read(&system, &stored.blob_id).await.data == blob);
}

/// Nodes holding more than f shards are down: no quorum can confirm, and the error names
/// every node that is down (and no other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_more_than_f_shards_down_fails_naming_each_failed_node() {
    let mut system = System::start(7, N).await;
    let committee = system.committee().await;
    let f = redstuff::EncodingConfig::new(N).unwrap().f();
    let (mut down, mut weight) = (Vec::new(), 0);
    for member in &committee.members {
        if weight <= f {
            weight += member.shards.len();
            down.push(system.nodes.iter().position(|node| node.address == member.address).unwrap());
        }
    }
    assert!(weight > f);
    for node in &down {
        system.stop_node(*node).await;
    }
    let client = system.client().await;
    let error = client.store_blob(data(BLOB_LEN, 14), &StoreOptions::default()).await.unwrap_err();
    let Error::NoQuorum { failures, weight: confirmed, needed, .. } = &error else {
        panic!("expected no quorum, got {error}");
    };
    assert_eq!(*confirmed, usize::from(N) - weight, "every node that is up confirmed");
    assert!(*confirmed < *needed);
    let message = error.to_string();
    for node in &down {
        let address = &system.nodes[*node].address;
        assert_eq!(failures.iter().filter(|failure| &failure.node == address).count(), 1, "{failures:?}");
        assert!(message.contains(address.as_str()), "the message names {address}: {message}");
    }
    assert_eq!(failures.len(), down.len(), "only the nodes that are down: {failures:?}");
}

//! The client against a whole system in one process (real HTTP on loopback): stores and
//! reads back byte-identical data, also with nodes down, and reads ranges.

use crate::common;

use std::time::Duration;

use common::{System, data};
use morsa_client::{Error, StoreOptions, StoredHow};

const N: u16 = 13;

fn slice<'a>(blob: &'a [u8], range: &std::ops::Range<u64>) -> &'a [u8] {
    &blob[usize::try_from(range.start).unwrap()..usize::try_from(range.end).unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_of_every_size_come_back_byte_identical() {
    let system = System::start(4, N).await;
    let client = system.client().await;
    for len in [0, 1, 1000, (1 << 20) + 1] {
        let blob = data(len, 1);
        let stored = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
        assert!(matches!(stored.how, StoredHow::NewlyCertified { .. }), "{len}: {stored:?}");
        assert!(stored.left_behind.is_empty(), "{len}: {:?}", stored.left_behind);
        assert!(client.finish_uploads(std::time::Duration::from_secs(30)).await.is_empty());
        let read = client.read_blob(&stored.blob_id).await.unwrap();
        assert_eq!(read.data.len(), len);
        assert!(read.data == blob, "{len} bytes differ");
        assert!(read.bad_slivers.is_empty() && read.failures.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_certified_for_long_enough_is_not_uploaded_again() {
    let system = System::start(4, N).await;
    let client = system.client().await;
    let blob = data(5000, 2);
    let first = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    let again = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    let StoredHow::NewlyCertified { object } = first.how else { panic!("{:?}", first.how) };
    assert_eq!(again.how, StoredHow::AlreadyCertified { object }, "the caller's own object covers it");
    assert_eq!(again.blob_id, first.blob_id);
    let longer = StoreOptions { epochs: 20, ..StoreOptions::default() };
    let extended = client.store_blob(blob, &longer).await.unwrap();
    assert!(matches!(extended.how, StoredHow::NewlyCertified { .. }));
    assert_eq!(client.list_blobs().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nodes_holding_f_shards_down_stores_and_reads_succeed() {
    let mut system = System::start(7, N).await;
    let down = system.nodes_holding_at_most_f().await;
    assert!(!down.is_empty());
    let client = system.client().await;
    let before = data(300_000, 3);
    let stored_before = client.store_blob(before.clone(), &StoreOptions::default()).await.unwrap();
    for node in &down {
        system.stop_node(*node).await;
    }
    let during = data(200_000, 4);
    let stored_during = client.store_blob(during.clone(), &StoreOptions::default()).await.unwrap();
    let late = client.finish_uploads(std::time::Duration::from_secs(30)).await;
    let failed: Vec<_> = stored_during.left_behind.iter().chain(&late).collect();
    assert_eq!(failed.len(), down.len(), "{failed:?}");
    for node in &down {
        assert!(failed.iter().any(|failure| failure.node == system.nodes[*node].address), "{failed:?}");
    }
    for (stored, expected) in [(&stored_before, &before), (&stored_during, &during)] {
        let read = client.read_blob(&stored.blob_id).await.unwrap();
        assert!(read.data == *expected);
        let range = client.read_blob_range(&stored.blob_id, 1000..51_000).await.unwrap();
        assert!(range.data == expected[1000..51_000]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_equal_the_slice_with_and_without_the_systematic_nodes() {
    let mut system = System::start(4, N).await;
    let client = system.client().await;
    let blob = data(100_003, 5);
    let stored = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    let ranges = [0..0, 0..1, 17..4113, 50_000..100_003, 99_999..100_003, 0..100_003];
    for range in ranges.clone() {
        let read = client.read_blob_range(&stored.blob_id, range.clone()).await.unwrap();
        assert!(read.data == slice(&blob, &range), "{range:?}");
    }
    let error = client.read_blob_range(&stored.blob_id, 5..100_004).await.unwrap_err();
    assert!(matches!(error, Error::BadRange { len: 100_003, .. }), "{error}");
    // One node down: the rows it held are rebuilt from the other nodes' recovery symbols.
    system.stop_node(0).await;
    for range in ranges {
        let read = client.read_blob_range(&stored.blob_id, range.clone()).await.unwrap();
        assert!(read.data == slice(&blob, &range), "{range:?} with a node down");
        if range == (0..100_003) {
            // Every row is read, so the stopped node was asked and reported.
            assert_eq!(read.failures.len(), 1, "{:?}", read.failures);
            assert_eq!(read.failures[0].node, system.nodes[0].address);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_blob_is_reported_as_not_stored() {
    let system = System::start(4, N).await;
    let client = system.client().await;
    let unknown = redstuff::BlobId::from_root(10, &[9; 32]);
    let error = client.read_blob(&unknown).await.unwrap_err();
    assert!(error.to_string().contains("not stored"), "{error}");
}

/// A node that never acknowledges an upload of slivers is still uploading when
/// the blob is certified; cutting the uploads short names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_cut_short_after_certification_name_their_nodes() {
    let system = System::start_behind_proxies(7, N).await;
    // The last member: a fresh client's first wave makes a quorum without it.
    let stalled = system.node_of_member(6).await;
    system.proxy(stalled).stall_sliver_uploads();
    let client = system.client().await;
    let stored = client.store_blob(data(2 << 20, 6), &StoreOptions::default()).await.unwrap();
    assert!(matches!(stored.how, StoredHow::NewlyCertified { .. }), "{stored:?}");
    // Certified with a quorum; the other nodes' uploads are cut at once.
    let cut = client.finish_uploads(std::time::Duration::ZERO).await;
    for failure in &cut {
        assert!(system.nodes.iter().any(|node| node.address == failure.node), "{failure}");
        assert!(failure.reason.contains("still uploading") && failure.shards > 0, "{failure}");
    }
    assert!(
        cut.iter().any(|failure| failure.node == system.nodes[stalled].address),
        "the stalled node is named: {cut:?}"
    );
    assert!(client.finish_uploads(std::time::Duration::ZERO).await.is_empty(), "each is named once");
    // Whatever was cut, the blob reads back.
    assert_eq!(client.read_blob(&stored.blob_id).await.unwrap().data, data(2 << 20, 6));
}

/// Stores on one client do not wait for one another's trailing uploads: with a node that
/// never acknowledges an upload of slivers, a second store is certified while the first one's uploads to
/// that node still run (the first store's used to hold the second for up to two minutes),
/// and cutting the uploads names the node once for each blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_does_not_wait_for_the_trailing_uploads_of_earlier_stores() {
    let system = System::start_behind_proxies(7, N).await;
    // The last member: a fresh client's first wave makes a quorum without it.
    let stalled = system.node_of_member(6).await;
    system.proxy(stalled).stall_sliver_uploads();
    let client = system.client().await;
    let options = StoreOptions::default();
    let first = client.store_blob(data(200_000, 7), &options).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(60), client.store_blob(data(200_000, 8), &options))
        .await
        .expect("the second store waited for the first one's trailing uploads")
        .unwrap();
    for stored in [&first, &second] {
        assert!(matches!(stored.how, StoredHow::NewlyCertified { .. }), "{stored:?}");
    }
    let cut = client.finish_uploads(Duration::ZERO).await;
    let address = &system.nodes[stalled].address;
    let named =
        cut.iter().filter(|failure| &failure.node == address && failure.reason.contains("still uploading"));
    assert_eq!(named.count(), 2, "the stalled node is named for each blob: {cut:?}");
    assert!(client.read_blob(&first.blob_id).await.unwrap().data == data(200_000, 7));
    assert!(client.read_blob(&second.blob_id).await.unwrap().data == data(200_000, 8));
}

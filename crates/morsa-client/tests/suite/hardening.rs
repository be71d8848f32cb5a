//! Regression tests for data-path findings of the adversarial review (issue #10): a store
//! skipped because of another account's deletable object, and range reads that trusted the
//! columns of an inconsistently encoded blob.
#![allow(missing_docs, clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{System, data, eventually};
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::coord::{BlobStatusKind, Command, Transaction};
use morsa_api::node::NodeBlobState;
use morsa_client::{Client, Error, StoreOptions, StoredHow};
use morsa_core::{AccountKey, Certificate};
use redstuff::{BlobId, EncodingConfig, MetadataWithId, SliverType};

const N: u16 = 13;

/// A second funded account, paid for by the system's user.
async fn second_account(system: &System) -> AccountKey {
    let other = AccountKey::from_seed([42; 32]);
    let coord = CoordClient::new(&system.coordinator_url).unwrap();
    let nonce = coord.account(&system.user.id()).await.unwrap().nonce;
    let transfer = Command::Transfer { to: other.id(), amount: 1 << 40 };
    let transaction =
        Transaction { sender: system.user.id(), nonce, command: transfer }.sign(&system.user, common::CHAIN);
    coord.submit_transaction(&transaction).await.unwrap();
    other
}

/// Waits until every node has applied every event the coordinator has emitted so far.
async fn nodes_caught_up(system: &System) {
    let coord = CoordClient::new(&system.coordinator_url).unwrap();
    let count = coord.events(None, 0, 1).await.unwrap().count;
    let config = EncodingConfig::new(system.n_shards).unwrap();
    for node in &system.nodes {
        let client = NodeClient::new(&format!("http://{}", node.address), config).unwrap();
        eventually(
            || async { client.health().await.is_ok_and(|health| health.event_cursor >= count) },
            "the node has applied every event",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_store_of_the_same_file_survives_the_first_owner_deleting_it() {
    let system = System::start(4, N).await;
    let first = system.client().await;
    let second = Client::with_key(&system.coordinator_url, second_account(&system).await).await.unwrap();
    let blob = data(70_000, 9);

    let stored = first.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    let again = second.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    let StoredHow::NewlyCertified { object } = again.how else {
        panic!("another account's deletable object must not count as stored: {:?}", again.how)
    };
    let status = second.blob_status(&again.blob_id).await.unwrap();
    let owned = status.objects.iter().find(|summary| summary.object == object).unwrap();
    assert_eq!(owned.owner, second.account());
    assert!(owned.certified_epoch.is_some(), "the second account's object is certified: {status:?}");
    assert!(
        again.left_behind.is_empty() && second.finish_uploads(Duration::from_secs(20)).await.is_empty(),
        "every node confirmed from what it held or got"
    );

    first.delete(&stored.blob_id).await.unwrap();
    nodes_caught_up(&system).await;
    let status = second.blob_status(&again.blob_id).await.unwrap();
    assert_eq!(status.status, BlobStatusKind::Certified, "{status:?}");
    let config = EncodingConfig::new(N).unwrap();
    for node in &system.nodes {
        let client = NodeClient::new(&format!("http://{}", node.address), config).unwrap();
        let held = client.blob_status(&again.blob_id).await.unwrap();
        assert_eq!(
            held.status,
            NodeBlobState::Certified,
            "node {} still keeps the blob: {held:?}",
            node.address
        );
        assert!(held.fully_stored(), "node {} still holds its slivers: {held:?}", node.address);
    }
    assert_eq!(second.read_blob(&again.blob_id).await.unwrap().data, blob);

    // A store by the owner of a covering object, or over a permanent object, is skipped.
    let mine = second.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    assert_eq!(mine.how, StoredHow::AlreadyCertified { object });
    let permanent = StoreOptions { permanent: true, ..StoreOptions::default() };
    let kept = first.store_blob(blob.clone(), &permanent).await.unwrap();
    let StoredHow::NewlyCertified { object: forever } = kept.how else { panic!("{:?}", kept.how) };
    let skipped = second.store_blob(blob, &StoreOptions::default()).await.unwrap();
    assert!(
        skipped.how == StoredHow::AlreadyCertified { object }
            || skipped.how == StoredHow::AlreadyCertified { object: forever },
        "{:?}",
        skipped.how
    );
}

/// Stores `primary_data`'s primary slivers with `secondary_data`'s secondary slivers (same
/// size): every sliver verifies on its own against the metadata, which commits to exactly
/// these slivers, so the blob is certified although its rows and columns disagree.
async fn store_inconsistent(system: &System, primary_data: &[u8], secondary_data: &[u8]) -> BlobId {
    let config = EncodingConfig::new(system.n_shards).unwrap();
    let mut encoded = redstuff::encode(config, primary_data).unwrap();
    let other = redstuff::encode(config, secondary_data).unwrap();
    for (pair, foreign) in encoded.pairs.iter_mut().zip(other.pairs) {
        pair.secondary = foreign.secondary;
    }
    let size = u64::try_from(primary_data.len()).unwrap();
    let metadata = redstuff::metadata_for_pairs(config, size, &encoded.pairs).unwrap();
    let blob_id = *metadata.blob_id();

    let coord = CoordClient::new(&system.coordinator_url).unwrap();
    let key = &system.user;
    let mut nonce = coord.account(&key.id()).await.unwrap().nonce;
    let mut submit = async |command: Command| {
        let transaction = Transaction { sender: key.id(), nonce, command }.sign(key, common::CHAIN);
        nonce += 1;
        coord.submit_transaction(&transaction).await.unwrap().created
    };
    let reserve = Command::ReserveStorage { size: config.encoded_size(size).unwrap(), epochs: 3 };
    let storage = submit(reserve).await[0];
    let object = submit(Command::RegisterBlob {
        storage,
        blob_id,
        root_hash: metadata.metadata().root(),
        size,
        encoding_type: redstuff::ENCODING_TYPE_RS2,
        deletable: false,
    })
    .await[0];

    let committee = coord.committee().await.unwrap().current;
    let with_metadata = MetadataWithId { blob_id, metadata: metadata.metadata().clone() };
    let mut parts = Vec::new();
    for (member, info) in committee.members.iter().enumerate() {
        let client = NodeClient::new(&format!("http://{}", info.address), config).unwrap();
        eventually(
            || async {
                client
                    .blob_status(&blob_id)
                    .await
                    .is_ok_and(|status| status.status == NodeBlobState::Registered)
            },
            "the node has seen the registration",
        )
        .await;
        client.put_metadata(&blob_id, &with_metadata).await.unwrap();
        for shard in &info.shards {
            let pair = blob_id.pair_for_shard(usize::from(shard.0), usize::from(system.n_shards));
            let slivers = &encoded.pairs[pair];
            let index = u16::try_from(pair).unwrap();
            client.put_sliver(&blob_id, index, SliverType::Primary, &slivers.primary, false).await.unwrap();
            client
                .put_sliver(&blob_id, index, SliverType::Secondary, &slivers.secondary, false)
                .await
                .unwrap();
        }
        let confirmation = client.permanent_confirmation(&blob_id).await.unwrap();
        parts.push((u16::try_from(member).unwrap(), confirmation.signature));
    }
    let certificate = Certificate::aggregate(&parts).unwrap();
    submit(Command::CertifyBlob { object, certificate }).await;
    blob_id
}

/// Stops the node that holds the blob's first row (primary sliver 0); answers its address.
async fn stop_first_row_holder(system: &mut System, blob_id: &BlobId) -> String {
    let committee = CoordClient::new(&system.coordinator_url).unwrap().committee().await.unwrap().current;
    let shard = blob_id.shard_for_pair(0, usize::from(N));
    let holder =
        committee.members.iter().find(|member| member.shards.iter().any(|s| usize::from(s.0) == shard));
    let holder = holder.unwrap().address.clone();
    let index = system.nodes.iter().position(|node| node.address == holder).unwrap();
    system.stop_node(index).await;
    holder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_read_never_returns_bytes_a_full_read_would_not() {
    let mut system = System::start(4, N).await;
    let client = system.client().await;
    let size = 40_000;
    let rows_data = data(size, 1);
    let columns_data = data(size, 2);
    let blob_id = store_inconsistent(&system, &rows_data, &columns_data).await;
    let full = client.read_blob(&blob_id).await.unwrap().data;
    assert_eq!(full, rows_data, "a full read with every systematic node up returns the rows");

    // Stop the node holding the first row: the range must come from elsewhere.
    stop_first_row_holder(&mut system, &blob_id).await;

    let range = 10..200u64;
    match client.read_blob_range(&blob_id, range.clone()).await {
        Ok(read) => assert_eq!(
            read.data,
            full[10..200],
            "a range read returned bytes that a full read never would (the columns' data)"
        ),
        Err(Error::Inconsistent(id)) => assert_eq!(id, blob_id),
        Err(other) => panic!("the range read must answer the rows' bytes or fail as inconsistent: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_whose_row_node_is_down_is_rebuilt_and_equals_the_slice() {
    let mut system = System::start(4, N).await;
    let client = system.client().await;
    let blob = data(50_000, 5);
    let stored = client.store_blob(blob.clone(), &StoreOptions::default()).await.unwrap();
    assert!(client.finish_uploads(Duration::from_secs(20)).await.is_empty());
    let blob_id = stored.blob_id;
    let holder = stop_first_row_holder(&mut system, &blob_id).await;
    let config = EncodingConfig::new(N).unwrap();
    let row_len = u64::from(config.symbol_size(50_000).unwrap()) * u64::try_from(config.ks()).unwrap();
    for range in [0..1u64, 3..4_000, 0..50_000, 49_000..50_000] {
        let read = client.read_blob_range(&blob_id, range.clone()).await.unwrap();
        let (start, end) = (usize::try_from(range.start).unwrap(), usize::try_from(range.end).unwrap());
        assert_eq!(read.data, blob[start..end], "range {range:?}");
        assert!(read.bad_slivers.is_empty(), "{:?}", read.bad_slivers);
        assert!(
            read.failures.iter().any(|failure| failure.node == holder) == (range.start < row_len),
            "the stopped node is asked (and reported) exactly when the range has bytes of its row: {:?}",
            read.failures
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_never_pays_for_an_object_another_account_may_delete() {
    let system = System::start(4, N).await;
    let first = system.client().await;
    let second = Client::with_key(&system.coordinator_url, second_account(&system).await).await.unwrap();
    let stored = first.store_blob(data(3_000, 4), &StoreOptions::default()).await.unwrap();
    let balance = |client: &Client| {
        let account = client.account();
        let coord = CoordClient::new(&system.coordinator_url).unwrap();
        async move { coord.account(&account).await.unwrap().balance }
    };
    let before = balance(&second).await;
    let error = second.extend(&stored.blob_id, 2).await.unwrap_err();
    assert!(
        matches!(error, Error::Refused(ref refusal) if refusal.to_string().contains("morsa store")),
        "{error}"
    );
    assert_eq!(balance(&second).await, before, "nothing was paid");
    // The owner can.
    let end = first.extend(&stored.blob_id, 2).await.unwrap();
    assert_eq!(end.0, stored.end_epoch.0 + 2);
}

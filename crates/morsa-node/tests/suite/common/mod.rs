//! The fixture the router tests share: a node holding shards 0..5 of a 10-shard system, a blob
//! encoded for it, and helpers to call routes and upload.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use morsa_api::ErrorBody;
use morsa_api::coord::{Event, EventRecord};
use morsa_api::node as api;
use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ObjectId, ShardIndex};
use morsa_node::{Limits, Node, View};
use morsa_node::{Served, router};
use redstuff::wire::to_bcs;
use redstuff::{BlobId, EncodedBlob, EncodingConfig, MetadataWithId, SliverType};
use tower::ServiceExt;

pub mod cluster;

/// Shards of the system.
pub const N: u16 = 10;

/// A node, how it is served, and a blob encoded for it.
pub struct Fixture {
    pub node: Arc<Node>,
    pub served: Arc<Served>,
    pub encoded: EncodedBlob,
    _dir: tempfile::TempDir,
}

/// The code of the system.
pub fn config() -> EncodingConfig {
    EncodingConfig::new(N).unwrap()
}

/// A node holding shards 0..5 of a 10-shard system; another node holds 5..10. With
/// `register`, the fixture's blob is registered (permanent, until epoch 5).
pub fn fixture(register: bool) -> Fixture {
    let key = BlsSecretKey::from_seed([1; 32]);
    let other = BlsSecretKey::from_seed([2; 32]);
    let member = |key: &BlsSecretKey, shards: std::ops::Range<u16>| CommitteeMember {
        node_id: NodeId::from_public_key(&key.public_key()),
        public_key: key.public_key(),
        address: "127.0.0.1:1".into(),
        shards: shards.map(ShardIndex).collect(),
    };
    let committee =
        Committee { epoch: Epoch(1), n_shards: N, members: vec![member(&key, 0..5), member(&other, 5..10)] };
    let dir = tempfile::tempdir().unwrap();
    let store = morsa_store::NodeStore::open(&dir.path().join("node.redb")).unwrap();
    let node =
        Arc::new(Node::new(key, store, View { committee, next: None, zones: Default::default() }).unwrap());
    let blob: Vec<u8> = (0..5000u32).map(|i| u8::try_from(i % 251).unwrap()).collect();
    let encoded = redstuff::encode(config(), &blob).unwrap();
    if register {
        register_blob(&node, &encoded, 0, false);
    }
    let limits = Limits::default();
    let served = Served::new(Arc::clone(&node), &limits);
    Fixture { node, served, encoded, _dir: dir }
}

/// Applies event `seq`: the registration of `encoded`'s blob until epoch 5.
pub fn register_blob(node: &Node, encoded: &EncodedBlob, seq: u64, deletable: bool) {
    let event = Event::BlobRegistered {
        blob_id: *encoded.metadata.blob_id(),
        object: ObjectId([seq.to_le_bytes()[0]; 32]),
        size: encoded.metadata.unencoded_length(),
        encoded_size: 1,
        end_epoch: Epoch(5),
        deletable,
        epoch: Epoch(1),
    };
    node.apply_events(&[EventRecord::new(seq, 0, event, [0; 32])]).unwrap();
}

/// Applies event `seq`: the certification of `encoded`'s blob registered by [`register_blob`]
/// with event `registered`.
pub fn certify_blob(node: &Node, encoded: &EncodedBlob, seq: u64, registered: u64) {
    let event = Event::BlobCertified {
        blob_id: *encoded.metadata.blob_id(),
        object: ObjectId([registered.to_le_bytes()[0]; 32]),
        end_epoch: Epoch(5),
        deletable: false,
        epoch: Epoch(1),
    };
    node.apply_events(&[EventRecord::new(seq, 0, event, [0; 32])]).unwrap();
}

/// Sends `request` through the node's router.
pub async fn call(served: &Arc<Served>, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    send(router(Arc::clone(served), &Limits::default()), request).await
}

/// Sends `request` through `router`.
pub async fn send(router: Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

pub fn put(path: &str, body: Vec<u8>) -> Request<Body> {
    Request::put(path).header("content-type", "application/octet-stream").body(Body::from(body)).unwrap()
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// The code of an error body.
pub fn code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body).unwrap().code
}

pub fn metadata_bytes(encoded: &EncodedBlob) -> Vec<u8> {
    to_bcs(&MetadataWithId {
        blob_id: *encoded.metadata.blob_id(),
        metadata: encoded.metadata.metadata().clone(),
    })
}

/// The pairs of `blob_id` whose shard `node` owns.
pub fn pairs_owned(node: &Node, blob_id: &BlobId) -> Vec<u16> {
    let owned = node.owned_shards();
    (0..N)
        .filter(|pair| {
            owned
                .contains(&u16::try_from(blob_id.shard_for_pair(usize::from(*pair), usize::from(N))).unwrap())
        })
        .collect()
}

/// The pairs whose shard the fixture node owns.
pub fn owned_pairs(fixture: &Fixture) -> Vec<u16> {
    pairs_owned(&fixture.node, fixture.encoded.metadata.blob_id())
}

/// Uploads the fixture blob's metadata and every sliver the node owns, through the router.
pub async fn upload_everything(fixture: &Fixture) {
    let blob_id = *fixture.encoded.metadata.blob_id();
    let (status, _) =
        call(&fixture.served, put(&api::metadata_path(&blob_id), metadata_bytes(&fixture.encoded))).await;
    assert_eq!(status, StatusCode::OK);
    for pair in owned_pairs(fixture) {
        let slivers = &fixture.encoded.pairs[usize::from(pair)];
        for (kind, sliver) in
            [(SliverType::Primary, &slivers.primary), (SliverType::Secondary, &slivers.secondary)]
        {
            let (status, body) =
                call(&fixture.served, put(&api::sliver_path(&blob_id, pair, kind), to_bcs(sliver))).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        }
    }
}

/// Stores `encoded`'s metadata and every sliver `node` owns of it, with the node's methods (the
/// blob must be registered).
pub fn store_blob(node: &Node, encoded: &EncodedBlob) {
    let blob_id = *encoded.metadata.blob_id();
    node.store_metadata(&blob_id, &metadata_bytes(encoded)).unwrap();
    for pair in pairs_owned(node, &blob_id) {
        let slivers = &encoded.pairs[usize::from(pair)];
        node.store_sliver(&blob_id, pair, SliverType::Primary, to_bcs(&slivers.primary).into()).unwrap();
        node.store_sliver(&blob_id, pair, SliverType::Secondary, to_bcs(&slivers.secondary).into()).unwrap();
    }
}

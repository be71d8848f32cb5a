//! Shard migration on in-memory nodes: the previous owner's pages and refusals, the new
//! owner's verification and saved position.

use morsa_api::client::ClientError;
use morsa_api::coord::{Event, EventRecord};
use morsa_api::node::{ShardPage, ShardPageItem, ShardPageRequest, ShardStatus};
use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ObjectId, ShardIndex};
use morsa_store::{NodeStore, SliverKind, SliverWrite};
use redstuff::wire::to_bcs;
use redstuff::{BlobId, EncodingConfig, MetadataWithId};

use crate::error::NodeError;
use crate::node::shard_book::{Gain, ShardBook};
use crate::node::{Node, View};

const N: u16 = 10;

fn key(seed: u8) -> BlsSecretKey {
    BlsSecretKey::from_seed([seed; 32])
}

fn id(key: &BlsSecretKey) -> NodeId {
    NodeId::from_public_key(&key.public_key())
}

fn member(key: &BlsSecretKey, shards: std::ops::Range<u16>) -> CommitteeMember {
    CommitteeMember {
        node_id: id(key),
        public_key: key.public_key(),
        address: "127.0.0.1:9".into(),
        shards: shards.map(ShardIndex).collect(),
    }
}

/// Epoch 1: A holds shards 0–4, B 5–9. Epoch 2: A keeps 0–2, B takes 3 and 4.
fn committees() -> (Committee, Committee) {
    let (a, b) = (key(1), key(2));
    let previous =
        Committee { epoch: Epoch(1), n_shards: N, members: vec![member(&a, 0..5), member(&b, 5..10)] };
    let current =
        Committee { epoch: Epoch(2), n_shards: N, members: vec![member(&a, 0..3), member(&b, 3..10)] };
    (previous, current)
}

fn record(seq: u64, event: Event) -> EventRecord {
    EventRecord { seq, time_ms: 0, event, prev_hash: [0; 32], hash: [0; 32] }
}

/// Events registering every blob of `blobs` (ID, size) and certifying those marked, then the
/// change to epoch 2.
fn history(blobs: &[(BlobId, u64, bool)]) -> Vec<EventRecord> {
    let mut events = Vec::new();
    for (index, (blob_id, size, certified)) in blobs.iter().enumerate() {
        let object = ObjectId([u8::try_from(index).unwrap(); 32]);
        let end_epoch = Epoch(50);
        events.push(Event::BlobRegistered {
            blob_id: *blob_id,
            object,
            size: *size,
            encoded_size: size * 10,
            end_epoch,
            deletable: false,
            epoch: Epoch(1),
        });
        if *certified {
            events.push(Event::BlobCertified {
                blob_id: *blob_id,
                object,
                end_epoch,
                deletable: false,
                epoch: Epoch(1),
            });
        }
    }
    events.push(Event::CommitteeSelected { committee: committees().1 });
    events.push(Event::EpochChangeStart { epoch: Epoch(2) });
    events.into_iter().enumerate().map(|(seq, event)| record(u64::try_from(seq).unwrap(), event)).collect()
}

fn node(seed: u8, dir: &tempfile::TempDir) -> Node {
    let store = NodeStore::open(&dir.path().join(format!("node{seed}.redb"))).unwrap();
    Node::new(key(seed), store, View { committee: committees().0, next: None, zones: Default::default() })
        .unwrap()
}

fn ask(seed: u8, epoch: u32, shard: u16, from: Option<BlobId>, max_blobs: u32) -> ShardPageRequest {
    ShardPageRequest::signed(&key(seed), Epoch(epoch), ShardIndex(shard), from, max_blobs)
}

fn ids(page: &ShardPage) -> Vec<u8> {
    page.items.iter().map(|item| item.blob_id.0[0]).collect()
}

#[test]
fn the_previous_owner_pages_a_moved_shard_in_blob_id_order_for_its_new_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(1, &dir);
    // Blob 4 is registered, not certified: not part of the shard to move.
    let blobs: Vec<_> = [1u8, 2, 3, 4, 5, 6].iter().map(|k| (BlobId([*k; 32]), 1000, *k != 4)).collect();
    a.apply_events(&history(&blobs)).unwrap();
    for (blob_id, _, _) in &blobs {
        a.store().put_metadata(&blob_id.0, &[blob_id.0[0]; 3]).unwrap();
        let primary = [blob_id.0[0], 1];
        a.store()
            .put_slivers(&[SliverWrite {
                blob_id: blob_id.0,
                shard: 3,
                kind: SliverKind::Primary,
                bytes: &primary,
            }])
            .unwrap();
    }
    assert_eq!(a.shard_status(3), ShardStatus::LockedToMove);
    assert!(!a.owned_shards().contains(&3));

    let first = a.shard_page(&ask(2, 2, 3, None, 2)).unwrap();
    assert_eq!((ids(&first), first.next), (vec![1, 2], Some(BlobId([3; 32]))));
    assert_eq!(
        first.items[0],
        ShardPageItem {
            blob_id: BlobId([1; 32]),
            metadata: Some(vec![1; 3]),
            primary: Some(vec![1, 1]),
            secondary: None
        }
    );
    // Resuming at the position the last page gave: the uncertified blob is passed over.
    let second = a.shard_page(&ask(2, 2, 3, first.next, 2)).unwrap();
    assert_eq!((ids(&second), second.next), (vec![3], Some(BlobId([5; 32]))));
    let last = a.shard_page(&ask(2, 2, 3, second.next, 2)).unwrap();
    assert_eq!((ids(&last), last.next), (vec![5, 6], None));

    let refused = |request: &ShardPageRequest| match a.shard_page(request) {
        Err(NodeError::NotShardsNewOwner { reason, .. }) => reason,
        other => panic!("served {request:?}: {other:?}"),
    };
    assert_eq!(refused(&ask(3, 2, 3, None, 2)), "the requester is not in the committee");
    assert_eq!(refused(&ask(2, 2, 0, None, 2)), "the committee gives the shard to another node");
    assert_eq!(refused(&ask(2, 2, 7, None, 2)), "this node does not keep the shard for it");
    assert_eq!(refused(&ask(2, 1, 3, None, 2)), "the epoch is over");
    let forged = ShardPageRequest { requester: id(&key(2)), ..ask(1, 2, 3, None, 2) };
    assert_eq!(refused(&forged), "the signature is not the requester's");
    let replayed = ShardPageRequest { from: Some(BlobId([5; 32])), ..ask(2, 2, 3, None, 2) };
    assert_eq!(refused(&replayed), "the signature is not the requester's");
    assert!(matches!(
        a.shard_page(&ask(2, 3, 3, None, 2)),
        Err(NodeError::EpochNotReached { asked: 3, current: 2 })
    ));
    assert!(matches!(a.shard_page(&ask(2, 2, 3, None, 0)), Err(NodeError::PageSize { .. })));
    assert!(matches!(a.shard_page(&ask(2, 2, 3, None, 257)), Err(NodeError::PageSize { .. })));

    // Once the change is done and a grace epoch has begun, the shard's data goes.
    assert!(a.release_locked_shards().unwrap().is_empty());
    let done = [record(100, Event::EpochChangeDone { epoch: Epoch(2) })];
    a.apply_events(&done).unwrap();
    assert!(a.release_locked_shards().unwrap().is_empty(), "the grace epoch has not begun");
    a.apply_events(&[record(101, Event::EpochChangeStart { epoch: Epoch(3) })]).unwrap();
    assert_eq!(a.release_locked_shards().unwrap(), [3, 4]);
    assert!(!a.store().has_sliver(&[1; 32], 3, SliverKind::Primary).unwrap());
    assert!(a.store().has_metadata(&[1; 32]).unwrap(), "metadata is not the shard's");
    assert!(matches!(
        a.shard_page(&ask(2, 3, 3, None, 2)),
        Err(NodeError::NotShardsNewOwner { reason: "this node does not keep the shard for it", .. })
    ));
}

#[test]
fn a_pulled_page_is_verified_sliver_by_sliver_and_its_position_saved() {
    let dir = tempfile::tempdir().unwrap();
    let b = node(2, &dir);
    let config = EncodingConfig::new(N).unwrap();
    let encoded: Vec<_> = [(3_000, 1), (5_000, 2)]
        .iter()
        .map(|(len, seed)| redstuff::encode(config, &sample_bytes(*len, *seed)).unwrap())
        .collect();
    let blobs: Vec<_> = encoded
        .iter()
        .map(|blob| (*blob.metadata.blob_id(), blob.metadata.unencoded_length(), true))
        .collect();
    b.apply_events(&history(&blobs)).unwrap();
    assert_eq!(b.shard_status(3), ShardStatus::ActiveSync);
    assert_eq!(b.moves().lock().gained[&3].from.as_ref().map(|(from, _)| *from), Some(id(&key(1))));
    // The repair scan leaves shards being pulled alone.
    let (missing, _) = b.missing_of(&blobs[0].0).unwrap();
    assert!(missing.iter().all(|(shard, _)| *shard != 3 && *shard != 4), "{missing:?}");

    let item = |blob: &redstuff::EncodedBlob, tamper: bool| {
        let blob_id = *blob.metadata.blob_id();
        let pair = &blob.pairs[blob_id.pair_for_shard(3, usize::from(N))];
        let mut primary = to_bcs(&pair.primary);
        if tamper {
            *primary.last_mut().unwrap() ^= 1;
        }
        ShardPageItem {
            blob_id,
            metadata: Some(to_bcs(&MetadataWithId { blob_id, metadata: blob.metadata.metadata().clone() })),
            primary: Some(primary),
            secondary: (!tamper).then(|| to_bcs(&pair.secondary)),
        }
    };
    let next = Some(BlobId([0xff; 32]));
    let page = ShardPage { items: vec![item(&encoded[0], false), item(&encoded[1], true)], next };
    let outcome = b.store_page(3, page, next).unwrap();
    assert_eq!((outcome.slivers, outcome.left), (2, 2));
    assert_eq!(b.store().sliver_kinds_held(&blobs[0].0.0, 3).unwrap(), (true, true));
    assert_eq!(b.store().sliver_kinds_held(&blobs[1].0.0, 3).unwrap(), (false, false));
    // The position is in the store: a restarted node resumes there.
    let saved = ShardBook::load(b.store()).lock().clone();
    assert_eq!((saved.gained[&3].position, saved.pages_pulled), (next, 1));

    // The last page: the shard is pulled, and what it lacks goes to the repair scan.
    b.store_page(3, ShardPage { items: Vec::new(), next: None }, None).unwrap();
    assert_eq!(b.moves().lock().gained[&3].state, Gain::Pulled);
    assert_eq!(b.shard_status(3), ShardStatus::Active);
    assert!(!b.pulls_finished(), "shard 4 is still being pulled");
    let (missing, _) = b.missing_of(&blobs[1].0).unwrap();
    assert!(missing.contains(&(3, SliverKind::Primary)), "{missing:?}");
    b.forget_gains(Epoch(2)).unwrap();
    assert!(b.moves().lock().gained.is_empty());
}

/// Deterministic bytes of length `len` from `seed`.
fn sample_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|index| u8::try_from(index % 251).unwrap().wrapping_mul(seed).wrapping_add(seed)).collect()
}

#[test]
fn only_refusals_make_a_pull_give_up_at_once() {
    use super::pull::refused_for_good;
    let http = |status: u16| ClientError::Http {
        status: axum::http::StatusCode::from_u16(status).unwrap(),
        body: morsa_api::ErrorBody::new("code", "message"),
    };
    for refusal in [http(403), http(400), http(421), ClientError::Decode("bad".into())] {
        assert!(refused_for_good(&refusal), "{refusal}");
    }
    for transient in
        [http(409), http(429), http(503), ClientError::Timeout, ClientError::Transport("down".into())]
    {
        assert!(!refused_for_good(&transient), "{transient}");
    }
}

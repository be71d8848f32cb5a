//! Claims of docs/NODE.md that no other test exercised (issue #20, node side): the bound on
//! on-demand rebuilds, the certification inbox's overflow, a peer's symbols from slivers it
//! does not hold, and bogus attestations while a blob is proven invalid.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use morsa_api::node as api;
use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ShardIndex};
use morsa_node::Served;
use morsa_node::{Limits, Node, RepairConfig, View};
use morsa_store::SliverKind;
use redstuff::wire::to_bcs;
use redstuff::{BlobId, SliverType};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::common;

use common::cluster::{Cluster, Mode, blob, pairs_of, test_repair};
use common::{N, call, certify_blob, get, metadata_bytes, pairs_owned, register_blob};

/// A stand-in peer that holds every request it gets until released, then refuses it; it
/// counts the requests and the most it held at once, and keeps their URIs.
struct Gate {
    uris: std::sync::Mutex<Vec<String>>,
    arrived: AtomicUsize,
    held: AtomicUsize,
    most_held: AtomicUsize,
    arrival: Notify,
    release: watch::Sender<bool>,
}

impl Gate {
    /// Starts the stand-in on 127.0.0.1; returns it and its address.
    async fn start() -> (Arc<Self>, String) {
        let gate = Arc::new(Self {
            uris: std::sync::Mutex::default(),
            arrived: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            most_held: AtomicUsize::new(0),
            arrival: Notify::new(),
            release: watch::channel(false).0,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let state = Arc::clone(&gate);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let gate = Arc::clone(&state);
            async move {
                gate.uris.lock().unwrap().push(uri.to_string());
                let held = gate.held.fetch_add(1, Ordering::SeqCst) + 1;
                gate.most_held.fetch_max(held, Ordering::SeqCst);
                gate.arrived.fetch_add(1, Ordering::SeqCst);
                gate.arrival.notify_waiters();
                let mut released = gate.release.subscribe();
                released.wait_for(|released| *released).await.unwrap();
                gate.held.fetch_sub(1, Ordering::SeqCst);
                StatusCode::SERVICE_UNAVAILABLE
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (gate, address)
    }

    /// Waits until at least `count` requests arrived, for at most `within`; whether they did.
    async fn arrivals(&self, count: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.arrival.notified();
            if self.arrived.load(Ordering::SeqCst) >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.arrived.load(Ordering::SeqCst) >= count;
            }
        }
    }
}

/// A node holding shards 0..5 of a 10-shard system whose only peer (shards 5..10) is at
/// `peer`, served with `repair`.
fn lone_node(peer: &str, repair: RepairConfig) -> (Arc<Node>, Arc<Served>, tempfile::TempDir) {
    let key = BlsSecretKey::from_seed([1; 32]);
    let other = BlsSecretKey::from_seed([2; 32]);
    let member = |key: &BlsSecretKey, shards: std::ops::Range<u16>, address: &str| CommitteeMember {
        node_id: NodeId::from_public_key(&key.public_key()),
        public_key: key.public_key(),
        address: address.into(),
        shards: shards.map(ShardIndex).collect(),
    };
    let members = vec![member(&key, 0..5, "127.0.0.1:1"), member(&other, 5..10, peer)];
    let committee = Committee { epoch: Epoch(1), n_shards: N, members };
    let dir = tempfile::tempdir().unwrap();
    let store = morsa_store::NodeStore::open(&dir.path().join("node.redb")).unwrap();
    let node =
        Arc::new(Node::new(key, store, View { committee, next: None, zones: Default::default() }).unwrap());
    let served = Served::new(Arc::clone(&node), &Limits { repair, ..Limits::default() });
    (node, served, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_rebuilds_beyond_max_on_demand_wait_for_a_permit() {
    let (gate, peer) = Gate::start().await;
    // Paused: no background repair competes with the reads.
    let repair = RepairConfig { max_on_demand: 2, paused: true, peer_timeout_ms: 60_000, ..test_repair() };
    let (node, served, _dir) = lone_node(&peer, repair);
    let encoded = blob(20_000, 11);
    let blob_id = *encoded.metadata.blob_id();
    // Every primary read must ask the peer.
    let pairs = holding_secondaries_only(&node, &encoded);
    assert_eq!(pairs.len(), 5);
    let reads: Vec<_> = pairs
        .iter()
        .map(|pair| {
            let (served, path) =
                (Arc::clone(&served), api::sliver_path(&blob_id, *pair, SliverType::Primary));
            tokio::spawn(async move { call(&served, get(&path)).await })
        })
        .collect();
    assert!(gate.arrivals(2, Duration::from_secs(30)).await, "no on-demand rebuild reached the peer");
    // Five reads are waiting, two rebuilds hold the permits: the other three must not reach the
    // peer while those two are held (bounded look; a broken bound shows up at once).
    assert!(
        !gate.arrivals(3, Duration::from_millis(500)).await,
        "{} rebuilds at once with max_on_demand = 2",
        gate.arrived.load(Ordering::SeqCst)
    );
    gate.release.send_replace(true);
    for read in reads {
        let (status, body) = read.await.unwrap();
        // The peer refused: the rebuild fails and the read says so (the sliver is queued).
        assert_eq!(status, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&body));
    }
    // The waiting reads were not refused: each got its turn and asked the peer.
    assert_eq!(gate.arrived.load(Ordering::SeqCst), 5);
    assert_eq!(gate.most_held.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_read_rebuilds_all_its_missing_slivers_in_one_rebuild() {
    let (gate, peer) = Gate::start().await;
    let repair = RepairConfig { max_on_demand: 4, paused: true, peer_timeout_ms: 60_000, ..test_repair() };
    let (node, served, _dir) = lone_node(&peer, repair);
    let encoded = blob(20_000, 12);
    let blob_id = *encoded.metadata.blob_id();
    // All five primaries must be rebuilt.
    let pairs = holding_secondaries_only(&node, &encoded);
    let query = api::SliverReadBatchQuery::new(&pairs).to_query_string();
    let path = format!("{}?{query}", api::sliver_read_batch_path(&blob_id, SliverType::Primary));
    let read = tokio::spawn({
        let served = Arc::clone(&served);
        async move { call(&served, get(&path)).await }
    });
    assert!(gate.arrivals(1, Duration::from_secs(30)).await, "no rebuild reached the peer");
    // One rebuild asks the peer once for the symbols of all five targets; one rebuild per
    // sliver would have asked up to `max_on_demand` at once (or, one after another, again after
    // each refusal below).
    assert!(
        !gate.arrivals(2, Duration::from_millis(500)).await,
        "{} requests for one batched read",
        gate.arrived.load(Ordering::SeqCst)
    );
    gate.release.send_replace(true);
    let (status, body) = read.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let items = api::parse_read_batch(&body, &pairs).unwrap();
    for item in items {
        // The peer refused: each sliver is refused as a single read of it would be.
        let api::ReadBatchItem::Refused(error) = item else { panic!("a sliver without its symbols") };
        assert_eq!(error.code, "not_found", "{error:?}");
        assert!(error.message.contains("could not be rebuilt"), "{error:?}");
    }
    assert_eq!(gate.arrived.load(Ordering::SeqCst), 1, "one rebuild, one request");
    // A read waits for it: the peer is asked to answer at its normal priority.
    let uris = gate.uris.lock().unwrap().clone();
    assert!(uris[0].starts_with(api::routes::RECOVERY_SYMBOLS_BATCH), "{uris:?}");
    assert!(uris[0].contains("waiting=true"), "{uris:?}");
}

/// `encoded`'s blob registered and certified on `node`, which holds its metadata and its
/// secondary slivers only (5 symbols towards each primary one, short of the 7 needed): every
/// primary sliver must be rebuilt with the peer's symbols. Answers the node's pairs.
fn holding_secondaries_only(node: &Node, encoded: &redstuff::EncodedBlob) -> Vec<u16> {
    let blob_id = *encoded.metadata.blob_id();
    register_blob(node, encoded, 0, false);
    certify_blob(node, encoded, 1, 0);
    node.store_metadata(&blob_id, &metadata_bytes(encoded)).unwrap();
    let pairs = pairs_owned(node, &blob_id);
    for pair in &pairs {
        let secondary = to_bcs(&encoded.pairs[usize::from(*pair)].secondary);
        node.store_sliver(&blob_id, *pair, SliverType::Secondary, secondary.into()).unwrap();
    }
    pairs
}

/// Most certifications the inbox holds (docs/NODE.md, "Bounds").
const MAX_INBOX: usize = 65_536;

#[test]
fn the_certification_inbox_keeps_its_bound_and_flags_the_overflow() {
    let inbox = morsa_node::testing::CertifiedInbox::default();
    for index in 0..=MAX_INBOX {
        let mut id = [0; 32];
        id[..8].copy_from_slice(&u64::try_from(index).unwrap().to_le_bytes());
        inbox.push(redstuff::BlobId(id), 0);
    }
    let (kept, overflowed) = inbox.take();
    assert_eq!(kept.len(), MAX_INBOX);
    assert!(overflowed, "a certification past the bound was lost without asking for a scan");
    assert_eq!(inbox.take(), (Vec::new(), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_certification_inbox_triggers_a_scan_that_finds_what_is_missing() {
    // Node 0 scans once at its start and then not for an hour, unless its inbox overflows.
    let rare = RepairConfig { scan_interval_ms: 3_600_000, ..test_repair() };
    let mut modes = vec![Mode::Serve(test_repair()); 5];
    modes[0] = Mode::Serve(rare);
    let mut cluster = Cluster::start(&[2, 2, 2, 2, 2], &modes).await;
    let encoded = blob(20_000, 12);
    let blob_id = *encoded.metadata.blob_id();
    cluster.write(&encoded, &[]);
    cluster.wait_health(0, "the first scan", |health| health.repair.caught_up).await;
    // Slivers lost behind the node's back: no certification, read or scrub points at them.
    let node = &cluster.members[0].node;
    for pair in pairs_of(&cluster, 0, &blob_id) {
        let shard = u16::try_from(blob_id.shard_for_pair(usize::from(pair), usize::from(N))).unwrap();
        assert!(node.store().delete_slivers(&blob_id.0, shard, SliverKind::Primary).unwrap());
    }
    let scans = cluster.health(0).await.repair.scans;
    // Certifications of unknown blobs, more than the inbox holds between two looks of the sync
    // loop (which empties it concurrently: push until a scan follows, within a bound).
    let mut next = 0u64;
    for _ in 0..20 {
        for _ in 0..=MAX_INBOX {
            let mut id = [0xEE; 32];
            id[..8].copy_from_slice(&next.to_le_bytes());
            next += 1;
            node.certified_inbox().push(redstuff::BlobId(id), 0);
        }
        if cluster.health(0).await.repair.scans > scans {
            break;
        }
    }
    let health = cluster
        .wait_health(0, "a scan to rebuild the lost slivers", |health| {
            health.repair.scans > scans && health.repair.rebuilt_slivers == 2 && health.repair.caught_up
        })
        .await;
    assert_eq!(health.repair.on_demand_slivers, 0);
    for pair in pairs_of(&cluster, 0, &blob_id) {
        let genuine = to_bcs(&encoded.pairs[usize::from(pair)].primary);
        assert_eq!(node.sliver_bytes(&blob_id, pair, SliverType::Primary).unwrap(), genuine);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_symbols_from_slivers_it_does_not_hold_is_caught_without_proofs() {
    // Node 1 (one shard) sends genuine symbols under another sliver's index; without it exactly
    // ks = 7 honest shards remain for node 0.
    let mut modes = vec![Mode::Serve(test_repair()); 6];
    modes[1] = Mode::Relabeller;
    let mut cluster = Cluster::start(&[2, 1, 2, 2, 2, 1], &modes).await;
    let encoded = blob(30_000, 13);
    let blob_id = *encoded.metadata.blob_id();
    cluster.write(&encoded, &[0]);
    let liar = cluster.committee.members[1].node_id;
    let health = cluster
        .wait_health(0, "node 0 to rebuild past the relabelling peer", |health| {
            health.repair.caught_up && health.repair.rebuilt_slivers == 4
        })
        .await;
    let node = &cluster.members[0].node;
    let mut rebuilt = 0;
    for pair in pairs_of(&cluster, 0, &blob_id) {
        let genuine = &encoded.pairs[usize::from(pair)];
        for (kind, sliver) in [
            (SliverType::Primary, to_bcs(&genuine.primary)),
            (SliverType::Secondary, to_bcs(&genuine.secondary)),
        ] {
            assert_eq!(node.sliver_bytes(&blob_id, pair, kind).unwrap(), sliver);
            rebuilt += u64::try_from(sliver.len()).unwrap();
        }
    }
    let repair = &health.repair;
    assert_eq!(repair.suspected_peers, [liar]);
    assert_eq!((repair.inconsistent_blobs, repair.failed_attempts), (0, 0));
    // Caught by the source check alone: the first, proofless answers rebuilt every sliver, so
    // no second round with proofs (which fetches every symbol again, proofs included) was
    // needed. About one sliver of symbols per sliver, plus the relabeller's dropped ones.
    assert!(repair.fetched_bytes <= rebuilt * 3 / 2, "{} fetched for {rebuilt}", repair.fetched_bytes);
}

/// A stand-in peer answering every request with `attestation` (JSON), once `open` holds; it
/// marks `answered` when it has.
async fn attester(
    attestation: api::InvalidBlobAttestation,
    open: watch::Receiver<bool>,
    answered: watch::Sender<bool>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let answered = Arc::new(answered);
    let app = axum::Router::new().fallback(move || {
        let (attestation, mut open, answered) = (attestation.clone(), open.clone(), Arc::clone(&answered));
        async move {
            open.wait_for(|open| *open).await.unwrap();
            let response = axum::response::IntoResponse::into_response(axum::Json(attestation));
            answered.send_replace(true);
            response
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bogus_attestation_does_not_count_towards_an_invalid_blob_certificate() {
    let key = |seed: u8| BlsSecretKey::from_seed([seed; 32]);
    // An inconsistently encoded blob: primary sliver 2 tampered, the metadata committing to it.
    let mut encoded = blob(5_000, 14);
    encoded.pairs[2].primary.symbols[0] ^= 1;
    let length = encoded.metadata.unencoded_length();
    encoded.metadata = redstuff::metadata_for_pairs(common::config(), length, &encoded.pairs).unwrap();
    let blob_id = *encoded.metadata.blob_id();
    let symbols: Vec<_> = encoded
        .pairs
        .iter()
        .map(|pair| {
            let expansion =
                redstuff::SliverExpansion::new(&encoded.metadata, SliverType::Secondary, &pair.secondary)
                    .unwrap();
            expansion.recovery_symbol(2).unwrap()
        })
        .collect();
    let Err(redstuff::RecoveryError::Inconsistent { proof, .. }) =
        encoded.metadata.rebuild_sliver(SliverType::Primary, 2, &symbols, redstuff::Proofs::Check)
    else {
        panic!("the tampered sliver rebuilt consistently");
    };
    // Member 1 (two shards) answers at once with an attestation whose signature is over another
    // blob; member 2 (six shards) attests honestly, but only after member 1 has answered (so the
    // forgery usually comes in first). Node 0 (two shards) with member 1 alone would reach
    // validity weight (4 of 10 shards).
    let mut forged = api::InvalidBlobAttestation::sign(&key(2), Epoch(1), BlobId([7; 32]));
    forged.blob_id = blob_id;
    let (open, opened) = watch::channel(true);
    let (bogus_answered, bogus_seen) = watch::channel(false);
    let bogus = attester(forged, opened, bogus_answered).await;
    let (honest_answered, _) = watch::channel(false);
    let honest =
        attester(api::InvalidBlobAttestation::sign(&key(3), Epoch(1), blob_id), bogus_seen, honest_answered)
            .await;
    let (committee, served, _dir) = invalid_blob_node(&encoded, &bogus, &honest);
    let invalidation = morsa_node::testing::collect_certificate(&served, blob_id, &proof).await.unwrap();
    // The forged attestation was not counted: the certificate is node 0's and member 2's.
    assert_eq!(invalidation.certificate.signers, [0, 2]);
    assert_eq!(invalidation.signers, 2);
    let message = morsa_core::invalid_blob_message(Epoch(1), &blob_id);
    committee
        .verify_certificate(&invalidation.certificate, &message, morsa_core::Threshold::Validity)
        .unwrap();
    // The same with member 2 down: the forged attestation alone must not make up the weight;
    // node 0 counts its own two shards only, and builds no certificate.
    let (_, served, _dir) = invalid_blob_node(&encoded, &bogus, "127.0.0.1:1");
    let error = morsa_node::testing::collect_certificate(&served, blob_id, &proof).await.unwrap_err();
    assert!(error.to_string().contains("attestations hold 2 of 10 shards"), "{error}");
    drop(open);
}

/// Node 0 (two shards) of a committee whose member 1 (two shards) is at `bogus` and member 2
/// (six shards) at `honest`, holding `encoded`'s registration and metadata.
fn invalid_blob_node(
    encoded: &redstuff::EncodedBlob,
    bogus: &str,
    honest: &str,
) -> (Committee, Arc<Served>, tempfile::TempDir) {
    let key = |seed: u8| BlsSecretKey::from_seed([seed; 32]);
    let member = |seed: u8, shards: std::ops::Range<u16>, address: &str| CommitteeMember {
        node_id: NodeId::from_public_key(&key(seed).public_key()),
        public_key: key(seed).public_key(),
        address: address.into(),
        shards: shards.map(ShardIndex).collect(),
    };
    let members = vec![member(1, 0..2, "127.0.0.1:1"), member(2, 2..4, bogus), member(3, 4..10, honest)];
    let committee = Committee { epoch: Epoch(1), n_shards: N, members };
    let dir = tempfile::tempdir().unwrap();
    let store = morsa_store::NodeStore::open(&dir.path().join("node.redb")).unwrap();
    let node = Arc::new(
        Node::new(
            key(1),
            store,
            View { committee: committee.clone(), next: None, zones: Default::default() },
        )
        .unwrap(),
    );
    common::register_blob(&node, encoded, 0, false);
    node.store_metadata(encoded.metadata.blob_id(), &metadata_bytes(encoded)).unwrap();
    let served = Served::new(node, &Limits { repair: test_repair(), ..Limits::default() });
    (committee, served, dir)
}

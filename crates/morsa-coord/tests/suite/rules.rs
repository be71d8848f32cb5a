//! The rules of the coordinator, one scenario at a time.

use crate::common;

use common::{CHAIN, EPOCH_MS, World};
use morsa_coord::{
    BlobStatusKind, Command, CommandError, EpochPhase, Event, Input, NodeReport, NodeReportKind, Transaction,
};
use morsa_core::{ObjectId, PersistenceType};
use redstuff::{BlobId, EncodingConfig};

const N: u16 = 10;

/// Reserves storage for a blob of `size` bytes and registers it; returns (blob ID, object).
fn register(world: &mut World, user: usize, size: u64, deletable: bool, seed: u8) -> (BlobId, ObjectId) {
    let encoded = EncodingConfig::new(N).unwrap().encoded_size(size).unwrap();
    let applied = world.transact(user, Command::ReserveStorage { size: encoded, epochs: 3 }).unwrap();
    let storage = applied.created[0];
    let root = [seed; 32];
    let blob_id = BlobId::from_root(size, &root);
    let command =
        Command::RegisterBlob { storage, blob_id, root_hash: root, size, encoding_type: 1, deletable };
    let applied = world.transact(user, command).unwrap();
    let object = applied.created[0];
    assert!(matches!(applied.events[0].event, Event::BlobRegistered { .. }));
    (blob_id, object)
}

fn confirmation(world: &World, blob_id: &BlobId, object: &ObjectId, deletable: bool) -> Vec<u8> {
    let persistence = match deletable {
        true => PersistenceType::Deletable { object_id: *object },
        false => PersistenceType::Permanent,
    };
    morsa_core::storage_confirmation_message(world.epoch(), blob_id, &persistence)
}

#[test]
fn a_blob_is_registered_certified_extended_and_reported() {
    let mut world = World::new(4, N);
    let (blob_id, object) = register(&mut world, 0, 5000, false, 1);
    assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Registered);

    let certificate = world.full_certificate(&confirmation(&world, &blob_id, &object, false));
    let applied = world.transact(0, Command::CertifyBlob { object, certificate }).unwrap();
    assert!(matches!(applied.events[0].event, Event::BlobCertified { .. }));
    let status = world.state.blob_status(&blob_id);
    assert_eq!(status.status, BlobStatusKind::Certified);
    assert!(status.permanent);
    let end = status.end_epoch.unwrap();

    world.transact(1, Command::ExtendBlob { object, epochs: 2 }).unwrap();
    assert_eq!(world.state.blob_status(&blob_id).end_epoch.unwrap().0, end.0 + 2);
}

#[test]
fn certificates_below_quorum_or_over_the_wrong_message_are_refused() {
    let mut world = World::new(4, N);
    let (blob_id, object) = register(&mut world, 0, 100, false, 2);
    let committee = world.state.committee.clone();
    // Find a set of members whose weight is below quorum (3w < 2n + 1).
    let mut order: Vec<usize> = (0..committee.members.len()).collect();
    order.sort_by_key(|member| committee.weight(*member));
    let mut weak = Vec::new();
    for member in order {
        if 3 * (weak.iter().map(|m| committee.weight(*m)).sum::<usize>() + committee.weight(member)) <= 2 * 10
        {
            weak.push(member);
        }
    }
    let message = confirmation(&world, &blob_id, &object, false);
    let certificate = world.certificate(&committee, &weak, &message);
    let refused = world.transact(0, Command::CertifyBlob { object, certificate }).unwrap_err();
    assert_eq!(refused.code(), "bad_certificate");

    let wrong = confirmation(&world, &blob_id, &object, true); // deletable form for a permanent blob
    let certificate = world.full_certificate(&wrong);
    let refused = world.transact(0, Command::CertifyBlob { object, certificate }).unwrap_err();
    assert_eq!(refused.code(), "bad_certificate");
    assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Registered);
}

#[test]
fn transactions_with_a_wrong_key_or_a_replayed_nonce_are_refused() {
    let mut world = World::new(4, N);
    let victim = world.users[0].id();
    // Signed by user 1 but claiming to be user 0.
    let forged = Transaction {
        sender: victim,
        nonce: 0,
        command: Command::Transfer { to: world.users[1].id(), amount: 5 },
    }
    .sign(&world.users[1], CHAIN);
    let error = world.submit(Input::Transaction(forged)).unwrap_err();
    assert!(matches!(error, CommandError::BadSignature(_)));

    // A signature for another deployment does not verify here.
    let elsewhere = Transaction {
        sender: victim,
        nonce: 0,
        command: Command::Transfer { to: world.users[1].id(), amount: 5 },
    }
    .sign(&world.users[0], "another-chain");
    assert!(matches!(
        world.submit(Input::Transaction(elsewhere)).unwrap_err(),
        CommandError::BadSignature(_)
    ));

    let transfer = Transaction {
        sender: victim,
        nonce: 0,
        command: Command::Transfer { to: world.users[1].id(), amount: 5 },
    }
    .sign(&world.users[0], CHAIN);
    world.submit(Input::Transaction(transfer.clone())).unwrap();
    let replayed = world.submit(Input::Transaction(transfer)).unwrap_err();
    assert!(matches!(replayed, CommandError::BadNonce { expected: 1, got: 0, .. }));
    assert_eq!(world.state.account(&victim).balance, 1_000_000 - 5);
}

#[test]
fn only_the_owner_deletes_and_only_deletable_blobs() {
    let mut world = World::new(4, N);
    let (blob_id, object) = register(&mut world, 0, 100, true, 3);
    let refused = world.transact(1, Command::DeleteBlob { object }).unwrap_err();
    assert!(matches!(refused, CommandError::NotOwner { .. }));
    let applied = world.transact(0, Command::DeleteBlob { object }).unwrap();
    assert!(matches!(applied.events[0].event, Event::BlobDeleted { .. }));
    assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Nonexistent);
    // The storage came back to the owner as a new resource.
    let returned = applied.created[0];
    assert_eq!(world.state.storage[&returned].owner, world.users[0].id());

    let (_, permanent) = register(&mut world, 0, 100, false, 4);
    let refused = world.transact(0, Command::DeleteBlob { object: permanent }).unwrap_err();
    assert_eq!(refused.code(), "blob_state");
}

#[test]
fn a_blob_id_that_does_not_follow_from_its_root_is_refused() {
    let mut world = World::new(4, N);
    let encoded = EncodingConfig::new(N).unwrap().encoded_size(10).unwrap();
    let storage = world.transact(0, Command::ReserveStorage { size: encoded, epochs: 1 }).unwrap().created[0];
    let command = Command::RegisterBlob {
        storage,
        blob_id: BlobId([9; 32]),
        root_hash: [1; 32],
        size: 10,
        encoding_type: 1,
        deletable: false,
    };
    assert!(matches!(world.transact(0, command).unwrap_err(), CommandError::BlobIdMismatch { .. }));
    // Too little storage for the encoded size.
    let small =
        world.transact(0, Command::ReserveStorage { size: encoded - 1, epochs: 1 }).unwrap().created[0];
    let command = Command::RegisterBlob {
        storage: small,
        blob_id: BlobId::from_root(10, &[1; 32]),
        root_hash: [1; 32],
        size: 10,
        encoding_type: 1,
        deletable: false,
    };
    assert_eq!(world.transact(0, command).unwrap_err().code(), "storage_mismatch");
}

#[test]
fn invalidation_needs_validity_weight_and_blocks_the_blob() {
    let mut world = World::new(4, N);
    let (blob_id, object) = register(&mut world, 0, 100, false, 5);
    let message = morsa_core::invalid_blob_message(world.epoch(), &blob_id);
    let certificate = world.full_certificate(&message);
    let applied = world.transact(2, Command::InvalidateBlob { blob_id, certificate }).unwrap();
    assert!(matches!(applied.events[0].event, Event::InvalidBlobId { .. }));
    assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Invalid);
    let certificate = world.full_certificate(&confirmation(&world, &blob_id, &object, false));
    assert_eq!(
        world.transact(0, Command::CertifyBlob { object, certificate }).unwrap_err().code(),
        "invalid_blob"
    );
}

#[test]
fn a_member_node_can_report_a_blob_invalid_with_the_same_certificate() {
    let mut world = World::new(4, N);
    let (blob_id, _) = register(&mut world, 0, 100, false, 6);
    let message = morsa_core::invalid_blob_message(world.epoch(), &blob_id);
    let certificate = world.full_certificate(&message);
    let member = world.state.committee.members[1].node_id;
    let key = world.node_keys[world.node_index(&member)].clone();
    let report = |node, signature, certificate| {
        Input::Node(NodeReport {
            node,
            report: NodeReportKind::InvalidBlob { blob_id, certificate },
            signature,
        })
    };
    // Signed by someone else, or over another message: refused.
    let stranger = morsa_core::BlsSecretKey::from_seed([77; 32]);
    let refused = world.submit(report(member, stranger.sign(&message), certificate.clone())).unwrap_err();
    assert!(matches!(refused, CommandError::BadNodeSignature(_)), "{refused:?}");
    let wrong = morsa_core::invalid_blob_message(world.epoch(), &BlobId([3; 32]));
    let refused = world.submit(report(member, key.sign(&wrong), certificate.clone())).unwrap_err();
    assert_eq!(refused.code(), "bad_node_signature");
    // A certificate without validity weight: refused.
    let committee = world.state.committee.clone();
    let thin = world.certificate(&committee, &[0], &message);
    let refused = world.submit(report(member, key.sign(&message), thin)).unwrap_err();
    assert_eq!(refused.code(), "bad_certificate");
    assert_ne!(world.state.blob_status(&blob_id).status, BlobStatusKind::Invalid);
    // The member's own report with the committee's certificate: the blob is invalid.
    let applied = world.submit(report(member, key.sign(&message), certificate.clone())).unwrap();
    assert!(matches!(applied.events[0].event, Event::InvalidBlobId { .. }));
    assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Invalid);
    let again = world.submit(report(member, key.sign(&message), certificate)).unwrap_err();
    assert_eq!(again.code(), "invalid_blob", "only once");
}

#[test]
fn epochs_advance_with_time_and_wait_for_a_quorum_of_nodes() {
    let mut world = World::new(4, N);
    let epoch = world.epoch();
    // Half-way: the next committee is selected.
    let applied = world.advance(EPOCH_MS / 2);
    assert!(applied.events.iter().any(|record| matches!(record.event, Event::CommitteeSelected { .. })));
    // At the boundary: the epoch changes and rewards are paid.
    let applied = world.advance(EPOCH_MS / 2);
    assert!(applied.events.iter().any(|record| matches!(record.event, Event::EpochChangeStart { .. })));
    assert_eq!(world.epoch().0, epoch.0 + 1);
    assert!(matches!(world.state.phase, EpochPhase::Changing { .. }));
    // Without reports, the next change waits however much time passes.
    world.advance(5 * EPOCH_MS);
    assert_eq!(world.epoch().0, epoch.0 + 1);
    world.finish_epoch_change();
    assert_eq!(world.state.phase, EpochPhase::Done);
    world.advance(1);
    assert_eq!(world.epoch().0, epoch.0 + 2);
}

/// Each operator's balance, in genesis node order.
fn operator_balances(world: &World) -> Vec<u64> {
    world.genesis.nodes.iter().map(|node| world.state.account(&node.operator).balance).collect()
}

/// What each genesis node's operator is owed from `pool` under `committee`: its shard count
/// times the pool over `n`, rounded down (the rule of the Walrus contracts), in genesis order.
fn expected_shares(world: &World, committee: &morsa_core::Committee, pool: u64) -> Vec<u64> {
    world
        .genesis
        .nodes
        .iter()
        .map(|node| {
            let id = morsa_core::NodeId::from_public_key(&node.public_key);
            let weight = committee.member_by_node(&id).map_or(0, |member| committee.weight(member));
            pool * u64::try_from(weight).unwrap() / u64::from(N)
        })
        .collect()
}

#[test]
fn storage_payments_end_up_with_node_operators() {
    let mut world = World::new(4, N);
    let supply = world.state.total_supply();
    let committee = world.state.committee.clone();
    // Stakes 100..400 would give the four nodes 1, 2, 3 and 4 of the 10 shards; each node is
    // its own operator, held to f = 3: 1, 3, 3 and 3.
    let mut weights: Vec<usize> = (0..committee.members.len()).map(|m| committee.weight(m)).collect();
    weights.sort_unstable();
    assert_eq!(weights, [1, 3, 3, 3]);
    assert_eq!(operator_balances(&world), [0, 0, 0, 0]);

    world.transact(0, Command::ReserveStorage { size: 10 << 20, epochs: 1 }).unwrap();
    let epoch = world.epoch();
    let pool = world.state.reward_pools[&epoch];
    assert_eq!(pool, 7 * 10);
    world.advance(EPOCH_MS);
    // 70 splits evenly over 10 shards: every operator gets 7 per shard and nothing is carried.
    let paid = operator_balances(&world);
    assert_eq!(paid, expected_shares(&world, &committee, pool));
    assert_eq!(paid.iter().sum::<u64>(), pool);
    let mut sorted = paid.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [7, 21, 21, 21]);
    assert_eq!(world.state.reward_pools.values().sum::<u64>(), 0, "nothing is carried over");
    assert_eq!(world.state.total_supply(), supply);

    // 7 does not split over 10 shards: shares 0, 2, 2 and 2 are paid and the remainder 1 is
    // carried into the next epoch's pool, where it is paid with that epoch's rewards.
    world.finish_epoch_change();
    world.transact(0, Command::ReserveStorage { size: 1 << 20, epochs: 1 }).unwrap();
    let epoch = world.epoch();
    assert_eq!(world.state.reward_pools[&epoch], 7);
    let committee = world.state.committee.clone();
    world.advance(EPOCH_MS);
    let gained: Vec<u64> =
        operator_balances(&world).iter().zip(&paid).map(|(now, before)| now - before).collect();
    assert_eq!(gained, expected_shares(&world, &committee, 7));
    let mut sorted = gained.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 2, 2, 2]);
    let next = morsa_core::Epoch(epoch.0 + 1);
    assert_eq!(world.state.reward_pools.get(&next), Some(&1), "the remainder is carried");
    assert_eq!(world.state.reward_pools.values().sum::<u64>(), 1);
    assert_eq!(world.state.total_supply(), supply);
}

/// The current committee's members sorted by weight, lightest first.
fn members_by_weight(world: &World) -> Vec<(usize, morsa_core::NodeId, usize)> {
    let committee = &world.state.committee;
    let mut members: Vec<(usize, morsa_core::NodeId, usize)> = committee
        .members
        .iter()
        .enumerate()
        .map(|(index, member)| (index, member.node_id, committee.weight(index)))
        .collect();
    members.sort_by_key(|(_, _, weight)| *weight);
    members
}

fn sync_done(world: &mut World, node: morsa_core::NodeId) -> Result<morsa_coord::Applied, CommandError> {
    let epoch = world.epoch();
    let key = world.node_keys[world.node_index(&node)].clone();
    let signature = key.sign(&morsa_core::epoch_sync_done_message(epoch, &node));
    world.submit(Input::Node(NodeReport { node, report: NodeReportKind::EpochSyncDone { epoch }, signature }))
}

#[test]
fn an_epoch_change_completes_exactly_when_reports_reach_a_quorum_of_shards() {
    let mut world = World::new(4, N);
    world.advance(EPOCH_MS);
    assert!(matches!(world.state.phase, EpochPhase::Changing { .. }));
    // Weights 1, 3, 3, 3 of 10 shards (each operator held to f = 3); a quorum is 7 (3w > 20).
    let members = members_by_weight(&world);
    let weights: Vec<usize> = members.iter().map(|(_, _, weight)| *weight).collect();
    assert_eq!(weights, [1, 3, 3, 3]);
    let (heaviest, second, lightest) = (members[3].1, members[1].1, members[0].1);
    // 3, the same node again, then 3 + 3 = 6: still one short.
    for node in [heaviest, heaviest, second] {
        let applied = sync_done(&mut world, node).unwrap();
        assert!(applied.events.is_empty(), "{:?}", applied.events);
        assert!(matches!(world.state.phase, EpochPhase::Changing { .. }));
    }
    // A report from a node outside the committee, or signed with another key, does not count.
    let stranger = morsa_core::BlsSecretKey::from_seed([77; 32]);
    let outsider = morsa_core::NodeId::from_public_key(&stranger.public_key());
    let epoch = world.epoch();
    let signature = stranger.sign(&morsa_core::epoch_sync_done_message(epoch, &outsider));
    let report = NodeReport { node: outsider, report: NodeReportKind::EpochSyncDone { epoch }, signature };
    assert_eq!(world.submit(Input::Node(report)).unwrap_err().code(), "unknown_node");
    let signature = stranger.sign(&morsa_core::epoch_sync_done_message(epoch, &lightest));
    let report = NodeReport { node: lightest, report: NodeReportKind::EpochSyncDone { epoch }, signature };
    assert_eq!(world.submit(Input::Node(report)).unwrap_err().code(), "bad_node_signature");
    // Time alone does not finish it.
    world.advance(3 * EPOCH_MS);
    assert_eq!(world.epoch(), epoch);
    assert!(matches!(world.state.phase, EpochPhase::Changing { .. }));
    // The lightest node brings the weight to exactly 7: done.
    let applied = sync_done(&mut world, lightest).unwrap();
    assert!(matches!(
        applied.events[..],
        [morsa_coord::EventRecord { event: Event::EpochChangeDone { .. }, .. }]
    ));
    assert_eq!(world.state.phase, EpochPhase::Done);
    // The next epoch, overdue meanwhile, may now start.
    assert!(world.state.deadline_due(world.now).is_some());
    world.advance(0);
    assert_eq!(world.epoch().0, epoch.0 + 1);
}

#[test]
fn invalidation_is_refused_just_below_validity_weight_and_accepted_at_it() {
    let mut world = World::new(4, N);
    let (blob_id, _) = register(&mut world, 0, 100, false, 7);
    let message = morsa_core::invalid_blob_message(world.epoch(), &blob_id);
    let committee = world.state.committee.clone();
    // Weights 1, 3, 3, 3 of 10 shards (each operator held to f = 3); validity is 4 (3w > 10).
    let members = members_by_weight(&world);
    let (one, three) = (members[0].0, members[2].0);
    for below in [vec![three], vec![one]] {
        let certificate = world.certificate(&committee, &below, &message);
        let refused = world.transact(2, Command::InvalidateBlob { blob_id, certificate }).unwrap_err();
        assert_eq!(refused.code(), "bad_certificate");
        assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Registered);
    }
    let certificate = world.certificate(&committee, &[one, three], &message);
    let applied = world.transact(2, Command::InvalidateBlob { blob_id, certificate }).unwrap();
    assert!(matches!(applied.events[0].event, Event::InvalidBlobId { .. }));
    assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Invalid);
}

#[test]
fn capacity_is_never_oversold() {
    let mut world = World::new(4, N);
    let capacity = world.state.capacity;
    world.transact(0, Command::ReserveStorage { size: capacity - 10, epochs: 2 }).unwrap();
    let refused = world.transact(1, Command::ReserveStorage { size: 11, epochs: 1 }).unwrap_err();
    assert!(matches!(refused, CommandError::CapacityExceeded { .. }));
    world.transact(1, Command::ReserveStorage { size: 10, epochs: 1 }).unwrap();
}

#[test]
fn a_registered_node_with_stake_joins_the_next_committee() {
    let mut world = World::new(4, N);
    let key = morsa_core::BlsSecretKey::from_seed([77; 32]);
    let register = Command::RegisterNode {
        public_key: key.public_key(),
        proof_of_possession: key.proof_of_possession(),
        address: "127.0.0.1:9999".into(),
        capacity: 1 << 30,
    };
    // A proof of possession of another key is refused.
    let mut forged = register.clone();
    if let Command::RegisterNode { proof_of_possession, .. } = &mut forged {
        *proof_of_possession = morsa_core::BlsSecretKey::from_seed([78; 32]).proof_of_possession();
    }
    assert_eq!(world.transact(1, forged).unwrap_err().code(), "invalid_argument");
    world.transact(1, register.clone()).unwrap();
    assert_eq!(world.transact(1, register).unwrap_err().code(), "invalid_argument");

    let node = morsa_core::NodeId::from_public_key(&key.public_key());
    world.transact(1, Command::Stake { node, amount: 1000 }).unwrap();
    world.advance(EPOCH_MS / 2);
    let next = world.state.next_committee.clone().unwrap();
    let member = next.member_by_node(&node).expect("the staked node is selected");
    assert!(next.weight(member) > 0);
    next.validate().unwrap();
}

#[test]
fn an_accounts_blobs_are_listed_in_pages_of_its_own_objects_only() {
    let mut world = World::new(4, N);
    let mut mine: Vec<ObjectId> = (1..=3).map(|seed| register(&mut world, 0, 5000, true, seed).1).collect();
    let (_, theirs) = register(&mut world, 1, 5000, true, 9);
    mine.sort();
    let owner = world.users[0].id();
    let (first, more) = world.state.owned_blobs(&owner, None, 2);
    assert!(more);
    let (rest, more) = world.state.owned_blobs(&owner, Some(first[1].object), 2);
    assert!(!more);
    let listed: Vec<ObjectId> = first.iter().chain(&rest).map(|blob| blob.object).collect();
    assert_eq!(listed, mine);
    assert!(!listed.contains(&theirs));
    assert!(first.iter().all(|blob| blob.deletable && blob.certified_epoch.is_none() && blob.size == 5000));
}

#[test]
fn storage_splits_by_epoch_and_merges_back_without_changing_what_is_booked() {
    let mut world = World::new(4, N);
    let supply = world.state.total_supply();
    let start = world.epoch();
    let at = |offset: u32| morsa_core::Epoch(start.0 + offset);
    let whole = world.transact(0, Command::ReserveStorage { size: 4 << 20, epochs: 3 }).unwrap().created[0];
    let booked = world.state.used.clone();
    let pools = world.state.reward_pools.clone();
    let owner = world.users[0].id();
    let resource = |world: &World, id: &ObjectId| {
        let storage = &world.state.storage[id];
        (storage.owner, storage.start, storage.end, storage.size)
    };

    // A cut must lie strictly inside the resource.
    for epoch in [start, at(3), at(7)] {
        let refused = world.transact(0, Command::SplitStorageByEpoch { storage: whole, epoch }).unwrap_err();
        assert_eq!(refused.code(), "invalid_argument", "cut at {epoch}");
    }
    let refused =
        world.transact(1, Command::SplitStorageByEpoch { storage: whole, epoch: at(1) }).unwrap_err();
    assert_eq!(refused.code(), "not_owner");

    let later =
        world.transact(0, Command::SplitStorageByEpoch { storage: whole, epoch: at(1) }).unwrap().created[0];
    assert_eq!(resource(&world, &whole), (owner, start, at(1), 4 << 20));
    assert_eq!(resource(&world, &later), (owner, at(1), at(3), 4 << 20));
    assert_eq!(world.state.used, booked, "splitting books nothing more");

    // Merging with itself or a resource of another shape is refused.
    let refused = world.transact(0, Command::MergeStorage { first: whole, second: whole }).unwrap_err();
    assert_eq!(refused.code(), "invalid_argument");
    let part =
        world.transact(0, Command::SplitStorageBySize { storage: later, size: 1 << 20 }).unwrap().created[0];
    assert_eq!(resource(&world, &later), (owner, at(1), at(3), 3 << 20));
    assert_eq!(resource(&world, &part), (owner, at(1), at(3), 1 << 20));
    let refused = world.transact(0, Command::MergeStorage { first: whole, second: part }).unwrap_err();
    assert_eq!(refused.code(), "storage_mismatch", "different sizes and epochs do not merge");
    // Another account's resource never merges in.
    let theirs = world.transact(1, Command::ReserveStorage { size: 1 << 20, epochs: 3 }).unwrap().created[0];
    let refused = world.transact(0, Command::MergeStorage { first: whole, second: theirs }).unwrap_err();
    assert_eq!(refused.code(), "not_owner");

    // Same epochs: the sizes add up. Same size and adjacent epochs, in either order: the
    // epochs join. The second resource is consumed each time.
    world.transact(0, Command::MergeStorage { first: later, second: part }).unwrap();
    assert_eq!(resource(&world, &later), (owner, at(1), at(3), 4 << 20));
    assert!(!world.state.storage.contains_key(&part));
    world.transact(0, Command::MergeStorage { first: later, second: whole }).unwrap();
    assert_eq!(resource(&world, &later), (owner, start, at(3), 4 << 20));
    assert!(!world.state.storage.contains_key(&whole));
    let tail =
        world.transact(0, Command::SplitStorageByEpoch { storage: later, epoch: at(2) }).unwrap().created[0];
    world.transact(0, Command::MergeStorage { first: later, second: tail }).unwrap();
    assert_eq!(resource(&world, &later), (owner, start, at(3), 4 << 20));
    let refused = world.transact(0, Command::MergeStorage { first: later, second: tail }).unwrap_err();
    assert_eq!(refused.code(), "unknown_object", "a consumed resource is gone");

    // The whole dance booked and charged nothing beyond the one reservation of each user.
    let mut expected_used = booked.clone();
    for epoch in (start.0..start.0 + 3).map(morsa_core::Epoch) {
        *expected_used.get_mut(&epoch).unwrap() += 1 << 20;
    }
    assert_eq!(world.state.used, expected_used);
    assert_eq!(world.state.reward_pools.values().sum::<u64>(), pools.values().sum::<u64>() + 7 * 3);
    assert_eq!(world.state.total_supply(), supply);
    // The merged resource holds a blob as the original did.
    let encoded = EncodingConfig::new(N).unwrap().encoded_size(1000).unwrap();
    assert!(encoded <= 4 << 20);
    let root = [42; 32];
    let blob_id = BlobId::from_root(1000, &root);
    let command = Command::RegisterBlob {
        storage: later,
        blob_id,
        root_hash: root,
        size: 1000,
        encoding_type: 1,
        deletable: false,
    };
    world.transact(0, command).unwrap();
    assert_eq!(world.state.blob_status(&blob_id).end_epoch, Some(at(3)));
}

#[test]
fn registering_a_blob_charges_the_write_price_of_its_encoded_size_into_the_epochs_pool() {
    let mut world = World::new(4, N);
    let supply = world.state.total_supply();
    let user = world.users[0].id();
    let size = 1 << 20;
    let encoded = EncodingConfig::new(N).unwrap().encoded_size(size).unwrap();
    let mib = encoded.div_ceil(1 << 20);
    assert!(mib > 1, "the charge is per started MiB of encoded size ({encoded} bytes)");
    let storage = world.transact(0, Command::ReserveStorage { size: encoded, epochs: 2 }).unwrap().created[0];
    let storage_price = 7 * mib * 2;
    assert_eq!(world.state.account(&user).balance, 1_000_000 - storage_price);
    let pool = world.state.reward_pools[&world.epoch()];
    assert_eq!(pool, 7 * mib);

    let root = [5; 32];
    let blob_id = BlobId::from_root(size, &root);
    let command =
        Command::RegisterBlob { storage, blob_id, root_hash: root, size, encoding_type: 1, deletable: false };
    world.transact(0, command).unwrap();
    let write_price = 3 * mib;
    assert_eq!(world.state.account(&user).balance, 1_000_000 - storage_price - write_price);
    assert_eq!(
        world.state.reward_pools[&world.epoch()],
        pool + write_price,
        "the write price is this epoch's"
    );
    let next = morsa_core::Epoch(world.epoch().0 + 1);
    assert_eq!(world.state.reward_pools[&next], 7 * mib, "later epochs get no write price");
    assert_eq!(world.state.total_supply(), supply);

    // An account that can pay for the storage but not for the write is refused, unchanged.
    let poor = world.users[1].id();
    let storage = world.transact(1, Command::ReserveStorage { size: encoded, epochs: 1 }).unwrap().created[0];
    let keep = 3 * mib - 1;
    let balance = world.state.account(&poor).balance;
    world.transact(1, Command::Transfer { to: user, amount: balance - keep }).unwrap();
    let root = [6; 32];
    let blob_id = BlobId::from_root(size, &root);
    let command =
        Command::RegisterBlob { storage, blob_id, root_hash: root, size, encoding_type: 1, deletable: false };
    let refused = world.transact(1, command).unwrap_err();
    assert!(matches!(refused, CommandError::InsufficientBalance { needed, .. } if needed == write_price));
}

#[test]
fn objects_whose_end_epoch_comes_are_dropped_at_the_epoch_change() {
    let mut world = World::new(4, N);
    let start = world.epoch();
    // A certified blob and a registered one paid for one epoch, a blob paid for two, and bare
    // storage for one and for two epochs.
    let (certified, object) = register_for(&mut world, 1, 11);
    let certificate = world.full_certificate(&confirmation(&world, &certified, &object, false));
    world.transact(0, Command::CertifyBlob { object, certificate }).unwrap();
    let (registered, _) = register_for(&mut world, 1, 12);
    let (lasting, _) = register_for(&mut world, 2, 13);
    let short = world.transact(1, Command::ReserveStorage { size: 1000, epochs: 1 }).unwrap().created[0];
    let long = world.transact(1, Command::ReserveStorage { size: 1000, epochs: 2 }).unwrap().created[0];
    assert_eq!(world.state.blob_status(&certified).status, BlobStatusKind::Certified);
    assert!(world.state.used.contains_key(&start));

    world.advance(EPOCH_MS);
    assert_eq!(world.epoch().0, start.0 + 1);
    assert_eq!(world.state.blob_status(&certified).status, BlobStatusKind::Nonexistent);
    assert_eq!(world.state.blob_status(&registered).status, BlobStatusKind::Nonexistent);
    assert_eq!(world.state.blob_status(&lasting).status, BlobStatusKind::Registered);
    assert!(!world.state.blobs.contains_key(&object));
    assert!(!world.state.storage.contains_key(&short));
    assert!(world.state.storage.contains_key(&long));
    assert!(!world.state.used.contains_key(&start), "past accounting is dropped");
    let refused = world.transact(0, Command::ExtendBlob { object, epochs: 1 }).unwrap_err();
    assert_eq!(refused.code(), "unknown_object", "an expired blob cannot be extended");

    world.finish_epoch_change();
    world.advance(EPOCH_MS);
    assert_eq!(world.state.blob_status(&lasting).status, BlobStatusKind::Nonexistent);
    assert!(!world.state.storage.contains_key(&long));
    assert!(world.state.blobs.is_empty() && world.state.storage.is_empty());
}

/// Registers a permanent blob of 100 bytes paid for `epochs` epochs by user 0.
fn register_for(world: &mut World, epochs: u32, seed: u8) -> (BlobId, ObjectId) {
    let encoded = EncodingConfig::new(N).unwrap().encoded_size(100).unwrap();
    let storage = world.transact(0, Command::ReserveStorage { size: encoded, epochs }).unwrap().created[0];
    let root = [seed; 32];
    let blob_id = BlobId::from_root(100, &root);
    let command = Command::RegisterBlob {
        storage,
        blob_id,
        root_hash: root,
        size: 100,
        encoding_type: 1,
        deletable: false,
    };
    (blob_id, world.transact(0, command).unwrap().created[0])
}

//! The rules of the coordinator, one scenario at a time.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

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
    assert!(world.submit(report(member, key.sign(&wrong), certificate.clone())).is_err());
    // A certificate without validity weight: refused.
    let committee = world.state.committee.clone();
    let thin = world.certificate(&committee, &[0], &message);
    assert!(world.submit(report(member, key.sign(&message), thin)).is_err());
    assert_ne!(world.state.blob_status(&blob_id).status, BlobStatusKind::Invalid);
    // The member's own report with the committee's certificate: the blob is invalid.
    let applied = world.submit(report(member, key.sign(&message), certificate.clone())).unwrap();
    assert!(matches!(applied.events[0].event, Event::InvalidBlobId { .. }));
    assert_eq!(world.state.blob_status(&blob_id).status, BlobStatusKind::Invalid);
    assert!(world.submit(report(member, key.sign(&message), certificate)).is_err(), "only once");
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

#[test]
fn storage_payments_end_up_with_node_operators() {
    let mut world = World::new(4, N);
    let supply = world.state.total_supply();
    world.transact(0, Command::ReserveStorage { size: 10 << 20, epochs: 1 }).unwrap();
    let pool = world.state.reward_pools[&world.epoch()];
    assert_eq!(pool, 7 * 10);
    world.advance(EPOCH_MS);
    let operators: u64 =
        world.genesis.nodes.iter().map(|node| world.state.account(&node.operator).balance).sum();
    let carried: u64 = world.state.reward_pools.values().sum();
    assert_eq!(u128::from(operators + carried), u128::from(pool));
    assert_eq!(world.state.total_supply(), supply);
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

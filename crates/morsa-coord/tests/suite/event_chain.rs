//! Known answers for the event hash chain: each record's hash is recomputed here from the
//! documented layout, `H("morsa/event" ‖ prev_hash ‖ BCS(seq, time_ms, event))` with
//! `H(d ‖ parts) = BLAKE2b-256(len(d) as u64 LE ‖ d ‖ parts)`, writing the BCS bytes out by hand
//! (`u64`s little-endian, the event as its `type` string then its fields in order), and
//! compared with what the state machine emits.

use crate::common;

use common::{GENESIS_MS, World};
use morsa_coord::{Command, Event, EventRecord};
use morsa_core::{Epoch, ObjectId, PersistenceType};
use redstuff::{BlobId, EncodingConfig};

/// BLAKE2b-256 of `len("morsa/event") ‖ "morsa/event" ‖ prev ‖ body`, straight from blake2b_simd.
fn chain_hash(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
    state.update(&11u64.to_le_bytes());
    state.update(b"morsa/event");
    state.update(prev);
    state.update(body);
    state.finalize().as_bytes().try_into().unwrap()
}

/// BCS of a string: ULEB128 length (all names here are below 128 bytes) and the bytes.
fn bcs_str(out: &mut Vec<u8>, text: &str) {
    out.push(u8::try_from(text.len()).unwrap());
    out.extend_from_slice(text.as_bytes());
}

fn head(seq: u64, time_ms: u64, tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&time_ms.to_le_bytes());
    bcs_str(&mut out, tag);
    out
}

#[test]
fn the_hashes_of_emitted_events_follow_the_documented_layout() {
    let mut world = World::new(4, 10);
    let size = 5000u64;
    let encoded = EncodingConfig::new(10).unwrap().encoded_size(size).unwrap();
    let storage = world.transact(0, Command::ReserveStorage { size: encoded, epochs: 2 }).unwrap().created[0];
    let root = [8; 32];
    let blob_id = BlobId::from_root(size, &root);
    let command =
        Command::RegisterBlob { storage, blob_id, root_hash: root, size, encoding_type: 1, deletable: true };
    let applied = world.transact(0, command).unwrap();
    let object = applied.created[0];
    let registered = &applied.events[0];

    // BlobRegistered { blob_id, object, size, encoded_size, end_epoch, deletable, epoch }.
    let mut body = head(0, GENESIS_MS, "blob_registered");
    body.extend_from_slice(&blob_id.0);
    body.extend_from_slice(&object.0);
    body.extend_from_slice(&size.to_le_bytes());
    body.extend_from_slice(&encoded.to_le_bytes());
    body.extend_from_slice(&3u32.to_le_bytes());
    body.push(1);
    body.extend_from_slice(&1u32.to_le_bytes());
    let first = chain_hash(&[0; 32], &body);
    assert_eq!((registered.seq, registered.prev_hash, registered.hash), (0, [0; 32], first));

    // BlobCertified { blob_id, object, end_epoch, deletable, epoch }, chained to the first.
    world.now += 1;
    let message = morsa_core::storage_confirmation_message(
        world.epoch(),
        &blob_id,
        &PersistenceType::Deletable { object_id: object },
    );
    let certificate = world.full_certificate(&message);
    let applied = world.transact(0, Command::CertifyBlob { object, certificate }).unwrap();
    let mut body = head(1, GENESIS_MS + 1, "blob_certified");
    body.extend_from_slice(&blob_id.0);
    body.extend_from_slice(&object.0);
    body.extend_from_slice(&3u32.to_le_bytes());
    body.push(1);
    body.extend_from_slice(&1u32.to_le_bytes());
    let second = chain_hash(&first, &body);
    let certified = &applied.events[0];
    assert_eq!((certified.seq, certified.prev_hash, certified.hash), (1, first, second));
    assert_eq!(world.state.event_head, second);
}

#[test]
fn a_chain_built_by_hand_verifies_and_any_change_breaks_it() {
    // Three events of an epoch change, hashed by hand.
    let mut body = head(7, 42, "rewards_paid");
    body.extend_from_slice(&5u32.to_le_bytes());
    body.extend_from_slice(&70u64.to_le_bytes());
    let prev = [0xab; 32];
    let first = chain_hash(&prev, &body);
    let mut body = head(8, 42, "epoch_change_start");
    body.extend_from_slice(&6u32.to_le_bytes());
    let second = chain_hash(&first, &body);
    let mut body = head(9, 43, "blob_deleted");
    body.extend_from_slice(&[1; 32]);
    body.extend_from_slice(&[2; 32]);
    body.extend_from_slice(&6u32.to_le_bytes());
    let third = chain_hash(&second, &body);

    let records = [
        EventRecord::new(7, 42, Event::RewardsPaid { epoch: Epoch(5), total: 70 }, prev),
        EventRecord::new(8, 42, Event::EpochChangeStart { epoch: Epoch(6) }, first),
        EventRecord::new(
            9,
            43,
            Event::BlobDeleted { blob_id: BlobId([1; 32]), object: ObjectId([2; 32]), epoch: Epoch(6) },
            second,
        ),
    ];
    assert_eq!(records.iter().map(|record| record.hash).collect::<Vec<_>>(), [first, second, third]);
    let mut expected_prev = prev;
    for record in &records {
        assert!(record.verifies_after(&expected_prev));
        expected_prev = record.hash;
    }
    // Another time, sequence number, predecessor or field: the record no longer verifies.
    let mut moved = records[1].clone();
    moved.time_ms += 1;
    assert!(!moved.verifies_after(&first));
    let mut renumbered = records[1].clone();
    renumbered.seq += 1;
    assert!(!renumbered.verifies_after(&first));
    assert!(!records[1].verifies_after(&prev));
    let mut edited = records[0].clone();
    edited.event = Event::RewardsPaid { epoch: Epoch(5), total: 71 };
    assert!(!edited.verifies_after(&prev));
}

//! The checks of the audit that `apply` never lets a real log reach: each is fed a forged
//! event or state directly, beside a correct one that passes.

use morsa_core::{AccountKey, BlsSecretKey, Certificate, CertificateError, CommitteeError, ShardIndex};

use super::*;
use crate::{BlobObject, Certification, GenesisAccount, GenesisNode, StorageResource, Transaction};

const T0: u64 = 1_000_000;

fn node_keys() -> Vec<BlsSecretKey> {
    (1..=4).map(|seed| BlsSecretKey::from_seed([seed; 32])).collect()
}

fn genesis(keys: &[BlsSecretKey]) -> Genesis {
    let user = AccountKey::from_seed([100; 32]);
    Genesis {
        chain_id: "audit-test".into(),
        n_shards: 10,
        epoch_duration_ms: 10_000,
        genesis_time_ms: T0,
        storage_price_per_mib_epoch: 1,
        write_price_per_mib: 1,
        max_epochs_ahead: 5,
        max_shards_per_node: 10,
        nodes: keys
            .iter()
            .zip([100, 200, 300, 400])
            .map(|(key, stake)| GenesisNode {
                public_key: key.public_key(),
                proof_of_possession: key.proof_of_possession(),
                address: "127.0.0.1:9000".into(),
                stake,
                capacity: 1 << 30,
                operator: user.id(),
                zone: String::new(),
            })
            .collect(),
        accounts: vec![GenesisAccount { id: user.id(), balance: 1000 }],
        node_rules: crate::NodeRules::local(),
    }
}

fn auditor() -> (Auditor, Vec<BlsSecretKey>) {
    let keys = node_keys();
    (Auditor::new(&genesis(&keys)).expect("a valid genesis"), keys)
}

/// A certificate over `message` by the given members of the committee.
fn certificate(
    committee: &Committee,
    keys: &[BlsSecretKey],
    members: &[usize],
    message: &[u8],
) -> Certificate {
    let parts: Vec<_> = members
        .iter()
        .map(|member| {
            let node = committee.members[*member].node_id;
            let key = keys.iter().find(|key| NodeId::from_public_key(&key.public_key()) == node);
            let index = u16::try_from(*member).expect("few members");
            (index, key.expect("a known node").sign(message))
        })
        .collect();
    Certificate::aggregate(&parts).expect("signers")
}

fn all(committee: &Committee) -> Vec<usize> {
    (0..committee.members.len()).collect()
}

fn tick() -> LogEntry {
    LogEntry { time_ms: T0, input: Input::Tick }
}

/// The next record of the auditor's chain.
fn next_record(auditor: &Auditor, event: Event) -> EventRecord {
    EventRecord::new(auditor.events, T0, event, auditor.event_head)
}

#[test]
fn an_event_off_the_chain_is_caught() {
    let (mut auditor, _) = auditor();
    let event = Event::EpochChangeDone { epoch: Epoch(1) };
    let forged = [
        EventRecord::new(1, T0, event.clone(), [0; 32]), // skips a number
        EventRecord::new(0, T0 + 1, event.clone(), [0; 32]), // not its entry's time
        EventRecord::new(0, T0, event.clone(), [7; 32]), // follows another event
    ];
    for record in forged {
        let error = auditor.check_event(0, &tick(), &record).expect_err("forged");
        assert!(matches!(error, AuditError::EventChain { seq: 0, .. }), "{error}");
    }
    let mut tampered = next_record(&auditor, event.clone());
    tampered.event = Event::EpochChangeDone { epoch: Epoch(2) }; // the hash no longer matches
    let error = auditor.check_event(0, &tick(), &tampered).expect_err("tampered");
    assert!(matches!(error, AuditError::EventChain { .. }), "{error}");

    let record = next_record(&auditor, event);
    auditor.check_event(0, &tick(), &record).expect("the right next event");
    assert_eq!((auditor.events, auditor.event_head), (1, record.hash));
}

#[test]
fn a_committee_owning_a_shard_twice_or_out_of_turn_is_caught() {
    let (mut auditor, _) = auditor();
    let good = Committee { epoch: Epoch(2), ..auditor.state.committee.clone() };

    let mut twice = good.clone();
    let shard = twice.members[0].shards[0];
    twice.members[1].shards.push(shard);
    let record = next_record(&auditor, Event::CommitteeSelected { committee: twice });
    let error = auditor.check_event(0, &tick(), &record).expect_err("a shard owned twice");
    assert!(
        matches!(error, AuditError::InvalidCommittee { source: CommitteeError::ShardOwnedTwice { .. }, .. }),
        "{error}"
    );

    let (mut auditor, _) = self::auditor();
    let mut unowned = good.clone();
    unowned.members.iter_mut().for_each(|member| member.shards.retain(|shard| *shard != ShardIndex(0)));
    let record = next_record(&auditor, Event::CommitteeSelected { committee: unowned });
    let error = auditor.check_event(0, &tick(), &record).expect_err("a shard owned by none");
    assert!(
        matches!(error, AuditError::InvalidCommittee { source: CommitteeError::ShardUnowned { .. }, .. }),
        "{error}"
    );

    let (mut auditor, _) = self::auditor();
    let skipping = Committee { epoch: Epoch(3), ..good.clone() };
    let record = next_record(&auditor, Event::CommitteeSelected { committee: skipping });
    let error = auditor.check_event(0, &tick(), &record).expect_err("epoch 2 is next");
    assert!(matches!(error, AuditError::UnexpectedCommittee { epoch: Epoch(3), .. }), "{error}");

    let record = next_record(&auditor, Event::CommitteeSelected { committee: good.clone() });
    auditor.check_event(0, &tick(), &record).expect("a valid committee for epoch 2");
    assert_eq!(auditor.committees.get(&Epoch(2)), Some(&good));
}

/// Puts a certified blob object into the auditor's state and returns its `BlobCertified` event.
fn certified_blob(auditor: &mut Auditor, certificate: Certificate) -> Event {
    let (blob_id, object) = (BlobId([5; 32]), ObjectId([6; 32]));
    let owner = AccountKey::from_seed([100; 32]).id();
    let storage = StorageResource { owner, start: Epoch(1), end: Epoch(3), size: 1 << 20 };
    let blob = BlobObject {
        blob_id,
        owner,
        size: 100,
        encoded_size: 1 << 20,
        deletable: false,
        registered_epoch: Epoch(1),
        storage,
        certified: Some(Certification { epoch: Epoch(1), certificate }),
    };
    auditor.state.blobs.insert(object, blob);
    Event::BlobCertified { blob_id, object, end_epoch: Epoch(3), deletable: false, epoch: Epoch(1) }
}

#[test]
fn a_stored_certificate_that_does_not_verify_is_caught() {
    let (mut auditor, keys) = auditor();
    let committee = auditor.state.committee.clone();
    let blob_id = BlobId([5; 32]);
    let permanent = morsa_core::storage_confirmation_message(Epoch(1), &blob_id, &PersistenceType::Permanent);
    let deletable = morsa_core::storage_confirmation_message(
        Epoch(1),
        &blob_id,
        &PersistenceType::Deletable { object_id: ObjectId([6; 32]) },
    );

    // Signed over the deletable form, stored for a permanent blob.
    let event = certified_blob(&mut auditor, certificate(&committee, &keys, &all(&committee), &deletable));
    let record = next_record(&auditor, event);
    let error = auditor.check_event(0, &tick(), &record).expect_err("the wrong message");
    assert!(
        matches!(
            error,
            AuditError::BadStorageCertificate { source: CertificateError::BadSignature(_), blob_id: b, .. }
                if b == blob_id
        ),
        "{error}"
    );

    // Signed by one member only: below a quorum.
    let (mut auditor, _) = self::auditor();
    let event = certified_blob(&mut auditor, certificate(&committee, &keys, &[0], &permanent));
    let record = next_record(&auditor, event);
    let error = auditor.check_event(0, &tick(), &record).expect_err("below quorum");
    assert!(
        matches!(
            error,
            AuditError::BadStorageCertificate { source: CertificateError::InsufficientWeight { .. }, .. }
        ),
        "{error}"
    );

    // The object is gone from the state.
    let (mut auditor, _) = self::auditor();
    let event = certified_blob(&mut auditor, certificate(&committee, &keys, &all(&committee), &permanent));
    auditor.state.blobs.clear();
    let record = next_record(&auditor, event.clone());
    let error = auditor.check_event(0, &tick(), &record).expect_err("no object");
    assert!(matches!(error, AuditError::CertificationMissing { .. }), "{error}");

    let (mut auditor, _) = self::auditor();
    let event = certified_blob(&mut auditor, certificate(&committee, &keys, &all(&committee), &permanent));
    let record = next_record(&auditor, event);
    auditor.check_event(0, &tick(), &record).expect("a quorum over the right message");
    assert_eq!(auditor.certified_blobs, 1);
}

#[test]
fn an_invalidation_without_a_valid_certificate_is_caught() {
    let (mut auditor, keys) = auditor();
    let committee = auditor.state.committee.clone();
    let blob_id = BlobId([8; 32]);
    let event = Event::InvalidBlobId { blob_id, epoch: Epoch(1) };
    let invalidation = |certificate| {
        let user = AccountKey::from_seed([100; 32]);
        let command = Command::InvalidateBlob { blob_id, certificate };
        let signed = Transaction { sender: user.id(), nonce: 0, command }.sign(&user, "audit-test");
        LogEntry { time_ms: T0, input: Input::Transaction(signed) }
    };

    let record = next_record(&auditor, event.clone());
    let error = auditor.check_event(0, &tick(), &record).expect_err("a tick invalidates nothing");
    assert!(matches!(error, AuditError::InvalidationWithoutCertificate { .. }), "{error}");

    let (mut auditor, _) = self::auditor();
    let message = morsa_core::invalid_blob_message(Epoch(1), &blob_id);
    let smallest = (0..committee.members.len()).min_by_key(|member| committee.weight(*member));
    let weak = certificate(&committee, &keys, &[smallest.expect("members")], &message);
    let record = next_record(&auditor, event.clone());
    let error = auditor.check_event(0, &invalidation(weak), &record).expect_err("below validity");
    assert!(
        matches!(
            error,
            AuditError::BadInvalidationCertificate {
                source: CertificateError::InsufficientWeight { .. },
                ..
            }
        ),
        "{error}"
    );

    let (mut auditor, _) = self::auditor();
    let full = certificate(&committee, &keys, &all(&committee), &message);
    let record = next_record(&auditor, event);
    auditor.check_event(0, &invalidation(full), &record).expect("a valid invalidation");
    assert_eq!(auditor.invalid_blobs, 1);
}

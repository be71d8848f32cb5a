use super::*;
use crate::bls::{BlsSecretKey, BlsSignature};
use crate::signature::SignatureError;

const MESSAGE: &[u8] = b"confirm blob";

fn keys() -> Vec<BlsSecretKey> {
    (1..=4).map(|seed| BlsSecretKey::from_seed([seed; 32])).collect()
}

/// Ten shards held 1, 2, 3 and 4 by members 0, 1, 2 and 3. Quorum is 7, validity 4.
fn committee() -> Committee {
    let shards: [&[u16]; 4] = [&[0], &[1, 2], &[3, 4, 5], &[6, 7, 8, 9]];
    let members = keys()
        .iter()
        .zip(shards)
        .enumerate()
        .map(|(index, (key, shards))| CommitteeMember {
            node_id: NodeId::from_public_key(&key.public_key()),
            public_key: key.public_key(),
            address: format!("127.0.0.1:{}", 9000 + index),
            shards: shards.iter().copied().map(ShardIndex).collect(),
        })
        .collect();
    Committee { epoch: Epoch(5), n_shards: 10, members }
}

fn certificate(signers: &[u16], message: &[u8]) -> Certificate {
    let keys = keys();
    let parts: Vec<_> =
        signers.iter().map(|&index| (index, keys[usize::from(index)].sign(message))).collect();
    Certificate::aggregate(&parts).unwrap()
}

#[test]
fn node_id_is_blake2b_256_of_the_key_bytes() {
    // python3 -c "import hashlib; print(hashlib.blake2b(bytes(48), digest_size=32).hexdigest())"
    let expected = "df69a516de12056d0895fdea7a0274c5aba67091543238670513104c1af69c1f";
    assert_eq!(NodeId::from_public_key(&BlsPublicKey([0; 48])).to_string(), expected);
}

#[test]
fn lookups_follow_the_shard_assignment() {
    let committee = committee();
    assert_eq!(committee.validate(), Ok(()));
    assert_eq!(committee.shard_owner(ShardIndex(0)), Some(0));
    assert_eq!(committee.shard_owner(ShardIndex(5)), Some(2));
    assert_eq!(committee.shard_owner(ShardIndex(10)), None);
    assert_eq!((0..5).map(|member| committee.weight(member)).collect::<Vec<_>>(), [1, 2, 3, 4, 0]);
    let node = committee.members[3].node_id;
    assert_eq!(committee.member_by_node(&node), Some(3));
    assert_eq!(committee.member_by_node(&NodeId([0; 32])), None);
}

#[test]
fn validation_refuses_shards_owned_twice_or_not_at_all() {
    let mut twice = committee();
    twice.members[0].shards.push(ShardIndex(9));
    let expected = CommitteeError::ShardOwnedTwice { shard: ShardIndex(9), first: 0, second: 3 };
    assert_eq!(twice.validate(), Err(expected));

    let mut unowned = committee();
    unowned.members[2].shards.retain(|shard| *shard != ShardIndex(4));
    assert_eq!(unowned.validate(), Err(CommitteeError::ShardUnowned { shard: ShardIndex(4) }));

    let mut out_of_range = committee();
    out_of_range.members[1].shards.push(ShardIndex(10));
    let expected = CommitteeError::ShardOutOfRange { member: 1, shard: ShardIndex(10), n_shards: 10 };
    assert_eq!(out_of_range.validate(), Err(expected));

    let mut empty = committee();
    empty.n_shards = 0;
    assert_eq!(empty.validate(), Err(CommitteeError::NoShards));
}

#[test]
fn validation_refuses_repeated_nodes_and_keys() {
    let mut same_node = committee();
    same_node.members[2].node_id = same_node.members[0].node_id;
    assert!(matches!(same_node.validate(), Err(CommitteeError::DuplicateNodeId { first: 0, second: 2, .. })));
    let mut same_key = committee();
    same_key.members[3].public_key = same_key.members[1].public_key;
    assert_eq!(same_key.validate(), Err(CommitteeError::DuplicatePublicKey { first: 1, second: 3 }));
}

#[test]
fn quorum_needs_seven_of_ten_shards() {
    let committee = committee();
    let verify = |signers: &[u16]| {
        committee.verify_certificate(&certificate(signers, MESSAGE), MESSAGE, Threshold::Quorum)
    };
    let below = CertificateError::InsufficientWeight { weight: 6, needed: 7, threshold: Threshold::Quorum };
    assert_eq!(verify(&[0, 1, 2]), Err(below));
    assert_eq!(verify(&[2, 3]), Ok(7));
    assert_eq!(verify(&[0, 1, 3]), Ok(7));
    assert_eq!(verify(&[0, 1, 2, 3]), Ok(10));
}

#[test]
fn validity_needs_four_of_ten_shards() {
    let committee = committee();
    let verify = |signers: &[u16]| {
        committee.verify_certificate(&certificate(signers, MESSAGE), MESSAGE, Threshold::Validity)
    };
    let below = CertificateError::InsufficientWeight { weight: 3, needed: 4, threshold: Threshold::Validity };
    assert_eq!(verify(&[0, 1]), Err(below.clone()));
    assert_eq!(verify(&[2]), Err(below));
    assert_eq!(verify(&[0, 2]), Ok(4));
    assert_eq!(verify(&[3]), Ok(4));
}

#[test]
fn signatures_must_match_the_named_signers_and_message() {
    let committee = committee();
    let mut wrong_signers = certificate(&[1, 3], MESSAGE);
    wrong_signers.signers = vec![2, 3];
    let bad = Err(CertificateError::BadSignature(SignatureError::InvalidSignature));
    assert_eq!(committee.verify_certificate(&wrong_signers, MESSAGE, Threshold::Validity), bad);
    let other_message = certificate(&[2, 3], b"another blob");
    assert_eq!(committee.verify_certificate(&other_message, MESSAGE, Threshold::Quorum), bad);
}

#[test]
fn malformed_signer_lists_are_refused_before_any_pairing() {
    let committee = committee();
    // A garbage signature: any check that reached the pairing would report BadSignature.
    let garbage = BlsSignature([0xff; 96]);
    let check = |signers: Vec<u16>| {
        let certificate = Certificate { signers, signature: garbage.clone() };
        committee.verify_certificate(&certificate, MESSAGE, Threshold::Quorum)
    };
    assert_eq!(check(vec![]), Err(CertificateError::NoSigners));
    assert_eq!(check(vec![0, 1, 2, 3, 4]), Err(CertificateError::TooManySigners { signers: 5, members: 4 }));
    assert_eq!(check(vec![0; 1000]), Err(CertificateError::TooManySigners { signers: 1000, members: 4 }));
    assert_eq!(check(vec![1, 2, 2]), Err(CertificateError::DuplicateSigner { index: 2 }));
    assert_eq!(check(vec![2, 1, 3]), Err(CertificateError::UnsortedSigners { previous: 2, next: 1 }));
    assert_eq!(check(vec![2, 4]), Err(CertificateError::SignerNotInCommittee { index: 4, members: 4 }));
    assert!(matches!(check(vec![0, 1, 2]), Err(CertificateError::InsufficientWeight { weight: 6, .. })));
    assert_eq!(check(vec![2, 3]), Err(CertificateError::BadSignature(SignatureError::MalformedSignature)));
}

#[test]
fn aggregation_sorts_signers_and_refuses_duplicates() {
    let keys = keys();
    let part = |index: u16| (index, keys[usize::from(index)].sign(MESSAGE));
    let certificate = Certificate::aggregate(&[part(3), part(0), part(2)]).unwrap();
    assert_eq!(certificate.signers, [0, 2, 3]);
    assert_eq!(committee().verify_certificate(&certificate, MESSAGE, Threshold::Quorum), Ok(8));
    assert_eq!(
        Certificate::aggregate(&[part(1), part(3), part(1)]),
        Err(CertificateError::DuplicateSigner { index: 1 })
    );
    assert_eq!(Certificate::aggregate(&[]), Err(CertificateError::NoSigners));
}

#[test]
fn committees_and_certificates_round_trip_through_bcs_and_json() {
    let committee = committee();
    let bytes = bcs::to_bytes(&committee).unwrap();
    assert_eq!(bcs::from_bytes::<Committee>(&bytes).unwrap(), committee);
    let json = serde_json::to_string(&committee).unwrap();
    assert!(json.contains(&format!("\"{}\"", committee.members[0].public_key)), "{json}");
    assert_eq!(serde_json::from_str::<Committee>(&json).unwrap(), committee);

    let certificate = certificate(&[1, 3], MESSAGE);
    // ULEB128 length 2, two u16 LE indices, then the 96 signature bytes.
    let bytes = bcs::to_bytes(&certificate).unwrap();
    assert_eq!(bytes[..5], [2, 1, 0, 3, 0]);
    assert_eq!(bytes[5..], certificate.signature.0);
    assert_eq!(bcs::from_bytes::<Certificate>(&bytes).unwrap(), certificate);
}

//! Known answers for what storage nodes sign: every message is written out here byte by byte
//! from its documented layout (`[type, 0, 3] ‖ epoch u32 LE ‖ 32-byte ID ‖ ...`), and every
//! signature is computed and checked with `blst` directly under the IETF ciphersuite names
//! spelled out here, not with Morsa's signing code. A change to a layout, a domain separation
//! tag or the key derivation makes Morsa's signatures differ from these and fails.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use blst::BLST_ERROR;
use blst::min_pk::{AggregateSignature, PublicKey, SecretKey, Signature};
use morsa_core::{
    BlobId, BlsPublicKey, BlsSecretKey, BlsSignature, Certificate, CertificateError, Committee,
    CommitteeMember, Epoch, NodeId, ObjectId, PersistenceType, ShardIndex, SignatureError, Threshold,
};

/// A certificate that does not verify because its aggregate signature is not over the message
/// by the signers' keys (not because it is malformed or too light).
fn not_signed(result: Result<usize, CertificateError>) -> bool {
    matches!(result, Err(CertificateError::BadSignature(SignatureError::InvalidSignature)))
}

/// The IETF BLS ciphersuites (draft-irtf-cfrg-bls-signature, section 4.2), as Walrus uses them.
const NUL_SUITE: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";
const POP_SUITE: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

fn hex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap()).collect()
}

/// 0x00, 0x01, ..., 0x1f.
fn counting() -> [u8; 32] {
    std::array::from_fn(|index| u8::try_from(index).unwrap())
}

/// The secret key as IETF KeyGen derives it from `seed` (no key info), straight from blst.
fn blst_key(seed: u8) -> SecretKey {
    SecretKey::key_gen(&[seed; 32], &[]).unwrap()
}

/// Signs `message` with blst under the NUL suite and checks it verifies there.
fn blst_sign(seed: u8, message: &[u8]) -> [u8; 96] {
    let key = blst_key(seed);
    let signature = key.sign(message, NUL_SUITE, &[]);
    assert_eq!(
        signature.verify(true, message, NUL_SUITE, &[], &key.sk_to_pk(), true),
        BLST_ERROR::BLST_SUCCESS
    );
    signature.compress()
}

/// Checks Morsa's signature over its own message against blst's over the hand-written bytes,
/// in both directions.
fn check(seed: u8, morsa_message: &[u8], expected_message: &[u8]) {
    assert_eq!(hex_string(morsa_message), hex_string(expected_message), "message layout");
    let morsa = BlsSecretKey::from_seed([seed; 32]);
    let signature = morsa.sign(morsa_message);
    assert_eq!(signature.0, blst_sign(seed, expected_message), "BLS signatures are deterministic");
    // Morsa's signature verifies in blst, and blst's in Morsa.
    let decoded = Signature::from_bytes(&signature.0).unwrap();
    let key = PublicKey::from_bytes(&morsa.public_key().0).unwrap();
    assert_eq!(decoded.verify(true, expected_message, NUL_SUITE, &[], &key, true), BLST_ERROR::BLST_SUCCESS);
    let theirs = BlsSignature(blst_sign(seed, expected_message));
    morsa.public_key().verify(expected_message, &theirs).unwrap();
    // Under the other suite, or with one byte changed, it is no signature.
    let other = BlsSignature(blst_key(seed).sign(expected_message, POP_SUITE, &[]).compress());
    assert_eq!(morsa.public_key().verify(expected_message, &other), Err(SignatureError::InvalidSignature));
    let mut changed = expected_message.to_vec();
    *changed.last_mut().unwrap() ^= 1;
    assert_eq!(morsa.public_key().verify(&changed, &signature), Err(SignatureError::InvalidSignature));
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn keys_derive_as_ietf_keygen_and_prove_possession_under_the_pop_suite() {
    for seed in [0u8, 7, 200] {
        let morsa = BlsSecretKey::from_seed([seed; 32]);
        let key = blst_key(seed);
        assert_eq!(morsa.to_bytes(), key.to_bytes());
        assert_eq!(morsa.public_key().0, key.sk_to_pk().compress());
        // The proof of possession is the key's signature over its own 48 compressed bytes.
        let proof = key.sign(&key.sk_to_pk().compress(), POP_SUITE, &[]).compress();
        assert_eq!(morsa.proof_of_possession().0, proof);
        morsa.public_key().verify_proof_of_possession(&BlsSignature(proof)).unwrap();
        // A signature under the NUL suite over the same bytes is not a proof.
        let nul = BlsSignature(key.sign(&key.sk_to_pk().compress(), NUL_SUITE, &[]).compress());
        assert_eq!(
            morsa.public_key().verify_proof_of_possession(&nul),
            Err(SignatureError::InvalidSignature)
        );
    }
    // Node IDs: BLAKE2b-256 of the 48 public key bytes.
    let key = BlsSecretKey::from_seed([7; 32]).public_key();
    let digest = blake2b_simd::Params::new().hash_length(32).hash(&key.0);
    assert_eq!(NodeId::from_public_key(&key).0[..], *digest.as_bytes());
}

#[test]
fn storage_confirmations_sign_the_documented_bytes() {
    let blob_id = BlobId(counting());
    let permanent = hex("010003 07000000
         000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
         00");
    let message = morsa_core::storage_confirmation_message(Epoch(7), &blob_id, &PersistenceType::Permanent);
    check(1, &message, &permanent);

    let object_id = ObjectId([0xee; 32]);
    let deletable = hex("010003 04030201
         000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
         01 eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    let persistence = PersistenceType::Deletable { object_id };
    let message = morsa_core::storage_confirmation_message(Epoch(0x0102_0304), &blob_id, &persistence);
    check(2, &message, &deletable);
}

#[test]
fn invalid_blob_attestations_and_epoch_sync_reports_sign_the_documented_bytes() {
    let invalid = hex("020003 ffffffff
         000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    let message = morsa_core::invalid_blob_message(Epoch(u32::MAX), &BlobId(counting()));
    check(3, &message, &invalid);

    let node = NodeId([0x42; 32]);
    let sync_done = hex("040003 2a000000
         4242424242424242424242424242424242424242424242424242424242424242");
    check(4, &morsa_core::epoch_sync_done_message(Epoch(42), &node), &sync_done);
}

/// A committee of four members holding 1, 2, 3 and 4 of 10 shards, keys from seeds 10..14.
fn committee() -> Committee {
    let mut next_shard = 0u16;
    let members = (0..4u8)
        .map(|index| {
            let key = BlsSecretKey::from_seed([10 + index; 32]).public_key();
            let shards = (0..=u16::from(index))
                .map(|_| {
                    next_shard += 1;
                    ShardIndex(next_shard - 1)
                })
                .collect();
            CommitteeMember {
                node_id: NodeId::from_public_key(&key),
                public_key: key,
                address: format!("127.0.0.1:{}", 9000 + u16::from(index)),
                shards,
            }
        })
        .collect();
    let committee = Committee { epoch: Epoch(3), n_shards: 10, members };
    committee.validate().unwrap();
    committee
}

#[test]
fn a_certificate_is_the_blst_aggregate_of_its_signers_over_the_documented_bytes() {
    let committee = committee();
    let message = hex("010003 03000000
         000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
         00");
    assert_eq!(
        morsa_core::storage_confirmation_message(Epoch(3), &BlobId(counting()), &PersistenceType::Permanent),
        message
    );
    // Members 1, 2 and 3 (2 + 3 + 4 = 9 shards, a quorum of 10): aggregated by blst.
    let signatures: Vec<Signature> =
        (1..4u8).map(|index| blst_key(10 + index).sign(&message, NUL_SUITE, &[])).collect();
    let references: Vec<&Signature> = signatures.iter().collect();
    let aggregate = AggregateSignature::aggregate(&references, true).unwrap().to_signature();
    let keys: Vec<PublicKey> = (1..4u8).map(|index| blst_key(10 + index).sk_to_pk()).collect();
    let key_refs: Vec<&PublicKey> = keys.iter().collect();
    assert_eq!(
        aggregate.fast_aggregate_verify(true, &message, NUL_SUITE, &key_refs),
        BLST_ERROR::BLST_SUCCESS
    );

    let certificate = Certificate { signers: vec![1, 2, 3], signature: BlsSignature(aggregate.compress()) };
    committee.verify_certificate(&certificate, &message, Threshold::Quorum).unwrap();
    // Morsa's own aggregation gives the same bytes.
    let parts: Vec<(u16, BlsSignature)> = (1..4u8)
        .map(|index| (u16::from(index), BlsSecretKey::from_seed([10 + index; 32]).sign(&message)))
        .collect();
    assert_eq!(Certificate::aggregate(&parts).unwrap(), certificate);
    // The same aggregate naming other signers, or over the invalid-blob message, is refused.
    let renamed = Certificate { signers: vec![0, 2, 3], ..certificate.clone() };
    assert!(not_signed(committee.verify_certificate(&renamed, &message, Threshold::Validity)));
    let invalid = morsa_core::invalid_blob_message(Epoch(3), &BlobId(counting()));
    assert!(not_signed(committee.verify_certificate(&certificate, &invalid, Threshold::Validity)));
    // Members 0 and 2 (1 + 3 = 4 shards): validity but not quorum.
    let pair: Vec<Signature> =
        [0u8, 2].iter().map(|index| blst_key(10 + index).sign(&message, NUL_SUITE, &[])).collect();
    let pair_refs: Vec<&Signature> = pair.iter().collect();
    let thin = Certificate {
        signers: vec![0, 2],
        signature: BlsSignature(
            AggregateSignature::aggregate(&pair_refs, true).unwrap().to_signature().compress(),
        ),
    };
    committee.verify_certificate(&thin, &message, Threshold::Validity).unwrap();
    let light = committee.verify_certificate(&thin, &message, Threshold::Quorum);
    assert!(matches!(light, Err(CertificateError::InsufficientWeight { weight: 4, .. })), "{light:?}");
    let _: BlsPublicKey = committee.members[0].public_key;
}

use super::*;

fn key(byte: u8) -> BlsSecretKey {
    BlsSecretKey::from_seed([byte; 32])
}

/// The first compressed G1 encoding, with x = 1, 2, …, that is on the curve but outside the
/// prime-order subgroup (almost every curve point is: the cofactor is about 2^126).
fn off_subgroup_public_key() -> [u8; 48] {
    (1..=255u8)
        .map(|x| {
            let mut bytes = [0; 48];
            bytes[0] = 0x80;
            bytes[47] = x;
            bytes
        })
        .find(|bytes| PublicKey::uncompress(bytes).is_ok_and(|key| key.validate().is_err()))
        .expect("a small x gives a point outside G1")
}

/// Likewise in G2: x = (0, c0) for c0 = 1, 2, ….
fn off_subgroup_signature() -> [u8; 96] {
    (1..=255u8)
        .map(|x| {
            let mut bytes = [0; 96];
            bytes[0] = 0x80;
            bytes[95] = x;
            bytes
        })
        .find(|bytes| Signature::uncompress(bytes).is_ok_and(|signature| !signature.subgroup_check()))
        .expect("a small x gives a point outside G2")
}

/// The compressed encoding of the point at infinity.
fn identity<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    bytes[0] = 0xc0;
    bytes
}

#[test]
fn signatures_verify_under_their_key_and_message_only() {
    let (node, other) = (key(1), key(2));
    let signature = node.sign(b"confirm");
    assert_eq!(node.public_key().verify(b"confirm", &signature), Ok(()));
    assert_eq!(other.public_key().verify(b"confirm", &signature), Err(SignatureError::InvalidSignature));
    assert_eq!(node.public_key().verify(b"confirm!", &signature), Err(SignatureError::InvalidSignature));
    for bit in [3, 100, 400, 767] {
        let mut flipped = signature.clone();
        flipped.0[bit / 8] ^= 1 << (bit % 8);
        let refused = node.public_key().verify(b"confirm", &flipped);
        assert!(
            matches!(refused, Err(SignatureError::InvalidSignature | SignatureError::MalformedSignature)),
            "bit {bit} flipped: {refused:?}"
        );
    }
}

#[test]
fn malformed_identity_and_off_subgroup_keys_are_refused() {
    let signature = key(1).sign(b"m");
    let mut uncompressed_flag_missing = key(1).public_key().0;
    uncompressed_flag_missing[0] &= 0x7f;
    for bytes in [[0; 48], [0xff; 48], identity(), off_subgroup_public_key(), uncompressed_flag_missing] {
        let public_key = BlsPublicKey(bytes);
        assert_eq!(public_key.verify(b"m", &signature), Err(SignatureError::MalformedPublicKey), "{bytes:?}");
        assert_eq!(
            public_key.verify_proof_of_possession(&signature),
            Err(SignatureError::MalformedPublicKey)
        );
    }
}

#[test]
fn malformed_identity_and_off_subgroup_signatures_are_refused() {
    let public_key = key(1).public_key();
    for bytes in [[0; 96], [0xff; 96], identity(), off_subgroup_signature()] {
        let signature = BlsSignature(bytes);
        assert_eq!(public_key.verify(b"m", &signature), Err(SignatureError::MalformedSignature));
        assert_eq!(BlsSignature::aggregate(&[signature]), Err(SignatureError::MalformedSignature));
    }
}

#[test]
fn proof_of_possession_uses_its_own_domain() {
    let (node, other) = (key(1), key(2));
    let public_key = node.public_key();
    let pop = node.proof_of_possession();
    assert_eq!(public_key.verify_proof_of_possession(&pop), Ok(()));
    // A plain signature over the same bytes is not a proof of possession, and vice versa.
    let plain = node.sign(&public_key.0);
    assert_eq!(public_key.verify_proof_of_possession(&plain), Err(SignatureError::InvalidSignature));
    assert_eq!(public_key.verify(&public_key.0, &pop), Err(SignatureError::InvalidSignature));
    assert_eq!(other.public_key().verify_proof_of_possession(&pop), Err(SignatureError::InvalidSignature));
}

#[test]
fn aggregate_verifies_with_exactly_its_signers() {
    let keys: Vec<_> = (1..=5).map(key).collect();
    let public_keys: Vec<_> = keys.iter().map(BlsSecretKey::public_key).collect();
    let parts: Vec<_> = keys.iter().map(|key| key.sign(b"blob")).collect();
    let aggregate = BlsSignature::aggregate(&parts).unwrap();
    assert_eq!(verify_aggregate(&public_keys, b"blob", &aggregate), Ok(()));
    let reversed: Vec<_> = public_keys.iter().rev().copied().collect();
    assert_eq!(verify_aggregate(&reversed, b"blob", &aggregate), Ok(()));

    let invalid = Err(SignatureError::InvalidSignature);
    assert_eq!(verify_aggregate(&public_keys[1..], b"blob", &aggregate), invalid);
    let mut swapped = public_keys.clone();
    swapped[2] = key(6).public_key();
    assert_eq!(verify_aggregate(&swapped, b"blob", &aggregate), invalid);
    let mut doubled = public_keys.clone();
    doubled.push(public_keys[0]);
    assert_eq!(verify_aggregate(&doubled, b"blob", &aggregate), invalid);
    assert_eq!(verify_aggregate(&public_keys, b"blob?", &aggregate), invalid);

    // An aggregate of one is the signature itself.
    assert_eq!(BlsSignature::aggregate(&parts[..1]), Ok(parts[0].clone()));
}

#[test]
fn empty_aggregates_are_refused() {
    assert_eq!(BlsSignature::aggregate(&[]), Err(SignatureError::EmptyAggregate));
    let signature = key(1).sign(b"m");
    assert_eq!(verify_aggregate(&[], b"m", &signature), Err(SignatureError::EmptyAggregate));
}

#[test]
fn secret_keys_round_trip_and_stay_secret() {
    let node = key(9);
    assert_eq!(key(9).public_key(), node.public_key());
    assert_ne!(key(8).public_key(), node.public_key());
    let restored = BlsSecretKey::from_bytes(&node.to_bytes()).unwrap();
    assert_eq!(restored.public_key(), node.public_key());
    assert_ne!(BlsSecretKey::generate().public_key(), BlsSecretKey::generate().public_key());
    for bad in [[0; 32], [0xff; 32]] {
        assert_eq!(BlsSecretKey::from_bytes(&bad).unwrap_err(), SignatureError::MalformedSecretKey);
    }
    let debug = format!("{node:?}");
    assert!(debug.contains(&node.public_key().to_string()), "{debug}");
    assert!(!debug.contains(&hex::encode(node.to_bytes())), "{debug}");
}

#[test]
fn bcs_is_raw_bytes_and_json_is_hex() {
    let node = key(3);
    let (public_key, signature) = (node.public_key(), node.sign(b"m"));
    assert_eq!(bcs::to_bytes(&public_key).unwrap(), public_key.0);
    assert_eq!(bcs::to_bytes(&signature).unwrap(), signature.0);
    assert_eq!(bcs::from_bytes::<BlsPublicKey>(&public_key.0).unwrap(), public_key);
    assert_eq!(bcs::from_bytes::<BlsSignature>(&signature.0).unwrap(), signature);

    let json = serde_json::to_string(&public_key).unwrap();
    assert_eq!(json, format!("\"{public_key}\""));
    assert_eq!(public_key.to_string().len(), 96);
    assert_eq!(serde_json::from_str::<BlsPublicKey>(&json).unwrap(), public_key);
    let json = serde_json::to_string(&signature).unwrap();
    assert_eq!(serde_json::from_str::<BlsSignature>(&json).unwrap(), signature);
}

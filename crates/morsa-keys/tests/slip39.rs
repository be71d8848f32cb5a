//! SLIP-39 against Trezor's published test vectors (`data/slip39-vectors.json`, from
//! trezor/python-shamir-mnemonic), and splits recovered from every kind of share subset.
#![allow(clippy::unwrap_used)]

use morsa_keys::slip39::{self, ShareError};
use proptest::prelude::*;

/// Whether an error is the one a vector expects.
type Check = fn(&ShareError) -> bool;

/// The check a failing vector must fail, by its description.
fn expected_failure(description: &str) -> Check {
    let table: [(&str, Check); 14] = [
        ("invalid checksum", |e| matches!(e, ShareError::Checksum { .. })),
        ("invalid padding", |e| matches!(e, ShareError::Padding { .. } | ShareError::BadLength { .. })),
        ("different identifiers", |e| matches!(e, ShareError::Mismatch { what: "identifiers", .. })),
        ("different iteration exponents", |e| {
            matches!(e, ShareError::Mismatch { what: "iteration exponents", .. })
        }),
        ("mismatching group thresholds", |e| {
            matches!(e, ShareError::Mismatch { what: "group thresholds", .. })
        }),
        ("mismatching group counts", |e| matches!(e, ShareError::Mismatch { what: "group counts", .. })),
        ("greater group threshold", |e| matches!(e, ShareError::GroupThresholdAboveCount { .. })),
        ("duplicate member indices", |e| matches!(e, ShareError::DuplicateIndex { .. })),
        ("mismatching member thresholds", |e| matches!(e, ShareError::MemberThresholdMismatch { .. })),
        ("invalid digest", |e| matches!(e, ShareError::Digest)),
        ("Insufficient number of groups", |e| matches!(e, ShareError::NotEnoughGroups { .. })),
        ("insufficient number of members", |e| matches!(e, ShareError::NotEnoughShares { .. })),
        ("insufficient length", |e| matches!(e, ShareError::TooShort { .. })),
        ("invalid master secret length", |e| matches!(e, ShareError::BadLength { .. })),
    ];
    table
        .iter()
        .find(|(needle, _)| description.contains(needle))
        .map(|(_, check)| *check)
        .unwrap_or(|e| matches!(e, ShareError::NotEnoughShares { .. }))
}

#[test]
fn every_published_vector_combines_to_its_secret_or_fails_the_check_it_names() {
    let vectors: Vec<(String, Vec<String>, String, String)> =
        serde_json::from_str(include_str!("data/slip39-vectors.json")).unwrap();
    assert_eq!(vectors.len(), 45);
    let mut valid = 0;
    for (description, mnemonics, secret, _xprv) in &vectors {
        let result = slip39::combine(mnemonics, b"TREZOR");
        if secret.is_empty() {
            let error = result.expect_err(description);
            assert!(expected_failure(description)(&error), "{description}: failed with {error:?}");
        } else {
            assert_eq!(
                hex::encode(result.unwrap_or_else(|e| panic!("{description}: {e}"))),
                *secret,
                "{description}"
            );
            valid += 1;
        }
    }
    assert_eq!(valid, 15);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any `threshold` of `count` shares give the secret back; one fewer is refused as too
    /// few; a share of another split is refused by identifier.
    #[test]
    fn any_threshold_subset_recovers_and_fewer_do_not(
        count in 1u8..=16,
        threshold_seed in any::<u8>(),
        secret in prop_oneof![prop::collection::vec(any::<u8>(), 16), prop::collection::vec(any::<u8>(), 32)],
        order in Just((0..16usize).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let threshold = if count == 1 { 1 } else { 2 + threshold_seed % (count - 1) };
        let shares = slip39::split(&secret, threshold, count, b"", 0).unwrap();
        prop_assert_eq!(shares.len(), usize::from(count));
        let subset: Vec<&String> =
            order.iter().filter(|i| **i < shares.len()).take(usize::from(threshold)).map(|i| &shares[*i]).collect();
        prop_assert_eq!(slip39::combine(&subset, b"").unwrap(), secret.clone());
        if threshold > 1 {
            let fewer = &subset[..subset.len() - 1];
            prop_assert!(matches!(slip39::combine(fewer, b""), Err(ShareError::NotEnoughShares { .. })), "fewer");
            let other = slip39::split(&secret, threshold, count, b"", 0).unwrap();
            let mut mixed: Vec<&String> = fewer.to_vec();
            mixed.push(&other[0]);
            // One identifier in 2^15 repeats; then the digest check catches the mix.
            let error = slip39::combine(&mixed, b"").unwrap_err();
            prop_assert!(
                matches!(error, ShareError::Mismatch { what: "identifiers", .. } | ShareError::Digest
                    | ShareError::DuplicateIndex { .. }),
                "{:?}", error
            );
        }
    }
}

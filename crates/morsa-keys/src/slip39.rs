//! SLIP-39: Shamir's secret sharing of a master secret as mnemonic word lists, implemented
//! from the specification (<https://github.com/satoshilabs/slips/blob/master/slip-0039.md>)
//! and checked against Trezor's published test vectors.
//!
//! [`combine`] reads every kind of share set the specification defines, including the
//! two-level (several groups) kind. [`split`] makes the single-level kind the specification
//! recommends for a plain T-of-N split: one group, split into N member shares. Shares are
//! made extendable (the identifier does not salt the passphrase encryption), as the
//! specification's share generation says.

mod cipher;
mod gf256;
mod rs1024;
mod shamir;
mod share;
mod wordlist;

use std::collections::BTreeMap;

use rand::{RngCore, TryRngCore};

pub use share::{MIN_WORDS, Share};

/// The most shares (and groups) a split can have: indices are four bits.
pub const MAX_SHARES: u8 = 16;

/// Why shares cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    /// Threshold or share count out of range.
    #[error(
        "cannot split into {count} shares with threshold {threshold}: need 1 ≤ threshold ≤ shares ≤ 16, and threshold 1 only with one share (every share would be the whole secret)"
    )]
    BadThreshold {
        /// Shares needed.
        threshold: u8,
        /// Shares asked for.
        count: u8,
    },
    /// The secret is shorter than 16 bytes or of odd length.
    #[error("a master secret of {0} bytes cannot be shared: it must be at least 16 bytes and of even length")]
    BadSecretLength(usize),
    /// The passphrase has characters other than printable ASCII.
    #[error("a share passphrase may only hold printable ASCII characters (space to '~')")]
    BadPassphrase,
}

/// Why shares cannot be combined; each variant names the check that failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    /// No share was given.
    #[error("no shares given")]
    Empty,
    /// A word is not on the SLIP-39 wordlist.
    #[error("share {share}: word {position} ({word:?}) is not a SLIP-39 word (misspelled?)")]
    UnknownWord {
        /// The share (from 1).
        share: usize,
        /// The word's position (from 1).
        position: usize,
        /// The word.
        word: String,
    },
    /// Fewer words than the shortest share.
    #[error("share {share} has {words} words; a share has at least {min}")]
    TooShort {
        /// The share (from 1).
        share: usize,
        /// Its words.
        words: usize,
        /// The fewest a share has.
        min: usize,
    },
    /// A word count no share has.
    #[error("share {share} has {words} words, a length no share has (a word is missing or extra)")]
    BadLength {
        /// The share (from 1).
        share: usize,
        /// Its words.
        words: usize,
    },
    /// The RS1024 checksum fails.
    #[error("share {share} fails its checksum: a word is wrong, swapped or missing")]
    Checksum {
        /// The share (from 1).
        share: usize,
    },
    /// The padding bits are not zero.
    #[error("share {share} has non-zero padding bits: it is not a valid share")]
    Padding {
        /// The share (from 1).
        share: usize,
    },
    /// Two shares disagree on a parameter all shares of one split share.
    #[error(
        "share {share} is not from the same split as share 1: their {what} differ (shares of one split start with the same two words)"
    )]
    Mismatch {
        /// The share (from 1).
        share: usize,
        /// The parameter: identifier, iteration exponent, group threshold, group count or length.
        what: &'static str,
    },
    /// The group threshold exceeds the group count.
    #[error("the shares say {threshold} groups are needed of only {count}: they are not valid shares")]
    GroupThresholdAboveCount {
        /// Groups needed.
        threshold: u8,
        /// Groups made.
        count: u8,
    },
    /// Fewer groups than the group threshold.
    #[error("shares of {have} groups given; {need} groups are needed (threshold)")]
    NotEnoughGroups {
        /// Groups given.
        have: usize,
        /// Groups needed.
        need: u8,
    },
    /// More groups than the group threshold.
    #[error("shares of {have} groups given; give shares of exactly {need} groups")]
    TooManyGroups {
        /// Groups given.
        have: usize,
        /// Groups needed.
        need: u8,
    },
    /// Shares of one group disagree on its member threshold.
    #[error("shares of group {group} disagree on the group's threshold: they are not from the same split")]
    MemberThresholdMismatch {
        /// The group (from 1).
        group: u8,
    },
    /// The same share given twice (or two shares with one index).
    #[error("share {share} has the same index as another share of its group (the same share given twice?)")]
    DuplicateIndex {
        /// The share (from 1).
        share: usize,
    },
    /// Fewer shares than the threshold.
    #[error("{have} share(s) given, the threshold is {need}: {need} shares are needed")]
    NotEnoughShares {
        /// Shares given in the group.
        have: usize,
        /// Shares needed.
        need: u8,
    },
    /// More shares than the threshold.
    #[error("{have} shares given, the threshold is {need}: give exactly {need}")]
    TooManyShares {
        /// Shares given in the group.
        have: usize,
        /// Shares needed.
        need: u8,
    },
    /// The shares interpolate to a secret whose digest does not match.
    #[error(
        "the shares do not combine to a consistent secret (digest check failed): one is altered or from another split"
    )]
    Digest,
    /// The passphrase has characters other than printable ASCII.
    #[error("a share passphrase may only hold printable ASCII characters (space to '~')")]
    BadPassphrase,
}

fn printable(passphrase: &[u8]) -> bool {
    passphrase.iter().all(|byte| (32..=126).contains(byte))
}

/// Splits `master_secret` into `count` mnemonic shares, any `threshold` of which recover it
/// with `passphrase`; PBKDF2 runs `10000 << exponent` iterations in all.
pub fn split(
    master_secret: &[u8],
    threshold: u8,
    count: u8,
    passphrase: &[u8],
    exponent: u8,
) -> Result<Vec<String>, SplitError> {
    split_with(master_secret, threshold, count, passphrase, exponent, &mut rand::rngs::OsRng.unwrap_err())
}

fn split_with(
    master_secret: &[u8],
    threshold: u8,
    count: u8,
    passphrase: &[u8],
    exponent: u8,
    rng: &mut impl RngCore,
) -> Result<Vec<String>, SplitError> {
    if threshold == 0 || threshold > count || count > MAX_SHARES || (threshold == 1 && count > 1) {
        return Err(SplitError::BadThreshold { threshold, count });
    }
    if master_secret.len() < 16 || !master_secret.len().is_multiple_of(2) {
        return Err(SplitError::BadSecretLength(master_secret.len()));
    }
    if !printable(passphrase) {
        return Err(SplitError::BadPassphrase);
    }
    let identifier = u16::try_from(rng.next_u32() & 0x7fff).expect("15 bits fit in u16");
    let encrypted = cipher::encrypt(master_secret, passphrase, exponent & 0x0f, identifier, true);
    // One group, needed alone; its share is the encrypted secret itself.
    Ok(shamir::split(threshold, count, &encrypted, rng)
        .into_iter()
        .map(|(member_index, value)| {
            Share {
                identifier,
                extendable: true,
                exponent: exponent & 0x0f,
                group_index: 0,
                group_threshold: 1,
                group_count: 1,
                member_index,
                member_threshold: threshold,
                value,
            }
            .to_mnemonic()
        })
        .collect())
}

/// The master secret of `mnemonics` and `passphrase` (empty if none). A wrong passphrase
/// cannot be detected here (SLIP-39 decrypts to another secret by design): callers that
/// must catch it keep a check value inside the secret.
pub fn combine<S: AsRef<str>>(mnemonics: &[S], passphrase: &[u8]) -> Result<Vec<u8>, ShareError> {
    if !printable(passphrase) {
        return Err(ShareError::BadPassphrase);
    }
    let shares = mnemonics
        .iter()
        .enumerate()
        .map(|(i, mnemonic)| Share::from_mnemonic(mnemonic.as_ref(), i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let first = shares.first().ok_or(ShareError::Empty)?;
    for (i, share) in shares.iter().enumerate().skip(1) {
        let mismatch = |what| ShareError::Mismatch { share: i + 1, what };
        if share.identifier != first.identifier || share.extendable != first.extendable {
            return Err(mismatch("identifiers"));
        }
        if share.exponent != first.exponent {
            return Err(mismatch("iteration exponents"));
        }
        if share.group_threshold != first.group_threshold {
            return Err(mismatch("group thresholds"));
        }
        if share.group_count != first.group_count {
            return Err(mismatch("group counts"));
        }
        if share.value.len() != first.value.len() {
            return Err(mismatch("lengths"));
        }
    }
    if first.group_threshold > first.group_count {
        return Err(ShareError::GroupThresholdAboveCount {
            threshold: first.group_threshold,
            count: first.group_count,
        });
    }
    let mut groups: BTreeMap<u8, Vec<(usize, &Share)>> = BTreeMap::new();
    for (i, share) in shares.iter().enumerate() {
        groups.entry(share.group_index).or_default().push((i + 1, share));
    }
    if groups.len() < usize::from(first.group_threshold) {
        return Err(ShareError::NotEnoughGroups { have: groups.len(), need: first.group_threshold });
    }
    if groups.len() > usize::from(first.group_threshold) {
        return Err(ShareError::TooManyGroups { have: groups.len(), need: first.group_threshold });
    }
    let mut group_shares = Vec::with_capacity(groups.len());
    for (group_index, members) in &groups {
        group_shares.push((*group_index, recover_group(*group_index, members)?));
    }
    let points: Vec<(u8, &[u8])> = group_shares.iter().map(|(x, value)| (*x, value.as_slice())).collect();
    let encrypted = shamir::recover(first.group_threshold, &points).ok_or(ShareError::Digest)?;
    Ok(cipher::decrypt(&encrypted, passphrase, first.exponent, first.identifier, first.extendable))
}

/// The group share that the member shares `members` (numbered from 1) of group
/// `group_index` give.
fn recover_group(group_index: u8, members: &[(usize, &Share)]) -> Result<Vec<u8>, ShareError> {
    let threshold = members[0].1.member_threshold;
    let mut seen = [false; 16];
    for (number, share) in members {
        if share.member_threshold != threshold {
            return Err(ShareError::MemberThresholdMismatch { group: group_index + 1 });
        }
        let slot = &mut seen[usize::from(share.member_index)];
        if *slot {
            return Err(ShareError::DuplicateIndex { share: *number });
        }
        *slot = true;
    }
    if members.len() < usize::from(threshold) {
        return Err(ShareError::NotEnoughShares { have: members.len(), need: threshold });
    }
    if members.len() > usize::from(threshold) {
        return Err(ShareError::TooManyShares { have: members.len(), need: threshold });
    }
    let points: Vec<(u8, &[u8])> =
        members.iter().map(|(_, share)| (share.member_index, share.value.as_slice())).collect();
    shamir::recover(threshold, &points).ok_or(ShareError::Digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_split_parameters_are_refused() {
        let secret = [7u8; 32];
        for (threshold, count) in [(0, 3), (4, 3), (2, 17), (1, 2)] {
            assert_eq!(
                split(&secret, threshold, count, b"", 0),
                Err(SplitError::BadThreshold { threshold, count })
            );
        }
        assert_eq!(split(&[7u8; 15], 2, 3, b"", 0), Err(SplitError::BadSecretLength(15)));
        assert_eq!(split(&[7u8; 17], 2, 3, b"", 0), Err(SplitError::BadSecretLength(17)));
        assert_eq!(split(&secret, 2, 3, "é".as_bytes(), 0), Err(SplitError::BadPassphrase));
        assert_eq!(split(&secret, 1, 1, b"", 0).unwrap().len(), 1);
    }
}

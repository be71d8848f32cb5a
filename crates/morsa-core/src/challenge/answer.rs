//! A node's answer to one challenge, and its verification from the blob ID and length alone.

use redstuff::merkle::{self, MerkleProof, MerkleTree};
use redstuff::{
    BlobId, EncodingConfig, RecoveryError, RecoverySymbol, SliverExpansion, SliverPair, SliverPairMetadata,
    SliverType, VerifiedMetadata,
};
use serde::{Deserialize, Serialize};

use super::sample::ChallengeItem;

/// What a challenged node answers: the two challenged symbols with their paths to their
/// slivers' roots, and those roots with their path to the metadata root.
///
/// The symbols are cells of the slivers' expansions, the same [`RecoverySymbol`]s (a cell and
/// its Merkle path) that recovery sends; a stored symbol `j` of a sliver is cell `j`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeAnswer {
    /// The roots of the pair's primary and secondary slivers.
    pub pair_hashes: SliverPairMetadata,
    /// Path from the pair's metadata leaf to the metadata root.
    pub pair_proof: MerkleProof,
    /// The challenged symbol of the primary sliver, proven at its position.
    pub primary: RecoverySymbol,
    /// The challenged symbol of the secondary sliver, proven at its position.
    pub secondary: RecoverySymbol,
}

/// Why an answer does not prove the challenged symbols.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The challenge's blob length or shard count has no RedStuff code.
    #[error("the challenge names a blob length or shard count RedStuff cannot encode")]
    Code,
    /// The pair's roots are not those the blob ID commits to.
    #[error("the sliver pair's roots do not lead to the blob ID")]
    PairHashes,
    /// A symbol is not of the blob's symbol size.
    #[error("the {kind} symbol has {actual} bytes, the blob's symbols have {expected}")]
    SymbolSize {
        /// Which sliver.
        kind: SliverType,
        /// Bytes expected.
        expected: usize,
        /// Bytes sent.
        actual: usize,
    },
    /// A symbol comes from another sliver than the challenged one.
    #[error("the {kind} symbol comes from sliver {actual}, not sliver {expected}")]
    SliverIndex {
        /// Which sliver.
        kind: SliverType,
        /// The challenged sliver.
        expected: u16,
        /// The sliver the answer names.
        actual: u16,
    },
    /// A symbol's path does not lead to its sliver's root at the challenged position.
    #[error("the {kind} symbol's Merkle path does not lead to its sliver's root")]
    SymbolProof {
        /// Which sliver.
        kind: SliverType,
    },
}

impl ChallengeAnswer {
    /// Checks that this answers `item` of a blob in a system of `n_shards`.
    pub fn verify(&self, item: &ChallengeItem, n_shards: u16) -> Result<(), AnswerError> {
        let config = EncodingConfig::new(n_shards).map_err(|_| AnswerError::Code)?;
        let symbol_size =
            usize::from(config.symbol_size(item.unencoded_length).map_err(|_| AnswerError::Code)?);
        let n = config.n_shards();
        let pair_index = usize::from(item.pair.0);
        let mut joined = [0u8; 64];
        joined[..32].copy_from_slice(self.pair_hashes.primary.bytes());
        joined[32..].copy_from_slice(self.pair_hashes.secondary.bytes());
        let leaf = merkle::leaf_hash(&joined);
        let root = self.pair_proof.root_from_leaf(&leaf, pair_index);
        if pair_index >= n
            || self.pair_proof.path.len() != merkle::tree_height(n)
            || BlobId::from_root(item.unencoded_length, &root) != item.blob_id
        {
            return Err(AnswerError::PairHashes);
        }
        let checks = [
            (
                SliverType::Primary,
                &self.primary,
                item.pair.0,
                item.primary_position,
                &self.pair_hashes.primary,
            ),
            (
                SliverType::Secondary,
                &self.secondary,
                item.pair.secondary_sliver_index(n_shards),
                item.secondary_position,
                &self.pair_hashes.secondary,
            ),
        ];
        for (kind, symbol, sliver_index, position, root) in checks {
            if symbol.symbol.len() != symbol_size {
                return Err(AnswerError::SymbolSize {
                    kind,
                    expected: symbol_size,
                    actual: symbol.symbol.len(),
                });
            }
            if symbol.source_index != sliver_index {
                return Err(AnswerError::SliverIndex {
                    kind,
                    expected: sliver_index,
                    actual: symbol.source_index,
                });
            }
            let leaf = merkle::leaf_hash(&symbol.symbol);
            if !symbol.proof.verifies(root.bytes(), &leaf, usize::from(position), n) {
                return Err(AnswerError::SymbolProof { kind });
            }
        }
        Ok(())
    }
}

/// The answer to `item` from the verified `metadata` of its blob and the stored sliver `pair`
/// (CPU-heavy: expands both slivers; call it off async workers).
pub fn answer_challenge(
    metadata: &VerifiedMetadata,
    pair: &SliverPair,
    item: &ChallengeItem,
) -> Result<ChallengeAnswer, RecoveryError> {
    let malformed = |reason| RecoveryError::Malformed { source_index: item.pair.0, reason };
    if pair.primary.index != item.pair.0 {
        return Err(malformed("the stored pair is not the challenged one"));
    }
    let hashes = &metadata.metadata().hashes;
    let pair_hashes = *hashes
        .get(usize::from(item.pair.0))
        .ok_or(malformed("the challenged pair is not in the metadata"))?;
    let mut joined = Vec::with_capacity(64 * hashes.len());
    for pair in hashes {
        joined.extend_from_slice(pair.primary.bytes());
        joined.extend_from_slice(pair.secondary.bytes());
    }
    let mut leaves = vec![merkle::EMPTY_NODE; hashes.len()];
    merkle::leaf_hashes_into(&joined, 64, &mut leaves);
    let pair_proof = MerkleTree::from_leaf_hashes(leaves)
        .proof(usize::from(item.pair.0))
        .ok_or(malformed("the challenged pair is not in the metadata"))?;
    let position = |kind: SliverType| match kind {
        SliverType::Primary => (usize::from(item.primary_position), metadata.symbols_in(kind)),
        SliverType::Secondary => (usize::from(item.secondary_position), metadata.symbols_in(kind)),
    };
    let mut symbols = [SliverType::Primary, SliverType::Secondary].into_iter().map(|kind| {
        let (position, stored) = position(kind);
        if position >= stored {
            return Err(malformed("the challenged position is not a stored symbol"));
        }
        let sliver = match kind {
            SliverType::Primary => &pair.primary,
            SliverType::Secondary => &pair.secondary,
        };
        SliverExpansion::new(metadata, kind, sliver)?
            .recovery_symbol(position)
            .ok_or(malformed("the challenged position is not a stored symbol"))
    });
    let primary = symbols.next().expect("two kinds")?;
    let secondary = symbols.next().expect("two kinds")?;
    Ok(ChallengeAnswer { pair_hashes, pair_proof, primary, secondary })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use redstuff::merkle::MerkleNode;

    use super::*;
    use crate::challenge::{CandidateBlob, derive_shard_items};
    use crate::index::ShardIndex;

    const N: u16 = 10;

    fn encoded(len: usize, salt: u8) -> redstuff::EncodedBlob {
        let blob: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap() ^ salt).collect();
        redstuff::encode(EncodingConfig::new(N).unwrap(), &blob).unwrap()
    }

    /// The items of `shard` for the blob, each with the genuine answer.
    fn answered(
        encoded: &redstuff::EncodedBlob,
        shard: u16,
        seed: u8,
    ) -> Vec<(ChallengeItem, ChallengeAnswer)> {
        let metadata = &encoded.metadata;
        let candidate = CandidateBlob {
            blob_id: *metadata.blob_id(),
            unencoded_length: metadata.unencoded_length(),
            encoded_size: 1,
        };
        let items = derive_shard_items(&[seed; 32], N, ShardIndex(shard), &[candidate], 4).unwrap();
        items
            .into_iter()
            .map(|item| {
                let pair = &encoded.pairs[usize::from(item.pair.0)];
                (item, answer_challenge(metadata, pair, &item).unwrap())
            })
            .collect()
    }

    #[test]
    fn genuine_answers_verify_and_a_wrong_pair_is_refused() {
        let blob = encoded(3000, 1);
        for shard in 0..N {
            for (item, answer) in answered(&blob, shard, 7) {
                assert_eq!(answer.verify(&item, N), Ok(()));
                let other = ChallengeItem { pair: crate::SliverPairIndex((item.pair.0 + 1) % N), ..item };
                assert_eq!(answer.verify(&other, N), Err(AnswerError::PairHashes));
                let wrong_pair = &blob.pairs[usize::from(other.pair.0)];
                assert!(answer_challenge(&blob.metadata, wrong_pair, &item).is_err());
            }
        }
    }

    #[test]
    fn an_answer_for_another_blob_or_length_is_refused() {
        let (a, b) = (encoded(3000, 1), encoded(3000, 2));
        let (item, answer) = answered(&a, 3, 1).remove(0);
        let (other_item, _) = answered(&b, 3, 1).remove(0);
        assert_eq!(
            answer.verify(&ChallengeItem { blob_id: other_item.blob_id, ..item }, N),
            Err(AnswerError::PairHashes)
        );
        assert!(answer.verify(&ChallengeItem { unencoded_length: 2999, ..item }, N).is_err());
    }

    /// One way to alter an answer.
    #[derive(Debug, Clone)]
    enum Tamper {
        Symbol { secondary: bool, byte: usize, bit: u8 },
        Proof { secondary: bool, level: usize, byte: usize },
        PairHash { secondary: bool, byte: usize },
        PairProof { level: usize, byte: usize },
        SourceIndex { secondary: bool },
        Truncate { secondary: bool },
    }

    fn tamper() -> impl Strategy<Value = Tamper> {
        prop_oneof![
            (any::<bool>(), any::<usize>(), 0u8..8).prop_map(|(secondary, byte, bit)| Tamper::Symbol {
                secondary,
                byte,
                bit
            }),
            (any::<bool>(), any::<usize>(), 0usize..32).prop_map(|(secondary, level, byte)| Tamper::Proof {
                secondary,
                level,
                byte
            }),
            (any::<bool>(), 0usize..32).prop_map(|(secondary, byte)| Tamper::PairHash { secondary, byte }),
            (any::<usize>(), 0usize..32).prop_map(|(level, byte)| Tamper::PairProof { level, byte }),
            any::<bool>().prop_map(|secondary| Tamper::SourceIndex { secondary }),
            any::<bool>().prop_map(|secondary| Tamper::Truncate { secondary }),
        ]
    }

    fn flip(node: &mut MerkleNode, byte: usize) {
        let mut digest = *node.bytes();
        digest[byte] ^= 1;
        *node = MerkleNode::Digest(digest);
    }

    fn apply(tamper: &Tamper, answer: &mut ChallengeAnswer) {
        match *tamper {
            Tamper::Symbol { secondary, byte, bit } => {
                let symbol = if secondary { &mut answer.secondary } else { &mut answer.primary };
                let len = symbol.symbol.len();
                symbol.symbol[byte % len] ^= 1 << bit;
            }
            Tamper::Proof { secondary, level, byte } => {
                let symbol = if secondary { &mut answer.secondary } else { &mut answer.primary };
                let len = symbol.proof.path.len();
                flip(&mut symbol.proof.path[level % len], byte);
            }
            Tamper::PairHash { secondary, byte } => {
                let hash = if secondary {
                    &mut answer.pair_hashes.secondary
                } else {
                    &mut answer.pair_hashes.primary
                };
                flip(hash, byte);
            }
            Tamper::PairProof { level, byte } => {
                let len = answer.pair_proof.path.len();
                flip(&mut answer.pair_proof.path[level % len], byte);
            }
            Tamper::SourceIndex { secondary } => {
                let symbol = if secondary { &mut answer.secondary } else { &mut answer.primary };
                symbol.source_index = (symbol.source_index + 1) % N;
            }
            Tamper::Truncate { secondary } => {
                let symbol = if secondary { &mut answer.secondary } else { &mut answer.primary };
                symbol.symbol.pop();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_tampered_answer_is_refused(len in 1usize..5000, shard in 0..N, seed: u8, index in 0usize..4, change in tamper()) {
            let blob = encoded(len, seed);
            let (item, mut answer) = answered(&blob, shard, seed).swap_remove(index);
            prop_assert_eq!(answer.verify(&item, N), Ok(()));
            apply(&change, &mut answer);
            prop_assert!(answer.verify(&item, N).is_err(), "tampered with {:?}, still verifies", change);
        }
    }
}

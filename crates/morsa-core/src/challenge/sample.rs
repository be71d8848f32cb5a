//! Which symbols a round challenges: per shard, a sample of certified blobs, half drawn
//! uniformly and half weighted by encoded size, and for each one stored symbol of the shard's
//! primary sliver and one of its secondary sliver. Also who audits whom.

use redstuff::{BlobId, EncodingConfig};
use serde::{Deserialize, Serialize};

use crate::committee::NodeId;
use crate::hash::{Digest, domain_hash};
use crate::index::{ShardIndex, SliverPairIndex};

/// A blob that may be challenged: certified before the current epoch, live, not invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateBlob {
    /// The blob ID.
    pub blob_id: BlobId,
    /// Its length in bytes (with the ID, what an answer is checked against).
    pub unencoded_length: u64,
    /// Its encoded size, the weight of the size-weighted half of the sample.
    pub encoded_size: u64,
}

/// One challenge: the shard's stored symbol `primary_position` of its primary sliver and
/// `secondary_position` of its secondary sliver of one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeItem {
    /// The challenged shard.
    pub shard: ShardIndex,
    /// The blob.
    pub blob_id: BlobId,
    /// The blob's length in bytes.
    pub unencoded_length: u64,
    /// The sliver pair the shard stores for this blob.
    pub pair: SliverPairIndex,
    /// A stored symbol of the primary sliver, below `ks`.
    pub primary_position: u16,
    /// A stored symbol of the secondary sliver, below `kp`.
    pub secondary_position: u16,
}

/// Why challenges could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    /// The shard count is not one the code supports.
    #[error("no RedStuff code for {0} shards")]
    Shards(u16),
    /// The shard is not below the shard count.
    #[error("{shard} is out of range for {n_shards} shards")]
    ShardOutOfRange {
        /// The shard.
        shard: ShardIndex,
        /// The shard count.
        n_shards: u16,
    },
}

/// The `samples` challenges of `shard` in the round with `seed`, over `candidates` (in blob ID
/// order, as every party lists them). Even draws pick a blob uniformly, odd draws with
/// probability proportional to its encoded size. Empty if there are no candidates.
pub fn derive_shard_items(
    seed: &Digest,
    n_shards: u16,
    shard: ShardIndex,
    candidates: &[CandidateBlob],
    samples: u32,
) -> Result<Vec<ChallengeItem>, SampleError> {
    let config = EncodingConfig::new(n_shards).map_err(|_| SampleError::Shards(n_shards))?;
    if shard.0 >= n_shards {
        return Err(SampleError::ShardOutOfRange { shard, n_shards });
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // Prefix sums of encoded sizes, in u128: no sum of u64 sizes overflows it.
    let cumulative: Vec<u128> = candidates
        .iter()
        .scan(0u128, |total, blob| {
            *total += u128::from(blob.encoded_size);
            Some(*total)
        })
        .collect();
    let total_size = cumulative.last().copied().unwrap_or(0);
    let count = u64::try_from(candidates.len()).expect("a candidate list fits in memory, so in u64");
    let ks = u32::try_from(config.ks()).expect("ks is below n, a u16");
    let kp = u32::try_from(config.kp()).expect("kp is below n, a u16");
    let items = (0..samples)
        .map(|draw| {
            let digest =
                domain_hash(b"morsa/challenge/item", &[seed, &shard.0.to_le_bytes(), &draw.to_le_bytes()]);
            let value = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
            let index = if draw % 2 == 1 && total_size > 0 {
                let point = u128::from(value) % total_size;
                cumulative.partition_point(|sum| *sum <= point)
            } else {
                usize::try_from(value % count).expect("below the candidate count, a usize")
            };
            let blob = candidates[index];
            let primary = u32::from_le_bytes(digest[8..12].try_into().expect("4 bytes")) % ks;
            let secondary = u32::from_le_bytes(digest[12..16].try_into().expect("4 bytes")) % kp;
            ChallengeItem {
                shard,
                blob_id: blob.blob_id,
                unencoded_length: blob.unencoded_length,
                pair: shard.pair_for(&blob.blob_id, n_shards),
                primary_position: u16::try_from(primary).expect("below ks, a u16"),
                secondary_position: u16::try_from(secondary).expect("below kp, a u16"),
            }
        })
        .collect();
    Ok(items)
}

/// The auditor of `target` in the round with `seed`: another member, drawn with probability
/// proportional to its shard count. `members` lists `(node, shards)` in committee order; `None`
/// if no other member holds shards.
pub fn pick_auditor(seed: &Digest, target: &NodeId, members: &[(NodeId, usize)]) -> Option<NodeId> {
    let others = || members.iter().filter(|(node, shards)| node != target && *shards > 0);
    let total: u64 = others().map(|(_, shards)| u64::try_from(*shards).unwrap_or(u64::MAX)).sum();
    if total == 0 {
        return None;
    }
    let digest = domain_hash(b"morsa/challenge/auditor", &[seed, &target.0]);
    let mut point = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) % total;
    for (node, shards) in others() {
        let weight = u64::try_from(*shards).unwrap_or(u64::MAX);
        if point < weight {
            return Some(*node);
        }
        point -= weight;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(sizes: &[u64]) -> Vec<CandidateBlob> {
        sizes
            .iter()
            .enumerate()
            .map(|(index, size)| CandidateBlob {
                blob_id: BlobId([u8::try_from(index).unwrap(); 32]),
                unencoded_length: *size / 5,
                encoded_size: *size,
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_items_and_another_seed_others() {
        let candidates = blobs(&[100, 200, 300, 400, 500, 600, 700]);
        let a = derive_shard_items(&[1; 32], 10, ShardIndex(3), &candidates, 40).unwrap();
        assert_eq!(a, derive_shard_items(&[1; 32], 10, ShardIndex(3), &candidates, 40).unwrap());
        assert_ne!(a, derive_shard_items(&[2; 32], 10, ShardIndex(3), &candidates, 40).unwrap());
        assert_ne!(a, derive_shard_items(&[1; 32], 10, ShardIndex(4), &candidates, 40).unwrap());
    }

    #[test]
    fn positions_are_stored_symbols_and_pairs_follow_the_rotation() {
        let config = EncodingConfig::new(13).unwrap();
        let candidates = blobs(&[1, 2, 3]);
        for shard in 0..13 {
            let items = derive_shard_items(&[5; 32], 13, ShardIndex(shard), &candidates, 50).unwrap();
            for item in items {
                assert!(usize::from(item.primary_position) < config.ks());
                assert!(usize::from(item.secondary_position) < config.kp());
                assert_eq!(item.pair.shard_for(&item.blob_id, 13), ShardIndex(shard));
            }
        }
    }

    #[test]
    fn odd_draws_follow_the_size_and_even_draws_do_not() {
        // One blob holds 99% of the bytes: the weighted half picks it almost always, the
        // uniform half about one time in two.
        let candidates = blobs(&[9_900, 100]);
        let items = derive_shard_items(&[9; 32], 10, ShardIndex(0), &candidates, 4000).unwrap();
        let big = |draws: &mut dyn Iterator<Item = &ChallengeItem>| {
            draws.filter(|item| item.blob_id == candidates[0].blob_id).count()
        };
        let weighted = big(&mut items.iter().skip(1).step_by(2));
        let uniform = big(&mut items.iter().step_by(2));
        assert!(weighted > 1900, "weighted draws picked the big blob {weighted} times of 2000");
        assert!((800..1200).contains(&uniform), "uniform draws picked it {uniform} times of 2000");
    }

    #[test]
    fn no_candidates_no_items_and_bad_shards_are_refused() {
        assert!(derive_shard_items(&[0; 32], 10, ShardIndex(0), &[], 8).unwrap().is_empty());
        assert_eq!(
            derive_shard_items(&[0; 32], 10, ShardIndex(10), &blobs(&[1]), 8),
            Err(SampleError::ShardOutOfRange { shard: ShardIndex(10), n_shards: 10 })
        );
    }

    #[test]
    fn auditors_are_others_weighted_by_shards() {
        let members = [(NodeId([1; 32]), 8), (NodeId([2; 32]), 1), (NodeId([3; 32]), 1)];
        let mut picked = [0usize; 3];
        for seed in 0..3000u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&seed.to_le_bytes());
            let auditor = pick_auditor(&digest, &NodeId([2; 32]), &members).unwrap();
            assert_ne!(auditor, NodeId([2; 32]));
            picked[members.iter().position(|(node, _)| *node == auditor).unwrap()] += 1;
        }
        assert!(picked[0] > 2 * 1000 && picked[2] > 150, "picks {picked:?}");
        assert_eq!(pick_auditor(&[0; 32], &NodeId([1; 32]), &members[..1]), None);
    }
}

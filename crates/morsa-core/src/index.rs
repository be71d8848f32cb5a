//! Typed indices, so a shard index is never passed where a sliver pair index is meant.

use std::fmt;

use redstuff::BlobId;
use serde::{Deserialize, Serialize};

/// A shard of the system, `0..n`. Each epoch a committee assigns every shard to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardIndex(pub u16);

/// A sliver pair of one blob, `0..n`: primary sliver `p` and secondary sliver `n − 1 − p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SliverPairIndex(pub u16);

/// An epoch number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch(pub u32);

impl ShardIndex {
    /// The sliver pair of `blob_id` this shard stores (pairs are rotated by the blob ID).
    pub fn pair_for(self, blob_id: &BlobId, n_shards: u16) -> SliverPairIndex {
        let pair = blob_id.pair_for_shard(usize::from(self.0), usize::from(n_shards));
        SliverPairIndex(u16::try_from(pair).expect("pair index is below n, a u16"))
    }
}

impl SliverPairIndex {
    /// The shard that stores this pair of `blob_id`.
    pub fn shard_for(self, blob_id: &BlobId, n_shards: u16) -> ShardIndex {
        let shard = blob_id.shard_for_pair(usize::from(self.0), usize::from(n_shards));
        ShardIndex(u16::try_from(shard).expect("shard index is below n, a u16"))
    }

    /// Index of the secondary sliver in this pair, `n − 1 − p`.
    pub fn secondary_sliver_index(self, n_shards: u16) -> u16 {
        n_shards - 1 - self.0
    }
}

impl fmt::Display for ShardIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

impl fmt::Display for SliverPairIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sliver pair {}", self.0)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_and_pair_maps_are_inverse_for_every_shard() {
        let blob_id = BlobId([0xa7; 32]);
        for n in [4u16, 7, 10, 1000] {
            let rotation = blob_id.rotation(usize::from(n));
            for shard in 0..n {
                let pair = ShardIndex(shard).pair_for(&blob_id, n);
                assert_eq!(pair.shard_for(&blob_id, n), ShardIndex(shard));
                assert_eq!((usize::from(pair.0) + rotation) % usize::from(n), usize::from(shard));
            }
        }
    }

    #[test]
    fn secondary_index_mirrors_the_pair() {
        assert_eq!(SliverPairIndex(0).secondary_sliver_index(10), 9);
        assert_eq!(SliverPairIndex(9).secondary_sliver_index(10), 0);
    }
}

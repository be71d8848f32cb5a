//! The public values of the node store's API: what a write names and what statistics report.

use std::collections::BTreeMap;
use std::fmt;

#[cfg(doc)]
use super::{MAX_SLIVER_BYTES, NodeStore};

/// Which sliver of a shard's pair: the primary (a row of the encoded blob) or the secondary (a
/// column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SliverKind {
    /// The primary sliver.
    Primary,
    /// The secondary sliver.
    Secondary,
}

impl fmt::Display for SliverKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        })
    }
}

/// One sliver to store with [`NodeStore::put_slivers`].
#[derive(Clone, Copy)]
pub struct SliverWrite<'a> {
    /// The blob the sliver belongs to.
    pub blob_id: [u8; 32],
    /// The shard the sliver belongs to.
    pub shard: u16,
    /// Which sliver of the shard's pair.
    pub kind: SliverKind,
    /// The sliver's bytes (BCS, opaque here), at most [`MAX_SLIVER_BYTES`].
    pub bytes: &'a [u8],
}

impl fmt::Debug for SliverWrite<'_> {
    /// Shows the length of the bytes, not (up to 64 MiB of) the bytes.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SliverWrite")
            .field("blob_id", &self.blob_id)
            .field("shard", &self.shard)
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What [`NodeStore::delete_blob`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteStats {
    /// Slivers removed, primary and secondary, of every shard.
    pub slivers: u64,
    /// Bytes of those slivers.
    pub bytes: u64,
}

/// What one shard holds, in [`StoreStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Primary slivers stored for this shard.
    pub primary_slivers: u64,
    /// Secondary slivers stored for this shard.
    pub secondary_slivers: u64,
    /// Bytes of those slivers (not counting the store's own overhead).
    pub bytes: u64,
}

/// What a node store holds, from [`NodeStore::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Per shard that holds at least one sliver; a shard with none is absent.
    pub shards: BTreeMap<u16, ShardStats>,
    /// Blobs whose metadata is stored.
    pub blobs: u64,
}

//! What the node lacks: the slivers of its shards missing for certified blobs. Blocking store
//! reads; call from a blocking thread.

use morsa_store::SliverKind;
use redstuff::{BlobId, SliverType};

use crate::blob_info::{BlobInfo, Status};
use crate::error::NodeError;
use crate::node::Node;

/// Slivers of owned shards missing for one blob: shard and kind.
pub type MissingSlivers = Vec<(u16, SliverKind)>;

impl Node {
    /// The index of the `kind` sliver stored under `shard` for `blob_id`.
    pub(crate) fn sliver_index(&self, blob_id: &BlobId, shard: u16, kind: SliverType) -> u16 {
        let n = self.config().n_shards();
        let pair = blob_id.pair_for_shard(usize::from(shard), n);
        let index = match kind {
            SliverType::Primary => pair,
            SliverType::Secondary => redstuff::secondary_index_of_pair(pair, n),
        };
        u16::try_from(index).expect("sliver indices are below n, which is a u16")
    }

    /// The slivers of owned shards missing for `blob_id` if it is certified, and the size of
    /// one sliver (the larger kind, estimated from the blob's size).
    pub(crate) fn missing_of(&self, blob_id: &BlobId) -> Result<(MissingSlivers, u64), NodeError> {
        let info = self.blob_info(blob_id)?;
        self.missing_with(blob_id, &info)
    }

    fn missing_with(&self, blob_id: &BlobId, info: &BlobInfo) -> Result<(MissingSlivers, u64), NodeError> {
        if info.status(self.view().epoch()) != Status::Certified {
            return Ok((Vec::new(), 0));
        }
        let mut missing = Vec::new();
        // Shards being pulled from their previous owner are not repaired meanwhile.
        let syncing = self.moves().lock().syncing();
        for shard in self.owned_shards().difference(&syncing).copied() {
            let (primary, secondary) = self.store().sliver_kinds_held(&blob_id.0, shard)?;
            if !primary {
                missing.push((shard, SliverKind::Primary));
            }
            if !secondary {
                missing.push((shard, SliverKind::Secondary));
            }
        }
        Ok((missing, self.sliver_bytes_estimate(info.size)))
    }

    /// Bytes of a primary sliver (the larger kind) of a blob of `size` bytes.
    pub(crate) fn sliver_bytes_estimate(&self, size: u64) -> u64 {
        let config = self.config();
        let symbol = config.symbol_size(size).map_or(0, u64::from);
        symbol.saturating_mul(morsa_core::convert::saturating_u64(config.ks()))
    }

    /// Every certified blob with missing slivers: the blob, its missing slivers, and one
    /// sliver's estimated size. Reads every blob record and the index of every owned shard.
    pub(crate) fn scan_missing(&self) -> Result<Vec<(BlobId, MissingSlivers, u64)>, NodeError> {
        let epoch = self.view().epoch();
        let mut certified = Vec::new();
        self.store().for_each_blob_info(|blob_id, bytes| {
            if let Ok(info) = bcs::from_bytes::<BlobInfo>(bytes)
                && info.status(epoch) == Status::Certified
            {
                certified.push((BlobId(*blob_id), info));
            }
            Ok(())
        })?;
        let mut found = Vec::new();
        for (blob_id, info) in certified {
            let (missing, bytes) = self.missing_with(&blob_id, &info)?;
            if !missing.is_empty() {
                found.push((blob_id, missing, bytes));
            }
        }
        Ok(found)
    }

    /// The certified blobs, for the scrubber.
    pub(crate) fn certified_blobs(&self) -> Result<Vec<BlobId>, NodeError> {
        let epoch = self.view().epoch();
        let mut certified = Vec::new();
        self.store().for_each_blob_info(|blob_id, bytes| {
            if let Ok(info) = bcs::from_bytes::<BlobInfo>(bytes)
                && info.status(epoch) == Status::Certified
            {
                certified.push(BlobId(*blob_id));
            }
            Ok(())
        })?;
        Ok(certified)
    }
}

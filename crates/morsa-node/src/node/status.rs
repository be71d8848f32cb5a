//! What the node reports of itself: a blob's status and its share of it, and its health.

use morsa_api::node::{NodeBlobState, NodeBlobStatus, NodeHealth, ShardHealth, ShardStatus};
use morsa_core::ShardIndex;

use crate::blob_info::Status;
use crate::error::NodeError;
use crate::node::Node;

impl Node {
    /// The node's view of `blob_id` and how much of its share it holds.
    pub fn blob_status(&self, blob_id: &redstuff::BlobId) -> Result<NodeBlobStatus, NodeError> {
        let info = self.blob_info(blob_id)?;
        let epoch = self.view().epoch();
        let status = match info.status(epoch) {
            Status::Nonexistent => NodeBlobState::Nonexistent,
            Status::Registered => NodeBlobState::Registered,
            Status::Certified => NodeBlobState::Certified,
            Status::Invalid => NodeBlobState::Invalid,
        };
        let shards = self.owned_shards();
        let mut stored_slivers = 0u32;
        for shard in &shards {
            let (primary, secondary) = self.store().sliver_kinds_held(&blob_id.0, *shard)?;
            stored_slivers += u32::from(primary) + u32::from(secondary);
        }
        Ok(NodeBlobStatus {
            status,
            end_epoch: info.end_epoch(epoch),
            epoch,
            metadata_stored: self.store().has_metadata(&blob_id.0)?,
            stored_slivers,
            expected_slivers: 2 * morsa_core::convert::saturating_u32(shards.len()),
        })
    }

    /// Identity, epoch and shards.
    pub(crate) fn health(&self, uptime_secs: u64) -> Result<NodeHealth, NodeError> {
        let stats = self.store().stats()?;
        let (locked, positions, pages_pulled_total) = {
            let moves = self.moves().lock();
            let positions: std::collections::BTreeMap<u16, redstuff::BlobId> = moves
                .gained
                .iter()
                .filter_map(|(shard, gained)| gained.position.map(|position| (*shard, position)))
                .collect();
            (
                moves.locked.keys().copied().collect::<std::collections::BTreeSet<u16>>(),
                positions,
                moves.pages_pulled,
            )
        };
        let mut listed = self.owned_shards();
        listed.extend(locked);
        let shards = listed
            .into_iter()
            .map(|shard| {
                let held = stats.shards.get(&shard);
                let status = self.shard_status(shard);
                ShardHealth {
                    shard: ShardIndex(shard),
                    status,
                    slivers: held.map_or(0, |held| held.primary_slivers + held.secondary_slivers),
                    bytes: held.map_or(0, |held| held.bytes),
                    pull_position: positions
                        .get(&shard)
                        .copied()
                        .filter(|_| status == ShardStatus::ActiveSync),
                }
            })
            .collect();
        Ok(NodeHealth {
            node_id: self.id(),
            epoch: self.view().epoch(),
            public_key: self.key().public_key(),
            shards,
            blobs: stats.blobs,
            pending_uploads: 0, // filled in by the server, which holds the buffer
            event_cursor: self.cursor()?.map_or(0, |cursor| cursor + 1),
            uptime_secs,
            repair: morsa_api::node::RepairHealth::default(), // filled in by the server
            migration: self.moves().stats.health(pages_pulled_total),
            disk: None, // filled in by the server, which knows the reserve
        })
    }
}

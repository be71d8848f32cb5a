//! The system-wide availability margin: what nodes report of the slivers they lack, and what
//! the coordinator answers once it has put every node's report together.
//!
//! A blob's *margin* is the number of shards beyond the `kp = n − 2f` a reader needs that
//! still hold its slivers: `n − kp − |lost|`, where `lost` is the shards of nodes that stopped
//! reporting together with the shards whose node reports lacking one of the blob's slivers.
//! These reports are soft state: each coordinator replica keeps the latest of every node in
//! memory; they never enter the log.

use morsa_core::{BlsSignature, Epoch, NodeId};
use redstuff::BlobId;
use serde::{Deserialize, Serialize};

/// Most blob IDs one summary lists, over all its shards (its JSON stays far below
/// [`super::MAX_BODY_BYTES`]); the shards' counts still count the rest.
pub const MAX_LISTED_BLOBS: usize = 2048;
/// Most at-risk blobs an [`AvailabilityView`] lists.
pub const MAX_AT_RISK_BLOBS: usize = 20;

/// What one shard of a node lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardAvailability {
    /// The shard.
    pub shard: u16,
    /// Certified blobs whose primary or secondary sliver this shard lacks.
    pub missing_blobs: u64,
    /// Those blobs, the most at risk first, at most [`MAX_LISTED_BLOBS`] over the summary.
    pub blobs: Vec<BlobId>,
}

/// A node's summary of the slivers it knows it lacks, for every shard it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilitySummary {
    /// The node.
    pub node: NodeId,
    /// The epoch whose shards it describes.
    pub epoch: Epoch,
    /// When it was made (ms since the Unix epoch, the node's clock): a newer one replaces it.
    pub time_ms: u64,
    /// Every owned shard, lacking something or not.
    pub shards: Vec<ShardAvailability>,
}

impl AvailabilitySummary {
    /// What the node signs: [`morsa_core::availability_summary_message`] over the BLAKE2b of
    /// the summary's BCS.
    pub fn message(&self) -> Vec<u8> {
        let bytes = bcs::to_bytes(self).expect("a summary serializes");
        let digest = morsa_core::hash::domain_hash(b"morsa/availability-summary", &[&bytes]);
        morsa_core::availability_summary_message(self.epoch, &self.node, &digest)
    }

    /// Blob IDs listed over all shards.
    pub fn listed(&self) -> usize {
        self.shards.iter().map(|shard| shard.blobs.len()).sum()
    }
}

/// `POST` body of [`super::routes::AVAILABILITY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAvailability {
    /// The summary.
    pub summary: AvailabilitySummary,
    /// The node's BLS signature over [`AvailabilitySummary::message`].
    pub signature: BlsSignature,
}

/// One blob's margin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMargin {
    /// The blob.
    pub blob_id: BlobId,
    /// Shards beyond the `kp` needed that hold its slivers (0 also when fewer than `kp` do).
    pub margin_shards: u32,
}

/// What the coordinator answers a summary: the system-wide margin of every blob it listed, so
/// that the node repairs first what is missing in most places.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityAnswer {
    /// One per listed blob.
    pub margins: Vec<BlobMargin>,
}

/// How many blobs have one margin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarginCount {
    /// The margin, in shards.
    pub margin_shards: u32,
    /// Certified blobs with it.
    pub blobs: u64,
}

/// A blob with one of the lowest margins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtRiskBlob {
    /// The blob.
    pub blob_id: BlobId,
    /// Its margin.
    pub margin_shards: u32,
    /// Shards that lack it: reported missing, or of a node not reporting.
    pub lost_shards: Vec<u16>,
}

/// One committee member as the availability view sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAvailability {
    /// The node.
    pub node_id: NodeId,
    /// Its shards in the current epoch.
    pub shards: u16,
    /// Whether its latest summary is recent (and of the current epoch).
    pub reporting: bool,
    /// Age of its latest summary in this replica, if it sent one.
    pub last_report_ms: Option<u64>,
    /// Blobs it lacks slivers of, summed over its shards (from its latest summary).
    pub missing_blobs: u64,
}

/// `GET` [`super::routes::AVAILABILITY`]: the system-wide availability margin as this replica
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityView {
    /// The current epoch.
    pub epoch: Epoch,
    /// Shards `n`.
    pub n_shards: u16,
    /// Shards a reader needs, `kp = n − 2f`.
    pub needed_shards: u16,
    /// Margin of a blob that lacks nothing, `n − kp`.
    pub full_margin_shards: u32,
    /// Shards of members not reporting: counted as lost for every blob.
    pub unreachable_shards: Vec<u16>,
    /// Every member of the current committee.
    pub nodes: Vec<NodeAvailability>,
    /// Certified blobs (not expired, not invalid).
    pub certified_blobs: u64,
    /// The smallest margin over them; none without certified blobs.
    pub min_margin_shards: Option<u32>,
    /// Certified blobs by margin, every margin that occurs, ascending.
    pub histogram: Vec<MarginCount>,
    /// The blobs of lowest margin below the full one, at most [`MAX_AT_RISK_BLOBS`], lowest
    /// first.
    pub at_risk: Vec<AtRiskBlob>,
    /// Blobs some node lacks but left out of its summary's lists (counted, not placed): their
    /// margins above may be too high.
    pub unlisted_missing_blobs: u64,
}

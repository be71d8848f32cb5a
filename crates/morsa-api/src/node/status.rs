//! What a storage node answers about what it stores and how it is doing.

use morsa_core::{BlsPublicKey, Committee, Epoch, NodeId, ShardIndex};
use serde::{Deserialize, Serialize};

/// Whether the node stores a piece (metadata or one sliver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredStatus {
    /// True once the piece is durably stored and verified.
    pub stored: bool,
}

/// What the node knows of a blob from the coordinator's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeBlobState {
    /// No live registration the node knows of (never registered, expired or deleted).
    Nonexistent,
    /// Registered, not yet certified: the node accepts its metadata and slivers.
    Registered,
    /// Certified: the node keeps it until `end_epoch` and repairs missing slivers.
    Certified,
    /// Proven inconsistently encoded: the node no longer serves it.
    Invalid,
}

/// `GET` [`super::routes::BLOB_STATUS`]: the node's view of one blob and how much of its
/// share the node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBlobStatus {
    /// Registration state as the node has seen it.
    pub status: NodeBlobState,
    /// First epoch in which the blob is no longer stored (latest over its live objects);
    /// none when nonexistent.
    pub end_epoch: Option<Epoch>,
    /// The epoch the node answered in.
    pub epoch: Epoch,
    /// Whether the node stores the blob's metadata.
    pub metadata_stored: bool,
    /// Slivers of the blob the node stores for the shards it holds in `epoch` (a pair
    /// counts two).
    pub stored_slivers: u32,
    /// Slivers it must store: two per shard it holds in `epoch`.
    pub expected_slivers: u32,
}

impl NodeBlobStatus {
    /// Whether the node holds the metadata and every sliver of its shards: what it must
    /// have before it signs a storage confirmation.
    pub fn fully_stored(&self) -> bool {
        self.metadata_stored && self.stored_slivers >= self.expected_slivers
    }
}

/// `GET` [`super::routes::COMMITTEE`]: the committees the node follows, as the coordinator's
/// events told it. Like the coordinator's `CommitteeInfo` without `epoch_change_done`, which
/// a node does not track. A single node may lie: clients trust a committee only when nodes
/// holding a quorum of shards agree on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCommittee {
    /// The epoch the node is in.
    pub epoch: Epoch,
    /// Committee of that epoch.
    pub current: Committee,
    /// Committee of the next epoch, once selected.
    pub next: Option<Committee>,
    /// The zones their members declared, as the node last heard them from the coordinator
    /// (absent: none known, or an older node): a prior for choosing nodes, nothing more.
    #[serde(default, skip_serializing_if = "crate::coord::MemberZones::is_empty")]
    pub zones: crate::coord::MemberZones,
}

/// What a node is doing with one of its shards (Walrus's shard states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardStatus {
    /// Owned and synced: serves reads and accepts writes.
    Active,
    /// Newly owned: pulling the shard's slivers of certified blobs from its previous owner
    /// (accepts writes).
    ActiveSync,
    /// Newly owned: rebuilding the shard's slivers from other nodes' recovery symbols, its
    /// previous owner having failed to serve them (accepts writes).
    ActiveRecover,
    /// Owned in the previous epoch, moving to its new owner: served to that owner only, and
    /// deleted a grace epoch after the epoch change completed.
    LockedToMove,
}

/// One shard in [`NodeHealth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardHealth {
    /// The shard.
    pub shard: ShardIndex,
    /// What the node is doing with it.
    pub status: ShardStatus,
    /// Slivers stored for it.
    pub slivers: u64,
    /// Bytes of those slivers.
    pub bytes: u64,
    /// While pulled from its previous owner: the blob ID the next page starts at (persisted;
    /// a restarted node resumes there).
    #[serde(default)]
    pub pull_position: Option<redstuff::BlobId>,
}

/// `GET` [`super::routes::HEALTH`]: identity, epoch, shards and work in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHealth {
    /// The node's ID (hash of `public_key`).
    pub node_id: NodeId,
    /// The epoch the node is in.
    pub epoch: Epoch,
    /// The key the node signs with.
    pub public_key: BlsPublicKey,
    /// The shards it holds or is taking over, in index order.
    pub shards: Vec<ShardHealth>,
    /// Blobs it stores something of.
    pub blobs: u64,
    /// Uploads held as pending (before their registration was seen).
    pub pending_uploads: u64,
    /// Coordinator events processed: the sequence number of the next event it will apply.
    pub event_cursor: u64,
    /// Seconds since the process started.
    pub uptime_secs: u64,
    /// Self-healing: blob sync, repair and scrubbing (all zero from nodes that predate it).
    #[serde(default)]
    pub repair: RepairHealth,
    /// Shard migration: what was pulled from previous owners and served to new ones (all
    /// zero from nodes that predate it).
    #[serde(default)]
    pub migration: MigrationHealth,
    /// The filesystem under the node's database (absent from nodes that predate it, or if it
    /// cannot be asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskHealth>,
}

/// The filesystem under a node's database in [`NodeHealth`]. While `free_bytes` is under
/// `reserve_bytes` the node refuses uploads (`insufficient_storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskHealth {
    /// Bytes the node may still write (what an unprivileged process may use).
    pub free_bytes: u64,
    /// The filesystem's size.
    pub total_bytes: u64,
    /// Free bytes the node keeps for repairs, shard pulls and its database's own growth.
    pub reserve_bytes: u64,
}

/// Shard migration in [`NodeHealth`]. Counters count since the process started, except
/// `pages_pulled_total`, which is persisted with the shards' positions (a restarted node
/// continues it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MigrationHealth {
    /// Pages pulled from previous owners, over the node's lifetime (persisted).
    pub pages_pulled_total: u64,
    /// Pages pulled by this process.
    pub pages_pulled: u64,
    /// Slivers pulled, verified and stored by this process.
    pub slivers_pulled: u64,
    /// Bytes of those slivers.
    pub bytes_pulled: u64,
    /// Bytes of page answers received (metadata and slivers).
    pub page_bytes_received: u64,
    /// Slivers left to recovery: the previous owner lacked them, or they failed verification.
    pub slivers_left_to_recovery: u64,
    /// Shards that fell back to recovery as a whole (no progress for the set interval).
    pub shards_fallen_back: u64,
    /// Pages served to new owners.
    pub pages_served: u64,
    /// Page requests refused (bad signature, not the shard's new owner, shard not held).
    pub pages_refused: u64,
    /// Shards whose moved data was deleted after the grace epoch.
    pub shards_released: u64,
    /// Slivers a read asked for before the pull reached them, fetched from the shard's
    /// previous owner (verified and stored) instead of rebuilt.
    pub slivers_read_through: u64,
}

/// Self-healing in [`NodeHealth`]: what is missing, what was rebuilt and at what cost, and the
/// scrubber's progress. Counters count since the process started.
///
/// A node has recovered everything it knows of when `caught_up` is true: a full scan of its
/// certified blobs ran since it started and nothing is queued or being rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepairHealth {
    /// Whether background repair and scrubbing are paused (on-demand rebuilds still run).
    pub paused: bool,
    /// A full scan ran since the start, and no sliver is queued or being rebuilt.
    pub caught_up: bool,
    /// Full scans of the certified blobs completed.
    pub scans: u64,
    /// Slivers known missing and queued (including those in their grace period).
    pub backlog_slivers: u64,
    /// Their bytes (estimated from the blobs' sizes).
    pub backlog_bytes: u64,
    /// Slivers being rebuilt now.
    pub in_flight_slivers: u64,
    /// Slivers rebuilt, verified and stored.
    pub rebuilt_slivers: u64,
    /// Bytes of those slivers.
    pub rebuilt_bytes: u64,
    /// Bytes of recovery-symbol answers fetched from peers for them (about one sliver's
    /// worth per rebuilt sliver when all goes well).
    pub fetched_bytes: u64,
    /// Slivers rebuilt at once because a request needed them.
    pub on_demand_slivers: u64,
    /// Rebuild attempts that failed (retried with backoff).
    pub failed_attempts: u64,
    /// Slivers given up on after the last retry (found again by the next scan).
    pub given_up_slivers: u64,
    /// The smallest availability margin known of a queued blob: shards seen holding it minus
    /// the `n − 2f` needed to read it; none when unknown.
    pub lowest_margin: Option<u32>,
    /// Peers caught sending symbols that fail their proofs.
    pub suspected_peers: Vec<NodeId>,
    /// Blobs this node proved inconsistently encoded.
    pub inconsistent_blobs: u64,
    /// Slivers the scrubber re-verified.
    pub scrubbed_slivers: u64,
    /// Bytes of those slivers.
    pub scrubbed_bytes: u64,
    /// Stored slivers found damaged (by the scrubber or a read), dropped and queued.
    pub corrupt_slivers: u64,
    /// Full scrub passes completed.
    pub scrub_passes: u64,
    /// Reports that a committee member answers nothing, taken by the coordinator.
    pub unresponsive_reported: u64,
    /// Blobs this node declared lost to the coordinator (`DeclareLoss` reports it took): found
    /// lacking slivers by a scan or the scrubber; each at most once per epoch.
    pub losses_declared: u64,
}

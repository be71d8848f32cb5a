//! Why the node refused a request or failed: one enum, each variant naming what was wrong with
//! its values, mapped to an HTTP status and a stable code in one place ([`NodeError::code`]),
//! with a message that tells the caller what to do. Damage to what the node stored and its own
//! failures are 5xx with their own codes, never the caller's 4xx.

use std::net::IpAddr;

use morsa_api::node::{MAX_RECOVERY_BATCH, NodeErrorCode};
use morsa_core::ShardIndex;
use redstuff::{
    BlobId, ConfigError, InconsistencyProofError, MetadataError, SliverType, SliverVerificationError,
    WireError,
};

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A shard page was asked for an epoch this node has not reached yet.
    #[error("this node is in epoch {current}, not yet in epoch {asked}: ask again once it has caught up")]
    EpochNotReached {
        /// The epoch of the request.
        asked: u32,
        /// This node's epoch.
        current: u32,
    },
    /// A shard page was refused: the shard is not kept here for the requester (wrong epoch,
    /// not its new owner, a bad signature, or the shard is not moving from this node).
    #[error("shard {shard} is not kept here for node {requester} in epoch {epoch}: {reason}")]
    NotShardsNewOwner {
        /// The shard asked for.
        shard: u16,
        /// The node that asked.
        requester: morsa_core::NodeId,
        /// The epoch of the request.
        epoch: u32,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A shard page asked for no blobs or more than a page holds.
    #[error("a shard page holds 1 to {max} blobs, not {asked}")]
    PageSize {
        /// Blobs asked for.
        asked: u32,
        /// The most a page holds.
        max: u32,
    },
    /// The coordinator has not announced a registration of the blob (yet).
    #[error(
        "blob {0} is not registered; register it with the coordinator first, or upload with ?pending=true"
    )]
    NotRegistered(BlobId),
    /// The blob is registered, but not with the persistence a confirmation was asked for.
    #[error(
        "blob {0} with that persistence is not registered; register it with the coordinator first, or upload with ?pending=true"
    )]
    NotRegisteredAs(BlobId),
    /// Every registration of the blob has expired or was deleted.
    #[error("blob {0} has expired or was deleted")]
    Expired(BlobId),
    /// The blob was proven inconsistently encoded.
    #[error("blob {0} is invalid: it was encoded inconsistently")]
    Invalid(BlobId),
    /// The sliver pair belongs to a shard this node does not own in the current epoch.
    #[error(
        "sliver pair {pair} of this blob belongs to {shard}, which this node does not own in the current epoch"
    )]
    WrongShard {
        /// The pair index.
        pair: u16,
        /// The shard that stores it.
        shard: ShardIndex,
    },
    /// A sliver pair index is not below the shard count.
    #[error("bad request: sliver pair {pair} is out of range for {n_shards} shards")]
    PairOutOfRange {
        /// The pair index asked for.
        pair: u16,
        /// Shards of the system.
        n_shards: usize,
    },
    /// A recovery target (a sliver index) is not below the shard count.
    #[error(
        "bad request: target sliver {target} is out of range for {n_shards} shards (it is a sliver index, not a pair index)"
    )]
    TargetOutOfRange {
        /// The sliver index asked for.
        target: u16,
        /// Shards of the system.
        n_shards: usize,
    },
    /// A recovery batch asks for more items than one batch may.
    #[error("bad request: a recovery batch may ask for at most {MAX_RECOVERY_BATCH} items, not {0}")]
    BatchTooLong(usize),
    /// A body (metadata, sliver, inconsistency proof) does not decode.
    #[error("bad request: {0}")]
    Malformed(WireError),
    /// A sliver body is larger than a sliver of the blob can be.
    #[error("size mismatch: {0}")]
    SliverTooLarge(WireError),
    /// The body is a sliver of another index than its path names.
    #[error("bad request: pair {pair} holds {kind} sliver {expected}, but the body is sliver {got}")]
    WrongSliverIndex {
        /// The pair of the path.
        pair: u16,
        /// The kind of the path.
        kind: SliverType,
        /// The sliver index the pair holds.
        expected: usize,
        /// The sliver index of the body.
        got: u16,
    },
    /// The sliver does not have the blob's shape (symbol size, symbol count).
    #[error("size mismatch: {0}")]
    SliverShape(SliverVerificationError),
    /// The sliver does not match its hash in the metadata.
    #[error("hash mismatch: {0}")]
    SliverHashMismatch(SliverVerificationError),
    /// The uploaded metadata is another blob's.
    #[error("hash mismatch: the body is metadata of {body}, not {blob_id}")]
    MetadataOfOtherBlob {
        /// The blob of the body.
        body: BlobId,
        /// The blob of the path.
        blob_id: BlobId,
    },
    /// The uploaded metadata does not hash to the blob ID or does not fit the system.
    #[error("hash mismatch: {0}")]
    MetadataMismatch(MetadataError),
    /// An inconsistency proof sent to the route of the other sliver kind.
    #[error(
        "bad request: the proof rebuilds a {proven} sliver but was sent for {sent} slivers; send it to the {proven} route"
    )]
    ProofForOtherKind {
        /// The kind the proof rebuilds.
        proven: SliverType,
        /// The kind of the route.
        sent: SliverType,
    },
    /// An inconsistency proof that does not prove the blob inconsistent.
    #[error("bad request: the inconsistency proof does not hold: {0}")]
    ProofDoesNotHold(InconsistencyProofError),
    /// The node stores no metadata of the blob.
    #[error("not found: no metadata of {0} is stored; upload it first")]
    MetadataNotStored(BlobId),
    /// The node does not store the sliver asked for.
    #[error("not found: {kind} sliver of pair {pair} of {blob_id} is not stored")]
    SliverNotStored {
        /// The blob.
        blob_id: BlobId,
        /// The pair.
        pair: u16,
        /// The kind.
        kind: SliverType,
    },
    /// The node holds no sliver of the kind recovery symbols towards the target come from.
    #[error("not found: this node holds no {kind} sliver of {blob_id}; ask the nodes of other shards")]
    NoSourceSlivers {
        /// The blob.
        blob_id: BlobId,
        /// The kind of the slivers symbols would come from.
        kind: SliverType,
    },
    /// A missing sliver could not be rebuilt from other nodes now (it is queued for repair).
    #[error(
        "not found: the {kind} sliver of shard {shard} of {blob_id} is missing here and could not be rebuilt from other nodes now; it is queued for repair, retry later or ask another node"
    )]
    NotRebuilt {
        /// The blob.
        blob_id: BlobId,
        /// The shard.
        shard: u16,
        /// The kind.
        kind: SliverType,
    },
    /// No peer answered with metadata of the blob that hashes to its ID.
    #[error("not found: no peer answered with the metadata of {0}")]
    NoPeerMetadata(BlobId),
    /// The node does not hold every sliver it owns of the blob yet (a confirmation waits).
    #[error("not ready: this node does not yet hold every sliver it owns of {0}; upload them first")]
    NotHeldYet(BlobId),
    /// The node is shutting down.
    #[error("busy: the node is shutting down")]
    ShuttingDown,
    /// The disk of the node's database has less free space than the node keeps.
    #[error(
        "insufficient storage: the node's disk has {} bytes free ({promised} of them promised to \
         uploads waiting for their registration), under the {} it keeps free \
         (limits.min_free_disk_bytes); it takes no new data until room is made",
        disk.free_bytes,
        disk.reserve_bytes
    )]
    DiskFull {
        /// The disk's figures.
        disk: morsa_api::node::DiskHealth,
        /// Bytes of held uploads still to be written.
        promised: u64,
    },
    /// One caller has as many recovery-batch answers here as it may.
    #[error(
        "busy: {caller} already has {max} recovery answers being computed or unread here; read them first"
    )]
    CallerBusy {
        /// The caller's address.
        caller: IpAddr,
        /// Answers one caller may have.
        max: usize,
    },
    /// The pending-upload buffer holds as many uploads as it may.
    #[error(
        "busy: the pending-upload buffer holds its {0} uploads; retry after the blob's registration is seen"
    )]
    PendingEntriesFull(usize),
    /// The pending-upload buffer has no room for the upload's bytes.
    #[error(
        "busy: the pending-upload buffer is full ({held} of {max} bytes); retry after the blob's registration is seen"
    )]
    PendingBytesFull {
        /// Bytes held.
        held: u64,
        /// Bytes it may hold.
        max: u64,
    },
    /// The committee's shard count is not one the code supports.
    #[error("the committee's shard count: {0}")]
    Committee(ConfigError),
    /// Storage failed.
    #[error("storage error: {0}")]
    Store(#[from] morsa_store::StoreError),
    /// A sliver's group commit failed, or the committer stopped.
    #[error("{0}")]
    Ingest(#[from] crate::ingest::IngestError),
    /// The node's own record of a blob (what the coordinator's events said of it) does not
    /// decode: its disk is damaged.
    #[error("this node's stored record of {blob_id} is damaged ({source}); ask another node")]
    CorruptBlobInfo {
        /// The blob.
        blob_id: BlobId,
        /// Why it does not decode.
        source: bcs::Error,
    },
    /// The metadata this node stored of a blob does not decode or no longer hashes to the blob
    /// ID: its disk is damaged.
    #[error("this node's stored metadata of {blob_id} is damaged ({damage}); ask another node")]
    CorruptMetadata {
        /// The blob.
        blob_id: BlobId,
        /// What the check found.
        damage: MetadataDamage,
    },
    /// A blocking worker thread failed (a bug).
    #[error("a worker task failed")]
    WorkerFailed,
    /// The stored slivers do not answer a challenge (they are not the challenged pair's).
    #[error("the stored slivers do not answer the challenge: {0}")]
    Challenge(String),
}

/// What is wrong with metadata the node stored.
#[derive(Debug, thiserror::Error)]
pub enum MetadataDamage {
    /// It does not decode.
    #[error("it does not decode: {0}")]
    Undecodable(WireError),
    /// It is another blob's.
    #[error("it is the metadata of {0}")]
    OtherBlob(BlobId),
    /// It does not hash to the blob ID.
    #[error("it does not hash to the blob ID: {0}")]
    Mismatch(MetadataError),
}

impl NodeError {
    /// The stable code (and with it the HTTP status) of this error.
    pub fn code(&self) -> NodeErrorCode {
        match self {
            Self::NotRegistered(_) | Self::NotRegisteredAs(_) => NodeErrorCode::NotRegistered,
            Self::EpochNotReached { .. } => NodeErrorCode::NotReady,
            Self::NotShardsNewOwner { .. } => NodeErrorCode::Forbidden,
            Self::PageSize { .. } => NodeErrorCode::BadRequest,
            Self::WrongShard { .. } => NodeErrorCode::WrongShard,
            Self::SliverTooLarge(_) | Self::SliverShape(_) => NodeErrorCode::SizeMismatch,
            Self::SliverHashMismatch(_) | Self::MetadataOfOtherBlob { .. } | Self::MetadataMismatch(_) => {
                NodeErrorCode::HashMismatch
            }
            Self::Expired(_) => NodeErrorCode::BlobExpired,
            Self::Invalid(_) => NodeErrorCode::InvalidBlob,
            Self::MetadataNotStored(_)
            | Self::SliverNotStored { .. }
            | Self::NoSourceSlivers { .. }
            | Self::NotRebuilt { .. }
            | Self::NoPeerMetadata(_) => NodeErrorCode::NotFound,
            Self::PairOutOfRange { .. }
            | Self::TargetOutOfRange { .. }
            | Self::BatchTooLong(_)
            | Self::Malformed(_)
            | Self::WrongSliverIndex { .. }
            | Self::ProofForOtherKind { .. }
            | Self::ProofDoesNotHold(_) => NodeErrorCode::BadRequest,
            Self::NotHeldYet(_) => NodeErrorCode::NotReady,
            Self::DiskFull { .. } => NodeErrorCode::InsufficientStorage,
            Self::ShuttingDown
            | Self::CallerBusy { .. }
            | Self::PendingEntriesFull(_)
            | Self::PendingBytesFull { .. }
            | Self::Ingest(crate::ingest::IngestError::Stopped) => NodeErrorCode::Unavailable,
            Self::Committee(_)
            | Self::Store(_)
            | Self::Ingest(_)
            | Self::WorkerFailed
            | Self::Challenge(_) => NodeErrorCode::Internal,
            Self::CorruptBlobInfo { .. } | Self::CorruptMetadata { .. } => NodeErrorCode::CorruptData,
        }
    }
}

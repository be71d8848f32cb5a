//! Why the node refused a request: one enum, mapped to an HTTP status and a stable code in one
//! place, with a message that tells the caller what to do.

use morsa_api::node::NodeErrorCode;
use morsa_core::ShardIndex;
use redstuff::BlobId;

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The coordinator has not announced a registration of the blob (yet).
    #[error(
        "blob {0} is not registered; register it with the coordinator first, or upload with ?pending=true"
    )]
    NotRegistered(String),
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
    /// The body does not have the size the blob's parameters give.
    #[error("size mismatch: {0}")]
    SizeMismatch(String),
    /// The sliver or metadata does not match the blob ID.
    #[error("hash mismatch: {0}")]
    HashMismatch(String),
    /// Every registration of the blob has expired or was deleted.
    #[error("blob {0} has expired or was deleted")]
    Expired(String),
    /// The blob was proven inconsistently encoded.
    #[error("blob {0} is invalid: it was encoded inconsistently")]
    Invalid(String),
    /// The node does not hold what was asked for.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node cannot answer yet (e.g. it does not hold every sliver needed to confirm).
    #[error("not ready: {0}")]
    NotReady(String),
    /// The node is too busy to take this now; retry later.
    #[error("busy: {0}")]
    Busy(String),
    /// Storage failed.
    #[error("storage error: {0}")]
    Store(#[from] morsa_store::StoreError),
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
    #[error("this node's stored metadata of {blob_id} is damaged ({reason}); ask another node")]
    CorruptMetadata {
        /// The blob.
        blob_id: BlobId,
        /// What the check found.
        reason: String,
    },
    /// A blocking worker thread failed (a bug).
    #[error("a worker task failed")]
    WorkerFailed,
    /// A sliver's group commit failed, or the committer stopped.
    #[error("{0}")]
    Ingest(#[from] crate::ingest::IngestError),
}

impl NodeError {
    /// The stable code (and with it the HTTP status) of this error.
    pub fn code(&self) -> NodeErrorCode {
        match self {
            Self::NotRegistered(_) => NodeErrorCode::NotRegistered,
            Self::WrongShard { .. } => NodeErrorCode::WrongShard,
            Self::SizeMismatch(_) => NodeErrorCode::SizeMismatch,
            Self::HashMismatch(_) => NodeErrorCode::HashMismatch,
            Self::Expired(_) => NodeErrorCode::BlobExpired,
            Self::Invalid(_) => NodeErrorCode::InvalidBlob,
            Self::NotFound(_) => NodeErrorCode::NotFound,
            Self::BadRequest(_) => NodeErrorCode::BadRequest,
            Self::NotReady(_) => NodeErrorCode::NotReady,
            Self::Busy(_) => NodeErrorCode::Unavailable,
            Self::Store(_) | Self::WorkerFailed => NodeErrorCode::Internal,
            Self::CorruptBlobInfo { .. } | Self::CorruptMetadata { .. } => NodeErrorCode::CorruptData,
            Self::Ingest(crate::ingest::IngestError::Stopped) => NodeErrorCode::Unavailable,
            Self::Ingest(_) => NodeErrorCode::Internal,
        }
    }
}

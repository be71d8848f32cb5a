//! What the coordinator answers about blobs.

use morsa_core::{AccountId, Epoch, ObjectId};
use serde::{Deserialize, Serialize};

/// The status of a blob ID, aggregated over its objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobStatusKind {
    /// No live object has this blob ID.
    Nonexistent,
    /// Registered, not certified.
    Registered,
    /// Certified: available until `end_epoch`.
    Certified,
    /// Proven inconsistently encoded.
    Invalid,
}

/// What `GET /v1/blobs/{id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobStatus {
    /// The aggregated status.
    pub status: BlobStatusKind,
    /// Latest end epoch over the objects with that status (none if nonexistent).
    pub end_epoch: Option<Epoch>,
    /// Whether some certified object is permanent (not deletable).
    pub permanent: bool,
    /// The live objects.
    pub objects: Vec<BlobObjectSummary>,
}

/// One object in a [`BlobStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobObjectSummary {
    /// Object ID.
    pub object: ObjectId,
    /// Owner.
    pub owner: AccountId,
    /// Whether it is deletable.
    pub deletable: bool,
    /// End epoch.
    pub end_epoch: Epoch,
    /// Epoch of certification, if certified.
    pub certified_epoch: Option<Epoch>,
}

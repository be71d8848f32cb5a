//! The storage node's API: routes (Walrus's storage-node paths), path builders, request and
//! response types, size limits and the node's stable error codes.
//!
//! Slivers, metadata, recovery symbols, inconsistency proofs and recovery-batch answers travel
//! as BCS (`application/octet-stream`, the forms of [`redstuff::wire`]); everything else is
//! JSON. Every error is an [`ErrorBody`](crate::ErrorBody) whose `code` is one of
//! [`NodeErrorCode`].
//!
//! In paths, `{blob_id}` is the URL-safe base64 text of a blob ID, `{sliver_pair_index}` a
//! decimal pair index `p < n`, `{sliver_type}` `primary` or `secondary` and `{object_id}`
//! the hex object ID. Pair `p` holds primary sliver `p` and secondary sliver `n − 1 − p`; a
//! sliver sent to pair `p` must carry that index.
//!
//! ```
//! use morsa_api::node::{self, NodeErrorCode};
//! use redstuff::{BlobId, SliverType};
//!
//! let blob_id = BlobId([0; 32]);
//! assert_eq!(
//!     node::sliver_path(&blob_id, 3, SliverType::Secondary),
//!     format!("/v1/blobs/{blob_id}/slivers/3/secondary"),
//! );
//! assert_eq!(NodeErrorCode::WrongShard.as_str(), "wrong_shard");
//! assert_eq!(NodeErrorCode::WrongShard.status().as_u16(), 421);
//! ```

mod challenge;
mod error_code;
mod limits;
mod migration;
mod params;
mod read_batch;
mod read_batch_pieces;
mod recovery;
mod status;
#[cfg(test)]
mod tests;
mod upload_batch;

use morsa_core::ObjectId;
use redstuff::{BlobId, SliverType};

pub use challenge::{
    ChallengeAnswers, ChallengeAnswersQuery, ChallengeReply, MAX_CHALLENGE_ANSWERS_BYTES,
    MAX_CHALLENGE_ANSWERS_PAGE,
};
pub use error_code::{NodeErrorCode, UnknownErrorCode};
pub use limits::{
    MAX_COMMITTEE_BYTES, MAX_ERROR_BODY_BYTES, MAX_HEALTH_BYTES, MAX_JSON_REQUEST_BYTES, MAX_PROBE_BYTES,
    MAX_RECOVERY_BATCH, MAX_RECOVERY_BATCH_RESPONSE_BYTES, MAX_SMALL_JSON_BYTES, inconsistency_proof_limit,
    metadata_limit, recovery_symbols_limit, sliver_limit,
};
pub use migration::{
    MAX_SHARD_PAGE_BLOBS, SHARD_PAGE_TARGET_BYTES, ShardPage, ShardPageItem, ShardPageRequest,
    shard_page_limit,
};
pub use morsa_core::protocol::{InvalidBlobAttestation, SignedConfirmation, SignedMessageError};
pub use params::{
    BlobIdPath, DeletablePath, InconsistencyProofPath, ProbeQuery, PutSliverQuery, RecoveryBatchQuery,
    RecoverySymbolsQuery, SliverPath, parse_sliver_type, sliver_type_text,
};
pub use read_batch::{
    MAX_READ_BATCH_BYTES, MAX_READ_BATCH_ITEMS, ReadBatchAnswer, ReadBatchItem, SliverReadBatchPath,
    SliverReadBatchQuery, parse_read_batch, read_batch_limit,
};
pub use read_batch_pieces::{ReadBatchDecoder, ReadBatchPart};
pub use recovery::{
    RecoveryBatchItem, RecoveryBatchRequest, RecoveryBatchResponse, RecoveryItem, RecoveryOutcome,
};
pub use status::{
    DiskHealth, MigrationHealth, NodeBlobState, NodeBlobStatus, NodeCommittee, NodeHealth, RepairHealth,
    ShardHealth, ShardStatus, StoredStatus,
};
pub use upload_batch::{
    MAX_UPLOAD_BATCH_BYTES, UPLOAD_ITEM_HEADER, UploadBatch, UploadBatchAnswer, UploadBatchError,
    UploadOutcome, UploadTarget, parse_upload_batch, sliver_item_len,
};

/// Response header on every answer of a storage node: the requests it was serving besides
/// this one when the answer left, a load figure readers weigh in choosing nodes
/// ([`crate::client::scoring`] with the `client` feature).
pub const LOAD_HEADER: &str = "x-morsa-load";

/// Route paths (axum syntax for parameters).
pub mod routes {
    /// `PUT`: BCS [`redstuff::MetadataWithId`] (the node checks it hashes to the blob ID) |
    /// `GET`: the same, BCS.
    pub const METADATA: &str = "/v1/blobs/{blob_id}/metadata";
    /// `GET`: [`super::StoredStatus`] of the metadata.
    pub const METADATA_STATUS: &str = "/v1/blobs/{blob_id}/metadata/status";
    /// `PUT ?pending=true|false`: BCS [`redstuff::Sliver`] | `GET`: the same, BCS. With
    /// `pending=true` the node may hold the sliver before it has seen the blob registered.
    pub const SLIVER: &str = "/v1/blobs/{blob_id}/slivers/{sliver_pair_index}/{sliver_type}";
    /// `PUT`: a batch of the blob's slivers (and, first, possibly its metadata) in the
    /// framing of [`super::UploadBatch`], at most [`super::MAX_UPLOAD_BATCH_BYTES`]; answers
    /// JSON [`super::UploadBatchAnswer`], each item stored or refused with the error its
    /// single-item route would have given. A node without this route answers 404 with no
    /// error code: send the items one by one then.
    pub const SLIVER_BATCH: &str = "/v1/blobs/{blob_id}/slivers";
    /// `GET ?pairs=3,17,42`: the `sliver_type` slivers of those pairs (at most
    /// [`super::MAX_READ_BATCH_ITEMS`]) in one answer, each the single route's BCS answer or
    /// its error, in the framing of [`super::ReadBatchAnswer`]. A node without this route
    /// answers 404 with no error code: ask for the slivers one by one then.
    pub const SLIVER_READ_BATCH: &str = "/v1/blobs/{blob_id}/sliverBatch/{sliver_type}";
    /// `GET`: [`super::StoredStatus`] of one sliver.
    pub const SLIVER_STATUS: &str = "/v1/blobs/{blob_id}/slivers/{sliver_pair_index}/{sliver_type}/status";
    /// `GET`: [`super::SignedConfirmation`] that the node stores all its slivers of a
    /// permanent blob.
    pub const PERMANENT_CONFIRMATION: &str = "/v1/blobs/{blob_id}/confirmation/permanent";
    /// `GET`: [`super::SignedConfirmation`] for the deletable blob object `{object_id}`.
    pub const DELETABLE_CONFIRMATION: &str = "/v1/blobs/{blob_id}/confirmation/deletable/{object_id}";
    /// `GET ?target_sliver=T&target_type=primary|secondary`: BCS `Vec<RecoverySymbol>`, one
    /// symbol from each sliver of the other type the node holds, proven at leaf `T`.
    pub const RECOVERY_SYMBOLS: &str = "/v1/blobs/{blob_id}/recoverySymbols";
    /// `POST ?proofs=true|false&blocks=true|false`: JSON [`super::RecoveryBatchRequest`];
    /// answers BCS [`super::RecoveryBatchResponse`]. With `proofs=false` the symbols carry
    /// empty proofs, and with `blocks=true` too each item's come as one block.
    pub const RECOVERY_SYMBOLS_BATCH: &str = "/v1/recoverySymbols";
    /// `POST`: BCS [`redstuff::InconsistencyProof`] whose target type is `{sliver_type}`;
    /// answers JSON [`super::InvalidBlobAttestation`].
    pub const INCONSISTENCY_PROOF: &str = "/v1/blobs/{blob_id}/inconsistencyProof/{sliver_type}";
    /// `GET ?from=I`: BCS [`super::ChallengeAnswers`], the node's answers to its challenges of
    /// round `{round}` of epoch `{epoch}` from position `I`; refused with `round_not_open`
    /// unless that is the coordinator's open round.
    pub const CHALLENGE_ANSWERS: &str = "/v1/challenges/{epoch}/{round}/answers";
    /// `GET`: [`super::NodeBlobStatus`].
    pub const BLOB_STATUS: &str = "/v1/blobs/{blob_id}/status";
    /// `POST`: JSON [`super::ShardPageRequest`], signed by the shard's owner in the request's
    /// epoch; answers BCS [`super::ShardPage`]. Served by the shard's owner of the epoch before
    /// (shard migration), to that new owner only. The path's shard must be the request's.
    pub const SHARD_PAGE: &str = "/v1/migration/shards/{shard}/page";
    /// `GET`: [`super::NodeHealth`].
    pub const HEALTH: &str = "/v1/health";
    /// `GET ?bytes=N` ([`super::ProbeQuery`]): N bytes of filler (at most
    /// [`super::MAX_PROBE_BYTES`]), for a client to time its link to the node: how a reader
    /// learns a link's bandwidth before it reads anything (`morsa health --latency`).
    pub const PROBE: &str = "/v1/probe";
    /// `GET`: [`super::NodeCommittee`], the committee the node follows (from the
    /// coordinator's events): how a client finds the nodes when no coordinator answers.
    pub const COMMITTEE: &str = "/v1/committee";
    /// `GET`: Prometheus metrics, text format.
    pub const METRICS: &str = "/metrics";
    /// `POST` (loopback callers only): pause background repair and scrubbing. Reads of
    /// missing slivers are still rebuilt on demand.
    pub const ADMIN_REPAIR_PAUSE: &str = "/v1/admin/repair/pause";
    /// `POST` (loopback callers only): resume background repair and scrubbing.
    pub const ADMIN_REPAIR_RESUME: &str = "/v1/admin/repair/resume";
}

/// `route` with `{blob_id}` filled in.
fn with_blob(route: &str, blob_id: &BlobId) -> String {
    route.replace("{blob_id}", &blob_id.to_string())
}

/// `route` with `{blob_id}`, `{sliver_pair_index}` and `{sliver_type}` filled in.
fn with_sliver(route: &str, blob_id: &BlobId, pair: u16, kind: SliverType) -> String {
    with_blob(route, blob_id)
        .replace("{sliver_pair_index}", &pair.to_string())
        .replace("{sliver_type}", kind.as_str())
}

/// Path of [`routes::SHARD_PAGE`].
pub fn shard_page_path(shard: u16) -> String {
    routes::SHARD_PAGE.replace("{shard}", &shard.to_string())
}

/// Path of [`routes::METADATA`].
pub fn metadata_path(blob_id: &BlobId) -> String {
    with_blob(routes::METADATA, blob_id)
}

/// Path of [`routes::METADATA_STATUS`].
pub fn metadata_status_path(blob_id: &BlobId) -> String {
    with_blob(routes::METADATA_STATUS, blob_id)
}

/// Path of [`routes::SLIVER`] for the `kind` sliver of pair `pair`.
pub fn sliver_path(blob_id: &BlobId, pair: u16, kind: SliverType) -> String {
    with_sliver(routes::SLIVER, blob_id, pair, kind)
}

/// Path of [`routes::SLIVER_BATCH`].
pub fn sliver_batch_path(blob_id: &BlobId) -> String {
    with_blob(routes::SLIVER_BATCH, blob_id)
}

/// Path of [`routes::SLIVER_READ_BATCH`] for `kind` slivers.
pub fn sliver_read_batch_path(blob_id: &BlobId, kind: SliverType) -> String {
    with_blob(routes::SLIVER_READ_BATCH, blob_id).replace("{sliver_type}", kind.as_str())
}

/// Path of [`routes::SLIVER_STATUS`].
pub fn sliver_status_path(blob_id: &BlobId, pair: u16, kind: SliverType) -> String {
    with_sliver(routes::SLIVER_STATUS, blob_id, pair, kind)
}

/// Path of [`routes::PERMANENT_CONFIRMATION`].
pub fn permanent_confirmation_path(blob_id: &BlobId) -> String {
    with_blob(routes::PERMANENT_CONFIRMATION, blob_id)
}

/// Path of [`routes::DELETABLE_CONFIRMATION`] for the blob object `object_id`.
pub fn deletable_confirmation_path(blob_id: &BlobId, object_id: &ObjectId) -> String {
    with_blob(routes::DELETABLE_CONFIRMATION, blob_id).replace("{object_id}", &object_id.to_string())
}

/// Path of [`routes::RECOVERY_SYMBOLS`], without its query (see [`RecoverySymbolsQuery`]).
pub fn recovery_symbols_path(blob_id: &BlobId) -> String {
    with_blob(routes::RECOVERY_SYMBOLS, blob_id)
}

/// Path of [`routes::INCONSISTENCY_PROOF`] for a proof whose target is a `kind` sliver.
pub fn inconsistency_proof_path(blob_id: &BlobId, kind: SliverType) -> String {
    with_blob(routes::INCONSISTENCY_PROOF, blob_id).replace("{sliver_type}", kind.as_str())
}

/// Path of [`routes::CHALLENGE_ANSWERS`], without its query.
pub fn challenge_answers_path(epoch: morsa_core::Epoch, round: u32) -> String {
    routes::CHALLENGE_ANSWERS.replace("{epoch}", &epoch.0.to_string()).replace("{round}", &round.to_string())
}

/// Path of [`routes::BLOB_STATUS`].
pub fn blob_status_path(blob_id: &BlobId) -> String {
    with_blob(routes::BLOB_STATUS, blob_id)
}

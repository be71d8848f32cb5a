//! The gateway's errors, and the one place they become S3 error codes.

use s3s::{S3Error, S3ErrorCode};

/// What went wrong in the gateway outside the S3 protocol itself.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration file is missing, unreadable or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be opened, read or written.
    #[error("database ({action}): {source}")]
    Database {
        /// What the gateway was doing.
        action: &'static str,
        /// redb's error.
        #[source]
        source: redb::Error,
    },
    /// A stored record does not decode: the database file is damaged.
    #[error("database record {what} does not decode: {reason}")]
    CorruptRecord {
        /// Which record.
        what: String,
        /// Why.
        reason: String,
    },
    /// A user of that name already exists.
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    /// No user of that name.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// A user name that is empty, too long or has other characters than letters, digits, `-`,
    /// `_` and `.`.
    #[error("bad user name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadUserName(String),
    /// The bucket does not exist.
    #[error("no bucket named {0:?}")]
    NoSuchBucket(String),
    /// The bucket exists and belongs to another user.
    #[error("bucket {0:?} belongs to another user")]
    BucketAlreadyExists(String),
    /// The caller already owns the bucket.
    #[error("you already own bucket {0:?}")]
    BucketAlreadyOwnedByYou(String),
    /// The bucket still holds objects or uploads.
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// The bucket belongs to another user.
    #[error("bucket {0:?} belongs to another user")]
    AccessDenied(String),
    /// The object does not exist.
    #[error("no object {key:?} in bucket {bucket:?}")]
    NoSuchKey {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The multipart upload does not exist (never created, completed or aborted).
    #[error("no multipart upload {0:?}")]
    NoSuchUpload(String),
    /// A part named in a completion was not uploaded, or its ETag differs.
    #[error("part {0} was not uploaded or its ETag differs")]
    InvalidPart(i32),
    /// The parts of a completion are not in ascending order.
    #[error("the parts are not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than S3's minimum of 5 MiB.
    #[error("part {part} has {size} bytes; every part but the last needs at least 5 MiB")]
    EntityTooSmall {
        /// The part.
        part: i32,
        /// Its size.
        size: u64,
    },
    /// The object has no version of that ID.
    #[error("object {key:?} has no version {version:?}")]
    NoSuchVersion {
        /// The key.
        key: String,
        /// The version ID asked for.
        version: String,
    },
    /// The version asked for is a delete marker (it has no data or lock).
    #[error("version {version:?} of {key:?} is a delete marker")]
    DeleteMarker {
        /// The key.
        key: String,
        /// The delete marker's version ID.
        version: String,
    },
    /// Object Lock refuses to delete or overwrite the version, or to shorten its retention.
    #[error("object {key:?} is locked: {reason}")]
    Locked {
        /// The key.
        key: String,
        /// Which lock, until when.
        reason: String,
    },
    /// The bucket's versioning or Object Lock state does not allow the request.
    #[error("{0}")]
    InvalidBucketState(String),
    /// The request asks for something the bucket cannot do (Object Lock on a bucket without it).
    #[error("{0}")]
    InvalidRequest(String),
    /// The bucket has no Object Lock configuration.
    #[error("bucket {0:?} has no Object Lock configuration")]
    NoObjectLockConfiguration(String),
    /// A Morsa store or read failed.
    #[error("morsa: {0}")]
    Morsa(#[from] morsa_client::Error),
    /// A chunk read back with another length than the namespace records for it.
    #[error("morsa: chunk {blob_id} gave {got} bytes, {expected} expected")]
    ChunkLength {
        /// The chunk's blob.
        blob_id: redstuff::BlobId,
        /// Bytes read.
        got: u64,
        /// Bytes the namespace records.
        expected: u64,
    },
    /// The gateway's keyring is missing, locked or unreadable (see [`crate::encryption`]).
    #[error("encryption keys: {0}")]
    Keys(String),
    /// A namespace snapshot could not be taken, found, opened or restored.
    #[error("namespace snapshot: {0}")]
    Snapshot(String),
    /// A small object's pack could not be stored (see [`crate::packer`]).
    #[error("storing a pack of small objects: {0}")]
    Packing(String),
    /// A blob the write needs was deleted, or is being deleted, since the write began
    /// ([`crate::reclaim`]): the write is refused rather than name it; sending it again works.
    #[error("blob {0} was deleted while this write used it; send the request again")]
    HeldBlobDeleted(redstuff::BlobId),
}

impl GatewayError {
    /// Wraps a redb error with what the gateway was doing, for `map_err`.
    pub(crate) fn database<E: Into<redb::Error>>(action: &'static str) -> impl FnOnce(E) -> Self {
        move |source| GatewayError::Database { action, source: source.into() }
    }

    /// The S3 error code clients see.
    pub fn s3_code(&self) -> S3ErrorCode {
        match self {
            GatewayError::NoSuchBucket(_) => S3ErrorCode::NoSuchBucket,
            GatewayError::BucketAlreadyExists(_) => S3ErrorCode::BucketAlreadyExists,
            GatewayError::BucketAlreadyOwnedByYou(_) => S3ErrorCode::BucketAlreadyOwnedByYou,
            GatewayError::BucketNotEmpty(_) => S3ErrorCode::BucketNotEmpty,
            GatewayError::AccessDenied(_) => S3ErrorCode::AccessDenied,
            GatewayError::NoSuchKey { .. } => S3ErrorCode::NoSuchKey,
            GatewayError::NoSuchUpload(_) => S3ErrorCode::NoSuchUpload,
            GatewayError::InvalidPart(_) => S3ErrorCode::InvalidPart,
            GatewayError::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
            GatewayError::EntityTooSmall { .. } => S3ErrorCode::EntityTooSmall,
            GatewayError::NoSuchVersion { .. } => S3ErrorCode::NoSuchVersion,
            GatewayError::DeleteMarker { .. } => S3ErrorCode::MethodNotAllowed,
            GatewayError::Locked { .. } => S3ErrorCode::AccessDenied,
            GatewayError::InvalidBucketState(_) => S3ErrorCode::InvalidBucketState,
            GatewayError::InvalidRequest(_) => S3ErrorCode::InvalidRequest,
            GatewayError::NoObjectLockConfiguration(_) => S3ErrorCode::ObjectLockConfigurationNotFoundError,
            GatewayError::Morsa(_)
            | GatewayError::ChunkLength { .. }
            | GatewayError::Packing(_)
            | GatewayError::HeldBlobDeleted(_) => S3ErrorCode::ServiceUnavailable,
            GatewayError::Config(_)
            | GatewayError::Database { .. }
            | GatewayError::CorruptRecord { .. }
            | GatewayError::UserExists(_)
            | GatewayError::NoSuchUser(_)
            | GatewayError::BadUserName(_)
            | GatewayError::Keys(_)
            | GatewayError::Snapshot(_) => S3ErrorCode::InternalError,
        }
    }
}

impl From<GatewayError> for S3Error {
    fn from(error: GatewayError) -> Self {
        let code = error.s3_code();
        if code == S3ErrorCode::InternalError || code == S3ErrorCode::ServiceUnavailable {
            tracing::error!(%error, "request failed");
        }
        S3Error::with_message(code, error.to_string())
    }
}

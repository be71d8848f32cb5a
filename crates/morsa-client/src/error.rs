//! What can go wrong when storing and reading, said so that a person knows what to do.

use std::fmt;

use morsa_api::client::ClientError as ApiError;
use morsa_api::coord::BlobStatusKind;
use redstuff::BlobId;

/// A storage node that failed a step, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailure {
    /// The node's address.
    pub node: String,
    /// Shards it holds (its weight in a quorum).
    pub shards: usize,
    /// What went wrong, last error first.
    pub reason: String,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} shards): {}", self.node, self.shards, self.reason)
    }
}

fn list(failures: &[NodeFailure]) -> String {
    if failures.is_empty() {
        return "no node failed".into();
    }
    failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration or the account key file cannot be used.
    #[error(transparent)]
    Config(#[from] morsa_plumbing::ConfigError),
    /// No configuration file was named and none can be found.
    #[error("no configuration given: pass --config or set {}", crate::CONFIG_ENV)]
    NoConfig,
    /// The coordinator announces a shard count no blob can be encoded for.
    #[error("the coordinator's shard count: {0}")]
    ShardCount(#[source] redstuff::ConfigError),
    /// The coordinator could not be reached or answered an error.
    #[error("coordinator, while {during}: {source}")]
    Coordinator {
        /// What the client was doing.
        during: &'static str,
        /// The error.
        source: ApiError,
    },
    /// No coordinator answered, and no committee could be found without one.
    #[error("no coordinator answered ({coordinator}), and {reason}")]
    NoCommittee {
        /// Why the coordinator did not answer.
        coordinator: ApiError,
        /// Why the nodes could not stand in for it.
        reason: String,
    },
    /// Not enough nodes confirmed the blob to certify it.
    #[error(
        "could not store {blob_id}: nodes holding {weight} shards confirmed, {needed} are needed; \
         failed nodes: {}",
        list(failures)
    )]
    NoQuorum {
        /// The blob.
        blob_id: BlobId,
        /// Shards whose nodes confirmed.
        weight: usize,
        /// Shards needed for a certificate.
        needed: usize,
        /// The nodes that failed.
        failures: Vec<NodeFailure>,
    },
    /// The blob is not available to read.
    #[error("blob {blob_id} is {}", describe(status))]
    NotAvailable {
        /// The blob.
        blob_id: BlobId,
        /// What the coordinator (or, without one, the storage nodes) says of it.
        status: BlobStatusKind,
    },
    /// No node served metadata that matches the blob ID.
    #[error("no storage node served metadata of {blob_id} that matches it; failed nodes: {}", list(failures))]
    NoMetadata {
        /// The blob.
        blob_id: BlobId,
        /// The nodes that failed.
        failures: Vec<NodeFailure>,
    },
    /// Too few valid slivers could be fetched to rebuild the data.
    #[error(
        "could not read {blob_id}: got {got} valid slivers of the {needed} needed; failed nodes: {}",
        list(failures)
    )]
    NotEnoughSlivers {
        /// The blob.
        blob_id: BlobId,
        /// Valid slivers fetched.
        got: usize,
        /// Slivers needed.
        needed: usize,
        /// The nodes that failed.
        failures: Vec<NodeFailure>,
    },
    /// The blob was encoded inconsistently: its writer was faulty. Its data cannot be trusted.
    #[error("blob {0} is inconsistently encoded: its writer was faulty; there is no trustworthy content")]
    Inconsistent(BlobId),
    /// A storage period the system does not sell: zero epochs, or more than it sells ahead.
    #[error("{asked} epochs is out of range: this system stores blobs for 1 to {max} epochs from now")]
    EpochsOutOfRange {
        /// Epochs asked for.
        asked: u32,
        /// The most that may be asked now.
        max: u32,
    },
    /// An object already paid for as far ahead as the system sells: it cannot be extended
    /// until an epoch passes.
    #[error("already stored until epoch {end}, as far ahead as the system sells ({max_ahead} epochs)")]
    PaidToTheLimit {
        /// Its end epoch.
        end: u32,
        /// Epochs the system sells ahead.
        max_ahead: u32,
    },
    /// A byte range outside the blob.
    #[error("range {start}..{end} is outside the blob of {len} bytes")]
    BadRange {
        /// First byte asked.
        start: u64,
        /// End of the range asked.
        end: u64,
        /// Size of the blob.
        len: u64,
    },
    /// The blob is a chunked file whose manifest or chunks do not add up.
    #[error("bad file manifest in {blob_id}: {reason}")]
    Manifest {
        /// The manifest blob.
        blob_id: BlobId,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The data cannot be encoded (e.g. too large for one blob of this system).
    #[error("cannot encode: {0}")]
    Encode(#[from] redstuff::EncodeError),
    /// Verified slivers did not decode into the blob (other than by proven inconsistency).
    #[error("could not decode {blob_id}: {source}")]
    Decode {
        /// The blob.
        blob_id: BlobId,
        /// What the decoder said.
        #[source]
        source: redstuff::DecodeError,
    },
    /// The symbols of a byte range could not be worked out or decoded.
    #[error("could not read a range of {blob_id}: {source}")]
    Range {
        /// The blob.
        blob_id: BlobId,
        /// What the codec said.
        #[source]
        source: redstuff::RangeError,
    },
    /// The coordinator accepted a transaction but reported no object created by it.
    #[error("the coordinator created no object while {during}")]
    NoObjectCreated {
        /// What the client was doing.
        during: &'static str,
    },
    /// Encrypting or decrypting failed, or a blob is encrypted to a key not at hand.
    #[error(transparent)]
    Crypt(#[from] crate::crypt::CryptError),
    /// The blob's lifetime or ownership does not allow the operation; the message says what
    /// to do instead.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Something that cannot happen did (a panic in the codec, confirmations verified one by
    /// one that do not aggregate): a bug in Morsa, to be reported.
    #[error("internal error (a bug in Morsa, please report it): {0}")]
    Internal(#[from] InternalError),
}

/// Why the blob's lifetime or ownership does not allow an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A delete of a blob of which the account owns no deletable object.
    #[error(
        "no deletable object of {blob_id} belongs to this account ({objects} objects in all; \
         permanent blobs cannot be deleted)"
    )]
    NothingToDelete {
        /// The blob.
        blob_id: BlobId,
        /// Its objects, whoever owns them.
        objects: usize,
    },
    /// An extension of a blob kept only by objects their owners may delete.
    #[error(
        "{0} is kept only by other accounts' deletable objects, which their owners may \
         delete at any time: store the file yourself (`morsa store FILE`) to get an object of \
         your own, then extend that"
    )]
    OnlyOthersDeletable(BlobId),
}

/// Something that cannot happen: a bug in Morsa.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// Work moved off the async threads (encoding, decoding, encryption, reading a source)
    /// panicked.
    #[error("{task} panicked: {source}")]
    Panicked {
        /// What the task did.
        task: &'static str,
        /// How it ended.
        source: tokio::task::JoinError,
    },
    /// A sliver verified against the metadata lacks a symbol of its length.
    #[error("a verified sliver is short")]
    ShortSliver,
    /// A streamed source was read by two steps at once.
    #[error("a source read twice at once")]
    SourceReadTwice,
    /// Confirmations verified one by one do not aggregate.
    #[error("aggregating verified confirmations: {0}")]
    Aggregate(morsa_core::CertificateError),
}

fn describe(status: &BlobStatusKind) -> &'static str {
    match status {
        BlobStatusKind::Nonexistent => "not stored (never certified, expired or deleted)",
        BlobStatusKind::Registered => "registered but not certified: its upload did not finish",
        BlobStatusKind::Certified => "certified",
        BlobStatusKind::Invalid => "invalid: proven inconsistently encoded by its writer",
    }
}

impl Error {
    pub(crate) fn coordinator(during: &'static str) -> impl FnOnce(ApiError) -> Error {
        move |source| Error::Coordinator { during, source }
    }

    /// The error for a task moved off the async threads that did not finish, for `map_err`.
    pub(crate) fn panicked(task: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Error {
        move |source| Error::Internal(InternalError::Panicked { task, source })
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.display().to_string(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages people saw while refusals and internal errors were strings.
    #[test]
    fn typed_refusals_and_internal_errors_keep_their_messages() {
        let blob_id = BlobId::from_root(1, &[7; 32]);
        let refused = Error::from(Refusal::NothingToDelete { blob_id, objects: 2 });
        assert_eq!(
            refused.to_string(),
            format!(
                "no deletable object of {blob_id} belongs to this account (2 objects in all; \
                 permanent blobs cannot be deleted)"
            )
        );
        let refused = Error::from(Refusal::OnlyOthersDeletable(blob_id));
        assert!(refused.to_string().starts_with(&format!("{blob_id} is kept only by other accounts'")));
        assert_eq!(
            Error::from(InternalError::ShortSliver).to_string(),
            "internal error (a bug in Morsa, please report it): a verified sliver is short"
        );
    }

    #[tokio::test]
    async fn a_panicked_task_is_an_internal_error_naming_the_task() {
        let panicked = tokio::task::spawn_blocking(|| panic!("boom")).await.unwrap_err();
        let error = Error::panicked("the decoder")(panicked);
        assert!(matches!(error, Error::Internal(InternalError::Panicked { task: "the decoder", .. })));
        assert!(error.to_string().contains("the decoder panicked: "), "{error}");
    }
}

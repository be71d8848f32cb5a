//! Error types, one small enum per operation.

use crate::sliver::SliverType;

/// Why a code configuration or a blob size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The code needs at least 4 shards (`f ≥ 1`).
    #[error("a system needs at least 4 shards, got {0}")]
    TooFewShards(u16),
    /// The blob needs symbols larger than 65534 bytes.
    #[error("blob of {blob_len} bytes is over the maximum of {max} bytes for {n_shards} shards")]
    BlobTooLarge {
        /// Length of the refused blob.
        blob_len: u64,
        /// Largest blob for this shard count.
        max: u64,
        /// The shard count.
        n_shards: u16,
    },
    /// A symbol size that is zero, odd, or over 65534.
    #[error("symbol size {0} is invalid: it must be even and between 2 and 65534")]
    BadSymbolSize(u16),
}

/// Why a sliver does not fit a blob's metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SliverVerificationError {
    /// The sliver index is not below `n`.
    #[error("{kind} sliver index {index} is out of range for {n_shards} shards")]
    IndexOutOfRange {
        /// Primary or secondary.
        kind: SliverType,
        /// The index given.
        index: u16,
        /// Shards in the system.
        n_shards: usize,
    },
    /// The sliver's symbol size is not the blob's.
    #[error("symbol size {actual} does not match the blob's symbol size {expected}")]
    SymbolSizeMismatch {
        /// Symbol size of the blob.
        expected: u16,
        /// Symbol size of the sliver.
        actual: u16,
    },
    /// The sliver has the wrong number of bytes.
    #[error("{kind} sliver has {actual} bytes, expected {expected}")]
    LengthMismatch {
        /// Primary or secondary.
        kind: SliverType,
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// The sliver's Merkle root is not the one in the metadata.
    #[error("{kind} sliver {index} does not match its hash in the metadata")]
    HashMismatch {
        /// Primary or secondary.
        kind: SliverType,
        /// The sliver index.
        index: u16,
    },
    /// The metadata itself does not fit the code (wrong hash count or blob length).
    #[error("metadata does not fit the code: {0}")]
    BadMetadata(#[from] MetadataError),
}

/// Why metadata is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The encoding type is not RS2.
    #[error("encoding type {0} is not supported (only RS2 = 1)")]
    UnsupportedEncoding(u8),
    /// The number of sliver-pair hashes is not the shard count.
    #[error("metadata lists {actual} sliver pairs but the system has {expected} shards")]
    WrongPairCount {
        /// Shards in the system.
        expected: usize,
        /// Pairs listed.
        actual: usize,
    },
    /// The metadata does not hash to the blob ID it came with.
    #[error("metadata hashes to blob ID {computed}, not {expected}")]
    BlobIdMismatch {
        /// The ID it was supposed to have.
        expected: crate::BlobId,
        /// The ID it hashes to.
        computed: crate::BlobId,
    },
    /// A hash in the metadata is the empty node.
    #[error("sliver pair {0} has an empty hash")]
    EmptyHash(usize),
    /// The blob length does not fit the code.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why a blob could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The blob does not fit the code.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why slivers could not be decoded into a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer distinct primary slivers than `kp` were given.
    #[error("decoding needs {needed} distinct primary slivers, got {got}")]
    NotEnoughSlivers {
        /// Distinct slivers given.
        got: usize,
        /// `kp`.
        needed: usize,
    },
    /// A sliver does not have the blob's shape.
    #[error(transparent)]
    Sliver(#[from] SliverVerificationError),
    /// The metadata is unusable.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The decoded blob does not match the metadata: the writer encoded it inconsistently.
    #[error(
        "decoded data does not match the metadata at primary sliver {row}: the blob was encoded inconsistently"
    )]
    Inconsistent {
        /// The first systematic row whose hash differs.
        row: usize,
    },
}

/// Why a recovery symbol or a rebuild was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// Fewer symbols from distinct sources than the rebuild needs.
    #[error("rebuilding a {kind} sliver needs {needed} symbols from distinct slivers, got {got}")]
    NotEnoughSymbols {
        /// The kind of sliver being rebuilt.
        kind: SliverType,
        /// Distinct symbols given.
        got: usize,
        /// Symbols needed.
        needed: usize,
    },
    /// A symbol's Merkle proof does not lead to its source sliver's hash.
    #[error("recovery symbol from {kind} sliver {source_index} has an invalid proof")]
    InvalidProof {
        /// Kind of the source sliver.
        kind: SliverType,
        /// Index of the source sliver.
        source_index: u16,
    },
    /// A symbol has the wrong size or index for this blob.
    #[error("recovery symbol from sliver {source_index} does not fit the blob: {reason}")]
    Malformed {
        /// Index of the source sliver.
        source_index: u16,
        /// What is wrong.
        reason: &'static str,
    },
    /// The source sliver is malformed.
    #[error(transparent)]
    Sliver(#[from] SliverVerificationError),
    /// The metadata is unusable.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Symbols taken without proofs rebuilt a sliver that does not match the metadata: some
    /// peer sent a wrong symbol. Fetch the symbols again with proofs to find it.
    #[error("unproven symbols rebuilt {kind} sliver {index} wrongly; retry with proofs")]
    RebuiltMismatch {
        /// The kind of the target sliver.
        kind: SliverType,
        /// The target sliver index.
        index: u16,
    },
    /// Correctly proven symbols rebuild a sliver that does not match the metadata.
    #[error(
        "symbols rebuild {kind} sliver {index} inconsistently with the metadata: the blob was encoded inconsistently"
    )]
    Inconsistent {
        /// The kind of the target sliver.
        kind: SliverType,
        /// The target sliver index.
        index: u16,
        /// The proof, ready to be sent to other nodes.
        proof: Box<crate::InconsistencyProof>,
    },
}

/// Why bytes from the wire were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// More bytes than the limit for this kind of value.
    #[error("{what} of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Bytes given.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not valid BCS for this value.
    #[error("{what} is not valid BCS: {reason}")]
    Bcs {
        /// What was being decoded.
        what: &'static str,
        /// The BCS error.
        reason: String,
    },
    /// The value decoded but is not well formed.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Why a range read could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The range ends past the blob or starts after it ends.
    #[error("range {start}..{end} is not within the blob of {blob_len} bytes")]
    OutOfBounds {
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// Blob length.
        blob_len: u64,
    },
    /// Not enough primary slivers to rebuild a missing column.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

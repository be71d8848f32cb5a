//! The one error type of the store: every way opening, writing or reading can fail.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::SliverKind;

/// An error of the store: of the [`CommandLog`](crate::CommandLog) or the
/// [`NodeStore`](crate::NodeStore).
///
/// Errors from redb are wrapped with what the store was doing ([`StoreError::Database`]), so a
/// log line says "appending a record: I/O error" rather than just "I/O error".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be created or opened (a missing directory, no permission, a
    /// damaged file that redb could not repair, ...).
    #[error("cannot open the database {}: {source}", path.display())]
    Open {
        /// The file that was being opened.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::DatabaseError,
    },

    /// Another process, or another handle in this process, has the database open. Only one
    /// writer may hold a log at a time; stop the other one first.
    #[error(
        "the database {} is already open in another process (or another handle in this one); \
         stop it first",
        path.display()
    )]
    Locked {
        /// The file that is locked.
        path: PathBuf,
    },

    /// The file exists and is not empty, but does not start with redb's magic number: it is some
    /// other file, and it was left untouched.
    #[error(
        "{} is not a redb database (wrong magic number); it was left untouched: \
         check the path",
        path.display()
    )]
    NotADatabase {
        /// The file that was being opened.
        path: PathBuf,
    },

    /// A redb operation failed; `action` says what the store was doing.
    #[error("{action}: {source}")]
    Database {
        /// What the store was doing, e.g. "appending a record".
        action: &'static str,
        /// What redb reported.
        #[source]
        source: redb::Error,
    },

    /// A record (or metadata value) is larger than [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES)
    /// and was refused; nothing was written.
    #[error("record of {len} bytes is larger than the limit of {max} bytes")]
    RecordTooLarge {
        /// The size of the refused record.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The record with this sequence number failed its checksum: the bytes on disk are not the
    /// bytes that were appended. The log must be restored from a replica or a backup.
    #[error("record {seq} of the command log failed its checksum: the log is corrupt")]
    Corrupt {
        /// Sequence number of the damaged record.
        seq: u64,
    },

    /// The metadata value under this key (of a [`CommandLog`](crate::CommandLog) or a
    /// [`NodeStore`](crate::NodeStore)) failed its checksum.
    #[error("metadata value {key:?} failed its checksum: the database is corrupt")]
    CorruptMeta {
        /// Key of the damaged value.
        key: String,
    },

    /// A value handed to the [`NodeStore`](crate::NodeStore) is larger than its limit
    /// ([`MAX_SLIVER_BYTES`](crate::MAX_SLIVER_BYTES), [`MAX_METADATA_BYTES`](crate::MAX_METADATA_BYTES),
    /// [`MAX_BLOB_INFO_BYTES`](crate::MAX_BLOB_INFO_BYTES) or
    /// [`MAX_NODE_META_BYTES`](crate::MAX_NODE_META_BYTES)) and was refused. Nothing was written:
    /// for a batch of slivers, no sliver of the batch.
    #[error("{what} of {len} bytes is larger than the limit of {max} bytes; nothing was written")]
    ValueTooLarge {
        /// What was refused: "sliver", "metadata", "blob info" or "meta value".
        what: &'static str,
        /// The size of the refused value.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A stored sliver, or the index entry that records it, failed its checksum: the bytes on
    /// disk are not the bytes that were put. Delete it with
    /// [`NodeStore::delete_slivers`](crate::NodeStore::delete_slivers) (which works on damaged
    /// slivers) and recover it from other nodes.
    #[error(
        "the {kind} sliver of shard {shard} of blob {} failed its checksum: delete it and \
         recover it from other nodes",
        hex(.blob_id)
    )]
    CorruptSliver {
        /// The blob the sliver belongs to.
        blob_id: [u8; 32],
        /// The shard the sliver belongs to.
        shard: u16,
        /// Which sliver of the shard's pair.
        kind: SliverKind,
    },

    /// A per-blob value of the [`NodeStore`](crate::NodeStore) (its metadata or its blob info)
    /// failed its checksum. Put it again (metadata can be fetched from other nodes), or delete the
    /// blob.
    #[error("the {table} of blob {} failed its checksum: the database is corrupt", hex(.blob_id))]
    CorruptBlobValue {
        /// Which value: "metadata" or "blob info".
        table: &'static str,
        /// The blob it belongs to.
        blob_id: [u8; 32],
    },

    /// The sliver counters of a shard (kept for
    /// [`NodeStore::stats`](crate::NodeStore::stats)) failed their checksum. Writes to that
    /// shard fail until the database is restored.
    #[error("the sliver counters of shard {shard} failed their checksum: the database is corrupt")]
    CorruptShardStats {
        /// The shard whose counters are damaged.
        shard: u16,
    },

    /// The log is not dense: a sequence number is missing. The store never writes a gap, so the
    /// file was damaged or edited outside it.
    #[error("the command log has a gap: expected record {expected}, found {found}")]
    Gap {
        /// The sequence number that should have come next.
        expected: u64,
        /// What was found instead (for a missing tail: the log's length).
        found: u64,
    },

    /// The callback of [`CommandLog::for_each`](crate::CommandLog::for_each) stopped the replay
    /// with an error of its own, at record `seq`. Callers build this variant themselves to carry,
    /// for example, a decoding error of the command.
    #[error("replaying record {seq} failed: {source}")]
    Replay {
        /// Sequence number of the record the callback refused.
        seq: u64,
        /// The callback's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// Wraps any redb error with what the store was doing, for `map_err`.
pub(crate) fn database<E: Into<redb::Error>>(action: &'static str) -> impl FnOnce(E) -> StoreError {
    move |source| StoreError::Database { action, source: source.into() }
}

/// Lowercase hex of a blob ID, for error messages.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut text, byte| {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
        text
    })
}

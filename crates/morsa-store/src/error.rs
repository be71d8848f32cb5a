//! The one error type of the store: every way opening, writing or reading can fail.

use std::path::PathBuf;

/// An error of the command log (and, later, of the rest of the store).
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

    /// The metadata value under this key failed its checksum.
    #[error("metadata value {key:?} failed its checksum: the database is corrupt")]
    CorruptMeta {
        /// Key of the damaged value.
        key: String,
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

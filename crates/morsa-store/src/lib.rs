//! Durable storage engine of Morsa's coordinator and storage nodes, on [redb].
//!
//! What this crate owns:
//!
//! - **The command log** ([`CommandLog`]): the coordinator's source of truth. An append-only,
//!   dense (`0, 1, 2, ...`), checksummed sequence of opaque records in one redb file, each one
//!   fsync'd before its append returns, plus a small metadata table. The coordinator rebuilds its
//!   state by replaying it. Crash-tested with real `SIGKILL`s in `tests/crash_consistency.rs`.
//! - **The Raft log** ([`RaftLog`]): a coordinator replica's Raft entries by index, with the
//!   vote and log positions as metadata; every write fsync'd; purged from the front once a
//!   snapshot covers it, truncated from the back when a leader overrules it.
//! - **The node store** ([`NodeStore`]): a storage node's durable engine. Per blob, its metadata,
//!   the primary and secondary slivers of the shards the node owns, and the node's own state of
//!   the blob; plus named values such as the event cursor. Slivers that arrive together are
//!   stored in one transaction (one fsync, all or nothing); a blob's slivers are one key range,
//!   so deleting a blob is a range delete; per-shard counters are kept with every write for
//!   [`NodeStore::stats`]. Crash-tested in `tests/node_store_crash.rs`.
//!
//! Both acknowledge a write only once it is durable (redb commit with immediate durability), check
//! a CRC-32C stored beside every value on every read (a mismatch is an error, never the bytes),
//! and refuse oversized values before writing anything.
//!
//! What it does not own: the meaning of the bytes. Records, metadata, slivers and blob info are
//! opaque here: encoding commands and applying them is `morsa-coord`'s business, checking
//! slivers against metadata and deciding what to store is `morsa-node`'s.
//!
//! ```
//! use morsa_store::{CommandLog, StoreError};
//!
//! # fn main() -> Result<(), StoreError> {
//! # let dir = tempfile::tempdir().expect("a temporary directory");
//! let path = dir.path().join("coord.redb");
//! let log = CommandLog::open(&path)?;
//! assert_eq!(log.append(b"register blob A")?, 0);
//! assert_eq!(log.append_batch(&[b"certify A".to_vec(), b"extend A".to_vec()])?, 1..3);
//! log.put_meta("epoch", &7_u64.to_le_bytes())?;
//! drop(log);
//!
//! // On restart, replay the log to rebuild the state.
//! let log = CommandLog::open(&path)?;
//! let mut replayed = Vec::new();
//! log.for_each(|seq, record| {
//!     replayed.push((seq, record.to_vec()));
//!     Ok(())
//! })?;
//! assert_eq!(replayed.len(), 3);
//! assert_eq!(log.read(1, 1)?, vec![(1, b"certify A".to_vec())]);
//! assert_eq!(log.get_meta("epoch")?, Some(7_u64.to_le_bytes().to_vec()));
//! # Ok(())
//! # }
//! ```

mod checksum;
mod command_log;
mod error;
mod node_store;
mod raft_log;

pub use command_log::{CommandLog, LOG_CACHE_BYTES, MAX_RECORD_BYTES};
pub use error::StoreError;
pub use node_store::{
    BlobInfoRecord, DEFAULT_NODE_CACHE_BYTES, DeleteStats, MAX_BLOB_INFO_BYTES, MAX_METADATA_BYTES,
    MAX_NODE_META_BYTES, MAX_SLIVER_BYTES, NodeStore, ShardStats, SliverKind, SliverWrite, StoreStats,
};
pub use raft_log::RaftLog;

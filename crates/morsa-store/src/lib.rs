//! Durable storage engine of Morsa's coordinator and storage nodes, on [redb].
//!
//! What this crate owns:
//!
//! - **The command log** ([`CommandLog`]): the coordinator's source of truth. An append-only,
//!   dense (`0, 1, 2, ...`), checksummed sequence of opaque records in one redb file, each one
//!   fsync'd before its append returns, plus a small metadata table. The coordinator rebuilds its
//!   state by replaying it. Crash-tested with real `SIGKILL`s in `tests/crash_consistency.rs`.
//! - *Later:* sliver and metadata storage for storage nodes.
//!
//! What it does not own: the meaning of the bytes. Records and metadata values are opaque here;
//! encoding commands (BCS/postcard) and applying them is `morsa-coord`'s business.
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

pub use command_log::{CommandLog, MAX_RECORD_BYTES};
pub use error::StoreError;

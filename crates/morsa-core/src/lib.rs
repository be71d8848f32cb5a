//! Protocol types shared by every Morsa service: indices, epochs and the quorum arithmetic
//! of a committee. Pure: no I/O.
//!
//! What is here today is what the codec's users need; signed messages, keys and committees
//! arrive with the storage-node and coordination issues.
//!
//! ```
//! use morsa_core::{ShardIndex, quorum};
//! let n = 10;
//! assert!(quorum::is_quorum(7, n));      // 3·7 ≥ 2·10 + 1
//! assert!(!quorum::is_quorum(6, n));
//! assert!(quorum::is_validity(4, n));    // at least one honest shard: 3·4 ≥ 10 + 1
//! # let _ = ShardIndex(0);
//! ```

mod index;
pub mod quorum;

pub use index::{Epoch, ShardIndex, SliverPairIndex};
pub use redstuff::BlobId;

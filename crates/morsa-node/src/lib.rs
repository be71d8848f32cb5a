//! The storage node: holds the slivers of the shards it owns, checks every upload against the
//! blob's metadata before storing it durably, and signs storage confirmations once it holds
//! everything it owns of a blob.
//!
//! It follows the coordinator's events to learn which blobs are registered, certified,
//! deleted or invalid, and which shards it owns in each epoch.
//!
//! It heals itself: slivers it lacks of certified blobs (missed uploads, lost or damaged data)
//! are rebuilt from other nodes' recovery symbols, in the background (`sync`, `repair_queue`,
//! `scrub`) or at once when a request needs them; the engine is `repair` with `fetch` and
//! `peers`, and a blob proven inconsistently encoded is reported by `invalid`.

pub mod admin;
pub mod answers;
pub mod blob_info;
pub mod config;
pub mod error;
pub mod fetch;
pub mod follower;
pub mod gc;
pub mod ingest;
pub mod invalid;
pub mod keys;
mod metadata_cache;
pub mod metrics;
pub mod missing;
pub mod node;
pub mod on_demand;
pub mod peers;
pub mod pending;
pub mod recovery;
pub mod repair;
pub mod repair_queue;
pub mod scrub;
pub mod server;
pub mod sync;
pub mod throttle;

pub use config::{Limits, NodeConfig, NodeConfigError, RepairConfig};
pub use error::NodeError;
pub use node::{Node, View};

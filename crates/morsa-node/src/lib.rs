//! The storage node: holds the slivers of the shards it owns, checks every upload against the
//! blob's metadata before storing it durably, and signs storage confirmations once it holds
//! everything it owns of a blob.
//!
//! It follows the coordinator's events to learn which blobs are registered, certified,
//! deleted or invalid, and which shards it owns in each epoch.

pub mod blob_info;
pub mod config;
pub mod error;
pub mod follower;
pub mod gc;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod pending;
pub mod recovery;
pub mod server;

pub use config::{Limits, NodeConfig, NodeConfigError};
pub use error::NodeError;
pub use node::{Node, View};

//! The storage node: holds the slivers of the shards it owns, checks every upload against the
//! blob's metadata before storing it durably, and signs storage confirmations once it holds
//! everything it owns of a blob. It follows the coordinator's events to learn which blobs are
//! registered, certified, deleted or invalid, and which shards it owns in each epoch.
//!
//! Start one with [`run`] (or [`Listening`], to announce the address first) from a
//! [`NodeConfig`]; a [`Node`] built by hand is started with [`Listening::with_node`], with or
//! without a coordinator to follow. [`router`] gives the routes alone, for tests through
//! `oneshot`.
//!
//! The crate has five parts, each depending only on those before it:
//!
//! - **The core**: [`Node`] (`node.rs`; under `node/` what it computes and reports:
//!   recovery symbols and batches, attestations, what it lacks, status, garbage collection),
//!   `blob_info` (what the events say of each blob), `ingest` (group commits of slivers),
//!   `pending` (uploads waiting for their registration), `follower` (the coordinator's
//!   events), `report` (signed reports to the coordinator, sent again while it is away),
//!   `config`, `keys`, `error`, `metrics`, `clock`, `blocking` (blocking threads, and the
//!   low-priority pool the node's background work runs on).
//! - **`heal/`**: self-healing. Missing or damaged slivers of certified blobs are rebuilt from
//!   other nodes' recovery symbols, in the background (`sync`, `repair_queue`, `scrub`) or at
//!   once when a request needs them (`on_demand`), and declared lost to the coordinator
//!   meanwhile (`losses`); the engine is `repairer` with `fetch` and
//!   `peers`, and a blob proven inconsistently encoded is reported by `invalid`.
//! - **`challenge/`**: storage challenges: the open round, answers from the stored slivers,
//!   the auditor task and disputes.
//! - **`migrate/`**: shard migration. Gained shards are pulled from their previous owner,
//!   lost ones kept for their new owner and deleted after a grace epoch.
//! - **`http/`**: the routes, their shared state ([`Served`]) and error answers, the admin
//!   routes and the routes that serve recovery symbols to peers.
//!
//! It does not hold the coordinator's state (it follows its events) nor the codec (`redstuff`)
//! nor the HTTP client (`morsa_api::client`).

mod blob_info;
mod blocking;
mod challenge;
mod config;
mod disk;
mod error;
mod follower;
mod heal;
mod http;
mod ingest;
pub mod keys;
mod metrics;
mod migrate;
mod node;
mod pending;
mod report;
mod run;
#[doc(hidden)]
pub mod testing;

pub use blob_info::{BlobInfo, ObjectInfo};
pub use config::{AvailabilityConfig, Limits, NodeConfig, NodeConfigError, RepairConfig};
pub use error::{MetadataDamage, NodeError};
pub use http::{AdminToken, Served, router};
pub use node::{Node, View};
pub use run::{Listening, RunError, run};

//! The HTTP contract of Morsa's services: request and response types, route paths, size
//! limits and error codes, and typed clients. Servers and clients both use these types, so
//! they cannot drift apart.
//!
//! - [`coord`]: the coordinator's API (transactions, node reports, events, state).
//! - [`node`]: the storage node's API (metadata, slivers, confirmations, recovery symbols,
//!   inconsistency proofs, status, health), with its error codes.
//! - `client` (feature `client`, on by default but off in the workspace's dependency):
//!   `CoordClient` and `NodeClient` on reqwest, with timeouts and bounded answers on every
//!   call.
//!
//! Bodies are JSON, except slivers, metadata, recovery symbols and inconsistency proofs, which
//! are BCS (`application/octet-stream`). Every error answer is an [`ErrorBody`].
//!
//! - [`server`] (feature `server`): the bounded accept loop the node and the coordinator serve
//!   with (connection cap, header-read, idle and write timeouts).
//!
//! The signed and hashed types the coordinator and nodes exchange (transactions, log entries,
//! events, confirmations) live in [`morsa_core::protocol`] and are re-exported here.
//!
//! Not here: the servers' routes (`morsa-coord`, `morsa-node`), verification of what nodes send
//! (`redstuff`, `morsa-core`), and retries or node selection (`morsa-client`).

#[cfg(feature = "client")]
pub mod client;
pub mod coord;
mod error_body;
pub mod node;
#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "client")]
pub use client::{ClientError, ClientOptions, CoordClient, NodeClient};
pub use error_body::{ErrorBody, codes};

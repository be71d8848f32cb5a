//! The bodies of Morsa's fuzz targets beyond the codec's: one function per target, taking the
//! raw input. The binaries in `fuzz_targets/` are one line each around these, so the same
//! checks can be called from anywhere (a reproduction, a test) without libFuzzer.
//!
//! Every target feeds the same bytes to each decoder of its group, the way the server or the
//! store's reader would meet them. None may panic, and what decodes must survive its own
//! encoding: JSON decodes back to the same value, BCS encodes back to exactly the input
//! (two byte strings never stand for one value), then the methods a server or reader calls
//! next on the value run too.
//!
//! - [`node_api`]: the storage node's request and response bodies, queries and path texts.
//! - [`coord_api`]: the coordinator's request and response bodies, queries and path texts.
//! - [`store_records`]: the records Morsa stores: command log entries, blob info, metadata
//!   and slivers as the node store holds them, and the event cursor.

pub mod check;
pub mod coord_api;
pub mod node_api;
pub mod store_records;

//! The HTTP contract of Morsa's services: request and response types, route paths and error
//! codes. Servers and clients both use these types, so they cannot drift apart.
//!
//! Bodies are JSON, except slivers and metadata, which are BCS (`application/octet-stream`).

pub mod coord;
mod error_body;

pub use error_body::ErrorBody;

//! The plumbing every Morsa crate shares, written once: acknowledged file writes that survive
//! a crash, bounded configuration loading with one error style, the wall clock, servers'
//! Prometheus metrics, and telemetry (the `morsa` binary's logging, one span per HTTP request).
//!
//! - [`file`](mod@file): [`file::replace`] (write a temporary file, fsync it, rename it over the target,
//!   fsync the directory) and [`file::create_new`] (never overwrite; fsync the file and the
//!   directory), each with a [`file::Access`]: readable by others, or a secret only its owner
//!   may read (mode `0600`, set when the file is created, so no other reader ever sees it).
//! - [`config`]: [`config::load_toml`] and [`config::read_limited`]: a size cap, the path in
//!   every [`ConfigError`], and the caller's `#[serde(deny_unknown_fields)]` kept.
//! - [`clock`]: [`now_ms`], milliseconds since the Unix epoch.
//! - `metrics` (feature `metrics`): `metrics::Registry`, Prometheus metrics through the
//!   `metrics` facade on a recorder the server owns, not the process-wide one.
//! - `telemetry` (feature `telemetry`): `init_logging`, the stderr subscriber filtered by
//!   `RUST_LOG`, and `trace_layer`, one span per HTTP request carrying the blob ID its path
//!   names.
//!
//! Not here: anything about the protocol (`morsa-core`), storage engines (`morsa-store`), or
//! HTTP routes and bodies (`morsa-api`). The crate knows no Morsa type.
//!
//! ```
//! use morsa_plumbing::file::{self, Access};
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state.json");
//! file::replace(&path, b"{}", Access::Shared)?;
//! file::replace(&path, b"{\"epoch\":1}", Access::Shared)?; // readers see old or new, never half
//! assert_eq!(std::fs::read(&path)?, b"{\"epoch\":1}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod clock;
pub mod config;
pub mod file;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "telemetry")]
pub mod telemetry;

pub use clock::now_ms;
pub use config::ConfigError;
pub use file::{Access, WriteError};

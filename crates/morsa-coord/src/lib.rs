//! The coordination service: which blobs exist and for how long, proofs of availability,
//! epochs and committees, as a deterministic state machine.
//!
//! [`apply`] is the only way the [`State`] changes: pure, with no I/O (it depends on the
//! protocol types of `morsa_core::protocol`, not on any HTTP client), so that the same
//! [`Genesis`] and the same log of [`LogEntry`]s give the same state, bit for bit, on every
//! machine ([`State::hash`]). Accepted entries emit numbered, hash-chained [`EventRecord`]s.
//! The durable log, the HTTP server (with its Prometheus metrics, through the `metrics`
//! facade) and `morsa coord run` are built around it. Its configuration is read through
//! `morsa-plumbing`.

mod address;
mod apply;
pub mod apportion;
mod audit;
pub mod availability;
pub mod challenge;
mod checks;
mod commands;
mod config;
pub mod delegation;
pub mod domains;
mod error;
mod genesis;
pub mod lifecycle;
mod metrics;
pub mod raft;
mod runtime;
pub mod server;
mod state;
mod system_view;

pub use apply::{Applied, CommandApplied, apply, apply_prechecked};
pub use audit::{AuditError, AuditReport, PagedAudit, ServedEvents, audit_log, audit_path};
pub use checks::{Precheck, Prechecked};
pub use config::{AvailabilityConfig, CoordConfig, LOG_FILE, ReplicaAddress, Testing};
pub use error::{AddressError, BlobStateReason, CommandError, InvalidReason, StorageMismatchReason};
pub use genesis::{
    DEFAULT_MAX_INACTIVE_NODES, DEFAULT_MAX_NODE_CAPACITY, DEFAULT_NODE_DEPOSIT, Genesis, GenesisAccount,
    GenesisError, GenesisNode, MIN_NODE_CAPACITY, NodeRules,
};
pub use morsa_api::coord::{BlobObjectSummary, BlobStatus, BlobStatusKind};
pub use morsa_core::hash::Digest;
pub use morsa_core::protocol::{
    Command, Event, EventRecord, Input, LogEntry, MAX_BATCH_COMMANDS, NodeReport, NodeReportKind,
    SignedTransaction, Transaction,
};
pub use morsa_plumbing::ConfigError;
pub use runtime::{Coordinator, CoordinatorError, RecordedPage, SubmitError, genesis_hash};
pub use state::{Account, BlobObject, Certification, EpochPhase, Node, Params, State, StorageResource};
pub use system_view::{MIN_HASH_PAUSE, SystemAnswer, SystemView, ViewError};

/// Locks `mutex`, also after a panic elsewhere poisoned it: every guarded value here stays
/// consistent across a panic (updates check before they mutate).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

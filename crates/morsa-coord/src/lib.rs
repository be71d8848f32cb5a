//! The coordination service: which blobs exist and for how long, proofs of availability,
//! epochs and committees, as a deterministic state machine.
//!
//! [`apply`] is the only way the [`State`] changes: pure, with no I/O, so that the same
//! [`Genesis`] and the same log of [`LogEntry`]s give the same state, bit for bit, on every
//! machine ([`State::hash`]). Accepted entries emit numbered, hash-chained [`EventRecord`]s.
//! The durable log, the HTTP server and `morsa coord run` are built around it.

mod apply;
pub mod apportion;
mod command;
mod commands;
mod error;
mod event;
mod genesis;
mod hash;
mod runtime;
mod state;

pub use apply::{Applied, apply};
pub use command::{Command, Input, LogEntry, NodeReport, NodeReportKind, SignedTransaction, Transaction};
pub use error::CommandError;
pub use event::{Event, EventRecord};
pub use genesis::{Genesis, GenesisAccount, GenesisError, GenesisNode};
pub use hash::Digest;
pub use runtime::{Coordinator, CoordinatorError, SubmitError, genesis_hash};
pub use state::{
    Account, BlobObject, BlobObjectSummary, BlobStatus, BlobStatusKind, Certification, EpochPhase, Node,
    Params, State, StorageResource,
};

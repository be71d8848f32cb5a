//! Replication of the coordinator with Raft (openraft): every replica holds the same state
//! because every replica applies the same committed entries with the same pure `apply`.
//!
//! - `log_store`: the Raft log on redb (`raft-log.redb`), fsync'd, purged once a snapshot
//!   covers it.
//! - `state_machine`: the [`Coordinator`](crate::Coordinator) as Raft's state machine. What it
//!   applied is recorded in its command log together with how far it applied (one commit), so
//!   that `morsa coord audit` replays any replica's data from genesis. A snapshot is that
//!   history; a new or wiped replica installs it and replays it.
//! - `network`: replica-to-replica calls over HTTP (JSON bodies, bounded, with timeouts).
//! - `replica`: one running replica: proposing inputs, who leads.
//! - `proposals`: group commit: the writes waiting to be proposed go as one Raft entry.
//! - `membership`: adding and removing replicas at run time, on the leader.
//!
//! The leader stamps an entry with its clock; a replica applies it at that time or at the
//! state's time if that is later, so a new leader whose clock is behind never makes time go
//! backwards, and every replica computes the same.

// openraft's storage traits fix their error type (`StorageError`, over 200 bytes): the helpers
// that build it return it as the traits do.
#[allow(clippy::result_large_err)]
mod log_store;
mod membership;
mod network;
mod proposals;
mod replica;
#[allow(clippy::result_large_err)]
mod state_machine;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Applied, CommandError};

pub use membership::{CATCH_UP_WAIT, MembershipError};
pub use network::{FROM_REPLICA_HEADER, MAX_RAFT_BODY_BYTES};
pub use proposals::{MAX_PROPOSAL_BYTES, MAX_PROPOSAL_ENTRIES, Proposal};
pub use replica::{COMMIT_WAIT, ProposeError, Replica, ReplicaSettings, Route, StartError};

/// A replica's ID in the group.
pub type ReplicaId = u64;

openraft::declare_raft_types!(
    /// The types openraft is used with: our log entries, replica IDs and URLs.
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
        NodeId = ReplicaId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// What applying one Raft entry gave, for the replica that proposed it: for each log entry of
/// its [`Proposal`], the events and objects, or the refusal (nothing for an entry that
/// carried no proposal). Outcomes never cross the network (each replica applies for itself),
/// so they serialize to nothing.
#[derive(Debug, Clone, Default)]
pub struct Outcome(pub(crate) Vec<Result<Applied, CommandError>>);

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <()>::deserialize(deserializer)?;
        Ok(Self(Vec::new()))
    }
}

/// Name of the Raft log's file in the data directory.
pub const RAFT_LOG_FILE: &str = "raft-log.redb";

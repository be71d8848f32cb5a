//! What the coordinator serves to its operators rather than to clients: changing the replica
//! group at run time (with the admin token) and reading a replica's recorded log to audit it
//! while it runs.

use serde::{Deserialize, Serialize};

use super::{ReplicaMember, routes};

/// Header carrying the admin token, as `Bearer TOKEN` (the standard `Authorization` header).
pub const ADMIN_AUTHORIZATION: &str = "authorization";

/// Longest the coordinator takes to answer a membership change: the new replica's catch-up
/// (from a snapshot if need be) and two commits. Clients wait this long.
pub const MEMBERSHIP_WAIT: std::time::Duration = std::time::Duration::from_secs(80);

/// Body of `POST` [`routes::RAFT_MEMBERS`]: the replica to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddReplica {
    /// Its ID, unique in the group.
    pub id: u64,
    /// The URL the other replicas reach it at, e.g. `http://10.0.0.4:7001`.
    pub url: String,
}

/// The group after a committed membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The replica that led the change.
    pub leader: u64,
    /// Every replica of the group (voters and learners), by ID.
    pub replicas: Vec<ReplicaMember>,
}

/// Most log entries one [`LogPage`] holds.
pub const MAX_LOG_PAGE: usize = 1000;

/// Query of [`routes::LOG`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// First entry to return (from 0 if absent).
    pub from: Option<u64>,
    /// Most entries to return (capped at [`MAX_LOG_PAGE`]).
    pub limit: Option<usize>,
}

/// A page of the entries a replica recorded (what `morsa coord audit` replays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// Hex of the hash of the genesis the log belongs to.
    pub genesis_hash: String,
    /// Sequence number of the first entry of `entries`.
    pub from: u64,
    /// The entries, each the hex of a BCS `LogEntry`, in order.
    pub entries: Vec<String>,
    /// Entries recorded so far (the log grows while the replica runs).
    pub count: u64,
}

/// The path that removes replica `id`.
pub fn member_path(id: u64) -> String {
    routes::RAFT_MEMBER.replace("{replica_id}", &id.to_string())
}

//! The coordinator's API: transactions in, events and state out. The transactions, reports,
//! log entries and events themselves are signed or hashed, so they live in
//! [`morsa_core::protocol`]; they are re-exported here.

mod admin;
mod availability;
mod challenges;
mod node_challenges;
mod status;
mod urls;
mod zones;

use crate::ErrorBody;
use morsa_core::{AccountId, Committee, Epoch, NodeId, ObjectId};
use serde::{Deserialize, Serialize};

pub use admin::{
    ADMIN_AUTHORIZATION, AddReplica, LogPage, LogQuery, MAX_LOG_PAGE, MEMBERSHIP_WAIT, Membership,
    member_path,
};
pub use availability::{
    AtRiskBlob, AvailabilityAnswer, AvailabilitySummary, AvailabilityView, BlobMargin, MAX_AT_RISK_BLOBS,
    MAX_LISTED_BLOBS, MarginCount, NodeAvailability, ShardAvailability, SignedAvailability,
};
pub use challenges::{
    ChallengeOutcome, ChallengeTally, ChallengeTarget, ChallengesInfo, ChallengesQuery, OpenChallengeRound,
};
pub use morsa_core::protocol::{
    Command, Event, EventRecord, Input, LogEntry, MAX_BATCH_COMMANDS, NodeReport, NodeReportKind,
    SignedTransaction, Transaction,
};
pub use node_challenges::{NodeChallenges, node_challenges_path};
pub use status::{BlobObjectSummary, BlobStatus, BlobStatusKind};
pub use urls::{CoordinatorUrlsError, MAX_COORDINATOR_URLS, coordinator_urls};
pub use zones::MemberZones;

/// Route paths (axum syntax for parameters).
pub mod routes {
    /// `POST`: a [`super::SignedTransaction`] as JSON; answers [`super::SubmitResponse`].
    pub const TRANSACTIONS: &str = "/v1/transactions";
    /// `POST`: a [`super::NodeReport`] as JSON; answers [`super::SubmitResponse`].
    pub const NODE_REPORTS: &str = "/v1/node-reports";
    /// `GET ?after=SEQ&wait_ms=MS&limit=N`: [`super::EventsPage`], long-polling up to `wait_ms`.
    pub const EVENTS: &str = "/v1/events";
    /// `GET`: [`super::BlobStatus`] of a blob ID.
    pub const BLOB: &str = "/v1/blobs/{blob_id}";
    /// `GET`: [`super::CommitteeInfo`].
    pub const COMMITTEE: &str = "/v1/committee";
    /// `GET`: [`super::SystemInfo`].
    pub const SYSTEM: &str = "/v1/system";
    /// `POST`, replica to replica: a Raft append-entries request as JSON.
    pub const RAFT_APPEND: &str = "/v1/raft/append";
    /// `POST`, replica to replica: a Raft vote request as JSON.
    pub const RAFT_VOTE: &str = "/v1/raft/vote";
    /// `POST`, replica to replica: one chunk of a Raft snapshot as JSON.
    pub const RAFT_SNAPSHOT: &str = "/v1/raft/snapshot";
    /// `POST` [`super::AddReplica`] as JSON with the admin token (`Authorization: Bearer
    /// TOKEN`): adds a replica to the group, forwarded to the leader; answers
    /// [`super::Membership`] once the change is committed.
    pub const RAFT_MEMBERS: &str = "/v1/raft/members";
    /// `DELETE` with the admin token: removes replica `replica_id` from the group; answers
    /// [`super::Membership`] once the change is committed.
    pub const RAFT_MEMBER: &str = "/v1/raft/members/{replica_id}";
    /// `GET ?from=SEQ&limit=N`: [`super::LogPage`], the entries this replica recorded, for
    /// `morsa coord audit --url`.
    pub const LOG: &str = "/v1/log";
    /// `GET`: [`super::AccountInfo`].
    pub const ACCOUNT: &str = "/v1/accounts/{account_id}";
    /// `GET ?after=OBJECT&limit=N`: [`super::AccountBlobs`], the account's live blob objects in
    /// object-ID order.
    pub const ACCOUNT_BLOBS: &str = "/v1/accounts/{account_id}/blobs";
    /// `POST` a [`super::SignedAvailability`] (a node's summary of the slivers it lacks);
    /// answers [`super::AvailabilityAnswer`]. `GET`: [`super::AvailabilityView`], the
    /// system-wide margin. Soft state of each replica, never forwarded or logged.
    pub const AVAILABILITY: &str = "/v1/availability";
    /// `GET ?node=ID&targets=false`: [`super::ChallengesInfo`], the open storage-challenge
    /// round (only the targets `ID` is challenged as or audits, with `node`; none with
    /// `targets=false`) and the last epoch's outcomes.
    pub const CHALLENGES: &str = "/v1/challenges";
    /// `GET`: [`super::NodeChallenges`], a node's challenge tally this epoch and outcomes of
    /// its last settled epochs.
    pub const NODE_CHALLENGES: &str = "/v1/nodes/{node_id}/challenges";
    /// `GET`: Prometheus metrics, text format.
    pub const METRICS: &str = "/metrics";
    /// `POST`, empty body: only with `[testing] manual_epochs = true` in `coord.toml`, moves
    /// the coordinator's clock to the start of the next epoch and applies the tick then due;
    /// answers [`super::SubmitResponse`]. Otherwise refused with 403 `manual_epochs_off`.
    pub const NEXT_EPOCH: &str = "/v1/testing/next-epoch";
}

/// Most events one page holds.
pub const MAX_EVENTS_PAGE: usize = 1000;
/// Longest long-poll wait the server grants.
pub const MAX_WAIT_MS: u64 = 30_000;
/// Largest JSON body the coordinator accepts.
pub const MAX_BODY_BYTES: usize = 256 << 10;
/// Largest JSON answer a client reads from the coordinator (a full page of events fits
/// many times over).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// What an accepted transaction or report did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    /// The events it emitted (including those of an epoch deadline applied just before).
    pub events: Vec<EventRecord>,
    /// The objects it created, in order.
    pub created: Vec<ObjectId>,
    /// For a [`Command::Batch`], what each of its commands did, in order; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<CommandResult>,
}

/// What one command of a [`Command::Batch`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandResult {
    /// It applied.
    Applied {
        /// The events it emitted.
        events: Vec<EventRecord>,
        /// The objects it created, in order.
        created: Vec<ObjectId>,
    },
    /// It was refused and changed nothing: the HTTP status and error body the same command
    /// sent alone would have been refused with.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error.
        error: ErrorBody,
    },
}

/// Query of [`routes::EVENTS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// Return events with a sequence number greater than this (all events if absent).
    pub after: Option<u64>,
    /// Wait up to this long for a new event if there is none yet (capped at [`MAX_WAIT_MS`]).
    pub wait_ms: Option<u64>,
    /// Most events to return (capped at [`MAX_EVENTS_PAGE`]).
    pub limit: Option<usize>,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsPage {
    /// Events in order.
    pub events: Vec<EventRecord>,
    /// How many events exist in all; ask again with `after = count − 1` to wait for more.
    pub count: u64,
}

/// The current and next committees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeInfo {
    /// The current epoch.
    pub epoch: Epoch,
    /// Whether the epoch change to `epoch` is done (a quorum of shards reported).
    pub epoch_change_done: bool,
    /// Committee of the current epoch.
    pub current: Committee,
    /// Committee of the next epoch, once selected.
    pub next: Option<Committee>,
    /// The zones the members of both committees declared (absent: none declared, or an older
    /// coordinator): a prior for choosing nodes to read from, nothing more.
    #[serde(default, skip_serializing_if = "MemberZones::is_empty")]
    pub zones: MemberZones,
}

/// System parameters and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// Deployment name, part of every transaction signature.
    pub chain_id: String,
    /// Current epoch.
    pub epoch: Epoch,
    /// Shards `n`.
    pub n_shards: u16,
    /// Epoch length.
    pub epoch_duration_ms: u64,
    /// Start of the current epoch.
    pub epoch_start_ms: u64,
    /// Price of 1 MiB of encoded size for one epoch.
    pub storage_price_per_mib_epoch: u64,
    /// Price of registering 1 MiB of encoded size.
    pub write_price_per_mib: u64,
    /// How many epochs ahead storage can be bought.
    pub max_epochs_ahead: u32,
    /// Capacity of the current committee, in encoded bytes.
    pub capacity: u64,
    /// Bytes reserved in the current epoch.
    pub used: u64,
    /// Time of the last applied entry.
    pub time_ms: u64,
    /// Events so far.
    pub event_count: u64,
    /// Hash of the state (hex): equal on every replica with the same log.
    pub state_hash: String,
    /// The answering replica's place in the replicated coordinator (absent from a coordinator
    /// that does not replicate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaInfo>,
    /// Shards of the current committee per failure domain (absent from older coordinators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<DomainsInfo>,
    /// Every registered node with its stake and commission (absent from older coordinators).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSummary>,
}

/// A registered node: who operates it, where it stands, and what its stakers pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// The node.
    pub node_id: NodeId,
    /// The account that operates it and receives its commission.
    pub operator: AccountId,
    /// Its declared zone (empty: undeclared).
    pub zone: String,
    /// Total stake with it, counting for the next committee selection.
    pub stake: u64,
    /// Share of its rewards paid to the operator, in parts per million.
    pub commission_ppm: u32,
    /// A rate that takes effect at the next epoch change.
    pub next_commission_ppm: Option<u32>,
    /// Retired by its operator: never selected again.
    pub retired: bool,
}

/// How the current committee's shards spread over zones and operators, against `f`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainsInfo {
    /// `f = (n - 1) / 3`: the most shards that may be lost with reads and writes going on.
    pub f: u16,
    /// Shards per zone, largest first (a node without a declared zone is listed as
    /// `(node ID)`, a zone of its own).
    pub zones: Vec<DomainShards>,
    /// Shards per operator account, largest first.
    pub operators: Vec<DomainShards>,
    /// Set when a zone or an operator holds more than `f` shards: losing it loses more than
    /// the code tolerates. Committee selection avoids this whenever the candidates allow.
    pub warning: Option<String>,
}

/// Shards held in one failure domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainShards {
    /// The zone name or operator account.
    pub name: String,
    /// Shards its nodes hold.
    pub shards: u16,
}

/// Stake taken off a node, waiting for the epoch change that moves its shards away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWithdrawal {
    /// The node.
    pub node: NodeId,
    /// Amount.
    pub amount: u64,
    /// The epoch whose change must be done before `Withdraw` pays it.
    pub epoch: Epoch,
    /// Whether `Withdraw` would pay it now.
    pub payable: bool,
}

/// One coordinator replica's view of the Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    /// This replica's ID.
    pub id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The current Raft term.
    pub term: u64,
    /// The leader this replica knows of.
    pub leader: Option<u64>,
    /// Index of the last Raft entry applied to the state.
    pub applied_index: Option<u64>,
    /// Index of the last Raft entry this replica's log no longer holds (compacted into a
    /// snapshot); a replica that needs an earlier entry catches up from a snapshot.
    #[serde(default)]
    pub purged_index: Option<u64>,
    /// Every replica of the group (voters and learners).
    pub replicas: Vec<ReplicaMember>,
}

/// A member of the replica group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaMember {
    /// Its ID.
    pub id: u64,
    /// The URL other replicas and callers reach it at.
    pub url: String,
    /// Whether it votes (a learner only copies the log).
    pub voter: bool,
}

/// An account's balance, nonce and stakes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The account.
    pub id: AccountId,
    /// Spendable balance.
    pub balance: u64,
    /// Nonce its next transaction must carry.
    pub nonce: u64,
    /// Stake per node.
    pub stakes: Vec<(NodeId, u64)>,
    /// Unstaked amounts not withdrawn yet (absent from older coordinators).
    #[serde(default)]
    pub withdrawals: Vec<PendingWithdrawal>,
}

/// Most blob objects one [`AccountBlobs`] page holds.
pub const MAX_ACCOUNT_BLOBS_PAGE: usize = 1000;

/// Query of [`routes::ACCOUNT_BLOBS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBlobsQuery {
    /// Return objects with IDs greater than this (from the first if absent).
    pub after: Option<ObjectId>,
    /// Most objects to return (capped at [`MAX_ACCOUNT_BLOBS_PAGE`]).
    pub limit: Option<usize>,
}

/// One live blob object of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedBlob {
    /// The blob object.
    pub object: ObjectId,
    /// Its blob ID.
    pub blob_id: redstuff::BlobId,
    /// Unencoded size.
    pub size: u64,
    /// Encoded size (what was paid for).
    pub encoded_size: u64,
    /// Whether the owner may delete it.
    pub deletable: bool,
    /// Epoch of registration.
    pub registered_epoch: Epoch,
    /// First epoch in which it is no longer stored.
    pub end_epoch: Epoch,
    /// Epoch of certification, if certified.
    pub certified_epoch: Option<Epoch>,
    /// Whether its blob ID was proven inconsistently encoded.
    pub invalid: bool,
}

/// A page of an account's blob objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBlobs {
    /// The objects, in object-ID order.
    pub blobs: Vec<OwnedBlob>,
    /// Whether more objects follow the last one (ask again with `after` = its ID).
    pub more: bool,
}

/// The path of an account's blob objects.
pub fn account_blobs_path(account: &AccountId) -> String {
    routes::ACCOUNT_BLOBS.replace("{account_id}", &account.to_string())
}

/// The path of a blob's status.
pub fn blob_path(blob_id: &redstuff::BlobId) -> String {
    routes::BLOB.replace("{blob_id}", &blob_id.to_string())
}

/// The path of an account.
pub fn account_path(account: &AccountId) -> String {
    routes::ACCOUNT.replace("{account_id}", &account.to_string())
}

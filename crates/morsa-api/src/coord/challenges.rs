//! `GET /v1/challenges`: the open storage-challenge round as the coordinator's state holds it
//! (who is challenged on what, who audits whom, what the auditors reported so far) and what
//! the last completed epoch came to per node, so that nodes need not derive the candidates.

use morsa_core::challenge::ChallengeItem;
use morsa_core::hash::Digest;
use morsa_core::{Epoch, NodeId};
use serde::{Deserialize, Serialize};

/// Query of [`super::routes::CHALLENGES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengesQuery {
    /// List only the targets this node is challenged as or audits (all targets if absent).
    pub node: Option<NodeId>,
    /// With `false`, the open round's targets are left out (the outcomes alone are small).
    pub targets: Option<bool>,
}

/// The answer of [`super::routes::CHALLENGES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengesInfo {
    /// Rounds per epoch (0: challenges are off).
    pub rounds_per_epoch: u32,
    /// Challenges per shard and round.
    pub samples_per_shard: u32,
    /// The round under way, if any.
    pub open: Option<OpenChallengeRound>,
    /// What the last completed epoch came to, per member of its committee.
    pub last_epoch: Vec<ChallengeOutcome>,
}

/// A challenge round under way: it closes when the next one starts or the epoch changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenChallengeRound {
    /// Its epoch.
    pub epoch: Epoch,
    /// Its number in the epoch, from 0.
    pub round: u32,
    /// Its seed.
    pub seed: Digest,
    /// When it started (coordinator time, ms since the Unix epoch).
    pub started_ms: u64,
    /// End of the answer window: auditors take answers until then, and answer commitments
    /// logged after it are refused.
    pub answers_due_ms: u64,
    /// Audit reports logged after this are refused as late.
    pub reports_due_ms: u64,
    /// The challenged nodes (those the query asked for), in node-ID order.
    pub targets: Vec<ChallengeTarget>,
}

/// One challenged node in the open round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeTarget {
    /// The challenged node.
    pub node: NodeId,
    /// Its auditor.
    pub auditor: NodeId,
    /// Its challenges in derivation order; an answer or result names one by its position.
    pub items: Vec<ChallengeItem>,
    /// Whether the node's answer commitment was logged (disputes need it).
    pub committed: bool,
    /// The auditor's results, once reported (`true`: answered in time and verified).
    pub results: Option<Vec<bool>>,
    /// Whether a dispute overturned failures of this round.
    pub overturned: bool,
}

/// What an epoch's challenges came to for one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeOutcome {
    /// The node.
    pub node: NodeId,
    /// The epoch settled.
    pub epoch: Epoch,
    /// Challenges answered in time and verified.
    pub passed: u64,
    /// Challenges failed on blobs not declared lost.
    pub failed: u64,
    /// Challenges failed on blobs declared lost before the round.
    pub declared: u64,
    /// Challenges whose auditor never reported.
    pub unaudited: u64,
    /// Strikes of this node as auditor: audits that disputes overturned, and audits it owed
    /// and never reported by their deadline.
    pub strikes: u32,
    /// Of the strikes, the audits never reported.
    pub missed_audits: u32,
    /// The failed fraction `φ`, in parts per million.
    pub phi_ppm: u64,
    /// Rewards paid.
    pub reward: u64,
    /// Rewards withheld.
    pub withheld: u64,
    /// Stake slashed (failures and strikes).
    pub penalty: u64,
    /// Consecutive settled epochs with `φ ≥ 5%`, this one included (0 when it was below).
    pub failing_epochs: u32,
    /// Left out of the next committee selection (`φ ≥ 50%`, or repeated failure).
    pub removed: bool,
}

/// One node's challenge results over the closed rounds of the current epoch so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeTally {
    /// Answered in time and verified.
    pub passed: u64,
    /// Failed on blobs not declared lost.
    pub failed: u64,
    /// Failed on blobs declared lost before the round.
    pub declared: u64,
    /// Challenges whose auditor never reported.
    pub unaudited: u64,
    /// Strikes of this node as auditor (overturned or never reported audits).
    pub strikes: u32,
    /// Of the strikes, the audits never reported.
    pub missed_audits: u32,
}

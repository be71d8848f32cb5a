//! The challenge records of the coordinator's state (the rules that fill them are
//! `crate::challenge`'s): data only, so that the state depends on nothing that works on it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use morsa_core::challenge::ChallengeItem;
use morsa_core::hash::Digest;
use morsa_core::{Epoch, NodeId};
use redstuff::BlobId;
use serde::{Deserialize, Serialize};

/// Parts per million: the unit of every fraction here.
pub const PPM: u64 = 1_000_000;
/// `φ` from which stake is slashed: 5%.
pub const SLASH_FROM_PPM: u64 = 50_000;
/// `φ` from which a node is left out of the next committee: 50%.
pub const REMOVE_FROM_PPM: u64 = 500_000;
/// Stake slashed per strike of an auditor (an audit a dispute overturned, or one never
/// reported by its deadline): 1%.
pub const STRIKE_SLASH_PPM: u64 = 10_000;
/// Consecutive epochs with `φ ≥ 5%` (each with audited challenges) after which a node is left
/// out of the next committee even below 50%: repeated failure.
pub const REPEATED_FAILURE_EPOCHS: u32 = 3;
/// Completed epochs of outcomes the state keeps per node.
pub const HISTORY_EPOCHS: usize = 8;
pub use morsa_core::challenge::MAX_DECLARED_BLOBS;

/// How storage is challenged (from genesis; `rounds_per_epoch = 0` turns challenges off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeRules {
    /// Rounds per epoch; 0 turns challenges off.
    pub rounds_per_epoch: u32,
    /// Challenges per shard and round, half drawn uniformly, half weighted by size.
    pub samples_per_shard: u32,
}

impl Default for ChallengeRules {
    fn default() -> Self {
        Self { rounds_per_epoch: 0, samples_per_shard: 16 }
    }
}

/// The challenge part of the coordinator's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenges {
    /// The rules from genesis.
    pub rules: ChallengeRules,
    /// Seed of the last round started (zeros before the first); the next round's time derives
    /// from it.
    pub last_seed: Digest,
    /// Result digest of the last closed round (zeros before the first); the next seed covers it.
    pub last_result: Digest,
    /// Rounds started in the current epoch.
    pub rounds_started: u32,
    /// The round under way.
    pub open: Option<OpenRound>,
    /// Results of the current epoch's closed rounds, per node.
    pub tallies: BTreeMap<NodeId, Tally>,
    /// Blobs each node declared lost in the current epoch.
    pub declared: BTreeMap<NodeId, BTreeSet<BlobId>>,
    /// What the last completed epoch came to, per member of its committee.
    pub last_epoch: BTreeMap<NodeId, Outcome>,
    /// Nodes left out of the next committee selection.
    pub excluded: BTreeSet<NodeId>,
    /// Per node, the consecutive completed epochs (up to the last one it served) with
    /// `φ ≥ 5%`; absent once an epoch of it ends below 5%.
    pub failing_epochs: BTreeMap<NodeId, u32>,
    /// Per node, the outcomes of the last [`HISTORY_EPOCHS`] epochs it served, oldest first.
    pub history: BTreeMap<NodeId, VecDeque<Outcome>>,
}

/// A round under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRound {
    /// Its epoch.
    pub epoch: Epoch,
    /// Its number in the epoch, from 0.
    pub round: u32,
    /// Its seed.
    pub seed: Digest,
    /// When it started.
    pub started_ms: u64,
    /// End of the answer window: auditors take answers until then, and a challenged node's
    /// answer commitment with a later log time is refused as late.
    pub answers_due_ms: u64,
    /// Audit reports with a later log time are refused as late.
    pub reports_due_ms: u64,
    /// The challenged nodes.
    pub targets: BTreeMap<NodeId, TargetRound>,
}

/// One challenged node in a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRound {
    /// Who audits it.
    pub auditor: NodeId,
    /// Its challenges, in derivation order (its shards in ascending order).
    pub items: Vec<ChallengeItem>,
    /// Per challenge, whether its blob was declared lost before the round.
    pub declared: Vec<bool>,
    /// The digests of the answers the node committed to before the answer window closed
    /// (one per challenge, `NO_ANSWER` for those it could not answer), once logged.
    pub committed: Option<Vec<Digest>>,
    /// The auditor's results, once reported.
    pub results: Option<Vec<bool>>,
    /// Whether a dispute overturned failures in this round (the auditor was struck).
    pub overturned: bool,
}

/// Challenge results of one node over closed rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Answered in time and verified.
    pub passed: u64,
    /// Not answered (or not verified), blob not declared lost.
    pub failed: u64,
    /// Not answered, blob declared lost before the round.
    pub declared: u64,
    /// Challenges whose auditor never reported (counted neither way).
    pub unaudited: u64,
    /// Strikes of this node as auditor: audits that disputes overturned, and audits it owed
    /// and never reported by their deadline.
    pub strikes: u32,
    /// Of the strikes, the audits never reported.
    pub missed_audits: u32,
}

/// What an epoch's challenges came to for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The epoch.
    pub epoch: Epoch,
    /// Its tally.
    pub tally: Tally,
    /// `φ` in parts per million.
    pub phi_ppm: u64,
    /// Rewards paid.
    pub reward: u64,
    /// Rewards withheld (moved to the next pool).
    pub withheld: u64,
    /// Stake slashed (failures and strikes).
    pub penalty: u64,
    /// Consecutive epochs with `φ ≥ 5%`, this one included (0 when this one was below).
    pub failing_epochs: u32,
    /// Left out of the next committee selection (`φ ≥ 50%`, or `φ ≥ 5%` in
    /// [`REPEATED_FAILURE_EPOCHS`] consecutive epochs).
    pub removed: bool,
}

impl Challenges {
    /// Fresh challenge state with `rules`.
    pub fn new(rules: ChallengeRules) -> Self {
        Self { rules, ..Self::default() }
    }

    /// Whether rounds run at all.
    pub fn enabled(&self) -> bool {
        self.rules.rounds_per_epoch > 0 && self.rules.samples_per_shard > 0
    }
}

impl Tally {
    /// Challenges the auditors reported on.
    pub fn audited(&self) -> u64 {
        self.passed.saturating_add(self.failed).saturating_add(self.declared)
    }

    /// `φ` in parts per million: caught failures count fully, declared ones a quarter.
    pub fn phi_ppm(&self) -> u64 {
        let audited = u128::from(self.audited());
        if audited == 0 {
            return 0;
        }
        let weighted = 4 * u128::from(self.failed) + u128::from(self.declared);
        let phi = weighted * u128::from(PPM) / (4 * audited);
        u64::try_from(phi).expect("φ is at most one million")
    }

    /// The passed fraction in parts per million (all of it when nothing was audited).
    pub fn passed_ppm(&self) -> u64 {
        let audited = u128::from(self.audited());
        if audited == 0 {
            return PPM;
        }
        u64::try_from(u128::from(self.passed) * u128::from(PPM) / audited).expect("at most one million")
    }

    pub(crate) fn add(&mut self, other: &Tally) {
        self.passed = self.passed.saturating_add(other.passed);
        self.failed = self.failed.saturating_add(other.failed);
        self.declared = self.declared.saturating_add(other.declared);
        self.unaudited = self.unaudited.saturating_add(other.unaudited);
        self.strikes = self.strikes.saturating_add(other.strikes);
        self.missed_audits = self.missed_audits.saturating_add(other.missed_audits);
    }
}

/// `a × b / c` in u128, saturated into a u64 (`c > 0`).
pub(crate) fn scale(a: u64, b: u64, c: u64) -> u64 {
    u64::try_from(u128::from(a) * u128::from(b) / u128::from(c.max(1))).unwrap_or(u64::MAX)
}

/// What `node` earns of its reward `share` after its challenges: `share × passed fraction ×
/// max(0, 1 − 10·φ)`. The whole share when challenges are off or nothing was audited.
pub(crate) fn earned(challenges: &Challenges, node: &NodeId, share: u64) -> u64 {
    let Some(tally) = challenges.tallies.get(node) else { return share };
    let cut = PPM.saturating_sub(tally.phi_ppm().saturating_mul(10));
    let factor = scale(tally.passed_ppm(), cut, PPM);
    scale(share, factor, PPM)
}

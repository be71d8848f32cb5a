//! One node's storage challenges as the coordinator records them: this epoch's tally so far
//! and the outcome of each of its last completed epochs.

use morsa_core::{Epoch, NodeId};
use serde::{Deserialize, Serialize};

use super::{ChallengeOutcome, ChallengeTally};

/// Answer of [`super::routes::NODE_CHALLENGES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChallenges {
    /// The node.
    pub node: NodeId,
    /// The current epoch.
    pub epoch: Epoch,
    /// Whether the node is in the current committee (only members are challenged).
    pub member: bool,
    /// The current epoch's closed rounds so far (its strikes and missed audits included).
    pub current: ChallengeTally,
    /// Blobs the node declared lost in the current epoch (`DeclareLoss`): challenges on them
    /// in rounds that start from now on fail as declared, not caught. 0 from older
    /// coordinators.
    #[serde(default)]
    pub declared_blobs: u64,
    /// Consecutive settled epochs with `φ ≥ 5%` up to the last one it served.
    pub failing_epochs: u32,
    /// Whether the next committee selection leaves it out for failing challenges.
    pub excluded: bool,
    /// The outcomes of its last settled epochs, oldest first (at most the coordinator's
    /// history length, 8).
    pub history: Vec<ChallengeOutcome>,
}

/// The path of `node`'s challenge record.
pub fn node_challenges_path(node: &NodeId) -> String {
    super::routes::NODE_CHALLENGES.replace("{node_id}", &node.to_string())
}

//! The state's challenge records as the API shows them (`morsa_api::coord`): one outcome type
//! for `GET /v1/challenges` and `GET /v1/nodes/{node_id}/challenges`.

use morsa_api::coord::{ChallengeOutcome, ChallengeTally, NodeChallenges};
use morsa_core::NodeId;

use super::{Outcome, Tally};
use crate::state::State;

/// `outcome` of `node` as the API shows it.
pub(crate) fn outcome_view(node: NodeId, outcome: &Outcome) -> ChallengeOutcome {
    let tally = &outcome.tally;
    ChallengeOutcome {
        node,
        epoch: outcome.epoch,
        passed: tally.passed,
        failed: tally.failed,
        declared: tally.declared,
        unaudited: tally.unaudited,
        strikes: tally.strikes,
        missed_audits: tally.missed_audits,
        phi_ppm: outcome.phi_ppm,
        reward: outcome.reward,
        withheld: outcome.withheld,
        penalty: outcome.penalty,
        failing_epochs: outcome.failing_epochs,
        removed: outcome.removed,
    }
}

/// `tally` as the API shows it.
fn tally_view(tally: &Tally) -> ChallengeTally {
    ChallengeTally {
        passed: tally.passed,
        failed: tally.failed,
        declared: tally.declared,
        unaudited: tally.unaudited,
        strikes: tally.strikes,
        missed_audits: tally.missed_audits,
    }
}

impl State {
    /// `node`'s challenge record: this epoch's tally so far, its run of failing epochs,
    /// whether the next selection leaves it out, and its last settled epochs.
    pub fn node_challenges(&self, node: NodeId) -> NodeChallenges {
        let challenges = &self.challenges;
        NodeChallenges {
            node,
            epoch: self.epoch,
            member: self.committee.member_by_node(&node).is_some(),
            current: tally_view(&challenges.tallies.get(&node).copied().unwrap_or_default()),
            declared_blobs: challenges
                .declared
                .get(&node)
                .map_or(0, |blobs| morsa_core::convert::saturating_u64(blobs.len())),
            failing_epochs: challenges.failing_epochs.get(&node).copied().unwrap_or(0),
            excluded: challenges.excluded.contains(&node),
            history: challenges
                .history
                .get(&node)
                .map(|history| history.iter().map(|outcome| outcome_view(node, outcome)).collect())
                .unwrap_or_default(),
        }
    }
}

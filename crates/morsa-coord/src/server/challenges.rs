//! `GET /v1/challenges`: the open challenge round and the last epoch's outcomes, copied from
//! the state under its lock (a clone of the round's records, filtered to one node's targets
//! when the query names one) and serialized after.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxumState;
use morsa_api::coord::{ChallengeTarget, ChallengesInfo, ChallengesQuery, OpenChallengeRound};
use morsa_api::server::refusal::ApiQuery;

use super::{ApiError, Shared};
use crate::challenge::outcome_view;
use crate::state::challenges::Challenges;

/// `GET`: the open round (the queried node's targets only, with `?node=`) and the outcomes.
pub(super) async fn get_challenges(
    AxumState(shared): AxumState<Arc<Shared>>,
    ApiQuery(query): ApiQuery<ChallengesQuery>,
) -> Result<Json<ChallengesInfo>, ApiError> {
    let coordinator = shared.lock();
    let mut info = challenges_info(&coordinator.state().challenges, query.node.as_ref());
    drop(coordinator);
    if query.targets == Some(false)
        && let Some(open) = info.open.as_mut()
    {
        open.targets.clear();
    }
    Ok(Json(info))
}

/// What the state's challenge records say, for `node` (every target if `None`).
pub(crate) fn challenges_info(challenges: &Challenges, node: Option<&morsa_core::NodeId>) -> ChallengesInfo {
    let open = challenges.open.as_ref().map(|open| OpenChallengeRound {
        epoch: open.epoch,
        round: open.round,
        seed: open.seed,
        started_ms: open.started_ms,
        answers_due_ms: open.answers_due_ms,
        reports_due_ms: open.reports_due_ms,
        targets: open
            .targets
            .iter()
            .filter(|(target, round)| node.is_none_or(|node| *target == node || round.auditor == *node))
            .map(|(target, round)| ChallengeTarget {
                node: *target,
                auditor: round.auditor,
                items: round.items.clone(),
                committed: round.committed.is_some(),
                results: round.results.clone(),
                overturned: round.overturned,
            })
            .collect(),
    });
    let last_epoch =
        challenges.last_epoch.iter().map(|(node, outcome)| outcome_view(*node, outcome)).collect();
    ChallengesInfo {
        rounds_per_epoch: challenges.rules.rounds_per_epoch,
        samples_per_shard: challenges.rules.samples_per_shard,
        open,
        last_epoch,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use morsa_core::{Epoch, NodeId};

    use super::*;
    use crate::state::challenges::{ChallengeRules, OpenRound, Outcome, Tally, TargetRound};

    fn target(auditor: u8) -> TargetRound {
        TargetRound {
            auditor: NodeId([auditor; 32]),
            items: Vec::new(),
            declared: Vec::new(),
            committed: None,
            results: Some(vec![true, false]),
            overturned: false,
        }
    }

    #[test]
    fn a_node_sees_the_targets_it_is_or_audits_and_every_outcome() {
        let mut challenges = Challenges::new(ChallengeRules { rounds_per_epoch: 2, samples_per_shard: 4 });
        let targets = BTreeMap::from([(NodeId([1; 32]), target(2)), (NodeId([3; 32]), target(4))]);
        challenges.open = Some(OpenRound {
            epoch: Epoch(5),
            round: 1,
            seed: [7; 32],
            started_ms: 10,
            answers_due_ms: 17,
            reports_due_ms: 20,
            targets,
        });
        let tally = Tally { passed: 3, failed: 1, ..Tally::default() };
        let outcome = Outcome {
            epoch: Epoch(4),
            tally,
            phi_ppm: 250_000,
            reward: 0,
            withheld: 9,
            penalty: 5,
            failing_epochs: 1,
            removed: false,
        };
        challenges.last_epoch.insert(NodeId([1; 32]), outcome);
        let all = challenges_info(&challenges, None);
        assert_eq!(all.open.as_ref().map(|open| open.targets.len()), Some(2));
        let nodes = |node: u8| -> Vec<NodeId> {
            let info = challenges_info(&challenges, Some(&NodeId([node; 32])));
            info.open.map(|open| open.targets.iter().map(|target| target.node).collect()).unwrap_or_default()
        };
        assert_eq!(nodes(1), [NodeId([1; 32])]);
        assert_eq!(nodes(4), [NodeId([3; 32])], "the auditor sees its target");
        assert!(nodes(9).is_empty());
        assert_eq!(all.rounds_per_epoch, 2);
        assert_eq!(all.last_epoch.len(), 1);
        let listed = &all.last_epoch[0];
        assert_eq!((listed.passed, listed.failed, listed.penalty, listed.epoch), (3, 1, 5, Epoch(4)));
    }
}

//! Settling an epoch's challenges: rewards cut by the failed fraction, stake slashed, nodes
//! left out of the next committee.

use std::borrow::Cow;
use std::collections::BTreeMap;

use morsa_core::protocol::Event;
use morsa_core::{Epoch, NodeId};

use super::{
    HISTORY_EPOCHS, Outcome, PPM, REMOVE_FROM_PPM, REPEATED_FAILURE_EPOCHS, SLASH_FROM_PPM, STRIKE_SLASH_PPM,
    Tally,
};
use crate::apply::Effects;
use crate::state::challenges::{earned, scale};
use crate::state::{Node, State};

impl State {
    /// Settles the challenges of the ending `epoch`, after its pool (`pool`) was paid with
    /// [`earned`]: records each member's outcome, slashes stake for `φ ≥ 5%` and for strikes,
    /// marks nodes with `φ ≥ 50%` to leave out of the next committee selection, moves what was
    /// slashed into the `next` epoch's pool, keeps each member's outcome in its history, and
    /// starts the next epoch's tallies afresh. A node is also left out after
    /// [`REPEATED_FAILURE_EPOCHS`] consecutive epochs at `φ ≥ 5%`.
    pub(crate) fn settle_challenges(&mut self, epoch: Epoch, next: Epoch, pool: u64, out: &mut Effects) {
        self.close_challenge_round();
        if !self.challenges.enabled() {
            return;
        }
        let n_shards = u64::from(self.params.n_shards);
        let members: Vec<(NodeId, u64)> = self
            .committee
            .members
            .iter()
            .map(|member| (member.node_id, u64::try_from(member.shards.len()).unwrap_or(u64::MAX)))
            .collect();
        let mut outcomes = BTreeMap::new();
        let mut slashed_total: u64 = 0;
        for (node, weight) in members {
            let tally = self.challenges.tallies.get(&node).copied().unwrap_or_default();
            let share = scale(pool, weight, n_shards);
            let reward = earned(&self.challenges, &node, share);
            let phi_ppm = tally.phi_ppm();
            // Stake unstaked but not yet withdrawable is at risk too (`crate::delegation`).
            let stake = self.slashable_stake(&node);
            let mut penalty = u64::from(tally.strikes).saturating_mul(scale(stake, STRIKE_SLASH_PPM, PPM));
            if phi_ppm >= SLASH_FROM_PPM {
                penalty = penalty.saturating_add(scale(stake, phi_ppm, 10 * PPM));
            }
            let slashed = self.slash_stake(&node, penalty.min(stake));
            slashed_total = slashed_total.saturating_add(slashed);
            let failing_epochs = self.count_failing_epoch(&node, &tally);
            let removed = phi_ppm >= REMOVE_FROM_PPM || failing_epochs >= REPEATED_FAILURE_EPOCHS;
            if removed {
                self.challenges.excluded.insert(node);
            }
            let withheld = share.saturating_sub(reward);
            if withheld > 0 || slashed > 0 || removed {
                out.events.push(Event::NodePenalized { epoch, node, phi_ppm, withheld, slashed, removed });
            }
            let outcome = Outcome {
                epoch,
                tally,
                phi_ppm,
                reward,
                withheld,
                penalty: slashed,
                failing_epochs,
                removed,
            };
            let history = self.challenges.history.entry(node).or_default();
            history.push_back(outcome);
            while history.len() > HISTORY_EPOCHS {
                history.pop_front();
            }
            outcomes.insert(node, outcome);
        }
        if slashed_total > 0 {
            let next_pool = self.reward_pools.entry(next).or_default();
            *next_pool = next_pool.saturating_add(slashed_total);
        }
        let challenges = &mut self.challenges;
        challenges.last_epoch = outcomes;
        challenges.tallies.clear();
        challenges.declared.clear();
        challenges.rounds_started = 0;
    }

    /// Counts `node`'s ending epoch with `tally` into its run of consecutive epochs at
    /// `φ ≥ 5%` and answers the run's length: one more when `φ ≥ 5%`, 0 (the run ends) when
    /// below, unchanged when nothing was audited (no evidence either way).
    fn count_failing_epoch(&mut self, node: &NodeId, tally: &Tally) -> u32 {
        let runs = &mut self.challenges.failing_epochs;
        if tally.audited() == 0 {
            return runs.get(node).copied().unwrap_or(0);
        }
        if tally.phi_ppm() < SLASH_FROM_PPM {
            runs.remove(node);
            return 0;
        }
        let run = runs.entry(*node).or_default();
        *run = run.saturating_add(1);
        *run
    }

    /// The nodes a committee selection may choose from: all registered nodes but those left
    /// out for failing challenges (last epoch's `φ ≥ 50%`, or this epoch's so far).
    pub(crate) fn selectable_nodes(&self) -> Cow<'_, BTreeMap<NodeId, Node>> {
        let failing = |node: &NodeId| {
            self.challenges.excluded.contains(node)
                || self
                    .challenges
                    .tallies
                    .get(node)
                    .is_some_and(|tally| tally.audited() > 0 && tally.phi_ppm() >= REMOVE_FROM_PPM)
        };
        if !self.nodes.keys().any(failing) {
            return Cow::Borrowed(&self.nodes);
        }
        Cow::Owned(
            self.nodes.iter().filter(|(id, _)| !failing(id)).map(|(id, node)| (*id, node.clone())).collect(),
        )
    }
}

//! Delegated stake: how a node's rewards and losses reach the accounts that staked with it.
//!
//! * **Commission**: each node's operator sets a rate (`SetCommission`, at most 100%, in parts
//!   per million). The rate that pays an epoch's rewards is the one in force when that epoch
//!   started: a rate set while the node earns (a member of the current committee) waits in
//!   `Node::next_commission_ppm` for the next epoch change, after the ending epoch is paid at
//!   the old rate; for a node that earns nothing now it applies at once. Stakers who dislike a
//!   new rate learn of it an epoch before it pays.
//! * **Rewards**: a node's reward for an epoch (its shard share of the pool, already cut by its
//!   failed challenges, so the cut falls on operator and stakers alike) pays the commission to
//!   the operator's balance; the rest is split, each part rounded down, into the balances of
//!   the stakers whose stake counted when that epoch's committee was selected, pro rata of it
//!   (`Lifecycle::earning`): a stake added late in an epoch earns nothing of it, and one
//!   unstaked during the epoch it counted for still earns that epoch. What rounding leaves (less than one unit per
//!   staker), and the whole rest when nobody has stake with the node, goes to the operator.
//! * **Slashing**: a penalty on a node takes from everything still at risk with it: its stakes
//!   and the withdrawals unstaked from it that are not yet payable (Walrus's rule: stake stays
//!   slashable until the change that moves the node's shards away is done), pro rata, each
//!   part rounded down.
//!
//! Both splits go through [`pro_rata`], so rewards and penalties cannot drift apart.

use std::collections::BTreeMap;

use morsa_core::{AccountId, Epoch, NodeId};

use crate::error::{CommandError, InvalidReason};
use crate::state::State;
use crate::state::challenges::{PPM, scale};

/// The highest commission rate: 100%.
pub const MAX_COMMISSION_PPM: u32 = 1_000_000;

/// Splits `amount` over `weights` in proportion, each part rounded down: part `i` is
/// `amount × weights[i] / Σ weights` (all zeros when the weights sum to zero). The parts sum
/// to at most `amount`, and to more than `amount − weights.len()`.
pub fn pro_rata(amount: u64, weights: &[u64]) -> Vec<u64> {
    let total: u128 = weights.iter().map(|weight| u128::from(*weight)).sum();
    weights
        .iter()
        .map(|weight| match total {
            0 => 0,
            // At most `amount`: the weight is at most the total.
            total => u64::try_from(u128::from(amount) * u128::from(*weight) / total).unwrap_or(amount),
        })
        .collect()
}

/// Where a part of a node's stake sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Staked, counting for the next committee selection.
    Stake(AccountId),
    /// Unstaked, waiting for the change due with this epoch: earns nothing, still slashable.
    Withdrawal(AccountId, Epoch),
}

impl State {
    /// `SetCommission`, by the node's operator (see the module docs for when it applies).
    pub(crate) fn set_commission(
        &mut self,
        sender: AccountId,
        id: &NodeId,
        commission_ppm: u32,
    ) -> Result<(), CommandError> {
        if commission_ppm > MAX_COMMISSION_PPM {
            return Err(CommandError::InvalidArgument {
                what: "commission_ppm",
                reason: InvalidReason::Commission { max_ppm: MAX_COMMISSION_PPM },
            });
        }
        let earning = self.committee.member_by_node(id).is_some();
        let node = self.operated_node(sender, id)?;
        match earning {
            true => node.next_commission_ppm = Some(commission_ppm),
            false => (node.commission_ppm, node.next_commission_ppm) = (commission_ppm, None),
        }
        Ok(())
    }

    /// At an epoch change, once the ending epoch is paid: the rates set during it take effect.
    pub(crate) fn roll_commissions(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(rate) = node.next_commission_ppm.take() {
                node.commission_ppm = rate;
            }
        }
    }

    /// Pays `reward` earned by `node`: the commission to its operator, the rest to its stakers
    /// pro rata. Answers what was paid: all of `reward`, or nothing for an unknown node.
    /// Balances cannot overflow (the reward comes out of a pool, part of the supply); they
    /// saturate rather than fail, since a tick cannot be refused.
    pub(crate) fn pay_node_reward(&mut self, node: &NodeId, reward: u64) -> u64 {
        let Some((operator, rate)) = self.nodes.get(node).map(|node| (node.operator, node.commission_ppm))
        else {
            return 0;
        };
        let commission = scale(reward, u64::from(rate), PPM).min(reward);
        let stakes: Vec<(AccountId, u64)> = self
            .lifecycle
            .earning
            .range((*node, AccountId([0; 32]))..=(*node, AccountId([u8::MAX; 32])))
            .map(|((_, staker), amount)| (*staker, *amount))
            .collect();
        let weights: Vec<u64> = stakes.iter().map(|(_, amount)| *amount).collect();
        let parts = pro_rata(reward.saturating_sub(commission), &weights);
        let mut to_stakers: u64 = 0;
        for ((staker, _), part) in stakes.iter().zip(parts) {
            if part > 0 {
                let balance = &mut self.accounts.entry(*staker).or_default().balance;
                *balance = balance.saturating_add(part);
                to_stakers = to_stakers.saturating_add(part);
            }
        }
        let to_operator = reward.saturating_sub(to_stakers);
        if to_operator > 0 {
            let balance = &mut self.accounts.entry(operator).or_default().balance;
            *balance = balance.saturating_add(to_operator);
        }
        reward
    }

    /// The stakes with the members of `committee`, per (node, staker): what earns its
    /// epoch's rewards.
    pub(crate) fn stakes_behind(
        &self,
        committee: &morsa_core::Committee,
    ) -> BTreeMap<(NodeId, AccountId), u64> {
        self.stakes
            .iter()
            .filter(|((_, node), amount)| **amount > 0 && committee.member_by_node(node).is_some())
            .map(|((staker, node), amount)| ((*node, *staker), *amount))
            .collect()
    }

    /// Everything still at risk with `node`: its stakes and its withdrawals not yet payable.
    pub(crate) fn slashable_stake(&self, node: &NodeId) -> u64 {
        self.positions(node).iter().fold(0u64, |total, (_, amount)| total.saturating_add(*amount))
    }

    /// Takes up to `amount` of what is at risk with `node` ([`State::slashable_stake`]), pro
    /// rata from each position (rounded down), and answers what was taken.
    pub(crate) fn slash_stake(&mut self, node: &NodeId, amount: u64) -> u64 {
        let positions = self.positions(node);
        let weights: Vec<u64> = positions.iter().map(|(_, amount)| *amount).collect();
        let amount = amount.min(weights.iter().fold(0u64, |total, weight| total.saturating_add(*weight)));
        let mut taken: u64 = 0;
        for ((position, held), cut) in positions.into_iter().zip(pro_rata(amount, &weights)) {
            if cut == 0 {
                continue;
            }
            let left = held.saturating_sub(cut);
            match position {
                Position::Stake(staker) => {
                    match left {
                        0 => self.stakes.remove(&(staker, *node)),
                        left => self.stakes.insert((staker, *node), left),
                    };
                    if let Some(node) = self.nodes.get_mut(node) {
                        node.stake = node.stake.saturating_sub(cut);
                    }
                }
                Position::Withdrawal(staker, epoch) => {
                    match left {
                        0 => self.lifecycle.withdrawals.remove(&(staker, *node, epoch)),
                        left => self.lifecycle.withdrawals.insert((staker, *node, epoch), left),
                    };
                }
            }
            taken = taken.saturating_add(cut);
        }
        taken
    }

    /// The stakes with `node` and its withdrawals not yet payable, in a fixed order (by
    /// staker, then epoch), so that every replica rounds alike.
    fn positions(&self, node: &NodeId) -> Vec<(Position, u64)> {
        let stakes = self
            .stakes
            .iter()
            .filter(|((_, staked_with), amount)| staked_with == node && **amount > 0)
            .map(|((staker, _), amount)| (Position::Stake(*staker), *amount));
        let withdrawals = self
            .lifecycle
            .withdrawals
            .iter()
            .filter(|((_, with, epoch), amount)| {
                with == node && **amount > 0 && !self.withdrawal_payable(*epoch)
            })
            .map(|((staker, _, epoch), amount)| (Position::Withdrawal(*staker, *epoch), *amount));
        stakes.chain(withdrawals).collect()
    }
}

/// Every registered node with its stake and commission, for `GET /v1/system`.
pub fn node_summaries(state: &State) -> Vec<morsa_api::coord::NodeSummary> {
    state
        .nodes
        .iter()
        .map(|(id, node)| morsa_api::coord::NodeSummary {
            node_id: *id,
            operator: node.operator,
            zone: node.zone.clone(),
            stake: node.stake,
            commission_ppm: node.commission_ppm,
            next_commission_ppm: node.next_commission_ppm,
            retired: state.lifecycle.retired.contains(id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use morsa_core::{AccountKey, Epoch};

    use super::pro_rata;
    use crate::Genesis;

    /// A penalty takes from the stakes and from the withdrawals not yet payable, pro rata, and
    /// leaves a payable withdrawal alone.
    #[test]
    fn a_slash_reaches_the_withdrawals_still_at_risk() {
        let mut state = Genesis::coordinator_only("delegation", Vec::new()).initial_state().unwrap();
        let node = state.committee.members[0].node_id;
        let operator = state.nodes[&node].operator;
        let (staker, leaver) = (AccountKey::from_seed([1; 32]).id(), AccountKey::from_seed([2; 32]).id());
        assert_eq!(state.stakes[&(operator, node)], 100);
        state.stakes.insert((staker, node), 300);
        state.nodes.get_mut(&node).unwrap().stake += 300;
        state.lifecycle.withdrawals.insert((leaver, node, Epoch(2)), 200);
        // Due with the change to epoch 1, which is done: payable, out of reach.
        state.lifecycle.withdrawals.insert((leaver, node, Epoch(1)), 1_000);
        let supply = state.total_supply();
        assert_eq!(state.slashable_stake(&node), 600);
        assert_eq!(state.slash_stake(&node, 60), 60);
        assert_eq!(state.stakes[&(operator, node)], 90);
        assert_eq!(state.stakes[&(staker, node)], 270);
        assert_eq!(state.nodes[&node].stake, 360);
        assert_eq!(state.lifecycle.withdrawals[&(leaver, node, Epoch(2))], 180);
        assert_eq!(state.lifecycle.withdrawals[&(leaver, node, Epoch(1))], 1_000);
        assert_eq!(state.total_supply(), supply - 60, "what is taken is what the caller moves on");
        // Never more than is at risk.
        assert_eq!(state.slash_stake(&node, u64::MAX), 540);
        assert_eq!(state.slashable_stake(&node), 0);
    }

    #[test]
    fn pro_rata_rounds_each_part_down() {
        assert_eq!(pro_rata(10, &[1, 1, 1]), vec![3, 3, 3]);
        assert_eq!(pro_rata(100, &[3, 1]), vec![75, 25]);
        assert_eq!(pro_rata(7, &[0, 0]), vec![0, 0]);
        assert_eq!(pro_rata(u64::MAX, &[u64::MAX, u64::MAX]), vec![u64::MAX / 2, u64::MAX / 2]);
        assert!(pro_rata(5, &[]).is_empty());
    }
}

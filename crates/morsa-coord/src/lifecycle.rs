//! The node lifecycle on the coordinator: zones, delayed withdrawals, retirement and dead
//! nodes, and the candidates committee selection draws from.
//!
//! * **Withdrawals are delayed** (Walrus's rule). `Unstake` lowers the node's stake at once,
//!   so it counts from the next committee selection, but the amount waits in
//!   `Lifecycle::withdrawals`, still part of the supply and still slashable, until the epoch
//!   change after that selection has completed; then `Withdraw` pays it. The amount is due
//!   with the change to the epoch after the next selection: the next epoch if the next
//!   committee is not selected yet, the one after otherwise. A node in neither the current
//!   nor the next committee holds no shard to move away, so its stake is due with the
//!   current epoch's change (at once when that change is done).
//! * **Retired nodes** are never selected again; retiring unstakes the operator's own stake.
//! * **Dead nodes**: a member of an epoch's committee that never reported `EpochSyncDone`
//!   for that epoch, and that has not reported for the next epoch either by the time the
//!   committee after is selected (half-way through it), stands out of that selection: silent
//!   for an epoch and a half, its shards move to others. Epoch 1 starts done (genesis), so
//!   nothing is expected of it. So does a member that other members holding validity weight
//!   (`3w ≥ n + 1`: at least one of them honest) report unresponsive (`NodeUnresponsive`,
//!   signed by the reporter) in the epoch of the selection.
//! * **Failure domains**: a node's zone is what its operator declared (`SetNodeZone`); a node
//!   without one is a zone of its own. Its operator is the account that registered it (a
//!   declared label would be no harder to fake than a second account).

use std::collections::{BTreeMap, BTreeSet};

use morsa_core::{AccountId, Epoch, NodeId};

use crate::apportion::Candidate;
use crate::error::{CommandError, InvalidReason};
use crate::state::{EpochPhase, Node, State, add, sub};

/// Longest zone name accepted, in bytes.
pub use morsa_core::protocol::MAX_ZONE_LEN;

impl State {
    /// The pending withdrawals of `staker`, for `GET /v1/accounts/{id}`.
    pub fn withdrawals_of(&self, staker: &AccountId) -> Vec<morsa_api::coord::PendingWithdrawal> {
        self.lifecycle
            .withdrawals
            .range((*staker, NodeId([0; 32]), Epoch(0))..=(*staker, NodeId([u8::MAX; 32]), Epoch(u32::MAX)))
            .map(|((_, node, epoch), amount)| morsa_api::coord::PendingWithdrawal {
                node: *node,
                amount: *amount,
                epoch: *epoch,
                payable: self.withdrawal_payable(*epoch),
            })
            .collect()
    }

    /// Whether a withdrawal due with the change to `epoch` may be paid now.
    pub fn withdrawal_payable(&self, epoch: Epoch) -> bool {
        self.epoch > epoch || (self.epoch == epoch && self.phase == EpochPhase::Done)
    }

    /// The epoch whose completed change makes stake taken off `node` now withdrawable.
    pub(crate) fn withdrawal_due(&self, node: &NodeId) -> Epoch {
        let ahead = match (self.is_active(node), self.next_committee.is_some()) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        };
        Epoch(self.epoch.0.saturating_add(ahead))
    }

    /// Moves `amount` of `staker`'s stake with `node` to a pending withdrawal (checked by the
    /// caller: `amount` is at most the stake).
    pub(crate) fn queue_withdrawal(
        &mut self,
        staker: AccountId,
        node: &NodeId,
        amount: u64,
    ) -> Result<(), CommandError> {
        let staked = self.stakes.get(&(staker, *node)).copied().unwrap_or(0);
        let left = staked.checked_sub(amount).ok_or(CommandError::Overflow { what: "stake" })?;
        let due = self.withdrawal_due(node);
        let pending = self.lifecycle.withdrawals.get(&(staker, *node, due)).copied().unwrap_or(0);
        // Stake and withdrawals are parts of the supply, which fits in a u64.
        let pending = pending.checked_add(amount).ok_or(CommandError::Overflow { what: "withdrawal" })?;
        if let Some(node) = self.nodes.get_mut(node) {
            sub(&mut node.stake, amount, "stake")?;
        }
        match left {
            0 => self.stakes.remove(&(staker, *node)),
            left => self.stakes.insert((staker, *node), left),
        };
        self.lifecycle.withdrawals.insert((staker, *node, due), pending);
        Ok(())
    }

    /// `Withdraw`: pays every pending withdrawal of `sender` with `node` that is due.
    pub(crate) fn withdraw(&mut self, sender: AccountId, node: &NodeId) -> Result<(), CommandError> {
        let pending = self.lifecycle.pending(&sender, node);
        let Some(&(earliest, _)) = pending.first() else {
            return Err(CommandError::InvalidArgument {
                what: "node",
                reason: InvalidReason::NothingToWithdraw,
            });
        };
        let due: Vec<(Epoch, u64)> =
            pending.iter().copied().filter(|(epoch, _)| self.withdrawal_payable(*epoch)).collect();
        if due.is_empty() {
            let total = pending.iter().fold(0u64, |total, (_, amount)| total.saturating_add(*amount));
            return Err(CommandError::WithdrawalNotDue { node: *node, pending: total, epoch: earliest });
        }
        let mut paid = 0u64;
        for (_, amount) in &due {
            add(&mut paid, *amount, "withdrawal")?;
        }
        self.account(&sender).balance.checked_add(paid).ok_or(CommandError::Overflow { what: "balance" })?;
        for (epoch, _) in due {
            self.lifecycle.withdrawals.remove(&(sender, *node, epoch));
        }
        add(&mut self.accounts.entry(sender).or_default().balance, paid, "balance")
    }

    /// `SetNodeZone`, by the node's operator.
    pub(crate) fn set_node_zone(
        &mut self,
        sender: AccountId,
        id: &NodeId,
        zone: &str,
    ) -> Result<(), CommandError> {
        if !morsa_core::protocol::zone_is_valid(zone) {
            return Err(CommandError::InvalidArgument {
                what: "zone",
                reason: InvalidReason::Zone { max_len: MAX_ZONE_LEN },
            });
        }
        self.operated_node(sender, id)?.zone = zone.to_string();
        Ok(())
    }

    /// `RetireNode`: never selected again; the operator's own stake is unstaked.
    pub(crate) fn retire_node(&mut self, sender: AccountId, id: &NodeId) -> Result<(), CommandError> {
        self.operated_node(sender, id)?;
        if self.lifecycle.retired.contains(id) {
            return Err(CommandError::NodeRetired(*id));
        }
        let own = self.stakes.get(&(sender, *id)).copied().unwrap_or(0);
        if own > 0 {
            self.queue_withdrawal(sender, id, own)?;
        }
        self.lifecycle.retired.insert(*id);
        Ok(())
    }

    /// The node `id`, if `sender` operates it.
    pub(crate) fn operated_node(
        &mut self,
        sender: AccountId,
        id: &NodeId,
    ) -> Result<&mut Node, CommandError> {
        let node = self.nodes.get_mut(id).ok_or(CommandError::UnknownNode(*id))?;
        if node.operator != sender {
            return Err(CommandError::NotOperator { node: *id, operator: node.operator });
        }
        Ok(node)
    }

    /// Records an `EpochSyncDone` of a member for the current epoch.
    pub(crate) fn record_synced(&mut self, node: NodeId) {
        self.lifecycle.synced.insert(node);
    }

    /// At an epoch change: who of the ending committee never reported for its epoch.
    pub(crate) fn roll_sync_reports(&mut self) {
        self.lifecycle.accused.clear();
        let synced = std::mem::take(&mut self.lifecycle.synced);
        // Epoch 1 starts done: nothing was expected of its committee.
        self.lifecycle.missed = match self.epoch.0 > 1 {
            true => self
                .committee
                .members
                .iter()
                .map(|member| member.node_id)
                .filter(|id| !synced.contains(id))
                .collect(),
            false => BTreeSet::new(),
        };
    }

    /// Whether `node` is taken for dead at a selection now: silent for the previous epoch and
    /// for this one so far, or reported unresponsive this epoch by members holding validity
    /// weight.
    pub fn presumed_dead(&self, node: &NodeId) -> bool {
        let silent = self.lifecycle.missed.contains(node)
            && self.committee.member_by_node(node).is_some()
            && !self.lifecycle.synced.contains(node);
        silent
            || self.accusation_weight(node).is_some_and(|weight| {
                morsa_core::quorum::is_validity(weight, usize::from(self.params.n_shards))
            })
    }

    /// Shards of the current committee held by the members that reported `node` unresponsive
    /// this epoch, if any did.
    fn accusation_weight(&self, node: &NodeId) -> Option<usize> {
        let reporters = self.lifecycle.accused.get(node)?;
        Some(
            reporters
                .iter()
                .filter_map(|reporter| self.committee.member_by_node(reporter))
                .map(|member| self.committee.weight(member))
                .sum(),
        )
    }

    /// A `NodeUnresponsive` report must name another member of the current committee.
    pub(crate) fn check_accusation(&self, reporter: &NodeId, subject: &NodeId) -> Result<(), CommandError> {
        if subject == reporter || self.committee.member_by_node(subject).is_none() {
            return Err(CommandError::UnknownNode(*subject));
        }
        Ok(())
    }

    /// Whether `reporter` already reported `subject` this epoch.
    pub(crate) fn accused_by(&self, subject: &NodeId, reporter: &NodeId) -> bool {
        self.lifecycle.accused.get(subject).is_some_and(|reporters| reporters.contains(reporter))
    }

    /// Records a `NodeUnresponsive` report.
    pub(crate) fn record_accusation(&mut self, subject: NodeId, reporter: NodeId) {
        self.lifecycle.accused.entry(subject).or_default().insert(reporter);
    }
}

/// The nodes that may stand for the committee: with stake and not `excluded`; each with its
/// zone and operator numbered for [`crate::apportion::domain_shard_counts`].
pub(crate) fn candidates<'a>(
    nodes: &'a BTreeMap<NodeId, Node>,
    excluded: &dyn Fn(&NodeId) -> bool,
) -> (Vec<(&'a NodeId, &'a Node)>, Vec<Candidate>) {
    let standing: Vec<(&NodeId, &Node)> =
        nodes.iter().filter(|(id, node)| node.stake > 0 && !excluded(id)).collect();
    let mut zones: BTreeMap<&str, usize> = BTreeMap::new();
    let mut operators: BTreeMap<&AccountId, usize> = BTreeMap::new();
    let mut next_zone = 0;
    let mut fresh_zone = || {
        next_zone += 1;
        next_zone - 1
    };
    let numbered = standing
        .iter()
        .map(|&(_, node)| {
            // An undeclared zone is a zone of its own.
            let zone = match node.zone.as_str() {
                "" => fresh_zone(),
                declared => *zones.entry(declared).or_insert_with(&mut fresh_zone),
            };
            let fresh = operators.len();
            let operator = *operators.entry(&node.operator).or_insert(fresh);
            Candidate { stake: node.stake, zone, operator }
        })
        .collect();
    (standing, numbered)
}

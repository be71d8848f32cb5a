//! `apply`: the one function that changes the state. Deterministic and pure: the same state
//! and entry give the same result on every machine, and a refused entry changes nothing.

use std::ops::Range;

use morsa_core::{AccountId, Committee, CommitteeMember, Epoch, NodeId, ObjectId, quorum};
use redstuff::BlobId;

use crate::apportion;
use crate::checks::{Prechecked, Signatures};
use crate::error::{CommandError, InvalidReason};
use crate::state::{EpochPhase, State};
use morsa_core::hash::domain_hash;
use morsa_core::protocol::{
    Command, Input, LogEntry, MAX_BATCH_COMMANDS, NodeReport, NodeReportKind, SignedTransaction,
};
use morsa_core::protocol::{Event, EventRecord};

#[cfg(test)]
mod batch_tests;

/// What an accepted entry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The events it emitted, already numbered and chained.
    pub events: Vec<EventRecord>,
    /// Objects it created (storage resources, blob objects), in order.
    pub created: Vec<ObjectId>,
    /// For a transaction carrying a [`Command::Batch`], what each command did, in order;
    /// empty otherwise.
    pub results: Vec<Result<CommandApplied, CommandError>>,
}

/// What one command of a batch did when it applied: its share of [`Applied`]'s events and
/// objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandApplied {
    /// The events it emitted.
    pub events: Vec<EventRecord>,
    /// Objects it created, in order.
    pub created: Vec<ObjectId>,
}

impl Applied {
    /// Appends what `more`, applied after this, did.
    pub fn extend(&mut self, more: Applied) {
        self.events.extend(more.events);
        self.created.extend(more.created);
        self.results.extend(more.results);
    }
}

/// Applies one log entry to `state`: either all of it or, with an error, none of it.
pub fn apply(state: &mut State, entry: &LogEntry) -> Result<Applied, CommandError> {
    apply_with(state, entry, Signatures::Verify)
}

/// [`apply`], without verifying again the signatures in `checks` (see [`State::precheck`]).
pub fn apply_prechecked(
    state: &mut State,
    entry: &LogEntry,
    checks: &Prechecked,
) -> Result<Applied, CommandError> {
    apply_with(state, entry, Signatures::Prechecked(checks))
}

pub(crate) fn apply_with(
    state: &mut State,
    entry: &LogEntry,
    signatures: Signatures<'_>,
) -> Result<Applied, CommandError> {
    if entry.time_ms < state.time_ms {
        return Err(CommandError::TimeWentBackwards { time_ms: entry.time_ms, state_ms: state.time_ms });
    }
    let mut out = Effects::default();
    match &entry.input {
        Input::Tick => state.tick(entry.time_ms, &mut out),
        Input::Transaction(signed) => {
            state.refuse_if_tick_due(entry.time_ms)?;
            state.apply_transaction(signed, signatures, &mut out)?;
        }
        Input::Node(report) => {
            state.refuse_if_tick_due(entry.time_ms)?;
            state.apply_node_report(report, signatures, entry.time_ms, &mut out)?;
        }
    }
    state.time_ms = entry.time_ms;
    Ok(state.seal(entry.time_ms, out))
}

/// The committee for `epoch`: shards apportioned by stake over the nodes with stake that are
/// not `excluded`, within the failure-domain caps ([`apportion::domain_shard_counts`]), each
/// node keeping what it held in `previous` where its new count allows.
pub(crate) fn committee_from_stakes(
    nodes: &std::collections::BTreeMap<NodeId, crate::state::Node>,
    params: &crate::state::Params,
    previous: &Committee,
    epoch: Epoch,
    excluded: &dyn Fn(&NodeId) -> bool,
) -> Result<Committee, apportion::ApportionError> {
    let (standing, candidates) = crate::lifecycle::candidates(nodes, excluded);
    let held: Vec<Vec<morsa_core::ShardIndex>> = standing
        .iter()
        .map(|(id, _)| {
            previous
                .member_by_node(id)
                .map(|member| previous.members[member].shards.clone())
                .unwrap_or_default()
        })
        .collect();
    let counts = apportion::domain_shard_counts(params.n_shards, &candidates, params.max_shards_per_node)?;
    let assignment = apportion::assign_shards(params.n_shards, &counts.counts, &held);
    let members = standing
        .iter()
        .zip(assignment)
        .filter(|(_, shards)| !shards.is_empty())
        .map(|((id, node), shards)| CommitteeMember {
            node_id: **id,
            public_key: node.public_key,
            address: node.address.clone(),
            shards,
        })
        .collect();
    Ok(Committee { epoch, n_shards: params.n_shards, members })
}

/// Events and objects produced while applying, before they are numbered.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) events: Vec<Event>,
    pub(crate) created: Vec<ObjectId>,
    /// Per command of a batch: what it produced, or why it was refused.
    pub(crate) results: Vec<Result<Produced, CommandError>>,
}

/// The ranges of [`Effects`]'s `events` and `created` one command of a batch produced.
#[derive(Debug)]
pub(crate) struct Produced {
    events: Range<usize>,
    created: Range<usize>,
}

impl State {
    fn refuse_if_tick_due(&self, time_ms: u64) -> Result<(), CommandError> {
        match self.deadline_due(time_ms) {
            Some(due_ms) => Err(CommandError::TickDue { due_ms }),
            None => Ok(()),
        }
    }

    /// Numbers and chains the events.
    fn seal(&mut self, time_ms: u64, effects: Effects) -> Applied {
        let events: Vec<EventRecord> = effects
            .events
            .into_iter()
            .map(|event| {
                let record = EventRecord::new(self.event_count, time_ms, event, self.event_head);
                // One more per event, and an entry emits a handful: 2^64 is out of reach.
                self.event_count = self.event_count.saturating_add(1);
                self.event_head = record.hash;
                record
            })
            .collect();
        let created = effects.created;
        let results = effects
            .results
            .into_iter()
            .map(|result| {
                result.map(|produced| CommandApplied {
                    events: events.get(produced.events).map(<[_]>::to_vec).unwrap_or_default(),
                    created: created.get(produced.created).map(<[_]>::to_vec).unwrap_or_default(),
                })
            })
            .collect();
        Applied { events, created, results }
    }

    /// A fresh object ID: `H("morsa/object" ‖ count)`.
    pub(crate) fn new_object_id(&mut self, out: &mut Effects) -> ObjectId {
        let id = ObjectId(domain_hash(b"morsa/object", &[&self.objects_created.to_le_bytes()]));
        // One more per object, and an entry creates a handful: 2^64 is out of reach.
        self.objects_created = self.objects_created.saturating_add(1);
        out.created.push(id);
        id
    }

    fn apply_transaction(
        &mut self,
        signed: &SignedTransaction,
        signatures: Signatures<'_>,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        let transaction = &signed.transaction;
        let sender = transaction.sender;
        signatures.transaction(signed, &self.params.chain_id)?;
        let expected = self.account(&sender).nonce;
        if transaction.nonce != expected {
            return Err(CommandError::BadNonce { account: sender, expected, got: transaction.nonce });
        }
        let next = expected.checked_add(1).ok_or(CommandError::Overflow { what: "nonce" })?;
        match &transaction.command {
            Command::Batch { commands } => self.execute_batch(sender, commands, signatures, out)?,
            command => self.execute(sender, command, signatures, out)?,
        }
        self.accounts.entry(sender).or_default().nonce = next;
        Ok(())
    }

    /// Runs the commands of a batch in order, each on its own: one refused changes nothing
    /// (every handler checks before it mutates) and the next still runs. Refuses the whole
    /// batch, before running any, if it is empty, too long or holds a batch.
    fn execute_batch(
        &mut self,
        sender: AccountId,
        commands: &[Command],
        signatures: Signatures<'_>,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        if commands.is_empty() || commands.len() > MAX_BATCH_COMMANDS {
            let reason = InvalidReason::BatchLength { max: MAX_BATCH_COMMANDS };
            return Err(CommandError::InvalidArgument { what: "commands", reason });
        }
        if commands.iter().any(|command| matches!(command, Command::Batch { .. })) {
            let reason = InvalidReason::NestedBatch;
            return Err(CommandError::InvalidArgument { what: "commands", reason });
        }
        let signatures = signatures.for_batch_commands();
        for command in commands {
            let mut own = Effects::default();
            let result = self.execute(sender, command, signatures, &mut own).map(|()| {
                let events = out.events.len()..out.events.len() + own.events.len();
                let created = out.created.len()..out.created.len() + own.created.len();
                out.events.append(&mut own.events);
                out.created.append(&mut own.created);
                Produced { events, created }
            });
            out.results.push(result);
        }
        Ok(())
    }

    /// Checks `report`'s signature; answers whether applying it would change nothing (a
    /// duplicate or late `EpochSyncDone`), which the coordinator answers without logging it.
    pub(crate) fn check_node_report(
        &self,
        report: &NodeReport,
        signatures: Signatures<'_>,
    ) -> Result<bool, CommandError> {
        let reported_epoch = match &report.report {
            NodeReportKind::EpochSyncDone { epoch } | NodeReportKind::NodeUnresponsive { epoch, .. } => {
                Some(*epoch)
            }
            other => other.challenge_epoch(),
        };
        if let Some(epoch) = reported_epoch
            && epoch != self.epoch
        {
            return Err(CommandError::WrongEpoch { got: epoch, current: self.epoch });
        }
        let member =
            self.committee.member_by_node(&report.node).ok_or(CommandError::UnknownNode(report.node))?;
        let message = match &report.report {
            NodeReportKind::EpochSyncDone { epoch } => {
                morsa_core::epoch_sync_done_message(*epoch, &report.node)
            }
            // Signed by a member over the invalid-blob message of the current epoch.
            NodeReportKind::InvalidBlob { blob_id, .. } => {
                morsa_core::invalid_blob_message(self.epoch, blob_id)
            }
            NodeReportKind::NodeUnresponsive { subject, epoch } => {
                self.check_accusation(&report.node, subject)?;
                morsa_core::node_unresponsive_message(*epoch, subject)
            }
            // Challenge reports; no other kind is left, so the message always exists.
            other => other.challenge_message(&report.node).unwrap_or_default(),
        };
        let key = &self.committee.members[member].public_key;
        signatures.node(&report.node, key, &message, &report.signature)?;
        Ok(match &report.report {
            // Late reports (after the change is done) still count: a member that never reports
            // is taken for dead (`crate::lifecycle`).
            NodeReportKind::EpochSyncDone { .. } => self.lifecycle.synced.contains(&report.node),
            NodeReportKind::NodeUnresponsive { subject, .. } => self.accused_by(subject, &report.node),
            _ => false,
        })
    }

    fn apply_node_report(
        &mut self,
        report: &NodeReport,
        signatures: Signatures<'_>,
        time_ms: u64,
        out: &mut Effects,
    ) -> Result<(), CommandError> {
        let changes_nothing = self.check_node_report(report, signatures)?;
        if let NodeReportKind::InvalidBlob { blob_id, certificate } = &report.report {
            // Checked exactly as the account command is.
            return self.invalidate_blob(blob_id, certificate, signatures, out);
        }
        if report.report.challenge_epoch().is_some() {
            return self.apply_challenge_report(report, time_ms);
        }
        if changes_nothing {
            // Logs written before duplicates were answered without a write hold such reports.
            return Ok(());
        }
        if let NodeReportKind::NodeUnresponsive { subject, .. } = &report.report {
            self.record_accusation(*subject, report.node);
            return Ok(());
        }
        self.record_synced(report.node);
        let EpochPhase::Changing { done } = &mut self.phase else {
            return Ok(());
        };
        done.insert(report.node);
        let weight: usize = done
            .iter()
            .filter_map(|node| self.committee.member_by_node(node))
            .map(|member| self.committee.weight(member))
            .sum();
        if quorum::is_quorum(weight, usize::from(self.params.n_shards)) {
            self.phase = EpochPhase::Done;
            out.events.push(Event::EpochChangeDone { epoch: self.epoch });
        }
        Ok(())
    }

    /// Runs every deadline due by `time_ms`, in order.
    fn tick(&mut self, time_ms: u64, out: &mut Effects) {
        while let Some(due_ms) = self.deadline_due(time_ms) {
            if self.challenge_round_due_ms() == Some(due_ms) {
                self.start_challenge_round(time_ms, out);
                continue;
            }
            // `next_deadline_ms` has no deadline in the last epoch, so there is a next one.
            let Some(next) = self.epoch.0.checked_add(1).map(Epoch) else { return };
            if self.next_committee.is_none() {
                let committee = self.select_committee(next);
                self.lifecycle.selected = self.stakes_behind(&committee);
                out.events.push(Event::CommitteeSelected { committee: committee.clone() });
                self.next_committee = Some(committee);
                // Nodes left out for failing challenges may be selected again next time.
                self.challenges.excluded.clear();
            } else {
                self.change_epoch(out);
            }
        }
    }

    /// The committee for `epoch` from the current stakes, moving as few shards as possible.
    /// Retired nodes stand out, and so do nodes presumed dead ([`crate::lifecycle`]) unless
    /// no committee can be formed without them. If no valid apportionment exists (no stake,
    /// caps too low), the current assignment stays.
    pub(crate) fn select_committee(&self, epoch: Epoch) -> Committee {
        let selectable = self.selectable_nodes();
        let retired = |node: &NodeId| self.lifecycle.retired.contains(node);
        let retired_or_dead = |node: &NodeId| retired(node) || self.presumed_dead(node);
        committee_from_stakes(&selectable, &self.params, &self.committee, epoch, &retired_or_dead)
            .or_else(|_| committee_from_stakes(&selectable, &self.params, &self.committee, epoch, &retired))
            .unwrap_or_else(|_| Committee { epoch, ..self.committee.clone() })
    }

    /// Pays the ending epoch's rewards, installs the next committee, and drops what expired.
    fn change_epoch(&mut self, out: &mut Effects) {
        let ending = self.epoch;
        let Some(next) = ending.0.checked_add(1).map(Epoch) else { return };
        self.close_challenge_round();
        self.pay_rewards(ending, next, out);
        self.roll_commissions();
        self.roll_sync_reports();
        let committee = match self.next_committee.take() {
            Some(committee) => {
                self.lifecycle.earning = std::mem::take(&mut self.lifecycle.selected);
                committee
            }
            None => {
                let committee = self.select_committee(next);
                self.lifecycle.earning = self.stakes_behind(&committee);
                committee
            }
        };
        self.committee = Committee { epoch: next, ..committee };
        self.capacity = self.committee_capacity(&self.committee);
        self.epoch = next;
        self.phase = EpochPhase::Changing { done: Default::default() };
        self.drop_expired();
        out.events.push(Event::EpochChangeStart { epoch: next });
    }

    /// Splits the pool of `epoch` over its committee's nodes by shard weight, each share cut by
    /// the node's failed challenges and paid to its operator and stakers; the remainder moves to the `next` epoch's pool. Then
    /// settles the epoch's challenges (slashing, removals).
    ///
    /// The sums cannot overflow: every share comes out of the pool, and pools and balances
    /// are parts of the supply, which fits in a `u64`. A tick cannot be refused (the
    /// coordinator would stop), so they saturate rather than fail; the supply invariant tests
    /// would see any saturation.
    fn pay_rewards(&mut self, epoch: Epoch, next: Epoch, out: &mut Effects) {
        let pool = self.reward_pools.remove(&epoch).unwrap_or(0);
        let n = u128::from(self.params.n_shards);
        let shares: Vec<(NodeId, u64)> = self
            .committee
            .members
            .iter()
            .map(|member| {
                let weight = u128::try_from(member.shards.len()).expect("shard counts fit in u128");
                let share =
                    u64::try_from(u128::from(pool) * weight / n).expect("a share is at most the pool");
                // Cut by the node's failed challenges; what is withheld stays in the remainder.
                (member.node_id, crate::state::challenges::earned(&self.challenges, &member.node_id, share))
            })
            .collect();
        let mut paid: u64 = 0;
        for (node, share) in shares {
            // Commission to the operator, the rest to the stakers (`crate::delegation`).
            paid = paid.saturating_add(self.pay_node_reward(&node, share));
        }
        let remainder = pool.saturating_sub(paid);
        if remainder > 0 {
            let next_pool = self.reward_pools.entry(next).or_default();
            *next_pool = next_pool.saturating_add(remainder);
        }
        out.events.push(Event::RewardsPaid { epoch, total: paid });
        self.settle_challenges(epoch, next, pool, out);
    }

    /// Removes blob objects and storage whose end epoch has come, and past accounting.
    fn drop_expired(&mut self) {
        let now = self.epoch;
        let expired: Vec<(ObjectId, BlobId)> = self
            .blobs
            .iter()
            .filter(|(_, blob)| blob.storage.end <= now)
            .map(|(object, blob)| (*object, blob.blob_id))
            .collect();
        for (object, blob_id) in expired {
            self.forget_blob_object(&object, &blob_id);
        }
        self.storage.retain(|_, resource| resource.end > now);
        self.used.retain(|epoch, _| *epoch >= now);
    }

    /// Removes a blob object and its index entry.
    pub(crate) fn forget_blob_object(&mut self, object: &ObjectId, blob_id: &BlobId) {
        if let Some(blob) = self.blobs.remove(object)
            && let Some(owned) = self.owned_objects.get_mut(&blob.owner)
        {
            owned.remove(object);
            if owned.is_empty() {
                self.owned_objects.remove(&blob.owner);
            }
        }
        if let Some(objects) = self.blob_objects.get_mut(blob_id) {
            objects.remove(object);
            if objects.is_empty() {
                self.blob_objects.remove(blob_id);
            }
        }
    }
}

//! When rounds start and close, and what each one challenges.

use std::collections::BTreeMap;

use morsa_core::challenge::{
    CandidateBlob, derive_shard_items, pick_auditor, result_digest, round_jitter_ms, round_seed,
};
use morsa_core::protocol::Event;
use morsa_core::{NodeId, ShardIndex};

use super::{OpenRound, Tally, TargetRound};
use crate::apply::Effects;
use crate::state::{EpochPhase, State};

impl State {
    /// Milliseconds between the slots of the current epoch's rounds: the epoch is cut into
    /// `rounds + 1` slots and round `r` starts in slot `r + 1`, so no round starts with the epoch.
    fn challenge_slot_ms(&self) -> u64 {
        let slots = u64::from(self.challenges.rules.rounds_per_epoch).saturating_add(1);
        self.params.epoch_duration_ms / slots
    }

    /// When the next round of the current epoch is due, if one is: the start of its slot plus a
    /// jitter below half a slot, derived from the previous round's seed.
    pub(crate) fn challenge_round_due_ms(&self) -> Option<u64> {
        let challenges = &self.challenges;
        let round = challenges.rounds_started;
        if !challenges.enabled() || round >= challenges.rules.rounds_per_epoch {
            return None;
        }
        let slot = self.challenge_slot_ms();
        let jitter = round_jitter_ms(&challenges.last_seed, round, slot / 2);
        let offset = slot.saturating_mul(u64::from(round).saturating_add(1)).saturating_add(jitter);
        Some(self.epoch_start_ms(self.epoch).saturating_add(offset))
    }

    /// Closes the open round and starts the next one at `time_ms`: its seed from the event head
    /// and the closed round's results, its challenges, its auditors.
    pub(crate) fn start_challenge_round(&mut self, time_ms: u64, out: &mut Effects) {
        self.close_challenge_round();
        let epoch = self.epoch;
        let round = self.challenges.rounds_started;
        let seed = round_seed(epoch, round, &self.event_head, &self.challenges.last_result);
        let candidates = self.challenge_candidates();
        let weights: Vec<(NodeId, usize)> =
            self.committee.members.iter().map(|member| (member.node_id, member.shards.len())).collect();
        let samples = self.challenges.rules.samples_per_shard;
        let n_shards = self.params.n_shards;
        let mut targets = BTreeMap::new();
        for member in &self.committee.members {
            // Grace for shards still in sync: a node that has not reported holding its shards
            // of a new epoch is not challenged yet.
            if let EpochPhase::Changing { done } = &self.phase
                && !done.contains(&member.node_id)
            {
                continue;
            }
            let Some(auditor) = pick_auditor(&seed, &member.node_id, &weights) else { continue };
            let mut shards: Vec<ShardIndex> = member.shards.clone();
            shards.sort();
            let items: Vec<_> = shards
                .into_iter()
                .filter_map(|shard| derive_shard_items(&seed, n_shards, shard, &candidates, samples).ok())
                .flatten()
                .collect();
            if items.is_empty() {
                continue;
            }
            let declared_blobs = self.challenges.declared.get(&member.node_id);
            let declared = items
                .iter()
                .map(|item| declared_blobs.is_some_and(|blobs| blobs.contains(&item.blob_id)))
                .collect();
            let target =
                TargetRound { auditor, items, declared, committed: None, results: None, overturned: false };
            targets.insert(member.node_id, target);
        }
        // Answers are taken for three quarters of the time to the report deadline, the rest
        // is left to the auditors to verify and report.
        let report_window = self.challenge_slot_ms() / 4;
        let answers_due_ms = time_ms.saturating_add(report_window / 4 * 3);
        let reports_due_ms = time_ms.saturating_add(report_window);
        self.challenges.open = Some(OpenRound {
            epoch,
            round,
            seed,
            started_ms: time_ms,
            answers_due_ms,
            reports_due_ms,
            targets,
        });
        self.challenges.last_seed = seed;
        self.challenges.rounds_started = round.saturating_add(1);
        out.events.push(Event::ChallengeRoundStarted { epoch, round, seed });
    }

    /// Blobs that may be challenged: certified before the current epoch (blobs certified in
    /// it have a grace period), still stored, not invalid; one entry per blob ID, in ID order.
    pub(crate) fn challenge_candidates(&self) -> Vec<CandidateBlob> {
        self.blob_objects
            .iter()
            .filter(|(blob_id, _)| !self.invalid_blobs.contains_key(blob_id))
            .filter_map(|(blob_id, objects)| {
                objects
                    .iter()
                    .filter_map(|object| self.blobs.get(object))
                    .find(|blob| {
                        blob.certified.as_ref().is_some_and(|certified| certified.epoch < self.epoch)
                            && blob.storage.end > self.epoch
                    })
                    .map(|blob| CandidateBlob {
                        blob_id: *blob_id,
                        unencoded_length: blob.size,
                        encoded_size: blob.encoded_size,
                    })
            })
            .collect()
    }

    /// Closes the open round, if any: its results join the epoch's tallies (a challenge whose
    /// auditor never reported counts neither way, and that auditor is struck), overturned
    /// audits strike their auditors,
    /// and the results' digest feeds the next seed.
    pub(crate) fn close_challenge_round(&mut self) {
        let Some(open) = self.challenges.open.take() else { return };
        let mut summary: Vec<(NodeId, Tally)> = Vec::with_capacity(open.targets.len());
        for (node, target) in &open.targets {
            let mut tally = Tally::default();
            match &target.results {
                None => {
                    // The challenges count neither way for the target; the auditor that owed
                    // the report is struck.
                    tally.unaudited = u64::try_from(target.items.len()).unwrap_or(u64::MAX);
                    let auditor = self.challenges.tallies.entry(target.auditor).or_default();
                    auditor.strikes = auditor.strikes.saturating_add(1);
                    auditor.missed_audits = auditor.missed_audits.saturating_add(1);
                }
                Some(results) => {
                    for (passed, declared) in results.iter().zip(&target.declared) {
                        let counter = match (passed, declared) {
                            (true, _) => &mut tally.passed,
                            (false, true) => &mut tally.declared,
                            (false, false) => &mut tally.failed,
                        };
                        *counter = counter.saturating_add(1);
                    }
                }
            }
            self.challenges.tallies.entry(*node).or_default().add(&tally);
            if target.overturned {
                let auditor = self.challenges.tallies.entry(target.auditor).or_default();
                auditor.strikes = auditor.strikes.saturating_add(1);
            }
            summary.push((*node, tally));
        }
        let bytes = bcs::to_bytes(&summary).expect("tallies serialize");
        self.challenges.last_result = result_digest(&open.seed, &bytes);
    }
}

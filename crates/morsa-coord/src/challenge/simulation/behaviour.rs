//! How each simulated node behaves in a round: what it holds, what it can answer in time, how
//! it audits and what it disputes.

use std::collections::{BTreeMap, BTreeSet};

use morsa_core::challenge::{ChallengeItem, NO_ANSWER, answer_digest};
use morsa_core::hash::Digest;
use morsa_core::protocol::{DisputedAnswer, Input, NodeReportKind};
use morsa_core::{NodeId, ShardIndex};
use rand::Rng;
use rand::rngs::StdRng;
use redstuff::{BlobId, EncodingConfig};

use super::super::fixture::Fixture;
use super::super::{ChallengeRefusal, OpenRound};
use crate::error::CommandError;

/// The simulated nodes' parts, by node ID.
pub(super) struct Cast {
    /// Lost 1% of its (blob, shard) slivers.
    pub dropper: NodeId,
    /// The (blob, shard) slivers the dropper lost.
    pub lost: BTreeSet<(BlobId, ShardIndex)>,
    /// Marks two passed challenges failed in every audit it reports.
    pub liar: NodeId,
    /// Keeps nothing; rebuilds what it is challenged on, within the deadline, when challenged.
    pub cheater: NodeId,
    /// Offline (answers nothing, audits nothing) in a round with probability 1/4.
    pub flapper: NodeId,
}

/// What one round did that the checks recompute.
#[derive(Debug, Default)]
pub(super) struct RoundLog {
    /// Challenges of the flapper in this round if it was offline for it, else 0.
    pub flapper_missed: u64,
    /// Challenges the cheater could not rebuild in time.
    pub cheater_unanswered: u64,
    /// Audits the flapper owed in this round and never sent (it was offline).
    pub flapper_owed_offline: u32,
    /// Disputes of the cheater with answers rebuilt after the window (each one refused).
    pub cheater_late_disputes_refused: u32,
}

/// Bytes of one Merkle proof node on the wire (a tag and a digest).
const PROOF_NODE_BYTES: u64 = 33;

/// What the cheater's downloads cost for one blob of `unencoded_length` bytes: rebuilding one
/// sliver pair from recovery symbols (`kp + ks` symbols, each with a proof of `⌈log₂ n⌉`
/// nodes), and rebuilding the whole blob from `kp` primary slivers of `ks` symbols (no proofs:
/// the slivers are checked against the metadata's hashes, which the cheater may skip).
fn rebuild_costs(config: &EncodingConfig, unencoded_length: u64) -> (u64, u64) {
    let symbol = u64::from(config.symbol_size(unencoded_length).expect("a valid blob size"));
    let kp = u64::try_from(config.kp()).expect("a shard count");
    let ks = u64::try_from(config.ks()).expect("a shard count");
    let proof = u64::from(config.n_shards().next_power_of_two().trailing_zeros()) * PROOF_NODE_BYTES;
    ((kp + ks) * (symbol + proof), kp * ks * symbol)
}

/// The blobs the cheater rebuilds between the round's start and the end of the answer window.
///
/// The cheater is provisioned to get away with keeping nothing *if recovery symbols were
/// served*: its link carries, within the window, twice the recovery traffic of every sliver
/// pair it is challenged on. During the round, every node refuses recovery symbols towards the
/// challenged slivers (`challenged`, 423), so the only way to an answer is the whole blob:
/// `kp` primary slivers, read from other nodes' sliver endpoints, then re-encoded. It rebuilds
/// the cheapest blobs first (the most answers per byte) until its budget runs out.
fn cheater_rebuilt(items: &[ChallengeItem], config: &EncodingConfig) -> BTreeSet<BlobId> {
    let pairs: BTreeMap<(BlobId, ShardIndex), u64> =
        items.iter().map(|item| ((item.blob_id, item.shard), item.unencoded_length)).collect();
    let mut budget: u64 = pairs.values().map(|length| 2 * rebuild_costs(config, *length).0).sum();
    let mut blobs: Vec<(u64, BlobId)> =
        pairs.iter().map(|((blob, _), length)| (rebuild_costs(config, *length).1, *blob)).collect();
    blobs.sort();
    blobs.dedup();
    let mut rebuilt = BTreeSet::new();
    for (cost, blob) in blobs {
        if cost > budget {
            break;
        }
        budget -= cost;
        rebuilt.insert(blob);
    }
    rebuilt
}

/// Stands in for the digest of an answer that is never disputed: the state machine compares a
/// commitment only with disputed answers, and computing every answer of every round would
/// take the simulation hours.
const UNDISPUTED_ANSWER: Digest = [1; 32];

/// A target's commitment: `NO_ANSWER` where it had no answer in the window, the genuine
/// digest where it will dispute, [`UNDISPUTED_ANSWER`] elsewhere.
fn commitment(
    fixture: &Fixture,
    items: &[ChallengeItem],
    answered: &[bool],
    disputable: &[usize],
) -> Vec<Digest> {
    (0..items.len())
        .map(|position| match (answered[position], disputable.contains(&position)) {
            (false, _) => NO_ANSWER,
            (true, true) => answer_digest(&fixture.answer(&items[position])),
            (true, false) => UNDISPUTED_ANSWER,
        })
        .collect()
}

/// Genuine answers to the challenges at `positions`.
fn disputed(fixture: &Fixture, items: &[ChallengeItem], positions: &[usize]) -> Vec<DisputedAnswer> {
    positions
        .iter()
        .map(|position| DisputedAnswer {
            item: u32::try_from(*position).expect("a position"),
            answer: fixture.answer(&items[*position]),
        })
        .collect()
}

/// Plays the round that just opened: each target answers what it can, each auditor that is
/// online reports (the liar flips two passes), each online target commits to its answers in
/// the window and disputes the failures it answered in time, and the cheater also disputes
/// with answers rebuilt after the window (which must be refused). Answers what the checks need.
pub(super) fn play_round(fixture: &mut Fixture, cast: &Cast, rng: &mut StdRng) -> RoundLog {
    let open: OpenRound = fixture.state.challenges.open.clone().expect("a round just started");
    let flapper_offline = rng.random_ratio(1, 4);
    let config = EncodingConfig::new(fixture.state.params.n_shards).expect("a valid shard count");
    let mut log = RoundLog::default();
    for (target, challenged) in &open.targets {
        let rebuilt = if *target == cast.cheater {
            cheater_rebuilt(&challenged.items, &config)
        } else {
            BTreeSet::new()
        };
        let answered: Vec<bool> = challenged
            .items
            .iter()
            .map(|item| match *target {
                node if node == cast.dropper => !cast.lost.contains(&(item.blob_id, item.shard)),
                node if node == cast.cheater => rebuilt.contains(&item.blob_id),
                node if node == cast.flapper => !flapper_offline,
                _ => true,
            })
            .collect();
        let unanswered = answered.iter().filter(|answered| !**answered).count();
        let unanswered = u64::try_from(unanswered).expect("a count");
        if *target == cast.cheater {
            log.cheater_unanswered = unanswered;
        }
        if *target == cast.flapper && flapper_offline {
            log.flapper_missed = unanswered;
        }
        let auditor_online = !(challenged.auditor == cast.flapper && flapper_offline);
        // The liar's false failures, drawn before anything is sent: they decide which
        // committed digests a dispute will check.
        let mut results = answered.clone();
        if auditor_online && challenged.auditor == cast.liar {
            for _ in 0..2 {
                let position = rng.random_range(0..results.len());
                results[position] = false;
            }
        }
        let failed = |answered_in_window: bool| -> Vec<usize> {
            (0..results.len())
                .filter(|position| !results[*position] && answered[*position] == answered_in_window)
                .collect()
        };
        let disputable = failed(true);
        let index = fixture.node_index(target);
        if !(*target == cast.flapper && flapper_offline) {
            let commitment = commitment(fixture, &challenged.items, &answered, &disputable);
            let report =
                NodeReportKind::ChallengeCommit { epoch: open.epoch, round: open.round, digests: commitment };
            fixture.submit(Input::Node(fixture.report(index, report))).expect("a commitment in the window");
        }
        if !auditor_online {
            log.flapper_owed_offline += 1;
            continue; // The report is never sent: its challenges count neither way.
        }
        let report = NodeReportKind::ChallengeAudit {
            epoch: open.epoch,
            round: open.round,
            target: *target,
            results: results.clone(),
        };
        let auditor = fixture.node_index(&challenged.auditor);
        fixture.submit(Input::Node(fixture.report(auditor, report))).expect("an audit in time");
        // Every target disputes the failures it answered in the window.
        if !disputable.is_empty() {
            let answers = disputed(fixture, &challenged.items, &disputable);
            let report = NodeReportKind::ChallengeDispute { epoch: open.epoch, round: open.round, answers };
            fixture.submit(Input::Node(fixture.report(index, report))).expect("a committed answer");
        }
        // The cheater rebuilds the rest after the window and disputes with genuine answers:
        // the coordinator must refuse them, as they are not the ones it committed to (one is
        // enough: a dispute is refused whole).
        if *target == cast.cheater
            && let Some(late) = failed(false).first()
        {
            let answers = disputed(fixture, &challenged.items, &[*late]);
            let report = NodeReportKind::ChallengeDispute { epoch: open.epoch, round: open.round, answers };
            let refused = fixture.submit(Input::Node(fixture.report(index, report)));
            assert!(
                matches!(refused, Err(CommandError::Challenge(ChallengeRefusal::NotCommitted { .. }))),
                "a dispute with an answer rebuilt after the window: {refused:?}"
            );
            log.cheater_late_disputes_refused += 1;
        }
    }
    log
}

//! Rounds, refusals and economics of challenges, through the real `apply` with every
//! signature verified.

use morsa_core::challenge::{CandidateBlob, derive_shard_items, round_seed};
use morsa_core::protocol::{DisputedAnswer, Event, Input, NodeReportKind};
use morsa_core::{Epoch, NodeId};

use super::fixture::{EPOCH_MS, Fixture, GENESIS_MS};
use super::{ChallengeRefusal, ChallengeRules, OpenRound};
use crate::error::CommandError;

pub(super) const N: u16 = 10;
const RULES: ChallengeRules = ChallengeRules { rounds_per_epoch: 3, samples_per_shard: 4 };

/// Four nodes, blobs certified in epoch 1, time moved into epoch 2 with its change done.
pub(super) fn in_epoch_two() -> Fixture {
    let mut fixture = Fixture::new(&[100, 100, 100, 100], N, RULES, false);
    fixture.store_blobs(&[100, 2000, 7000], 1, 10);
    fixture.advance_to(GENESIS_MS + EPOCH_MS);
    fixture.sync_all();
    assert_eq!(fixture.state.epoch, Epoch(2));
    fixture
}

/// Ticks until the next round starts; answers it.
pub(super) fn next_round(fixture: &mut Fixture) -> OpenRound {
    let due = fixture.state.challenge_round_due_ms().expect("a round is due this epoch");
    let applied = fixture.advance_to(due);
    assert!(applied.events.iter().any(|record| matches!(record.event, Event::ChallengeRoundStarted { .. })));
    fixture.state.challenges.open.clone().expect("a round is open")
}

pub(super) fn audit(
    fixture: &Fixture,
    auditor: usize,
    round: &OpenRound,
    target: &NodeId,
    results: Vec<bool>,
) -> Input {
    let report =
        NodeReportKind::ChallengeAudit { epoch: round.epoch, round: round.round, target: *target, results };
    Input::Node(fixture.report(auditor, report))
}

pub(super) fn refusal(result: Result<crate::apply::Applied, CommandError>) -> ChallengeRefusal {
    match result {
        Err(CommandError::Challenge(reason)) => reason,
        other => panic!("expected a challenge refusal, got {other:?}"),
    }
}

#[test]
fn rounds_challenge_blobs_certified_before_the_epoch_as_anyone_derives_them() {
    let mut fixture = Fixture::new(&[100, 100, 100, 100], N, RULES, false);
    fixture.store_blobs(&[100, 2000], 1, 10);
    // Epoch 1: the blobs were certified in it, so they have grace; nobody is challenged.
    let first = next_round(&mut fixture);
    assert!(first.targets.is_empty());
    fixture.advance_to(GENESIS_MS + EPOCH_MS);
    fixture.sync_all();
    let head = fixture.state.event_head;
    let previous = fixture.state.challenges.last_result;
    let round = next_round(&mut fixture);
    assert_eq!((round.epoch, round.round), (Epoch(2), 0));
    // The seed follows from the event head before the round and the last result.
    assert_eq!(round.seed, round_seed(Epoch(2), 0, &head, &previous));
    let mut candidates: Vec<CandidateBlob> = fixture
        .blobs
        .values()
        .map(|blob| CandidateBlob {
            blob_id: *blob.metadata.blob_id(),
            unencoded_length: blob.metadata.unencoded_length(),
            encoded_size: redstuff::EncodingConfig::new(N)
                .unwrap()
                .encoded_size(blob.metadata.unencoded_length())
                .unwrap(),
        })
        .collect();
    candidates.sort_by_key(|blob| blob.blob_id);
    assert_eq!(round.targets.len(), fixture.state.committee.members.len());
    for member in &fixture.state.committee.members {
        let target = &round.targets[&member.node_id];
        assert_ne!(target.auditor, member.node_id);
        let mut shards = member.shards.clone();
        shards.sort();
        let expected: Vec<_> = shards
            .iter()
            .flat_map(|shard| {
                derive_shard_items(&round.seed, N, *shard, &candidates, RULES.samples_per_shard).unwrap()
            })
            .collect();
        assert_eq!(target.items, expected);
        // Every challenge is answerable from the real slivers.
        for item in &target.items {
            assert_eq!(fixture.answer(item).verify(item, N), Ok(()));
        }
    }
}

#[test]
fn audits_that_are_forged_misdirected_replayed_late_or_for_another_epoch_are_refused() {
    let mut fixture = in_epoch_two();
    let round = next_round(&mut fixture);
    let (target, challenged) =
        round.targets.iter().next().map(|(node, target)| (*node, target.clone())).unwrap();
    let auditor = fixture.node_index(&challenged.auditor);
    let bystander = (0..4).find(|index| *index != auditor && fixture.node_id(*index) != target).unwrap();
    let results = vec![true; challenged.items.len()];

    // Forged: the auditor's report signed with another node's key.
    let mut forged = audit(&fixture, auditor, &round, &target, results.clone());
    if let Input::Node(report) = &mut forged {
        report.signature =
            fixture.node_keys[bystander].sign(&report.report.challenge_message(&report.node).unwrap());
    }
    assert!(matches!(fixture.submit(forged), Err(CommandError::BadNodeSignature(_))));
    // Signed by a member that is not the target's auditor.
    let misdirected = audit(&fixture, bystander, &round, &target, results.clone());
    assert!(matches!(refusal(fixture.submit(misdirected)), ChallengeRefusal::NotAuditor { .. }));
    // Another epoch.
    let report = NodeReportKind::ChallengeAudit {
        epoch: Epoch(1),
        round: round.round,
        target,
        results: results.clone(),
    };
    let other_epoch = Input::Node(fixture.report(auditor, report));
    assert!(matches!(fixture.submit(other_epoch), Err(CommandError::WrongEpoch { .. })));
    // A round that has not started.
    let mut future = round.clone();
    future.round += 1;
    assert!(matches!(
        refusal(fixture.submit(audit(&fixture, auditor, &future, &target, results.clone()))),
        ChallengeRefusal::NotUnderWay { .. }
    ));
    // The wrong number of results.
    assert!(matches!(
        refusal(fixture.submit(audit(&fixture, auditor, &round, &target, vec![true]))),
        ChallengeRefusal::ResultCount { .. }
    ));
    // Accepted once, refused as a replay.
    fixture.submit(audit(&fixture, auditor, &round, &target, results.clone())).expect("the auditor's report");
    assert_eq!(
        refusal(fixture.submit(audit(&fixture, auditor, &round, &target, results.clone()))),
        ChallengeRefusal::Replayed
    );
    // Late: another target's report after the deadline.
    let (late_target, late) =
        round.targets.iter().nth(1).map(|(node, target)| (*node, target.clone())).unwrap();
    fixture.now = round.reports_due_ms + 1;
    let late_report = audit(
        &fixture,
        fixture.node_index(&late.auditor),
        &round,
        &late_target,
        vec![true; late.items.len()],
    );
    assert!(matches!(refusal(fixture.submit(late_report)), ChallengeRefusal::Late { .. }));
    // Once the next round started, the closed one takes nothing.
    next_round(&mut fixture);
    let closed = audit(
        &fixture,
        fixture.node_index(&late.auditor),
        &round,
        &late_target,
        vec![true; late.items.len()],
    );
    assert!(matches!(refusal(fixture.submit(closed)), ChallengeRefusal::NotUnderWay { .. }));
}

#[test]
fn a_dispute_with_genuine_answers_overturns_a_false_failure_and_strikes_the_auditor() {
    let mut fixture = in_epoch_two();
    let round = next_round(&mut fixture);
    let (target, challenged) =
        round.targets.iter().next().map(|(node, target)| (*node, target.clone())).unwrap();
    let target_index = fixture.node_index(&target);
    let auditor = challenged.auditor;
    let mut results = vec![true; challenged.items.len()];
    results[0] = false;
    results[1] = false;
    let commit = fixture.commit(target_index, &round, &challenged.items, |_| true);
    fixture.submit(commit).expect("the commitment");
    let report = audit(&fixture, fixture.node_index(&auditor), &round, &target, results);
    fixture.submit(report).expect("the audit");

    let dispute = |fixture: &Fixture, answers: Vec<DisputedAnswer>| {
        let report = NodeReportKind::ChallengeDispute { epoch: round.epoch, round: round.round, answers };
        Input::Node(fixture.report(target_index, report))
    };
    let answers: Vec<DisputedAnswer> = (0..3)
        .map(|item| DisputedAnswer {
            item: u32::try_from(item).unwrap(),
            answer: fixture.answer(&challenged.items[item]),
        })
        .collect();
    let genuine = |item: usize| answers[item].clone();
    // A tampered answer (not the one committed), an answer to a challenge that passed, and one
    // out of range are refused.
    let mut tampered = genuine(0);
    tampered.answer.primary.symbol[0] ^= 1;
    assert_eq!(
        refusal(fixture.submit(dispute(&fixture, vec![tampered]))),
        ChallengeRefusal::NotCommitted { item: 0 }
    );
    assert_eq!(
        refusal(fixture.submit(dispute(&fixture, vec![genuine(2)]))),
        ChallengeRefusal::NotFailed { item: 2 }
    );
    let mut outside = genuine(0);
    outside.item = 10_000;
    assert_eq!(
        refusal(fixture.submit(dispute(&fixture, vec![outside]))),
        ChallengeRefusal::NotFailed { item: 10_000 }
    );
    // An answer for another challenge's slot is not the one committed there.
    let mut misplaced = genuine(2);
    misplaced.item = 0;
    assert_eq!(
        refusal(fixture.submit(dispute(&fixture, vec![misplaced]))),
        ChallengeRefusal::NotCommitted { item: 0 }
    );
    // A dispute signed by another node is forged.
    let mut forged = dispute(&fixture, vec![genuine(0)]);
    if let Input::Node(report) = &mut forged {
        report.signature = fixture.node_keys[(target_index + 1) % 4].sign(b"anything");
    }
    assert!(matches!(fixture.submit(forged), Err(CommandError::BadNodeSignature(_))));

    fixture.submit(dispute(&fixture, vec![genuine(0), genuine(1)])).expect("genuine answers");
    assert_eq!(
        refusal(fixture.submit(dispute(&fixture, vec![genuine(0)]))),
        ChallengeRefusal::NotFailed { item: 0 }
    );

    // Every other target passes; at the epoch's end the target lost nothing and the auditor
    // was struck.
    let supply = fixture.state.total_supply();
    let stake_before = fixture.state.nodes[&auditor].stake;
    finish_epoch_reporting(&mut fixture, |_, _| true);
    let outcomes = &fixture.state.challenges.last_epoch;
    assert_eq!(outcomes[&target].tally.failed, 0);
    assert_eq!(outcomes[&target].penalty, 0);
    assert_eq!(outcomes[&auditor].tally.strikes, 1);
    assert_eq!(outcomes[&auditor].penalty, stake_before / 100);
    assert_eq!(fixture.state.nodes[&auditor].stake, stake_before - stake_before / 100);
    assert_eq!(fixture.state.total_supply(), supply);
}

/// Runs the rest of the epoch: every auditor reports `result(target, item)` for each
/// challenge of each round, then the epoch changes and every member syncs.
pub(super) fn finish_epoch_reporting(fixture: &mut Fixture, result: impl Fn(&NodeId, usize) -> bool) {
    let epoch = fixture.state.epoch;
    loop {
        if let Some(open) = fixture.state.challenges.open.clone().filter(|open| open.epoch == epoch) {
            for (target, challenged) in &open.targets {
                if challenged.results.is_some() {
                    continue;
                }
                let results = (0..challenged.items.len()).map(|item| result(target, item)).collect();
                let auditor = fixture.node_index(&challenged.auditor);
                fixture.submit(audit(fixture, auditor, &open, target, results)).expect("the audit");
            }
        }
        match fixture.state.challenge_round_due_ms() {
            Some(due) => {
                fixture.advance_to(due);
            }
            None => break,
        }
    }
    fixture.advance_to(fixture.state.epoch_start_ms(Epoch(epoch.0 + 1)));
    fixture.sync_all();
    assert_eq!(fixture.state.epoch, Epoch(epoch.0 + 1));
}

#[test]
fn failures_cut_rewards_slash_from_five_percent_and_remove_from_half() {
    let mut fixture = in_epoch_two();
    let nodes: Vec<NodeId> = (0..4).map(|index| fixture.node_id(index)).collect();
    let (lossy, broken) = (nodes[0], nodes[1]);
    let pool = fixture.state.reward_pools[&Epoch(2)];
    let supply = fixture.state.total_supply();
    let stakes: Vec<u64> = nodes.iter().map(|node| fixture.state.nodes[node].stake).collect();
    // `lossy` fails every 10th challenge, `broken` every one; the others pass all.
    finish_epoch_reporting(&mut fixture, |target, item| match *target {
        node if node == lossy => item % 10 != 0,
        node if node == broken => false,
        _ => true,
    });
    let outcomes = fixture.state.challenges.last_epoch.clone();
    let weight = |node: &NodeId| {
        let member = fixture.state.committee.member_by_node(node).unwrap();
        u64::try_from(fixture.state.committee.members[member].shards.len()).unwrap()
    };
    for (index, node) in nodes.iter().enumerate() {
        let outcome = outcomes[node];
        let tally = outcome.tally;
        assert!(tally.audited() > 0);
        let share = pool * weight(node) / u64::from(N);
        // The rule, computed here from the tally in floating point.
        let float = |value: u64| f64::from(u32::try_from(value).expect("small test amounts"));
        let phi = float(tally.failed) / float(tally.audited());
        let expected =
            float(share) * (float(tally.passed) / float(tally.audited())) * (1.0 - 10.0 * phi).max(0.0);
        assert!(
            (float(outcome.reward) - expected).abs() <= 1.0,
            "node {index}: {outcome:?}, expected reward {expected}"
        );
        assert_eq!(outcome.reward + outcome.withheld, share);
        let slashed = if phi >= 0.05 { float(stakes[index]) * phi / 10.0 } else { 0.0 };
        assert!(
            (float(outcome.penalty) - slashed).abs() <= 1.0,
            "node {index}: {outcome:?}, expected slash {slashed}"
        );
        assert_eq!(outcome.removed, phi >= 0.5);
    }
    assert!(outcomes[&lossy].phi_ppm >= 50_000 && outcomes[&lossy].penalty > 0 && !outcomes[&lossy].removed);
    assert_eq!(outcomes[&broken].reward, 0);
    assert!(outcomes[&broken].removed);
    for honest in &nodes[2..] {
        assert_eq!((outcomes[honest].penalty, outcomes[honest].withheld), (0, 0));
    }
    assert_eq!(fixture.state.total_supply(), supply);
    // The next selection leaves the broken node out.
    let selection = fixture.state.selection_due_ms();
    fixture.advance_to(selection);
    let next = fixture.state.next_committee.clone().expect("selected");
    assert!(next.member_by_node(&broken).is_none());
    assert!(next.member_by_node(&lossy).is_some());
}

#[test]
fn declared_losses_cost_less_than_caught_ones() {
    // Node 0 lost all its slivers and fails every challenge; once it says so first, once not.
    let run = |declare: bool| {
        let mut fixture = in_epoch_two();
        let node = fixture.node_id(0);
        let stake = fixture.state.nodes[&node].stake;
        if declare {
            let blob_ids: Vec<_> = fixture.blobs.keys().copied().collect();
            let count = u64::try_from(blob_ids.len()).unwrap();
            let report = NodeReportKind::DeclareLoss { epoch: Epoch(2), blob_ids };
            fixture.submit(Input::Node(fixture.report(0, report.clone()))).expect("a declaration");
            // Declaring the same blobs again changes nothing; the record counts each once.
            fixture.submit(Input::Node(fixture.report(0, report))).expect("a repeated declaration");
            assert_eq!(fixture.state.node_challenges(node).declared_blobs, count);
        }
        finish_epoch_reporting(&mut fixture, |target, _| *target != node);
        (fixture.state.challenges.last_epoch[&node], stake)
    };
    let (caught, stake) = run(false);
    let (declared, _) = run(true);
    assert!(caught.tally.failed > 0 && caught.tally.declared == 0 && caught.tally.passed == 0);
    assert!(declared.tally.declared > 0 && declared.tally.failed == 0 && declared.tally.passed == 0);
    assert_eq!(caught.phi_ppm, 1_000_000);
    assert_eq!(declared.phi_ppm, 250_000);
    assert_eq!(caught.penalty, stake / 10);
    assert_eq!(declared.penalty, stake / 40);
    assert!(caught.removed && !declared.removed);
}

#[test]
fn declarations_are_refused_for_another_epoch_when_empty_or_too_many() {
    let mut fixture = in_epoch_two();
    let blob_ids: Vec<_> = fixture.blobs.keys().copied().collect();
    let other = NodeReportKind::DeclareLoss { epoch: Epoch(1), blob_ids: blob_ids.clone() };
    assert!(matches!(
        fixture.submit(Input::Node(fixture.report(0, other))),
        Err(CommandError::WrongEpoch { .. })
    ));
    let empty = NodeReportKind::DeclareLoss { epoch: Epoch(2), blob_ids: Vec::new() };
    assert_eq!(refusal(fixture.submit(Input::Node(fixture.report(0, empty)))), ChallengeRefusal::Empty);
    let many = (0..=super::MAX_DECLARED_BLOBS).map(|index| {
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&u64::try_from(index).unwrap().to_le_bytes());
        redstuff::BlobId(bytes)
    });
    let too_many = NodeReportKind::DeclareLoss { epoch: Epoch(2), blob_ids: many.collect() };
    assert!(matches!(
        refusal(fixture.submit(Input::Node(fixture.report(0, too_many)))),
        ChallengeRefusal::TooManyBlobs { .. }
    ));
}

//! A seeded simulation of challenges over the real state machine: honest nodes, a node that
//! dropped 1% of its slivers, and a lying auditor, 1000 seeds × 20 epochs.
//!
//! Scaled down to run in seconds: 20 shards, 5 nodes (the dropper holds half the shards), 40
//! small blobs, 4 rounds of 16 challenges per shard: 640 challenges of the dropper per epoch,
//! which miss a 1% loss with probability 0.99^640 ≈ 0.2%. Signatures are not checked here
//! (`Signatures::Trusted`; the refusal tests check them); every other rule is the real one.

use std::collections::{BTreeMap, BTreeSet};

use morsa_core::protocol::{DisputedAnswer, Event, Input, NodeReportKind};
use morsa_core::{Epoch, NodeId, ShardIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redstuff::BlobId;

use super::ChallengeRules;
use super::fixture::{EPOCH_MS, Fixture, GENESIS_MS};
use crate::state::State;

const N: u16 = 20;
const SEEDS: u64 = 1000;
const EPOCHS: u32 = 20;
const RULES: ChallengeRules = ChallengeRules { rounds_per_epoch: 4, samples_per_shard: 16 };
/// Node 0 drops slivers, node 1 lies as an auditor, nodes 2–4 are honest.
const DROPPER: usize = 0;
const LIAR: usize = 1;
const STAKES: [u64; 5] = [4_000, 1_000, 1_000, 1_000, 1_000];

/// What one seed's run came to.
#[derive(Debug, Default)]
struct RunResult {
    /// Whether the dropper's first challenged epoch (2) counted failures.
    dropper_caught_in_epoch_two: bool,
    /// Strikes of the liar over the run.
    liar_strikes: u32,
    /// Stake slashed from the liar over the run.
    liar_slashed: u64,
    /// Penalties or withheld rewards of the honest nodes (must stay empty).
    honest_penalized: Vec<(u32, usize, super::Outcome)>,
}

/// The state after genesis and the blobs, shared by every seed.
fn base() -> Fixture {
    let mut fixture = Fixture::new(&STAKES, N, RULES, true);
    let sizes: Vec<usize> = (0..40).map(|index| 500 + (index * 997) % 6000).collect();
    fixture.store_blobs(&sizes, 3, EPOCHS + 5);
    fixture
}

fn run(base: &Fixture, seed: u64) -> RunResult {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fixture = Fixture {
        state: base.state.clone(),
        node_keys: base.node_keys.clone(),
        node_ids: base.node_ids.clone(),
        user: base.user.clone(),
        now: base.now,
        blobs: base.blobs.clone(),
        trusted: true,
        dummy_signature: base.dummy_signature.clone(),
    };
    // One more blob per seed, registered but never certified: the event chain, and so every
    // seed, differs between runs.
    let storage = fixture
        .transact(morsa_core::protocol::Command::ReserveStorage { size: 1 << 20, epochs: 1 })
        .expect("reserved")
        .created[0];
    let root = [u8::try_from(seed % 251).unwrap(); 32];
    let seed_bytes = seed.to_le_bytes();
    let mut root_hash = root;
    root_hash[..8].copy_from_slice(&seed_bytes);
    fixture
        .transact(morsa_core::protocol::Command::RegisterBlob {
            storage,
            blob_id: BlobId::from_root(1000, &root_hash),
            root_hash,
            size: 1000,
            encoding_type: redstuff::ENCODING_TYPE_RS2,
            deletable: false,
        })
        .expect("registered");

    // The dropper lost 1% of its (blob, shard) slivers, chosen by the seed.
    let dropper = fixture.node_id(DROPPER);
    let liar = fixture.node_id(LIAR);
    let member = fixture.state.committee.member_by_node(&dropper).expect("a member");
    let shards = fixture.state.committee.members[member].shards.clone();
    let slivers: Vec<(BlobId, ShardIndex)> =
        fixture.blobs.keys().flat_map(|blob| shards.iter().map(move |shard| (*blob, *shard))).collect();
    let lost_count = slivers.len().div_ceil(100);
    let mut lost = BTreeSet::new();
    while lost.len() < lost_count {
        lost.insert(slivers[rng.random_range(0..slivers.len())]);
    }

    let supply = fixture.state.total_supply();
    let mut result = RunResult::default();
    let end = fixture.state.epoch_start_ms(Epoch(EPOCHS + 1));
    while fixture.state.epoch.0 <= EPOCHS {
        let due = fixture.state.next_deadline_ms().expect("a deadline is always pending");
        let applied = fixture.advance_to(due.max(fixture.now));
        assert_eq!(fixture.state.total_supply(), supply, "seed {seed}: supply changed");
        for record in &applied.events {
            match &record.event {
                Event::ChallengeRoundStarted { .. } => {
                    play_round(&mut fixture, &lost, dropper, liar, &mut rng);
                    assert_eq!(fixture.state.total_supply(), supply, "seed {seed}: supply changed");
                }
                Event::EpochChangeStart { .. } => fixture.sync_all(),
                _ => {}
            }
        }
        if applied.events.iter().any(|record| matches!(record.event, Event::EpochChangeStart { .. })) {
            record_outcomes(&fixture.state, &mut result, dropper, liar, &fixture);
        }
        assert!(fixture.now <= end + EPOCH_MS, "seed {seed}: the epochs stopped advancing");
    }
    result
}

/// Every auditor reports on its targets: honestly, except the liar, which marks two passed
/// challenges failed; the targets dispute every failure they can answer.
fn play_round(
    fixture: &mut Fixture,
    lost: &BTreeSet<(BlobId, ShardIndex)>,
    dropper: NodeId,
    liar: NodeId,
    rng: &mut StdRng,
) {
    let open = fixture.state.challenges.open.clone().expect("a round just started");
    let holds = |target: &NodeId, blob: &BlobId, shard: ShardIndex| {
        !(*target == dropper && lost.contains(&(*blob, shard)))
    };
    for (target, challenged) in &open.targets {
        let mut results: Vec<bool> =
            challenged.items.iter().map(|item| holds(target, &item.blob_id, item.shard)).collect();
        if challenged.auditor == liar {
            for _ in 0..2 {
                let position = rng.random_range(0..results.len());
                results[position] = false;
            }
        }
        let report = NodeReportKind::ChallengeAudit {
            epoch: open.epoch,
            round: open.round,
            target: *target,
            results: results.clone(),
        };
        let auditor = fixture.node_index(&challenged.auditor);
        fixture.submit(Input::Node(fixture.report(auditor, report))).expect("an audit in time");
        let answers: Vec<DisputedAnswer> = results
            .iter()
            .zip(&challenged.items)
            .enumerate()
            .filter(|(_, (passed, item))| !**passed && holds(target, &item.blob_id, item.shard))
            .map(|(position, (_, item))| DisputedAnswer {
                item: u32::try_from(position).unwrap(),
                answer: fixture.answer(item),
            })
            .collect();
        if !answers.is_empty() {
            let report = NodeReportKind::ChallengeDispute { epoch: open.epoch, round: open.round, answers };
            let index = fixture.node_index(target);
            fixture.submit(Input::Node(fixture.report(index, report))).expect("a genuine dispute");
        }
    }
}

fn record_outcomes(state: &State, result: &mut RunResult, dropper: NodeId, liar: NodeId, fixture: &Fixture) {
    let outcomes: &BTreeMap<NodeId, super::Outcome> = &state.challenges.last_epoch;
    for (node, outcome) in outcomes {
        if *node == dropper && outcome.epoch == Epoch(2) && outcome.tally.failed > 0 && outcome.withheld > 0 {
            result.dropper_caught_in_epoch_two = true;
        }
        if *node == liar {
            result.liar_strikes += outcome.tally.strikes;
            result.liar_slashed += outcome.penalty;
        } else if *node != dropper
            && (outcome.penalty > 0 || outcome.withheld > 0 || outcome.tally.failed > 0)
        {
            result.honest_penalized.push((outcome.epoch.0, fixture.node_index(node), *outcome));
        }
    }
}

#[test]
fn honest_nodes_are_never_slashed_droppers_are_caught_and_liars_struck() {
    let base = base();
    assert_eq!(base.state.epoch, Epoch(1));
    assert_eq!(base.now, GENESIS_MS);
    let results: Vec<RunResult> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2u64)
            .map(|thread| {
                let base = &base;
                scope
                    .spawn(move || (thread..SEEDS).step_by(2).map(|seed| run(base, seed)).collect::<Vec<_>>())
            })
            .collect();
        threads.into_iter().flat_map(|thread| thread.join().expect("a simulation thread")).collect()
    });
    assert_eq!(results.len(), usize::try_from(SEEDS).unwrap());
    for (seed, result) in results.iter().enumerate() {
        assert!(
            result.honest_penalized.is_empty(),
            "seed {seed}: honest nodes penalised: {:?}",
            result.honest_penalized
        );
        assert!(result.liar_strikes > 0 && result.liar_slashed > 0, "seed {seed}: the liar was never struck");
    }
    let caught = results.iter().filter(|result| result.dropper_caught_in_epoch_two).count();
    assert!(
        caught * 100 >= results.len() * 99,
        "the 1% dropper was caught in epoch 2 in only {caught} of {SEEDS} seeds"
    );
}

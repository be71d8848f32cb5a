//! The node lifecycle through the real `apply`: delayed withdrawals, retirement, dead nodes,
//! zones, and a seeded run of random lifecycle commands that conserves the supply.

use morsa_coord::{Command, EpochPhase};
use morsa_core::{AccountKey, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{EPOCH_MS, World};

/// The world with the genesis nodes' operators added as users `3..3 + nodes`.
pub(crate) fn world(nodes: u8, shards: u16) -> World {
    let mut world = World::new(nodes, shards);
    for index in 0..nodes {
        world.users.push(AccountKey::from_seed([200 + index; 32]));
    }
    world
}

pub(crate) fn node(world: &World, index: usize) -> NodeId {
    NodeId::from_public_key(&world.node_keys[index].public_key())
}

pub(crate) fn shards_of(world: &World, committee: &morsa_core::Committee, index: usize) -> usize {
    committee.member_by_node(&node(world, index)).map_or(0, |member| committee.members[member].shards.len())
}

pub(crate) fn balance(world: &World, user: usize) -> u64 {
    world.state.account(&world.users[user].id()).balance
}

/// Advances to the middle of the epoch (the next committee is selected) or to its end.
pub(crate) fn to_selection(world: &mut World) {
    let due = world.state.selection_due_ms();
    world.advance(due - world.now);
    assert!(world.state.next_committee.is_some());
}

pub(crate) fn to_next_epoch(world: &mut World) {
    let due = world.state.epoch_start_ms(morsa_core::Epoch(world.epoch().0 + 1));
    world.advance(due - world.now);
}

#[test]
fn an_unstaked_amount_is_paid_only_once_the_change_that_moves_the_shards_away_is_done() {
    let mut world = world(4, 10);
    let supply = world.state.total_supply();
    let before = balance(&world, 0);
    let target = node(&world, 0);
    // Stake lifts node 0 from 1 shard to the cap f = 3 at the next selection.
    world.transact(0, Command::Stake { node: target, amount: 1_000 }).unwrap();
    to_selection(&mut world);
    assert_eq!(shards_of(&world, world.state.next_committee.as_ref().unwrap(), 0), 3);
    // Unstaked after the selection: the stake counts for epoch 2 and leaves with the selection
    // in epoch 2, so it is due once the change to epoch 3 is done.
    world.transact(0, Command::Unstake { node: target, amount: 1_000 }).unwrap();
    assert_eq!(balance(&world, 0), before - 1_000);
    assert_eq!(world.state.total_supply(), supply, "the pending amount is part of the supply");
    let refused = world.transact(0, Command::Withdraw { node: target }).unwrap_err();
    assert_eq!(refused.code(), "withdrawal_not_due");
    to_next_epoch(&mut world);
    world.report_sync_done(false);
    assert_eq!(
        world.transact(0, Command::Withdraw { node: target }).unwrap_err().code(),
        "withdrawal_not_due"
    );
    to_selection(&mut world);
    assert_eq!(shards_of(&world, world.state.next_committee.as_ref().unwrap(), 0), 1, "the stake left");
    to_next_epoch(&mut world);
    assert!(matches!(world.state.phase, EpochPhase::Changing { .. }));
    assert_eq!(
        world.transact(0, Command::Withdraw { node: target }).unwrap_err().code(),
        "withdrawal_not_due"
    );
    world.finish_epoch_change();
    world.transact(0, Command::Withdraw { node: target }).unwrap();
    assert_eq!(balance(&world, 0), before);
    assert_eq!(world.transact(0, Command::Withdraw { node: target }).unwrap_err().code(), "invalid_argument");
    assert_eq!(world.state.total_supply(), supply);
}

#[test]
fn a_stake_unstaked_before_the_selection_is_due_with_the_next_change() {
    let mut world = world(4, 10);
    let target = node(&world, 1);
    world.transact(0, Command::Stake { node: target, amount: 500 }).unwrap();
    world.transact(0, Command::Unstake { node: target, amount: 200 }).unwrap();
    let pending = world.state.withdrawals_of(&world.users[0].id());
    assert_eq!(
        (pending.len(), pending[0].amount, pending[0].epoch.0, pending[0].payable),
        (1, 200, 2, false)
    );
    to_next_epoch(&mut world);
    assert_eq!(
        world.transact(0, Command::Withdraw { node: target }).unwrap_err().code(),
        "withdrawal_not_due"
    );
    world.finish_epoch_change();
    let before = balance(&world, 0);
    world.transact(0, Command::Withdraw { node: target }).unwrap();
    assert_eq!(balance(&world, 0), before + 200);
}

#[test]
fn a_retired_node_leaves_the_next_committee_and_its_operator_waits_for_the_stake() {
    let mut world = world(4, 10);
    let supply = world.state.total_supply();
    let retiring = node(&world, 3);
    let operator = 3 + 3;
    assert_eq!(world.transact(0, Command::RetireNode { node: retiring }).unwrap_err().code(), "not_operator");
    world.transact(operator, Command::RetireNode { node: retiring }).unwrap();
    assert_eq!(world.state.nodes[&retiring].stake, 0);
    assert_eq!(
        world.transact(0, Command::Stake { node: retiring, amount: 5 }).unwrap_err().code(),
        "node_retired"
    );
    to_selection(&mut world);
    assert_eq!(shards_of(&world, world.state.next_committee.as_ref().unwrap(), 3), 0);
    let refused = world.transact(operator, Command::Withdraw { node: retiring }).unwrap_err();
    assert_eq!(refused.code(), "withdrawal_not_due");
    to_next_epoch(&mut world);
    assert_eq!(world.state.committee.member_by_node(&retiring), None);
    world.finish_epoch_change();
    world.transact(operator, Command::Withdraw { node: retiring }).unwrap();
    assert_eq!(balance(&world, operator), 400, "the genesis stake is paid back");
    // Out of both committees: it may now deregister.
    world.transact(operator, Command::DeregisterNode { node: retiring }).unwrap();
    assert_eq!(world.state.total_supply(), supply);
}

#[test]
fn a_node_silent_for_an_epoch_and_a_half_drops_out_and_one_that_reports_late_stays() {
    let mut world = world(7, 20);
    to_next_epoch(&mut world);
    assert_eq!(world.epoch().0, 2);
    let (silent, late) = (node(&world, 0), node(&world, 1));
    assert!(world.state.committee.member_by_node(&silent).is_some());
    // Everybody but the two reports for epoch 2.
    for index in 2..7 {
        report(&mut world, index);
    }
    assert_eq!(world.state.phase, EpochPhase::Done);
    to_next_epoch(&mut world);
    // In epoch 3 the late node reports before the selection; the silent one never does.
    for index in 1..7 {
        report(&mut world, index);
    }
    assert!(world.state.presumed_dead(&silent) && !world.state.presumed_dead(&late));
    to_selection(&mut world);
    let next = world.state.next_committee.clone().unwrap();
    assert_eq!(next.member_by_node(&silent), None, "the silent node drops out");
    assert!(next.member_by_node(&late).is_some(), "the late node stays");
    assert_eq!(next.members.iter().map(|member| member.shards.len()).sum::<usize>(), 20);
}

fn report(world: &mut World, index: usize) {
    let id = node(world, index);
    let epoch = world.epoch();
    let signature = world.node_keys[index].sign(&morsa_core::epoch_sync_done_message(epoch, &id));
    let report = morsa_coord::NodeReport {
        node: id,
        report: morsa_coord::NodeReportKind::EpochSyncDone { epoch },
        signature,
    };
    world.submit(morsa_coord::Input::Node(report)).unwrap();
}

#[test]
fn zones_declared_by_operators_cap_the_next_committee_and_a_lone_zone_is_warned_about() {
    let mut world = world(6, 10);
    // All six in one zone: no committee can keep it to f = 3.
    for index in 0..6 {
        let id = node(&world, index);
        world.transact(3 + index, Command::SetNodeZone { node: id, zone: "eu-west/dc1".into() }).unwrap();
    }
    to_selection(&mut world);
    to_next_epoch(&mut world);
    let info = morsa_coord::domains::domains_info(&world.state);
    assert_eq!((info.f, info.zones.len(), info.zones[0].shards), (3, 1, 10));
    assert!(info.warning.as_deref().is_some_and(|warning| warning.contains("eu-west/dc1")), "{info:?}");
    // Four zones: the next committee holds at most 3 shards in any of them.
    world.report_sync_done(false);
    for (index, zone) in ["a", "a", "a", "b", "c", "d"].iter().enumerate() {
        let id = node(&world, index);
        world.transact(3 + index, Command::SetNodeZone { node: id, zone: (*zone).into() }).unwrap();
    }
    let refused = world.transact(3, Command::SetNodeZone { node: node(&world, 0), zone: "x".repeat(65) });
    assert_eq!(refused.unwrap_err().code(), "invalid_argument");
    to_selection(&mut world);
    to_next_epoch(&mut world);
    let info = morsa_coord::domains::domains_info(&world.state);
    assert!(info.zones.iter().all(|zone| zone.shards <= 3), "{info:?}");
    assert_eq!(info.warning, None);
}

#[test]
fn random_lifecycle_commands_conserve_the_supply_and_keep_every_shard_assigned() {
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut world = world(6, 13);
        let supply = world.state.total_supply();
        for _ in 0..60 {
            let user = rng.random_range(0..world.users.len());
            let target = node(&world, rng.random_range(0..6));
            let command = match rng.random_range(0..7) {
                0 => Command::Stake { node: target, amount: rng.random_range(1..2_000) },
                1 => Command::Unstake { node: target, amount: rng.random_range(1..500) },
                2 => Command::Withdraw { node: target },
                3 if rng.random_range(0..8) == 0 => Command::RetireNode { node: target },
                // Rates up to a little over 100% (refused), and storage bought so that every
                // epoch has rewards to split.
                4 => Command::SetCommission { node: target, commission_ppm: rng.random_range(0..1_100_000) },
                5 => Command::ReserveStorage {
                    size: rng.random_range(1..8 << 20),
                    epochs: rng.random_range(1..4),
                },
                _ => Command::SetNodeZone { node: target, zone: format!("z{}", rng.random_range(0..4)) },
            };
            let _ = world.transact(user, command);
            match rng.random_range(0..4) {
                0 => world.report_sync_done(rng.random_bool(0.5)),
                1 => {
                    world.now += rng.random_range(0..EPOCH_MS);
                    world.submit(morsa_coord::Input::Tick).unwrap();
                }
                _ => {}
            }
            assert_eq!(world.state.total_supply(), supply, "seed {seed}");
            let mut shards: Vec<u16> = world
                .state
                .committee
                .members
                .iter()
                .flat_map(|member| member.shards.iter().map(|s| s.0))
                .collect();
            shards.sort_unstable();
            assert_eq!(shards, (0..13).collect::<Vec<_>>(), "seed {seed}");
        }
    }
}

fn accuse(
    world: &mut World,
    reporter: usize,
    subject: usize,
) -> Result<morsa_coord::Applied, morsa_coord::CommandError> {
    let (reporter_id, subject_id) = (node(world, reporter), node(world, subject));
    let epoch = world.epoch();
    let signature =
        world.node_keys[reporter].sign(&morsa_core::node_unresponsive_message(epoch, &subject_id));
    let report = morsa_coord::NodeReport {
        node: reporter_id,
        report: morsa_coord::NodeReportKind::NodeUnresponsive { subject: subject_id, epoch },
        signature,
    };
    world.submit(morsa_coord::Input::Node(report))
}

#[test]
fn a_node_reported_unresponsive_by_validity_weight_drops_out_of_the_next_committee() {
    let mut world = world(7, 20);
    let weight = |world: &World, index: usize| shards_of(world, &world.state.committee, index);
    // Validity for 20 shards is 7 (3w ≥ 21). Reporters are added, lightest first, until just
    // below it: the subject stays a candidate.
    let subject = 0;
    let mut reporters: Vec<usize> = (1..7).collect();
    reporters.sort_by_key(|&index| weight(&world, index));
    let mut total = 0;
    let mut used = Vec::new();
    for &reporter in &reporters {
        if total + weight(&world, reporter) >= 7 {
            break;
        }
        accuse(&mut world, reporter, subject).unwrap();
        total += weight(&world, reporter);
        used.push(reporter);
    }
    assert!(!world.state.presumed_dead(&node(&world, subject)), "{total} shards accuse it");
    // A repeat counts once; a member cannot accuse itself, nor a node outside the committee.
    accuse(&mut world, used[0], subject).unwrap();
    assert!(!world.state.presumed_dead(&node(&world, subject)));
    assert_eq!(accuse(&mut world, 1, 1).unwrap_err().code(), "unknown_node");
    // One more reporter reaches validity.
    let last = reporters.iter().copied().find(|reporter| !used.contains(reporter)).unwrap();
    accuse(&mut world, last, subject).unwrap();
    assert!(world.state.presumed_dead(&node(&world, subject)));
    to_selection(&mut world);
    let next = world.state.next_committee.clone().unwrap();
    assert_eq!(next.member_by_node(&node(&world, subject)), None);
    assert_eq!(next.members.iter().map(|member| member.shards.len()).sum::<usize>(), 20);
    // Accusations last one epoch.
    to_next_epoch(&mut world);
    assert!(world.state.lifecycle.accused.is_empty());
    assert!(!world.state.presumed_dead(&node(&world, subject)));
}

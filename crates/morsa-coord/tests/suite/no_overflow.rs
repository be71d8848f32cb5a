//! No command sequence can wrap a counter of the state machine: amounts, sizes, capacities and
//! epochs are drawn from the edges of `u64`/`u32`, and after every entry each counter is
//! compared with the same sum computed in `u128` from the objects it counts.

use crate::common;

use std::collections::BTreeMap;

use common::{EPOCH_MS, World};
use morsa_coord::{Command, CommandError, GenesisAccount, Input, NodeReport, NodeReportKind, State};
use morsa_core::{BlsSecretKey, Epoch, NodeId, ObjectId};
use proptest::prelude::*;

const N: u16 = 4;

/// A world whose three users hold together the whole `u64` supply.
fn rich_world() -> World {
    let mut world = World::new(4, N);
    let stakes: u64 = world.genesis.nodes.iter().map(|node| node.stake).sum();
    let room = u64::MAX - stakes;
    let shares = [room / 2, room / 4, room - room / 2 - room / 4];
    world.genesis.accounts = world
        .users
        .iter()
        .zip(shares)
        .map(|(user, balance)| GenesisAccount { id: user.id(), balance })
        .collect();
    world.genesis.node_rules.max_node_capacity = u64::MAX / u64::from(N);
    // No node can hold every shard, so a node that joins shares the committee.
    world.genesis.max_shards_per_node = N / 2;
    world.state = world.genesis.initial_state().unwrap();
    world
}

/// A value at or near an edge.
fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(1 << 20),
        Just(u64::MAX / 4),
        Just(u64::MAX / 2),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>(),
        0u64..10_000,
    ]
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(1), Just(2), Just(u32::MAX), any::<u32>(), 0u32..12]
}

/// What a step does; object and node references are indices into what exists.
#[derive(Debug, Clone)]
enum Step {
    Transfer { user: usize, to: usize, amount: u64 },
    Reserve { user: usize, size: u64, epochs: u32 },
    Split { user: usize, object: usize, size: u64 },
    SplitEpoch { user: usize, object: usize, epoch: u32 },
    Merge { user: usize, first: usize, second: usize },
    Stake { user: usize, node: usize, amount: u64 },
    Unstake { user: usize, node: usize, amount: u64 },
    RegisterNode { user: usize, seed: u8, capacity: u64 },
    DeregisterNode { user: usize, node: usize },
    Advance { ms: u64 },
    SyncDone,
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0usize..3;
    prop_oneof![
        1 => (user.clone(), 0usize..3, edge_u64()).prop_map(|(user, to, amount)| Step::Transfer { user, to, amount }),
        2 => (user.clone(), edge_u64(), edge_u32()).prop_map(|(user, size, epochs)| Step::Reserve { user, size, epochs }),
        1 => (user.clone(), 0usize..8, edge_u64()).prop_map(|(user, object, size)| Step::Split { user, object, size }),
        1 => (user.clone(), 0usize..8, edge_u32()).prop_map(|(user, object, epoch)| Step::SplitEpoch { user, object, epoch }),
        1 => (user.clone(), 0usize..8, 0usize..8).prop_map(|(user, first, second)| Step::Merge { user, first, second }),
        3 => (user.clone(), 0usize..8, edge_u64()).prop_map(|(user, node, amount)| Step::Stake { user, node, amount }),
        1 => (user.clone(), 0usize..8, edge_u64()).prop_map(|(user, node, amount)| Step::Unstake { user, node, amount }),
        3 => (user.clone(), 0u8..6, edge_u64()).prop_map(|(user, seed, capacity)| Step::RegisterNode {
            user,
            seed,
            capacity
        }),
        1 => (user, 0usize..8).prop_map(|(user, node)| Step::DeregisterNode { user, node }),
        3 => prop_oneof![Just(EPOCH_MS / 2), Just(EPOCH_MS), Just(1u64)].prop_map(|ms| Step::Advance { ms }),
        2 => Just(Step::SyncDone),
    ]
}

fn nth<T: Copy>(items: impl Iterator<Item = T>, index: usize) -> Option<T> {
    let items: Vec<T> = items.collect();
    (!items.is_empty()).then(|| items[index % items.len()])
}

fn run(world: &mut World, step: &Step) -> Result<(), CommandError> {
    let objects = |world: &World| world.state.storage.keys().copied().collect::<Vec<ObjectId>>();
    let node = |world: &World, index: usize| nth(world.state.nodes.keys().copied(), index).unwrap();
    let command = match step {
        Step::Transfer { user: _, to, amount } => {
            Command::Transfer { to: world.users[*to].id(), amount: *amount }
        }
        Step::Reserve { size, epochs, .. } => Command::ReserveStorage { size: *size, epochs: *epochs },
        Step::Split { object, size, .. } => {
            let Some(storage) = nth(objects(world).into_iter(), *object) else { return Ok(()) };
            Command::SplitStorageBySize { storage, size: *size }
        }
        Step::SplitEpoch { object, epoch, .. } => {
            let Some(storage) = nth(objects(world).into_iter(), *object) else { return Ok(()) };
            Command::SplitStorageByEpoch { storage, epoch: Epoch(*epoch) }
        }
        Step::Merge { first, second, .. } => {
            let all = objects(world);
            let (Some(first), Some(second)) =
                (nth(all.iter().copied(), *first), nth(all.iter().copied(), *second))
            else {
                return Ok(());
            };
            Command::MergeStorage { first, second }
        }
        Step::Stake { node: index, amount, .. } => {
            Command::Stake { node: node(world, *index), amount: *amount }
        }
        Step::Unstake { node: index, amount, .. } => {
            Command::Unstake { node: node(world, *index), amount: *amount }
        }
        Step::RegisterNode { seed, capacity, .. } => {
            let key = BlsSecretKey::from_seed([150 + seed; 32]);
            Command::RegisterNode {
                public_key: key.public_key(),
                proof_of_possession: key.proof_of_possession(),
                address: format!("127.0.0.1:{}", 9100 + u16::from(*seed)),
                capacity: *capacity,
            }
        }
        Step::DeregisterNode { node: index, .. } => Command::DeregisterNode { node: node(world, *index) },
        Step::Advance { ms } => {
            world.advance(*ms);
            return Ok(());
        }
        Step::SyncDone => {
            sync_done(world);
            return Ok(());
        }
    };
    let user = match step {
        Step::Transfer { user, .. }
        | Step::Reserve { user, .. }
        | Step::Split { user, .. }
        | Step::SplitEpoch { user, .. }
        | Step::Merge { user, .. }
        | Step::Stake { user, .. }
        | Step::Unstake { user, .. }
        | Step::RegisterNode { user, .. }
        | Step::DeregisterNode { user, .. } => *user,
        Step::Advance { .. } | Step::SyncDone => unreachable!("handled above"),
    };
    world.transact(user, command).map(|_| ())
}

/// Every member of the committee reports, so epochs keep changing.
fn sync_done(world: &mut World) {
    let epoch = world.state.epoch;
    for member in world.state.committee.members.clone() {
        let Some(index) = world
            .node_keys
            .iter()
            .position(|key| NodeId::from_public_key(&key.public_key()) == member.node_id)
        else {
            continue; // a node registered in the test: no key at hand
        };
        let signature =
            world.node_keys[index].sign(&morsa_core::epoch_sync_done_message(epoch, &member.node_id));
        let report =
            NodeReport { node: member.node_id, report: NodeReportKind::EpochSyncDone { epoch }, signature };
        let _ = world.submit(Input::Node(report));
    }
}

/// Every counter equals its sum computed without overflow.
fn check_counters(state: &State, supply: u128) {
    assert_eq!(state.total_supply(), supply, "balances, stakes, deposits and pools are conserved");
    assert!(state.total_supply() <= u128::from(u64::MAX));
    let committee_capacity: u128 = state
        .committee
        .members
        .iter()
        .filter_map(|member| state.nodes.get(&member.node_id))
        .map(|node| u128::from(node.capacity))
        .sum();
    assert_eq!(
        u128::from(state.capacity),
        committee_capacity,
        "the capacity is the members' sum, not wrapped"
    );
    for (id, node) in &state.nodes {
        let staked: u128 = state
            .stakes
            .iter()
            .filter(|((_, staked), _)| staked == id)
            .map(|(_, amount)| u128::from(*amount))
            .sum();
        assert_eq!(u128::from(node.stake), staked, "node {id}'s stake is the sum of its stakes");
        assert!(node.capacity <= state.params.max_node_capacity);
    }
    let mut booked: BTreeMap<Epoch, u128> = BTreeMap::new();
    let resources = state.storage.values().chain(state.blobs.values().map(|blob| &blob.storage));
    for resource in resources {
        for epoch in (resource.start.0.max(state.epoch.0)..resource.end.0).map(Epoch) {
            *booked.entry(epoch).or_default() += u128::from(resource.size);
        }
    }
    for (epoch, used) in &state.used {
        assert!(
            u128::from(*used) >= booked.get(epoch).copied().unwrap_or(0),
            "used in {epoch} covers what is booked"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_command_sequence_wraps_a_counter(steps in proptest::collection::vec(step(), 1..60)) {
        let mut world = rich_world();
        let supply = world.state.total_supply();
        check_counters(&world.state, supply);
        for step in &steps {
            let _ = run(&mut world, step);
            check_counters(&world.state, supply);
        }
    }
}

#[test]
fn a_node_cannot_declare_a_capacity_that_wraps_the_committee_total() {
    let mut world = rich_world();
    let before = world.state.capacity;
    let key = BlsSecretKey::from_seed([99; 32]);
    let node = NodeId::from_public_key(&key.public_key());
    let register = |capacity| Command::RegisterNode {
        public_key: key.public_key(),
        proof_of_possession: key.proof_of_possession(),
        address: "127.0.0.1:9999".into(),
        capacity,
    };
    // With the total at `before`, this capacity would wrap it to 0.
    let wrapping = u64::MAX - before + 1;
    let refused = world.transact(0, register(wrapping)).unwrap_err();
    assert_eq!(refused.code(), "invalid_argument", "{refused}");
    let refused = world.transact(0, register(0)).unwrap_err();
    assert_eq!(refused.code(), "invalid_argument", "a node must offer some capacity: {refused}");
    world.transact(0, register(world.state.params.max_node_capacity)).unwrap();
    world.transact(0, Command::Stake { node, amount: 1 << 40 }).unwrap();
    world.advance(EPOCH_MS / 2);
    world.advance(EPOCH_MS / 2);
    assert!(world.state.committee.member_by_node(&node).is_some(), "the node joined");
    assert!(world.state.capacity > before, "the total grew: {} then {}", before, world.state.capacity);
    // A store that fit before still fits.
    world.transact(1, Command::ReserveStorage { size: before, epochs: 1 }).unwrap();
}

#[test]
fn prices_that_overflow_are_refused_not_wrapped() {
    let mut world = rich_world();
    world.genesis.storage_price_per_mib_epoch = u64::MAX;
    world.state = world.genesis.initial_state().unwrap();
    let supply = world.state.total_supply();
    let refused = world.transact(0, Command::ReserveStorage { size: u64::MAX, epochs: 10 }).unwrap_err();
    assert_eq!(refused.code(), "invalid_argument", "{refused}");
    check_counters(&world.state, supply);
}

//! Delegation through the real `apply`: a node's commission, set by its operator, pays from the
//! next epoch; the rest of its reward goes to the stakes that counted for the epoch, pro rata.
//! Every expected balance is recomputed here from the pool, the shard weights and the stakes.

use morsa_coord::Command;
use morsa_core::{BlsSecretKey, Epoch};

use crate::common::World;
use crate::lifecycle::{balance, node, shards_of, to_next_epoch, world};

const OPERATOR: usize = 3; // node 0's operator (users 3.. operate the genesis nodes)
const N_SHARDS: u16 = 10;

/// Balances of `users` now.
fn balances(world: &World, users: &[usize]) -> Vec<u64> {
    users.iter().map(|user| balance(world, *user)).collect()
}

/// Node 0's reward for the ending epoch: its shard share of the pool (no challenges).
fn reward_of_node_0(world: &World) -> u64 {
    let pool = world.state.reward_pools.get(&world.epoch()).copied().unwrap_or(0);
    let weight = u64::try_from(shards_of(world, &world.state.committee, 0)).unwrap();
    pool * weight / u64::from(N_SHARDS)
}

#[test]
fn a_reward_pays_the_commission_then_the_stakes_that_counted_pro_rata() {
    let mut world = world(4, N_SHARDS);
    let target = node(&world, 0);
    // Users 0 and 1 stake with node 0 in epoch 1: they count from the selection of epoch 2's
    // committee, so epoch 1's reward goes to the genesis stake (the operator's 100) alone.
    world.transact(0, Command::Stake { node: target, amount: 300 }).unwrap();
    world.transact(1, Command::Stake { node: target, amount: 600 }).unwrap();
    // Set while node 0 earns: epoch 1 still pays at 0%, epoch 2 at 10%.
    world.transact(OPERATOR, Command::SetCommission { node: target, commission_ppm: 100_000 }).unwrap();
    let set = &world.state.nodes[&target];
    assert_eq!((set.commission_ppm, set.next_commission_ppm), (0, Some(100_000)));
    world.transact(2, Command::ReserveStorage { size: 64 << 20, epochs: 3 }).unwrap();

    let users = [0, 1, OPERATOR];
    let (before, reward) = (balances(&world, &users), reward_of_node_0(&world));
    assert!(reward > 0, "the pool pays something");
    to_next_epoch(&mut world);
    let after = balances(&world, &users);
    assert_eq!(after, vec![before[0], before[1], before[2] + reward], "epoch 1: all to the only stake");
    assert_eq!(world.state.nodes[&target].commission_ppm, 100_000, "the new rate is in force");
    world.finish_epoch_change();

    // User 1 unstakes during epoch 2: its stake counted for epoch 2, so it still earns it.
    world.transact(1, Command::Unstake { node: target, amount: 600 }).unwrap();
    let (before, reward) = (balances(&world, &users), reward_of_node_0(&world));
    to_next_epoch(&mut world);
    let commission = reward / 10;
    let rest = reward - commission;
    let (to_0, to_1) = (rest * 300 / 1_000, rest * 600 / 1_000);
    let to_operator = reward - to_0 - to_1; // the commission, its own 10% and the rounding
    assert!(to_operator >= commission + rest / 10 && to_operator < commission + rest / 10 + 3);
    let after = balances(&world, &users);
    assert_eq!(after, vec![before[0] + to_0, before[1] + to_1, before[2] + to_operator]);
    world.finish_epoch_change();

    // Epoch 3: user 1's stake no longer counts.
    let (before, reward) = (balances(&world, &users), reward_of_node_0(&world));
    to_next_epoch(&mut world);
    let rest = reward - reward / 10;
    let to_0 = rest * 300 / 400;
    let after = balances(&world, &users);
    assert_eq!(after, vec![before[0] + to_0, before[1], before[2] + reward - to_0]);
}

#[test]
fn only_the_operator_sets_a_commission_of_at_most_100_percent_and_it_applies_at_once_to_a_node_not_earning() {
    let mut world = world(4, N_SHARDS);
    let target = node(&world, 0);
    let refused = world.transact(0, Command::SetCommission { node: target, commission_ppm: 10 });
    assert_eq!(refused.unwrap_err().code(), "not_operator");
    let refused =
        world.transact(OPERATOR, Command::SetCommission { node: target, commission_ppm: 1_000_001 });
    assert_eq!(refused.unwrap_err().code(), "invalid_argument");
    world.transact(OPERATOR, Command::SetCommission { node: target, commission_ppm: 1_000_000 }).unwrap();

    // A node registered now earns nothing this epoch: its rate holds at once.
    let key = BlsSecretKey::from_seed([77; 32]);
    world
        .transact(
            0,
            Command::RegisterNode {
                public_key: key.public_key(),
                proof_of_possession: key.proof_of_possession(),
                address: "127.0.0.1:9999".into(),
                capacity: 1 << 30,
            },
        )
        .unwrap();
    let joined = morsa_core::NodeId::from_public_key(&key.public_key());
    world.transact(0, Command::SetCommission { node: joined, commission_ppm: 50_000 }).unwrap();
    let set = &world.state.nodes[&joined];
    assert_eq!((set.commission_ppm, set.next_commission_ppm), (50_000, None));
    assert_eq!(world.epoch(), Epoch(1));
}

//! A seeded simulation of committee selection with failure domains (1000 seeds): random
//! stakes, zones, operators, joins and leaves, epoch after epoch through the coordinator's
//! own pure functions. Every committee holds every shard exactly once; no zone or operator
//! holds more than `f` shards whenever the candidates allow it (decided by an independent
//! max-flow written here), and when they do not, the caps reported are the smallest feasible;
//! the shards that move are exactly the lower bound for the new counts.

use std::collections::BTreeMap;

use morsa_coord::apportion::{Candidate, assign_shards, domain_shard_counts, max_faulty};
use morsa_core::ShardIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Whether `n` shards fit under `node_cap` per node with stake, `zone_cap` per zone and
/// `operator_cap` per operator: Ford–Fulkerson with depth-first augmenting paths on a
/// capacity matrix, independent of the solver under test.
fn feasible(candidates: &[Candidate], n: u16, node_cap: u16, zone_cap: u16, operator_cap: u16) -> bool {
    let zones = candidates.iter().map(|c| c.zone + 1).max().unwrap_or(0);
    let operators = candidates.iter().map(|c| c.operator + 1).max().unwrap_or(0);
    let size = 2 + zones + candidates.len() + operators;
    let (source, sink) = (0, size - 1);
    let mut capacity = vec![vec![0i64; size]; size];
    for zone in 0..zones {
        capacity[source][1 + zone] = i64::from(zone_cap);
    }
    for (node, candidate) in candidates.iter().enumerate() {
        let vertex = 1 + zones + node;
        let cap = if candidate.stake > 0 { i64::from(node_cap) } else { 0 };
        capacity[1 + candidate.zone][vertex] = cap;
        capacity[vertex][1 + zones + candidates.len() + candidate.operator] = cap;
    }
    for operator in 0..operators {
        capacity[1 + zones + candidates.len() + operator][sink] = i64::from(operator_cap);
    }
    let mut flow = 0;
    loop {
        let mut seen = vec![false; size];
        let pushed = augment(&mut capacity, &mut seen, source, sink, i64::MAX);
        if pushed == 0 {
            return flow >= i64::from(n);
        }
        flow += pushed;
    }
}

fn augment(capacity: &mut [Vec<i64>], seen: &mut [bool], at: usize, sink: usize, limit: i64) -> i64 {
    if at == sink {
        return limit;
    }
    seen[at] = true;
    for next in 0..capacity.len() {
        if !seen[next] && capacity[at][next] > 0 {
            let pushed = augment(capacity, seen, next, sink, limit.min(capacity[at][next]));
            if pushed > 0 {
                capacity[at][next] -= pushed;
                capacity[next][at] += pushed;
                return pushed;
            }
        }
    }
    0
}

/// Shards per zone and per operator of `counts`.
fn per_domain(candidates: &[Candidate], counts: &[u16]) -> (BTreeMap<usize, u16>, BTreeMap<usize, u16>) {
    let (mut zones, mut operators) = (BTreeMap::new(), BTreeMap::new());
    for (candidate, &count) in candidates.iter().zip(counts) {
        *zones.entry(candidate.zone).or_insert(0) += count;
        *operators.entry(candidate.operator).or_insert(0) += count;
    }
    (zones, operators)
}

/// `Σ max(0, held_i − count_i) + |shards nobody held|`: no assignment with these counts moves
/// fewer shards (see `morsa_coord::apportion`).
fn lower_bound(n: u16, counts: &[u16], previous: &[Vec<ShardIndex>]) -> usize {
    let held: usize = previous.iter().map(Vec::len).sum();
    let given_up: usize = previous
        .iter()
        .enumerate()
        .map(|(node, shards)| {
            shards.len().saturating_sub(usize::from(counts.get(node).copied().unwrap_or(0)))
        })
        .sum();
    given_up + (usize::from(n) - held)
}

fn moved(previous: &[Vec<ShardIndex>], next: &[Vec<ShardIndex>]) -> usize {
    let owner = |assignment: &[Vec<ShardIndex>], shard: &ShardIndex| {
        assignment.iter().position(|shards| shards.contains(shard))
    };
    next.iter()
        .enumerate()
        .flat_map(|(node, shards)| shards.iter().map(move |shard| (node, shard)))
        .filter(|(node, shard)| owner(previous, shard) != Some(*node))
        .count()
}

fn random_stake(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..10) {
        0 => 0,
        1 => rng.random_range(10_000..1_000_000),
        _ => rng.random_range(1..1000),
    }
}

#[test]
fn committee_selection_meets_the_domain_caps_whenever_it_can_and_moves_the_fewest_shards() {
    let (mut met, mut infeasible, mut epochs) = (0, 0, 0);
    for seed in 0..1000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let n: u16 = rng.random_range(4..=48);
        let f = max_faulty(n);
        assert_eq!(f, (n - 1) / 3);
        let (zones, operators) = (rng.random_range(1..=7), rng.random_range(1..=9));
        let mut nodes: Vec<Candidate> = (0..rng.random_range(1..=8))
            .map(|_| Candidate {
                stake: random_stake(&mut rng),
                zone: rng.random_range(0..zones),
                operator: rng.random_range(0..operators),
            })
            .collect();
        let mut previous: Vec<Vec<ShardIndex>> = Vec::new();
        for epoch in 0..8 {
            // Joins, leaves (stake to zero) and stake changes.
            for _ in 0..rng.random_range(0..3) {
                match rng.random_range(0..3) {
                    0 if nodes.len() < 16 => nodes.push(Candidate {
                        stake: random_stake(&mut rng),
                        zone: rng.random_range(0..zones),
                        operator: rng.random_range(0..operators),
                    }),
                    1 => {
                        let node = rng.random_range(0..nodes.len());
                        nodes[node].stake = 0;
                    }
                    _ => {
                        let node = rng.random_range(0..nodes.len());
                        nodes[node].stake = random_stake(&mut rng);
                    }
                }
            }
            let node_cap = rng.random_range(n.div_ceil(4)..=n);
            let with_stake = nodes.iter().filter(|node| node.stake > 0).count();
            let context = format!("seed {seed}, epoch {epoch}, n {n}, cap {node_cap}, {nodes:?}");
            let Ok(counts) = domain_shard_counts(n, &nodes, node_cap) else {
                assert!(with_stake * usize::from(node_cap) < usize::from(n), "refused: {context}");
                continue;
            };
            epochs += 1;
            assert_eq!(counts.counts.len(), nodes.len(), "{context}");
            assert_eq!(
                counts.counts.iter().map(|&c| usize::from(c)).sum::<usize>(),
                usize::from(n),
                "{context}"
            );
            for (node, &count) in nodes.iter().zip(&counts.counts) {
                assert!(count <= node_cap && (node.stake > 0 || count == 0), "{context}: {counts:?}");
            }
            let (zone_shards, operator_shards) = per_domain(&nodes, &counts.counts);
            let largest_zone = zone_shards.values().copied().max().unwrap_or(0);
            let largest_operator = operator_shards.values().copied().max().unwrap_or(0);
            assert!(largest_zone <= counts.zone_cap && largest_operator <= counts.operator_cap, "{context}");
            if feasible(&nodes, n, node_cap, f, f) {
                met += 1;
                assert!(counts.caps_met(), "the caps are feasible but not met: {context}: {counts:?}");
                assert!(largest_zone <= f && largest_operator <= f, "{context}: {counts:?}");
            } else {
                infeasible += 1;
                assert!(!counts.caps_met(), "{context}: {counts:?}");
                // The caps reported are the smallest that work: zones first, then operators.
                assert!(feasible(&nodes, n, node_cap, counts.zone_cap, counts.operator_cap), "{context}");
                if counts.zone_cap > f {
                    assert!(!feasible(&nodes, n, node_cap, counts.zone_cap - 1, n), "{context}: {counts:?}");
                }
                if counts.operator_cap > f {
                    let tighter = counts.operator_cap - 1;
                    assert!(
                        !feasible(&nodes, n, node_cap, counts.zone_cap, tighter),
                        "{context}: {counts:?}"
                    );
                }
            }
            let next = assign_shards(n, &counts.counts, &previous);
            let mut owners = vec![0; usize::from(n)];
            for (node, shards) in next.iter().enumerate() {
                assert_eq!(shards.len(), usize::from(counts.counts[node]), "{context}");
                for shard in shards {
                    owners[usize::from(shard.0)] += 1;
                }
            }
            assert!(owners.iter().all(|&owners| owners == 1), "a shard not held exactly once: {context}");
            assert_eq!(moved(&previous, &next), lower_bound(n, &counts.counts, &previous), "{context}");
            previous = next;
        }
    }
    // The seeds exercise both sides of the rule.
    eprintln!("{epochs} selections: caps feasible in {met}, infeasible in {infeasible}");
    assert!(met > 500 && infeasible > 500, "met {met}, infeasible {infeasible}");
}

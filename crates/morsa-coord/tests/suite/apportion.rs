//! Property tests for shard apportionment: D'Hondt counts against a seat-by-seat reference,
//! and assignments that are complete, exact and move the fewest shards.

use std::collections::HashMap;

use morsa_coord::apportion::{ApportionError, apportion, assign_shards, moved_shards, shard_counts};
use morsa_core::ShardIndex;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// D'Hondt as in the textbook: hand out seats one at a time, each to the node with the highest
/// quotient `stake / (seats + 1)` among those with stake and below the cap, the lowest index
/// on ties.
fn reference_counts(n_shards: u16, stakes: &[u64], cap: u16) -> Vec<u16> {
    let mut counts = vec![0u16; stakes.len()];
    for _ in 0..n_shards {
        let mut best: Option<usize> = None;
        for (node, &stake) in stakes.iter().enumerate() {
            if stake == 0 || counts[node] >= cap {
                continue;
            }
            let beats_best = best.is_none_or(|best| {
                let mine = u128::from(stake) * (u128::from(counts[best]) + 1);
                let theirs = u128::from(stakes[best]) * (u128::from(counts[node]) + 1);
                mine > theirs
            });
            if beats_best {
                best = Some(node);
            }
        }
        counts[best.expect("some node has room")] += 1;
    }
    counts
}

fn stake() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 4 => 1u64..1000, 1 => any::<u64>()]
}

/// The previous owner of every shard once `previous` is sanitised (out-of-range shards dropped,
/// first listing wins), written independently of the module.
fn sanitised_owners(n_shards: u16, previous: &[Vec<ShardIndex>]) -> HashMap<u16, usize> {
    let mut owners = HashMap::new();
    for (node, shards) in previous.iter().enumerate() {
        for shard in shards {
            if shard.0 < n_shards {
                owners.entry(shard.0).or_insert(node);
            }
        }
    }
    owners
}

/// A committee change: shard count, new stakes, a cap that fits, and a previous assignment that
/// may be shorter or longer than the committee and carries duplicate and out-of-range shards.
fn committee_change() -> impl Strategy<Value = (u16, Vec<u64>, u16, Vec<Vec<ShardIndex>>)> {
    (1u16..300, 1usize..20)
        .prop_flat_map(|(n_shards, nodes)| {
            (
                Just(n_shards),
                vec(stake(), nodes),
                0..=n_shards,
                vec(option::of(0..nodes + 3), usize::from(n_shards)),
                vec((0..nodes + 3, 0..n_shards + 10), 0..10),
                0..=nodes + 3,
            )
        })
        .prop_map(|(n_shards, mut stakes, cap, owners, junk, previous_len)| {
            stakes[0] = stakes[0].max(1);
            let with_stake = stakes.iter().filter(|&&stake| stake > 0).count();
            let min_cap = n_shards.div_ceil(u16::try_from(with_stake).expect("under 20 nodes"));
            let mut previous = vec![Vec::new(); previous_len];
            for (shard, owner) in (0..n_shards).zip(owners) {
                if let Some(shards) = owner.and_then(|node| previous.get_mut(node)) {
                    shards.push(ShardIndex(shard));
                }
            }
            for (node, shard) in junk {
                if let Some(shards) = previous.get_mut(node) {
                    shards.push(ShardIndex(shard));
                }
            }
            for shards in previous.iter_mut().skip(1).step_by(2) {
                shards.reverse();
            }
            (n_shards, stakes, cap.max(min_cap), previous)
        })
}

proptest! {
    #[test]
    fn counts_are_capped_dhondt(
        n_shards in 0u16..400,
        stakes in vec(stake(), 0..30),
        cap in 0u16..400,
    ) {
        let with_stake = stakes.iter().filter(|&&stake| stake > 0).count();
        let counts = match shard_counts(n_shards, &stakes, cap) {
            Err(ApportionError::NoStake) => {
                prop_assert_eq!(with_stake, 0);
                return Ok(());
            }
            Err(ApportionError::CapTooLow { nodes_with_stake, max_per_node, n_shards: n }) => {
                prop_assert_eq!((nodes_with_stake, max_per_node, n), (with_stake, cap, n_shards));
                prop_assert!(with_stake * usize::from(cap) < usize::from(n_shards));
                return Ok(());
            }
            Ok(counts) => counts,
        };
        prop_assert!(with_stake > 0 && with_stake * usize::from(cap) >= usize::from(n_shards));
        prop_assert_eq!(counts.len(), stakes.len());
        prop_assert_eq!(counts.iter().map(|&c| usize::from(c)).sum::<usize>(), usize::from(n_shards));
        for (node, (&count, &stake)) in counts.iter().zip(&stakes).enumerate() {
            prop_assert!(count <= cap, "node {} over the cap", node);
            if stake == 0 {
                prop_assert_eq!(count, 0, "node {} has no stake", node);
            }
        }
        for a in 0..stakes.len() {
            for b in 0..stakes.len() {
                // More stake never gets fewer shards; equal stake differs by at most one, in
                // favour of the lower index.
                if stakes[a] > stakes[b] || (stakes[a] == stakes[b] && a < b) {
                    prop_assert!(counts[a] >= counts[b], "nodes {} and {}: {:?}", a, b, counts);
                }
                if stakes[a] == stakes[b] {
                    prop_assert!(counts[a].abs_diff(counts[b]) <= 1);
                }
                // The divisor-method definition: every seat won has a quotient at least that of
                // every seat not won by a node below the cap.
                if counts[a] > 0 && stakes[b] > 0 && counts[b] < cap {
                    let won = u128::from(stakes[a]) * (u128::from(counts[b]) + 1);
                    let not_won = u128::from(stakes[b]) * u128::from(counts[a]);
                    prop_assert!(won >= not_won, "nodes {} and {}: {:?}", a, b, counts);
                }
            }
        }
        prop_assert_eq!(counts, reference_counts(n_shards, &stakes, cap));
    }

    #[test]
    fn assignments_are_exact_and_move_the_fewest_shards(
        (n_shards, stakes, cap, previous) in committee_change(),
    ) {
        let counts = shard_counts(n_shards, &stakes, cap).unwrap();
        let after = apportion(n_shards, &stakes, cap, &previous).unwrap();
        prop_assert_eq!(&after, &assign_shards(n_shards, &counts, &previous));

        // Every shard owned exactly once, every node exactly its count, lists sorted.
        prop_assert_eq!(after.len(), counts.len());
        let mut owner_after = HashMap::new();
        for (node, shards) in after.iter().enumerate() {
            prop_assert_eq!(shards.len(), usize::from(counts[node]));
            prop_assert!(shards.is_sorted());
            for shard in shards {
                prop_assert!(shard.0 < n_shards);
                prop_assert!(owner_after.insert(shard.0, node).is_none(), "{} twice", shard);
            }
        }
        prop_assert_eq!(owner_after.len(), usize::from(n_shards));

        // Each node keeps the lowest of its previous shards, as many as its count allows.
        let owner_before = sanitised_owners(n_shards, &previous);
        let mut held: Vec<Vec<u16>> = vec![Vec::new(); previous.len().max(counts.len())];
        for (&shard, &node) in &owner_before {
            held[node].push(shard);
        }
        let mut lower_bound = usize::from(n_shards) - owner_before.len();
        for (node, held) in held.iter_mut().enumerate() {
            held.sort_unstable();
            let count = usize::from(counts.get(node).copied().unwrap_or(0));
            let kept = held.len().min(count);
            for &shard in &held[..kept] {
                prop_assert_eq!(owner_after[&shard], node, "node {} lost {}", node, shard);
            }
            lower_bound += held.len() - kept;
        }

        // The shards that changed owner are exactly the lower bound of the module docs.
        let changed = owner_after
            .iter()
            .filter(|&(shard, node)| owner_before.get(shard) != Some(node))
            .count();
        prop_assert_eq!(changed, lower_bound);
        prop_assert_eq!(moved_shards(&previous, &after), lower_bound);
    }

    #[test]
    fn one_percent_more_stake_moves_few_shards(
        stakes in vec(1u64..1_000_000, 10),
        grower in 0usize..10,
    ) {
        let n_shards = 1000;
        let before = apportion(n_shards, &stakes, n_shards, &[]).unwrap();
        let mut new_stakes = stakes.clone();
        new_stakes[grower] += stakes[grower] / 100;
        let after = apportion(n_shards, &new_stakes, n_shards, &before).unwrap();

        let old_counts: Vec<usize> = before.iter().map(Vec::len).collect();
        let new_counts: Vec<usize> = after.iter().map(Vec::len).collect();
        // Only the grower gains (D'Hondt is stake-monotone), so it gains what the others lose,
        // and exactly that many shards move: the shrinking nodes' excess.
        let gained = new_counts[grower] - old_counts[grower];
        let shrunk: usize = old_counts
            .iter()
            .zip(&new_counts)
            .map(|(&old, &new)| old.saturating_sub(new))
            .sum();
        for node in (0..10).filter(|&node| node != grower) {
            prop_assert!(new_counts[node] <= old_counts[node]);
        }
        prop_assert_eq!(shrunk, gained);
        prop_assert_eq!(moved_shards(&before, &after), gained);
        // The grower's seat c+1 lost before (quotient s/(c+1) at most every winning quotient);
        // to gain g seats its seat c+g must beat one of those winners: 1.01·s/(c+g) ≥ s/(c+1),
        // so g ≤ 0.01·(c+1) + 1.
        let c = old_counts[grower];
        prop_assert!(gained <= (c + 1) / 100 + 1, "gained {} from {}", gained, c);
    }
}

//! `morsa drill --with-failures`: which nodes the drill reads without, as if they were gone.
//! The worst the code promises to survive is losing the nodes of `f` shards, so the drill
//! leaves out nodes whose shards add up to `f`, or as close below it as the committee allows
//! (nodes hold different numbers of shards), chosen at random by the drill's seed.

use serde::{Deserialize, Serialize};

use super::next;

/// A node the drill read without.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExcludedNode {
    /// Its ID.
    pub node_id: String,
    /// Its address.
    pub address: String,
    /// Its shards.
    pub shards: usize,
}

/// Members (indices into `weights`, their shard counts) whose weights add up to at most `f`
/// and to as much as any such set does; among the sets that do, one picked by `rng`. Members
/// without shards are never picked (leaving them out tests nothing).
pub fn choose(weights: &[usize], f: usize, rng: &mut u64) -> Vec<usize> {
    // A seeded shuffle first, so that which of the equally good sets is found depends on the
    // seed alone.
    let mut order: Vec<usize> = (0..weights.len()).filter(|member| weights[*member] > 0).collect();
    for index in (1..order.len()).rev() {
        let bound = morsa_core::convert::saturating_u64(index + 1);
        let pick = morsa_core::convert::saturating_usize(next(rng) % bound);
        order.swap(index, pick);
    }
    // Subset sums up to `f` (0/1 knapsack): `last[sum]` is the member that first reached
    // `sum`; the rest of its set reached `sum - weight` earlier, so following the chain back
    // names each member once.
    let mut last: Vec<Option<usize>> = vec![None; f + 1];
    let mut reached = vec![false; f + 1];
    reached[0] = true;
    for &member in &order {
        let weight = weights[member];
        for sum in (weight..=f).rev() {
            if !reached[sum] && reached[sum - weight] {
                reached[sum] = true;
                last[sum] = Some(member);
            }
        }
    }
    let mut sum = (0..=f).rev().find(|sum| reached[*sum]).unwrap_or(0);
    let mut chosen = Vec::new();
    while let Some(member) = last[sum] {
        chosen.push(member);
        sum -= weights[member];
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest total at most `f` of any subset, by trying every subset.
    fn best_total(weights: &[usize], f: usize) -> usize {
        (0u32..1 << weights.len())
            .map(|mask| {
                weights.iter().enumerate().filter(|(index, _)| mask & (1 << index) != 0).map(|(_, w)| w).sum()
            })
            .filter(|total| *total <= f)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn the_chosen_nodes_hold_as_many_shards_as_can_be_lost_and_no_more() {
        let cases: [(&[usize], usize); 7] = [
            (&[3, 3, 3, 3], 3),
            (&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 3),
            (&[5, 4, 4, 4], 5),
            (&[2, 2, 3, 9, 1], 6),
            (&[7, 8, 9], 6),
            (&[0, 0, 4], 4),
            (&[10, 6, 5, 5, 3, 4], 11),
        ];
        for (weights, f) in cases {
            for seed in 0..20 {
                let chosen = choose(weights, f, &mut { seed });
                let total: usize = chosen.iter().map(|member| weights[*member]).sum();
                assert!(total <= f, "{weights:?} f={f}: {chosen:?} hold {total} shards");
                assert_eq!(total, best_total(weights, f), "{weights:?} f={f}: {chosen:?}");
                let mut distinct = chosen.clone();
                distinct.dedup();
                assert_eq!(distinct, chosen, "each node once");
                assert!(chosen.iter().all(|member| weights[*member] > 0), "no node without shards");
            }
        }
    }

    #[test]
    fn the_seed_decides_which_nodes() {
        let weights = [3, 3, 3, 3];
        let picks: Vec<Vec<usize>> = (0..40).map(|seed| choose(&weights, 3, &mut { seed })).collect();
        assert_eq!(picks, (0..40).map(|seed| choose(&weights, 3, &mut { seed })).collect::<Vec<_>>());
        let distinct: std::collections::BTreeSet<&Vec<usize>> = picks.iter().collect();
        assert_eq!(distinct.len(), 4, "every node is left out by some seed: {picks:?}");
    }
}

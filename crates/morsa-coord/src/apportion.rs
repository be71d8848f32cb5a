//! Shard apportionment for committee selection: how many shards each node gets for its stake
//! (D'Hondt with a per-node cap), and which shards, so that the fewest shards move between
//! epochs.
//!
//! Pure and deterministic: the same stakes and previous assignment always give the same
//! committee, so every replica of the coordinator selects the same one. Node `i` is always
//! position `i` of every slice here; mapping positions to node IDs is the caller's business.
//!
//! ```
//! use morsa_coord::apportion::{ApportionError, apportion, moved_shards};
//!
//! let genesis = apportion(10, &[1, 1, 1, 1], 10, &[])?;
//! assert_eq!(genesis.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2, 2]);
//! // A fifth node joins with the same stake: only the two nodes that must shrink give a shard.
//! let next = apportion(10, &[1, 1, 1, 1, 1], 10, &genesis)?;
//! assert_eq!(next.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2, 2, 2]);
//! assert_eq!(moved_shards(&genesis, &next), 2);
//! # Ok::<(), ApportionError>(())
//! ```
//!
//! # Why the movement is minimal
//!
//! Sanitise the previous assignment as [`assign_shards`] does (a shard outside `0..n` is
//! dropped; a shard listed more than once belongs to its first listing only). Let `h_i` be
//! the number of shards node `i` then held, `c_i` its new count (`0` for a node past the end
//! of `counts`) and `U` the shards nobody held.
//!
//! *Lower bound.* In any assignment with counts `c`, node `i` keeps at most `min(h_i, c_i)`
//! of its shards, so at least `max(0, h_i - c_i)` of them change owner. These sets are
//! disjoint (each shard had one owner), and every shard of `U` changes owner too (from nobody
//! to somebody). So at least `M = Σ max(0, h_i - c_i) + |U|` shards move.
//!
//! *The bound is reached.* [`assign_shards`] keeps exactly `min(h_i, c_i)` shards of every
//! node and moves only the others, so exactly `M` shards change owner, provided every node can
//! then be filled from the free shards. Those number `n - Σ min(h_i, c_i)`, and the nodes
//! still need `Σ (c_i - min(h_i, c_i)) = n - Σ min(h_i, c_i)` shards (as `Σ c_i = n`): the
//! same number, so the free pool fills every node exactly. A freed shard never returns to its
//! old owner, which already holds its full count, so it really moves and is counted once.

mod domains;
mod flow;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use morsa_core::ShardIndex;

pub use domains::{Candidate, DomainCounts, domain_shard_counts, max_faulty};

/// Why shards could not be apportioned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApportionError {
    /// No node has any stake, so there is nobody to give shards to.
    #[error("no node has stake: a committee needs at least one node with stake")]
    NoStake,
    /// The nodes with stake cannot hold every shard without going over the per-node cap.
    #[error(
        "{nodes_with_stake} nodes with stake, each capped at {max_per_node} shards, cannot hold \
         {n_shards} shards: raise the cap or add nodes with stake"
    )]
    CapTooLow {
        /// How many nodes have nonzero stake.
        nodes_with_stake: usize,
        /// The most shards one node may hold.
        max_per_node: u16,
        /// How many shards must be handed out.
        n_shards: u16,
    },
}

/// Shard counts per node by D'Hondt (highest averages: node `i`'s `k`-th seat has quotient
/// `stakes[i] / k`) with every node capped at `max_per_node` shards.
///
/// Nodes with zero stake get none. Ties are broken deterministically by the lower node index.
/// Exactly `n_shards` shards are handed out; the result has one count per node of `stakes`.
/// Quotients are compared exactly, as `stake_a * k_b` against `stake_b * k_a` in `u128`.
///
/// More stake never gets fewer shards: a node with more stake than another wins each of its
/// `k`-th seats before the other's `k`-th seat, and both share the same cap.
///
/// # Errors
///
/// [`ApportionError::NoStake`] if no node has stake, and [`ApportionError::CapTooLow`] if the
/// nodes with stake, at `max_per_node` shards each, cannot hold `n_shards`.
pub fn shard_counts(n_shards: u16, stakes: &[u64], max_per_node: u16) -> Result<Vec<u16>, ApportionError> {
    let nodes_with_stake = stakes.iter().filter(|&&stake| stake > 0).count();
    if nodes_with_stake == 0 {
        return Err(ApportionError::NoStake);
    }
    if nodes_with_stake.saturating_mul(usize::from(max_per_node)) < usize::from(n_shards) {
        return Err(ApportionError::CapTooLow { nodes_with_stake, max_per_node, n_shards });
    }

    let mut counts = vec![0u16; stakes.len()];
    // One entry per node below its cap: the quotient of the next seat it would win.
    let mut next_seats: BinaryHeap<NextSeat> = stakes
        .iter()
        .enumerate()
        .filter(|&(_, &stake)| stake > 0 && max_per_node > 0)
        .map(|(node, &stake)| NextSeat { stake, divisor: 1, node })
        .collect();
    for _ in 0..n_shards {
        let seat = next_seats.pop().expect("the cap check leaves room below the cap for every shard");
        counts[seat.node] += 1;
        if counts[seat.node] < max_per_node {
            next_seats.push(NextSeat { divisor: seat.divisor + 1, ..seat });
        }
    }
    Ok(counts)
}

/// Given the new `counts` and the `previous` assignment, keeps as many of every node's
/// previous shards as its new count allows and hands the rest out, moving the fewest shards.
///
/// `previous[i]` lists the shards node `i` held, in the same node order as `counts`; nodes new
/// to the committee have an empty list, and `previous` may be shorter than `counts` (or empty
/// at genesis). Nodes past the end of `counts` hold no shard afterwards.
///
/// Each node keeps its lowest previous shards, up to its new count. Every freed or
/// never-assigned shard then goes to the nodes that need more, in increasing shard and node
/// order. The result has one sorted list per node of `counts`, node `i` holding `counts[i]`
/// shards, and every shard of `0..n_shards` appears exactly once. The number of shards that
/// change owner is the minimum possible for these counts (see the [module docs](self)).
///
/// `previous` is not trusted: a shard outside `0..n_shards` is ignored, and a shard listed more
/// than once (by one node or several) belongs to its first listing only, as in
/// [`moved_shards`].
///
/// # Panics
///
/// If `counts` does not sum to `n_shards` (counts from [`shard_counts`] always do).
pub fn assign_shards(n_shards: u16, counts: &[u16], previous: &[Vec<ShardIndex>]) -> Vec<Vec<ShardIndex>> {
    let total: usize = counts.iter().map(|&count| usize::from(count)).sum();
    assert_eq!(total, usize::from(n_shards), "shard counts must sum to the number of shards");

    let owners = first_owners(usize::from(n_shards), previous);
    let mut assignment: Vec<Vec<ShardIndex>> =
        counts.iter().map(|&count| Vec::with_capacity(usize::from(count))).collect();
    // Shards ascending, so each node keeps its lowest previous shards.
    let mut free = Vec::new();
    for (shard, owner) in (0..n_shards).map(ShardIndex).zip(owners) {
        let keeper = owner.filter(|&node| {
            counts.get(node).is_some_and(|&count| assignment[node].len() < usize::from(count))
        });
        match keeper {
            Some(node) => assignment[node].push(shard),
            None => free.push(shard),
        }
    }

    // As many free shards as missing places (module docs), handed out in shard and node order.
    let mut free = free.into_iter();
    for (shards, &count) in assignment.iter_mut().zip(counts) {
        let missing = usize::from(count) - shards.len();
        shards.extend(free.by_ref().take(missing));
        shards.sort_unstable();
    }
    debug_assert!(free.next().is_none(), "every free shard found a node");
    assignment
}

/// Both steps: [`shard_counts`] from `stakes`, then [`assign_shards`] from `previous`.
///
/// # Errors
///
/// As [`shard_counts`].
pub fn apportion(
    n_shards: u16,
    stakes: &[u64],
    max_per_node: u16,
    previous: &[Vec<ShardIndex>],
) -> Result<Vec<Vec<ShardIndex>>, ApportionError> {
    let counts = shard_counts(n_shards, stakes, max_per_node)?;
    Ok(assign_shards(n_shards, &counts, previous))
}

/// How many shards change owner from `before` to `after` (same node order; a node missing
/// from either counts as holding nothing).
///
/// Counts the shards of `after` whose owner differs from their owner in `before`, including
/// shards nobody held before; a shard only in `before` has nowhere to move and is not counted.
/// A shard listed more than once belongs to its first listing, as in [`assign_shards`].
pub fn moved_shards(before: &[Vec<ShardIndex>], after: &[Vec<ShardIndex>]) -> usize {
    let len = after.iter().flatten().map(|shard| usize::from(shard.0) + 1).max().unwrap_or(0);
    let owners_before = first_owners(len, before);
    let owners_after = first_owners(len, after);
    owners_after
        .iter()
        .zip(&owners_before)
        .filter(|&(owner_after, owner_before)| owner_after.is_some() && owner_after != owner_before)
        .count()
}

/// The owner of every shard in `0..len`: the first node listing it, if any. Shards outside
/// `0..len` and repeated listings are ignored.
fn first_owners(len: usize, assignment: &[Vec<ShardIndex>]) -> Vec<Option<usize>> {
    let mut owners = vec![None; len];
    for (node, shards) in assignment.iter().enumerate() {
        for shard in shards {
            if let Some(owner @ None) = owners.get_mut(usize::from(shard.0)) {
                *owner = Some(node);
            }
        }
    }
    owners
}

/// A node's next D'Hondt seat: quotient `stake / divisor`, where `divisor` is one more than the
/// shards the node already won. The greatest seat wins: the highest quotient, then the lowest
/// node index.
struct NextSeat {
    stake: u64,
    divisor: u32,
    node: usize,
}

impl Ord for NextSeat {
    fn cmp(&self, other: &Self) -> Ordering {
        // a/ka against b/kb is a*kb against b*ka (ka, kb > 0), exact in u128: u64 * u32 fits.
        let lhs = u128::from(self.stake) * u128::from(other.divisor);
        let rhs = u128::from(other.stake) * u128::from(self.divisor);
        lhs.cmp(&rhs).then_with(|| other.node.cmp(&self.node))
    }
}

impl PartialOrd for NextSeat {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NextSeat {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NextSeat {}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(indices: &[u16]) -> Vec<ShardIndex> {
        indices.iter().copied().map(ShardIndex).collect()
    }

    #[test]
    fn counts_table() {
        let cases: &[(u16, &[u64], u16, &[u16])] = &[
            // Equal stakes: the remainder goes to the lowest node indices.
            (10, &[1, 1, 1, 1], 10, &[3, 3, 2, 2]),
            // Zero stake gets nothing; 2:1 stake gives 2:1 shards, then ties favour node 0.
            (9, &[100, 0, 50], 9, &[6, 0, 3]),
            (10, &[100, 0, 50], 10, &[7, 0, 3]),
            // The textbook example: 8 seats, votes 100k, 80k, 30k, 20k.
            (8, &[100_000, 80_000, 30_000, 20_000], 8, &[4, 3, 1, 0]),
            // A whale capped at 4; the other 6 are apportioned among the rest by D'Hondt,
            // with a three-way tie at quotient 10 (30/3, 20/2, 10/1) taken in node order.
            (10, &[1000, 10, 10, 10], 4, &[4, 2, 2, 2]),
            (10, &[1000, 30, 20, 10], 4, &[4, 3, 2, 1]),
            // The cap exactly fills: everybody with stake gets the cap, whatever the stake.
            (9, &[1000, 1, 0, 1], 3, &[3, 3, 0, 3]),
            // Stakes near u64::MAX compare exactly (floats would call these equal).
            (3, &[u64::MAX, u64::MAX - 1], 3, &[2, 1]),
            (0, &[5, 7], 0, &[0, 0]),
            (1, &[0, 0, 3], 1, &[0, 0, 1]),
        ];
        for &(n_shards, stakes, cap, expected) in cases {
            assert_eq!(
                shard_counts(n_shards, stakes, cap).as_deref(),
                Ok(expected),
                "n = {n_shards}, stakes = {stakes:?}, cap = {cap}"
            );
        }
    }

    #[test]
    fn no_stake_is_an_error() {
        assert_eq!(shard_counts(10, &[], 10), Err(ApportionError::NoStake));
        assert_eq!(shard_counts(10, &[0, 0, 0], 10), Err(ApportionError::NoStake));
        assert_eq!(apportion(10, &[0, 0], 10, &[]), Err(ApportionError::NoStake));
    }

    #[test]
    fn cap_too_low_is_an_error_counting_only_nodes_with_stake() {
        let too_low = ApportionError::CapTooLow { nodes_with_stake: 3, max_per_node: 3, n_shards: 10 };
        assert_eq!(shard_counts(10, &[5, 5, 0, 5], 3), Err(too_low.clone()));
        assert_eq!(apportion(10, &[5, 5, 0, 5], 3, &[]), Err(too_low));
        assert!(matches!(shard_counts(1, &[5], 0), Err(ApportionError::CapTooLow { .. })));
        assert_eq!(shard_counts(10, &[5, 5, 0, 5, 1], 3), Ok(vec![3, 3, 0, 3, 1]));
    }

    #[test]
    fn genesis_hands_out_shards_in_node_order() {
        assert_eq!(
            assign_shards(6, &[2, 0, 3, 1], &[]),
            [shards(&[0, 1]), shards(&[]), shards(&[2, 3, 4]), shards(&[5])]
        );
    }

    #[test]
    fn nodes_keep_their_lowest_shards_and_the_freed_ones_fill_the_rest() {
        let previous = [shards(&[5, 0, 3]), shards(&[1, 2]), shards(&[4])];
        // Node 0 shrinks to 2 and keeps 0 and 3; node 1 keeps both; node 2 is gone; node 3
        // is new and takes the freed shards 4 and 5.
        let after = assign_shards(6, &[2, 2, 0, 2], &previous);
        assert_eq!(after, [shards(&[0, 3]), shards(&[1, 2]), shards(&[]), shards(&[4, 5])]);
        assert_eq!(moved_shards(&previous, &after), 2);
    }

    #[test]
    fn malformed_previous_is_not_trusted() {
        // Shard 9 is out of range; shard 1 is claimed twice by node 0 and again by node 1.
        let previous = [shards(&[1, 1, 9]), shards(&[1, 2]), shards(&[2, 3])];
        let after = assign_shards(4, &[2, 1, 1], &previous);
        assert_eq!(after, [shards(&[0, 1]), shards(&[2]), shards(&[3])]);
        // Only shard 0, which nobody held, changes owner.
        assert_eq!(moved_shards(&previous, &after), 1);
    }

    #[test]
    #[should_panic(expected = "shard counts must sum")]
    fn counts_that_do_not_sum_to_n_are_refused() {
        let _ = assign_shards(5, &[2, 2], &[]);
    }

    #[test]
    fn moved_shards_counts_new_owners_only() {
        let before = [shards(&[0, 1]), shards(&[2])];
        assert_eq!(moved_shards(&before, &before), 0);
        assert_eq!(moved_shards(&[], &before), 3);
        assert_eq!(moved_shards(&before, &[]), 0);
        assert_eq!(moved_shards(&before, &[shards(&[0]), shards(&[1, 2])]), 1);
        assert_eq!(moved_shards(&before, &[shards(&[]), shards(&[]), shards(&[0, 1, 2])]), 3);
    }

    #[test]
    fn the_largest_committee_is_apportioned() {
        let stakes: Vec<u64> = (1..=3000).map(|node| node * 1_000_003 % 7919).collect();
        let genesis = apportion(u16::MAX, &stakes, 100, &[]).unwrap();
        assert_eq!(genesis.iter().map(Vec::len).sum::<usize>(), usize::from(u16::MAX));
        let mut stakes = stakes;
        stakes[0] += 1000;
        let next = apportion(u16::MAX, &stakes, 100, &genesis).unwrap();
        assert!(moved_shards(&genesis, &next) > 0);
    }
}

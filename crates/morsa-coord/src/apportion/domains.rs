//! Failure domains: shard counts by stake (D'Hondt) under caps per node, per zone and per
//! operator, so that, where the candidates allow it, no zone and no operator holds more than
//! `f = (n - 1) / 3` shards, the most the code tolerates losing.
//!
//! The caps are feasible when a flow network `source → zone (cap) → node (cap) → operator
//! (cap) → sink` carries all `n` shards (each node has one zone and one operator, so every
//! count vector within the caps is such a flow and back). When the cap `f` is infeasible the
//! smallest feasible zone cap is found first, then the smallest operator cap under it (zones
//! first: a data centre burning down is the failure most likely to take several nodes at
//! once). The seats are then won in D'Hondt order, skipping any seat after which the caps
//! could no longer be met by the seats still to come; with caps that cannot bind this is
//! exactly [`super::shard_counts`].

use std::collections::BinaryHeap;

use super::flow::FlowGraph;
use super::{ApportionError, NextSeat};

/// A node standing for the committee, with its failure domains as small integers (the
/// caller maps zone names and operator accounts to them; equal numbers, same domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Stake with the node; no stake, no shards.
    pub stake: u64,
    /// Its zone.
    pub zone: usize,
    /// Its operator.
    pub operator: usize,
}

/// Shard counts with the domain caps they were computed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainCounts {
    /// Shards per candidate, in the candidates' order; they sum to `n_shards`.
    pub counts: Vec<u16>,
    /// `f = (n - 1) / 3`: the cap aimed at.
    pub f: u16,
    /// The cap applied to every zone: `f`, or the smallest feasible cap above it.
    pub zone_cap: u16,
    /// The cap applied to every operator: `f`, or the smallest feasible cap above it.
    pub operator_cap: u16,
}

impl DomainCounts {
    /// Whether no zone and no operator holds more than `f` shards.
    pub fn caps_met(&self) -> bool {
        self.zone_cap <= self.f && self.operator_cap <= self.f
    }
}

/// `f` for `n` shards: the most shards that may be lost (`(n - 1) / 3`, 0 for no shards).
pub fn max_faulty(n_shards: u16) -> u16 {
    n_shards.saturating_sub(1) / 3
}

/// Shard counts by D'Hondt under the per-node cap `max_per_node` and the domain caps: `f` for
/// every zone and operator where the candidates allow it, else the smallest feasible zone cap
/// and then the smallest feasible operator cap under it. Seats go in D'Hondt order, skipping
/// a seat after which the remaining seats could not be placed within the caps.
///
/// # Errors
///
/// As [`super::shard_counts`]: no candidate with stake, or node caps too low for `n_shards`.
pub fn domain_shard_counts(
    n_shards: u16,
    candidates: &[Candidate],
    max_per_node: u16,
) -> Result<DomainCounts, ApportionError> {
    let stakes: Vec<u64> = candidates.iter().map(|candidate| candidate.stake).collect();
    // The checks (and, when no domain cap can bind, the answer) of plain D'Hondt.
    let plain = super::shard_counts(n_shards, &stakes, max_per_node)?;
    let f = max_faulty(n_shards);
    let problem = Problem::new(n_shards, candidates, max_per_node);
    let zone_cap = problem.smallest_cap(f, |cap| (cap, n_shards));
    let operator_cap = problem.smallest_cap(f, |cap| (zone_cap, cap));
    let counts = if problem.caps_can_bind(zone_cap, operator_cap) {
        problem.counts(zone_cap, operator_cap)
    } else {
        plain
    };
    Ok(DomainCounts { counts, f, zone_cap, operator_cap })
}

/// The candidates as the flow network sees them.
struct Problem<'a> {
    n_shards: u16,
    candidates: &'a [Candidate],
    /// Per candidate: `max_per_node` if it has stake, else 0.
    node_caps: Vec<u16>,
    zones: usize,
    operators: usize,
}

impl<'a> Problem<'a> {
    fn new(n_shards: u16, candidates: &'a [Candidate], max_per_node: u16) -> Self {
        let node_caps =
            candidates.iter().map(|candidate| if candidate.stake > 0 { max_per_node } else { 0 }).collect();
        let zones = candidates.iter().map(|candidate| candidate.zone + 1).max().unwrap_or(0);
        let operators = candidates.iter().map(|candidate| candidate.operator + 1).max().unwrap_or(0);
        Self { n_shards, candidates, node_caps, zones, operators }
    }

    /// The smallest cap in `f..=n` for which `caps(cap)` (zone cap, operator cap) lets every
    /// shard be placed; `n` if none (node caps alone then decide, and they were checked).
    fn smallest_cap(&self, f: u16, caps: impl Fn(u16) -> (u16, u16)) -> u16 {
        let (mut low, mut high) = (f, self.n_shards);
        // Feasibility only grows with the cap: binary search for the first feasible one.
        while low < high {
            let middle = low + (high - low) / 2;
            let (zone_cap, operator_cap) = caps(middle);
            if self.completable(&vec![0; self.candidates.len()], zone_cap, operator_cap) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    }

    /// Whether some zone or operator could, at full node caps, go over its cap.
    fn caps_can_bind(&self, zone_cap: u16, operator_cap: u16) -> bool {
        let mut zone_room = vec![0u32; self.zones];
        let mut operator_room = vec![0u32; self.operators];
        for (candidate, &cap) in self.candidates.iter().zip(&self.node_caps) {
            zone_room[candidate.zone] += u32::from(cap);
            operator_room[candidate.operator] += u32::from(cap);
        }
        zone_room.iter().any(|&room| room > u32::from(zone_cap))
            || operator_room.iter().any(|&room| room > u32::from(operator_cap))
    }

    /// D'Hondt seat by seat, each seat going to the best quotient whose node can take it
    /// without making the remaining seats impossible to place.
    fn counts(&self, zone_cap: u16, operator_cap: u16) -> Vec<u16> {
        let mut counts = vec![0u16; self.candidates.len()];
        let mut next_seats: BinaryHeap<NextSeat> = self
            .candidates
            .iter()
            .enumerate()
            .filter(|&(node, _)| self.node_caps[node] > 0)
            .map(|(node, candidate)| NextSeat { stake: candidate.stake, divisor: 1, node })
            .collect();
        let mut placed = 0;
        while placed < self.n_shards {
            let Some(seat) = next_seats.pop() else { break };
            counts[seat.node] += 1;
            if self.completable(&counts, zone_cap, operator_cap) {
                placed += 1;
                if counts[seat.node] < self.node_caps[seat.node] {
                    next_seats.push(NextSeat { divisor: seat.divisor + 1, ..seat });
                }
            } else {
                // More seats only tighten the caps: this node can take no further seat.
                counts[seat.node] -= 1;
            }
        }
        debug_assert_eq!(placed, self.n_shards, "the caps were checked feasible before the first seat");
        counts
    }

    /// Whether `counts` (within every cap) can grow, within the caps, to `n_shards` in all.
    fn completable(&self, counts: &[u16], zone_cap: u16, operator_cap: u16) -> bool {
        let mut zone_used = vec![0u64; self.zones];
        let mut operator_used = vec![0u64; self.operators];
        for (candidate, &count) in self.candidates.iter().zip(counts) {
            zone_used[candidate.zone] += u64::from(count);
            operator_used[candidate.operator] += u64::from(count);
        }
        let over = |used: &[u64], cap: u16| used.iter().any(|&used| used > u64::from(cap));
        if counts.iter().zip(&self.node_caps).any(|(count, cap)| count > cap)
            || over(&zone_used, zone_cap)
            || over(&operator_used, operator_cap)
        {
            return false;
        }
        let placed: u64 = counts.iter().map(|&count| u64::from(count)).sum();
        let wanted = u64::from(self.n_shards).saturating_sub(placed);
        if wanted == 0 {
            return true;
        }
        // Vertices: source, zones, nodes, operators, sink.
        let (source, first_zone) = (0, 1);
        let first_node = first_zone + self.zones;
        let first_operator = first_node + self.candidates.len();
        let sink = first_operator + self.operators;
        let mut graph = FlowGraph::new(sink + 1);
        for (zone, used) in zone_used.iter().enumerate() {
            graph.add_edge(source, first_zone + zone, u64::from(zone_cap) - used);
        }
        for (node, candidate) in self.candidates.iter().enumerate() {
            let room = u64::from(self.node_caps[node] - counts[node]);
            if room > 0 {
                graph.add_edge(first_zone + candidate.zone, first_node + node, room);
                graph.add_edge(first_node + node, first_operator + candidate.operator, room);
            }
        }
        for (operator, used) in operator_used.iter().enumerate() {
            graph.add_edge(first_operator + operator, sink, u64::from(operator_cap) - used);
        }
        graph.max_flow(source, sink, wanted) == wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(stake: u64, zone: usize, operator: usize) -> Candidate {
        Candidate { stake, zone, operator }
    }

    #[test]
    fn a_heavy_zone_is_held_to_f_and_the_rest_go_elsewhere() {
        // n = 10, f = 3. Zone 0 holds most of the stake over two nodes; four other zones.
        let candidates = [
            candidate(1000, 0, 0),
            candidate(1000, 0, 1),
            candidate(10, 1, 2),
            candidate(10, 2, 3),
            candidate(10, 3, 4),
            candidate(10, 4, 5),
        ];
        let counts = domain_shard_counts(10, &candidates, 10).unwrap();
        assert!(counts.caps_met());
        assert_eq!(counts.counts, [2, 1, 2, 2, 2, 1]);
    }

    #[test]
    fn a_greedy_seat_that_would_block_the_rest_is_skipped() {
        // n = 4, f = 1: four seats of at most one per zone and per operator. Node 0 (best
        // stake) shares zone 0 with node 1 and operator 0 with node 2; taking node 0 leaves
        // only node 3 placeable, so node 0 must yield.
        let candidates = [
            candidate(100, 0, 0),
            candidate(50, 0, 1),
            candidate(50, 1, 0),
            candidate(10, 2, 2),
            candidate(10, 3, 3),
        ];
        let counts = domain_shard_counts(4, &candidates, 4).unwrap();
        assert!(counts.caps_met());
        assert_eq!(counts.counts, [0, 1, 1, 1, 1]);
    }

    #[test]
    fn three_zones_cannot_meet_f_and_the_best_cap_is_reported() {
        // n = 10, f = 3: three zones must hold at least 4 somewhere.
        let candidates: Vec<Candidate> = (0..9).map(|node| candidate(100, node % 3, node)).collect();
        let counts = domain_shard_counts(10, &candidates, 10).unwrap();
        assert!(!counts.caps_met());
        assert_eq!((counts.f, counts.zone_cap, counts.operator_cap), (3, 4, 3));
        let mut per_zone = [0; 3];
        for (node, count) in counts.counts.iter().enumerate() {
            per_zone[node % 3] += count;
        }
        assert!(per_zone.iter().all(|&shards| shards <= 4), "{per_zone:?}");
    }

    #[test]
    fn caps_that_cannot_bind_give_plain_dhondt() {
        let candidates: Vec<Candidate> =
            [5, 9, 1, 7, 3].iter().enumerate().map(|(node, &stake)| candidate(stake, node, node)).collect();
        let stakes: Vec<u64> = candidates.iter().map(|candidate| candidate.stake).collect();
        let counts = domain_shard_counts(13, &candidates, 4).unwrap();
        assert_eq!(counts.counts, super::super::shard_counts(13, &stakes, 4).unwrap());
        assert!(counts.caps_met());
    }
}

//! Choosing which requests to send: greedily by score, each pick counted as load on its node;
//! near ties go to preferred candidates, then to the better of two random ones, where
//! "better" gives the less known node the benefit of the doubt: its score less its spread.
//! A node just heard from again after a silence (one fresh sample, a wide spread) is then
//! taken back even if that one sample was a little slower than the others' averages; the worst
//! of a set of near ties would otherwise never win a draw.

use std::collections::HashMap;

use morsa_core::NodeId;
use rand::Rng;

use super::{Estimate, NodeScores, TIE_MARGIN, TIE_SLACK};

/// A request the caller could send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The node it goes to.
    pub node: NodeId,
    /// The node's zone, if the committee says.
    pub zone: Option<&'a str>,
    /// The bytes its answer carries.
    pub bytes: u64,
    /// Preferred among near ties (a systematic sliver: no decoding needed).
    pub preferred: bool,
}

impl NodeScores {
    /// Up to `count` of `candidates`, as indices, best first (see the module docs).
    pub fn choose(&self, candidates: &[Candidate<'_>], count: usize) -> Vec<usize> {
        self.choose_with(candidates, count, &mut rand::rng())
    }

    /// [`NodeScores::choose`] with the random choices drawn from `rng`.
    pub fn choose_with(&self, candidates: &[Candidate<'_>], count: usize, rng: &mut impl Rng) -> Vec<usize> {
        let estimates: Vec<Estimate> =
            candidates.iter().map(|candidate| self.estimate(&candidate.node, candidate.zone)).collect();
        let typical = super::median(estimates.iter().filter_map(Estimate::measured_bandwidth).collect());
        let mut planned: HashMap<NodeId, u32> = HashMap::new();
        let mut left: Vec<usize> = (0..candidates.len()).collect();
        let mut chosen = Vec::with_capacity(count.min(candidates.len()));
        while chosen.len() < count && !left.is_empty() {
            let scored: Vec<(usize, std::time::Duration)> = left
                .iter()
                .map(|index| {
                    let candidate = &candidates[*index];
                    let queued = planned.get(&candidate.node).copied().unwrap_or(0);
                    (*index, estimates[*index].score_among(candidate.bytes, queued, typical))
                })
                .collect();
            let best = scored.iter().map(|(_, score)| *score).min().unwrap_or_default();
            let bound = best.mul_f64(1.0 + TIE_MARGIN).max(best + TIE_SLACK);
            let mut ties: Vec<(usize, std::time::Duration)> =
                scored.into_iter().filter(|(_, score)| *score <= bound).collect();
            if ties.iter().any(|(index, _)| candidates[*index].preferred) {
                ties.retain(|(index, _)| candidates[*index].preferred);
            }
            let pick = match ties.len() {
                0 => break,
                1 => ties[0].0,
                len => {
                    let first = rng.random_range(0..len);
                    let second = (first + rng.random_range(1..len)) % len;
                    let hopeful = |(index, score): (usize, std::time::Duration)| {
                        (score.saturating_sub(estimates[index].spread_duration()), index)
                    };
                    hopeful(ties[first]).min(hopeful(ties[second])).1
                }
            };
            *planned.entry(candidates[pick].node).or_default() += 1;
            left.retain(|index| *index != pick);
            chosen.push(pick);
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn node(byte: u8) -> NodeId {
        NodeId([byte; 32])
    }

    fn candidate(byte: u8, preferred: bool) -> Candidate<'static> {
        Candidate { node: node(byte), zone: None, bytes: 256 * 1024, preferred }
    }

    /// Scores where nodes 1..=4 answer in 1 ms and 5 in 120 ms.
    fn measured() -> NodeScores {
        let scores = NodeScores::new(None);
        for _ in 0..8 {
            for byte in 1..=4 {
                scores.record(&node(byte), Duration::from_millis(1), 100);
            }
            scores.record(&node(5), Duration::from_millis(120), 100);
        }
        scores
    }

    #[test]
    fn slow_nodes_come_last_and_preferred_candidates_win_near_ties() {
        let scores = measured();
        let mut rng = StdRng::seed_from_u64(7);
        // The slow node holds the only preferred candidate: preference does not beat speed.
        let candidates = [candidate(5, true), candidate(1, false), candidate(2, true), candidate(3, false)];
        let order = scores.choose_with(&candidates, 4, &mut rng);
        assert_eq!(order[0], 2, "the fast preferred candidate first");
        assert_eq!(order[3], 0, "the slow node last, preferred or not");
    }

    #[test]
    fn each_pick_counts_as_load_on_its_node() {
        let scores = measured();
        let mut rng = StdRng::seed_from_u64(1);
        // Node 1 offers four candidates, node 2 one: after a few picks of node 1 its queue
        // makes node 2 better.
        let mut candidates = vec![candidate(1, false); 4];
        candidates.push(candidate(2, false));
        let order = scores.choose_with(&candidates, 3, &mut rng);
        assert!(order.contains(&4), "node 2 is among the first three: {order:?}");
    }

    #[test]
    fn two_random_choices_spread_requests_over_equal_nodes() {
        let scores = measured();
        let mut rng = StdRng::seed_from_u64(3);
        let candidates: Vec<Candidate<'_>> = (1..=4).map(|byte| candidate(byte, false)).collect();
        let firsts: HashSet<usize> =
            (0..50).map(|_| scores.choose_with(&candidates, 1, &mut rng)[0]).collect();
        assert!(firsts.len() >= 3, "equal nodes all get picked first sometimes: {firsts:?}");
        let slow = [candidate(5, false), candidate(1, false)];
        assert!((0..20).all(|_| scores.choose_with(&slow, 1, &mut rng) == [1]), "never the slow one first");
    }
}

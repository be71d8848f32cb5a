//! Starvation: readers ask the best-scored nodes, so a node that is not asked must still be
//! offered for a probe ([`NodeScores::stalest`]), or it would never be found to have
//! recovered. Every reader of nodes (sliver and metadata fetches, repair sources) relies on it.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn node(byte: u8) -> NodeId {
    NodeId([byte; 32])
}

fn candidate(byte: u8) -> Candidate<'static> {
    Candidate { node: node(byte), zone: None, bytes: 64 * 1024, preferred: false }
}

/// Nodes 1 and 2 measured fast just now; node 3 measured slow `silent_ms` ago (as a saved
/// estimate); node 4 never measured.
fn scores_with_a_silent_slow_node(silent_ms: u64) -> NodeScores {
    let scores = NodeScores::new(None);
    for _ in 0..20 {
        scores.record(&node(1), Duration::from_millis(2), 100);
        scores.record(&node(2), Duration::from_millis(2), 100);
    }
    let mut slow = Estimate::prior(None);
    for _ in 0..20 {
        slow.observe(Duration::from_millis(400), 100, wall_clock_ms() - silent_ms);
    }
    scores.absorb(SavedScores { version: 1, nodes: vec![(node(3), slow)] }, wall_clock_ms());
    scores
}

#[test]
fn every_node_left_alone_is_offered_for_a_probe_and_a_recovered_one_is_taken_back() {
    let scores = scores_with_a_silent_slow_node(2 * STALE_AFTER_MS);
    let all = [node(1), node(2), node(3), node(4)];
    let mut rng = StdRng::seed_from_u64(5);
    let candidates = [candidate(1), candidate(2), candidate(3)];
    assert!(
        (0..50).all(|_| scores.choose_with(&candidates, 1, &mut rng) != [2]),
        "while its estimate is slow, node 3 is never chosen"
    );
    // A reader probes what `stalest` names, one node per read; both the never-measured node
    // and the silent slow one come up, each once, the never-measured one first.
    let mut probed = Vec::new();
    while let Some(stale) = scores.stalest(all) {
        assert!(!probed.contains(&stale), "{stale:?} probed twice: {probed:?}");
        probed.push(stale);
        // Node 3 has recovered: it answers as fast as the others.
        scores.record(&stale, Duration::from_millis(2), 100);
        assert!(probed.len() <= all.len(), "probes end once every node was heard from");
    }
    assert_eq!(probed, [node(4), node(3)]);
    // One fresh sample replaces the slow average: node 3 is a near tie again.
    let firsts: Vec<usize> = (0..50).map(|_| scores.choose_with(&candidates, 1, &mut rng)[0]).collect();
    assert!(firsts.contains(&2), "the recovered node is chosen again: {firsts:?}");
}

#[test]
fn no_probe_while_nothing_is_measured_nor_of_a_node_in_flight_or_heard_from_lately() {
    let blind = NodeScores::new(None);
    assert_eq!(blind.stalest([node(1), node(2)]), None, "a blind caller learns from its own requests");
    let scores = scores_with_a_silent_slow_node(STALE_AFTER_MS / 2);
    assert_eq!(scores.stalest([node(1), node(2), node(3)]), None, "node 3 was heard from lately");
    let scores = Arc::new(scores_with_a_silent_slow_node(2 * STALE_AFTER_MS));
    let call = scores.start(node(3));
    assert_eq!(scores.stalest([node(1), node(2), node(3)]), None, "a probe of node 3 is out already");
    call.answered(100);
    assert_eq!(scores.stalest([node(1), node(2), node(3)]), None, "its answer is a fresh sample");
}

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

/// Nodes 1-3 fast (1 ms, 200 MB/s), node 4 as near but thin (2.5 MB/s, measured `silent_ms`
/// ago), nodes 5-7 at 60 ms: the bench's cluster.
fn scores_with_a_thin_node(silent_ms: u64) -> NodeScores {
    let scores = NodeScores::new(None);
    for byte in (1..=3).chain(5..=7) {
        let latency = if byte < 4 { 1 } else { 60 };
        for _ in 0..8 {
            scores.record(&node(byte), Duration::from_millis(latency), 100);
        }
        scores.record_transfer(&node(byte), 1 << 20, Duration::from_millis(5));
    }
    let mut thin = Estimate::prior(None);
    for _ in 0..8 {
        thin.observe(Duration::from_millis(1), 100, wall_clock_ms() - silent_ms);
    }
    thin.observe_transfer(1 << 20, Duration::from_millis(420));
    scores.absorb(SavedScores { version: 1, nodes: vec![(node(4), thin)] }, wall_clock_ms());
    scores
}

/// How many of the 15 slivers a 1 MiB read asks for first (four slivers of 75 kB per node)
/// go to node 4, over 20 draws: the most.
fn most_asked_of_the_thin_node(scores: &NodeScores) -> usize {
    let candidates: Vec<Candidate<'_>> = (1..=7)
        .flat_map(|byte| {
            (0..4).map(move |_| Candidate { node: node(byte), zone: None, bytes: 75_000, preferred: false })
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(11);
    (0..20)
        .map(|_| {
            let chosen = scores.choose_with(&candidates, 15, &mut rng);
            chosen.iter().filter(|index| candidates[**index].node == node(4)).count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn a_thin_link_is_asked_for_what_it_can_send_in_time_even_after_a_silence() {
    let scores = scores_with_a_thin_node(0);
    // One transfer of 30 ms, or two in 60 ms, beat a 60 ms node; three do not.
    assert!(most_asked_of_the_thin_node(&scores) <= 2, "a thin link is one queue");
    // A silence, then the small answer of a probe: the latency is the probe's, the link still
    // the one measured.
    let scores = scores_with_a_thin_node(2 * STALE_AFTER_MS);
    scores.record(&node(4), Duration::from_millis(2), 2_800);
    assert!(scores.estimate(&node(4), None).bandwidth.is_some_and(|rate| rate < 3e6));
    assert!(most_asked_of_the_thin_node(&scores) <= 2, "the probe did not make the link wide");
}

/// The zone prior: before any answer, a caller in zone `a` asks its own zone's node first,
/// then one of unknown zone, then one in another zone; a request out to the near node does
/// not make it forget its prior; the first answers replace the prior, whatever the zones say.
#[test]
fn the_zone_prior_picks_unmeasured_nodes_and_measurement_overrides_it() {
    let scores = Arc::new(NodeScores::new(Some("a".to_owned())));
    let candidates = [
        Candidate { node: node(1), zone: Some("b"), bytes: 64 * 1024, preferred: true },
        Candidate { node: node(2), zone: None, bytes: 64 * 1024, preferred: false },
        Candidate { node: node(3), zone: Some("a"), bytes: 64 * 1024, preferred: false },
    ];
    let mut rng = StdRng::seed_from_u64(9);
    // The systematic sliver of the far node does not win: 60 ms is no near tie of 2 ms.
    assert_eq!(scores.choose_with(&candidates, 3, &mut rng), [2, 1, 0]);
    let priors: Vec<ZonePrior> =
        candidates.iter().map(|candidate| scores.inputs(&candidate.node, candidate.zone, 0).prior).collect();
    assert_eq!(priors, [ZonePrior::OtherZone, ZonePrior::Unknown, ZonePrior::SameZone]);

    // Asked (nothing measured yet): still the near prior, not the unknown one.
    let call = scores.start(node(3));
    assert_eq!(
        scores.estimate(&node(3), Some("a")),
        Estimate { in_flight: 1, ..Estimate::prior(Some(true)) }
    );
    // It answers slowly: measured, it goes behind the unmeasured node of unknown zone.
    drop(call);
    for _ in 0..4 {
        scores.record(&node(3), Duration::from_millis(300), 100);
    }
    assert_eq!(scores.choose_with(&candidates, 3, &mut rng), [1, 0, 2]);
    assert_eq!(scores.inputs(&node(3), Some("a"), 0).prior, ZonePrior::SameZone, "shown, no longer used");

    // A caller without a zone knows no node near or far.
    scores.set_zone(None);
    assert_eq!(scores.zone_prior(Some("a")), ZonePrior::Unknown);
    assert_eq!(ZonePrior::of(Some("a"), Some("b")), ZonePrior::OtherZone);
    assert!(ZonePrior::SameZone.latency_ms() < ZonePrior::Unknown.latency_ms());
    assert!(ZonePrior::Unknown.latency_ms() < ZonePrior::OtherZone.latency_ms());
}

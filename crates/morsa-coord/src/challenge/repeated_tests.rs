//! Repeated failure below 50%, auditors that never report, and the bounded history of
//! outcomes, through the real `apply` with every signature verified.

use morsa_core::{Epoch, NodeId};

use super::tests::{audit, finish_epoch_reporting, in_epoch_two, next_round};
use super::{HISTORY_EPOCHS, REPEATED_FAILURE_EPOCHS};

#[test]
fn failing_five_percent_in_consecutive_epochs_removes_a_node_and_a_clean_epoch_ends_the_run() {
    let mut fixture = in_epoch_two();
    let lossy = fixture.node_id(0);
    let fails_every_tenth = |target: &NodeId, item: usize| *target != lossy || !item.is_multiple_of(10);
    // One failing epoch, a clean one, then failing ones until the rule removes the node.
    finish_epoch_reporting(&mut fixture, fails_every_tenth);
    let first = fixture.state.challenges.last_epoch[&lossy];
    assert!((50_000..500_000).contains(&first.phi_ppm), "{first:?}");
    assert_eq!((first.failing_epochs, first.removed), (1, false));
    finish_epoch_reporting(&mut fixture, |_, _| true);
    let clean = fixture.state.challenges.last_epoch[&lossy];
    assert_eq!((clean.failing_epochs, clean.removed, clean.penalty), (0, false, 0));
    for run in 1..=REPEATED_FAILURE_EPOCHS {
        finish_epoch_reporting(&mut fixture, fails_every_tenth);
        let outcome = fixture.state.challenges.last_epoch[&lossy];
        assert!(outcome.phi_ppm < 500_000 && outcome.penalty > 0, "{outcome:?}");
        assert_eq!(outcome.failing_epochs, run);
        assert_eq!(outcome.removed, run == REPEATED_FAILURE_EPOCHS, "{outcome:?}");
    }
    let selection = fixture.state.selection_due_ms();
    fixture.advance_to(selection);
    let next = fixture.state.next_committee.clone().expect("selected");
    assert!(next.member_by_node(&lossy).is_none(), "repeated failure leaves the node out");
    for other in (1..4).map(|index| fixture.node_id(index)) {
        assert!(next.member_by_node(&other).is_some());
        assert_eq!(fixture.state.challenges.last_epoch[&other].failing_epochs, 0);
    }
}

#[test]
fn an_auditor_that_never_reports_is_struck_and_its_target_loses_nothing() {
    let mut fixture = in_epoch_two();
    let round = next_round(&mut fixture);
    let (skipped, challenged) = round.targets.iter().next().map(|(node, t)| (*node, t.clone())).unwrap();
    let lazy = challenged.auditor;
    for (target, other) in &round.targets {
        if *target != skipped {
            let results = vec![true; other.items.len()];
            let report = audit(&fixture, fixture.node_index(&other.auditor), &round, target, results);
            fixture.submit(report).expect("the audit");
        }
    }
    let stake = fixture.state.nodes[&lazy].stake;
    let supply = fixture.state.total_supply();
    // The next round closes this one with the skipped audit missing.
    next_round(&mut fixture);
    let tallies = &fixture.state.challenges.tallies;
    assert_eq!((tallies[&lazy].strikes, tallies[&lazy].missed_audits), (1, 1));
    assert_eq!(tallies[&skipped].unaudited, u64::try_from(challenged.items.len()).unwrap());
    finish_epoch_reporting(&mut fixture, |_, _| true);
    let outcomes = &fixture.state.challenges.last_epoch;
    assert_eq!((outcomes[&lazy].tally.missed_audits, outcomes[&lazy].penalty), (1, stake / 100));
    assert_eq!(fixture.state.nodes[&lazy].stake, stake - stake / 100);
    let target = outcomes[&skipped];
    assert_eq!((target.withheld, target.penalty, target.tally.failed), (0, 0, 0));
    for (node, outcome) in outcomes.iter().filter(|(node, _)| **node != lazy) {
        assert_eq!(outcome.tally.strikes, 0, "{node}: {outcome:?}");
    }
    assert_eq!(fixture.state.total_supply(), supply);
}

#[test]
fn each_node_keeps_the_outcomes_of_its_last_epochs_oldest_first() {
    let mut fixture = in_epoch_two();
    // Blobs stored for the whole test, challenged from epoch 3 on (the fixture's expire at 11).
    fixture.store_blobs(&[3000, 5000], 2, 30);
    let node = fixture.node_id(1);
    // The epochs the node served, read from each committee before its epoch is settled; run
    // until it served one more than the history keeps.
    let mut served: Vec<Epoch> = Vec::new();
    for _ in 0..4 * HISTORY_EPOCHS {
        if served.len() > HISTORY_EPOCHS {
            break;
        }
        if fixture.state.committee.member_by_node(&node).is_some() {
            served.push(fixture.state.epoch);
        }
        finish_epoch_reporting(&mut fixture, |_, _| true);
    }
    assert!(served.len() > HISTORY_EPOCHS, "node 1 served only {served:?}");
    let history = &fixture.state.challenges.history[&node];
    let expected = &served[served.len() - HISTORY_EPOCHS..];
    assert_eq!(history.iter().map(|outcome| outcome.epoch).collect::<Vec<_>>(), expected);
    if served.last() == Some(&Epoch(fixture.state.epoch.0 - 1)) {
        assert_eq!(history.back(), fixture.state.challenges.last_epoch.get(&node));
    }
    assert!(history.iter().all(|outcome| outcome.tally.passed > 0 && outcome.penalty == 0), "{history:#?}");
    // The API's record and the metrics say the same.
    let record = fixture.state.node_challenges(node);
    let listed: Vec<(Epoch, u64, u64)> =
        record.history.iter().map(|outcome| (outcome.epoch, outcome.passed, outcome.reward)).collect();
    let kept: Vec<(Epoch, u64, u64)> =
        history.iter().map(|outcome| (outcome.epoch, outcome.tally.passed, outcome.reward)).collect();
    assert_eq!(listed, kept);
    assert_eq!(record.member, fixture.state.committee.member_by_node(&node).is_some());
    assert!(!record.excluded);
    assert_eq!((record.epoch, record.failing_epochs), (fixture.state.epoch, 0));
    let last = *history.back().unwrap();
    let text = crate::metrics::Metrics::default().render(&fixture.state, 0, 0);
    for (name, value) in [
        ("morsa_coord_challenge_epoch", u64::from(last.epoch.0)),
        ("morsa_coord_challenge_passed", last.tally.passed),
        ("morsa_coord_challenge_failed", 0),
        ("morsa_coord_challenge_reward", last.reward),
        ("morsa_coord_challenge_penalty", 0),
    ] {
        let line = format!("{name}{{node=\"{node}\"}} {value}");
        assert!(text.lines().any(|got| got == line), "{line:?} missing from:\n{text}");
    }
}

#[test]
fn a_node_that_lost_everything_shows_its_failures_in_its_record_and_metrics() {
    let mut fixture = in_epoch_two();
    let broken = fixture.node_id(2);
    finish_epoch_reporting(&mut fixture, |target, _| *target != broken);
    let record = fixture.state.node_challenges(broken);
    let outcome = record.history.last().cloned().expect("a settled epoch");
    assert_eq!((outcome.epoch, outcome.passed, outcome.reward), (Epoch(2), 0, 0));
    assert!(outcome.failed > 0 && outcome.penalty > 0 && outcome.removed);
    assert_eq!(record.failing_epochs, 1);
    let text = crate::metrics::Metrics::default().render(&fixture.state, 0, 0);
    for (name, value) in [
        ("morsa_coord_challenge_failed", outcome.failed),
        ("morsa_coord_challenge_phi_ppm", 1_000_000),
        ("morsa_coord_challenge_penalty", outcome.penalty),
        ("morsa_coord_challenge_removed", 1),
    ] {
        let line = format!("{name}{{node=\"{broken}\"}} {value}");
        assert!(text.lines().any(|got| got == line), "{line:?} missing from:\n{text}");
    }
}

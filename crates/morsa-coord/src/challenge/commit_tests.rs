//! Answer commitments: a dispute counts only answers the node committed to before the round's
//! answer window closed, so a node that rebuilds a blob after the window (an on-demand cheater)
//! cannot overturn its failures; commitments that are late, replayed, misdirected or of the
//! wrong length are refused. Through the real `apply` with every signature verified.

use morsa_core::challenge::{ChallengeItem, answer_digest};
use morsa_core::protocol::{DisputedAnswer, Input, NodeReportKind};

use super::ChallengeRefusal;
use super::fixture::Fixture;
use super::tests::{audit, finish_epoch_reporting, in_epoch_two, next_round, refusal};

#[test]
fn only_answers_committed_before_the_window_closed_overturn_failures() {
    let mut fixture = in_epoch_two();
    let round = next_round(&mut fixture);
    let mut targets = round.targets.iter().map(|(node, target)| (*node, target.clone()));
    let (target, challenged) = targets.next().unwrap();
    let (uncommitted, other) = targets.next().unwrap();
    assert!(challenged.items.len() >= 3, "{challenged:?}");
    let target_index = fixture.node_index(&target);
    let items = &challenged.items;
    // The target answered everything but challenge 0 in the window; it rebuilds that one later.
    let commitment = fixture.commit(target_index, &round, items, |position| position != 0);

    // Commitments of the wrong length, or of a node not challenged in the round, are refused.
    let short = fixture.commit(target_index, &round, &items[1..], |_| true);
    assert!(matches!(refusal(fixture.submit(short)), ChallengeRefusal::ResultCount { .. }));
    let outsider = (0..4).find(|index| !round.targets.contains_key(&fixture.node_id(*index)));
    if let Some(outsider) = outsider {
        let misdirected = fixture.commit(outsider, &round, items, |_| true);
        assert!(matches!(refusal(fixture.submit(misdirected)), ChallengeRefusal::NotChallenged(_)));
    }
    fixture.submit(commitment.clone()).expect("the commitment");
    assert_eq!(refusal(fixture.submit(commitment)), ChallengeRefusal::CommitReplayed);

    // After the window, commitments are late.
    fixture.now = round.answers_due_ms + 1;
    let late = fixture.commit(fixture.node_index(&uncommitted), &round, &other.items, |_| true);
    assert!(matches!(refusal(fixture.submit(late)), ChallengeRefusal::CommitLate { .. }));

    // Both auditors fail challenges 0 and 1 of their targets.
    for (node, round_target) in [(target, &challenged), (uncommitted, &other)] {
        let mut results = vec![true; round_target.items.len()];
        results[0] = false;
        results[1] = false;
        let auditor = fixture.node_index(&round_target.auditor);
        fixture.submit(audit(&fixture, auditor, &round, &node, results)).expect("the audit");
    }
    let dispute = |fixture: &Fixture, index: usize, items: &[ChallengeItem], position: usize| {
        let answer = fixture.answer(&items[position]);
        let answers = vec![DisputedAnswer { item: u32::try_from(position).unwrap(), answer }];
        let report = NodeReportKind::ChallengeDispute { epoch: round.epoch, round: round.round, answers };
        Input::Node(fixture.report(index, report))
    };
    // A genuine answer rebuilt after the window: not committed, refused.
    let rebuilt = dispute(&fixture, target_index, items, 0);
    assert_eq!(refusal(fixture.submit(rebuilt)), ChallengeRefusal::NotCommitted { item: 0 });
    // A node with no commitment at all cannot dispute.
    let bare = dispute(&fixture, fixture.node_index(&uncommitted), &other.items, 1);
    assert_eq!(refusal(fixture.submit(bare)), ChallengeRefusal::NotCommitted { item: 1 });
    // The committed answer overturns its failure; the rebuilt one's failure stands.
    let committed = dispute(&fixture, target_index, items, 1);
    fixture.submit(committed).expect("a committed answer");
    let open = fixture.state.challenges.open.as_ref().unwrap();
    assert_eq!(open.targets[&target].results.as_ref().unwrap()[..2], [false, true]);
    assert!(open.targets[&target].overturned);
    assert!(!open.targets[&uncommitted].overturned);
    finish_epoch_reporting(&mut fixture, |_, _| true);
    let outcomes = &fixture.state.challenges.last_epoch;
    assert_eq!(outcomes[&target].tally.failed, 1);
    assert_eq!(outcomes[&uncommitted].tally.failed, 2);
    assert_eq!(outcomes[&challenged.auditor].tally.strikes, 1);
}

#[test]
fn a_committed_answer_that_does_not_verify_is_refused() {
    let mut fixture = in_epoch_two();
    let round = next_round(&mut fixture);
    let (target, challenged) =
        round.targets.iter().next().map(|(node, target)| (*node, target.clone())).unwrap();
    let target_index = fixture.node_index(&target);
    // The node commits to a tampered answer for challenge 0 and disputes with it.
    let mut tampered = fixture.answer(&challenged.items[0]);
    tampered.primary.symbol[0] ^= 1;
    let mut digests: Vec<_> =
        challenged.items.iter().map(|item| answer_digest(&fixture.answer(item))).collect();
    digests[0] = answer_digest(&tampered);
    let report = NodeReportKind::ChallengeCommit { epoch: round.epoch, round: round.round, digests };
    fixture.submit(Input::Node(fixture.report(target_index, report))).expect("the commitment");
    let mut results = vec![true; challenged.items.len()];
    results[0] = false;
    let auditor = fixture.node_index(&challenged.auditor);
    fixture.submit(audit(&fixture, auditor, &round, &target, results)).expect("the audit");
    let answers = vec![DisputedAnswer { item: 0, answer: tampered }];
    let report = NodeReportKind::ChallengeDispute { epoch: round.epoch, round: round.round, answers };
    let refused = refusal(fixture.submit(Input::Node(fixture.report(target_index, report))));
    assert!(matches!(refused, ChallengeRefusal::BadAnswer { item: 0, .. }), "{refused:?}");
}

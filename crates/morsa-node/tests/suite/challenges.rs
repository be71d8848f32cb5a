//! The challenge routes of one node, through its router: answers only for the open round and
//! only for the node's own challenges; what an auditor counts of forged, replayed and
//! wrong-epoch answers; recovery symbols towards challenged slivers refused until the round
//! closes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use morsa_api::coord::{ChallengeTarget, OpenChallengeRound};
use morsa_api::node::{
    self as api, ChallengeAnswers, MAX_CHALLENGE_ANSWERS_BYTES, RecoveryBatchRequest, RecoveryItem,
    RecoveryOutcome,
};
use morsa_core::challenge::{CandidateBlob, ChallengeItem, derive_shard_items};
use morsa_core::{Epoch, NodeId, ShardIndex};
use morsa_node::testing::{passed_positions, set_open_round};
use redstuff::SliverType;
use redstuff::wire::from_bcs;

use crate::common::{N, call, code, fixture, get, upload_everything};

/// The challenges of the fixture node's shards 0..5 over the fixture blob.
fn items(fixture: &crate::common::Fixture, seed: u8) -> Vec<ChallengeItem> {
    let metadata = &fixture.encoded.metadata;
    let blob = CandidateBlob {
        blob_id: *metadata.blob_id(),
        unencoded_length: metadata.unencoded_length(),
        encoded_size: 1,
    };
    (0..5)
        .flat_map(|shard| derive_shard_items(&[seed; 32], N, ShardIndex(shard), &[blob], 4).unwrap())
        .collect()
}

fn round(node: NodeId, items: Vec<ChallengeItem>) -> OpenChallengeRound {
    let target = ChallengeTarget {
        node,
        auditor: NodeId([9; 32]),
        items,
        committed: false,
        results: None,
        overturned: false,
    };
    OpenChallengeRound {
        epoch: Epoch(1),
        round: 0,
        seed: [1; 32],
        started_ms: 0,
        answers_due_ms: 1,
        reports_due_ms: 1,
        targets: vec![target],
    }
}

async fn answers(
    fixture: &crate::common::Fixture,
    epoch: u32,
    round: u32,
    from: u32,
) -> (StatusCode, Vec<u8>) {
    let path = format!("{}?from={from}", api::challenge_answers_path(Epoch(epoch), round));
    call(&fixture.served, get(&path)).await
}

#[tokio::test]
async fn a_node_answers_its_open_challenges_and_refuses_other_rounds() {
    let fixture = fixture(true);
    upload_everything(&fixture).await;
    let (status, body) = answers(&fixture, 1, 0, 0).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "round_not_open"), "no round is open");
    let items = items(&fixture, 3);
    set_open_round(&fixture.served, Some(round(fixture.node.id(), items.clone())));
    let (status, body) = answers(&fixture, 1, 0, 0).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let page: ChallengeAnswers = from_bcs(&body, MAX_CHALLENGE_ANSWERS_BYTES).unwrap();
    assert_eq!(page.answers.len(), items.len());
    assert_eq!(page.next, None);
    let all: Vec<usize> = (0..items.len()).collect();
    assert_eq!(passed_positions(&items, N, page.answers.clone()), all, "every genuine answer verifies");
    // Another epoch or round, and positions past the node's challenges, are refused.
    for (epoch, round) in [(0, 0), (2, 0), (1, 1)] {
        let (status, body) = answers(&fixture, epoch, round, 0).await;
        assert_eq!(
            (status, code(&body).as_str()),
            (StatusCode::CONFLICT, "round_not_open"),
            "{epoch}/{round}"
        );
    }
    let past = u32::try_from(items.len()).unwrap();
    assert_eq!(answers(&fixture, 1, 0, past).await.0, StatusCode::BAD_REQUEST);
    let (status, _) = call(&fixture.served, get("/v1/challenges/x/0/answers")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A round in which this node is not challenged.
    set_open_round(&fixture.served, Some(round(NodeId([7; 32]), items)));
    let (status, body) = answers(&fixture, 1, 0, 0).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "round_not_open"));
}

#[tokio::test]
async fn a_node_that_lost_its_slivers_answers_none_and_the_auditor_counts_forged_and_replayed_answers_failed()
{
    let fixture = fixture(true);
    let items = items(&fixture, 5);
    set_open_round(&fixture.served, Some(round(fixture.node.id(), items.clone())));
    // Nothing stored: every challenge is answered `None`, never rebuilt.
    let (status, body) = answers(&fixture, 1, 0, 0).await;
    assert_eq!(status, StatusCode::OK);
    let page: ChallengeAnswers = from_bcs(&body, MAX_CHALLENGE_ANSWERS_BYTES).unwrap();
    assert!(page.answers.iter().all(|reply| reply.answer.is_none()));
    assert!(passed_positions(&items, N, page.answers).is_empty());

    upload_everything(&fixture).await;
    let (_, body) = answers(&fixture, 1, 0, 0).await;
    let genuine: ChallengeAnswers = from_bcs(&body, MAX_CHALLENGE_ANSWERS_BYTES).unwrap();
    // Forged: one byte of a symbol flipped.
    let mut forged = genuine.answers.clone();
    if let Some(answer) = forged[0].answer.as_mut() {
        answer.primary.symbol[0] ^= 1;
    }
    let passed = passed_positions(&items, N, forged);
    assert!(!passed.contains(&0) && passed.len() == items.len() - 1, "{passed:?}");
    // Replayed: the answers of a round with another seed (another blob position), moved to
    // this round's positions, and an answer repeated under another position.
    let other_items = self::items(&fixture, 6);
    set_open_round(&fixture.served, Some(round(fixture.node.id(), other_items.clone())));
    let (_, body) = answers(&fixture, 1, 0, 0).await;
    let replayed: ChallengeAnswers = from_bcs(&body, MAX_CHALLENGE_ANSWERS_BYTES).unwrap();
    let moved = passed_positions(&items, N, replayed.answers.clone());
    let same: Vec<usize> =
        (0..items.len()).filter(|position| items[*position] == other_items[*position]).collect();
    assert_eq!(moved, same, "an answer counts only where it answers the very challenge");
    let mut shifted = genuine.answers.clone();
    shifted.rotate_left(1);
    for (position, reply) in shifted.iter_mut().enumerate() {
        reply.item = u32::try_from(position).unwrap();
    }
    let shifted_passed = passed_positions(&items, N, shifted);
    let expected: Vec<usize> =
        (0..items.len()).filter(|position| items[*position] == items[(position + 1) % items.len()]).collect();
    assert_eq!(shifted_passed, expected);
    // Positions out of range are ignored, not a panic.
    let mut stray = genuine.answers;
    stray[0].item = u32::MAX;
    assert!(!passed_positions(&items, N, stray).contains(&0));
}

#[tokio::test]
async fn recovery_symbols_towards_a_challenged_sliver_are_refused_until_the_round_closes() {
    let fixture = fixture(true);
    upload_everything(&fixture).await;
    let blob_id = *fixture.encoded.metadata.blob_id();
    let items = items(&fixture, 3);
    let challenged = items[0];
    let secondary_index = challenged.pair.secondary_sliver_index(N);
    set_open_round(&fixture.served, Some(round(NodeId([7; 32]), items.clone())));
    let query = |target: u16, kind: SliverType| {
        format!(
            "{}?{}",
            api::recovery_symbols_path(&blob_id),
            api::RecoverySymbolsQuery { target_sliver: target, target_type: kind }.to_query_string()
        )
    };
    let (status, body) = call(&fixture.served, get(&query(challenged.pair.0, SliverType::Primary))).await;
    assert_eq!((status.as_u16(), code(&body).as_str()), (423, "challenged"));
    let (status, body) = call(&fixture.served, get(&query(secondary_index, SliverType::Secondary))).await;
    assert_eq!((status.as_u16(), code(&body).as_str()), (423, "challenged"));
    // A batch: the challenged item refused, another answered.
    let unchallenged = (0..N)
        .find(|index| !items.iter().any(|item| item.pair.0 == *index))
        .expect("some primary sliver is not challenged");
    let request = RecoveryBatchRequest {
        items: [challenged.pair.0, unchallenged]
            .map(|target| RecoveryItem {
                blob_id,
                target_sliver: target,
                target_type: SliverType::Primary,
                max_symbols: None,
            })
            .to_vec(),
    };
    let batch = Request::post(api::routes::RECOVERY_SYMBOLS_BATCH)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&request).unwrap()))
        .unwrap();
    let (status, body) = call(&fixture.served, batch).await;
    assert_eq!(status, StatusCode::OK);
    let response: api::RecoveryBatchResponse =
        from_bcs(&body, api::MAX_RECOVERY_BATCH_RESPONSE_BYTES).unwrap();
    assert!(
        matches!(&response.items[0].outcome, RecoveryOutcome::Error(error) if error.code == "challenged")
    );
    assert!(matches!(&response.items[1].outcome, RecoveryOutcome::Symbols(symbols) if !symbols.is_empty()));
    // Once the round is closed they are served again.
    set_open_round(&fixture.served, None);
    let (status, _) = call(&fixture.served, get(&query(challenged.pair.0, SliverType::Primary))).await;
    assert_eq!(status, StatusCode::OK);
}

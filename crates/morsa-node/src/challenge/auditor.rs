//! The challenge task: on each new round, commits to this node's answers if it is challenged,
//! audits the targets this node is the auditor of and reports the results before the round's
//! deadline, and, once its own audit is reported, disputes the failures it can answer with
//! the answers it committed to.
//!
//! The commitment (`ChallengeCommit`) carries the digest of each answer the node can give from
//! its stored slivers, logged before the round's answer window closes (`answers_due_ms`): a
//! dispute counts only answers that match it, so nothing rebuilt after the window does.
//! An audit fetches the target's answers (`GET /v1/challenges/{epoch}/{round}/answers`, a
//! page at a time) until the answer window closes, verifies each
//! with `ChallengeAnswer::verify`, counts every challenge not answered by then, or answered
//! wrong, as failed, signs the results and submits them (again while the coordinator is away
//! or busy, until the deadline).

use std::sync::Arc;
use std::time::Duration;

use morsa_api::client::{ClientOptions, CoordClient, NodeClient};
use morsa_api::coord::{ChallengeTarget, NodeReport, NodeReportKind};
use morsa_api::node::ChallengeReply;
use morsa_core::challenge::{
    ChallengeItem, NO_ANSWER, answer_digest, challenge_audit_message, challenge_commit_message,
    challenge_dispute_message,
};
use morsa_core::hash::Digest;
use morsa_core::protocol::DisputedAnswer;
use morsa_plumbing::now_ms;
use tokio::sync::watch;

use super::answers::answer_one;
use super::rounds::{RoundView, Rounds, add};
use crate::node::Node;
use crate::report::{Submitted, submit_until};

/// How often the open round is fetched when no event says it changed.
const POLL: Duration = Duration::from_secs(5);
/// How often a challenged node looks whether its audit was reported.
const RESULTS_POLL: Duration = Duration::from_secs(1);
/// How long after the deadline a challenged node waits for its audit before giving up.
const RESULTS_PATIENCE_MS: u64 = 60_000;
/// Most bytes of answers one dispute carries (as JSON, within the coordinator's body limit).
const MAX_DISPUTE_JSON_BYTES: usize = 192 << 10;

/// Runs until `stop`: follows the rounds and audits, answers and disputes in each.
pub(crate) async fn run(
    node: Arc<Node>,
    rounds: Arc<Rounds>,
    coord: CoordClient,
    mut stop: watch::Receiver<bool>,
) {
    let mut signal = node.challenge_signal();
    let mut handled = None;
    loop {
        if let Some(view) = rounds.refresh().await {
            let key = (view.open.epoch, view.open.round);
            if handled != Some(key) {
                handled = Some(key);
                start_round(&node, &rounds, &coord, &view, &stop);
            }
        }
        tokio::select! {
            _ = signal.changed() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Spawns this node's work in the round: one audit per target it audits, and its defence if
/// it is challenged.
fn start_round(
    node: &Arc<Node>,
    rounds: &Arc<Rounds>,
    coord: &CoordClient,
    view: &Arc<RoundView>,
    stop: &watch::Receiver<bool>,
) {
    let me = node.id();
    for target in view.open.targets.iter().filter(|target| target.auditor == me) {
        let (node, rounds, coord, view, target) =
            (Arc::clone(node), Arc::clone(rounds), coord.clone(), Arc::clone(view), target.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = audit(&node, &rounds, &coord, &view, &target) => {}
                _ = stop.changed() => {}
            }
        });
    }
    if view.target(&me).is_some() {
        let (node, rounds, coord, view) =
            (Arc::clone(node), Arc::clone(rounds), coord.clone(), Arc::clone(view));
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = async {
                    let committed = commit(&node, &coord, &view).await;
                    defend(&node, &rounds, &coord, &view, committed).await;
                } => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// Audits `target` in `view`'s round and reports the results.
async fn audit(
    node: &Arc<Node>,
    rounds: &Rounds,
    coord: &CoordClient,
    view: &RoundView,
    target: &ChallengeTarget,
) {
    let open = &view.open;
    let fetch_until = open.answers_due_ms;
    let results = match peer_client(node, target) {
        Some(peer) => fetch_and_verify(node, &peer, view, target, fetch_until).await,
        None => vec![false; target.items.len()],
    };
    let failed = results.iter().filter(|passed| !**passed).count();
    add(&rounds.stats.audits, 1);
    add(&rounds.stats.audited_challenges, results.len());
    add(&rounds.stats.failures_found, failed);
    let message = challenge_audit_message(open.epoch, open.round, &target.node, &results);
    let report = NodeReport {
        node: node.id(),
        report: NodeReportKind::ChallengeAudit {
            epoch: open.epoch,
            round: open.round,
            target: target.node,
            results,
        },
        signature: node.key().sign(&message),
    };
    tracing::info!(target = %target.node, epoch = open.epoch.0, round = open.round, failed, "challenge audit");
    submit_until(coord, &report, open.reports_due_ms).await;
}

/// A client of `target`'s address in the current committee.
fn peer_client(node: &Node, target: &ChallengeTarget) -> Option<NodeClient> {
    let view = node.view();
    let member = view.committee.member_by_node(&target.node)?;
    let address = view.committee.members[member].address.clone();
    drop(view);
    let options = ClientOptions { timeout: Duration::from_secs(30), connect_timeout: Duration::from_secs(3) };
    let http = options.http_client().ok()?;
    NodeClient::with_http(http, &address, node.config(), options).ok()
}

/// The target's answers, fetched until `until_ms`, each verified: `true` for every challenge
/// answered by then with an answer that verifies.
async fn fetch_and_verify(
    node: &Node,
    peer: &NodeClient,
    view: &RoundView,
    target: &ChallengeTarget,
    until_ms: u64,
) -> Vec<bool> {
    let open = &view.open;
    let mut results = vec![false; target.items.len()];
    let mut from = 0u32;
    loop {
        let left = Duration::from_millis(until_ms.saturating_sub(now_ms()));
        let page = match tokio::time::timeout(left, peer.challenge_answers(open.epoch, open.round, from))
            .await
        {
            Ok(Ok(page)) => page,
            Ok(Err(error)) => {
                tracing::info!(target = %target.node, %error, "a challenged node did not answer");
                break;
            }
            Err(_) => {
                tracing::info!(target = %target.node, "a challenged node did not answer before the deadline");
                break;
            }
        };
        let (items, n_shards) = (target.items.clone(), node.config().n_shards());
        let Ok(n_shards) = u16::try_from(n_shards) else { break };
        let answers = page.answers;
        let checked = tokio::task::spawn_blocking(move || passed_positions(&items, n_shards, answers)).await;
        for position in checked.unwrap_or_default() {
            results[position] = true;
        }
        match page.next {
            Some(next) if next > from && usize::try_from(next).is_ok_and(|next| next < results.len()) => {
                from = next
            }
            _ => break,
        }
    }
    results
}

/// The positions of `items` that `answers` prove: an answer counts for the challenge its
/// position names, and only if it verifies against that challenge (an answer to another
/// challenge, round or blob, or altered in any byte, does not). Blocks (hashing).
pub(crate) fn passed_positions(
    items: &[ChallengeItem],
    n_shards: u16,
    answers: Vec<ChallengeReply>,
) -> Vec<usize> {
    answers
        .into_iter()
        .filter_map(|reply| {
            let position = usize::try_from(reply.item).ok()?;
            let answer = reply.answer?;
            let item = items.get(position)?;
            answer.verify(item, n_shards).is_ok().then_some(position)
        })
        .collect()
}

/// Commits to this node's answers in `view`'s round: the digest of each answer it can give
/// from its stored slivers ([`NO_ANSWER`] for the others), submitted until the answer window
/// closes. Answers the digests once the coordinator took them.
async fn commit(node: &Arc<Node>, coord: &CoordClient, view: &RoundView) -> Option<Vec<Digest>> {
    let open = &view.open;
    let me = node.id();
    let items = view.target(&me)?.items.clone();
    let answering = Arc::clone(node);
    let digests = tokio::task::spawn_blocking(move || {
        let digest = |item| answer_one(&answering, item).map_or(NO_ANSWER, |answer| answer_digest(&answer));
        items.iter().map(digest).collect::<Vec<Digest>>()
    })
    .await
    .ok()?;
    let message = challenge_commit_message(open.epoch, open.round, &me, &digests);
    let report = NodeReport {
        node: me,
        report: NodeReportKind::ChallengeCommit {
            epoch: open.epoch,
            round: open.round,
            digests: digests.clone(),
        },
        signature: node.key().sign(&message),
    };
    (submit_until(coord, &report, open.answers_due_ms).await == Submitted::Taken).then_some(digests)
}

/// Once this node's audit in `view`'s round is reported, disputes the failures it can answer
/// with the answers it `committed` to (none without a commitment: the coordinator would refuse
/// them).
async fn defend(
    node: &Arc<Node>,
    rounds: &Rounds,
    coord: &CoordClient,
    view: &RoundView,
    committed: Option<Vec<Digest>>,
) {
    let Some(committed) = committed else { return };
    let open = &view.open;
    let me = node.id();
    let give_up = open.reports_due_ms.saturating_add(RESULTS_PATIENCE_MS);
    let results = loop {
        tokio::time::sleep(RESULTS_POLL).await;
        if now_ms() > give_up {
            return;
        }
        let Ok(info) = coord.challenges(Some(&me)).await else { continue };
        let Some(round) = info.open.filter(|round| round.epoch == open.epoch && round.round == open.round)
        else {
            return; // the round closed
        };
        let Some(target) = round.targets.into_iter().find(|target| target.node == me) else { return };
        if let Some(results) = target.results {
            break results;
        }
    };
    let Some(items) = view.target(&me).map(|target| target.items.clone()) else { return };
    let failed: Vec<usize> =
        results.iter().enumerate().filter(|(_, passed)| !**passed).map(|(position, _)| position).collect();
    if failed.is_empty() {
        return;
    }
    let answering = Arc::clone(node);
    let Ok(answers) =
        tokio::task::spawn_blocking(move || disputed_answers(&answering, &items, &committed, &failed)).await
    else {
        return;
    };
    if answers.is_empty() {
        tracing::info!(
            epoch = open.epoch.0,
            round = open.round,
            "challenges failed that this node cannot answer"
        );
        return;
    }
    let bytes = bcs::to_bytes(&answers).unwrap_or_default();
    let message = challenge_dispute_message(open.epoch, open.round, &me, &bytes);
    let count = answers.len();
    let report = NodeReport {
        node: me,
        report: NodeReportKind::ChallengeDispute { epoch: open.epoch, round: open.round, answers },
        signature: node.key().sign(&message),
    };
    tracing::warn!(epoch = open.epoch.0, round = open.round, count, "disputing challenge failures");
    add(&rounds.stats.disputes, 1);
    submit_until(coord, &report, give_up).await;
}

/// Answers to the `failed` positions of `items` that this node can give, that verify and that
/// match the digests it `committed` to, as many as fit one dispute. Blocks.
fn disputed_answers(
    node: &Node,
    items: &[ChallengeItem],
    committed: &[Digest],
    failed: &[usize],
) -> Vec<DisputedAnswer> {
    let Ok(n_shards) = u16::try_from(node.config().n_shards()) else { return Vec::new() };
    let mut answers = Vec::new();
    let mut used = 0usize;
    for position in failed {
        let (Some(item), Ok(index)) = (items.get(*position), u32::try_from(*position)) else { continue };
        let Ok(answer) = answer_one(node, item) else { continue };
        if answer.verify(item, n_shards).is_err() || committed.get(*position) != Some(&answer_digest(&answer))
        {
            continue;
        }
        let disputed = DisputedAnswer { item: index, answer };
        let size = serde_json::to_vec(&disputed).map_or(usize::MAX, |json| json.len());
        if used.saturating_add(size) > MAX_DISPUTE_JSON_BYTES {
            break;
        }
        used = used.saturating_add(size);
        answers.push(disputed);
    }
    answers
}

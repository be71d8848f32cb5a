//! The challenged node's answers to the open round (`GET /v1/challenges/{epoch}/{round}/answers`):
//! only for the coordinator's open round, only for this node's own challenges, a bounded page
//! at a time, built from the stored slivers.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use morsa_api::node::{ChallengeAnswersQuery, MAX_CHALLENGE_ANSWERS_BYTES, NodeErrorCode};
use morsa_api::server::refusal::{ApiPath, ApiQuery};
use morsa_core::Epoch;
use redstuff::wire::to_bcs;

use crate::challenge::answer_page;
use crate::http::Served;
use crate::http::reply::{ApiError, blocking};

/// Bytes of answers one page holds at most (below what the auditor reads).
const PAGE_BYTES: usize = MAX_CHALLENGE_ANSWERS_BYTES / 2;

#[tracing::instrument(skip_all)]
pub(super) async fn get_challenge_answers(
    State(served): State<Arc<Served>>,
    ApiPath((epoch, round)): ApiPath<(u32, u32)>,
    ApiQuery(query): ApiQuery<ChallengeAnswersQuery>,
) -> Result<Response, ApiError> {
    let epoch = Epoch(epoch);
    let not_open = |why: String| ApiError(NodeErrorCode::RoundNotOpen, why);
    let view = served.rounds.open_round(epoch, round).await.ok_or_else(|| {
        not_open(format!("round {round} of {epoch} is not the open challenge round; ask for the open one"))
    })?;
    let me = served.node.id();
    let items = view
        .target(&me)
        .map(|target| target.items.clone())
        .ok_or_else(|| not_open(format!("this node is not challenged in round {round} of {epoch}")))?;
    let from = usize::try_from(query.from).unwrap_or(usize::MAX);
    if from >= items.len() {
        return Err(ApiError(
            NodeErrorCode::BadRequest,
            format!("this node has {} challenges in the round; `from` {from} is past them", items.len()),
        ));
    }
    let reserved = served.answers.reserve(PAGE_BYTES).await?;
    let node = Arc::clone(&served.node);
    let page = blocking(move || Ok(answer_page(&node, &items, from, PAGE_BYTES))).await?;
    let answered = page.answers.iter().filter(|reply| reply.answer.is_some()).count();
    crate::challenge::count_answered(&served.rounds, answered);
    Ok(reserved.octets(to_bcs(&page), ()))
}

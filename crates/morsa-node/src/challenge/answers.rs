//! A page of this node's answers to its challenges, built from the slivers it stores. Nothing
//! is rebuilt on demand: a sliver the node lacks is answered `None`.

use morsa_api::node::{ChallengeAnswers, ChallengeReply, MAX_CHALLENGE_ANSWERS_PAGE};
use morsa_core::challenge::{ChallengeAnswer, ChallengeItem, answer_challenge};
use redstuff::wire::{from_bcs, sliver_limit};
use redstuff::{Sliver, SliverPair, SliverType};

use crate::error::NodeError;
use crate::node::Node;

/// The answers to `items` from position `from`: at most [`MAX_CHALLENGE_ANSWERS_PAGE`], and
/// no more than `max_bytes` of BCS unless one answer alone is larger. Blocks (expands slivers).
pub(crate) fn answer_page(
    node: &Node,
    items: &[ChallengeItem],
    from: usize,
    max_bytes: usize,
) -> ChallengeAnswers {
    let mut answers = Vec::new();
    let mut used = 0usize;
    let end = items.len().min(from.saturating_add(MAX_CHALLENGE_ANSWERS_PAGE));
    for (position, item) in items.iter().enumerate().take(end).skip(from) {
        let answer = answer_one(node, item)
            .inspect_err(
                |error| tracing::debug!(%error, blob_id = %item.blob_id, "cannot answer a challenge"),
            )
            .ok();
        let size = bcs::serialized_size(&answer).unwrap_or(usize::MAX);
        if !answers.is_empty() && used.saturating_add(size) > max_bytes {
            return ChallengeAnswers { answers, next: u32::try_from(position).ok() };
        }
        used = used.saturating_add(size);
        let Ok(item) = u32::try_from(position) else { break };
        answers.push(ChallengeReply { item, answer });
    }
    let next = (end < items.len()).then(|| u32::try_from(end).ok()).flatten();
    ChallengeAnswers { answers, next }
}

/// The answer to `item` from the stored pair, if this node holds both its slivers.
pub(crate) fn answer_one(node: &Node, item: &ChallengeItem) -> Result<ChallengeAnswer, NodeError> {
    let metadata = node.verified_metadata(&item.blob_id)?;
    let sliver = |kind: SliverType| -> Result<Sliver, NodeError> {
        let bytes = node.sliver_bytes(&item.blob_id, item.pair.0, kind)?;
        from_bcs(&bytes, sliver_limit(node.config(), kind, metadata.symbol_size()))
            .map_err(NodeError::Malformed)
    };
    let pair =
        SliverPair { primary: sliver(SliverType::Primary)?, secondary: sliver(SliverType::Secondary)? };
    answer_challenge(&metadata, &pair, item).map_err(|error| NodeError::Challenge(error.to_string()))
}

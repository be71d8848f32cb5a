//! Several slivers from one node in one request ([`NodeClient::get_slivers`]), each verified
//! against the metadata exactly as a sliver fetched alone is: its index, its shape and its
//! hash (the batch's hashes computed together, `VerifiedMetadata::verify_slivers`). A node
//! without the batched route is asked one request per sliver by the node client itself.
//!
//! [`NodeClient::get_slivers`]: morsa_api::client::NodeClient::get_slivers

use std::sync::Arc;

use morsa_api::client::ClientError as ApiError;
use morsa_api::node::MAX_READ_BATCH_ITEMS;
use redstuff::{Sliver, SliverType, VerifiedMetadata};

use crate::nodes::NodeSet;

/// Bytes of slivers one batched request asks for, at most: a node's answer is held whole on
/// both sides, and a slow node's batch is what a hedge asks again elsewhere.
pub(crate) const READ_BATCH_BYTES: usize = 4 << 20;

/// Slivers one batched request asks for, at most.
pub(crate) const READ_BATCH_ITEMS: usize =
    if MAX_READ_BATCH_ITEMS < 128 { MAX_READ_BATCH_ITEMS } else { 128 };

/// Slivers of `sliver_bytes` one batched request asks for: as many as fit in
/// [`READ_BATCH_BYTES`], at least one, at most [`READ_BATCH_ITEMS`].
pub(crate) fn batch_capacity(sliver_bytes: usize) -> usize {
    (READ_BATCH_BYTES / sliver_bytes.max(1)).clamp(1, READ_BATCH_ITEMS)
}

/// Why a sliver asked for in a batch was not had.
#[derive(Debug, Clone)]
pub(crate) enum SliverProblem {
    /// The request failed, or the node refused this sliver.
    Node(ApiError),
    /// The node answered a sliver that does not verify.
    Bad(String),
}

/// Fetches the `kind` slivers `wanted` (each its index and its pair) from `member` in one
/// request (several for a node without the batched route) and verifies each: one result per
/// wanted sliver, in order. The caller records the call's outcome in the node's score.
pub(crate) async fn fetch_verified(
    nodes: &NodeSet,
    metadata: &Arc<VerifiedMetadata>,
    member: usize,
    kind: SliverType,
    wanted: &[(usize, u16)],
) -> Result<Vec<(usize, Result<Sliver, SliverProblem>)>, ApiError> {
    let pairs: Vec<u16> = wanted.iter().map(|(_, pair)| *pair).collect();
    let answers =
        nodes.client(member).get_slivers(metadata.blob_id(), &pairs, kind, metadata.symbol_size()).await?;
    let indices: Vec<usize> = wanted.iter().map(|(index, _)| *index).collect();
    let checked = Arc::clone(metadata);
    let verified = tokio::task::spawn_blocking(move || verify(&checked, kind, &indices, answers)).await;
    Ok(verified.unwrap_or_else(|error| {
        let reason = format!("verification panicked: {error}");
        wanted.iter().map(|(index, _)| (*index, Err(SliverProblem::Bad(reason.clone())))).collect()
    }))
}

/// Checks each answer as sliver `indices[i]` of `kind`.
fn verify(
    metadata: &VerifiedMetadata,
    kind: SliverType,
    indices: &[usize],
    answers: Vec<Result<Sliver, ApiError>>,
) -> Vec<(usize, Result<Sliver, SliverProblem>)> {
    let mut results: Vec<(usize, Result<Sliver, SliverProblem>)> = indices
        .iter()
        .zip(answers)
        .map(|(index, answer)| {
            let checked = match answer {
                Ok(sliver) if sliver.index() != *index => Err(SliverProblem::Bad(format!(
                    "asked for {kind} sliver {index}, got {}",
                    sliver.index()
                ))),
                Ok(sliver) => Ok(sliver),
                Err(error) => Err(SliverProblem::Node(error)),
            };
            (*index, checked)
        })
        .collect();
    let fetched: Vec<&Sliver> = results.iter().filter_map(|(_, result)| result.as_ref().ok()).collect();
    let verdicts = metadata.verify_slivers(kind, &fetched);
    let mut verdicts = verdicts.into_iter();
    for (_, result) in &mut results {
        if result.is_ok()
            && let Some(Err(error)) = verdicts.next()
        {
            *result = Err(SliverProblem::Bad(error.to_string()));
        }
    }
    results
}

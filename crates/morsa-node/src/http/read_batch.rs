//! Batched reads ([`routes::SLIVER_READ_BATCH`](morsa_api::node::routes::SLIVER_READ_BATCH)):
//! several slivers of one kind of a blob in one answer. Each is served exactly as the single
//! route serves it: the slivers stored are read together on one blocking thread, and any
//! other (not stored, damaged, in a shard still being pulled, not this node's) goes the
//! single route's way (`get_sliver`): fetched from the shard's previous owner, rebuilt, or
//! refused with the single route's error, in its place in the answer. What must be rebuilt
//! is rebuilt in one rebuild for the whole batch, not one sliver after another.
//!
//! The answer is bounded: a batch whose slivers could be over [`MAX_READ_BATCH_BYTES`] is
//! refused (`too_large`) before anything is read, and the answer's estimate is held in the
//! node's answer budget, as a single sliver's is, until it is written.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use morsa_api::node::{
    MAX_READ_BATCH_BYTES, NodeErrorCode, ReadBatchAnswer, SliverReadBatchPath, SliverReadBatchQuery,
    UPLOAD_ITEM_HEADER,
};

use crate::http::Served;
use crate::http::reads::missing_slivers;
use crate::http::reply::{ApiError, Reply, blocking};
use crate::http::upload_batch::refusal;
use morsa_api::server::refusal::{ApiPath, ApiQuery};

pub(super) async fn get_sliver_batch(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<SliverReadBatchPath>,
    ApiQuery(query): ApiQuery<SliverReadBatchQuery>,
) -> Reply<Response> {
    let pairs =
        query.parse().map_err(|error| ApiError(NodeErrorCode::BadRequest, format!("pairs: {error}")))?;
    let (blob_id, kind) = (path.blob_id, path.sliver_type);
    let node = Arc::clone(&served.node);
    let per_item = blocking(move || {
        let size = node.blob_info(&blob_id)?.size;
        let sliver = morsa_core::convert::saturating_usize(node.sliver_bytes_estimate(size));
        Ok(sliver.saturating_add(64 + UPLOAD_ITEM_HEADER))
    })
    .await?;
    let estimate = per_item.saturating_mul(pairs.len());
    if estimate > MAX_READ_BATCH_BYTES {
        return Err(ApiError(
            NodeErrorCode::TooLarge,
            format!(
                "{} slivers of up to {per_item} bytes could make an answer over {MAX_READ_BATCH_BYTES} bytes: ask for fewer",
                pairs.len()
            ),
        ));
    }
    let reserved = served.answers.reserve(estimate).await?;
    let node = Arc::clone(&served.node);
    let stored = blocking(move || {
        Ok(pairs
            .into_iter()
            .map(|pair| (pair, node.sliver_bytes(&blob_id, pair, kind).ok()))
            .collect::<Vec<_>>())
    })
    .await?;
    // The slivers not stored: fetched from a shard's previous owner, then whatever is still
    // lacking rebuilt together, as the single route would each (`one_sliver`).
    let lacking: Vec<u16> =
        stored.iter().filter(|(_, bytes)| bytes.is_none()).map(|(pair, _)| *pair).collect();
    let mut fetched = missing_slivers(&served, blob_id, lacking, kind).await.into_iter();
    let mut answer = ReadBatchAnswer::with_capacity(estimate);
    let (mut sent, mut refused) = (0u64, 0u64);
    for (pair, bytes) in stored {
        let read = match bytes {
            Some(bytes) => Ok(bytes),
            None => fetched.next().expect("one answer per sliver not stored"),
        };
        match read {
            Ok(bytes) => {
                answer.push_sliver(pair, &bytes);
                sent += 1;
            }
            Err(error) => {
                answer.push_refused(pair, &refusal(error));
                refused += 1;
            }
        }
    }
    served.metrics.record_read_batch(sent, refused);
    Ok(reserved.octets(answer.into_bytes(), ()))
}

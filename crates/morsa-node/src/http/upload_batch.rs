//! Batch uploads ([`routes::SLIVER_BATCH`](morsa_api::node::routes::SLIVER_BATCH)): a blob's
//! metadata and slivers in one request. The blob's registration is checked and upload permits
//! taken before the body is read, as for a single upload; each item is then checked exactly as
//! its single-item route checks it (`Node::store_metadata`, `Node::checked_sliver`), and the
//! good slivers go to the group committer together, so that they share commits. The answer
//! lists each item stored or refused with the error its single route would have given.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use morsa_api::ErrorBody;
use morsa_api::node::{
    BlobIdPath, MAX_UPLOAD_BATCH_BYTES, NodeErrorCode, UploadBatchAnswer, UploadOutcome, UploadTarget,
    parse_upload_batch,
};
use morsa_api::server::refusal::ApiPath;
use redstuff::SliverType;

use crate::error::NodeError;
use crate::http::Served;
use crate::http::reply::{ApiError, Reply, answer_after_draining, blocking, read_body, take};
use crate::node::{Node, max_sliver_body};

pub(super) async fn put_sliver_batch(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<BlobIdPath>,
    request: axum::extract::Request,
) -> Reply<Response> {
    let mut body = Some(request.into_body());
    let result = put_batch_within(&served, path.blob_id, &mut body).await;
    answer_after_draining(result, body, MAX_UPLOAD_BATCH_BYTES).await
}

/// Checks the registration, takes the upload permits the body may need, reads it (within the
/// blob's batch limit) and stores what verifies.
async fn put_batch_within(
    served: &Arc<Served>,
    blob_id: redstuff::BlobId,
    body: &mut Option<Body>,
) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    let limit = blocking(move || node.batch_upload_limit(&blob_id)).await?;
    // One permit per largest sliver's worth of bytes, as that many single uploads would hold.
    let _permits = served.upload_permits(limit.div_ceil(max_sliver_body(served.node.config()))).await?;
    let bytes = read_body(take(body)?, limit).await?;
    let node = Arc::clone(&served.node);
    let items = blocking(move || Ok(store_batch(&node, &blob_id, &bytes))).await??;
    Ok(Json(UploadBatchAnswer { items }).into_response())
}

/// Checks every item of `body` and stores the good ones; one outcome per item, in order.
/// Refuses the whole batch only if its framing is broken.
fn store_batch(node: &Node, blob_id: &redstuff::BlobId, body: &Bytes) -> Reply<Vec<UploadOutcome>> {
    let items = parse_upload_batch(body)
        .map_err(|error| ApiError(NodeErrorCode::BadRequest, format!("the batch body: {error}")))?;
    let mut outcomes: Vec<UploadOutcome> =
        items.iter().map(|(target, _)| UploadOutcome { target: *target, refused: None }).collect();
    let (mut checked, mut checked_at) = (Vec::new(), Vec::new());
    // Slivers since the last metadata item, checked together (their hashes share the work)
    // before the next metadata item is stored, so each is checked as its single route would
    // check it at that point.
    let mut run: Vec<(usize, (u16, SliverType, Bytes))> = Vec::new();
    let mut check_run = |run: &mut Vec<(usize, (u16, SliverType, Bytes))>, outcomes: &mut [UploadOutcome]| {
        let (positions, slivers): (Vec<usize>, Vec<_>) = run.drain(..).unzip();
        for (index, result) in positions.into_iter().zip(node.checked_slivers(blob_id, slivers)) {
            match result {
                Ok(sliver) => {
                    checked.push(sliver);
                    checked_at.push(index);
                }
                Err(error) => outcomes[index].refused = Some(refusal(error)),
            }
        }
    };
    for (index, (target, range)) in items.into_iter().enumerate() {
        // A slice of the request's buffer: no copy.
        let bytes = body.slice(range);
        match target {
            UploadTarget::Metadata => {
                check_run(&mut run, &mut outcomes);
                if let Err(error) = node.store_metadata(blob_id, &bytes) {
                    outcomes[index].refused = Some(refusal(error));
                }
            }
            UploadTarget::Sliver { pair, sliver_type } => run.push((index, (pair, sliver_type, bytes))),
        }
    }
    check_run(&mut run, &mut outcomes);
    for (index, stored) in checked_at.into_iter().zip(node.ingest_submit_all(checked)) {
        if let Err(error) = stored {
            outcomes[index].refused = Some(refusal(error));
        }
    }
    Ok(outcomes)
}

/// `error` as the body its route would answer.
pub(super) fn refusal(error: NodeError) -> ErrorBody {
    let ApiError(code, message) = ApiError::from(error);
    code.body(message)
}

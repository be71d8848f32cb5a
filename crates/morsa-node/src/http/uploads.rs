//! Uploads of metadata and slivers: the blob's registration (or room in the pending buffer)
//! and the shard are checked and an upload permit taken before the body is read; the body is
//! verified on a blocking thread. Uploads of blobs not registered yet may be held
//! (`?pending=true`).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use morsa_api::node::{BlobIdPath, NodeErrorCode, PutSliverQuery, SliverPath, StoredStatus};
use morsa_api::server::refusal::{ApiPath, ApiQuery};

use crate::http::Served;
use crate::http::reply::{ApiError, Reply, announced, answer_after_draining, blocking, read_body, take};
use crate::node::max_sliver_body;
use crate::pending::PendingKind;

fn stored() -> Response {
    Json(StoredStatus { stored: true }).into_response()
}

pub(super) async fn put_metadata(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<BlobIdPath>,
    ApiQuery(query): ApiQuery<PutSliverQuery>,
    request: axum::extract::Request,
) -> Reply<Response> {
    let limit = redstuff::wire::metadata_limit(served.node.config());
    let mut body = Some(request.into_body());
    let result = put_metadata_within(&served, path.blob_id, query.pending, limit, &mut body).await;
    answer_after_draining(result, body, limit).await
}

/// Checks the registration (or the pending buffer's room), then takes an upload permit, then
/// reads the body from `body`.
pub(super) async fn put_metadata_within(
    served: &Arc<Served>,
    blob_id: redstuff::BlobId,
    pending: bool,
    limit: usize,
    body: &mut Option<Body>,
) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    match blocking(move || node.require_live(&blob_id).map(drop)).await {
        Ok(()) => {
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            let node = Arc::clone(&served.node);
            blocking(move || node.store_metadata(&blob_id, &bytes).map(drop)).await?;
            Ok(stored())
        }
        Err(ApiError(NodeErrorCode::NotRegistered, _)) if pending => {
            served.pending.check_room(announced(body.as_ref(), limit))?;
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            // Metadata must hash to the blob ID it claims: that needs no registration.
            let (node, checked) = (Arc::clone(&served.node), bytes.clone());
            blocking(move || node.check_metadata(&blob_id, &checked).map(drop)).await?;
            hold(served, blob_id, PendingKind::Metadata, bytes).await
        }
        Err(error) => Err(error),
    }
}

/// Holds an upload of a blob not registered yet (202), or stores it at once if the
/// registration arrived meanwhile.
async fn hold(
    served: &Arc<Served>,
    blob_id: redstuff::BlobId,
    kind: PendingKind,
    body: Bytes,
) -> Reply<Response> {
    served.pending.hold(blob_id, kind, body)?;
    let (node, buffer) = (Arc::clone(&served.node), Arc::clone(&served.pending));
    blocking(move || {
        crate::pending::store_if_registered(&node, &buffer, &blob_id);
        Ok(())
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(StoredStatus { stored: false })).into_response())
}

pub(super) async fn put_sliver(
    State(served): State<Arc<Served>>,
    ApiPath(path): ApiPath<SliverPath>,
    ApiQuery(query): ApiQuery<PutSliverQuery>,
    request: axum::extract::Request,
) -> Reply<Response> {
    let mut body = Some(request.into_body());
    let result = put_sliver_within(&served, path, query.pending, &mut body).await;
    answer_after_draining(result, body, max_sliver_body(served.node.config())).await
}

/// Checks the registration and the shard (or the pending buffer's room), then takes an upload
/// permit, then reads the body from `body`, at most a sliver of the blob.
pub(super) async fn put_sliver_within(
    served: &Arc<Served>,
    path: SliverPath,
    pending: bool,
    body: &mut Option<Body>,
) -> Reply<Response> {
    let (blob_id, pair, kind) = (path.blob_id, path.sliver_pair_index, path.sliver_type);
    let node = Arc::clone(&served.node);
    match blocking(move || node.sliver_upload_limit(&blob_id, pair, kind)).await {
        Ok(limit) => {
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            let node = Arc::clone(&served.node);
            blocking(move || node.store_sliver(&blob_id, pair, kind, bytes)).await?;
            Ok(stored())
        }
        Err(ApiError(NodeErrorCode::NotRegistered, _)) if pending => {
            // Held only for the shards this node owns, within the buffer's room.
            served.node.owned_shard_of(&blob_id, pair)?;
            let limit = max_sliver_body(served.node.config());
            served.pending.check_room(announced(body.as_ref(), limit))?;
            let _permit = served.upload_permit().await?;
            let bytes = read_body(take(body)?, limit).await?;
            hold(served, blob_id, PendingKind::Sliver { pair, kind }, bytes).await
        }
        Err(error) => Err(error),
    }
}

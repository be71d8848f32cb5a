//! The shard-migration route: a shard's new owner asks this node, its previous owner, for a
//! page of it ([`routes::SHARD_PAGE`]). The checks and the page are the node's
//! (`migrate::serve`); here the request is bounded, counted and answered.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use morsa_api::node::{MAX_JSON_REQUEST_BYTES, NodeErrorCode, SHARD_PAGE_TARGET_BYTES, ShardPageRequest};
use morsa_api::server::refusal::ApiPath;
use redstuff::wire::to_bcs;

use crate::http::Served;
use crate::http::reply::{ApiError, read_body};
use crate::node::migration_stats::add;

/// `POST` [`morsa_api::node::routes::SHARD_PAGE`]: one page of a shard kept for its new owner.
/// The shard of the path must be the signed request's.
pub(super) async fn post_shard_page(
    State(served): State<Arc<Served>>,
    ApiPath(shard): ApiPath<u16>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let reserved = served.answers.reserve(SHARD_PAGE_TARGET_BYTES).await?;
    let body = read_body(request.into_body(), MAX_JSON_REQUEST_BYTES).await?;
    let request: ShardPageRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError(NodeErrorCode::BadRequest, format!("the body is not a shard page request: {error}"))
    })?;
    if request.shard.0 != shard {
        return Err(ApiError(
            NodeErrorCode::BadRequest,
            format!("the path names shard {shard} but the request is for shard {}", request.shard.0),
        ));
    }
    let node = Arc::clone(&served.node);
    let stats = &served.node.moves().stats;
    match served.background(move || node.shard_page(&request)).await {
        Ok(page) => {
            add(&stats.pages_served, 1);
            Ok(reserved.octets(to_bcs(&page), ()))
        }
        Err(error) => {
            if matches!(error.0, NodeErrorCode::Forbidden) {
                add(&stats.pages_refused, 1);
            }
            Err(error)
        }
    }
}

//! `GET /v1/nodes/{node_id}/challenges`: a node's challenge tally this epoch and the outcomes
//! of its last settled epochs, as the state records them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use morsa_api::ErrorBody;
use morsa_api::coord::NodeChallenges;
use morsa_api::server::refusal::ApiPath;
use morsa_core::NodeId;

use super::{ApiError, Shared};

pub(super) async fn get_node_challenges(
    AxumState(shared): AxumState<Arc<Shared>>,
    ApiPath(node): ApiPath<String>,
) -> Result<Json<NodeChallenges>, ApiError> {
    let node: NodeId = node.parse().map_err(|error: morsa_core::ParseHexError| {
        ApiError(StatusCode::BAD_REQUEST, ErrorBody::new("bad_node_id", error.to_string()))
    })?;
    let coordinator = shared.lock();
    let state = coordinator.state();
    if !state.nodes.contains_key(&node) {
        let message = format!("node {node} is not registered");
        return Err(ApiError(StatusCode::NOT_FOUND, ErrorBody::new("unknown_node", message)));
    }
    Ok(Json(state.node_challenges(node)))
}

//! The committee the node follows, for clients that cannot reach any coordinator.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use morsa_api::node::NodeCommittee;

use crate::http::Served;

pub(super) async fn get_committee(State(served): State<Arc<Served>>) -> Json<NodeCommittee> {
    let view = served.node.view();
    Json(NodeCommittee {
        epoch: view.epoch(),
        current: view.committee.clone(),
        next: view.next.clone(),
        zones: view.zones.clone(),
    })
}

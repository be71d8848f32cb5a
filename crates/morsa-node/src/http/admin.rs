//! The admin routes (pause and resume background repair): from loopback only, with the token
//! (see `admin_token`), never from a web page.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use morsa_api::node::NodeErrorCode;
use std::sync::Arc;

use crate::http::Served;
use crate::http::admin_token::AdminRefusal;
use crate::http::reply::{ApiError, Reply};

/// Whether the request came from this machine (admin routes answer nobody else).
fn from_loopback(request: &axum::extract::Request) -> bool {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|info| info.0.ip().is_loopback())
}

pub(super) async fn post_repair_pause(
    State(served): State<Arc<Served>>,
    request: axum::extract::Request,
) -> Reply<Response> {
    set_paused(&served, &request, true)
}

pub(super) async fn post_repair_resume(
    State(served): State<Arc<Served>>,
    request: axum::extract::Request,
) -> Reply<Response> {
    set_paused(&served, &request, false)
}

/// Admits an admin request: from loopback, with the token, without `Origin`.
fn admit_admin(served: &Served, request: &axum::extract::Request) -> Reply<()> {
    let refused = |refusal: AdminRefusal| ApiError(NodeErrorCode::Forbidden, refusal.to_string());
    if !from_loopback(request) {
        return Err(refused(AdminRefusal::NotLoopback));
    }
    match served.admin.get() {
        Some(token) => token.check(request.headers()).map_err(refused),
        None => Err(refused(AdminRefusal::BadToken)),
    }
}

fn set_paused(served: &Served, request: &axum::extract::Request, paused: bool) -> Reply<Response> {
    admit_admin(served, request)?;
    served.repair.set_paused(paused);
    Ok(Json(serde_json::json!({ "paused": paused })).into_response())
}

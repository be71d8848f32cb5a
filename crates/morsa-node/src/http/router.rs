//! The router with every route, as Walrus's storage node has them, and the layers every
//! request passes: its span (naming the blob), the request timeout and the metrics of route,
//! status and latency.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{get, post, put};
use morsa_api::node::{LOAD_HEADER, routes};
use morsa_api::server::refusal;
use std::sync::atomic::Ordering;

use crate::config::Limits;
use crate::http::Served;
use crate::http::{
    admin, challenge, committee, health, migration, read_batch, reads, symbols, upload_batch, uploads,
};

/// The router with every route. Handlers that take a body read it themselves, each within
/// its own limit (`read_body`), once the request has been admitted.
pub fn router(served: Arc<Served>, limits: &Limits) -> Router {
    let routes = Router::new()
        .route(routes::METADATA, put(uploads::put_metadata).get(reads::get_metadata))
        .route(routes::METADATA_STATUS, get(reads::get_metadata_status))
        .route(routes::SLIVER, put(uploads::put_sliver).get(reads::get_sliver))
        .route(routes::SLIVER_BATCH, put(upload_batch::put_sliver_batch))
        .route(routes::SLIVER_READ_BATCH, get(read_batch::get_sliver_batch))
        .route(routes::SLIVER_STATUS, get(reads::get_sliver_status))
        .route(routes::PERMANENT_CONFIRMATION, get(reads::get_permanent_confirmation))
        .route(routes::DELETABLE_CONFIRMATION, get(reads::get_deletable_confirmation))
        .route(routes::BLOB_STATUS, get(reads::get_blob_status))
        .route(routes::SHARD_PAGE, post(migration::post_shard_page))
        .route(routes::CHALLENGE_ANSWERS, get(challenge::get_challenge_answers))
        .route(routes::HEALTH, get(health::get_health))
        .route(routes::PROBE, get(health::get_probe))
        .route(routes::COMMITTEE, get(committee::get_committee))
        .route(routes::METRICS, get(health::get_metrics))
        .route(routes::ADMIN_REPAIR_PAUSE, post(admin::post_repair_pause))
        .route(routes::ADMIN_REPAIR_RESUME, post(admin::post_repair_resume))
        .merge(symbols::routes());
    refusal::with_refusals(routes)
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&served), track))
        .layer(axum::middleware::from_fn_with_state(limits.request_timeout(), refusal::within_time))
        .layer(morsa_plumbing::telemetry::trace_layer())
        .with_state(served)
}

/// Records every request's route, status, latency and answer bytes (every answer is a whole
/// buffer, so its length is known before it is sent), and tells the caller the node's load:
/// the other requests it was serving when the answer left ([`LOAD_HEADER`]), which readers
/// weigh in choosing nodes (`morsa_api::client::scoring`).
async fn track(
    State(served): State<Arc<Served>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let started = Instant::now();
    served.in_flight.fetch_add(1, Ordering::Relaxed);
    let mut response = next.run(request).await;
    let others = served.in_flight.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
    response.headers_mut().insert(LOAD_HEADER, HeaderValue::from(others));
    let body_bytes = response.body().size_hint().exact().unwrap_or(0);
    served.metrics.record(&route, response.status().as_u16(), started.elapsed(), body_bytes);
    response
}

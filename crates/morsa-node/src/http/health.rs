//! The node's health (JSON), its probe (filler for timing a link) and metrics (Prometheus
//! text).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use morsa_api::node::{MAX_PROBE_BYTES, NodeHealth, ProbeQuery};
use morsa_api::server::refusal::ApiQuery;
use morsa_core::convert::saturating_u64;

use crate::http::Served;
use crate::http::reply::{ApiError, Reply, blocking};
use crate::metrics::Now;

pub(super) async fn get_health(State(served): State<Arc<Served>>) -> Reply<Json<NodeHealth>> {
    let node = Arc::clone(&served.node);
    let uptime_secs = served.started.elapsed().as_secs();
    let mut health = blocking(move || node.health(uptime_secs)).await?;
    health.pending_uploads = saturating_u64(served.pending.len());
    health.repair = served.repair.health();
    health.disk = served.disk.health();
    Ok(Json(health))
}

/// `GET /v1/probe?bytes=N`: N bytes of filler (at most [`MAX_PROBE_BYTES`]); costs the node
/// no more than sending them.
pub(super) async fn get_probe(ApiQuery(query): ApiQuery<ProbeQuery>) -> Result<Response, ApiError> {
    let len = usize::try_from(query.bytes).map_or(MAX_PROBE_BYTES, |bytes| bytes.min(MAX_PROBE_BYTES));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], vec![0u8; len]).into_response())
}

pub(super) async fn get_metrics(State(served): State<Arc<Served>>) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    let store = blocking(move || Ok(node.store().stats()?)).await?;
    let repair = served.repair.health();
    let metadata_fetched = served.repair.stats().metadata_bytes.load(std::sync::atomic::Ordering::Relaxed);
    let shard_states = served.node.shard_states();
    let migration = served.node.moves().stats.health(served.node.moves().lock().pages_pulled);
    let now = Now {
        store: &store,
        pending_uploads: saturating_u64(served.pending.len()),
        pending_bytes: served.pending.bytes(),
        repair: &repair,
        metadata_fetched_bytes: metadata_fetched,
        connections: &morsa_api::server::stats(),
        answer_budget_free_bytes: saturating_u64(served.answers.available()),
        shard_states: &shard_states,
        migration: &migration,
        challenges: served.rounds.counts(),
        background: served.repair.background.counts(),
        disk: served.disk.health(),
    };
    let text = served.metrics.render(&now);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

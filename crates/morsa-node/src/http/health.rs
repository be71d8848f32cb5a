//! The node's health (JSON) and metrics (Prometheus text).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use morsa_api::node::NodeHealth;

use crate::http::Served;
use crate::http::reply::{Reply, blocking};

pub(super) async fn get_health(State(served): State<Arc<Served>>) -> Reply<Json<NodeHealth>> {
    let node = Arc::clone(&served.node);
    let uptime_secs = served.started.elapsed().as_secs();
    let mut health = blocking(move || node.health(uptime_secs)).await?;
    health.pending_uploads = morsa_core::convert::saturating_u64(served.pending.len());
    health.repair = served.repair.health();
    Ok(Json(health))
}

pub(super) async fn get_metrics(State(served): State<Arc<Served>>) -> Reply<Response> {
    let node = Arc::clone(&served.node);
    let stats = blocking(move || Ok(node.store().stats()?)).await?;
    let pending = morsa_core::convert::saturating_u64(served.pending.len());
    let mut text = served.metrics.render(&stats, pending);
    let metadata_fetched = served.repair.stats().metadata_bytes.load(std::sync::atomic::Ordering::Relaxed);
    crate::metrics::render_repair(&mut text, &served.repair.health(), metadata_fetched);
    render_limits(&mut text, &served);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// What the limits refused or closed, and the answer budget left.
fn render_limits(out: &mut String, served: &Served) {
    use std::fmt::Write as _;
    let stats = morsa_api::server::stats();
    let _ = writeln!(
        out,
        "# HELP morsa_node_connections_closed_total Connections the server's limits closed, by reason.\n# TYPE morsa_node_connections_closed_total counter"
    );
    for (reason, count) in [
        ("evicted", stats.evicted),
        ("refused", stats.refused),
        ("header_timeout", stats.header_timeouts),
        ("idle_timeout", stats.idle_timeouts),
        ("write_timeout", stats.write_timeouts),
    ] {
        let _ = writeln!(out, "morsa_node_connections_closed_total{{reason=\"{reason}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP morsa_node_answer_budget_free_bytes Bytes of the answer budget free now.\n# TYPE morsa_node_answer_budget_free_bytes gauge\nmorsa_node_answer_budget_free_bytes {}",
        served.answers.available()
    );
    let _ = writeln!(
        out,
        "# HELP morsa_node_pending_bytes Bytes held for uploads waiting for their registration.\n# TYPE morsa_node_pending_bytes gauge\nmorsa_node_pending_bytes {}",
        served.pending.bytes()
    );
}

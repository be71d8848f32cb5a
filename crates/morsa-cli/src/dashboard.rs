//! `morsa dashboard`: a status page served by the binary itself. One HTML page (no scripts,
//! the browser reloads it) and `/status.json` with the same data: the committee and its shard
//! map by node and zone, every node's health and repair backlog, the system-wide availability
//! margin (blobs by margin, the blobs most at risk), the repair backlog over time, the latest
//! restore drill, and the account's blobs nearing expiry.
//!
//! The dashboard gathers a snapshot every `--refresh` seconds even with nobody watching, and
//! keeps the last [`HISTORY_SAMPLES`] of them (backlog, margin, nodes down) for the page's
//! history: a bounded ring, lost when the process stops.

mod margin;
mod page;
mod snapshot;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use clap::Args;
use morsa_client::Client;
use tokio::sync::Mutex;

use crate::blobs::{ConfigArg, runtime};
use snapshot::Status;

/// A snapshot younger than this is served again instead of asking every node anew: many
/// browsers and scripts looking at once cost the cluster one round of calls.
const REUSE_SNAPSHOT: Duration = Duration::from_secs(1);

/// Snapshots kept for the history (at the default refresh of 10 s: two hours).
pub const HISTORY_SAMPLES: usize = 720;

/// `morsa dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where to serve the page (it has no authentication: keep it on loopback or behind a
    /// proxy that has).
    #[arg(long, default_value = "127.0.0.1:9180", value_name = "ADDRESS")]
    pub listen: SocketAddr,
    /// Seconds between the page's reloads.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub refresh: u64,
    /// List the account's certified blobs that end within this many epochs.
    #[arg(long, default_value_t = 2, value_name = "EPOCHS")]
    pub expiring_within: u32,
    /// The JSON report of the latest drill (`morsa drill --report FILE`), read again on
    /// every refresh.
    #[arg(long, value_name = "FILE")]
    pub drill_report: Option<PathBuf>,
    /// The client configuration (default: $MORSA_CONFIG, then ~/.config/morsa/client.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What the handlers share.
struct Dashboard {
    client: Client,
    refresh_secs: u64,
    expiring_within: u32,
    drill_report: Option<PathBuf>,
    /// The latest snapshot; held while a new one is gathered, so requests arriving meanwhile
    /// wait for it rather than start their own.
    latest: Mutex<Option<(Instant, Arc<Status>)>>,
    /// The ring of samples, oldest first (see [`HISTORY_SAMPLES`]); only changed while
    /// `latest` is held.
    history: std::sync::Mutex<VecDeque<snapshot::Sample>>,
}

impl Dashboard {
    /// A snapshot at most [`REUSE_SNAPSHOT`] old.
    async fn status(&self) -> Arc<Status> {
        let mut latest = self.latest.lock().await;
        if let Some((taken, status)) = latest.as_ref()
            && taken.elapsed() < REUSE_SNAPSHOT
        {
            return Arc::clone(status);
        }
        let mut status =
            snapshot::gather(&self.client, self.expiring_within, self.drill_report.as_deref()).await;
        {
            let mut history = self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if history.len() >= HISTORY_SAMPLES {
                history.pop_front();
            }
            history.push_back(status.sample());
            status.history = history.iter().cloned().collect();
        }
        let status = Arc::new(status);
        *latest = Some((Instant::now(), Arc::clone(&status)));
        status
    }
}

/// Runs `morsa dashboard` until Ctrl-C or SIGTERM.
pub fn run(args: &DashboardArgs) -> anyhow::Result<()> {
    morsa_plumbing::telemetry::init_logging("warn");
    runtime()?.block_on(async {
        let client = ConfigArg { config: args.config.clone(), json: false }.connect().await?;
        let dashboard = Arc::new(Dashboard {
            client,
            refresh_secs: args.refresh,
            expiring_within: args.expiring_within,
            drill_report: args.drill_report.clone(),
            latest: Mutex::new(None),
            history: std::sync::Mutex::new(VecDeque::with_capacity(HISTORY_SAMPLES)),
        });
        // Samples for the history also while nobody looks (ends with the process).
        let sampler = Arc::clone(&dashboard);
        tokio::spawn(async move {
            loop {
                sampler.status().await;
                tokio::time::sleep(Duration::from_secs(sampler.refresh_secs)).await;
            }
        });
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr().context("the listening address")?;
        outln!("dashboard listening on http://{address}");
        axum::serve(listener, router(dashboard))
            .with_graceful_shutdown(crate::coord::shutdown_signal())
            .await
            .context("the server stopped")
    })
}

fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new().route("/", get(page)).route("/status.json", get(status_json)).with_state(dashboard)
}

async fn page(State(dashboard): State<Arc<Dashboard>>) -> impl IntoResponse {
    let status = dashboard.status().await;
    ([(header::CACHE_CONTROL, "no-store")], Html(page::render(&status, dashboard.refresh_secs)))
}

async fn status_json(State(dashboard): State<Arc<Dashboard>>) -> impl IntoResponse {
    let status = dashboard.status().await;
    match serde_json::to_vec(&*status) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body)
            .into_response(),
        Err(error) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the status: {error}")).into_response()
        }
    }
}

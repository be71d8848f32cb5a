//! Waiting until a node is ready: it answers `/v1/health` as the node we expect, and it has
//! applied every event the coordinator has emitted (with no coordinator replica running, it
//! serves from its own store, and answering as itself is all it can do).
//!
//! The cluster's API is blocking; the HTTP clients are async. Each wait runs on a fresh thread
//! with its own small runtime, so it works the same whether or not the caller is inside a
//! tokio runtime (a runtime cannot be started or dropped on a runtime thread).

use std::future::Future;
use std::time::{Duration, Instant};

use morsa_api::client::{ClientOptions, CoordClient, NodeClient};
use morsa_api::node::NodeHealth;
use morsa_core::NodeId;
use redstuff::EncodingConfig;

/// How long a node may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(50);

/// Timeouts of one poll: short, so that a hung process cannot stretch the wait.
fn poll_options() -> ClientOptions {
    ClientOptions { timeout: Duration::from_secs(2), connect_timeout: Duration::from_secs(1) }
}

/// Runs `future` to completion on a new thread with its own runtime.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, std::io::Error>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                Ok(runtime.block_on(future))
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the waiting thread panicked")))
    })
}

/// Waits until the node at `url` answers as `node_id` and has caught up with the coordinator
/// replicas at `coordinator_urls` (none: no replica runs, so answering is enough), for at most
/// `bound`. The error says what was last seen.
pub(crate) async fn node_ready(
    coordinator_urls: &[String],
    url: &str,
    node_id: NodeId,
    n_shards: u16,
    bound: Duration,
) -> Result<NodeHealth, String> {
    let options = poll_options();
    let http = options.http_client().map_err(|error| error.to_string())?;
    let coord = match coordinator_urls {
        [] => None,
        urls => Some(
            CoordClient::with_http_urls(http.clone(), urls, options).map_err(|error| error.to_string())?,
        ),
    };
    let config = EncodingConfig::new(n_shards).map_err(|error| error.to_string())?;
    let node = NodeClient::with_http(http, url, config, options).map_err(|error| error.to_string())?;
    let deadline = Instant::now() + bound;
    loop {
        let system = match &coord {
            Some(coord) => Some(coord.system().await),
            None => None,
        };
        let last = match (node.health().await, system) {
            (Ok(health), _) if health.node_id != node_id => {
                return Err(format!(
                    "{url} answers as node {}, not {node_id}: is another program on its port?",
                    health.node_id
                ));
            }
            (Ok(health), None) => return Ok(health),
            (Ok(health), Some(Ok(system))) if health.event_cursor >= system.event_count => return Ok(health),
            (Ok(health), Some(Ok(system))) => format!(
                "it has applied {} of the coordinator's {} events",
                health.event_cursor, system.event_count
            ),
            (Ok(_), Some(Err(error))) => format!("the coordinator does not answer: {error}"),
            (Err(error), _) => format!("its health check fails: {error}"),
        };
        if Instant::now() >= deadline {
            return Err(format!("not ready within {bound:?}: {last}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

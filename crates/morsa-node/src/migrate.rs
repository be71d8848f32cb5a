//! Shard migration between committees (Walrus's shard states): a shard gained at an epoch
//! change is pulled from its owner in the previous committee, a shard lost is kept for its new
//! owner, and what cannot be pulled is left to recovery (`heal/`).
//!
//! The state of each moving shard (`active_sync`, `active_recover`, `locked_to_move`) and its
//! pull position are the core's, persisted in the node's store (`node::shard_book`).
//!
//! - `pull`: the new owner's pages, verified and stored, resumable.
//! - `read_through`: reads of a shard being pulled, answered from its previous owner.
//! - `serve`: the previous owner's pages, for the new owner only, and the deletion of a
//!   moved shard after its grace epoch.
//!
//! The protocol (route, signed request, states, grace) is described in docs/NODE.md, "Shard
//! migration".

pub(crate) mod pull;
pub(crate) mod read_through;
mod serve;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::blocking::Background;
use crate::config::RepairConfig;
use crate::node::Node;

/// How often the previous owner looks for locked shards whose grace is over.
const RELEASE_CHECK: Duration = Duration::from_secs(2);

/// Runs the puller and the release of locked shards until `stop` turns true; their work runs
/// on the node's low-priority pool, `background`.
pub(crate) async fn run(
    node: Arc<Node>,
    config: RepairConfig,
    background: Arc<Background>,
    mut stop: watch::Receiver<bool>,
) {
    let puller = tokio::spawn(pull::run(Arc::clone(&node), config, Arc::clone(&background), stop.clone()));
    loop {
        let releasing = Arc::clone(&node);
        match background.run(move || releasing.release_locked_shards()).await {
            Ok(released) => crate::node::migration_stats::add(
                &node.moves().stats.shards_released,
                morsa_core::convert::saturating_u64(released.len()),
            ),
            Err(error) => tracing::error!(%error, "cannot delete moved shards"),
        }
        tokio::select! {
            () = tokio::time::sleep(RELEASE_CHECK) => {}
            _ = stop.changed() => break,
        }
    }
    let _ = puller.await;
}

//! On-demand recovery: a request for a sliver this node should hold (a certified blob, an owned
//! shard) but lacks, or whose stored bytes fail their checksum, rebuilds just that sliver at
//! once, stores it and answers, without waiting for the repair queue. A request for recovery
//! symbols whose source slivers are missing does the same for those sources first (the single
//! route; the batch route, which peers' background repair uses, only queues them, so that one
//! node's repair never waits on another's).

use std::sync::Arc;
use std::time::Duration;

use morsa_store::{SliverKind, StoreError};
use redstuff::{BlobId, SliverType};

use crate::blob_info::Status;
use crate::blocking::blocking;
use crate::error::NodeError;
use crate::heal::repair_queue::Missing;
use crate::heal::repairer::Repairer;
use crate::heal::stats::add;
use crate::node::kind_of;

/// Whether the node must hold `blob_id`'s slivers of its shards: it is certified.
fn must_hold(repairer: &Repairer, blob_id: &BlobId) -> bool {
    let node = &repairer.node;
    node.blob_info(blob_id).is_ok_and(|info| info.status(node.view().epoch()) == Status::Certified)
}

/// The stored BCS sliver, rebuilt first if it is missing or damaged and should be here.
pub async fn sliver(
    repairer: &Arc<Repairer>,
    blob_id: BlobId,
    pair: u16,
    kind: SliverType,
) -> Result<Vec<u8>, NodeError> {
    let node = Arc::clone(&repairer.node);
    let first = blocking(move || node.sliver_bytes(&blob_id, pair, kind)).await;
    let shard = match &first {
        Err(NodeError::SliverNotStored { .. }) => repairer.node.owned_shard_of(&blob_id, pair)?,
        Err(NodeError::Store(StoreError::CorruptSliver { shard, kind: stored, .. })) => {
            let (node, shard, stored) = (Arc::clone(&repairer.node), *shard, *stored);
            blocking(move || node.drop_corrupt(&blob_id, shard, stored)).await?;
            add(&repairer.stats.corrupt, 1);
            shard
        }
        _ => return first,
    };
    if !must_hold(repairer, &blob_id) {
        return first.map_err(|_| NodeError::SliverNotStored { blob_id, pair, kind });
    }
    tracing::info!(%blob_id, shard, %kind, "rebuilding a missing sliver for a read");
    if let Err(error) = repairer.rebuild_now(blob_id, shard, kind).await {
        // The background repair may be rebuilding the same sliver now (the scrubber found it
        // damaged first, and peers answer one caller only so much at once): its result serves
        // the read as well as ours would.
        let target = Missing { blob_id, shard, kind: kind_of(kind) };
        repairer.wait_for_flight(target, Duration::from_millis(repairer.config.peer_timeout_ms)).await;
        let node = Arc::clone(&repairer.node);
        let stored = blocking(move || Ok(node.store().has_sliver(&blob_id.0, shard, kind_of(kind))?)).await?;
        if !stored {
            return Err(error);
        }
    }
    let node = Arc::clone(&repairer.node);
    blocking(move || node.sliver_bytes(&blob_id, pair, kind)).await
}

/// The owned shards lacking their `kind` sliver of `blob_id`, if it is certified.
fn missing_sources(repairer: &Repairer, blob_id: &BlobId, kind: SliverType) -> Result<Vec<u16>, NodeError> {
    if !must_hold(repairer, blob_id) {
        return Ok(Vec::new());
    }
    let node = &repairer.node;
    let mut missing = Vec::new();
    for shard in node.owned_shards() {
        if !node.store().has_sliver(&blob_id.0, shard, kind_of(kind))? {
            missing.push(shard);
        }
    }
    Ok(missing)
}

/// Rebuilds the missing source slivers (of the type orthogonal to `target_type`) of a symbol
/// request, so that it can be answered in full.
pub async fn rebuild_sources(
    repairer: &Arc<Repairer>,
    blob_id: BlobId,
    target_type: SliverType,
) -> Result<(), NodeError> {
    let kind = target_type.orthogonal();
    let engine = Arc::clone(repairer);
    let missing = blocking(move || missing_sources(&engine, &blob_id, kind)).await?;
    for shard in missing {
        if let Err(error) = repairer.rebuild_now(blob_id, shard, kind).await {
            tracing::debug!(%blob_id, shard, %error, "cannot rebuild a source sliver on demand");
        }
    }
    Ok(())
}

/// Queues the missing source slivers of batch items, due at once.
pub fn queue_sources(repairer: &Repairer, items: &[(BlobId, SliverType)]) {
    for (blob_id, target_type) in items {
        let kind = target_type.orthogonal();
        let Ok(missing) = missing_sources(repairer, blob_id, kind) else { continue };
        if missing.is_empty() {
            continue;
        }
        let stored: SliverKind = kind_of(kind);
        let bytes =
            repairer.node.blob_info(blob_id).map_or(0, |info| repairer.node.sliver_bytes_estimate(info.size));
        repairer.queue().push(
            *blob_id,
            missing.into_iter().map(|shard| (shard, stored)),
            std::time::Instant::now(),
            bytes,
        );
        repairer.note_missing([*blob_id]);
        repairer.wake.notify_waiters();
    }
}

//! On-demand recovery: a request for a sliver this node should hold (a certified blob, an owned
//! shard) but lacks, or whose stored bytes fail their checksum, rebuilds just that sliver at
//! once, stores it and answers, without waiting for the repair queue; a batched read rebuilds
//! all the slivers it lacks together, in one rebuild. A request for recovery
//! symbols whose source slivers are missing does the same for those sources first (the single
//! route; the batch route, which peers' background repair uses, only queues them, so that one
//! node's repair never waits on another's).

use std::sync::Arc;
use std::time::{Duration, Instant};

use morsa_store::{SliverKind, StoreError};
use redstuff::{BlobId, SliverType};

use crate::blob_info::Status;
use crate::blocking::blocking;
use crate::error::NodeError;
use crate::heal::repair_queue::Missing;
use crate::heal::repairer::Repairer;
use crate::heal::scrub::count_and_queue;
use crate::node::kind_of;

/// Peer timeouts after which a damaged sliver a read removed is due for background repair: an
/// on-demand rebuild takes at most about three (gathering, gathering again with proofs, waiting
/// for a background rebuild of the same sliver).
const BACKSTOP_PEER_TIMEOUTS: u32 = 3;

/// Whether the node must hold `blob_id`'s slivers of its shards: it is certified.
fn must_hold(repairer: &Repairer, blob_id: &BlobId) -> bool {
    let node = &repairer.node;
    node.blob_info(blob_id).is_ok_and(|info| info.status(node.view().epoch()) == Status::Certified)
}

/// The stored BCS slivers of `pairs`, in order, each rebuilt first if it is missing or
/// damaged and should be here: all of them in one rebuild (one round of peer calls and one
/// decode for the lot, under one `max_on_demand` permit), not one after another.
pub async fn slivers(
    repairer: &Arc<Repairer>,
    blob_id: BlobId,
    pairs: Vec<u16>,
    kind: SliverType,
) -> Vec<Result<Vec<u8>, NodeError>> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let pairs = Arc::new(pairs);
    let mut answers = read_all(repairer, blob_id, Arc::clone(&pairs), kind).await;
    // What a failed read needs: the shard to rebuild (damaged bytes were dropped by `read_all`).
    let mut lacking: Vec<(usize, u16)> = Vec::new();
    for (position, answer) in answers.iter_mut().enumerate() {
        let Err(NodeError::SliverNotStored { .. }) = answer else { continue };
        match repairer.node.owned_shard_of(&blob_id, pairs[position]) {
            Ok(shard) => lacking.push((position, shard)),
            Err(error) => *answer = Err(error),
        }
    }
    if lacking.is_empty() {
        return answers;
    }
    if !must_hold(repairer, &blob_id) {
        for (position, _) in lacking {
            answers[position] = Err(NodeError::SliverNotStored { blob_id, pair: pairs[position], kind });
        }
        return answers;
    }
    tracing::info!(%blob_id, slivers = lacking.len(), %kind, "rebuilding missing slivers for a read");
    let shards: Vec<u16> = lacking.iter().map(|(_, shard)| *shard).collect();
    let Ok(failed) = repairer.rebuild_now(blob_id, &shards, kind).await else {
        // The only refusal: the node is shutting down.
        for (position, _) in lacking {
            answers[position] = Err(NodeError::ShuttingDown);
        }
        return answers;
    };
    // The background repair may be rebuilding the same slivers now (the scrubber found them
    // damaged first, and peers answer one caller only so much at once): its results serve the
    // read as well as ours would. One wait for all of them, bounded by one peer timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(repairer.config.peer_timeout_ms);
    for shard in &failed {
        let target = Missing { blob_id, shard: *shard, kind: kind_of(kind) };
        repairer
            .wait_for_flight(target, deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
    }
    let again = Arc::new(lacking.iter().map(|(position, _)| pairs[*position]).collect::<Vec<u16>>());
    let reads = read_all(repairer, blob_id, again, kind).await;
    for ((position, shard), read) in lacking.into_iter().zip(reads) {
        // Stored by neither rebuild: the read says that ours failed.
        answers[position] = match read {
            Err(NodeError::SliverNotStored { .. }) if failed.contains(&shard) => {
                Err(NodeError::NotRebuilt { blob_id, shard, kind })
            }
            read => read,
        };
    }
    answers
}

/// The stored BCS slivers of `pairs`, read on one blocking thread. One failing its checksum
/// is removed, counted and queued for background repair on that same thread (due after
/// [`BACKSTOP_PEER_TIMEOUTS`] peer timeouts: the read's own rebuild normally stores it first,
/// and the queued entry then finds it there), and answers as not stored: a request cancelled
/// mid-way (its client went away, a hedge won) cannot leave a sliver removed but neither
/// counted nor queued. No loss is declared for it (the scrubber's and the scans' finds are).
async fn read_all(
    repairer: &Arc<Repairer>,
    blob_id: BlobId,
    pairs: Arc<Vec<u16>>,
    kind: SliverType,
) -> Vec<Result<Vec<u8>, NodeError>> {
    let engine = Arc::clone(repairer);
    let count = pairs.len();
    let reads = blocking(move || {
        let node = &engine.node;
        let mut dropped = Vec::new();
        let answers = pairs
            .iter()
            .map(|pair| match node.sliver_bytes(&blob_id, *pair, kind) {
                Err(NodeError::Store(StoreError::CorruptSliver { shard, kind: stored, .. })) => {
                    if node.drop_damaged(&blob_id, shard, stored, None)? {
                        dropped.push((shard, stored));
                    }
                    Err(NodeError::SliverNotStored { blob_id, pair: *pair, kind })
                }
                read => read,
            })
            .collect();
        let backstop =
            Instant::now() + Duration::from_millis(engine.config.peer_timeout_ms) * BACKSTOP_PEER_TIMEOUTS;
        count_and_queue(&engine, blob_id, &dropped, backstop);
        Ok(answers)
    });
    reads.await.unwrap_or_else(|_| (0..count).map(|_| Err(NodeError::WorkerFailed)).collect())
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
    if missing.is_empty() {
        return Ok(());
    }
    // What is not rebuilt is queued; the request is answered with the symbols there are.
    match repairer.rebuild_now(blob_id, &missing, kind).await {
        Ok(failed) => {
            for shard in failed {
                tracing::debug!(%blob_id, shard, "cannot rebuild a source sliver on demand");
            }
        }
        Err(error) => tracing::debug!(%blob_id, %error, "cannot rebuild source slivers on demand"),
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

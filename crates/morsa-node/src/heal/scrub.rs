//! The scrubber: re-verifies stored slivers at a bounded rate (`scrub_bytes_per_sec`), one
//! certified blob at a time. A sliver that fails its checksum, does not decode or does not
//! match its hash in the metadata is removed and queued for repair, due at once, and its blob is
//! declared lost to the coordinator (`losses`); reads of other data carry on. A read that finds
//! a sliver failing its checksum removes and counts it too ([`Node::drop_damaged`],
//! [`count_and_queue`]), queues it as a backstop and rebuilds it at once; it declares no loss.
//!
//! A pass walks every certified blob, then the scrubber rests `scrub_interval_ms`. Paused with
//! background repair.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use morsa_store::{SliverKind, StoreError};
use redstuff::BlobId;
use tokio::sync::watch;

use crate::error::NodeError;
use crate::heal::repairer::Repairer;
use crate::heal::stats::add;
use crate::heal::throttle::Throttle;
use crate::node::Node;
use crate::node::type_of;

/// How often a paused scrubber looks whether it was resumed.
const PAUSED_WAIT: Duration = Duration::from_millis(200);

/// What scrubbing one blob found.
#[derive(Debug, Default)]
pub struct BlobScrub {
    /// Slivers checked.
    pub slivers: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Damaged slivers found and removed.
    pub corrupt: Vec<(u16, SliverKind)>,
}

impl Node {
    /// Re-verifies every stored sliver of the owned shards of `blob_id` against the metadata,
    /// removing those that fail. Blocks.
    pub(crate) fn scrub_blob(&self, blob_id: &BlobId) -> Result<BlobScrub, NodeError> {
        let mut scrub = BlobScrub::default();
        let metadata = match self.verified_metadata(blob_id) {
            Ok(metadata) => metadata,
            // No metadata yet: blob sync fetches it and rebuilds the slivers.
            Err(NodeError::MetadataNotStored(_)) => return Ok(scrub),
            Err(error) => return Err(error),
        };
        for shard in self.owned_shards() {
            for kind in [SliverKind::Primary, SliverKind::Secondary] {
                let bytes = match self.store().get_sliver(&blob_id.0, shard, kind) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => continue,
                    Err(StoreError::CorruptSliver { .. }) => {
                        self.drop_found(blob_id, shard, kind, None, &mut scrub);
                        continue;
                    }
                    Err(error) => return Err(error.into()),
                };
                scrub.slivers += 1;
                scrub.bytes += bytes.len();
                let pair =
                    u16::try_from(blob_id.pair_for_shard(usize::from(shard), self.config().n_shards()))
                        .expect("pairs are below n, which is a u16");
                if let Err(error) = self.check_sliver(&metadata, pair, type_of(kind), &bytes) {
                    tracing::error!(%blob_id, shard, %kind, %error, "a stored sliver does not match its hash");
                    self.drop_found(blob_id, shard, kind, Some(&bytes), &mut scrub);
                }
            }
        }
        Ok(scrub)
    }

    /// Removes a damaged stored sliver, so that it reads as missing and is rebuilt, if it is
    /// still what was `found` damaged (`None`: its record failed the checksum; see
    /// `NodeStore::delete_damaged_sliver`). Answers whether it was removed, by this call: a
    /// sliver two readers found is removed, and counted, once.
    pub fn drop_damaged(
        &self,
        blob_id: &BlobId,
        shard: u16,
        kind: SliverKind,
        found: Option<&[u8]>,
    ) -> Result<bool, NodeError> {
        let removed = self.store().delete_damaged_sliver(&blob_id.0, shard, kind, found)?;
        if removed {
            tracing::error!(%blob_id, shard, %kind, "removed a damaged sliver; it will be rebuilt from other nodes");
        }
        Ok(removed)
    }

    /// [`Node::drop_damaged`] for the scrubber: what it removed goes into `scrub`; a failure
    /// to remove is logged and leaves the sliver for the next pass, without losing what this
    /// blob's scrub found so far.
    fn drop_found(
        &self,
        blob_id: &BlobId,
        shard: u16,
        kind: SliverKind,
        found: Option<&[u8]>,
        scrub: &mut BlobScrub,
    ) {
        match self.drop_damaged(blob_id, shard, kind, found) {
            Ok(true) => scrub.corrupt.push((shard, kind)),
            Ok(false) => {}
            Err(error) => tracing::error!(%blob_id, shard, %kind, %error, "cannot remove a damaged sliver"),
        }
    }
}

/// Counts damaged slivers of `blob_id` the scrubber removed and queues them for repair, due at
/// once, and has the blob declared lost to the coordinator until then (`losses`; never waited
/// for here).
pub fn queue_corrupt(repairer: &Repairer, blob_id: BlobId, corrupt: &[(u16, SliverKind)]) {
    if corrupt.is_empty() {
        return;
    }
    count_and_queue(repairer, blob_id, corrupt, Instant::now());
    repairer.note_missing([blob_id]);
    repairer.losses.note([blob_id]);
}

/// Counts damaged slivers of `blob_id` that were removed (`corrupt_slivers`) and queues them
/// for background repair, due at `due`.
pub fn count_and_queue(repairer: &Repairer, blob_id: BlobId, corrupt: &[(u16, SliverKind)], due: Instant) {
    if corrupt.is_empty() {
        return;
    }
    add(&repairer.stats.corrupt, corrupt.len());
    let bytes =
        repairer.node.blob_info(&blob_id).map_or(0, |info| repairer.node.sliver_bytes_estimate(info.size));
    repairer.queue().push(blob_id, corrupt.iter().copied(), due, bytes);
    repairer.wake.notify_waiters();
}

/// Scrubs until `stop` turns true (see the module docs).
pub async fn run(repairer: Arc<Repairer>, mut stop: watch::Receiver<bool>) {
    let rate = repairer.config.scrub_bytes_per_sec;
    if rate == 0 {
        return;
    }
    let throttle = Throttle::new(rate);
    let rest = Duration::from_millis(repairer.config.scrub_interval_ms);
    loop {
        let node = Arc::clone(&repairer.node);
        let blobs = repairer.background.run(move || node.certified_blobs()).await.unwrap_or_default();
        for blob_id in blobs {
            while repairer.is_paused() {
                tokio::select! {
                    () = tokio::time::sleep(PAUSED_WAIT) => {}
                    _ = stop.changed() => return,
                }
            }
            if *stop.borrow() {
                return;
            }
            let node = Arc::clone(&repairer.node);
            match repairer.background.run(move || node.scrub_blob(&blob_id)).await {
                Ok(scrub) => {
                    add(&repairer.stats.scrubbed_slivers, scrub.slivers);
                    add(&repairer.stats.scrubbed_bytes, scrub.bytes);
                    queue_corrupt(&repairer, blob_id, &scrub.corrupt);
                    let wait = throttle.reserve(morsa_core::convert::saturating_u64(scrub.bytes));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(error) => tracing::warn!(%blob_id, %error, "cannot scrub a blob"),
            }
        }
        repairer.stats.scrub_passes.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(rest) => {}
            _ = stop.changed() => return,
        }
    }
}

//! The node's part of the system-wide availability margin: it tells every coordinator replica
//! which slivers of certified blobs it lacks, and orders its repair queue by the margins the
//! coordinators answer (see `morsa_api::coord::AvailabilitySummary` and `repair_queue`).
//!
//! - **What it knows it lacks.** The blobs found lacking slivers (by a scan, a certification,
//!   the scrubber, a read) are noted; each summary checks every noted blob again against the
//!   store, so that what was rebuilt or uploaded since drops out, and lists per owned shard the
//!   blobs still lacking a sliver there (the count is complete; the lists hold at most
//!   [`MAX_LISTED_BLOBS`], lowest system-wide margin first).
//! - **When.** Every `report_interval_ms`, and right after each scan and each batch of newly
//!   certified blobs due at once, *before* their slivers are queued: the answer's margins
//!   order them on their very first attempt.
//! - **To whom.** Every coordinator URL of the configuration, at once: each replica keeps its
//!   own soft state. The smallest margin answered per blob counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use morsa_api::client::CoordClient;
use morsa_api::coord::{AvailabilitySummary, MAX_LISTED_BLOBS, ShardAvailability, SignedAvailability};
use redstuff::BlobId;
use tokio::sync::watch;

use crate::blocking::blocking;
use crate::error::NodeError;
use crate::heal::repairer::Repairer;
use crate::node::Node;
use morsa_plumbing::now_ms;

/// Longest a scan waits for the coordinators' margins before it queues what it found.
const QUEUEING_WAIT: Duration = Duration::from_secs(3);

impl Repairer {
    fn known_missing(&self) -> MutexGuard<'_, BTreeSet<BlobId>> {
        self.known_missing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes `blob_ids` as lacking slivers here (checked again at each summary).
    pub(crate) fn note_missing(&self, blob_ids: impl IntoIterator<Item = BlobId>) {
        self.known_missing().extend(blob_ids);
    }

    /// Replaces what is noted with what a full scan found.
    pub(crate) fn replace_missing(&self, blob_ids: BTreeSet<BlobId>) {
        *self.known_missing() = blob_ids;
    }

    /// One client per coordinator replica.
    fn replica_clients(&self) -> &[CoordClient] {
        self.replica_clients.get_or_init(|| {
            let Some(coord) = self.coord.get() else { return Vec::new() };
            coord.base_urls().into_iter().filter_map(|url| CoordClient::new(url).ok()).collect()
        })
    }

    /// Sends a summary to every replica and orders the queue by the margins answered; at most
    /// [`QUEUEING_WAIT`]. Used before queueing what was just found.
    pub(crate) async fn exchange_before_queueing(&self) {
        if tokio::time::timeout(QUEUEING_WAIT, self.exchange_availability()).await.is_err() {
            tracing::debug!("no availability answer in time; queueing without it");
        }
    }

    /// Sends a summary to every replica and orders the queue by the margins answered. Returns
    /// whether some replica answered.
    pub(crate) async fn exchange_availability(&self) -> bool {
        let clients = self.replica_clients();
        if clients.is_empty() {
            return false;
        }
        let known = Arc::new(self.known_missing().clone());
        let ranks = self.queue().system_margins().clone();
        let (node, checked) = (Arc::clone(&self.node), Arc::clone(&known));
        let made = blocking(move || summarize(&node, &checked, &ranks)).await;
        let (signed, still) = match made {
            Ok(made) => made,
            Err(error) => {
                tracing::warn!(%error, "cannot summarize the slivers this node lacks");
                return false;
            }
        };
        // Drop what was rebuilt or uploaded since; keep what was noted in the meantime.
        self.known_missing().retain(|blob_id| still.contains(blob_id) || !known.contains(blob_id));
        let mut calls = tokio::task::JoinSet::new();
        for client in clients {
            let (client, signed) = (client.clone(), signed.clone());
            calls.spawn(
                async move { (client.base_url().to_owned(), client.submit_availability(&signed).await) },
            );
        }
        let mut margins: HashMap<BlobId, u32> = HashMap::new();
        let mut answered = false;
        while let Some(joined) = calls.join_next().await {
            let Ok((url, answer)) = joined else { continue };
            match answer {
                Ok(answer) => {
                    answered = true;
                    for margin in answer.margins {
                        let entry = margins.entry(margin.blob_id).or_insert(margin.margin_shards);
                        *entry = (*entry).min(margin.margin_shards);
                    }
                }
                Err(error) => {
                    tracing::debug!(%url, %error, "a coordinator did not take the availability summary")
                }
            }
        }
        if answered {
            self.queue().set_system_margins(margins);
        }
        answered
    }
}

/// Checks each of `known` against the store and summarizes what the owned shards lack,
/// listing the blobs of lowest `ranks` (system-wide margins last answered) first. Blocking.
fn summarize(
    node: &Node,
    known: &BTreeSet<BlobId>,
    ranks: &HashMap<BlobId, u32>,
) -> Result<(SignedAvailability, BTreeSet<BlobId>), NodeError> {
    let mut lacking: BTreeMap<u16, Vec<BlobId>> =
        node.owned_shards().into_iter().map(|shard| (shard, Vec::new())).collect();
    let mut still = BTreeSet::new();
    for blob_id in known {
        // A blob whose record is gone (garbage-collected) lacks nothing any more.
        let Ok((missing, _)) = node.missing_of(blob_id) else { continue };
        let shards: BTreeSet<u16> = missing.iter().map(|(shard, _)| *shard).collect();
        for shard in shards {
            if let Some(blobs) = lacking.get_mut(&shard) {
                blobs.push(*blob_id);
                still.insert(*blob_id);
            }
        }
    }
    let summary = AvailabilitySummary {
        node: node.id(),
        epoch: node.view().epoch(),
        time_ms: now_ms(),
        shards: listed(lacking, ranks),
    };
    let signature = node.key().sign(&summary.message());
    Ok((SignedAvailability { summary, signature }, still))
}

/// The shards' summaries: every count whole, at most [`MAX_LISTED_BLOBS`] blobs listed in all,
/// those of lowest rank (unranked last) first.
fn listed(lacking: BTreeMap<u16, Vec<BlobId>>, ranks: &HashMap<BlobId, u32>) -> Vec<ShardAvailability> {
    let mut all: Vec<(u32, BlobId, u16)> = lacking
        .iter()
        .flat_map(|(shard, blobs)| {
            blobs.iter().map(|blob_id| (ranks.get(blob_id).copied().unwrap_or(u32::MAX), *blob_id, *shard))
        })
        .collect();
    all.sort_unstable();
    all.truncate(MAX_LISTED_BLOBS);
    let mut lists: BTreeMap<u16, Vec<BlobId>> = BTreeMap::new();
    for (_, blob_id, shard) in all {
        lists.entry(shard).or_default().push(blob_id);
    }
    lacking
        .into_iter()
        .map(|(shard, blobs)| ShardAvailability {
            shard,
            missing_blobs: morsa_core::convert::saturating_u64(blobs.len()),
            blobs: lists.remove(&shard).unwrap_or_default(),
        })
        .collect()
}

/// Sends a summary every `report_interval_ms` until `stop` turns true.
pub async fn run(repairer: Arc<Repairer>, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_millis(repairer.config.report_interval_ms.max(1));
    loop {
        if *stop.borrow() {
            return;
        }
        repairer.exchange_availability().await;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_count_is_whole_and_the_lists_keep_the_lowest_margins() {
        let blob = |byte: u8| BlobId([byte; 32]);
        let lacking = BTreeMap::from([
            (3, (0..MAX_LISTED_BLOBS).map(|index| blob(u8::try_from(index % 200).unwrap())).collect()),
            (4, vec![blob(250), blob(251)]),
            (5, Vec::new()),
        ]);
        // Blob 251 is the one missing in most places: it is listed although shard 3 alone
        // would fill the lists.
        let ranks = HashMap::from([(blob(251), 0), (blob(7), 1)]);
        let shards = listed(lacking, &ranks);
        let counts: Vec<(u16, u64, usize)> =
            shards.iter().map(|shard| (shard.shard, shard.missing_blobs, shard.blobs.len())).collect();
        assert_eq!(counts, [(3, 2048, 2047), (4, 2, 1), (5, 0, 0)]);
        assert_eq!(shards[1].blobs, [blob(251)]);
        assert_eq!(shards[0].blobs[0], blob(7));
    }
}

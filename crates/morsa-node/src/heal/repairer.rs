//! Rebuilding missing slivers from peers' recovery symbols: the engine behind blob sync, lazy
//! repair and on-demand recovery.
//!
//! A rebuild of a set of slivers (many blobs at once):
//!
//! 1. For each blob, the metadata: stored, or fetched from peers and checked against the blob
//!    ID (then stored). Only certified blobs are rebuilt.
//! 2. Symbols from this node's own slivers of the other type, then from peers
//!    ([`gather`]): one batched request per peer, **without proofs**.
//! 3. Decode each sliver and check it against its hash in the metadata
//!    ([`Proofs::Skip`]). A match is stored (group commit) and done.
//! 4. A mismatch means a peer lied or the blob is inconsistent: the symbols are fetched again
//!    **with proofs**, each checked (a peer whose symbols fail is suspected and its symbols
//!    dropped), and the sliver rebuilt with [`Proofs::Check`]. If proven symbols still give a
//!    mismatch, they are an inconsistency proof: see `invalid`.
//!
//! Background work is throttled ([`Throttle`]), bounded (`concurrency` rounds of at most
//! `batch_slivers`) and does its CPU work on the node's low-priority pool ([`Background`]);
//! on-demand rebuilds are not throttled and run at normal priority, but at most
//! `max_on_demand` run at once. Every peer call has the repair timeout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use morsa_api::client::CoordClient;
use redstuff::wire::to_bcs;
use redstuff::{BlobId, Proofs, RecoveryError, SliverType, VerifiedMetadata};
use tokio::sync::{Notify, Semaphore};

use crate::blob_info::Status;
use crate::blocking::{Background, Priority, blocking};
use crate::config::RepairConfig;
use crate::error::NodeError;
use crate::heal::fetch::{Want, gather};
use crate::heal::invalid;
use crate::heal::losses::Losses;
use crate::heal::peers::{Peer, Peers};
use crate::heal::repair_queue::{Missing, RepairQueue};
use crate::heal::stats::{RepairStats, add};
use crate::heal::throttle::Throttle;
use crate::ingest::QueuedSliver;
use crate::node::{Node, kind_of, type_of};
use morsa_plumbing::now_ms;

/// What one rebuild did with its slivers.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Rebuilt and stored.
    pub rebuilt: Vec<Missing>,
    /// Not rebuilt; worth retrying.
    pub failed: Vec<Missing>,
    /// Not needed any more (the blob is not certified, or was proven inconsistent).
    pub dropped: Vec<Missing>,
    /// Availability margin per blob, where the peers' answers tell it (see `repair_queue`).
    pub margins: HashMap<BlobId, u32>,
}

/// The repair engine and its queue.
pub struct Repairer {
    pub(crate) node: Arc<Node>,
    pub(crate) config: RepairConfig,
    pub(crate) peers: Arc<Peers>,
    pub(crate) queue: Mutex<RepairQueue>,
    /// Woken when work is queued or repair resumes.
    pub(crate) wake: Notify,
    /// Woken when background rebuilds end their flight (stored or failed).
    pub(crate) flights_ended: Notify,
    paused: AtomicBool,
    pub(crate) stats: RepairStats,
    throttle: Throttle,
    on_demand: Semaphore,
    pub(crate) coord: OnceLock<CoordClient>,
    /// Set once a full scan has completed.
    pub(crate) scanned: AtomicBool,
    /// Blobs found lacking slivers here, for the availability summaries (see `availability`).
    pub(crate) known_missing: Mutex<BTreeSet<BlobId>>,
    /// Blobs found lost by a scan or the scrubber, to declare (see `losses`).
    pub(crate) losses: Losses,
    /// A client of each coordinator replica, made from `coord` on first use.
    pub(crate) replica_clients: OnceLock<Vec<CoordClient>>,
    /// When this engine started (ms since the Unix epoch): blobs certified before then were
    /// certified while this process was not running, so no upload to it is still coming.
    pub(crate) started_ms: u64,
    /// The low-priority pool the node's background work runs on (shared with the recovery
    /// routes and shard migration).
    pub(crate) background: Arc<Background>,
}

impl Repairer {
    /// The engine of `node`, configured by `config`.
    pub fn new(node: Arc<Node>, config: RepairConfig) -> Self {
        let peers = Peers::new(node.id(), node.config(), Duration::from_millis(config.peer_timeout_ms));
        Self {
            peers: Arc::new(peers),
            queue: Mutex::new(RepairQueue::new(config.max_queued_slivers, config.max_attempts)),
            wake: Notify::new(),
            flights_ended: Notify::new(),
            paused: AtomicBool::new(config.paused),
            stats: RepairStats::default(),
            throttle: Throttle::new(config.bandwidth_bytes_per_sec),
            on_demand: Semaphore::new(config.max_on_demand.max(1)),
            coord: OnceLock::new(),
            scanned: AtomicBool::new(false),
            known_missing: Mutex::new(BTreeSet::new()),
            losses: Losses::default(),
            replica_clients: OnceLock::new(),
            started_ms: now_ms(),
            background: Arc::new(Background::new(config.background_nice)),
            node,
            config,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &RepairStats {
        &self.stats
    }

    /// The peers and what is known of them.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// The queue.
    pub fn queue(&self) -> MutexGuard<'_, RepairQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where invalid-blob reports go; set once, by the server.
    pub fn set_coordinator(&self, coord: CoordClient) {
        let _ = self.coord.set(coord);
    }

    /// Pauses or resumes background repair and scrubbing.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        tracing::info!(paused, "background repair {}", if paused { "paused" } else { "resumed" });
        self.wake.notify_waiters();
    }

    /// Whether background repair is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether a full scan ran and nothing is queued or in flight.
    pub fn caught_up(&self) -> bool {
        let queue = self.queue();
        self.scanned.load(Ordering::Acquire) && queue.is_empty() && queue.in_flight() == 0
    }

    /// Rebuilds the `kind` slivers of `shards` of `blob_id` now, for a request that needs
    /// them, together (one round of peer calls, one decode), and stores them; answers the
    /// shards not rebuilt. At most `max_on_demand` such rebuilds run at once; not throttled,
    /// and runs while background repair is paused.
    pub async fn rebuild_now(
        &self,
        blob_id: BlobId,
        shards: &[u16],
        kind: SliverType,
    ) -> Result<BTreeSet<u16>, NodeError> {
        let _permit = self.on_demand.acquire().await.map_err(|_| NodeError::ShuttingDown)?;
        let targets: Vec<Missing> =
            shards.iter().map(|shard| Missing { blob_id, shard: *shard, kind: kind_of(kind) }).collect();
        let report = self.rebuild(targets.clone(), false).await;
        let (rebuilt, failed): (Vec<Missing>, Vec<Missing>) =
            targets.into_iter().partition(|target| report.rebuilt.contains(target));
        add(&self.stats.on_demand, rebuilt.len());
        Ok(failed.into_iter().map(|target| target.shard).collect())
    }

    /// Waits (at most `limit`) until the background repair no longer has `target` in flight:
    /// a read whose own rebuild failed may find the sliver stored by it.
    pub(crate) async fn wait_for_flight(&self, target: Missing, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let ended = self.flights_ended.notified();
            tokio::pin!(ended);
            // Registered before the check, so an end between the two is not missed.
            ended.as_mut().enable();
            if !self.queue().is_in_flight(&target) {
                return;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return;
            }
        }
    }

    /// Rebuilds `targets` (see the module docs); `throttled` for background work, whose CPU
    /// work then runs on the low-priority pool too.
    pub async fn rebuild(&self, targets: Vec<Missing>, throttled: bool) -> RebuildReport {
        let priority = if throttled { Priority::Background } else { Priority::Serving };
        let mut report = RebuildReport::default();
        let mut by_blob: BTreeMap<BlobId, Vec<Missing>> = BTreeMap::new();
        for target in targets {
            by_blob.entry(target.blob_id).or_default().push(target);
        }
        let mut wants = Vec::new();
        for (blob_id, targets) in by_blob {
            match self.prepare(blob_id, &targets, priority).await {
                Ok(Some(mut prepared)) => wants.append(&mut prepared),
                Ok(None) => report.dropped.extend(targets),
                Err(error) => {
                    tracing::debug!(%blob_id, %error, "cannot prepare a rebuild");
                    report.failed.extend(targets);
                }
            }
        }
        if wants.is_empty() {
            return report;
        }
        let (committee, zones) = self.node.committee_and_zones();
        let peers = self.peers.ranked(&committee, &zones);
        self.gather(&mut wants, &peers, false, priority).await;
        margins(&mut report, &wants, &peers, self.node.config());
        let (stored, mut suspects) = self.decode(wants, Proofs::Skip, priority).await;
        report.rebuilt.extend(stored.rebuilt);
        report.failed.extend(stored.failed);
        if suspects.is_empty() {
            return report;
        }
        tracing::warn!(
            slivers = suspects.len(),
            "rebuilt slivers do not match their hashes; asking again with proofs"
        );
        for want in &mut suspects {
            want.keep_local();
        }
        self.gather(&mut suspects, &peers, true, priority).await;
        let (stored, inconsistent) = self.decode(suspects, Proofs::Check, priority).await;
        report.rebuilt.extend(stored.rebuilt);
        report.failed.extend(stored.failed);
        let mut proven = BTreeMap::new();
        for want in inconsistent {
            report.dropped.push(want.target);
            proven.entry(want.target.blob_id).or_insert(want);
        }
        for (blob_id, want) in proven {
            self.queue().forget(&blob_id);
            let reporter = invalid::Reporter {
                node: &self.node,
                peers: &self.peers,
                coord: self.coord.get(),
                stats: &self.stats,
            };
            invalid::report_inconsistent(&reporter, &want).await;
        }
        report
    }

    /// Gathers symbols for `wants`; background work (`priority`) is throttled.
    async fn gather(&self, wants: &mut Vec<Want>, peers: &[Arc<Peer>], proofs: bool, priority: Priority) {
        let throttle = &self.throttle;
        let checking = (self.background.as_ref(), priority);
        let gathered = gather(wants, peers, &self.peers, proofs, checking, |bytes| async move {
            if priority == Priority::Background {
                throttle.take(bytes).await;
            }
        })
        .await;
        self.stats.fetched_bytes.fetch_add(gathered.fetched_bytes, Ordering::Relaxed);
    }

    /// The wants of one blob's targets, with this node's own symbols; `None` if the blob needs
    /// no rebuild (not certified); its own symbols are computed at `priority`.
    async fn prepare(
        &self,
        blob_id: BlobId,
        targets: &[Missing],
        priority: Priority,
    ) -> Result<Option<Vec<Want>>, NodeError> {
        let node = Arc::clone(&self.node);
        let certified =
            blocking(move || Ok(node.blob_info(&blob_id)?.status(node.view().epoch()) == Status::Certified))
                .await?;
        if !certified {
            return Ok(None);
        }
        let metadata = Arc::new(self.metadata(blob_id).await?);
        let node = Arc::clone(&self.node);
        let targets = targets.to_vec();
        let wants = self
            .background
            .run_at(priority, move || {
                let mut wants = Vec::new();
                for kind in [SliverType::Primary, SliverType::Secondary] {
                    let mut of_kind = Vec::new();
                    for target in targets.iter().filter(|target| type_of(target.kind) == kind) {
                        // Already there (uploaded or rebuilt since it was queued): nothing to do.
                        if !node.store().has_sliver(&blob_id.0, target.shard, target.kind)? {
                            of_kind.push((*target, node.sliver_index(&blob_id, target.shard, kind)));
                        }
                    }
                    if of_kind.is_empty() {
                        continue;
                    }
                    // This node's own slivers of the other kind, each expanded once for all targets.
                    let indices: Vec<u16> = of_kind.iter().map(|(_, index)| *index).collect();
                    let local = node.recovery_symbols_towards(&blob_id, &indices, kind).unwrap_or_default();
                    let mut local = local.into_iter();
                    for (target, index) in of_kind {
                        let symbols = local.next().unwrap_or_default();
                        wants.push(Want::new(target, kind, index, Arc::clone(&metadata), symbols));
                    }
                }
                Ok(wants)
            })
            .await?;
        Ok(Some(wants))
    }

    /// The blob's verified metadata: stored, or fetched from the best peer that has it (checked
    /// against the blob ID, then stored).
    pub async fn metadata(&self, blob_id: BlobId) -> Result<VerifiedMetadata, NodeError> {
        let node = Arc::clone(&self.node);
        match blocking(move || node.verified_metadata(&blob_id)).await {
            Err(NodeError::MetadataNotStored(_)) => {}
            result => return result,
        }
        let (committee, zones) = self.node.committee_and_zones();
        for peer in self.peers.ranked(&committee, &zones) {
            let call = self.peers.start(&peer.node_id);
            let answer = peer.client.get_metadata(&blob_id).await;
            call.finish(answer.is_ok());
            let Ok(with_id) = answer else { continue };
            let bytes = to_bcs(&with_id);
            let len = bytes.len();
            // Checked against the blob ID (on a blocking thread: it hashes n sliver roots)
            // as any upload is, and stored.
            let node = Arc::clone(&self.node);
            match blocking(move || node.store_metadata(&blob_id, &bytes)).await {
                Ok(verified) => {
                    add(&self.stats.metadata_bytes, len);
                    return Ok(verified);
                }
                Err(
                    error @ (NodeError::Malformed(_)
                    | NodeError::MetadataOfOtherBlob { .. }
                    | NodeError::MetadataMismatch(_)),
                ) => {
                    tracing::warn!(node = %peer.node_id, %blob_id, %error, "a peer sent metadata that does not match the blob ID");
                }
                Err(error) => return Err(error),
            }
        }
        Err(NodeError::NoPeerMetadata(blob_id))
    }

    /// Decodes each complete want with `proofs` and stores the matching slivers, at `priority`.
    /// Returns what was stored or failed, and the wants whose rebuilt sliver mismatched (with
    /// [`Proofs::Check`]: proven inconsistent; their symbols are the proof).
    async fn decode(
        &self,
        wants: Vec<Want>,
        proofs: Proofs,
        priority: Priority,
    ) -> (RebuildReport, Vec<Want>) {
        let node = Arc::clone(&self.node);
        let result =
            self.background.run_at(priority, move || Ok(decode_and_store(&node, wants, proofs))).await;
        let Ok((report, mismatched, bytes)) = result else {
            tracing::error!("a rebuild panicked");
            return (RebuildReport::default(), Vec::new());
        };
        add(&self.stats.rebuilt_slivers, report.rebuilt.len());
        add(&self.stats.rebuilt_bytes, bytes);
        add(&self.stats.failed, report.failed.len());
        (report, mismatched)
    }
}

/// [`Repairer::decode`]'s work: the wants' slivers rebuilt, those matching their hash stored
/// (group commit), and the bytes stored. Blocks.
fn decode_and_store(node: &Node, wants: Vec<Want>, proofs: Proofs) -> (RebuildReport, Vec<Want>, usize) {
    let mut report = RebuildReport::default();
    let mut mismatched = Vec::new();
    let mut bytes_rebuilt = 0usize;
    let mut matched = Vec::new();
    // The slivers of one blob and kind are rebuilt together: those gathered from the
    // same sources share one decode (`VerifiedMetadata::rebuild_slivers`).
    let mut groups: BTreeMap<(BlobId, bool), Vec<Want>> = BTreeMap::new();
    for want in wants {
        if want.is_complete() {
            groups.entry((want.target.blob_id, want.kind == SliverType::Primary)).or_default().push(want);
        } else {
            report.failed.push(want.target);
        }
    }
    for group in groups.into_values() {
        let kind = group[0].kind;
        let results = match proofs {
            // Peers' answers without proofs come as blocks, taken by reference.
            Proofs::Skip => {
                let cells: Vec<Vec<redstuff::SymbolRef<'_>>> = group.iter().map(Want::cells).collect();
                let targets: Vec<(usize, &[redstuff::SymbolRef<'_>])> = group
                    .iter()
                    .zip(&cells)
                    .map(|(want, cells)| (usize::from(want.index), cells.as_slice()))
                    .collect();
                group[0].metadata.rebuild_slivers_unproven(kind, &targets)
            }
            Proofs::Check => {
                let targets: Vec<(usize, &[redstuff::RecoverySymbol])> =
                    group.iter().map(|want| (usize::from(want.index), want.symbols.as_slice())).collect();
                group[0].metadata.rebuild_slivers(kind, &targets, proofs)
            }
        };
        for (want, result) in group.into_iter().zip(results) {
            match result {
                Ok(sliver) => matched.push(rebuilt(want.target, &sliver)),
                Err(RecoveryError::RebuiltMismatch { .. } | RecoveryError::Inconsistent { .. }) => {
                    mismatched.push(want);
                }
                Err(error) => {
                    tracing::debug!(%error, "cannot rebuild a sliver");
                    report.failed.push(want.target);
                }
            }
        }
    }
    // Stored together: the slivers share group commits instead of one fsync each.
    let targets: Vec<(Missing, usize)> = matched
        .iter()
        .map(|(target, sliver): &(Missing, QueuedSliver)| (*target, sliver.bytes.len()))
        .collect();
    let slivers = matched.into_iter().map(|(_, sliver)| sliver).collect();
    for ((target, len), stored) in targets.into_iter().zip(node.ingest_submit_all(slivers)) {
        match stored {
            Ok(()) => {
                bytes_rebuilt += len;
                report.rebuilt.push(target);
            }
            Err(error) => {
                tracing::error!(%error, "cannot store a rebuilt sliver");
                report.failed.push(target);
            }
        }
    }
    (report, mismatched, bytes_rebuilt)
}

/// Estimates each blob's margin from who answered (see `repair_queue`).
fn margins(
    report: &mut RebuildReport,
    wants: &[Want],
    peers: &[Arc<Peer>],
    config: redstuff::EncodingConfig,
) {
    let mut by_blob: BTreeMap<
        BlobId,
        (std::collections::HashSet<morsa_core::NodeId>, std::collections::BTreeSet<u16>),
    > = BTreeMap::new();
    for want in wants {
        let (silent, own) = by_blob.entry(want.target.blob_id).or_default();
        silent.extend(want.silent.iter().copied());
        own.insert(want.target.shard);
    }
    for (blob_id, (silent, own)) in by_blob {
        let lost: usize =
            peers.iter().filter(|peer| silent.contains(&peer.node_id)).map(|peer| peer.shards.len()).sum();
        let healthy = config.n_shards().saturating_sub(lost + own.len());
        let margin = healthy.saturating_sub(config.kp());
        report.margins.insert(blob_id, morsa_core::convert::saturating_u32(margin));
    }
}

/// A rebuilt sliver that was checked against the metadata, ready for the group committer.
fn rebuilt(target: Missing, sliver: &redstuff::Sliver) -> (Missing, QueuedSliver) {
    let bytes = to_bcs(sliver);
    (
        target,
        QueuedSliver {
            blob_id: target.blob_id.0,
            shard: target.shard,
            kind: target.kind,
            bytes: bytes.into(),
        },
    )
}

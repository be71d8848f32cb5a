//! Reading a blob: verified metadata from the best-scored nodes, then verified primary
//! slivers (`slivers`), decoded when enough are in.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use morsa_api::client::ClientError as ApiError;
use morsa_api::coord::BlobStatusKind;
use redstuff::{BlobId, DecodeError, SliverType, VerifiedMetadata};

use crate::nodes::NodeSet;
use crate::read_stats::{ReadStats, micros_since};
use crate::{Client, Error, NodeFailure, Progress};

/// Bytes of a metadata answer per shard (two sliver hashes and their encoding), for its score.
pub(crate) const METADATA_BYTES_PER_SHARD: u64 = 70;

/// A sliver a node served that did not verify: that node is faulty or its disk is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSliver {
    /// The node's address.
    pub node: String,
    /// The sliver's kind.
    pub kind: SliverType,
    /// The sliver's index.
    pub index: usize,
    /// Why it was refused.
    pub reason: String,
}

/// A blob read back, and what went wrong on the way without stopping the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The blob's bytes.
    pub data: Vec<u8>,
    /// Slivers that failed verification (their nodes served bad data).
    pub bad_slivers: Vec<BadSliver>,
    /// Nodes that could not serve.
    pub failures: Vec<NodeFailure>,
    /// No coordinator answered: the blob's certification was checked with the storage
    /// nodes, and the committee came from the cache or the nodes.
    pub without_coordinator: bool,
    /// Which nodes were asked for slivers, and how each request ended.
    pub stats: ReadStats,
}

/// What a read has learnt about the nodes so far.
#[derive(Debug, Default)]
pub(crate) struct ReadLog {
    pub(crate) bad_slivers: Vec<BadSliver>,
    pub(crate) failures: Vec<NodeFailure>,
    /// Members that failed to connect: their other slivers are not asked for.
    pub(crate) down: HashSet<usize>,
    /// The blob's status came from the nodes: no coordinator answered.
    pub(crate) without_coordinator: bool,
    /// The sliver requests so far.
    pub(crate) stats: ReadStats,
}

impl ReadLog {
    /// `member` failed with `error` (its score was told already).
    pub(crate) fn node_failed(&mut self, nodes: &NodeSet, member: usize, error: &ApiError) {
        if matches!(error, ApiError::Connect(_) | ApiError::Transport(_) | ApiError::Timeout) {
            self.down.insert(member);
        }
        self.add_failure(nodes.failure(member, error.to_string()));
    }

    /// Keeps `failure`, unless its node already failed in this read.
    pub(crate) fn add_failure(&mut self, failure: NodeFailure) {
        if !self.failures.iter().any(|known| known.node == failure.node) {
            self.failures.push(failure);
        }
    }

    pub(crate) fn into_outcome(self, data: Vec<u8>) -> ReadOutcome {
        for bad in &self.bad_slivers {
            tracing::warn!(node = %bad.node, kind = %bad.kind, index = bad.index, reason = %bad.reason,
                "a node served a sliver that does not verify");
        }
        ReadOutcome {
            data,
            bad_slivers: self.bad_slivers,
            failures: self.failures,
            without_coordinator: self.without_coordinator,
            stats: self.stats,
        }
    }
}

impl Client {
    /// Reads the whole blob `blob_id`, verifying every piece against it.
    pub async fn read_blob(&self, blob_id: &BlobId) -> Result<ReadOutcome, Error> {
        let started = Instant::now();
        let nodes = self.refresh_nodes().await?;
        let mut log = ReadLog::default();
        log.stats.phases.committee_us = micros_since(started);
        // A node reads stopped asking is asked beside this read, so that it can be found again
        // once it has recovered (`probe`).
        self.probes.probe_stalest(&nodes, *blob_id);
        let metadata = self.verified_metadata(&nodes, blob_id, &mut log).await;
        let data = match metadata {
            Ok(metadata) => self.read_with_metadata(&nodes, metadata, &mut log).await,
            Err(error) => Err(error),
        };
        let keeping = Instant::now();
        self.remember_node_scores();
        log.stats.phases.scores_kept_us = micros_since(keeping);
        Ok(log.into_outcome(data?))
    }

    /// Reads the whole blob whose verified metadata is `metadata`.
    pub(crate) async fn read_with_metadata(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: Arc<VerifiedMetadata>,
        log: &mut ReadLog,
    ) -> Result<Vec<u8>, Error> {
        let blob_id = *metadata.blob_id();
        let kp = self.encoding.kp();
        self.report(Progress::ReadStarted { blob_id, total: metadata.unencoded_length() });
        let started = Instant::now();
        let slivers = self.primary_slivers(nodes, &metadata, 0..kp, kp, log).await;
        log.stats.phases.slivers_us = micros_since(started);
        let slivers = slivers?;
        let decoding = Instant::now();
        let decoded = tokio::task::spawn_blocking(move || metadata.decode(&slivers))
            .await
            .map_err(Error::panicked("the decoder"));
        log.stats.phases.decode_us = micros_since(decoding);
        let decoded = decoded?;
        match decoded {
            Ok(data) => Ok(data),
            Err(DecodeError::Inconsistent { .. }) => Err(Error::Inconsistent(blob_id)),
            Err(source) => Err(Error::Decode { blob_id, source }),
        }
    }

    /// Checks that the blob is certified (with the coordinator, or with the nodes when no
    /// coordinator answers), and fetches its metadata from the fastest nodes (a second node
    /// is asked when the first is slow or wrong).
    pub(crate) async fn verified_metadata(
        &self,
        nodes: &NodeSet,
        blob_id: &BlobId,
        log: &mut ReadLog,
    ) -> Result<Arc<VerifiedMetadata>, Error> {
        let started = Instant::now();
        let ((certified, certified_us), (metadata, metadata_us)) = tokio::join!(
            timed(started, self.check_certified(nodes, blob_id)),
            timed(started, self.fetch_metadata(nodes, blob_id, log))
        );
        log.stats.phases.certified_us = certified_us;
        log.stats.phases.metadata_us = metadata_us;
        log.without_coordinator = certified?;
        metadata.map(Arc::new)
    }

    /// Checks that the blob is certified; answers whether the nodes had to say so because no
    /// coordinator answered.
    async fn check_certified(&self, nodes: &NodeSet, blob_id: &BlobId) -> Result<bool, Error> {
        if !self.coordinator_skipped() {
            match self.coord.blob_status(blob_id).await {
                Ok(status) => {
                    self.coordinator_reached(true);
                    return match status.status {
                        BlobStatusKind::Certified => Ok(false),
                        BlobStatusKind::Invalid => Err(Error::Inconsistent(*blob_id)),
                        other => Err(Error::NotAvailable { blob_id: *blob_id, status: other }),
                    };
                }
                Err(error) if error.is_unreachable() => self.coordinator_reached(false),
                Err(error) => return Err(Error::coordinator("checking the blob's status")(error)),
            }
        }
        self.certified_by_nodes(nodes, blob_id).await.map(|()| true)
    }

    /// Fetches the metadata from the best-scored node; asks the next one when the answer is
    /// later than that node's patience, wrong, or fails, and keeps the first copy that hashes
    /// to the blob ID.
    async fn fetch_metadata(
        &self,
        nodes: &NodeSet,
        blob_id: &BlobId,
        log: &mut ReadLog,
    ) -> Result<VerifiedMetadata, Error> {
        let encoding = self.encoding;
        let bytes = METADATA_BYTES_PER_SHARD * u64::from(nodes.committee().n_shards);
        let mut candidates = nodes.readable_by_latency().into_iter();
        let mut asking = FuturesUnordered::new();
        let ask = |member: usize| {
            let call = nodes.start(member);
            async move {
                let result = nodes.client(member).get_metadata(blob_id).await;
                (member, call, result)
            }
        };
        let next_patience = |asking: &mut FuturesUnordered<_>,
                             candidates: &mut std::vec::IntoIter<usize>,
                             log: &mut ReadLog| {
            let member = candidates.next()?;
            asking.push(ask(member));
            log.stats.metadata_asked.push(nodes.committee().members[member].address.clone());
            Some(nodes.patience(member, bytes))
        };
        let mut patience = next_patience(&mut asking, &mut candidates, log);
        loop {
            let wait = patience.unwrap_or(std::time::Duration::from_secs(3600));
            tokio::select! {
                answer = asking.next() => {
                    let Some((member, call, result)) = answer else {
                        patience = next_patience(&mut asking, &mut candidates, log);
                        if patience.is_none() {
                            return Err(Error::NoMetadata {
                                blob_id: *blob_id,
                                failures: std::mem::take(&mut log.failures),
                            });
                        }
                        continue;
                    };
                    match result {
                        Ok(metadata) => {
                            call.answered(bytes);
                            // Hashing n sliver roots is codec work: off the async threads.
                            let id = *blob_id;
                            let verified =
                                tokio::task::spawn_blocking(move || metadata.metadata.verify(&id, encoding)).await;
                            match verified {
                                Ok(Ok(verified)) => {
                                    log.stats.metadata_from = Some(nodes.committee().members[member].address.clone());
                                    return Ok(verified);
                                }
                                Ok(Err(error)) => {
                                    // A node that serves bad metadata is asked last next time.
                                    nodes.record_failure(member);
                                    log.failures.push(nodes.failure(member, format!("bad metadata: {error}")));
                                }
                                Err(error) => log.failures.push(nodes.failure(member, format!("checking its metadata panicked: {error}"))),
                            }
                        }
                        Err(error) => {
                            call.failed();
                            log.node_failed(nodes, member, &error);
                        }
                    }
                    patience = next_patience(&mut asking, &mut candidates, log).or(patience);
                }
                () = tokio::time::sleep(wait) => {
                    patience = next_patience(&mut asking, &mut candidates, log);
                }
            }
        }
    }
}

/// `phase`'s result, and the microseconds from `started` to its end.
async fn timed<T>(started: Instant, phase: impl std::future::Future<Output = T>) -> (T, u64) {
    let result = phase.await;
    (result, micros_since(started))
}

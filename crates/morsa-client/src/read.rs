//! Reading a blob: verified metadata from the fastest nodes, then verified primary slivers,
//! systematic ones first, with extra requests when nodes are slow, decoded when enough are in.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use morsa_api::client::ClientError as ApiError;
use morsa_api::coord::BlobStatusKind;
use redstuff::{BlobId, DecodeError, Sliver, SliverType, VerifiedMetadata};

use crate::nodes::NodeSet;
use crate::{Client, Error, NodeFailure, Progress};

/// Shortest wait before asking more nodes when answers are slow.
const MIN_HEDGE_DELAY: Duration = Duration::from_millis(50);

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
}

/// What a read has learnt about the nodes so far.
#[derive(Debug, Default)]
pub(crate) struct ReadLog {
    pub(crate) bad_slivers: Vec<BadSliver>,
    pub(crate) failures: Vec<NodeFailure>,
    /// Members that failed to connect: their other slivers are not asked for.
    down: HashSet<usize>,
    /// The blob's status came from the nodes: no coordinator answered.
    pub(crate) without_coordinator: bool,
}

impl ReadLog {
    pub(crate) fn node_failed(&mut self, nodes: &NodeSet, member: usize, error: &ApiError) {
        nodes.record_failure(member);
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
        }
    }
}

type Fetch = Pin<Box<dyn Future<Output = (usize, usize, Result<Sliver, SliverError>)> + Send>>;

/// Why a fetched sliver was not used.
enum SliverError {
    Node(ApiError),
    Bad(String),
}

impl Client {
    /// Reads the whole blob `blob_id`, verifying every piece against it.
    pub async fn read_blob(&self, blob_id: &BlobId) -> Result<ReadOutcome, Error> {
        let nodes = self.refresh_nodes().await?;
        let mut log = ReadLog::default();
        let metadata = self.verified_metadata(&nodes, blob_id, &mut log).await?;
        let data = self.read_with_metadata(&nodes, metadata, &mut log).await?;
        Ok(log.into_outcome(data))
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
        let slivers = self.primary_slivers(nodes, &metadata, 0..kp, kp, log).await?;
        let decoded = tokio::task::spawn_blocking(move || metadata.decode(&slivers))
            .await
            .map_err(Error::panicked("the decoder"))?;
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
        let (certified, metadata) =
            tokio::join!(self.check_certified(nodes, blob_id), self.fetch_metadata(nodes, blob_id, log));
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

    async fn fetch_metadata(
        &self,
        nodes: &NodeSet,
        blob_id: &BlobId,
        log: &mut ReadLog,
    ) -> Result<VerifiedMetadata, Error> {
        let encoding = self.encoding;
        let mut candidates = nodes.readable_by_latency().into_iter();
        let mut asking = FuturesUnordered::new();
        let ask = |member: usize| async move {
            let started = Instant::now();
            let result = nodes.client(member).get_metadata(blob_id).await;
            (member, started.elapsed(), result)
        };
        asking.extend(candidates.next().map(ask));
        loop {
            let hedge = tokio::time::sleep(MIN_HEDGE_DELAY * 2);
            tokio::select! {
                answer = asking.next() => {
                    let Some((member, elapsed, result)) = answer else {
                        match candidates.next() {
                            Some(member) => { asking.push(ask(member)); continue; }
                            None => return Err(Error::NoMetadata {
                                blob_id: *blob_id,
                                failures: std::mem::take(&mut log.failures),
                            }),
                        }
                    };
                    match result {
                        Ok(metadata) => {
                            // Hashing n sliver roots is codec work: off the async threads.
                            let id = *blob_id;
                            let verified =
                                tokio::task::spawn_blocking(move || metadata.metadata.verify(&id, encoding)).await;
                            match verified {
                                Ok(Ok(verified)) => {
                                    nodes.record_latency(member, elapsed);
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
                        Err(error) => log.node_failed(nodes, member, &error),
                    }
                    asking.extend(candidates.next().map(ask));
                }
                () = hedge => asking.extend(candidates.next().map(ask)),
            }
        }
    }

    /// Fetches and verifies `needed` distinct primary slivers, preferring `preferred` (the
    /// systematic ones, whose symbols are the data itself), then the fastest nodes. Asks
    /// more nodes when answers are slow, and stops asking once enough are in.
    pub(crate) async fn primary_slivers(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        preferred: std::ops::Range<usize>,
        needed: usize,
        log: &mut ReadLog,
    ) -> Result<Vec<Sliver>, Error> {
        let blob_id = *metadata.blob_id();
        let n = self.encoding.n_shards();
        let mut order: Vec<usize> = preferred.clone().collect();
        let mut rest: Vec<usize> = (0..n).filter(|index| !preferred.contains(index)).collect();
        rest.sort_by_key(|index| nodes.owner_of_pair(&blob_id, *index).map(|member| nodes.latency(member)));
        order.extend(rest);
        let mut candidates = order.into_iter();
        let per_sliver = metadata.unencoded_length() / morsa_core::convert::saturating_u64(needed).max(1);
        let limit = (self.max_requests_per_node * nodes.len()).max(needed.min(64));

        let mut in_flight: FuturesUnordered<Fetch> = FuturesUnordered::new();
        let mut slivers = Vec::with_capacity(needed);
        let mut extra = 0;
        loop {
            while slivers.len() + in_flight.len() < needed + extra && in_flight.len() < limit {
                let Some(index) = candidates.next() else { break };
                let Some(member) = nodes.owner_of_pair(&blob_id, index) else { continue };
                if log.down.contains(&member) {
                    continue;
                }
                in_flight.push(self.fetch_primary(nodes, metadata, member, index));
            }
            if slivers.len() >= needed {
                return Ok(slivers);
            }
            if in_flight.is_empty() {
                return Err(Error::NotEnoughSlivers {
                    blob_id,
                    got: slivers.len(),
                    needed,
                    failures: std::mem::take(&mut log.failures),
                });
            }
            let hedge_delay = self.hedge_delay(nodes);
            tokio::select! {
                Some((member, index, result)) = in_flight.next() => match result {
                    Ok(sliver) => {
                        slivers.push(sliver);
                        self.report(Progress::BytesRead { bytes: per_sliver });
                    }
                    Err(SliverError::Node(error)) => log.node_failed(nodes, member, &error),
                    Err(SliverError::Bad(reason)) => {
                        nodes.record_failure(member);
                        log.bad_slivers.push(BadSliver {
                            node: nodes.committee().members[member].address.clone(),
                            kind: SliverType::Primary,
                            index,
                            reason,
                        });
                    }
                },
                () = tokio::time::sleep(hedge_delay) => extra += (needed / 10).max(1),
            }
        }
    }

    /// How long to wait for an answer before asking more nodes: three times the typical
    /// answer time of the nodes, at least [`MIN_HEDGE_DELAY`].
    fn hedge_delay(&self, nodes: &NodeSet) -> Duration {
        let members = nodes.by_latency();
        let median = members.get(members.len() / 2).map_or(MIN_HEDGE_DELAY, |member| nodes.latency(*member));
        (median * 3).max(MIN_HEDGE_DELAY)
    }

    fn fetch_primary(
        &self,
        nodes: &Arc<NodeSet>,
        metadata: &Arc<VerifiedMetadata>,
        member: usize,
        index: usize,
    ) -> Fetch {
        let nodes = Arc::clone(nodes);
        let metadata = Arc::clone(metadata);
        Box::pin(async move {
            let client = nodes.client(member);
            let started = Instant::now();
            let pair = morsa_core::convert::saturating_u16(index);
            let fetched = client
                .get_sliver(metadata.blob_id(), pair, SliverType::Primary, metadata.symbol_size())
                .await;
            let sliver = match fetched {
                Ok(sliver) => sliver,
                Err(error) => return (member, index, Err(SliverError::Node(error))),
            };
            nodes.record_latency(member, started.elapsed());
            let verified = tokio::task::spawn_blocking(move || {
                if sliver.index() != index {
                    return Err(format!("asked for primary sliver {index}, got {}", sliver.index()));
                }
                metadata
                    .verify_sliver(SliverType::Primary, &sliver)
                    .map(|()| sliver)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|error| Err(format!("verification panicked: {error}")));
            (member, index, verified.map_err(SliverError::Bad))
        })
    }
}

//! Fetching the primary slivers a read needs: from the best-scored nodes (systematic slivers
//! among near ties), a hedge to the next best when an answer is later than its node's
//! expected 95th percentile (capped per read), every answer verified, and the requests still
//! out cancelled once enough verified slivers are in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use morsa_api::client::ClientError as ApiError;
use morsa_api::client::scoring::{Call, Candidate};
use rand::seq::SliceRandom;
use redstuff::{Sliver, SliverType, VerifiedMetadata};
use tokio::time::Instant;

use crate::nodes::NodeSet;
use crate::read::{BadSliver, ReadLog};
use crate::read_stats::{RequestOutcome, Selection, SliverRequest};
use crate::{Client, Error, Progress};

/// Most hedged requests of one read, as a multiple of the slivers it needs (at least 2).
const HEDGES_PER_NEEDED: usize = 1;

/// A sliver request: its index, its node, and the sliver or why not.
type Fetch = Pin<Box<dyn Future<Output = (usize, usize, Result<Sliver, SliverError>)> + Send>>;

/// Why a fetched sliver was not used.
enum SliverError {
    Node(ApiError),
    Bad(String),
}

/// A request out: when it was sent, when it is late, and whether it was a hedge.
struct Outstanding {
    index: usize,
    member: usize,
    sent: Instant,
    late_at: Instant,
    hedged_around: bool,
    hedge: bool,
}

impl Client {
    /// Fetches and verifies `needed` distinct primary slivers, preferring `preferred` among
    /// near ties (the systematic ones, whose symbols are the data itself).
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
        let bytes = morsa_core::convert::saturating_u64(metadata.sliver_len(SliverType::Primary));
        let kp = self.encoding.kp();
        let mut left: Vec<(usize, usize)> = (0..n)
            .filter_map(|index| nodes.owner_of_pair(&blob_id, index).map(|member| (index, member)))
            .collect();
        if self.selection == Selection::RandomByShards {
            left.shuffle(&mut rand::rng());
        }
        let per_sliver = metadata.unencoded_length() / morsa_core::convert::saturating_u64(needed).max(1);
        let limit = (self.max_requests_per_node * nodes.len()).max(needed.min(64));
        let max_hedges = (needed * HEDGES_PER_NEEDED).max(2);
        log.stats.selection = self.selection;

        let mut in_flight: FuturesUnordered<Fetch> = FuturesUnordered::new();
        let mut outstanding: Vec<Outstanding> = Vec::new();
        let mut slivers = Vec::with_capacity(needed);
        let mut target = needed + self.read_surplus(needed);
        let mut hedges = 0;
        // Requests still to be sent as hedges.
        let mut hedge_next = 0usize;
        loop {
            while slivers.len() + in_flight.len() < target && in_flight.len() < limit {
                left.retain(|(_, member)| !log.down.contains(member));
                let Some((index, member)) = self.next_candidate(nodes, &mut left, &preferred, bytes) else {
                    break;
                };
                let sent = Instant::now();
                let patience = nodes.patience(member, bytes);
                outstanding.push(Outstanding {
                    index,
                    member,
                    sent,
                    late_at: sent + patience,
                    hedged_around: false,
                    hedge: if hedge_next > 0 {
                        hedge_next -= 1;
                        true
                    } else {
                        false
                    },
                });
                in_flight.push(fetch_primary(nodes, metadata, member, index, nodes.start(member)));
            }
            if slivers.len() >= needed {
                // Dropping the requests still out cancels them; each counts in its node's
                // score as slower than the time it had.
                drop(in_flight);
                for request in outstanding {
                    log.stats.cancelled_bytes += bytes;
                    log.stats.requests.push(request_stats(nodes, &request, kp, RequestOutcome::Cancelled));
                }
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
            let hedging =
                self.hedged_reads && self.selection == Selection::NetworkAware && hedges < max_hedges;
            let late = outstanding
                .iter()
                .filter(|request| !request.hedged_around)
                .map(|request| request.late_at)
                .min();
            let wake = late.filter(|_| hedging).unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                Some((member, index, result)) = in_flight.next() => {
                    let Some(position) = outstanding.iter().position(|request| request.index == index) else { continue };
                    let request = outstanding.swap_remove(position);
                    let outcome = match result {
                        Ok(sliver) => {
                            slivers.push(sliver);
                            log.stats.used_bytes += bytes;
                            self.report(Progress::BytesRead { bytes: per_sliver });
                            RequestOutcome::Used
                        }
                        Err(SliverError::Node(error)) => {
                            log.node_failed(nodes, member, &error);
                            RequestOutcome::Failed
                        }
                        Err(SliverError::Bad(reason)) => {
                            log.stats.wasted_bytes += bytes;
                            log.bad_slivers.push(BadSliver {
                                node: nodes.committee().members[member].address.clone(),
                                kind: SliverType::Primary,
                                index,
                                reason,
                            });
                            RequestOutcome::Bad
                        }
                    };
                    log.stats.requests.push(request_stats(nodes, &request, kp, outcome));
                }
                () = tokio::time::sleep_until(wake) => {
                    // Answers are late: one more node is asked for each late request, within
                    // the read's hedge budget.
                    let now = Instant::now();
                    let mut late = 0;
                    for request in outstanding.iter_mut().filter(|request| !request.hedged_around && request.late_at <= now) {
                        request.hedged_around = true;
                        late += 1;
                    }
                    let extra = late.min(max_hedges - hedges).min(left.len());
                    target += extra;
                    hedges += extra;
                    log.stats.hedges += extra;
                    hedge_next += extra;
                }
            }
        }
    }

    /// Slivers asked for beyond those needed from the start: a tenth, rounded down (none for
    /// small committees, where a hedge covers a late answer instead, nor without hedging).
    fn read_surplus(&self, needed: usize) -> usize {
        match self.selection {
            Selection::NetworkAware if self.hedged_reads => needed / 10,
            Selection::NetworkAware | Selection::RandomByShards => 0,
        }
    }

    /// Takes the next sliver to ask for out of `left`: the best by score, or the next in the
    /// shuffled order for random selection.
    fn next_candidate(
        &self,
        nodes: &NodeSet,
        left: &mut Vec<(usize, usize)>,
        preferred: &std::ops::Range<usize>,
        bytes: u64,
    ) -> Option<(usize, usize)> {
        if left.is_empty() {
            return None;
        }
        let position = match self.selection {
            Selection::RandomByShards => 0,
            Selection::NetworkAware => {
                let candidates: Vec<Candidate<'_>> = left
                    .iter()
                    .map(|(index, member)| Candidate {
                        node: nodes.node_id(*member),
                        zone: nodes.zone(*member),
                        bytes,
                        preferred: preferred.contains(index),
                    })
                    .collect();
                *nodes.scores().choose(&candidates, 1).first()?
            }
        };
        Some(left.remove(position))
    }
}

fn request_stats(
    nodes: &NodeSet,
    request: &Outstanding,
    kp: usize,
    outcome: RequestOutcome,
) -> SliverRequest {
    SliverRequest {
        node: nodes.committee().members[request.member].address.clone(),
        index: request.index,
        systematic: request.index < kp,
        hedge: request.hedge,
        outcome,
        millis: morsa_core::convert::saturating_u64_from_u128(request.sent.elapsed().as_millis()),
    }
}

fn fetch_primary(
    nodes: &Arc<NodeSet>,
    metadata: &Arc<VerifiedMetadata>,
    member: usize,
    index: usize,
    call: Call,
) -> Fetch {
    let nodes = Arc::clone(nodes);
    let metadata = Arc::clone(metadata);
    Box::pin(async move {
        let client = nodes.client(member);
        let pair = morsa_core::convert::saturating_u16(index);
        let fetched =
            client.get_sliver(metadata.blob_id(), pair, SliverType::Primary, metadata.symbol_size()).await;
        let sliver = match fetched {
            Ok(sliver) => sliver,
            Err(error) => {
                call.failed();
                return (member, index, Err(SliverError::Node(error)));
            }
        };
        call.answered(morsa_core::convert::saturating_u64(metadata.sliver_len(SliverType::Primary)));
        let verified = tokio::task::spawn_blocking(move || {
            if sliver.index() != index {
                return Err(format!("asked for primary sliver {index}, got {}", sliver.index()));
            }
            metadata.verify_sliver(SliverType::Primary, &sliver).map(|()| sliver).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|error| Err(format!("verification panicked: {error}")));
        if verified.is_err() {
            nodes.record_failure(member);
        }
        (member, index, verified.map_err(SliverError::Bad))
    })
}

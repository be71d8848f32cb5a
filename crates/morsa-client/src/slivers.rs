//! Fetching the primary slivers a read needs: from the best-scored nodes (systematic slivers
//! among near ties), several of a node's slivers in one request (a batch: at most the read's
//! share of one node and [`sliver_batches::READ_BATCH_BYTES`]), a hedge to the next best
//! when an answer is later than its node's expected 95th percentile (as many slivers as the
//! late request asked for, capped per read), every sliver verified, and the requests still
//! out cancelled once enough verified slivers are in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use morsa_api::client::scoring::{Call, Candidate};
use rand::seq::SliceRandom;
use redstuff::{Sliver, SliverType, VerifiedMetadata};
use tokio::time::Instant;

use crate::nodes::NodeSet;
use crate::read::{BadSliver, ReadLog};
use crate::read_stats::{RequestOutcome, Selection, SliverRequest};
use crate::sliver_batches::{self, SliverProblem};
use crate::{Client, Error, Progress};

/// Most hedged requests of one read, as a multiple of the slivers it needs (at least 2).
const HEDGES_PER_NEEDED: usize = 1;

/// A request: its node, its first sliver index (which names it), and each sliver or why not.
type Fetch =
    Pin<Box<dyn Future<Output = (usize, usize, Vec<(usize, Result<Sliver, SliverProblem>)>)> + Send>>;

/// A request out: its slivers, when it was sent, when it is late, and whether it was a hedge.
struct Outstanding {
    indices: Vec<usize>,
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

        // A node is asked for at most its share of the read in one request, so that the read
        // is spread over nodes and a slow node's batch is hedged around.
        let per_batch = needed
            .div_ceil(nodes.len().max(1))
            .min(sliver_batches::batch_capacity(morsa_core::convert::saturating_usize(bytes)));

        let mut in_flight: FuturesUnordered<Fetch> = FuturesUnordered::new();
        let mut outstanding: Vec<Outstanding> = Vec::new();
        let mut slivers = Vec::with_capacity(needed);
        let mut target = needed + self.read_surplus(needed);
        let mut hedges = 0;
        // Slivers still to be asked for as hedges.
        let mut hedge_next = 0usize;
        loop {
            loop {
                let asked: usize = outstanding.iter().map(|request| request.indices.len()).sum();
                if slivers.len() + asked >= target || in_flight.len() >= limit {
                    break;
                }
                left.retain(|(_, member)| !log.down.contains(member));
                let Some((index, member)) = self.next_candidate(nodes, &mut left, &preferred, bytes) else {
                    break;
                };
                let room = (target - slivers.len() - asked).min(per_batch.max(1));
                let indices = take_batch(&mut left, index, member, &preferred, room);
                let batch_bytes = bytes.saturating_mul(morsa_core::convert::saturating_u64(indices.len()));
                let sent = Instant::now();
                let patience = nodes.patience(member, batch_bytes);
                let hedge = hedge_next > 0;
                hedge_next = hedge_next.saturating_sub(indices.len());
                in_flight.push(fetch_primaries(
                    nodes,
                    metadata,
                    member,
                    indices.clone(),
                    nodes.start(member),
                ));
                outstanding.push(Outstanding {
                    indices,
                    member,
                    sent,
                    late_at: sent + patience,
                    hedged_around: false,
                    hedge,
                });
            }
            if slivers.len() >= needed {
                // Dropping the requests still out cancels them; each counts in its node's
                // score as slower than the time it had.
                drop(in_flight);
                for request in outstanding {
                    for index in &request.indices {
                        log.stats.cancelled_bytes += bytes;
                        log.stats.requests.push(request_stats(
                            nodes,
                            &request,
                            *index,
                            kp,
                            RequestOutcome::Cancelled,
                        ));
                    }
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
                Some((member, first, results)) = in_flight.next() => {
                    let Some(position) = outstanding.iter().position(|request| request.indices.first() == Some(&first)) else { continue };
                    let request = outstanding.swap_remove(position);
                    for (index, result) in results {
                        let outcome = match result {
                            Ok(sliver) => {
                                slivers.push(sliver);
                                log.stats.used_bytes += bytes;
                                self.report(Progress::BytesRead { bytes: per_sliver });
                                RequestOutcome::Used
                            }
                            Err(SliverProblem::Node(error)) => {
                                log.node_failed(nodes, member, &error);
                                RequestOutcome::Failed
                            }
                            Err(SliverProblem::Bad(reason)) => {
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
                        log.stats.requests.push(request_stats(nodes, &request, index, kp, outcome));
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    // Answers are late: other nodes are asked for as many slivers as each late
                    // request asked for, within the read's hedge budget.
                    let now = Instant::now();
                    let mut late = 0;
                    for request in outstanding.iter_mut().filter(|request| !request.hedged_around && request.late_at <= now) {
                        request.hedged_around = true;
                        late += request.indices.len();
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

/// The slivers of one request: `index` (the candidate chosen) and up to `room − 1` more of
/// `member`'s from `left`, each taken out of `left`: preferred ones with a preferred one (the
/// systematic slivers a read needs), others with another (its surplus and hedges), so that
/// a batch of the slivers a read needs is not held up by one it may not.
fn take_batch(
    left: &mut Vec<(usize, usize)>,
    index: usize,
    member: usize,
    preferred: &std::ops::Range<usize>,
    room: usize,
) -> Vec<usize> {
    let mut indices = vec![index];
    let want_preferred = preferred.contains(&index);
    let mut position = 0;
    while position < left.len() && indices.len() < room {
        let (other, holder) = left[position];
        if holder == member && preferred.contains(&other) == want_preferred {
            indices.push(other);
            left.remove(position);
        } else {
            position += 1;
        }
    }
    indices
}

fn request_stats(
    nodes: &NodeSet,
    request: &Outstanding,
    index: usize,
    kp: usize,
    outcome: RequestOutcome,
) -> SliverRequest {
    SliverRequest {
        node: nodes.committee().members[request.member].address.clone(),
        index,
        systematic: index < kp,
        hedge: request.hedge,
        outcome,
        millis: morsa_core::convert::saturating_u64_from_u128(request.sent.elapsed().as_millis()),
    }
}

/// Asks `member` for primary slivers `indices` (at least one) in one request and verifies
/// them; the call's outcome goes into the node's score.
fn fetch_primaries(
    nodes: &Arc<NodeSet>,
    metadata: &Arc<VerifiedMetadata>,
    member: usize,
    indices: Vec<usize>,
    call: Call,
) -> Fetch {
    let nodes = Arc::clone(nodes);
    let metadata = Arc::clone(metadata);
    Box::pin(async move {
        let first = indices[0];
        let wanted: Vec<(usize, u16)> =
            indices.iter().map(|index| (*index, morsa_core::convert::saturating_u16(*index))).collect();
        let results =
            match sliver_batches::fetch_verified(&nodes, &metadata, member, SliverType::Primary, &wanted)
                .await
            {
                Ok(results) => results,
                Err(error) => {
                    call.failed();
                    let failed =
                        indices.iter().map(|index| (*index, Err(SliverProblem::Node(error.clone()))));
                    return (member, first, failed.collect());
                }
            };
        let answered =
            results.iter().filter(|(_, result)| !matches!(result, Err(SliverProblem::Node(_)))).count();
        let sliver_bytes = morsa_core::convert::saturating_u64(metadata.sliver_len(SliverType::Primary));
        call.answered(sliver_bytes.saturating_mul(morsa_core::convert::saturating_u64(answered.max(1))));
        if results.iter().any(|(_, result)| matches!(result, Err(SliverProblem::Bad(_)))) {
            nodes.record_failure(member);
        }
        (member, first, results)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_the_same_nodes_slivers_of_the_same_kind_up_to_its_room() {
        // (index, member): member 1 holds 0, 2, 5, 7 and 8; slivers 0..4 are preferred.
        let mut left = vec![(2, 1), (3, 2), (5, 1), (1, 1), (7, 1), (8, 1), (6, 2)];
        assert_eq!(take_batch(&mut left, 0, 1, &(0..4), 5), [0, 2, 1], "preferred with preferred");
        assert_eq!(left, [(3, 2), (5, 1), (7, 1), (8, 1), (6, 2)]);
        assert_eq!(take_batch(&mut left, 9, 1, &(0..4), 3), [9, 5, 7], "others with others, up to the room");
        assert_eq!(left, [(3, 2), (8, 1), (6, 2)]);
        assert_eq!(take_batch(&mut left, 4, 1, &(0..4), 1), [4], "a room of one");
        assert_eq!(left.len(), 3);
    }
}

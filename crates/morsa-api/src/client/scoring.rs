//! Node scoring: which storage nodes to ask first, and how long to wait for each before asking
//! another. One implementation for every reader of nodes: the client's sliver and metadata
//! fetches (and so the gateway, which reads through the client) and a node's repair fetcher.
//!
//! Per node it keeps an exponentially weighted moving average of the answer latency and of its
//! spread (like TCP's SRTT and RTTVAR), the observed bandwidth of large answers, the requests
//! in flight from this process and the load figure the node reports itself
//! ([`crate::node::LOAD_HEADER`]). Before anything is measured, a topology prior stands in
//! ([`ZonePrior`]): a node in the caller's own `zone` is assumed near, one in another zone
//! far, and one whose zone is unknown (or a caller without one) in between. Node zones are
//! what their operators declared (served with the committee:
//! [`crate::coord::MemberZones`]), so they only order nodes not measured yet: the first
//! answer replaces the prior, and a node near by its zone but slow is left as soon as it is
//! measured.
//!
//! The score of a request of `bytes` follows C3 (Suresh et al., NSDI '15): the expected
//! network latency, plus the expected service time (the transfer) multiplied by the cube of
//! the node's queue, `1 + (in flight + reported load) / NODE_PARALLELISM`. A node whose
//! bandwidth was not measured yet is scored at the median bandwidth of the others compared
//! with it. A node with a queue is avoided long before it is slow. A node whose link is thin
//! next to the others (under a quarter of their median bandwidth) is scored at least as a
//! queue on that link: its transfer times the requests out and planned to it. A request's
//! patience counts the same queued service as its score. A thin link's bandwidth is measured
//! by answers too small to measure a fast one, and by a probe of the link
//! ([`NodeScores::record_transfer`]) before any read. [`NodeScores::choose`] picks nodes greedily,
//! counting each pick as load; among near ties it prefers the caller's preferred candidates
//! (systematic slivers, which need no decoding), then takes the better of two random ones
//! (the "power of two choices"), so that many clients do not all pile onto the same node;
//! "better" by score less spread, so that a node little known is given the benefit of the
//! doubt.
//!
//! Readers ask the best-scored nodes, so a node not asked is never measured again: one that
//! was slow once (or was never measured while others were) would be left out for good even
//! after it recovered. [`NodeScores::stalest`] names the node to probe with a cheap request
//! beside the real ones (the client's reads and the repair fetcher each probe one at a time);
//! the probe's sample, arriving after a silence, replaces the old latency; the bandwidth is
//! kept (a probe's small answer says nothing of the link) until an answer measures it again.
//!
//! Estimates can be saved and loaded ([`NodeScores::snapshot`], [`NodeScores::absorb`]) so a
//! new process starts informed; an estimate loses confidence (its spread grows towards its
//! latency) with age, and old ones are dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use morsa_core::NodeId;
use serde::{Deserialize, Serialize};

mod choose;
mod estimate;
#[cfg(test)]
mod tests;

pub use choose::Candidate;
pub use estimate::{Estimate, STALE_AFTER_MS, ScoreInputs, ZonePrior};

/// Requests a node is assumed to serve at once before they queue: the queue in the score is
/// counted in multiples of it.
pub const NODE_PARALLELISM: f64 = 8.0;
/// A candidate within this fraction of the best score is a near tie.
pub const TIE_MARGIN: f64 = 0.25;
/// ... or within this much of it, whatever the fraction.
pub const TIE_SLACK: Duration = Duration::from_millis(2);
/// Most nodes whose estimates are saved.
pub const MAX_SAVED_NODES: usize = 4096;
/// Estimates older than this are not loaded.
pub const MAX_SAVED_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one process knows of the nodes' speed and load.
#[derive(Debug, Default)]
pub struct NodeScores {
    /// The caller's zone, if it has one (client.toml `zone`; a node's own declared zone).
    zone: RwLock<Option<String>>,
    state: Mutex<HashMap<NodeId, Estimate>>,
}

/// The saved form of [`NodeScores`]: the estimates, with the wall-clock time of their last
/// update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedScores {
    /// Format version, 1.
    pub version: u32,
    /// Per node: its ID and its estimate.
    pub nodes: Vec<(NodeId, Estimate)>,
}

impl NodeScores {
    /// No estimates yet; the caller is in `zone`, if given.
    pub fn new(zone: Option<String>) -> Self {
        Self { zone: RwLock::new(zone), state: Mutex::new(HashMap::new()) }
    }

    /// The caller's zone.
    pub fn zone(&self) -> Option<String> {
        self.zone.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sets the caller's zone (a node learns its own from the committee's zones).
    pub fn set_zone(&self, zone: Option<&str>) {
        let mut own = self.zone.write().unwrap_or_else(PoisonError::into_inner);
        if own.as_deref() != zone {
            *own = zone.map(str::to_owned);
        }
    }

    /// The prior for a node in `zone` (if known), from where the caller is.
    pub fn zone_prior(&self, zone: Option<&str>) -> ZonePrior {
        ZonePrior::of(self.zone.read().unwrap_or_else(PoisonError::into_inner).as_deref(), zone)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Estimate>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The estimate of `node` (in `zone`, if known): measured, or the prior.
    ///
    /// A node with requests out or a load figure but no answer measured yet keeps the prior
    /// of its zone for its latency (and records it, so that a request to it cancelled later
    /// is compared with what its zone led the caller to expect).
    pub fn estimate(&self, node: &NodeId, zone: Option<&str>) -> Estimate {
        let prior = self.prior(zone);
        let mut state = self.lock();
        match state.get_mut(node) {
            Some(estimate) if estimate.samples > 0 => *estimate,
            Some(unmeasured) => {
                unmeasured.take_prior(&prior);
                *unmeasured
            }
            None => prior,
        }
    }

    fn prior(&self, zone: Option<&str>) -> Estimate {
        Estimate::prior(self.zone_prior(zone).same_zone())
    }

    fn update(&self, node: &NodeId, change: impl FnOnce(&mut Estimate)) {
        let prior = self.prior(None);
        change(self.lock().entry(*node).or_insert(prior));
    }

    /// The score of asking `node` (in `zone`) for `bytes` now; lower is better.
    pub fn score(&self, node: &NodeId, zone: Option<&str>, bytes: u64) -> Duration {
        self.estimate(node, zone).score(bytes, 0)
    }

    /// How long to wait for `node`'s answer of `bytes` before asking another node: the
    /// expected answer time at the 95th percentile or so, behind the requests already out to
    /// the node (as its score counts them).
    pub fn patience(&self, node: &NodeId, zone: Option<&str>, bytes: u64) -> Duration {
        let typical = self.typical_bandwidth();
        self.estimate(node, zone).patience_among(bytes, typical)
    }

    /// The median bandwidth of the nodes measured, if any.
    pub fn typical_bandwidth(&self) -> Option<f64> {
        median(self.lock().values().filter_map(Estimate::measured_bandwidth).collect())
    }

    /// What the score of `node` is made of (`morsa health --latency`).
    pub fn inputs(&self, node: &NodeId, zone: Option<&str>, bytes: u64) -> ScoreInputs {
        let measured = self.lock().contains_key(node);
        let prior = self.zone_prior(zone);
        ScoreInputs { prior, ..self.estimate(node, zone).inputs(bytes, measured) }
    }

    /// Of `nodes`, the one to probe now, if any: among those nothing is asked of now, the one
    /// heard from longest ago, if that is over [`STALE_AFTER_MS`] ago, or never. Only a node
    /// that is asked can be found to have recovered (or to be faster than the prior says),
    /// and readers ask the best-scored nodes: without a probe, a node that was slow once, or
    /// was never measured while others were, would never be asked again. `None` while none of
    /// `nodes` was measured: a caller that knows nothing learns from its own requests.
    pub fn stalest(&self, nodes: impl IntoIterator<Item = NodeId>) -> Option<NodeId> {
        self.stalest_at(nodes, wall_clock_ms())
    }

    /// [`NodeScores::stalest`] at wall-clock time `now_ms`.
    pub fn stalest_at(&self, nodes: impl IntoIterator<Item = NodeId>, now_ms: u64) -> Option<NodeId> {
        let state = self.lock();
        let mut any_measured = false;
        let mut stalest: Option<(u64, NodeId)> = None;
        for node in nodes {
            let estimate = state.get(&node);
            let measured = estimate.is_some_and(|estimate| estimate.samples > 0);
            any_measured |= measured;
            if estimate.is_some_and(|estimate| estimate.in_flight > 0) {
                continue;
            }
            // Never measured counts as heard from at the epoch: before any measured node.
            let heard = estimate.filter(|_| measured).map_or(0, |estimate| estimate.updated_ms);
            if now_ms.saturating_sub(heard) > STALE_AFTER_MS
                && stalest.is_none_or(|best| (heard, node) < best)
            {
                stalest = Some((heard, node));
            }
        }
        stalest.filter(|_| any_measured).map(|(_, node)| node)
    }

    /// Counts a request to `node` in flight until the returned call is finished or dropped.
    pub fn start(self: &Arc<Self>, node: NodeId) -> Call {
        self.update(&node, |estimate| estimate.in_flight = estimate.in_flight.saturating_add(1));
        Call { scores: Arc::clone(self), node, started: tokio::time::Instant::now(), done: false }
    }

    /// Records the load figure `node` reported with an answer.
    pub fn observe_load(&self, node: &NodeId, load: u32) {
        self.update(node, |estimate| estimate.observe_load(load));
    }

    /// Records an answer of `bytes` from `node` after `elapsed` (a call not made through
    /// [`NodeScores::start`], e.g. a health probe).
    pub fn record(&self, node: &NodeId, elapsed: Duration, bytes: u64) {
        self.update(node, |estimate| estimate.observe(elapsed, bytes, wall_clock_ms()));
    }

    /// Records that `bytes` from `node` took `transfer` from the answer's head to its last byte
    /// (a probe of its link): its bandwidth, known before any large answer.
    pub fn record_transfer(&self, node: &NodeId, bytes: u64, transfer: Duration) {
        self.update(node, |estimate| estimate.observe_transfer(bytes, transfer));
    }

    /// The estimates worth saving: the most recently updated ones first, at most
    /// [`MAX_SAVED_NODES`].
    pub fn snapshot(&self) -> SavedScores {
        let mut nodes: Vec<(NodeId, Estimate)> = self
            .lock()
            .iter()
            .filter(|(_, estimate)| estimate.samples > 0)
            .map(|(id, e)| (*id, *e))
            .collect();
        nodes.sort_by_key(|(id, estimate)| (std::cmp::Reverse(estimate.updated_ms), *id));
        nodes.truncate(MAX_SAVED_NODES);
        SavedScores { version: 1, nodes }
    }

    /// Takes in saved estimates (aged by `now_ms`) for the nodes not measured in this process.
    pub fn absorb(&self, saved: SavedScores, now_ms: u64) {
        if saved.version != 1 {
            return;
        }
        let mut state = self.lock();
        for (node, estimate) in saved.nodes.into_iter().take(MAX_SAVED_NODES) {
            let Some(aged) = estimate.aged(now_ms) else { continue };
            let slot = state.entry(node).or_insert(aged);
            if slot.samples == 0 {
                *slot = Estimate { in_flight: slot.in_flight, ..aged };
            }
        }
    }
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| morsa_core::convert::saturating_u64_from_u128(since.as_millis()))
}

/// A request in flight to one node. Finish it with its outcome; dropped unfinished, it was
/// cancelled (enough answers came from elsewhere): the node is then known to be slower than
/// the time that had passed, and is recorded so if that is slower than expected.
#[derive(Debug)]
pub struct Call {
    scores: Arc<NodeScores>,
    node: NodeId,
    started: tokio::time::Instant,
    done: bool,
}

impl Call {
    /// The node asked.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// How long the call has been running.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The node answered with `bytes`.
    pub fn answered(mut self, bytes: u64) {
        let elapsed = self.elapsed();
        self.done = true;
        self.scores.update(&self.node, |estimate| {
            estimate.in_flight = estimate.in_flight.saturating_sub(1);
            estimate.observe(elapsed, bytes, wall_clock_ms());
        });
    }

    /// The node failed (refused, timed out, answered an error or bad data).
    pub fn failed(mut self) {
        self.done = true;
        self.scores.update(&self.node, |estimate| {
            estimate.in_flight = estimate.in_flight.saturating_sub(1);
            estimate.observe_failure(wall_clock_ms());
        });
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let elapsed = self.elapsed();
        self.scores.update(&self.node, |estimate| {
            estimate.in_flight = estimate.in_flight.saturating_sub(1);
            estimate.observe_cancelled(elapsed, wall_clock_ms());
        });
    }
}

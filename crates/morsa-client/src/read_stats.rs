//! What a read asked of which nodes, and how each request ended: which nodes served, which
//! were hedged around, what was cancelled. `morsa read --json` prints it; the tests and
//! `morsa bench select` read it.

use serde::{Deserialize, Serialize};

/// How a read picks the nodes it asks for slivers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// By score (latency, bandwidth, load, zone: `morsa_api::client::scoring`), with hedged
    /// requests when an answer is late.
    #[default]
    NetworkAware,
    /// At random, each sliver equally likely (so each node in proportion to its shards), as
    /// Walrus's client does; another node is asked only when one fails. For comparisons
    /// (`morsa bench select`).
    RandomByShards,
}

/// How one sliver request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// Its sliver verified and was used.
    Used,
    /// It was cancelled: enough verified slivers were in already.
    Cancelled,
    /// The node failed (refused, timed out, answered an error).
    Failed,
    /// The sliver did not verify.
    Bad,
}

/// One sliver request of a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliverRequest {
    /// The node's address.
    pub node: String,
    /// The sliver's index.
    pub index: usize,
    /// Whether it is a systematic sliver (its symbols are the data itself).
    pub systematic: bool,
    /// Whether it was sent because an earlier answer was late (a hedge).
    pub hedge: bool,
    /// How it ended.
    pub outcome: RequestOutcome,
    /// Milliseconds from the request to its end (answer, failure or cancellation).
    pub millis: u64,
}

/// What a read (or a file's reads) asked of the nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadStats {
    /// How nodes were picked.
    pub selection: Selection,
    /// The nodes asked for the blob's metadata, in the order asked.
    pub metadata_asked: Vec<String>,
    /// The node whose metadata was used.
    pub metadata_from: Option<String>,
    /// Every sliver request, in the order they ended.
    pub requests: Vec<SliverRequest>,
    /// Requests sent because an answer was late.
    pub hedges: usize,
    /// Bytes of the slivers used.
    pub used_bytes: u64,
    /// Bytes received and not used (slivers that did not verify).
    pub wasted_bytes: u64,
    /// Bytes of the cancelled requests' slivers: an upper bound of what they transferred
    /// before they were cancelled.
    pub cancelled_bytes: u64,
    /// Where the read's time went.
    #[serde(default)]
    pub phases: ReadPhases,
}

/// Where a read's time went, phase by phase, in microseconds (the certification check and the
/// metadata fetch run at the same time; the others one after the other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPhases {
    /// Asking the coordinator for the committee.
    pub committee_us: u64,
    /// Checking that the blob is certified (with the coordinator, or with the nodes).
    pub certified_us: u64,
    /// Fetching and verifying the blob's metadata.
    pub metadata_us: u64,
    /// Fetching and verifying the primary slivers.
    pub slivers_us: u64,
    /// Decoding the blob from them.
    pub decode_us: u64,
    /// Keeping what the read learnt of the nodes (the score cache).
    pub scores_kept_us: u64,
}

impl ReadPhases {
    /// Adds another read's phases.
    fn absorb(&mut self, other: &ReadPhases) {
        self.committee_us += other.committee_us;
        self.certified_us += other.certified_us;
        self.metadata_us += other.metadata_us;
        self.slivers_us += other.slivers_us;
        self.decode_us += other.decode_us;
        self.scores_kept_us += other.scores_kept_us;
    }
}

/// Microseconds since `start`, for [`ReadPhases`].
pub(crate) fn micros_since(start: std::time::Instant) -> u64 {
    morsa_core::convert::saturating_u64_from_u128(start.elapsed().as_micros())
}

impl ReadStats {
    /// Adds another read's requests.
    pub fn absorb(&mut self, other: &ReadStats) {
        self.selection = other.selection;
        self.metadata_asked.extend(other.metadata_asked.iter().cloned());
        self.metadata_from.clone_from(&other.metadata_from);
        self.requests.extend(other.requests.iter().cloned());
        self.hedges += other.hedges;
        self.used_bytes += other.used_bytes;
        self.wasted_bytes += other.wasted_bytes;
        self.cancelled_bytes += other.cancelled_bytes;
        self.phases.absorb(&other.phases);
    }

    /// The addresses of the nodes whose slivers were used.
    pub fn used_nodes(&self) -> Vec<&str> {
        let mut nodes: Vec<&str> = self
            .requests
            .iter()
            .filter(|request| request.outcome == RequestOutcome::Used)
            .map(|request| request.node.as_str())
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }
}

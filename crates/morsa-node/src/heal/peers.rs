//! The other members of the committee, as sources of recovery symbols and metadata: one
//! [`NodeClient`] per member (sharing one connection pool, with the repair timeout), and what
//! this node has seen of each: its score (latency, bandwidth, calls in flight, its reported
//! load: the same `morsa_api::client::scoring` the client reads with), failures, and whether
//! it was caught sending symbols that fail their proofs.
//!
//! Peers are ranked by score for a batch answer of [`SCORED_BYTES`]: fast, idle peers first;
//! each ranking also probes the peer heard from longest ago, so that a peer once slow is found
//! again when it has recovered.
//! Peers in backoff after failures come after them, and suspected peers last (they are still asked when
//! nobody else can answer, and every symbol of theirs is checked against its proof). Suspicion
//! is not forever: it ends when the peer's symbols next check out against their proofs, or
//! after [`SUSPICION`] (a peer with a disk fault that has since been repaired is worth asking
//! first again).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use morsa_api::client::scoring::{Call, NodeScores};
use morsa_api::client::{ClientOptions, NodeClient};
use morsa_core::{Committee, Epoch, NodeId};
use redstuff::EncodingConfig;

/// The answer size peers are ranked for: a batch of recovery symbols.
pub const SCORED_BYTES: u64 = 256 * 1024;
/// First and longest pause before asking a failing peer again.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a peer caught sending bad symbols stays suspected, unless it answers correctly
/// (with proofs) before.
pub const SUSPICION: Duration = Duration::from_secs(600);

/// One other member of the committee.
#[derive(Debug)]
pub struct Peer {
    /// Its ID.
    pub node_id: NodeId,
    /// Its index in the committee's members (certificates name signers by it).
    pub member: u16,
    /// The shards it holds in the current epoch.
    pub shards: Vec<u16>,
    /// Its API.
    pub client: NodeClient,
}

#[derive(Debug, Clone, Copy, Default)]
struct PeerStats {
    failures: u32,
    retry_at: Option<Instant>,
    suspected_until: Option<Instant>,
}

impl PeerStats {
    fn suspected(&self, now: Instant) -> bool {
        self.suspected_until.is_some_and(|until| until > now)
    }
}

struct State {
    epoch: Option<Epoch>,
    peers: Vec<Arc<Peer>>,
    stats: HashMap<NodeId, PeerStats>,
}

/// The committee's other members and what is known of them.
pub struct Peers {
    me: NodeId,
    config: EncodingConfig,
    options: ClientOptions,
    state: Mutex<State>,
    scores: Arc<NodeScores>,
}

impl Peers {
    /// The peers of node `me` in a system coded with `config`; each call times out after
    /// `timeout`.
    pub fn new(me: NodeId, config: EncodingConfig, timeout: Duration) -> Self {
        let options = ClientOptions { timeout, connect_timeout: timeout.min(Duration::from_secs(3)) };
        let state = State { epoch: None, peers: Vec::new(), stats: HashMap::new() };
        Self { me, config, options, state: Mutex::new(state), scores: Arc::new(NodeScores::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The other members of `committee`, best first (see the module docs).
    pub fn ranked(&self, committee: &Committee) -> Vec<Arc<Peer>> {
        let mut state = self.lock();
        if state.epoch != Some(committee.epoch) {
            state.peers = self.clients(committee);
            state.epoch = Some(committee.epoch);
        }
        let now = Instant::now();
        let mut ranked: Vec<(u8, Duration, Arc<Peer>)> = state
            .peers
            .iter()
            .map(|peer| {
                let stats = state.stats.get(&peer.node_id).copied().unwrap_or_default();
                let class = if stats.suspected(now) {
                    2
                } else if stats.retry_at.is_some_and(|at| at > now) {
                    1
                } else {
                    0
                };
                if let Some(load) = peer.client.reported_load() {
                    self.scores.observe_load(&peer.node_id, load);
                }
                let score = self.scores.score(&peer.node_id, None, SCORED_BYTES);
                (class, score, Arc::clone(peer))
            })
            .collect();
        ranked.sort_by_key(|(class, score, peer)| (*class, *score, peer.member));
        self.probe_stalest(&state.peers);
        ranked.into_iter().map(|(_, _, peer)| peer).collect()
    }

    /// Asks the peer the scores name (heard from longest ago, over a few seconds ago:
    /// `NodeScores::stalest`) for its health in the background, for its answer time alone.
    /// Repairs ask the best-ranked peers, so a peer that was slow or failing once would
    /// otherwise never be asked again, and never be found to have recovered.
    fn probe_stalest(&self, peers: &[Arc<Peer>]) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let Some(stalest) = self.scores.stalest(peers.iter().map(|peer| peer.node_id)) else { return };
        let Some(peer) = peers.iter().find(|peer| peer.node_id == stalest).cloned() else { return };
        let call = self.scores.start(stalest);
        runtime.spawn(async move {
            if peer.client.health().await.is_ok() { call.answered(0) } else { call.failed() }
        });
    }

    fn clients(&self, committee: &Committee) -> Vec<Arc<Peer>> {
        let http = match self.options.http_client() {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "cannot build the HTTP client for peers");
                return Vec::new();
            }
        };
        committee
            .members
            .iter()
            .enumerate()
            .filter(|(_, member)| member.node_id != self.me && !member.shards.is_empty())
            .filter_map(|(index, member)| {
                let client = NodeClient::with_http(http.clone(), &member.address, self.config, self.options)
                    .inspect_err(|error| tracing::warn!(node = %member.node_id, %error, "bad peer address"))
                    .ok()?;
                Some(Arc::new(Peer {
                    node_id: member.node_id,
                    member: u16::try_from(index).ok()?,
                    shards: member.shards.iter().map(|shard| shard.0).collect(),
                    client,
                }))
            })
            .collect()
    }

    /// Counts a call to `peer` in flight until the guard is dropped.
    pub fn start(&self, peer: &NodeId) -> CallGuard<'_> {
        CallGuard { peers: self, peer: *peer, call: Some(self.scores.start(*peer)), ok: None }
    }

    /// Marks `peer` as having sent symbols that fail their proofs, for [`SUSPICION`].
    pub fn suspect(&self, peer: &NodeId) {
        let mut state = self.lock();
        let stats = state.stats.entry(*peer).or_default();
        let now = Instant::now();
        if !stats.suspected(now) {
            tracing::warn!(node = %peer, "a peer sent recovery symbols that fail their proofs");
        }
        stats.suspected_until = Some(now + SUSPICION);
    }

    /// Clears `peer`'s suspicion: its symbols just checked out against their proofs.
    pub fn vouch(&self, peer: &NodeId) {
        let mut state = self.lock();
        if let Some(stats) = state.stats.get_mut(peer)
            && stats.suspected_until.take().is_some_and(|until| until > Instant::now())
        {
            tracing::info!(node = %peer, "a suspected peer sent recovery symbols that check out; no longer suspected");
        }
    }

    /// The peers caught sending bad symbols and still suspected.
    pub fn suspected(&self) -> Vec<NodeId> {
        self.suspected_at(Instant::now())
    }

    /// The peers still suspected at `now`.
    pub fn suspected_at(&self, now: Instant) -> Vec<NodeId> {
        let state = self.lock();
        let suspected: BTreeSet<NodeId> =
            state.stats.iter().filter(|(_, stats)| stats.suspected(now)).map(|(node, _)| *node).collect();
        suspected.into_iter().collect()
    }
}

/// A call in flight; records its latency, or a failure with backoff, when dropped.
pub struct CallGuard<'a> {
    peers: &'a Peers,
    peer: NodeId,
    call: Option<Call>,
    ok: Option<bool>,
}

impl CallGuard<'_> {
    /// Records whether the call succeeded (a call never recorded counts as failed).
    pub fn finish(mut self, ok: bool) {
        self.ok = Some(ok);
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let ok = self.ok == Some(true);
        if let Some(call) = self.call.take() {
            if ok { call.answered(0) } else { call.failed() }
        }
        let mut state = self.peers.lock();
        let stats = state.stats.entry(self.peer).or_default();
        if ok {
            stats.failures = 0;
            stats.retry_at = None;
        } else {
            stats.failures = stats.failures.saturating_add(1);
            let backoff = FIRST_BACKOFF.saturating_mul(1 << stats.failures.min(8)).min(MAX_BACKOFF);
            stats.retry_at = Some(Instant::now() + backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspicion_ends_when_the_peer_answers_correctly_or_after_a_while() {
        let config = EncodingConfig::new(10).unwrap();
        let peers = Peers::new(NodeId([0; 32]), config, Duration::from_secs(1));
        let (liar, other) = (NodeId([1; 32]), NodeId([2; 32]));
        peers.suspect(&liar);
        peers.suspect(&other);
        assert_eq!(peers.suspected(), vec![liar, other]);
        assert!(peers.suspected_at(Instant::now() + SUSPICION + Duration::from_secs(1)).is_empty());
        peers.vouch(&liar);
        assert_eq!(peers.suspected(), vec![other], "a correct answer clears the suspicion");
    }
}

//! The other members of the committee, as sources of recovery symbols and metadata: one
//! [`NodeClient`] per member (sharing one connection pool, with the repair timeout), and what
//! this node has seen of each: its score (latency, bandwidth, calls in flight, its reported
//! load: the same `morsa_api::client::scoring` the client reads with), failures, and whether
//! it was caught sending symbols that fail their proofs.
//!
//! Liveness: [`Peers::probe_all`] asks every peer for its health, and [`Peers::silent_for`]
//! names the peers that have answered nothing for a while (`heal::liveness` reports them).
//!
//! Peers are ranked by score for a batch answer of [`SCORED_BYTES`]: fast, idle peers first
//! (before a peer is measured, the zone prior: a peer in this node's own declared zone first);
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
use morsa_api::coord::MemberZones;
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
    /// When the first liveness probe went out that the peer left unanswered, with no answer
    /// of any kind since (see [`Peers::silent_for`]).
    silent_since: Option<Instant>,
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
    /// Peers whose background probes (`probe_stalest`) answered, not yet taken into `state`.
    answered: Arc<Mutex<BTreeSet<NodeId>>>,
}

impl Peers {
    /// The peers of node `me` in a system coded with `config`; each call times out after
    /// `timeout`.
    pub fn new(me: NodeId, config: EncodingConfig, timeout: Duration) -> Self {
        let options = ClientOptions { timeout, connect_timeout: timeout.min(Duration::from_secs(3)) };
        let state = State { epoch: None, peers: Vec::new(), stats: HashMap::new() };
        Self {
            me,
            config,
            options,
            state: Mutex::new(state),
            scores: Arc::new(NodeScores::default()),
            answered: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The peers of `committee` (made again when the committee's epoch changed).
    fn refresh<'a>(&self, state: &'a mut State, committee: &Committee) -> &'a [Arc<Peer>] {
        if state.epoch != Some(committee.epoch) {
            state.peers = self.clients(committee);
            state.epoch = Some(committee.epoch);
        }
        &state.peers
    }

    /// The other members of `committee`, whose members declared `zones`, best first (see the
    /// module docs).
    pub fn ranked(&self, committee: &Committee, zones: &MemberZones) -> Vec<Arc<Peer>> {
        self.scores.set_zone(zones.of(&self.me));
        let mut state = self.lock();
        self.refresh(&mut state, committee);
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
                let score = self.scores.score(&peer.node_id, zones.of(&peer.node_id), SCORED_BYTES);
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
        let peers = Arc::clone(&self.answered);
        runtime.spawn(async move {
            if peer.client.health().await.is_ok() {
                call.answered(0);
                peers.lock().unwrap_or_else(PoisonError::into_inner).insert(peer.node_id);
            } else {
                call.failed()
            }
        });
    }

    /// Asks every other member of `committee` for its health at once, each for at most
    /// `timeout`, timing the answers into the scores; answers once every probe has finished.
    /// A peer that answers is heard from; one that does not is silent from when its probe
    /// went out, unless it was already (see [`Peers::silent_for`]).
    pub async fn probe_all(&self, committee: &Committee, timeout: Duration) {
        let peers = {
            let mut state = self.lock();
            self.refresh(&mut state, committee).to_vec()
        };
        let mut probes = tokio::task::JoinSet::new();
        for peer in peers {
            let call = self.scores.start(peer.node_id);
            probes.spawn(async move {
                let sent = Instant::now();
                let health = tokio::time::timeout(timeout, peer.client.health()).await;
                let answered = health.is_ok_and(|health| health.is_ok());
                if answered {
                    call.answered(0)
                } else {
                    call.failed()
                }
                (peer.node_id, sent, answered)
            });
        }
        let outcomes = probes.join_all().await;
        self.take_answers();
        let mut state = self.lock();
        for (node_id, sent, answered) in outcomes {
            let stats = state.stats.entry(node_id).or_default();
            match answered {
                true => stats.silent_since = None,
                // A probe that took far longer than its timeout says nothing of the peer: this
                // process was not running (stopped, or the machine suspended).
                false if sent.elapsed() > timeout.saturating_mul(2) => {}
                false => stats.silent_since = stats.silent_since.or(Some(sent)),
            }
        }
    }

    /// The members of the current committee that have answered nothing (no probe, no call)
    /// since a probe went out at least `silence` ago.
    pub fn silent_for(&self, silence: Duration) -> Vec<NodeId> {
        let state = self.lock();
        let now = Instant::now();
        let silent: BTreeSet<NodeId> = state
            .peers
            .iter()
            .filter(|peer| {
                state
                    .stats
                    .get(&peer.node_id)
                    .and_then(|stats| stats.silent_since)
                    .is_some_and(|since| now.saturating_duration_since(since) >= silence)
            })
            .map(|peer| peer.node_id)
            .collect();
        silent.into_iter().collect()
    }

    /// Clears the silence of the peers whose background probes answered since last asked.
    fn take_answers(&self) {
        let answered = std::mem::take(&mut *self.answered.lock().unwrap_or_else(PoisonError::into_inner));
        let mut state = self.lock();
        for node_id in answered {
            state.stats.entry(node_id).or_default().silent_since = None;
        }
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
            stats.silent_since = None;
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

    /// A member listening on a real socket (answering health) or on a closed port.
    fn member(seed: u8, address: String) -> morsa_core::CommitteeMember {
        let key = morsa_core::BlsSecretKey::from_seed([seed; 32]);
        morsa_core::CommitteeMember {
            node_id: NodeId::from_public_key(&key.public_key()),
            public_key: key.public_key(),
            address,
            shards: vec![morsa_core::ShardIndex(u16::from(seed))],
        }
    }

    #[tokio::test]
    async fn a_peer_is_silent_from_its_first_unanswered_probe_until_it_answers() {
        // A closed port: bound and never listening, so connections are refused and no other
        // process can come to listen there while the test runs.
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let closed = reserved.local_addr().unwrap();
        let dead = member(1, format!("http://{closed}"));
        let me = member(0, "http://127.0.0.1:1".to_string());
        let committee = Committee { epoch: Epoch(3), n_shards: 4, members: vec![me.clone(), dead.clone()] };
        let peers = Peers::new(me.node_id, EncodingConfig::new(4).unwrap(), Duration::from_secs(1));
        assert!(peers.silent_for(Duration::ZERO).is_empty(), "never probed, never silent");
        peers.probe_all(&committee, Duration::from_secs(1)).await;
        assert_eq!(peers.silent_for(Duration::ZERO), vec![dead.node_id]);
        assert!(peers.silent_for(Duration::from_secs(600)).is_empty(), "silent for less than that");
        // Any answer ends the silence.
        peers.start(&dead.node_id).finish(true);
        assert!(peers.silent_for(Duration::ZERO).is_empty());
    }

    #[test]
    fn unmeasured_peers_in_the_nodes_own_zone_rank_first_and_measurement_overrides_it() {
        let me = member(0, "http://127.0.0.1:1".to_string());
        let others: Vec<_> = (1..4).map(|seed| member(seed, format!("http://127.0.0.1:{seed}"))).collect();
        let committee = Committee {
            epoch: Epoch(3),
            n_shards: 4,
            members: std::iter::once(me.clone()).chain(others.iter().cloned()).collect(),
        };
        let peers = Peers::new(me.node_id, EncodingConfig::new(4).unwrap(), Duration::from_secs(1));
        let order = |zones: &MemberZones| -> Vec<u16> {
            peers.ranked(&committee, zones).iter().map(|peer| peer.member).collect()
        };
        assert_eq!(order(&MemberZones::default()), [1, 2, 3], "no zones: the committee's order");
        let mut zones = MemberZones::default();
        zones.declare(me.node_id, "zone-a");
        zones.declare(others[0].node_id, "zone-b");
        zones.declare(others[2].node_id, "zone-a");
        // Same zone (member 3), unknown (member 2), other zone (member 1).
        assert_eq!(order(&zones), [3, 2, 1]);
        // Member 3 answers slowly: measured, the prior no longer counts.
        for _ in 0..4 {
            peers.scores.record(&others[2].node_id, Duration::from_millis(500), 0);
        }
        assert_eq!(order(&zones), [2, 1, 3]);
    }
}

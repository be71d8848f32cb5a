//! The committee as the client sees it: a client per storage node, who holds which sliver
//! pair of a blob, which nodes reads leave out, and the shared node scores (how fast and how
//! busy each node has been: `morsa_api::client::scoring`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use morsa_api::client::scoring::{Call, NodeScores, ScoreInputs};
use morsa_api::client::{ClientError as ApiError, ClientOptions, NodeClient};
use morsa_api::coord::MemberZones;
use morsa_api::node::NodeErrorCode;
use morsa_core::{Committee, NodeId, ShardIndex};
use redstuff::{BlobId, EncodingConfig, SliverType};

use crate::error::NodeFailure;

/// The storage nodes of one committee.
#[derive(Debug)]
pub(crate) struct NodeSet {
    committee: Committee,
    /// The zones the members declared (only the members').
    zones: MemberZones,
    clients: Vec<NodeClient>,
    /// What is known of every node's speed and load, shared by the client's node sets.
    scores: Arc<NodeScores>,
    /// Per member: reads never ask it, as if it were gone (see [`Client::excluding_nodes`]).
    ///
    /// [`Client::excluding_nodes`]: crate::Client::excluding_nodes
    excluded: Vec<bool>,
}

impl NodeSet {
    /// The node set of `committee`, whose members declared `zones`; reads leave out the
    /// members whose IDs are in `excluded`.
    pub(crate) fn new(
        committee: Committee,
        zones: &MemberZones,
        config: EncodingConfig,
        http: &reqwest::Client,
        options: ClientOptions,
        excluded: &BTreeSet<NodeId>,
        scores: Arc<NodeScores>,
    ) -> Result<Self, ApiError> {
        let clients = committee
            .members
            .iter()
            .map(|member| NodeClient::with_http(http.clone(), &member.address, config, options))
            .collect::<Result<Vec<_>, _>>()?;
        let excluded = committee.members.iter().map(|member| excluded.contains(&member.node_id)).collect();
        let zones = zones.for_committee(&committee);
        Ok(Self { committee, zones, clients, scores, excluded })
    }

    /// The same nodes (and what is known of their speed), reads leaving out `excluded`.
    pub(crate) fn excluding(&self, excluded: &BTreeSet<NodeId>) -> Self {
        Self {
            committee: self.committee.clone(),
            zones: self.zones.clone(),
            clients: self.clients.clone(),
            scores: Arc::clone(&self.scores),
            excluded: self
                .committee
                .members
                .iter()
                .map(|member| excluded.contains(&member.node_id))
                .collect(),
        }
    }

    /// Whether reads may ask `member`.
    pub(crate) fn readable(&self, member: usize) -> bool {
        !self.excluded[member]
    }

    pub(crate) fn committee(&self) -> &Committee {
        &self.committee
    }

    /// The zones the members declared.
    pub(crate) fn zones(&self) -> &MemberZones {
        &self.zones
    }

    pub(crate) fn len(&self) -> usize {
        self.clients.len()
    }

    pub(crate) fn client(&self, member: usize) -> &NodeClient {
        &self.clients[member]
    }

    /// The member reads ask for sliver pair `pair` of `blob_id`: the holder of the shard that
    /// stores it, none if reads leave that member out.
    pub(crate) fn owner_of_pair(&self, blob_id: &BlobId, pair: usize) -> Option<usize> {
        let n = usize::from(self.committee.n_shards);
        let shard = u16::try_from(blob_id.shard_for_pair(pair, n)).ok()?;
        self.committee.shard_owner(ShardIndex(shard)).filter(|member| self.readable(*member))
    }

    /// The member reads ask for sliver `index` of `kind` (none if reads leave it out), and the
    /// pair it is in.
    pub(crate) fn owner_of_sliver(
        &self,
        blob_id: &BlobId,
        kind: SliverType,
        index: usize,
    ) -> Option<(usize, usize)> {
        let n = usize::from(self.committee.n_shards);
        let pair = match kind {
            SliverType::Primary => index,
            SliverType::Secondary => redstuff::secondary_index_of_pair(index, n),
        };
        Some((self.owner_of_pair(blob_id, pair)?, pair))
    }

    /// Sliver pairs of `blob_id` that `member` stores.
    pub(crate) fn pairs_of(&self, blob_id: &BlobId, member: usize) -> Vec<usize> {
        let placement = blob_id.placement(usize::from(self.committee.n_shards));
        self.committee.members[member]
            .shards
            .iter()
            .map(|shard| placement.pair_for_shard(usize::from(shard.0)))
            .collect()
    }

    pub(crate) fn weight(&self, member: usize) -> usize {
        self.committee.weight(member)
    }

    /// The member's node ID.
    pub(crate) fn node_id(&self, member: usize) -> NodeId {
        self.committee.members[member].node_id
    }

    /// The member's zone, if its operator declared one: the prior its score starts from.
    pub(crate) fn zone(&self, member: usize) -> Option<&str> {
        self.zones.of(&self.committee.members[member].node_id)
    }

    /// The shared scores.
    pub(crate) fn scores(&self) -> &Arc<NodeScores> {
        &self.scores
    }

    /// Counts a request to `member` in flight; finish the call with its outcome.
    pub(crate) fn start(&self, member: usize) -> Call {
        if let Some(load) = self.clients[member].reported_load() {
            self.scores.observe_load(&self.node_id(member), load);
        }
        self.scores.start(self.node_id(member))
    }

    /// Records that `member` answered in `elapsed` (a small answer).
    pub(crate) fn record_latency(&self, member: usize, elapsed: Duration) {
        self.scores.record(&self.node_id(member), elapsed, 0);
    }

    /// Records that `bytes` from `member` took `transfer` after the answer's head: its link's
    /// bandwidth.
    pub(crate) fn record_transfer(&self, member: usize, bytes: u64, transfer: Duration) {
        self.scores.record_transfer(&self.node_id(member), bytes, transfer);
    }

    /// Records that `member` failed: it is treated as slow for a while.
    pub(crate) fn record_failure(&self, member: usize) {
        self.scores.start(self.node_id(member)).failed();
    }

    /// The score of asking `member` for `bytes` now (lower is better).
    pub(crate) fn score(&self, member: usize, bytes: u64) -> Duration {
        self.scores.score(&self.node_id(member), self.zone(member), bytes)
    }

    /// How long to wait for `member`'s answer of `bytes` before asking another node.
    pub(crate) fn patience(&self, member: usize, bytes: u64) -> Duration {
        self.scores.patience(&self.node_id(member), self.zone(member), bytes)
    }

    /// What `member`'s score is made of, for an answer of `bytes`.
    pub(crate) fn inputs(&self, member: usize, bytes: u64) -> ScoreInputs {
        self.scores.inputs(&self.node_id(member), self.zone(member), bytes)
    }

    /// Members best first, for small requests.
    pub(crate) fn by_latency(&self) -> Vec<usize> {
        let mut members: Vec<usize> = (0..self.len()).collect();
        members.sort_by_key(|member| (self.score(*member, 0), *member));
        members
    }

    /// Members reads may ask, best first, for small requests.
    pub(crate) fn readable_by_latency(&self) -> Vec<usize> {
        let mut members = self.by_latency();
        members.retain(|member| self.readable(*member));
        members
    }

    /// A failure report for `member`.
    pub(crate) fn failure(&self, member: usize, reason: impl Into<String>) -> NodeFailure {
        NodeFailure {
            node: self.committee.members[member].address.clone(),
            shards: self.weight(member),
            reason: reason.into(),
        }
    }
}

/// Whether an error may go away if the same request is sent again later.
pub(crate) fn is_transient(error: &ApiError) -> bool {
    match error {
        ApiError::Connect(_) | ApiError::Transport(_) | ApiError::Timeout | ApiError::NoAnswer { .. } => true,
        ApiError::Http { status, .. } => match error.node_code() {
            Some(NodeErrorCode::NotRegistered | NodeErrorCode::NotReady | NodeErrorCode::Unavailable) => true,
            Some(_) => false,
            None => status.is_server_error() || status.as_u16() == 429,
        },
        ApiError::Decode(_) | ApiError::TooLarge { .. } | ApiError::InvalidUrl(_) => false,
    }
}

/// How a request is retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    /// Tries in all.
    pub attempts: u32,
    /// First pause; doubles after each try.
    pub first_pause: Duration,
    /// Longest pause.
    pub max_pause: Duration,
}

impl Retry {
    /// For uploads: a node that is briefly busy or has not seen the registration yet.
    pub(crate) const UPLOAD: Retry =
        Retry { attempts: 6, first_pause: Duration::from_millis(50), max_pause: Duration::from_secs(2) };

    /// Runs `call` until it succeeds, fails for good, or runs out of tries.
    pub(crate) async fn run<T, F, Fut>(self, call: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        self.run_while(call, is_transient).await
    }

    /// Runs `call` until it succeeds, fails with an error `again` does not accept, or runs out
    /// of tries.
    pub(crate) async fn run_while<T, F, Fut>(
        self,
        mut call: F,
        again: impl Fn(&ApiError) -> bool,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut pause = self.first_pause;
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) if attempt < self.attempts && again(&error) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.max_pause);
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use morsa_core::{BlsSecretKey, CommitteeMember, Epoch};

    use super::*;

    /// Four nodes of three shards each (n = 12).
    fn four_nodes(excluded: &[u8]) -> NodeSet {
        four_nodes_in(excluded, &MemberZones::default(), None)
    }

    /// [`four_nodes`] whose members declared `zones`, read by a client in `own_zone`.
    fn four_nodes_in(excluded: &[u8], zones: &MemberZones, own_zone: Option<&str>) -> NodeSet {
        let ids: Vec<NodeId> = (0..4u8)
            .map(|index| NodeId::from_public_key(&BlsSecretKey::from_seed([index + 1; 32]).public_key()))
            .collect();
        let members = (0..4u8)
            .map(|index| {
                let key = BlsSecretKey::from_seed([index + 1; 32]);
                CommitteeMember {
                    node_id: ids[usize::from(index)],
                    public_key: key.public_key(),
                    address: format!("127.0.0.1:{}", 1000 + u16::from(index)),
                    shards: (u16::from(index) * 3..u16::from(index) * 3 + 3).map(ShardIndex).collect(),
                }
            })
            .collect();
        let committee = Committee { epoch: Epoch(1), n_shards: 12, members };
        let config = EncodingConfig::new(12).unwrap();
        let options = ClientOptions::default();
        let excluded = excluded.iter().map(|index| ids[usize::from(*index)]).collect();
        let scores = Arc::new(NodeScores::new(own_zone.map(str::to_owned)));
        NodeSet::new(committee, zones, config, &options.http_client().unwrap(), options, &excluded, scores)
            .unwrap()
    }

    #[test]
    fn reads_never_pick_an_excluded_node() {
        let blob_id = BlobId::from_root(12, &[7; 32]);
        let all = four_nodes(&[]);
        let without_two = four_nodes(&[2]);
        // The node set built from scratch and the one derived from a full set agree.
        let derived = all.excluding(&std::iter::once(without_two.committee().members[2].node_id).collect());
        for nodes in [&without_two, &derived] {
            assert_eq!(nodes.readable_by_latency().len(), 3);
            assert!(!nodes.readable_by_latency().contains(&2));
            assert_eq!(nodes.by_latency().len(), 4, "writes still see every node");
            let mut left_out = 0;
            for pair in 0..12 {
                let owner = all.owner_of_pair(&blob_id, pair).unwrap();
                match nodes.owner_of_pair(&blob_id, pair) {
                    None => {
                        assert_eq!(owner, 2, "only the excluded node's pairs have no reader");
                        left_out += 1;
                    }
                    Some(member) => assert_eq!(member, owner),
                }
            }
            assert_eq!(left_out, 3, "the excluded node's three shards are left out");
        }
    }

    /// Node IDs as [`four_nodes`] makes them.
    fn node_ids() -> Vec<NodeId> {
        (0..4u8)
            .map(|index| NodeId::from_public_key(&BlsSecretKey::from_seed([index + 1; 32]).public_key()))
            .collect()
    }

    #[test]
    fn members_answer_their_declared_zone_and_unmeasured_ones_in_the_clients_zone_come_first() {
        let ids = node_ids();
        let mut zones = MemberZones::default();
        zones.declare(ids[0], "zone-b");
        zones.declare(ids[2], "zone-a");
        // A zone for a node not in the committee is not the set's.
        zones.declare(NodeId([7; 32]), "zone-a");
        let nodes = four_nodes_in(&[], &zones, Some("zone-a"));
        assert_eq!(
            (0..4).map(|member| nodes.zone(member)).collect::<Vec<_>>(),
            [Some("zone-b"), None, Some("zone-a"), None]
        );
        assert_eq!(nodes.zones().of(&NodeId([7; 32])), None);
        // Same zone (2 ms), unknown (20 ms, by member), other zone (60 ms).
        assert_eq!(nodes.by_latency(), [2, 1, 3, 0]);
        assert_eq!(nodes.inputs(2, 0).prior, morsa_api::client::scoring::ZonePrior::SameZone);
        assert_eq!(
            nodes.excluding(&BTreeSet::new()).zone(2),
            Some("zone-a"),
            "a derived set keeps the zones"
        );
        // Without zones carried, every node is alike and the committee's order decides.
        let blind = four_nodes_in(&[], &MemberZones::default(), Some("zone-a"));
        assert_eq!(blind.by_latency(), [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_permanent_ones_are_not() {
        let retry =
            Retry { attempts: 3, first_pause: Duration::from_millis(1), max_pause: Duration::from_millis(2) };
        let mut calls = 0;
        let result: Result<(), _> = retry
            .run(|| {
                calls += 1;
                async { Err(ApiError::Timeout) }
            })
            .await;
        assert_eq!((result, calls), (Err(ApiError::Timeout), 3));
        let mut calls = 0;
        let result: Result<(), _> = retry
            .run(|| {
                calls += 1;
                async { Err(ApiError::Decode("bad".into())) }
            })
            .await;
        assert_eq!(
            (result, calls),
            (Err(ApiError::Decode("bad".into())), 1),
            "a decode error is not retried"
        );
    }
}

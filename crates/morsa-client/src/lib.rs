//! Store and read blobs on a Morsa system.
//!
//! A [`Client`] encodes a blob, pays for and registers it with the coordinator, uploads each
//! storage node's sliver pairs, gathers a quorum of signed confirmations into a certificate
//! and certifies the blob. Reads fetch metadata and slivers from the nodes, verify every
//! piece against the blob ID, and decode; a range read fetches only the symbols it needs.
//! Files larger than one chunk are stored as chunks plus a small manifest and read back as
//! one file ([`files`]; the format in [`manifest`]).
//!
//! Nothing here prints: progress is reported as [`Progress`] events to a sink the caller
//! gives ([`Client::with_progress`]). Errors are typed per failure ([`Error`]); its
//! configuration and account key file are read and written through `morsa-plumbing`
//! (size-capped, durable, the key file readable by its owner only).
//!
//! ```no_run
//! # async fn example() -> Result<(), morsa_client::Error> {
//! use morsa_client::{Client, ClientConfig, StoreOptions};
//! let config = ClientConfig::load(&ClientConfig::locate(None)?)?;
//! let client = Client::connect(&config).await?;
//! let stored = client.store_blob(b"hello".to_vec(), &StoreOptions::default()).await?;
//! let read = client.read_blob(&stored.blob_id).await?;
//! assert_eq!(read.data, b"hello");
//! # Ok(())
//! # }
//! ```

mod committee_cache;
mod committee_vote;
mod config;
pub mod crypt;
mod error;
pub mod files;
pub mod manifest;
mod nodes;
mod ops;
mod probe;
mod progress;
mod range;
mod range_bytes;
mod read;
mod read_stats;
mod retention;
mod score_cache;
mod sealed_view;
mod sliver_batches;
mod slivers;
mod staking;
mod store;
pub mod store_many;
mod stream_read;
mod transactions;
mod without_coordinator;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use morsa_api::client::scoring::{NodeScores, ScoreInputs};
use morsa_api::client::{ClientOptions, CoordClient};
use morsa_api::coord::{Command, SubmitResponse};
use morsa_core::{AccountId, AccountKey, Committee, NodeId};
use redstuff::EncodingConfig;

pub use config::{
    CONFIG_ENV, ClientConfig, DEFAULT_CHUNK_SIZE, load_or_create_account_key, write_account_key,
};
pub use crypt::{CryptError, Crypto};
pub use error::{Error, InternalError, NodeFailure, Refusal};
pub use ops::NodeReport;
pub use progress::{Progress, ProgressSink};
pub use read::{BadSliver, ReadOutcome};
pub use read_stats::{ReadPhases, ReadStats, RequestOutcome, Selection, SliverRequest};
pub use retention::Renewal;
pub use staking::NodeRegistration;
pub use store::{DetachedUploads, StoreOptions, StoreOutcome, StoreTimings, StoredHow};
pub use store_many::{InFlight, Source, StoredFile};
pub use transactions::{MAX_BATCH_BYTES, TransactionStats};

use committee_cache::{CommitteeCache, KnownCommittee};
use nodes::NodeSet;
use score_cache::ScoreCache;

/// Timeout of one request to a storage node (slivers of 1 GiB chunks are a few MiB).
const NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// Filler bytes [`Client::probe_node_scores`] asks each node for, to time its link: 105 ms
/// over 20 Mbit/s, under a millisecond over a fast link.
pub const PROBE_BYTES: u64 = 256 * 1024;

/// A connection to one Morsa system, acting for one account.
///
/// It reads without any coordinator when none answers: the committee then comes from its
/// cache or from the storage nodes, and a blob's certification from the nodes (see
/// [`ReadOutcome::without_coordinator`]). Writes need a coordinator.
pub struct Client {
    coord: CoordClient,
    key: AccountKey,
    /// What of the system never changes (fetched on the first write when the client
    /// connected without a coordinator).
    genesis: OnceLock<Genesis>,
    /// Where the committee is kept for reads without a coordinator.
    committee_cache: CommitteeCache,
    /// When the coordinator was last found unreachable, if its last call failed so.
    coordinator_down: std::sync::Mutex<Option<Instant>>,
    encoding: EncodingConfig,
    http: reqwest::Client,
    node_options: ClientOptions,
    nodes: RwLock<Arc<NodeSet>>,
    /// Nodes reads never ask, as if they were gone ([`Client::excluding_nodes`]).
    excluded: BTreeSet<NodeId>,
    /// The account's transactions: one at a time, the commands that wait meanwhile together.
    transactions: transactions::Transactions,
    chunk_size: u64,
    max_requests_per_node: usize,
    progress: ProgressSink,
    /// What files are encrypted to when stored and opened with when read.
    crypto: Arc<crypt::Crypto>,
    /// Uploads that go on after their blobs were certified, and the room their encodings take.
    trailing: store::Trailing,
    /// What is known of each node's speed and load (shared by every node set).
    scores: Arc<NodeScores>,
    /// Where those estimates are kept between processes.
    score_cache: ScoreCache,
    /// Probes of nodes reads stopped asking, not collected yet.
    probes: probe::Probes,
    /// How reads pick nodes.
    selection: Selection,
    /// Whether reads ask for more slivers than needed and hedge late answers.
    hedged_reads: bool,
    /// Which blobs reads of files write out as they go, and in what windows.
    streaming: stream_read::Streaming,
}

/// What reads know of one node of the committee (`morsa health --latency`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeScore {
    /// Its address.
    pub address: String,
    /// The zone its operator declared, if any: with the client's `zone`, it sets the prior
    /// (`inputs.prior`) that stands for the node's latency until it is measured.
    pub zone: Option<String>,
    /// What its score is made of.
    pub inputs: ScoreInputs,
}

impl NodeScore {
    fn of(nodes: &NodeSet, member: usize, bytes: u64) -> Self {
        Self {
            address: nodes.committee().members[member].address.clone(),
            zone: nodes.zone(member).map(str::to_owned),
            inputs: nodes.inputs(member, bytes),
        }
    }
}

/// The system parameters set at genesis, which never change.
struct Genesis {
    /// The chain ID transactions are signed for.
    chain_id: String,
    /// The most epochs ahead storage can be bought or extended.
    max_epochs_ahead: u32,
}

impl Genesis {
    fn of(system: morsa_api::coord::SystemInfo) -> Self {
        Self { chain_id: system.chain_id, max_epochs_ahead: system.max_epochs_ahead }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("coordinator", &self.coord.base_url())
            .field("account", &self.key.id())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects with `config`: reads (or, on first use, creates) the account key, and asks
    /// the coordinator's replicas for the system parameters and the committee. When none
    /// answers, the committee comes from the cache or the storage nodes instead (reads work,
    /// writes will fail until a coordinator answers).
    pub async fn connect(config: &ClientConfig) -> Result<Self, Error> {
        let (key, _) = load_or_create_account_key(&config.account_key_file)?;
        let options = ClientOptions {
            timeout: Duration::from_millis(config.coordinator_timeout_ms),
            ..ClientOptions::default()
        };
        let coord = CoordClient::with_urls(&config.coordinator_urls, options)
            .map_err(Error::coordinator("connecting"))?;
        let cache = CommitteeCache::new(config.committee_cache_file.clone());
        let scores = Arc::new(NodeScores::new(config.zone.clone()));
        let score_cache = ScoreCache::new(config.node_scores_file.clone());
        score_cache.load_into(&scores);
        let mut client = Self::open(coord, key, cache, &config.node_urls, scores).await?;
        client.score_cache = score_cache;
        client.chunk_size = config.chunk_size;
        client.max_requests_per_node = config.max_requests_per_node;
        client.hedged_reads = config.hedged_reads;
        Ok(client)
    }

    /// Connects to the coordinator at `coordinator_url` acting for `key`, with default settings
    /// and no committee cache.
    pub async fn with_key(coordinator_url: &str, key: AccountKey) -> Result<Self, Error> {
        let coord = CoordClient::new(coordinator_url).map_err(Error::coordinator("connecting"))?;
        Self::open(coord, key, CommitteeCache::default(), &[], Arc::new(NodeScores::default())).await
    }

    async fn open(
        coord: CoordClient,
        key: AccountKey,
        committee_cache: CommitteeCache,
        node_urls: &[String],
        scores: Arc<NodeScores>,
    ) -> Result<Self, Error> {
        let node_options = ClientOptions { timeout: NODE_TIMEOUT, ..ClientOptions::default() };
        let http = node_options.http_client().map_err(Error::coordinator("building the HTTP client"))?;
        let genesis = OnceLock::new();
        let mut coordinator_down = None;
        let known = match coord.system().await {
            Ok(system) => {
                genesis.get_or_init(|| Genesis::of(system));
                let info = coord.committee().await.map_err(Error::coordinator("reading the committee"))?;
                let known = KnownCommittee::new(info.current, &info.zones);
                committee_cache.save(&known);
                known
            }
            Err(error) if error.is_unreachable() => {
                coordinator_down = Some(Instant::now());
                without_coordinator::committee_from_nodes(&committee_cache, node_urls, &http, error).await?
            }
            Err(error) => return Err(Error::coordinator("reading the system parameters")(error)),
        };
        let encoding = EncodingConfig::new(known.committee.n_shards).map_err(Error::ShardCount)?;
        let nodes = NodeSet::new(
            known.committee,
            &known.zones,
            encoding,
            &http,
            node_options,
            &BTreeSet::new(),
            Arc::clone(&scores),
        )
        .map_err(Error::coordinator("reading node addresses"))?;
        Ok(Self {
            coord,
            key,
            genesis,
            committee_cache,
            coordinator_down: std::sync::Mutex::new(coordinator_down),
            encoding,
            http,
            node_options,
            nodes: RwLock::new(Arc::new(nodes)),
            excluded: BTreeSet::new(),
            transactions: transactions::Transactions::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_requests_per_node: 64,
            progress: progress::ignore(),
            crypto: Arc::new(crypt::Crypto::default()),
            trailing: store::Trailing::default(),
            scores,
            score_cache: ScoreCache::default(),
            probes: probe::Probes::default(),
            selection: Selection::default(),
            hedged_reads: true,
            streaming: stream_read::Streaming::default(),
        })
    }

    /// Picks nodes for reads by `selection` (network-aware by default).
    pub fn with_selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// Saves what reads learnt of the nodes (to `node_scores_file`), now.
    pub fn save_node_scores(&self) {
        self.score_cache.save(&self.scores);
    }

    /// Waits a little (a quarter of a second at most) for the probes reads sent to nodes they
    /// stopped asking, then saves what reads learnt of the nodes: for a process about to exit,
    /// whose probes would otherwise die unanswered (and a recovered node never be asked again).
    pub async fn finish_reads(&self) {
        self.probes.finish(probe::PROBE_GRACE).await;
        self.score_cache.settle().await;
        self.save_node_scores();
    }

    /// Saves what reads learnt of the nodes, in the background (the read does not wait for
    /// the disk), unless that was done a few seconds ago.
    fn remember_node_scores(&self) {
        self.score_cache.save_now_and_then(&self.scores);
    }

    /// What reads know of each node of the committee now, without asking any: its address,
    /// zone and what its score for an answer of `bytes` is made of (as
    /// [`Client::probe_node_scores`]).
    pub fn node_score_inputs(&self, bytes: u64) -> Vec<NodeScore> {
        let nodes = self.nodes();
        (0..nodes.len()).map(|member| NodeScore::of(&nodes, member, bytes)).collect()
    }

    /// Asks every node of the committee for its health, once, timing the answers into the
    /// scores (their latency), then for [`PROBE_BYTES`] of filler, timing their transfer (the
    /// link's bandwidth: a link too thin for large answers is then known before the first read
    /// asks it for any); answers what each node's score is made of, for an answer of `bytes`,
    /// with whether it answered.
    pub async fn probe_node_scores(&self, bytes: u64) -> Result<Vec<(NodeScore, bool)>, Error> {
        let nodes = self.refresh_nodes().await?;
        let probes = (0..nodes.len()).map(|member| {
            let nodes = Arc::clone(&nodes);
            async move {
                let call = nodes.start(member);
                let answered = nodes.client(member).health().await.is_ok();
                if !answered {
                    call.failed();
                    return false;
                }
                call.answered(0);
                // A node without the probe route (an older version) just stays unmeasured.
                match nodes.client(member).probe_transfer(PROBE_BYTES).await {
                    Ok((got, transfer)) if got > 0 => nodes.record_transfer(member, got, transfer),
                    Ok(_) => {}
                    Err(error) => tracing::debug!(%error, "no bandwidth probe"),
                }
                true
            }
        });
        let answered = futures_util::future::join_all(probes).await;
        self.save_node_scores();
        Ok(answered
            .into_iter()
            .enumerate()
            .map(|(member, ok)| (NodeScore::of(&nodes, member, bytes), ok))
            .collect())
    }

    /// Sends progress events to `sink`.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = sink;
        self
    }

    /// Encrypts the files it stores and opens the files it reads with `crypto` (see
    /// [`crypt`]); without it files are stored as they are and encrypted blobs cannot be read.
    pub fn with_crypto(mut self, crypto: Crypto) -> Self {
        self.crypto = Arc::new(crypto);
        self
    }

    /// Makes [`Client::read_file`] write blobs of `from` bytes and more out as they are read,
    /// about `window` bytes at a time (whole rows; defaults 64 MiB and 16 MiB); smaller
    /// blobs are read whole. Memory holds about three windows and their slivers.
    pub fn with_stream_window(mut self, from: u64, window: u64) -> Self {
        self.streaming = stream_read::Streaming { from: from.max(1), window: window.max(1) };
        self
    }

    /// Splits files larger than `bytes` into chunks (also capped by the largest blob).
    pub fn with_chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Reads never ask the nodes `excluded`, as if they were gone: every read (whole, range,
    /// file) then has to succeed with the other nodes' slivers and symbols alone, which is
    /// what a restore drill `--with-failures` checks. Writes still go to every node. Replaces
    /// the nodes excluded before (an empty set makes reads use every node again).
    pub fn excluding_nodes(mut self, excluded: impl IntoIterator<Item = NodeId>) -> Self {
        self.excluded = excluded.into_iter().collect();
        let nodes = Arc::new(self.nodes().excluding(&self.excluded));
        self.nodes = RwLock::new(nodes);
        self
    }

    /// The zones the members of the committee reads use declared (as last read with it).
    pub fn node_zones(&self) -> morsa_api::coord::MemberZones {
        self.nodes().zones().clone()
    }

    /// The committee reads use now (asked of the coordinator again when one answers).
    pub async fn current_committee(&self) -> Result<Committee, Error> {
        Ok(self.refresh_nodes().await?.committee().clone())
    }

    /// The account the client acts for.
    pub fn account(&self) -> AccountId {
        self.key.id()
    }

    /// The system's code parameters.
    pub fn encoding(&self) -> EncodingConfig {
        self.encoding
    }

    /// The coordinator client.
    pub fn coordinator(&self) -> &CoordClient {
        &self.coord
    }

    /// The largest piece of a file stored in one blob: the chunk size, capped by the largest
    /// blob (less what encryption adds, when the client encrypts).
    pub fn effective_chunk_size(&self) -> u64 {
        self.chunk_size.min(self.crypto.plaintext_limit(self.encoding.max_blob_size())).max(1)
    }

    fn nodes(&self) -> Arc<NodeSet> {
        Arc::clone(&self.nodes.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Fetches the committee again (after an epoch change) and answers the new node set.
    /// While no coordinator answers, the node set stays as it is.
    async fn refresh_nodes(&self) -> Result<Arc<NodeSet>, Error> {
        if self.coordinator_skipped() {
            return Ok(self.nodes());
        }
        let committee = match self.coord.committee().await {
            Ok(info) => KnownCommittee::new(info.current, &info.zones),
            Err(error) if error.is_unreachable() => {
                self.coordinator_reached(false);
                return Ok(self.nodes());
            }
            Err(error) => return Err(Error::coordinator("reading the committee")(error)),
        };
        self.coordinator_reached(true);
        self.adopt_committee(committee)
    }

    /// The nodes of `known`, just read from the coordinator: the current node set if it is
    /// the same committee with the same zones, else a new one, kept (and the committee cached
    /// on disk).
    pub(crate) fn adopt_committee(&self, known: KnownCommittee) -> Result<Arc<NodeSet>, Error> {
        self.committee_cache.save(&known);
        let current = self.nodes();
        if known.committee == *current.committee() && known.zones == *current.zones() {
            return Ok(current);
        }
        let nodes = Arc::new(
            NodeSet::new(
                known.committee,
                &known.zones,
                self.encoding,
                &self.http,
                self.node_options,
                &self.excluded,
                Arc::clone(&self.scores),
            )
            .map_err(Error::coordinator("reading node addresses"))?,
        );
        *self.nodes.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&nodes);
        Ok(nodes)
    }

    /// What of the system never changes, asked of the coordinator if not known yet.
    async fn genesis(&self) -> Result<&Genesis, Error> {
        if let Some(genesis) = self.genesis.get() {
            return Ok(genesis);
        }
        let system =
            self.coord.system().await.map_err(Error::coordinator("reading the system parameters"))?;
        Ok(self.genesis.get_or_init(|| Genesis::of(system)))
    }

    fn report(&self, event: Progress) {
        (self.progress)(&event);
    }

    /// Submits `command` in the account's next transaction, together with the commands of
    /// this client's other operations waiting meanwhile (see `transactions`); answers what it
    /// did, or why it was refused.
    async fn submit(&self, command: Command, during: &'static str) -> Result<SubmitResponse, Error> {
        let chain_id = &self.genesis().await?.chain_id;
        self.transactions
            .submit(&self.coord, &self.key, chain_id, command)
            .await
            .map_err(|source| Error::Coordinator { during, source })
    }

    /// How many transactions this client's account sent (accepted by the coordinator) and
    /// how many commands they carried: more commands than transactions when concurrent
    /// operations shared transactions.
    pub fn transaction_stats(&self) -> TransactionStats {
        self.transactions.stats()
    }
}

//! A whole system in one test process: a coordinator and storage nodes, each serving real
//! HTTP on its own 127.0.0.1 port, stoppable one by one.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

pub mod proxy;

use std::time::{Duration, Instant};

use morsa_api::client::CoordClient;
use morsa_client::Client;
use morsa_coord::{Coordinator, Genesis, GenesisAccount, GenesisNode};
use morsa_core::{AccountKey, BlsSecretKey};
use morsa_node::{Listening, NodeConfig, RepairConfig};
use morsa_plumbing::file::Access;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use proxy::Proxy;

pub const CHAIN: &str = "client-test";

/// One storage node of the system.
pub struct LocalNode {
    /// The address the committee lists (the proxy's, when the node is behind one).
    pub address: String,
    /// The proxy in front of the node, if any.
    pub proxy: Option<Proxy>,
    /// How it runs: where it listens, its key file and data directory.
    config: NodeConfig,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The system and a funded user account.
pub struct System {
    pub coordinator_url: String,
    pub nodes: Vec<LocalNode>,
    pub user: AccountKey,
    pub n_shards: u16,
    dir: tempfile::TempDir,
    coord_task: JoinHandle<()>,
}

impl Drop for System {
    fn drop(&mut self) {
        self.coord_task.abort();
        for node in &mut self.nodes {
            if let Some(task) = node.task.take() {
                task.abort();
            }
        }
    }
}

async fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    (listener, address)
}

impl System {
    /// `nodes` nodes with equal stake sharing `n_shards` shards.
    pub async fn start(nodes: usize, n_shards: u16) -> Self {
        Self::start_with(nodes, n_shards, false).await
    }

    /// Like [`System::start`], but every node is behind a [`Proxy`] (honest until told
    /// otherwise) whose address is the one the committee lists.
    pub async fn start_behind_proxies(nodes: usize, n_shards: u16) -> Self {
        Self::start_with(nodes, n_shards, true).await
    }

    async fn start_with(nodes: usize, n_shards: u16, proxies: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let user = AccountKey::from_seed([7; 32]);
        let mut listeners = Vec::new();
        let mut genesis_nodes = Vec::new();
        let mut key_files = Vec::new();
        for index in 0..nodes {
            let key_file = dir.path().join(format!("node-{index}.key"));
            // Keys from fixed seeds, so every run has the same committee (which node holds
            // which shards): tests that stop a node rely on what it holds.
            let key = BlsSecretKey::from_seed([u8::try_from(index).unwrap() + 1; 32]);
            morsa_plumbing::file::create_new(
                &key_file,
                hex::encode(key.to_bytes()).as_bytes(),
                Access::Secret,
            )
            .unwrap();
            let (listener, listen) = listener().await;
            let proxy = match proxies {
                true => Some(Proxy::start(&listen).await),
                false => None,
            };
            let address = proxy.as_ref().map_or_else(|| listen.clone(), |proxy| proxy.address.clone());
            let registration = morsa_node::keys::registration(&key);
            genesis_nodes.push(GenesisNode {
                public_key: registration.public_key,
                proof_of_possession: registration.proof_of_possession,
                address: address.clone(),
                stake: 100,
                capacity: 1 << 40,
                operator: AccountKey::from_seed([100; 32]).id(),
                zone: String::new(),
            });
            listeners.push((listener, listen, address, proxy));
            key_files.push(key_file);
        }
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            n_shards,
            epoch_duration_ms: 3_600_000,
            genesis_time_ms: morsa_coord::server::now_ms(),
            storage_price_per_mib_epoch: 1,
            write_price_per_mib: 1,
            max_epochs_ahead: 50,
            max_shards_per_node: n_shards,
            nodes: genesis_nodes,
            accounts: vec![GenesisAccount { id: user.id(), balance: 1 << 50 }],
            node_rules: morsa_coord::NodeRules::local(),
        };
        let coordinator = Coordinator::open(&genesis, &dir.path().join("coord.redb")).unwrap();
        let (coord_listener, coord_address) = listener().await;
        let shared = morsa_coord::server::Shared::new(coordinator);
        let coord_task = tokio::spawn(async move {
            let _ = morsa_coord::server::serve(coord_listener, shared, std::future::pending()).await;
        });
        let coordinator_url = format!("http://{coord_address}");
        let mut system = System { coordinator_url, nodes: Vec::new(), user, n_shards, dir, coord_task };
        for ((listener, listen, address, proxy), key_file) in listeners.into_iter().zip(key_files) {
            let config = NodeConfig {
                listen: listen.parse().unwrap(),
                data_dir: system.dir.path().join(listen.replace(':', "_")),
                key_file,
                coordinator_urls: vec![system.coordinator_url.clone()],
                coordinator_url: None,
                limits: morsa_node::Limits::default(),
                repair: RepairConfig::default(),
                availability: morsa_node::AvailabilityConfig::default(),
            };
            let mut node = LocalNode { address, proxy, config, stop: None, task: None };
            run_node(&mut node, Some(listener)).await;
            system.nodes.push(node);
        }
        system
    }

    /// Stops node `index` (its port refuses connections until restarted).
    pub async fn stop_node(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        if let Some(stop) = node.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = node.task.take() {
            // The server returns once every connection is closed (idle ones at once), so a
            // client's pooled connection cannot reach the stopped node afterwards. Aborting
            // it instead would return before its connections saw the stop.
            if tokio::time::timeout(Duration::from_secs(10), &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
    }

    /// Restarts node `index` on its address and data.
    pub async fn start_node(&mut self, index: usize) {
        run_node(&mut self.nodes[index], None).await;
    }

    /// A client for the user.
    pub async fn client(&self) -> Client {
        Client::with_key(&self.coordinator_url, self.user.clone()).await.unwrap()
    }

    /// The committee as the coordinator lists it.
    pub async fn committee(&self) -> morsa_core::Committee {
        CoordClient::new(&self.coordinator_url).unwrap().committee().await.unwrap().current
    }

    /// Index (in `nodes`) of the node listed as committee member `member`.
    pub async fn node_of_member(&self, member: usize) -> usize {
        let address = self.committee().await.members[member].address.clone();
        self.nodes.iter().position(|node| node.address == address).unwrap()
    }

    /// Index (in `nodes`) of the node holding sliver pair `pair` of `blob_id`.
    pub async fn owner_of_pair(&self, blob_id: &redstuff::BlobId, pair: usize) -> usize {
        let committee = self.committee().await;
        let shard = blob_id.shard_for_pair(pair, usize::from(self.n_shards));
        let member = committee.shard_owner(morsa_core::ShardIndex(u16::try_from(shard).unwrap())).unwrap();
        let address = &committee.members[member].address;
        self.nodes.iter().position(|node| &node.address == address).unwrap()
    }

    /// The proxy in front of node `index` (the system must be started behind proxies).
    pub fn proxy(&self, index: usize) -> &Proxy {
        self.nodes[index].proxy.as_ref().expect("the system was started behind proxies")
    }

    /// Indices of nodes whose shards add up to at most `f`, the most that may fail.
    pub async fn nodes_holding_at_most_f(&self) -> Vec<usize> {
        let committee = CoordClient::new(&self.coordinator_url).unwrap().committee().await.unwrap().current;
        let f = redstuff::EncodingConfig::new(self.n_shards).unwrap().f();
        let mut chosen = Vec::new();
        let mut weight = 0;
        for (member, info) in committee.members.iter().enumerate() {
            if weight + info.shards.len() <= f {
                weight += info.shards.len();
                chosen.push(self.nodes.iter().position(|node| node.address == info.address).unwrap());
            }
            let _ = member;
        }
        chosen
    }
}

/// Runs `node` (on `listener`, or on its configured address) until it is stopped.
async fn run_node(node: &mut LocalNode, listener: Option<TcpListener>) {
    let listening = match listener {
        Some(listener) => Listening::open_on(listener, &node.config).await.unwrap(),
        None => Listening::open(&node.config).await.unwrap(),
    };
    let (stop, stopped) = oneshot::channel();
    node.stop = Some(stop);
    node.task = Some(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        let _ = listening.serve(shutdown).await;
    }));
}

/// Test data: a pattern no two offsets of which repeat within a small window.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| u8::try_from((i * 31 + usize::from(seed) * 7 + i / 251) % 256).unwrap()).collect()
}

/// Waits until `check` holds, polling, for at most 20 s.
pub async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

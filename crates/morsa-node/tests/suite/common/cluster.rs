//! Several nodes serving real HTTP on 127.0.0.1 in one test process, with a fixed committee and
//! a stand-in coordinator that records node reports (its event route answers 503, so the
//! nodes' followers back off and the committee stays as given). Blobs are registered and
//! certified by applying events to every node directly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{get, post};
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::coord::{Event, EventRecord, NodeReport, SubmitResponse};
use morsa_api::node::NodeHealth;
use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ObjectId, ShardIndex};
use morsa_node::{Limits, Node, RepairConfig, View};
use morsa_node::{Listening, Served};
use redstuff::{BlobId, EncodedBlob, EncodingConfig};
use tokio::net::TcpListener;

use super::{N, config, store_blob};

/// Repair settings for tests: no grace, no throttle, no scrubbing, short timeouts.
pub fn test_repair() -> RepairConfig {
    RepairConfig {
        grace_ms: 0,
        bandwidth_bytes_per_sec: 0,
        scrub_bytes_per_sec: 0,
        peer_timeout_ms: 5_000,
        ..RepairConfig::default()
    }
}

/// How one node of a cluster runs.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Served with these repair settings: routes, follower, sync, scrubber.
    Serve(RepairConfig),
    /// Its router only, with every recovery-batch answer's symbols flipped: a lying peer.
    Liar,
    /// Its router only, with every recovery-batch answer's symbols relabelled as coming from
    /// the next sliver index: a peer sending symbols from slivers it does not hold (with one
    /// shard it holds one source index per target).
    Relabeller,
    /// Its router only, every request held until the cluster's gate opens
    /// ([`Cluster::open_gate`]): a peer too slow to answer for now.
    Held,
}

/// One node of a cluster.
pub struct Member {
    pub node: Arc<Node>,
    pub served: Arc<Served>,
    pub address: SocketAddr,
    pub client: NodeClient,
    _dir: tempfile::TempDir,
}

/// The nodes, the stand-in coordinator's reports, and what shuts them down.
pub struct Cluster {
    pub members: Vec<Member>,
    pub committee: Committee,
    pub reports: Arc<Mutex<Vec<NodeReport>>>,
    next_seq: u64,
    /// Turns true when [`Mode::Held`] members may answer.
    gate: tokio::sync::watch::Sender<bool>,
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// The blob object of a test blob: one per blob.
fn object_of(blob_id: &BlobId) -> ObjectId {
    ObjectId(blob_id.0)
}

fn key(index: usize) -> BlsSecretKey {
    BlsSecretKey::from_seed([u8::try_from(index + 1).unwrap(); 32])
}

/// Starts the stand-in coordinator; returns its URL.
async fn coordinator(reports: Arc<Mutex<Vec<NodeReport>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            morsa_api::coord::routes::EVENTS,
            get(|| async {
                let body = morsa_api::ErrorBody::new("unavailable", "a test coordinator has no events");
                (StatusCode::SERVICE_UNAVAILABLE, Json(body))
            }),
        )
        .route(
            morsa_api::coord::routes::NODE_REPORTS,
            post(move |Json(report): Json<NodeReport>| {
                let reports = Arc::clone(&reports);
                async move {
                    reports.lock().unwrap().push(report);
                    Json(SubmitResponse::default())
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

impl Cluster {
    /// Nodes holding `layout[i]` consecutive shards each (summing to [`N`]), run as `modes[i]`.
    pub async fn start(layout: &[u16], modes: &[Mode]) -> Self {
        assert_eq!(layout.iter().sum::<u16>(), N);
        let reports = Arc::new(Mutex::new(Vec::new()));
        let coordinator_url = coordinator(Arc::clone(&reports)).await;
        let mut listeners = Vec::new();
        for _ in layout {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let mut first = 0;
        let members = layout
            .iter()
            .zip(&listeners)
            .enumerate()
            .map(|(index, (count, listener))| {
                let shards = (first..first + count).map(ShardIndex).collect();
                first += count;
                CommitteeMember {
                    node_id: NodeId::from_public_key(&key(index).public_key()),
                    public_key: key(index).public_key(),
                    address: listener.local_addr().unwrap().to_string(),
                    shards,
                }
            })
            .collect();
        let committee = Committee { epoch: Epoch(1), n_shards: N, members };
        let gate = tokio::sync::watch::Sender::new(false);
        let mut cluster =
            Self { members: Vec::new(), committee, reports, next_seq: 0, gate, _stop: Vec::new() };
        for (index, (listener, mode)) in listeners.into_iter().zip(modes).enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let store = morsa_store::NodeStore::open(&dir.path().join("node.redb")).unwrap();
            let view = View { committee: cluster.committee.clone(), next: None, zones: Default::default() };
            let node = Node::new(key(index), store, view).unwrap();
            let address = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            let (node, served) = match mode {
                Mode::Serve(repair) => {
                    let limits = Limits { repair: *repair, ..Limits::default() };
                    let coord = CoordClient::new(&coordinator_url).unwrap();
                    let listening = Listening::with_node(listener, node, &limits, Some(coord)).unwrap();
                    let parts = (Arc::clone(listening.node()), Arc::clone(listening.served()));
                    tokio::spawn(listening.serve(shutdown));
                    parts
                }
                Mode::Held => {
                    let listening = Listening::with_node(listener, node, &Limits::default(), None).unwrap();
                    let parts = (Arc::clone(listening.node()), Arc::clone(listening.served()));
                    let (listener, app) = listening.into_router();
                    let app = app.layer(axum::middleware::from_fn_with_state(cluster.gate.subscribe(), hold));
                    tokio::spawn(
                        async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await },
                    );
                    parts
                }
                Mode::Liar | Mode::Relabeller => {
                    let listening = Listening::with_node(listener, node, &Limits::default(), None).unwrap();
                    let parts = (Arc::clone(listening.node()), Arc::clone(listening.served()));
                    let (listener, app) = listening.into_router();
                    let app = if matches!(mode, Mode::Liar) {
                        app.layer(axum::middleware::from_fn(lie))
                    } else {
                        app.layer(axum::middleware::from_fn(relabel))
                    };
                    tokio::spawn(
                        async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await },
                    );
                    parts
                }
            };
            let client = NodeClient::new(&format!("http://{address}"), config()).unwrap();
            cluster._stop.push(stop);
            cluster.members.push(Member { node, served, address, client, _dir: dir });
        }
        cluster
    }

    /// Registers `encoded`'s blob on every node.
    pub fn register(&mut self, encoded: &EncodedBlob) {
        let blob_id = *encoded.metadata.blob_id();
        let registered = Event::BlobRegistered {
            blob_id,
            object: object_of(&blob_id),
            size: encoded.metadata.unencoded_length(),
            encoded_size: 1,
            end_epoch: Epoch(5),
            deletable: false,
            epoch: Epoch(1),
        };
        self.apply(registered);
    }

    /// Certifies `encoded`'s registered blob on every node (long ago: no grace period), in the
    /// committee's epoch (not challenged in it).
    pub fn certify(&mut self, encoded: &EncodedBlob) {
        self.certify_in(encoded, self.committee.epoch);
    }

    /// Certifies `encoded`'s registered blob on every node in the epoch before the
    /// committee's: a blob the coordinator may challenge now.
    pub fn certify_before(&mut self, encoded: &EncodedBlob) {
        self.certify_in(encoded, Epoch(self.committee.epoch.0 - 1));
    }

    fn certify_in(&mut self, encoded: &EncodedBlob, epoch: Epoch) {
        let blob_id = *encoded.metadata.blob_id();
        let object = object_of(&blob_id);
        self.apply(Event::BlobCertified { blob_id, object, end_epoch: Epoch(5), deletable: false, epoch });
    }

    fn apply(&mut self, event: Event) {
        let record = EventRecord::new(self.next_seq, 0, event, [0; 32]);
        self.next_seq += 1;
        for member in &self.members {
            member.node.apply_events(std::slice::from_ref(&record)).unwrap();
        }
    }

    /// Registers `encoded`'s blob, stores it on every node but those in `except`, certifies it.
    pub fn write(&mut self, encoded: &EncodedBlob, except: &[usize]) {
        self.register(encoded);
        self.store(encoded, except);
        self.certify(encoded);
    }

    /// Stores `encoded`'s metadata and slivers on every node but those in `except`.
    pub fn store(&self, encoded: &EncodedBlob, except: &[usize]) {
        for (index, member) in self.members.iter().enumerate() {
            if !except.contains(&index) {
                store_blob(&member.node, encoded);
            }
        }
    }

    /// Lets the [`Mode::Held`] members answer, those waiting and all later requests.
    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// Node `index`'s health, over HTTP.
    pub async fn health(&self, index: usize) -> NodeHealth {
        self.members[index].client.health().await.unwrap()
    }

    /// Polls node `index`'s health until `done` holds, failing after 30 seconds.
    pub async fn wait_health(
        &self,
        index: usize,
        what: &str,
        done: impl Fn(&NodeHealth) -> bool,
    ) -> NodeHealth {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = self.health(index).await;
            if done(&health) {
                return health;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", health.repair);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A blob of `len` bytes, encoded for the system.
pub fn blob(len: usize, seed: u32) -> EncodedBlob {
    let bytes: Vec<u8> =
        (0..u32::try_from(len).unwrap()).map(|i| u8::try_from((i * 7 + seed) % 251).unwrap()).collect();
    redstuff::encode(EncodingConfig::new(N).unwrap(), &bytes).unwrap()
}

/// The pairs of `blob_id` whose shards node `member` holds.
pub fn pairs_of(cluster: &Cluster, member: usize, blob_id: &BlobId) -> Vec<u16> {
    super::pairs_owned(&cluster.members[member].node, blob_id)
}

/// Holds every request until the gate is open.
async fn hold(
    axum::extract::State(mut gate): axum::extract::State<tokio::sync::watch::Receiver<bool>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // An error means the cluster is gone: the answer no longer matters.
    let _ = gate.wait_for(|open| *open).await;
    next.run(request).await
}

/// Flips a bit of every symbol of every recovery-batch answer.
async fn lie(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    rewrite(request, next, |symbol| symbol.symbol[0] ^= 1).await
}

/// Moves every symbol of every recovery-batch answer to the next source index.
async fn relabel(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    rewrite(request, next, |symbol| symbol.source_index = (symbol.source_index + 1) % N).await
}

/// Applies `change` to every symbol of every recovery-batch answer, in lists and in blocks.
async fn rewrite(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    change: fn(&mut redstuff::RecoverySymbol),
) -> axum::response::Response {
    use morsa_api::node::{MAX_RECOVERY_BATCH_RESPONSE_BYTES, RecoveryBatchResponse, RecoveryOutcome};
    let batch = request.uri().path() == morsa_api::node::routes::RECOVERY_SYMBOLS_BATCH;
    let response = next.run(request).await;
    if !batch || !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut answer: RecoveryBatchResponse =
        redstuff::wire::from_bcs(&bytes, MAX_RECOVERY_BATCH_RESPONSE_BYTES).unwrap();
    for item in &mut answer.items {
        match &mut item.outcome {
            RecoveryOutcome::Symbols(symbols) => symbols.iter_mut().for_each(change),
            RecoveryOutcome::Block(block) => {
                let size = block.symbols.len() / block.len().max(1);
                let mut changed = redstuff::SymbolBlock::default();
                for symbol in block.symbols(size).into_iter().flatten() {
                    let mut symbol = redstuff::RecoverySymbol {
                        source_index: symbol.source_index,
                        symbol: symbol.symbol.to_vec(),
                        proof: redstuff::merkle::MerkleProof { path: Vec::new() },
                    };
                    change(&mut symbol);
                    changed.push(symbol.source_index, &symbol.symbol);
                }
                *block = changed;
            }
            RecoveryOutcome::Error(_) => {}
        }
    }
    let mut response =
        axum::response::Response::from_parts(parts, axum::body::Body::from(redstuff::wire::to_bcs(&answer)));
    response.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
    response
}

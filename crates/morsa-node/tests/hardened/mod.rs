//! A node served on a real loopback socket by `morsa_node::Listening` with the limits a
//! test chooses: one node holding every shard of a 10-shard system, with a blob registered and
//! stored, and raw-socket helpers for what well-behaved clients never send.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use morsa_api::client::NodeClient;
use morsa_api::coord::{Event, EventRecord};
use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ObjectId, ShardIndex};
use morsa_node::{Limits, Node, View};
use morsa_node::{Listening, Served};
use redstuff::wire::to_bcs;
use redstuff::{EncodedBlob, EncodingConfig, MetadataWithId, SliverType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Shards of the system.
pub const N: u16 = 10;

/// A served node and its blob.
pub struct Running {
    pub node: Arc<Node>,
    pub served: Arc<Served>,
    pub address: SocketAddr,
    pub client: NodeClient,
    pub encoded: EncodedBlob,
    pub dir: tempfile::TempDir,
}

/// The code of the system.
pub fn config() -> EncodingConfig {
    EncodingConfig::new(N).unwrap()
}

/// Registers `encoded`'s blob (event `seq`).
pub fn register(node: &Node, encoded: &EncodedBlob, seq: u64) {
    let event = Event::BlobRegistered {
        blob_id: *encoded.metadata.blob_id(),
        object: ObjectId([u8::try_from(seq % 256).unwrap(); 32]),
        size: encoded.metadata.unencoded_length(),
        encoded_size: 1,
        end_epoch: Epoch(5),
        deletable: false,
        epoch: Epoch(1),
    };
    node.apply_events(&[EventRecord::new(seq, 0, event, [0; 32])]).unwrap();
}

/// A blob of `len` bytes.
pub fn blob(len: usize, seed: u8) -> EncodedBlob {
    let bytes: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap() ^ seed).collect();
    redstuff::encode(config(), &bytes).unwrap()
}

/// The BCS metadata upload of `encoded`.
pub fn metadata_bytes(encoded: &EncodedBlob) -> Vec<u8> {
    to_bcs(&MetadataWithId {
        blob_id: *encoded.metadata.blob_id(),
        metadata: encoded.metadata.metadata().clone(),
    })
}

/// Starts a node, served until the test's runtime ends, within `limits` holding every shard, with a `blob_len`-byte blob registered
/// and stored. It follows no coordinator (nothing here needs one).
pub async fn start(limits: Limits, blob_len: usize) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let key = BlsSecretKey::from_seed([1; 32]);
    let member = CommitteeMember {
        node_id: NodeId::from_public_key(&key.public_key()),
        public_key: key.public_key(),
        address: address.to_string(),
        shards: (0..N).map(ShardIndex).collect(),
    };
    let committee = Committee { epoch: Epoch(1), n_shards: N, members: vec![member] };
    let dir = tempfile::tempdir().unwrap();
    let store = morsa_store::NodeStore::open(&dir.path().join("node.redb")).unwrap();
    let node = Node::new(key, store, View { committee, next: None, zones: Default::default() }).unwrap();
    let listening = Listening::with_node(listener, node, &limits, None).unwrap();
    let (node, served) = (Arc::clone(listening.node()), Arc::clone(listening.served()));
    let encoded = blob(blob_len, 0);
    register(&node, &encoded, 0);
    let (storing, stored) = (Arc::clone(&node), encoded.clone());
    tokio::task::spawn_blocking(move || {
        let blob_id = *stored.metadata.blob_id();
        storing.store_metadata(&blob_id, &metadata_bytes(&stored)).unwrap();
        for (pair, slivers) in stored.pairs.iter().enumerate() {
            let pair = u16::try_from(pair).unwrap();
            storing
                .store_sliver(&blob_id, pair, SliverType::Primary, to_bcs(&slivers.primary).into())
                .unwrap();
            storing
                .store_sliver(&blob_id, pair, SliverType::Secondary, to_bcs(&slivers.secondary).into())
                .unwrap();
        }
    })
    .await
    .unwrap();
    // Served until the test's runtime ends.
    tokio::spawn(listening.serve(std::future::pending()));
    let client = NodeClient::new(&format!("http://{address}"), config()).unwrap();
    Running { node, served, address, client, encoded, dir }
}

/// A connection to `address` from loopback address `127.0.0.<from>`, with a small receive
/// buffer (as a client that means never to read sets it: the answer stays with the node).
pub async fn connect_from(address: SocketAddr, from: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, from], 0))).unwrap();
    socket.connect(address).await.unwrap()
}

/// Sends `request` on a new connection and reads the answer until the node closes it (send
/// `connection: close`), within ten seconds.
pub async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the node answered within ten seconds")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the node closed `stream` within `within` (EOF or a reset), reading what it sent.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 64 << 10];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

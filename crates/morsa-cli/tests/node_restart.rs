//! Real processes on loopback: a coordinator and a storage node (of a committee of two). Blobs
//! are registered, the node receives their slivers from concurrent uploaders and is killed
//! with SIGKILL while uploads are in flight; restarted on the same data it serves every
//! acknowledged sliver, byte for byte; given the rest again, it confirms every blob.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Process;
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::node::NodeBlobState;
use morsa_coord::{Command as CoordCommand, Genesis, GenesisAccount, GenesisNode, Transaction};
use morsa_core::{AccountKey, BlsPublicKey, BlsSignature, PersistenceType};
use redstuff::{EncodingConfig, MetadataWithId, SliverType};

const CHAIN: &str = "node-test";
const N: u16 = 10;
/// Blobs registered, and uploads running at once.
const BLOBS: u32 = 6;
const UPLOADERS: usize = 4;

/// `morsa node keygen`, returning the public key and proof of possession it prints.
fn keygen(path: &Path) -> (BlsPublicKey, BlsSignature) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_morsa"))
        .args(["node", "keygen", "--out"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let registration: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let public_key = serde_json::from_value(registration["public_key"].clone()).unwrap();
    let pop = serde_json::from_value(registration["proof_of_possession"].clone()).unwrap();
    (public_key, pop)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Polls `check` every 20 ms until it holds, for at most 20 s.
async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_slivers_survive_sigkill_and_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let user = AccountKey::from_seed([3; 32]);
    let mut nodes = Vec::new();
    for index in 0..2u8 {
        let (public_key, proof_of_possession) = keygen(&root.join(format!("node{index}.key")));
        nodes.push(GenesisNode {
            public_key,
            proof_of_possession,
            address: format!("127.0.0.1:{}", 9200 + u16::from(index)),
            stake: 100,
            capacity: 1 << 30,
            operator: AccountKey::from_seed([20 + index; 32]).id(),
            zone: String::new(),
        });
    }
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        n_shards: N,
        epoch_duration_ms: 3_600_000,
        genesis_time_ms: morsa_coord::server::now_ms(),
        storage_price_per_mib_epoch: 1,
        write_price_per_mib: 1,
        max_epochs_ahead: 5,
        max_shards_per_node: N,
        nodes,
        accounts: vec![GenesisAccount { id: user.id(), balance: 1_000_000 }],
        node_rules: morsa_coord::NodeRules::local(),
    };
    write(&root.join("genesis.json"), &serde_json::to_string(&genesis).unwrap());
    write(
        &root.join("coord.toml"),
        "listen = \"127.0.0.1:0\"\ndata_dir = \"coord\"\ngenesis = \"genesis.json\"\n",
    );
    let coordinator = Process::start(&["coord", "run"], &root.join("coord.toml"));
    let coord = CoordClient::new(&coordinator.url).unwrap();
    let node_config = root.join("node0.toml");
    write(
        &node_config,
        &format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"node0\"\nkey_file = \"node0.key\"\ncoordinator_url = \"{}\"\n",
            coordinator.url
        ),
    );
    let node = Process::start(&["node", "run"], &node_config);
    let config = EncodingConfig::new(N).unwrap();
    let client = NodeClient::new(&node.url, config).unwrap();
    let node_id = morsa_core::NodeId::from_public_key(&genesis.nodes[0].public_key);
    let committee = coord.committee().await.unwrap().current;
    let member = committee.member_by_node(&node_id).unwrap();
    let node_shards: Vec<u16> = committee.members[member].shards.iter().map(|shard| shard.0).collect();

    // Register a few blobs with the coordinator and give the node their metadata.
    let transact = |nonce: u64, command: CoordCommand| {
        Transaction { sender: user.id(), nonce, command }.sign(&user, CHAIN)
    };
    let mut blobs = Vec::new();
    for seed in 0..BLOBS {
        let blob: Vec<u8> = (0..200_000u32).map(|i| u8::try_from((i * 7 + seed) % 251).unwrap()).collect();
        let encoded = redstuff::encode(config, &blob).unwrap();
        let blob_id = *encoded.metadata.blob_id();
        let size = encoded.metadata.unencoded_length();
        let encoded_size = config.encoded_size(size).unwrap();
        let nonce = u64::from(2 * seed);
        let reserve = CoordCommand::ReserveStorage { size: encoded_size, epochs: 2 };
        let reserved = coord.submit_transaction(&transact(nonce, reserve)).await.unwrap();
        let register = CoordCommand::RegisterBlob {
            storage: reserved.created[0],
            blob_id,
            root_hash: encoded.metadata.metadata().root(),
            size,
            encoding_type: 1,
            deletable: false,
        };
        coord.submit_transaction(&transact(nonce + 1, register)).await.unwrap();
        eventually(
            || async {
                client
                    .blob_status(&blob_id)
                    .await
                    .is_ok_and(|status| status.status == NodeBlobState::Registered)
            },
            "the node has seen the registration",
        )
        .await;
        let metadata = MetadataWithId { blob_id, metadata: encoded.metadata.metadata().clone() };
        client.put_metadata(&blob_id, &metadata).await.unwrap();
        blobs.push((encoded, metadata));
    }
    let blobs = Arc::new(blobs);

    // Every sliver the node owns, uploaded by a few concurrent uploaders; the node is killed
    // while uploads are in flight, once some were acknowledged.
    let owned: Vec<(usize, u16, SliverType)> = (0..blobs.len())
        .flat_map(|blob| {
            (0..N).flat_map(move |pair| {
                [(blob, pair, SliverType::Primary), (blob, pair, SliverType::Secondary)]
            })
        })
        .filter(|(blob, pair, _)| {
            let blob_id = blobs[*blob].0.metadata.blob_id();
            let shard = blob_id.shard_for_pair(usize::from(*pair), usize::from(N));
            node_shards.contains(&u16::try_from(shard).unwrap())
        })
        .collect();
    assert!(!owned.is_empty(), "the node owns some shards");
    let queue = Arc::new(Mutex::new(owned.clone()));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::RwLock::new(()));
    let uploaders: Vec<_> = (0..UPLOADERS)
        .map(|_| {
            let (client, blobs, queue, gate) =
                (client.clone(), Arc::clone(&blobs), Arc::clone(&queue), Arc::clone(&gate));
            let (acknowledged, in_flight, failed) =
                (Arc::clone(&acknowledged), Arc::clone(&in_flight), Arc::clone(&failed));
            tokio::spawn(async move {
                loop {
                    // A sliver is taken only while the gate is open (see the kill below).
                    let next = {
                        let _open = gate.read().await;
                        let next = queue.lock().unwrap().pop();
                        if next.is_some() {
                            in_flight.fetch_add(1, Ordering::SeqCst);
                        }
                        next
                    };
                    let Some((blob, pair, kind)) = next else { return };
                    let (encoded, _) = &blobs[blob];
                    let slivers = &encoded.pairs[usize::from(pair)];
                    let sliver = match kind {
                        SliverType::Primary => &slivers.primary,
                        SliverType::Secondary => &slivers.secondary,
                    };
                    let result =
                        client.put_sliver(encoded.metadata.blob_id(), pair, kind, sliver, false).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    match result {
                        Ok(_) => acknowledged.lock().unwrap().push((blob, pair, kind)),
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return; // the node is gone
                        }
                    }
                }
            })
        })
        .collect();
    // The kill comes with the gate shut, so no uploader takes a sliver between the check and
    // the kill: slivers are left to upload (their uploads fail) however fast the others went.
    let deadline = Instant::now() + Duration::from_secs(20);
    let shut = loop {
        let shut = Arc::clone(&gate).write_owned().await;
        if acknowledged.lock().unwrap().len() >= owned.len() / 4
            && in_flight.load(Ordering::SeqCst) > 0
            && !queue.lock().unwrap().is_empty()
        {
            break shut;
        }
        drop(shut);
        assert!(
            Instant::now() < deadline,
            "timed out waiting until some uploads are acknowledged while others are in flight"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    drop(node); // SIGKILL, uploads in flight
    drop(shut);
    for uploader in uploaders {
        uploader.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "{} of {} slivers acknowledged before the kill, {} uploads cut short",
        acknowledged.len(),
        owned.len(),
        failed.load(Ordering::SeqCst)
    );
    assert!(failed.load(Ordering::SeqCst) >= 1, "the kill cut uploads short");
    assert!(acknowledged.len() < owned.len(), "the kill came before the last upload");

    let node = Process::start(&["node", "run"], &node_config);
    let client = NodeClient::new(&node.url, config).unwrap();
    for (encoded, metadata) in blobs.iter() {
        let stored = client.get_metadata(encoded.metadata.blob_id()).await.unwrap();
        assert_eq!(&stored, metadata);
    }
    // Every acknowledged sliver survived, byte for byte.
    for (blob, pair, kind) in &acknowledged {
        let encoded = &blobs[*blob].0;
        let symbol_size = encoded.metadata.symbol_size();
        let sliver = client.get_sliver(encoded.metadata.blob_id(), *pair, *kind, symbol_size).await.unwrap();
        encoded.metadata.verify_sliver(*kind, &sliver).unwrap();
        let original = &encoded.pairs[usize::from(*pair)];
        let expected = match kind {
            SliverType::Primary => &original.primary,
            SliverType::Secondary => &original.secondary,
        };
        assert_eq!(&sliver, expected);
    }
    // The rest is uploaded again, and the node confirms every blob.
    for (blob, pair, kind) in owned.iter().filter(|item| !acknowledged.contains(item)) {
        let encoded = &blobs[*blob].0;
        let slivers = &encoded.pairs[usize::from(*pair)];
        let sliver = match kind {
            SliverType::Primary => &slivers.primary,
            SliverType::Secondary => &slivers.secondary,
        };
        client.put_sliver(encoded.metadata.blob_id(), *pair, *kind, sliver, false).await.unwrap();
    }
    for (encoded, _) in blobs.iter() {
        let blob_id = *encoded.metadata.blob_id();
        let confirmation = client.permanent_confirmation(&blob_id).await.unwrap();
        let message = morsa_core::storage_confirmation_message(
            confirmation.epoch,
            &blob_id,
            &PersistenceType::Permanent,
        );
        genesis.nodes[0].public_key.verify(&message, &confirmation.signature).unwrap();
    }
    node.stop();
    coordinator.stop();
}

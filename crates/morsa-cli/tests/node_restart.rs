//! Real processes on loopback: a coordinator and two storage nodes. A blob is registered,
//! one node receives its slivers, is killed with SIGKILL, restarts on the same data, and
//! serves every acknowledged sliver, which still verifies; it then confirms the blob.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Process;
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::node::NodeBlobState;
use morsa_coord::{Command as CoordCommand, Genesis, GenesisAccount, GenesisNode, Transaction};
use morsa_core::{AccountKey, BlsPublicKey, BlsSignature, PersistenceType};
use redstuff::{EncodingConfig, MetadataWithId, SliverType};

const CHAIN: &str = "node-test";
const N: u16 = 10;

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

    // Register a blob with the coordinator.
    let blob: Vec<u8> = (0..200_000u32).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect();
    let encoded = redstuff::encode(config, &blob).unwrap();
    let blob_id = *encoded.metadata.blob_id();
    let size = encoded.metadata.unencoded_length();
    let encoded_size = config.encoded_size(size).unwrap();
    let transact = |nonce: u64, command: CoordCommand| {
        Transaction { sender: user.id(), nonce, command }.sign(&user, CHAIN)
    };
    let reserved = coord
        .submit_transaction(&transact(0, CoordCommand::ReserveStorage { size: encoded_size, epochs: 2 }))
        .await
        .unwrap();
    let register = CoordCommand::RegisterBlob {
        storage: reserved.created[0],
        blob_id,
        root_hash: encoded.metadata.metadata().root(),
        size,
        encoding_type: 1,
        deletable: false,
    };
    coord.submit_transaction(&transact(1, register)).await.unwrap();
    eventually(
        || async {
            client.blob_status(&blob_id).await.is_ok_and(|status| status.status == NodeBlobState::Registered)
        },
        "the node has seen the registration",
    )
    .await;

    // Upload the metadata and every sliver the node owns; remember what was acknowledged.
    let metadata = MetadataWithId { blob_id, metadata: encoded.metadata.metadata().clone() };
    client.put_metadata(&blob_id, &metadata).await.unwrap();
    let mut acknowledged = Vec::new();
    for (pair, slivers) in encoded.pairs.iter().enumerate() {
        let pair = u16::try_from(pair).unwrap();
        for (kind, sliver) in
            [(SliverType::Primary, &slivers.primary), (SliverType::Secondary, &slivers.secondary)]
        {
            match client.put_sliver(&blob_id, pair, kind, sliver, false).await {
                Ok(_) => acknowledged.push((pair, kind)),
                Err(error) => assert_eq!(error.code(), Some("wrong_shard"), "{error}"),
            }
        }
    }
    assert!(!acknowledged.is_empty(), "the node owns some shards");
    eprintln!("{} slivers acknowledged", acknowledged.len());

    drop(node); // SIGKILL
    let node = Process::start(&["node", "run"], &node_config);
    let client = NodeClient::new(&node.url, config).unwrap();
    let stored = client.get_metadata(&blob_id).await.unwrap();
    assert_eq!(stored, metadata);
    let symbol_size = encoded.metadata.symbol_size();
    for (pair, kind) in &acknowledged {
        let sliver = client.get_sliver(&blob_id, *pair, *kind, symbol_size).await.unwrap();
        encoded.metadata.verify_sliver(*kind, &sliver).unwrap();
        let original = &encoded.pairs[usize::from(*pair)];
        let expected = match kind {
            SliverType::Primary => &original.primary,
            SliverType::Secondary => &original.secondary,
        };
        assert_eq!(&sliver, expected);
    }
    let confirmation = client.permanent_confirmation(&blob_id).await.unwrap();
    let message =
        morsa_core::storage_confirmation_message(confirmation.epoch, &blob_id, &PersistenceType::Permanent);
    genesis.nodes[0].public_key.verify(&message, &confirmation.signature).unwrap();
    node.stop();
    coordinator.stop();
}

//! An epoch change that moves shards, on real processes: stake moves to one node, the next
//! committee gives it more shards, it pulls their slivers of every certified blob from their
//! previous owners (or rebuilds them from the other nodes' recovery symbols; see
//! `shard_migration.rs`), reports the epoch change done, and the coordinator marks it done;
//! blobs stored before read back identical through the new committee.
//!
//! The epoch ends when the test asks for it (`[testing] manual_epochs`), once the stores are
//! done and the stake has moved, so its course does not depend on how loaded the machine is.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::eventually;
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::coord::{Command, Transaction};
use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::CHAIN_ID;
use redstuff::{EncodingConfig, SliverType};

const SHARDS: u16 = 12;

/// How long any one thing may take.
const WAIT: Duration = Duration::from_secs(60);

#[test]
fn a_node_that_gains_shards_syncs_them_and_the_epoch_change_completes() {
    let (_dir, cluster) = common::churn::manual_cluster(5, SHARDS);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ClientConfig::load(&cluster.client_config_path()).unwrap();
    let client = runtime.block_on(Client::connect(&config)).unwrap();
    let options = StoreOptions { epochs: 50, ..StoreOptions::default() };
    let blobs: Vec<_> = [(300_000, 1), (70_000, 2)]
        .into_iter()
        .map(|(len, seed)| {
            let data = morsa_cluster::sample::bytes(len, seed);
            let stored = runtime.block_on(client.store_blob(data.clone(), &options)).unwrap();
            assert!(runtime.block_on(client.finish_uploads(Duration::from_secs(30))).is_empty());
            (stored.blob_id, data)
        })
        .collect();

    // Five nodes of equal stake hold 3, 3, 2, 2, 2 of the 12 shards (ties go by node ID).
    // Double the stake of one holding 2: the next committee gives it one more shard (no node
    // or operator holds more than f = 3), pulled from its previous owner.
    let coord = CoordClient::new(cluster.coordinator_url()).unwrap();
    let node = cluster.nodes().iter().find(|node| node.shards.len() == 2).unwrap();
    let before = node.shards.len();
    let key = morsa_client::load_or_create_account_key(&cluster.account_key_path()).unwrap().0;
    let nonce = runtime.block_on(coord.account(&key.id())).unwrap().nonce;
    let stake = Command::Stake { node: node.node_id, amount: 1_000 };
    let transaction = Transaction { sender: key.id(), nonce, command: stake }.sign(&key, CHAIN_ID);
    runtime.block_on(coord.submit_transaction(&transaction)).unwrap();
    let info = runtime.block_on(coord.committee()).unwrap();
    assert_eq!((info.epoch.0, info.next.is_none()), (1, true), "the first epoch ended early");
    runtime.block_on(coord.next_epoch()).unwrap();

    let (epoch, gained) =
        eventually("a committee gives the node more shards and its epoch change is done", WAIT, || {
            let info = runtime.block_on(coord.committee()).ok()?;
            let member = info.current.members.iter().find(|member| member.node_id == node.node_id)?;
            (member.shards.len() > before && info.epoch_change_done)
                .then(|| (info.epoch, member.shards.len() - before))
        });
    eprintln!("epoch {epoch}: the node holds {} more shards; epoch change done", gained);

    // The node holds every sliver of its new shards, and the blobs read back through the new
    // committee. (The change is done once a quorum of shards reported, which the other nodes
    // can make alone: the gaining node may still be syncing, so its status is polled.)
    let config = EncodingConfig::new(SHARDS).unwrap();
    let node_client = NodeClient::new(&node.url, config).unwrap();
    let info = runtime.block_on(coord.committee()).unwrap();
    let member = info.current.member_by_node(&node.node_id).unwrap();
    let shards = info.current.members[member].shards.clone();
    for (blob_id, data) in &blobs {
        let status = eventually("the gaining node holds every sliver of the blob", WAIT, || {
            let status = runtime.block_on(node_client.blob_status(blob_id)).ok()?;
            status.fully_stored().then_some(status)
        });
        assert!(status.expected_slivers > 2 * u32::try_from(before).unwrap(), "{status:?}");
        // Every sliver of every shard it holds now (the new ones included) equals the one an
        // independent encoding of the data gives, byte for byte.
        let encoded = redstuff::encode(config, data).unwrap();
        assert_eq!(encoded.metadata.blob_id(), blob_id);
        let symbol_size = encoded.metadata.symbol_size();
        for shard in &shards {
            let pair = blob_id.pair_for_shard(usize::from(shard.0), usize::from(SHARDS));
            let pair_index = u16::try_from(pair).unwrap();
            for (kind, expected) in [
                (SliverType::Primary, &encoded.pairs[pair].primary),
                (SliverType::Secondary, &encoded.pairs[pair].secondary),
            ] {
                let served =
                    runtime.block_on(node_client.get_sliver(blob_id, pair_index, kind, symbol_size)).unwrap();
                assert!(
                    served == *expected,
                    "the node holds a wrong {kind} sliver {pair} of shard {}",
                    shard.0
                );
            }
        }
        let read = runtime.block_on(client.read_blob(blob_id)).unwrap();
        assert!(read.data == *data);
    }
}

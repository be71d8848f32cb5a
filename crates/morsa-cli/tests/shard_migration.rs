//! Shard migration on real processes: a node that gains more than `f` shards pulls them from
//! their previous owners, survives a SIGKILL in the middle and resumes where it was, and the
//! epoch change completes; a gained shard whose previous owner is killed falls back to
//! recovery; reads during a move of more than `f` shards are served from the previous owners;
//! a node that answers nothing is reported by its peers and left out of the next committee,
//! its shards moving to the others. Every blob reads back, compared byte for byte.
//!
//! The epoch ends when the test asks for it (`[testing] manual_epochs`). Node 0's pulls are
//! paced (`[repair] pull_bytes_per_sec`, one blob per page) so that the move takes long
//! enough to be interrupted on any machine.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::eventually;
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::node::{NodeHealth, ShardStatus};
use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::Cluster;
use redstuff::{BlobId, EncodingConfig};

const SHARDS: u16 = 12;
const BLOBS: u64 = 12;

/// How long any one thing may take.
const WAIT: Duration = Duration::from_secs(60);

struct Setup {
    _dir: tempfile::TempDir,
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    client: Client,
    coord: CoordClient,
    blobs: Vec<(BlobId, Vec<u8>)>,
}

/// Four nodes, twelve shards, `BLOBS` blobs stored; node 0 restarted with `repair` appended
/// to its configuration.
fn setup(repair: &str) -> Setup {
    setup_nodes(&[0], repair)
}

/// Four nodes, twelve shards, `BLOBS` blobs stored; the nodes `restarted` restarted with
/// `repair` appended to their configurations.
fn setup_nodes(restarted: &[usize], repair: &str) -> Setup {
    let (dir, mut cluster) = common::churn::manual_cluster(4, SHARDS);
    for index in restarted {
        cluster.stop(*index).unwrap();
        let mut file =
            std::fs::OpenOptions::new().append(true).open(&cluster.nodes()[*index].config).unwrap();
        write!(file, "\n[repair]\n{repair}").unwrap();
        drop(file);
        cluster.start(*index).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = ClientConfig::load(&cluster.client_config_path()).unwrap();
    let client = runtime.block_on(Client::connect(&config)).unwrap();
    let options = StoreOptions { epochs: 50, ..StoreOptions::default() };
    let blobs = (0..BLOBS)
        .map(|seed| {
            let data = morsa_cluster::sample::bytes(20_000 + usize::try_from(seed).unwrap() * 3_000, seed);
            let stored = runtime.block_on(client.store_blob(data.clone(), &options)).unwrap();
            (stored.blob_id, data)
        })
        .collect();
    assert!(runtime.block_on(client.finish_uploads(Duration::from_secs(30))).is_empty());
    let coord = CoordClient::new(cluster.coordinator_url()).unwrap();
    Setup { _dir: dir, cluster, runtime, client, coord, blobs }
}

impl Setup {
    /// Retires `nodes` (through their operators' real transactions) and ends the epoch; answers
    /// the shards node 0 gains and, for each, the index of its previous owner. No zone or
    /// operator may hold more than f shards where the committee allows it, so a node gains more
    /// than f only when too few nodes are left to spread them.
    fn retire_and_change(&self, nodes: &[usize]) -> Vec<(u16, usize)> {
        let node = &self.cluster.nodes()[0];
        for index in nodes {
            morsa_cluster::retire_node(self.cluster.dir(), *index).unwrap();
        }
        self.runtime.block_on(self.coord.next_epoch()).unwrap();
        let info = eventually("epoch 2 begins", WAIT, || {
            self.runtime.block_on(self.coord.committee()).ok().filter(|info| info.epoch.0 == 2)
        });
        let now = &info.current.members[info.current.member_by_node(&node.node_id).unwrap()].shards;
        now.iter()
            .filter(|shard| !node.shards.contains(shard))
            .map(|shard| {
                let owner =
                    self.cluster.nodes().iter().position(|other| other.shards.contains(shard)).unwrap();
                (shard.0, owner)
            })
            .collect()
    }

    fn health(&self, index: usize) -> Option<NodeHealth> {
        let config = EncodingConfig::new(SHARDS).unwrap();
        let client = NodeClient::new(&self.cluster.nodes()[index].url, config).unwrap();
        self.runtime.block_on(client.health()).ok()
    }

    fn wait_change_done(&self) {
        eventually("the epoch change is done", WAIT, || {
            self.runtime.block_on(self.coord.committee()).ok().filter(|info| info.epoch_change_done)
        });
    }

    fn every_blob_reads_back(&self) {
        for (blob_id, data) in &self.blobs {
            let read = self.runtime.block_on(self.client.read_blob(blob_id)).unwrap();
            assert!(read.data == *data, "blob {blob_id} reads back different bytes");
        }
    }
}

#[test]
fn a_node_taking_more_than_f_shards_pulls_them_resumes_after_a_kill_and_reports() {
    let mut setup = setup("pull_page_blobs = 1\npull_bytes_per_sec = 40000\n");
    // Three of the four nodes retire: node 0 takes all twelve shards.
    let gained = setup.retire_and_change(&[1, 2, 3]);
    let f = usize::from((SHARDS - 1) / 3);
    assert!(gained.len() > f, "node 0 gains {} shards, not more than f = {f}", gained.len());
    // One page per blob and shard: this many pages move the whole share.
    let pages = u64::try_from(gained.len()).unwrap() * BLOBS;

    // Killed in the middle of the move.
    let before = eventually("node 0 has pulled some pages and is still pulling", WAIT, || {
        let health = setup.health(0)?;
        let syncing = health.shards.iter().any(|shard| shard.status == ShardStatus::ActiveSync);
        (syncing && health.migration.pages_pulled_total >= 3).then_some(health.migration.pages_pulled_total)
    });
    setup.cluster.kill(0).unwrap();
    setup.cluster.start(0).unwrap();
    let resumed = setup.health(0).unwrap();
    assert!(resumed.migration.pages_pulled_total >= before, "{resumed:?}");
    assert!(
        resumed.shards.iter().any(|shard| shard.pull_position.is_some()),
        "the restarted node starts from its saved positions: {resumed:?}"
    );
    // The previous owners keep what moves, for node 0 only.
    let (_, owner) = gained[0];
    let kept = setup.health(owner).unwrap();
    assert!(kept.shards.iter().any(|shard| shard.status == ShardStatus::LockedToMove), "{kept:?}");

    setup.wait_change_done();
    let done = setup.health(0).unwrap();
    let migration = &done.migration;
    assert!(done.shards.iter().all(|shard| shard.status == ShardStatus::Active), "{done:?}");
    // Resumed, not restarted: every page was pulled once over both runs, some of them by the
    // process killed.
    assert_eq!(migration.pages_pulled_total, pages, "{migration:?}");
    assert!(migration.pages_pulled < pages, "the restarted node pulled everything again: {migration:?}");
    assert_eq!((migration.shards_fallen_back, migration.slivers_left_to_recovery), (0, 0), "{migration:?}");
    setup.every_blob_reads_back();
}

#[test]
fn a_shard_whose_previous_owner_is_killed_falls_back_to_recovery() {
    let mut setup = setup("pull_page_blobs = 1\npull_bytes_per_sec = 20000\npull_stall_ms = 2000\n");
    // Node 1 retires: its shards go one to each other node, which pull them from it.
    let gained = setup.retire_and_change(&[1]);
    let (shard, owner) = gained[0];
    setup.cluster.kill(owner).unwrap();
    eventually("node 0 leaves the shard of the killed node to recovery", WAIT, || {
        let health = setup.health(0)?;
        (health.migration.shards_fallen_back >= 1).then_some(())
    });
    setup.wait_change_done();
    let done = setup.health(0).unwrap();
    assert!(done.shards.iter().any(|held| held.shard.0 == shard), "{done:?}");
    assert!(done.repair.rebuilt_slivers > 0, "nothing was recovered: {done:?}");
    setup.every_blob_reads_back();
}

#[test]
fn reads_during_a_move_of_more_than_f_shards_are_served_from_the_previous_owners() {
    // Pulls so slow that the move outlasts the reads.
    let setup = setup("pull_page_blobs = 1\npull_bytes_per_sec = 2000\n");
    let gained = setup.retire_and_change(&[1, 2, 3]);
    let f = usize::from((SHARDS - 1) / 3);
    assert!(gained.len() > f, "node 0 gains {} shards, not more than f = {f}", gained.len());
    let served_before: u64 = (1..4).map(|index| setup.health(index).unwrap().migration.pages_served).sum();

    // Node 0 alone is the committee: without its previous owners nothing could be rebuilt.
    setup.every_blob_reads_back();

    let health = setup.health(0).unwrap();
    assert!(
        health.shards.iter().any(|shard| shard.status == ShardStatus::ActiveSync),
        "the move ended before the reads, which then proved nothing: {health:?}"
    );
    assert_eq!(health.repair.on_demand_slivers, 0, "reads rebuilt slivers: {:?}", health.repair);
    assert!(health.migration.slivers_read_through > 0, "{:?}", health.migration);
    let served: u64 = (1..4).map(|index| setup.health(index).unwrap().migration.pages_served).sum();
    assert!(
        served - served_before >= health.migration.slivers_read_through / 2,
        "the previous owners served {} pages for {} slivers read through",
        served - served_before,
        health.migration.slivers_read_through
    );
}

#[test]
fn a_node_that_answers_nothing_is_reported_by_its_peers_and_left_out_of_the_next_committee() {
    // Every node reports a peer silent for 2 s (by default one epoch, but here the epoch ends
    // when the test asks); a shard whose previous owner is gone falls back to recovery soon.
    let mut setup = setup_nodes(&[0, 1, 2, 3], "unresponsive_after_ms = 2000\npull_stall_ms = 2000\n");
    let dead = 3;
    let dead_id = setup.cluster.nodes()[dead].node_id;
    setup.cluster.kill(dead).unwrap();
    eventually("every peer of the killed node reports it", WAIT, || {
        let reported: Vec<u64> = (0..dead)
            .map(|index| setup.health(index).map_or(0, |health| health.repair.unresponsive_reported))
            .collect();
        reported.iter().all(|count| *count == 1).then_some(())
    });
    // Nothing else speaks against it: epoch 1 asks no epoch-sync report of anyone.
    setup.runtime.block_on(setup.coord.next_epoch()).unwrap();
    let info = eventually("epoch 2 begins", WAIT, || {
        setup.runtime.block_on(setup.coord.committee()).ok().filter(|info| info.epoch.0 == 2)
    });
    assert!(info.current.member_by_node(&dead_id).is_none(), "the dead node is still in {:?}", info.current);
    assert_eq!(
        info.current.members.iter().map(|member| member.shards.len()).sum::<usize>(),
        usize::from(SHARDS)
    );
    setup.wait_change_done();
    setup.every_blob_reads_back();
}

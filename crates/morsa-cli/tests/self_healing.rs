//! Self-healing on a local cluster of real processes (the `morsa` binary as coordinator and
//! nodes on loopback): a node whose disk was wiped rebuilds everything it owns while reads go
//! on, fetching about the bytes it rebuilds (counted by the nodes that serve them); a blob stored while a node was down reaches it; a sliver damaged on disk is found and
//! repaired; a read of a sliver a node lacks is answered at once by an on-demand rebuild; and a
//! blob its writer encoded inconsistently ends up invalid. The system-wide availability
//! margin drops by a killed node's shards, counts the slivers a wiped node knows it lacks
//! (which order its queue before any attempt), and comes back once that node has rebuilt.
//!
//! A peer that serves wrong recovery symbols is covered in-process by
//! `crates/morsa-node/tests/suite/repair.rs` (it needs a node that lies, which the binary cannot be
//! made to do).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::eventually;
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::coord::{AvailabilityView, BlobStatusKind, Command, Transaction};
use morsa_api::node::{NodeBlobState, NodeBlobStatus, NodeHealth};
use morsa_client::{Client, ClientConfig, Error, StoreOptions};
use morsa_cluster::{CHAIN_ID, Cluster, ClusterSpec};
use morsa_core::Certificate;
use redstuff::{BlobId, EncodedBlob, EncodingConfig, MetadataWithId, SliverType};
use tokio::runtime::Runtime;

/// Small clusters: 5 nodes holding 4 of 20 shards each (f = 6, so one node may be lost).
const NODES: usize = 5;
const SHARDS: u16 = 20;
/// The longest any condition below is waited for.
const DEADLINE: Duration = Duration::from_secs(30);

/// A cluster, a runtime for the async clients, and a client of the cluster's funded account.
struct Harness {
    cluster: Cluster,
    runtime: Runtime,
    client: Client,
    config: EncodingConfig,
}

impl Harness {
    fn up(dir: &Path) -> Self {
        let cluster = Cluster::up(ClusterSpec {
            coordinators: 1,
            nodes: NODES,
            shards: SHARDS,
            dir: dir.join("cluster"),
            epoch_duration: Duration::from_secs(3600),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_morsa")),
            node_links: Default::default(),
            zones: 0,
        })
        .unwrap();
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let config = ClientConfig::load(&cluster.client_config_path()).unwrap();
        let client = runtime.block_on(Client::connect(&config)).unwrap();
        Harness { cluster, runtime, client, config: EncodingConfig::new(SHARDS).unwrap() }
    }

    /// Stores `data` and waits until every running node has its slivers.
    fn store(&self, data: &[u8]) -> BlobId {
        let stored = self.runtime.block_on(self.client.store_blob(data.to_vec(), &StoreOptions::default()));
        let late = self.runtime.block_on(self.client.finish_uploads(DEADLINE));
        assert!(late.is_empty(), "uploads failed: {late:?}");
        stored.unwrap().blob_id
    }

    fn node(&self, index: usize) -> NodeClient {
        NodeClient::new(&self.cluster.nodes()[index].url, self.config).unwrap()
    }

    fn health(&self, index: usize) -> NodeHealth {
        self.runtime.block_on(self.node(index).health()).unwrap()
    }

    fn blob_status(&self, index: usize, blob_id: &BlobId) -> NodeBlobStatus {
        self.runtime.block_on(self.node(index).blob_status(blob_id)).unwrap()
    }

    fn event_count(&self) -> u64 {
        self.runtime.block_on(self.client.system()).unwrap().event_count
    }

    /// The pairs node `index` holds of `blob_id`.
    fn pairs_of(&self, index: usize, blob_id: &BlobId) -> Vec<u16> {
        self.cluster.nodes()[index]
            .shards
            .iter()
            .map(|shard| blob_id.pair_for_shard(usize::from(shard.0), usize::from(SHARDS)))
            .map(|pair| u16::try_from(pair).unwrap())
            .collect()
    }

    /// Stops node `index`, optionally deletes its data directory, appends `repair` as its
    /// `[repair]` section, and starts it again (ready: caught up with the coordinator's events).
    fn restart(&mut self, index: usize, wipe: bool, repair: &str) {
        self.cluster.stop(index).unwrap();
        if wipe {
            std::fs::remove_dir_all(self.data_dir(index)).unwrap();
        }
        self.set_repair(index, repair);
        self.cluster.start(index).unwrap();
    }

    /// Appends `repair` as node `index`'s `[repair]` section (read when it next starts).
    fn set_repair(&self, index: usize, repair: &str) {
        let config = &self.cluster.nodes()[index].config;
        let mut text = std::fs::read_to_string(config).unwrap();
        assert!(!text.contains("[repair]"), "one [repair] section per node");
        text.push_str("\n[repair]\n");
        text.push_str(repair);
        std::fs::write(config, text).unwrap();
    }

    fn data_dir(&self, index: usize) -> PathBuf {
        self.cluster.dir().join(format!("node{index}"))
    }

    /// The sliver pairs the coordinator's current committee gives node `index` of `blob_id`.
    fn committee_pairs(&self, index: usize, blob_id: &BlobId) -> Vec<u16> {
        let committee = self.runtime.block_on(self.client.coordinator().committee()).unwrap().current;
        let node_id = self.cluster.nodes()[index].node_id;
        let member = committee.member_by_node(&node_id).unwrap();
        committee.members[member]
            .shards
            .iter()
            .map(|shard| blob_id.pair_for_shard(usize::from(shard.0), usize::from(SHARDS)))
            .map(|pair| u16::try_from(pair).unwrap())
            .collect()
    }

    /// Bytes node `index` answered on every route but `/metrics`, from its metrics.
    fn served_bytes(&self, index: usize) -> u64 {
        let url = format!("{}/metrics", self.cluster.nodes()[index].url);
        let text = reqwest::blocking::get(url).unwrap().error_for_status().unwrap().text().unwrap();
        text.lines()
            .filter_map(|line| line.strip_prefix("morsa_node_response_bytes_total{route=\""))
            .filter(|line| !line.starts_with("/metrics\""))
            .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    /// Checks that node `index` holds every sliver the committee gives it of `blobs`, each
    /// equal byte for byte to an independent encoding of the data; returns their bytes.
    fn check_everything_owned(&self, index: usize, blobs: &[(BlobId, Vec<u8>)]) -> u64 {
        let mut bytes = 0;
        for (blob_id, original) in blobs {
            let pairs = self.committee_pairs(index, blob_id);
            let status = self.blob_status(index, blob_id);
            let expected = u32::try_from(2 * pairs.len()).unwrap();
            assert_eq!((status.stored_slivers, status.expected_slivers), (expected, expected), "{status:?}");
            let encoded = redstuff::encode(self.config, original).unwrap();
            assert_eq!(encoded.metadata.blob_id(), blob_id);
            for pair in pairs {
                self.check_served(index, &encoded, pair, SliverType::Primary);
                self.check_served(index, &encoded, pair, SliverType::Secondary);
                let genuine = &encoded.pairs[usize::from(pair)];
                bytes +=
                    u64::try_from(genuine.primary.symbols.len() + genuine.secondary.symbols.len()).unwrap();
            }
        }
        bytes
    }

    /// The sliver node `index` serves, checked against the blob's metadata and the original.
    fn check_served(&self, index: usize, encoded: &EncodedBlob, pair: u16, kind: SliverType) {
        let blob_id = encoded.metadata.blob_id();
        let symbol_size = encoded.metadata.symbol_size();
        let served = self.runtime.block_on(self.node(index).get_sliver(blob_id, pair, kind, symbol_size));
        let served = served.unwrap_or_else(|error| panic!("node {index}, {kind} sliver {pair}: {error}"));
        encoded.metadata.verify_sliver(kind, &served).unwrap();
        let genuine = &encoded.pairs[usize::from(pair)];
        let genuine = match kind {
            SliverType::Primary => &genuine.primary,
            SliverType::Secondary => &genuine.secondary,
        };
        assert!(served == *genuine, "node {index} serves a wrong {kind} sliver {pair}");
    }
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    morsa_cluster::sample::bytes(len, seed)
}

/// Three blobs of 100 KiB, 1 MiB and 2 MiB, stored, with their data.
fn store_three(harness: &Harness) -> Vec<(BlobId, Vec<u8>)> {
    [(100 << 10, 1), (1 << 20, 2), (2 << 20, 3)]
        .into_iter()
        .map(|(len, seed)| {
            let original = data(len, seed);
            (harness.store(&original), original)
        })
        .collect()
}

#[test]
fn a_wiped_node_rebuilds_everything_it_owns_while_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::up(dir.path());
    let blobs = store_three(&harness);

    // Small throttled rounds, so the rebuild takes a few seconds and the reads overlap it.
    let victim = 1;
    harness.restart(
        victim,
        true,
        "grace_ms = 100\nbandwidth_bytes_per_sec = 1048576\nbatch_slivers = 2\nconcurrency = 1\n",
    );
    let (mut reads, mut reads_while_rebuilding) = (0, 0);
    let health = loop {
        let health = harness.health(victim);
        let rebuilt = health.repair.caught_up
            && health.event_cursor == harness.event_count()
            && blobs.iter().all(|(blob_id, _)| harness.blob_status(victim, blob_id).fully_stored());
        if rebuilt {
            break health;
        }
        for (blob_id, original) in &blobs {
            let read = harness.runtime.block_on(harness.client.read_blob(blob_id));
            let read = read.unwrap_or_else(|error| panic!("a read during the rebuild failed: {error}"));
            assert!(read.data == *original, "a read during the rebuild came back different");
            reads += 1;
        }
        reads_while_rebuilding += 1;
        assert!(reads_while_rebuilding < 500, "the node did not finish rebuilding: {:?}", health.repair);
    };
    eprintln!("{reads} reads in {reads_while_rebuilding} rounds during the rebuild: {:?}", health.repair);
    assert!(reads_while_rebuilding >= 1, "the reads did not overlap the rebuild");
    harness.check_everything_owned(victim, &blobs);
}

#[test]
fn repair_traffic_counted_by_the_serving_nodes_is_about_the_bytes_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::up(dir.path());
    let blobs = store_three(&harness);
    let victim = 4;
    let peers: Vec<usize> = (0..NODES).filter(|index| *index != victim).collect();
    eventually("every node holds its slivers and has nothing to repair", DEADLINE, || {
        (0..NODES)
            .all(|index| {
                harness.health(index).repair.caught_up
                    && blobs.iter().all(|(blob_id, _)| harness.blob_status(index, blob_id).fully_stored())
            })
            .then_some(())
    });
    // Only the wiped node talks to its peers from here on: no reads, no uploads.
    let served_before: u64 = peers.iter().map(|peer| harness.served_bytes(*peer)).sum();
    harness.restart(victim, true, "grace_ms = 100\n");
    eventually("the wiped node has rebuilt everything it owns", DEADLINE, || {
        let health = harness.health(victim);
        (health.repair.caught_up
            && health.event_cursor == harness.event_count()
            && blobs.iter().all(|(blob_id, _)| harness.blob_status(victim, blob_id).fully_stored()))
        .then_some(())
    });
    let served = peers.iter().map(|peer| harness.served_bytes(*peer)).sum::<u64>() - served_before;
    let owned = harness.check_everything_owned(victim, &blobs);
    let ratio = served as f64 / owned as f64;
    eprintln!(
        "peers served {served} bytes (metadata and recovery symbols) for {owned} bytes of slivers rebuilt: {ratio:.3}x; the node counted {:?}",
        harness.health(victim).repair
    );
    // Each rebuilt sliver needs one symbol from each of its sources; a node may take some of
    // them from slivers it already rebuilt, never all.
    assert!(ratio >= 0.5, "the peers served only {ratio:.3}x the bytes rebuilt: is anything counted?");
    assert!(ratio <= 1.1, "repair traffic {ratio:.3}x the bytes rebuilt");
}

#[test]
fn a_blob_stored_while_a_node_was_down_reaches_it_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::up(dir.path());
    let victim = 2;
    harness.cluster.kill(victim).unwrap();
    // Its address stays the cluster's while it is down (on Linux, see morsa_cluster::ports):
    // another program binding it (as a connection's source port or another cluster's port
    // would) is refused, so the node can listen there again.
    if cfg!(target_os = "linux") {
        let address: std::net::SocketAddr =
            harness.cluster.nodes()[victim].url.trim_start_matches("http://").parse().unwrap();
        let other = tokio::net::TcpSocket::new_v4().unwrap();
        other.set_reuseaddr(false).unwrap();
        let taken = other.bind(address);
        assert!(taken.is_err(), "another program took the address {address} of a node that is down");
    }
    let original = data(1 << 20, 4);
    let stored = harness
        .runtime
        .block_on(harness.client.store_blob(original.clone(), &StoreOptions::default()))
        .unwrap();
    let late = harness.runtime.block_on(harness.client.finish_uploads(DEADLINE));
    let failed = stored.left_behind.len() + late.len();
    assert_eq!(failed, 1, "only the node that is down failed: {:?} {late:?}", stored.left_behind);
    let blob_id = stored.blob_id;
    // The node waits out its grace counted from the certification (uploads may still be
    // arriving), so a short grace keeps the test short.
    harness.set_repair(victim, "grace_ms = 1000\n");
    let down = Instant::now();
    harness.cluster.start(victim).unwrap();
    eventually("the returning node holds its slivers of the blob", DEADLINE, || {
        harness.blob_status(victim, &blob_id).fully_stored().then_some(())
    });
    eprintln!("the node had its slivers {:?} after it was started", down.elapsed());
    let encoded = redstuff::encode(harness.config, &original).unwrap();
    for pair in harness.pairs_of(victim, &blob_id) {
        harness.check_served(victim, &encoded, pair, SliverType::Primary);
        harness.check_served(victim, &encoded, pair, SliverType::Secondary);
    }
    let read = harness.runtime.block_on(harness.client.read_blob(&blob_id)).unwrap();
    assert!(read.data == original);
}

#[test]
fn a_sliver_damaged_on_disk_is_found_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::up(dir.path());
    let original = data(1 << 20, 5);
    let blob_id = harness.store(&original);
    let encoded = redstuff::encode(harness.config, &original).unwrap();
    let kp = harness.config.kp();

    // A non-systematic primary sliver: its symbols are parity, found nowhere else on disk.
    let (victim, pair) = (0..NODES)
        .find_map(|index| {
            harness
                .pairs_of(index, &blob_id)
                .into_iter()
                .find(|pair| usize::from(*pair) >= kp)
                .map(|p| (index, p))
        })
        .unwrap();
    harness.cluster.stop(victim).unwrap();
    let database = harness.data_dir(victim).join("node.redb");
    let mut bytes = std::fs::read(&database).unwrap();
    let symbols = &encoded.pairs[usize::from(pair)].primary.symbols;
    let probe = symbols[symbols.len() / 2..][..64].to_vec();
    let mut flipped = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(probe.len()).position(|window| window == probe) {
        bytes[at + found + 32] ^= 0xff;
        flipped += 1;
        at += found + probe.len();
    }
    assert!(flipped >= 1, "the sliver is on disk");
    std::fs::write(&database, &bytes).unwrap();
    // Scrub at once and fast; no read touches the node until the damage was found.
    harness.set_repair(victim, "scrub_bytes_per_sec = 104857600\nscrub_interval_ms = 500\n");
    harness.cluster.start(victim).unwrap();
    let health = eventually("the scrubber finds the damaged sliver and it is rebuilt", DEADLINE, || {
        let health = harness.health(victim);
        let repair = &health.repair;
        (repair.corrupt_slivers >= 1 && repair.rebuilt_slivers >= 1 && repair.caught_up).then_some(health)
    });
    eprintln!("{flipped} copies damaged on node {victim}: {:?}", health.repair);
    assert!(harness.blob_status(victim, &blob_id).fully_stored());
    harness.check_served(victim, &encoded, pair, SliverType::Primary);
    let read = harness.runtime.block_on(harness.client.read_blob(&blob_id)).unwrap();
    assert!(read.data == original);
}

#[test]
fn a_read_of_a_sliver_the_node_lacks_is_answered_by_an_on_demand_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::up(dir.path());
    let original = data(512 << 10, 6);
    let blob_id = harness.store(&original);
    let encoded = redstuff::encode(harness.config, &original).unwrap();
    let victim = 3;
    harness.restart(victim, true, "paused = true\ngrace_ms = 0\n");
    let before = harness.blob_status(victim, &blob_id);
    assert_eq!(before.stored_slivers, 0, "the wiped node holds nothing: {before:?}");
    assert!(harness.health(victim).repair.paused);

    let pair = harness.pairs_of(victim, &blob_id)[0];
    harness.check_served(victim, &encoded, pair, SliverType::Primary);
    let repair = harness.health(victim).repair;
    assert!(repair.on_demand_slivers >= 1, "{repair:?}");
    let after = harness.blob_status(victim, &blob_id);
    assert!(
        after.stored_slivers >= 1 && after.stored_slivers < after.expected_slivers,
        "only the sliver asked for was rebuilt (background repair is paused): {after:?}"
    );
}

/// The coordinator's availability view once `check` holds of it.
fn availability_when(
    harness: &Harness,
    what: &str,
    check: impl Fn(&AvailabilityView) -> bool,
) -> AvailabilityView {
    eventually(what, DEADLINE, || {
        let view = harness.runtime.block_on(harness.client.coordinator().availability()).ok()?;
        check(&view).then_some(view)
    })
}

/// The coordinator's `/metrics` line of `name` (no labels), parsed.
fn coord_metric(harness: &Harness, name: &str) -> Option<f64> {
    let url = format!("{}/metrics", harness.cluster.coordinator_urls()[0]);
    let text = reqwest::blocking::get(url).unwrap().error_for_status().unwrap().text().unwrap();
    text.lines().find_map(|line| line.strip_prefix(&format!("{name} "))?.parse().ok())
}

#[test]
fn the_availability_margin_drops_by_a_killed_nodes_shards_and_recovers_after_its_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::up(dir.path());
    let blobs: Vec<BlobId> = store_three(&harness).into_iter().map(|(blob_id, _)| blob_id).collect();
    // n = 20, kp = n − 2f = 8: a blob every shard holds has a margin of 12.
    let full = u32::from(SHARDS) - u32::try_from(harness.config.kp()).unwrap();
    assert_eq!(full, 12);
    let healthy = availability_when(&harness, "every node reports and nothing is lacking", |view| {
        view.certified_blobs == 3
            && view.nodes.iter().all(|node| node.reporting)
            && view.min_margin_shards == Some(full)
    });
    assert!(healthy.at_risk.is_empty(), "{healthy:?}");
    assert_eq!(coord_metric(&harness, "morsa_availability_margin_shards"), Some(f64::from(full)));

    let victim = 2;
    let victim_shards: Vec<u16> =
        harness.cluster.nodes()[victim].shards.iter().map(|shard| shard.0).collect();
    let lost = u32::try_from(victim_shards.len()).unwrap();
    harness.cluster.kill(victim).unwrap();
    let killed = availability_when(&harness, "the killed node's shards count as lost", |view| {
        view.min_margin_shards == Some(full - lost)
    });
    assert_eq!(killed.unreachable_shards, victim_shards);
    let at_risk: BTreeSet<BlobId> = killed.at_risk.iter().map(|blob| blob.blob_id).collect();
    assert_eq!(at_risk, blobs.iter().copied().collect(), "every blob is at risk: {killed:?}");
    assert!(killed.at_risk.iter().all(|blob| blob.lost_shards == victim_shards));
    assert_eq!(coord_metric(&harness, "morsa_availability_margin_shards"), Some(f64::from(full - lost)));
    // `morsa health --json` lists them too (and fails: a node is down).
    let output = common::morsa_with(&harness.cluster.client_config_path(), &["health", "--json"]);
    assert!(!output.status.success());
    let health: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(health["availability"]["min_margin_shards"], full - lost);
    assert_eq!(health["availability"]["at_risk"].as_array().map(Vec::len), Some(3), "{health}");

    // Back with an empty disk and repair paused: it reports, and what it lacks still counts.
    std::fs::remove_dir_all(harness.data_dir(victim)).unwrap();
    harness.set_repair(victim, "paused = true\ngrace_ms = 0\n");
    harness.cluster.start(victim).unwrap();
    let lacking = availability_when(&harness, "the wiped node reports lacking every blob", |view| {
        view.nodes.iter().all(|node| node.reporting) && view.min_margin_shards == Some(full - lost)
    });
    assert!(lacking.unreachable_shards.is_empty(), "{lacking:?}");
    assert!(lacking.at_risk.iter().all(|blob| blob.lost_shards == victim_shards), "{lacking:?}");
    // Its queue is ordered by that margin before any attempt (repair is paused).
    let repair = eventually("the wiped node's queue knows the system-wide margin", DEADLINE, || {
        let repair = harness.health(victim).repair;
        (repair.lowest_margin == Some(full - lost)).then_some(repair)
    });
    assert_eq!((repair.rebuilt_slivers, repair.failed_attempts), (0, 0), "{repair:?}");

    let token = std::fs::read_to_string(harness.data_dir(victim).join("admin.token")).unwrap();
    harness.runtime.block_on(harness.node(victim).set_repair_paused(false, token.trim())).unwrap();
    let recovered = availability_when(&harness, "the rebuilt node lacks nothing", |view| {
        view.min_margin_shards == Some(full)
    });
    assert!(
        recovered.at_risk.is_empty() && recovered.nodes.iter().all(|node| node.reporting),
        "{recovered:?}"
    );
    assert!(harness.health(victim).repair.rebuilt_slivers > 0);
}

#[test]
fn an_inconsistently_encoded_blob_ends_up_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness::up(dir.path());
    let config = harness.config;
    let original = data(256 << 10, 7);
    let size = u64::try_from(original.len()).unwrap();

    // A faulty writer: one primary sliver does not belong to the others, and the metadata
    // commits to it anyway, so every upload verifies.
    let mut encoded = redstuff::encode(config, &original).unwrap();
    let tampered = 0;
    for byte in encoded.pairs[tampered].primary.symbols.iter_mut().step_by(97) {
        *byte ^= 0x5a;
    }
    let metadata = redstuff::metadata_for_pairs(config, size, &encoded.pairs).unwrap();
    let blob_id = *metadata.blob_id();
    let shard = blob_id.shard_for_pair(tampered, usize::from(SHARDS));
    let victim =
        harness.cluster.nodes().iter().find(|node| node.shards.iter().any(|s| usize::from(s.0) == shard));
    let victim = victim.unwrap().index;
    // The node owning the tampered sliver gets nothing, so it must rebuild it and finds out.
    harness.restart(victim, false, "grace_ms = 100\n");

    let key = morsa_client::load_or_create_account_key(&harness.cluster.account_key_path()).unwrap().0;
    let coord = CoordClient::new(harness.cluster.coordinator_url()).unwrap();
    let runtime = &harness.runtime;
    let mut nonce = runtime.block_on(coord.account(&key.id())).unwrap().nonce;
    let mut submit = |command: Command| {
        let transaction = Transaction { sender: key.id(), nonce, command }.sign(&key, CHAIN_ID);
        nonce += 1;
        runtime.block_on(coord.submit_transaction(&transaction)).unwrap()
    };
    let encoded_size = config.encoded_size(size).unwrap();
    let storage = submit(Command::ReserveStorage { size: encoded_size, epochs: 2 }).created[0];
    let object = submit(Command::RegisterBlob {
        storage,
        blob_id,
        root_hash: metadata.metadata().root(),
        size,
        encoding_type: redstuff::ENCODING_TYPE_RS2,
        deletable: false,
    })
    .created[0];

    let committee = runtime.block_on(coord.committee()).unwrap().current;
    let with_metadata = MetadataWithId { blob_id, metadata: metadata.metadata().clone() };
    let mut parts = Vec::new();
    for (member, node) in committee.members.iter().enumerate() {
        let info = harness.cluster.nodes().iter().find(|info| info.node_id == node.node_id).unwrap();
        if info.index == victim {
            continue;
        }
        let client = harness.node(info.index);
        eventually("the node has seen the registration", DEADLINE, || {
            let status = runtime.block_on(client.blob_status(&blob_id)).ok();
            status.filter(|status| status.status == NodeBlobState::Registered)
        });
        runtime.block_on(client.put_metadata(&blob_id, &with_metadata)).unwrap();
        for pair in harness.pairs_of(info.index, &blob_id) {
            let slivers = &encoded.pairs[usize::from(pair)];
            for (kind, sliver) in
                [(SliverType::Primary, &slivers.primary), (SliverType::Secondary, &slivers.secondary)]
            {
                runtime.block_on(client.put_sliver(&blob_id, pair, kind, sliver, false)).unwrap();
            }
        }
        let confirmation = runtime.block_on(client.permanent_confirmation(&blob_id)).unwrap();
        parts.push((u16::try_from(member).unwrap(), confirmation.signature));
    }
    let certificate = Certificate::aggregate(&parts).unwrap();
    submit(Command::CertifyBlob { object, certificate });

    eventually("the coordinator holds the blob invalid", DEADLINE, || {
        let status = runtime.block_on(coord.blob_status(&blob_id)).unwrap();
        (status.status == BlobStatusKind::Invalid).then_some(())
    });
    let repair = harness.health(victim).repair;
    assert!(repair.inconsistent_blobs >= 1, "{repair:?}");
    match runtime.block_on(harness.client.read_blob(&blob_id)) {
        Err(Error::Inconsistent(id)) => assert_eq!(id, blob_id),
        Err(Error::NotAvailable { status: BlobStatusKind::Invalid, .. }) => {}
        other => {
            panic!("a read of an invalid blob must fail clearly, not {:?}", other.map(|read| read.data.len()))
        }
    }
}

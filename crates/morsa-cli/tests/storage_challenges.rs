//! Storage challenges on real processes (the `morsa` binary as coordinator and nodes on
//! loopback), with short epochs and two challenge rounds in each: in an honest cluster no node
//! is penalised; a node that lost part of its slivers and whose repair is paused (the
//! `[repair] paused` knob: nobody is told) fails its challenges and is penalised in the next
//! epoch's settlement, as `morsa info --json` shows; once its repair is resumed and has
//! rebuilt everything, a later epoch settles it with no failure and no penalty. `morsa node
//! status` and the coordinator's `/metrics` show the penalised epoch as `morsa info` does, and
//! every challenge metric exported then is documented in docs/METRICS.md.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use morsa_api::client::{CoordClient, NodeClient};
use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::{Cluster, ClusterSpec};
use morsa_coord::challenge::ChallengeRules;
use morsa_core::{Epoch, NodeId};
use morsa_store::{NodeStore, SliverKind};
use redstuff::{BlobId, EncodingConfig};

const NODES: usize = 4;
const SHARDS: u16 = 12;
/// Epochs of 48 s in three slots of 16 s: rounds start 16 s and 32 s in (plus a jitter below
/// 8 s), and audits are due 4 s after a round starts.
const EPOCH: Duration = Duration::from_secs(48);
const RULES: ChallengeRules = ChallengeRules { rounds_per_epoch: 2, samples_per_shard: 8 };
/// Blobs stored; the victim loses its slivers of the first [`LOST`] of them (a quarter).
const BLOBS: usize = 8;
const LOST: usize = 2;
const VICTIM: usize = 0;

/// Polls `check` every 200 ms until it answers `Some`, for at most `limit`.
fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One member's challenge figures of the last settled epoch, as `morsa info --json` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settled {
    passed: u64,
    failed: u64,
    penalties: u64,
}

struct Harness {
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    coord: CoordClient,
}

impl Harness {
    fn epoch(&self) -> Epoch {
        self.runtime.block_on(self.coord.committee()).unwrap().epoch
    }

    /// Waits until epoch `epoch` has begun and its change is done.
    fn wait_epoch(&self, epoch: Epoch) {
        eventually(&format!("{epoch} begins"), EPOCH * 2, || {
            let info = self.runtime.block_on(self.coord.committee()).ok()?;
            (info.epoch >= epoch && info.epoch_change_done).then_some(())
        });
    }

    /// What `morsa info --json` says of every member for the last settled epoch, once that is
    /// `epoch`.
    fn settled(&self, epoch: Epoch) -> Vec<(NodeId, Settled)> {
        eventually(&format!("{epoch} is settled"), EPOCH, || {
            let info = common::morsa_json_with(&self.cluster.client_config_path(), &["info", "--json"]);
            let settled_epoch = info["challenges"]["last_epoch"][0]["epoch"].clone();
            if serde_json::from_value::<Epoch>(settled_epoch).ok()? != epoch {
                return None;
            }
            let members = info["committee"]["current"]["members"].as_array()?.clone();
            members
                .iter()
                .map(|member| {
                    let node: NodeId = serde_json::from_value(member["node_id"].clone()).ok()?;
                    let figure = |name: &str| member[name].as_u64();
                    let settled = Settled {
                        passed: figure("challenges_passed")?,
                        failed: figure("challenges_failed")?,
                        penalties: figure("penalties")?,
                    };
                    Some((node, settled))
                })
                .collect()
        })
    }

    /// `morsa node status VICTIM` (JSON and table) and the coordinator's `/metrics` show the
    /// victim's settled `epoch` with the figures `morsa info` gave (`failed` there counts
    /// caught and declared failures together).
    fn check_node_status(&self, epoch: Epoch, figures: Settled) {
        let config = self.cluster.client_config_path();
        let victim = self.victim().to_string();
        let record = common::morsa_json_with(&config, &["node", "status", &victim, "--json"]);
        let last = record["history"].as_array().and_then(|history| history.last()).unwrap().clone();
        assert_eq!(serde_json::from_value::<Epoch>(last["epoch"].clone()).unwrap(), epoch, "{record}");
        let figure = |name: &str| last[name].as_u64().unwrap();
        assert_eq!(figure("passed"), figures.passed, "{record}");
        assert_eq!(figure("failed") + figure("declared"), figures.failed, "{record}");
        assert_eq!(figure("penalty"), figures.penalties, "{record}");
        assert!(figure("phi_ppm") > 0, "{record}");
        let output = common::morsa_with(&config, &["node", "status", &victim]);
        let text = String::from_utf8(output.stdout).unwrap();
        let row: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(row[0], epoch.0.to_string(), "{text}");
        assert_eq!(row[8], figures.penalties.to_string(), "the penalty column: {text}");

        let url = format!("{}/metrics", self.cluster.coordinator_url());
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let metrics = http.get(url).send().unwrap().text().unwrap();
        for (name, value) in [
            ("morsa_coord_challenge_epoch", u64::from(epoch.0)),
            ("morsa_coord_challenge_passed", figures.passed),
            ("morsa_coord_challenge_failed", figure("failed")),
            ("morsa_coord_challenge_phi_ppm", figure("phi_ppm")),
            ("morsa_coord_challenge_reward", figure("reward")),
            ("morsa_coord_challenge_penalty", figures.penalties),
        ] {
            let line = format!("{name}{{node=\"{victim}\"}} {value}");
            assert!(metrics.lines().any(|got| got == line), "{line:?} missing from:\n{metrics}");
        }
        let exported = common::metrics_doc::exported(&metrics);
        let wrong = common::metrics_doc::mismatches(&exported, &common::metrics_doc::documented());
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    fn victim(&self) -> NodeId {
        self.cluster.nodes()[VICTIM].node_id
    }

    fn victim_client(&self) -> NodeClient {
        NodeClient::new(&self.cluster.nodes()[VICTIM].url, EncodingConfig::new(SHARDS).unwrap()).unwrap()
    }
}

#[test]
fn a_node_that_lost_slivers_is_penalised_and_back_to_full_rewards_once_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec {
        coordinators: 1,
        nodes: NODES,
        shards: SHARDS,
        dir: dir.path().join("cluster"),
        epoch_duration: EPOCH,
        binary: PathBuf::from(env!("CARGO_BIN_EXE_morsa")),
        node_links: Default::default(),
        zones: 0,
    };
    let mut harness = Harness {
        cluster: Cluster::up_with_challenges(spec, RULES).unwrap(),
        runtime: tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
        coord: CoordClient::new("http://127.0.0.1:1").unwrap(),
    };
    harness.coord = CoordClient::new(harness.cluster.coordinator_url()).unwrap();
    let config = ClientConfig::load(&harness.cluster.client_config_path()).unwrap();
    let client = harness.runtime.block_on(Client::connect(&config)).unwrap();
    let options = StoreOptions { epochs: 20, ..StoreOptions::default() };
    let blobs: Vec<BlobId> = (0..BLOBS)
        .map(|index| {
            let data = morsa_cluster::sample::bytes(20_000, u64::try_from(index).unwrap());
            harness.runtime.block_on(client.store_blob(data, &options)).unwrap().blob_id
        })
        .collect();
    assert!(harness.runtime.block_on(client.finish_uploads(Duration::from_secs(60))).is_empty());
    // Blobs certified in an epoch are challenged from the next one on.
    let stored_in = harness.epoch();

    // The honest epoch: every member audited, nobody failed or penalised.
    let honest = Epoch(stored_in.0 + 1);
    harness.wait_epoch(Epoch(honest.0 + 1));
    let settled = harness.settled(honest);
    assert_eq!(settled.len(), NODES, "{settled:?}");
    for (node, figures) in &settled {
        assert_eq!(
            (figures.failed, figures.penalties),
            (0, 0),
            "honest node {node} in {honest}: {settled:?}"
        );
    }
    assert!(settled.iter().any(|(_, figures)| figures.passed > 0), "nothing was audited: {settled:?}");

    // The victim loses its slivers of two blobs; its repair is paused; nobody is told.
    harness.cluster.stop(VICTIM).unwrap();
    {
        let data_dir = harness.cluster.dir().join(format!("node{VICTIM}"));
        let store = NodeStore::open(&data_dir.join("node.redb")).unwrap();
        for blob_id in &blobs[..LOST] {
            for shard in &harness.cluster.nodes()[VICTIM].shards {
                for kind in [SliverKind::Primary, SliverKind::Secondary] {
                    assert!(store.delete_slivers(&blob_id.0, shard.0, kind).unwrap());
                }
            }
        }
    }
    let node_config = harness.cluster.nodes()[VICTIM].config.clone();
    let mut text = std::fs::read_to_string(&node_config).unwrap();
    text.push_str("\n[repair]\npaused = true\n");
    std::fs::write(&node_config, text).unwrap();
    harness.cluster.start(VICTIM).unwrap();
    let lossy = harness.epoch();
    assert!(harness.runtime.block_on(harness.victim_client().health()).unwrap().repair.paused);

    // Within two epochs it is penalised (its failures are caught, its stake slashed); the
    // others are not.
    harness.wait_epoch(Epoch(lossy.0 + 1));
    let settled = harness.settled(lossy);
    for (node, figures) in &settled {
        if *node == harness.victim() {
            assert!(figures.failed > 0 && figures.penalties > 0, "the victim in {lossy}: {figures:?}");
        } else {
            assert_eq!(
                (figures.failed, figures.penalties),
                (0, 0),
                "honest node {node} in {lossy}: {settled:?}"
            );
        }
    }
    let text = common::morsa_with(&harness.cluster.client_config_path(), &["info"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("challenges: ") && text.contains("penalty"), "{text}");
    let victim = settled.iter().find(|(node, _)| *node == harness.victim()).unwrap().1;
    harness.check_node_status(lossy, victim);

    // Repair resumes and rebuilds everything; an epoch that starts after settles it clean.
    let token =
        std::fs::read_to_string(harness.cluster.dir().join(format!("node{VICTIM}")).join("admin.token"))
            .unwrap();
    let resumed = harness.runtime.block_on(harness.victim_client().set_repair_paused(false, token.trim()));
    resumed.unwrap();
    eventually("the victim has rebuilt what it lost", EPOCH * 3, || {
        let health = harness.runtime.block_on(harness.victim_client().health()).ok()?;
        let all_there = blobs[..LOST].iter().all(|blob_id| {
            let status = harness.runtime.block_on(harness.victim_client().blob_status(blob_id));
            status.is_ok_and(|status| status.fully_stored())
        });
        (health.repair.caught_up && all_there).then_some(())
    });
    let clean = Epoch(harness.epoch().0 + 1);
    harness.wait_epoch(Epoch(clean.0 + 1));
    let settled = harness.settled(clean);
    let victim = settled.iter().find(|(node, _)| *node == harness.victim()).unwrap().1;
    assert_eq!((victim.failed, victim.penalties), (0, 0), "the repaired victim in {clean}: {settled:?}");
    assert!(victim.passed > 0, "the victim was audited in {clean}: {settled:?}");

    // `morsa node status` refuses a node the coordinator does not know (its route answers
    // 404) and a malformed ID (a usage error).
    let config = harness.cluster.client_config_path();
    let output = common::morsa_with(&config, &["node", "status", &"ab".repeat(32)]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not registered"), "{output:?}");
    let output = common::morsa_with(&config, &["node", "status", "not-a-node"]);
    assert_eq!(output.status.code(), Some(2), "a malformed ID is a usage error: {output:?}");
    harness.cluster.shutdown().unwrap();
}

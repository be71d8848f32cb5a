//! Storage challenges on real processes (the `morsa` binary as coordinator and nodes on
//! loopback), with short epochs and two challenge rounds in each: in an honest cluster no node
//! is penalised; a node that lost half its blobs' slivers while it was down and whose repair is
//! paused (the `[repair] paused` knob) finds the loss at its start (its scan) and declares it
//! (`DeclareLoss`, visible in `GET /v1/nodes/{id}/challenges` and its `/metrics`); it fails its
//! challenges on those blobs *as declared*, not caught, and is penalised at the declared rate
//! in the settlement of the first epoch whose rounds all started after the declaration, as
//! `morsa info --json` shows; once its repair is resumed and has rebuilt everything, a later
//! epoch settles it with no failure and no penalty. `morsa node status` and the coordinator's
//! `/metrics` show the penalised epoch as `morsa info` does, and every metric the coordinator
//! and the victim export then is documented in docs/METRICS.md.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::eventually;
use morsa_api::client::{CoordClient, NodeClient};
use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::{Cluster, ClusterSpec};
use morsa_coord::challenge::{ChallengeRules, PPM, SLASH_FROM_PPM};
use morsa_core::{Epoch, NodeId};
use morsa_store::{NodeStore, SliverKind};
use redstuff::{BlobId, EncodingConfig};

const NODES: usize = 4;
const SHARDS: u16 = 12;
/// Epochs of 48 s in three slots of 16 s: rounds start 16 s and 32 s in (plus a jitter below
/// 8 s), and audits are due 4 s after a round starts.
const EPOCH: Duration = Duration::from_secs(48);
const RULES: ChallengeRules = ChallengeRules { rounds_per_epoch: 2, samples_per_shard: 8 };
/// Blobs stored; the victim loses its slivers of the first [`LOST`] of them (half: about half
/// its challenges fail as declared, `φ` ≈ 12.5%, far enough above the 5% that slashes for the
/// few dozen challenges of an epoch).
const BLOBS: usize = 8;
const LOST: usize = 4;
const VICTIM: usize = 0;

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
    /// caught and declared failures together): its failures all declared, none caught, and
    /// `φ` and the penalty as the declared rate makes them.
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
        assert_eq!(figure("failed"), 0, "no failure caught: the loss was declared first: {record}");
        assert!(figure("declared") > 0, "{record}");
        // A declared failure weighs a quarter of a caught one: φ = declared / (4 · audited).
        let audited = figure("passed") + figure("failed") + figure("declared");
        assert_eq!(figure("phi_ppm"), figure("declared") * PPM / (4 * audited), "{record}");
        assert!(figure("phi_ppm") >= SLASH_FROM_PPM, "half the blobs lost: φ ≈ 12.5%: {record}");
        let output = common::morsa_with(&config, &["node", "status", &victim]);
        let text = String::from_utf8(output.stdout).unwrap();
        let row: Vec<&str> = text.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(row[0], epoch.0.to_string(), "{text}");
        assert_eq!(row[8], figures.penalties.to_string(), "the penalty column: {text}");

        let metrics = self.coordinator_metrics();
        for (name, value) in [
            ("morsa_coord_challenge_epoch", u64::from(epoch.0)),
            ("morsa_coord_challenge_passed", figures.passed),
            ("morsa_coord_challenge_failed", figure("failed")),
            ("morsa_coord_challenge_declared", figure("declared")),
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

    /// Waits until the coordinator records `count` blobs declared lost by the victim in the
    /// current epoch; answers that epoch.
    fn wait_declared(&self, count: usize) -> Epoch {
        let victim = self.victim();
        let count = u64::try_from(count).unwrap();
        eventually("the victim declared its loss", EPOCH, || {
            let record = self.runtime.block_on(self.coord.node_challenges(&victim)).ok()?;
            assert!(record.declared_blobs <= count, "only the lost blobs are declared: {record:?}");
            (record.declared_blobs == count).then_some(record.epoch)
        })
    }

    /// The first epoch from `declared_in` on with no round started before now: `declared_in`
    /// itself if none of its rounds has started yet, else the next.
    fn first_epoch_after_declaration(&self, declared_in: Epoch) -> Epoch {
        let metrics = self.coordinator_metrics();
        let gauge = |name: &str| {
            let line = metrics.lines().find(|line| line.split(' ').next() == Some(name)).unwrap();
            line.split(' ').nth(1).unwrap().parse::<u64>().unwrap()
        };
        let (epoch, started) = (gauge("morsa_coord_epoch"), gauge("morsa_coord_challenge_rounds_started"));
        if epoch == u64::from(declared_in.0) && started == 0 { declared_in } else { Epoch(declared_in.0 + 1) }
    }

    fn coordinator_metrics(&self) -> String {
        let url = format!("{}/metrics", self.cluster.coordinator_url());
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        http.get(url).send().unwrap().error_for_status().unwrap().text().unwrap()
    }

    /// The victim's `/metrics` count the blobs it declared, and every metric it exports is
    /// documented.
    fn check_node_metrics(&self, declared: usize) {
        let url = format!("{}/metrics", self.cluster.nodes()[VICTIM].url);
        let text = reqwest::blocking::get(url).unwrap().error_for_status().unwrap().text().unwrap();
        let line = text.lines().find(|line| line.starts_with("morsa_node_losses_declared_total ")).unwrap();
        let count: u64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(count >= u64::try_from(declared).unwrap(), "{line}");
        let exported = common::metrics_doc::exported(&text);
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

    // The victim loses its slivers of half the blobs while it is down; its repair is paused.
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
    assert!(harness.runtime.block_on(harness.victim_client().health()).unwrap().repair.paused);

    // Its scan at start finds the loss, and it declares it: the coordinator records the blobs
    // (nothing else is missing there), and the victim counts them.
    let declared_in = harness.wait_declared(LOST);
    let health = harness.runtime.block_on(harness.victim_client().health()).unwrap();
    assert!(health.repair.losses_declared >= u64::try_from(LOST).unwrap(), "{:?}", health.repair);
    harness.check_node_metrics(LOST);

    // Settled at the declared rate in the first epoch whose rounds all started after the
    // declaration: its failures declared, none caught, φ ≥ 5% (penalised); the others clean.
    // In a later epoch than the declaration's, the victim declares again at its start (the
    // coordinator forgets declarations at each epoch change).
    let penalised = harness.first_epoch_after_declaration(declared_in);
    eprintln!("the victim declared its loss in {declared_in}; checked at the declared rate: {penalised}");
    if penalised != declared_in {
        harness.wait_epoch(penalised);
        assert_eq!(harness.wait_declared(LOST), penalised);
    }
    harness.wait_epoch(Epoch(penalised.0 + 1));
    let settled = harness.settled(penalised);
    for (node, figures) in &settled {
        if *node == harness.victim() {
            assert!(figures.failed > 0 && figures.penalties > 0, "the victim in {penalised}: {figures:?}");
        } else {
            assert_eq!(
                (figures.failed, figures.penalties),
                (0, 0),
                "honest node {node} in {penalised}: {settled:?}"
            );
        }
    }
    let text = common::morsa_with(&harness.cluster.client_config_path(), &["info"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("challenges: ") && text.contains("penalty"), "{text}");
    let victim = settled.iter().find(|(node, _)| *node == harness.victim()).unwrap().1;
    harness.check_node_status(penalised, victim);

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

//! Committees that change under a steady load, on real processes started by `morsa cluster
//! up`, with a client storing blobs and reading them back (compared byte for byte) the whole
//! time; no store or read may fail.
//!
//! * Two changes back to back with short epochs: a node joins through `morsa cluster add-node`
//!   while stake moves to another node (`morsa stake`); the epoch after, a node retires
//!   (`morsa cluster retire`) and the stake moves back (`morsa unstake`), whose `morsa
//!   withdraw` is refused until the change that moves the shards away is done and paid after.
//! * Zones: every node of one zone is SIGKILLed at once. With 9 nodes in 3 zones over
//!   n = 3f + 1 shards some zone holds more than f, which `morsa info` warns about: reads of
//!   every blob go on, writes cannot (they need 2f + 1 confirmations). With 8 nodes in 4 zones
//!   each zone holds at most f: writes go on too.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::churn::SteadyLoad;
use common::eventually;
use common::supervisor::Supervisor;
use morsa_api::client::CoordClient;
use morsa_core::NodeId;

/// One cluster at a time in this binary: ports are chosen before the processes start, so two
/// clusters starting together could pick the same one.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long one committee change, or one step of the load, may take on a busy machine.
const WAIT: Duration = Duration::from_secs(120);

fn succeeds(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn morsa_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_morsa")).args(args).arg("--dir").arg(dir).output().unwrap()
}

/// The stake with `node` that `morsa info` lists.
fn stake_of(config: &std::path::Path, node: &str) -> u64 {
    let info = common::morsa_json_with(config, &["info", "--json"]);
    let nodes = info["system"]["nodes"].as_array().unwrap().clone();
    let listed = nodes.iter().find(|listed| listed["node_id"].as_str() == Some(node)).unwrap();
    listed["stake"].as_u64().unwrap()
}

struct Coord {
    client: CoordClient,
    runtime: tokio::runtime::Runtime,
}

impl Coord {
    fn new(supervisor: &Supervisor) -> Self {
        let client = CoordClient::new(&supervisor.state().coordinator.url).unwrap();
        Self { client, runtime: tokio::runtime::Runtime::new().unwrap() }
    }

    /// Waits until the current committee passes `check` and its epoch change is done; answers
    /// the committee.
    fn committee_where(
        &self,
        what: &str,
        check: impl Fn(&morsa_core::Committee) -> bool,
    ) -> morsa_core::Committee {
        eventually(what, WAIT, || {
            let info = self.runtime.block_on(self.client.committee()).ok()?;
            (info.epoch_change_done && check(&info.current)).then_some(info.current)
        })
    }

    fn shards(committee: &morsa_core::Committee, node: &NodeId) -> usize {
        committee.member_by_node(node).map_or(0, |member| committee.members[member].shards.len())
    }
}

/// The slivers a node stores, summed over its shards from its `/metrics` (none if it does not
/// answer).
fn slivers_stored(node_url: &str) -> Option<f64> {
    let text = reqwest::blocking::get(format!("{node_url}/metrics")).ok()?.text().ok()?;
    let mut total = 0.0;
    for line in text.lines().filter(|line| line.starts_with("morsa_node_shard_slivers{")) {
        total += line.rsplit(' ').next()?.parse::<f64>().ok()?;
    }
    Some(total)
}

#[test]
fn a_node_joins_then_another_retires_while_stake_moves_and_no_client_call_fails() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("cluster");
    let supervisor = Supervisor::start(
        &cluster_dir,
        &["--nodes", "4", "--shards", "12", "--epoch-duration", "10s", "--no-gateway"],
    );
    let coord = Coord::new(&supervisor);
    let config = supervisor.client_config();
    // The load has an account of its own; `add-node` and `stake` below use the cluster's.
    let load_config =
        common::churn::funded_account_config(&cluster_dir, &supervisor.state().coordinator.url, "load");
    let load = SteadyLoad::start(&load_config, Vec::new(), true);
    load.wait_for_more(2, 2, WAIT);
    let nodes: Vec<NodeId> = supervisor.state().nodes.iter().map(|node| node.info.node_id).collect();
    let first = coord.committee_where("the first epoch is done", |_| true);

    // Change 1: a fifth node joins through the CLI; stake moves to node 1.
    let added = succeeds(&morsa_in(&cluster_dir, &["cluster", "add-node", "--zone", "eu-west/dc9"]));
    let state = supervisor.state();
    assert_eq!(state.nodes.len(), 5, "{added}");
    let joined = state.nodes[4].info.node_id;
    let node_1 = nodes[1].to_string();
    succeeds(&common::morsa_with(&config, &["stake", "--node", &node_1, "--amount", "5000"]));
    assert_eq!(stake_of(&config, &node_1), 6_000);
    let second =
        coord.committee_where("the new node holds shards", |committee| Coord::shards(committee, &joined) > 0);
    assert!(second.epoch > first.epoch);
    assert!(
        Coord::shards(&second, &nodes[1]) >= Coord::shards(&first, &nodes[1]),
        "node 1 lost shards although stake moved to it: {first:?} then {second:?}"
    );
    load.wait_for_more(2, 2, WAIT);

    // Change 2, the epoch after: node 0 retires, and the stake moves back off node 1.
    let retired = supervisor.state().nodes[0].clone();
    assert!(slivers_stored(&retired.info.url) > Some(0.0), "node 0 stores slivers before it retires");
    succeeds(&morsa_in(&cluster_dir, &["cluster", "retire", "--node", "0"]));
    succeeds(&common::morsa_with(&config, &["unstake", "--node", &node_1, "--amount", "5000"]));
    assert_eq!(stake_of(&config, &node_1), 1_000);
    let refused = common::morsa_with(&config, &["withdraw", "--node", &node_1]);
    assert!(!refused.status.success(), "paid before the change");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("withdrawable once the change"), "{message}");
    let third = coord.committee_where("the retired node holds no shard", |committee| {
        committee.member_by_node(&nodes[0]).is_none()
    });
    assert!(third.epoch > second.epoch);
    assert_eq!(third.members.iter().map(|member| member.shards.len()).sum::<usize>(), 12);
    eventually("the unstaked amount is payable", WAIT, || {
        let info = common::morsa_json_with(&config, &["info", "--json"]);
        let pending = info["account"]["withdrawals"].as_array()?.first()?.clone();
        pending["payable"].as_bool().filter(|payable| *payable)
    });
    succeeds(&common::morsa_with(&config, &["withdraw", "--node", &node_1]));
    load.wait_for_more(2, 2, WAIT);
    // The retired node deletes its shards' slivers once the change is done and a grace epoch
    // has passed; then it is SIGKILLed, and the reads below no longer have it.
    eventually("the retired node deletes the slivers of the shards it gave up", WAIT, || {
        (slivers_stored(&retired.info.url) == Some(0.0)).then_some(())
    });
    morsa_cluster::pids::send(retired.pid.unwrap(), morsa_cluster::pids::Signal::Kill);
    load.wait_for_more(2, 2, WAIT);

    let report = load.finish();
    assert!(report.failures.is_empty(), "client calls failed: {:#?}", report.failures);
    // Paid in full: nothing is staked with node 1 or waits to be withdrawn from it.
    let account = common::morsa_json_with(&config, &["info", "--json"])["account"].clone();
    assert_eq!(account["withdrawals"], serde_json::json!([]), "{account}");
    assert_eq!(account["stakes"], serde_json::json!([]), "{account}");
    // Every blob written through both changes still reads back, now that node 0 is killed too.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client_config = morsa_client::ClientConfig::load(&load_config).unwrap();
    let client = runtime.block_on(morsa_client::Client::connect(&client_config)).unwrap();
    for (blob_id, data) in &report.stored {
        assert!(runtime.block_on(client.read_blob(blob_id)).unwrap().data == *data, "{blob_id}");
    }
}

/// `cluster up` with `nodes` nodes in `zones` zones over 10 shards (f = 3); stores a few
/// blobs, starts the load (writing if `writes`), SIGKILLs every node of the zone holding the
/// most shards at once, and answers the load's report once it made progress after the kill,
/// with the `morsa info` text from before the kill.
fn lose_a_zone(nodes: usize, zones: usize, writes: bool) -> (common::churn::LoadReport, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("cluster");
    let (nodes_arg, zones_arg) = (nodes.to_string(), zones.to_string());
    let supervisor = Supervisor::start(
        &cluster_dir,
        &["--nodes", &nodes_arg, "--shards", "10", "--zones", &zones_arg, "--no-gateway"],
    );
    let config = supervisor.client_config();
    let info = String::from_utf8_lossy(&common::morsa_with(&config, &["info"]).stdout).into_owned();
    // A few blobs first, so that the reads cover blobs stored by every zone's nodes.
    let seeding = SteadyLoad::start(&config, Vec::new(), true);
    seeding.wait_for_more(3, 0, WAIT);
    let seeded = seeding.finish();
    assert!(seeded.failures.is_empty(), "{:#?}", seeded.failures);
    let load = SteadyLoad::start(&config, seeded.stored.clone(), writes);

    let state = supervisor.state();
    let shards_of_zone = |zone: usize| -> usize {
        state
            .nodes
            .iter()
            .filter(|node| node.info.index % zones == zone)
            .map(|node| node.info.shards.len())
            .sum()
    };
    let largest = (0..zones).max_by_key(|zone| shards_of_zone(*zone)).unwrap();
    for node in state.nodes.iter().filter(|node| node.info.index % zones == largest) {
        morsa_cluster::pids::send(node.pid.unwrap(), morsa_cluster::pids::Signal::Kill);
    }
    let reads = 2 * seeded.stored.len();
    load.wait_for_more(if writes { 3 } else { 0 }, reads, WAIT);
    let mut report = load.finish();
    report.stored.extend(seeded.stored);
    (report, info, shards_of_zone(largest))
}

#[test]
fn losing_a_zone_of_three_keeps_every_blob_readable_and_losing_one_of_four_keeps_writes_going() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Three zones over 10 shards: one holds 4 > f, and `morsa info` says so.
    let (report, info, lost) = lose_a_zone(9, 3, false);
    assert!(lost > 3, "{info}");
    assert!(info.contains("MORE than f") && info.contains("warning:"), "{info}");
    assert!(report.failures.is_empty(), "reads failed after the zone was lost: {:#?}", report.failures);
    assert!(report.reads >= 2 * report.stored.len());

    // Four zones over 10 shards: none holds more than f = 3, so a whole zone may go.
    let (report, info, lost) = lose_a_zone(8, 4, true);
    assert!(lost <= 3, "{info}");
    assert!(info.contains("within f") && !info.contains("warning:"), "{info}");
    assert!(
        report.failures.is_empty(),
        "stores or reads failed after the zone was lost: {:#?}",
        report.failures
    );
}

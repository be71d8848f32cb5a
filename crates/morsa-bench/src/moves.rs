//! `morsa bench move`: time and bytes to move one node's whole share to the other nodes when
//! it leaves the committee, by pull versus by recovery, on the same cluster and blobs:
//!
//! 1. **pull**: one node retires and stays up; the new owners of its shards pull them from it
//!    (`migrate`, pages of metadata and slivers).
//! 2. **recovery**: another node retires and is SIGKILLed before the epoch ends; the new
//!    owners find it gone and rebuild its shards from the other nodes' recovery symbols.
//!
//! Each phase is timed from the end of the epoch (the test route of a coordinator with manual
//! epochs) until the coordinator marks the change done and every node of the new committee
//! is in the new epoch and holds all its shards (none left `active_sync` or `active_recover`,
//! nothing queued for repair). Bytes are the sums of the nodes' own counters
//! (`/v1/health`'s `migration` and `repair`) over the phase. Every node runs with no repair
//! bandwidth limit, no scrubbing and a 1 s pull stall (a gone previous owner is given up on
//! after 1 s, which the recovery phase's time includes).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use morsa_api::client::{CoordClient, NodeClient};
use morsa_api::node::{NodeHealth, ShardStatus};
use morsa_client::{Client, ClientConfig};
use morsa_cluster::{Cluster, ClusterSpec};
use morsa_core::Committee;
use redstuff::EncodingConfig;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::repair::{megabytes, plan, store_all};
use crate::runtime;

/// Every node's `[repair]` section.
const NODE_REPAIR: &str =
    "bandwidth_bytes_per_sec = 0\ngrace_ms = 1000\nscrub_bytes_per_sec = 0\npull_stall_ms = 1000\n";
/// The longest a move is waited for.
const MOVE_TIMEOUT: Duration = Duration::from_secs(3600);
/// The node that leaves by pull, and the one that leaves by recovery.
const PULLED_FROM: usize = 1;
const RECOVERED_FROM: usize = 2;

/// Options of `morsa bench move`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Storage nodes (at least 4: two leave).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(4..))]
    nodes: u64,
    /// Shards n.
    #[arg(long, default_value_t = 1000)]
    shards: u16,
    /// Bytes of blobs stored in all (mixed sizes, as `bench repair`; at least 16 MiB).
    #[arg(long, default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(16 << 20..))]
    total: u64,
    /// Where the cluster lives (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// One node's share moved.
#[derive(Debug, Default, Serialize)]
struct Move {
    /// Shards that changed owner.
    shards_moved: usize,
    /// From the end of the epoch until every new owner held its shards.
    seconds: f64,
    /// Slivers pulled and stored, and their bytes.
    slivers_pulled: u64,
    bytes_pulled: u64,
    /// Bytes of page answers received (metadata and slivers).
    page_bytes_received: u64,
    /// Slivers rebuilt from recovery symbols, their bytes, and the bytes fetched for them.
    rebuilt_slivers: u64,
    rebuilt_bytes: u64,
    fetched_bytes: u64,
    /// Bytes stored (pulled + rebuilt) over `seconds`.
    stored_mb_s: f64,
    /// Bytes received (pages + recovery symbols) per byte stored.
    traffic_ratio: f64,
}

#[derive(Debug, Serialize)]
struct MoveReport {
    nodes: u64,
    shards: u16,
    blobs: usize,
    blob_bytes: u64,
    store_seconds: f64,
    pull: Move,
    recovery: Move,
}

/// Runs the benchmark.
pub fn run(args: &MoveArgs) -> anyhow::Result<()> {
    let config = EncodingConfig::new(args.shards)?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut cluster = Cluster::up_with_manual_epochs(ClusterSpec {
        coordinators: 1,
        nodes: usize::try_from(args.nodes)?,
        shards: args.shards,
        dir: args.dir.clone().unwrap_or_else(|| temp.path().join("cluster")),
        epoch_duration: Duration::from_secs(3600),
        binary: std::env::current_exe().context("cannot find the morsa executable")?,
        node_links: Default::default(),
        zones: 0,
    })
    .context("the local cluster did not start")?;
    for index in 0..cluster.nodes().len() {
        let path = cluster.nodes()[index].config.clone();
        cluster.stop(index)?;
        let mut text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        text.push_str("\n[repair]\n");
        text.push_str(NODE_REPAIR);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        cluster.start(index)?;
    }
    let runtime = runtime()?;
    let client = runtime.block_on(Client::connect(&ClientConfig::load(&cluster.client_config_path())?))?;
    let coord = CoordClient::new(cluster.coordinator_url())?;
    let (large, small) = plan(args.total);
    let sizes: Vec<u64> = small.into_iter().chain(large).collect();
    let started = Instant::now();
    let blobs = store_all(&runtime, &client, &sizes, 0)?;
    let store_seconds = started.elapsed().as_secs_f64();
    let bench = Bench { runtime, coord, config };

    morsa_cluster::retire_node(cluster.dir(), PULLED_FROM)?;
    let pull = bench.change(&cluster, args.json, "pull").context("phase pull")?;
    morsa_cluster::retire_node(cluster.dir(), RECOVERED_FROM)?;
    cluster.kill(RECOVERED_FROM)?;
    let recovery = bench.change(&cluster, args.json, "recovery").context("phase recovery")?;
    cluster.shutdown().context("stopping the cluster")?;
    let report = MoveReport {
        nodes: args.nodes,
        shards: args.shards,
        blobs: blobs.len(),
        blob_bytes: sizes.iter().sum(),
        store_seconds,
        pull,
        recovery,
    };
    print(&report, args.json)
}

struct Bench {
    runtime: Runtime,
    coord: CoordClient,
    config: EncodingConfig,
}

impl Bench {
    /// Ends the epoch and waits until every node of the next committee holds its shards;
    /// answers the move measured by the nodes' counters.
    fn change(&self, cluster: &Cluster, quiet: bool, name: &str) -> anyhow::Result<Move> {
        let before_committee = self.runtime.block_on(self.coord.committee())?.current;
        let before = self.healths(cluster, &before_committee)?;
        let started = Instant::now();
        self.runtime.block_on(self.coord.next_epoch())?;
        let mut last_line = Instant::now();
        let (committee, after) = loop {
            let info = self.runtime.block_on(self.coord.committee())?;
            if info.epoch > before_committee.epoch && info.epoch_change_done {
                let healths = self.healths(cluster, &info.current)?;
                let settled = healths.iter().all(|(_, health)| {
                    health.as_ref().is_some_and(|health| {
                        health.epoch == info.epoch
                            && health.repair.backlog_slivers == 0
                            && health.shards.iter().all(|shard| {
                                !matches!(shard.status, ShardStatus::ActiveSync | ShardStatus::ActiveRecover)
                            })
                    })
                });
                if settled {
                    break (info.current, healths);
                }
            }
            anyhow::ensure!(started.elapsed() < MOVE_TIMEOUT, "the move did not end within {MOVE_TIMEOUT:?}");
            if !quiet && last_line.elapsed() > Duration::from_secs(10) {
                eprintln!("  {name}: {:>5.0} s", started.elapsed().as_secs_f64());
                last_line = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let seconds = started.elapsed().as_secs_f64();
        let mut moved =
            Move { shards_moved: shards_moved(&before_committee, &committee), seconds, ..Move::default() };
        for (node_id, health) in &after {
            let Some(health) = health else { continue };
            let earlier = before.iter().find(|(id, _)| id == node_id).and_then(|(_, health)| health.as_ref());
            let delta = |now: u64, then: Option<u64>| now.saturating_sub(then.unwrap_or(0));
            let (migration, repair) = (&health.migration, &health.repair);
            moved.slivers_pulled +=
                delta(migration.slivers_pulled, earlier.map(|h| h.migration.slivers_pulled));
            moved.bytes_pulled += delta(migration.bytes_pulled, earlier.map(|h| h.migration.bytes_pulled));
            moved.page_bytes_received +=
                delta(migration.page_bytes_received, earlier.map(|h| h.migration.page_bytes_received));
            moved.rebuilt_slivers += delta(repair.rebuilt_slivers, earlier.map(|h| h.repair.rebuilt_slivers));
            moved.rebuilt_bytes += delta(repair.rebuilt_bytes, earlier.map(|h| h.repair.rebuilt_bytes));
            moved.fetched_bytes += delta(repair.fetched_bytes, earlier.map(|h| h.repair.fetched_bytes));
        }
        let stored = moved.bytes_pulled + moved.rebuilt_bytes;
        moved.stored_mb_s = megabytes(stored) / seconds.max(1e-9);
        moved.traffic_ratio =
            megabytes(moved.page_bytes_received + moved.fetched_bytes) / megabytes(stored).max(1e-9);
        Ok(moved)
    }

    /// The health of each member of `committee` (none for a member that does not answer).
    fn healths(
        &self,
        cluster: &Cluster,
        committee: &Committee,
    ) -> anyhow::Result<Vec<(morsa_core::NodeId, Option<NodeHealth>)>> {
        let mut healths = Vec::new();
        for member in &committee.members {
            let Some(node) = cluster.nodes().iter().find(|node| node.node_id == member.node_id) else {
                continue;
            };
            let client = NodeClient::new(&node.url, self.config)?;
            healths.push((member.node_id, self.runtime.block_on(client.health()).ok()));
        }
        Ok(healths)
    }
}

/// Shards whose owner differs between `before` and `after`.
fn shards_moved(before: &Committee, after: &Committee) -> usize {
    (0..before.n_shards)
        .map(morsa_core::ShardIndex)
        .filter(|shard| {
            let owner = |committee: &Committee| {
                committee.shard_owner(*shard).map(|member| committee.members[member].node_id)
            };
            owner(before) != owner(after)
        })
        .count()
}

fn print(report: &MoveReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!(
        "move: {} nodes, n = {}, {} blobs, {:.1} MB stored in {:.0} s",
        report.nodes,
        report.shards,
        report.blobs,
        megabytes(report.blob_bytes),
        report.store_seconds
    );
    for (name, moved) in [("pull", &report.pull), ("recovery", &report.recovery)] {
        println!(
            "{name}: {} shards moved in {:.1} s; stored {:.1} MB pulled + {:.1} MB rebuilt ({:.1} MB/s); \
             received {:.1} MB of pages + {:.1} MB of symbols ({:.3}x)",
            moved.shards_moved,
            moved.seconds,
            megabytes(moved.bytes_pulled),
            megabytes(moved.rebuilt_bytes),
            moved.stored_mb_s,
            megabytes(moved.page_bytes_received),
            megabytes(moved.fetched_bytes),
            moved.traffic_ratio
        );
    }
    Ok(())
}

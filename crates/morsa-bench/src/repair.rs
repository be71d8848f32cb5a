//! `morsa bench repair`: how much traffic and time a storage node needs to rebuild its share
//! after losing its disk, on a local cluster of real processes.
//!
//! Three phases, each wiping the same node (stop, delete its data directory, restart) and
//! waiting until it holds every sliver of its shards again:
//!
//! 1. **small**: only the blobs under 1 MiB are stored;
//! 2. **all**: the blobs of 1 MiB and more are added (`--total` bytes in all, mixed sizes);
//! 3. **with reads**: the same blobs again, while a client reads.
//!
//! The traffic of the blobs of 1 MiB and more is phase 2 minus phase 1 (the same small blobs
//! are rebuilt again). The node's own counters (`/v1/health`'s `repair`) give the bytes
//! rebuilt and fetched; the bytes it must rebuild are computed from the blobs' sizes.
//!
//! In phase 3 a client of its own reads 1 MiB blobs, paced, on the quiet cluster before the
//! wipe and again during the rebuild ([`crate::rebuild_reads`]): the latencies of the two
//! series tell what the rebuild costs readers. The reads are kept out of phase 2 because on
//! one machine they compete with the rebuild for the same cores (a read at n = 1000 costs
//! about 0.1 s of CPU): phase 2 gives the rebuild's own speed, phase 3 the two together.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use morsa_api::client::NodeClient;
use morsa_api::node::RepairHealth;
use morsa_client::{Client, ClientConfig, StoreOptions};
use morsa_cluster::Cluster;
use redstuff::{BlobId, EncodingConfig};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::pseudo_random;
use crate::rebuild_reads::{ReadLatency, Reader};
use crate::runtime;

/// The node that is wiped.
const VICTIM: usize = 0;
/// The victim's `[repair]` section: no bandwidth limit, a short grace, no scrubbing (it would
/// compete for the cores), everything else as shipped.
const VICTIM_REPAIR: &str = "bandwidth_bytes_per_sec = 0\ngrace_ms = 1000\nscrub_bytes_per_sec = 0\n";
/// The longest a rebuild is waited for.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(1800);
/// Blobs under 1 MiB: four of each size.
const SMALL_SIZES: [u64; 5] = [1 << 10, 16 << 10, 100 << 10, 300 << 10, 700 << 10];
/// Blobs of 1 MiB and more: size and share of the bytes (per mille); the rest is 1 MiB blobs.
const LARGE_CLASSES: [(u64, u64); 4] = [(256 << 20, 500), (64 << 20, 250), (16 << 20, 125), (4 << 20, 62)];

/// Options of `morsa bench repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Storage nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Shards n.
    #[arg(long, default_value_t = 1000)]
    shards: u16,
    /// Bytes of blobs stored in all (mixed sizes; at least 16 MiB).
    #[arg(long, default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(16 << 20..))]
    total: u64,
    /// Where the cluster lives (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// One wipe and rebuild.
#[derive(Debug, Serialize)]
struct Phase {
    /// Blobs the cluster holds.
    blobs: usize,
    /// Their bytes.
    blob_bytes: u64,
    /// Slivers of the victim's shards, which it must rebuild.
    must_rebuild_slivers: u64,
    /// Their bytes.
    must_rebuild_bytes: u64,
    /// The victim's counters once it holds everything again.
    rebuilt_slivers: u64,
    rebuilt_bytes: u64,
    fetched_bytes: u64,
    /// `fetched_bytes / rebuilt_bytes`.
    traffic_ratio: f64,
    on_demand_slivers: u64,
    failed_attempts: u64,
    given_up_slivers: u64,
    /// From the restart until the node answered as ready (caught up with the events).
    restart_seconds: f64,
    /// From the restart until every sliver of its shards was stored again.
    rebuild_seconds: f64,
    /// `rebuilt_bytes` over `rebuild_seconds`.
    rebuild_mb_s: f64,
    /// Reads on the quiet cluster before the wipe and during the rebuild (phase `with_reads`
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    reads: Option<RebuildReads>,
}

/// Read latency on the quiet cluster against during the rebuild.
#[derive(Debug, Serialize)]
struct RebuildReads {
    quiet: ReadLatency,
    during_rebuild: ReadLatency,
    /// `during_rebuild.p99_ms / quiet.p99_ms` (issue 18: ≤ 2).
    p99_ratio: f64,
}

#[derive(Debug, Serialize)]
struct RepairReport {
    nodes: usize,
    shards: u16,
    kp: usize,
    ks: usize,
    victim_shards: usize,
    /// Time to store every blob (until every node had its slivers).
    store_seconds: f64,
    small: Phase,
    all: Phase,
    /// Phase `all` again, with reads.
    with_reads: Phase,
    /// Blobs of 1 MiB and more: phase `all` minus phase `small`.
    large_rebuilt_bytes: u64,
    large_fetched_bytes: u64,
    large_traffic_ratio: f64,
    /// What classic one-dimensional Reed–Solomon repair would fetch for phase `all`: `kp`
    /// times the bytes rebuilt (a lost shard is decoded from `kp` whole shards).
    classic_rs_fetched_bytes: u64,
}

/// Runs the benchmark.
pub fn run(args: &RepairArgs) -> anyhow::Result<()> {
    let config = EncodingConfig::new(args.shards)?;
    let (_temp, mut cluster) = super::local_cluster(args.nodes, args.shards, args.dir.as_deref())?;
    let victim_config = cluster.nodes()[VICTIM].config.clone();
    let mut text = std::fs::read_to_string(&victim_config)
        .with_context(|| format!("cannot read {}", victim_config.display()))?;
    text.push_str("\n[repair]\n");
    text.push_str(VICTIM_REPAIR);
    std::fs::write(&victim_config, text)
        .with_context(|| format!("cannot write {}", victim_config.display()))?;
    let client_config = ClientConfig::load(&cluster.client_config_path())?;
    let runtime = runtime()?;
    let client = runtime.block_on(Client::connect(&client_config))?;
    let bench = Bench { config, runtime, client, victim_shards: cluster.nodes()[VICTIM].shards.len() };

    let (large_sizes, small_sizes) = plan(args.total);
    let started = Instant::now();
    let mut blobs = bench.store_all(&small_sizes, 0)?;
    let mut store_seconds = started.elapsed().as_secs_f64();
    let small = bench.wipe_and_rebuild(&mut cluster, &blobs, None, args.json).context("phase small")?;
    let started = Instant::now();
    blobs.extend(bench.store_all(&large_sizes, small_sizes.len())?);
    store_seconds += started.elapsed().as_secs_f64();
    let all = bench.wipe_and_rebuild(&mut cluster, &blobs, None, args.json).context("phase all")?;
    let reader_client = bench.runtime.block_on(Client::connect(&client_config))?;
    let reader = Reader::new(reader_client, crate::rebuild_reads::blobs_to_read(&blobs))?;
    let with_reads =
        bench.wipe_and_rebuild(&mut cluster, &blobs, Some(&reader), args.json).context("phase with reads")?;
    cluster.shutdown().context("stopping the cluster")?;

    let large_rebuilt_bytes = all.rebuilt_bytes.saturating_sub(small.rebuilt_bytes);
    let large_fetched_bytes = all.fetched_bytes.saturating_sub(small.fetched_bytes);
    let kp = config.kp();
    let report = RepairReport {
        nodes: args.nodes,
        shards: args.shards,
        kp,
        ks: config.ks(),
        victim_shards: bench.victim_shards,
        store_seconds,
        large_traffic_ratio: ratio(large_fetched_bytes, large_rebuilt_bytes),
        large_rebuilt_bytes,
        large_fetched_bytes,
        classic_rs_fetched_bytes: all.rebuilt_bytes.saturating_mul(u64::try_from(kp)?),
        small,
        all,
        with_reads,
    };
    print(&report, args.json)
}

/// The blob sizes to store: those of 1 MiB and more (about `total` minus the small ones, by
/// [`LARGE_CLASSES`]), and the small ones ([`SMALL_SIZES`], four of each).
pub(crate) fn plan(total: u64) -> (Vec<u64>, Vec<u64>) {
    let small: Vec<u64> = SMALL_SIZES.iter().flat_map(|size| [*size; 4]).collect();
    let budget = total.saturating_sub(small.iter().sum());
    let mut left = budget;
    let mut large = Vec::new();
    for (size, per_mille) in LARGE_CLASSES {
        let count = ((budget / 1000 * per_mille + size / 2) / size).min(left / size);
        large.extend(std::iter::repeat_n(size, morsa_core::convert::saturating_usize(count)));
        left -= count * size;
    }
    large.extend(std::iter::repeat_n(1 << 20, morsa_core::convert::saturating_usize(left >> 20)));
    (large, small)
}

/// Stores a blob of each size (distinct contents, told apart by their tags from `first_tag`
/// on), each uploaded to every node before the next; answers their IDs and sizes.
pub(crate) fn store_all(
    runtime: &Runtime,
    client: &Client,
    sizes: &[u64],
    first_tag: usize,
) -> anyhow::Result<Vec<(BlobId, u64)>> {
    let mut stored = Vec::with_capacity(sizes.len());
    for (tag, size) in sizes.iter().enumerate() {
        let mut blob = pseudo_random(usize::try_from(*size)?);
        for (byte, tag) in blob.iter_mut().zip((first_tag + tag).to_le_bytes()) {
            *byte ^= tag ^ 0xa5;
        }
        let outcome = runtime.block_on(client.store_blob(blob, &StoreOptions::default()))?;
        let late = runtime.block_on(client.finish_uploads(Duration::from_secs(300)));
        anyhow::ensure!(late.is_empty(), "uploads failed: {late:?}");
        stored.push((outcome.blob_id, *size));
    }
    Ok(stored)
}

struct Bench {
    config: EncodingConfig,
    runtime: Runtime,
    client: Client,
    victim_shards: usize,
}

impl Bench {
    fn store_all(&self, sizes: &[u64], first_tag: usize) -> anyhow::Result<Vec<(BlobId, u64)>> {
        store_all(&self.runtime, &self.client, sizes, first_tag)
    }

    /// Slivers and bytes of the victim's shards over `blobs`.
    fn must_rebuild(&self, blobs: &[(BlobId, u64)]) -> anyhow::Result<(u64, u64)> {
        let shards = u64::try_from(self.victim_shards)?;
        let pair_symbols = u64::try_from(self.config.kp() + self.config.ks())?;
        let mut bytes = 0;
        for (_, size) in blobs {
            bytes += shards * pair_symbols * u64::from(self.config.symbol_size(*size)?);
        }
        Ok((2 * shards * u64::try_from(blobs.len())?, bytes))
    }

    /// Stops the victim, deletes its data, restarts it and waits until it stores every sliver
    /// of its shards of `blobs` again. With a `reader`, reads on the quiet cluster before the
    /// wipe and in the background from the restart until the rebuild ends.
    fn wipe_and_rebuild(
        &self,
        cluster: &mut Cluster,
        blobs: &[(BlobId, u64)],
        reader: Option<&Reader>,
        quiet: bool,
    ) -> anyhow::Result<Phase> {
        let quiet_reads = reader.map(|reader| reader.quiet(&self.runtime));
        let data_dir = morsa_node::NodeConfig::load(&cluster.nodes()[VICTIM].config)?.data_dir;
        cluster.stop(VICTIM)?;
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("cannot delete {}", data_dir.display()))?;
        let started = Instant::now();
        cluster.start(VICTIM)?;
        let restart_seconds = started.elapsed().as_secs_f64();
        let background = reader.map(|reader| reader.start(&self.runtime));
        let node = NodeClient::new(&cluster.nodes()[VICTIM].url, self.config)?;
        let mut last_line = Instant::now();
        let repair = loop {
            let health = self.runtime.block_on(node.health())?;
            let events = self.runtime.block_on(self.client.system())?.event_count;
            if health.repair.caught_up && health.event_cursor >= events && self.holds_all(&node, blobs)? {
                break health.repair;
            }
            anyhow::ensure!(
                started.elapsed() < REBUILD_TIMEOUT,
                "the node did not rebuild its share within {REBUILD_TIMEOUT:?}: {:?}",
                health.repair
            );
            if !quiet && last_line.elapsed() > Duration::from_secs(10) {
                let repair = &health.repair;
                eprintln!(
                    "  {:>5.0} s: {} slivers ({} MB) rebuilt, {} queued",
                    started.elapsed().as_secs_f64(),
                    repair.rebuilt_slivers,
                    repair.rebuilt_bytes / 1_000_000,
                    repair.backlog_slivers
                );
                last_line = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let rebuild_seconds = started.elapsed().as_secs_f64();
        let reads = match (quiet_reads, background) {
            (Some(quiet), Some(background)) => {
                let during_rebuild = background.finish(&self.runtime)?;
                let p99_ratio = during_rebuild.p99_ms / quiet.p99_ms.max(1e-9);
                Some(RebuildReads { quiet, during_rebuild, p99_ratio })
            }
            _ => None,
        };
        let (must_rebuild_slivers, must_rebuild_bytes) = self.must_rebuild(blobs)?;
        let mut phase =
            phase(blobs, &repair, must_rebuild_slivers, must_rebuild_bytes, restart_seconds, rebuild_seconds);
        phase.reads = reads;
        Ok(phase)
    }

    fn holds_all(&self, node: &NodeClient, blobs: &[(BlobId, u64)]) -> anyhow::Result<bool> {
        for (blob_id, _) in blobs {
            if !self.runtime.block_on(node.blob_status(blob_id))?.fully_stored() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn phase(
    blobs: &[(BlobId, u64)],
    repair: &RepairHealth,
    must_rebuild_slivers: u64,
    must_rebuild_bytes: u64,
    restart_seconds: f64,
    rebuild_seconds: f64,
) -> Phase {
    Phase {
        blobs: blobs.len(),
        blob_bytes: blobs.iter().map(|(_, size)| size).sum(),
        must_rebuild_slivers,
        must_rebuild_bytes,
        rebuilt_slivers: repair.rebuilt_slivers,
        rebuilt_bytes: repair.rebuilt_bytes,
        fetched_bytes: repair.fetched_bytes,
        traffic_ratio: ratio(repair.fetched_bytes, repair.rebuilt_bytes),
        on_demand_slivers: repair.on_demand_slivers,
        failed_attempts: repair.failed_attempts,
        given_up_slivers: repair.given_up_slivers,
        restart_seconds,
        rebuild_seconds,
        rebuild_mb_s: megabytes(repair.rebuilt_bytes) / rebuild_seconds.max(1e-9),
        reads: None,
    }
}

pub(crate) fn megabytes(bytes: u64) -> f64 {
    morsa_core::convert::lossy_f64(bytes) / 1e6
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    megabytes(numerator) / megabytes(denominator).max(1e-9)
}

fn print(report: &RepairReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!(
        "repair: {} nodes, n = {} (kp = {}, ks = {}), the wiped node holds {} shards; stored in {:.0} s",
        report.nodes, report.shards, report.kp, report.ks, report.victim_shards, report.store_seconds
    );
    let phases = [
        ("blobs < 1 MiB", &report.small),
        ("all blobs", &report.all),
        ("all blobs, read meanwhile", &report.with_reads),
    ];
    for (name, phase) in phases {
        println!(
            "{name}: {} blobs, {:.1} MB; must rebuild {} slivers, {:.1} MB; rebuilt {} slivers, {:.1} MB, \
             fetching {:.1} MB ({:.3}x)",
            phase.blobs,
            megabytes(phase.blob_bytes),
            phase.must_rebuild_slivers,
            megabytes(phase.must_rebuild_bytes),
            phase.rebuilt_slivers,
            megabytes(phase.rebuilt_bytes),
            megabytes(phase.fetched_bytes),
            phase.traffic_ratio
        );
        println!(
            "  ready {:.1} s after the restart, everything rebuilt after {:.1} s ({:.1} MB/s); {} on demand, \
             {} failed attempts, {} given up",
            phase.restart_seconds,
            phase.rebuild_seconds,
            phase.rebuild_mb_s,
            phase.on_demand_slivers,
            phase.failed_attempts,
            phase.given_up_slivers
        );
        if let Some(reads) = &phase.reads {
            let line = |latency: &ReadLatency| {
                let cpu =
                    latency.cpu_seconds.map_or(String::new(), |seconds| format!(", {seconds:.1} s of CPU"));
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms ({} reads, {} failed{cpu})",
                    latency.p50_ms, latency.p99_ms, latency.reads, latency.failed
                )
            };
            println!(
                "  reads of 1 MiB blobs: quiet {}; during the rebuild {}; p99 {:.2}x",
                line(&reads.quiet),
                line(&reads.during_rebuild),
                reads.p99_ratio
            );
        }
    }
    println!(
        "blobs >= 1 MiB: rebuilt {:.1} MB fetching {:.1} MB ({:.3}x); classic RS repair would fetch {:.0} MB \
         ({}x)",
        megabytes(report.large_rebuilt_bytes),
        megabytes(report.large_fetched_bytes),
        report.large_traffic_ratio,
        megabytes(report.classic_rs_fetched_bytes),
        report.kp
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_spends_the_total_on_mixed_sizes() {
        let (large, small) = plan(1 << 30);
        let stored: u64 = large.iter().chain(&small).sum();
        assert!(stored <= 1 << 30 && stored > (1 << 30) - (2 << 20), "{stored}");
        for size in [256 << 20, 64 << 20, 16 << 20, 4 << 20, 1 << 20] {
            assert!(large.contains(&size), "a blob of {size} bytes");
        }
        assert!(large.iter().all(|size| *size >= 1 << 20) && small.iter().all(|size| *size < 1 << 20));
        let (large, _) = plan(16 << 20);
        assert!(!large.is_empty() && large.iter().all(|size| *size <= 16 << 20));
    }
}

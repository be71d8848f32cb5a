//! `morsa bench select`: network-aware node selection against random-by-shards selection,
//! read by read on the same blobs, on a local cluster whose nodes sit behind shaped links:
//! ten nodes of four shards each (n = 40, so a 16 MiB blob is one blob), four at 1 ms (one of them thin: 20 Mbit/s), three at 30 ms
//! and three at 120 ms of one-way delay.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use morsa_api::client::scoring::ScoreInputs;
use morsa_client::{Client, ClientConfig, ReadStats, RequestOutcome, Selection, StoreOptions};
use morsa_cluster::netem::LinkShape;
use serde::Serialize;

use crate::runtime;

/// Options of `morsa bench select`.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Reads of each blob with each selection.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=1000))]
    reads: u32,
    /// The cluster's directory (default: a temporary one).
    #[arg(long, value_name = "DIR")]
    dir: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The delayed cluster: node index → link.
fn links() -> BTreeMap<usize, LinkShape> {
    let delay = |delay_ms| LinkShape { delay_ms, ..LinkShape::default() };
    let mut links: BTreeMap<usize, LinkShape> = (0..4).map(|index| (index, delay(1))).collect();
    links.extend((4..7).map(|index| (index, delay(30))));
    links.extend((7..10).map(|index| (index, delay(120))));
    links.insert(3, LinkShape { rate_bytes_per_second: Some(LinkShape::mbit_per_second(20)), ..delay(1) });
    links
}

/// One selection's reads of one blob.
#[derive(Debug, Default, Serialize)]
struct Series {
    seconds: Vec<f64>,
    hedges: usize,
    used_bytes: u64,
    wasted_bytes: u64,
    cancelled_bytes: u64,
    /// The slowest read: its position in the series (0 first), its time in milliseconds, its
    /// requests (what the tail waited on) and what the client knew of the nodes.
    slowest: Option<(usize, f64, ReadStats, Known)>,
}

/// What a client knew of each node (by address) just before a read and just after it.
#[derive(Debug, Clone, Default, Serialize)]
struct Known {
    before: BTreeMap<String, ScoreInputs>,
    after: BTreeMap<String, ScoreInputs>,
}

impl Series {
    fn add(&mut self, elapsed: Duration, stats: &ReadStats, known: Known) {
        let millis = elapsed.as_secs_f64() * 1e3;
        let position = self.seconds.len();
        self.seconds.push(elapsed.as_secs_f64());
        self.hedges += stats.hedges;
        self.used_bytes += stats.used_bytes;
        self.wasted_bytes += stats.wasted_bytes;
        self.cancelled_bytes += stats.cancelled_bytes;
        if self.slowest.as_ref().is_none_or(|(_, slowest, _, _)| millis > *slowest) {
            self.slowest = Some((position, millis, stats.clone(), known));
        }
    }

    fn summary(&self, size: u64, node_names: &BTreeMap<String, String>) -> Summary {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least `percent`% of the values at or below it.
        let at = |percent: usize| {
            let rank = (sorted.len() * percent).div_ceil(100).max(1);
            sorted.get(rank - 1).copied().unwrap_or_default() * 1e3
        };
        let total: f64 = self.seconds.iter().sum();
        let reads = morsa_core::convert::lossy_f64(morsa_core::convert::saturating_u64(self.seconds.len()));
        let used = morsa_core::convert::lossy_f64(self.used_bytes.max(1));
        Summary {
            p50_ms: at(50),
            p99_ms: at(99),
            mb_per_s: morsa_core::convert::lossy_f64(size) * reads / total.max(1e-9) / 1e6,
            hedges: self.hedges,
            wasted_fraction: morsa_core::convert::lossy_f64(self.wasted_bytes + self.cancelled_bytes) / used,
            used_bytes: self.used_bytes,
            wasted_bytes: self.wasted_bytes,
            cancelled_bytes: self.cancelled_bytes,
            reads_ms: self.seconds.iter().map(|seconds| seconds * 1e3).collect(),
            slowest_read: self.slowest.as_ref().map(|(position, millis, stats, known)| SlowestRead {
                read: *position,
                millis: *millis,
                waited_on: waited_on(stats, known, node_names),
                metadata_from: stats
                    .metadata_from
                    .as_ref()
                    .map(|address| node_names.get(address).cloned().unwrap_or_else(|| address.clone())),
                stats: stats.clone(),
            }),
        }
    }
}

/// The slowest read of a series, with the requests it made.
#[derive(Debug, Serialize)]
struct SlowestRead {
    /// Its position in the series, 0 for the first.
    read: usize,
    millis: f64,
    /// Per node asked, in the order of their slowest request: what it was asked and how long.
    waited_on: Vec<NodeRequests>,
    /// The node whose metadata was used (`node I`, or its address).
    metadata_from: Option<String>,
    stats: ReadStats,
}

/// What one read asked of one node.
#[derive(Debug, Serialize)]
struct NodeRequests {
    /// `node I` (the cluster's index), or the address.
    node: String,
    asked: usize,
    used: usize,
    cancelled: usize,
    hedges: usize,
    /// The longest of its requests, milliseconds from sending to its end.
    slowest_ms: u64,
    /// What the client knew of the node just before the read (`None`: a network-aware client
    /// only) and just after it.
    known_before: Option<ScoreInputs>,
    known_after: Option<ScoreInputs>,
}

/// The nodes `stats` asked for slivers, named by `node_names` (address → name), the node
/// whose request took longest last.
fn waited_on(stats: &ReadStats, known: &Known, node_names: &BTreeMap<String, String>) -> Vec<NodeRequests> {
    let mut nodes: BTreeMap<&str, NodeRequests> = BTreeMap::new();
    for request in &stats.requests {
        let entry = nodes.entry(request.node.as_str()).or_insert_with(|| NodeRequests {
            node: node_names.get(&request.node).cloned().unwrap_or_else(|| request.node.clone()),
            asked: 0,
            used: 0,
            cancelled: 0,
            hedges: 0,
            slowest_ms: 0,
            known_before: known.before.get(&request.node).copied(),
            known_after: known.after.get(&request.node).copied(),
        });
        entry.asked += 1;
        entry.used += usize::from(request.outcome == RequestOutcome::Used);
        entry.cancelled += usize::from(request.outcome == RequestOutcome::Cancelled);
        entry.hedges += usize::from(request.hedge);
        entry.slowest_ms = entry.slowest_ms.max(request.millis);
    }
    let mut nodes: Vec<NodeRequests> = nodes.into_values().collect();
    nodes.sort_by_key(|node| node.slowest_ms);
    nodes
}

impl SlowestRead {
    /// Two lines: its position and time, the node its slowest used sliver came from, and its
    /// hedges; then per node asked what it was asked and how long its slowest request took.
    fn describe(&self) -> String {
        let last_used = self
            .stats
            .requests
            .iter()
            .filter(|request| request.outcome == RequestOutcome::Used)
            .max_by_key(|request| request.millis);
        let waited = last_used.map_or_else(String::new, |request| {
            format!(", its last sliver from {} after {} ms", request.node, request.millis)
        });
        let nodes: Vec<String> = self
            .waited_on
            .iter()
            .map(|node| {
                let hedges =
                    if node.hedges > 0 { format!(", {} hedged", node.hedges) } else { String::new() };
                let known = match (node.known_before, node.known_after) {
                    (Some(before), Some(after)) => {
                        format!(" (knew {}, then {})", describe_known(&before), describe_known(&after))
                    }
                    _ => String::new(),
                };
                format!(
                    "{}: {} used/{} asked{hedges}, ≤ {} ms{known}",
                    node.node, node.used, node.asked, node.slowest_ms
                )
            })
            .collect();
        let phases = self.stats.phases;
        let ms = |micros: u64| morsa_core::convert::lossy_f64(micros) / 1e3;
        format!(
            "slowest read: #{} of the series, {:.1} ms (metadata from {}{waited}, {} requests, {} hedges)\n      waited on: {}\n      phases: committee {:.1} ms, certified {:.1} ms and metadata {:.1} ms (together), slivers {:.1} ms, decode {:.1} ms, scores kept {:.1} ms",
            self.read + 1,
            self.millis,
            self.metadata_from.as_deref().unwrap_or("-"),
            self.stats.requests.len(),
            self.stats.hedges,
            nodes.join("; "),
            ms(phases.committee_us),
            ms(phases.certified_us),
            ms(phases.metadata_us),
            ms(phases.slivers_us),
            ms(phases.decode_us),
            ms(phases.scores_kept_us),
        )
    }
}

/// What a client knew of a node, briefly: latency ± spread, bandwidth, samples.
fn describe_known(inputs: &ScoreInputs) -> String {
    let bandwidth = inputs.bandwidth_mbit.map_or_else(|| "?".to_owned(), |mbit| format!("{mbit:.0}"));
    format!(
        "{:.1}±{:.1} ms, {bandwidth} Mbit/s, {} samples",
        inputs.latency_ms, inputs.spread_ms, inputs.samples
    )
}

/// What a series comes to.
#[derive(Debug, Serialize)]
struct Summary {
    p50_ms: f64,
    p99_ms: f64,
    mb_per_s: f64,
    hedges: usize,
    /// Wasted and cancelled bytes over the bytes used: an upper bound of the waste (a
    /// cancelled request counts its whole sliver).
    wasted_fraction: f64,
    used_bytes: u64,
    wasted_bytes: u64,
    cancelled_bytes: u64,
    /// Every read's time, milliseconds, in order.
    reads_ms: Vec<f64>,
    slowest_read: Option<SlowestRead>,
}

#[derive(Debug, Serialize)]
struct SizeReport {
    size: u64,
    network_aware: Summary,
    random_by_shards: Summary,
    p50_speedup: f64,
    p99_speedup: f64,
}

/// Runs the benchmark.
pub fn run(args: &SelectArgs) -> anyhow::Result<()> {
    let (temp, mut cluster) = super::local_shaped_cluster(10, 40, args.dir.as_deref(), links())?;
    let mut config = ClientConfig::load(&cluster.client_config_path())?;
    config.node_scores_file = Some(temp.path().join("node-scores.json"));
    let runtime = runtime()?;
    let aware = runtime.block_on(Client::connect(&config))?;
    let random = runtime.block_on(Client::connect(&config))?.with_selection(Selection::RandomByShards);
    let sizes = [1u64 << 20, 16 << 20];
    let mut blobs = Vec::new();
    for (seed, size) in sizes.iter().enumerate() {
        let data = morsa_cluster::sample::bytes(usize::try_from(*size)?, u64::try_from(seed)? + 7);
        let stored = runtime.block_on(aware.store_blob(data.clone(), &StoreOptions::default()))?;
        let late = runtime.block_on(aware.finish_uploads(Duration::from_secs(300)));
        anyhow::ensure!(late.is_empty(), "uploads failed: {late:?}");
        blobs.push((stored.blob_id, data));
    }
    // What `morsa health --latency` does: one probe of each node, for the aware client.
    runtime.block_on(aware.probe_node_scores(1 << 20))?;
    let mut series: Vec<[Series; 2]> = sizes.iter().map(|_| [Series::default(), Series::default()]).collect();
    for read in 0..args.reads {
        for ((blob_id, data), pair) in blobs.iter().zip(&mut series) {
            // Alternate which selection goes first, so neither always reads a warmer cache.
            let order = if read % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let client = if which == 0 { &aware } else { &random };
                let sliver = data.len() / aware.encoding().kp().max(1);
                let known = |client: &Client| -> BTreeMap<String, ScoreInputs> {
                    client
                        .node_score_inputs(morsa_core::convert::saturating_u64(sliver))
                        .into_iter()
                        .map(|node| (node.address, node.inputs))
                        .collect()
                };
                let before = if which == 0 { known(client) } else { BTreeMap::new() };
                let started = Instant::now();
                let outcome = runtime.block_on(client.read_blob(blob_id))?;
                let elapsed = started.elapsed();
                let after = if which == 0 { known(client) } else { BTreeMap::new() };
                anyhow::ensure!(outcome.data == *data, "a blob read back differs");
                pair[which].add(elapsed, &outcome.stats, Known { before, after });
            }
        }
    }
    let node_names: BTreeMap<String, String> = cluster
        .nodes()
        .iter()
        .flat_map(|node| {
            let name = format!("node {}", node.index);
            let bare = node.url.trim_start_matches("http://").to_owned();
            [(node.url.clone(), name.clone()), (bare, name)]
        })
        .collect();
    cluster.shutdown().context("stopping the cluster")?;
    let reports: Vec<SizeReport> = sizes
        .iter()
        .zip(&series)
        .map(|(size, [aware, random])| {
            let (aware, random) = (aware.summary(*size, &node_names), random.summary(*size, &node_names));
            SizeReport {
                size: *size,
                p50_speedup: random.p50_ms / aware.p50_ms.max(1e-9),
                p99_speedup: random.p99_ms / aware.p99_ms.max(1e-9),
                network_aware: aware,
                random_by_shards: random,
            }
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    println!(
        "select: 10 nodes (4 at 1 ms, one of them 20 Mbit/s; 3 at 30 ms; 3 at 120 ms one-way), n = 40, {} reads each",
        args.reads
    );
    for report in &reports {
        println!("{} MiB:", report.size >> 20);
        for (name, summary) in
            [("network-aware", &report.network_aware), ("random-by-shards", &report.random_by_shards)]
        {
            println!(
                "  {name:<17} p50 {:>8.1} ms  p99 {:>8.1} ms  {:>7.1} MB/s  hedges {:>3}  wasted ≤ {:>5.1}% of bytes used",
                summary.p50_ms,
                summary.p99_ms,
                summary.mb_per_s,
                summary.hedges,
                summary.wasted_fraction * 100.0
            );
            let reads: Vec<String> = summary.reads_ms.iter().map(|ms| format!("{ms:.0}")).collect();
            println!("    reads (ms, in order): {}", reads.join(" "));
            if let Some(slowest) = &summary.slowest_read {
                println!("    {}", slowest.describe());
            }
        }
        println!("  speed-up: p50 {:.1}x, p99 {:.1}x", report.p50_speedup, report.p99_speedup);
    }
    Ok(())
}

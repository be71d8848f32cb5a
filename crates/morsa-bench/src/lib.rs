//! `morsa bench`: throughput measurements printed for people and scripts — the codec, one
//! storage node's ingest, store and read through a local cluster, self-healing traffic, the
//! replicated coordinator's commit rate and failover, restic through the S3 gateway, and the
//! cost of storage challenges.
//!
//! It owns the measurements and their reports; the `morsa` binary only parses the command
//! line and installs logging. Benchmarks reach into the node and the store where a
//! measurement needs them (an in-process node, a wiped data directory); nothing here is used
//! by the running system.

mod challenges;
mod cluster;
mod coord;
mod gateway;
mod moves;
mod node;
mod rebuild_reads;
mod repair;
mod select;
mod store_phases;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use redstuff::{EncodingConfig, Sliver};
use serde::Serialize;

/// What `morsa bench` can measure.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Encode and decode throughput of the RedStuff codec, against raw Reed–Solomon.
    Codec(CodecArgs),
    /// Sliver ingest into one in-process storage node over HTTP on loopback, with
    /// verification and durable group commits.
    Node(node::NodeArgs),
    /// Store and read through a local cluster of real processes (10 nodes, n = 1000).
    Cluster(cluster::ClusterArgs),
    /// Committed transactions per second and latency of the coordinator with 1 and 3
    /// replicas, and the failover time after the leader's SIGKILL.
    Coord(coord::CoordArgs),
    /// Wipe one node of a local cluster holding mixed-size blobs (10 nodes, n = 1000, 1 GiB)
    /// and measure the traffic and time of rebuilding its share.
    Repair(repair::RepairArgs),
    /// Move one node's whole share to the others when it leaves, by pull from it and, for
    /// another node that leaves and is killed, by recovery, on one local cluster (10 nodes,
    /// n = 1000, 1 GiB): time and bytes of each.
    Move(moves::MoveArgs),
    /// restic backup and restore through the S3 gateway of a local cluster (10 nodes,
    /// n = 1000, a 1 GiB tree) against restic to a local directory, and the gateway's peak
    /// memory during a 1 GiB single PUT.
    Gateway(gateway::GatewayArgs),
    /// Network-aware node selection against random-by-shards, read by read, on a local
    /// cluster of 10 nodes behind shaped links (1, 30 and 120 ms; one thin node).
    Select(select::SelectArgs),
    /// What storage challenges cost a node: deriving a round's challenges, answering them from
    /// real encoded slivers, verifying the answers, and an answer's size (n = 1000 by default).
    Challenges(challenges::ChallengesArgs),
}

/// Options of `morsa bench codec`.
#[derive(Debug, Args)]
pub struct CodecArgs {
    /// Number of shards n.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(4..))]
    n_shards: u16,
    /// Blob size in bytes (pseudo-random content).
    #[arg(long, default_value_t = 256 << 20)]
    size: u64,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// A tokio runtime for one benchmark.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Runs one benchmark.
pub fn run(command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Codec(args) => codec(args),
        BenchCommand::Node(args) => node::run(args),
        BenchCommand::Cluster(args) => cluster::run(args),
        BenchCommand::Repair(args) => repair::run(args),
        BenchCommand::Move(args) => moves::run(args),
        BenchCommand::Coord(args) => coord::run(args),
        BenchCommand::Gateway(args) => gateway::run(args),
        BenchCommand::Select(args) => select::run(args),
        BenchCommand::Challenges(args) => challenges::run(args),
    }
}

#[derive(Debug, Serialize)]
struct CodecReport {
    n_shards: u16,
    size: u64,
    symbol_size: u16,
    runs: u32,
    threads: usize,
    /// The leaf and node hash kernel in use (`redstuff::hash::Kernel`, e.g. `Avx2x4`; set
    /// `MORSA_HASH_KERNEL=portable` to measure `blake2b_simd`'s instead).
    hash_kernel: String,
    baseline_rs_encode_mb_s: f64,
    encode_mb_s: f64,
    first_encode_mb_s: f64,
    encode_vs_baseline: f64,
    metadata_only_mb_s: f64,
    decode_systematic_mb_s: f64,
    decode_non_systematic_mb_s: f64,
    verify_sliver_mb_s: f64,
    verified_bytes: u64,
    encode_1kib_ms: f64,
    encode_peak_rss_bytes: Option<u64>,
}

fn codec(args: &CodecArgs) -> anyhow::Result<()> {
    let config = EncodingConfig::new(args.n_shards)?;
    let symbol_size = config.symbol_size(args.size)?;
    let size = usize::try_from(args.size).context("blob size does not fit in memory")?;
    let blob = pseudo_random(size);
    let runs = args.runs;

    // The first encode runs on fresh memory, as in a process that stores one blob; its peak
    // resident memory (input included) is what encoding costs.
    reset_peak_rss();
    let first_encode = {
        let started = Instant::now();
        drop(redstuff::encode(config, &blob));
        started.elapsed()
    };
    let encode_peak_rss = peak_rss();

    let baseline = median(runs, || raw_rs_encode(config, &blob));
    let encode = median(runs, || {
        let started = Instant::now();
        drop(redstuff::encode(config, &blob));
        started.elapsed()
    });
    let metadata_only = median(runs, || {
        let started = Instant::now();
        drop(redstuff::compute_metadata(config, &blob));
        started.elapsed()
    });

    let encoded = redstuff::encode(config, &blob)?;
    let metadata = &encoded.metadata;
    let kp = config.kp();
    let primary = |range: std::ops::Range<usize>| -> Vec<Sliver> {
        encoded.pairs[range].iter().map(|pair| pair.primary.clone()).collect()
    };
    let systematic = primary(0..kp);
    let non_systematic = primary(config.n_shards() - kp..config.n_shards());
    let decode_systematic = median(runs, || timed_decode(metadata, &systematic, &blob));
    let decode_non_systematic = median(runs, || timed_decode(metadata, &non_systematic, &blob));
    let verify = median(runs, || {
        let started = Instant::now();
        for sliver in &non_systematic {
            metadata
                .verify_sliver(redstuff::SliverType::Primary, sliver)
                .expect("slivers from the encoder verify");
        }
        started.elapsed()
    });
    let verified_bytes = non_systematic.iter().map(|sliver| sliver.symbols.len()).sum::<usize>();
    drop(encoded);

    let small = pseudo_random(1024);
    let encode_small = median(runs.max(5), || {
        let started = Instant::now();
        drop(redstuff::encode(config, &small));
        started.elapsed()
    });

    let report = CodecReport {
        n_shards: args.n_shards,
        size: args.size,
        symbol_size,
        runs,
        threads: rayon::current_num_threads(),
        hash_kernel: format!("{:?}", redstuff::hash::Kernel::active()),
        baseline_rs_encode_mb_s: mb_per_s(size, baseline),
        encode_mb_s: mb_per_s(size, encode),
        first_encode_mb_s: mb_per_s(size, first_encode),
        encode_vs_baseline: baseline.as_secs_f64() / encode.as_secs_f64(),
        metadata_only_mb_s: mb_per_s(size, metadata_only),
        decode_systematic_mb_s: mb_per_s(size, decode_systematic),
        decode_non_systematic_mb_s: mb_per_s(size, decode_non_systematic),
        verify_sliver_mb_s: mb_per_s(verified_bytes, verify),
        verified_bytes: u64::try_from(verified_bytes)?,
        encode_1kib_ms: encode_small.as_secs_f64() * 1e3,
        encode_peak_rss_bytes: encode_peak_rss,
    };
    print_report(&report, args.json)
}

fn print_report(report: &CodecReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!(
        "codec: n = {}, blob {} bytes, symbol size {}, median of {} runs on {} threads, hash kernel {}",
        report.n_shards, report.size, report.symbol_size, report.runs, report.threads, report.hash_kernel
    );
    let size = report.size;
    let rows = [
        ("baseline: raw RS encode (1D, same bytes)", report.baseline_rs_encode_mb_s, size),
        ("encode (slivers + metadata)", report.encode_mb_s, size),
        ("first encode, on fresh memory", report.first_encode_mb_s, size),
        ("metadata only (blob-id)", report.metadata_only_mb_s, size),
        ("decode from systematic slivers", report.decode_systematic_mb_s, size),
        ("decode from non-systematic + check", report.decode_non_systematic_mb_s, size),
        ("verify kp primary slivers", report.verify_sliver_mb_s, report.verified_bytes),
    ];
    for (what, rate, bytes) in rows {
        let millis = morsa_core::convert::lossy_f64(bytes) / 1000.0 / rate.max(1e-9);
        println!("  {what:<42} {rate:>9.1} MB/s {millis:>10.1} ms");
    }
    println!("  {:<42} {:>9.2}x", "encode time / baseline time", 1.0 / report.encode_vs_baseline);
    println!("  {:<42} {:>9.1} ms", "encode 1 KiB blob", report.encode_1kib_ms);
    if let Some(rss) = report.encode_peak_rss_bytes {
        println!(
            "  {:<42} {:>9.2}x the blob",
            "peak memory of encode (input included)",
            ratio(rss, report.size)
        );
    }
    Ok(())
}

/// A local cluster of this executable's processes with hour-long epochs, in `dir` or in a
/// temporary directory (returned, so that it lives as long as the cluster).
fn local_cluster(
    nodes: usize,
    shards: u16,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<(tempfile::TempDir, morsa_cluster::Cluster)> {
    local_shaped_cluster(nodes, shards, dir, Default::default())
}

/// [`local_cluster`] with the nodes `node_links` names behind shaped links.
fn local_shaped_cluster(
    nodes: usize,
    shards: u16,
    dir: Option<&std::path::Path>,
    node_links: std::collections::BTreeMap<usize, morsa_cluster::netem::LinkShape>,
) -> anyhow::Result<(tempfile::TempDir, morsa_cluster::Cluster)> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let spec = morsa_cluster::ClusterSpec {
        coordinators: 1,
        nodes,
        shards,
        dir: dir.map_or_else(|| temp.path().join("cluster"), std::path::Path::to_path_buf),
        epoch_duration: Duration::from_secs(3600),
        binary: std::env::current_exe().context("cannot find the morsa executable")?,
        node_links,
        zones: 0,
    };
    let cluster = morsa_cluster::Cluster::up(spec).context("the local cluster did not start")?;
    Ok((temp, cluster))
}

/// Median wall time of `runs` calls.
fn median(runs: u32, mut once: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| once()).collect();
    times.sort();
    times[times.len() / 2]
}

fn timed_decode(metadata: &redstuff::VerifiedMetadata, slivers: &[Sliver], blob: &[u8]) -> Duration {
    let started = Instant::now();
    let decoded = metadata.decode(slivers).expect("slivers from the encoder decode");
    let elapsed = started.elapsed();
    assert!(decoded == blob, "decoded blob differs from the input");
    elapsed
}

/// Classic one-dimensional Reed–Solomon over the same bytes and `n`, on both cores.
fn raw_rs_encode(config: EncodingConfig, blob: &[u8]) -> Duration {
    let started = Instant::now();
    std::hint::black_box(redstuff::baseline::raw_rs_encode(config, blob));
    started.elapsed()
}

fn pseudo_random(len: usize) -> Vec<u8> {
    morsa_cluster::sample::bytes(len, 0)
}

fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    let bytes = morsa_core::convert::lossy_f64(morsa_core::convert::saturating_u64(bytes));
    bytes / elapsed.as_secs_f64().max(1e-9) / 1e6
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    let to_f64 = |value: u64| morsa_core::convert::lossy_f64(value >> 10);
    to_f64(numerator) / to_f64(denominator.max(1024))
}

/// Resets the kernel's peak-RSS mark of this process (Linux), so the next reading covers only
/// what follows.
fn reset_peak_rss() {
    // Best effort: without /proc the report simply has no memory figure.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process (Linux `VmHWM`), if known.
fn peak_rss() -> Option<u64> {
    vm_hwm(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// CPU seconds (user and system, all threads) this process has used so far (Linux), if known.
fn process_cpu_seconds() -> Option<f64> {
    cpu_seconds_of_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The CPU seconds (fields `utime` and `stime`) of a `/proc/PID/stat` text. Linux reports them
/// in clock ticks of its fixed user-space `USER_HZ`, 100 per second.
fn cpu_seconds_of_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces: fields are counted after its closing ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(morsa_core::convert::lossy_f64(user + system) / 100.0)
}

/// The `VmHWM` (peak resident set size) of a `/proc/PID/status` text, in bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_are_read_after_the_command_name() {
        // A command name with a space and a ')' of its own; utime 250 and stime 75 ticks.
        let stat = "4242 (a b) c) S 1 4242 4242 0 -1 4194304 121 0 0 0 250 75 0 0 20 0 1 0 3440447";
        assert_eq!(cpu_seconds_of_stat(stat), Some(3.25));
        assert_eq!(cpu_seconds_of_stat("4242 (cut short) S 1 2"), None);
        assert!(process_cpu_seconds().is_some_and(|seconds| seconds >= 0.0));
    }
}

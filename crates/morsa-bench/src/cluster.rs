//! `morsa bench cluster`: store and read through a local cluster of real processes, the
//! way a user does: a 256 MiB blob (against the time of encoding it in this process), a
//! 1 KiB blob, 4 KiB range reads, and a batch of 64 KiB files stored from one client at once
//! (the pipelined store of `morsa store FILE...`); with
//! `--encrypt`, the large blob and the range reads again encrypted with age.
//!
//! The coordinator, the nodes and the client share this machine's cores; the nodes are
//! this same executable (build with `--release`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use morsa_client::store_many::DEFAULT_JOBS;
use morsa_client::{Client, ClientConfig, Crypto, InFlight, Source, StoreOptions, StoredFile};
use serde::Serialize;

use crate::pseudo_random;
use crate::runtime;
use crate::store_phases::PhasesMs;

/// Options of `morsa bench cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Storage nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Shards n.
    #[arg(long, default_value_t = 1000)]
    shards: u16,
    /// Size of the large blob in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    size: u64,
    /// Runs of each measurement (each run stores new data); medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Where the cluster lives (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Small blobs stored at once from one client after the runs (0: none).
    #[arg(long, default_value_t = 100)]
    small_stores: usize,
    /// Size of each of those small blobs in bytes.
    #[arg(long, default_value_t = 64 << 10)]
    small_size: usize,
    /// How many of those stores are in flight at once (default: as `morsa store --jobs`).
    #[arg(long, default_value_t = default_jobs(), value_parser = clap::value_parser!(u16).range(1..=256))]
    small_concurrency: u16,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
    /// Also store and read the same sizes encrypted with age (to a fresh X25519 key), in the
    /// same run, and report the ratio to the plaintext numbers.
    #[arg(long)]
    encrypt: bool,
}

/// The client's default number of stores at once, as an option's value.
fn default_jobs() -> u16 {
    u16::try_from(DEFAULT_JOBS).unwrap_or(u16::MAX)
}

/// The age-encrypted pass of `--encrypt`: its timings include encrypting and decrypting.
#[derive(Debug, Serialize)]
struct EncryptedReport {
    store_mb_s: f64,
    read_mb_s: f64,
    range_4kib_ms: f64,
    /// Encrypted over plaintext throughput (1.0: encryption costs nothing).
    store_ratio: f64,
    read_ratio: f64,
    /// Opening the read blob alone (part of the read time): the client's opener (in place,
    /// chunks in parallel).
    open_ms: f64,
    /// Opening the same bytes with the `age` crate's streaming reader, for comparison (not
    /// part of any other time).
    age_reader_ms: f64,
}

#[derive(Debug, Serialize)]
struct ClusterReport {
    nodes: usize,
    shards: u16,
    size: u64,
    runs: u32,
    /// Encoding the large blob alone in this process, before each store (seconds).
    encode_seconds: Vec<f64>,
    /// Blob size over the time from the start to certification.
    store_mb_s: f64,
    /// Store to certified over encoding the same blob, per run; median (issue 18: ≤ 2).
    store_over_encode: f64,
    /// Until every node has its slivers over encoding; median (issue 18: ≤ 2.5).
    store_all_nodes_over_encode: f64,
    /// Blob size over the time until every node acknowledged every sliver.
    store_all_nodes_mb_s: f64,
    read_mb_s: f64,
    store_seconds: Vec<f64>,
    store_all_nodes_seconds: Vec<f64>,
    read_seconds: Vec<f64>,
    store_1kib_ms: f64,
    /// Where the 1 KiB stores' time went (medians per phase).
    store_1kib_phases_ms: PhasesMs,
    read_1kib_ms: f64,
    range_4kib_ms: f64,
    range_4kib_ms_all: Vec<f64>,
    /// The batch of small stores, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    small_stores: Option<SmallStores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted: Option<EncryptedReport>,
}

/// Many small blobs stored at once from one client.
#[derive(Debug, Serialize)]
struct SmallStores {
    count: usize,
    size: usize,
    concurrency: u16,
    seconds: f64,
    /// Stores certified per second over the batch (issue 18: ≥ 20 for 100 × 64 KiB).
    stores_per_second: f64,
    /// Each store's time to certified, median and slowest (ms).
    store_ms_median: f64,
    store_ms_max: f64,
    /// Where the stores' time went (medians per phase).
    phases_ms: PhasesMs,
    /// Coordinator transactions the client sent for the batch, and the commands they carried
    /// (three per store: commands of concurrent stores share transactions).
    transactions: u64,
    commands: u64,
}

/// Runs the benchmark.
pub fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    let (_temp, mut cluster) = super::local_cluster(args.nodes, args.shards, args.dir.as_deref())?;
    let config = ClientConfig::load(&cluster.client_config_path())?;
    let runtime = runtime()?;
    let client = runtime.block_on(Client::connect(&config))?;
    let size = usize::try_from(args.size).context("the size does not fit in memory")?;
    let options = StoreOptions::default();

    let (mut store_seconds, mut read_seconds, mut ranges) = (Vec::new(), Vec::new(), Vec::new());
    let (mut all_nodes_seconds, mut encode_seconds) = (Vec::new(), Vec::new());
    let encoding = client.encoding();
    let (mut store_small, mut read_small, mut small_phases) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.runs {
        let mut blob = pseudo_random(size);
        tag(&mut blob, run);
        let started = Instant::now();
        drop(redstuff::encode(encoding, &blob)?);
        encode_seconds.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let stored = runtime.block_on(client.store_blob(blob.clone(), &options))?;
        store_seconds.push(started.elapsed().as_secs_f64());
        let late = runtime.block_on(client.finish_uploads(Duration::from_secs(120)));
        all_nodes_seconds.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(late.is_empty(), "uploads failed: {late:?}");
        let started = Instant::now();
        let read = runtime.block_on(client.read_blob(&stored.blob_id))?;
        read_seconds.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(read.data == blob, "the blob read back differs");
        drop(read);
        for probe in 0..5u64 {
            let start = (args.size / 7 * (probe + 1)).min(args.size.saturating_sub(4096));
            let range = start..(start + 4096).min(args.size);
            let started = Instant::now();
            let part = runtime.block_on(client.read_blob_range(&stored.blob_id, range.clone()))?;
            ranges.push(started.elapsed().as_secs_f64() * 1e3);
            let (from, to) = (usize::try_from(range.start)?, usize::try_from(range.end)?);
            anyhow::ensure!(part.data == blob[from..to], "a range read differs");
        }
        let mut small = pseudo_random(1024);
        tag(&mut small, run + 1000);
        let started = Instant::now();
        let stored = runtime.block_on(client.store_blob(small.clone(), &options))?;
        store_small.push(started.elapsed().as_secs_f64() * 1e3);
        small_phases.push(stored.timings);
        let late = runtime.block_on(client.finish_uploads(Duration::from_secs(60)));
        anyhow::ensure!(late.is_empty(), "uploads failed: {late:?}");
        let started = Instant::now();
        let read = runtime.block_on(client.read_blob(&stored.blob_id))?;
        read_small.push(started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(read.data == small, "the small blob read back differs");
    }
    let small_stores = match args.small_stores {
        0 => None,
        count => {
            Some(runtime.block_on(small_batch(&client, count, args.small_size, args.small_concurrency))?)
        }
    };
    let mb = args.size as f64 / 1e6;
    let encrypted = match args.encrypt {
        true => {
            let pass = encrypted_pass(&runtime, client, args)?;
            let (store_mb_s, read_mb_s) = (mb / median(&pass.stores), mb / median(&pass.reads));
            Some(EncryptedReport {
                store_mb_s,
                read_mb_s,
                range_4kib_ms: median(&pass.ranges),
                open_ms: median(&pass.opens),
                age_reader_ms: median(&pass.age_reader),
                store_ratio: store_mb_s * median(&store_seconds) / mb,
                read_ratio: read_mb_s * median(&read_seconds) / mb,
            })
        }
        false => None,
    };
    cluster.shutdown().context("stopping the cluster")?;

    let report = ClusterReport {
        nodes: args.nodes,
        shards: args.shards,
        size: args.size,
        runs: args.runs,
        store_mb_s: mb / median(&store_seconds),
        store_over_encode: median(&ratios(&store_seconds, &encode_seconds)),
        store_all_nodes_over_encode: median(&ratios(&all_nodes_seconds, &encode_seconds)),
        encode_seconds,
        store_all_nodes_mb_s: mb / median(&all_nodes_seconds),
        read_mb_s: mb / median(&read_seconds),
        store_seconds,
        store_all_nodes_seconds: all_nodes_seconds,
        read_seconds,
        store_1kib_ms: median(&store_small),
        store_1kib_phases_ms: PhasesMs::median_of(&small_phases),
        read_1kib_ms: median(&read_small),
        range_4kib_ms: median(&ranges),
        range_4kib_ms_all: ranges,
        small_stores,
        encrypted,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("cluster: {} nodes, n = {}, {} runs (medians)", report.nodes, report.shards, report.runs);
        println!(
            "store {} MB: {:.1} MB/s to certified, {:.1} MB/s until every node has its slivers",
            mb, report.store_mb_s, report.store_all_nodes_mb_s
        );
        println!(
            "      encoding it alone: {:.2} s; store / encode {:.2}x to certified, {:.2}x until every node",
            median(&report.encode_seconds),
            report.store_over_encode,
            report.store_all_nodes_over_encode
        );
        println!("read  {} MB: {:.1} MB/s", mb, report.read_mb_s);
        println!("store 1 KiB: {:.0} ms; read 1 KiB: {:.0} ms", report.store_1kib_ms, report.read_1kib_ms);
        println!("      where a 1 KiB store's time goes (medians): {}", report.store_1kib_phases_ms);
        println!("4 KiB range read, complete answer: {:.1} ms", report.range_4kib_ms);
        if let Some(small) = &report.small_stores {
            println!(
                "{} stores of {} bytes, {} at once: {:.1} stores/s ({:.2} s; each {:.0} ms median, {:.0} ms slowest)",
                small.count,
                small.size,
                small.concurrency,
                small.stores_per_second,
                small.seconds,
                small.store_ms_median,
                small.store_ms_max
            );
            println!("      where each store's time goes (medians): {}", small.phases_ms);
            println!(
                "      coordinator: {} transactions carried the {} commands",
                small.transactions, small.commands
            );
        }
        if let Some(encrypted) = &report.encrypted {
            println!(
                "encrypted (age): store {:.1} MB/s ({:.2}x), read {:.1} MB/s ({:.2}x), 4 KiB range {:.1} ms; \
                 opening the read blob {:.0} ms (the age crate's reader: {:.0} ms)",
                encrypted.store_mb_s,
                encrypted.store_ratio,
                encrypted.read_mb_s,
                encrypted.read_ratio,
                encrypted.range_4kib_ms,
                encrypted.open_ms,
                encrypted.age_reader_ms
            );
        }
    }
    Ok(())
}

/// Stores `count` distinct files of `size` bytes from one client, `jobs` at a time, as
/// `morsa store FILE...` does (the same [`Client::store_files`]), and reads each back (after
/// the clock stops) to check it. The files are written before the clock starts.
async fn small_batch(client: &Client, count: usize, size: usize, jobs: u16) -> anyhow::Result<SmallStores> {
    use futures_util::StreamExt as _;
    let dir = tempfile::tempdir().context("a directory for the small files")?;
    let mut files = Vec::with_capacity(count);
    for index in 0..count {
        let mut blob = pseudo_random(size);
        tag(&mut blob, u32::try_from(index).unwrap_or(u32::MAX).saturating_add(3000));
        let path = dir.path().join(format!("small-{index}"));
        std::fs::write(&path, &blob).with_context(|| format!("writing {}", path.display()))?;
        files.push((path, blob));
    }
    let sources = files.iter().map(|(path, _)| Source::File(path.clone())).collect();
    let options = StoreOptions::default();
    let limits = InFlight { jobs: usize::from(jobs), ..InFlight::default() };
    let sent_before = client.transaction_stats();
    let started = Instant::now();
    let stored: Vec<StoredFile> = client.store_files(sources, &options, limits).collect().await;
    let seconds = started.elapsed().as_secs_f64();
    let sent = client.transaction_stats();
    let late = client.finish_uploads(Duration::from_secs(120)).await;
    anyhow::ensure!(late.is_empty(), "uploads failed: {late:?}");
    let mut times = Vec::with_capacity(stored.len());
    let mut phases = Vec::with_capacity(stored.len());
    for StoredFile { index, outcome, elapsed } in stored {
        let (path, blob) = &files[index];
        let outcome = outcome.with_context(|| format!("storing {}", path.display()))?;
        times.push(elapsed.as_secs_f64() * 1e3);
        phases.extend(outcome.blobs.iter().map(|blob| blob.timings));
        let read = client.read_blob(&outcome.blob_id).await?;
        anyhow::ensure!(read.data == *blob, "a small blob read back differs");
    }
    Ok(SmallStores {
        count,
        size,
        concurrency: jobs,
        seconds,
        stores_per_second: count as f64 / seconds,
        store_ms_median: median(&times),
        store_ms_max: times.iter().copied().fold(0.0, f64::max),
        phases_ms: PhasesMs::median_of(&phases),
        transactions: sent.transactions.saturating_sub(sent_before.transactions),
        commands: sent.commands.saturating_sub(sent_before.commands),
    })
}

/// `numerators[i] / denominators[i]` for each run.
fn ratios(numerators: &[f64], denominators: &[f64]) -> Vec<f64> {
    numerators.iter().zip(denominators).map(|(n, d)| n / d).collect()
}

/// The times of the encrypted pass, one per run (ranges: five per run).
struct EncryptedTimes {
    /// Encrypt, then store to certified (seconds).
    stores: Vec<f64>,
    /// Read, then open (seconds).
    reads: Vec<f64>,
    /// 4 KiB range reads (ms).
    ranges: Vec<f64>,
    /// The opening part of each read (ms).
    opens: Vec<f64>,
    /// The age crate's reader on the same bytes (ms).
    age_reader: Vec<f64>,
}

/// Stores and reads `args.size` bytes sealed with age, `args.runs` times, and times each step.
fn encrypted_pass(
    runtime: &tokio::runtime::Runtime,
    client: Client,
    args: &ClusterArgs,
) -> anyhow::Result<EncryptedTimes> {
    let identity = age::x25519::Identity::generate();
    let crypto = Crypto::new(Some(identity.to_public()), vec![identity]);
    let client = client.with_crypto(crypto.clone());
    let size = usize::try_from(args.size).context("the size does not fit in memory")?;
    let mut times = EncryptedTimes {
        stores: Vec::new(),
        reads: Vec::new(),
        ranges: Vec::new(),
        opens: Vec::new(),
        age_reader: Vec::new(),
    };
    for run in 0..args.runs {
        let mut blob = pseudo_random(size);
        tag(&mut blob, run + 2000);
        let started = Instant::now();
        let sealed = crypto.seal(&blob)?;
        let stored = runtime.block_on(client.store_blob(sealed, &StoreOptions::default()))?;
        times.stores.push(started.elapsed().as_secs_f64());
        let late = runtime.block_on(client.finish_uploads(Duration::from_secs(120)));
        anyhow::ensure!(late.is_empty(), "uploads failed: {late:?}");
        let started = Instant::now();
        let read = runtime.block_on(client.read_blob(&stored.blob_id))?;
        let fetched = started.elapsed();
        // A copy for the age crate's reader below, made outside the timed read.
        let sealed = read.data.clone();
        let opening = Instant::now();
        let opened = crypto.open(&stored.blob_id, read.data)?;
        let open = opening.elapsed();
        times.opens.push(open.as_secs_f64() * 1e3);
        times.reads.push((fetched + open).as_secs_f64());
        anyhow::ensure!(opened == blob, "the encrypted blob read back differs");
        let opening = Instant::now();
        let mut by_age = Vec::new();
        std::io::Read::read_to_end(&mut crypto.opener(&stored.blob_id, sealed.as_slice())?, &mut by_age)?;
        times.age_reader.push(opening.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(by_age == blob, "the age crate opens the blob to other bytes");
        for probe in 0..5u64 {
            let start = (args.size / 7 * (probe + 1)).min(args.size.saturating_sub(4096));
            let range = start..(start + 4096).min(args.size);
            let started = Instant::now();
            let part = runtime.block_on(client.read_opened_range(&stored.blob_id, range.clone()))?;
            times.ranges.push(started.elapsed().as_secs_f64() * 1e3);
            let (from, to) = (usize::try_from(range.start)?, usize::try_from(range.end)?);
            anyhow::ensure!(part.data == blob[from..to], "an encrypted range read differs");
        }
    }
    Ok(times)
}

/// Makes each run's data distinct, so no run finds its blob already stored.
fn tag(blob: &mut [u8], run: u32) {
    for (byte, tag) in blob.iter_mut().zip(run.to_le_bytes()) {
        *byte ^= tag ^ 0x5a;
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

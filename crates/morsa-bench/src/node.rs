//! `morsa bench node`: sliver ingest into one storage node over HTTP on loopback, verification
//! and durable (group) commit included.
//!
//! Everything runs in this process, without a coordinator: a node in a temporary directory
//! whose committee gives it every shard, the blob registered by applying a `BlobRegistered`
//! event, the node started by `morsa_node::Listening` on `127.0.0.1:0` (following no
//! coordinator, its scrubber off), and `concurrency` client tasks that PUT
//! every sliver with the real `NodeClient`. Client, server, verification and fsync share the
//! machine's cores.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use morsa_api::coord::{Event, EventRecord};
use morsa_api::{ClientOptions, NodeClient};
use morsa_core::{BlsSecretKey, Committee, CommitteeMember, Epoch, NodeId, ObjectId, ShardIndex};
use morsa_node::{Limits, Listening, Node, RepairConfig, View};
use redstuff::{EncodedBlob, EncodingConfig, MetadataWithId, SliverType};
use serde::Serialize;

use crate::{mb_per_s, peak_rss, pseudo_random, reset_peak_rss};

/// Options of `morsa bench node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Number of shards n; the node owns all of them.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(4..))]
    n_shards: u16,
    /// Blob size in bytes (pseudo-random content); 1 GiB is 1073741824.
    #[arg(long, default_value_t = 256 << 20)]
    size: u64,
    /// Client tasks uploading slivers at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Runs, each into a fresh node; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Directory for the nodes' databases (default: the system's temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
}

/// One ingest of every sliver of the blob into a fresh node.
#[derive(Debug, Serialize)]
struct IngestRun {
    /// From the first PUT to the last acknowledgement.
    seconds: f64,
    sliver_mb_s: f64,
    /// Group commits (`put_slivers` transactions) the node made.
    commits: u64,
    largest_group: usize,
    /// Share of the run's wall time the node spent inside commits (writing and fsyncing):
    /// near 1, the single committer is the bottleneck.
    committer_busy: f64,
    /// Peak resident memory of the process during the run: the client's encoded blob, the
    /// server, the store's cache. Runs after the first also count memory the allocator kept
    /// from earlier runs.
    peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct NodeReport {
    n_shards: u16,
    size: u64,
    symbol_size: u16,
    concurrency: u16,
    tokio_workers: usize,
    slivers: usize,
    /// Bytes of the slivers' symbols, what the throughput counts.
    sliver_bytes: u64,
    /// Resident memory before the first run: the encoded blob the client holds, mostly.
    rss_before_bytes: Option<u64>,
    runs: Vec<IngestRun>,
    median_seconds: f64,
    median_sliver_mb_s: f64,
    median_commits: u64,
}

/// Runs `morsa bench node`.
pub fn run(args: &NodeArgs) -> anyhow::Result<()> {
    let config = EncodingConfig::new(args.n_shards)?;
    let symbol_size = config.symbol_size(args.size)?;
    let size = usize::try_from(args.size).context("blob size does not fit in memory")?;
    let encoded = {
        let blob = pseudo_random(size);
        Arc::new(redstuff::encode(config, &blob).context("encoding the blob")?)
    };
    let slivers = 2 * encoded.pairs.len();
    let sliver_bytes: usize =
        encoded.pairs.iter().map(|pair| pair.primary.symbols.len() + pair.secondary.symbols.len()).sum();
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let tokio_workers = runtime.metrics().num_workers();
    if !args.json {
        println!(
            "node ingest: n = {}, blob {} bytes, symbol size {symbol_size}, {slivers} slivers of {sliver_bytes} \
             bytes, {} uploads at once, {tokio_workers} tokio workers",
            args.n_shards, args.size, args.concurrency
        );
    }

    let rss_before = current_rss();
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        let dir = tempfile::Builder::new()
            .prefix("morsa-bench-node-")
            .tempdir_in(&base)
            .with_context(|| format!("creating a directory in {}", base.display()))?;
        let result = runtime.block_on(ingest_once(&dir, config, &encoded, args.concurrency))?;
        let measured = IngestRun {
            seconds: result.elapsed.as_secs_f64(),
            sliver_mb_s: mb_per_s(sliver_bytes, result.elapsed),
            commits: result.commits,
            largest_group: result.largest_group,
            committer_busy: result.commit_time.as_secs_f64() / result.elapsed.as_secs_f64().max(1e-9),
            peak_rss_bytes: result.peak_rss,
        };
        if !args.json {
            println!(
                "  run {run}: {:>7.1} MB/s  {:>6.2} s  {:>5} commits (largest group {:>3}, committer busy {:>3.0}%)  peak RSS {}",
                measured.sliver_mb_s,
                measured.seconds,
                measured.commits,
                measured.largest_group,
                measured.committer_busy * 100.0,
                measured
                    .peak_rss_bytes
                    .map_or_else(|| "unknown".into(), |bytes| format!("{} MiB", bytes >> 20)),
            );
        }
        runs.push(measured);
        dir.close().context("removing the node's directory")?;
    }

    // The median run by time (for an even count, the faster of the middle two).
    let mut by_time: Vec<&IngestRun> = runs.iter().collect();
    by_time.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let median_run = by_time[(by_time.len() - 1) / 2];
    let (median_seconds, median_sliver_mb_s) = (median_run.seconds, median_run.sliver_mb_s);
    let mut commits: Vec<u64> = runs.iter().map(|run| run.commits).collect();
    commits.sort_unstable();
    let report = NodeReport {
        n_shards: args.n_shards,
        size: args.size,
        symbol_size,
        concurrency: args.concurrency,
        tokio_workers,
        slivers,
        sliver_bytes: u64::try_from(sliver_bytes)?,
        rss_before_bytes: rss_before,
        median_seconds,
        median_sliver_mb_s,
        median_commits: commits[(commits.len() - 1) / 2],
        runs,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "  median of {}: {:.1} MB/s of sliver bytes, {:.2} s, {} commits for {slivers} slivers",
            report.runs.len(),
            report.median_sliver_mb_s,
            report.median_seconds,
            report.median_commits
        );
    }
    Ok(())
}

/// What one ingest measured.
struct Measured {
    elapsed: Duration,
    commits: u64,
    largest_group: usize,
    commit_time: Duration,
    peak_rss: Option<u64>,
}

/// Starts a node in `dir` that owns every shard, registers the blob, serves it on loopback, and
/// uploads the metadata, then (timed) every sliver from `concurrency` tasks.
async fn ingest_once(
    dir: &tempfile::TempDir,
    config: EncodingConfig,
    encoded: &Arc<EncodedBlob>,
    concurrency: u16,
) -> anyhow::Result<Measured> {
    let n_shards = config.n_shards();
    let blob_id = *encoded.metadata.blob_id();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0")?;
    // The scrubber off: it would re-read the slivers being measured.
    let repair = RepairConfig { scrub_bytes_per_sec: 0, ..RepairConfig::default() };
    let limits = Limits { repair, ..Limits::default() };
    let listening = Listening::with_node(listener, all_shards_node(dir, config)?, &limits, None)?;
    let (node, address) = (Arc::clone(listening.node()), listening.address());
    let registered = Event::BlobRegistered {
        blob_id,
        object: ObjectId([1; 32]),
        size: encoded.metadata.unencoded_length(),
        encoded_size: config.encoded_size(encoded.metadata.unencoded_length())?,
        end_epoch: Epoch(100),
        deletable: false,
        epoch: Epoch(1),
    };
    node.apply_events(&[EventRecord::new(0, 0, registered, [0; 32])])?;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listening.serve(async {
        let _ = stopped.await;
    }));

    let options = ClientOptions { timeout: Duration::from_secs(120), ..ClientOptions::default() };
    let client =
        NodeClient::with_http(options.http_client()?, &format!("http://{address}"), config, options)?;
    let metadata = MetadataWithId { blob_id, metadata: encoded.metadata.metadata().clone() };
    client.put_metadata(&blob_id, &metadata).await.context("uploading the metadata")?;

    reset_peak_rss();
    let before = node.ingest_stats();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut uploads = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, encoded, next) = (client.clone(), Arc::clone(encoded), Arc::clone(&next));
        uploads.spawn(async move {
            loop {
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= 2 * n_shards {
                    return anyhow::Ok(());
                }
                let pair = encoded.pairs.get(item / 2).context("a pair of the blob")?;
                let (kind, sliver) = if item % 2 == 0 {
                    (SliverType::Primary, &pair.primary)
                } else {
                    (SliverType::Secondary, &pair.secondary)
                };
                let pair_index = u16::try_from(item / 2)?;
                client
                    .put_sliver(&blob_id, pair_index, kind, sliver, false)
                    .await
                    .with_context(|| format!("uploading the {kind} sliver of pair {pair_index}"))?;
            }
        });
    }
    while let Some(upload) = uploads.join_next().await {
        upload.context("an upload task failed")??;
    }
    let elapsed = started.elapsed();
    let peak_rss = peak_rss();
    let after = node.ingest_stats();

    let status_node = Arc::clone(&node);
    let status = tokio::task::spawn_blocking(move || status_node.blob_status(&blob_id)).await??;
    anyhow::ensure!(
        usize::try_from(status.stored_slivers)? == 2 * n_shards,
        "the node holds {} of {} slivers after the run",
        status.stored_slivers,
        2 * n_shards
    );
    let _ = stop.send(());
    server.await.context("the server task failed")?.context("serving")?;
    // Close the node (and with it the store, joining its committer thread) before the next
    // run. The server's connection tasks may let go of it a moment after the server returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut node = node;
    loop {
        match Arc::try_unwrap(node) {
            Ok(node) => break drop(node),
            Err(shared) if Instant::now() < deadline => {
                node = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => anyhow::bail!("the stopped server still holds the node after 10 s"),
        }
    }
    Ok(Measured {
        elapsed,
        commits: after.commits - before.commits,
        largest_group: after.largest_group,
        commit_time: after.commit_time.saturating_sub(before.commit_time),
        peak_rss,
    })
}

/// A node with a fresh key and store in `dir`, alone in a committee that gives it every shard.
fn all_shards_node(dir: &tempfile::TempDir, config: EncodingConfig) -> anyhow::Result<Node> {
    let key = BlsSecretKey::generate();
    let n_shards = u16::try_from(config.n_shards())?;
    let member = CommitteeMember {
        node_id: NodeId::from_public_key(&key.public_key()),
        public_key: key.public_key(),
        address: "127.0.0.1:0".into(),
        shards: (0..n_shards).map(ShardIndex).collect(),
    };
    let committee = Committee { epoch: Epoch(1), n_shards, members: vec![member] };
    let store = morsa_store::NodeStore::open(&dir.path().join("node.redb"))?;
    Ok(Node::new(key, store, View { committee, next: None, zones: Default::default() })?)
}

/// Resident memory of this process now (Linux `VmRSS`), if known.
fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

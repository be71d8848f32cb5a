//! `morsa drill`: a restore drill. Restores a sample of the account's certified blobs, whole
//! and at random ranges, the way a restore on the worst day would (every sliver verified
//! against the blob ID, files opened with the keyring when they are encrypted), measures time
//! to first byte and throughput, and writes what happened as JSON, as a self-contained HTML
//! page and as Prometheus metrics. Trust in backups comes from restores that are tested.

mod failures;
mod html;
mod metrics;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use morsa_client::Client;
use redstuff::BlobId;
use serde::{Deserialize, Serialize};

use crate::blobs::{ConfigArg, Keys, runtime};
use crate::textfile::write_file;
use crate::timing::Timed;
use failures::ExcludedNode;

/// `morsa drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Restore this many blobs, picked at random among the account's certified ones.
    #[arg(long, default_value_t = 5, conflicts_with_all = ["all", "blobs"])]
    pub sample: usize,
    /// Restore every certified blob of the account.
    #[arg(long)]
    pub all: bool,
    /// Restore the blobs listed in FILE (one blob ID per line; `#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub blobs: Option<PathBuf>,
    /// Random ranges read from each blob besides the whole blob.
    #[arg(long, default_value_t = 3)]
    pub ranges: usize,
    /// Seed of the random choices (default: from the clock), to repeat a drill exactly.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Read as if the nodes holding `f` shards (the most the code tolerates losing; or as
    /// close below as the committee allows) were gone: reads never ask them. The nodes are
    /// picked at random by the seed and named in the report.
    #[arg(long)]
    pub with_failures: bool,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the report as a self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the results as Prometheus metrics to FILE (e.g. for node_exporter's textfile
    /// collector), replaced atomically after each drill.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Keep running, one drill every DURATION (e.g. `6h`, `1d`).
    #[arg(long, value_name = "DURATION", value_parser = crate::renew::parse_every)]
    pub every: Option<Duration>,
    #[command(flatten)]
    pub common: ConfigArg,
}

/// What a drill found.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// When it started (Unix seconds).
    pub started_unix: u64,
    /// Its seed.
    pub seed: u64,
    /// Blobs restored without a fault.
    pub passed: usize,
    /// Blobs that could not be restored, whole or in part.
    pub failed: usize,
    /// With `--with-failures`: the nodes the drill read without.
    pub with_failures: Option<WithFailures>,
    /// Each blob.
    pub blobs: Vec<BlobResult>,
}

/// The failures a drill `--with-failures` read as if they had happened.
#[derive(Debug, Serialize, Deserialize)]
pub struct WithFailures {
    /// Shards the system tolerates losing, `f`.
    pub tolerated_shards: usize,
    /// Shards of the nodes left out (at most `f`).
    pub excluded_shards: usize,
    /// The nodes left out.
    pub excluded_nodes: Vec<ExcludedNode>,
}

/// One blob's restore.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlobResult {
    /// The blob.
    pub blob_id: String,
    /// Whether the whole blob and every range came back.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// Bytes restored (the file's size).
    pub bytes: u64,
    /// Milliseconds until the first byte was written.
    pub ttfb_ms: Option<f64>,
    /// Milliseconds the whole restore took.
    pub total_ms: f64,
    /// Restore throughput, MB/s.
    pub mb_per_s: Option<f64>,
    /// Restore throughput, bytes/s.
    pub bytes_per_second: Option<f64>,
    /// Slivers that failed verification on the way (the read went around them).
    pub bad_slivers: usize,
    /// Nodes that could not serve.
    pub failed_nodes: Vec<String>,
    /// The ranges read.
    pub ranges: Vec<RangeResult>,
}

/// One range read.
#[derive(Debug, Serialize, Deserialize)]
pub struct RangeResult {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Whether it came back and equals the same bytes of the whole restore.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// Milliseconds it took.
    pub ms: f64,
}

/// Runs `morsa drill`: exits with an error if any blob failed (in a one-shot run).
pub fn run(args: &DrillArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = args.common.connect_with(Keys::Read).await?;
        let mut seed = args.seed.unwrap_or_else(clock_seed);
        let histograms = metrics::Histograms::default();
        loop {
            let with_failures = match args.with_failures {
                true => {
                    let (excluding, failures) = without_nodes(client, seed).await?;
                    client = excluding;
                    Some(failures)
                }
                false => None,
            };
            let report = drill(&client, args, seed, with_failures).await?;
            histograms.record(&report);
            publish(args, &report, &histograms)?;
            let Some(every) = args.every else {
                if report.failed > 0 {
                    let names: Vec<&str> = report
                        .blobs
                        .iter()
                        .filter(|blob| !blob.ok)
                        .map(|blob| blob.blob_id.as_str())
                        .collect();
                    bail!(
                        "restore drill failed for {} of {} blob(s): {}",
                        report.failed,
                        report.blobs.len(),
                        names.join(", ")
                    );
                }
                return Ok(());
            };
            seed = next(&mut seed);
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}

/// One drill.
async fn drill(
    client: &Client,
    args: &DrillArgs,
    seed: u64,
    with_failures: Option<WithFailures>,
) -> anyhow::Result<Report> {
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let mut rng = seed;
    let blobs = choose(client, args, &mut rng).await?;
    let mut results = Vec::with_capacity(blobs.len());
    for blob_id in blobs {
        results.push(restore(client, &blob_id, args.ranges, &mut rng).await);
    }
    let failed = results.iter().filter(|blob| !blob.ok).count();
    Ok(Report { started_unix, seed, passed: results.len() - failed, failed, with_failures, blobs: results })
}

/// `client` reading without nodes that hold `f` shards (or as close below as can be) of the
/// current committee, picked by `seed` (from a stream of its own: the blobs and ranges are
/// those of a drill without failures of the same seed); replaces what it read without before.
async fn without_nodes(client: Client, seed: u64) -> anyhow::Result<(Client, WithFailures)> {
    let committee = client.current_committee().await?;
    let weights: Vec<usize> = (0..committee.members.len()).map(|member| committee.weight(member)).collect();
    let tolerated_shards = client.encoding().f();
    let mut rng = seed ^ 0x5eed_fa11_0000_0000;
    let chosen = failures::choose(&weights, tolerated_shards, &mut rng);
    let excluded_nodes: Vec<ExcludedNode> = chosen
        .iter()
        .map(|member| ExcludedNode {
            node_id: committee.members[*member].node_id.to_string(),
            address: committee.members[*member].address.clone(),
            shards: weights[*member],
        })
        .collect();
    let client = client.excluding_nodes(chosen.iter().map(|member| committee.members[*member].node_id));
    let excluded_shards = excluded_nodes.iter().map(|node| node.shards).sum();
    Ok((client, WithFailures { tolerated_shards, excluded_shards, excluded_nodes }))
}

/// The blobs to restore.
async fn choose(client: &Client, args: &DrillArgs, rng: &mut u64) -> anyhow::Result<Vec<BlobId>> {
    if let Some(path) = &args.blobs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        return text
            .lines()
            .map(|line| line.split('#').next().unwrap_or("").trim())
            .filter(|line| !line.is_empty())
            .map(|line| {
                line.parse().map_err(|error| {
                    anyhow::anyhow!("{}: {line:?} is not a blob ID: {error}", path.display())
                })
            })
            .collect();
    }
    let certified: BTreeSet<BlobId> = client
        .list_blobs()
        .await?
        .into_iter()
        .filter(|blob| blob.certified_epoch.is_some() && !blob.invalid)
        .map(|blob| blob.blob_id)
        .collect();
    let mut certified: Vec<BlobId> = certified.into_iter().collect();
    if args.all || certified.len() <= args.sample {
        return Ok(certified);
    }
    // A partial Fisher–Yates shuffle: the first `sample` are a uniform sample.
    for index in 0..args.sample {
        let left = u64::try_from(certified.len() - index).unwrap_or(u64::MAX);
        let pick = index + usize::try_from(next(rng) % left).unwrap_or(0);
        certified.swap(index, pick);
    }
    certified.truncate(args.sample);
    Ok(certified)
}

/// Restores `blob_id` whole, then `ranges` random ranges of it, compared with the whole.
async fn restore(client: &Client, blob_id: &BlobId, ranges: usize, rng: &mut u64) -> BlobResult {
    let mut sink = Timed::new(Vec::new(), Instant::now());
    let read = client.read_file(blob_id, &mut sink).await;
    let timing = sink.timing();
    let data = sink.into_inner();
    let mut result = BlobResult {
        blob_id: blob_id.to_string(),
        ok: false,
        error: None,
        bytes: timing.bytes,
        ttfb_ms: timing.ttfb_seconds.map(|seconds| seconds * 1e3),
        total_ms: timing.seconds * 1e3,
        mb_per_s: None,
        bytes_per_second: None,
        bad_slivers: 0,
        failed_nodes: Vec::new(),
        ranges: Vec::new(),
    };
    let summary = match read {
        Ok(summary) => summary,
        Err(error) => {
            result.error = Some(error.to_string());
            return result;
        }
    };
    result.bad_slivers = summary.bad_slivers.len();
    result.failed_nodes = summary.failures.iter().map(|failure| failure.node.clone()).collect();
    result.bytes_per_second = Some(timing.bytes_per_second);
    result.mb_per_s = Some(timing.bytes_per_second / 1e6);
    let len = result.bytes;
    for _ in 0..ranges {
        if len == 0 {
            break;
        }
        let start = next(rng) % len;
        let end = (start + 1 + next(rng) % (len - start).min(1 << 20)).min(len);
        let began = Instant::now();
        let outcome = client.read_file_range(blob_id, start..end).await;
        let elapsed = ms(began.elapsed());
        let expected = &data[usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0)];
        let (ok, error) = match outcome {
            Ok(read) if read.data == expected => (true, None),
            Ok(read) => (false, Some(format!("{} bytes differ from the whole restore", read.data.len()))),
            Err(error) => (false, Some(error.to_string())),
        };
        result.ranges.push(RangeResult { start, end, ok, error, ms: elapsed });
    }
    result.ok = result.ranges.iter().all(|range| range.ok);
    if !result.ok {
        result.error = Some("a range read failed".into());
    }
    result
}

/// Prints the report and writes the files asked for.
fn publish(args: &DrillArgs, report: &Report, histograms: &metrics::Histograms) -> anyhow::Result<()> {
    if args.common.json {
        outln!("{}", serde_json::to_string(report)?);
    } else {
        for blob in &report.blobs {
            match &blob.error {
                None => outln!(
                    "ok     {} {} bytes, first byte {:.0} ms, {:.1} MB/s, {} range(s)",
                    blob.blob_id,
                    blob.bytes,
                    blob.ttfb_ms.unwrap_or(0.0),
                    blob.mb_per_s.unwrap_or(0.0),
                    blob.ranges.len()
                ),
                Some(error) => outln!("FAILED {}: {error}", blob.blob_id),
            }
        }
        if let Some(failures) = &report.with_failures {
            let nodes: Vec<&str> = failures.excluded_nodes.iter().map(|node| node.address.as_str()).collect();
            outln!(
                "read without {} (their {} shards; f = {})",
                nodes.join(", "),
                failures.excluded_shards,
                failures.tolerated_shards
            );
        }
        outln!("restore drill: {} passed, {} failed (seed {})", report.passed, report.failed, report.seed);
    }
    if let Some(path) = &args.report {
        write_file(path, serde_json::to_string_pretty(report)?.as_bytes())?;
    }
    if let Some(path) = &args.html {
        write_file(path, html::html(report).as_bytes())?;
    }
    if let Some(path) = &args.metrics {
        write_file(path, metrics::render(report, histograms).as_bytes())?;
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |since| u64::try_from(since.as_nanos()).unwrap_or(1))
}

/// SplitMix64: the next pseudo-random number of `state`.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
